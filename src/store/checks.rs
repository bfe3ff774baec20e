//! Checks as state: each (host, check name) pair a schedule runs (the name is its script's
//! unless the schedule gives one) has a row with its state, kept in the transaction that
//! records each of its runs, and the state machine ([`advance`]) that
//! decides the row and the one message each change is worth.
//!
//! The rules:
//! - a run of a schedule that is not a fix changes its check; a cancelled run changes nothing;
//!   an error or a timeout is UNKNOWN;
//! - a problem (any state but OK) is hard once it has held for the schedule's `retries`
//!   results (1: at once); until then it is soft, and monitord checks again sooner;
//! - a hard problem is told once (`problem`), unless the run is part of a correction loop or
//!   will be retried: then monitord tells it, with what the fix did, and the run carries that
//!   message; either way the check is marked told;
//! - a check that was told and comes back OK tells its recovery once; one never told recovers
//!   in silence (a fix that worked tells nobody);
//! - a told problem that changes state (WARNING to CRITICAL and back) tells the change, with
//!   the state before; "since" of a problem is when the check began to fail;
//! - in a downtime nothing is told (a recovery owed is told after it, a problem that still
//!   holds is told then); an acknowledged problem tells nothing more until it recovers, and
//!   an acknowledgement of a flapping check lasts while it flaps and silences its flapping
//!   messages;
//! - a check that changed state `flap_changes` times within the flapping window is flapping:
//!   one message says so, its problems and recoveries are held, and one message says when it
//!   stops (at half that many changes in the window); what is owed is told after.

use super::statements as st;
use super::{
    Alert, Check, CheckState, Conn, ConnExt, Downtime, JobAction, NewRun, Notice, Row, Store,
    StoreError,
};
use crate::sql::param;

/// One result, as the state machine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub state: CheckState,
    pub at: i64,
    /// The run already carries a message about this problem (from the correction loop).
    pub told: bool,
    /// No one else will tell this problem: no fix or retry follows this run.
    pub may_tell: bool,
    /// A downtime covers the check: nothing is told.
    pub quiet: bool,
    /// A parent is down (see [`super::depends`]): it records, but nothing is told.
    pub unreachable: bool,
    /// Waiting for a parent's word: the problem stays soft.
    pub hold: bool,
}

/// A message a change of state is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A hard problem, told for the first time; failing since `since`.
    Problem { since: i64 },
    /// A told hard problem that changed state (WARNING to CRITICAL and back).
    Changed { was: CheckState, since: i64 },
    /// Back to OK after a told problem that began at `since` in state `was`.
    Recovery { was: CheckState, since: i64 },
    /// It began changing state too often (`changes` within the window).
    FlappingStart { changes: usize },
    /// It stopped.
    FlappingEnd,
}

/// How the state machine judges: the schedule's retries, and when a check is flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Results that are not OK before a problem is hard.
    pub retries: i64,
    /// Changes of state within `flap_window_ms` that make a check flapping (0: never).
    pub flap_changes: usize,
    pub flap_window_ms: i64,
    /// OK runs that change nothing, one after another, share one row (`[history] collapse_ok`).
    pub collapse_ok: bool,
    /// How long a failing check waits for its parents' word (`[monitord] dependency_settle`).
    pub settle: super::depends::Settle,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            retries: 1,
            flap_changes: 6,
            flap_window_ms: 3_600_000,
            collapse_ok: true,
            settle: super::depends::Settle::default(),
        }
    }
}

/// A check's state after one more result, and the message the change is worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    pub state: CheckState,
    pub hard: bool,
    pub attempts: i64,
    pub since: i64,
    pub notified: bool,
    /// Acknowledged: kept while the problem lasts, cleared when it recovers.
    pub acked: bool,
    /// The changes of state within the flapping window, this one included.
    pub changes: Vec<i64>,
    pub flapping: bool,
    pub event: Option<Event>,
}

