//! `hostler status`: one line per check, problems first, as `monit summary` shows services.

use argh::FromArgs;

use super::{App, output};
use crate::store::CheckState;
use crate::store::checks::problems_first;

/// show every check's state, problems first (hard before soft, then longest failing), with
/// flags: hard or soft, told (a notification went out), acked, flapping, downtime, guard;
/// with --problems it exits as a Nagios plugin does: 2 for a critical, else 1 for a
/// warning, else 3 for an unknown, 0 when there is no problem
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
pub struct StatusCmd {
    /// only the checks that are not OK
    #[argh(switch)]
    pub problems: bool,
    /// print JSON (times in epoch milliseconds, with the state's Nagios code)
    #[argh(switch)]
    pub json: bool,
}

pub fn run(app: &App, cmd: StatusCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    let mut checks = store.checks()?;
    let downtime = store.checks_in_downtime(&checks)?;
    if cmd.problems {
        checks.retain(|c| c.state != CheckState::Ok);
    }
    problems_first(&mut checks);
    // As Nagios: CRITICAL > WARNING > UNKNOWN > OK.
    let exit = if !cmd.problems {
        0
    } else if checks.iter().any(|c| c.state == CheckState::Critical) {
        2
    } else if checks.iter().any(|c| c.state == CheckState::Warning) {
        1
    } else if checks.iter().any(|c| c.state == CheckState::Unknown) {
        3
    } else {
        0
    };
    let guards = store.guard_states(&checks)?;
    if cmd.json {
        let list: Vec<_> = checks
            .iter()
            .zip(&guards)
            .map(|(c, guard)| {
                serde_json::json!({
                    "host": c.host, "check": c.script, "state": c.state,
                    "code": c.state.code(), "hard": c.hard, "attempts": c.attempts,
                    "since": c.since, "last_run_id": c.last_run_id,
                    "last_run_at": c.last_run_at, "message": c.message,
                    "perfdata": c.perfdata, "notified": c.notified,
                    "acked": c.acked, "ack_comment": c.ack_comment, "flapping": c.flapping,
                    "downtime": downtime.contains(&c.id),
                    "unreachable": c.unreachable, "parent": c.parent,
                    "guard": guard,
                })
            })
            .collect();
        output::json(&list)?;
        return Ok(exit);
    }
    if checks.is_empty() {
        let what = if cmd.problems {
            "No problems."
        } else {
            "No checks yet: a check is a script a schedule runs on a host (hostler schedule SCRIPT --host H --every 1m)."
        };
        output::text(&format!("{what}\n"))?;
        return Ok(0);
    }
    let rows: Vec<_> = checks
        .iter()
        .zip(&guards)
        .map(|(c, guard)| {
            let mut flags: Vec<String> = Vec::new();
            if c.state != CheckState::Ok {
                flags.push(if c.hard { "hard" } else { "soft" }.to_string());
            }
            if c.notified {
                flags.push("told".into());
            }
            if c.acked {
                flags.push("acked".into());
            }
            if c.flapping {
                flags.push("flapping".into());
            }
            if downtime.contains(&c.id) {
                flags.push("downtime".into());
            }
            if let Some(p) = &c.parent {
                flags.push(format!("unreachable behind {p}"));
            }
            if let Some(g) = guard.as_ref().filter(|g| g.fixes > 0) {
                flags.push(match g.next_allowed {
                    Some(t) => format!(
                        "guard {}/{} until {}",
                        g.fixes,
                        g.max_fixes,
                        output::time(t)
                    ),
                    None => format!("guard {}/{}", g.fixes, g.max_fixes),
                });
            }
            vec![
                output::opt(&c.host),
                c.script.clone(),
                c.state.as_str().to_uppercase(),
                output::time(c.since),
                output::time(c.last_run_at),
                flags.join(","),
                c.message.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "HOST", "CHECK", "STATE", "SINCE", "LAST RUN", "FLAGS", "MESSAGE",
        ],
        &rows,
    )?;
    Ok(exit)
}
