//! The queue: its rules as sections (`claimable`, `host_not_busy`, `queue_order`, `in_site`,
//! `job_with_names`), written once and combined by the claim, the
//! listing and the next-due query; and the statements on jobs.

use super::*;
use crate::store::JobState;

/// Which jobs a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimable {
    /// Queued and due.
    Due,
    /// Running under an expired lease: their node died.
    Expired,
    /// Queued and due within so many milliseconds, not yet due.
    Ahead(i64),
}

/// The jobs of one kind at one priority, in conditions the index on (state, priority DESC,
/// due_at, id) answers as a range: a claim reads the jobs it may take and no others, however
/// many wait further on. (A condition on `due_at` alone, without the priority, would walk every
/// queued job of the priority in front of the due ones; a claim that found nothing then read
/// the whole queue, and at 2,000 checks a second those claims took both cores.)
///
/// A job whose node died runs under an expired lease: a claim takes it back and counts the
/// attempt again, so the re-run shows in the history.
pub fn claimable(j: &'static str, which: Claimable, priority: i64) -> Section {
    let queued = || qcol(j, "state").eq(lit(JobState::Queued.as_str()));
    let level = qcol(j, "priority").eq(param(priority));
    Section::Where(match which {
        Claimable::Due => vec![queued(), level, qcol(j, "due_at").le(now())],
        Claimable::Ahead(ms) => vec![
            queued(),
            level,
            // Off the index on (state, due_at), which SQLite would pick for the two bounds
            // and then read every priority's jobs of the window at each priority.
            qcol(j, "due_at").unindexed().gt(now()),
            qcol(j, "due_at").le(now() + param(ms)),
        ],
        Claimable::Expired => vec![
            qcol(j, "state").eq(lit(JobState::Running.as_str())),
            level,
            qcol(j, "lease_until").lt(now()),
        ],
    })
}

/// The state a claim of `which` takes jobs from.
fn claim_state(which: Claimable) -> JobState {
    match which {
        Claimable::Due | Claimable::Ahead(_) => JobState::Queued,
        Claimable::Expired => JobState::Running,
    }
}

/// The highest priority among the jobs a claim of `which` looks at, below `below` if given
/// (no row: none): one seek in the index on (state, priority DESC, ...), so a claim walks the
/// queue's priorities, not its jobs. Written as the first row in that order, not MAX():
/// PostgreSQL, its statistics still from an empty queue, aggregated over every queued job.
pub fn job_top_priority(which: Claimable, below: Option<i64>) -> Statement {
    let s = Select::from("jobs")
        .with(Section::Columns(vec![(col("priority"), Some("top"))]))
        .filter(col("state").eq(lit(claim_state(which).as_str())))
        .with(Section::OrderBy(vec![(col("priority"), Order::Desc)]))
        .with(Section::Limit(1));
    match below {
        Some(p) => s.filter(col("priority").lt(param(p))),
        None => s,
    }
    .into()
}

/// Higher priority first, then earlier due time, then lower id (FIFO within a priority).
pub fn queue_order(j: &'static str) -> Section {
    Section::OrderBy(vec![
        (qcol(j, "priority"), Order::Desc),
        (qcol(j, "due_at"), Order::Asc),
        (qcol(j, "id"), Order::Asc),
    ])
}

/// Which jobs a node may claim: one with a site, the jobs of hosts in its site and the jobs
/// meant for its site (a quorum schedule's); one without, the jobs meant for no site.
pub fn in_site(j: &'static str, site: Option<&str>) -> Section {
    Section::Where(vec![match site {
        Some(site) => {
            let hosts = Select::from("hosts")
                .columns(&["id"])
                .filter(col("site").eq(param(site)));
            qcol(j, "site").eq(param(site)).or(qcol(j, "site")
                .is_null()
                .and(qcol(j, "host_id").in_select(hosts)))
        }
        None => qcol(j, "site").is_null(),
    }])
}

