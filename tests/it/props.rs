//! Property tests of the parsers of outside bytes: SQL literal rendering (checked against real
//! SQLite and sqlparser), the schema parser, config parsing, transcript masking, the telnet
//! codec, the web server's request heads and Nagios perfdata (with real plugins' output).

use hostler::config::Config;
use hostler::session::Transcript;
use hostler::session::telnet::{Codec, IAC, SB, SE};
use hostler::sql::{Dialect, Schema, Select, Statement, col, lit};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A database URL's password never shows in the form messages print, wherever it is
    /// given (user info with `@`, `/`, `:` in it; a `password=` option), whatever `@` the
    /// query holds; the user and the host still show.
    #[test]
    fn database_urls_never_show_their_password(
        pw in "Zq[a-zA-Z0-9@/:!#%^*()_+-]{4,20}",
        pw2 in "Zq[a-zA-Z0-9]{4,12}",
        app in "[a-z@.]{0,8}",
    ) {
        for url in [
            format!("postgres://hostler:{pw}@db.example:5432/h?application_name={app}&sslmode=require"),
            format!("postgres://hostler@db.example/h?application_name={app}&password={pw2}"),
            format!("postgresql://hostler:{pw}@db.example/h"),
            format!("mssql://hostler:{pw}@db.example/h?encrypt=required"),
            format!("sqlxml+https://hostler:{pw}@db.example/v"),
        ] {
            let shown = hostler::redact::database_url(&url);
            prop_assert!(!shown.contains(&pw) && !shown.contains(&pw2), "{url} shown as {shown}");
            prop_assert!(shown.contains("hostler") && shown.contains("db.example"), "{shown}");
        }
    }

    /// Any identifier, quoted for SQLite, names that very column in real SQLite (its quote
    /// character doubled inside), and each dialect doubles its own closing quote.
    #[test]
    fn identifiers_quote_for_every_dialect(name in "[a-z\"\\]\\[` ]{1,12}") {
        let q = Dialect::Sqlite.quote(&name);
        let db = rusqlite::Connection::open_in_memory().expect("sqlite");
        db.execute_batch(&format!("CREATE TABLE t ({q} TEXT)")).expect("create");
        let cols: Vec<String> = db
            .prepare("SELECT * FROM t").expect("prepare")
            .column_names().map(String::from).collect();
        prop_assert_eq!(cols, vec![name.clone()]);
        prop_assert_eq!(Dialect::Mssql2005.quote(&name), format!("[{}]", name.replace(']', "]]")));
        prop_assert_eq!(Dialect::Mysql.quote(&name), format!("`{}`", name.replace('`', "``")));
        let mut out = String::from("x.");
        Dialect::Postgres.quote_into(&mut out, &name);
        prop_assert_eq!(out, format!("x.\"{}\"", name.replace('"', "\"\"")));
    }

    /// Any text rendered as an SQLite literal reads back as the same text.
    #[test]
    fn sqlite_literals_round_trip(s in "\\PC*") {
        let stmt: Statement = Select::from("t").with(hostler::sql::Section::Columns(vec![(lit(s.clone()), Some("v"))])).into();
        let sql = stmt.render(Dialect::Sqlite).expect("render").sql.replace(" FROM \"t\"", "");
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        let back: String = conn.query_row(&sql, [], |r| r.get(0)).expect("query");
        prop_assert_eq!(back, s);
    }

    /// Rows inserted by one statement (parameters and literals mixed, any text, NULLs) read
    /// back the same from real SQLite, in order; on SQL Server (no VALUES of many rows before
    /// 2008) the statement still parses as one INSERT, with a parameter for each bound value.
    #[test]
    fn many_rows_in_one_insert_round_trip(
        rows in proptest::collection::vec((any::<i64>(), proptest::option::of("\\PC{0,12}"), "\\PC{0,12}"), 1..20),
    ) {
        use hostler::sql::{InsertRows, param};
        let stmt: Statement = InsertRows {
            table: "t",
            columns: vec!["n", "a", "b"],
            rows: rows.iter().map(|(n, a, b)| vec![param(*n), param(a.clone()), lit(b.clone())]).collect(),
        }.into();
        let r = stmt.render(Dialect::Sqlite).expect("render");
        prop_assert_eq!(r.params.len(), rows.len() * 2);
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, a TEXT, b TEXT)").expect("create");
        let params = r.params.iter().map(|v| match v {
            hostler::sql::Value::Int(i) => rusqlite::types::Value::Integer(*i),
            hostler::sql::Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
            _ => rusqlite::types::Value::Null,
        });
        let n = conn.execute(&r.sql, rusqlite::params_from_iter(params)).expect("insert");
        prop_assert_eq!(n, rows.len());
        let back: Vec<(i64, Option<String>, String)> = conn
            .prepare("SELECT n, a, b FROM t ORDER BY id").expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query")
            .collect::<Result<_, _>>().expect("rows");
        prop_assert_eq!(back, rows.clone());
        for d in [Dialect::Mssql2000, Dialect::Mssql2005] {
            let sql = stmt.render(d).expect("render").sql;
            let parsed = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::MsSqlDialect {}, &sql);
            prop_assert!(parsed.is_ok(), "{}", sql);
            prop_assert_eq!(parsed.map(|v| v.len()).unwrap_or(0), 1);
        }
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

