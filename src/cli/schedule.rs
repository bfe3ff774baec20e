//! `hostler schedule`, `schedules` and `cancel`: queue a script now, or on a timing, on a
//! host, a tag or a site; list schedules; cancel a job or remove a schedule.

use argh::FromArgs;

use super::{App, output, parse_duration};
use crate::queue::{Request, Submitted, When, submit};
use crate::store::{Cancelled, now_ms};

/// queue a script now, or at a time, every interval, or on a cron expression
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "schedule")]
pub struct ScheduleCmd {
    /// the script (for a correction loop: the check)
    #[argh(positional)]
    pub script: String,
    /// run on this host
    #[argh(option)]
    pub host: Option<String>,
    /// run on every host with this tag
    #[argh(option)]
    pub tag: Option<String>,
    /// run on every host of this site
    #[argh(option)]
    pub site: Option<String>,
    /// higher runs first (default 0)
    #[argh(option, default = "0")]
    pub priority: i64,
    /// once, at this time: 2026-12-01T04:00:00Z, or local 2026-12-01 04:00
    #[argh(option)]
    pub at: Option<String>,
    /// once, after this long: 30s, 10m, 2h
    #[argh(option, long = "in")]
    pub in_: Option<String>,
    /// repeatedly, this often: 60s, 5m (first run now)
    #[argh(option)]
    pub every: Option<String>,
    /// repeatedly, on a cron expression (5 fields, or 6 with seconds), local time
    #[argh(option)]
    pub cron: Option<String>,
    /// an argument for the script, NAME=VALUE (repeatable); scripts read it with arg("NAME"),
    /// which falls back on the host's vars. See `hostler script show SCRIPT` for its arguments.
    #[argh(option)]
    pub arg: Vec<String>,
    /// the check's name, when one script is scheduled twice on a host (default: the script's)
    #[argh(option)]
    pub name: Option<String>,
    /// the fix to run when the check is not OK (then re-check, and notify if still failing)
    #[argh(option)]
    pub fix: Option<String>,
    /// an argument for the fix, NAME=VALUE (repeatable), e.g. --fix-arg unit=nginx
    #[argh(option)]
    pub fix_arg: Vec<String>,
    /// at most this many fixes per host in the fix window (default 3)
    #[argh(option, default = "3")]
    pub max_fixes: i64,
    /// results that are not OK before a problem is hard, told and fixed (default 1: at once)
    #[argh(option, default = "1")]
    pub retries: i64,
    /// how soon a soft problem is checked again (default: the interval, at most 1m)
    #[argh(option)]
    pub retry_every: Option<String>,
    /// the fix window (default 1h)
    #[argh(option)]
    pub fix_window: Option<String>,
    /// the wait after the first fix, doubled for each further fix in the window (default 30s)
    #[argh(option)]
    pub fix_backoff: Option<String>,
    /// the time limit of each run (default: [sandbox] timeout)
    #[argh(option)]
    pub timeout: Option<String>,
    /// attempts for errors and timeouts, with backoff (default 3)
    #[argh(option, default = "3")]
    pub max_attempts: i64,
    /// queue even when the same script is already queued for the host
    #[argh(switch)]
    pub allow_duplicate: bool,
    /// quorum across sites: each time it is due, the check runs once on a node of each of
    /// these sites (comma-separated: dc1,dc2,dc3); give --quorum too
    #[argh(option)]
    pub sites: Option<String>,
    /// how many of the --sites must see a problem in their latest result for the check to be
    /// one (the message names which site saw what; the fix runs once)
    #[argh(option)]
    pub quorum: Option<i64>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// list schedules
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "schedules")]
pub struct SchedulesCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// cancel a queued or running job, or (with --schedule) remove a schedule
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "cancel")]
pub struct CancelCmd {
    /// the job's id (see `hostler queue`), or the schedule's with --schedule
    #[argh(positional)]
    pub id: i64,
    /// the id is a schedule's (see `hostler schedules`)
    #[argh(switch)]
    pub schedule: bool,
}

fn ms(d: &Option<String>, default: i64) -> anyhow::Result<i64> {
    Ok(match d {
        Some(s) => parse_duration(s)?.as_millis() as i64,
        None => default,
    })
}

pub use crate::when::parse_time;

