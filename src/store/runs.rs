//! Run history and notifications.

use super::statements as st;
use super::{
    Check, Conn, ConnExt, JobAction, Notice, Notification, Row, Run, RunFilter, RunPhase, Status,
    Store, StoreError, now_ms,
};
use crate::sql::param;

fn run_from_row(r: &Row) -> Result<Run, StoreError> {
    Ok(Run {
        id: r.int("id")?,
        job_id: r.opt_int("job_id")?,
        schedule_id: r.opt_int("schedule_id")?,
        script: r.text("script")?,
        script_version: r.opt_int("script_version")?,
        host: r.opt_text("host")?,
        node: r.opt_text("node")?,
        status: r.text("status")?.parse().map_err(StoreError::Db)?,
        message: r.text("message")?,
        perfdata: r.opt_text("perfdata")?,
        // Lists select a summary without these two.
        output: if r.has("output") {
            r.text("output")?
        } else {
            String::new()
        },
        transcript: if r.has("transcript") {
            r.text("transcript")?
        } else {
            String::new()
        },
        started_at: r.int("started_at")?,
        finished_at: r.int("finished_at")?,
        attempt: r.int("attempt")?,
        phase: r
            .opt_text("phase")?
            .map(|p| p.parse())
            .transpose()
            .map_err(StoreError::Invalid)?,
        check_name: r.opt_text("check_name")?,
        repeats: r.opt_int("repeats")?.unwrap_or(1),
    })
}

fn notification_from_row(r: &Row) -> Result<Notification, StoreError> {
    Ok(Notification {
        id: r.int("id")?,
        run_id: r.opt_int("run_id")?,
        host: r.opt_text("host")?,
        event: r
            .opt_text("event")?
            .map(|e| e.parse())
            .transpose()
            .map_err(StoreError::Invalid)?,
        details: r
            .opt_text("details")?
            .and_then(|d| serde_json::from_str(&d).ok()),
        subject: r.text("subject")?,
        body: r.text("body")?,
        channel: r.opt_text("sent")?.or(r.opt_text("channel")?),
        created_at: r.int("created_at")?,
        delivered_at: r.opt_int("delivered_at")?,
        error: r.opt_text("error")?,
        tries: r.int("tries")?,
        next_try_at: r.opt_int("next_try_at")?,
    })
}

/// How many runs ended with a status since the database was made, and their summed duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub status: Status,
    pub runs: i64,
    pub ms: i64,
}

/// Figures for /metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStats {
    pub by_status: Vec<StatusCount>,
    /// Notifications whose last delivery attempt failed.
    pub failed_notifications: i64,
}

/// A finished run to record, with the notifications its script raised.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub job_id: Option<i64>,
    pub schedule_id: Option<i64>,
    pub script: String,
    pub script_version: Option<i64>,
    pub host: Option<String>,
    pub node: Option<String>,
    pub status: Status,
    pub message: String,
    pub perfdata: Option<String>,
    pub output: String,
    pub transcript: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub attempt: i64,
    /// Set by monitord alone, which knows the correction loop; a script never does.
    pub phase: Option<RunPhase>,
    /// The messages it raised: a script's notify(), or monitord's about its correction loop.
    pub notifications: Vec<Notice>,
    /// The check it is a run of, when not named after its script (a schedule's `--name`).
    pub check_name: Option<String>,
}

impl NewRun {
    /// The name of the check it is a run of: its own, else its script's.
    pub fn check(&self) -> &str {
        self.check_name.as_deref().unwrap_or(&self.script)
    }

    /// The record of a job that ends cancelled without running.
    pub fn cancelled(job: &super::Job, node: &str, message: &str, at: i64) -> NewRun {
        NewRun {
            job_id: Some(job.id),
            schedule_id: job.schedule_id,
            script: job.script.clone(),
            script_version: None,
            host: job.host.clone(),
            node: Some(node.to_string()),
            status: Status::Cancelled,
            message: message.to_string(),
            perfdata: None,
            output: String::new(),
            transcript: String::new(),
            started_at: at,
            finished_at: at,
            attempt: job.attempts,
            phase: None,
            notifications: Vec::new(),
            check_name: job.name.clone(),
        }
    }

