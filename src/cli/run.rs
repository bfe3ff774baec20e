//! `hostler run SCRIPT [--host H]`: run a script now, record the run, and exit like a Nagios
//! plugin (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), so hostler works as one. Several hosts, a
//! tag or `--repeat` fan out (see [`super::fanout`]).

use argh::FromArgs;
use serde::Serialize;

use super::{App, output, parse_duration};
use crate::script::RunRequest;
use crate::store::Status;

/// run a script now and record the run; exits 0/1/2/3 for OK/WARNING/CRITICAL/UNKNOWN.
/// With several --host, a --tag or --repeat it fans out: one line per host as each finishes,
/// and the exit status of the worst (CRITICAL > WARNING > UNKNOWN > OK).
/// Example: hostler run check_load --tag web --parallel 32
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
pub struct RunCmd {
    /// the script's name (the database's, else the bundled one)
    #[argh(positional)]
    pub script: String,
    /// a host the script runs against, as its `host` variable (repeatable)
    #[argh(option)]
    pub host: Vec<String>,
    /// run on every host with this tag (repeatable)
    #[argh(option)]
    pub tag: Vec<String>,
    /// how many hosts run at once when fanning out (default 32)
    #[argh(option, default = "32")]
    pub parallel: usize,
    /// run the whole set this many rounds in one process, reusing logged-in sessions
    /// (default 1)
    #[argh(option, default = "1")]
    pub repeat: u32,
    /// an argument for the script, NAME=VALUE (repeatable): --arg url=http://127.0.0.1/
    #[argh(option)]
    pub arg: Vec<String>,
    /// the run's time limit, e.g. 30s or 2m (default: [sandbox] timeout)
    #[argh(option)]
    pub timeout: Option<String>,
    /// print the run as JSON (fan-out: one JSON object per line, per host)
    #[argh(switch)]
    pub json: bool,
}

#[derive(Serialize)]
pub(super) struct RunJson<'a> {
    pub id: i64,
    pub script: &'a str,
    pub host: Option<&'a str>,
    pub status: Status,
    pub message: &'a str,
    pub perfdata: Option<&'a str>,
    pub output: &'a str,
    pub duration_ms: i64,
}

impl<'a> RunJson<'a> {
    pub fn new(id: i64, run: &'a crate::store::NewRun) -> RunJson<'a> {
        RunJson {
            id,
            script: &run.script,
            host: run.host.as_deref(),
            status: run.status,
            message: &run.message,
            perfdata: run.perfdata.as_deref(),
            output: &run.output,
            duration_ms: run.finished_at - run.started_at,
        }
    }
}

/// `OK`, `WARNING`...; statuses that are not plugin results read `UNKNOWN (timeout)`.
pub(super) fn label(status: Status) -> String {
    match status {
        Status::Ok | Status::Warning | Status::Critical | Status::Unknown => {
            status.as_str().to_uppercase()
        }
        other => format!("UNKNOWN ({other})"),
    }
}

pub fn run(app: &App, cmd: RunCmd) -> anyhow::Result<u8> {
    let unknown = |msg: String| -> anyhow::Result<u8> {
        output::text(&format!("UNKNOWN: {msg}"))?;
        Ok(Status::Unknown.exit_code())
    };
    let timeout = match cmd.timeout.as_deref().map(parse_duration).transpose() {
        Ok(t) => t,
        Err(e) => return unknown(format!("{e:#}")),
    };
    let args = match crate::queue::parse_args(&cmd.arg) {
        Ok(a) => crate::queue::args_json(&a),
        Err(e) => return unknown(e.to_string()),
    };
    let store = match app.store() {
        Ok(s) => s,
        Err(e) => return unknown(format!("{e:#}")),
    };
    match store.script_version(&cmd.script) {
        Ok(Some(_)) => {}
        Ok(None) if crate::bundled::find(&cmd.script).is_some() => {}
        Ok(None) => return unknown(format!("script {:?} not found", cmd.script)),
        Err(e) => return unknown(e.to_string()),
    }
    if cmd.host.len() > 1 || !cmd.tag.is_empty() || cmd.repeat > 1 {
        // As a plugin would: a bad host, tag or option is UNKNOWN (3), never 1 (WARNING).
        return match super::fanout::run(app, store, &cmd, args, timeout) {
            Ok(code) => Ok(code),
            Err(e) => unknown(format!("{e:#}")),
        };
    }
    let host = cmd.host.first().cloned();
    // Name a missing host plainly, before anything runs.
    if let Some(h) = &host
        && let Err(e) = store.host(h)
    {
        return unknown(e.to_string());
    }
    let env = app.env(store.clone())?;
    let req = RunRequest {
        script: cmd.script.clone(),
        host,
        timeout,
        attempt: 1,
        args,
        ..RunRequest::default()
    };
    let run = env.execute(&req, None);
    // A run that cannot be recorded (disk full, read-only file system) is UNKNOWN to whoever
    // reads the exit status, whatever the script said: the history does not hold it.
    let id = match store.record_run(&run, crate::store::JobAction::Keep) {
        Ok(id) => id,
        Err(e) => {
            return unknown(format!(
                "the run said {}: {}, but it could not be recorded: {e}",
                label(run.status),
                run.message
            ));
        }
    };
    if cmd.json {
        output::json(&RunJson::new(id, &run))?;
    } else {
        let mut line = format!("{}: {}", label(run.status), run.message);
        if let Some(p) = &run.perfdata {
            line.push_str(&format!(" | {p}"));
        }
        output::text(&line)?;
        output::text(&run.output)?;
    }
    Ok(run.status.exit_code())
}
