//! Sending what `message` built: a JSON POST, a command with the mail on stdin, or a mail over
//! SMTP (lettre, TLS on the OpenSSL already linked). Each returns what came back, in one line,
//! or an error that names the channel and never its secrets.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::message::Outbound;
use crate::config::SmtpTls;

/// How long a notify command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a service may take to answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an answer is read and shown.
const ANSWER_MAX: u64 = 4096;

/// Where and how an SMTP channel sends.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub server: String,
    pub tls: SmtpTls,
    pub ca_pem: Option<Vec<u8>>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// The name this node gives in EHLO and Message-ID.
    pub node: String,
}

/// A secret with the other text of an error taken out of it.
fn hide(text: String, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text, |t, s| t.replace(s, "(secret)"))
}

/// Sends one request; `secrets` are masked in any error.
pub fn http(
    url: &str,
    headers: &[(String, String)],
    body: &Value,
    secrets: &[&str],
) -> Result<String, String> {
    let agent = crate::session::http::agent(HTTP_TIMEOUT);
    let mut req = agent.post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let shown = crate::redact::request_url(url);
    let mut resp = req
        .send(body.to_string().as_bytes())
        .map_err(|e| hide(e.to_string().replace(url, &shown), secrets))?;
    let status = resp.status().as_u16();
    let mut answer = String::new();
    let _ = resp
        .body_mut()
        .as_reader()
        .take(ANSWER_MAX)
        .read_to_string(&mut answer);
    let answer = hide(super::message::one_line(&answer), secrets);
    if (200..300).contains(&status) {
        Ok(format!("HTTP {status} {answer}").trim().to_string())
    } else {
        Err(format!("HTTP {status} {answer}").trim().to_string())
    }
}

/// Runs a command with the mail on stdin: its own `HOSTLER_*` variables, PATH and LANG, never
/// the daemon's environment (a database URL with its password, the key file's path).
pub fn command(cmdline: &str, mail: &str, env: &[(String, String)]) -> Result<String, String> {
    let mut words = cmdline.split_whitespace();
    let prog = words.next().ok_or("the command is empty")?;
    let inherited = ["PATH", "LANG"]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)));
    let mut child = Command::new(prog)
        .args(words)
        .env_clear()
        .envs(inherited)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{prog}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(mail.as_bytes());
    }
    // A hung mailer must not hang delivery, or the daemon's shutdown.
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| format!("{prog}: {e}"))? {
            Some(st) => break st,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{prog}: no exit after {COMMAND_TIMEOUT:?}; killed"));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let mut err = String::new();
    if let Some(e) = child.stderr.take() {
        let _ = e.take(ANSWER_MAX).read_to_string(&mut err);
    }
    if status.success() {
        Ok(format!("{prog}: {status}"))
    } else {
        Err(format!(
            "{prog}: {status} {}",
            super::message::one_line(&err)
        ))
    }
}

/// The address in `Name <user@host>` or `user@host`.
fn address(a: &str) -> Result<lettre::Address, String> {
    let bare = match (a.rfind('<'), a.rfind('>')) {
        (Some(i), Some(j)) if i < j => &a[i + 1..j],
        _ => a,
    };
    bare.trim()
        .parse()
        .map_err(|e| format!("address {a:?}: {e}"))
}

/// A header's text: one line, and RFC 2047's encoded word when it is not plain ASCII.
fn header_text(s: &str) -> String {
    use base64::Engine;
    let one = super::message::one_line(s);
    if one.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        one
    } else {
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(one.as_bytes())
        )
    }
}

