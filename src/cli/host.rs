//! `hostler host add|list|show|rm`. A password comes from a prompt or stdin, never argv, and
//! is never printed back.

use std::io::BufRead;

use argh::FromArgs;

use super::{App, output};
use crate::store::{Host, Method, NewHost, Secret};

/// manage hosts
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "host")]
pub struct HostCmd {
    #[argh(subcommand)]
    pub action: HostAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum HostAction {
    Add(AddCmd),
    Edit(super::host_edit::EditCmd),
    List(ListCmd),
    Show(ShowCmd),
    Rm(RmCmd),
    Trust(TrustCmd),
}

/// add a host
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct AddCmd {
    /// the host's name, as scripts and commands refer to it
    #[argh(positional)]
    pub name: String,
    /// its address (DNS name or IP)
    #[argh(option)]
    pub address: String,
    /// its port (default: the method's: ssh 22, telnet 23, http 80)
    #[argh(option)]
    pub port: Option<u16>,
    /// how to reach it: local, ssh, telnet or http (default ssh)
    #[argh(option)]
    pub method: Option<String>,
    /// the login user
    #[argh(option)]
    pub user: Option<String>,
    /// read the password from the first line of stdin
    #[argh(switch)]
    pub password_stdin: bool,
    /// prompt for the password on the terminal
    #[argh(switch)]
    pub ask_password: bool,
    /// path of an SSH private key
    #[argh(option)]
    pub key: Option<String>,
    /// a regex matching the host's shell prompt (default: hostler sets a unique prompt)
    #[argh(option)]
    pub prompt: Option<String>,
    /// a tag (repeatable)
    #[argh(option)]
    pub tag: Vec<String>,
    /// the site (network segment) the host is in
    #[argh(option)]
    pub site: Option<String>,
    /// a script variable NAME=VALUE (repeatable)
    #[argh(option)]
    pub var: Vec<String>,
    /// log in afresh for every run instead of keeping the session for the next
    #[argh(switch)]
    pub no_keep_session: bool,
}

/// pin the SSH host key the host offers now, replacing the pinned one, after a deliberate
/// change such as a reinstall. Compare the fingerprint with the server's own first
/// (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on it): on a terminal hostler shows it
/// and asks; otherwise pass --fingerprint (or --yes).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "trust")]
pub struct TrustCmd {
    /// the host's name
    #[argh(positional)]
    pub name: String,
    /// pin only if the offered key has this fingerprint (SHA256:...)
    #[argh(option)]
    pub fingerprint: Option<String>,
    /// pin whatever key is offered, without asking
    #[argh(switch)]
    pub yes: bool,
}

/// list hosts
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// show one host (never its secret)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct ShowCmd {
    /// the host's name
    #[argh(positional)]
    pub name: String,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// remove a host with its schedules and pinned keys (refused while it has queued or running
/// jobs; its run history stays)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rm")]
pub struct RmCmd {
    /// the host's name
    #[argh(positional)]
    pub name: String,
}

pub(super) fn read_password(name: &str, stdin: bool, ask: bool) -> anyhow::Result<Option<Secret>> {
    if stdin && ask {
        anyhow::bail!("use either --password-stdin or --ask-password, not both");
    }
    if stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\n', '\r']).to_string();
        if pw.is_empty() {
            anyhow::bail!("--password-stdin: stdin held no password");
        }
        return Ok(Some(Secret::new(pw)));
    }
    if ask {
        // rpassword reads the controlling terminal; without one it fails with ENXIO.
        if std::fs::File::open("/dev/tty").is_err() {
            anyhow::bail!(
                "--ask-password needs a terminal; without one, pipe the password to --password-stdin"
            );
        }
        let pw = rpassword::prompt_password(format!("password for {name}: "))?;
        return Ok(Some(Secret::new(pw)));
    }
    Ok(None)
}

fn add(app: &App, cmd: AddCmd) -> anyhow::Result<u8> {
    let method: Option<Method> = cmd
        .method
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let mut vars = serde_json::Map::new();
    for v in &cmd.var {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--var {v:?}: expected NAME=VALUE"))?;
        vars.insert(k.to_string(), serde_json::Value::String(val.to_string()));
    }
    // Ask before touching the database, so a failed prompt writes nothing.
    let secret = read_password(&cmd.name, cmd.password_stdin, cmd.ask_password)?;
    let store = app.store()?;
    let host = store.add_host(&NewHost {
        name: cmd.name,
        address: cmd.address,
        port: cmd.port,
        method,
        username: cmd.user,
        secret,
        key_path: cmd.key,
        prompt: cmd.prompt,
        site: cmd.site,
        tags: cmd.tag,
        vars,
        no_keep_session: cmd.no_keep_session,
    })?;
    output::text(&format!(
        "added host {} ({} {})",
        host.name, host.method, host.address
    ))?;
    Ok(0)
}