/// Job rows with their script and host names.
pub fn job_with_names(j: &'static str) -> Section {
    Section::All(vec![
        Section::Columns(
            [
                "id",
                "priority",
                "due_at",
                "state",
                "attempts",
                "max_attempts",
                "timeout_ms",
                "lease_owner",
                "lease_until",
                "schedule_id",
                "args",
                "name",
                "site",
            ]
            .iter()
            .map(|c| (qcol(j, c), None))
            .chain([
                (qcol("s", "name"), Some("script")),
                (qcol("h", "name"), Some("host")),
            ])
            .collect(),
        ),
        Section::Join(Join {
            kind: JoinKind::Inner,
            table: "scripts",
            alias: "s",
            on: qcol("s", "id").eq(qcol(j, "script_id")),
        }),
        Section::Join(Join {
            kind: JoinKind::Left,
            table: "hosts",
            alias: "h",
            on: qcol("h", "id").eq(qcol(j, "host_id")),
        }),
    ])
}

/// When the oldest queued job that is due was due (NULL: none waits).
pub fn job_oldest_due(at: i64) -> Statement {
    Select::from("jobs")
        .with(Section::Columns(vec![(
            col("due_at").min(),
            Some("oldest"),
        )]))
        .filter(col("state").eq(lit("queued")))
        .filter(col("due_at").le(param(at)))
        .into()
}

pub fn job_list() -> Statement {
    Select::from_as("jobs", "j")
        .with(job_with_names("j"))
        .with(queue_order("j"))
        .into()
}

pub fn job_by_id(id: i64) -> Statement {
    Select::from_as("jobs", "j")
        .with(job_with_names("j"))
        .filter(qcol("j", "id").eq(param(id)))
        .into()
}

pub fn job_insert(
    script_id: i64,
    host_id: Option<i64>,
    job: &crate::store::NewJob,
    at: i64,
    site: Option<&str>,
) -> Statement {
    Insert {
        table: "jobs",
        values: job_values(script_id, host_id, job, at, site),
        returning_id: Some("id"),
    }
    .into()
}