/// The next state of a check after `o` (None: its first result). A pure function: the
/// property tests drive it directly.
pub fn advance(prev: Option<&Check>, o: &Observation, policy: &Policy) -> Next {
    let retries = policy.retries;
    let ok = o.state == CheckState::Ok;
    let attempts = if ok {
        0
    } else {
        prev.map_or(0, |p| p.attempts).saturating_add(1)
    };
    // Since when it is in this state, or, for a problem, since it began to fail: WARNING
    // then CRITICAL is one problem, since the WARNING.
    let since = match prev {
        Some(p) if p.state == o.state || (p.state != CheckState::Ok && !ok) => p.since,
        _ => o.at,
    };
    let hard = !ok && attempts >= retries.max(1) && !o.hold;
    // Behind a parent that is down, nothing is told, as in a downtime.
    let quiet = o.quiet || o.unreachable;
    let was_told = prev.is_some_and(|p| p.notified);
    let mut changes: Vec<i64> = prev.map_or_else(Vec::new, |p| p.changes.clone());
    if prev.is_some_and(|p| p.state != o.state) {
        changes.push(o.at);
    }
    changes.retain(|t| *t > o.at.saturating_sub(policy.flap_window_ms));
    let was_flapping = prev.is_some_and(|p| p.flapping);
    // In a downtime nothing is told, so nothing starts or stops flapping either.
    let flapping = if quiet {
        was_flapping
    } else {
        policy.flap_changes > 0
            && if was_flapping {
                changes.len() > policy.flap_changes / 2
            } else {
                changes.len() >= policy.flap_changes
            }
    };
    // An acknowledgement lasts while the problem does, and while the check flaps (its OK
    // results do not end it); it silences the flapping messages too.
    let prev_acked = prev.is_some_and(|p| p.acked);
    let acked = prev_acked && (!ok || flapping);
    // The run carries its own message about the problem (from the correction loop).
    let told_now = o.told && !ok;
    let (notified, event) = if flapping != was_flapping && prev_acked && !quiet {
        (was_told || told_now, None)
    } else if flapping && !was_flapping && !quiet {
        (
            was_told || told_now,
            Some(Event::FlappingStart {
                changes: changes.len(),
            }),
        )
    } else if was_flapping && !flapping && !quiet {
        (was_told || told_now, Some(Event::FlappingEnd))
    } else if flapping || quiet {
        (was_told || told_now, None)
    } else if ok {
        let event = prev.filter(|p| p.notified).map(|p| Event::Recovery {
            was: p.state,
            since: p.since,
        });
        (false, event)
    } else if o.told {
        (true, None)
    } else if hard && o.may_tell && !was_told && !acked {
        (true, Some(Event::Problem { since }))
    } else if let Some(was) = prev
        .map(|p| p.state)
        .filter(|s| hard && was_told && !acked && o.may_tell && *s != o.state)
    {
        // Every change of a told problem's state is told, with the one before.
        (true, Some(Event::Changed { was, since }))
    } else {
        (was_told, None)
    };
    Next {
        state: o.state,
        hard,
        attempts,
        since,
        notified,
        acked,
        changes,
        flapping,
        event,
    }
}

pub(super) fn check_from_row(r: &Row) -> Result<Check, StoreError> {
    Ok(Check {
        id: r.int("id")?,
        host: r.opt_text("host")?,
        script: r.text("script")?,
        state: r.text("state")?.parse().map_err(StoreError::Invalid)?,
        hard: r.boolean("hard")?,
        attempts: r.int("attempts")?,
        since: r.int("since")?,
        last_run_id: r.opt_int("last_run_id")?,
        last_run_at: r.int("last_run_at")?,
        message: r.opt_text("message")?.unwrap_or_default(),
        perfdata: r.opt_text("perfdata")?,
        notified: r.boolean("notified")?,
        acked: r.boolean("acked")?,
        ack_comment: r.opt_text("ack_comment")?,
        changes: r
            .opt_text("changes")?
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default(),
        flapping: r.boolean("flapping")?,
        reminded_at: r.opt_int("reminded_at")?,
        unreachable: false,
        parent: None,
    })
}

/// The notice an event is worth.
/// The notice an event is worth: the check is in `state`, saying `message` (under a quorum,
/// the sites' results taken together), as of `at`.
fn notice(
    host: Option<&str>,
    script: &str,
    state: CheckState,
    message: &str,
    at: i64,
    event: Event,
) -> Notice {
    let target = host.unwrap_or("(no host)");
    match event {
        Event::Problem { since } => Notice {
            event: Alert::Problem,
            subject: format!("{target}: {script} is {}", state.as_str().to_uppercase()),
            body: format!(
                "{} since {}: {}",
                state.as_str().to_uppercase(),
                crate::when::local(since),
                message
            ),
        },
        Event::Changed { was, since } => Notice {
            event: Alert::Problem,
            subject: format!(
                "{target}: {script} is {} (was {})",
                state.as_str().to_uppercase(),
                was.as_str().to_uppercase()
            ),
            body: format!(
                "{}, was {}; failing since {}: {}",
                state.as_str().to_uppercase(),
                was.as_str().to_uppercase(),
                crate::when::local(since),
                message
            ),
        },
        Event::FlappingStart { changes } => Notice {
            event: Alert::FlappingStart,
            subject: format!("{target}: {script} is flapping"),
            body: format!(
                "{changes} changes of state lately, now {}: its problems and recoveries are held until it settles. Last: {}",
                state.as_str().to_uppercase(),
                message
            ),
        },
        Event::FlappingEnd => Notice {
            event: Alert::FlappingEnd,
            subject: format!("{target}: {script} is no longer flapping"),
            body: format!("now {}: {}", state.as_str().to_uppercase(), message),
        },
        Event::Recovery { was, since } => Notice {
            event: Alert::Recovery,
            subject: format!("{target}: {script} is OK again"),
            body: format!(
                "OK after {} {}: {}",
                crate::when::span(std::time::Duration::from_millis(
                    at.saturating_sub(since).max(0) as u64
                )),
                was.as_str().to_uppercase(),
                message
            ),
        },
    }
}

