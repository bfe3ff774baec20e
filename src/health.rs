//! Whether the daemon is well, as `/healthz` tells it: monitord's loop beats here on every
//! pass and says whether its last database write went through. `/healthz` reads only this,
//! so it answers at once even when the database or every worker is busy.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Shared by monitord (which writes) and the web server (which reads).
#[derive(Debug)]
pub struct Health {
    /// When this value was made; beats are kept as milliseconds since then.
    epoch: Instant,
    /// Set while monitord's loop runs (the web page alone expects no beats).
    looping: AtomicBool,
    stopping: AtomicBool,
    last_beat_ms: AtomicU64,
    stall_after_ms: AtomicU64,
    db_error: Mutex<Option<String>>,
    /// How long the oldest due job has waited (ms), as monitord last read it, and how long
    /// may be waited before `/healthz` says the node is behind.
    lag_ms: AtomicU64,
    max_lag_ms: AtomicU64,
    /// How late this node's jobs started against their due time.
    pub lateness: Lateness,
}

/// The upper bounds (ms) of the start-lateness histogram's buckets; one more counts the rest.
pub const LATENESS_BOUNDS_MS: [u64; 14] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 60_000,
];

/// A histogram of how late jobs started (Icinga's `check_latency`): counts per bucket and
/// the sum, each an atomic, so that recording costs no lock.
#[derive(Debug, Default)]
pub struct Lateness {
    buckets: [AtomicU64; LATENESS_BOUNDS_MS.len() + 1],
    sum_ms: AtomicU64,
}

impl Lateness {
    /// A job started `ms` after it was due (0 when on time or early).
    pub fn record(&self, ms: u64) {
        let i = LATENESS_BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENESS_BOUNDS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The counts per bucket (not cumulative; the last is past every bound) and the sum in ms.
    pub fn read(&self) -> ([u64; LATENESS_BOUNDS_MS.len() + 1], u64) {
        (
            std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            self.sum_ms.load(Ordering::Relaxed),
        )
    }
}

impl Default for Health {
    fn default() -> Self {
        Health {
            epoch: Instant::now(),
            looping: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            last_beat_ms: AtomicU64::new(0),
            stall_after_ms: AtomicU64::new(u64::MAX),
            db_error: Mutex::new(None),
            lag_ms: AtomicU64::new(0),
            max_lag_ms: AtomicU64::new(u64::MAX),
            lateness: Lateness::default(),
        }
    }
}

impl Health {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// monitord's loop made a pass; it counts as stalled after `stall_after` without one.
    pub fn beat(&self, stall_after: Duration) {
        self.last_beat_ms.store(self.now_ms(), Ordering::SeqCst);
        let ms = u64::try_from(stall_after.as_millis()).unwrap_or(u64::MAX);
        self.stall_after_ms.store(ms, Ordering::SeqCst);
        self.looping.store(true, Ordering::SeqCst);
    }

    /// The outcome of monitord's last database write (its claim or its lease renewal). Answers
    /// whether that changed whether the database works (for logging the change once).
    pub fn database(&self, result: Result<(), String>) -> bool {
        let mut e = self.db_error.lock().unwrap_or_else(|p| p.into_inner());
        let changed = e.is_some() != result.is_err();
        *e = result.err();
        changed
    }

    /// How long the oldest due job has waited (ms), and the most `/healthz` lets pass.
    pub fn lag(&self, lag_ms: i64, max_lag_ms: u64) {
        self.lag_ms
            .store(u64::try_from(lag_ms).unwrap_or(0), Ordering::SeqCst);
        self.max_lag_ms.store(max_lag_ms, Ordering::SeqCst);
    }

    /// The last queue lag read, in seconds.
    pub fn lag_seconds(&self) -> f64 {
        self.lag_ms.load(Ordering::SeqCst) as f64 / 1000.0
    }

    /// monitord is shutting down: a load balancer should stop sending work here.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// None when well; otherwise why not, in one line.
    pub fn problem(&self) -> Option<String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Some("stopping".into());
        }
        if let Some(e) = &*self.db_error.lock().unwrap_or_else(|p| p.into_inner()) {
            return Some(format!("database cannot be written: {e}"));
        }
        let (lag, max) = (
            self.lag_ms.load(Ordering::SeqCst),
            self.max_lag_ms.load(Ordering::SeqCst),
        );
        if lag > max {
            return Some(format!(
                "behind: the oldest due job has waited {} s ([monitord] max_lag = {} s)",
                lag / 1000,
                max / 1000
            ));
        }
        if self.looping.load(Ordering::SeqCst) {
            let since = self
                .now_ms()
                .saturating_sub(self.last_beat_ms.load(Ordering::SeqCst));
            if since > self.stall_after_ms.load(Ordering::SeqCst) {
                return Some(format!(
                    "monitord's loop has made no pass for {} s",
                    since / 1000
                ));
            }
        }
        None
    }
}
