//! Every statement the store runs, built from sections. [`catalog`] lists one instance of each
//! so tests can render all of them in every dialect.
//!
//! The queue rules are sections, written once: [`due_jobs`], [`host_not_busy`] and
//! [`queue_order`] are combined by the claim and by the listing of what would run next.

use crate::sql::{
    Delete, Expr, Insert, Join, JoinKind, Lock, Order, Section, Select, Statement, Update, Upsert,
    Value, col, lit, now, param, qcol,
};

pub const HOST_COLUMNS: &[&str] = &[
    "id",
    "name",
    "address",
    "port",
    "method",
    "username",
    "key_path",
    "prompt",
    "site",
    "tags",
    "vars",
    "keep_session",
    "enabled",
];
pub const SCRIPT_COLUMNS: &[&str] = &[
    "id",
    "name",
    "source",
    "description",
    "kind",
    "version",
    "updated_at",
];
pub const RUN_COLUMNS: &[&str] = &[
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
    "output",
    "transcript",
    "started_at",
    "finished_at",
    "attempt",
    "phase",
];
pub const NOTIFICATION_COLUMNS: &[&str] = &[
    "id",
    "run_id",
    "host",
    "subject",
    "body",
    "channel",
    "created_at",
    "delivered_at",
    "error",
    "tries",
    "next_try_at",
];

// ---- settings ----

pub fn setting_get(key: &str) -> Statement {
    Select::from("settings")
        .columns(&["value"])
        .filter(col("key").eq(param(key)))
        .into()
}

pub fn setting_set(key: &str, value: &str) -> Statement {
    Upsert {
        table: "settings",
        key: vec!["key"],
        values: vec![("key", param(key)), ("value", param(value))],
        update: vec!["value"],
    }
    .into()
}

// ---- hosts ----

pub fn host_list() -> Select {
    Select::from("hosts")
        .columns(HOST_COLUMNS)
        .with(Section::Columns(vec![(
            col("secret").is_not_null(),
            Some("has_secret"),
        )]))
        .with(Section::OrderBy(vec![(col("name"), Order::Asc)]))
}

pub fn host_by_name(name: &str) -> Statement {
    host_list().filter(col("name").eq(param(name))).into()
}

pub fn host_secret(name: &str) -> Statement {
    Select::from("hosts")
        .columns(&["secret"])
        .filter(col("name").eq(param(name)))
        .into()
}