    /// A result from outside at `at` (a pushed result, a heartbeat's ping or its missing),
    /// recorded by `node`: it moves its check (host, name) with no schedule.
    pub fn passive(
        host: Option<&str>,
        check: &str,
        node: &str,
        status: Status,
        message: String,
        at: i64,
    ) -> NewRun {
        NewRun {
            job_id: None,
            schedule_id: None,
            script: check.to_string(),
            script_version: None,
            host: host.map(String::from),
            node: Some(node.to_string()),
            status,
            message,
            perfdata: None,
            output: String::new(),
            transcript: String::new(),
            started_at: at,
            finished_at: at,
            attempt: 1,
            phase: Some(RunPhase::Passive),
            notifications: Vec::new(),
            check_name: None,
        }
    }
}

/// What recording runs in one transaction leaves for after its commit.
#[derive(Default)]
pub(super) struct Recorded {
    /// Run keys made in the transaction.
    keys: Vec<(KeyNames, i64)>,
    /// Checks queued again at once (their parents', or their own after the settle time).
    rechecks: usize,
    /// The checks to queue again once the jobs' rows are written ([`Recorded::finish`]), so
    /// that each sees the queue as the transaction leaves it.
    later: Vec<Recheck>,
    /// Jobs put back in the queue (a retry, a job released): the daemon reads the queue again.
    requeued: bool,
    /// What the runs add to the totals.
    totals: Vec<(TotalKey, (i64, i64))>,
    /// What the runs read once for all of them.
    reads: super::checks::TxReads,
    /// Whose stripes of the totals the runs count in.
    lane: Lane,
    /// The transaction's turn among them ([`Store::recorded`]): all its runs count in that
    /// one stripe.
    turn: i64,
    /// What becomes of the runs' jobs, by the node that holds each: written together at the
    /// end, in job id order ([`Recorded::finish`]).
    jobs: Vec<JobWrite>,
}

/// A check to queue again at the end of the transaction.
#[derive(Debug, Clone)]
enum Recheck {
    /// The children of a parent back from a hard problem that still fail, at once.
    ChildrenOf {
        host: String,
        check: String,
        at: i64,
    },
    /// One check (a parent whose word a child waits for, or the child itself), due then.
    One {
        host: String,
        check: String,
        at: i64,
        due_at: i64,
    },
}

/// What a recorded run does to its job's row, at the end of the transaction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct JobWrite {
    job: i64,
    owner: String,
    to: JobTo,
}

/// Where a recorded run's job goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum JobTo {
    /// Deleted, on the condition of this node's lease.
    Done,
    /// Back in the queue, due then; `release` gives the attempt back.
    Requeue { due_at: i64, release: bool },
    /// Deleted whoever holds it (the reaper's).
    Reap,
}

/// One of several writers that record runs at the same time (PostgreSQL): each counts its runs
/// in stripes of the totals of its own, so that two never wait on each other's rows (and so
/// can never deadlock with each other and a lease renewal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    pub index: usize,
    pub of: usize,
}

impl Default for Lane {
    /// The only writer: every stripe.
    fn default() -> Lane {
        Lane { index: 0, of: 1 }
    }
}

impl Lane {
    /// The stripe run `id` counts in: one of this lane's, spread by the id.
    fn stripe(self, id: i64) -> i64 {
        let of = (self.of.clamp(1, st::TOTAL_STRIPES as usize)) as i64;
        let index = (self.index as i64).rem_euclid(of);
        // This lane's stripes: index, index + of, ...
        let mine = (st::TOTAL_STRIPES - index + of - 1) / of;
        index + of * id.rem_euclid(mine)
    }
}

/// A status and a stripe of the totals; with it, the runs and their milliseconds.
type TotalKey = (Status, i64);

