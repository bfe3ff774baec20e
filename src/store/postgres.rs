//! PostgreSQL: the database many hostler nodes share (`--db postgres://USER:PASSWORD@HOST
//! [:PORT]/DB[?sslmode=...]`), through the `postgres` crate (rust-postgres, blocking, on a
//! small runtime of its own) with TLS through native-tls on the OpenSSL already linked:
//! certificates are checked whenever TLS is used (`sslmode=require` insists on it).
//!
//! Statements come rendered by [`crate::sql`] for the PostgreSQL dialect; parameters are
//! bound by the types the server gives the prepared statement (an `INTEGER` column takes an
//! i32), and values read back by their column types. Writes run at the default isolation
//! (READ COMMITTED): the claim's `FOR UPDATE SKIP LOCKED` and conditional updates carry the
//! queue's rules, as the dialect's sections write them. A queued job is announced with
//! `NOTIFY hostler_queue`; a node's listener ([`listen`]) wakes its daemon at once.

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, GenericClient, NoTls};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::StoreError;
use super::driver::{Conn, Driver, RawResult, Row, Work};
use crate::sql::{Dialect, Rendered, Value};

/// The channel queued jobs are announced on.
const CHANNEL: &str = "hostler_queue";

/// Listens on its own connection for other nodes' enqueues and calls `hooks` for each (the
/// daemon's wake-up), until the store is gone. A lost connection is logged, retried after a
/// growing pause (up to 30 s), and in the meantime polling finds the jobs.
pub fn listen(url: String, hooks: std::sync::Weak<std::sync::Mutex<Vec<super::EnqueueHook>>>) {
    let shown = crate::redact::database_url(&url);
    let spawned = std::thread::Builder::new()
        .name("pg-listen".into())
        .spawn(move || {
            let mut pause = Duration::from_secs(1);
            loop {
                if hooks.strong_count() == 0 {
                    return;
                }
                match connect(&url, &shown).and_then(|mut client| {
                    client
                        .batch_execute(&format!("LISTEN {CHANNEL}"))
                        .map(|()| client)
                        .map_err(|e| err(&shown, &e))
                }) {
                    Ok(mut client) => {
                        tracing::debug!("listening for queued jobs on {shown}");
                        pause = Duration::from_secs(1);
                        loop {
                            let Some(hooks) = hooks.upgrade() else { return };
                            let mut woke = false;
                            let mut notes = client.notifications();
                            let mut it = notes.timeout_iter(Duration::from_secs(1));
                            let next = it.next();
                            drop(it);
                            drop(notes);
                            match next {
                                Ok(Some(_)) => woke = true,
                                Ok(None) => {}
                                Err(e) => {
                                    tracing::warn!(
                                        "{shown}: the listener lost its connection: {e}"
                                    );
                                    break;
                                }
                            }
                            if woke {
                                for h in hooks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                                    h();
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("cannot listen for queued jobs: {e}"),
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the listener for queued jobs: {e}");
    }
}

pub struct Postgres {
    /// The URL as given, to connect again after a lost connection.
    url: String,
    /// None while not connected (lost, and the next try not yet due).
    client: Option<Client>,
    /// The URL with its password masked, for messages.
    shown: String,
    /// After a failed connection: when the next try is due, and the pause before the one
    /// after it (250 ms, doubling up to 10 s).
    retry: Option<(Instant, Duration)>,
    /// The statements prepared on this connection, by their SQL: each is parsed and planned
    /// by the server once, not on every execution (a round trip and the server's parse saved
    /// per statement). Emptied with a new connection, on any failed execution (a table
    /// changed under a plan), and when it holds [`STATEMENTS_KEPT`].
    statements: Statements,
}

/// Prepared statements by their SQL.
type Statements = HashMap<String, postgres::Statement>;

/// At most this many prepared statements are kept per connection (a statement with a list
/// of ids is another statement for each length of the list).
const STATEMENTS_KEPT: usize = 256;

/// Whether a URL names a PostgreSQL database.
pub fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Whether an error says the server cannot be used now (down, restarting, shutting down, a
/// backend killed), as opposed to a refused statement or login.
fn lost(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.is_closed()
        || match e.code() {
            Some(c) => [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::IDLE_SESSION_TIMEOUT,
                SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(c),
            // No answer from a server at all: refused, reset, timed out (an I/O error, not
            // a certificate refused or a value the server's type cannot take).
            None => std::error::Error::source(e)
                .is_some_and(|cause| cause.downcast_ref::<std::io::Error>().is_some()),
        }
}

fn err(shown: &str, e: &postgres::Error) -> StoreError {
    // The server's own message when there is one (a refused login, an unknown database),
    // else the client's; never the URL's password (only `shown` is used).
    let msg = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    };
    if lost(e) {
        StoreError::Unreachable(format!("{shown}: {msg}"))
    } else {
        StoreError::Db(format!("{shown}: {msg}"))
    }
}

/// How many connections a store may open (`connections=N` in the URL, 1 to 32; default 4).
pub fn connections(url: &str) -> usize {
    take_param(url, "connections")
        .1
        .and_then(|n| n.parse::<usize>().ok())
        .map_or(4, |n| n.clamp(1, 32))
}

/// Splits `name=value` off a URL's query (an option hostler reads itself, which the client
/// crate's parser does not know).
fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut found = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => {
                found = Some(crate::urlencode::decode_part(v).unwrap_or_else(|_| v.to_string()));
                false
            }
            _ => true,
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, found)
}

/// One new connection. TLS checks the server's certificate against the system's roots, or
/// against `sslrootcert=PATH` from the URL; a dead network is noticed within 30 s (TCP
/// keepalives and a user timeout) and a connection attempt gives up after 10 s, unless the
/// URL says otherwise.
fn connect(url: &str, shown: &str) -> Result<Client, StoreError> {
    let (url, root) = take_param(url, "sslrootcert");
    let (url, _) = take_param(&url, "connections");
    let mut config: Config = url
        .parse()
        .map_err(|e: postgres::Error| StoreError::Url(format!("{shown}: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(15))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3);
    // No lock waited for without end (a node cut off inside a claim holds the claim lock
    // until its session ends), and no session left inside a transaction for long.
    if config.get_options().is_none() {
        config.options("-c lock_timeout=10s -c idle_in_transaction_session_timeout=60s");
    }
    if config.get_ssl_mode() == postgres::config::SslMode::Disable {
        return config.connect(NoTls).map_err(|e| err(shown, &e));
    }
    let mut tls = native_tls::TlsConnector::builder();
    if let Some(path) = root {
        let pem = std::fs::read(&path)
            .map_err(|e| StoreError::Db(format!("{shown}: sslrootcert {path}: {e}")))?;
        let certs = native_tls::Certificate::stack_from_pem(&pem)
            .map_err(|e| StoreError::Db(format!("{shown}: sslrootcert {path}: {e}")))?;
        if certs.is_empty() {
            return Err(StoreError::Db(format!(
                "{shown}: sslrootcert {path}: no certificate in it"
            )));
        }
        for cert in certs {
            tls.add_root_certificate(cert);
        }
    }
    let tls = tls
        .build()
        .map_err(|e| StoreError::Db(format!("{shown}: TLS: {e}")))?;
    config
        .connect(postgres_native_tls::MakeTlsConnector::new(tls))
        .map_err(|e| err(shown, &e))
}

impl Postgres {
    pub fn open(url: &str) -> Result<Postgres, StoreError> {
        let shown = crate::redact::database_url(url);
        let client = connect(url, &shown)?;
        Ok(Postgres {
            url: url.to_string(),
            client: Some(client),
            shown,
            retry: None,
            statements: HashMap::new(),
        })
    }

    /// The connection, made again if it was lost. While the server cannot be reached this
    /// fails at once until the next try is due, so a daemon's loop does not wait on it.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            tracing::warn!("{}: the connection was lost; connecting again", self.shown);
            self.client = None;
        }
        if self.client.is_none() {
            let now = Instant::now();
            if let Some((due, _)) = self.retry
                && now < due
            {
                return Err(StoreError::Unreachable(format!(
                    "{}: not connected; trying again in {} ms",
                    self.shown,
                    due.duration_since(now).as_millis()
                )));
            }
            match connect(&self.url, &self.shown) {
                Ok(c) => {
                    if self.retry.take().is_some() {
                        tracing::info!("{}: connected again", self.shown);
                    }
                    self.statements.clear();
                    self.client = Some(c);
                }
                Err(e) => {
                    let pause = self.retry.map_or(Duration::from_millis(250), |(_, p)| {
                        (p * 2).min(Duration::from_secs(10))
                    });
                    self.retry = Some((now + pause, pause));
                    tracing::warn!("{e}; trying again in {} ms", pause.as_millis());
                    return Err(e);
                }
            }
        }
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Unreachable(format!("{}: not connected", self.shown)))
    }

    /// Runs `f` on the connection. When it fails because the connection was lost while
    /// idle (a restarted server, a killed backend), before anything was sent that could
    /// have changed data, it runs once more on a new connection.
    fn with_client<T>(
        &mut self,
        mut f: impl FnMut(&mut Client, &mut Statements, &str) -> Result<T, Attempt>,
    ) -> Result<T, StoreError> {
        let shown = self.shown.clone();
        for _ in 0..2 {
            self.client()?;
            let Some(client) = self.client.as_mut() else {
                return Err(StoreError::Unreachable(format!("{shown}: not connected")));
            };
            match f(client, &mut self.statements, &shown) {
                Ok(v) => return Ok(v),
                Err(Attempt::Unsent(e)) if lost(&e) => {
                    tracing::warn!("{}; connecting again", err(&shown, &e));
                    self.client = None;
                }
                Err(Attempt::Lost(e)) => {
                    tracing::warn!("{e}; connecting again");
                    self.client = None;
                }
                Err(Attempt::Unsent(e)) => return Err(err(&shown, &e)),
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        Err(StoreError::Unreachable(format!(
            "{shown}: the connection was lost twice in a row"
        )))
    }

    /// Statements through the simple protocol: any number, values as text.
    fn simple(&mut self, sql: &str) -> Result<RawResult, StoreError> {
        // Only `raw` comes here, and it has emptied the kept statements already.
        let messages = self.with_client(|client, _, shown| {
            client
                .simple_query(sql)
                .map_err(|e| Attempt::Failed(err(shown, &e)))
        })?;
        let mut out = RawResult::default();
        for m in messages {
            match m {
                postgres::SimpleQueryMessage::RowDescription(cols) => {
                    out.columns = cols.iter().map(|c| c.name().to_string()).collect();
                }
                postgres::SimpleQueryMessage::Row(r) => {
                    if out.columns.is_empty() {
                        out.columns = r.columns().iter().map(|c| c.name().to_string()).collect();
                    }
                    out.rows.push(
                        (0..r.len())
                            .map(|i| r.get(i).map_or(Value::Null, |v| Value::Text(v.into())))
                            .collect(),
                    );
                }
                postgres::SimpleQueryMessage::CommandComplete(n) => out.changed = Some(n),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// How one try on a connection failed.
enum Attempt {
    /// Before any statement of the work reached the server: safe to try again.
    Unsent(postgres::Error),
    /// During or after the work.
    Failed(StoreError),
    /// A read whose connection was lost under it: safe to run again on a new one.
    Lost(StoreError),
}

/// A value bound as the type the server expects for its parameter.
fn bind(v: &Value, ty: &Type) -> Box<dyn ToSql + Sync> {
    match (v, ty) {
        (Value::Null, _) => match *ty {
            Type::INT2 => Box::new(None::<i16>),
            Type::INT4 => Box::new(None::<i32>),
            Type::INT8 => Box::new(None::<i64>),
            Type::BOOL => Box::new(None::<bool>),
            Type::FLOAT4 => Box::new(None::<f32>),
            Type::FLOAT8 => Box::new(None::<f64>),
            Type::BYTEA => Box::new(None::<Vec<u8>>),
            _ => Box::new(None::<String>),
        },
        (Value::Int(i), &Type::INT2) => Box::new(*i as i16),
        (Value::Int(i), &Type::INT4) => Box::new(*i as i32),
        (Value::Int(i), &Type::FLOAT8) => Box::new(*i as f64),
        (Value::Int(i), &Type::BOOL) => Box::new(*i != 0),
        (Value::Int(i), &Type::TEXT | &Type::VARCHAR) => Box::new(i.to_string()),
        (Value::Int(i), _) => Box::new(*i),
        (Value::Bool(b), &Type::INT2 | &Type::INT4 | &Type::INT8) => Box::new(i64::from(*b)),
        (Value::Bool(b), _) => Box::new(*b),
        (Value::Real(r), &Type::FLOAT4) => Box::new(*r as f32),
        (Value::Real(r), _) => Box::new(*r),
        (Value::Text(t), &Type::INT8) => Box::new(t.parse::<i64>().unwrap_or_default()),
        // PostgreSQL's text cannot hold NUL: a run whose output holds one (a process's
        // environment, a binary file) is stored with U+FFFD in its place, not lost.
        (Value::Text(t), _) if t.contains('\0') => Box::new(t.replace('\0', "\u{FFFD}")),
        (Value::Text(t), _) => Box::new(t.clone()),
        (Value::Blob(b), _) => Box::new(b.clone()),
    }
}

/// Whether [`value`] reads a column of this type as itself.
fn typed_here(ty: &Type) -> bool {
    [
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::BOOL,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::BYTEA,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

/// One column of a row as a [`Value`], by its type.
fn value(row: &postgres::Row, i: usize) -> Value {
    let ty = row.columns()[i].type_();
    let got = match *ty {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map(|v| v.map(|v| Value::Int(v.into()))),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map(|v| v.map(|v| Value::Int(v.into()))),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map(|v| v.map(Value::Bool)),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map(|v| v.map(|v| Value::Real(v.into()))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real)),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map(|v| v.map(Value::Blob)),
        _ => row
            .try_get::<_, Option<String>>(i)
            .map(|v| v.map(Value::Text)),
    };
    got.ok().flatten().unwrap_or(Value::Null)
}

/// A unit of work on a connection: in a transaction (a write), or statement by statement (a
/// read, which sends only queries and notes whether the connection was lost under it).
struct Tx<'a, C> {
    tx: &'a mut C,
    statements: &'a mut Statements,
    shown: &'a str,
    read: bool,
    lost: bool,
}

impl<'a, C: GenericClient> Tx<'a, C> {
    fn new(tx: &'a mut C, statements: &'a mut Statements, shown: &'a str, read: bool) -> Self {
        Tx {
            tx,
            statements,
            shown,
            read,
            lost: false,
        }
    }

    /// A read sends SELECTs only, as its READ ONLY transaction once made sure: a net for a
    /// mistake in hostler's own reads (no operator's SQL comes this way).
    fn may_send(&self, q: &str) -> Result<(), StoreError> {
        let query = q
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("SELECT"));
        if self.read && !query {
            return Err(StoreError::Db(format!(
                "a read sent a statement that is not a query: {}",
                q.chars().take(60).collect::<String>()
            )));
        }
        Ok(())
    }

    /// The statement prepared (once per connection), and its parameters bound as the
    /// server's types want them.
    fn prepare(
        &mut self,
        q: &Rendered,
    ) -> Result<(postgres::Statement, Vec<Box<dyn ToSql + Sync>>), StoreError> {
        let stmt = match self.statements.get(&q.sql) {
            Some(s) => s.clone(),
            None => {
                let s = self.tx.prepare(&q.sql).map_err(|e| self.failed(&e))?;
                if self.statements.len() >= STATEMENTS_KEPT {
                    self.statements.clear();
                }
                self.statements.insert(q.sql.clone(), s.clone());
                s
            }
        };
        let params = q
            .params
            .iter()
            .zip(stmt.params())
            .map(|(v, ty)| bind(v, ty))
            .collect();
        Ok((stmt, params))
    }

    /// A failed execution: the kept statements go too (one may have been planned against a
    /// table that has changed since).
    fn failed(&mut self, e: &postgres::Error) -> StoreError {
        self.statements.clear();
        self.lost |= lost(e);
        err(self.shown, e)
    }
}

fn rows_of(rows: Vec<postgres::Row>) -> Vec<Row> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let columns: std::sync::Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    rows.iter()
        .map(|r| Row {
            columns: columns.clone(),
            values: (0..r.len()).map(|i| value(r, i)).collect(),
        })
        .collect()
}

impl<C: GenericClient> Conn for Tx<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn rows(&mut self, q: &Rendered) -> Result<Vec<Row>, StoreError> {
        self.may_send(&q.sql)?;
        let (stmt, params) = self.prepare(q)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref()).collect();
        let rows = self.tx.query(&stmt, &refs);
        rows.map(rows_of).map_err(|e| self.failed(&e))
    }

    fn count(&mut self, q: &Rendered) -> Result<u64, StoreError> {
        self.may_send(&q.sql)?;
        let (stmt, params) = self.prepare(q)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref()).collect();
        let changed = self.tx.execute(&stmt, &refs);
        changed.map_err(|e| self.failed(&e))
    }

    fn last_insert_id(&mut self) -> Result<i64, StoreError> {
        Err(StoreError::Db(
            "PostgreSQL returns ids with RETURNING, not from the connection".into(),
        ))
    }

    fn ddl(&mut self, sql: &str) -> Result<(), StoreError> {
        self.may_send(sql)?;
        // A table changed: no kept statement was planned against what it is now.
        self.statements.clear();
        self.tx.batch_execute(sql).map_err(|e| err(self.shown, &e))
    }
}

impl Driver for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn read(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        // No BEGIN READ ONLY and COMMIT around it: at READ COMMITTED each statement takes its
        // own snapshot, in a transaction or not, and those two were 6 of the 27 statements a
        // check sent. A read changes nothing, so one whose connection was lost under it
        // runs again on a new one.
        self.with_client(|client, statements, shown| {
            let mut tx = Tx::new(client, statements, shown, true);
            match work(&mut tx) {
                Ok(()) => Ok(()),
                Err(e) if tx.lost => Err(Attempt::Lost(e)),
                Err(e) => Err(Attempt::Failed(e)),
            }
        })
    }

    fn write(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        self.with_client(|client, statements, shown| {
            let mut tx = client.transaction().map_err(Attempt::Unsent)?;
            // On error the transaction is dropped, which rolls it back.
            work(&mut Tx::new(&mut tx, statements, shown, false)).map_err(Attempt::Failed)?;
            tx.commit().map_err(|e| Attempt::Failed(err(shown, &e)))
        })
    }

    fn announce_enqueue(&mut self) -> Result<(), StoreError> {
        self.with_client(|client, _, _| {
            client
                .batch_execute(&format!("NOTIFY {CHANNEL}"))
                .map_err(Attempt::Unsent)
        })
    }

    fn raw(&mut self, sql: &str, _show_secrets: bool) -> Result<RawResult, StoreError> {
        // One statement goes through the extended protocol, so values come back in their
        // types (`hostler sql --json` prints numbers as numbers); several at once, or what
        // cannot be prepared, through the simple protocol, as text. The store masks the
        // secret columns by name. Not run again after a lost connection: it may have
        // changed data before it was lost.
        let typed = self.with_client(|client, statements, shown| {
            // Whatever it is may change a table under a kept statement.
            statements.clear();
            let failed = |e: postgres::Error| Attempt::Failed(err(shown, &e));
            let stmt = match client.prepare(sql) {
                Ok(stmt) => stmt,
                // Preparing changes nothing: on a lost connection, once more on a new one.
                Err(e) if lost(&e) => return Err(Attempt::Unsent(e)),
                Err(_) => return Ok(None),
            };
            // A column of a type read here only as text (numeric, timestamps, json...):
            // the whole answer as text, rather than a NULL where a value is.
            if !stmt.columns().iter().all(|c| typed_here(c.type_())) {
                return Ok(None);
            }
            if stmt.columns().is_empty() {
                return client.execute(&stmt, &[]).map_err(failed).map(|n| {
                    Some(RawResult {
                        changed: Some(n),
                        ..RawResult::default()
                    })
                });
            }
            let rows = client.query(&stmt, &[]).map_err(failed)?;
            let columns = stmt.columns();
            Ok(Some(RawResult {
                columns: columns.iter().map(|c| c.name().to_string()).collect(),
                decl_types: columns
                    .iter()
                    .map(|c| Some(c.type_().name().to_string()))
                    .collect(),
                rows: rows
                    .iter()
                    .map(|r| (0..r.len()).map(|i| value(r, i)).collect())
                    .collect(),
                ..RawResult::default()
            }))
        });
        let mut out = match typed {
            Ok(Some(out)) => out,
            Err(e) => return Err(e),
            Ok(None) => self.simple(sql)?,
        };
        out.tables = vec![None; out.columns.len()];
        out.origins = vec![None; out.columns.len()];
        out.decl_types.resize(out.columns.len(), None);
        Ok(out)
    }
}
