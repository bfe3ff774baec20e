//! The SQLXML driver: the whole store in a legacy SQL Server 2000, through its XML-over-HTTP
//! interface (`sqlxml+http(s)://[USER:PASSWORD@]SERVER/VROOT`; the virtual root must allow
//! POSTed templates). Statements are rendered by the SQL Server 2000 dialect; this module
//! only puts values into them and wraps them in batches.
//!
//! SQLXML has no sessions: each request is one batch on whatever pooled connection IIS
//! picks, so no transaction can span requests. A write unit therefore runs in two passes:
//!
//! 1. **Rehearsal.** Each statement the unit runs goes in a batch that opens a transaction,
//!    replays the unit's earlier writes, runs the statement with `FOR XML RAW` (its rows, its
//!    `@@ROWCOUNT`, or an INSERT's new id) and rolls back. So the unit sees its own writes,
//!    and nothing is kept.
//! 2. **Commit.** The writes go as one batch in one transaction: each write checks that it
//!    changed as many rows as in the rehearsal, then `COMMIT`. An INSERT keeps the id its
//!    rehearsal got (`SET IDENTITY_INSERT`; a rolled-back identity is never handed out again),
//!    so what the unit saw is what is stored.
//!
//! Between the passes nothing may change what the unit read, so every write unit holds
//! hostler's write lease: the `settings` row `write_lease`, taken with one UPDATE, checked
//! under an update lock and released by the commit batch, and expiring after 30 s if its
//! holder died. (The job claim is such a unit: the rehearsal picks the job with the dialect's
//! `UPDLOCK, READPAST` SELECT, and the commit batch claims it.) Each rehearsal renews the
//! lease first, so a long unit keeps it and one that lost it stops. Read units run their
//! statements as they come, on committed data: unlike SQLite's, a read unit of several
//! statements is not one snapshot.
//!
//! The commit releases the lease by writing its own mark on the lease row (`~OWNER-N 0`, an
//! expired lease), in the same transaction as the writes: if the commit's answer is lost, the
//! row tells whether it happened (the mark), did not (the lease is still held), or cannot
//! say (another writer took the lease since): only then is the outcome reported unknown.
//!
//! Every batch first ends any transaction a dead batch left open on its pooled connection,
//! and (once the tables exist) turns `IDENTITY_INSERT` off everywhere. The first request
//! checks that the server is SQL Server, that hostler's login may `SET IDENTITY_INSERT` (it
//! must own the tables, or be db_owner), and that the virtual root does not wrap each query
//! in a transaction of its own. The schema is created without the lease (it lives in the
//! schema): two hostler processes creating it at once make one of them fail to start,
//! with nothing half-made.
//!
//! XML cannot carry control characters other than tab, line feed and carriage return: in
//! stored text they become U+FFFD.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::StoreError;
use super::driver::{Conn, Driver, RawResult, Row, Work};
use crate::redact::database_url as redact;
use crate::sql::{Dialect, Rendered, Value};
use crate::sqlxml::client::{Client, TemplateBody};
use crate::sqlxml::{Response, SqlxmlError};

const D: Dialect = Dialect::Mssql2000;
/// The lease row's value as text SQL Server 2000 can compare (it is NTEXT).
const LEASE_TEXT: &str = "CAST([value] AS NVARCHAR(200))";
/// How long a write lease lasts if its holder never releases it.
const LEASE_MS: i64 = 30_000;
/// How long a writer waits for another's lease before giving up.
const LEASE_WAIT: Duration = Duration::from_secs(10);
/// What every batch starts with: any error ends the transaction; no row-count messages; and a
/// transaction left open on the pooled connection by a batch that died is ended first.
pub const PRELUDE: &str = "SET XACT_ABORT ON; SET NOCOUNT ON; IF @@TRANCOUNT > 0 ROLLBACK TRAN; ";
/// The suffix the dialect gives an INSERT that returns its id.
pub const IDENTITY_SUFFIX: &str = "; SELECT CAST(SCOPE_IDENTITY() AS BIGINT) AS ";