pub fn schedule(app: &App, cmd: ScheduleCmd) -> anyhow::Result<u8> {
    let timings = [
        cmd.at.is_some(),
        cmd.in_.is_some(),
        cmd.every.is_some(),
        cmd.cron.is_some(),
    ];
    if timings.iter().filter(|t| **t).count() > 1 {
        anyhow::bail!("give one of --at, --in, --every and --cron");
    }
    if [cmd.host.is_some(), cmd.tag.is_some(), cmd.site.is_some()]
        .iter()
        .filter(|t| **t)
        .count()
        > 1
    {
        anyhow::bail!("give one of --host, --tag and --site");
    }
    let when = if let Some(t) = &cmd.at {
        When::At(parse_time(t)?)
    } else if let Some(d) = &cmd.in_ {
        When::At(now_ms() + parse_duration(d)?.as_millis() as i64)
    } else if let Some(d) = &cmd.every {
        When::Every(parse_duration(d)?.as_millis() as i64)
    } else if let Some(c) = &cmd.cron {
        When::Cron(c.clone())
    } else {
        When::Now
    };
    let mut req = Request::new(cmd.script.clone(), when);
    req.fix_script = cmd.fix.clone();
    req.args = crate::queue::parse_args(&cmd.arg)?;
    req.fix_args = crate::queue::parse_args(&cmd.fix_arg)?;
    req.name = cmd.name.clone();
    req.hosts = cmd.host.iter().cloned().collect();
    req.tag = cmd.tag.clone();
    req.site = cmd.site.clone();
    req.priority = cmd.priority;
    req.timeout_ms = cmd
        .timeout
        .as_ref()
        .map(|t| parse_duration(t))
        .transpose()?
        .map(|d| d.as_millis() as i64);
    req.max_attempts = cmd.max_attempts;
    req.guard_max_fixes = cmd.max_fixes;
    req.retries = cmd.retries;
    req.retry_every_ms = match &cmd.retry_every {
        Some(_) => Some(ms(&cmd.retry_every, 0)?),
        None => None,
    };
    req.guard_window_ms = ms(&cmd.fix_window, 3_600_000)?;
    req.guard_backoff_ms = ms(&cmd.fix_backoff, 30_000)?;
    req.allow_duplicate = cmd.allow_duplicate;
    req.sites = crate::store::split_sites(cmd.sites.as_deref());
    req.quorum = cmd.quorum;
    let store = app.store()?;
    match submit(&store, &req)? {
        Submitted::Jobs(queued) if cmd.json => output::json(&queued)?,
        Submitted::Jobs(queued) => {
            for q in &queued {
                let what = if q.new { "queued" } else { "already queued as" };
                output::text(&format!(
                    "{what} job {} ({} on {})",
                    q.job,
                    cmd.script,
                    q.host.as_deref().unwrap_or("no host")
                ))?;
            }
        }
        Submitted::Schedules { ids, next_due } => {
            for id in ids {
                if cmd.json {
                    output::json(&store.schedule(id)?)?;
                } else {
                    output::text(&format!(
                        "schedule {id}: {}, first due {}",
                        cmd.script,
                        output::time(next_due)
                    ))?;
                }
            }
        }
    }
    Ok(0)
}

