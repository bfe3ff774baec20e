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
