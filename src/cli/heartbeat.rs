//! `hostler heartbeat add|list|rm` (checks fed from outside by pings) and `hostler exec NAME --
//! COMMAND`, which runs a command and reports its start, exit status and output to a
//! heartbeat: what a cron line uses.

use std::io::Read;

use argh::FromArgs;

use super::{App, output};
use crate::store::heartbeats::{NewHeartbeat, Ping};

/// heartbeats: checks fed by pings from cron jobs, backups, batches; a missed ping is CRITICAL
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "heartbeat")]
pub struct HeartbeatCmd {
    #[argh(subcommand)]
    pub action: HeartbeatAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum HeartbeatAction {
    Add(AddCmd),
    List(ListCmd),
    Rm(RmCmd),
}

/// make a heartbeat and print its ping URL (the token in it is shown once)
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "add",
    example = "hostler heartbeat add backup_nightly --host db1 --every 1d --grace 1h",
    example = "0 2 * * * hostler exec backup_nightly --host db1 -- /usr/local/bin/backup",
    example = "hostler heartbeat add sync --host files1 --every 15m --grace 5m --fix restart_sync",
    note = "Ping the URL with GET, POST or HEAD when the job succeeds; /start when it starts (so its duration is known), /fail when it fails, /N with its exit status. A POST's body (up to 100 KB) is kept as the run's output. No ping within --every plus --grace is a CRITICAL result of the check, told as any check's. With --fix, the fix script is queued on the host when the problem begins (once per problem, not during a downtime); only the next ping can tell that it worked."
)]
pub struct AddCmd {
    /// the check's name
    #[argh(positional)]
    pub name: String,
    /// how often a ping is expected: 5m, 1d
    #[argh(option)]
    pub every: Option<String>,
    /// when pings are expected instead, a cron expression (local time): "0 2 * * *"
    #[argh(option)]
    pub cron: Option<String>,
    /// how late a ping may come before it is missed (default 0)
    #[argh(option)]
    pub grace: Option<String>,
    /// the host the check belongs to (default: none)
    #[argh(option)]
    pub host: Option<String>,
    /// a fix script to queue on the host when the problem begins
    #[argh(option)]
    pub fix: Option<String>,
    /// print JSON: {"id", "name", "host", "url"}
    #[argh(switch)]
    pub json: bool,
}

/// list the heartbeats, with when they last pinged and when a ping is due
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// remove a heartbeat (its token stops working; its check stays until removed)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rm")]
pub struct RmCmd {
    /// the heartbeat's name
    #[argh(positional)]
    pub name: String,
    /// its host
    #[argh(option)]
    pub host: Option<String>,
}

/// run a command and report it to a heartbeat: its start, exit status and last 100 KB of output
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "exec",
    example = "hostler exec backup_nightly --host db1 -- /usr/local/bin/backup --full"
)]
pub struct ExecCmd {
    /// the heartbeat's name
    #[argh(positional)]
    pub name: String,
    /// the command and its arguments (after --)
    #[argh(positional, greedy)]
    pub command: Vec<String>,
    /// the heartbeat's host
    #[argh(option)]
    pub host: Option<String>,
}