/// The SQL Server 2000 driver over SQLXML.
pub struct Mssql2000 {
    client: Client,
    /// This process's commits, numbered: the commit batch leaves its number on the lease row,
    /// so a commit whose answer was lost can be looked up.
    commits: u64,
    /// This process's name on the write lease: letters, digits, '.' and '-' only.
    owner: String,
    shown: String,
}

/// A value as a T-SQL literal of the SQL Server 2000 dialect.
pub fn literal(v: &Value) -> Result<String, StoreError> {
    Ok(match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => D.boolean(*b).into(),
        Value::Int(i) => i.to_string(),
        Value::Real(r) if r.is_finite() => format!("{r:e}"),
        Value::Real(r) => return Err(StoreError::Invalid(format!("{r} cannot be stored"))),
        Value::Text(s) => D.string_literal(&xml_safe(s)),
        Value::Blob(b) => {
            let mut hex = String::with_capacity(2 + b.len() * 2);
            hex.push_str("0x");
            for byte in b {
                hex.push_str(&format!("{byte:02X}"));
            }
            hex
        }
    })
}

/// Text that XML 1.0 can carry: other control characters become U+FFFD.
fn xml_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    if s.chars().any(bad) {
        s.chars()
            .map(|c| if bad(c) { '\u{FFFD}' } else { c })
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

/// Puts the parameters into the statement's `?` placeholders (those outside string literals
/// and bracketed names), as literals.
pub fn inline(sql: &str, params: &[Value]) -> Result<String, StoreError> {
    let mut out = String::with_capacity(sql.len() + params.len() * 8);
    let mut values = params.iter();
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'') => quote = Some('\''),
            (None, '[') => quote = Some(']'),
            // A doubled closing character stays inside: 'it''s', [a]]b].
            (Some(q), c) if c == q && chars.peek() == Some(&q) => {
                out.push(c);
                out.push(q);
                chars.next();
                continue;
            }
            (Some(q), c) if c == q => quote = None,
            (None, '?') => {
                let v = values.next().ok_or_else(|| {
                    StoreError::Db(format!("fewer parameters than placeholders in {sql}"))
                })?;
                out.push_str(&literal(v)?);
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    if values.next().is_some() {
        return Err(StoreError::Db(format!(
            "more parameters than placeholders in {sql}"
        )));
    }
    Ok(out)
}

/// An INSERT as the dialect renders it (`INSERT INTO [t] ([a], ...) VALUES (...)`), made to
/// insert `id` into `id_col` as well: how the commit stores the id the rehearsal got.
pub fn with_id(insert: &str, id_col: &str, id: i64) -> Option<Written> {
    let rest = insert.strip_prefix("INSERT INTO [")?;
    // The table's name ends at the first ']' that is not doubled.
    let mut end = None;
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b']' {
            if bytes.get(i + 1) == Some(&b']') {
                i += 2;
                continue;
            }
            end = Some(i);
            break;
        }
        i += 1;
    }
    let table = format!("[{}]", &rest[..end?]);
    let rest = rest[end? + 1..].strip_prefix(" (")?;
    // The column list holds bracketed names only, so the first ") VALUES (" ends it.
    let (cols, values) = rest.split_once(") VALUES (")?;
    Some(Written {
        before: format!("SET IDENTITY_INSERT {table} ON; "),
        sql: format!("INSERT INTO {table} ({id_col}, {cols}) VALUES ({id}, {values}"),
        after: format!("SET IDENTITY_INSERT {table} OFF; "),
        rows: Some(1),
    })
}

/// The `FOR XML` clause a rehearsed SELECT gets: XMLDATA names every column, so a NULL (an
/// absent attribute) is told from a column the query does not have.
pub const FOR_XML: &str = " FOR XML RAW, XMLDATA, BINARY BASE64";

