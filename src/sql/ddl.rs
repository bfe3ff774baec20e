//! The data model read from `schema.sql`, and its DDL rendered per dialect.
//!
//! `schema.sql` is written in a small, portable subset of SQL, parsed here:
//!
//! - `CREATE TABLE name ( column, ..., [UNIQUE (a, b)] );`
//! - a column is `name TYPE [PRIMARY KEY [AUTOINCREMENT]] [NOT NULL] [UNIQUE] [DEFAULT literal]
//!   [REFERENCES table (column) [ON DELETE CASCADE | ON DELETE SET NULL]] [CHECK (name IN ('a', ...))]`;
//! - TYPE is one of INTEGER, BIGINT, VARCHAR(n), TEXT, BOOLEAN, REAL, BLOB;
//! - `CREATE [UNIQUE] INDEX name ON table (column [DESC], ...);`
//! - a line `-- schema_version: N` gives the version.
//!
//! Foreign keys are rendered as table constraints because MySQL silently ignores inline
//! `REFERENCES`.

use super::dialect::Dialect;
use super::expr::Value;

/// A column type of the portable subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Integer,
    BigInt,
    Varchar(u32),
    Text,
    Boolean,
    Real,
    Blob,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub primary_key: bool,
    pub autoincrement: bool,
    pub not_null: bool,
    pub unique: bool,
    pub default: Option<Value>,
    /// (table, column, ON DELETE action)
    pub references: Option<(String, String, Option<String>)>,
    pub check_in: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub unique: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub name: String,
    pub table: String,
    pub unique: bool,
    pub columns: Vec<(String, bool)>,
}

/// The parsed data model.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub version: i64,
    pub tables: Vec<Table>,
    pub indexes: Vec<Index>,
}

/// schema.sql is not in the accepted subset.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("schema.sql: {0}")]
pub struct SchemaError(String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Num(i64),
    Str(String),
    Punct(char),
}

