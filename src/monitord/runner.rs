//! Running one claimed job on the blocking pool: the script, then what [`policy::decide`]
//! says of its result, carried out: a soft problem queued again after the schedule's retry
//! interval; a decision that lacks a read recorded as a retry; the guard's message; the
//! correction loop (the fix, re-checks until OK or `recheck_within`, one message per
//! problem); retries with backoff; and what becomes of the job row.
//!
//! Every run is recorded; the job row is deleted, re-queued or released only in the
//! transaction that records the job's last run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::script::{RunRequest, Runner};
use crate::store::depends::Reach;
use crate::store::guard::FixGuard;
use crate::store::policy::{self, Decision, Rules};
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
    /// Where its runs are recorded, many to a transaction (None: each on its own).
    pub writer: Option<Arc<super::writer::RunWriter>>,
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
        host_row: job.host_row.clone(),
        versions: job.versions.clone(),
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
        let recorded = match &flags.writer {
            None => store.record_run_until(&run, action, &shut_down, false),
            Some(w) => match w.record(run, action) {
                Ok(id) => Ok(id),
                // Not recorded with the others: on its own, looking for it first when the
                // database went away (its commit may have gone through).
                Err((e, Some(run))) => {
                    let unsure = matches!(e, crate::store::StoreError::Unreachable(_));
                    store.record_run_until(&run, action, &shut_down, unsure)
                }
                Err((e, None)) => Err(e),
            },
        };
        if let Err(e) = recorded {
            warn!(job = job.id, "cannot record the run: {e}");
        }
        status
    };
    let check = env.execute(
        &request(job, &job.script, timeout),
        Some(flags.cancel.clone()),
    );
    // One line a run at debug: at thousands of runs a second, info gets a summary a minute.
    tracing::debug!(job = job.id, script = %job.script, host = ?job.host, status = %check.status, "ran");
    let now = now_ms();
    let sched = schedule.ok().flatten();
    let failing = !matches!(check.status, Status::Ok | Status::Cancelled);
    let facts = Live {
        env,
        job,
        sched,
        run: &check,
    };
    let rules = schedule.map(|s| s.map(Rules::of)).map_err(String::from);
    let decision = policy::decide(failing, rules, &facts, now);
    // A schedule with a fix records its check's runs as the loop's first phase.
    let phase = sched
        .and_then(|s| s.fix_script.as_ref())
        .map(|_| RunPhase::Check);
    match decision {
        Decision::Record => {
            let action = final_action(&check, job, flags, pace);
            record(check, phase, action)
        }
        Decision::Soft => {
            // Not hard yet: recorded as soft, told to no one, fixed by nobody; checked again.
            let action = final_action(&check, job, flags, pace);
            let status = record(check, phase, action);
            if let Some(s) = sched.filter(|_| action == JobAction::Done) {
                recheck_soon(env, job, s.retry_every(), "soft problem");
            }
            status
        }
        Decision::Later { what, error } => {
            // Without its schedule the job cannot know its fix, retries or guard.
            let phase = if sched.is_some() { phase } else { None };
            decide_later(job, &record, check, phase, what, &error)
        }
        Decision::Behind(reach) => {
            info!(job = job.id, ?reach, "behind its parents: no fix");
            let action = final_action(&check, job, flags, pace);
            record(check, phase, action)
        }
        Decision::Downtime => {
            // Planned work: the operator stopped it on purpose.
            info!(job = job.id, "in a downtime: the fix does not run");
            record(check, phase, JobAction::Done)
        }
        Decision::Held {
            guard,
            fixes,
            acked,
        } => match sched.and_then(|s| s.fix_script.as_deref().map(|f| (s, f))) {
            Some((s, fix)) => {
                let held_by = Held {
                    guard,
                    fixes,
                    acked,
                };
                held(env, job, s, fix, check, held_by, &record)
            }
            None => record(check, phase, JobAction::Done),
        },
        Decision::Fix { acked, .. } => {
            match sched.and_then(|s| s.fix_script.as_deref().map(|f| (s, f))) {
                Some((s, fix)) => correct(
                    env, job, s, fix, check, flags, timeout, pace, acked, &record,
                ),
                None => record(check, phase, JobAction::Done),
            }
        }
    }
}

/// The facts [`policy::decide`] asks for, read from the store as it asks.
struct Live<'a> {
    env: &'a Runner,
    job: &'a Job,
    sched: Option<&'a Schedule>,
    run: &'a NewRun,
}

