//! The TDS driver: SQL Server 2005 and later over tiberius, run on smol (no tokio), with TLS
//! through native-tls on the vendored OpenSSL that SSH and HTTP already link.
//!
//! `mssql://USER:PASSWORD@HOST[:PORT]/DATABASE[?encrypt=..&trust_server_certificate=..&ca=..
//! &timeout=..]`. Encryption is required by default and the server's certificate is checked
//! against the system's CA store (or `ca=FILE`); `encrypt=off` is for servers that cannot do
//! TLS at all, and says so in the log.
//!
//! Each unit of work is one transaction on one connection (`SET XACT_ABORT ON`, so any error
//! rolls it all back). A connection that failed or timed out is dropped and the next unit
//! connects afresh: a half-read answer is never reused.

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use smol::net::TcpStream;
use tiberius::{AuthMethod, Client, ColumnData, Config, EncryptionLevel, Query};

use super::StoreError;
use super::driver::{Conn, Driver, RawResult, Row, Work};
use crate::sql::{Dialect, Rendered, Value};

/// The column SQL Server names a FOR XML result (2005 and later split it over many rows).
pub const FOR_XML_COLUMN: &str = "XML_F52E2B61-18A1-11d1-B105-00805F49916B";

/// Where and how to connect, parsed from an `mssql://` URL.
#[derive(Clone)]
pub struct TdsUrl {
    config: Config,
    /// The URL with its password masked, for messages.
    pub shown: String,
    pub timeout: Duration,
    pub encrypt: EncryptionLevel,
}

impl std::fmt::Debug for TdsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn bad(url: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("{}: {what}", crate::sqlxml::client::redact(url)))
}

impl TdsUrl {
    /// Parses `mssql://USER:PASSWORD@HOST[:PORT]/DATABASE[?OPTIONS]`.
    pub fn parse(url: &str) -> Result<TdsUrl, StoreError> {
        let shown = crate::sqlxml::client::redact(url);
        let rest = url
            .strip_prefix("mssql://")
            .ok_or_else(|| bad(url, "a TDS URL starts with mssql://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, rest) = rest
            .rsplit_once('@')
            .ok_or_else(|| bad(url, "give the login as mssql://USER:PASSWORD@HOST/DATABASE"))?;
        let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
        let dec = |s: &str, what: &str| {
            crate::urlencode::decode(s.as_bytes()).map_err(|e| {
                bad(
                    url,
                    format_args!("the {what} is not valid percent-encoding: {e}"),
                )
            })
        };
        let (user, pass) = (dec(user, "user")?, dec(pass, "password")?);
        if user.is_empty() {
            return Err(bad(url, "the user name is empty"));
        }
        let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
        let db = dec(db, "database name")?;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad(url, format_args!("port {p:?} is not a number")))?,
            ),
            _ => (hostport, 1433),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad(url, "the host is empty"));
        }
        let mut config = Config::new();
        config.host(host);
        config.port(port);
        if !db.is_empty() {
            config.database(db);
        }
        config.application_name("hostler");
        config.authentication(AuthMethod::sql_server(user, pass));
        let mut encrypt = EncryptionLevel::Required;
        let mut timeout = Duration::from_secs(30);
        for (k, v) in crate::urlencode::parse_urlencoded(query.as_bytes())
            .map_err(|e| bad(url, format_args!("bad options: {e}")))?
        {
            match k.as_str() {
                "encrypt" => {
                    encrypt = match v.as_str() {
                        "required" | "true" | "yes" | "on" => EncryptionLevel::Required,
                        "login" => EncryptionLevel::Off,
                        "off" | "false" | "no" => EncryptionLevel::NotSupported,
                        other => {
                            return Err(bad(
                                url,
                                format_args!(
                                    "encrypt={other:?}: expected required (the default), login or off"
                                ),
                            ));
                        }
                    }
                }
                "trust_server_certificate" => match v.as_str() {
                    "true" | "yes" | "1" => config.trust_cert(),
                    "false" | "no" | "0" => {}
                    other => {
                        return Err(bad(
                            url,
                            format_args!(
                                "trust_server_certificate={other:?}: expected true or false"
                            ),
                        ));
                    }
                },
                "ca" => config.trust_cert_ca(v),
                "timeout" => {
                    let secs: u64 = v
                        .parse()
                        .ok()
                        .filter(|s| (1..=3600).contains(s))
                        .ok_or_else(|| {
                            bad(
                                url,
                                format_args!("timeout={v:?}: expected 1 to 3600 seconds"),
                            )
                        })?;
                    timeout = Duration::from_secs(secs);
                }
                other => {
                    return Err(bad(
                        url,
                        format_args!(
                            "unknown option {other:?}; known: encrypt, trust_server_certificate, ca, timeout"
                        ),
                    ));
                }
            }
        }
        config.encryption(encrypt);
        Ok(TdsUrl {
            config,
            shown,
            timeout,
            encrypt,
        })
    }
}

