//! Applies schema.sql to a new database, or upgrades an older one, in one transaction.
//!
//! The version lives in `settings` under `schema_version`. The check is a read, so a current
//! database opened read-only still works; only a missing or older schema takes the write lock.

use std::sync::OnceLock;

use super::statements;
use super::{Conn, ConnExt, Store, StoreError};
use crate::sql::{Schema, SchemaError, Statement};

/// schema.sql, compiled in.
pub const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// The parsed data model.
pub fn schema() -> Result<&'static Schema, SchemaError> {
    static SCHEMA: OnceLock<Result<Schema, SchemaError>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| Schema::parse(SCHEMA_SQL))
        .as_ref()
        .map_err(Clone::clone)
}

/// What an upgrade step adds, taken from schema.sql itself (a new table is created as a new
/// database would create it, a new column as the schema declares it).
enum Add {
    Table(&'static str),
    Column(&'static str, &'static str),
    Index(&'static str),
}

/// The upgrade step from `from` to the next version.
fn step(from: i64) -> Option<&'static [Add]> {
    match from {
        // 2: checks and their state, downtimes, notifications that say what they tell.
        1 => Some(&[
            Add::Table("checks"),
            Add::Table("downtimes"),
            Add::Column("notifications", "event"),
            Add::Column("notifications", "details"),
            Add::Column("schedules", "retries"),
            Add::Column("schedules", "retry_every_ms"),
        ]),
        // 3: arguments per schedule (and its fix), named checks; perfdata series; what
        // housekeeping needs (runs that changed state, notifications by age).
        2 => Some(&[
            Add::Column("schedules", "name"),
            Add::Column("schedules", "args"),
            Add::Column("schedules", "fix_args"),
            Add::Column("jobs", "name"),
            Add::Column("runs", "check_name"),
            Add::Column("runs", "changed"),
            Add::Table("perf_series"),
            Add::Table("perf_points"),
            Add::Table("perf_trends"),
            Add::Index("notifications_created"),
        ]),
        _ => None,
    }
}

fn upgrade(conn: &mut dyn Conn, schema: &Schema, from: i64) -> Result<(), StoreError> {
    let steps = step(from)
        .ok_or_else(|| StoreError::Db(format!("no upgrade path from schema version {from}")))?;
    let d = conn.dialect();
    for add in steps {
        let ddl = match add {
            Add::Table(t) => schema.table_ddl(t, d),
            Add::Column(t, c) => schema.add_column_ddl(t, c, d).map(|s| vec![s]),
            Add::Index(i) => schema.index_ddl(i, d).map(|s| vec![s]),
        }
        .ok_or_else(|| StoreError::Db("schema.sql lacks what an upgrade step adds".into()))?;
        for stmt in ddl {
            conn.ddl(&stmt)?;
        }
    }
    Ok(())
}

fn version(conn: &mut dyn Conn) -> Result<i64, StoreError> {
    if conn.query(Statement::TableExists("settings"))?.is_empty() {
        return Ok(0);
    }
    match conn.query_one(statements::setting_get("schema_version"))? {
        Some(row) => row.int("value"),
        None => Ok(0),
    }
}

pub fn migrate(store: &Store) -> Result<(), StoreError> {
    let schema = schema().map_err(|e| StoreError::Db(e.to_string()))?;
    let found = store.read(version)?;
    if found == schema.version {
        return Ok(());
    }
    if found > schema.version {
        return Err(StoreError::TooNew {
            found,
            supported: schema.version,
        });
    }
    store.write(|conn| {
        // Another process may have migrated between our read and our write lock.
        let mut v = version(conn)?;
        if v == 0 {
            for ddl in schema.ddl(conn.dialect()) {
                conn.ddl(&ddl)?;
            }
            v = schema.version;
        }
        while v < schema.version {
            upgrade(conn, schema, v)?;
            v += 1;
            tracing::info!("database schema upgraded to version {v}");
        }
        conn.exec(statements::setting_set(
            "schema_version",
            &schema.version.to_string(),
        ))?;
        Ok(())
    })
}
