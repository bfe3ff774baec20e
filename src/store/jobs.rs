//! The job queue: enqueue (without duplicates unless asked), claim with a lease, renew,
//! cancel, and fire due schedules into jobs.

use super::hosts::{host_from_row, host_id};
use super::scripts::script_id;
use super::statements as st;
use super::{
    Conn, ConnExt, Host, Job, JobState, Lease, NewJob, NewRun, Row, Schedule, Store, StoreError,
    now_ms,
};
use crate::sql::Dialect;
use std::collections::HashMap;

/// What `cancel_job` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// It was queued: it is gone, with a cancelled run in the history.
    Removed,
    /// It is running: its node was asked to stop it.
    Requested,
    /// It is already being cancelled, or finished meanwhile.
    AlreadyEnding,
}

fn job_from_row(r: &Row) -> Result<Job, StoreError> {
    Ok(Job {
        id: r.int("id")?,
        script: r.text("script")?,
        host: r.opt_text("host")?,
        priority: r.int("priority")?,
        due_at: r.int("due_at")?,
        state: job_state(r)?,
        attempts: r.int("attempts")?,
        max_attempts: r.int("max_attempts")?,
        timeout_ms: r.opt_int("timeout_ms")?,
        lease_owner: r.opt_text("lease_owner")?,
        lease_until: r.opt_int("lease_until")?,
        schedule_id: r.opt_int("schedule_id")?,
        args: r.opt_text("args")?,
        name: r.opt_text("name")?,
        site: r.opt_text("site")?,
        host_row: None,
        versions: None,
    })
}

/// A row's `state`, typed; a word the schema does not allow is a clear error.
fn job_state(r: &Row) -> Result<JobState, StoreError> {
    r.text("state")?.parse().map_err(StoreError::Invalid)
}

/// The largest priority either way, and the longest timeout, a job or schedule may have.
pub const MAX_PRIORITY: i64 = 1_000_000;
pub const MAX_TIMEOUT_MS: i64 = 24 * 3_600_000;

/// Refuses a priority or timeout out of bounds, with a clear error.
pub fn check_bounds(priority: i64, timeout_ms: Option<i64>) -> Result<(), StoreError> {
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        return Err(StoreError::Invalid(format!(
            "priority {priority} is out of range: use -{MAX_PRIORITY} to {MAX_PRIORITY}"
        )));
    }
    if let Some(t) = timeout_ms
        && !(1..=MAX_TIMEOUT_MS).contains(&t)
    {
        return Err(StoreError::Invalid(format!(
            "timeout of {t} ms is out of range: use 1 ms to 24 h"
        )));
    }
    Ok(())
}

/// A job's or a schedule's arguments: a JSON object of at most 64 KiB.
pub(super) fn check_args(args: Option<&str>) -> Result<(), StoreError> {
    let Some(a) = args else { return Ok(()) };
    if a.len() > 64 * 1024 {
        return Err(StoreError::Invalid(format!(
            "arguments of {} bytes: at most 64 KiB",
            a.len()
        )));
    }
    match serde_json::from_str::<serde_json::Value>(a) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(StoreError::Invalid(
            "arguments must be a JSON object (name: value)".into(),
        )),
        Err(e) => Err(StoreError::Invalid(format!("arguments are not JSON: {e}"))),
    }
}

/// Whether two stored argument objects say the same (as JSON: spacing and key order aside;
/// no arguments and `{}` alike). Queued jobs and schedules are compared by it.
pub fn same_args(a: Option<&str>, b: Option<&str>) -> bool {
    let parse = |s: Option<&str>| {
        s.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    };
    parse(a) == parse(b)
}

/// A check's name: what the schedule calls it when one script runs twice on a host.
pub(super) fn check_name(name: Option<&str>) -> Result<(), StoreError> {
    match name {
        Some(n) if n.trim().is_empty() || n.len() > 255 || n.chars().any(char::is_control) => {
            Err(StoreError::Invalid(format!(
                "check name {n:?}: 1 to 255 characters, no control characters"
            )))
        }
        _ => Ok(()),
    }
}

