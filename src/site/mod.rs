//! Configuration as code: the site file (hosts, checks and rules by tag, dependencies,
//! heartbeats, a scripts folder) read ([`file`](mod@file)), compared with the database into a plan of
//! changes ([`plan`]), carried out all or nothing ([`crate::store::site`]), and written back
//! from the database ([`export`]). `hostler apply` and `hostler export` are its commands.

pub mod export;
pub mod file;
pub mod plan;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// A file that does not parse: its path, the line, what is wrong.
    #[error("{path}{}: {msg}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    File {
        path: String,
        line: Option<usize>,
        msg: String,
    },
    #[error("{0}: {1}")]
    Read(String, String),
    /// A file that parses but cannot be applied: a duplicate, a missing script or host, a
    /// cycle, a bad value.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Milliseconds as the site file writes a duration: the largest whole unit (`1d`, `2h`,
/// `30s`, `1500ms`).
pub fn duration_text(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}
