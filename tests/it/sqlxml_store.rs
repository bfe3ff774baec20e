//! The store over SQLXML (SQL Server 2000's XML interface).
//!
//! Peers, plainly: no SQL Server 2000 runs here, and hostler's own `/sqlxml` endpoint is
//! read-only SQLite, so nothing here executes the T-SQL the driver sends. What is tested:
//! every store statement, with its values put in and wrapped as the driver wraps it, parses
//! as T-SQL (sqlparser; `XMLDATA`, which it does not know, taken out first); text literals
//! come back from the parser as they went in; and against a scripted HTTP peer that answers
//! as SQLXML does, the order and content of the batches a unit sends (lease, rehearsals that
//! replay earlier writes, the commit with kept ids and row checks) and how the driver takes
//! errors.

use std::sync::{Arc, Mutex};

use hostler::sql::{Dialect, Statement, Value};
use hostler::store::mssql2000::{
    FOR_XML, IDENTITY_SUFFIX, Mssql2000, PRELUDE, Written, inline, with_id,
};
use hostler::store::{ConnExt, Driver, Store, StoreError, statements};
use proptest::prelude::*;
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::Parser;

/// Whether a batch parses as T-SQL; on a thread with room for sqlparser's recursion over a
/// long batch (unoptimised, it overflows a test thread's 2 MiB).
fn tsql_parses(batch: &str) -> Result<(), String> {
    let text = batch.replace(", XMLDATA", "");
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            Parser::parse_sql(&MsSqlDialect {}, &text)
                .map(|_| ())
                .map_err(|e| format!("{e}\n{text}"))
        })
        .expect("thread")
        .join()
        .expect("parser thread")
}

fn catalog(name: &str) -> Statement {
    statements::catalog()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no {name} in the catalog"))
        .1
}

#[test]
fn every_store_statement_inlines_and_batches_as_tsql() {
    let mut writes = Vec::new();
    let mut checked = 0;
    let mut unexpressed = Vec::new();
    for (name, stmt) in statements::catalog() {
        // What SQL Server 2000 cannot express is the dialect's typed error, not a batch.
        let Ok(r) = stmt.render(Dialect::Mssql2000) else {
            unexpressed.push(name);
            continue;
        };
        let sql = inline(&r.sql, &r.params).unwrap_or_else(|e| panic!("{name}: {e}"));
        let batch = if let Some((insert, id_col)) = sql.split_once(IDENTITY_SUFFIX) {
            let kept = with_id(insert, id_col, 41).unwrap_or_else(|| panic!("{name}: {insert}"));
            assert!(kept.sql.contains("VALUES (41, "), "{name}: {kept:?}");
            writes.push(kept);
            format!(
                "{PRELUDE}BEGIN TRAN; {insert}{IDENTITY_SUFFIX}{id_col} FOR XML RAW; ROLLBACK TRAN"
            )
        } else if sql.starts_with("SELECT") {
            format!("{sql}{FOR_XML}")
        } else {
            writes.push(Written {
                sql: sql.clone(),
                rows: (!sql.contains("; ")).then_some(1),
                ..Written::default()
            });
            format!(
                "{PRELUDE}BEGIN TRAN; {sql}; SELECT @@ROWCOUNT AS [n] FOR XML RAW; ROLLBACK TRAN"
            )
        };
        tsql_parses(&batch).unwrap_or_else(|e| panic!("{name}: {e}"));
        checked += 1;
    }
    assert!(checked > 50, "only {checked} statements");
    // Every statement, the claim's candidates and its update by id included, is expressed.
    assert_eq!(unexpressed, Vec::<&str>::new());
    tsql_parses(&Mssql2000::lease_batch("node-1.example-42-00ff")).expect("lease batch");
    tsql_parses(&Mssql2000::commit_batch("node-1", 7, &writes, true)).expect("commit batch");
    tsql_parses(&Mssql2000::release_sql("node-1")).expect("release");
}

#[test]
fn inline_fills_only_real_placeholders_and_counts_them() {
    let sql = "SELECT [we?ird] FROM [t] WHERE [a] = ? AND [b] = N'it''s ?' AND [c] = ?";
    let got = inline(
        sql,
        &[Value::Text("x'y".into()), Value::Blob(vec![0, 0xAB])],
    )
    .expect("inline");
    assert_eq!(
        got,
        "SELECT [we?ird] FROM [t] WHERE [a] = N'x''y' AND [b] = N'it''s ?' AND [c] = 0x00AB"
    );
    assert!(inline("SELECT ?", &[]).is_err());
    assert!(inline("SELECT 1", &[Value::Int(1)]).is_err());
    assert_eq!(
        inline(
            "SELECT ?, ?, ?, ?",
            &[
                Value::Null,
                Value::Bool(true),
                Value::Int(-7),
                Value::Real(0.5)
            ]
        )
        .expect("inline"),
        "SELECT NULL, 1, -7, 5e-1"
    );
    assert!(inline("SELECT ?", &[Value::Real(f64::NAN)]).is_err());
}