impl Recorded {
    fn total(&mut self, status: Status, ms: i64) {
        let key = (status, self.lane.stripe(self.turn));
        match self.totals.iter_mut().find(|(k, _)| *k == key) {
            Some((_, (n, t))) => {
                *n += 1;
                *t += ms;
            }
            None => self.totals.push((key, (1, ms))),
        }
    }

    /// What the runs recorded leave to the end of their transaction: their jobs' rows
    /// written, then the checks they queue again (which see those jobs done, retried or
    /// released, as a node that looks next would), then the totals.
    ///
    /// The checks are queued in one order, by host and check, whichever run asked and
    /// whether for itself or as a parent's child: two writers that queue the same checks
    /// take their rows in the same order, so neither waits on the other in a cycle.
    pub(super) fn finish(&mut self, c: &mut dyn Conn) -> Result<(), StoreError> {
        self.write_jobs(c)?;
        let mut queue: Vec<(String, String, i64, i64)> = Vec::new();
        for r in std::mem::take(&mut self.later) {
            match r {
                Recheck::ChildrenOf { host, check, at } => queue.extend(
                    super::depends::failing_children_in(c, &host, &check)?
                        .into_iter()
                        .map(|(h, ch)| (h, ch, at, at)),
                ),
                Recheck::One {
                    host,
                    check,
                    at,
                    due_at,
                } => queue.push((host, check, at, due_at)),
            }
        }
        queue.sort();
        for (host, check, at, due_at) in queue {
            self.rechecks += usize::from(super::depends::recheck_in(c, &host, &check, at, due_at)?);
        }
        self.add_totals(c)
    }

    /// Writes the jobs of the runs recorded, in id order (a lease renewal never waits for
    /// them: it skips the rows a writer holds). A done job is deleted on the condition of its
    /// node's lease (a job another node took over is theirs), as many a statement as the
    /// dialect binds as one list ([`super::jobs::list_chunk`]).
    fn write_jobs(&mut self, c: &mut dyn Conn) -> Result<(), StoreError> {
        self.jobs.sort_unstable();
        let chunk = super::jobs::list_chunk(c.dialect());
        for same in self
            .jobs
            .chunk_by(|a, b| a.to == JobTo::Done && b.to == JobTo::Done && a.owner == b.owner)
        {
            let owner = same[0].owner.as_str();
            match same[0].to {
                JobTo::Done => {
                    let ids: Vec<i64> = same.iter().map(|w| w.job).collect();
                    for ids in ids.chunks(chunk) {
                        c.exec(st::jobs_done(ids, owner))?;
                    }
                }
                JobTo::Requeue { due_at, release } => {
                    c.exec(st::job_requeue(same[0].job, due_at, release, owner))?;
                }
                JobTo::Reap => {
                    c.exec(st::job_delete(same[0].job))?;
                }
            }
        }
        self.jobs.clear();
        Ok(())
    }

    /// Adds the runs recorded to the totals, a statement per status and stripe.
    fn add_totals(&mut self, c: &mut dyn Conn) -> Result<(), StoreError> {
        // In one order everywhere: two transactions that count in the same rows (two nodes')
        // wait for each other, never in a cycle.
        self.totals
            .sort_by(|((a, x), _), ((b, y), _)| (a.as_str(), x).cmp(&(b.as_str(), y)));
        for ((status, stripe), (n, ms)) in self.totals.drain(..) {
            c.exec(st::run_totals_add(status.as_str(), stripe, n, ms))?;
        }
        Ok(())
    }
}

/// A notification's fields, from its run and what the run did to its check.
fn details(run: &NewRun, moved: Option<&super::checks::Moved>) -> serde_json::Value {
    let state = moved.map_or(run.status.as_str(), |m| m.state.as_str());
    serde_json::json!({
        "check": run.check(),
        "state": state,
        "previous_state": moved.and_then(|m| m.previous).map(|p| p.as_str()),
        "since": moved.map(|m| m.since),
        "message": run.message,
        "perfdata": run.perfdata,
    })
}

