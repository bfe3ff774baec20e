//! The TDS driver (SQL Server 2005+ over tiberius).
//!
//! Peers, plainly: no SQL Server runs here. Connection, login, TLS, queries, the FOR XML
//! column and errors are tested against Microsoft's mock TDS server (the `mssql-mock-tds`
//! crate, on a free loopback port), which answers the queries a test registers and an empty
//! result to anything else. The whole store runs against a real SQL Server only when
//! `HOSTLER_TEST_MSSQL=mssql://USER:PASSWORD@HOST/DATABASE[?...]` is set; the same exercise
//! runs on SQLite every time, so it is known to pass and able to fail.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hostler::store::tds::{BEGIN_WRITE, FOR_XML_COLUMN, Tds, TdsUrl};
use hostler::store::{
    Driver, JobAction, Method, NewHost, NewJob, NewRun, RunFilter, Secret, Status, Store,
    StoreError,
};
use mssql_mock_tds::{
    ColumnDefinition, ColumnValue, ConnectionStore, MockTdsServer, QueryRegistry, QueryResponse,
    Row, SqlDataType, TerminalError,
};

use crate::util::{Work, code, stderr, stdout};

/// The CLI on a database URL with a password: through $HOSTLER_DB, as `--db` refuses one.
fn run_db(w: &Work, url: &str, args: &[&str]) -> std::process::Output {
    w.cmd(args)
        .env("HOSTLER_DB", url)
        .output()
        .expect("hostler")
}

/// Microsoft's mock TDS server on a free loopback port, on its own tokio runtime; stopped on
/// drop.
struct Mock {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    registry: Arc<tokio::sync::Mutex<QueryRegistry>>,
    conns: Arc<tokio::sync::Mutex<ConnectionStore>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Mock {
    /// Without TLS, or with TLS from a certificate and key (PEM).
    fn start(tls: Option<(&[u8], &[u8])>) -> Mock {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let identity =
            tls.map(|(c, k)| mssql_mock_tds::create_test_identity(c, k).expect("identity"));
        let server = rt
            .block_on(MockTdsServer::new_with_tls("127.0.0.1:0", identity))
            .expect("mock TDS server");
        let addr = server.local_addr();
        let registry = server.query_registry();
        let conns = server.connection_store();
        let (tx, rx) = tokio::sync::oneshot::channel();
        rt.spawn(server.run_with_shutdown(rx));
        Mock {
            rt,
            addr,
            registry,
            conns,
            stop: Some(tx),
        }
    }

    fn register(&self, sql: &str, response: QueryResponse) {
        self.rt
            .block_on(async { self.registry.lock().await.register(sql, response) });
    }

    /// The databases named by the logins the server accepted.
    fn logins(&self) -> Vec<Option<String>> {
        self.rt.block_on(async {
            let conns = self.conns.lock().await;
            conns
                .all()
                .values()
                .filter(|c| c.authenticated)
                .map(|c| c.received_database.clone())
                .collect()
        })
    }

    /// An `mssql://` URL for this server.
    fn url(&self, host: &str, options: &str) -> String {
        format!(
            "mssql://sa:Sec%40ret-pw@{host}:{}/hostler{options}",
            self.addr.port()
        )
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1 (PEM), and its key.
fn self_signed() -> (Vec<u8>, Vec<u8>) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509, X509NameBuilder};
    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "localhost").expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let serial = BigNum::from_u32(1)
        .and_then(|n| n.to_asn1_integer())
        .expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(2).expect("t"))
        .expect("na");
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .expect("san");
    b.append_extension(san).expect("san");
    b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
        .expect("bc");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    (
        b.build().to_pem().expect("pem"),
        key.private_key_to_pem_pkcs8().expect("key pem"),
    )
}

/// A FOR XML answer as SQL Server 2005+ sends it: the one XML column, split over rows.
fn for_xml(chunks: &[&str]) -> QueryResponse {
    QueryResponse::new(
        vec![ColumnDefinition::new(FOR_XML_COLUMN, SqlDataType::NVarChar)],
        chunks
            .iter()
            .map(|c| Row::new(vec![ColumnValue::NVarChar(c.to_string())]))
            .collect(),
    )
}