fn ms(s: &str, what: &str) -> anyhow::Result<i64> {
    let d = crate::when::parse_duration(s).map_err(|e| anyhow::anyhow!("{what} {s:?}: {e}"))?;
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn run(app: &App, cmd: HeartbeatCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    match cmd.action {
        HeartbeatAction::Add(c) => {
            let every_ms = match (&c.every, &c.cron) {
                (Some(e), None) => ms(e, "--every")?,
                (None, Some(_)) => 0,
                _ => anyhow::bail!("give --every or --cron, one of them"),
            };
            let h = NewHeartbeat {
                name: c.name.clone(),
                host: c.host.clone(),
                every_ms,
                cron: c.cron.clone(),
                grace_ms: c.grace.as_deref().map_or(Ok(0), |g| ms(g, "--grace"))?,
                author: Some(super::downtime::author()),
                fix: c.fix.clone(),
            };
            let (id, token) = store.add_heartbeat(&h)?;
            let base = app
                .config
                .web
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", app.config.web.listen));
            let url = format!("{}/ping/{token}", base.trim_end_matches('/'));
            if c.json {
                output::json(&serde_json::json!({
                    "id": id, "name": c.name, "host": c.host, "url": url,
                }))?;
            } else {
                output::text(&format!(
                    "heartbeat {}: ping {url}\n(the token is shown only now; /start, /fail and /N report a start, a failure, an exit status)",
                    c.name
                ))?;
            }
        }
        HeartbeatAction::List(c) => {
            let list = store.heartbeats()?;
            if c.json {
                output::json(&list)?;
                return Ok(0);
            }
            let span =
                |ms: i64| crate::when::span(std::time::Duration::from_millis(ms.max(0) as u64));
            let rows: Vec<_> = list
                .iter()
                .map(|h| {
                    vec![
                        output::opt(&h.host),
                        h.name.clone(),
                        h.expected(),
                        span(h.grace_ms),
                        h.last_ping_at.map_or("never".into(), output::time),
                        h.deadline()
                            .map_or_else(|e| format!("? ({e})"), output::time),
                        h.fix.clone().unwrap_or_default(),
                        if h.missed_at.is_some() { "missed" } else { "" }.to_string(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "HOST",
                    "NAME",
                    "EXPECTED",
                    "GRACE",
                    "LAST PING",
                    "DUE BY",
                    "FIX",
                    "",
                ],
                &rows,
            )?;
        }
        HeartbeatAction::Rm(c) => {
            store.remove_heartbeat(&c.name, c.host.as_deref())?;
            output::text(&format!("heartbeat {} removed", c.name))?;
        }
    }
    Ok(0)
}

/// The last 100 KB a stream gives, read to its end.
fn tail(s: Option<Box<dyn Read + Send>>) -> Vec<u8> {
    let max = crate::store::heartbeats::MAX_BODY;
    let mut buf = Vec::new();
    let Some(mut s) = s else {
        return buf;
    };
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return buf,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 2 * max {
                    buf.drain(..buf.len() - max);
                }
            }
        }
    }
}

/// Runs the command, reports it, and exits with its exit status (127 when it cannot start).
pub fn exec(app: &App, cmd: ExecCmd) -> anyhow::Result<u8> {
    let Some((program, args)) = cmd.command.split_first() else {
        anyhow::bail!("give the command after --: hostler exec NAME -- COMMAND ARGS...");
    };
    let store = app.store()?;
    let h = store.heartbeat(&cmd.name, cmd.host.as_deref())?;
    store.ping(&h, Ping::Start, "")?;
    let h = store.heartbeat(&cmd.name, cmd.host.as_deref())?;
    let child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let (code, output) = match child {
        Ok(mut child) => {
            // Both streams, read as they come (one thread each), each keeping only its last
            // 100 KB: a command that prints gigabytes costs no more memory.
            let read = |s: Option<Box<dyn Read + Send>>| std::thread::spawn(move || tail(s));
            let o = read(
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            );
            let e = read(
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            );
            let status = child.wait()?;
            let mut all = o.join().unwrap_or_default();
            all.extend(e.join().unwrap_or_default());
            let keep = all.len().saturating_sub(crate::store::heartbeats::MAX_BODY);
            let text = String::from_utf8_lossy(&all[keep..]).into_owned();
            (status.code().unwrap_or(128), text)
        }
        Err(e) => (127, format!("cannot start {program}: {e}")),
    };
    let pinged = store.ping(&h, Ping::Exit(i64::from(code)), &output)?;
    if let Some(fix) = pinged.fix {
        crate::queue::heartbeat_fix(&store, &fix)?;
    }
    if code == 127 {
        eprintln!("hostler: {output}");
    }
    Ok(u8::try_from(code).unwrap_or(1))
}
