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
    "sites",
    "told",
    "reminded_at",
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
    "children",
];

pub const DEPENDENCY_COLUMNS: &[&str] = &[
    "id",
    "child_host",
    "child_check",
    "parent_host",
    "parent_check",
    "grp",
    "author",
    "created_at",
    "managed",
];

/// A host's (or no host's) check of a script.
pub(super) fn this_check(host: Option<&str>, script: &str) -> Vec<Expr> {
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

/// [`check_get`], the row locked for the write that follows: a run recorded by another node
/// at the same time (a quorum's sites) waits, then reads what that one wrote, instead of
/// writing over it.
pub fn check_for_update(host: Option<&str>, script: &str) -> Statement {
    let mut s = Select::from("checks")
        .columns(CHECK_COLUMNS)
        .with(Section::Lock(Lock::ForUpdate));
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

/// A host's checks.
pub fn check_list_of_host(host: &str) -> Statement {
    Select::from("checks")
        .columns(CHECK_COLUMNS)
        .filter(col("host").eq(param(host)))
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

/// Every dependency, by child then parent.
pub fn dependency_list() -> Statement {
    Select::from("dependencies")
        .columns(DEPENDENCY_COLUMNS)
        .with(Section::OrderBy(vec![
            (col("child_host"), Order::Asc),
            (col("child_check"), Order::Asc),
            (col("parent_host"), Order::Asc),
            (col("parent_check"), Order::Asc),
        ]))
        .into()
}

/// The dependencies of a host's checks (whole-host ones and each check's).
pub fn dependency_of_child(host: &str) -> Statement {
    Select::from("dependencies")
        .columns(DEPENDENCY_COLUMNS)
        .filter(col("child_host").eq(param(host)))
        .into()
}

/// The dependencies on one parent check.
pub fn dependency_of_parent(host: &str, check: &str) -> Statement {
    Select::from("dependencies")
        .columns(DEPENDENCY_COLUMNS)
        .filter(col("parent_host").eq(param(host)))
        .filter(col("parent_check").eq(param(check)))
        .into()
}

pub fn dependency_insert(values: Vec<(&'static str, Expr)>) -> Statement {
    Insert {
        table: "dependencies",
        values,
        returning_id: Some("id"),
    }
    .into()
}

pub fn dependency_delete(id: i64) -> Statement {
    Delete {
        table: "dependencies",
        conditions: vec![col("id").eq(param(id))],
    }
    .into()
}

/// The dependencies of a host or on a host (`column` is `child_host` or `parent_host`), which
/// go with it.
pub fn dependency_delete_of(column: &'static str, host: &str) -> Statement {
    Delete {
        table: "dependencies",
        conditions: vec![col(column).eq(param(host))],
    }
    .into()
}
