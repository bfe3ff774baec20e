//! `/sqlxml`: hostler's database through SQL Server 2000's XML-over-HTTP interface, so tools
//! written for it can read hostler. URL queries (`?sql=...&root=...`, `?` placeholders filled
//! in order by the other pairs) and templates (`template=` in the query or a form POST, or a
//! raw XML body; `<sql:header>` parameter defaults, each `<sql:query>` replaced by its
//! result). Only read-only SELECTs `FOR XML RAW` or `AUTO` run (with ELEMENTS, XMLDATA, BINARY
//! BASE64), on their own read-only connection, with secret columns read as NULL; errors are
//! `<?MSSQLError?>` instructions in a 200 answer, as SQL Server's were.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use quick_xml::events::Event;

use super::http::{Form, Req, Resp};
use super::{Web, Who};
use crate::sql::Value;
use crate::sqlxml::MssqlError;
use crate::sqlxml::write::{self, Column, Mode};
use crate::store::Store;
use crate::store::sqlite::{QueryLimits, QueryParams};

/// What one request may use, all its queries together: 10 s, 200,000 rows per query, 1 MiB
/// per value, 64 MiB of results, 32 queries in a template. One request runs at a time; others
/// are answered 503 at once.
const REQUEST_TIME: Duration = Duration::from_secs(10);
const MAX_ROWS: usize = 200_000;
const MAX_VALUE: usize = 1 << 20;
const MAX_BYTES: usize = 64 << 20;
const MAX_QUERIES: usize = 32;
const KEYWORDS: &[&str] = &[
    "sql",
    "template",
    "root",
    "xsl",
    "contenttype",
    "outputencoding",
    "_charset_",
];

const OLEDB: &str = "Microsoft OLE DB Provider for SQL Server";
const SQLXML: &str = "Microsoft XML Extensions to SQL Server";

fn error(hresult: &str, source: &str, description: impl Into<String>) -> MssqlError {
    MssqlError {
        hresult: hresult.into(),
        source: source.into(),
        description: description.into(),
    }
}

/// A statement split from its FOR XML clause.
pub fn split_for_xml(sql: &str) -> Result<(String, Mode), MssqlError> {
    static FOR_XML: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?is)^(.*?)\s+FOR\s+XML\s+(RAW|AUTO|EXPLICIT)((?:\s*,\s*(?:XMLDATA|ELEMENTS|BINARY\s+BASE64))*)\s*;?\s*$",
        )
        .expect("a valid pattern")
    });
    let Some(c) = FOR_XML.captures(sql) else {
        return Err(error(
            "0x80004005",
            SQLXML,
            "hostler answers SELECT ... FOR XML RAW or FOR XML AUTO queries",
        ));
    };
    let options = c[3].to_ascii_uppercase();
    let mode = Mode {
        auto: c[2].eq_ignore_ascii_case("AUTO"),
        elements: options.contains("ELEMENTS"),
        xmldata: options.contains("XMLDATA"),
        binary_base64: options.contains("BINARY"),
    };
    if c[2].eq_ignore_ascii_case("EXPLICIT") {
        return Err(error(
            "0x80004005",
            SQLXML,
            "FOR XML EXPLICIT is not supported by hostler",
        ));
    }
    if mode.elements && !mode.auto {
        return Err(error(
            "0x80040E14",
            OLEDB,
            "the ELEMENTS option is only allowed with FOR XML AUTO",
        ));
    }
    Ok((c[1].to_string(), mode))
}

/// Runs one FOR XML query: its XML, or an error instruction.
fn run(store: &Store, sql: &str, params: &QueryParams, limits: &QueryLimits) -> String {
    let result = split_for_xml(sql).and_then(|(body, mode)| {
        let r = store
            .read_only_query(&body, params, limits)
            .map_err(|e| error("0x80040E14", OLEDB, e.to_string()))?;
        let columns: Vec<Column> = (0..r.columns.len())
            .map(|i| Column {
                name: r.columns[i].clone(),
                table: r.tables.get(i).cloned().flatten(),
                decl: r.decl_types.get(i).cloned().flatten(),
            })
            .collect();
        write::rows(&columns, &r.rows, mode).map_err(|e| error("0x80040E14", OLEDB, e))
    });
    result.unwrap_or_else(|e| write::error_pi(&e))
}