fn tokenize(src: &str) -> Result<Vec<Tok>, SchemaError> {
    let mut toks = Vec::new();
    let mut it = src.chars().peekable();
    while let Some(&c) = it.peek() {
        if c.is_whitespace() {
            it.next();
        } else if c == '-' {
            it.next();
            if it.peek() == Some(&'-') {
                for c in it.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                let mut n = String::from("-");
                while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(d);
                    it.next();
                }
                toks.push(Tok::Num(
                    n.parse()
                        .map_err(|_| SchemaError(format!("bad number {n}")))?,
                ));
            }
        } else if c.is_ascii_digit() {
            let mut n = String::new();
            while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
                n.push(d);
                it.next();
            }
            toks.push(Tok::Num(
                n.parse()
                    .map_err(|_| SchemaError(format!("bad number {n}")))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut w = String::new();
            while let Some(&d) = it
                .peek()
                .filter(|d| d.is_ascii_alphanumeric() || **d == '_')
            {
                w.push(d);
                it.next();
            }
            toks.push(Tok::Word(w));
        } else if c == '\'' {
            it.next();
            let mut s = String::new();
            loop {
                match it.next() {
                    Some('\'') if it.peek() == Some(&'\'') => {
                        it.next();
                        s.push('\'');
                    }
                    Some('\'') => break,
                    Some(c) => s.push(c),
                    None => return Err(SchemaError("unterminated string".into())),
                }
            }
            toks.push(Tok::Str(s));
        } else if "(),;".contains(c) {
            it.next();
            toks.push(Tok::Punct(c));
        } else {
            return Err(SchemaError(format!("unexpected character {c:?}")));
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Result<Tok, SchemaError> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t.ok_or_else(|| SchemaError("unexpected end".into()))
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.pos += 1;
        }
        yes
    }
    fn word(&mut self, w: &str) -> Result<(), SchemaError> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(SchemaError(format!(
                "expected {w}, found {:?}",
                self.peek()
            )))
        }
    }
    fn ident(&mut self) -> Result<String, SchemaError> {
        match self.next()? {
            Tok::Word(w) => Ok(w.to_ascii_lowercase()),
            t => Err(SchemaError(format!("expected a name, found {t:?}"))),
        }
    }
    fn punct(&mut self, c: char) -> Result<(), SchemaError> {
        match self.next()? {
            Tok::Punct(p) if p == c => Ok(()),
            t => Err(SchemaError(format!("expected {c:?}, found {t:?}"))),
        }
    }
    fn eat_punct(&mut self, c: char) -> bool {
        let yes = matches!(self.peek(), Some(Tok::Punct(p)) if *p == c);
        if yes {
            self.pos += 1;
        }
        yes
    }
    fn ident_list(&mut self) -> Result<Vec<(String, bool)>, SchemaError> {
        self.punct('(')?;
        let mut out = Vec::new();
        loop {
            let name = self.ident()?;
            let desc = self.eat_word("DESC");
            if !desc {
                self.eat_word("ASC");
            }
            out.push((name, desc));
            if !self.eat_punct(',') {
                break;
            }
        }
        self.punct(')')?;
        Ok(out)
    }

    fn column(&mut self, name: String) -> Result<Column, SchemaError> {
        let ty = match self.ident()?.as_str() {
            "integer" => ColumnType::Integer,
            "bigint" => ColumnType::BigInt,
            "text" => ColumnType::Text,
            "boolean" => ColumnType::Boolean,
            "real" => ColumnType::Real,
            "blob" => ColumnType::Blob,
            "varchar" => {
                self.punct('(')?;
                let n = match self.next()? {
                    Tok::Num(n) if (1..=4000).contains(&n) => n as u32,
                    t => return Err(SchemaError(format!("bad VARCHAR length {t:?}"))),
                };
                self.punct(')')?;
                ColumnType::Varchar(n)
            }
            other => return Err(SchemaError(format!("column {name}: unknown type {other}"))),
        };
        let mut c = Column {
            name,
            ty,
            primary_key: false,
            autoincrement: false,
            not_null: false,
            unique: false,
            default: None,
            references: None,
            check_in: Vec::new(),
        };
        loop {
            if self.eat_word("PRIMARY") {
                self.word("KEY")?;
                c.primary_key = true;
                c.not_null = true;
                c.autoincrement = self.eat_word("AUTOINCREMENT");
            } else if self.eat_word("NOT") {
                self.word("NULL")?;
                c.not_null = true;
            } else if self.eat_word("UNIQUE") {
                c.unique = true;
            } else if self.eat_word("DEFAULT") {
                c.default = Some(match self.next()? {
                    Tok::Num(n) => Value::Int(n),
                    Tok::Str(s) => Value::Text(s),
                    Tok::Word(w) if w.eq_ignore_ascii_case("TRUE") => Value::Bool(true),
                    Tok::Word(w) if w.eq_ignore_ascii_case("FALSE") => Value::Bool(false),
                    Tok::Word(w) if w.eq_ignore_ascii_case("NULL") => Value::Null,
                    t => return Err(SchemaError(format!("column {}: bad default {t:?}", c.name))),
                });
            } else if self.eat_word("REFERENCES") {
                let table = self.ident()?;
                let cols = self.ident_list()?;
                let action = if self.eat_word("ON") {
                    self.word("DELETE")?;
                    if self.eat_word("CASCADE") {
                        Some("CASCADE".to_string())
                    } else {
                        self.word("SET")?;
                        self.word("NULL")?;
                        Some("SET NULL".to_string())
                    }
                } else {
                    None
                };
                c.references = Some((table, cols[0].0.clone(), action));
            } else if self.eat_word("CHECK") {
                self.punct('(')?;
                if self.ident()? != c.name {
                    return Err(SchemaError(format!(
                        "column {}: CHECK must name it",
                        c.name
                    )));
                }
                self.word("IN")?;
                self.punct('(')?;
                loop {
                    match self.next()? {
                        Tok::Str(s) => c.check_in.push(s),
                        t => return Err(SchemaError(format!("CHECK takes strings, found {t:?}"))),
                    }
                    if !self.eat_punct(',') {
                        break;
                    }
                }
                self.punct(')')?;
                self.punct(')')?;
            } else {
                return Ok(c);
            }
        }
    }

    fn table(&mut self) -> Result<Table, SchemaError> {
        let name = self.ident()?;
        self.punct('(')?;
        let mut t = Table {
            name,
            columns: Vec::new(),
            unique: Vec::new(),
        };
        loop {
            if self.eat_word("UNIQUE") {
                t.unique
                    .push(self.ident_list()?.into_iter().map(|(c, _)| c).collect());
            } else {
                let col = self.ident()?;
                let c = self.column(col)?;
                t.columns.push(c);
            }
            if !self.eat_punct(',') {
                break;
            }
        }
        self.punct(')')?;
        Ok(t)
    }
}