/// An answer's rows as store rows: the columns the XMLDATA schema declares (and any other
/// attribute seen), NULL where a row has no attribute, `bin.base64` columns decoded.
fn rows_of(resp: &Response) -> Result<Vec<Row>, StoreError> {
    let mut names: Vec<String> = resp
        .schema
        .types
        .keys()
        .filter(|(t, _)| t == "row")
        .map(|(_, c)| c.clone())
        .collect();
    names.sort();
    for r in &resp.records {
        for (c, _) in r.columns() {
            if !names.iter().any(|n| n == c) {
                names.push(c.to_string());
            }
        }
    }
    let columns: Arc<[String]> = names.into();
    resp.records
        .iter()
        .map(|r| {
            let values = columns
                .iter()
                .map(|c| match r.get(c) {
                    None => Ok(Value::Null),
                    Some(v) if resp.schema.type_of("row", c) == Some("bin.base64") => {
                        crate::sqlxml::types::base64(v)
                            .map(Value::Blob)
                            .map_err(|e| StoreError::Db(format!("column {c}: {e}")))
                    }
                    Some(v) => Ok(Value::Text(v.to_string())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Row {
                columns: columns.clone(),
                values,
            })
        })
        .collect()
}

/// The single value `column` of an answer's first row, as a number.
fn number(resp: &Response, column: &str) -> Result<i64, StoreError> {
    resp.records
        .first()
        .and_then(|r| r.get(column))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| StoreError::Db(format!("SQL Server's answer has no number {column}")))
}

/// The template that carries one batch: the text escaped for XML (a carriage return as a
/// character reference, which XML would otherwise fold into the line feed after it).
fn template(batch: &str) -> String {
    let mut t = String::with_capacity(batch.len() + 128);
    t.push_str("<ROOT xmlns:sql=\"urn:schemas-microsoft-com:xml-sql\"><sql:query>");
    for c in batch.chars() {
        match c {
            '&' => t.push_str("&amp;"),
            '<' => t.push_str("&lt;"),
            '>' => t.push_str("&gt;"),
            '\r' => t.push_str("&#13;"),
            c => t.push(c),
        }
    }
    t.push_str("</sql:query></ROOT>");
    t
}

/// SQL Server's error as a store error.
fn server_error(e: &crate::sqlxml::MssqlError) -> StoreError {
    let d = &e.description;
    let msg = format!("SQL Server: {d}");
    if [
        "UNIQUE KEY",
        "PRIMARY KEY",
        "FOREIGN KEY",
        "REFERENCE constraint",
        "CHECK constraint",
    ]
    .iter()
    .any(|k| d.contains(k))
    {
        StoreError::Constraint(msg)
    } else if d.contains("deadlock") {
        StoreError::Locked(format!("{msg} (the work was rolled back)"))
    } else {
        StoreError::Db(msg)
    }
}

impl Mssql2000 {
    /// Connects to the virtual root and checks that it runs a batch.
    pub fn open(url: &str) -> Result<Mssql2000, StoreError> {
        let shown = redact(url);
        let client = Client::new(url).map_err(|e| StoreError::Open {
            path: shown.clone(),
            msg: e.to_string(),
        })?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        // The lease's mutual exclusion rests on owners being unique: 64 random bits.
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce).map_err(|e| StoreError::Open {
            path: shown.clone(),
            msg: format!("no random numbers for the write lease's owner: {e}"),
        })?;
        let owner: String = format!(
            "{}-{}-{:016x}",
            host.trim(),
            std::process::id(),
            u64::from_le_bytes(nonce)
        )
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
        let db = Mssql2000 {
            client,
            commits: 0,
            owner,
            shown,
        };
        // The first request: is it there, does it run templates as plain batches (no
        // transaction of its own around each query), is it SQL Server, and may hostler's
        // login keep ids (SET IDENTITY_INSERT needs the tables' owner or db_owner)?
        let probe = format!(
            "{PRELUDE}IF OBJECT_ID(N'hosts') IS NOT NULL BEGIN SET IDENTITY_INSERT [hosts] ON; \
             SET IDENTITY_INSERT [hosts] OFF END; \
             SELECT CAST(SERVERPROPERTY('ProductVersion') AS NVARCHAR(128)) AS [version], \
             @@TRANCOUNT AS [trancount] FOR XML RAW"
        );
        let open_err = |msg: String| StoreError::Open {
            path: db.shown.clone(),
            msg,
        };
        let resp = db.send(&probe).map_err(|e| {
            open_err(match e {
                StoreError::Db(m) if m.starts_with("SQL Server: ") => format!(
                    "its test batch failed: {} (the store needs SQL Server behind the \
                     interface, and a login that owns hostler's tables)",
                    &m["SQL Server: ".len()..]
                ),
                e => e.to_string(),
            })
        })?;
        let Some(version) = resp
            .records
            .first()
            .and_then(|r| r.get("version").map(str::to_string))
        else {
            return Err(open_err(
                "no answer to a test query (does the virtual root allow POSTed templates?)".into(),
            ));
        };
        if !matches!(number(&resp, "trancount"), Ok(0)) {
            return Err(open_err(
                "the virtual root runs each query inside a transaction of its own; hostler's \
                 store needs plain batches"
                    .into(),
            ));
        }
        tracing::debug!(db = %db.shown, %version, "SQL Server over SQLXML");
        Ok(db)
    }

    /// Posts one batch as a template; its FOR XML rows come back.
    fn send(&self, batch: &str) -> Result<Response, StoreError> {
        match self
            .client
            .template(&template(batch), &[], TemplateBody::Raw)
        {
            Ok(r) => Ok(r),
            Err(SqlxmlError::Server { error, .. }) => Err(server_error(&error)),
            Err(e) => Err(StoreError::Db(format!("SQLXML: {e}"))),
        }
    }

    /// The lease value's expiry, parsed in T-SQL from `owner until`.
    fn lease_until() -> String {
        let v = LEASE_TEXT;
        format!("CAST(SUBSTRING({v}, CHARINDEX(N' ', {v}) + 1, 30) AS BIGINT)")
    }

    /// A lease for `owner`, LEASE_MS from now by the server's clock, as a T-SQL value.
    fn lease_value(owner: &str) -> String {
        format!(
            "{} + CAST({} + {LEASE_MS} AS NVARCHAR(20))",
            D.string_literal(&format!("{owner} ")),
            D.now_ms()
        )
    }

    /// The condition that picks the lease row while `owner` holds it.
    fn held_by(owner: &str) -> String {
        format!(
            "[key] = N'write_lease' AND {LEASE_TEXT} LIKE {}",
            D.string_literal(&format!("{owner} %"))
        )
    }

    /// The batch that takes the write lease for `owner` (creating its row if needed);
    /// answers `n` = 1 if taken, 0 if another holds it, -1 if there is no `settings` table yet.
    pub fn lease_batch(owner: &str) -> String {
        let key = D.string_literal("write_lease");
        let me = D.string_literal(&format!("{owner} %"));
        let value = Self::lease_value(owner);
        format!(
            "{PRELUDE}IF OBJECT_ID(N'settings') IS NULL SELECT -1 AS [n] FOR XML RAW ELSE BEGIN \
             IF NOT EXISTS (SELECT 1 FROM [settings] WHERE [key] = {key}) \
             INSERT INTO [settings] ([key], [value]) VALUES ({key}, N''); \
             UPDATE [settings] SET [value] = {value} WHERE [key] = {key} AND \
             ({LEASE_TEXT} LIKE {me} OR {until} < {now}); \
             SELECT @@ROWCOUNT AS [n] FOR XML RAW END",
            until = Self::lease_until(),
            now = D.now_ms(),
        )
    }

    /// Takes the write lease, waiting for another holder up to [`LEASE_WAIT`]. `false`: there
    /// is no `settings` table yet (the schema's creation, which the schema check guards).
    fn acquire(&self) -> Result<bool, StoreError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let last = match self.send(&Self::lease_batch(&self.owner)) {
                Ok(resp) => match number(&resp, "n")? {
                    1 => return Ok(true),
                    -1 => return Ok(false),
                    _ => None,
                },
                // Two first writers may race to create the lease row.
                Err(e @ StoreError::Constraint(_)) => Some(e),
                Err(e) => return Err(e),
            };
            if start.elapsed() > LEASE_WAIT {
                return Err(last.unwrap_or_else(|| {
                    StoreError::Locked(format!(
                        "{}: another hostler has held the write lease for {} s",
                        self.shown,
                        LEASE_WAIT.as_secs()
                    ))
                }));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Extends `owner`'s write lease, or fails the batch if it is no longer held: what a
    /// rehearsal starts with, so a long unit keeps its lease and a lost one stops it early.
    pub fn renew_sql(owner: &str) -> String {
        format!(
            "UPDATE [settings] SET [value] = {} WHERE {}; \
             IF @@ROWCOUNT <> 1 BEGIN RAISERROR(N'hostler lost its write lease (held over 30 s?); \
             nothing was written', 16, 1); RETURN; END; ",
            Self::lease_value(owner),
            Self::held_by(owner)
        )
    }

    /// What became of commit `seq` whose answer was lost, from the lease row: `Some(true)`
    /// if its mark is there, `Some(false)` if the lease is still this process's (the commit
    /// would have released it in the same transaction), `None` if nobody can tell (no lease,
    /// another holder since, or no answer now either).
    fn commit_outcome(&self, seq: u64, leased: bool) -> Option<bool> {
        if !leased {
            return None;
        }
        let resp = self
            .send(&format!(
                "{PRELUDE}SELECT {LEASE_TEXT} AS [v] FROM [settings] WHERE \
                 [key] = N'write_lease' FOR XML RAW"
            ))
            .ok()?;
        let v = resp.records.first()?.get("v")?.to_string();
        if v == commit_mark(&self.owner, seq) {
            Some(true)
        } else if v.starts_with(&format!("{} ", self.owner)) {
            Some(false)
        } else {
            None
        }
    }

    /// The statement that gives `owner`'s write lease back.
    pub fn release_sql(owner: &str) -> String {
        format!(
            "UPDATE [settings] SET [value] = N'' WHERE {}",
            Self::held_by(owner)
        )
    }

    /// The commit batch: the lease checked under an update lock, each write with its row
    /// count checked, the lease released, COMMIT, and a row that says it got that far.
    pub fn commit_batch(owner: &str, seq: u64, writes: &[Written], leased: bool) -> String {
        // Leased means the schema exists (the lease lives in it).
        let resets = if leased { identity_resets() } else { "" };
        let mut b = format!("{PRELUDE}{resets}BEGIN TRAN; ");
        // A failed check also undoes the write's settings: they outlive the batch on the
        // pooled connection.
        let fail = |msg: &str, undo: &str| {
            format!(
                "BEGIN ROLLBACK TRAN; {undo}RAISERROR({}, 16, 1); RETURN; END; ",
                D.string_literal(msg)
            )
        };
        if leased {
            b.push_str(&format!(
                "IF NOT EXISTS (SELECT 1 FROM [settings] WITH (UPDLOCK, HOLDLOCK) WHERE {} AND \
                 {} >= {}) {}",
                Self::held_by(owner),
                Self::lease_until(),
                D.now_ms(),
                fail(
                    "hostler's write lease ran out before the commit; nothing was written",
                    ""
                )
            ));
        }
        for w in writes {
            b.push_str(&w.before);
            b.push_str(&w.sql);
            b.push_str("; ");
            // Right after the write: a SET would reset @@ROWCOUNT.
            if let Some(n) = w.rows {
                b.push_str(&format!("IF @@ROWCOUNT <> {n} "));
                b.push_str(&fail(
                    &format!(
                        "a write changed other rows than in its rehearsal ({n}); nothing was \
                         written"
                    ),
                    &w.after,
                ));
            }
            b.push_str(&w.after);
        }
        if leased {
            // Released with the commit's mark: free for others (it ran out at 0), and, if the
            // answer is lost, the proof that this commit happened.
            b.push_str(&format!(
                "UPDATE [settings] SET [value] = {} WHERE {}; ",
                D.string_literal(&commit_mark(owner, seq)),
                Self::held_by(owner)
            ));
        }
        b.push_str("COMMIT TRAN; SELECT 1 AS [committed] FOR XML RAW");
        b
    }
}

/// `SET IDENTITY_INSERT ... OFF` for every table with an identity: a batch that died between
/// ON and OFF leaves it ON for its pooled connection, where it would break the next INSERT
/// into that table and any other table's ON. (Only where the tables exist.)
fn identity_resets() -> &'static str {
    static RESETS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RESETS.get_or_init(|| {
        let Ok(schema) = super::schema() else {
            return String::new();
        };
        schema
            .tables
            .iter()
            .filter(|t| t.columns.iter().any(|c| c.autoincrement))
            .map(|t| format!("SET IDENTITY_INSERT {} OFF; ", D.quote(&t.name)))
            .collect()
    })
}

