//! Expressions: columns, bound parameters, inline literals and the operators hostler needs.
//! They carry no SQL text; [`super::render`] turns them into text for one dialect.

use super::statement::Select;

/// A value bound as a parameter, inlined as a literal, or read back from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    /// The value as text, as `hostler sql` shows it (`None` for NULL).
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Real(r) => Some(r.to_string()),
            Value::Text(s) => Some(s.clone()),
            Value::Blob(b) => Some(b.iter().map(|x| format!("{x:02x}")).collect()),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Like,
}

/// Functions whose spelling is the same or mapped per dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Count,
    Max,
    Min,
    Sum,
    Coalesce,
}

/// An expression tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// An unqualified column.
    Col(&'static str),
    /// A column of a table or alias.
    QCol(&'static str, &'static str),
    /// A bound parameter.
    Param(Value),
    /// An inline literal, escaped per dialect.
    Lit(Value),
    /// The current time in epoch milliseconds, from the database's clock.
    Now,
    /// `*`, as in `COUNT(*)`.
    Star,
    Bin(Box<Expr>, BinOp, Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    IsNull(Box<Expr>),
    InList(Box<Expr>, Vec<Expr>),
    InSelect(Box<Expr>, Box<Select>),
    Exists(Box<Select>),
    Func(Func, Vec<Expr>),
    /// A scalar subquery.
    Sub(Box<Select>),
    /// The same value, but not usable by an index on SQLite (a unary `+`), to steer the
    /// planner to an index that also serves the ORDER BY.
    Unindexed(Box<Expr>),
    /// A long-text column made comparable: SQL Server 2000's NTEXT cannot be compared with
    /// `=` (error 402), so there it is cast to NVARCHAR(4000); elsewhere it is the column.
    Comparable(Box<Expr>),
}

pub fn col(name: &'static str) -> Expr {
    Expr::Col(name)
}
pub fn qcol(table: &'static str, name: &'static str) -> Expr {
    Expr::QCol(table, name)
}
pub fn param(v: impl Into<Value>) -> Expr {
    Expr::Param(v.into())
}
pub fn lit(v: impl Into<Value>) -> Expr {
    Expr::Lit(v.into())
}
pub fn now() -> Expr {
    Expr::Now
}

impl Expr {
    fn bin(self, op: BinOp, rhs: Expr) -> Expr {
        Expr::Bin(Box::new(self), op, Box::new(rhs))
    }
    pub fn eq(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Eq, rhs)
    }
    pub fn ne(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Ne, rhs)
    }
    pub fn lt(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Lt, rhs)
    }
    pub fn le(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Le, rhs)
    }
    pub fn gt(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Gt, rhs)
    }
    pub fn ge(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Ge, rhs)
    }
    pub fn like(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Like, rhs)
    }
    pub fn and(self, rhs: Expr) -> Expr {
        Expr::And(vec![self, rhs])
    }
    pub fn or(self, rhs: Expr) -> Expr {
        Expr::Or(vec![self, rhs])
    }
    pub fn is_null(self) -> Expr {
        Expr::IsNull(Box::new(self))
    }
    pub fn is_not_null(self) -> Expr {
        !self.is_null()
    }
    pub fn in_list(self, items: Vec<Expr>) -> Expr {
        Expr::InList(Box::new(self), items)
    }
    pub fn in_select(self, sel: Select) -> Expr {
        Expr::InSelect(Box::new(self), Box::new(sel))
    }
    pub fn exists(sel: Select) -> Expr {
        Expr::Exists(Box::new(sel))
    }
    pub fn count_star() -> Expr {
        Expr::Func(Func::Count, vec![Expr::Star])
    }
    pub fn max(self) -> Expr {
        Expr::Func(Func::Max, vec![self])
    }
    pub fn unindexed(self) -> Expr {
        Expr::Unindexed(Box::new(self))
    }
    /// A long-text column (TEXT in schema.sql) in a comparison: see [`Expr::Comparable`].
    pub fn comparable(self) -> Expr {
        Expr::Comparable(Box::new(self))
    }
    pub fn sum(self) -> Expr {
        Expr::Func(Func::Sum, vec![self])
    }
    pub fn min(self) -> Expr {
        Expr::Func(Func::Min, vec![self])
    }
    pub fn coalesce(self, other: Expr) -> Expr {
        Expr::Func(Func::Coalesce, vec![self, other])
    }
}

impl std::ops::Add for Expr {
    type Output = Expr;
    fn add(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Add, rhs)
    }
}

impl std::ops::Sub for Expr {
    type Output = Expr;
    fn sub(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Sub, rhs)
    }
}

impl std::ops::Mul for Expr {
    type Output = Expr;
    fn mul(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Mul, rhs)
    }
}

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}
