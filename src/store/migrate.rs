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

/// The upgrade step from `from` to the next version, as DDL for the connection's dialect, taken
/// from schema.sql itself (a step that adds a table creates it as a new database would).
fn upgrade(conn: &mut dyn Conn, schema: &Schema, from: i64) -> Result<(), StoreError> {
    let added_table = match from {
        // 2: checks, a state per (host, script) pair.
        1 => "checks",
        _ => {
            return Err(StoreError::Db(format!(
                "no upgrade path from schema version {from}"
            )));
        }
    };
    let ddl = schema
        .table_ddl(added_table, conn.dialect())
        .ok_or_else(|| StoreError::Db(format!("schema.sql has no table {added_table}")))?;
    for stmt in ddl {
        conn.ddl(&stmt)?;
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