/// Inserts a job (for a node of `site`, or any) unless the same (script, host, site) is
/// already queued (with `due_by`, queued and due by then) and duplicates are not asked for.
/// Returns the job's id and whether it is new.
pub(super) fn enqueue_in(
    c: &mut dyn Conn,
    job: &NewJob,
    allow_duplicate: bool,
    at: i64,
    site: Option<&str>,
    due_by: Option<i64>,
) -> Result<(i64, bool), StoreError> {
    let script_id = script_id(c, &job.script)?;
    enqueue_script_in(c, job, script_id, allow_duplicate, at, site, due_by)
}

/// What every new job is held to before it is written: priority and timeout in bounds, its
/// arguments a JSON object, its check name printable.
fn check_job(job: &NewJob) -> Result<(), StoreError> {
    check_bounds(job.priority, job.timeout_ms)?;
    check_args(job.args.as_deref())?;
    check_name(job.name.as_deref())
}

/// [`enqueue_in`] with the script's id known (a firing looks it up once for all its hosts).
fn enqueue_script_in(
    c: &mut dyn Conn,
    job: &NewJob,
    script_id: i64,
    allow_duplicate: bool,
    at: i64,
    site: Option<&str>,
    due_by: Option<i64>,
) -> Result<(i64, bool), StoreError> {
    check_job(job)?;
    let host_id = job.host.as_deref().map(|h| host_id(c, h)).transpose()?;
    if !allow_duplicate {
        for row in c.query(st::job_queued_for(
            script_id,
            host_id,
            job.name.as_deref(),
            site,
            due_by,
        ))? {
            if same_args(row.opt_text("args")?.as_deref(), job.args.as_deref()) {
                return Ok((row.int("id")?, false));
            }
        }
    }
    Ok((
        c.insert(st::job_insert(script_id, host_id, job, at, site))?,
        true,
    ))
}

/// From this many hosts on, a firing reads [`Known`] once instead of asking for each host.
const READ_ONCE_FROM: usize = 32;

/// Key of a queued job that a firing coalesces into: host id, check name, site.
type QueuedKey = (Option<i64>, Option<String>, Option<String>);

/// What a firing of many hosts reads once, in its transaction: every host's id by name, and
/// its script's queued jobs due by the firing (the ones it coalesces into, as
/// [`enqueue_script_in`] finds them for one host), with what the firing queues added as it
/// goes. At 5,000 hosts a second the queries for each host were most of the daemon's thread.
struct Known {
    ids: HashMap<String, i64>,
    /// The queued jobs due by the firing, by check: their arguments.
    queued: HashMap<QueuedKey, Vec<Option<String>>>,
    /// The rows the firing queues, written together by [`Known::flush`].
    rows: Vec<Vec<(&'static str, crate::sql::Expr)>>,
}

/// The rows one statement of a firing inserts at most, and the smaller sizes the rest goes
/// in: a few lengths of statement, each prepared once, however many hosts a rule has.
const INSERT_ROWS: [usize; 3] = [64, 8, 1];

impl Known {
    fn read(c: &mut dyn Conn, script_id: i64, due_by: i64) -> Result<Known, StoreError> {
        let mut ids = HashMap::new();
        for r in c.query(st::host_ids())? {
            ids.insert(r.text("name")?, r.int("id")?);
        }
        let mut queued: HashMap<QueuedKey, Vec<Option<String>>> = HashMap::new();
        for r in c.query(st::jobs_overdue_of_script(script_id, due_by))? {
            queued
                .entry((
                    r.opt_int("host_id")?,
                    r.opt_text("name")?,
                    r.opt_text("site")?,
                ))
                .or_default()
                .push(r.opt_text("args")?);
        }
        Ok(Known {
            ids,
            queued,
            rows: Vec::new(),
        })
    }

    /// Writes the rows the firing queued, in as few statements as [`INSERT_ROWS`] allows.
    fn flush(&mut self, c: &mut dyn Conn) -> Result<(), StoreError> {
        let mut rows = std::mem::take(&mut self.rows).into_iter();
        let mut left = rows.len();
        while left > 0 {
            let n = INSERT_ROWS.into_iter().find(|&n| n <= left).unwrap_or(1);
            c.exec(st::jobs_insert_rows(rows.by_ref().take(n).collect()))?;
            left -= n;
        }
        Ok(())
    }

