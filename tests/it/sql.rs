//! The sectioned SQL abstraction: every store statement rendered in every dialect (snapshots),
//! run on real SQLite, and parsed as T-SQL, PostgreSQL and MySQL by sqlparser.

use hostler::sql::{Dialect, RenderError, Rendered, Schema, Statement};
use hostler::store::statements::catalog;
use sqlparser::dialect::{MsSqlDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

/// Statements a dialect cannot express on purpose: the store takes another path for them.
fn expected_unsupported(name: &str, d: Dialect) -> bool {
    matches!(d, Dialect::Mssql2000 | Dialect::Mysql)
        && name.starts_with("job_claim")
        && name != "job_claim_by_id"
}

fn render_all() -> Vec<(&'static str, Dialect, Result<Rendered, RenderError>)> {
    let mut out = Vec::new();
    for (name, stmt) in catalog() {
        for d in Dialect::ALL {
            out.push((name, d, stmt.render(d)));
        }
    }
    out
}

#[test]
fn every_statement_renders_in_every_dialect() {
    for (name, d, r) in render_all() {
        match r {
            Ok(_) => assert!(
                !expected_unsupported(name, d),
                "{name} rendered for {d}, expected unsupported"
            ),
            Err(RenderError::Unsupported { .. }) if expected_unsupported(name, d) => {}
            Err(e) => panic!("{name} failed to render for {d}: {e}"),
        }
    }
}

#[test]
fn statement_snapshots() {
    let mut by_name: std::collections::BTreeMap<&str, String> = Default::default();
    for (name, d, r) in render_all() {
        let text = match r {
            Ok(r) => format!(
                "-- {d} ({:?}, {} params)\n{}\n-- params: {:?}\n\n",
                r.returns,
                r.params.len(),
                r.sql,
                r.params
            ),
            Err(e) => format!("-- {d}\n-- {e}\n\n"),
        };
        by_name.entry(name).or_default().push_str(&text);
    }
    for (name, text) in by_name {
        insta::assert_snapshot!(name, text);
    }
}

/// A real SQLite database with the schema and a little data, for running statements.
fn seeded_sqlite() -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
    let schema = Schema::parse(hostler::store::SCHEMA_SQL).expect("schema.sql parses");
    for ddl in schema.ddl(Dialect::Sqlite) {
        conn.execute_batch(&ddl)
            .unwrap_or_else(|e| panic!("DDL failed: {e}\n{ddl}"));
    }
    conn.execute_batch(
        "INSERT INTO scripts (name, source, kind, version, updated_at) VALUES ('seeded', 'ok()', 'check', 1, 0);
         INSERT INTO hosts (name, address, method, created_at, updated_at) VALUES ('web0', 'a', 'ssh', 0, 0);
         INSERT INTO hosts (name, address, method, created_at, updated_at) VALUES ('web2', 'b', 'ssh', 0, 0);
         INSERT INTO jobs (script_id, host_id, priority, due_at, created_at) VALUES (1, 1, 0, 0, 0);
         INSERT INTO users (name, password_hash, role, created_at) VALUES ('seeded', 'x', 'admin', 0);",
    )
    .expect("seed");
    conn
}

