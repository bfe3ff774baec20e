//! Housekeeping: what `[history]` keeps, and for how long. One pass deletes what has expired
//! (runs, transcripts, notifications, raw points, hourly trends) in batches of a few hundred
//! rows, each its own short transaction, so the queue never waits long for the write lock;
//! then SQLite gives free pages back to the file system (`auto_vacuum = INCREMENTAL`) or
//! reuses them. There is nothing to roll up: an hour's trend is kept up to date as its points
//! are recorded (`store::series`).

use serde::Serialize;

use super::statements as st;
use super::{ConnExt, Store, StoreError};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// How long each kind of row is kept, in milliseconds, and the batch size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    pub keep_ms: i64,
    pub keep_ok_ms: i64,
    pub keep_transcripts_ms: i64,
    pub keep_events_ms: i64,
    pub keep_points_ms: i64,
    pub keep_trends_ms: i64,
    pub batch: u64,
}

impl Retention {
    pub fn from_config(h: &crate::config::History) -> Retention {
        let ms = |days: f64, unit: i64| (days.max(0.0) * unit as f64) as i64;
        Retention {
            keep_ms: ms(h.keep_days, DAY),
            keep_ok_ms: ms(h.keep_ok_hours, HOUR),
            keep_transcripts_ms: ms(h.keep_transcripts_days, DAY),
            keep_events_ms: ms(h.keep_events_days, DAY),
            keep_points_ms: ms(h.keep_points_days, DAY),
            keep_trends_ms: ms(h.keep_trends_days, DAY),
            batch: h.batch.clamp(1, 100_000) as u64,
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention::from_config(&crate::config::History::default())
    }
}

/// What one pass did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pruned {
    pub runs: u64,
    pub transcripts: u64,
    pub notifications: u64,
    /// Hours of raw points of a series (their trends stay).
    pub points: u64,
    /// Days of hourly trends of a series.
    pub trends: u64,
    /// Transactions the pass took, and the longest of them (ms): how long the queue could
    /// have waited for the write lock.
    pub batches: u64,
    pub longest_batch_ms: u64,
    /// Pages given back to the file system (SQLite with incremental auto-vacuum).
    pub pages_freed: u64,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        self.runs + self.transcripts + self.notifications + self.points + self.trends == 0
    }
}

impl Store {
    /// One write transaction of a pass, timed; `pause` runs after it (the daemon lets the
    /// queue in between batches).
    fn batch<T>(
        &self,
        done: &mut Pruned,
        pause: &dyn Fn(),
        f: impl FnOnce(&mut dyn super::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let start = std::time::Instant::now();
        let out = self.write(f)?;
        done.batches += 1;
        done.longest_batch_ms = done
            .longest_batch_ms
            .max(start.elapsed().as_millis() as u64);
        pause();
        Ok(out)
    }

    /// Deletes, batch by batch, the rows that `select` picks, until a batch comes back short.
    fn delete_batches(
        &self,
        table: &'static str,
        select: &dyn Fn() -> crate::sql::Select,
        batch: u64,
        done: &mut Pruned,
        pause: &dyn Fn(),
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self.batch(done, pause, |c| c.exec(st::delete_ids(table, select())))?;
            total += n;
            if n < batch {
                return Ok(total);
            }
        }
    }