fn row(h: &Host) -> Vec<String> {
    vec![
        h.name.clone(),
        h.method.to_string(),
        h.address.clone(),
        h.port
            .or(h.method.default_port())
            .map_or("-".into(), |p| p.to_string()),
        output::opt(&h.username),
        output::opt(&h.site),
        h.tags.join(","),
    ]
}

pub fn run(app: &App, cmd: HostCmd) -> anyhow::Result<u8> {
    match cmd.action {
        HostAction::Add(c) => add(app, c),
        HostAction::Edit(c) => super::host_edit::run(app, c),
        HostAction::List(c) => {
            let hosts = app.store()?.hosts()?;
            if c.json {
                output::json(&hosts)?;
            } else {
                let rows: Vec<_> = hosts.iter().map(row).collect();
                output::table(
                    &["NAME", "METHOD", "ADDRESS", "PORT", "USER", "SITE", "TAGS"],
                    &rows,
                )?;
            }
            Ok(0)
        }
        HostAction::Show(c) => {
            let store = app.store()?;
            let h = store.host(&c.name)?;
            let keys = store.host_keys(&c.name)?;
            if c.json {
                let mut v = serde_json::to_value(&h)?;
                v["host_keys"] = serde_json::to_value(&keys)?;
                output::json(&v)?;
            } else {
                let vars = serde_json::Value::Object(h.vars.clone()).to_string();
                let lines = [
                    ("name", h.name.clone()),
                    ("method", h.method.to_string()),
                    ("address", h.address.clone()),
                    (
                        "port",
                        h.port
                            .or(h.method.default_port())
                            .map_or("-".into(), |p| p.to_string()),
                    ),
                    ("user", output::opt(&h.username)),
                    (
                        "secret",
                        if h.has_secret {
                            "stored (hidden)".into()
                        } else {
                            "none".into()
                        },
                    ),
                    ("key", output::opt(&h.key_path)),
                    ("prompt", output::opt(&h.prompt)),
                    ("site", output::opt(&h.site)),
                    ("tags", h.tags.join(" ")),
                    ("vars", vars),
                    (
                        "session",
                        if h.keep_session {
                            "kept between runs"
                        } else {
                            "closed after each run"
                        }
                        .into(),
                    ),
                ];
                let mut text: String = lines.iter().map(|(k, v)| format!("{k:<8} {v}\n")).collect();
                for k in &keys {
                    text.push_str(&format!(
                        "hostkey  {} {} (pinned {})\n",
                        k.key_type,
                        k.fingerprint,
                        output::time(k.first_seen)
                    ));
                }
                output::text(&text)?;
            }
            Ok(0)
        }
        HostAction::Trust(c) => trust(app, &c),
        HostAction::Rm(c) => {
            app.store()?.remove_host(&c.name)?;
            output::text(&format!("removed host {}", c.name))?;
            Ok(0)
        }
    }
}

/// `host trust NAME`: fetches the key the host offers now and, once it is confirmed, pins it in
/// place of the old one.
fn trust(app: &App, cmd: &TrustCmd) -> anyhow::Result<u8> {
    let name = cmd.name.as_str();
    let store = app.store()?;
    let h = store.host(name)?;
    if h.method != Method::Ssh {
        anyhow::bail!(
            "{name} is reached by {}, not ssh: it has no host key",
            h.method
        );
    }
    let port = h.port.or(h.method.default_port()).unwrap_or(22);
    let timeout = app.remote().connect_timeout;
    let key = crate::session::ssh::fetch_host_key(&h.address, port, timeout)?;
    let old = store.host_keys(name)?;
    if let Some(want) = &cmd.fingerprint {
        if want.trim() != key.fingerprint {
            anyhow::bail!(
                "{name} offers {} {}, not {want}: nothing pinned",
                key.key_type,
                key.fingerprint
            );
        }
    } else if !cmd.yes {
        use std::io::{BufRead, IsTerminal, Write};
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "{name} offers {} {}; check it, then run again with --fingerprint {} (or --yes)",
                key.key_type,
                key.fingerprint,
                key.fingerprint
            );
        }
        for o in &old {
            eprintln!("{name}: pinned now:  {} {}", o.key_type, o.fingerprint);
        }
        eprint!(
            "{name}: offered now: {} {}\npin it? [y/N] ",
            key.key_type, key.fingerprint
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            anyhow::bail!("{name}: nothing pinned");
        }
    }
    store.pin_host_key(name, &key.key_type, &key.key_data, &key.fingerprint, true)?;
    match old.first() {
        Some(o) if o.key_data == key.key_data => output::text(&format!(
            "{name}: {} {} was already pinned",
            key.key_type, key.fingerprint
        ))?,
        Some(o) => output::text(&format!(
            "{name}: pinned {} {} (replacing {} {})",
            key.key_type, key.fingerprint, o.key_type, o.fingerprint
        ))?,
        None => output::text(&format!(
            "{name}: pinned {} {}",
            key.key_type, key.fingerprint
        ))?,
    }
    Ok(0)
}