#[test]
fn sqlite_renders_run_on_real_sqlite() {
    let conn = seeded_sqlite();
    for (name, stmt) in catalog() {
        let r = stmt.render(Dialect::Sqlite).expect("renders for sqlite");
        if r.sql.is_empty() {
            // A lock SQLite does not need (its writers already take turns): nothing to run.
            assert!(name.ends_with("_lock"), "{name} renders as nothing");
            continue;
        }
        conn.execute_batch("SAVEPOINT t").expect("savepoint");
        if name.starts_with("legacy_") {
            // A table of an older schema, read only by the upgrade.
            conn.execute_batch(
                "CREATE TABLE perf_points (id INTEGER PRIMARY KEY, series_id BIGINT, t BIGINT, value REAL);
                 CREATE TABLE perf_trends (id INTEGER PRIMARY KEY, series_id BIGINT, hour BIGINT,
                     n INTEGER, vmin REAL, vmax REAL, vsum REAL);
                 ALTER TABLE runs ADD host VARCHAR(255);
                 ALTER TABLE runs ADD script VARCHAR(255);
                 ALTER TABLE runs ADD check_name VARCHAR(255);",
            )
            .expect("the old table");
        }
        let params = r.params.iter().map(|v| match v {
            hostler::sql::Value::Null => rusqlite::types::Value::Null,
            hostler::sql::Value::Bool(b) => rusqlite::types::Value::Integer(i64::from(*b)),
            hostler::sql::Value::Int(i) => rusqlite::types::Value::Integer(*i),
            hostler::sql::Value::Real(f) => rusqlite::types::Value::Real(*f),
            hostler::sql::Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
            hostler::sql::Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
        });
        let mut prepared = conn
            .prepare(&r.sql)
            .unwrap_or_else(|e| panic!("{name}: SQLite rejects the statement: {e}\n{}", r.sql));
        let mut rows = prepared
            .query(rusqlite::params_from_iter(params))
            .unwrap_or_else(|e| panic!("{name}: SQLite fails to run it: {e}\n{}", r.sql));
        while rows
            .next()
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", r.sql))
            .is_some()
        {}
        drop(rows);
        drop(prepared);
        conn.execute_batch("ROLLBACK TO t; RELEASE t")
            .expect("rollback");
    }
}

#[test]
fn claim_picks_by_priority_then_due_then_id_on_real_sqlite() {
    let conn = seeded_sqlite();
    conn.execute_batch(
        "DELETE FROM jobs;
         INSERT INTO jobs (id, script_id, host_id, priority, due_at, created_at) VALUES (10, 1, 1, 0, 5, 0);
         INSERT INTO jobs (id, script_id, host_id, priority, due_at, created_at) VALUES (11, 1, 2, 9, 7, 0);
         INSERT INTO jobs (id, script_id, host_id, priority, due_at, created_at) VALUES (12, 1, 2, 9, 6, 0);",
    )
    .expect("jobs");
    let claim = |owner: &str| -> Option<i64> {
        let r = hostler::store::statements::job_claim(
            owner,
            3_600_000,
            1,
            None,
            hostler::store::statements::Claimable::Due,
        )
        .render(Dialect::Sqlite)
        .expect("render");
        let params = r.params.iter().map(|v| match v {
            hostler::sql::Value::Int(i) => rusqlite::types::Value::Integer(*i),
            hostler::sql::Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
            other => panic!("unexpected param {other:?}"),
        });
        conn.query_row(&r.sql, rusqlite::params_from_iter(params), |row| row.get(0))
            .ok()
    };
    // Priority 9 first, earlier due_at first within it.
    assert_eq!(claim("a"), Some(12));
    // Host 2 is now busy (per_host = 1), so the next is host 1's job, not job 11.
    assert_eq!(claim("a"), Some(10));
    // Both hosts busy: nothing to claim.
    assert_eq!(claim("a"), None);
}