    /// [`enqueue_script_in`] with `due_by` the firing's time `at`, from what was read once:
    /// whether the job was queued (false: one like it is overdue already).
    fn enqueue(
        &mut self,
        c: &mut dyn Conn,
        job: &NewJob,
        script_id: i64,
        at: i64,
        site: Option<&str>,
    ) -> Result<bool, StoreError> {
        check_job(job)?;
        let host_id = match job.host.as_deref() {
            Some(name) => Some(match self.ids.get(name) {
                Some(id) => *id,
                // Not there when read: the query names it as missing.
                None => host_id(c, name)?,
            }),
            None => None,
        };
        let key = (host_id, job.name.clone(), site.map(str::to_string));
        if self.queued.get(&key).is_some_and(|jobs| {
            jobs.iter()
                .any(|args| same_args(args.as_deref(), job.args.as_deref()))
        }) {
            return Ok(false);
        }
        self.rows
            .push(st::job_values(script_id, host_id, job, at, site));
        if job.due_at <= at {
            self.queued.entry(key).or_default().push(job.args.clone());
        }
        Ok(true)
    }
}

/// What a claim asks for: see [`Store::claim_asked`].
#[derive(Debug, Clone, Copy)]
pub struct ClaimAsk<'a> {
    pub owner: &'a str,
    pub lease_ms: i64,
    pub per_host: i64,
    pub site: Option<&'a str>,
    /// Jobs whose node died (expired leases) first.
    pub include_expired: bool,
    /// At most so many expired and due jobs.
    pub max: usize,
    /// Then jobs due within so many milliseconds, at most so many.
    pub ahead: Option<(i64, usize)>,
}

/// Claims jobs of one kind until `claimed` holds `limit` or none is left: per priority, highest
/// first, one query for candidates in queue order, then those taken claimed by their ids (one statement for
/// them where the dialect binds a list as one, [`list_chunk`]). Every query sees
/// the claims before it (one transaction), so a host's running jobs count; the jobs taken of
/// one host within one answer are counted here, so the per-host limit holds within the batch.
///
/// The cost is the priorities and the jobs taken, not the length of the queue: a claim that
/// finds nothing reads one index entry per priority.
fn claim_into(
    c: &mut dyn Conn,
    ask: &ClaimAsk,
    which: st::Claimable,
    limit: usize,
    claimed: &mut Vec<Job>,
) -> Result<(), StoreError> {
    let mut below = None;
    while claimed.len() < limit {
        let Some(level) = c
            .query_one(st::job_top_priority(which, below))?
            .map(|r| r.opt_int("top"))
            .transpose()?
            .flatten()
        else {
            break;
        };
        loop {
            let want = limit - claimed.len();
            // Room for jobs skipped because their host already got one in this answer.
            let ask_for = want.saturating_mul(2).saturating_add(16);
            let rows = c.query(st::claim_candidates(
                ask.per_host,
                ask.site,
                which,
                level,
                ask_for as u64,
            ))?;
            let mut ids = Vec::new();
            let mut taken: HashMap<i64, i64> = HashMap::new();
            for row in &rows {
                if ids.len() >= want {
                    break;
                }
                let host = row.opt_int("host_id")?;
                if let Some(h) = host
                    && row.int("busy")? + taken.get(&h).copied().unwrap_or(0) >= ask.per_host
                {
                    continue;
                }
                ids.push(row.int("id")?);
                if let Some(h) = host {
                    *taken.entry(h).or_insert(0) += 1;
                }
            }
            for chunk in ids.chunks(list_chunk(c.dialect())) {
                c.exec(st::job_claim_by_ids(chunk, ask.owner, ask.lease_ms))?;
            }
            // Under the claim lock only this transaction claims; a row changed anyway (a
            // cancel, a removal) was not claimed and is passed over.
            let before = claimed.len();
            read_claimed(c, &ids, claimed)?;
            let fresh = claimed.split_off(before);
            claimed.extend(fresh.into_iter().filter(|j| {
                j.state == JobState::Running && j.lease_owner.as_deref() == Some(ask.owner)
            }));
            let got = claimed.len() - before;
            // A full answer may hide more of this priority behind the jobs passed over: ask
            // again while that takes some. Otherwise the next priority down.
            if claimed.len() >= limit || rows.len() < ask_for || got == 0 {
                break;
            }
        }
        below = Some(level);
    }
    Ok(())
}

