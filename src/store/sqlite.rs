//! The embedded default driver: SQLite through rusqlite, with SQLite compiled in.
//!
//! The connection runs in WAL mode with a busy timeout and foreign keys on. Reads run in a
//! deferred transaction; writes in `BEGIN IMMEDIATE`, which takes the write lock up front, so
//! two daemons claiming jobs serialize instead of failing halfway through.
//! The PRAGMAs here are connection settings, not statements of the data model, which is why
//! they are the only SQL text outside [`crate::sql`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::StoreError;
use super::driver::{Conn, Driver, RawResult, Row, Work};
use crate::sql::{Dialect, Rendered, Value};

/// How long a writer waits for another writer before reporting the database as locked.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
    names: ColumnNames,
}

/// The column names of each statement's result, shared by its rows and kept between its runs,
/// so that a read allocates no names of its own. An entry is checked against the prepared
/// statement on each use (a schema change can change `SELECT *`), and the map is bounded.
#[derive(Default)]
struct ColumnNames(HashMap<String, Arc<[String]>>);

/// Statements whose column names are kept (hostler's own statements are fewer).
const NAMES_KEPT: usize = 512;

impl ColumnNames {
    fn of(&mut self, sql: &str, stmt: &rusqlite::Statement<'_>) -> Arc<[String]> {
        if let Some(names) = self.0.get(sql)
            && names.len() == stmt.column_count()
            && names
                .iter()
                .zip(stmt.column_names())
                .all(|(kept, now)| kept == now)
        {
            return names.clone();
        }
        let names: Arc<[String]> = stmt.column_names().map(|s| s.to_string()).collect();
        if self.0.len() >= NAMES_KEPT {
            self.0.clear();
        }
        self.0.insert(sql.to_string(), names.clone());
        names
    }
}

impl Sqlite {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        guard_file_mode(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let db = Sqlite::connect(path, flags)?;
        // The first real read: a file that is not a database fails here, clearly.
        let mode: String = db
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| db.err(e))?;
        let writable = !db.conn.is_readonly("main").unwrap_or(true);
        // A new file gives its free pages back to the file system when housekeeping asks
        // (`incremental_vacuum`); this must be set before the first table exists. An older
        // file reuses its free pages instead, so it does not grow either.
        let pages: i64 = db
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(|e| db.err(e))?;
        if pages == 0 && writable {
            let _ = db.conn.pragma_update(None, "auto_vacuum", "INCREMENTAL");
        }
        if !mode.eq_ignore_ascii_case("wal") && writable {
            // Failing to switch (a read-only directory, say) leaves the old mode: not fatal.
            let _ = db.conn.pragma_update(None, "journal_mode", "WAL");
        }
        db.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(|e| db.err(e))?;
        // In WAL mode NORMAL never corrupts the file; a power cut can lose the last commits,
        // which for hostler means a run re-runs (leases make that safe), not a broken queue.
        db.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| db.err(e))?;
        // A checkpoint cuts the write-ahead log back to 16 MiB: a burst of writes (a
        // housekeeping pass) does not leave it at its largest for good.
        if writable {
            let _ = db
                .conn
                .pragma_update(None, "journal_size_limit", 16 * 1024 * 1024);
        }
        Ok(db)
    }

    /// A read-only connection to a file the store has open (a reader beside its writer).
    pub fn open_reader(path: &Path) -> Result<Sqlite, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        Sqlite::connect(path, flags)
    }

    /// A connection with these flags that waits for a busy writer up to [`BUSY_TIMEOUT`].
    fn connect(path: &Path, flags: OpenFlags) -> Result<Sqlite, StoreError> {
        let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        let db = Sqlite {
            conn,
            path: path.to_path_buf(),
            names: ColumnNames::default(),
        };
        db.conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| db.err(e))?;
        // Every statement hostler runs stays prepared: rusqlite keeps 16 by default, fewer
        // than one run's record, the claims and the daemon's other steps take in turn.
        db.conn
            .set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(db)
    }

    /// Maps a SQLite error to a store error that names the file.
    fn err(&self, e: rusqlite::Error) -> StoreError {
        map_err(&self.path, e)
    }
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// The database holds every host's login: a new file is created readable by its owner only
/// (SQLite gives its `-wal` and `-shm` files the same mode), and an existing one that others
/// can read is warned about.
fn guard_file_mode(path: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.to_string_lossy();
    if name == ":memory:" || name.is_empty() || name.starts_with("file:") {
        return;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode();
            if meta.is_file() && mode & 0o077 != 0 {
                tracing::warn!(
                    "{} is readable by other users (mode {:o}); it holds host logins: chmod 600 it, and its -wal and -shm files",
                    path.display(),
                    mode & 0o777
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // An empty file of mode 0600, which SQLite then fills; if it cannot be made
            // (a read-only folder), SQLite's own open says why.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
        }
        Err(_) => {}
    }
}

fn map_err(path: &Path, e: rusqlite::Error) -> StoreError {
    let p = path.display().to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: p,
            msg: e.to_string(),
        },
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Locked(p),
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly(p),
        Some(ErrorCode::CannotOpen) => StoreError::Open {
            path: p,
            msg: e.to_string(),
        },
        Some(ErrorCode::ConstraintViolation) => StoreError::Constraint(e.to_string()),
        _ => StoreError::Db(e.to_string()),
    }
}

fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Real(r) => SqlValue::Real(*r),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Blob(b) => SqlValue::Blob(b.clone()),
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

struct Tx<'a> {
    tx: &'a Connection,
    path: &'a Path,
    names: &'a mut ColumnNames,
}

impl Conn for Tx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn rows(&mut self, q: &Rendered) -> Result<Vec<Row>, StoreError> {
        let path = self.path;
        let mut stmt = self
            .tx
            .prepare_cached(&q.sql)
            .map_err(|e| map_err(path, e))?;
        let columns = self.names.of(&q.sql, &stmt);
        let n = columns.len();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(q.params.iter().map(to_sql)))
            .map_err(|e| map_err(path, e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| map_err(path, e))? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(from_sql(r.get_ref(i).map_err(|e| map_err(path, e))?));
            }
            out.push(Row {
                columns: columns.clone(),
                values,
            });
        }
        Ok(out)
    }

    fn count(&mut self, q: &Rendered) -> Result<u64, StoreError> {
        let path = self.path;
        let mut stmt = self
            .tx
            .prepare_cached(&q.sql)
            .map_err(|e| map_err(path, e))?;
        let n = stmt
            .execute(rusqlite::params_from_iter(q.params.iter().map(to_sql)))
            .map_err(|e| map_err(path, e))?;
        Ok(n as u64)
    }

    fn last_insert_id(&mut self) -> Result<i64, StoreError> {
        Ok(self.tx.last_insert_rowid())
    }

    fn ddl(&mut self, sql: &str) -> Result<(), StoreError> {
        self.tx
            .execute_batch(sql)
            .map_err(|e| map_err(self.path, e))
    }
}

impl Driver for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn read(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| map_err(path, e))?;
        work(&mut Tx {
            tx: &tx,
            path,
            names: &mut self.names,
        })?;
        tx.finish().map_err(|e| map_err(path, e))
    }

    fn write(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| map_err(path, e))?;
        // On error the transaction is dropped, which rolls it back.
        work(&mut Tx {
            tx: &tx,
            path,
            names: &mut self.names,
        })?;
        tx.commit().map_err(|e| map_err(path, e))
    }

    fn raw(&mut self, sql: &str, show_secrets: bool) -> Result<RawResult, StoreError> {
        let path = self.path.clone();
        // The same rule as /sqlxml: a secret column reads as NULL in any expression
        // (`secret || ''` too), unless the database's owner asked to see it.
        use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
        if !show_secrets {
            self.conn
                .authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
                    AuthAction::Read {
                        table_name,
                        column_name,
                    } if hidden(table_name, column_name) => Authorization::Ignore,
                    _ => Authorization::Allow,
                }))
                .map_err(|e| map_err(&path, e))?;
        }
        let r = self.raw_statement(sql);
        if !show_secrets {
            self.conn
                .authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
                .map_err(|e| map_err(&path, e))?;
        }
        r
    }
}

impl Sqlite {
    fn raw_statement(&mut self, sql: &str) -> Result<RawResult, StoreError> {
        let path = self.path.clone();
        // A read takes no write lock, so it works on a read-only or busy database.
        let readonly = self
            .conn
            .prepare(sql)
            .map_err(|e| map_err(&path, e))?
            .readonly();
        let behavior = if readonly {
            TransactionBehavior::Deferred
        } else {
            TransactionBehavior::Immediate
        };
        let tx = self
            .conn
            .transaction_with_behavior(behavior)
            .map_err(|e| map_err(&path, e))?;
        let mut result = RawResult::default();
        {
            let mut stmt = tx.prepare(sql).map_err(|e| map_err(&path, e))?;
            for c in stmt.columns_with_metadata() {
                result.columns.push(c.name().to_string());
                result.tables.push(c.table_name().map(str::to_string));
                result.origins.push(c.origin_name().map(str::to_string));
            }
            let n = result.columns.len();
            let mut rows = stmt.query([]).map_err(|e| map_err(&path, e))?;
            while let Some(r) = rows.next().map_err(|e| map_err(&path, e))? {
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    values.push(from_sql(r.get_ref(i).map_err(|e| map_err(&path, e))?));
                }
                result.rows.push(values);
            }
            drop(rows);
            if !readonly {
                result.changed = Some(tx.changes());
            }
        }
        tx.commit().map_err(|e| map_err(&path, e))?;
        Ok(result)
    }
}

