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
