//! The store: the only module that speaks to the database.
//!
//! It exposes a domain API (hosts, scripts, jobs, schedules, runs, notifications, settings) and
//! builds every statement with [`crate::sql`] (in [`statements`]). Behind it a [`Driver`]
//! executes rendered statements: SQLite is the embedded default; [`postgres`] (many nodes on
//! one database), [`tds`] (SQL Server 2005+) and [`mssql2000`] (SQL Server 2000 over its XML
//! interface) plug in behind the same trait, and [`pool`] holds a store's connections.
//!
//! Invariants:
//! - every write is one transaction: it all commits, or the database is left as it was;
//! - the schema is applied or upgraded, in one transaction, whenever the store is opened;
//! - host secrets leave the store only through [`Store::host_secret`], typed as [`Secret`],
//!   which never prints its contents;
//! - the driver lock is held for one unit of work only, never across a script or a network wait.

pub mod checks;
pub mod depends;
mod downtimes;
mod driver;
pub mod group;
pub mod guard;
pub mod heartbeats;
pub mod history;
mod hosts;
mod jobs;
mod migrate;
mod model;
mod runs;
pub use jobs::{Cancelled, ClaimAsk, same_args};
pub use runs::{Lane, NewRun, RunStats, StatusCount};
pub use scripts::{Expect, NewScript};
pub mod mssql2000;
pub mod passive;
pub mod policy;
pub mod pool;
pub mod postgres;
pub mod quorum;
mod schedules;
pub use schedules::{Target, split_sites};
pub mod recurring;
mod scripts;
pub mod series;
pub mod site;
pub mod size;
pub mod sqlite;
pub mod tds;
mod users;
pub mod vault;
pub use users::{TokenInfo, User};
pub mod statements;

use std::path::Path;
use std::sync::Mutex;

pub use driver::{Conn, ConnExt, Driver, RawResult, Row};
pub use hosts::valid_name;
pub use migrate::{SCHEMA_SQL, schema};
pub use model::*;
pub use sqlite::Sqlite;

use crate::sql::{Dialect, RenderError};

/// What went wrong in the store. Messages name the file or the object involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {msg}")]
    Open { path: String, msg: String },
    #[error("database {path} is corrupt or not a hostler database: {msg}")]
    Corrupt { path: String, msg: String },
    #[error("database {0} is locked by another process; try again, or stop the other hostler")]
    Locked(String),
    #[error("database {0} is read-only; this command needs to write")]
    ReadOnly(String),
    #[error(
        "database schema version {found} is newer than this hostler understands ({supported}); upgrade hostler"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    Exists { kind: &'static str, name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("constraint violated: {0}")]
    Constraint(String),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(
        "unsupported database URL {0:?}: use a file path, sqlite:PATH, postgres://USER:PASSWORD@HOST/DATABASE or mssql://USER:PASSWORD@HOST/DATABASE"
    )]
    Url(String),
    /// The database server cannot be reached now (down, restarting, the connection lost);
    /// the work can be tried again later.
    #[error("database cannot be reached: {0}")]
    Unreachable(String),
    #[error("database error: {0}")]
    Db(String),
}

/// What a secret is shown as.
pub use crate::redact::MASK;

/// A host's login secret. It prints as `********` and is handed only to a session's login.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for a login dialogue and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(********)")
    }
}

/// Called after a new job is queued in this process, so a daemon can wake at once.
pub type EnqueueHook = Box<dyn Fn() + Send + Sync>;

/// The domain API over one database.
pub struct Store {
    pool: pool::Pool,
    /// The SQLite file, for read-only queries on their own connection.
    sqlite_path: Option<std::path::PathBuf>,
    dialect: Dialect,
    /// Called after a job is queued, in this process or (on PostgreSQL, by `LISTEN`) by any
    /// node: monitord's wake-up.
    on_enqueue: std::sync::Arc<Mutex<Vec<EnqueueHook>>>,
    /// A PostgreSQL URL: where the listener for other nodes' enqueues connects.
    listen_url: Option<String>,
    listening: std::sync::Once,
    /// The key that seals host secrets (see [`vault`]).
    pub vault: vault::Vault,
    /// What the user named, for messages.
    pub location: String,
    /// When a check is flapping (`[monitord] flap_changes`, `flap_window`).
    /// (Set again on a reload: behind a lock, as the store is shared.)
    policy: Mutex<checks::Policy>,
    /// Run keys known to be committed (keys are never deleted), so that recording a run of a
    /// known check costs no look-up.
    run_keys: Mutex<runs::KeyCache>,
    /// The next batch of runs' turn among its lane's stripes of the totals, by lane: a lane's
    /// batches go round its stripes, from a point of this process's own (so that two nodes'
    /// batches of one lane do not start on the same stripe and keep in step).
    totals_turns: [std::sync::atomic::AtomicI64; statements::TOTAL_STRIPES as usize],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({}, {})", self.dialect, self.location)
    }
}