/// The whole mail, with CRLF line ends: Date, Message-ID, From, To, a one-line Subject, and
/// the body as plain UTF-8 (7bit when it can be, base64 otherwise).
pub fn mail_bytes(s: &Smtp, subject: &str, body: &str, now_ms: i64) -> Result<Vec<u8>, String> {
    use base64::Engine;
    for a in std::iter::once(&s.from).chain(&s.to) {
        address(a)?;
        if a.contains(['\r', '\n']) {
            return Err(format!("address {a:?}: one line"));
        }
    }
    let date = jiff::Timestamp::from_millisecond(now_ms)
        .map_err(|e| e.to_string())?
        .to_zoned(jiff::tz::TimeZone::system())
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string();
    let mut id = [0u8; 12];
    getrandom::getrandom(&mut id).map_err(|e| format!("no randomness: {e}"))?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut m = format!(
        "Date: {date}\r\nMessage-ID: <{now_ms}.{id}@{}>\r\nFrom: {}\r\nTo: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n",
        header_text(&s.node),
        s.from,
        s.to.join(", "),
        header_text(subject)
    );
    let plain = body.is_ascii() && body.lines().all(|l| l.len() <= 998);
    if plain {
        m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        for line in body.lines() {
            m.push_str(line);
            m.push_str("\r\n");
        }
    } else {
        m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
        for chunk in b64.as_bytes().chunks(76) {
            m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            m.push_str("\r\n");
        }
    }
    Ok(m.into_bytes())
}

/// Sends a mail over SMTP (see [`mail_bytes`]).
pub fn smtp(s: &Smtp, subject: &str, body: &str) -> Result<String, String> {
    use lettre::Transport;
    use lettre::address::Envelope;
    use lettre::transport::smtp::SmtpTransport;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::transport::smtp::extension::ClientId;

    let secrets: Vec<&str> = s.password.as_deref().into_iter().collect();
    let (host, port) = match s.server.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_matches(['[', ']']),
            p.parse::<u16>()
                .map_err(|_| format!("server {:?}: the port is not a number", s.server))?,
        ),
        None => (
            s.server.as_str(),
            if s.tls == SmtpTls::Tls { 465 } else { 587 },
        ),
    };
    let envelope = Envelope::new(
        Some(address(&s.from)?),
        s.to.iter().map(|t| address(t)).collect::<Result<_, _>>()?,
    )
    .map_err(|e| format!("the envelope: {e}"))?;
    let mail = mail_bytes(s, subject, body, crate::store::now_ms())?;
    let tls = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(host.to_string());
        if let Some(pem) = &s.ca_pem {
            let cert = Certificate::from_pem(pem).map_err(|e| format!("ca_file: {e}"))?;
            b = b.add_root_certificate(cert);
        }
        b.build().map_err(|e| format!("TLS: {e}"))
    };
    let mut t = SmtpTransport::builder_dangerous(host)
        .port(port)
        .hello_name(ClientId::Domain(s.node.clone()))
        .timeout(Some(HTTP_TIMEOUT))
        .tls(match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls()?),
            SmtpTls::Tls => Tls::Wrapper(tls()?),
        });
    if let (Some(u), Some(p)) = (&s.user, &s.password) {
        t = t.credentials(Credentials::new(u.clone(), p.clone()));
    }
    let resp = t
        .build()
        .send_raw(&envelope, &mail)
        .map_err(|e| hide(format!("SMTP {}: {e}", s.server), &secrets))?;
    Ok(format!(
        "SMTP {} {}",
        resp.code(),
        super::message::one_line(&resp.message().collect::<Vec<_>>().join(" "))
    ))
}

/// Sends one outbound; the channel's secrets are masked in what comes back.
pub fn outbound(
    o: &Outbound,
    cmdline: Option<&str>,
    smtp_cfg: Option<&Smtp>,
    secrets: &[&str],
) -> Result<String, String> {
    match o {
        Outbound::Http { url, headers, body } => http(url, headers, body, secrets),
        Outbound::Command { mail, env } => command(cmdline.unwrap_or(""), mail, env),
        Outbound::Mail { subject, body } => match smtp_cfg {
            Some(s) => smtp(s, subject, body),
            None => Err("no SMTP settings".into()),
        },
    }
}
