//! Whether monitord keeps up, said out loud: the jobs it ran and the schedule runs skipped
//! (their previous job still queued) are counted, a summary goes to the log at info once a
//! minute (each run's own line is at debug), and the queue's lag (how long the oldest due job
//! has waited) is read each pass for `/healthz` and `/metrics`, with a warning at most once a
//! minute while it is over `[monitord] max_lag`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::health::Health;
use crate::store::{Status, Store, now_ms};

/// How often the summary and the warning may come.
const EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Progress {
    ran: AtomicU64,
    not_ok: AtomicU64,
    skipped: AtomicU64,
    /// When the summary and the warning were last logged.
    last: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl Progress {
    /// A job ran to its end with this status.
    pub fn ran(&self, status: Status) {
        self.ran.fetch_add(1, Ordering::Relaxed);
        if status != Status::Ok {
            self.not_ok.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A schedule's runs that were not queued: the previous job of the check still waits.
    pub fn skipped(&self, n: usize) {
        self.skipped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reads the queue's lag into `health`, warns while it is over `max_lag`, and logs the
    /// minute's summary when a minute has passed.
    pub fn report(&self, store: &Store, health: &Health, max_lag: Duration) {
        let max_ms = u64::try_from(max_lag.as_millis()).unwrap_or(u64::MAX);
        let lag = match store.queue_lag(now_ms()) {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("cannot read the queue's lag: {e}");
                return;
            }
        };
        health.lag(lag, max_ms);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let due = |t: Option<Instant>| t.is_none_or(|t| t.elapsed() >= EVERY);
        if u64::try_from(lag).unwrap_or(0) > max_ms && due(last.1) {
            last.1 = Some(Instant::now());
            warn!(
                lag_s = lag / 1000,
                skipped = self.skipped.load(Ordering::Relaxed),
                "falling behind: the oldest due job has waited {} s (more than [monitord] max_lag = {} s); checks whose previous job still waits skip their runs",
                lag / 1000,
                max_ms / 1000
            );
        }
        if last.0.is_none() {
            last.0 = Some(Instant::now());
        } else if due(last.0) {
            last.0 = Some(Instant::now());
            let ran = self.ran.swap(0, Ordering::Relaxed);
            let not_ok = self.not_ok.swap(0, Ordering::Relaxed);
            let skipped = self.skipped.swap(0, Ordering::Relaxed);
            if ran + skipped > 0 {
                info!(
                    ran,
                    not_ok,
                    skipped,
                    lag_s = lag / 1000,
                    "the last minute: {ran} jobs ran ({not_ok} not OK), {skipped} schedule runs skipped (their previous job still queued)"
                );
            }
        }
    }
}