impl Store {
    /// Opens the database named by `url` (a path, `sqlite:PATH`, `mssql://...` for SQL
    /// Server 2005+ over TDS, or `sqlxml+http(s)://...` for SQL Server 2000 over SQLXML),
    /// brings its schema up to date, and seals any host secret stored before sealing existed.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if postgres::is_url(url) {
            let (first, size) = (postgres::Postgres::open(url)?, postgres::connections(url));
            let again = url.to_string();
            let connect: pool::Connect = Box::new(move || {
                postgres::Postgres::open(&again).map(|d| Box::new(d) as Box<dyn Driver>)
            });
            let mut store = Store::with_pool(
                pool::Pool::growing(Box::new(first), size, Some(connect)),
                Dialect::Postgres,
                &crate::redact::database_url(url),
            )?;
            store.vault = vault::Vault::for_database(None, false);
            store.listen_url = Some(url.to_string());
            store.seal_plain_secrets();
            return Ok(store);
        }
        let remote: Option<Box<dyn Driver>> = if url.starts_with("mssql://") {
            Some(Box::new(tds::Tds::open(url)?))
        } else if url.starts_with("sqlxml+") {
            Some(Box::new(mssql2000::Mssql2000::open(url)?))
        } else {
            None
        };
        if let Some(driver) = remote {
            let mut store = Store::with_driver(driver, &crate::redact::database_url(url))?;
            store.vault = vault::Vault::for_database(None, false);
            store.seal_plain_secrets();
            return Ok(store);
        }
        if path.contains("://") {
            return Err(StoreError::Url(crate::redact::database_url(url)));
        }
        let driver = Sqlite::open(Path::new(path))?;
        let in_memory = path == ":memory:" || path.is_empty();
        let mut pool = pool::Pool::one(Box::new(driver));
        // (Not for a `file:` URI either: it may name a shared in-memory database.)
        if !in_memory && !path.starts_with("file:") {
            // Readers for reads that would wait on the writer (the web page while monitord
            // records runs): WAL lets them read at the same time.
            let file = Path::new(path).to_path_buf();
            pool = pool.with_readers(
                3,
                Box::new(move || {
                    Sqlite::open_reader(&file).map(|d| Box::new(d) as Box<dyn Driver>)
                }),
            );
        }
        let mut store = Store::with_pool(pool, Dialect::Sqlite, url)?;
        if !in_memory {
            store.sqlite_path = Some(Path::new(path).to_path_buf());
        }
        store.vault = vault::Vault::for_database(store.sqlite_path.as_deref(), in_memory);
        store.seal_plain_secrets();
        Ok(store)
    }

    /// When a check is flapping (`[monitord] flap_changes`, `flap_window`); the retries
    /// come from each schedule.
    pub fn set_policy(&self, policy: checks::Policy) {
        *self.policy.lock().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    pub fn policy(&self) -> checks::Policy {
        *self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wraps a driver and brings its schema up to date.
    pub fn with_driver(driver: Box<dyn Driver>, location: &str) -> Result<Store, StoreError> {
        let dialect = driver.dialect();
        Store::with_pool(pool::Pool::one(driver), dialect, location)
    }

    /// Wraps connections and brings the schema up to date.
    fn with_pool(pool: pool::Pool, dialect: Dialect, location: &str) -> Result<Store, StoreError> {
        let store = Store {
            dialect,
            pool,
            on_enqueue: std::sync::Arc::default(),
            listen_url: None,
            listening: std::sync::Once::new(),
            location: location.to_string(),
            sqlite_path: None,
            // Made for the file or URL by `open`; a driver wrapped directly (tests) seals
            // with a key that lives as long as the process.
            vault: vault::Vault::for_database(None, true),
            policy: Mutex::new(checks::Policy::default()),
            run_keys: Mutex::default(),
            totals_turns: {
                let from = now_ms().wrapping_add(i64::from(std::process::id()));
                std::array::from_fn(|_| std::sync::atomic::AtomicI64::new(from))
            },
        };
        migrate::migrate(&store)?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// How many writers should record runs at once. On PostgreSQL half the connections: a
    /// writer spends most of its time waiting for the server's answers, statement by
    /// statement, so one alone held a node near 1,100 checks a second with the CPU half idle.
    /// Elsewhere one: SQLite takes one writer at a time anyway.
    pub fn writers(&self) -> usize {
        match self.dialect {
            Dialect::Postgres => (self.pool.size() / 2).clamp(1, 8),
            _ => 1,
        }
    }

    /// Runs `f`, which only reads. It may run again on a new connection when the first was
    /// lost under it: PostgreSQL runs a read's statements without a transaction of their own
    /// (at READ COMMITTED each has its own snapshot anyway, and the BEGIN and COMMIT were a
    /// quarter of the statements a check sent), so a lost connection shows only once a
    /// statement is sent.
    pub fn read<T>(
        &self,
        mut f: impl FnMut(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut out = None;
        let mut work = |c: &mut dyn Conn| {
            out = Some(f(c)?);
            Ok(())
        };
        self.pool.with_read(|driver| driver.read(&mut work))?;
        out.ok_or_else(|| StoreError::Db("read did not run".into()))
    }

    /// Runs `f` in one write transaction.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut f = Some(f);
        let mut out = None;
        let mut work = |c: &mut dyn Conn| {
            let f = f
                .take()
                .ok_or_else(|| StoreError::Db("unit of work ran twice".into()))?;
            out = Some(f(c)?);
            Ok(())
        };
        self.pool.with(|driver| driver.write(&mut work))?;
        out.ok_or_else(|| StoreError::Db("unit of work did not run".into()))
    }

    /// Registers a hook called after every job this process queues.
    pub fn on_enqueue(&self, hook: EnqueueHook) {
        self.on_enqueue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
        // On PostgreSQL, other nodes' enqueues call the hooks too (from the first hook on).
        if let Some(url) = &self.listen_url {
            self.listening.call_once(|| {
                postgres::listen(url.clone(), std::sync::Arc::downgrade(&self.on_enqueue))
            });
        }
    }

    fn notify_enqueued(&self) {
        // Other nodes hear of it (PostgreSQL's NOTIFY, after the commit); a failure only
        // costs them their next poll.
        if let Err(e) = self.pool.with(|d| d.announce_enqueue()) {
            tracing::debug!("cannot tell other nodes of a queued job: {e}");
        }
        for h in self
            .on_enqueue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            h();
        }
    }

    /// The SQLite file behind this store (None for a server or an in-memory database).
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_path.as_deref()
    }

    /// One read-only SELECT from outside, on its own read-only connection, with secret columns
    /// read as NULL, within the request's limits (see [`sqlite::read_only_query`]).
    pub fn read_only_query(
        &self,
        sql: &str,
        params: &sqlite::QueryParams,
        limits: &sqlite::QueryLimits,
    ) -> Result<RawResult, StoreError> {
        match &self.sqlite_path {
            Some(p) => sqlite::read_only_query(p, sql, params, limits),
            None => Err(StoreError::Invalid(format!(
                "read-only queries need a SQLite file; {} is not one",
                self.location
            ))),
        }
    }

    /// Runs one statement typed by an operator (`hostler sql`). The secret columns read as
    /// NULL (SQLite's authorizer; masked by column name on SQL Server), unless
    /// `show_secrets`, when a host's secret comes back opened.
    pub fn raw(&self, sql: &str, show_secrets: bool) -> Result<RawResult, StoreError> {
        let mut r = self.pool.with(|d| d.raw(sql, show_secrets))?;
        if show_secrets {
            // The owner asked: a host's secret is shown opened, not as its sealed form.
            for i in 0..r.columns.len() {
                let is_secret = r.tables.get(i).and_then(|t| t.as_deref()) == Some("hosts")
                    && r.origins.get(i).and_then(|o| o.as_deref()) == Some("secret");
                if !is_secret {
                    continue;
                }
                for row in &mut r.rows {
                    if let crate::sql::Value::Text(t) = &row[i] {
                        row[i] = crate::sql::Value::Text(self.vault.open(t)?);
                    }
                }
            }
            return Ok(r);
        }
        let secret_cols: Vec<usize> = (0..r.columns.len())
            .filter(|&i| {
                let origin = r.origins.get(i).and_then(|o| o.as_deref());
                match r.tables.get(i).and_then(|t| t.as_deref()) {
                    Some(t) => sqlite::HIDDEN.iter().any(|(ht, hc)| {
                        t.eq_ignore_ascii_case(ht)
                            && origin.is_some_and(|o| o.eq_ignore_ascii_case(hc))
                    }),
                    // An expression has no table: one that names a hidden column is masked
                    // too. (An alias can still hide it: this is for the operator's eyes, who
                    // can read the database file anyway; /sqlxml uses SQLite's authorizer.)
                    None => {
                        let c = r.columns[i].to_ascii_lowercase();
                        sqlite::HIDDEN.iter().any(|(_, hc)| c.contains(hc))
                    }
                }
            })
            .collect();
        for row in &mut r.rows {
            for &i in &secret_cols {
                if !matches!(row[i], crate::sql::Value::Null) {
                    row[i] = crate::sql::Value::Text(MASK.to_string());
                }
            }
        }
        Ok(r)
    }
}

/// Milliseconds since the Unix epoch, hostler's time unit in the database.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
