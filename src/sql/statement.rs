//! Statements and the sections they are assembled from.
//!
//! A [`Section`] is a named piece of a SELECT: columns, a join, conditions, grouping, having,
//! ordering or a limit. Sections are plain values, so a rule is written once as a function that
//! returns a section, and any statement that needs the rule adds it with [`Select::with`].

use super::expr::Expr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub kind: JoinKind,
    pub table: &'static str,
    pub alias: &'static str,
    pub on: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// Row locking, nothing on SQLite (whose `BEGIN IMMEDIATE` already holds the write lock): the
/// rows of the FROM table, not of the tables joined to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// For queue claims: `WITH (UPDLOCK, READPAST)` on SQL Server, `FOR UPDATE SKIP LOCKED`
    /// on PostgreSQL and MySQL.
    SkipLocked,
    /// For a read, then a write of the same rows: `WITH (UPDLOCK, ROWLOCK)` on SQL Server,
    /// `FOR UPDATE` on PostgreSQL and MySQL.
    ForUpdate,
}

/// A named, reusable piece of a SELECT.
#[derive(Debug, Clone, PartialEq)]
pub enum Section {
    /// Result columns, each with an optional alias.
    Columns(Vec<(Expr, Option<&'static str>)>),
    Join(Join),
    /// Conditions, ANDed with every other condition of the statement.
    Where(Vec<Expr>),
    GroupBy(Vec<Expr>),
    Having(Vec<Expr>),
    OrderBy(Vec<(Expr, Order)>),
    Limit(u64),
    Offset(u64),
    Lock(Lock),
    /// Several sections under one name.
    All(Vec<Section>),
}

/// A SELECT statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub table: &'static str,
    pub alias: Option<&'static str>,
    pub columns: Vec<(Expr, Option<&'static str>)>,
    pub joins: Vec<Join>,
    pub conditions: Vec<Expr>,
    pub group_by: Vec<Expr>,
    pub having: Vec<Expr>,
    pub order_by: Vec<(Expr, Order)>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub lock: Option<Lock>,
}

impl Select {
    pub fn from(table: &'static str) -> Select {
        Select {
            table,
            alias: None,
            columns: Vec::new(),
            joins: Vec::new(),
            conditions: Vec::new(),
            group_by: Vec::new(),
            having: Vec::new(),
            order_by: Vec::new(),
            limit: None,
            offset: None,
            lock: None,
        }
    }

    pub fn from_as(table: &'static str, alias: &'static str) -> Select {
        Select {
            alias: Some(alias),
            ..Select::from(table)
        }
    }

    /// Adds a section.
    pub fn with(mut self, section: Section) -> Select {
        match section {
            Section::Columns(c) => self.columns.extend(c),
            Section::Join(j) => self.joins.push(j),
            Section::Where(c) => self.conditions.extend(c),
            Section::GroupBy(g) => self.group_by.extend(g),
            Section::Having(h) => self.having.extend(h),
            Section::OrderBy(o) => self.order_by.extend(o),
            Section::Limit(n) => self.limit = Some(n),
            Section::Offset(n) => self.offset = Some(n),
            Section::Lock(l) => self.lock = Some(l),
            Section::All(all) => {
                for s in all {
                    self = self.with(s);
                }
            }
        }
        self
    }

    /// Adds plain columns by name.
    pub fn columns(self, names: &[&'static str]) -> Select {
        let cols = names.iter().map(|n| (Expr::Col(n), None)).collect();
        self.with(Section::Columns(cols))
    }

    /// Adds one condition.
    pub fn filter(self, cond: Expr) -> Select {
        self.with(Section::Where(vec![cond]))
    }
}

/// An INSERT of one row, optionally returning the generated id.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub table: &'static str,
    pub values: Vec<(&'static str, Expr)>,
    /// The identity column whose generated value the statement returns.
    pub returning_id: Option<&'static str>,
}

/// An INSERT of several rows of the same columns in one statement (no ids back).
#[derive(Debug, Clone, PartialEq)]
pub struct InsertRows {
    pub table: &'static str,
    pub columns: Vec<&'static str>,
    /// Each row's values, one for each of `columns`.
    pub rows: Vec<Vec<Expr>>,
}

/// An UPDATE, optionally returning columns of the changed rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub table: &'static str,
    pub set: Vec<(&'static str, Expr)>,
    pub conditions: Vec<Expr>,
    pub returning: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    pub table: &'static str,
    pub conditions: Vec<Expr>,
}

/// Insert a row, or update the listed columns of the row with the same key.
#[derive(Debug, Clone, PartialEq)]
pub struct Upsert {
    pub table: &'static str,
    pub key: Vec<&'static str>,
    pub values: Vec<(&'static str, Expr)>,
    /// Columns overwritten when the key exists.
    pub update: Vec<&'static str>,
}

/// Any statement the store executes.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Select),
    Insert(Insert),
    InsertRows(InsertRows),
    Update(Update),
    Delete(Delete),
    Upsert(Upsert),
    /// Does a table of this name exist? One row if it does.
    TableExists(&'static str),
    /// Waits for, and holds until its transaction ends, the named lock that lets one
    /// connection at a time do one kind of work (PostgreSQL's transaction-level advisory
    /// lock). It renders as nothing (no statement to run) where the database already lets one
    /// writer at a time in (SQLite), and where hostler has no such lock for the dialect yet.
    Serialize(&'static str),
}

impl From<Select> for Statement {
    fn from(s: Select) -> Self {
        Statement::Select(s)
    }
}
impl From<Insert> for Statement {
    fn from(s: Insert) -> Self {
        Statement::Insert(s)
    }
}
impl From<InsertRows> for Statement {
    fn from(s: InsertRows) -> Self {
        Statement::InsertRows(s)
    }
}
impl From<Update> for Statement {
    fn from(s: Update) -> Self {
        Statement::Update(s)
    }
}
impl From<Delete> for Statement {
    fn from(s: Delete) -> Self {
        Statement::Delete(s)
    }
}
impl From<Upsert> for Statement {
    fn from(s: Upsert) -> Self {
        Statement::Upsert(s)
    }
}