    /// One housekeeping pass at `now`: deletes what `r` no longer keeps. With `dry`, only counts what it would delete.
    pub fn prune(
        &self,
        r: &Retention,
        now: i64,
        dry: bool,
        pause: &dyn Fn(),
    ) -> Result<Pruned, StoreError> {
        let mut done = Pruned::default();
        let (ok_before, all_before) = (now - r.keep_ok_ms, now - r.keep_ms);
        let transcripts_before = now - r.keep_transcripts_ms;
        let events_before = now - r.keep_events_ms;
        // Whole hours: an hour's raw points are one row.
        let points_before = (now - r.keep_points_ms).div_euclid(HOUR) * HOUR;
        // Whole days: a day's trends are one row, deleted once its last hour started before
        // the hours kept (as each hour would be on its own).
        let trends_before = now - r.keep_trends_ms - 23 * HOUR;
        let count = |s: crate::sql::Statement| -> Result<u64, StoreError> {
            Ok(self
                .read(|c| c.query_one(s.clone()))?
                .map(|row| row.int("n"))
                .transpose()?
                .unwrap_or(0) as u64)
        };
        if dry {
            done.runs = count(st::runs_expired_count(ok_before, all_before))?;
            done.transcripts = count(st::count_before(
                "run_transcripts",
                "started_at",
                transcripts_before,
            ))?;
            done.notifications = count(st::count_before(
                "notifications",
                "created_at",
                events_before,
            ))?;
            done.points = count(st::count_before("perf_raw", "hour", points_before))?;
            done.trends = count(st::count_before("perf_days", "day", trends_before))?;
            return Ok(done);
        }
        let b = r.batch;
        // Runs go with their transcripts (kept longer than their runs, when so configured).
        loop {
            let due = self.read(|c| {
                c.query(crate::sql::Statement::from(st::runs_expired(
                    ok_before, all_before, b,
                )))
            })?;
            let ids = due
                .iter()
                .map(|r| r.int("id"))
                .collect::<Result<Vec<_>, _>>()?;
            let n = ids.len() as u64;
            if n > 0 {
                self.batch(&mut done, pause, |c| {
                    c.exec(st::delete_in("run_transcripts", "run_id", ids.clone()))?;
                    c.exec(st::delete_in("runs", "id", ids))
                })?;
            }
            done.runs += n;
            if n < b {
                break;
            }
        }
        done.transcripts = self.delete_batches(
            "run_transcripts",
            &|| st::rows_before("run_transcripts", "started_at", transcripts_before, b),
            b,
            &mut done,
            pause,
        )?;
        done.notifications = self.delete_batches(
            "notifications",
            &|| st::notifications_expired(events_before, b),
            b,
            &mut done,
            pause,
        )?;
        done.points = self.delete_batches(
            "perf_raw",
            &|| st::rows_before("perf_raw", "hour", points_before, b),
            b,
            &mut done,
            pause,
        )?;
        done.trends = self.delete_batches(
            "perf_days",
            &|| st::rows_before("perf_days", "day", trends_before, b),
            b,
            &mut done,
            pause,
        )?;
        done.pages_freed = self.give_back_pages(&mut done, pause)?;
        Ok(done)
    }

    /// SQLite in incremental auto-vacuum: gives the file's free pages back to the file
    /// system, 1,000 pages (about 4 MiB) a transaction; other databases manage their own
    /// space. Returns the pages freed.
    fn give_back_pages(&self, done: &mut Pruned, pause: &dyn Fn()) -> Result<u64, StoreError> {
        if self.dialect() != crate::sql::Dialect::Sqlite {
            return Ok(0);
        }
        let pragma = |s: &Store, sql: &str| -> Result<u64, StoreError> {
            let r = s.raw(sql, false)?;
            Ok(r.rows
                .first()
                .and_then(|row| row.first())
                .and_then(|v| v.to_text())
                .and_then(|t| t.parse().ok())
                .unwrap_or(0))
        };
        // A file made before incremental auto-vacuum reuses its free pages instead.
        if pragma(self, "PRAGMA auto_vacuum")? != 2 {
            return Ok(0);
        }
        let first = pragma(self, "PRAGMA freelist_count")?;
        let mut left = first;
        // At most a few GiB a pass; the next pass goes on.
        for _ in 0..1_000 {
            if left == 0 {
                break;
            }
            let start = std::time::Instant::now();
            self.raw("PRAGMA incremental_vacuum(1000)", false)?;
            done.batches += 1;
            done.longest_batch_ms = done
                .longest_batch_ms
                .max(start.elapsed().as_millis() as u64);
            pause();
            let now = pragma(self, "PRAGMA freelist_count")?;
            if now >= left {
                break;
            }
            left = now;
        }
        Ok(first.saturating_sub(left))
    }
}
