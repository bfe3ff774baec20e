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

/// A transport that hands over fixed chunks: the expect engine's search logic under every
/// split of the stream (the real-process tests cover the byte pipes themselves).
struct Chunks(std::collections::VecDeque<Vec<u8>>);

impl hostler::session::Transport for Chunks {
    fn send(&mut self, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn recv(
        &mut self,
        buf: &mut [u8],
        _: std::time::Duration,
    ) -> std::io::Result<hostler::session::Recv> {
        match self.0.pop_front() {
            Some(c) => {
                buf[..c.len()].copy_from_slice(&c);
                Ok(hostler::session::Recv::Data(c.len()))
            }
            None => Ok(hostler::session::Recv::Eof),
        }
    }
    fn close(&mut self) -> std::io::Result<Option<i32>> {
        Ok(None)
    }
    fn describe(&self) -> String {
        "chunks".into()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// read_until returns exactly the text through the first marker, however the stream is
    /// split into reads, and leaves the rest for the next read.
    #[test]
    fn read_until_is_exact_under_any_split(
        before in "[a-c]{0,300}",
        after in "[a-cM]{0,50}",
        cuts in proptest::collection::vec(1usize..40, 0..30),
    ) {
        let marker = "MARK";
        prop_assume!(!before.contains('M'));
        let stream = format!("{before}{marker}{after}").into_bytes();
        let mut chunks = std::collections::VecDeque::new();
        let mut rest = &stream[..];
        for c in cuts {
            if rest.is_empty() { break; }
            let n = c.min(rest.len());
            chunks.push_back(rest[..n].to_vec());
            rest = &rest[n..];
        }
        if !rest.is_empty() { chunks.push_back(rest.to_vec()); }
        let mut s = hostler::session::Session::new(1, Box::new(Chunks(chunks)), hostler::session::Guard::default(), None);
        let got = s.read_until(marker, Some(std::time::Duration::from_secs(1))).expect("marker");
        prop_assert_eq!(got, format!("{before}{marker}"));
        let tail = s.read_to_end(Some(std::time::Duration::from_secs(1))).expect("rest");
        prop_assert_eq!(tail, after);
    }
}
