//! The sectioned SQL abstraction: every store statement rendered in every dialect (snapshots),
//! run on real SQLite, and parsed as T-SQL, PostgreSQL and MySQL by sqlparser.

use hostler::sql::{Dialect, RenderError, Rendered, Schema, Statement};
use hostler::store::statements::catalog;
use sqlparser::dialect::{MsSqlDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

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
        // The claim is a select and updates by id, which every dialect can say.
        if let Err(e) = r {
            panic!("{name} failed to render for {d}: {e}");
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

/// Runs a rendered statement on SQLite; its rows as integers (or NULL).
fn sqlite_rows(conn: &rusqlite::Connection, st: Statement) -> Vec<Vec<Option<i64>>> {
    let r = st.render(Dialect::Sqlite).expect("render");
    let params = r.params.iter().map(|v| match v {
        hostler::sql::Value::Int(i) => rusqlite::types::Value::Integer(*i),
        hostler::sql::Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        other => panic!("unexpected param {other:?}"),
    });
    let mut prepared = conn.prepare(&r.sql).expect("prepare");
    let cols = prepared.column_count();
    prepared
        .query_map(rusqlite::params_from_iter(params), |row| {
            (0..cols).map(|i| row.get(i)).collect()
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn claim_walks_priorities_then_due_then_id_on_real_sqlite() {
    use hostler::store::statements::{
        Claimable, claim_candidates, job_claim_by_ids, job_top_priority,
    };
    let conn = seeded_sqlite();
    conn.execute_batch(
        "DELETE FROM jobs;
         INSERT INTO jobs (id, script_id, host_id, priority, due_at, created_at) VALUES (10, 1, 1, 0, 5, 0);
         INSERT INTO jobs (id, script_id, host_id, priority, due_at, created_at) VALUES (11, 1, 2, 9, 7, 0);
         INSERT INTO jobs (id, script_id, host_id, priority, due_at, created_at) VALUES (12, 1, 2, 9, 6, 0);
         INSERT INTO jobs (id, script_id, host_id, priority, due_at, created_at) VALUES (13, 1, 1, 9, 99999999999999, 0);",
    )
    .expect("jobs");
    let top = |below| {
        sqlite_rows(&conn, job_top_priority(Claimable::Due, below))
            .first()
            .and_then(|r| r[0])
    };
    assert_eq!(top(None), Some(9));
    assert_eq!(top(Some(9)), Some(0));
    assert_eq!(top(Some(0)), None);
    let ids = |rows: &[Vec<Option<i64>>]| rows.iter().map(|r| r[0]).collect::<Vec<_>>();
    // Priority 9: earlier due_at first; job 13 is not due.
    let due9 = sqlite_rows(&conn, claim_candidates(1, None, Claimable::Due, 9, 10));
    assert_eq!(ids(&due9), [Some(12), Some(11)]);
    assert_eq!(
        due9[0][1..],
        [Some(2), Some(0)],
        "the host, and its running jobs"
    );
    assert!(
        sqlite_rows(&conn, job_claim_by_ids(&[12], "a", 3_600_000)).is_empty(),
        "an update returns no rows"
    );
    // Once job 12 runs, host 2 is busy (per_host = 1): job 11 is no candidate.
    assert!(sqlite_rows(&conn, claim_candidates(1, None, Claimable::Due, 9, 10)).is_empty());
    // With per_host = 2 it is, and its host's running job is counted.
    let two = sqlite_rows(&conn, claim_candidates(2, None, Claimable::Due, 9, 10));
    assert_eq!(two, [vec![Some(11), Some(2), Some(1)]]);
    let due0 = sqlite_rows(&conn, claim_candidates(1, None, Claimable::Due, 0, 10));
    assert_eq!(ids(&due0), [Some(10)]);
    // Job 13 is due far ahead: a claim a day ahead does not reach it.
    assert!(
        sqlite_rows(
            &conn,
            claim_candidates(1, None, Claimable::Ahead(86_400_000), 9, 10)
        )
        .is_empty()
    );
    // A claim ahead far enough does, and not the due job 11 (its host busy anyway).
    let far = sqlite_rows(
        &conn,
        claim_candidates(2, None, Claimable::Ahead(i64::MAX / 4), 9, 10),
    );
    assert_eq!(ids(&far), [Some(13)]);
}

/// The queue's hot statements read the jobs they need through an index, never the whole
/// queue: a claim through the queue index, a firing's check for a queued job through the
/// host's, and a firing of many hosts the overdue jobs through the due times'. With thousands queued, a scan in either took a whole core (issue 31).
#[test]
fn queue_queries_are_index_ranges_on_real_sqlite() {
    use hostler::store::statements::{
        Claimable, claim_candidates, job_queued_for, job_top_priority, jobs_overdue_of_script,
    };
    let conn = seeded_sqlite();
    let claim = "jobs_claim (state=? AND priority";
    let host = "jobs_host (host_id=? AND state=?)";
    let overdue = "jobs_due (state=? AND due_at<?)";
    for (name, st, index) in [
        ("top", job_top_priority(Claimable::Due, Some(3)), claim),
        (
            "due",
            claim_candidates(1, None, Claimable::Due, 0, 64),
            claim,
        ),
        (
            "ahead",
            claim_candidates(1, None, Claimable::Ahead(1_000), 0, 64),
            claim,
        ),
        (
            "expired",
            claim_candidates(1, None, Claimable::Expired, 0, 64),
            claim,
        ),
        (
            "site",
            claim_candidates(1, Some("dc1"), Claimable::Due, 0, 64),
            claim,
        ),
        (
            "queued_for",
            job_queued_for(1, Some(2), None, None, Some(5)),
            host,
        ),
        (
            "queued_for_any",
            job_queued_for(1, Some(2), Some("web"), None, None),
            host,
        ),
        ("overdue_of_script", jobs_overdue_of_script(1, 5), overdue),
    ] {
        let r = st.render(Dialect::Sqlite).expect("render");
        let params = r.params.iter().map(|v| match v {
            hostler::sql::Value::Int(i) => rusqlite::types::Value::Integer(*i),
            hostler::sql::Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
            other => panic!("unexpected param {other:?}"),
        });
        let mut plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", r.sql))
            .expect("explain");
        let lines: Vec<String> = plan
            .query_map(rusqlite::params_from_iter(params), |row| {
                row.get::<_, String>(3)
            })
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(
            lines[0].contains(&format!("USING INDEX {index}"))
                || lines[0].contains(&format!("USING COVERING INDEX {index}")),
            "{name}: the outer scan is not a range of {index}: {lines:?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("TEMP B-TREE")),
            "{name}: it sorts: {lines:?}"
        );
    }
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
