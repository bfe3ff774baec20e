//! Statements on heartbeats (checks fed from outside by pings).

use super::*;

pub const HEARTBEAT_COLUMNS: &[&str] = &[
    "id",
    "name",
    "host",
    "every_ms",
    "grace_ms",
    "cron",
    "last_ping_at",
    "last_start_at",
    "missed_at",
    "author",
    "created_at",
    "fix",
    "managed",
];

/// One heartbeat, as it stands.
pub fn heartbeat_get(id: i64) -> Statement {
    Select::from("heartbeats")
        .columns(HEARTBEAT_COLUMNS)
        .filter(col("id").eq(param(id)))
        .into()
}

/// Every heartbeat, by host then name.
pub fn heartbeat_list() -> Statement {
    Select::from("heartbeats")
        .columns(HEARTBEAT_COLUMNS)
        .with(Section::OrderBy(vec![
            (col("host"), Order::Asc),
            (col("name"), Order::Asc),
        ]))
        .into()
}

/// The heartbeat a token's hash opens.
pub fn heartbeat_by_token(hash: &str) -> Statement {
    Select::from("heartbeats")
        .columns(HEARTBEAT_COLUMNS)
        .filter(col("token_hash").eq(param(hash)))
        .into()
}

pub fn heartbeat_insert(values: Vec<(&'static str, Expr)>) -> Statement {
    Insert {
        table: "heartbeats",
        values,
        returning_id: Some("id"),
    }
    .into()
}

/// Changes a heartbeat's settings.
pub fn heartbeat_update(id: i64, set: Vec<(&'static str, Expr)>) -> Statement {
    Update {
        table: "heartbeats",
        set,
        conditions: vec![col("id").eq(param(id))],
        returning: vec![],
    }
    .into()
}

pub fn heartbeat_delete(id: i64) -> Statement {
    Delete {
        table: "heartbeats",
        conditions: vec![col("id").eq(param(id))],
    }
    .into()
}

/// A host's heartbeats, which go with it.
pub fn heartbeat_delete_of(host: &str) -> Statement {
    Delete {
        table: "heartbeats",
        conditions: vec![col("host").eq(param(host))],
    }
    .into()
}

/// A ping came at `at`: a start (`start`), or a result, which clears a missed deadline.
pub fn heartbeat_pinged(id: i64, at: i64, start: bool) -> Statement {
    let set = if start {
        vec![("last_start_at", param(at))]
    } else {
        vec![
            ("last_ping_at", param(at)),
            ("missed_at", param(None::<i64>)),
        ]
    };
    Update {
        table: "heartbeats",
        set,
        conditions: vec![col("id").eq(param(id))],
        returning: vec![],
    }
    .into()
}

/// Marks the missing ping recorded at `at`, once: a second node that saw it changes nothing.
pub fn heartbeat_missed(id: i64, at: i64) -> Statement {
    Update {
        table: "heartbeats",
        set: vec![("missed_at", param(at))],
        conditions: vec![col("id").eq(param(id)), col("missed_at").is_null()],
        returning: vec![],
    }
    .into()
}
