//! Running one claimed job on the blocking pool: the script; a soft problem queued again after
//! the schedule's retry interval; for a hard one of a schedule with a fix, unless a downtime
//! covers it, the correction loop (the guard, the fix, re-checks until OK or `recheck_within`,
//! one message per problem); retries with backoff; and what becomes of the job row.
//!
//! Every run is recorded; the job row is deleted, re-queued or released only in the
//! transaction that records the job's last run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::script::{RunRequest, Runner};
use crate::store::depends::Reach;
use crate::store::guard::{FixGuard, fix_guard};
use crate::store::{Alert, Job, JobAction, NewRun, Notice, RunPhase, Schedule, Status, now_ms};

/// Flags the daemon shares with a running job.
#[derive(Debug, Clone, Default)]
pub struct JobFlags {
    /// Stop the script (cancellation or shutdown).
    pub cancel: Arc<AtomicBool>,
    /// The daemon is shutting down: a cancelled job goes back to the queue.
    pub stopping: Arc<AtomicBool>,
    /// Another node took the job over (our lease expired): leave its row alone.
    pub lost: Arc<AtomicBool>,
}

/// How a job's runs are paced: retries after an error, and re-checks after a fix.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// The first retry's wait after an error or timeout, doubled per attempt.
    pub retry_base: Duration,
    /// How long after a fix the re-check may keep trying before the fix is judged failed:
    /// a service that takes a few seconds to start is not a false alarm.
    pub recheck_within: Duration,
    /// Keep the transcripts of OK runs (`[history] ok_transcripts`); by default only runs
    /// that were not OK keep theirs.
    pub ok_transcripts: bool,
}

/// The first wait between re-checks, and the longest.
const RECHECK_FIRST: Duration = Duration::from_millis(500);
const RECHECK_MAX: Duration = Duration::from_secs(5);

/// Retry backoff: `base` doubled per attempt, capped at five minutes.
pub fn backoff(base: Duration, attempt: i64) -> Duration {
    let factor = 1u32 << attempt.clamp(1, 16).saturating_sub(1);
    base.saturating_mul(factor).min(Duration::from_secs(300))
}

fn request(job: &Job, script: &str, timeout: Option<Duration>) -> RunRequest {
    RunRequest {
        script: script.to_string(),
        host: job.host.clone(),
        timeout,
        job_id: Some(job.id),
        schedule_id: job.schedule_id,
        attempt: job.attempts,
        args: job.args.clone(),
        check_name: job.name.clone(),
        fix: false,
    }
}

/// Whether a result is a problem that is not hard yet: not OK, and fewer consecutive such
/// results than the schedule's retries.
fn soft_problem(env: &Runner, job: &Job, sched: &Schedule, run: &NewRun) -> bool {
    if sched.retries <= 1 || matches!(run.status, Status::Ok | Status::Cancelled) {
        return false;
    }
    let attempts = match env.store.check(job.host.as_deref(), job.check()) {
        Ok(c) if c.state != crate::store::CheckState::Ok => c.attempts.saturating_add(1),
        _ => 1,
    };
    attempts < sched.retries
}

/// Queues the check again `after` ms (a soft problem: the schedule's `--retry-every`), and
/// says `why` in the log.
fn recheck_soon(env: &Runner, job: &Job, after: i64, why: &str) {
    let again = crate::store::NewJob {
        script: job.script.clone(),
        host: job.host.clone(),
        priority: job.priority,
        due_at: now_ms().saturating_add(after),
        max_attempts: job.max_attempts,
        timeout_ms: job.timeout_ms,
        schedule_id: job.schedule_id,
        args: job.args.clone(),
        name: job.name.clone(),
    };
    match env
        .store
        .enqueue_for_site(&again, false, job.site.as_deref())
    {
        Ok(_) => info!(job = job.id, "{why}: checked again in {after} ms"),
        Err(e) => warn!(job = job.id, "{why}: cannot queue the re-check: {e}"),
    }
}