/// What one outside request may use: a deadline for all its queries, a byte budget shared by
/// their results, and caps per query.
#[derive(Debug)]
pub struct QueryLimits {
    pub deadline: std::time::Instant,
    pub max_rows: usize,
    /// The longest single value.
    pub max_value: usize,
    /// The budget the request started with, and what is left of it.
    pub max_bytes: usize,
    pub budget: std::cell::Cell<usize>,
    /// Whether the web users and their tokens ([`ACCOUNT_TABLES`]) may be read: admins only.
    pub accounts: bool,
    /// Whether scripts' arguments and host vars ([`ARGUMENT_COLUMNS`]) may be read: operators
    /// and admins. For a viewer they read as NULL: a query cannot mask the secret-looking
    /// names inside them as the page does, so it sees none of them.
    pub arguments: bool,
}

/// Tables only admins read through outside queries: who can log in, with which role, and the
/// labels of their tokens.
pub const ACCOUNT_TABLES: &[&str] = &["users", "api_tokens"];

impl QueryLimits {
    pub fn new(time: Duration, max_rows: usize, max_value: usize, max_bytes: usize) -> QueryLimits {
        QueryLimits {
            deadline: std::time::Instant::now() + time,
            max_rows,
            max_value,
            max_bytes,
            budget: std::cell::Cell::new(max_bytes),
            accounts: false,
            arguments: false,
        }
    }
}

/// The parameters of a read-only query.
#[derive(Debug, Clone)]
pub enum QueryParams {
    /// For `?` placeholders, in order.
    Positional(Vec<Value>),
    /// For `@Name` placeholders.
    Named(Vec<(String, Value)>),
}

/// The columns a read-only query may never see: they come back NULL.
pub const HIDDEN: &[(&str, &str)] = &[
    ("hosts", "secret"),
    ("users", "password_hash"),
    ("api_tokens", "token_hash"),
];

/// Columns that hold scripts' arguments and host vars, hidden from viewers' queries.
pub const ARGUMENT_COLUMNS: &[(&str, &str)] = &[
    ("schedules", "args"),
    ("schedules", "fix_args"),
    ("jobs", "args"),
    ("hosts", "vars"),
];