/// What a run did to its check.
#[derive(Debug, Clone)]
pub(super) struct Moved {
    pub previous: Option<CheckState>,
    pub state: CheckState,
    pub since: i64,
    /// The message the change is worth, if any.
    pub notice: Option<Notice>,
    /// A parent back from a hard problem: the caller queues its children that still fail at
    /// once (at the end of the transaction, [`super::runs`]).
    pub recheck_children: bool,
    /// Waiting for these parents' word (host, check): the caller queues them at once, and
    /// this check again after the settle time, once the job is done.
    pub waiting: Vec<(String, String)>,
    /// The loop's messages the run carries that this incident already told: not told again.
    pub told_before: Vec<Alert>,
}

/// In the transaction that records `run` (as `run_id`): moves its check. Runs that are not a
/// schedule's check (ad-hoc runs, fixes, cancelled runs) change nothing and give None.
pub(super) fn record(
    c: &mut dyn Conn,
    run: &NewRun,
    run_id: i64,
    action: JobAction,
    policy: Policy,
    // The check's row, when the caller read it in this transaction (Some(None): there is none).
    known: Option<Option<Row>>,
    reads: &mut TxReads,
) -> Result<Option<Moved>, StoreError> {
    let Some(state) = CheckState::of(run.status) else {
        return Ok(None);
    };
    // A schedule's run, or a result pushed from outside (no schedule: hard at once).
    let passive = run.phase == Some(super::RunPhase::Passive);
    if run.phase == Some(super::RunPhase::Fix) || (run.schedule_id.is_none() && !passive) {
        return Ok(None);
    }
    let host = run.host.as_deref();
    let prev_row = match known {
        Some(row) => row,
        None => c.query_one(st::check_for_update(host, run.check()))?,
    };
    let prev = prev_row.as_ref().map(check_from_row).transpose()?;
    // A removed schedule's last runs judge as at once.
    let sched = match run.schedule_id {
        Some(schedule) => reads.schedule(c, schedule)?,
        None => None,
    };
    let retries = sched
        .as_ref()
        .map(|r| r.int("retries"))
        .transpose()?
        .unwrap_or(1);
    // Under a quorum the check is the sites' results taken together: this run is its site's.
    let (state, message, sites) = match sched
        .as_ref()
        .map(|r| r.opt_int("quorum"))
        .transpose()?
        .flatten()
    {
        Some(quorum) => {
            let job_site = match run.job_id {
                Some(j) => c
                    .query_one(st::job_by_id(j))?
                    .map(|r| r.opt_text("site"))
                    .transpose()?
                    .flatten(),
                None => None,
            };
            // A run that is no site's (an ad-hoc one) does not move a quorum's check.
            let Some(site) = job_site else {
                return Ok(None);
            };
            let names = super::split_sites(
                sched
                    .as_ref()
                    .map(|r| r.opt_text("sites"))
                    .transpose()?
                    .flatten()
                    .as_deref(),
            );
            let mut results = super::quorum::parse(
                prev_row
                    .as_ref()
                    .map(|r| r.opt_text("sites"))
                    .transpose()?
                    .flatten()
                    .as_deref(),
            );
            results.retain(|s, _| names.contains(s));
            results.insert(
                site,
                super::quorum::SiteResult {
                    state,
                    at: run.finished_at,
                    message: run.message.clone(),
                },
            );
            let v = super::quorum::view(&results, &names, quorum);
            (
                v.state,
                v.message,
                Some(serde_json::json!(results).to_string()),
            )
        }
        None => (state, run.message.clone(), None),
    };
    // Behind its parents: a problem is judged by them in this same transaction.
    let reach = match host {
        Some(h) if state != CheckState::Ok => {
            let since = prev
                .as_ref()
                .filter(|p| p.state != CheckState::Ok)
                .map_or(run.finished_at, |p| p.since);
            super::depends::reach_in(c, h, run.check(), since, run.finished_at, policy.settle)?
        }
        _ => super::depends::Reach::Reachable,
    };
    let o = Observation {
        state,
        at: run.finished_at,
        unreachable: matches!(reach, super::depends::Reach::Unreachable { .. }),
        hold: matches!(reach, super::depends::Reach::Pending { .. }),
        told: run
            .notifications
            .iter()
            .any(|n| matches!(n.event, Alert::FixFailed | Alert::Guard | Alert::GiveUp)),
        may_tell: (run.phase.is_none() || passive) && !matches!(action, JobAction::Retry { .. }),
        quiet: false,
    };
    let policy = Policy { retries, ..policy };
    // The downtimes are read only when one would change the outcome: an OK run of a check
    // that is OK, untold and steady comes to the same either way.
    let next = advance(prev.as_ref(), &o, &policy);
    let hushed = advance(
        prev.as_ref(),
        &Observation {
            quiet: true,
            ..o.clone()
        },
        &policy,
    );
    let next = if next == hushed || !reads.in_downtime(c, host, run.check(), run.finished_at)? {
        next
    } else {
        hushed
    };
    // The guard's messages, once per incident (keyed by event and the incident's "since").
    let mut told: std::collections::BTreeMap<String, i64> = prev_row
        .as_ref()
        .map(|r| r.opt_text("told"))
        .transpose()?
        .flatten()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    told.retain(|_, since| *since == next.since && next.state != CheckState::Ok);
    let mut told_before = Vec::new();
    for n in &run.notifications {
        if matches!(n.event, Alert::Guard | Alert::GiveUp) {
            let key = n.event.as_str().to_string();
            if told.get(&key) == Some(&next.since) {
                told_before.push(n.event);
            } else {
                told.insert(key, next.since);
            }
        }
    }
    let values = vec![
        ("state", param(next.state.as_str())),
        ("hard", param(next.hard)),
        ("attempts", param(next.attempts)),
        ("since", param(next.since)),
        ("last_run_id", param(run_id)),
        ("last_run_at", param(run.finished_at)),
        ("message", param(message.as_str())),
        ("perfdata", param(run.perfdata.clone())),
        ("sites", param(sites)),
        (
            "told",
            param((!told.is_empty()).then(|| serde_json::json!(told).to_string())),
        ),
        ("notified", param(next.notified)),
        ("acked", param(next.acked)),
        (
            "changes",
            param(serde_json::json!(next.changes).to_string()),
        ),
        ("flapping", param(next.flapping)),
        (
            "ack_comment",
            param(
                prev.as_ref()
                    .and_then(|p| p.ack_comment.clone())
                    .filter(|_| next.acked),
            ),
        ),
    ];
    match &prev {
        Some(p) => {
            c.exec(st::check_update(p.id, values))?;
        }
        None => {
            let mut values = values;
            values.push(("host", param(host)));
            values.push(("script", param(run.check())));
            c.insert(st::check_insert(values))?;
        }
    }
    // A parent back from a hard problem: its children that still fail are checked at once
    // (those that recovered with it were never told, so nothing is said of them).
    let recheck_children = host.is_some()
        && prev
            .as_ref()
            .is_some_and(|p| p.hard && p.state != CheckState::Ok && next.state == CheckState::Ok);
    let waiting = match reach {
        super::depends::Reach::Pending { parents } => parents,
        _ => Vec::new(),
    };
    Ok(Some(Moved {
        recheck_children,
        waiting,
        told_before,
        previous: prev.as_ref().map(|p| p.state),
        state: next.state,
        since: next.since,
        notice: next
            .event
            .map(|e| notice(host, run.check(), next.state, &message, run.finished_at, e)),
    }))
}

