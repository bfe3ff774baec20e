//! When a schedule is due next. Missed runs are coalesced: after downtime an interval or cron
//! schedule fires once, then continues from now.

use crate::store::Timing;

/// The next due time after `now` and after `seen_due`, for a schedule that was due at
/// `seen_due` (or is fired ahead of it); None for a one-shot schedule, which is then disabled.
pub fn next_due(timing: &Timing, seen_due: i64, now: i64) -> Result<Option<i64>, String> {
    match timing {
        Timing::At(_) => Ok(None),
        Timing::Every(ms) => {
            let ms = (*ms).max(1000);
            // Skip every occurrence already missed: one run now, the next in the future.
            let missed = now.saturating_sub(seen_due).max(0) / ms;
            (missed + 1)
                .checked_mul(ms)
                .and_then(|d| seen_due.checked_add(d))
                .map(Some)
                .ok_or_else(|| format!("the interval of {ms} ms runs past the end of time"))
        }
        // After both: a schedule fired ahead of its due time must not find that time again.
        Timing::Cron(expr) => cron_next(expr, now.max(seen_due)).map(Some),
    }
}

/// A timing as the CLI, the page and the API show it: `once at 2026-12-01 04:00:00`,
/// `every 5m`, `cron 0 3 * * *`.
pub fn describe(t: &Timing) -> String {
    match t {
        Timing::At(at) => format!("once at {}", crate::when::local(*at)),
        Timing::Every(ms) => format!(
            "every {}",
            crate::when::span(std::time::Duration::from_millis((*ms).max(0) as u64))
        ),
        Timing::Cron(c) => format!("cron {c}"),
    }
}

pub use crate::when::cron_next;
