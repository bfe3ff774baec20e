//! `hostler run SCRIPT [--host H]`: run a script now, record the run, and exit like a Nagios
//! plugin (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), so hostler works as one.

use argh::FromArgs;
use serde::Serialize;

use super::{App, output, parse_duration};
use crate::script::RunRequest;
use crate::store::Status;

/// run a script now and record the run; exits 0/1/2/3 for OK/WARNING/CRITICAL/UNKNOWN
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
pub struct RunCmd {
    /// the script's name (the database's, else the bundled one)
    #[argh(positional)]
    pub script: String,
    /// the host the script runs against (its `host` variable)
    #[argh(option)]
    pub host: Option<String>,
    /// the run's time limit, e.g. 30s or 2m (default: [sandbox] timeout)
    #[argh(option)]
    pub timeout: Option<String>,
    /// print the run as JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(Serialize)]
struct RunJson<'a> {
    id: i64,
    script: &'a str,
    host: Option<&'a str>,
    status: Status,
    message: &'a str,
    perfdata: Option<&'a str>,
    output: &'a str,
    duration_ms: i64,
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
    let store = match app.store() {
        Ok(s) => s,
        Err(e) => return unknown(format!("{e:#}")),
    };
    // Name a missing host or script plainly, before anything runs.
    if let Some(h) = &cmd.host
        && let Err(e) = store.host(h)
    {
        return unknown(e.to_string());
    }
    match store.script_version(&cmd.script) {
        Ok(Some(_)) => {}
        Ok(None) if crate::bundled::find(&cmd.script).is_some() => {}
        Ok(None) => return unknown(format!("script {:?} not found", cmd.script)),
        Err(e) => return unknown(e.to_string()),
    }
    let env = app.env(store.clone())?;
    let req = RunRequest {
        script: cmd.script.clone(),
        host: cmd.host.clone(),
        timeout,
        attempt: 1,
        ..RunRequest::default()
    };
    let run = env.execute(&req, None);
    let id = store.record_run(&run)?;
    if cmd.json {
        output::json(&RunJson {
            id,
            script: &run.script,
            host: run.host.as_deref(),
            status: run.status,
            message: &run.message,
            perfdata: run.perfdata.as_deref(),
            output: &run.output,
            duration_ms: run.finished_at - run.started_at,
        })?;
    } else {
        let label = match run.status {
            Status::Ok | Status::Warning | Status::Critical | Status::Unknown => {
                run.status.as_str().to_uppercase()
            }
            other => format!("UNKNOWN ({other})"),
        };
        let mut line = format!("{label}: {}", run.message);
        if let Some(p) = &run.perfdata {
            line.push_str(&format!(" | {p}"));
        }
        output::text(&line)?;
        output::text(&run.output)?;
    }
    Ok(run.status.exit_code())
}