/// The keyword and parameter pairs of a request: the query string, plus a form body.
fn pairs(req: &Req) -> Result<Vec<(String, String)>, String> {
    let mut all = req.query.clone();
    if req.is_post() {
        let ct = req.header("content-type").unwrap_or("");
        if ct.starts_with("application/x-www-form-urlencoded") {
            all.extend(req.form().map_err(|e| e.to_string())?.0);
        } else if !req.body.is_empty() {
            let text = String::from_utf8(req.body.clone()).map_err(|_| "the body is not UTF-8")?;
            all.push(("template".into(), text));
        }
    }
    Ok(all)
}

pub fn handle(web: &Web, who: &Who, req: &Req) -> Resp {
    if req.method != "GET" && !req.is_post() {
        return Resp::text(405, "use GET or POST\n").with("allow", "GET, POST");
    }
    let all = match pairs(req) {
        Ok(p) => p,
        Err(e) => return Resp::text(400, format!("{e}\n")),
    };
    let form = Form(all.clone());
    let utf16 = match form.get("outputencoding").map(str::to_ascii_lowercase) {
        None => false,
        Some(e) if e == "utf-8" || e == "utf8" => false,
        Some(e) if ["ucs-2", "utf-16", "utf-16le", "unicode"].contains(&e.as_str()) => true,
        Some(e) => {
            return Resp::text(
                400,
                format!("outputencoding {e:?}: hostler answers UTF-8 or UCS-2 (UTF-16)\n"),
            );
        }
    };
    // One request's queries at a time, on their own thread: a busy endpoint answers 503 at
    // once instead of holding a web thread, and a query that outlives its deadline (one
    // SQLite step can) is interrupted and left behind while the client gets its answer.
    let Some(turn) = Turn::take(&web.sqlxml_busy) else {
        return Resp::text(
            503,
            "the /sqlxml endpoint is busy with another request; try again in a moment\n",
        )
        .with("retry-after", "1");
    };
    let store = web.store.clone();
    let accounts = who.may(crate::store::Role::Admin);
    let arguments = who.may(crate::store::Role::Operator);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("sqlxml".into())
        .spawn(move || {
            let out = answer(&store, &form, all, accounts, arguments);
            // Free before the answer goes out: the client's next request may come at once.
            drop(turn);
            let _ = tx.send(out);
        });
    if let Err(e) = spawned {
        return Resp::text(503, format!("cannot start the query: {e}\n"));
    }
    let body = match rx.recv_timeout(REQUEST_TIME + Duration::from_secs(1)) {
        Ok(Ok(b)) => b,
        Ok(Err(resp)) => return resp,
        Err(_) => {
            crate::store::sqlite::interrupt_read_only();
            return Resp::text(
                503,
                format!(
                    "the request ran past its {} s limit and was stopped\n",
                    REQUEST_TIME.as_secs()
                ),
            );
        }
    };
    let resp = if utf16 {
        Resp::new(200, "text/xml; charset=utf-16", ucs2(&body))
    } else {
        Resp::new(200, "text/xml; charset=utf-8", body)
    };
    // What a template echoes is the caller's text: never a document that runs on this origin.
    resp.with("cache-control", "no-store")
        .with("content-security-policy", "sandbox")
}

/// The XML of a request's queries, or the answer for a bad request.
fn answer(
    store: &Store,
    form: &Form,
    all: Vec<(String, String)>,
    accounts: bool,
    arguments: bool,
) -> Result<String, Resp> {
    let mut limits = QueryLimits::new(REQUEST_TIME, MAX_ROWS, MAX_VALUE, MAX_BYTES);
    limits.accounts = accounts;
    limits.arguments = arguments;
    let params: Vec<(String, String)> = all
        .into_iter()
        .filter(|(k, _)| !KEYWORDS.contains(&k.to_ascii_lowercase().as_str()))
        .collect();
    if let Some(t) = form.raw("template") {
        return template(store, t, &params, &limits)
            .map_err(|e| Resp::text(400, format!("bad template: {e}\n")));
    }
    let Some(sql) = form.get("sql") else {
        return Err(Resp::text(
            400,
            "give sql=SELECT ... FOR XML RAW, or template=...\n",
        ));
    };
    let positional =
        QueryParams::Positional(params.into_iter().map(|(_, v)| Value::Text(v)).collect());
    let out = run(store, sql, &positional, &limits);
    Ok(match form.get("root") {
        Some(root) => {
            let r = crate::sqlxml::names::encode(root);
            format!("<?xml version=\"1.0\" encoding=\"utf-8\" ?><{r}>{out}</{r}>")
        }
        None => out,
    })
}

/// The one request whose queries run now; free again when dropped.
struct Turn(Arc<AtomicBool>);