/// Decodes `input` fed in pieces cut at `cuts`; returns the data and the replies.
fn decode_in_pieces(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<u8>) {
    let mut codec = Codec::new();
    let (mut data, mut reply) = (Vec::new(), Vec::new());
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(0);
    points.push(input.len());
    points.sort_unstable();
    for w in points.windows(2) {
        codec.decode(&input[w[0]..w[1]], &mut data, &mut reply);
    }
    (data, reply)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Data without CR survives encoding and decoding, however the stream is cut up.
    #[test]
    fn telnet_data_round_trips(data in proptest::collection::vec(any::<u8>().prop_filter("no CR", |b| *b != b'\r'), 0..300),
                               cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        let mut wire = Vec::new();
        Codec::encode(&data, &mut wire);
        let (back, reply) = decode_in_pieces(&wire, &cuts);
        let expected: Vec<u8> = data.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
        prop_assert_eq!(back, expected);
        prop_assert!(reply.is_empty());
    }

    /// Any bytes at all decode without panicking, to no more data than came in, the same
    /// whole or in pieces; every reply is a complete negotiation or subnegotiation.
    #[test]
    fn telnet_decoder_survives_garbage(input in proptest::collection::vec(prop_oneof![Just(IAC), Just(SB), Just(SE), Just(253u8), Just(251u8), Just(24u8), Just(31u8), Just(b'\r'), Just(0u8), any::<u8>()], 0..400),
                                       cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let (whole, whole_reply) = decode_in_pieces(&input, &[]);
        let (pieces, pieces_reply) = decode_in_pieces(&input, &cuts);
        prop_assert!(whole.len() <= input.len());
        prop_assert_eq!(&whole, &pieces);
        prop_assert_eq!(&whole_reply, &pieces_reply);
        let mut i = 0;
        while i < whole_reply.len() {
            prop_assert_eq!(whole_reply[i], IAC);
            match whole_reply.get(i + 1) {
                Some(&SB) => {
                    let end = whole_reply[i..].windows(2).position(|w| w == [IAC, SE]);
                    prop_assert!(end.is_some());
                    i += end.unwrap_or(0) + 2;
                }
                Some(251..=254) => i += 3,
                other => prop_assert!(false, "bad reply byte {:?}", other),
            }
        }
    }
}