/// What becomes of the job after its final run.
fn final_action(run: &NewRun, job: &Job, flags: &JobFlags, pace: Pace) -> JobAction {
    if flags.lost.load(Ordering::Relaxed) {
        return JobAction::Keep;
    }
    match run.status {
        Status::Cancelled if flags.stopping.load(Ordering::Relaxed) => JobAction::Release,
        Status::Error | Status::Timeout if job.attempts < job.max_attempts => JobAction::Retry {
            due_at: now_ms() + backoff(pace.retry_base, job.attempts).as_millis() as i64,
        },
        _ => JobAction::Done,
    }
}

/// Runs a claimed job to its end and records every run: the script, and for a failing check
/// of a schedule with a fix, the correction loop (`correct`). Returns the final status.
pub fn run_job(
    env: &Runner,
    job: &Job,
    schedule: Result<Option<&Schedule>, &str>,
    flags: &JobFlags,
    pace: Pace,
) -> Status {
    let timeout = job
        .timeout_ms
        .map(|ms| Duration::from_millis(ms.max(1) as u64));
    let store = &env.store;
    let record = |mut run: NewRun, phase: Option<RunPhase>, action: JobAction| -> Status {
        run.phase = phase;
        let status = run.status;
        if status == Status::Ok && !pace.ok_transcripts {
            run.transcript.clear();
        }
        // While the database cannot be reached the run waits here, holding its slot, and is
        // recorded once it is back (if its lease expired meanwhile, another node's attempt
        // runs too, and the history shows both); it gives up only when a shutdown's grace
        // period has run out, as a killed node would.
        let shut_down = || {
            flags.stopping.load(std::sync::atomic::Ordering::SeqCst)
                && flags.cancel.load(std::sync::atomic::Ordering::SeqCst)
        };
        if let Err(e) = store.record_run_until(&run, action, &shut_down) {
            warn!(job = job.id, "cannot record the run: {e}");
        }
        status
    };
    let check = env.execute(
        &request(job, &job.script, timeout),
        Some(flags.cancel.clone()),
    );
    info!(job = job.id, script = %job.script, host = ?job.host, status = %check.status, "ran");
    // Without its schedule the job cannot know its fix, retries or guard: the result is
    // recorded as the job's, nothing is fixed or told, and the job is tried again.
    let schedule = match schedule {
        Ok(s) => s,
        Err(e) => {
            return decide_later(job, &record, check, None, "the job's schedule", &e);
        }
    };
    if let Some(sched) = schedule.filter(|s| soft_problem(env, job, s, &check)) {
        // Not hard yet: recorded as soft, told to no one, fixed by nobody; checked again soon.
        let action = final_action(&check, job, flags, pace);
        let phase = sched.fix_script.as_ref().map(|_| RunPhase::Check);
        let status = record(check, phase, action);
        if action == JobAction::Done {
            recheck_soon(env, job, sched.retry_every(), "soft problem");
        }
        return status;
    }
    // Under a quorum the check is a problem only when enough sites see one, and one site
    // fixes it: the first, in the schedule's order, that sees it. The others record.
    if let Some(sched) = schedule.filter(|s| s.quorum.is_some() && s.fix_script.is_some())
        && !matches!(check.status, Status::Ok | Status::Cancelled)
    {
        let result = crate::store::quorum::SiteResult {
            state: crate::store::CheckState::of(check.status)
                .unwrap_or(crate::store::CheckState::Unknown),
            at: check.finished_at,
            message: check.message.clone(),
        };
        let view = match job.site.as_deref() {
            Some(site) => env
                .store
                .quorum_after(job.host.as_deref(), job.check(), sched, site, result)
                .map(|v| v.fixer.filter(|f| f == site).is_some()),
            None => Ok(false),
        };
        match view {
            Ok(true) => {}
            Ok(false) => {
                let action = final_action(&check, job, flags, pace);
                return record(check, Some(RunPhase::Check), action);
            }
            Err(e) => {
                let phase = Some(RunPhase::Check);
                return decide_later(job, &record, check, phase, "the other sites' results", &e);
            }
        }
    }
    // Behind its parents (decided, with what it asks for, in the run's transaction): the
    // problem of a check whose parent is down is recorded, neither fixed nor told; one whose
    // parents are not known to be up waits for their word (the record queues them at once,
    // and the check again a settle time later). Only a fix needs to know before the record.
    if let (Some(sched), Some(host)) = (schedule, job.host.as_deref())
        && sched.fix_script.is_some()
        && !matches!(check.status, Status::Ok | Status::Cancelled)
    {
        match env.store.reach(host, job.check(), check.finished_at) {
            Ok(Reach::Reachable) => {}
            Ok(reach) => {
                info!(job = job.id, ?reach, "behind its parents: no fix");
                let action = final_action(&check, job, flags, pace);
                return record(check, Some(RunPhase::Check), action);
            }
            Err(e) => {
                let phase = Some(RunPhase::Check);
                return decide_later(job, &record, check, phase, "the check's parents", &e);
            }
        }
    }
    let fix = schedule.and_then(|s| s.fix_script.clone().map(|f| (s, f)));
    let Some((sched, fix_script)) = fix else {
        let action = final_action(&check, job, flags, pace);
        return record(check, None, action);
    };
    let failing = !matches!(check.status, Status::Ok | Status::Cancelled);
    if !failing {
        let action = final_action(&check, job, flags, pace);
        return record(check, Some(RunPhase::Check), action);
    }
    // Planned work: the operator stopped it on purpose. The check is recorded, nothing fixed.
    // A downtime that cannot be read is taken as one: no fix runs on a guess.
    match env.store.in_downtime(job.host.as_deref(), job.check()) {
        Ok(false) => {}
        Ok(true) => {
            info!(job = job.id, "in a downtime: the fix does not run");
            return record(check, Some(RunPhase::Check), JobAction::Done);
        }
        Err(e) => {
            return decide_later(job, &record, check, Some(RunPhase::Check), "downtimes", &e);
        }
    }

    correct(
        env,
        job,
        sched,
        &fix_script,
        check,
        flags,
        timeout,
        pace,
        &record,
    )
}

