//! SQLXML: the client's parser on fixture bodies written from the documented examples in
//! SQLXML.md (tests/fixtures/sqlxml; no SQL Server 2000 runs here, so these fixtures and
//! hostler's own endpoint are the peers), bad bodies and transport failures from a real
//! tiny_http server, and round trips between the client and hostler's `/sqlxml` endpoint
//! (in-process server over a real SQLite database), including `hostler sql` over SQLXML.

use std::io::Cursor;
use std::sync::Arc;

use hostler::sqlxml::client::{Client, TemplateBody};
use hostler::sqlxml::types::typed;
use hostler::sqlxml::{Record, SqlxmlError, decode_stream, names, parse, table};
use hostler::store::{Method, NewHost, Secret, Store};

use crate::util::{Work, code, stderr, stdout};
use crate::webutil::{ADMIN_PW, Site};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/sqlxml/{name}.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn records(name: &str, root: Option<&str>) -> Vec<Record> {
    parse(Cursor::new(fixture(name)), root)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .records
}

fn cols(r: &Record) -> Vec<(&str, &str)> {
    r.columns().collect()
}

#[test]
fn raw_fragment_rows_are_attributes() {
    let r = records("raw_fragment", None);
    assert_eq!(r.len(), 2);
    assert_eq!(&*r[0].table, "row");
    assert_eq!(
        cols(&r[0]),
        [("au_fname", "Abraham"), ("au_lname", "Bennet")]
    );
    assert_eq!(r[1].get("au_lname"), Some("Blotchet-Halls"));
}

#[test]
fn auto_join_nests_orders_under_customers() {
    let resp = parse(Cursor::new(fixture("auto_join")), Some("ROOT")).expect("parse");
    assert_eq!(resp.root.as_deref(), Some("ROOT"));
    let r = resp.records;
    assert_eq!(r.len(), 2);
    assert_eq!(
        (&*r[0].table, r[0].get("CustomerID")),
        ("Customers", Some("ALFKI"))
    );
    assert_eq!(r[0].children.len(), 2);
    assert_eq!(
        r[0].children[1].get("OrderDate"),
        Some("1997-10-03T00:00:00")
    );
    assert_eq!(r[1].children[0].get("OrderID"), Some("10308"));
    let (columns, rows) = table(&r);
    assert_eq!(
        columns,
        ["CustomerID", "Orders.OrderID", "Orders.OrderDate"]
    );
    assert_eq!(rows.len(), 3, "one flat row per innermost record");
    assert_eq!(rows[2][0].as_deref(), Some("ANATR"));
}

#[test]
fn elements_mode_children_are_columns_or_rows() {
    let r = records("elements", Some("ROOT"));
    assert_eq!(r.len(), 1);
    assert_eq!(
        cols(&r[0]),
        [("CustomerID", "ALFKI"), ("ContactName", "Maria Anders")]
    );
    assert_eq!(r[0].children.len(), 2);
    assert_eq!(
        cols(&r[0].children[0]),
        [("OrderID", "10643"), ("Freight", "29.4600")]
    );
    // A NULL column has no element: the second order has no Freight.
    assert_eq!(r[0].children[1].get("Freight"), None);
}

#[test]
fn xmldata_schema_types_the_values_whatever_its_name() {
    let resp = parse(Cursor::new(fixture("xmldata_raw")), None).expect("parse");
    assert_eq!(resp.records.len(), 2, "the schema is not a row");
    let s = &resp.schema;
    assert_eq!(s.type_of("row", "ProductModelID"), Some("i4"));
    assert_eq!(s.type_of("row", "ListPrice"), Some("fixed.14.4"));
    let row = &resp.records[0];
    assert_eq!(
        typed(
            row.get("ProductModelID").unwrap(),
            s.type_of("row", "ProductModelID")
        ),
        serde_json::json!(122)
    );
    assert_eq!(
        typed(row.get("ListPrice").unwrap(), s.type_of("row", "ListPrice")),
        serde_json::json!("159.0000"),
        "decimals keep their digits"
    );
    assert_eq!(
        typed(
            row.get("Discontinued").unwrap(),
            s.type_of("row", "Discontinued")
        ),
        serde_json::json!(false)
    );
    assert_eq!(resp.records[1].get("ListPrice"), None, "NULL is absent");
    assert_eq!(
        typed("x", Some("i4")),
        serde_json::json!("x"),
        "a bad value stays text"
    );
    for t in hostler::sqlxml::types::XDR_TYPES {
        let _ = typed("1", Some(t));
    }
}

