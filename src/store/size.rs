//! How big the database is: the file's bytes (SQLite), the rows per table, and the free space
//! left on its disk. For `/metrics`, the dashboard, and monitord's low-disk warning.

use serde::Serialize;

use super::statements as st;
use super::{ConnExt, Store, StoreError};

/// The tables whose rows are counted: the ones that grow.
pub const COUNTED: &[&str] = &[
    "runs",
    "notifications",
    "checks",
    "jobs",
    "perf_series",
    "perf_raw",
    "perf_days",
    "run_transcripts",
];

/// The database's size as one reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Size {
    /// The SQLite file and its write-ahead log, in bytes (None for a server database).
    pub bytes: Option<u64>,
    pub rows: Vec<(String, u64)>,
}

impl Store {
    /// The SQLite file's bytes with its `-wal` (None for a server database).
    pub fn database_bytes(&self) -> Option<u64> {
        let path = self.sqlite_path.as_ref()?;
        let main = std::fs::metadata(path).ok()?.len();
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        Some(main + std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0))
    }

    /// Free bytes for an unprivileged user on the SQLite file's file system.
    pub fn free_disk_bytes(&self) -> Option<u64> {
        let path = self.sqlite_path.as_ref()?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let s = nix::sys::statvfs::statvfs(dir.unwrap_or(std::path::Path::new("."))).ok()?;
        Some((s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64))
    }

    /// The size now: bytes, and rows per counted table (one COUNT each).
    pub fn size(&self) -> Result<Size, StoreError> {
        let rows = self.read(|c| {
            COUNTED
                .iter()
                .map(|t| {
                    let n = c
                        .query_one(st::table_rows(t))?
                        .map(|r| r.int("n"))
                        .transpose()?
                        .unwrap_or(0);
                    Ok((t.to_string(), n.max(0) as u64))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        Ok(Size {
            bytes: self.database_bytes(),
            rows,
        })
    }
}
