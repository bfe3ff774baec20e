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

/// Upgrade steps from an older version to the next one, as DDL for each dialect.
/// Version 1 is the first, so none exist yet; a step is added with every schema change.
fn upgrade(_conn: &mut dyn Conn, from: i64) -> Result<(), StoreError> {
    Err(StoreError::Db(format!(
        "no upgrade path from schema version {from}"
    )))
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
            upgrade(conn, v)?;
            v += 1;
        }
        conn.exec(statements::setting_set(
            "schema_version",
            &schema.version.to_string(),
        ))?;
        Ok(())
    })
}
