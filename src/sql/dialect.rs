//! The SQL dialects hostler renders for, and the small facts that differ between them:
//! identifier quoting, placeholders, literals, booleans and the current time.

use std::fmt;
use std::str::FromStr;

/// A target SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    /// SQL Server 2000: `TOP n`, no `OUTPUT`, `NTEXT`/`IMAGE`, no `VARCHAR(MAX)`.
    Mssql2000,
    /// SQL Server 2005 and later: `TOP (n)`, `OUTPUT INSERTED.*`, `NVARCHAR(MAX)`.
    Mssql2005,
    Postgres,
    Mysql,
}

impl Dialect {
    pub const ALL: [Dialect; 5] = [
        Dialect::Sqlite,
        Dialect::Mssql2000,
        Dialect::Mssql2005,
        Dialect::Postgres,
        Dialect::Mysql,
    ];

    /// The name used on the command line and in snapshots.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Mssql2000 => "mssql2000",
            Dialect::Mssql2005 => "mssql2005",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    pub fn is_mssql(self) -> bool {
        matches!(self, Dialect::Mssql2000 | Dialect::Mssql2005)
    }

    /// Quotes an identifier, doubling the closing quote character inside it.
    pub fn quote(self, ident: &str) -> String {
        let mut out = String::with_capacity(ident.len() + 2);
        self.quote_into(&mut out, ident);
        out
    }

    /// [`Dialect::quote`], appended to `out` (the renderer's path: no allocation of its own).
    pub fn quote_into(self, out: &mut String, ident: &str) {
        let (open, close) = match self {
            Dialect::Sqlite | Dialect::Postgres => ('"', '"'),
            Dialect::Mssql2000 | Dialect::Mssql2005 => ('[', ']'),
            Dialect::Mysql => ('`', '`'),
        };
        out.push(open);
        // The three quote characters are ASCII, so a byte scan finds them.
        if ident.bytes().any(|b| char::from(b) == close) {
            for part in ident.split_inclusive(close) {
                out.push_str(part);
                if part.ends_with(close) {
                    out.push(close);
                }
            }
        } else {
            out.push_str(ident);
        }
        out.push(close);
    }

    /// The placeholder for the `n`th (1-based) bound parameter.
    pub fn placeholder(self, n: usize) -> String {
        let mut out = String::new();
        self.placeholder_into(&mut out, n);
        out
    }

    /// [`Dialect::placeholder`], appended to `out`.
    pub fn placeholder_into(self, out: &mut String, n: usize) {
        use std::fmt::Write as _;
        let prefix = match self {
            // Numbered so that a parameter can never shift position silently.
            Dialect::Sqlite => "?",
            Dialect::Postgres => "$",
            // tiberius binds @P1, @P2, ...
            Dialect::Mssql2005 => "@P",
            // SQLXML URL queries and MySQL take positional question marks.
            Dialect::Mssql2000 | Dialect::Mysql => {
                out.push('?');
                return;
            }
        };
        out.push_str(prefix);
        // Writing to a String cannot fail.
        let _ = write!(out, "{n}");
    }

    /// Whether a list of integer parameters (`x IN (...)`) is bound as one parameter, so
    /// that every length of list is the same statement: PostgreSQL's `x = ANY(...)` of an
    /// array. Elsewhere each length is a statement of its own.
    pub fn binds_lists(self) -> bool {
        self == Dialect::Postgres
    }

    /// A boolean literal.
    pub fn boolean(self, b: bool) -> &'static str {
        match (self, b) {
            (Dialect::Postgres | Dialect::Mysql, true) => "TRUE",
            (Dialect::Postgres | Dialect::Mysql, false) => "FALSE",
            (_, true) => "1",
            (_, false) => "0",
        }
    }

    /// The current time as milliseconds since the Unix epoch (hostler's time column type).
    pub fn now_ms(self) -> &'static str {
        match self {
            // julianday() is a double; rounding recovers SQLite's exact millisecond clock, so
            // a row stamped with the application's clock is never "in the future" by 1 ms.
            Dialect::Sqlite => "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)",
            // DATEDIFF in seconds stays within INT until 2038; milliseconds would overflow it.
            Dialect::Mssql2000 | Dialect::Mssql2005 => {
                "(CAST(DATEDIFF(s, '19700101', GETUTCDATE()) AS BIGINT) * 1000)"
            }
            // The statement's start: stable within it, so a condition on it can seek an index
            // (clock_timestamp() is volatile and left the claim's due condition a filter
            // over every queued job), and still new for each statement of a transaction.
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)",
            Dialect::Mysql => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
        }
    }

    /// Escapes a string literal.
    pub fn string_literal(self, s: &str) -> String {
        let doubled = s.replace('\'', "''");
        match self {
            // N'' keeps non-Latin text intact in NVARCHAR columns.
            Dialect::Mssql2000 | Dialect::Mssql2005 => format!("N'{doubled}'"),
            // MySQL treats backslash as an escape character by default.
            Dialect::Mysql => format!("'{}'", doubled.replace('\\', "\\\\").replace('\0', "\\0")),
            Dialect::Sqlite | Dialect::Postgres => format!("'{doubled}'"),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Ok(Dialect::Sqlite),
            "mssql2000" | "sqlserver2000" => Ok(Dialect::Mssql2000),
            "mssql2005" | "mssql" | "sqlserver" => Ok(Dialect::Mssql2005),
            "postgres" | "postgresql" | "pg" => Ok(Dialect::Postgres),
            "mysql" | "mariadb" => Ok(Dialect::Mysql),
            other => Err(format!(
                "unknown SQL dialect {other:?}; expected one of sqlite, mssql2000, mssql2005, postgres, mysql"
            )),
        }
    }
}