#[test]
fn telnet_codec_answers_the_usual_negotiation() {
    let mut c = Codec::new();
    let (mut data, mut reply) = (Vec::new(), Vec::new());
    // busybox telnetd's opening: DO ECHO, DO NAWS, WILL ECHO, WILL SGA; then a TTYPE SEND and
    // an unknown option; then CR NUL and CR LF in text.
    let input = [
        IAC, 253, 1, IAC, 253, 31, IAC, 251, 1, IAC, 251, 3, IAC, 253, 24, IAC, SB, 24, 1, IAC, SE,
        IAC, 251, 99, b'a', b'\r', 0, b'b', b'\r', b'\n', IAC, IAC,
    ];
    c.decode(&input, &mut data, &mut reply);
    assert_eq!(data, b"a\rb\r\n\xff");
    let mut want = vec![
        IAC, 252, 1, IAC, 251, 31, IAC, SB, 31, 0, 200, 0, 50, IAC, SE,
    ];
    want.extend([IAC, 253, 1, IAC, 253, 3, IAC, 251, 24]);
    want.extend([IAC, SB, 24, 0]);
    want.extend(b"DUMB");
    want.extend([IAC, SE, IAC, 254, 99]);
    assert_eq!(reply, want);
    assert!(c.remote_echo());
    let mut out = Vec::new();
    Codec::encode(b"ls\n\xff\r", &mut out);
    assert_eq!(out, b"ls\r\n\xff\xff\r\0");
}

/// One web server state shared by the request fuzzing below (a store with a host, a script,
/// a run and a logged-in session).
fn fuzz_web() -> &'static (hostler::web::Web, String, String, tempfile::TempDir) {
    use std::sync::OnceLock;
    static WEB: OnceLock<(hostler::web::Web, String, String, tempfile::TempDir)> = OnceLock::new();
    WEB.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = hostler::store::Store::open(&dir.path().join("f.db").display().to_string())
            .expect("store");
        store
            .add_host(&hostler::store::NewHost {
                name: "h1".into(),
                address: "127.0.0.1".into(),
                method: Some(hostler::store::Method::Local),
                ..Default::default()
            })
            .expect("host");
        store
            .save_scripts(&[hostler::store::NewScript {
                name: "s1",
                source: "ok(\"x\")",
                description: None,
                kind: hostler::store::ScriptKind::Check,
            }])
            .expect("script");
        let hash = hostler::web::auth::hash_password("Fuzz-pass-1234").expect("hash");
        store
            .add_user("admin", &hash, hostler::store::Role::Admin, false)
            .expect("user");
        let user = store.find_user("admin").expect("read").expect("user");
        let web = hostler::web::Web::new(
            std::sync::Arc::new(store),
            hostler::web::WebOptions {
                listen: "127.0.0.1:0".into(),
                public_metrics: false,
                allowed_hosts: Vec::new(),
                max_connections: 512,
                max_connections_per_client: 64,
            },
            Default::default(),
        );
        let cookie = web.sessions.start(&user, false).expect("session");
        let csrf = web.sessions.get(&cookie).expect("session").csrf;
        (web, cookie, csrf, dir)
    })
}

fn path_strategy() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        Just("hosts".to_string()),
        Just("h1".to_string()),
        Just("scripts".to_string()),
        Just("s1".to_string()),
        Just("api".to_string()),
        Just("runs".to_string()),
        Just("queue".to_string()),
        Just("schedule".to_string()),
        Just("edit".to_string()),
        Just("new".to_string()),
        Just("cancel".to_string()),
        Just("priority".to_string()),
        Just("1".to_string()),
        Just("..".to_string()),
        "[0-9]{1,25}",
        "\\PC{0,12}",
        "[%a-zA-Z0-9._~-]{0,12}",
    ];
    prop::collection::vec(seg, 0..5).prop_map(|s| format!("/{}", s.join("/")))
}