/// What the commit numbered `seq` of `owner` leaves on the lease row: an expired lease
/// (until 0) whose owner part names the commit.
pub fn commit_mark(owner: &str, seq: u64) -> String {
    format!("~{owner}-{seq} 0")
}

/// A write of a unit, as the commit batch runs it.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Settings it needs around it (`SET IDENTITY_INSERT`), each ending in "; ".
    pub before: String,
    pub sql: String,
    pub after: String,
    /// The rows it changed in the rehearsal, checked at the commit (`None`: not checked, for
    /// DDL and multi-statement writes).
    pub rows: Option<u64>,
}

struct Tx<'a> {
    db: &'a Mssql2000,
    write: bool,
    /// Whether this unit holds the write lease (false only while the schema is created).
    leased: bool,
    writes: Vec<Written>,
}

impl Tx<'_> {
    /// Runs `tail` after the unit's writes so far, inside a transaction that is rolled back.
    /// A read before any write runs as it is.
    fn rehearse(&self, tail: &str, writes_itself: bool) -> Result<Response, StoreError> {
        if self.writes.is_empty() && !writes_itself {
            return self.db.send(&format!("{PRELUDE}{tail}"));
        }
        if !self.write {
            return Err(StoreError::Db("a write in a read-only unit of work".into()));
        }
        let mut b = PRELUDE.to_string();
        if self.leased {
            b.push_str(&Mssql2000::renew_sql(&self.db.owner));
            b.push_str(identity_resets());
        }
        b.push_str("BEGIN TRAN; ");
        for w in &self.writes {
            b.push_str(&w.before);
            b.push_str(&w.sql);
            b.push_str("; ");
            b.push_str(&w.after);
        }
        b.push_str(tail);
        b.push_str("; ROLLBACK TRAN");
        self.db.send(&b)
    }
}