/// Many [`job_insert`]s in one statement (no ids back): each row from [`job_values`].
pub fn jobs_insert_rows(rows: Vec<Vec<(&'static str, Expr)>>) -> Statement {
    let columns = rows
        .first()
        .map(|r| r.iter().map(|(c, _)| *c).collect())
        .unwrap_or_default();
    InsertRows {
        table: "jobs",
        columns,
        rows: rows
            .into_iter()
            .map(|r| r.into_iter().map(|(_, e)| e).collect())
            .collect(),
    }
    .into()
}

/// A queued job's row, as [`job_insert`] writes it.
pub fn job_values(
    script_id: i64,
    host_id: Option<i64>,
    job: &crate::store::NewJob,
    at: i64,
    site: Option<&str>,
) -> Vec<(&'static str, Expr)> {
    vec![
        ("script_id", param(script_id)),
        ("host_id", param(host_id)),
        ("priority", param(job.priority)),
        ("due_at", param(job.due_at)),
        ("state", lit(JobState::Queued.as_str())),
        ("attempts", lit(0)),
        ("max_attempts", param(job.max_attempts)),
        ("timeout_ms", param(job.timeout_ms)),
        ("schedule_id", param(job.schedule_id)),
        ("args", param(job.args.clone())),
        ("created_at", param(at)),
        ("name", param(job.name.clone())),
        ("site", param(site)),
    ]
}

/// Up to `limit` jobs a claim may take at one priority, in queue order, with how many jobs
/// their host runs now (`busy`): due (or expired, or due soon), host not busy, in the node's
/// site. The store claims them by id in the same transaction, counting the ones it takes of
/// one host against `per_host`.
pub fn claim_candidates(
    per_host: i64,
    site: Option<&str>,
    which: Claimable,
    priority: i64,
    limit: u64,
) -> Statement {
    // At one job a host (the default) the condition leaves only hosts that run none: their
    // count is 0, not counted again for each candidate.
    let busy = if per_host <= 1 {
        lit(0)
    } else {
        Expr::Sub(Box::new(host_busy("j")))
    };
    Select::from_as("jobs", "j")
        .with(Section::Columns(vec![
            (qcol("j", "id"), None),
            (qcol("j", "host_id"), None),
            (busy, Some("busy")),
        ]))
        .with(claimable("j", which, priority))
        .with(host_not_busy("j", per_host))
        .with(in_site("j", site))
        .with(Section::OrderBy(vec![
            (qcol("j", "due_at"), Order::Asc),
            (qcol("j", "id"), Order::Asc),
        ]))
        .with(Section::Limit(limit))
        .with(Section::Lock(Lock::SkipLocked))
        .into()
}

/// Job rows with their names, by id (a claim's jobs, read back once claimed).
pub fn jobs_by_ids(ids: &[i64]) -> Statement {
    Select::from_as("jobs", "j")
        .with(job_with_names("j"))
        .filter(qcol("j", "id").in_list(ids.iter().map(|i| param(*i)).collect()))
        .into()
}

/// Taken first in a claim's transaction: one claim at a time across all nodes, so that a
/// claim sees every other node's committed claim before it judges a host busy. (Row locks
/// alone cannot: under READ COMMITTED, two nodes could each claim another job of one host,
/// neither seeing the other's uncommitted one, and `per_host` would not hold across nodes.)
pub fn claim_lock() -> Statement {
    Statement::Serialize("hostler_claim")
}

/// What a claim sets: running, this node's lease (by the database's clock), one more attempt.
fn claim_set(owner: &str, lease_ms: i64) -> Vec<(&'static str, Expr)> {
    vec![
        ("state", lit(JobState::Running.as_str())),
        ("lease_owner", param(owner)),
        ("lease_until", now() + param(lease_ms)),
        ("attempts", col("attempts") + lit(1)),
    ]
}

/// Claims the chosen jobs (from [`claim_candidates`], in the same transaction) for `owner`
/// for `lease_ms`, counting the attempt: one statement for a claim's jobs. The lease is set and
/// checked with the database's clock, so nodes' clocks need not agree. The state condition
/// makes a lost race change no row instead of stealing a live lease.
///
/// The state is read through COALESCE (it is never NULL), which no index matches: the rows
/// are found by their ids. PostgreSQL planned the state's index when its statistics still
/// said the queue was empty (before autovacuum's first ANALYZE, a minute in) and then read
/// every queued job for each claim (20-60 ms a claim of 100 at 2,000 due).
pub fn job_claim_by_ids(ids: &[i64], owner: &str, lease_ms: i64) -> Statement {
    let state = || Expr::Func(crate::sql::Func::Coalesce, vec![col("state"), lit("")]);
    Update {
        table: "jobs",
        set: claim_set(owner, lease_ms),
        conditions: vec![
            col("id").in_list(ids.iter().map(|i| param(*i)).collect()),
            Expr::Or(vec![
                state().eq(lit(JobState::Queued.as_str())),
                state()
                    .eq(lit(JobState::Running.as_str()))
                    .and(col("lease_until").lt(now())),
            ]),
        ],
        returning: vec![],
    }
    .into()
}

/// Deletes a job whatever holds it: the reaper's, for a job whose node is gone (a node's own
/// done jobs go by [`jobs_done`]).
pub fn job_delete(id: i64) -> Statement {
    Delete {
        table: "jobs",
        conditions: vec![col("id").eq(param(id))],
    }
    .into()
}

/// Deletes the jobs whose runs are recorded, those `owner` still holds: a job another node
/// took over is theirs.
pub fn jobs_done(ids: &[i64], owner: &str) -> Statement {
    Delete {
        table: "jobs",
        conditions: vec![
            col("id").in_list(ids.iter().map(|i| param(*i)).collect()),
            col("lease_owner").eq(param(owner)),
        ],
    }
    .into()
}

/// Gives a job back to the queue: a retry at `due_at`, or (`release`) a shutdown handing it
/// back with the claim's attempt undone.
pub fn job_requeue(id: i64, due_at: i64, release: bool, owner: &str) -> Statement {
    let mut set = vec![
        ("state", lit(JobState::Queued.as_str())),
        ("lease_owner", lit(Value::Null)),
        ("lease_until", lit(Value::Null)),
        ("due_at", param(due_at)),
    ];
    if release {
        set.push(("attempts", col("attempts") - lit(1)));
    }
    Update {
        table: "jobs",
        set,
        conditions: vec![col("id").eq(param(id)), col("lease_owner").eq(param(owner))],
        returning: vec![],
    }
    .into()
}

/// Gives a job claimed and not started back to the queue as it was (its attempt uncounted),
/// while `owner` holds it and it is still running: one asked to cancel keeps that state.
pub fn job_give_back(id: i64, due_at: i64, owner: &str) -> Statement {
    Update {
        table: "jobs",
        set: vec![
            ("state", lit(JobState::Queued.as_str())),
            ("lease_owner", lit(Value::Null)),
            ("lease_until", lit(Value::Null)),
            ("due_at", param(due_at)),
            ("attempts", col("attempts") - lit(1)),
        ],
        conditions: vec![
            col("id").eq(param(id)),
            col("lease_owner").eq(param(owner)),
            col("state").eq(lit(JobState::Running.as_str())),
        ],
        returning: vec![],
    }
    .into()
}

/// Extends the leases a node holds.
pub fn job_renew(owner: &str, ids: &[i64], lease_ms: i64) -> Statement {
    Update {
        table: "jobs",
        set: vec![("lease_until", now() + param(lease_ms))],
        conditions: vec![
            col("lease_owner").eq(param(owner)),
            col("id").in_list(ids.iter().map(|i| param(*i)).collect()),
        ],
        returning: vec![],
    }
    .into()
}

/// The state of some jobs, to see which of a node's running jobs were asked to cancel. Read
/// first in a renewal, it locks the rows it returns and skips the rows another transaction
/// holds (the run writer recording their runs), so a renewal never waits for a row and can
/// never deadlock with the writer on PostgreSQL, whatever order either meets the rows in.
pub fn job_states(ids: &[i64]) -> Statement {
    Select::from("jobs")
        .columns(&["id", "state", "lease_owner"])
        .filter(col("id").in_list(ids.iter().map(|i| param(*i)).collect()))
        .with(Section::OrderBy(vec![(col("id"), Order::Asc)]))
        .with(Section::Lock(Lock::SkipLocked))
        .into()
}

/// Asks the node running a job to cancel it.
pub fn job_cancel(id: i64) -> Statement {
    Update {
        table: "jobs",
        set: vec![("state", lit(JobState::Cancelling.as_str()))],
        conditions: vec![
            col("id").eq(param(id)),
            col("state").eq(lit(JobState::Running.as_str())),
        ],
        returning: vec![],
    }
    .into()
}

/// Changes the priority of a job that is still queued.
pub fn job_set_priority(id: i64, priority: i64) -> Statement {
    Update {
        table: "jobs",
        set: vec![("priority", param(priority))],
        conditions: vec![
            col("id").eq(param(id)),
            col("state").eq(lit(JobState::Queued.as_str())),
        ],
        returning: vec![],
    }
    .into()
}

/// Brings a queued job forward to `due_at`, if it was due later (a check asked for at once
/// that already had a job waiting for its time).
pub fn job_hasten(id: i64, due_at: i64) -> Statement {
    Update {
        table: "jobs",
        set: vec![("due_at", param(due_at))],
        conditions: vec![
            col("id").eq(param(id)),
            col("state").eq(lit(JobState::Queued.as_str())),
            col("due_at").gt(param(due_at)),
        ],
        returning: vec![],
    }
    .into()
}

/// Removes a job only while it is still queued (a claim may have won the race).
pub fn job_delete_queued(id: i64) -> Statement {
    Delete {
        table: "jobs",
        conditions: vec![
            col("id").eq(param(id)),
            col("state").eq(lit(JobState::Queued.as_str())),
        ],
    }
    .into()
}

/// `column` equal to `value`, or NULL with it.
fn same(column: &'static str, value: Option<Expr>) -> Expr {
    match value {
        Some(v) => col(column).eq(v),
        None => col(column).is_null(),
    }
}

/// Queued jobs of the same script, host and check name, with their arguments: one with the
/// same arguments too would be duplicated by another (arguments are compared by the caller:
/// SQL Server 2000 cannot compare TEXT). A running one does not count, so a script can queue
/// its own follow-up. With `due_by`, only jobs due by then: a schedule's firing is held back
/// by a run that is overdue, not by the previous one still waiting for its (later) time.
pub fn job_queued_for(
    script_id: i64,
    host_id: Option<i64>,
    name: Option<&str>,
    site: Option<&str>,
    due_by: Option<i64>,
) -> Statement {
    let s = Select::from("jobs")
        .columns(&["id", "args"])
        .filter(col("script_id").eq(param(script_id)))
        .filter(same("host_id", host_id.map(param)))
        .filter(same("name", name.map(param)))
        .filter(same("site", site.map(param)))
        .filter(col("state").eq(lit(JobState::Queued.as_str())));
    // The due time is kept off the index on (state, due_at): SQLite picked it over the one on
    // (host_id, state) and read every queued job for each host a tag schedule fired, which at
    // 2,000 hosts took the daemon's thread whole.
    match due_by {
        Some(t) => s.filter(col("due_at").unindexed().le(param(t))),
        None => s,
    }
    .with(Section::Limit(16))
    .into()
}

/// A script's queued jobs due by `due_by`, of every host: a firing of many hosts reads them
/// once (a range of the queue's overdue jobs) instead of asking [`job_queued_for`] once a
/// host. What it reads is what the node is behind by, not the whole queue.
pub fn jobs_overdue_of_script(script_id: i64, due_by: i64) -> Statement {
    Select::from("jobs")
        .columns(&["id", "host_id", "name", "site", "args"])
        .filter(col("state").eq(lit(JobState::Queued.as_str())))
        .filter(col("due_at").le(param(due_by)))
        .filter(col("script_id").eq(param(script_id)))
        .into()
}

/// How many jobs (queued or running) use a host or a script.
pub fn jobs_using(column: &'static str, id: i64) -> Statement {
    Select::from("jobs")
        .with(Section::Columns(vec![(Expr::count_star(), Some("n"))]))
        .filter(col(column).eq(param(id)))
        .into()
}

/// When the next queued job falls due after `after`, so the daemon sleeps exactly until then
/// (or until it comes within reach of a claim ahead). One due already is not waited for.
pub fn job_next_due(after: i64) -> Statement {
    Select::from("jobs")
        .with(Section::Columns(vec![(col("due_at"), Some("due"))]))
        .filter(col("state").eq(lit(JobState::Queued.as_str())))
        .filter(col("due_at").gt(param(after)))
        .with(Section::OrderBy(vec![(col("due_at"), Order::Asc)]))
        .with(Section::Limit(1))
        .into()
}

/// Jobs asked to cancel whose node died: nobody will finish them, so they are reaped.
pub fn job_reap() -> Statement {
    Select::from_as("jobs", "j")
        .with(job_with_names("j"))
        .filter(qcol("j", "state").eq(lit(JobState::Cancelling.as_str())))
        .filter(qcol("j", "lease_until").lt(now()))
        .into()
}