#[test]
fn mock_login_queries_for_xml_and_errors() {
    let mock = Mock::start(None);
    mock.register(
        "SELECT name, address FROM hosts FOR XML RAW",
        // Split inside a tag and inside an escaped value, as the server splits at ~2 KB.
        for_xml(&[
            "<row name=\"web1\" address=\"192.0.2.1\"/><row na",
            "me=\"db&amp;1\" addr",
            "ess=\"192.0.2.2\"/>",
        ]),
    );
    mock.register(
        "SELECT * FROM nope",
        QueryResponse::error_only(TerminalError::new(208, 16, "Invalid object name 'nope'.")),
    );
    let url = mock.url("127.0.0.1", "?encrypt=off");

    // The driver: login, a query with its typed value, a server error with its number.
    let mut tds = Tds::open(&url).expect("login to the mock");
    let r = tds.raw("SELECT 1", false).expect("SELECT 1");
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0][0].to_text().as_deref(), Some("1"));
    let r = tds
        .raw("select name, address from hosts for xml raw", false)
        .expect("FOR XML");
    assert_eq!(r.columns, vec![FOR_XML_COLUMN.to_string()]);
    assert_eq!(r.rows.len(), 3, "one row per chunk");
    let e = tds.raw("SELECT * FROM nope", false).expect_err("an error");
    assert_eq!(
        e.to_string(),
        "database error: SQL Server error 208: Invalid object name 'nope'."
    );
    // The connection is still good after a server error.
    assert!(tds.raw("SELECT 1", false).is_ok());
    assert_eq!(
        mock.logins(),
        [Some("hostler".to_string())],
        "one login, to hostler"
    );

    // `hostler sql` joins the FOR XML chunks and prints the rows, as over SQLXML.
    let w = Work::new();
    let o = run_db(
        &w,
        &url,
        &[
            "sql",
            "--json",
            "SELECT name, address FROM hosts FOR XML RAW",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v[1]["name"], "db&1");
    assert_eq!(v[1]["address"], "192.0.2.2");
    let o = run_db(
        &w,
        &url,
        &["sql", "SELECT name, address FROM hosts FOR XML RAW"],
    );
    assert!(stdout(&o).contains("web1") && stdout(&o).contains("db&1"));
    // An error is one line, with the server's number, and a non-zero exit.
    let o = run_db(&w, &url, &["sql", "SELECT * FROM nope"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("SQL Server error 208: Invalid object name 'nope'."),
        "{err}"
    );
    // One line of error (beside the log's warning that encrypt=off sends it all in clear).
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("hostler: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(err.contains("encrypt=off"), "the clear-text warning: {err}");
    assert!(
        !err.contains("Sec@ret") && !err.contains("Sec%40ret"),
        "{err}"
    );
}

#[test]
fn mock_query_timeout_drops_the_connection_and_the_next_unit_reconnects() {
    let mock = Mock::start(None);
    mock.register(
        "SELECT 2",
        QueryResponse::select_one().with_delay(Duration::from_secs(30)),
    );
    let mut tds = Tds::open(&mock.url("127.0.0.1", "?encrypt=off&timeout=1")).expect("login");
    let started = std::time::Instant::now();
    let e = tds.raw("SELECT 2", false).expect_err("timed out");
    assert!(
        e.to_string().contains("did not answer a query within 1 s"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    // The half-answered connection is not reused: a new one answers at once.
    let r = tds.raw("SELECT 1", false).expect("after reconnecting");
    assert_eq!(r.rows[0][0].to_text().as_deref(), Some("1"));
}

#[test]
fn tls_is_required_and_a_bad_handshake_is_an_error_not_a_panic() {
    // A server without TLS is refused unless encrypt=off is given.
    let plain = Mock::start(None);
    let e = Tds::open(&plain.url("127.0.0.1", "?timeout=2"))
        .err()
        .expect("refused without TLS");
    let msg = e.to_string();
    assert!(msg.contains("encrypt=off connects in clear"), "{msg}");
    assert!(
        plain.logins().is_empty(),
        "no login reached the server in clear"
    );
    assert!(
        !msg.contains("Sec@ret") && !msg.contains("Sec%40ret"),
        "{msg}"
    );

    // A TLS server: the mock wraps its half of the TLS handshake in TDS packets of type 0x04,
    // where tiberius accepts only 0x12 (PRELOGIN) and asserts. Whatever the certificate
    // settings, that is an error naming the problem, never a panic that takes hostler down.
    // (So the certificate checks themselves cannot be shown against this mock.)
    let (cert, key) = self_signed();
    let tls = Mock::start(Some((&cert, &key)));
    let w = Work::new();
    let ca = w.path("ca.pem");
    std::fs::write(&ca, &cert).expect("write ca");
    for options in [
        String::new(),
        format!("?ca={}", ca.display()),
        "?trust_server_certificate=true".to_string(),
    ] {
        let e = Tds::open(&tls.url("localhost", &options))
            .err()
            .expect("the mock's TLS framing is refused");
        let msg = e.to_string();
        assert!(
            msg.contains("answer was not understood"),
            "{options}: {msg}"
        );
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }
    // The same through the command line: exit code 1 and one line, not a panic's 101.
    let o = run_db(
        &w,
        &tls.url("localhost", "?trust_server_certificate=true"),
        &["sql", "SELECT 1"],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("hostler: cannot open database mssql://sa:********@localhost"));
}

#[test]
fn bad_tds_urls_get_one_line_errors_without_the_password() {
    for (url, want) in [
        (
            "mssql://sa:hunter2@db:99999/x",
            "port \"99999\" is not a number",
        ),
        (
            "mssql://db.example/x",
            "give the login as mssql://USER:PASSWORD@HOST/DATABASE",
        ),
        ("mssql://:hunter2@db/x", "the user name is empty"),
        ("mssql://sa:hunter2@db/x?encrypt=maybe", "encrypt=\"maybe\""),
        (
            "mssql://sa:hunter2@db/x?colour=red",
            "unknown option \"colour\"",
        ),
        ("mssql://sa:hunter2@db/x?timeout=0", "timeout=\"0\""),
        ("mssql://sa:hunter2@/x", "the host is empty"),
    ] {
        let e = match Store::open(url) {
            Err(e) => e,
            Ok(_) => panic!("{url} was accepted"),
        };
        let msg = e.to_string();
        assert!(msg.contains(want), "{url}: {msg}");
        assert!(!msg.contains("hunter2"), "{url}: {msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }
    // Nothing listens: the error names the address, and the exit code is 1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let w = Work::new();
    let o = run_db(
        &w,
        &format!("mssql://sa:hunter2@127.0.0.1:{port}/x?encrypt=off"),
        &["sql", "SELECT 1"],
    );
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("cannot reach 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn writes_take_the_write_lock_and_failed_transaction_ends_are_errors() {
    let mock = Mock::start(None);
    let mut tds = Tds::open(&mock.url("127.0.0.1", "?encrypt=off")).expect("login");
    let mut nothing = |_: &mut dyn hostler::store::Conn| Ok(());
    tds.write(&mut nothing).expect("a write unit");
    // Another node holds the write lock: the write fails with the server's message, reads
    // (which do not take it) go on, and the connection is still usable afterwards.
    mock.register(
        BEGIN_WRITE,
        QueryResponse::error_only(TerminalError::new(
            50000,
            16,
            "another hostler held the write lock for 5 s; try again",
        )),
    );
    let e = tds.write(&mut nothing).expect_err("lock not taken");
    assert!(e.to_string().contains("held the write lock"), "{e}");
    tds.read(&mut nothing).expect("a read unit");
    // A COMMIT the server refuses is the unit's error, not a silent success.
    mock.register(
        "COMMIT TRANSACTION",
        QueryResponse::error_only(TerminalError::new(3902, 16, "no corresponding BEGIN")),
    );
    let e = tds.read(&mut nothing).expect_err("commit refused");
    assert!(e.to_string().contains("SQL Server error 3902"), "{e}");
    // Work that fails is reported as it failed (and rolled back, which the mock accepts).
    let e = tds
        .read(&mut |_: &mut dyn hostler::store::Conn| Err(StoreError::Invalid("no".into())))
        .expect_err("work failed");
    assert_eq!(e.to_string(), "no");
    assert_eq!(mock.logins().len(), 1, "all on the one connection");
}

#[test]
fn operator_statements_that_change_rows_are_told_from_queries() {
    use hostler::store::tds::is_change;
    for sql in [
        "DELETE FROM runs",
        "  update hosts SET port = 22",
        "-- tidy up\nDELETE FROM runs WHERE id < 5",
        "/* a\n comment */ INSERT INTO t VALUES (1)",
        "TRUNCATE TABLE runs",
    ] {
        assert!(is_change(sql), "{sql}");
    }
    for sql in [
        "SELECT 1",
        "-- DELETE\nSELECT 1",
        "/* UPDATE */ SELECT 2",
        "EXEC sp_who",
    ] {
        assert!(!is_change(sql), "{sql}");
    }
}

#[test]
fn tds_urls_parse_credentials_hosts_and_options() {
    let u = TdsUrl::parse("mssql://dom%5Cops+1:p%40ss+w%3Ard@[::1]:1500/my%20db").expect("v6");
    assert_eq!(
        (
            u.user.as_str(),
            u.host.as_str(),
            u.port,
            u.database.as_str()
        ),
        ("dom\\ops+1", "::1", 1500, "my db")
    );
    assert_eq!(u.shown, "mssql://dom%5Cops+1:********@[::1]:1500/my%20db");
    assert!(!format!("{u:?}").contains("p%40ss"));
    let u = TdsUrl::parse("mssql://sa:x@[fe80::1]/db").expect("v6, default port");
    assert_eq!((u.host.as_str(), u.port), ("fe80::1", 1433));
    let u = TdsUrl::parse("mssql://sa:x@db.example").expect("no database");
    assert_eq!(
        (u.host.as_str(), u.port, u.database.as_str()),
        ("db.example", 1433, "")
    );
    for (url, want) in [
        ("mssql://sa:x@::1/db", "put an IPv6 address in brackets"),
        ("mssql://sa:x@[::1/db", "needs its closing ]"),
        ("mssql://sa:x@db:0/db", "port \"0\""),
        (
            "mssql://sa:x@db/db?ca=/tmp/ca.pem&trust_server_certificate=true",
            "not both",
        ),
        (
            "mssql://sa:se%zzcret@db/db",
            "the password is not valid percent-encoding",
        ),
    ] {
        let e = TdsUrl::parse(url)
            .err()
            .unwrap_or_else(|| panic!("{url} accepted"));
        assert!(e.to_string().contains(want), "{url}: {e}");
        assert!(!e.to_string().contains("zzcret"), "{e}");
    }
}

fn host(name: &str) -> NewHost {
    NewHost {
        name: name.into(),
        address: "192.0.2.10".into(),
        method: Some(Method::Ssh),
        username: Some("ops".into()),
        secret: Some(Secret::new("s3cret")),
        ..NewHost::default()
    }
}

/// The store's main paths on any driver: hosts with secrets, scripts, the queue with its
/// claim and lease, a run that deletes its job in the same transaction, history, and a
/// constraint refused without a partial write.
fn exercise(s: &Store, tag: &str) {
    let h = format!("web-{tag}");
    let script = format!("check-{tag}");
    s.add_host(&host(&h)).expect("add host");
    assert!(matches!(
        s.add_host(&host(&h)),
        Err(StoreError::Exists { .. })
    ));
    assert_eq!(
        s.host_secret(&h)
            .expect("secret")
            .map(|x| x.expose().to_string()),
        Some("s3cret".into())
    );
    s.save_scripts(&[hostler::store::NewScript {
        name: &script,
        source: "ok(\"fine\")",
        description: Some("a check with 'quotes' and ünïcode".into()),
        kind: hostler::store::ScriptKind::Check,
    }])
    .expect("save script");
    assert_eq!(
        s.script(&script).expect("script").description.as_deref(),
        Some("a check with 'quotes' and ünïcode")
    );
    let job = NewJob {
        name: None,
        script: script.clone(),
        host: Some(h.clone()),
        priority: 5,
        due_at: 0,
        max_attempts: 3,
        timeout_ms: None,
        schedule_id: None,
        args: None,
    };
    let (id, new) = s.enqueue(&job).expect("enqueue");
    assert!(new);
    assert_eq!(s.enqueue(&job).expect("enqueue again"), (id, false));
    let claimed = s
        .claim_job("node-a", 60_000, 1, None, false)
        .expect("claim")
        .expect("a job");
    assert_eq!((claimed.id, claimed.state.as_str()), (id, "running"));
    assert_eq!(claimed.lease_owner.as_deref(), Some("node-a"));
    assert!(
        s.claim_job("node-b", 60_000, 1, None, false)
            .expect("claim")
            .is_none(),
        "one job per host at a time"
    );
    let run_id = s
        .record_run(
            &NewRun {
                check_name: None,
                job_id: Some(id),
                schedule_id: None,
                script: script.clone(),
                script_version: Some(1),
                host: Some(h.clone()),
                node: Some("node-a".into()),
                status: Status::Ok,
                message: "fine".into(),
                perfdata: Some("load=0.1".into()),
                output: "out".into(),
                transcript: "t".into(),
                started_at: 1,
                finished_at: 2,
                attempt: 1,
                phase: None,
                notifications: vec![],
            },
            JobAction::Done,
        )
        .expect("record run");
    assert!(s.job(id).is_err(), "the run deleted its job");
    let runs = s
        .runs(&RunFilter {
            host: Some(h.clone()),
            limit: 10,
            ..RunFilter::default()
        })
        .expect("runs");
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![run_id]);
    assert_eq!(runs[0].message, "fine");
    s.remove_host(&h).expect("remove host");
    assert!(matches!(s.host(&h), Err(StoreError::NotFound { .. })));
}

#[test]
fn the_store_exercise_passes_on_sqlite() {
    let w = Work::new();
    exercise(&w.store(), "sqlite");
}

#[test]
fn the_whole_store_on_a_real_sql_server_when_hostler_test_mssql_is_set() {
    let Ok(url) = std::env::var("HOSTLER_TEST_MSSQL") else {
        eprintln!(
            "SKIPPED: the whole store on a real SQL Server needs \
             HOSTLER_TEST_MSSQL=mssql://USER:PASSWORD@HOST/DATABASE (none runs here)"
        );
        return;
    };
    let store = Store::open(&url).unwrap_or_else(|e| panic!("{e}"));
    let tag = format!("{}-{}", std::process::id(), hostler::store::now_ms());
    exercise(&store, &tag);
}