/// How long a job whose decision lacks its data waits before it is tried again.
const DECIDE_LATER: Duration = Duration::from_secs(30);

/// Records a run whose decision could not read what it needs (`what`): nothing is fixed or
/// told on a guess, and the job is tried again once the store may answer.
fn decide_later(
    job: &Job,
    record: &dyn Fn(NewRun, Option<RunPhase>, JobAction) -> Status,
    check: NewRun,
    phase: Option<RunPhase>,
    what: &str,
    e: &dyn std::fmt::Display,
) -> Status {
    warn!(
        job = job.id,
        "cannot read {what} ({e}): no fix, nothing told; trying again in {DECIDE_LATER:?}"
    );
    let due_at = now_ms() + DECIDE_LATER.as_millis() as i64;
    record(check, phase, JobAction::Retry { due_at })
}

/// What the latest fix said (its status, message and the start of its output), for the
/// guard's messages: the cause, not only that the guard stepped in.
fn last_fix_said(env: &Runner, host: Option<&str>, fix_script: &str) -> String {
    let latest = env.store.runs(&crate::store::RunFilter {
        host: host.map(String::from),
        script: Some(fix_script.to_string()),
        limit: 1,
        ..Default::default()
    });
    match latest.as_deref() {
        Ok([fix, ..]) => {
            let output: String = fix.output.chars().take(2000).collect();
            format!(
                "the last fix ({fix_script}, {}) said: {} {}{}",
                crate::when::local(fix.started_at),
                fix.status.as_str().to_uppercase(),
                fix.message,
                if output.trim().is_empty() {
                    String::new()
                } else {
                    format!("\n{}", output.trim_end())
                }
            )
        }
        Ok([]) => format!("{fix_script} has not run in the history kept"),
        Err(e) => format!("the last fix's output could not be read: {e}"),
    }
}

