//! Property tests of the parsers of outside bytes: SQL literal rendering (checked against real
//! SQLite and sqlparser), the schema parser, config parsing, transcript masking and the telnet
//! codec.

use hostler::config::Config;
use hostler::session::Transcript;
use hostler::session::telnet::{Codec, IAC, SB, SE};
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
    want.extend(b"XTERM");
    want.extend([IAC, SE, IAC, 254, 99]);
    assert_eq!(reply, want);
    assert!(c.remote_echo());
    let mut out = Vec::new();
    Codec::encode(b"ls\n\xff\r", &mut out);
    assert_eq!(out, b"ls\r\n\xff\xff\r\0");
}
