//! `hostler queue`, `runs` and `show-run`: the queue and the run history (the page's
//! `/queue` and `/runs`; the old names `jobs` and `history` still work).

use argh::FromArgs;

use super::{App, output};
use crate::store::{RunFilter, Status};

/// list queued and running jobs, in the order they run (also: jobs)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "queue")]
pub struct QueueCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// list recent runs, newest first (also: history)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "runs")]
pub struct RunsCmd {
    /// only runs on this host
    #[argh(option)]
    pub host: Option<String>,
    /// only runs of this script
    #[argh(option)]
    pub script: Option<String>,
    /// only runs with this status (ok, warning, critical, unknown, error, timeout, cancelled)
    #[argh(option)]
    pub status: Option<String>,
    /// only runs older than this run id (paging)
    #[argh(option)]
    pub before: Option<i64>,
    /// how many runs (default 50)
    #[argh(option, default = "50")]
    pub limit: u64,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
    #[argh(subcommand)]
    pub action: Option<RunsAction>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum RunsAction {
    Prune(super::prune::PruneCmd),
}

/// print a run with its output and transcript
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show-run")]
pub struct ShowRunCmd {
    /// the run's id
    #[argh(positional)]
    pub id: i64,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

pub fn queue(app: &App, cmd: QueueCmd) -> anyhow::Result<u8> {
    let jobs = app.store()?.jobs()?;
    if cmd.json {
        output::json(&jobs)?;
        return Ok(0);
    }
    let now = crate::store::now_ms();
    let rows: Vec<_> = jobs
        .iter()
        .map(|j| {
            // A job claimed ahead of its due time waits on its node to start then.
            let state = if j.state == crate::store::JobState::Running && j.due_at > now {
                "claimed".to_string()
            } else {
                j.state.to_string()
            };
            vec![
                j.id.to_string(),
                j.script.clone(),
                output::opt(&j.host),
                j.priority.to_string(),
                output::time(j.due_at),
                state,
                format!("{}/{}", j.attempts, j.max_attempts),
                output::opt(&j.lease_owner),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "SCRIPT", "HOST", "PRIO", "DUE", "STATE", "TRIES", "NODE",
        ],
        &rows,
    )?;
    Ok(0)
}

pub fn runs(app: &App, cmd: RunsCmd) -> anyhow::Result<u8> {
    if let Some(RunsAction::Prune(p)) = cmd.action {
        return super::prune::prune(app, p);
    }
    let status: Option<Status> = cmd
        .status
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let runs = app.store()?.runs(&RunFilter {
        host: cmd.host,
        script: cmd.script,
        check: None,
        status,
        before_id: cmd.before,
        limit: cmd.limit,
        summary: false,
    })?;
    if cmd.json {
        let list: Vec<_> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "script": r.script, "host": r.host, "status": r.status,
                    "message": r.message, "perfdata": r.perfdata, "started_at": r.started_at,
                    "finished_at": r.finished_at, "attempt": r.attempt, "node": r.node,
                    "repeats": r.repeats,
                })
            })
            .collect();
        output::json(&list)?;
        return Ok(0);
    }
    let rows: Vec<_> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                output::time(r.started_at),
                format!("{}ms", r.finished_at - r.started_at),
                r.script.clone(),
                output::opt(&r.host),
                match r.repeats {
                    1 => r.status.as_str().to_uppercase(),
                    n => format!("{} x{n}", r.status.as_str().to_uppercase()),
                },
                r.message.lines().next().unwrap_or("").to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "STARTED", "TOOK", "SCRIPT", "HOST", "STATUS", "MESSAGE",
        ],
        &rows,
    )?;
    Ok(0)
}

pub fn show_run(app: &App, cmd: ShowRunCmd) -> anyhow::Result<u8> {
    let r = app.store()?.run(cmd.id)?;
    if cmd.json {
        output::json(&r)?;
        return Ok(0);
    }
    let mut s = format!(
        "run {}: {} on {} — {}{}\nstarted  {}\nfinished {} ({} ms), attempt {}, node {}\nmessage  {}\n",
        r.id,
        r.script,
        r.host.as_deref().unwrap_or("(no host)"),
        r.status.as_str().to_uppercase(),
        match r.repeats {
            1 => String::new(),
            n => format!(" (the latest of {n} OK runs in a row that changed nothing)"),
        },
        output::time(r.started_at),
        output::time(r.finished_at),
        r.finished_at - r.started_at,
        r.attempt,
        output::opt(&r.node),
        r.message,
    );
    if let Some(p) = &r.perfdata {
        s.push_str(&format!("perfdata {p}\n"));
    }
    s.push_str("\n--- output ---\n");
    s.push_str(&r.output);
    s.push_str("\n--- transcript ---\n");
    for line in r.transcript.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        match (v.get("t"), v.get("d"), v.get("s"), v.get("b")) {
            (Some(t), Some(d), Some(sess), Some(b)) => {
                let arrow = if d == ">" { "->" } else { "<-" };
                s.push_str(&format!(
                    "{:>7}ms s{} {arrow} {}\n",
                    t,
                    sess,
                    b.as_str().unwrap_or_default().escape_debug()
                ));
            }
            _ => s.push_str(&format!("{line}\n")),
        }
    }
    output::text(&s)?;
    Ok(0)
}