/// The correction loop after a failing check: the guard, the fix, the re-check, and the
/// notification when the fix did not fix it.
#[allow(clippy::too_many_arguments)]
fn correct(
    env: &Runner,
    job: &Job,
    sched: &Schedule,
    fix_script: &str,
    check: NewRun,
    flags: &JobFlags,
    timeout: Option<Duration>,
    pace: Pace,
    record: &dyn Fn(NewRun, Option<RunPhase>, JobAction) -> Status,
) -> Status {
    let store = &env.store;
    let now = now_ms();
    let host = job.host.as_deref();
    // An acknowledged problem tells nothing more until it recovers; the fix still tries.
    // Flapping holds back no message of this loop: a problem the fix cannot mend, or one the
    // guard holds back, is told whether or not the check flaps.
    // Fail safe: without these reads nothing is decided. No fix runs, nothing is told, and
    // the job is tried again once the store answers (it is recorded as a retry).
    // The incident began when the check began to fail (now, if this is its first failure):
    // guard and give-up messages are said once per incident.
    let prev = match store.check(host, job.check()) {
        Ok(c) => Ok((
            c.acked,
            if c.state == crate::store::CheckState::Ok {
                now
            } else {
                c.since
            },
        )),
        Err(crate::store::StoreError::NotFound { .. }) => Ok((false, now)),
        Err(e) => Err(e),
    };
    let reads = prev.and_then(|prev| {
        store
            .fixes_in_window(sched, host, fix_script, now)
            .map(|f| (prev, f))
    });
    let ((quiet, incident), (fixes, last_fix)) = match reads {
        Ok(r) => r,
        Err(e) => {
            return decide_later(
                job,
                record,
                check,
                Some(RunPhase::Check),
                "the check or its fixes",
                &e,
            );
        }
    };
    let target = host.unwrap_or("(no host)");
    match fix_guard(
        sched.guard_max_fixes,
        sched.guard_backoff_ms,
        fixes,
        last_fix,
        now,
    ) {
        FixGuard::Allowed => {}
        FixGuard::Exhausted { fixes } => {
            let subject = format!(
                "{target}: {} still {} after {fixes} fixes; giving up for now",
                job.check(),
                check.status.as_str().to_uppercase()
            );
            let body = format!(
                "The guard allows {} fixes by {fix_script} per {} s; the last check said: {}\n{}",
                sched.guard_max_fixes,
                sched.guard_window_ms / 1000,
                check.message,
                last_fix_said(env, host, fix_script)
            );
            // One escalation per incident, not one per check nor one per window; a failed
            // read tells nothing.
            let mut check = check;
            if !quiet
                && !store
                    .notified_since(host, &subject, incident.min(now - 1))
                    .unwrap_or(true)
            {
                check.notifications.push(Notice {
                    event: Alert::Guard,
                    subject,
                    body,
                });
            }
            return record(check, Some(RunPhase::Check), JobAction::Done);
        }
        FixGuard::Backoff { until } => {
            let held = format!(
                "fix {fix_script} held back by the guard until {} ({fixes} fixes in the last {})",
                crate::when::local(until),
                crate::when::span(Duration::from_millis(sched.guard_window_ms.max(0) as u64)),
            );
            info!(job = job.id, "{held}");
            // Said at once, and once per incident: the problem is not being corrected.
            let subject = format!(
                "{target}: {} is {}; the fix is held back by the guard",
                job.check(),
                check.status.as_str().to_uppercase()
            );
            let mut check = check;
            if !quiet
                && !store
                    .notified_since(host, &subject, incident.min(now - 1))
                    .unwrap_or(true)
            {
                let body = format!(
                    "{held}; the check said: {}\n{}",
                    check.message,
                    last_fix_said(env, host, fix_script)
                );
                check.notifications.push(Notice {
                    event: Alert::Guard,
                    subject,
                    body,
                });
            }
            return record(check, Some(RunPhase::Check), JobAction::Done);
        }
    }
    let check_status = check.status;
    let check_message = check.message.clone();
    record(check, Some(RunPhase::Check), JobAction::Keep);
    let fix_run = env.execute(
        &RunRequest {
            fix: true,
            args: sched.fix_args.clone(),
            ..request(job, fix_script, timeout)
        },
        Some(flags.cancel.clone()),
    );
    let fix_status = fix_run.status;
    let fix_message = fix_run.message.clone();
    record(fix_run, Some(RunPhase::Fix), JobAction::Keep);
    let mut recheck = recheck_until_ok(env, job, flags, timeout, pace, record);
    info!(job = job.id, fix = %fix_status, recheck = %recheck.status, "correction loop");
    // One message per problem, not one per failed loop: once told, the fix goes on trying
    // quietly until the check recovers (which is told) or the guard steps in.
    // A failed read counts as told: a message is never sent on a guess.
    let row = store.check(host, job.check());
    let told = row.as_ref().map_or(true, |c| {
        c.notified && c.state != crate::store::CheckState::Ok
    });
    // Under a quorum: which site saw what.
    let sites_said = match (&row, sched.quorum) {
        (Ok(c), Some(_)) => format!("\nsites: {}", c.message),
        _ => String::new(),
    };
    if !matches!(recheck.status, Status::Ok | Status::Cancelled) && !told && !quiet {
        recheck.notifications.push(Notice {
            event: Alert::FixFailed,
            subject: format!(
                "{target}: {} is {} and {fix_script} did not fix it",
                job.check(),
                recheck.status.as_str().to_uppercase()
            ),
            body: format!(
                "check: {} {check_message}\nfix {fix_script}: {} {fix_message}\nre-check: {} {}{sites_said}",
                check_status.as_str().to_uppercase(),
                fix_status.as_str().to_uppercase(),
                recheck.status.as_str().to_uppercase(),
                recheck.message
            ),
        });
    }
    let action = if flags.lost.load(Ordering::Relaxed) {
        JobAction::Keep
    } else if recheck.status == Status::Cancelled && flags.stopping.load(Ordering::Relaxed) {
        JobAction::Release
    } else {
        JobAction::Done
    };
    record(recheck, Some(RunPhase::Recheck), action)
}

