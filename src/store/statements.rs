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

/// Jobs that may start now: queued and due, or running under a lease that has expired
/// (their node died; the claim counts the attempt again).
pub fn due_jobs(j: &'static str) -> Section {
    Section::Where(vec![Expr::Or(vec![
        qcol(j, "state")
            .eq(lit("queued"))
            .and(qcol(j, "due_at").le(now())),
        qcol(j, "state")
            .eq(lit("running"))
            .and(qcol(j, "lease_until").lt(now())),
    ])])
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

/// The next job to start: due, host not busy, in queue order.
pub fn next_job(per_host: i64, site: Option<&str>) -> Select {
    let mut s = Select::from_as("jobs", "j")
        .with(Section::Columns(vec![(qcol("j", "id"), None)]))
        .with(due_jobs("j"))
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
pub fn job_claim(owner: &str, lease_ms: i64, per_host: i64, site: Option<&str>) -> Statement {
    Update {
        table: "jobs",
        set: vec![
            ("state", lit("running")),
            ("lease_owner", param(owner)),
            ("lease_until", now() + param(lease_ms)),
            ("attempts", col("attempts") + lit(1)),
        ],
        conditions: vec![col("id").in_select(next_job(per_host, site))],
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
                col("lease_until").lt(now()),
            ]),
        ],
        returning: vec![],
    }
    .into()
}

pub fn job_delete(id: i64) -> Statement {
    Delete {
        table: "jobs",
        conditions: vec![col("id").eq(param(id))],
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
        ("job_claim", job_claim("node-a", 60_000, 1, None)),
        (
            "job_claim_site",
            job_claim("node-a", 60_000, 2, Some("dc1")),
        ),
        ("job_next", next_job(1, None).into()),
        ("job_claim_by_id", job_claim_by_id(7, "node-a", 60_000)),
        ("job_delete", job_delete(7)),
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