pub fn schedules(app: &App, cmd: SchedulesCmd) -> anyhow::Result<u8> {
    let list = app.store()?.schedules()?;
    if cmd.json {
        output::json(&list)?;
        return Ok(0);
    }
    let rows: Vec<_> = list
        .iter()
        .map(|s| {
            let with = |script: &str, args: Option<&str>| {
                let words = crate::queue::describe_args(args);
                if words.is_empty() {
                    script.to_string()
                } else {
                    format!("{script} {words}")
                }
            };
            vec![
                s.id.to_string(),
                s.check().to_string(),
                with(&s.script, s.args.as_deref()),
                s.fix_script
                    .as_deref()
                    .map_or("-".into(), |f| with(f, s.fix_args.as_deref())),
                s.host
                    .clone()
                    .or(s.tag.clone().map(|t| format!("tag:{t}")))
                    .or(s.site.clone().map(|t| format!("site:{t}")))
                    .map_or_else(
                        || "-".to_string(),
                        |t| match s.quorum {
                            Some(q) => format!("{t} ({q} of {})", s.sites.join(",")),
                            None => t,
                        },
                    ),
                crate::queue::timing::describe(&s.timing),
                s.priority.to_string(),
                s.next_due
                    .filter(|_| s.enabled)
                    .map_or("-".into(), output::time),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "CHECK", "SCRIPT", "FIX", "TARGET", "WHEN", "PRIO", "NEXT",
        ],
        &rows,
    )?;
    Ok(0)
}

pub fn cancel(app: &App, cmd: CancelCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    if cmd.schedule {
        store.remove_schedule(cmd.id)?;
        output::text(&format!("removed schedule {}", cmd.id))?;
        return Ok(0);
    }
    let msg = match store.cancel_job(cmd.id, &app.config.node())? {
        Cancelled::Removed => format!("cancelled job {} before it started", cmd.id),
        Cancelled::Requested => format!("asked the node running job {} to cancel it", cmd.id),
        Cancelled::AlreadyEnding => format!("job {} is already ending", cmd.id),
    };
    output::text(&msg)?;
    Ok(0)
}

/// change a schedule in place: its check keeps its state, acknowledgement and "failing since"
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "schedule-edit",
    example = "hostler schedule edit 4 --every 30s",
    example = "hostler schedule edit 4 --arg warn=85 --unset-arg path",
    note = "Also written `hostler schedule edit ID`. The script, the target and the check's name stay; to change them, remove the schedule and add another."
)]
pub struct EditCmd {
    /// the schedule's id (see hostler schedules)
    #[argh(positional)]
    pub id: i64,
    /// repeatedly, this often (the next run is due at once)
    #[argh(option)]
    pub every: Option<String>,
    /// on a cron expression
    #[argh(option)]
    pub cron: Option<String>,
    /// once, at this time
    #[argh(option)]
    pub at: Option<String>,
    /// set an argument, NAME=VALUE (repeatable); the others stay
    #[argh(option)]
    pub arg: Vec<String>,
    /// drop an argument (repeatable)
    #[argh(option)]
    pub unset_arg: Vec<String>,
    /// the fix to run (replaces the one it has)
    #[argh(option)]
    pub fix: Option<String>,
    /// no fix any more: only check
    #[argh(switch)]
    pub no_fix: bool,
    /// set an argument of the fix, NAME=VALUE (repeatable)
    #[argh(option)]
    pub fix_arg: Vec<String>,
    /// at most this many fixes per host in the fix window
    #[argh(option)]
    pub max_fixes: Option<i64>,
    /// the fix window
    #[argh(option)]
    pub fix_window: Option<String>,
    /// the wait after the first fix, doubled for each further fix in the window
    #[argh(option)]
    pub fix_backoff: Option<String>,
    /// results that are not OK before a problem is hard
    #[argh(option)]
    pub retries: Option<i64>,
    /// how soon a soft problem is checked again
    #[argh(option)]
    pub retry_every: Option<String>,
    /// the time limit of each run
    #[argh(option)]
    pub timeout: Option<String>,
    /// attempts for errors and timeouts
    #[argh(option)]
    pub max_attempts: Option<i64>,
    /// higher runs first
    #[argh(option)]
    pub priority: Option<i64>,
    /// print the schedule as JSON
    #[argh(switch)]
    pub json: bool,
}

pub fn edit(app: &App, cmd: EditCmd) -> anyhow::Result<u8> {
    let dur = |d: &Option<String>| -> anyhow::Result<Option<i64>> {
        d.as_ref()
            .map(|s| Ok(parse_duration(s)?.as_millis() as i64))
            .transpose()
    };
    let timings = [cmd.every.is_some(), cmd.cron.is_some(), cmd.at.is_some()];
    if timings.iter().filter(|t| **t).count() > 1 {
        anyhow::bail!("give one of --every, --cron and --at");
    }
    let when = if let Some(e) = &cmd.every {
        Some(When::Every(parse_duration(e)?.as_millis() as i64))
    } else if let Some(c) = &cmd.cron {
        Some(When::Cron(c.clone()))
    } else if let Some(a) = &cmd.at {
        Some(When::At(parse_time(a)?))
    } else {
        None
    };
    let e = crate::queue::edit::Edit {
        when,
        args: crate::queue::parse_args(&cmd.arg)?,
        unset_args: cmd.unset_arg.clone(),
        fix: cmd.fix.clone(),
        no_fix: cmd.no_fix,
        fix_args: crate::queue::parse_args(&cmd.fix_arg)?,
        priority: cmd.priority,
        timeout_ms: dur(&cmd.timeout)?,
        max_attempts: cmd.max_attempts,
        guard_max_fixes: cmd.max_fixes,
        guard_window_ms: dur(&cmd.fix_window)?,
        guard_backoff_ms: dur(&cmd.fix_backoff)?,
        retries: cmd.retries,
        retry_every_ms: dur(&cmd.retry_every)?,
        may_give_commands: true,
    };
    let s = crate::queue::edit::edit(&*app.store()?, cmd.id, &e)?;
    if cmd.json {
        output::json(&s)?;
    } else {
        output::text(&format!(
            "schedule {}: {} {}, next {}",
            s.id,
            s.check(),
            crate::queue::timing::describe(&s.timing),
            s.next_due.map_or("-".into(), output::time)
        ))?;
    }
    Ok(0)
}