/// Runs one read-only SELECT from outside (hostler's SQLXML endpoint) on its own read-only
/// connection, so it neither waits for nor holds the store's lock. SQLite's authorizer allows
/// only reading and functions, and reads of secret columns yield NULL, however the query is
/// written; a query that runs longer than `limit` is interrupted, and at most `max_rows` rows
/// are returned.
pub fn read_only_query(
    path: &Path,
    sql: &str,
    params: &QueryParams,
    limits: &QueryLimits,
) -> Result<RawResult, StoreError> {
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| map_err(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| map_err(path, e))?;
    let accounts = limits.accounts;
    let arguments = limits.arguments;
    conn.authorizer(Some(move |ctx: AuthContext<'_>| match ctx.action {
        AuthAction::Read { table_name, .. }
            if !accounts
                && ACCOUNT_TABLES
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(table_name)) =>
        {
            Authorization::Deny
        }
        AuthAction::Read {
            table_name,
            column_name,
        } => {
            if hidden(table_name, column_name)
                || (!arguments
                    && ARGUMENT_COLUMNS.iter().any(|(t, c)| {
                        t.eq_ignore_ascii_case(table_name) && c.eq_ignore_ascii_case(column_name)
                    }))
            {
                Authorization::Ignore
            } else {
                Authorization::Allow
            }
        }
        AuthAction::Select | AuthAction::Function { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        _ => Authorization::Deny,
    }))
    .map_err(|e| map_err(path, e))?;
    // No single value beyond max_value (randomblob(1e9) fails instead of allocating).
    conn.set_limit(
        rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH,
        i32::try_from(limits.max_value).unwrap_or(i32::MAX),
    )
    .map_err(|e| map_err(path, e))?;
    // Tighter limits than a trusted caller gets: LIKE and GLOB patterns are matched inside
    // one step, which neither the progress handler nor an interrupt reaches.
    use rusqlite::limits::Limit;
    for (limit, value) in [
        (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1_000),
        (Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000),
        (Limit::SQLITE_LIMIT_EXPR_DEPTH, 100),
        (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 50),
        (Limit::SQLITE_LIMIT_FUNCTION_ARG, 32),
        (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 1_000),
        (Limit::SQLITE_LIMIT_ATTACHED, 0),
    ] {
        conn.set_limit(limit, value).map_err(|e| map_err(path, e))?;
    }
    let deadline = limits.deadline;
    conn.progress_handler(1_000, Some(move || std::time::Instant::now() > deadline))
        .map_err(|e| map_err(path, e))?;
    let _registered = Interruptible::register(conn.get_interrupt_handle());
    let mut stmt = conn.prepare(sql).map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::AuthorizationForStatementDenied) => StoreError::Invalid(
            "only read-only SELECTs are allowed here (no changes, PRAGMAs or ATTACH)".into(),
        ),
        _ => StoreError::Invalid(e.to_string()),
    })?;
    if !stmt.readonly() {
        return Err(StoreError::Invalid(
            "only a read-only SELECT is allowed".into(),
        ));
    }
    let mut result = RawResult::default();
    for c in stmt.columns_with_metadata() {
        result.columns.push(c.name().to_string());
        result.tables.push(c.table_name().map(str::to_string));
        result.origins.push(c.origin_name().map(str::to_string));
    }
    result.decl_types = stmt
        .columns()
        .map(|c| c.decl_type().map(str::to_string))
        .collect();
    let n = result.columns.len();
    // `?` placeholders take the values in order; `@Name` ones (templates) take theirs by
    // name, and NULL when not given.
    let args: Vec<SqlValue> = (1..=stmt.parameter_count())
        .map(|i| match params {
            QueryParams::Positional(v) => v.get(i - 1).map_or(SqlValue::Null, to_sql),
            QueryParams::Named(pairs) => stmt
                .parameter_name(i)
                .and_then(|n| {
                    let bare = n.trim_start_matches(['@', ':', '$']);
                    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(bare))
                })
                .map_or(SqlValue::Null, |(_, v)| to_sql(v)),
        })
        .collect();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args))
        .map_err(|e| query_err(path, e))?;
    let mut bytes = 0usize;
    while let Some(r) = rows.next().map_err(|e| query_err(path, e))? {
        if result.rows.len() >= limits.max_rows {
            return Err(StoreError::Invalid(format!(
                "the result has more than {} rows; narrow the query",
                limits.max_rows
            )));
        }
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            let v = from_sql(r.get_ref(i).map_err(|e| map_err(path, e))?);
            bytes += match &v {
                Value::Text(t) => t.len(),
                Value::Blob(b) => b.len() * 4 / 3,
                _ => 8,
            };
            values.push(v);
        }
        // The budget is shared by the queries of one request.
        if bytes > limits.budget.get() {
            return Err(StoreError::Invalid(format!(
                "the result is over {} MiB; narrow the query",
                limits.max_bytes >> 20
            )));
        }
        result.rows.push(values);
    }
    limits.budget.set(limits.budget.get() - bytes);
    Ok(result)
}

/// Whether a column is one of the [`HIDDEN`] secrets.
fn hidden(table: &str, column: &str) -> bool {
    HIDDEN
        .iter()
        .any(|(t, c)| t.eq_ignore_ascii_case(table) && c.eq_ignore_ascii_case(column))
}

/// The read-only queries running now, so that a deadline or a shutdown can interrupt them
/// (see [`interrupt_read_only`]).
static RUNNING: std::sync::Mutex<Vec<(u64, rusqlite::InterruptHandle)>> =
    std::sync::Mutex::new(Vec::new());
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One entry of [`RUNNING`], removed when the query ends.
struct Interruptible(u64);

impl Interruptible {
    fn register(handle: rusqlite::InterruptHandle) -> Interruptible {
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RUNNING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, handle));
        Interruptible(id)
    }
}

impl Drop for Interruptible {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.0);
    }
}

/// Interrupts every read-only query running in this process (past its deadline, or on
/// shutdown); each ends with "the query ran too long and was stopped".
pub fn interrupt_read_only() {
    for (_, h) in RUNNING.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        h.interrupt();
    }
}

/// A failing outside query: its own fault (bad SQL, interrupted), or the database's.
fn query_err(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::OperationInterrupted) => {
            StoreError::Invalid("the query ran too long and was stopped".into())
        }
        Some(ErrorCode::TooBig) => {
            StoreError::Invalid("a value is too big for this interface".into())
        }
        Some(ErrorCode::AuthorizationForStatementDenied) | None => {
            StoreError::Invalid(e.to_string())
        }
        _ => map_err(path, e),
    }
}
