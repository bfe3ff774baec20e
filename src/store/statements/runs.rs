//! Statements on the run history and notifications.

use super::*;

pub fn run_insert(values: Vec<(&'static str, Expr)>) -> Statement {
    Insert {
        table: "runs",
        values,
        returning_id: Some("id"),
    }
    .into()
}

/// The columns of a run that its key holds.
const KEY_COLUMNS: &[&str] = &["host", "script", "check_name"];

/// Runs (as `r`) with their names (their key, as `k`), the columns `names` selected.
fn named(names: &[&'static str]) -> Select {
    let columns = names
        .iter()
        .map(|n| {
            let table = if KEY_COLUMNS.contains(n) { "k" } else { "r" };
            (qcol(table, n), Some(*n))
        })
        .collect();
    Select::from_as("runs", "r")
        .with(Section::Columns(columns))
        .with(Section::Join(Join {
            kind: JoinKind::Inner,
            table: "run_keys",
            alias: "k",
            on: qcol("k", "id").eq(qcol("r", "key_id")),
        }))
}

pub fn run_by_id(id: i64) -> Statement {
    named(RUN_COLUMNS)
        .filter(qcol("r", "id").eq(param(id)))
        .into()
}

/// A run already recorded, found by what one run of a node has alone: its host, script,
/// node, job and times (a record retried after its commit's answer was lost).
pub fn run_find(
    (started_at, finished_at): (i64, i64),
    (host, script): (Option<&str>, &str),
    node: &str,
    job_id: Option<i64>,
) -> Statement {
    let mut s = Select::from("runs")
        .columns(&["id"])
        .filter(keyed(host_is(host).and(col("script").eq(param(script)))))
        .filter(col("started_at").eq(param(started_at)))
        .filter(col("finished_at").eq(param(finished_at)))
        .filter(col("node").eq(param(node)));
    if let Some(job) = job_id {
        s = s.filter(col("job_id").eq(param(job)));
    }
    s.into()
}

pub fn run_list(f: &crate::store::RunFilter) -> Statement {
    let mut s = named(if f.summary {
        RUN_SUMMARY_COLUMNS
    } else {
        RUN_COLUMNS
    })
    .with(Section::OrderBy(vec![(qcol("r", "id"), Order::Desc)]))
    .with(Section::Limit(f.limit.max(1)));
    if let Some(h) = &f.host {
        s = s.filter(qcol("k", "host").eq(param(h.as_str())));
    }
    if let Some(sc) = &f.script {
        s = s.filter(qcol("k", "script").eq(param(sc.as_str())));
    }
    if let Some(c) = &f.check {
        s = s.filter(
            qcol("k", "check_name")
                .eq(param(c.as_str()))
                .or(qcol("k", "check_name")
                    .is_null()
                    .and(qcol("k", "script").eq(param(c.as_str())))),
        );
    }
    if let Some(st) = f.status {
        s = s.filter(qcol("r", "status").eq(param(st.as_str())));
    }
    if let Some(b) = f.before_id {
        s = s.filter(qcol("r", "id").lt(param(b)));
    }
    s.into()
}

/// A notification to deliver: what it tells (`event`), its fields as JSON (`details`).
pub fn notification_insert(
    run_id: Option<i64>,
    host: Option<&str>,
    notice: &crate::store::Notice,
    details: Option<&str>,
    at: i64,
) -> Statement {
    Insert {
        table: "notifications",
        values: vec![
            ("run_id", param(run_id)),
            ("host", param(host)),
            ("event", param(notice.event.as_str())),
            ("details", param(details)),
            ("subject", param(notice.subject.as_str())),
            ("body", param(notice.body.as_str())),
            ("created_at", param(at)),
            ("tries", lit(0)),
            ("next_try_at", param(at)),
        ],
        returning_id: Some("id"),
    }
    .into()
}

pub fn notification_list(limit: u64) -> Statement {
    Select::from("notifications")
        .columns(NOTIFICATION_COLUMNS)
        .with(Section::OrderBy(vec![(col("id"), Order::Desc)]))
        .with(Section::Limit(limit.max(1)))
        .into()
}

/// How many runs of a script a schedule made on a host since a time, and the latest start.
pub fn run_count(schedule_id: i64, host: Option<&str>, script: &str, since: i64) -> Statement {
    Select::from("runs")
        .with(Section::Columns(vec![
            (Expr::count_star(), Some("n")),
            (col("started_at").max(), Some("latest")),
        ]))
        .filter(keyed(host_is(host).and(col("script").eq(param(script)))))
        .filter(col("schedule_id").eq(param(schedule_id)))
        .filter(col("started_at").ge(param(since)))
        .into()
}

/// `host = ?`, or `host IS NULL` for a host-less run.
pub fn host_is(host: Option<&str>) -> Expr {
    match host {
        Some(h) => col("host").eq(param(h)),
        None => col("host").is_null(),
    }
}

/// Runs whose key's names match `names` (columns of run_keys): how runs are found by host,
/// script or check, through the runs_key index.
pub fn keyed(names: Expr) -> Expr {
    col("key_id").in_select(Select::from("run_keys").columns(&["id"]).filter(names))
}

/// The key of a host's script and check, if runs of it were recorded before.
pub fn run_key_get(host: Option<&str>, script: &str, check_name: Option<&str>) -> Statement {
    Select::from("run_keys")
        .columns(&["id"])
        .filter(host_is(host))
        .filter(col("script").eq(param(script)))
        .filter(match check_name {
            Some(c) => col("check_name").eq(param(c)),
            None => col("check_name").is_null(),
        })
        .with(Section::OrderBy(vec![(col("id"), Order::Asc)]))
        .with(Section::Limit(1))
        .into()
}

pub fn run_key_insert(host: Option<&str>, script: &str, check_name: Option<&str>) -> Statement {
    Insert {
        table: "run_keys",
        values: vec![
            ("host", param(host)),
            ("script", param(script)),
            ("check_name", param(check_name)),
        ],
        returning_id: Some("id"),
    }
    .into()
}

/// The names of runs recorded before schema version 5, each once (the upgrade gives them keys,
/// then drops the columns).
pub fn legacy_run_names() -> Statement {
    Select::from("runs")
        .columns(&["host", "script", "check_name"])
        .filter(col("key_id").is_null())
        .with(Section::GroupBy(vec![
            col("host"),
            col("script"),
            col("check_name"),
        ]))
        .into()
}

/// Gives the runs of a host's script and check recorded before schema version 5 their key.
pub fn legacy_key_runs(
    key: i64,
    host: Option<&str>,
    script: &str,
    check_name: Option<&str>,
) -> Statement {
    Update {
        table: "runs",
        set: vec![("key_id", param(key))],
        conditions: vec![
            col("key_id").is_null(),
            host_is(host),
            col("script").eq(param(script)),
            match check_name {
                Some(c) => col("check_name").eq(param(c)),
                None => col("check_name").is_null(),
            },
        ],
        returning: Vec::new(),
    }
    .into()
}

pub fn notification_pending(at: i64, limit: u64) -> Statement {
    Select::from("notifications")
        .columns(NOTIFICATION_COLUMNS)
        .filter(col("next_try_at").le(param(at)))
        .with(Section::OrderBy(vec![(col("id"), Order::Asc)]))
        .with(Section::Limit(limit.max(1)))
        .into()
}

/// Records a delivery attempt. A delivered notification, or one given up, has no next try.
pub fn notification_attempt(
    id: i64,
    channel: &str,
    at: i64,
    error: Option<&str>,
    next_try_at: Option<i64>,
) -> Statement {
    let mut set = vec![
        ("sent", param(channel)),
        ("tries", col("tries") + lit(1)),
        ("error", param(error)),
        (
            "next_try_at",
            param(if error.is_some() { next_try_at } else { None }),
        ),
    ];
    if error.is_none() {
        set.push(("delivered_at", param(at)));
    }
    Update {
        table: "notifications",
        set,
        conditions: vec![col("id").eq(param(id))],
        returning: vec![],
    }
    .into()
}

/// Takes a pending notification for one delivery attempt: moves its next try on, only if no
/// other daemon did first (the next try it saw is still there).
/// Records the channels that took a notification so far and when to go on, without counting
/// a try (the rate limit held the rest back).
pub fn notification_hold(id: i64, channel: &str, next_try_at: i64) -> Statement {
    Update {
        table: "notifications",
        set: vec![
            ("sent", param(channel)),
            ("next_try_at", param(next_try_at)),
        ],
        conditions: vec![col("id").eq(param(id))],
        returning: vec![],
    }
    .into()
}

/// Marks a check reminded at `at`, if nobody else did since `seen` (one node reminds).
pub fn check_reminded(id: i64, seen: Option<i64>, at: i64) -> Statement {
    Update {
        table: "checks",
        set: vec![("reminded_at", param(at))],
        conditions: vec![
            col("id").eq(param(id)),
            match seen {
                Some(t) => col("reminded_at").eq(param(t)),
                None => col("reminded_at").is_null(),
            },
        ],
        returning: vec![],
    }
    .into()
}

pub fn notification_claim(id: i64, seen_next_try: i64, until: i64) -> Statement {
    Update {
        table: "notifications",
        set: vec![("next_try_at", param(until))],
        conditions: vec![
            col("id").eq(param(id)),
            col("next_try_at").eq(param(seen_next_try)),
        ],
        returning: vec![],
    }
    .into()
}

/// The run columns without output and transcript, for lists.
pub const RUN_SUMMARY_COLUMNS: &[&str] = &[
    "id",
    "job_id",
    "schedule_id",
    "script",
    "script_version",
    "host",
    "node",
    "status",
    "message",
    "perfdata",
    "started_at",
    "finished_at",
    "attempt",
    "phase",
    "check_name",
    "repeats",
];

/// The latest runs that did not end OK.
pub fn run_failures(limit: u64) -> Statement {
    named(RUN_SUMMARY_COLUMNS)
        .filter(qcol("r", "status").ne(lit("ok")))
        .with(Section::OrderBy(vec![(qcol("r", "id"), Order::Desc)]))
        .with(Section::Limit(limit.max(1)))
        .into()
}

/// Rows of the totals per status: a run counts in the row of its id modulo this.
pub const TOTAL_STRIPES: i64 = 16;

/// One more run of a status, `ms` long, in the totals (the row of run `id`'s stripe).
pub fn run_total_add(status: &str, id: i64, ms: i64) -> Statement {
    run_totals_add(status, id.rem_euclid(TOTAL_STRIPES), 1, ms)
}

/// Adds `runs` runs that took `ms` in all to a status's totals, on one stripe.
pub fn run_totals_add(status: &str, stripe: i64, runs: i64, ms: i64) -> Statement {
    Update {
        table: "run_totals",
        set: vec![
            ("runs", col("runs") + param(runs)),
            ("ms", col("ms") + param(ms)),
        ],
        conditions: vec![
            col("status").eq(param(status)),
            col("stripe").eq(param(stripe)),
        ],
        returning: Vec::new(),
    }
    .into()
}

/// A row of the totals, made with the schema (or its upgrade) for every status and stripe.
pub fn run_total_insert(status: &str, stripe: i64, runs: i64, ms: i64) -> Statement {
    Insert {
        table: "run_totals",
        values: vec![
            ("status", param(status)),
            ("stripe", param(stripe)),
            ("runs", param(runs)),
            ("ms", param(ms)),
        ],
        returning_id: None,
    }
    .into()
}

/// Every row of the totals (a reader adds each status's stripes up: a SUM of BIGINT would
/// come back from PostgreSQL as NUMERIC).
pub fn run_totals() -> Statement {
    Select::from("run_totals")
        .columns(&["status", "runs", "ms"])
        .into()
}

/// Runs kept, by status: how many (a row may stand for several OK runs), and the summed
/// duration of the rows in milliseconds (the upgrade to schema 5 starts the totals from it).
pub fn run_stats() -> Statement {
    Select::from("runs")
        .with(Section::Columns(vec![
            (col("status"), Some("status")),
            // A row may stand for several OK runs in a row (`repeats`).
            (
                Expr::Func(crate::sql::Func::Sum, vec![col("repeats")]),
                Some("n"),
            ),
            (
                Expr::Func(
                    crate::sql::Func::Sum,
                    vec![col("finished_at") - col("started_at")],
                ),
                Some("ms"),
            ),
        ]))
        .with(Section::GroupBy(vec![col("status")]))
        .into()
}

/// Notifications whose last delivery attempt failed.
pub fn notification_failures() -> Statement {
    Select::from("notifications")
        .with(Section::Columns(vec![(Expr::count_star(), Some("n"))]))
        .filter(col("error").is_not_null())
        .filter(col("delivered_at").is_null())
        .into()
}

/// Marks a run as the one that changed its check's state (housekeeping keeps it longer).
/// A run's transcript.
pub fn transcript_of(run: i64) -> Statement {
    Select::from("run_transcripts")
        .columns(&["transcript"])
        .filter(col("run_id").eq(param(run)))
        .with(Section::OrderBy(vec![(col("id"), Order::Desc)]))
        .with(Section::Limit(1))
        .into()
}

pub fn transcript_insert(run: i64, started_at: i64, transcript: &str) -> Statement {
    Insert {
        table: "run_transcripts",
        values: vec![
            ("run_id", param(run)),
            ("started_at", param(started_at)),
            ("transcript", param(transcript)),
        ],
        returning_id: None,
    }
    .into()
}

/// Runs that still hold a transcript in their own row (schema version 3 and before), a batch
/// at a time from `after` on (the upgrade to 4 moves them).
pub fn legacy_transcripts(after: i64, limit: u64) -> Statement {
    Select::from("runs")
        .columns(&["id", "started_at", "transcript"])
        .filter(col("id").gt(param(after)))
        // LIKE: SQL Server 2000 compares no NTEXT with `<>`.
        .filter(col("transcript").like(lit("_%")))
        .with(Section::OrderBy(vec![(col("id"), Order::Asc)]))
        .with(Section::Limit(limit))
        .into()
}

/// Empties the old transcript column of these runs.
pub fn legacy_transcripts_clear(ids: Vec<i64>) -> Statement {
    Update {
        table: "runs",
        set: vec![("transcript", lit(""))],
        conditions: vec![col("id").in_list(ids.into_iter().map(param).collect())],
        returning: Vec::new(),
    }
    .into()
}

/// Whose OK runs a new OK run may join: a schedule's, or pushed results' (pings, passive
/// results), which have no schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    Schedule(i64),
    Pushed,
}

/// A check's row (as [`check_get`]) and, in one read, what a new OK run of it needs to join
/// the row of the runs before it ([`run_repeat`]): in column `quiet` its last run's id if that
/// is an OK run of the same kind (`of`) that changed nothing, outside a correction loop, and
/// told nothing (else NULL); in `transcripts`, how many transcript rows that run has (a
/// joined row's are replaced only when there are some).
pub fn check_and_quiet(host: Option<&str>, script: &str, of: Quiet) -> Statement {
    let last = || qcol("c", "last_run_id");
    let told = Select::from("notifications")
        .columns(&["id"])
        .filter(col("run_id").eq(last()));
    let (schedule, phase) = match of {
        Quiet::Schedule(s) => (
            col("schedule_id").eq(param(s)),
            col("phase")
                .is_null()
                .or(col("phase").eq(lit(crate::store::RunPhase::Check.as_str()))),
        ),
        Quiet::Pushed => (
            col("schedule_id").is_null(),
            col("phase").eq(lit(crate::store::RunPhase::Passive.as_str())),
        ),
    };
    let quiet = Select::from("runs")
        .columns(&["id"])
        .filter(col("id").eq(last()))
        .filter(schedule)
        .filter(col("status").eq(lit("ok")))
        .filter(col("changed").eq(lit(false)))
        .filter(phase)
        .filter(Expr::Not(Box::new(Expr::Exists(Box::new(told)))));
    let transcripts = Select::from("run_transcripts")
        .with(Section::Columns(vec![(Expr::count_star(), None)]))
        .filter(col("run_id").eq(last()));
    // Locked as [`check_for_update`] locks it.
    let mut s = Select::from_as("checks", "c")
        .columns(CHECK_COLUMNS)
        .with(Section::Columns(vec![
            (Expr::Sub(Box::new(quiet)), Some("quiet")),
            (Expr::Sub(Box::new(transcripts)), Some("transcripts")),
        ]))
        .with(Section::Lock(Lock::ForUpdate));
    for c in this_check(host, script) {
        s = s.filter(c);
    }
    s.into()
}

/// A run joins the row of the OK runs before it: the row takes its fields, and counts it.
pub fn run_repeat(id: i64, values: Vec<(&'static str, Expr)>) -> Statement {
    let mut set = values;
    set.push(("repeats", col("repeats") + lit(1)));
    Update {
        table: "runs",
        set,
        conditions: vec![col("id").eq(param(id))],
        returning: Vec::new(),
    }
    .into()
}

pub fn run_mark_changed(id: i64) -> Statement {
    Update {
        table: "runs",
        set: vec![("changed", lit(true))],
        conditions: vec![col("id").eq(param(id))],
        returning: Vec::new(),
    }
    .into()
}