#[test]
fn null_is_absence_and_empty_is_empty() {
    let r = records("nulls", None);
    let (columns, rows) = table(&r);
    assert_eq!(columns, ["a", "b"]);
    assert_eq!(rows[0], [Some("1".to_string()), None]);
    assert_eq!(rows[1][1].as_deref(), Some("x"));
    assert_eq!(
        rows[2][1].as_deref(),
        Some(""),
        "an empty string is not NULL"
    );
}

#[test]
fn base64_values_decode_on_request() {
    let r = records("base64", None);
    assert_eq!(r[0].get("Col2"), Some("Bw=="), "values stay lexical");
    assert_eq!(
        hostler::sqlxml::types::base64(r[0].get("Col2").unwrap()).unwrap(),
        [7]
    );
    assert_eq!(
        hostler::sqlxml::types::base64(r[1].get("Col2").unwrap()).unwrap(),
        [0, 0, 0, 0, 0, 0, 0x1f, 0x4e]
    );
    assert!(hostler::sqlxml::types::base64("@@").is_err());
}

#[test]
fn names_are_decoded_and_values_never() {
    let r = records("escaped_names", Some("ROOT"));
    assert_eq!(&*r[0].table, "Order Details");
    assert_eq!(
        cols(&r[0]),
        [
            ("Col#&2", "v"),
            ("Order_Details", "_x0020_ stays"),
            ("Big\u{10000}", "astral")
        ]
    );
    for n in [
        "Order Details",
        "Col#&2",
        "a_xb",
        "_x0020_",
        "1st",
        "x:y",
        "ü ß",
        "\u{10000}",
    ] {
        assert_eq!(names::decode(&names::encode(n)), n, "{n}");
    }
    assert_eq!(names::encode("Order Details"), "Order_x0020_Details");
    assert_eq!(names::encode("Col#&2"), "Col_x0023__x0026_2");
    assert_eq!(
        names::decode("a_x12_b_xZZZZ_"),
        "a_x12_b_xZZZZ_",
        "not an escape: kept"
    );
}

