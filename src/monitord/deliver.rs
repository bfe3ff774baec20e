//! Delivering notifications through the configured channels: a webhook (a JSON POST of the
//! event's fields) and a command (a complete mail on its stdin, as `sendmail -t` takes it, and
//! the same fields as `HOSTLER_*` environment variables).
//!
//! Each channel is delivered on its own: the row keeps the channels that took the
//! notification, so a retry after a failed webhook never makes the command send the same mail
//! twice. A failed delivery is retried with backoff, then given up.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{info, warn};

use crate::config::Notify;
use crate::store::{Notification, Store, now_ms};

/// Attempts before a notification is given up.
pub const MAX_TRIES: i64 = 8;
/// How long a notify command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where notifications go, the page's public address for links to runs, and this process's
/// rate limit per channel.
#[derive(Debug, Clone, Default)]
pub struct Channels {
    pub notify: Notify,
    pub public_url: Option<String>,
    pub limit: Arc<RateLimit>,
}

/// At most so many deliveries per channel in any minute (this process's own count).
#[derive(Debug, Default)]
pub struct RateLimit {
    sent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimit {
    /// Whether `channel` may deliver one more now (`per_minute` 0: always); counts it if so.
    fn allow(&self, channel: &str, per_minute: usize) -> bool {
        if per_minute == 0 {
            return true;
        }
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let q = sent.entry(channel.to_string()).or_default();
        let now = Instant::now();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            q.pop_front();
        }
        if q.len() >= per_minute {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// How long a notification held by the rate limit waits before the next pass tries it.
const HELD_FOR_MS: i64 = 5_000;

/// A notification's fields, as the webhook's JSON keys and the command's environment.
fn fields(n: &Notification, public_url: Option<&str>) -> Value {
    let d = n.details.clone().unwrap_or(Value::Null);
    let url = match (public_url, n.run_id) {
        (Some(base), Some(run)) => {
            Value::from(format!("{}/runs/{run}", base.trim_end_matches('/')))
        }
        _ => Value::Null,
    };
    json!({
        "event": n.event.map_or("notify", |e| e.as_str()),
        "host": n.host,
        "check": d.get("check").cloned().unwrap_or(Value::Null),
        "state": d.get("state").cloned().unwrap_or(Value::Null),
        "previous_state": d.get("previous_state").cloned().unwrap_or(Value::Null),
        "since": d.get("since").cloned().unwrap_or(Value::Null),
        "message": d.get("message").cloned().unwrap_or(Value::Null),
        "perfdata": d.get("perfdata").cloned().unwrap_or(Value::Null),
        "run_id": n.run_id,
        "url": url,
        "subject": n.subject,
        "body": n.body,
        "id": n.id,
        "created_at": n.created_at,
    })
}

fn webhook(url: &str, body: &Value) -> Result<(), String> {
    let agent = crate::session::http::agent(Duration::from_secs(10));
    let resp = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        // The URL often carries a token: it goes into no error message or log.
        .map_err(|e| format!("webhook: {}", e.to_string().replace(url, "(webhook URL)")))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("webhook: HTTP {status}"))
    }
}

/// The mail the command gets: `To:` (from `[notify] mail_to`), `Subject:`, `Date:`, a body,
/// and the link to the run. Header values are one line each, whatever a script wrote.
pub fn mail(n: &Notification, mail_to: Option<&str>, url: Option<&str>) -> String {
    let one = crate::script::api::one_line;
    let mut m = String::new();
    if let Some(to) = mail_to {
        m.push_str(&format!("To: {}\n", one(to)));
    }
    m.push_str(&format!("Subject: {}\n", one(&n.subject)));
    let date = jiff::Timestamp::from_millisecond(n.created_at)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%a, %d %b %Y %H:%M:%S %z")
                .to_string()
        })
        .unwrap_or_default();
    m.push_str(&format!("Date: {date}\n"));
    m.push_str("Content-Type: text/plain; charset=utf-8\n");
    m.push_str(&format!(
        "X-Hostler-Event: {}\n\n{}\n",
        n.event.map_or("notify", |e| e.as_str()),
        n.body
    ));
    if let Some(u) = url {
        m.push_str(&format!("\n{u}\n"));
    }
    m
}