/// What a run's row says of it alone (a row that joins runs takes these again).
fn run_values(run: &NewRun) -> Vec<(&'static str, crate::sql::Expr)> {
    vec![
        ("job_id", param(run.job_id)),
        ("script_version", param(run.script_version)),
        ("node", param(run.node.clone())),
        ("message", param(run.message.as_str())),
        ("perfdata", param(run.perfdata.clone())),
        ("output", param(run.output.as_str())),
        ("started_at", param(run.started_at)),
        ("finished_at", param(run.finished_at)),
        ("attempt", param(run.attempt)),
    ]
}

/// Inserts a run's row (not its notifications, not its job action), naming its host, script
/// and check by `key`.
fn insert_run(c: &mut dyn super::Conn, run: &NewRun, key: i64) -> Result<i64, StoreError> {
    let mut values = run_values(run);
    values.extend([
        ("schedule_id", param(run.schedule_id)),
        ("status", param(run.status.as_str())),
        ("phase", param(run.phase.map(RunPhase::as_str))),
        ("key_id", param(key)),
        // In run_transcripts since schema version 4.
        ("transcript", param("")),
    ]);
    let id = c.insert(st::run_insert(values))?;
    add_transcript(c, id, run)?;
    Ok(id)
}

/// A run's host, script and check name: what its key stands for.
type KeyNames = (Option<String>, String, Option<String>);

/// Run keys known to be committed, by their names. At most [`KeyCache::MOST`]; past that it
/// starts again (a look-up per new check, as without it).
#[derive(Debug, Default)]
pub struct KeyCache(std::collections::HashMap<KeyNames, i64>);

impl KeyCache {
    const MOST: usize = 100_000;

    fn put(&mut self, names: KeyNames, key: i64) {
        if self.0.len() >= Self::MOST {
            self.0.clear();
        }
        self.0.insert(names, key);
    }
}

fn key_names(run: &NewRun) -> KeyNames {
    (run.host.clone(), run.script.clone(), run.check_name.clone())
}

/// The key of a run's host, script and check (made with its check's first run). Two nodes
/// making the first run of one check at once may make two keys for it: both name the same,
/// and runs are found by the names of their keys, so the runs of both are found.
fn run_key(c: &mut dyn super::Conn, names: &KeyNames) -> Result<i64, StoreError> {
    let (host, script, check) = (names.0.as_deref(), names.1.as_str(), names.2.as_deref());
    match c.query_one(st::run_key_get(host, script, check))? {
        Some(row) => row.int("id"),
        None => c.insert(st::run_key_insert(host, script, check)),
    }
}

/// Inserts a run's row, looking its key up (or making it).
pub(super) fn insert_run_keyed(c: &mut dyn super::Conn, run: &NewRun) -> Result<i64, StoreError> {
    let key = run_key(c, &key_names(run))?;
    insert_run(c, run, key)
}

/// A run's transcript, in a row of its own (none for an empty one).
fn add_transcript(c: &mut dyn super::Conn, id: i64, run: &NewRun) -> Result<(), StoreError> {
    if !run.transcript.is_empty() {
        c.exec(st::transcript_insert(id, run.started_at, &run.transcript))?;
    }
    Ok(())
}

/// The row of quiet OK runs that a run joins.
struct Joined {
    id: i64,
    had_transcript: bool,
}

/// The row an OK run that changes nothing joins instead of a row of its own: its check's last
/// run, when that was such a run too, and whether that row has a transcript. None: the run
/// gets its own row. Also the check's row as it stands, when it was read (the state machine
/// then needs no read of its own).
fn joins(
    c: &mut dyn super::Conn,
    run: &NewRun,
) -> Result<(Option<Joined>, Option<Option<Row>>), StoreError> {
    if run.status != Status::Ok || !run.notifications.is_empty() {
        return Ok((None, None));
    }
    // Pushed results (pings, passive results) have no schedule: their quiet OK runs share a
    // row as a schedule's do.
    let passive = run.schedule_id.is_none() && run.phase == Some(RunPhase::Passive);
    let of = match run.schedule_id {
        Some(s) if matches!(run.phase, None | Some(RunPhase::Check)) => st::Quiet::Schedule(s),
        _ if passive => st::Quiet::Pushed,
        _ => return Ok((None, None)),
    };
    let Some(check) = c.query_one(st::check_and_quiet(run.host.as_deref(), run.check(), of))?
    else {
        return Ok((None, Some(None)));
    };
    let joined = match check.opt_int("quiet")? {
        Some(id) if check.text("state")? == "ok" => Some(Joined {
            id,
            had_transcript: check.int("transcripts")? > 0,
        }),
        _ => None,
    };
    Ok((joined, Some(Some(check))))
}

