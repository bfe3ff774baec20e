//! `hostler run SCRIPT --host A --host B | --tag T [--parallel N] [--repeat R]`: one script on
//! many hosts at once, in one process.
//!
//! `--parallel` worker threads take hosts from a shared list; each run is recorded like any
//! other. A line per host is printed as each finishes (`--json`: one object per line); on a
//! terminal a progress line on stderr shows how far it got. Rounds after the first reuse the
//! sessions the first logged in (the pool). The exit status is the worst result's:
//! CRITICAL > WARNING > UNKNOWN (errors, timeouts) > OK.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::run::{RunCmd, RunJson, label};
use super::{App, output};
use crate::script::RunRequest;
use crate::store::{NewRun, Status, Store};

/// How bad a result is, for the exit status.
fn severity(s: Status) -> u8 {
    match s {
        Status::Ok => 0,
        Status::Warning => 2,
        Status::Critical => 3,
        _ => 1,
    }
}

pub fn run(
    app: &App,
    store: Arc<Store>,
    cmd: &RunCmd,
    args: Option<String>,
    timeout: Option<Duration>,
) -> anyhow::Result<u8> {
    if cmd.parallel == 0 {
        anyhow::bail!("--parallel must be at least 1");
    }
    if cmd.repeat == 0 {
        anyhow::bail!("--repeat must be at least 1");
    }
    let hosts = if cmd.host.is_empty() && cmd.tag.is_empty() {
        Vec::new()
    } else {
        crate::queue::select_hosts(&store, &cmd.host, &cmd.tag)?
    };
    // No host at all (`--repeat` alone) runs the script once per round without one.
    let hosts: Vec<Option<String>> = if hosts.is_empty() {
        vec![None]
    } else {
        hosts.into_iter().map(Some).collect()
    };
    let env = app.env(store.clone())?;
    let progress = !cmd.json && std::io::stderr().is_terminal();
    let started = Instant::now();
    let total = hosts.len() * cmd.repeat as usize;
    let width = hosts
        .iter()
        .map(|h| h.as_deref().map_or(1, str::len))
        .max()
        .unwrap_or(1);
    let mut counts = [0usize; 4];
    let mut worst = Status::Ok;
    let mut done = 0usize;
    let mut failed_record = None;

    for _round in 0..cmd.repeat {
        let next = Arc::new(AtomicUsize::new(0));
        let hosts = Arc::new(hosts.clone());
        let (tx, rx) = mpsc::channel::<(NewRun, Result<i64, String>)>();
        let workers = cmd.parallel.min(hosts.len());
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (env, hosts, next, tx) = (env.clone(), hosts.clone(), next.clone(), tx.clone());
            let script = cmd.script.clone();
            let args = args.clone();
            handles.push(std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(host) = hosts.get(i) else { break };
                    let req = RunRequest {
                        script: script.clone(),
                        host: host.clone(),
                        timeout,
                        attempt: 1,
                        args: args.clone(),
                        ..RunRequest::default()
                    };
                    let run = env.execute(&req, None);
                    let id = env
                        .store
                        .record_run(&run, crate::store::JobAction::Keep)
                        .map_err(|e| e.to_string());
                    if tx.send((run, id)).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        for (run, id) in rx {
            done += 1;
            counts[usize::from(severity(run.status))] += 1;
            if severity(run.status) > severity(worst) {
                worst = run.status;
            }
            let id = match id {
                Ok(id) => id,
                Err(e) => {
                    failed_record.get_or_insert(e);
                    0
                }
            };
            if progress {
                eprint!("\r\x1b[K");
            }
            if cmd.json {
                output::line_json(&RunJson::new(id, &run))?;
            } else {
                let mut line = format!(
                    "{:<width$} {}: {}",
                    run.host.as_deref().unwrap_or("-"),
                    label(run.status),
                    run.message.lines().next().unwrap_or("")
                );
                if let Some(p) = &run.perfdata {
                    line.push_str(&format!(" | {p}"));
                }
                output::text(&line)?;
            }
            if progress {
                eprint!(
                    "\r[{done}/{total}] {:.1}s  ok {} warning {} critical {} unknown {}",
                    started.elapsed().as_secs_f64(),
                    counts[0],
                    counts[2],
                    counts[3],
                    counts[1]
                );
            }
        }
        for h in handles {
            let _ = h.join();
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    if !cmd.json {
        eprintln!(
            "{total} runs on {} hosts in {:.1}s: {} OK, {} WARNING, {} CRITICAL, {} UNKNOWN",
            hosts.len(),
            started.elapsed().as_secs_f64(),
            counts[0],
            counts[2],
            counts[3],
            counts[1]
        );
    }
    if let Some(e) = failed_record {
        // The results were printed; the history lacks some. At least UNKNOWN, never better.
        eprintln!("hostler: some runs could not be recorded: {e}");
        if severity(worst) < severity(Status::Unknown) {
            worst = Status::Unknown;
        }
    }
    Ok(worst.exit_code())
}