fn parses(d: &dyn sqlparser::dialect::Dialect, sql: &str) -> Result<(), String> {
    Parser::parse_sql(d, sql)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn sql_server_renders_parse_as_tsql() {
    for (name, d, r) in render_all() {
        if !d.is_mssql() {
            continue;
        }
        let Ok(r) = r else { continue };
        if let Err(e) = parses(&MsSqlDialect {}, &r.sql) {
            panic!("{name} for {d} does not parse as T-SQL: {e}\n{}", r.sql);
        }
    }
}

#[test]
fn postgres_and_mysql_renders_parse() {
    for (name, d, r) in render_all() {
        let Ok(r) = r else { continue };
        let res = match d {
            Dialect::Postgres => parses(&PostgreSqlDialect {}, &r.sql),
            Dialect::Mysql => parses(&MySqlDialect {}, &r.sql),
            Dialect::Sqlite => parses(&SQLiteDialect {}, &r.sql),
            _ => continue,
        };
        if let Err(e) = res {
            panic!("{name} for {d} does not parse: {e}\n{}", r.sql);
        }
    }
}

#[test]
fn ddl_of_every_dialect_parses() {
    let schema = Schema::parse(hostler::store::SCHEMA_SQL).expect("schema.sql parses");
    assert!(
        schema.tables.len() >= 10,
        "schema has {} tables",
        schema.tables.len()
    );
    for d in Dialect::ALL {
        for stmt in schema.ddl(d) {
            let res = match d {
                Dialect::Sqlite => parses(&SQLiteDialect {}, &stmt),
                Dialect::Mssql2000 | Dialect::Mssql2005 => parses(&MsSqlDialect {}, &stmt),
                Dialect::Postgres => parses(&PostgreSqlDialect {}, &stmt),
                Dialect::Mysql => parses(&MySqlDialect {}, &stmt),
            };
            if let Err(e) = res {
                panic!("{d} DDL does not parse: {e}\n{stmt}");
            }
        }
    }
}

#[test]
fn ddl_types_differ_per_dialect_as_documented() {
    let schema = Schema::parse(hostler::store::SCHEMA_SQL).expect("schema");
    let s2000 = schema.ddl_script(Dialect::Mssql2000);
    assert!(
        s2000.contains("[id] BIGINT IDENTITY(1,1) PRIMARY KEY"),
        "{s2000}"
    );
    assert!(
        s2000.contains("NTEXT") && !s2000.contains("MAX)"),
        "2000 has no (MAX) types"
    );
    assert!(
        s2000.contains("\nGO\n"),
        "batches separated by GO for osql/isql"
    );
    let s2005 = schema.ddl_script(Dialect::Mssql2005);
    assert!(s2005.contains("NVARCHAR(MAX)"));
    let pg = schema.ddl_script(Dialect::Postgres);
    assert!(
        pg.contains("GENERATED BY DEFAULT AS IDENTITY")
            && pg.contains("BOOLEAN NOT NULL DEFAULT TRUE")
    );
    let my = schema.ddl_script(Dialect::Mysql);
    assert!(
        my.contains("AUTO_INCREMENT")
            && my.contains("ENGINE=InnoDB")
            && my.contains("FOREIGN KEY (`host_id`)")
    );
}

#[test]
fn literals_are_escaped_per_dialect() {
    use hostler::sql::{Select, col, lit};
    let s: Statement = Select::from("t")
        .columns(&["a"])
        .filter(col("a").eq(lit("it's \\ x")))
        .into();
    let sql = |d| s.render(d).expect("render").sql;
    assert!(sql(Dialect::Sqlite).contains("'it''s \\ x'"));
    assert!(sql(Dialect::Mssql2000).contains("N'it''s \\ x'"));
    assert!(sql(Dialect::Mysql).contains("'it''s \\\\ x'"));
    assert!(sql(Dialect::Mssql2005).starts_with("SELECT [a] FROM [t]"));
    assert!(sql(Dialect::Mysql).starts_with("SELECT `a` FROM `t`"));
}

#[test]
fn schema_parser_rejects_what_it_does_not_know() {
    assert!(Schema::parse("-- schema_version: 1\nCREATE TABLE t (a WEIRDTYPE);").is_err());
    assert!(
        Schema::parse("CREATE TABLE t (a TEXT);").is_err(),
        "missing version"
    );
    assert!(
        Schema::parse("-- schema_version: 1\nCREATE TABLE t (a BIGINT REFERENCES nope (id));")
            .is_err()
    );
    assert!(Schema::parse("-- schema_version: 1\nCREATE TABLE t (a TEXT").is_err());
}