/// The order a transaction records its runs in: by check (the row each locks, with its
/// history's and series' rows), then by job.
fn lock_order(run: &NewRun) -> (Option<&str>, &str, Option<i64>) {
    (run.host.as_deref(), run.check(), run.job_id)
}

impl Store {
    /// Records a run, its notifications, and what becomes of its job (`action`: deleted,
    /// retried or released), all in one transaction: a job leaves the queue only when its run
    /// is in the history. The run says what ran; only the caller that owns the job (monitord,
    /// the reaper) decides `action`. An ad-hoc run passes [`JobAction::Keep`].
    pub fn record_run(&self, run: &NewRun, action: JobAction) -> Result<i64, StoreError> {
        let mut done = self.recorded(Lane::default());
        let recorded = self.write(|c| {
            let id = self.record_in(c, run, action, &mut done)?;
            done.finish(c)?;
            Ok(id)
        });
        self.after_record(recorded.is_ok(), done);
        recorded
    }

    /// Records several runs in one transaction (group commit): each is recorded as
    /// [`Store::record_run`] records it, and `before` runs first in the same transaction.
    /// All or none: an error rolls every one back. The ids come back in the order of `runs`.
    ///
    /// The rows are taken in an order every writer keeps, so that two transactions that share
    /// rows (two nodes recording a quorum's checks, each for its own site) wait for each other
    /// and never in a cycle: the runs by check, then their jobs' rows in id order, then the
    /// totals. A lease renewal skips the rows a writer holds, so it never waits for them.
    pub fn record_runs(
        &self,
        runs: &[(NewRun, JobAction)],
        before: &dyn Fn(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<Vec<i64>, StoreError> {
        self.record_runs_in(runs, before, Lane::default())
    }

    /// [`Store::record_runs`], by one of several writers (`lane`).
    pub fn record_runs_in(
        &self,
        runs: &[(NewRun, JobAction)],
        before: &dyn Fn(&mut dyn Conn) -> Result<(), StoreError>,
        lane: Lane,
    ) -> Result<Vec<i64>, StoreError> {
        let mut done = self.recorded(lane);
        let recorded = self.write(|c| {
            before(c)?;
            // In the order of their checks: every writer (two nodes', a node's two lanes)
            // locks the checks' rows it shares with another in the same order, so the two
            // wait for each other, never in a cycle. The jobs' rows are written at the end.
            let mut order: Vec<usize> = (0..runs.len()).collect();
            order.sort_by_key(|&i| lock_order(&runs[i].0));
            let mut ids = vec![0; runs.len()];
            for i in order {
                let (run, action) = &runs[i];
                ids[i] = self.record_in(c, run, *action, &mut done)?;
            }
            done.finish(c)?;
            Ok(ids)
        });
        self.after_record(recorded.is_ok(), done);
        recorded
    }

    /// What a transaction that records runs starts with, for writer `lane`: its turn among
    /// the lane's stripes of the totals (the lane's transactions go round them). All its runs
    /// count in that one stripe: a statement a status to add them, and another writer's
    /// transaction (another node's, of the same lane) waits on it only when its turn falls
    /// on the same stripe.
    pub(super) fn recorded(&self, lane: Lane) -> Recorded {
        let turn = self.totals_turns[lane.index % self.totals_turns.len()]
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Recorded {
            lane,
            turn,
            ..Recorded::default()
        }
    }

    /// What a committed record leaves to do: wake the queue for rechecks, remember new keys
    /// (only a committed key is remembered: one made by a transaction that rolled back would
    /// name nothing).
    pub(super) fn after_record(&self, committed: bool, done: Recorded) {
        if !committed {
            return;
        }
        if done.rechecks > 0 || done.requeued {
            self.notify_enqueued();
        }
        if !done.keys.is_empty() {
            let mut keys = self.run_keys.lock().unwrap_or_else(|p| p.into_inner());
            for (names, key) in done.keys {
                keys.put(names, key);
            }
        }
    }

    /// Records one run on a connection inside a write transaction.
    pub(super) fn record_in(
        &self,
        c: &mut dyn Conn,
        run: &NewRun,
        action: JobAction,
        done: &mut Recorded,
    ) -> Result<i64, StoreError> {
        let at = now_ms();
        let owner = run.node.as_deref().unwrap_or_default();
        let collapse = self.policy().collapse_ok;
        let names = key_names(run);
        let known = self
            .known_key(&names)
            .or_else(|| done.keys.iter().find(|(n, _)| *n == names).map(|(_, k)| *k));
        let (joined, check_row) = if collapse {
            joins(c, run)?
        } else {
            (None, None)
        };
        let id = match joined {
            Some(Joined { id, had_transcript }) => {
                c.exec(st::run_repeat(id, run_values(run)))?;
                // The row's transcript becomes this run's (OK runs keep none by default).
                if had_transcript {
                    c.exec(st::delete_in("run_transcripts", "run_id", vec![id]))?;
                }
                add_transcript(c, id, run)?;
                id
            }
            None => {
                let key = match known {
                    Some(key) => key,
                    None => {
                        let key = run_key(c, &names)?;
                        done.keys.push((names.clone(), key));
                        key
                    }
                };
                insert_run(c, run, key)?
            }
        };
        let moved = super::checks::record(
            c,
            run,
            id,
            action,
            self.policy(),
            check_row,
            &mut done.reads,
        )?;
        if let (Some(m), Some(host)) = (moved.as_ref(), run.host.as_deref())
            && m.recheck_children
        {
            done.later.push(Recheck::ChildrenOf {
                host: host.to_string(),
                check: run.check().to_string(),
                at: run.finished_at,
            });
        }
        if moved.as_ref().is_some_and(|m| m.previous != Some(m.state)) {
            c.exec(st::run_mark_changed(id))?;
        }
        super::series::record(c, run)?;
        let details = details(run, moved.as_ref()).to_string();
        let told_before = moved.as_ref().map_or(&[][..], |m| &m.told_before[..]);
        let notices = run
            .notifications
            .iter()
            .filter(|n| !told_before.contains(&n.event))
            .chain(moved.as_ref().and_then(|m| m.notice.as_ref()));
        for notice in notices {
            c.insert(st::notification_insert(
                Some(id),
                run.host.as_deref(),
                notice,
                Some(&details),
                at,
            ))?;
        }
        // Each but the reaper's is conditional on this node's lease: when another node took
        // the job over, the run is still history, and the row is theirs.
        let to = match action {
            JobAction::Keep => None,
            JobAction::Done => Some(JobTo::Done),
            JobAction::Retry { due_at } => Some(JobTo::Requeue {
                due_at,
                release: false,
            }),
            JobAction::Release => Some(JobTo::Requeue {
                due_at: at,
                release: true,
            }),
            JobAction::Reap => Some(JobTo::Reap),
        };
        if let (Some(job), Some(to)) = (run.job_id, to) {
            done.requeued |= matches!(to, JobTo::Requeue { .. });
            done.jobs.push(JobWrite {
                job,
                owner: owner.to_string(),
                to,
            });
        }
        // A check waiting for its parents' word: they run at once, and it again after the
        // settle time (once its job is done; a retry or the loop's next run comes anyway).
        if let (Some(m), Some(host), JobAction::Done) =
            (moved.as_ref(), run.host.as_deref(), action)
            && !m.waiting.is_empty()
        {
            for (h, ch) in &m.waiting {
                done.later.push(Recheck::One {
                    host: h.clone(),
                    check: ch.clone(),
                    at,
                    due_at: at,
                });
            }
            done.later.push(Recheck::One {
                host: host.to_string(),
                check: run.check().to_string(),
                at,
                due_at: at.saturating_add(self.policy().settle.settle_ms.max(1_000)),
            });
        }
        // The totals are added by the caller at the end of the transaction (once for all the
        // runs of a batch): the one row every run writes, so its lock is held the shortest.
        let ms = (run.finished_at - run.started_at).max(0);
        done.total(run.status, ms);
        Ok(id)
    }

    /// A run key known to be committed, if this process has seen it.
    fn known_key(&self, names: &KeyNames) -> Option<i64> {
        let keys = self.run_keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.0.get(names).copied()
    }

    /// Records a run as [`Store::record_run`] does, trying again while the database cannot
    /// be reached (a pause of 250 ms doubling up to 10 s) until it is recorded or `give_up`
    /// says so. A try whose commit may have gone through before the connection was lost is
    /// not recorded twice: each new try first looks for the run (the first too, when
    /// `tried_before`).
    pub fn record_run_until(
        &self,
        run: &NewRun,
        action: JobAction,
        give_up: &dyn Fn() -> bool,
        tried_before: bool,
    ) -> Result<i64, StoreError> {
        let mut pause = std::time::Duration::from_millis(250);
        // A run tried before may be in already: it is looked for first.
        let mut tries = u32::from(tried_before);
        let mut warned = false;
        loop {
            let tried = if tries == 0 {
                self.record_run(run, action)
            } else {
                match self.read(|c| {
                    c.query_one(st::run_find(
                        (run.started_at, run.finished_at),
                        (run.host.as_deref(), &run.script),
                        run.node.as_deref().unwrap_or_default(),
                        run.job_id,
                    ))
                }) {
                    Ok(Some(row)) => row.int("id"),
                    Ok(None) => self.record_run(run, action),
                    Err(e) => Err(e),
                }
            };
            match tried {
                Err(StoreError::Unreachable(e)) if !give_up() => {
                    if !warned {
                        warned = true;
                        tracing::warn!(
                            job = run.job_id,
                            "cannot record the run yet, trying until the database is back: {e}"
                        );
                    }
                    tries += 1;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_secs(10));
                }
                Ok(id) if tries > 0 => {
                    tracing::info!(job = run.job_id, run = id, tries, "recorded the run");
                    return Ok(id);
                }
                other => return other,
            }
        }
    }

    pub fn run(&self, id: i64) -> Result<Run, StoreError> {
        let (row, transcript) = self.read(|c| {
            let row = c.query_one(st::run_by_id(id))?;
            let transcript = match &row {
                Some(_) => c.query_one(st::transcript_of(id))?,
                None => None,
            };
            Ok((row, transcript))
        })?;
        let mut run =
            row.map(|r| run_from_row(&r))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "run",
                    name: id.to_string(),
                })?;
        if let Some(t) = transcript {
            run.transcript = t.text("transcript")?;
        }
        Ok(run)
    }

    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        self.read(|c| {
            c.query(st::run_list(filter))?
                .iter()
                .map(run_from_row)
                .collect()
        })
    }

    /// The latest runs that did not end OK, without output and transcript.
    pub fn recent_failures(&self, limit: u64) -> Result<Vec<Run>, StoreError> {
        self.read(|c| {
            c.query(st::run_failures(limit))?
                .iter()
                .map(run_from_row)
                .collect()
        })
    }

    /// Per status: the number of runs recorded since the database was made and their summed
    /// duration in milliseconds (kept as each run is recorded: housekeeping does not lower
    /// them); and the number of notifications whose delivery failed.
    pub fn run_stats(&self) -> Result<RunStats, StoreError> {
        self.read(|c| {
            let mut by_status: Vec<StatusCount> = Vec::new();
            for r in c.query(st::run_totals())? {
                let status: Status = r.text("status")?.parse().map_err(StoreError::Db)?;
                let (runs, ms) = (r.int("runs")?, r.int("ms")?);
                match by_status.iter_mut().find(|s| s.status == status) {
                    Some(s) => (s.runs, s.ms) = (s.runs + runs, s.ms + ms),
                    None => by_status.push(StatusCount { status, runs, ms }),
                }
            }
            let failed_notifications = match c.query_one(st::notification_failures())? {
                Some(r) => r.int("n")?,
                None => 0,
            };
            Ok(RunStats {
                by_status,
                failed_notifications,
            })
        })
    }

    pub fn notifications(&self, limit: u64) -> Result<Vec<Notification>, StoreError> {
        self.read(|c| {
            c.query(st::notification_list(limit))?
                .iter()
                .map(notification_from_row)
                .collect()
        })
    }
}