type TdsClient = Client<TcpStream>;

/// The SQL Server 2005+ driver.
pub struct Tds {
    url: TdsUrl,
    client: Option<TdsClient>,
    /// Set when a request timed out or the connection failed under it: the connection's
    /// state is unknown, so it is dropped instead of reused.
    broken: Cell<bool>,
}

type TResult<T> = Result<T, tiberius::error::Error>;

/// Runs `fut` on this thread, giving up after `limit`. A timeout, or an error that is not the
/// server's own answer, marks the connection `broken`.
fn within<T>(
    limit: Duration,
    broken: &Cell<bool>,
    what: &str,
    fut: impl Future<Output = TResult<T>>,
) -> Result<T, StoreError> {
    let r = guarded(|| {
        smol::block_on(smol::future::or(async { Some(fut.await) }, async {
            smol::Timer::after(limit).await;
            None
        }))
    });
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            broken.set(true);
            return Err(StoreError::Db(e));
        }
    };
    match r {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => {
            if !matches!(e, tiberius::error::Error::Server(_)) {
                broken.set(true);
            }
            Err(map_err(e))
        }
        None => {
            broken.set(true);
            Err(StoreError::Db(format!(
                "SQL Server did not answer {what} within {} s (timeout= in the URL)",
                limit.as_secs()
            )))
        }
    }
}

/// Runs `f`, turning a panic into an error: tiberius asserts on some answers a server should
/// not send (a TLS handshake in the wrong packet type, say), and a bad peer must not take
/// hostler down.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let what = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        format!(
            "SQL Server's answer was not understood: {}",
            what.lines().next().unwrap_or(what)
        )
    })
}

/// A tiberius error as a store error; server errors keep their number.
fn map_err(e: tiberius::error::Error) -> StoreError {
    match &e {
        tiberius::error::Error::Server(t) => {
            let msg = format!("SQL Server error {}: {}", t.code(), t.message());
            match t.code() {
                // Constraint and unique-key violations.
                547 | 2601 | 2627 => StoreError::Constraint(msg),
                1205 => StoreError::Locked(format!("{msg} (deadlock; the work was rolled back)")),
                _ => StoreError::Db(msg),
            }
        }
        _ => StoreError::Db(format!("SQL Server connection: {e}")),
    }
}

/// Runs one batch of plain T-SQL (transaction control, settings, DDL) and reads its answer.
async fn batch(client: &mut TdsClient, sql: &str) -> TResult<()> {
    client.simple_query(sql).await?.into_results().await?;
    Ok(())
}

impl Tds {
    /// Connects to the server named by `url` and checks the login.
    pub fn open(url: &str) -> Result<Tds, StoreError> {
        let url = TdsUrl::parse(url)?;
        if url.encrypt == EncryptionLevel::NotSupported {
            tracing::warn!(db = %url.shown, "encrypt=off: the login and all data cross the network in clear");
        }
        let mut tds = Tds {
            url,
            client: None,
            broken: Cell::new(false),
        };
        tds.connect()?;
        Ok(tds)
    }

    /// Logs in, following one redirect (Azure SQL and some failover setups answer the login
    /// with another address).
    async fn login(mut config: Config) -> Result<TdsClient, (String, tiberius::error::Error)> {
        let mut redirects = 0;
        loop {
            let addr = config.get_addr();
            let tcp = TcpStream::connect(&addr)
                .await
                .map_err(|e| (format!("cannot reach {addr}: {e}"), e.into()))?;
            let _ = tcp.set_nodelay(true);
            match Client::connect(config.clone(), tcp).await {
                Ok(mut c) => {
                    batch(&mut c, "SET XACT_ABORT ON")
                        .await
                        .map_err(|e| (e.to_string(), e))?;
                    return Ok(c);
                }
                Err(tiberius::error::Error::Routing { host, port }) if redirects == 0 => {
                    redirects += 1;
                    config.host(host);
                    config.port(port);
                }
                Err(e) => {
                    let msg = match &e {
                        tiberius::error::Error::Server(t) if t.code() == 18456 => {
                            format!("login refused: {}", t.message())
                        }
                        tiberius::error::Error::Tls(m) => format!(
                            "TLS failed: {m} (give ca=FILE for a private CA, or \
                             trust_server_certificate=true)"
                        ),
                        _ => e.to_string(),
                    };
                    return Err((msg, e));
                }
            }
        }
    }