proptest! {
    #[test]
    fn text_literals_come_back_as_they_went_in(
        s in "\\PC*",
        odd in proptest::option::of(prop_oneof![0u32..32, Just(0xFFFE), Just(0xFFFF)]),
    ) {
        let mut s = s;
        if let Some(c) = odd.and_then(char::from_u32) {
            s.push(c);
        }
        let lit = hostler::store::mssql2000::literal(&Value::Text(s.clone())).expect("literal");
        let parsed = Parser::parse_sql(&MsSqlDialect {}, &format!("SELECT {lit} AS [v]"))
            .map_err(|e| TestCaseError::fail(format!("{e}: {lit}")))?;
        let sqlparser::ast::Statement::Query(q) = &parsed[0] else { panic!("not a query") };
        let sqlparser::ast::SetExpr::Select(sel) = &*q.body else { panic!("not a select") };
        let sqlparser::ast::SelectItem::ExprWithAlias { expr, .. } = &sel.projection[0] else {
            panic!("no alias")
        };
        let sqlparser::ast::Expr::Value(v) = expr else { panic!("not a value: {expr:?}") };
        let sqlparser::ast::Value::NationalStringLiteral(back) = &v.value else {
            panic!("not N'': {v:?}")
        };
        // XML cannot carry other control characters: they are stored as U+FFFD.
        let want: String = s
            .chars()
            .map(|c| {
                let bad = (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
                    || matches!(c, '\u{FFFE}' | '\u{FFFF}');
                if bad { '\u{FFFD}' } else { c }
            })
            .collect();
        prop_assert_eq!(back, &want);
    }
}

/// An HTTP peer that answers POSTed templates as SQLXML would, from a script, and keeps the
/// batches it was sent (the text of each `<sql:query>`).
struct Peer {
    server: Arc<tiny_http::Server>,
    batches: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    url: String,
}

type Script = dyn Fn(&str, usize) -> (u16, String) + Send + Sync;

impl Peer {
    fn start(script: Box<Script>) -> Peer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("listen"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let batches = Arc::new(Mutex::new(Vec::new()));
        let (s, b) = (server.clone(), batches.clone());
        let thread = std::thread::spawn(move || {
            for mut rq in s.incoming_requests() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(rq.as_reader(), &mut body);
                let start = body.find("<sql:query>").map_or(0, |i| i + 11);
                let end = body.rfind("</sql:query>").unwrap_or(body.len());
                let batch = body[start..end]
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&#13;", "\r")
                    .replace("&amp;", "&");
                let n = {
                    let mut all = b.lock().expect("batches");
                    all.push(batch.clone());
                    all.len() - 1
                };
                let (status, xml) = script(&batch, n);
                let ct = tiny_http::Header::from_bytes("Content-Type", "text/xml; charset=utf-8")
                    .expect("header");
                let _ = rq.respond(
                    tiny_http::Response::from_string(xml)
                        .with_status_code(status)
                        .with_header(ct),
                );
            }
        });
        Peer {
            server,
            batches,
            thread: Some(thread),
            url: format!("sqlxml+http://hostler:pw@127.0.0.1:{port}/vroot"),
        }
    }

    fn batches(&self) -> Vec<String> {
        self.batches.lock().expect("batches").clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn row(attrs: &str) -> (u16, String) {
    (
        200,
        format!("<ROOT xmlns:sql=\"urn:schemas-microsoft-com:xml-sql\"><row {attrs}/></ROOT>"),
    )
}

/// SQLXML's answers to what the driver sends, as a server with hostler's schema in place
/// would give them: identities from 41 up, one row changed by each write, nothing found.
fn sql2000(batch: &str, ids: &Mutex<i64>) -> (u16, String) {
    if batch.ends_with("AS [committed] FOR XML RAW") {
        row("committed=\"1\"")
    } else if batch.contains("SERVERPROPERTY('ProductVersion')") {
        row("version=\"8.00.2039\" trancount=\"0\"")
    } else if batch.contains("OBJECT_ID(N'settings')") {
        row("n=\"1\"")
    } else if batch.contains("INFORMATION_SCHEMA.TABLES") {
        row("found=\"1\"")
    } else if batch.contains("[key] = N'schema_version'") && !batch.contains("UPDATE") {
        let v = hostler::store::schema().expect("schema").version;
        row(&format!("value=\"{v}\""))
    } else if batch.contains("SCOPE_IDENTITY") {
        let mut id = ids.lock().expect("ids");
        *id += 1;
        row(&format!("id=\"{}\"", *id))
    } else if batch.contains("@@ROWCOUNT AS [n]") {
        row("n=\"1\"")
    } else {
        (
            200,
            "<ROOT xmlns:sql=\"urn:schemas-microsoft-com:xml-sql\"/>".into(),
        )
    }
}

#[test]
fn a_write_unit_rehearses_then_commits_once_with_its_ids_and_checks() {
    let ids = Arc::new(Mutex::new(40));
    let i = ids.clone();
    let peer = Peer::start(Box::new(move |b, _| sql2000(b, &i)));
    // Opening the store checks the schema version (found current: nothing to create).
    let store = Store::open(&peer.url).expect("store over SQLXML");
    assert_eq!(store.dialect(), Dialect::Mssql2000);

    let mut db = Mssql2000::open(&peer.url).expect("driver");
    let before = peer.batches().len();
    let mut got = Vec::new();
    db.write(&mut |c| {
        assert!(c.query_one(catalog("host_by_name"))?.is_none());
        got.push(c.insert(catalog("host_insert"))?);
        got.push(c.insert(catalog("job_insert"))?);
        Ok(())
    })
    .expect("write unit");
    assert_eq!(got, [41, 42], "the ids the rehearsals got");

    let sent = peer.batches()[before..].to_vec();
    for b in &sent {
        tsql_parses(b).unwrap_or_else(|e| panic!("sent a batch that is not T-SQL: {e}"));
    }
    assert_eq!(
        sent.len(),
        5,
        "lease, read, two insert rehearsals, commit: {sent:#?}"
    );
    assert!(
        sent[0].contains("OBJECT_ID(N'settings')"),
        "the lease first"
    );
    assert!(
        sent[1].starts_with(&format!("{PRELUDE}SELECT")) && sent[1].ends_with(FOR_XML),
        "a read before any write goes as it is: {}",
        sent[1]
    );
    assert!(!sent[1].contains("BEGIN TRAN"), "{}", sent[1]);
    assert!(
        sent[2].contains("BEGIN TRAN; INSERT INTO [hosts]") && sent[2].ends_with("ROLLBACK TRAN")
    );
    // The second rehearsal replays the first insert, with the id it got.
    let kept_host = "SET IDENTITY_INSERT [hosts] ON; INSERT INTO [hosts] ([id], [name]";
    assert!(sent[3].contains(kept_host), "{}", sent[3]);
    assert!(sent[3].contains("VALUES (41, N'web1'"), "{}", sent[3]);
    assert!(sent[3].contains("INSERT INTO [jobs]") && sent[3].ends_with("ROLLBACK TRAN"));
    // The commit: lease checked under a lock, both rows with their ids and a row check each,
    // the lease given back, COMMIT, in that order.
    let c = &sent[4];
    let order = [
        "BEGIN TRAN",
        "WITH (UPDLOCK, HOLDLOCK)",
        "VALUES (41, N'web1'",
        "IF @@ROWCOUNT <> 1",
        "SET IDENTITY_INSERT [hosts] OFF",
        "SET IDENTITY_INSERT [jobs] ON",
        "VALUES (42, ",
        "SET [value] = N'~",
        "COMMIT TRAN",
    ];
    let mut at = 0;
    for part in order {
        let found = c[at..]
            .find(part)
            .unwrap_or_else(|| panic!("{part} not in order in {c}"));
        at += found + part.len();
    }
    assert!(
        !c.contains("SCOPE_IDENTITY"),
        "the commit keeps ids, it does not make new ones"
    );
}

#[test]
fn failures_write_nothing_and_say_what_happened() {
    let ids = Mutex::new(0);
    let peer = Peer::start(Box::new(move |b, _| {
        if b.ends_with("AS [committed] FOR XML RAW") {
            (
                200,
                "<ROOT xmlns:sql=\"urn:schemas-microsoft-com:xml-sql\"><?MSSQLError HResult=\"0x80040e2f\" Source=\"Microsoft OLE DB Provider for SQL Server\" Description=\"Violation of UNIQUE KEY constraint 'UQ_hosts_name'. Cannot insert duplicate key.\"?></ROOT>".into(),
            )
        } else {
            sql2000(b, &ids)
        }
    }));
    let mut db = Mssql2000::open(&peer.url).expect("driver");
    // The server refuses the commit: the unit's error is the server's, typed.
    let e = db
        .write(&mut |c| c.insert(catalog("host_insert")).map(|_| ()))
        .expect_err("refused");
    assert!(matches!(e, StoreError::Constraint(_)), "{e:?}");
    assert!(e.to_string().contains("UQ_hosts_name"), "{e}");
    // Work that fails sends no commit, and gives the lease back.
    let before = peer.batches().len();
    let e = db
        .write(&mut |c| {
            c.exec(catalog("host_delete"))?;
            Err(StoreError::Invalid("changed my mind".into()))
        })
        .expect_err("failed work");
    assert_eq!(e.to_string(), "changed my mind");
    let sent = peer.batches()[before..].to_vec();
    assert!(sent.iter().all(|b| !b.contains("COMMIT")), "{sent:#?}");
    assert!(
        sent.last().is_some_and(|b| b.contains("SET [value] = N''")),
        "released: {sent:#?}"
    );
    // The refused commit gave the lease back at once (its release in the batch rolled back).
    let sent = peer.batches();
    let refused = sent
        .iter()
        .rposition(|b| b.ends_with("AS [committed] FOR XML RAW"))
        .expect("a commit");
    assert!(
        sent[refused + 1..]
            .first()
            .is_some_and(|b| b.contains("SET [value] = N''")),
        "released after the refused commit: {sent:#?}"
    );
    // A read unit cannot write.
    let e = db
        .read(&mut |c| c.exec(catalog("host_delete")).map(|_| ()))
        .expect_err("write in a read");
    assert!(e.to_string().contains("read-only unit"), "{e}");
}

#[test]
fn a_virtual_root_that_fails_is_a_clear_error_at_open() {
    let peer = Peer::start(Box::new(|_, _| {
        (
            500,
            "<html><body>Template queries are not allowed</body></html>".into(),
        )
    }));
    let e = Store::open(&peer.url).expect_err("refused");
    let msg = e.to_string();
    assert!(
        msg.contains("cannot open database sqlxml+http://hostler:********@"),
        "{msg}"
    );
    assert!(
        msg.contains("HTTP 500") && msg.contains("Template queries are not allowed"),
        "{msg}"
    );
    assert!(!msg.contains(":pw@"), "{msg}");
}

#[test]
fn rows_name_every_column_from_xmldata_with_null_as_absence() {
    let ids = Mutex::new(0);
    let peer = Peer::start(Box::new(move |b, _| {
        if b.contains("FROM [hosts]") && b.ends_with(FOR_XML) {
            (
                200,
                r#"<ROOT xmlns:sql="urn:schemas-microsoft-com:xml-sql"><Schema name="Schema1" xmlns="urn:schemas-microsoft-com:xml-data" xmlns:dt="urn:schemas-microsoft-com:datatypes"><ElementType name="row" content="empty" model="closed"><AttributeType name="id" dt:type="i8"/><AttributeType name="name" dt:type="string"/><AttributeType name="port" dt:type="i4"/><AttributeType name="key" dt:type="bin.base64"/><attribute type="id"/><attribute type="name"/><attribute type="port"/><attribute type="key"/></ElementType></Schema><row xmlns="x-schema:#Schema1" id="7" name="web &amp; 1" key="AAEC"/></ROOT>"#
                    .into(),
            )
        } else {
            sql2000(b, &ids)
        }
    }));
    let mut db = Mssql2000::open(&peer.url).expect("driver");
    let mut seen = Vec::new();
    db.read(&mut |c| {
        seen = c.query(catalog("host_by_name"))?;
        Ok(())
    })
    .expect("read");
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.int("id").expect("id"), 7);
    assert_eq!(r.text("name").expect("name"), "web & 1");
    assert_eq!(
        r.opt_int("port").expect("port is a column"),
        None,
        "absent is NULL"
    );
    let key = r
        .columns
        .iter()
        .position(|c| c == "key")
        .expect("key column");
    assert_eq!(r.values[key], Value::Blob(vec![0, 1, 2]));
}

#[test]
fn a_held_lease_is_waited_for_and_a_lost_commit_answer_is_not_called_a_failure() {
    let ids = Mutex::new(40);
    let leases = Mutex::new(0);
    let peer = Peer::start(Box::new(move |b, _| {
        if b.contains("OBJECT_ID(N'settings')") {
            // Another hostler holds the lease for the first two tries.
            let mut n = leases.lock().expect("leases");
            *n += 1;
            return row(if *n <= 2 { "n=\"0\"" } else { "n=\"1\"" });
        }
        if b.ends_with("AS [committed] FOR XML RAW") && b.contains("INSERT INTO [jobs]") {
            return (502, "<html>Bad Gateway</html>".into());
        }
        sql2000(b, &ids)
    }));
    let mut db = Mssql2000::open(&peer.url).expect("driver");
    db.write(&mut |c| c.insert(catalog("host_insert")).map(|_| ()))
        .expect("written once the lease is free");
    let leases_sent = peer
        .batches()
        .iter()
        .filter(|b| b.contains("OBJECT_ID(N'settings')"))
        .count();
    assert_eq!(leases_sent, 3);
    // The commit's answer is lost and the lease row says nothing either: the error says the
    // outcome is unknown, and the lease is left to run out rather than released under a
    // commit that may have happened.
    let e = db
        .write(&mut |c| c.insert(catalog("job_insert")).map(|_| ()))
        .expect_err("answer lost");
    assert!(
        e.to_string()
            .contains("whether the commit took effect is not known"),
        "{e}"
    );
    let sent = peer.batches();
    assert!(
        sent.last()
            .is_some_and(|b| b.contains("SELECT CAST([value] AS NVARCHAR(200)) AS [v]"))
    );
    assert!(!sent.last().is_some_and(|b| b.contains("SET [value] = N''")));
}

/// The mark a commit batch leaves on the lease row (`~owner-seq 0`), as sent.
fn mark_in(commit: &str) -> Option<String> {
    let at = commit.find("SET [value] = N'~")? + "SET [value] = N'".len();
    commit[at..].split('\'').next().map(str::to_string)
}

#[test]
fn a_lost_commit_answer_is_looked_up_on_the_lease_row() {
    // What the lease row shows after the lost answer: the commit's mark, or the lease still
    // held (the commit, which releases it in the same transaction, did not happen).
    let shows_mark = Arc::new(Mutex::new(true));
    let ids = Mutex::new(40);
    let last_commit = Mutex::new(String::new());
    let flag = shows_mark.clone();
    let peer = Peer::start(Box::new(move |b, _| {
        if b.ends_with("AS [committed] FOR XML RAW") {
            *last_commit.lock().expect("commit") = b.to_string();
            return (504, "<html>Gateway Timeout</html>".into());
        }
        if b.contains("AS [v] FROM [settings]") {
            let commit = last_commit.lock().expect("commit").clone();
            let mark = mark_in(&commit).expect("a mark in the commit");
            let v = if *flag.lock().expect("flag") {
                mark
            } else {
                // The owner part of the mark, as the lease it still holds.
                let owner = mark
                    .trim_start_matches('~')
                    .rsplit_once('-')
                    .expect("seq")
                    .0
                    .to_string();
                format!("{owner} 1764120000000")
            };
            return row(&format!("v=\"{v}\""));
        }
        sql2000(b, &ids)
    }));
    let mut db = Mssql2000::open(&peer.url).expect("driver");
    db.write(&mut |c| c.insert(catalog("host_insert")).map(|_| ()))
        .expect("the mark says it committed");
    *shows_mark.lock().expect("flag") = false;
    let e = db
        .write(&mut |c| c.insert(catalog("host_insert")).map(|_| ()))
        .expect_err("not committed");
    assert!(
        e.to_string().contains("the commit did not take effect"),
        "{e}"
    );
    assert!(
        peer.batches()
            .last()
            .is_some_and(|b| b.contains("SET [value] = N''")),
        "the lease given back"
    );
    // Each commit has its own number.
    let commits: Vec<String> = peer
        .batches()
        .iter()
        .filter(|b| b.ends_with("AS [committed] FOR XML RAW"))
        .filter_map(|b| mark_in(b))
        .collect();
    assert_eq!(commits.len(), 2);
    assert_ne!(commits[0], commits[1]);
}

#[test]
fn a_virtual_root_that_wraps_queries_in_transactions_is_refused() {
    let peer = Peer::start(Box::new(|b, _| {
        if b.contains("SERVERPROPERTY") {
            row("version=\"8.00.194\" trancount=\"1\"")
        } else {
            row("n=\"1\"")
        }
    }));
    let e = Mssql2000::open(&peer.url).err().map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.contains("inside a transaction of its own")),
        "{e:?}"
    );
}