pub fn host_insert(values: Vec<(&'static str, Expr)>) -> Statement {
    Insert {
        table: "hosts",
        values,
        returning_id: Some("id"),
    }
    .into()
}

pub fn host_delete(name: &str) -> Statement {
    Delete {
        table: "hosts",
        conditions: vec![col("name").eq(param(name))],
    }
    .into()
}

// ---- scripts ----

pub fn script_list() -> Select {
    Select::from("scripts")
        .columns(SCRIPT_COLUMNS)
        .with(Section::OrderBy(vec![(col("name"), Order::Asc)]))
}

pub fn script_by_name(name: &str) -> Statement {
    script_list().filter(col("name").eq(param(name))).into()
}

/// Name and version only: what the module cache needs to decide whether to recompile.
pub fn script_version(name: &str) -> Statement {
    Select::from("scripts")
        .columns(&["id", "version"])
        .filter(col("name").eq(param(name)))
        .into()
}

pub fn script_insert(
    name: &str,
    source: &str,
    description: Option<&str>,
    kind: &str,
    at: i64,
) -> Statement {
    Insert {
        table: "scripts",
        values: vec![
            ("name", param(name)),
            ("source", param(source)),
            ("description", param(description)),
            ("kind", param(kind)),
            ("version", lit(1)),
            ("updated_at", param(at)),
        ],
        returning_id: Some("id"),
    }
    .into()
}

/// Replaces a script's source and bumps its version, which invalidates cached compilations.
pub fn script_update(
    name: &str,
    source: &str,
    description: Option<&str>,
    kind: &str,
    at: i64,
) -> Statement {
    Update {
        table: "scripts",
        set: vec![
            ("source", param(source)),
            ("description", param(description)),
            ("kind", param(kind)),
            ("version", col("version") + lit(1)),
            ("updated_at", param(at)),
        ],
        conditions: vec![col("name").eq(param(name))],
        returning: vec![],
    }
    .into()
}

pub fn script_delete(name: &str) -> Statement {
    Delete {
        table: "scripts",
        conditions: vec![col("name").eq(param(name))],
    }
    .into()
}

// ---- jobs: the queue rules ----

/// Jobs that may start now: queued and due.
/// The due time is kept away from the index on (state, due_at): SQLite would pick it, then sort
/// every due job for each claim; the index on (state, priority DESC, due_at, id) instead yields
/// them in queue order, so a claim stops at the first runnable job however long the queue.
pub fn due_jobs(j: &'static str) -> Section {
    Section::Where(vec![
        qcol(j, "state").eq(lit("queued")),
        qcol(j, "due_at").unindexed().le(now()),
    ])
}

/// Jobs whose node died: running under a lease that has expired. A claim takes them back and
/// counts the attempt again, so the re-run shows in the history.
pub fn expired_jobs(j: &'static str) -> Section {
    Section::Where(vec![
        qcol(j, "state").eq(lit("running")),
        qcol(j, "lease_until").lt(now()),
    ])
}

/// ... whose host is not busy: fewer than `per_host` jobs of that host run under a live lease.
/// Jobs without a host are never held back by this rule.
pub fn host_not_busy(j: &'static str, per_host: i64) -> Section {
    let busy = Select::from_as("jobs", "busy")
        .with(Section::Columns(vec![(Expr::count_star(), None)]))
        .filter(qcol("busy", "host_id").eq(qcol(j, "host_id")))
        .filter(qcol("busy", "state").eq(lit("running")))
        .filter(qcol("busy", "lease_until").ge(now()));
    Section::Where(vec![Expr::Or(vec![
        qcol(j, "host_id").is_null(),
        Expr::Sub(Box::new(busy)).lt(param(per_host)),
    ])])
}

/// Higher priority first, then earlier due time, then lower id (FIFO within a priority).
pub fn queue_order(j: &'static str) -> Section {
    Section::OrderBy(vec![
        (qcol(j, "priority"), Order::Desc),
        (qcol(j, "due_at"), Order::Asc),
        (qcol(j, "id"), Order::Asc),
    ])
}

/// A node with a site claims only jobs of hosts in its site.
pub fn in_site(j: &'static str, site: &str) -> Section {
    let hosts = Select::from("hosts")
        .columns(&["id"])
        .filter(col("site").eq(param(site)));
    Section::Where(vec![qcol(j, "host_id").in_select(hosts)])
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

pub fn job_insert(script_id: i64, host_id: Option<i64>, job: &super::NewJob, at: i64) -> Statement {
    Insert {
        table: "jobs",
        values: vec![
            ("script_id", param(script_id)),
            ("host_id", param(host_id)),
            ("priority", param(job.priority)),
            ("due_at", param(job.due_at)),
            ("state", lit("queued")),
            ("attempts", lit(0)),
            ("max_attempts", param(job.max_attempts)),
            ("timeout_ms", param(job.timeout_ms)),
            ("schedule_id", param(job.schedule_id)),
            ("args", param(job.args.clone())),
            ("created_at", param(at)),
        ],
        returning_id: Some("id"),
    }
    .into()
}

/// The next job to start: due (or `expired`), host not busy, in queue order.
pub fn next_job(per_host: i64, site: Option<&str>, expired: bool) -> Select {
    let mut s = Select::from_as("jobs", "j")
        .with(Section::Columns(vec![(qcol("j", "id"), None)]))
        .with(if expired {
            expired_jobs("j")
        } else {
            due_jobs("j")
        })
        .with(host_not_busy("j", per_host))
        .with(queue_order("j"))
        .with(Section::Limit(1))
        .with(Section::Lock(Lock::SkipLocked));
    if let Some(site) = site {
        s = s.with(in_site("j", site));
    }
    s
}

/// Claims the next job for `owner` for `lease_ms`, counting the attempt.
/// One statement, so the choice and the claim cannot be separated by another node.
/// The lease is set and checked with the database's clock, so nodes' clocks need not agree.
pub fn job_claim(
    owner: &str,
    lease_ms: i64,
    per_host: i64,
    site: Option<&str>,
    expired: bool,
) -> Statement {
    Update {
        table: "jobs",
        set: vec![
            ("state", lit("running")),
            ("lease_owner", param(owner)),
            ("lease_until", now() + param(lease_ms)),
            ("attempts", col("attempts") + lit(1)),
        ],
        conditions: vec![col("id").in_select(next_job(per_host, site, expired))],
        returning: vec!["id"],
    }
    .into()
}

/// Claims one chosen job, for dialects without UPDATE ... RETURNING (SQL Server 2000, MySQL):
/// the store selects [`next_job`] with its lock hint and runs this in the same transaction.
/// The state condition makes a lost race change no row instead of stealing a live lease.
pub fn job_claim_by_id(id: i64, owner: &str, lease_ms: i64) -> Statement {
    Update {
        table: "jobs",
        set: vec![
            ("state", lit("running")),
            ("lease_owner", param(owner)),
            ("lease_until", now() + param(lease_ms)),
            ("attempts", col("attempts") + lit(1)),
        ],
        conditions: vec![
            col("id").eq(param(id)),
            Expr::Or(vec![
                col("state").eq(lit("queued")),
                col("state")
                    .eq(lit("running"))
                    .and(col("lease_until").lt(now())),
            ]),
        ],
        returning: vec![],
    }
    .into()
}

/// Deletes a finished job. With an owner, only while that node still holds its lease: a node
/// whose lease expired must not remove the row another node is running.
pub fn job_delete(id: i64, owner: Option<&str>) -> Statement {
    let mut conditions = vec![col("id").eq(param(id))];
    if let Some(o) = owner {
        conditions.push(col("lease_owner").eq(param(o)));
    }
    Delete {
        table: "jobs",
        conditions,
    }
    .into()
}

// ---- runs ----

pub fn run_insert(values: Vec<(&'static str, Expr)>) -> Statement {
    Insert {
        table: "runs",
        values,
        returning_id: Some("id"),
    }
    .into()
}

pub fn run_by_id(id: i64) -> Statement {
    Select::from("runs")
        .columns(RUN_COLUMNS)
        .filter(col("id").eq(param(id)))
        .into()
}

pub fn run_list(f: &super::RunFilter) -> Statement {
    let mut s = Select::from("runs")
        .columns(RUN_COLUMNS)
        .with(Section::OrderBy(vec![(col("id"), Order::Desc)]))
        .with(Section::Limit(f.limit.max(1)));
    if let Some(h) = &f.host {
        s = s.filter(col("host").eq(param(h.as_str())));
    }
    if let Some(sc) = &f.script {
        s = s.filter(col("script").eq(param(sc.as_str())));
    }
    if let Some(st) = f.status {
        s = s.filter(col("status").eq(param(st.as_str())));
    }
    if let Some(b) = f.before_id {
        s = s.filter(col("id").lt(param(b)));
    }
    s.into()
}

// ---- notifications ----

pub fn notification_insert(
    run_id: Option<i64>,
    host: Option<&str>,
    subject: &str,
    body: &str,
    at: i64,
) -> Statement {
    Insert {
        table: "notifications",
        values: vec![
            ("run_id", param(run_id)),
            ("host", param(host)),
            ("subject", param(subject)),
            ("body", param(body)),
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

/// Gives a job back to the queue: a retry at `due_at`, or (`release`) a shutdown handing it
/// back with the claim's attempt undone.
pub fn job_requeue(id: i64, due_at: i64, release: bool, owner: &str) -> Statement {
    let mut set = vec![
        ("state", lit("queued")),
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

/// The state of some jobs, to see which of a node's running jobs were asked to cancel.
pub fn job_states(ids: &[i64]) -> Statement {
    Select::from("jobs")
        .columns(&["id", "state", "lease_owner"])
        .filter(col("id").in_list(ids.iter().map(|i| param(*i)).collect()))
        .into()
}

/// Asks the node running a job to cancel it.
pub fn job_cancel(id: i64) -> Statement {
    Update {
        table: "jobs",
        set: vec![("state", lit("cancelling"))],
        conditions: vec![col("id").eq(param(id)), col("state").eq(lit("running"))],
        returning: vec![],
    }
    .into()
}

/// Removes a job only while it is still queued (a claim may have won the race).
pub fn job_delete_queued(id: i64) -> Statement {
    Delete {
        table: "jobs",
        conditions: vec![col("id").eq(param(id)), col("state").eq(lit("queued"))],
    }
    .into()
}

/// A queued job of the same script and host: enqueueing another would duplicate it. A running
/// one does not count, so a script can queue its own follow-up.
pub fn job_queued_for(script_id: i64, host_id: Option<i64>) -> Statement {
    let host = match host_id {
        Some(h) => col("host_id").eq(param(h)),
        None => col("host_id").is_null(),
    };
    Select::from("jobs")
        .columns(&["id"])
        .filter(col("script_id").eq(param(script_id)))
        .filter(host)
        .filter(col("state").eq(lit("queued")))
        .with(Section::Limit(1))
        .into()
}

/// How many jobs (queued or running) use a host or a script.
pub fn jobs_using(column: &'static str, id: i64) -> Statement {
    Select::from("jobs")
        .with(Section::Columns(vec![(Expr::count_star(), Some("n"))]))
        .filter(col(column).eq(param(id)))
        .into()
}

pub fn schedule_by_id(id: i64) -> Statement {
    schedule_list()
        .filter(qcol("sc", "id").eq(param(id)))
        .into()
}

/// When the next queued job falls due, so the daemon sleeps exactly until then.
pub fn job_next_due() -> Statement {
    Select::from("jobs")
        .with(Section::Columns(vec![(col("due_at").min(), Some("due"))]))
        .filter(col("state").eq(lit("queued")))
        .into()
}

/// Jobs asked to cancel whose node died: nobody will finish them, so they are reaped.
pub fn job_reap() -> Statement {
    Select::from_as("jobs", "j")
        .with(job_with_names("j"))
        .filter(qcol("j", "state").eq(lit("cancelling")))
        .filter(qcol("j", "lease_until").lt(now()))
        .into()
}

/// How many runs of a script a schedule made on a host since a time, and the latest start.
pub fn run_count(schedule_id: i64, host: Option<&str>, script: &str, since: i64) -> Statement {
    Select::from("runs")
        .with(Section::Columns(vec![
            (Expr::count_star(), Some("n")),
            (col("started_at").max(), Some("latest")),
        ]))
        .filter(col("schedule_id").eq(param(schedule_id)))
        .filter(match host {
            Some(h) => col("host").eq(param(h)),
            None => col("host").is_null(),
        })
        .filter(col("script").eq(param(script)))
        .filter(col("started_at").ge(param(since)))
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
        ("channel", param(channel)),
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

pub fn notification_count(host: Option<&str>, subject: &str, since: i64) -> Statement {
    Select::from("notifications")
        .with(Section::Columns(vec![(Expr::count_star(), Some("n"))]))
        .filter(match host {
            Some(h) => col("host").eq(param(h)),
            None => col("host").is_null(),
        })
        .filter(col("subject").eq(param(subject)))
        .filter(col("created_at").ge(param(since)))
        .into()
}

// ---- schedules ----

/// Schedules with their script, fix script and host names.
pub fn schedule_list() -> Select {
    let cols = [
        "id",
        "tag",
        "site",
        "priority",
        "kind",
        "at_time",
        "every_ms",
        "cron",
        "timeout_ms",
        "max_attempts",
        "next_due",
        "guard_max_fixes",
        "guard_window_ms",
        "guard_backoff_ms",
        "allow_duplicate",
        "enabled",
    ];
    Select::from_as("schedules", "sc")
        .with(Section::Columns(
            cols.iter()
                .map(|c| (qcol("sc", c), None))
                .chain([
                    (qcol("s", "name"), Some("script")),
                    (qcol("f", "name"), Some("fix_script")),
                    (qcol("h", "name"), Some("host")),
                ])
                .collect(),
        ))
        .with(Section::Join(Join {
            kind: JoinKind::Inner,
            table: "scripts",
            alias: "s",
            on: qcol("s", "id").eq(qcol("sc", "script_id")),
        }))
        .with(Section::Join(Join {
            kind: JoinKind::Left,
            table: "scripts",
            alias: "f",
            on: qcol("f", "id").eq(qcol("sc", "fix_script_id")),
        }))
        .with(Section::Join(Join {
            kind: JoinKind::Left,
            table: "hosts",
            alias: "h",
            on: qcol("h", "id").eq(qcol("sc", "host_id")),
        }))
        .with(Section::OrderBy(vec![(qcol("sc", "id"), Order::Asc)]))
}

/// Enabled schedules that are due.
pub fn schedule_due() -> Statement {
    schedule_list()
        .filter(qcol("sc", "enabled").eq(lit(true)))
        .filter(qcol("sc", "next_due").le(now()))
        .into()
}

pub fn schedule_insert(values: Vec<(&'static str, Expr)>) -> Statement {
    Insert {
        table: "schedules",
        values,
        returning_id: Some("id"),
    }
    .into()
}

/// Moves a schedule from the due time a node saw to the next one (a one-shot schedule is
/// disabled instead). The old time in the condition makes a second node that saw the same due
/// time change nothing, so a schedule fires once however many daemons share the database.
pub fn schedule_advance(id: i64, seen_due: i64, next_due: Option<i64>, enabled: bool) -> Statement {
    Update {
        table: "schedules",
        set: vec![("next_due", param(next_due)), ("enabled", param(enabled))],
        conditions: vec![col("id").eq(param(id)), col("next_due").eq(param(seen_due))],
        returning: vec![],
    }
    .into()
}

pub fn schedule_delete(id: i64) -> Statement {
    Delete {
        table: "schedules",
        conditions: vec![col("id").eq(param(id))],
    }
    .into()
}

/// One instance of every statement the store builds, named, for the rendering tests.
pub fn catalog() -> Vec<(&'static str, Statement)> {
    let job = super::NewJob {
        script: "check".into(),
        host: Some("web1".into()),
        priority: 5,
        due_at: 1_700_000_000_000,
        max_attempts: 3,
        timeout_ms: Some(30_000),
        schedule_id: None,
        args: Some("{}".into()),
    };
    let filter = super::RunFilter {
        host: Some("web1".into()),
        script: Some("check".into()),
        status: Some(super::Status::Critical),
        before_id: Some(100),
        limit: 50,
    };
    vec![
        ("schema_exists", Statement::TableExists("settings")),
        ("setting_get", setting_get("schema_version")),
        ("setting_set", setting_set("schema_version", "1")),
        ("host_list", host_list().into()),
        ("host_by_name", host_by_name("web1")),
        ("host_secret", host_secret("web1")),
        (
            "host_insert",
            host_insert(vec![
                ("name", param("web1")),
                ("address", param("192.0.2.1")),
                ("method", param("ssh")),
                ("keep_session", param(true)),
                ("created_at", param(1_700_000_000_000i64)),
                ("updated_at", param(1_700_000_000_000i64)),
            ]),
        ),
        ("host_delete", host_delete("web1")),
        ("script_list", script_list().into()),
        ("script_by_name", script_by_name("check")),
        ("script_version", script_version("check")),
        (
            "script_insert",
            script_insert("check", "ok(\"fine\")", Some("a check"), "check", 1),
        ),
        (
            "script_update",
            script_update("check", "ok(\"fine\")", None, "check", 2),
        ),
        ("script_delete", script_delete("check")),
        ("job_list", job_list()),
        ("job_by_id", job_by_id(7)),
        (
            "job_insert",
            job_insert(1, Some(2), &job, 1_700_000_000_000),
        ),
        ("job_claim", job_claim("node-a", 60_000, 1, None, false)),
        (
            "job_claim_expired",
            job_claim("node-a", 60_000, 1, None, true),
        ),
        (
            "job_claim_site",
            job_claim("node-a", 60_000, 2, Some("dc1"), false),
        ),
        ("job_next", next_job(1, None, false).into()),
        (
            "job_requeue",
            job_requeue(7, 1_700_000_000_000, false, "node-a"),
        ),
        (
            "job_release",
            job_requeue(7, 1_700_000_000_000, true, "node-a"),
        ),
        ("job_renew", job_renew("node-a", &[7, 8], 60_000)),
        ("job_states", job_states(&[7, 8])),
        ("job_cancel", job_cancel(7)),
        ("job_delete_queued", job_delete_queued(7)),
        ("job_queued_for", job_queued_for(1, Some(2))),
        ("job_next_due", job_next_due()),
        ("jobs_using_host", jobs_using("host_id", 2)),
        ("schedule_by_id", schedule_by_id(3)),
        ("job_reap", job_reap()),
        (
            "run_count",
            run_count(3, Some("web1"), "fix_web", 1_700_000_000_000),
        ),
        (
            "notification_pending",
            notification_pending(1_700_000_000_000, 10),
        ),
        (
            "notification_attempt",
            notification_attempt(1, "webhook", 1, Some("HTTP 500"), Some(2)),
        ),
        ("notification_claim", notification_claim(1, 2, 3)),
        (
            "notification_count",
            notification_count(Some("web1"), "guard tripped", 1),
        ),
        ("schedule_list", schedule_list().into()),
        ("schedule_due", schedule_due()),
        (
            "schedule_advance",
            schedule_advance(3, 1_700_000_000_000, Some(1_700_000_060_000), true),
        ),
        ("schedule_delete", schedule_delete(3)),
        ("job_claim_by_id", job_claim_by_id(7, "node-a", 60_000)),
        ("job_delete", job_delete(7, Some("node-a"))),
        (
            "run_insert",
            run_insert(vec![
                ("script", param("check")),
                ("status", param("ok")),
                ("message", param("it's fine")),
                ("started_at", param(1i64)),
                ("finished_at", param(2i64)),
            ]),
        ),
        ("run_by_id", run_by_id(1)),
        ("run_list", run_list(&filter)),
        (
            "notification_insert",
            notification_insert(Some(1), Some("web1"), "down", "body", 1),
        ),
        ("notification_list", notification_list(20)),
        (
            "literal_escaping",
            Select::from("hosts")
                .columns(&["name"])
                .filter(col("name").eq(lit(Value::Text("O'Brien \\ ünï".into()))))
                .filter(col("enabled").eq(lit(true)))
                .into(),
        ),
    ]
}