impl policy::Facts for Live<'_> {
    fn soft(&self) -> bool {
        self.sched
            .is_some_and(|s| soft_problem(self.env, self.job, s, self.run))
    }

    fn quorum_fixer(&self) -> Option<policy::Read<bool>> {
        let sched = self.sched.filter(|s| s.quorum.is_some())?;
        let Some(site) = self.job.site.as_deref() else {
            return Some(Ok(false));
        };
        let result = crate::store::quorum::SiteResult {
            state: crate::store::CheckState::of(self.run.status)
                .unwrap_or(crate::store::CheckState::Unknown),
            at: self.run.finished_at,
            message: self.run.message.clone(),
        };
        Some(
            self.env
                .store
                .quorum_after(
                    self.job.host.as_deref(),
                    self.job.check(),
                    sched,
                    site,
                    result,
                )
                .map(|v| v.fixer.is_some_and(|f| f == site))
                .map_err(|e| e.to_string()),
        )
    }

    fn reach(&self) -> policy::Read<Reach> {
        match self.job.host.as_deref() {
            Some(host) => self
                .env
                .store
                .reach(host, self.job.check(), self.run.finished_at)
                .map_err(|e| e.to_string()),
            None => Ok(Reach::Reachable),
        }
    }

    fn in_downtime(&self) -> policy::Read<bool> {
        self.env
            .store
            .in_downtime(self.job.host.as_deref(), self.job.check())
            .map_err(|e| e.to_string())
    }

    fn acked(&self) -> policy::Read<bool> {
        match self
            .env
            .store
            .check(self.job.host.as_deref(), self.job.check())
        {
            Ok(c) => Ok(c.acked),
            Err(crate::store::StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    fn fixes(&self) -> policy::Read<(i64, Option<i64>)> {
        let Some((sched, fix)) = self
            .sched
            .and_then(|s| s.fix_script.as_deref().map(|f| (s, f)))
        else {
            return Ok((0, None));
        };
        self.env
            .store
            .fixes_in_window(sched, self.job.host.as_deref(), fix, now_ms())
            .map_err(|e| e.to_string())
    }
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

/// What the policy said of a fix the guard holds back.
struct Held {
    guard: FixGuard,
    fixes: i64,
    acked: bool,
}

/// The guard holds the fix back (`guard`): the check is recorded with the guard's message
/// (unless acknowledged; told once per incident by the store), which carries the cause: what
/// the check and the last fix said.
fn held(
    env: &Runner,
    job: &Job,
    sched: &Schedule,
    fix_script: &str,
    mut check: NewRun,
    by: Held,
    record: &dyn Fn(NewRun, Option<RunPhase>, JobAction) -> Status,
) -> Status {
    let Held {
        guard,
        fixes,
        acked,
    } = by;
    let host = job.host.as_deref();
    let target = host.unwrap_or("(no host)");
    let state = check.status.as_str().to_uppercase();
    let (event, subject, body) = match guard {
        FixGuard::Allowed => return record(check, Some(RunPhase::Check), JobAction::Done),
        FixGuard::Exhausted { .. } => (
            Alert::GiveUp,
            format!(
                "{target}: {} still {state} after {fixes} fixes; giving up for now",
                job.check()
            ),
            format!(
                "The guard allows {} fixes by {fix_script} per {} s; the last check said: {}\n{}",
                sched.guard_max_fixes,
                sched.guard_window_ms / 1000,
                check.message,
                last_fix_said(env, host, fix_script)
            ),
        ),
        FixGuard::Backoff { until } => {
            let held = format!(
                "fix {fix_script} held back by the guard until {} ({fixes} fixes in the last {})",
                crate::when::local(until),
                crate::when::span(Duration::from_millis(sched.guard_window_ms.max(0) as u64)),
            );
            info!(job = job.id, "{held}");
            (
                Alert::Guard,
                format!(
                    "{target}: {} is {state}; the fix is held back by the guard",
                    job.check()
                ),
                format!(
                    "{held}; the check said: {}\n{}",
                    check.message,
                    last_fix_said(env, host, fix_script)
                ),
            )
        }
    };
    // Said at once, unless acknowledged: the problem is not being corrected. The store tells
    // each of these once per incident (since the check began to fail), in the run's
    // transaction, keyed by the event.
    if !acked {
        check.notifications.push(Notice {
            event,
            subject,
            body,
        });
    }
    record(check, Some(RunPhase::Check), JobAction::Done)
}

/// The correction loop after a failing check the policy lets fix: the fix, the re-checks,
/// and the message when the fix did not fix it (unless the problem is acknowledged:
/// `quiet`). Flapping holds back no message of this loop.
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
    quiet: bool,
    record: &dyn Fn(NewRun, Option<RunPhase>, JobAction) -> Status,
) -> Status {
    let store = &env.store;
    let host = job.host.as_deref();
    let target = host.unwrap_or("(no host)");
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