#[test]
fn an_error_instruction_is_a_typed_error_and_keeps_the_rows() {
    match parse(Cursor::new(fixture("error_template")), Some("Root")) {
        Err(SqlxmlError::Server { error, partial, .. }) => {
            assert_eq!(error.hresult, "0x80004005");
            assert_eq!(error.source, "Microsoft XML Extensions to SQL Server");
            assert_eq!(
                error.description,
                "Invalid XML elements found inside sync block"
            );
            assert!(partial.records.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match parse(Cursor::new(fixture("error_after_rows")), None) {
        Err(SqlxmlError::Server {
            error,
            partial,
            more,
        }) => {
            assert_eq!(error.description, "Invalid object name \"Ordrs\".");
            assert_eq!(partial.records.len(), 2, "rows before the error are kept");
            assert_eq!(more, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_results_bom_declaration_and_utf16() {
    assert!(records("empty_fragment", None).is_empty());
    assert!(records("empty_root", Some("ROOT")).is_empty());
    assert_eq!(
        records("template_result", Some("ROOT"))[0].get("LastName"),
        Some("Davolio")
    );
    let plain = fixture("auto_join");
    let want = records("auto_join", Some("ROOT"));
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(&plain);
    let mut le = vec![0xFF, 0xFE];
    let mut be = vec![0xFE, 0xFF];
    for u in String::from_utf8(plain).unwrap().encode_utf16() {
        le.extend_from_slice(&u.to_le_bytes());
        be.extend_from_slice(&u.to_be_bytes());
    }
    for body in [bom, le, be] {
        let input = decode_stream(Cursor::new(body)).expect("decode");
        assert_eq!(parse(input, Some("ROOT")).expect("parse").records, want);
    }
}

#[test]
fn malformed_truncated_and_huge_bodies_are_clear_errors() {
    for (body, want) in [
        (&b"<row a=\"1\"><x></row>"[..], "malformed"),
        (b"<ROOT><row a=\"1\" />", "truncated"),
        (b"<row a=\"1\"", "malformed"),
        (b"<row a=1 />", "malformed"),
        (b"<row a=\"&bogus;\" />", "malformed"),
        (b"\xff\xfe\xfd<row/>", "malformed"),
    ] {
        let err = match parse(Cursor::new(body.to_vec()), Some("ROOT")) {
            Err(e) => e.to_string(),
            Ok(r) => panic!("{body:?} parsed: {r:?}"),
        };
        assert!(err.to_lowercase().contains(want), "{body:?}: {err}");
    }
    let mut huge = b"<row a=\"".to_vec();
    huge.extend(std::iter::repeat_n(
        b'x',
        hostler::sqlxml::parse::MAX_TOKEN + 10,
    ));
    huge.extend_from_slice(b"\" />");
    let err = parse(Cursor::new(huge), None)
        .expect_err("too big")
        .to_string();
    assert!(err.contains("MiB"), "{err}");
}

/// A real HTTP server answering one canned response per request.
fn canned(
    status: u16,
    content_type: &str,
    body: &'static str,
) -> (String, std::thread::JoinHandle<()>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("server");
    let port = server.server_addr().to_ip().expect("ip").port();
    let ct = content_type.to_string();
    let h = std::thread::spawn(move || {
        if let Ok(Some(rq)) = server.recv_timeout(std::time::Duration::from_secs(20)) {
            let resp = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(
                    tiny_http::Header::from_bytes(&b"content-type"[..], ct.as_bytes()).unwrap(),
                );
            let _ = rq.respond(resp);
        }
    });
    (format!("sqlxml+http://127.0.0.1:{port}/nwind"), h)
}

#[test]
fn transport_failures_show_the_body() {
    for (status, ct, body, want) in [
        (
            500,
            "text/html",
            "<html><body>Internal Server Error: sqlisapi</body></html>",
            "HTTP 500",
        ),
        (
            200,
            "text/html",
            "<html><body>URL queries are not allowed</body></html>",
            "an HTML page",
        ),
        (
            404,
            "text/plain",
            "virtual name not found",
            "virtual name not found",
        ),
        (200, "text/xml", "<ROOT><row a=\"1\"></ROOT>", "malformed"),
        (
            200,
            "text/plain",
            "Login failed for user 'sa'.",
            "text outside any element",
        ),
    ] {
        let (url, h) = canned(status, ct, body);
        let err = Client::new(&url)
            .expect("client")
            .query("SELECT 1 FOR XML RAW", &[], Some("ROOT"))
            .expect_err(body);
        let text = err.to_string();
        assert!(text.contains(want), "{text}");
        h.join().expect("server");
    }
    let err = Client::new("sqlxml+http://127.0.0.1:1/x")
        .unwrap()
        .query("SELECT 1", &[], None)
        .expect_err("refused");
    assert!(matches!(err, SqlxmlError::Transport(_)), "{err}");
    for bad in ["ftp://x/y", "sqlxml+http:///vroot", "nonsense"] {
        assert!(Client::new(bad).is_err(), "{bad}");
    }
}

#[test]
fn query_urls_encode_everything_and_pass_parameters_in_order() {
    let c = Client::new("sqlxml+http://u:p%40ss@server/nwind/").expect("client");
    assert_eq!(c.base, "http://server/nwind");
    let url = c.query_url(
        "SELECT * FROM t WHERE a=? AND b LIKE '%+&#/' FOR XML AUTO",
        &["1".into(), "x y".into()],
        Some("root"),
    );
    assert_eq!(
        url,
        "http://server/nwind?sql=SELECT%20%2A%20FROM%20t%20WHERE%20a%3D%3F%20AND%20b%20LIKE%20%27%25%2B%26%23%2F%27%20FOR%20XML%20AUTO&root=root&p1=1&p2=x%20y"
    );
    assert_eq!(
        hostler::redact::database_url("sqlxml+http://u:secret@h/v"),
        "sqlxml+http://u:********@h/v"
    );
    // A bad escape in the password is refused without quoting the password.
    let e = Client::new("sqlxml+http://u:se%zzcret@h/v").expect_err("bad escape");
    assert!(e.to_string().contains("the password is not valid"), "{e}");
    assert!(!e.to_string().contains("zzcret"), "{e}");
}

/// A store with a host that has a secret, for the endpoint.
fn endpoint() -> (Work, Arc<Store>, Site) {
    let w = Work::new();
    let store = w.store();
    store
        .add_host(&NewHost {
            name: "web1".into(),
            address: "192.0.2.1".into(),
            method: Some(Method::Ssh),
            secret: Some(Secret::new("Endpoint-secret-77")),
            username: Some("ops".into()),
            tags: vec!["web".into()],
            ..Default::default()
        })
        .expect("host");
    store
        .add_host(&NewHost {
            name: "box".into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Local),
            ..Default::default()
        })
        .expect("host");
    w.script(&store, "check_a", "ok(\"a\")");
    w.script(&store, "check_b", "ok(\"b\")");
    let site = Site::start(store.clone(), false);
    (w, store, site)
}

fn client(site: &Site) -> Client {
    let url = site
        .base
        .replace("http://", &format!("sqlxml+http://admin:{ADMIN_PW}@"))
        + "/sqlxml";
    Client::new(&url).expect("client")
}

#[test]
fn round_trips_with_hostlers_endpoint() {
    let (_w, _store, site) = endpoint();
    let c = client(&site);
    // RAW under a root, NULL as absence (a local host has no port).
    let r = c
        .query(
            "SELECT name, method, port FROM hosts ORDER BY name FOR XML RAW",
            &[],
            Some("ROOT"),
        )
        .expect("raw");
    assert_eq!(r.root.as_deref(), Some("ROOT"));
    assert_eq!(r.records.len(), 2);
    assert_eq!(cols(&r.records[0]), [("name", "box"), ("method", "local")]);
    // A fragment, positional parameters.
    let r = c
        .query(
            "SELECT name FROM hosts WHERE method = ? AND name LIKE ? FOR XML RAW",
            &["ssh".into(), "w%".into()],
            None,
        )
        .expect("params");
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].get("name"), Some("web1"));
    // AUTO nests by table; XMLDATA types; escaped names.
    let r = c
        .query("SELECT h.name, s.name AS \"script name\", s.version FROM hosts h, scripts s WHERE s.name LIKE 'check%' ORDER BY h.name, s.name FOR XML AUTO, XMLDATA", &[], Some("ROOT"))
        .expect("auto");
    assert_eq!(r.records.len(), 2);
    assert_eq!(
        (&*r.records[0].table, r.records[0].children.len()),
        ("hosts", 2)
    );
    assert_eq!(r.records[0].children[1].get("script name"), Some("check_b"));
    assert_eq!(r.schema.type_of("scripts", "version"), Some("i4"));
    // ELEMENTS.
    let r = c
        .query(
            "SELECT name, address FROM hosts ORDER BY name FOR XML AUTO, ELEMENTS",
            &[],
            Some("ROOT"),
        )
        .expect("elements");
    assert_eq!(
        cols(&r.records[1]),
        [("name", "web1"), ("address", "192.0.2.1")]
    );
    // Binary needs BINARY BASE64, as in SQL Server 2000.
    let err = c
        .query(
            "SELECT CAST('ab' AS BLOB) AS b FROM hosts FOR XML RAW",
            &[],
            Some("ROOT"),
        )
        .expect_err("binary");
    assert!(err.to_string().contains("BINARY BASE64"), "{err}");
    let r = c
        .query(
            "SELECT CAST('ab' AS BLOB) AS b FROM hosts LIMIT 1 FOR XML RAW, BINARY BASE64",
            &[],
            Some("ROOT"),
        )
        .expect("base64");
    assert_eq!(r.records[0].get("b"), Some("YWI="));
    // Values with markup and line ends come back as they were.
    let r = c
        .query(
            "SELECT '<a & \"b\">' || char(10) || 'x' AS v FOR XML RAW",
            &[],
            None,
        )
        .expect("escape");
    assert_eq!(r.records[0].get("v"), Some("<a & \"b\">\nx"));
}

#[test]
fn the_endpoint_reads_only_and_never_shows_secrets() {
    let (_w, store, site) = endpoint();
    let c = client(&site);
    for sql in [
        "SELECT secret FROM hosts FOR XML RAW",
        "SELECT substr(secret, 1, 8) AS s, secret || '' AS t FROM hosts FOR XML RAW",
        "SELECT * FROM hosts FOR XML RAW",
        "SELECT password_hash, name FROM users FOR XML RAW",
        "SELECT token_hash FROM api_tokens FOR XML RAW",
    ] {
        let r = c
            .query(sql, &[], Some("ROOT"))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let all = format!("{:?}", r.records);
        assert!(
            !all.contains("Endpoint-secret") && !all.contains("argon2"),
            "{sql}: {all}"
        );
    }
    for (sql, want) in [
        ("DELETE FROM hosts FOR XML RAW", "read-only"),
        ("UPDATE hosts SET address = 'x' FOR XML RAW", "read-only"),
        ("SELECT 1 FOR XML RAW; DELETE FROM hosts FOR XML RAW", ""),
        ("PRAGMA table_info(hosts) FOR XML RAW", "read-only"),
        ("SELECT name FROM hosts", "FOR XML RAW or FOR XML AUTO"),
        ("SELECT name FROM hosts FOR XML EXPLICIT", "EXPLICIT"),
        ("SELECT name FROM hosts FOR XML RAW, ELEMENTS", "AUTO"),
        ("SELECT nope FROM hosts FOR XML RAW", "no such column"),
        (
            "VACUUM INTO '/tmp/hostler-stolen.db' FOR XML RAW",
            "read-only",
        ),
        (
            "SELECT randomblob(2000000) AS b FOR XML RAW, BINARY BASE64",
            "too big",
        ),
        ("SELECT 1 AS a, 2 AS a FOR XML RAW", "repeated"),
    ] {
        match c.query(sql, &[], Some("ROOT")) {
            Err(SqlxmlError::Server { error, .. }) => {
                assert!(error.description.contains(want), "{sql}: {error}")
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert_eq!(store.hosts().expect("hosts").len(), 2, "nothing changed");
    // Logins: none is 401 with a basic challenge; a wrong password too; a token works.
    let mut anon = site.client();
    let r = anon.get("/sqlxml?sql=SELECT%201%20FOR%20XML%20RAW");
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic"))
    );
    let wrong =
        Client::new(&(site.base.replace("http://", "sqlxml+http://admin:nope@") + "/sqlxml"))
            .unwrap();
    assert!(
        wrong
            .query("SELECT 1 FOR XML RAW", &[], None)
            .unwrap_err()
            .to_string()
            .contains("401")
    );
    let token = hostler::web::auth::new_token(&store, "view", "t").expect("token");
    let r = anon.api_get(
        "/sqlxml?sql=SELECT%20name%20FROM%20hosts%20FOR%20XML%20RAW&root=R",
        &token,
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\" encoding=\"utf-8\" ?><R><row name="),
        "{}",
        r.body
    );
    assert_eq!(r.header("content-type"), Some("text/xml; charset=utf-8"));
}

#[test]
fn templates_by_form_and_raw_body_with_parameters_and_errors() {
    let (_w, _store, site) = endpoint();
    let c = client(&site);
    let template = r#"<ROOT xmlns:sql="urn:schemas-microsoft-com:xml-sql">
  <sql:header><sql:param name="Method">ssh</sql:param></sql:header>
  <sql:query>SELECT name FROM hosts WHERE method = @Method FOR XML AUTO</sql:query>
  <sql:query>SELECT nope FROM nowhere FOR XML RAW</sql:query>
  <sql:query><![CDATA[SELECT name FROM scripts WHERE version < 2 AND name = 'check_a' FOR XML RAW]]></sql:query>
</ROOT>"#;
    for how in [TemplateBody::Form, TemplateBody::Raw] {
        // The default parameter value; the failing query is an error in its place, and the
        // queries around it still answer.
        match c.template(template, &[], how) {
            Err(SqlxmlError::Server { error, partial, .. }) => {
                assert!(error.description.contains("nowhere"), "{error}");
                let tables: Vec<_> = partial
                    .records
                    .iter()
                    .map(|r| {
                        (
                            r.table.to_string(),
                            r.columns().next().unwrap().1.to_string(),
                        )
                    })
                    .collect();
                assert_eq!(
                    tables,
                    [
                        ("hosts".into(), "web1".into()),
                        ("row".into(), "check_a".into())
                    ],
                    "{how:?}"
                );
            }
            other => panic!("{how:?}: {other:?}"),
        }
        let fine = template.replace(
            "<sql:query>SELECT nope FROM nowhere FOR XML RAW</sql:query>",
            "",
        );
        let r = c
            .template(&fine, &[("Method".into(), "local".into())], how)
            .expect("template");
        assert_eq!(
            r.records[0].get("name"),
            Some("box"),
            "{how:?}: the given parameter wins"
        );
    }
    assert!(c.template("not xml", &[], TemplateBody::Form).is_err());
    let mut raw = site.client();
    let r = raw.get_with("/sqlxml?template=%3CR%20xmlns%3Asql%3D%22urn%3Aschemas-microsoft-com%3Axml-sql%22%3E%3Csql%3Axpath-query%3E%2F%3C%2Fsql%3Axpath-query%3E%3C%2FR%3E", "authorization", &format!("Basic {}", base64_of(&format!("admin:{ADMIN_PW}"))));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("xpath-query is not supported"),
        "{}",
        r.body
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn hostler_sql_works_over_sqlxml() {
    // The URL holds a password: through $HOSTLER_DB, as --db refuses one.
    let (w, _store, site) = endpoint();
    let db = site
        .base
        .replace("http://", &format!("sqlxml+http://admin:{ADMIN_PW}@"))
        + "/sqlxml";
    let o = w
        .cmd(&[
            "sql",
            "SELECT name, username FROM hosts ORDER BY name FOR XML RAW",
        ])
        .env("HOSTLER_DB", &db)
        .output()
        .expect("hostler");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("box") && out.contains("NULL") && out.contains("web1"),
        "{out}"
    );
    let o = w
        .cmd(&[
            "sql",
            "--json",
            "SELECT h.name, s.name FROM hosts h, scripts s WHERE h.name = ? FOR XML AUTO",
            "--param",
            "box",
        ])
        .env("HOSTLER_DB", &db)
        .output()
        .expect("hostler");
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    assert_eq!(v[0]["table"], "hosts");
    assert_eq!(v[0]["children"][0]["table"], "scripts");
    std::fs::write(w.path("t.xml"), r#"<ROOT xmlns:sql="urn:schemas-microsoft-com:xml-sql"><sql:header><sql:param name="N"/></sql:header><sql:query>SELECT address FROM hosts WHERE name = @N FOR XML RAW</sql:query></ROOT>"#).unwrap();
    let file = w.path("t.xml").display().to_string();
    let o = w
        .cmd(&["sql", "--template", &file, "--param", "N=web1", "--json"])
        .env("HOSTLER_DB", &db)
        .output()
        .expect("hostler");
    assert!(
        stdout(&o).contains("192.0.2.1"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
    let o = w
        .cmd(&["sql", "SELECT nope FROM hosts FOR XML RAW"])
        .env("HOSTLER_DB", &db)
        .output()
        .expect("hostler");
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("no such column"), "{}", stderr(&o));
    assert!(!stderr(&o).contains(ADMIN_PW), "the password never shows");
    let o = w
        .cmd(&["serve"])
        .env("HOSTLER_DB", &db)
        .output()
        .expect("hostler");
    assert_ne!(code(&o), 0);
    assert!(
        // hostler's endpoint is SQLite: the store needs a SQL Server behind the interface.
        stderr(&o).contains("the store needs SQL Server behind the interface")
            && !stderr(&o).contains(ADMIN_PW),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["sql", "--template", &file]);
    assert!(stderr(&o).contains("over SQLXML"), "{}", stderr(&o));
}

#[test]
fn endpoint_answers_ucs2_when_asked_and_the_client_reads_it() {
    let (_w, store, site) = endpoint();
    let token = hostler::web::auth::new_token(&store, "view", "t").expect("token");
    let get = |query: &str| {
        let mut r = ureq::get(&format!("{}/sqlxml?{query}", site.base))
            .header("authorization", &format!("Bearer {token}"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .expect("GET");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = r.body_mut().read_to_vec().expect("body");
        (r.status().as_u16(), ct, body)
    };
    let (status, ct, body) = get(
        "sql=SELECT%20name%20FROM%20hosts%20ORDER%20BY%20name%20FOR%20XML%20RAW&root=R&outputencoding=UCS-2",
    );
    assert_eq!((status, ct.as_str()), (200, "text/xml; charset=utf-16"));
    assert_eq!(&body[..2], &[0xFF, 0xFE], "the byte-order mark");
    let units: Vec<u16> = body[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16(&units).expect("UTF-16LE");
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-16\" ?><R><row name=\"box\"/>"),
        "{text}"
    );
    // The client's reader takes the same bytes back to rows.
    let input = hostler::sqlxml::decode_stream(std::io::Cursor::new(body)).expect("decode");
    let r = hostler::sqlxml::parse::parse(input, Some("R")).expect("parse");
    let names: Vec<_> = r.records.iter().filter_map(|r| r.get("name")).collect();
    assert_eq!(names, ["box", "web1"]);
    // An encoding hostler cannot write is a 400 naming it.
    let (status, _, body) = get("sql=SELECT%201%20FOR%20XML%20RAW&outputencoding=EBCDIC");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("\"ebcdic\""));
}