fn form_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        prop::collection::vec(
            (
                prop_oneof![
                    Just("script"),
                    Just("host"),
                    Just("when"),
                    Just("every"),
                    Just("cron"),
                    Just("at"),
                    Just("priority"),
                    Just("address"),
                    Just("port"),
                    Just("vars"),
                    Just("source"),
                    Just("name"),
                    Just("fix"),
                    Just("tag")
                ],
                "\\PC{0,20}"
            ),
            0..6
        )
        .prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", hostler::web::http::encode(v)))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text percent-encoded by `encode` decodes back to itself.
    #[test]
    fn form_values_round_trip(k in "\\PC*", v in "\\PC*") {
        use hostler::web::http::{encode, parse_urlencoded};
        let body = format!("{}={}", encode(&k), encode(&v));
        let pairs = parse_urlencoded(body.as_bytes()).expect("parse");
        prop_assert_eq!(pairs, vec![(k, v)]);
    }

    /// Arbitrary bytes give pairs or a typed error, never a panic; what parses re-encodes to
    /// something that parses to the same pairs.
    #[test]
    fn form_parser_takes_any_bytes(b in prop::collection::vec(any::<u8>(), 0..300)) {
        use hostler::web::http::{encode, parse_urlencoded};
        if let Ok(pairs) = parse_urlencoded(&b) {
            let again: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            prop_assert_eq!(parse_urlencoded(again.join("&").as_bytes()).expect("re-parse"), pairs);
        }
    }

    /// The router takes any path; a route it names for a host or script is a plain name.
    #[test]
    fn router_takes_any_path(p in path_strategy(), raw in "\\PC*") {
        use hostler::web::router::{Route, route};
        for path in [p, raw] {
            if let Some(Route::Host(n) | Route::HostEdit(n) | Route::Script(n)) = route(&path) {
                prop_assert!(hostler::store::valid_name(&n), "{n:?}");
            }
        }
    }

    /// Any request, logged in or not, with or without the CSRF token, gets an answer below
    /// 500 from the real handlers (bad input is the client's error, never the server's).
    #[test]
    fn no_request_makes_the_server_fail(
        post in any::<bool>(),
        path in path_strategy(),
        query in "[a-z=&%0-9]{0,20}",
        body in form_strategy(),
        logged_in in any::<bool>(),
        with_csrf in any::<bool>(),
        json in any::<bool>(),
    ) {
        let (web, cookie, csrf, _) = fuzz_web();
        let mut req = hostler::web::http::Req::new(if post { "POST" } else { "GET" }, &format!("{path}?{query}"))
            .unwrap_or_default();
        req.method = if post { "POST".into() } else { "GET".into() };
        if req.path.is_empty() {
            req.path = path.clone();
        }
        let ct = if json { "application/json" } else { "application/x-www-form-urlencoded" };
        req.headers.push(("content-type".into(), ct.into()));
        if logged_in {
            req.headers.push(("cookie".into(), format!("hostler_session={cookie}")));
            req.headers.push(("x-csrf-token".into(), csrf.clone()));
        }
        let mut body = body;
        if with_csrf {
            let mut b = format!("csrf_token={csrf}&").into_bytes();
            b.extend_from_slice(&body);
            body = b;
        }
        req.body = body;
        let r = web.handle(&req);
        prop_assert!(r.status < 500, "{} {path}?{query} -> {} {}", req.method, r.status, String::from_utf8_lossy(&r.body));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The SQLXML parser takes any bytes, whole or as a mutated fixture, and answers rows or
    /// a typed error; never a panic.
    #[test]
    fn sqlxml_parser_takes_any_bytes(
        junk in prop::collection::vec(any::<u8>(), 0..400),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        root in any::<bool>(),
    ) {
        use hostler::sqlxml::{decode_stream, parse};
        let container = root.then_some("ROOT");
        let _ = parse(std::io::Cursor::new(junk.clone()), container);
        let _ = decode_stream(std::io::Cursor::new(junk)).map(|r| parse(r, container));
        let dir = format!("{}/tests/fixtures/sqlxml", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(dir).expect("fixtures") {
            let mut body = std::fs::read(entry.expect("entry").path()).expect("fixture");
            if body.is_empty() {
                continue;
            }
            let i = flip.index(body.len());
            body[i] = byte;
            body.truncate(cut.index(body.len() + 1));
            let _ = parse(std::io::Cursor::new(body), container);
        }
    }

    /// What hostler's endpoint writes, the client reads back: any names and any text values,
    /// NULL as absence. RAW: row for row. AUTO (attributes or ELEMENTS): the first column is
    /// the outer table, the rest an inner one (never all NULL: an empty inner element would
    /// read as an empty ELEMENTS column, as it would from SQL Server without XMLDATA).
    #[test]
    fn sqlxml_writer_and_parser_round_trip(
        names in prop::collection::btree_set("\\PC{1,12}", 2..4),
        rows in prop::collection::vec(prop::collection::vec(prop::option::of("\\PC{0,20}"), 4), 0..6),
        auto in any::<bool>(),
        elements in any::<bool>(),
    ) {
        use hostler::sql::Value;
        use hostler::sqlxml::write::{Column, Mode, rows as write_rows};
        use hostler::sqlxml::{parse, table};
        let names: Vec<String> = names.into_iter().collect();
        let n = names.len();
        let columns: Vec<Column> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Column {
                name: name.clone(),
                table: Some(if auto && i > 0 { "inner t".into() } else { "outer".into() }),
                decl: None,
            })
            .collect();
        let values: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| {
                r[..n]
                    .iter()
                    .enumerate()
                    .map(|(i, v)| if auto && i > 0 { Some(v.clone().unwrap_or_default()) } else { v.clone() })
                    .collect()
            })
            .collect();
        let sql_rows: Vec<Vec<Value>> = values
            .iter()
            .map(|r| r.iter().map(|v| v.clone().map_or(Value::Null, Value::Text)).collect())
            .collect();
        let mode = Mode { auto, elements: auto && elements, ..Mode::default() };
        let xml = write_rows(&columns, &sql_rows, mode).expect("write");
        let back = parse(std::io::Cursor::new(format!("<ROOT>{xml}</ROOT>").into_bytes()), Some("ROOT"))
            .unwrap_or_else(|e| panic!("{e}: {xml}"));
        if !auto {
            prop_assert_eq!(back.records.len(), values.len());
            for (rec, written) in back.records.iter().zip(&values) {
                let want: Vec<(String, String)> = names
                    .iter()
                    .zip(written)
                    .filter_map(|(c, v)| v.clone().map(|v| (c.clone(), v)))
                    .collect();
                let got: Vec<(String, String)> = rec.columns().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                prop_assert_eq!(&got, &want, "{}", xml);
            }
        } else {
            let (cols, flat) = table(&back.records);
            prop_assert_eq!(flat.len(), values.len(), "{}", xml);
            for (read, written) in flat.iter().zip(&values) {
                for (i, (c, v)) in names.iter().zip(written).enumerate() {
                    let key = if i == 0 { c.clone() } else { format!("inner t.{c}") };
                    let got = cols.iter().position(|x| x == &key).and_then(|k| read[k].clone());
                    prop_assert_eq!(&got, v, "{} in {}", key, xml);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes at all: the web server's head parser answers Ok(None), a head, or a refusal;
    /// it never panics, and never accepts a head past its limits.
    #[test]
    fn web_head_parser_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        use hostler::web::server::{Limits, parse_head};
        let limits = Limits { request_line: 64, header_line: 64, head: 512, headers: 8, ..Limits::default() };
        if let Ok(Some(h)) = parse_head(&bytes, &limits) {
            prop_assert!(h.len <= limits.head);
            prop_assert!(h.headers.len() <= limits.headers);
            prop_assert!(h.target.len() < limits.request_line);
        }
    }

    /// A well-formed head parses to what was sent, however it is split by the network.
    #[test]
    fn web_head_parser_reads_well_formed_heads(
        path in "/[a-z0-9/]{0,40}",
        names in proptest::collection::vec("[a-z][a-z0-9-]{0,15}", 0..6),
        value in "[ -~]{0,40}",
        len in 0u64..5_000_000,
        split in 0usize..400,
    ) {
        use hostler::web::server::{Limits, parse_head};
        let limits = Limits::default();
        let mut text = format!("POST {path} HTTP/1.1\r\n");
        let names: Vec<String> = names.into_iter().filter(|n| n != "content-length" && n != "transfer-encoding").collect();
        for n in &names {
            text.push_str(&format!("{n}: {value}\r\n"));
        }
        text.push_str(&format!("Content-Length: {len}\r\n\r\nbody"));
        let bytes = text.as_bytes();
        let cut = split.min(bytes.len());
        let head_len = text.find("\r\n\r\n").expect("end") + 4;
        if cut < head_len {
            prop_assert_eq!(parse_head(&bytes[..cut], &limits), Ok(None));
        }
        let h = parse_head(bytes, &limits).expect("valid").expect("complete");
        prop_assert_eq!(h.method, "POST");
        prop_assert_eq!(h.target, path);
        prop_assert_eq!(h.content_length as u64, len);
        prop_assert_eq!(h.len, head_len);
        prop_assert_eq!(h.headers.len(), names.len() + 1);
    }
}

fn perf_label() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_][a-z0-9_]{0,12}", "[a-z /'=]{1,12}"]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes: the perfdata parser returns, at most MAX_POINTS points, never an empty label.
    #[test]
    fn perfdata_parses_anything_within_bounds(s in "\\PC{0,400}") {
        let points = hostler::perfdata::parse(&s);
        prop_assert!(points.len() <= hostler::perfdata::MAX_POINTS);
        prop_assert!(points.iter().all(|p| !p.label.is_empty()));
    }

    /// Points written as the guidelines say (labels quoted when they must be, quotes doubled)
    /// read back as written.
    #[test]
    fn perfdata_round_trips(
        points in prop::collection::vec(
            (perf_label(), -1e9f64..1e9, prop_oneof![Just(""), Just("%"), Just("s"), Just("MB"), Just("c")],
             prop::option::of(0u32..1000), prop::option::of(0f64..10.0)),
            1..8,
        )
    ) {
        let text: Vec<String> = points
            .iter()
            .map(|(label, value, uom, warn, min)| {
                let label = if label.contains([' ', '=', '\'']) {
                    format!("'{}'", label.replace('\'', "''"))
                } else {
                    label.clone()
                };
                format!(
                    "{label}={value}{uom};{};;{}",
                    warn.map(|w| w.to_string()).unwrap_or_default(),
                    min.map(|m| m.to_string()).unwrap_or_default()
                )
            })
            .collect();
        let back = hostler::perfdata::parse(&text.join(" "));
        prop_assert_eq!(back.len(), points.len(), "{}", text.join(" "));
        for (p, (label, value, uom, warn, min)) in back.iter().zip(&points) {
            prop_assert_eq!(&p.label, label);
            prop_assert_eq!(p.value, Some(*value));
            prop_assert_eq!(p.uom.as_str(), *uom);
            prop_assert_eq!(p.warn.clone(), warn.map(|w| w.to_string()));
            prop_assert_eq!(p.min, *min);
        }
    }
}

/// The real monitoring plugins' perfdata reads as they mean it.
#[test]
fn perfdata_of_real_monitoring_plugins() {
    let dir = "/usr/lib/nagios/plugins";
    if !crate::util::have(
        &format!("{dir}/check_load"),
        "Debian's monitoring-plugins-basic",
    ) {
        return;
    }
    let perf = |args: &[&str]| -> Vec<hostler::perfdata::Point> {
        let o = std::process::Command::new(format!("{dir}/{}", args[0]))
            .args(&args[1..])
            .output()
            .expect("plugin");
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let data = text
            .split_once('|')
            .map(|(_, p)| p.to_string())
            .unwrap_or_default();
        hostler::perfdata::parse(&data)
    };
    let load = perf(&["check_load", "-w", "999,999,999", "-c", "999,999,999"]);
    let labels: Vec<&str> = load.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, vec!["load1", "load5", "load15"], "{load:?}");
    assert!(
        load.iter()
            .all(|p| p.value.is_some_and(|v| v >= 0.0) && p.warn.as_deref() == Some("999.000")),
        "{load:?}"
    );
    let disk = perf(&["check_disk", "-w", "1%", "-c", "1%", "-p", "/"]);
    assert_eq!(disk.len(), 1, "{disk:?}");
    assert_eq!(disk[0].label, "/");
    assert!(
        disk[0].value.is_some() && disk[0].max.is_some_and(|m| m > 0.0),
        "{disk:?}"
    );
    let dummy = perf(&["check_dummy", "0", "fine"]);
    assert!(dummy.is_empty());
}
