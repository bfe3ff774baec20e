//! Property tests of the parsers of outside bytes: SQL literal rendering (checked against real
//! SQLite and sqlparser), the schema parser, config parsing and transcript masking.

use hostler::config::Config;
use hostler::session::Transcript;
use hostler::sql::{Dialect, Schema, Select, Statement, col, lit};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text rendered as an SQLite literal reads back as the same text.
    #[test]
    fn sqlite_literals_round_trip(s in "\\PC*") {
        let stmt: Statement = Select::from("t").with(hostler::sql::Section::Columns(vec![(lit(s.clone()), Some("v"))])).into();
        let sql = stmt.render(Dialect::Sqlite).expect("render").sql.replace(" FROM \"t\"", "");
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        let back: String = conn.query_row(&sql, [], |r| r.get(0)).expect("query");
        prop_assert_eq!(back, s);
    }

    /// Any text rendered as a T-SQL literal leaves a statement that still parses as one.
    #[test]
    fn tsql_literals_stay_inside_the_literal(s in "\\PC*") {
        let stmt: Statement = Select::from("t").columns(&["a"]).filter(col("a").eq(lit(s))).into();
        for d in [Dialect::Mssql2000, Dialect::Mssql2005] {
            let sql = stmt.render(d).expect("render").sql;
            let parsed = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::MsSqlDialect {}, &sql);
            prop_assert!(parsed.is_ok(), "{}", sql);
            prop_assert_eq!(parsed.map(|v| v.len()).unwrap_or(0), 1);
        }
    }

    /// The schema parser never panics.
    #[test]
    fn schema_parser_never_panics(s in "(-- schema_version: 1\n)?[A-Za-z0-9_(),; '\n-]{0,200}") {
        let _ = Schema::parse(&s);
    }

    /// Config parsing never panics and its error is one line.
    #[test]
    fn config_errors_are_one_line(s in "\\PC{0,200}") {
        if let Err(e) = Config::parse(&s) {
            prop_assert!(!e.contains('\n'), "{}", e);
        }
    }

    /// A registered secret never survives masking, whatever surrounds it.
    #[test]
    fn masking_removes_secrets(pre in "\\PC{0,40}", secret in "[a-zA-Z0-9!@#]{4,20}", post in "\\PC{0,40}") {
        let mut t = Transcript::new(1 << 20);
        t.add_secret(&secret);
        let masked = t.mask(&format!("{pre}{secret}{post}"));
        prop_assert!(!masked.contains(&secret));
    }
}
