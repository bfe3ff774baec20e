//! Statements on schedules.

use super::*;

pub fn schedule_by_id(id: i64) -> Statement {
    schedule_list()
        .filter(qcol("sc", "id").eq(param(id)))
        .into()
}

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
        "retries",
        "retry_every_ms",
        "name",
        "args",
        "fix_args",
        "sites",
        "quorum",
        "managed",
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

/// Enabled schedules that are due, or fall due within `ahead_ms` (fired ahead: their jobs are
/// queued for their due time).
pub fn schedule_due(ahead_ms: i64) -> Statement {
    schedule_list()
        .filter(qcol("sc", "enabled").eq(lit(true)))
        .filter(qcol("sc", "next_due").le(now() + param(ahead_ms)))
        .into()
}

/// When the next enabled schedule falls due, so the daemon wakes then and fires it on time.
pub fn schedule_next_due() -> Statement {
    Select::from("schedules")
        .with(Section::Columns(vec![(col("next_due").min(), Some("due"))]))
        .filter(col("enabled").eq(lit(true)))
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

/// Changes a schedule in place (its id, and so its checks, stay).
pub fn schedule_update(id: i64, set: Vec<(&'static str, Expr)>) -> Statement {
    Update {
        table: "schedules",
        set,
        conditions: vec![col("id").eq(param(id))],
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

/// A schedule's retries: what `record_run` needs to judge soft from hard.
pub fn schedule_retries(id: i64) -> Statement {
    Select::from("schedules")
        .columns(&["retries", "sites", "quorum"])
        .filter(col("id").eq(param(id)))
        .into()
}