impl Conn for Tx<'_> {
    fn dialect(&self) -> Dialect {
        D
    }

    fn rows(&mut self, q: &Rendered) -> Result<Vec<Row>, StoreError> {
        // What a statement is, is decided on its text before values go in (a value may hold
        // anything), and errors show that text, never the values (a host's secret is one).
        if let Some((insert, id_col)) = q.sql.split_once(IDENTITY_SUFFIX) {
            let insert = inline(insert, &q.params)?;
            // An INSERT that returns its id: rehearse it for the id, keep it with that id.
            let resp = self.rehearse(
                &format!("{insert}{IDENTITY_SUFFIX}{id_col} FOR XML RAW"),
                true,
            )?;
            let name = id_col.trim_start_matches('[').trim_end_matches(']');
            let id = number(&resp, name)?;
            let kept = with_id(&insert, id_col, id).ok_or_else(|| {
                StoreError::Db(format!("an INSERT of an unexpected form: {}", q.sql))
            })?;
            self.writes.push(kept);
            return Ok(vec![Row {
                columns: vec![name.to_string()].into(),
                values: vec![Value::Int(id)],
            }]);
        }
        if !q.sql.trim_start().starts_with("SELECT") {
            return Err(StoreError::Db(format!(
                "SQL Server 2000 returns rows only from SELECT: {}",
                q.sql
            )));
        }
        let sql = inline(&q.sql, &q.params)?;
        rows_of(&self.rehearse(&format!("{sql}{FOR_XML}"), false)?)
    }

    fn count(&mut self, q: &Rendered) -> Result<u64, StoreError> {
        // An upsert's IF hides the count of the statement that ran: not checked.
        let checked = !q.sql.contains("; ");
        let sql = inline(&q.sql, &q.params)?;
        let resp = self.rehearse(
            &format!("{sql}; SELECT @@ROWCOUNT AS [n] FOR XML RAW"),
            true,
        )?;
        let n = u64::try_from(number(&resp, "n")?).unwrap_or(0);
        let rows = checked.then_some(n);
        self.writes.push(Written {
            sql,
            rows,
            ..Written::default()
        });
        Ok(n)
    }

    fn last_insert_id(&mut self) -> Result<i64, StoreError> {
        Err(StoreError::Db(
            "SQL Server 2000 returns inserted ids in the INSERT's batch".into(),
        ))
    }

    fn ddl(&mut self, sql: &str) -> Result<(), StoreError> {
        self.rehearse(sql, true)?;
        self.writes.push(Written {
            sql: sql.to_string(),
            ..Written::default()
        });
        Ok(())
    }
}