/// Ids a statement names at most: well under every dialect's limit on parameters (SQL
/// Server's is 2,100).
const CHUNK: usize = 500;

/// Ids a write names at once. Where a list is one parameter ([`Dialect::binds_lists`]) a
/// write takes a chunk's ids in one statement. Elsewhere each length of list would be a
/// statement of its own to prepare, and a write of one id is as cheap: one id each.
pub(super) fn list_chunk(d: Dialect) -> usize {
    if d.binds_lists() { CHUNK } else { 1 }
}

/// Hands claimed jobs their hosts' rows, read in the claim's transaction: one statement for a
/// chunk of jobs, instead of a read a run.
fn hosts_of(c: &mut dyn Conn, claimed: &mut [Job]) -> Result<(), StoreError> {
    let ids: Vec<i64> = claimed
        .iter()
        .filter(|j| j.host.is_some())
        .map(|j| j.id)
        .collect();
    let mut hosts: HashMap<String, Box<Host>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        for row in c.query(st::hosts_of_jobs(chunk))? {
            let host = host_from_row(&row)?;
            hosts.insert(host.name.clone(), Box::new(host));
        }
    }
    for job in claimed {
        job.host_row = job.host.as_ref().and_then(|h| hosts.get(h)).cloned();
    }
    Ok(())
}

/// Reads claimed jobs back (their lease and attempt as the claim set them), in claim order.
fn read_claimed(c: &mut dyn Conn, ids: &[i64], claimed: &mut Vec<Job>) -> Result<(), StoreError> {
    for chunk in ids.chunks(CHUNK) {
        let mut jobs: HashMap<i64, Job> = HashMap::new();
        for row in c.query(st::jobs_by_ids(chunk))? {
            let job = job_from_row(&row)?;
            jobs.insert(job.id, job);
        }
        claimed.extend(chunk.iter().filter_map(|id| jobs.remove(id)));
    }
    Ok(())
}

impl Store {
    /// How long the oldest due job has waited in the queue at `now` (ms; 0 when none waits):
    /// how far behind the nodes are.
    pub fn queue_lag(&self, now: i64) -> Result<i64, StoreError> {
        let oldest = self
            .read(|c| c.query_one(st::job_oldest_due(now)))?
            .map(|r| r.opt_int("oldest"))
            .transpose()?
            .flatten();
        Ok(oldest.map_or(0, |o| (now - o).max(0)))
    }
}

impl Store {
    /// Queues a job, unless the same (script, host) is already queued or running.
    /// Returns the job's id and whether it is new.
    pub fn enqueue(&self, job: &NewJob) -> Result<(i64, bool), StoreError> {
        self.enqueue_with(job, false)
    }

    pub fn enqueue_with(
        &self,
        job: &NewJob,
        allow_duplicate: bool,
    ) -> Result<(i64, bool), StoreError> {
        self.enqueue_for_site(job, allow_duplicate, None)
    }

    /// Queues a job that only a node of `site` may run (None: any that may run its host's).
    pub fn enqueue_for_site(
        &self,
        job: &NewJob,
        allow_duplicate: bool,
        site: Option<&str>,
    ) -> Result<(i64, bool), StoreError> {
        let at = now_ms();
        let r = self.write(|c| enqueue_in(c, job, allow_duplicate, at, site, None))?;
        if r.1 {
            self.notify_enqueued();
        }
        Ok(r)
    }