/// `HOSTLER_EVENT`, `HOSTLER_HOST`, `HOSTLER_CHECK`, ...: each field that has a value.
fn environment(f: &Value) -> Vec<(String, String)> {
    let Some(map) = f.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "subject" | "body"))
        .filter_map(|(k, v)| {
            let text = match v {
                Value::Null => return None,
                Value::String(s) => crate::script::api::one_line(s),
                other => other.to_string(),
            };
            Some((format!("HOSTLER_{}", k.to_uppercase()), text))
        })
        .collect()
}

fn command(cmdline: &str, mail: &str, env: &[(String, String)]) -> Result<(), String> {
    let mut words = cmdline.split_whitespace();
    let prog = words.next().ok_or("notify command is empty")?;
    // Its own HOSTLER_* variables, PATH and LANG: never the daemon's environment (a database
    // URL with its password, the key file's path).
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
        .map_err(|e| format!("notify command {prog}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(mail.as_bytes());
    }
    // A hung mailer must not hang delivery, or the daemon's shutdown.
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child
            .try_wait()
            .map_err(|e| format!("notify command {prog}: {e}"))?
        {
            Some(st) => break st,
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "notify command {prog}: no exit after {COMMAND_TIMEOUT:?}; killed"
                ));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    Err(format!("notify command {prog}: {status} {}", err.trim()))
}

/// Delivers every due notification once, to each channel that has not taken it yet; returns
/// how many are now delivered to all.
pub fn deliver_pending(store: &Store, ch: &Channels) -> usize {
    let pending = match store.pending_notifications(100) {
        Ok(p) => p,
        Err(e) => {
            warn!("cannot read pending notifications: {e}");
            return 0;
        }
    };
    let cfg = &ch.notify;
    let mut delivered = 0;
    for n in pending {
        // Several daemons share the table: only the one that takes it delivers it.
        if !store.claim_notification(&n, 60_000).unwrap_or(false) {
            continue;
        }
        let mut took: Vec<String> = n
            .channel
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        let f = fields(&n, ch.public_url.as_deref());
        let url = f["url"].as_str().map(String::from);
        let mut errors = Vec::new();
        let mut held = Vec::new();
        let per_minute = cfg.max_per_minute;
        let mut attempt = |name: &str, send: &dyn Fn() -> Result<(), String>| {
            if took.iter().any(|t| t == name) {
                return;
            }
            if !ch.limit.allow(name, per_minute) {
                held.push(name.to_string());
                return;
            }
            match send() {
                Ok(()) => took.push(name.to_string()),
                Err(e) => errors.push(e),
            }
        };
        if let Some(hook) = &cfg.webhook {
            attempt("webhook", &|| webhook(hook, &f));
        }
        if let Some(cmd) = &cfg.command {
            let m = mail(&n, cfg.mail_to.as_deref(), url.as_deref());
            let env = environment(&f);
            attempt("command", &|| command(cmd, &m, &env));
        }
        if cfg.webhook.is_none() && cfg.command.is_none() {
            // Nowhere to send it: the row and the log are the record.
            attempt("log", &|| Ok(()));
            info!(subject = %n.subject, "notification (no channel configured)");
        }
        if errors.is_empty() && !held.is_empty() {
            // Held by the rate limit: nothing failed, no try is counted, nothing is dropped.
            info!(
                id = n.id,
                "notification held by the rate limit of {} ({per_minute} a minute)",
                held.join(", ")
            );
            if let Err(e) = store.hold_notification(n.id, &took.join(","), now_ms() + HELD_FOR_MS) {
                warn!("cannot hold a notification: {e}");
            }
            continue;
        }
        let result = if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        };
        let next =
            (n.tries + 1 < MAX_TRIES).then(|| now_ms() + 10_000 * (1 << n.tries.clamp(0, 12)));
        if let Err(e) = &result {
            warn!(
                id = n.id,
                tries = n.tries + 1,
                "notification not delivered: {e}"
            );
        } else {
            delivered += 1;
        }
        if let Err(e) = store.notification_attempt(n.id, &took.join(","), result, next) {
            warn!("cannot record a delivery attempt: {e}");
        }
    }
    delivered
}