impl Schema {
    /// Parses schema.sql text.
    pub fn parse(src: &str) -> Result<Schema, SchemaError> {
        let version = src
            .lines()
            .find_map(|l| l.trim().strip_prefix("-- schema_version:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| SchemaError("missing `-- schema_version: N` line".into()))?;
        let mut p = Parser {
            toks: tokenize(src)?,
            pos: 0,
        };
        let mut schema = Schema {
            version,
            tables: Vec::new(),
            indexes: Vec::new(),
        };
        while p.peek().is_some() {
            if p.eat_punct(';') {
                continue;
            }
            p.word("CREATE")?;
            if p.eat_word("TABLE") {
                schema.tables.push(p.table()?);
            } else {
                let unique = p.eat_word("UNIQUE");
                p.word("INDEX")?;
                let name = p.ident()?;
                p.word("ON")?;
                let table = p.ident()?;
                let columns = p.ident_list()?;
                schema.indexes.push(Index {
                    name,
                    table,
                    unique,
                    columns,
                });
            }
            p.punct(';')?;
        }
        for t in &schema.tables {
            for c in &t.columns {
                if let Some((rt, _, _)) = &c.references
                    && !schema.tables.iter().any(|x| &x.name == rt)
                {
                    return Err(SchemaError(format!(
                        "{}.{}: unknown table {rt}",
                        t.name, c.name
                    )));
                }
            }
        }
        Ok(schema)
    }

    /// The DDL statements that create this schema in `d`, in dependency order.
    pub fn ddl(&self, d: Dialect) -> Vec<String> {
        let mut out: Vec<String> = self.tables.iter().map(|t| table_ddl(t, d)).collect();
        out.extend(self.indexes.iter().map(|i| index_ddl(i, d)));
        out
    }

    /// The DDL that adds one table and its indexes (an upgrade step), or None if the schema
    /// has no such table.
    pub fn table_ddl(&self, table: &str, d: Dialect) -> Option<Vec<String>> {
        let t = self.tables.iter().find(|t| t.name == table)?;
        let mut out = vec![table_ddl(t, d)];
        out.extend(
            self.indexes
                .iter()
                .filter(|i| i.table == table)
                .map(|i| index_ddl(i, d)),
        );
        Some(out)
    }

    /// The DDL that adds one index to an older database (an upgrade step), or None if the
    /// schema has no index of that name.
    pub fn index_ddl(&self, name: &str, d: Dialect) -> Option<String> {
        self.indexes
            .iter()
            .find(|i| i.name == name)
            .map(|i| index_ddl(i, d))
    }

    /// The DDL that adds one column of a table to an older database (an upgrade step), or
    /// None if the schema has no such column.
    pub fn add_column_ddl(&self, table: &str, column: &str, d: Dialect) -> Option<String> {
        let t = self.tables.iter().find(|t| t.name == table)?;
        let c = t.columns.iter().find(|c| c.name == column)?;
        let add = if d.is_mssql() { "ADD" } else { "ADD COLUMN" };
        Some(format!(
            "ALTER TABLE {} {add} {}",
            d.quote(&t.name),
            column_ddl(c, d)
        ))
    }

    /// The DDL as one script, as `hostler init --print-ddl` prints it.
    pub fn ddl_script(&self, d: Dialect) -> String {
        let sep = if d.is_mssql() { ";\nGO\n\n" } else { ";\n\n" };
        let mut s = format!(
            "-- hostler schema version {} for {}, derived from schema.sql\n",
            self.version, d
        );
        for stmt in self.ddl(d) {
            s.push_str(&stmt);
            s.push_str(sep);
        }
        s
    }
}

fn type_name(c: &Column, d: Dialect) -> String {
    use ColumnType::*;
    use Dialect::*;
    match (c.ty, d) {
        (Integer, Sqlite) | (Integer, Postgres) => "INTEGER".into(),
        (Integer, _) => "INT".into(),
        (BigInt, Sqlite) => "INTEGER".into(),
        (BigInt, _) => "BIGINT".into(),
        (Varchar(_), Sqlite) | (Text, Sqlite) | (Text, Postgres) => "TEXT".into(),
        (Varchar(n), Mssql2000 | Mssql2005) => format!("NVARCHAR({n})"),
        (Varchar(n), _) => format!("VARCHAR({n})"),
        (Text, Mssql2000) => "NTEXT".into(),
        (Text, Mssql2005) => "NVARCHAR(MAX)".into(),
        (Text, Mysql) => "LONGTEXT".into(),
        (Boolean, Sqlite) => "INTEGER".into(),
        (Boolean, Mssql2000 | Mssql2005) => "BIT".into(),
        (Boolean, _) => "BOOLEAN".into(),
        (Real, Sqlite) => "REAL".into(),
        (Real, Mssql2000 | Mssql2005) => "FLOAT".into(),
        (Real, Postgres) => "DOUBLE PRECISION".into(),
        (Real, Mysql) => "DOUBLE".into(),
        (Blob, Sqlite) => "BLOB".into(),
        (Blob, Mssql2000) => "IMAGE".into(),
        (Blob, Mssql2005) => "VARBINARY(MAX)".into(),
        (Blob, Postgres) => "BYTEA".into(),
        (Blob, Mysql) => "LONGBLOB".into(),
    }
}

fn column_ddl(c: &Column, d: Dialect) -> String {
    let mut s = format!("{} ", d.quote(&c.name));
    if c.autoincrement {
        // Ids are never reused: a deleted job's id must not reappear for a new job.
        s.push_str(match d {
            Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Dialect::Mssql2000 | Dialect::Mssql2005 => "BIGINT IDENTITY(1,1) PRIMARY KEY",
            Dialect::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            Dialect::Mysql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        });
        return s;
    }
    s.push_str(&type_name(c, d));
    if c.primary_key {
        s.push_str(" PRIMARY KEY");
    } else if c.not_null {
        s.push_str(" NOT NULL");
    }
    if c.unique {
        s.push_str(" UNIQUE");
    }
    if let Some(v) = &c.default {
        let lit = match v {
            Value::Null => "NULL".to_string(),
            Value::Bool(b) => d.boolean(*b).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Text(t) => d.string_literal(t),
            Value::Real(r) => format!("{r:?}"),
            Value::Blob(_) => "NULL".to_string(),
        };
        s.push_str(" DEFAULT ");
        s.push_str(&lit);
    }
    if !c.check_in.is_empty() {
        let lits: Vec<String> = c.check_in.iter().map(|v| d.string_literal(v)).collect();
        s.push_str(&format!(
            " CHECK ({} IN ({}))",
            d.quote(&c.name),
            lits.join(", ")
        ));
    }
    s
}

fn index_ddl(i: &Index, d: Dialect) -> String {
    let cols: Vec<String> = i
        .columns
        .iter()
        .map(|(c, desc)| format!("{}{}", d.quote(c), if *desc { " DESC" } else { "" }))
        .collect();
    format!(
        "CREATE {}INDEX {} ON {} ({})",
        if i.unique { "UNIQUE " } else { "" },
        d.quote(&i.name),
        d.quote(&i.table),
        cols.join(", ")
    )
}

fn table_ddl(t: &Table, d: Dialect) -> String {
    let mut parts: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("    {}", column_ddl(c, d)))
        .collect();
    for u in &t.unique {
        let cols: Vec<String> = u.iter().map(|c| d.quote(c)).collect();
        parts.push(format!("    UNIQUE ({})", cols.join(", ")));
    }
    for c in &t.columns {
        if let Some((rt, rc, action)) = &c.references {
            let mut fk = format!(
                "    FOREIGN KEY ({}) REFERENCES {} ({})",
                d.quote(&c.name),
                d.quote(rt),
                d.quote(rc)
            );
            if let Some(a) = action {
                fk.push_str(" ON DELETE ");
                fk.push_str(a);
            }
            parts.push(fk);
        }
    }
    let tail = if d == Dialect::Mysql {
        " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    } else {
        ""
    };
    format!(
        "CREATE TABLE {} (\n{}\n){tail}",
        d.quote(&t.name),
        parts.join(",\n")
    )
}
