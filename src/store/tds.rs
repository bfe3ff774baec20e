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

use crate::timed::timed;
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
    /// The login name and where it goes, as parsed (for messages and tests).
    pub user: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub timeout: Duration,
    pub encrypt: EncryptionLevel,
}

impl std::fmt::Debug for TdsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn bad(url: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("{}: {what}", crate::redact::database_url(url)))
}

impl TdsUrl {
    /// Parses `mssql://USER:PASSWORD@HOST[:PORT]/DATABASE[?OPTIONS]`.
    pub fn parse(url: &str) -> Result<TdsUrl, StoreError> {
        let shown = crate::redact::database_url(url);
        let rest = url
            .strip_prefix("mssql://")
            .ok_or_else(|| bad(url, "a TDS URL starts with mssql://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, rest) = rest
            .rsplit_once('@')
            .ok_or_else(|| bad(url, "give the login as mssql://USER:PASSWORD@HOST/DATABASE"))?;
        let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
        // `+` stays a plus (base64-like passwords have them).
        let dec = crate::urlencode::decode_part;
        let user = dec(user).map_err(|e| bad(url, format_args!("the user name: {e}")))?;
        // The error would quote part of the password.
        let pass = dec(pass).map_err(|_| bad(url, "the password is not valid percent-encoding"))?;
        if user.is_empty() {
            return Err(bad(url, "the user name is empty"));
        }
        let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
        let db = dec(db).map_err(|e| bad(url, format_args!("the database name: {e}")))?;
        let port_of = |p: &str| {
            p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
                bad(
                    url,
                    format_args!("port {p:?} is not a number from 1 to 65535"),
                )
            })
        };
        // An IPv6 address goes in brackets: [::1]:1433.
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad(url, "an IPv6 address needs its closing ]"))?;
            match after {
                "" => (h, 1433),
                _ => match after.strip_prefix(':') {
                    Some(p) => (h, port_of(p)?),
                    None => return Err(bad(url, format_args!("{after:?} after the address"))),
                },
            }
        } else if hostport.matches(':').count() > 1 {
            return Err(bad(url, "put an IPv6 address in brackets: [::1]:1433"));
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, port_of(p)?),
                None => (hostport, 1433),
            }
        };
        if host.is_empty() {
            return Err(bad(url, "the host is empty"));
        }
        let mut config = Config::new();
        config.host(host);
        config.port(port);
        if !db.is_empty() {
            config.database(&db);
        }
        config.application_name("hostler");
        config.authentication(AuthMethod::sql_server(&user, pass));
        // tiberius panics if both are given; say so instead.
        let (mut trust, mut ca) = (false, None);
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
                    "true" | "yes" | "1" => trust = true,
                    "false" | "no" | "0" => trust = false,
                    other => {
                        return Err(bad(
                            url,
                            format_args!(
                                "trust_server_certificate={other:?}: expected true or false"
                            ),
                        ));
                    }
                },
                "ca" => ca = Some(v),
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
        match (trust, ca) {
            (true, Some(_)) => {
                return Err(bad(
                    url,
                    "give ca=FILE or trust_server_certificate=true, not both",
                ));
            }
            (true, None) => config.trust_cert(),
            (false, Some(file)) => config.trust_cert_ca(file),
            (false, None) => {}
        }
        config.encryption(encrypt);
        Ok(TdsUrl {
            config,
            shown,
            user,
            host: host.to_string(),
            port,
            database: db,
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
    if broken.get() {
        return Err(StoreError::Db(format!(
            "not sending {what}: the connection to SQL Server failed earlier in this unit"
        )));
    }
    let r = guarded(|| smol::block_on(timed(limit, fut)));
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
            // Severity 20 and up (a KILL, a fatal error) closes the connection server-side.
            if !matches!(&e, tiberius::error::Error::Server(t) if t.class() < 20) {
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

/// What every connection runs after its login: any error ends the whole transaction; row
/// counts are reported whatever the server's `user options` say; a lock wait gives up
/// before the client's own timeout would (a timed-out request cannot be cancelled: tiberius
/// has no Attention, so the server would go on holding its locks).
fn session_settings(limit: Duration) -> String {
    let lock_ms = (limit.as_millis() as u64).saturating_sub(1000).max(500);
    format!("SET XACT_ABORT ON; SET NOCOUNT OFF; SET LOCK_TIMEOUT {lock_ms}")
}

/// The start of a write unit: the transaction, then hostler's write lock within it.
pub const BEGIN_WRITE: &str = "BEGIN TRANSACTION; DECLARE @lock INT; \
     EXEC @lock = sp_getapplock @Resource = N'hostler:write', @LockMode = N'Exclusive', \
     @LockOwner = N'Transaction', @LockTimeout = 5000; \
     IF @lock < 0 RAISERROR(N'another hostler held the write lock for 5 s; try again', 16, 1)";

/// Runs one batch of plain T-SQL (transaction control, settings, DDL) and reads its answer.
async fn batch(client: &mut TdsClient, sql: &str) -> TResult<()> {
    client.simple_query(sql).await?.into_results().await?;
    Ok(())
}

impl Tds {
    /// Connects to the server named by `url` and checks the login.
    pub fn open(url: &str) -> Result<Tds, StoreError> {
        let url = TdsUrl::parse(url)?;
        match url.encrypt {
            EncryptionLevel::NotSupported => tracing::warn!(
                db = %url.shown,
                "encrypt=off: the login and all data cross the network in clear"
            ),
            EncryptionLevel::Off => tracing::warn!(
                db = %url.shown,
                "encrypt=login: queries and host secrets cross the network in clear"
            ),
            _ => {}
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
    async fn login(
        mut config: Config,
        limit: Duration,
    ) -> Result<TdsClient, (String, tiberius::error::Error)> {
        let mut redirects = 0;
        loop {
            let addr = config.get_addr();
            let tcp = match timed(limit, TcpStream::connect(&addr)).await {
                Some(Ok(tcp)) => tcp,
                Some(Err(e)) => return Err((format!("cannot reach {addr}: {e}"), e.into())),
                None => {
                    let msg = format!(
                        "cannot reach {addr}: no answer within {} s",
                        limit.as_secs()
                    );
                    return Err((msg.clone(), tiberius::error::Error::Protocol(msg.into())));
                }
            };
            let _ = tcp.set_nodelay(true);
            match Client::connect(config.clone(), tcp).await {
                Ok(mut c) => {
                    batch(&mut c, &session_settings(limit))
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
            smol::block_on(timed(
                self.url.timeout,
                Self::login(config, self.url.timeout),
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
                // The TCP connection was made (that has its own message). tiberius starts TLS
                // even when the server's PRELOGIN said it has none, and such a server then
                // waits for a login that never comes.
                None if self.url.encrypt != EncryptionLevel::NotSupported => format!(
                    "connected, but no answer to the login within {} s (a server without TLS \
                     answers no encrypted login: encrypt=off connects in clear)",
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
    /// rolls back otherwise. A write first takes hostler's write lock (an application lock
    /// held to the end of the transaction), so writers queue as they do on SQLite's
    /// `BEGIN IMMEDIATE` and check-then-act work (de-duplicated enqueues, per-host claims,
    /// the schema's creation) cannot interleave between nodes.
    fn in_tx<T>(
        &mut self,
        write: bool,
        f: impl FnOnce(&mut TdsClient, Duration, &Cell<bool>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let begin = if write {
            BEGIN_WRITE
        } else {
            "BEGIN TRANSACTION"
        };
        // A connection that died while idle (a failover, a firewall's timeout) fails at BEGIN,
        // before anything was done: that one is retried once on a new connection.
        for attempt in 0.. {
            self.connect()?;
            match self.request(begin) {
                Ok(()) => break,
                // Still connected: a server error such as the write lock's timeout.
                Err(e) if self.client.is_some() => {
                    self.end_or_drop("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION");
                    return Err(e);
                }
                Err(e) if attempt > 0 => return Err(e),
                Err(_) => {}
            }
        }
        let (limit, broken) = (self.url.timeout, &self.broken);
        let Some(client) = self.client.as_mut() else {
            return Err(StoreError::Db("no connection to SQL Server".into()));
        };
        let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(client, limit, broken)
        })) {
            Ok(r) => r,
            Err(panic) => {
                // The transaction is still open: closing the connection ends it.
                self.client = None;
                std::panic::resume_unwind(panic);
            }
        };
        match r {
            Ok(v) if !self.broken.get() => match self.request("COMMIT TRANSACTION") {
                Ok(()) => Ok(v),
                Err(e) => {
                    let timed_out = self.client.is_none();
                    self.end_or_drop("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION");
                    Err(if timed_out {
                        StoreError::Db(format!("{e}; whether the COMMIT took effect is not known"))
                    } else {
                        e
                    })
                }
            },
            Ok(_) => {
                self.client = None;
                Err(StoreError::Db(
                    "the connection to SQL Server failed before COMMIT; the work was rolled back"
                        .into(),
                ))
            }
            Err(e) => {
                // XACT_ABORT may have rolled back already.
                self.end_or_drop("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION");
                Err(e)
            }
        }
    }

    /// Sends one batch on the connection; a failure that leaves the connection in doubt
    /// (a timeout, an I/O error, a fatal server error) closes it.
    fn request(&mut self, sql: &str) -> Result<(), StoreError> {
        self.broken.set(false);
        let (limit, broken) = (self.url.timeout, &self.broken);
        let Some(client) = self.client.as_mut() else {
            return Err(StoreError::Db("no connection to SQL Server".into()));
        };
        let what = sql.split(';').next().unwrap_or(sql);
        let r = within(limit, broken, what, batch(client, sql));
        if self.broken.get() {
            self.client = None;
        }
        r
    }

    /// Ends a transaction with `sql`; if that fails, closes the connection, which ends it on
    /// the server, so a connection is never reused with a transaction open.
    fn end_or_drop(&mut self, sql: &str) {
        if self.client.is_some() && self.request(sql).is_err() {
            self.client = None;
        }
    }

    fn unit(&mut self, write: bool, work: Work<'_>) -> Result<(), StoreError> {
        self.in_tx(write, |client, limit, broken| {
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

/// A tiberius cell as a hostler value. NULL of any type is NULL; decimals with no
/// fraction are integers, others text; dates and times are text.
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
        ColumnData::Numeric(v) => or_null(v, |n| decimal(n.value(), n.scale())),
        ColumnData::Xml(v) => or_null(v, |x| Value::Text(x.to_string())),
        ColumnData::Guid(v) => or_null(v, |x| Value::Text(x.to_string())),
        ColumnData::DateTime(v) => or_null(v, |x| Value::Text(format!("{x:?}"))),
        ColumnData::SmallDateTime(v) => or_null(v, |x| Value::Text(format!("{x:?}"))),
        ColumnData::Time(v) => or_null(v, |x| Value::Text(format!("{x:?}"))),
        ColumnData::Date(v) => or_null(v, |x| Value::Text(format!("{x:?}"))),
        ColumnData::DateTime2(v) => or_null(v, |x| Value::Text(format!("{x:?}"))),
        ColumnData::DateTimeOffset(v) => or_null(v, |x| Value::Text(format!("{x:?}"))),
    }
}

/// A DECIMAL/NUMERIC (`value` scaled down by 10^`scale`) as an integer when it has no
/// fraction, else as exact decimal text (`-0.05`, not a float's approximation).
pub fn decimal(value: i128, scale: u8) -> Value {
    let pow = 10i128.checked_pow(u32::from(scale));
    match pow {
        Some(p) if value % p == 0 => match i64::try_from(value / p) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Text((value / p).to_string()),
        },
        Some(p) => {
            let sign = if value < 0 { "-" } else { "" };
            let (int, frac) = (
                value.unsigned_abs() / p.unsigned_abs(),
                value.unsigned_abs() % p.unsigned_abs(),
            );
            Value::Text(format!(
                "{sign}{int}.{frac:0width$}",
                width = usize::from(scale)
            ))
        }
        None => Value::Text(format!("{value}e-{scale}")),
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
            // The statement's own count comes last, after any from triggers it fired.
            let r = query.execute(client).await?;
            Ok(r.rows_affected().last().copied().unwrap_or(0))
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
pub fn is_change(sql: &str) -> bool {
    // Past leading comments.
    let mut rest = sql.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let first = rest
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
        self.unit(false, work)
    }

    fn write(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        self.unit(true, work)
    }

    fn raw(&mut self, sql: &str, _show_secrets: bool) -> Result<RawResult, StoreError> {
        let mut out = RawResult::default();
        if is_change(sql) {
            let q = Rendered {
                sql: sql.to_string(),
                params: Vec::new(),
                returns: crate::sql::Returns::Count,
            };
            self.unit(true, &mut |c: &mut dyn Conn| {
                out.changed = Some(c.count(&q)?);
                Ok(())
            })?;
            return Ok(out);
        }
        let sets = self.in_tx(false, |client, limit, broken| {
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