impl Driver for Mssql2000 {
    fn dialect(&self) -> Dialect {
        D
    }

    fn read(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        work(&mut Tx {
            db: self,
            write: false,
            leased: false,
            writes: Vec::new(),
        })
    }

    fn write(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        self.commits += 1;
        let seq = self.commits;
        let leased = self.acquire()?;
        let mut tx = Tx {
            db: self,
            write: true,
            leased,
            writes: Vec::new(),
        };
        let r = work(&mut tx);
        let writes = std::mem::take(&mut tx.writes);
        let release = || {
            if leased {
                // Best effort: an unreleased lease runs out after LEASE_MS.
                let _ = self.send(&format!("{PRELUDE}{}", Self::release_sql(&self.owner)));
            }
        };
        if let Err(e) = r {
            release();
            return Err(e);
        }
        if writes.is_empty() {
            release();
            return Ok(());
        }
        // The answer is lost: the lease row tells what became of the commit.
        let unknown = |why: String| {
            match self.commit_outcome(seq, leased) {
                Some(true) => return Ok(()),
                Some(false) => {
                    release();
                    return Err(StoreError::Db(format!(
                        "{}: {why}; the commit did not take effect",
                        self.shown
                    )));
                }
                None => {}
            }
            Err(StoreError::Db(format!(
                "{}: {why}; whether the commit took effect is not known",
                self.shown
            )))
        };
        match self.send(&Self::commit_batch(&self.owner, seq, &writes, leased)) {
            Ok(resp) if matches!(number(&resp, "committed"), Ok(1)) => Ok(()),
            Ok(_) => unknown("its confirmation did not come back".into()),
            // The server refused it: nothing was written, and the lease (whose release was
            // rolled back with the rest) is given back now, not when it runs out.
            Err(e @ (StoreError::Constraint(_) | StoreError::Locked(_))) => {
                release();
                Err(e)
            }
            Err(StoreError::Db(m)) if m.starts_with("SQL Server: ") => {
                release();
                Err(StoreError::Db(m))
            }
            Err(StoreError::Db(m)) => unknown(m),
            Err(e) => unknown(e.to_string()),
        }
    }

    fn raw(&mut self, _sql: &str, _show_secrets: bool) -> Result<RawResult, StoreError> {
        Err(StoreError::Invalid(
            "over SQLXML, `hostler sql` sends the statement itself (SELECT ... FOR XML)".into(),
        ))
    }
}