    /// The queue in the order it would run.
    pub fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.read(|c| c.query(st::job_list())?.iter().map(job_from_row).collect())
    }

    pub fn job(&self, id: i64) -> Result<Job, StoreError> {
        self.read(|c| c.query_one(st::job_by_id(id)))?
            .map(|r| job_from_row(&r))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "job",
                name: id.to_string(),
            })
    }

    /// Claims the next runnable job for `owner` with a lease of `lease_ms`, in one transaction.
    /// With `include_expired`, jobs whose node died (expired leases) come first; then due jobs,
    /// each in queue order.
    pub fn claim_job(
        &self,
        owner: &str,
        lease_ms: i64,
        per_host: i64,
        site: Option<&str>,
        include_expired: bool,
    ) -> Result<Option<Job>, StoreError> {
        Ok(self
            .claim_jobs(owner, lease_ms, per_host, site, include_expired, 1)?
            .pop())
    }

    /// Claims up to `max` jobs in one transaction, so every claim sees the ones before it
    /// (the per-host limit holds within the batch).
    pub fn claim_jobs(
        &self,
        owner: &str,
        lease_ms: i64,
        per_host: i64,
        site: Option<&str>,
        include_expired: bool,
        max: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let ask = ClaimAsk {
            owner,
            lease_ms,
            per_host,
            site,
            include_expired,
            max,
            ahead: None,
        };
        self.claim_asked(&ask)
    }

    /// Claims in one transaction: expired jobs (if asked) and due jobs up to `max`, then jobs
    /// due within `ahead`'s window up to its count (a daemon's room for jobs claimed ahead).
    pub fn claim_asked(&self, ask: &ClaimAsk) -> Result<Vec<Job>, StoreError> {
        self.write(|c| {
            c.exec(st::claim_lock())?;
            let mut claimed = Vec::new();
            if ask.include_expired {
                claim_into(c, ask, st::Claimable::Expired, ask.max, &mut claimed)?;
            }
            claim_into(c, ask, st::Claimable::Due, ask.max, &mut claimed)?;
            if let Some((ms, room)) = ask.ahead {
                let limit = claimed.len() + room;
                claim_into(c, ask, st::Claimable::Ahead(ms), limit, &mut claimed)?;
            }
            hosts_of(c, &mut claimed)?;
            Ok(claimed)
        })
    }

    /// Gives a job claimed ahead back to the queue unstarted (a node stopping before its due
    /// time): queued again as it was, its attempt uncounted. Only while `owner` holds it and
    /// it runs: one asked to cancel meanwhile stays so, for the reaper to record.
    pub fn release_job(&self, id: i64, owner: &str, due_at: i64) -> Result<(), StoreError> {
        self.write(|c| c.exec(st::job_give_back(id, due_at, owner)))?;
        self.notify_enqueued();
        Ok(())
    }

    /// Extends the leases `owner` holds on `ids`; returns the states of those jobs (a job
    /// asked to cancel shows as "cancelling"; one held by another node shows its owner). A
    /// job missing from the answer is gone, or was held by another transaction at that
    /// moment (its run being recorded, a cancel): it is neither renewed nor judged this time.
    pub fn renew_leases(
        &self,
        owner: &str,
        ids: &[i64],
        lease_ms: i64,
    ) -> Result<Vec<Lease>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|c| {
            // The read locks the rows it returns and skips those another transaction holds:
            // the run writer recording their runs (done, they need no lease), a cancel, a
            // claim of an expired lease. Only the rows read are renewed, so the renewal never
            // waits for a row: it cannot deadlock with the writer deleting the node's finished
            // jobs, in whatever order either meets them. A row skipped is renewed next time.
            let leases = c
                .query(st::job_states(ids))?
                .iter()
                .map(|r| {
                    Ok(Lease {
                        job: r.int("id")?,
                        state: job_state(r)?,
                        owner: r.opt_text("lease_owner")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let read: Vec<i64> = leases.iter().map(|l| l.job).collect();
            if !read.is_empty() {
                c.exec(st::job_renew(owner, &read, lease_ms))?;
            }
            Ok(leases)
        })
    }

    /// Cancels a job: a queued one is removed with a cancelled run in the history; a running
    /// one is asked to stop (its node records the run).
    pub fn cancel_job(&self, id: i64, node: &str) -> Result<Cancelled, StoreError> {
        let job = self.job(id)?;
        let at = now_ms();
        self.write(|c| {
            if c.exec(st::job_delete_queued(id))? == 1 {
                // The row is already gone; only the run is written.
                let run = NewRun::cancelled(&job, node, "cancelled before it started", at);
                super::runs::insert_run_keyed(c, &run)?;
                return Ok(Cancelled::Removed);
            }
            if c.exec(st::job_cancel(id))? == 1 {
                return Ok(Cancelled::Requested);
            }
            Ok(Cancelled::AlreadyEnding)
        })
    }

    /// Re-prioritises a queued job. A job already claimed keeps its place: the answer is an
    /// error that says so.
    pub fn set_job_priority(&self, id: i64, priority: i64) -> Result<(), StoreError> {
        check_bounds(priority, None)?;
        let job = self.job(id)?;
        match self.write(|c| c.exec(st::job_set_priority(id, priority)))? {
            0 => Err(StoreError::Invalid(format!(
                "job {id} is {}, not queued; only a queued job can be re-prioritised",
                job.state
            ))),
            _ => Ok(()),
        }
    }

    /// When the next queued job not due by `after` falls due, if any (`i64::MIN`: the first
    /// queued job, due already or not, as monitord asks to learn whether one is waiting).
    pub fn next_due(&self, after: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .read(|c| c.query_one(st::job_next_due(after)))?
            .map(|r| r.opt_int("due"))
            .transpose()?
            .flatten())
    }

    /// Jobs asked to cancel whose node died.
    pub fn orphaned_cancels(&self) -> Result<Vec<Job>, StoreError> {
        self.read(|c| c.query(st::job_reap())?.iter().map(job_from_row).collect())
    }

    /// Fires a due schedule in one transaction: moves it on from `seen_due` and queues one job
    /// per target host. Returns how many jobs were queued (none if another node fired it first).
    pub fn fire_schedule(
        &self,
        s: &Schedule,
        seen_due: i64,
        hosts: &[Option<String>],
        next_due: Option<i64>,
    ) -> Result<usize, StoreError> {
        let at = now_ms();
        // A rule's hosts (a tag's, a site's) on an interval: each at its own offset in the
        // interval from the due time; one whose offset has passed already (a late or missed
        // firing) at once. Other jobs are due when the schedule is: later than now when it is
        // fired ahead (a daemon claims them ahead and starts them then).
        let spread = match (&s.timing, super::schedules::Target::of(s)) {
            (super::Timing::Every(ms), super::schedules::Target::Matching { .. }) => Some(*ms),
            _ => None,
        };
        let due_of = |host: Option<&str>| match (spread, host) {
            (Some(ms), Some(h)) => seen_due
                .saturating_add(super::schedules::splay(s.id, h, ms))
                .max(at),
            _ => seen_due.max(at),
        };
        let n = self.write(|c| {
            let enabled = next_due.is_some();
            if c.exec(st::schedule_advance(s.id, seen_due, next_due, enabled))? == 0 {
                return Ok(0);
            }
            let mut queued = 0;
            // Looked up once for all the hosts, when the first needs it.
            let mut script = None;
            let mut known = None;
            for h in hosts {
                let job = NewJob {
                    script: s.script.clone(),
                    host: h.clone(),
                    priority: s.priority,
                    due_at: due_of(h.as_deref()),
                    max_attempts: s.max_attempts,
                    timeout_ms: s.timeout_ms,
                    schedule_id: Some(s.id),
                    args: s.args.clone(),
                    name: s.name.clone(),
                };
                // A quorum: one job per site, each run by a node of its site.
                let sites: Vec<Option<&str>> = if s.quorum.is_some() {
                    s.sites.iter().map(|x| Some(x.as_str())).collect()
                } else {
                    vec![None]
                };
                for site in sites {
                    // A firing is coalesced into a run of the check that is overdue (the
                    // node is behind), not held back by the last firing's job waiting for
                    // its time (fired ahead, or spread over the interval).
                    let id = match script {
                        Some(id) => id,
                        None => *script.insert(script_id(c, &s.script)?),
                    };
                    if !s.allow_duplicate && hosts.len() >= READ_ONCE_FROM {
                        if known.is_none() {
                            known = Some(Known::read(c, id, at)?);
                        }
                        if let Some(k) = known.as_mut()
                            && k.enqueue(c, &job, id, at, site)?
                        {
                            queued += 1;
                        }
                    } else if enqueue_script_in(c, &job, id, s.allow_duplicate, at, site, Some(at))?
                        .1
                    {
                        queued += 1;
                    }
                }
            }
            if let Some(k) = known.as_mut() {
                k.flush(c)?;
            }
            Ok(queued)
        })?;
        if n > 0 {
            self.notify_enqueued();
        }
        Ok(n)
    }
}