/// Whether a downtime covers a host's check of a script at `at`, within a unit of work: one
/// of the check itself, or (`--children`) of a check it depends on.
pub(super) fn in_downtime(
    c: &mut dyn Conn,
    host: Option<&str>,
    script: &str,
    at: i64,
) -> Result<bool, StoreError> {
    let windows = downtimes_from(c, at)?;
    covered_by(c, &windows, host, script, at)
}

/// The downtimes that had not ended at `at`.
fn downtimes_from(c: &mut dyn Conn, at: i64) -> Result<Vec<Downtime>, StoreError> {
    c.query(st::downtime_list(at))?
        .iter()
        .map(downtime_from_row)
        .collect()
}

/// Whether one of `windows` covers the check at `at`.
fn covered_by(
    c: &mut dyn Conn,
    windows: &[Downtime],
    host: Option<&str>,
    script: &str,
    at: i64,
) -> Result<bool, StoreError> {
    if windows
        .iter()
        .all(|d| !(d.starts_at <= at && at < d.ends_at))
    {
        return Ok(false);
    }
    let deps: Vec<super::Dependency> = if host.is_some() && windows.iter().any(|d| d.children) {
        c.query(st::dependency_list())?
            .iter()
            .map(super::depends::dependency_from_row)
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let mut tags = |h: Option<&str>| -> Result<Vec<String>, StoreError> {
        Ok(match h {
            Some(h) => c
                .query_one(st::host_by_name(h))?
                .map(|r| super::hosts::host_from_row(&r))
                .transpose()?
                .map(|h| h.tags)
                .unwrap_or_default(),
            None => Vec::new(),
        })
    };
    super::downtimes::covered(windows, &deps, host, script, at, &mut tags)
}

/// What the runs recorded in one transaction read once for all of them: a group commit of
/// hundreds of runs reads each schedule and the downtimes once, not once a run.
#[derive(Default)]
pub(super) struct TxReads {
    /// Each schedule's retries, sites and quorum, by id (None: it was removed).
    schedules: std::collections::HashMap<i64, Option<Row>>,
    /// The downtimes that had not ended at the time it holds.
    downtimes: Option<(i64, Vec<Downtime>)>,
}

impl TxReads {
    fn schedule(&mut self, c: &mut dyn Conn, id: i64) -> Result<Option<Row>, StoreError> {
        if let Some(row) = self.schedules.get(&id) {
            return Ok(row.clone());
        }
        let row = c.query_one(st::schedule_retries(id))?;
        self.schedules.insert(id, row.clone());
        Ok(row)
    }

    /// Whether a downtime covers the check at `at`: the windows read once, from the earliest
    /// time asked (a run that finished before it reads them again from its own).
    fn in_downtime(
        &mut self,
        c: &mut dyn Conn,
        host: Option<&str>,
        script: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let windows = match self.downtimes.take() {
            Some((from, w)) if from <= at => (from, w),
            _ => (at, downtimes_from(c, at)?),
        };
        let covered = covered_by(c, &windows.1, host, script, at);
        self.downtimes = Some(windows);
        covered
    }
}

pub(super) fn downtime_from_row(r: &Row) -> Result<Downtime, StoreError> {
    Ok(Downtime {
        id: r.int("id")?,
        host: r.opt_text("host")?,
        tag: r.opt_text("tag")?,
        script: r.opt_text("script")?,
        starts_at: r.int("starts_at")?,
        ends_at: r.int("ends_at")?,
        reason: r.text("reason")?,
        author: r.opt_text("author")?,
        created_at: r.int("created_at")?,
        children: r.boolean("children")?,
    })
}

/// Problems first: hard before soft, then the longest failing; then the OK checks, by host and
/// script. How `hostler status`, the dashboard and the API list checks.
pub fn problems_first(checks: &mut [Check]) {
    checks.sort_by(|a, b| {
        let rank = |c: &Check| match (c.state == CheckState::Ok, c.hard) {
            (false, true) => 0,
            (false, false) => 1,
            (true, _) => 2,
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| {
                if a.state == CheckState::Ok {
                    std::cmp::Ordering::Equal
                } else {
                    a.since.cmp(&b.since)
                }
            })
            .then_with(|| a.host.cmp(&b.host))
            .then_with(|| a.script.cmp(&b.script))
    });
}

impl Store {
    /// Every check, by host then script.
    pub fn checks(&self) -> Result<Vec<Check>, StoreError> {
        let (mut checks, deps) = self.read(|c| {
            let checks = c
                .query(st::check_list())?
                .iter()
                .map(check_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let deps = c
                .query(st::dependency_list())?
                .iter()
                .map(super::depends::dependency_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((checks, deps))
        })?;
        super::depends::mark_unreachable(&mut checks, &deps);
        Ok(checks)
    }

    /// One check: a host's (or, with None, the host-less) check of a script.
    pub fn check(&self, host: Option<&str>, script: &str) -> Result<Check, StoreError> {
        self.read(|c| c.query_one(st::check_get(host, script)))?
            .map(|r| check_from_row(&r))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "check",
                name: format!("{}/{script}", host.unwrap_or("-")),
            })
    }
}
