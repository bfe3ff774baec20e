//! The sectioned SQL abstraction (DPythOS's idea): statements are assembled from named,
//! reusable [`Section`]s and rendered for a [`Dialect`].
//!
//! This module owns every piece of SQL text hostler produces. The store builds its statements
//! here, and drivers only execute [`Rendered`] statements. A rule such as "due jobs whose host is
//! not busy" is written once as a section and combined wherever it is needed, so a join or a
//! condition never exists twice as text.
//!
//! Invariants:
//! - values reach the database as bound parameters unless a caller asks for an inline literal,
//!   and inline literals are escaped by the dialect (`N'..'` on SQL Server, backslashes on MySQL);
//! - every identifier is quoted by the dialect, so a column named like a keyword is harmless;
//! - rendering never panics: what a dialect cannot express is a [`RenderError`].

mod ddl;
mod dialect;
mod expr;
mod render;
mod statement;

pub use ddl::{Column, ColumnType, Index, Schema, SchemaError, Table};
pub use dialect::Dialect;
pub use expr::{BinOp, Expr, Func, Value, col, lit, now, param, qcol};
pub use render::{Rendered, Returns};
pub use statement::{
    Delete, Insert, InsertRows, Join, JoinKind, Lock, Order, Section, Select, Statement, Update,
    Upsert,
};

/// A statement that a dialect cannot express, or a value it cannot hold.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    #[error("{dialect} cannot express {what}")]
    Unsupported { dialect: Dialect, what: String },
    #[error("{dialect} cannot hold the value {what}")]
    BadValue { dialect: Dialect, what: String },
}