    /// Makes sure there is a connection, connecting if there is none.
    fn connect(&mut self) -> Result<(), StoreError> {
        if self.client.is_some() {
            return Ok(());
        }
        let config = self.url.config.clone();
        let r = guarded(|| {
            smol::block_on(smol::future::or(
                async { Some(Self::login(config).await) },
                async {
                    smol::Timer::after(self.url.timeout).await;
                    None
                },
            ))
        });
        let msg = match r {
            Err(e) => e,
            Ok(r) => match r {
                Some(Ok(c)) => {
                    self.client = Some(c);
                    self.broken.set(false);
                    return Ok(());
                }
                Some(Err((msg, _))) => msg,
                // tiberius starts TLS even when the server's PRELOGIN said it has none, and such a
                // server then waits for a login that never comes.
                None if self.url.encrypt != EncryptionLevel::NotSupported => format!(
                    "no answer to the login within {} s (a server without TLS answers no \
                 encrypted login: encrypt=off connects in clear)",
                    self.url.timeout.as_secs()
                ),
                None => format!(
                    "no answer to the login within {} s",
                    self.url.timeout.as_secs()
                ),
            },
        };
        Err(StoreError::Open {
            path: self.url.shown.clone(),
            msg,
        })
    }

    /// Runs `f` on the connection inside one transaction: it commits if `f` succeeds and
    /// rolls back otherwise.
    fn in_tx<T>(
        &mut self,
        f: impl FnOnce(&mut TdsClient, Duration, &Cell<bool>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.connect()?;
        let (limit, broken) = (self.url.timeout, &self.broken);
        let Some(client) = self.client.as_mut() else {
            return Err(StoreError::Db("no connection to SQL Server".into()));
        };
        let r = within(
            limit,
            broken,
            "BEGIN TRANSACTION",
            batch(client, "BEGIN TRANSACTION"),
        )
        .and_then(|()| f(client, limit, broken));
        let end = match &r {
            _ if broken.get() => Ok(()),
            Ok(_) => within(limit, broken, "COMMIT", batch(client, "COMMIT TRANSACTION")),
            // XACT_ABORT may have rolled back already.
            Err(_) => within(
                limit,
                broken,
                "ROLLBACK",
                batch(client, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION"),
            ),
        };
        if broken.get() {
            // Closing the connection ends any transaction left open on the server.
            self.client = None;
        }
        let v = r?;
        end?;
        Ok(v)
    }

    fn unit(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        self.in_tx(|client, limit, broken| {
            work(&mut Tx {
                client,
                limit,
                broken,
            })
        })
    }
}

/// Binds hostler values to a tiberius query.
fn bind<'a>(q: &mut Query<'a>, params: &'a [Value]) {
    for v in params {
        match v {
            Value::Null => q.bind(Option::<&str>::None),
            Value::Bool(b) => q.bind(*b),
            Value::Int(i) => q.bind(*i),
            Value::Real(r) => q.bind(*r),
            Value::Text(s) => q.bind(s.as_str()),
            Value::Blob(b) => q.bind(b.as_slice()),
        }
    }
}

/// A tiberius cell as a hostler value. Dates and decimals become text.
fn value(d: &ColumnData<'_>) -> Value {
    fn or_null<T>(v: &Option<T>, f: impl FnOnce(&T) -> Value) -> Value {
        v.as_ref().map_or(Value::Null, f)
    }
    match d {
        ColumnData::U8(v) => or_null(v, |x| Value::Int(i64::from(*x))),
        ColumnData::I16(v) => or_null(v, |x| Value::Int(i64::from(*x))),
        ColumnData::I32(v) => or_null(v, |x| Value::Int(i64::from(*x))),
        ColumnData::I64(v) => or_null(v, |x| Value::Int(*x)),
        ColumnData::F32(v) => or_null(v, |x| Value::Real(f64::from(*x))),
        ColumnData::F64(v) => or_null(v, |x| Value::Real(*x)),
        ColumnData::Bit(v) => or_null(v, |x| Value::Bool(*x)),
        ColumnData::String(v) => or_null(v, |x| Value::Text(x.to_string())),
        ColumnData::Binary(v) => or_null(v, |x| Value::Blob(x.to_vec())),
        ColumnData::Numeric(v) => or_null(v, |x| Value::Text(x.to_string())),
        ColumnData::Xml(v) => or_null(v, |x| Value::Text(x.to_string())),
        ColumnData::Guid(v) => or_null(v, |x| Value::Text(x.to_string())),
        other => Value::Text(format!("{other:?}")),
    }
}

struct Tx<'a> {
    client: &'a mut TdsClient,
    limit: Duration,
    broken: &'a Cell<bool>,
}

