//! Statements on checks.

use super::*;

pub const CHECK_COLUMNS: &[&str] = &[
    "id",
    "host",
    "script",
    "state",
    "hard",
    "attempts",
    "since",
    "last_run_id",
    "last_run_at",
    "message",
    "perfdata",
    "notified",
    "acked",
    "ack_comment",
    "changes",
    "flapping",
];

pub const DOWNTIME_COLUMNS: &[&str] = &[
    "id",
    "host",
    "tag",
    "script",
    "starts_at",
    "ends_at",
    "reason",
    "author",
    "created_at",
];

/// A host's (or no host's) check of a script.
fn this_check(host: Option<&str>, script: &str) -> Vec<Expr> {
    vec![
        match host {
            Some(h) => col("host").eq(param(h)),
            None => col("host").is_null(),
        },
        col("script").eq(param(script)),
    ]
}

pub fn check_get(host: Option<&str>, script: &str) -> Statement {
    let mut s = Select::from("checks").columns(CHECK_COLUMNS);
    for c in this_check(host, script) {
        s = s.filter(c);
    }
    s.into()
}

/// Every check, by host then script.
pub fn check_list() -> Statement {
    Select::from("checks")
        .columns(CHECK_COLUMNS)
        .with(Section::OrderBy(vec![
            (col("host"), Order::Asc),
            (col("script"), Order::Asc),
        ]))
        .into()
}

pub fn check_insert(values: Vec<(&'static str, Expr)>) -> Statement {
    Insert {
        table: "checks",
        values,
        returning_id: Some("id"),
    }
    .into()
}

pub fn check_update(id: i64, set: Vec<(&'static str, Expr)>) -> Statement {
    Update {
        table: "checks",
        set,
        conditions: vec![col("id").eq(param(id))],
        returning: vec![],
    }
    .into()
}

/// The checks of a host or of a script (`column` is `host` or `script`), which go with it.
pub fn check_delete_of(column: &'static str, name: &str) -> Statement {
    Delete {
        table: "checks",
        conditions: vec![col(column).eq(param(name))],
    }
    .into()
}

pub fn check_delete(id: i64) -> Statement {
    Delete {
        table: "checks",
        conditions: vec![col("id").eq(param(id))],
    }
    .into()
}

/// Downtimes that have not ended by `at`, by start.
pub fn downtime_list(at: i64) -> Statement {
    Select::from("downtimes")
        .columns(DOWNTIME_COLUMNS)
        .filter(col("ends_at").gt(param(at)))
        .with(Section::OrderBy(vec![
            (col("starts_at"), Order::Asc),
            (col("id"), Order::Asc),
        ]))
        .into()
}

pub fn downtime_insert(values: Vec<(&'static str, Expr)>) -> Statement {
    Insert {
        table: "downtimes",
        values,
        returning_id: Some("id"),
    }
    .into()
}

/// Ends a downtime that has begun at `at` (its end is then told like any other).
pub fn downtime_end(id: i64, at: i64) -> Statement {
    Update {
        table: "downtimes",
        set: vec![("ends_at", param(at))],
        conditions: vec![
            col("id").eq(param(id)),
            col("starts_at").le(param(at)),
            col("ends_at").gt(param(at)),
        ],
        returning: vec![],
    }
    .into()
}

/// Removes a downtime that has not begun by `at`.
pub fn downtime_delete(id: i64, at: i64) -> Statement {
    Delete {
        table: "downtimes",
        conditions: vec![col("id").eq(param(id)), col("starts_at").gt(param(at))],
    }
    .into()
}

/// Downtimes whose start (`start_told`) or end (`end_told`) came by `at` and was not told.
pub fn downtime_due(flag: &'static str, at: i64) -> Statement {
    let time = if flag == "start_told" {
        "starts_at"
    } else {
        "ends_at"
    };
    Select::from("downtimes")
        .columns(DOWNTIME_COLUMNS)
        .filter(col(flag).eq(lit(false)))
        .filter(col(time).le(param(at)))
        .into()
}

/// Marks a start or end told; a second node that saw the same changes nothing.
pub fn downtime_told(id: i64, flag: &'static str) -> Statement {
    Update {
        table: "downtimes",
        set: vec![(flag, lit(true))],
        conditions: vec![col("id").eq(param(id)), col(flag).eq(lit(false))],
        returning: vec![],
    }
    .into()
}