impl Store {
    /// Records a notification that belongs to no run (the correction loop's escalations).
    pub fn add_notification(&self, host: Option<&str>, notice: &Notice) -> Result<i64, StoreError> {
        let at = now_ms();
        self.write(|c| c.insert(st::notification_insert(None, host, notice, None, at)))
    }

    /// Records a reminder of a check's problem, unless another node reminded since
    /// `check.reminded_at`; true when this one did.
    pub fn remind(
        &self,
        check: &Check,
        notice: &Notice,
        details: &serde_json::Value,
        at: i64,
    ) -> Result<bool, StoreError> {
        self.write(|c| {
            if c.exec(st::check_reminded(check.id, check.reminded_at, at))? != 1 {
                return Ok(false);
            }
            c.insert(st::notification_insert(
                check.last_run_id,
                check.host.as_deref(),
                notice,
                Some(&details.to_string()),
                at,
            ))?;
            Ok(true)
        })
    }

    /// Notifications whose next delivery attempt is due at `at`.
    pub fn pending_notifications(
        &self,
        at: i64,
        limit: u64,
    ) -> Result<Vec<Notification>, StoreError> {
        self.read(|c| {
            c.query(st::notification_pending(at, limit))?
                .iter()
                .map(notification_from_row)
                .collect()
        })
    }