impl Turn {
    fn take(busy: &Arc<AtomicBool>) -> Option<Turn> {
        busy.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| Turn(busy.clone()))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// `outputencoding=UCS-2`: the body in UTF-16LE after the byte-order mark FF FE, as SQL Server
/// sends Unicode, with the declaration saying so.
fn ucs2(body: &str) -> Vec<u8> {
    const UTF8_DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>";
    let text = match body.strip_prefix(UTF8_DECL) {
        Some(rest) => format!("<?xml version=\"1.0\" encoding=\"UTF-16\" ?>{rest}"),
        None => body.to_string(),
    };
    let mut out = Vec::with_capacity(2 + text.len() * 2);
    out.extend_from_slice(&[0xFF, 0xFE]);
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// Runs a template: the root element is kept (with its attributes), `<sql:header>` goes,
/// each `<sql:query>` becomes its result or an error instruction, other content is copied.
fn template(
    store: &Store,
    text: &str,
    given: &[(String, String)],
    limits: &QueryLimits,
) -> Result<String, String> {
    const NS: &[u8] = b"urn:schemas-microsoft-com:xml-sql";
    let mut reader = quick_xml::NsReader::from_str(text);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\" ?>");
    let mut defaults: Vec<(String, String)> = Vec::new();
    // Inside sql:header, sql:param (its name), sql:query (its text).
    let (mut in_header, mut param, mut query): (bool, Option<String>, Option<String>) =
        (false, None, None);
    let mut depth = 0usize;
    let mut queries = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let ours = matches!(ns, quick_xml::name::ResolveResult::Bound(n) if n.as_ref() == NS);
        match event {
            Event::Start(e) => {
                let local = e.local_name().as_ref().to_vec();
                if ours && local == b"header" {
                    in_header = true;
                } else if ours && local == b"param" && in_header {
                    let name = e
                        .try_get_attribute("name")
                        .map_err(|e| e.to_string())?
                        .ok_or("a sql:param has no name")?;
                    param = Some(
                        name.unescape_value()
                            .map_err(|e| e.to_string())?
                            .into_owned(),
                    );
                    defaults.push((param.clone().unwrap_or_default(), String::new()));
                } else if ours && local == b"query" {
                    queries += 1;
                    if queries > MAX_QUERIES {
                        return Err(format!("more than {MAX_QUERIES} sql:query elements"));
                    }
                    query = Some(String::new());
                } else if ours {
                    return Err(format!(
                        "sql:{} is not supported (only sql:header, sql:param and sql:query)",
                        String::from_utf8_lossy(&local)
                    ));
                } else {
                    out.push_str(&format!("<{}>", String::from_utf8_lossy(&e)));
                }
                depth += 1;
            }
            Event::Empty(e) => {
                if ours && e.local_name().as_ref() == b"param" && in_header {
                    if let Some(n) = e.try_get_attribute("name").map_err(|e| e.to_string())? {
                        let n = n.unescape_value().map_err(|e| e.to_string())?.into_owned();
                        defaults.push((n, String::new()));
                    }
                } else if !ours {
                    out.push_str(&format!("<{}/>", String::from_utf8_lossy(&e)));
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| e.to_string())?;
                if let Some(q) = query.as_mut() {
                    q.push_str(&s);
                } else if let Some(p) = &param {
                    if let Some(d) = defaults.iter_mut().find(|(k, _)| k == p) {
                        d.1.push_str(&s);
                    }
                } else if !in_header {
                    write::escape(&s, &mut out);
                }
            }
            Event::CData(c) => {
                if let Some(q) = query.as_mut() {
                    q.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let local = e.local_name().as_ref().to_vec();
                if ours && local == b"header" {
                    in_header = false;
                } else if ours && local == b"param" {
                    param = None;
                } else if ours && local == b"query" {
                    let sql = query.take().unwrap_or_default();
                    let mut values: Vec<(String, Value)> = defaults
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::Text(v.clone())))
                        .collect();
                    for (k, v) in given {
                        match values.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
                            Some(slot) => slot.1 = Value::Text(v.clone()),
                            None => values.push((k.clone(), Value::Text(v.clone()))),
                        }
                    }
                    out.push_str(&run(store, sql.trim(), &QueryParams::Named(values), limits));
                } else if !ours {
                    out.push_str(&format!(
                        "</{}>",
                        String::from_utf8_lossy(e.name().as_ref())
                    ));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if depth != 0 {
        return Err("the template ends inside an element".into());
    }
    Ok(out)
}