/// Re-checks after a fix until the check is OK or `pace.recheck_within` runs out, waiting
/// 0.5 s, 1 s, 2 s ... (at most 5 s) between tries. Each failing try but the last is recorded
/// as a re-check; the last is returned for the caller to judge and record.
fn recheck_until_ok(
    env: &Runner,
    job: &Job,
    flags: &JobFlags,
    timeout: Option<Duration>,
    pace: Pace,
    record: &dyn Fn(NewRun, Option<RunPhase>, JobAction) -> Status,
) -> NewRun {
    let deadline = Instant::now() + pace.recheck_within;
    let mut wait = RECHECK_FIRST;
    loop {
        let run = env.execute(
            &request(job, &job.script, timeout),
            Some(flags.cancel.clone()),
        );
        let settled = matches!(run.status, Status::Ok | Status::Cancelled)
            || flags.cancel.load(Ordering::Relaxed)
            || Instant::now() + wait > deadline;
        if settled {
            return run;
        }
        info!(job = job.id, status = %run.status, "re-check not OK yet; again in {wait:?}");
        record(run, Some(RunPhase::Recheck), JobAction::Keep);
        sleep_unless(wait, &flags.cancel);
        wait = (wait * 2).min(RECHECK_MAX);
    }
}

/// Sleeps for `d`, or until `stop` is set.
fn sleep_unless(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