    /// Takes a pending notification for a delivery attempt of up to `for_ms`; false when
    /// another daemon took it first.
    pub fn claim_notification(&self, n: &Notification, for_ms: i64) -> Result<bool, StoreError> {
        let Some(seen) = n.next_try_at else {
            return Ok(false);
        };
        let until = now_ms() + for_ms;
        self.write(|c| Ok(c.exec(st::notification_claim(n.id, seen, until))? == 1))
    }

    /// Keeps a notification for later without counting a try: `channel` took it so far.
    pub fn hold_notification(
        &self,
        id: i64,
        channel: &str,
        next_try_at: i64,
    ) -> Result<(), StoreError> {
        self.write(|c| {
            c.exec(st::notification_hold(id, channel, next_try_at))
                .map(|_| ())
        })
    }

    /// Records a delivery attempt: delivered, or failed with the next try at `next_try_at`
    /// (None gives up).
    pub fn notification_attempt(
        &self,
        id: i64,
        channel: &str,
        result: Result<(), String>,
        next_try_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let at = now_ms();
        self.write(|c| {
            c.exec(st::notification_attempt(
                id,
                channel,
                at,
                result.as_ref().err().map(String::as_str),
                next_try_at,
            ))?;
            Ok(())
        })
    }

    /// How many runs of `script` a schedule made on a host since `since`, and the latest start.
    pub fn count_runs(
        &self,
        schedule_id: i64,
        host: Option<&str>,
        script: &str,
        since: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let row = self.read(|c| c.query_one(st::run_count(schedule_id, host, script, since)))?;
        match row {
            Some(r) => Ok((r.int("n")?, r.opt_int("latest")?)),
            None => Ok((0, None)),
        }
    }
}