/// One result set: its column names and rows.
type ResultSet = (Arc<[String]>, Vec<Vec<Value>>);

/// Runs `sql` with `params` (as sp_executesql) and returns its result sets.
async fn result_sets(
    client: &mut TdsClient,
    sql: &str,
    params: &[Value],
) -> TResult<Vec<ResultSet>> {
    let mut q = Query::new(Cow::Borrowed(sql));
    bind(&mut q, params);
    collect(q.query(client).await?).await
}

/// Reads every result set of a query's answer.
async fn collect(mut stream: tiberius::QueryStream<'_>) -> TResult<Vec<ResultSet>> {
    use smol::stream::StreamExt;
    let mut sets: Vec<ResultSet> = Vec::new();
    // Each result set's metadata comes before its rows.
    while let Some(item) = stream.next().await {
        match item? {
            tiberius::QueryItem::Metadata(m) => sets.push((
                m.columns().iter().map(|c| c.name().to_string()).collect(),
                Vec::new(),
            )),
            tiberius::QueryItem::Row(r) => {
                let values = r.cells().map(|(_, d)| value(d)).collect();
                match sets.last_mut() {
                    Some((_, rows)) => rows.push(values),
                    None => {
                        return Err(tiberius::error::Error::Protocol(
                            "a row came before its columns".into(),
                        ));
                    }
                }
            }
        }
    }
    Ok(sets)
}

impl Conn for Tx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Mssql2005
    }

    fn rows(&mut self, q: &Rendered) -> Result<Vec<Row>, StoreError> {
        let sets = within(
            self.limit,
            self.broken,
            "a query",
            result_sets(self.client, &q.sql, &q.params),
        )?;
        // A statement returns one result set; with several, the last holds the answer.
        let (columns, rows) = sets.into_iter().last().unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|values| Row {
                columns: columns.clone(),
                values,
            })
            .collect())
    }

    fn count(&mut self, q: &Rendered) -> Result<u64, StoreError> {
        let client = &mut *self.client;
        within(self.limit, self.broken, "a statement", async {
            let mut query = Query::new(Cow::Borrowed(q.sql.as_str()));
            bind(&mut query, &q.params);
            Ok(query.execute(client).await?.total())
        })
    }

    fn last_insert_id(&mut self) -> Result<i64, StoreError> {
        Err(StoreError::Db(
            "SQL Server 2005+ returns inserted ids with OUTPUT, not afterwards".into(),
        ))
    }

    fn ddl(&mut self, sql: &str) -> Result<(), StoreError> {
        within(self.limit, self.broken, "DDL", batch(self.client, sql))
    }
}

/// Whether an operator's statement changes rows rather than returning them.
fn is_change(sql: &str) -> bool {
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "TRUNCATE"
    )
}

impl Driver for Tds {
    fn dialect(&self) -> Dialect {
        Dialect::Mssql2005
    }

    fn read(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        self.unit(work)
    }

    fn write(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        self.unit(work)
    }

    fn raw(&mut self, sql: &str) -> Result<RawResult, StoreError> {
        let mut out = RawResult::default();
        if is_change(sql) {
            let q = Rendered {
                sql: sql.to_string(),
                params: Vec::new(),
                returns: crate::sql::Returns::Count,
            };
            self.unit(&mut |c: &mut dyn Conn| {
                out.changed = Some(c.count(&q)?);
                Ok(())
            })?;
            return Ok(out);
        }
        let sets = self.in_tx(|client, limit, broken| {
            // A batch, not sp_executesql: the operator's text runs as typed.
            within(limit, broken, "a query", async {
                collect(client.simple_query(sql).await?).await
            })
        })?;
        // An operator's batch may return several result sets; the last one is shown.
        if let Some((columns, rows)) = sets.into_iter().last() {
            out.columns = columns.to_vec();
            out.rows = rows;
        }
        let n = out.columns.len();
        (out.tables, out.origins, out.decl_types) = (vec![None; n], vec![None; n], vec![None; n]);
        Ok(out)
    }
}

/// The text of a FOR XML result, which SQL Server 2005+ sends as one column split over rows
/// of about 2 KB: `None` if `r` is not such a result.
pub fn for_xml_text(r: &RawResult) -> Option<String> {
    if r.columns.len() != 1 || !r.columns[0].eq_ignore_ascii_case(FOR_XML_COLUMN) {
        return None;
    }
    let mut text = String::new();
    for row in &r.rows {
        if let Some(Value::Text(t)) = row.first() {
            text.push_str(t);
        }
    }
    Some(text)
}
