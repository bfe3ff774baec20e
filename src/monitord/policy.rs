//! The correction loop's decision, as one pure function ([`decide`]) of what monitord knows
//! about a result ([`Facts`], each read only when the decision gets to it) and the time:
//! record it, check it again soon (a soft problem), decide later (a read it needs failed:
//! nothing on a guess), leave it to its parents or to a downtime, hold the fix back (the
//! guard), or run the fix. monitord reads the facts from the store and carries the answer out
//! (`runner.rs`); the tests answer the facts themselves, with no store and no clock.
//!
//! What the result then does to the check (soft or hard, which message) is the store's state
//! machine's (`store::checks::advance`), decided in the run's transaction with the parents
//! (`store::depends`) and the sites (`store::quorum`); the guard's rule is
//! `store::guard::fix_guard`. All of them are pure, and take the time as an argument.
//!
//! The order: a result that is not a failure is recorded; a soft problem is checked again
//! soon; without a fix the result is only recorded; under a quorum only the first site that
//! sees the problem goes on; behind a parent that is down, or one whose word is awaited,
//! nothing is fixed; in a downtime nothing is fixed; then the guard decides.

use crate::store::depends::Reach;
use crate::store::guard::{FixGuard, fix_guard};

/// A read's answer, or why it failed.
pub type Read<T> = Result<T, String>;

/// What the decision may ask about a failing result; each is asked only when needed.
pub trait Facts {
    /// A problem that is not hard yet: fewer results that are not OK than the retries.
    fn soft(&self) -> bool;
    /// Under a quorum: whether this site fixes (None: no quorum).
    fn quorum_fixer(&self) -> Option<Read<bool>>;
    /// How the check stands behind its parents.
    fn reach(&self) -> Read<Reach>;
    fn in_downtime(&self) -> Read<bool>;
    /// Whether the check's problem is acknowledged (a check not there yet is not).
    fn acked(&self) -> Read<bool>;
    /// The guard's count: fixes in its window, and the latest's start.
    fn fixes(&self) -> Read<(i64, Option<i64>)>;
}

/// What the decision needs of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub has_fix: bool,
    pub guard_max_fixes: i64,
    pub guard_backoff_ms: i64,
}

impl Rules {
    pub fn of(s: &crate::store::Schedule) -> Rules {
        Rules {
            has_fix: s.fix_script.is_some(),
            guard_max_fixes: s.guard_max_fixes,
            guard_backoff_ms: s.guard_backoff_ms,
        }
    }
}

/// What monitord does with a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Record it; the store's state machine does the rest.
    Record,
    /// Not hard yet: record it, and check again after the schedule's retry interval.
    Soft,
    /// A read the decision needs failed (`what`): record it as a retry, fix and tell nothing.
    Later { what: &'static str, error: String },
    /// Behind its parents (unreachable, or waiting for their word): record it, no fix.
    Behind(Reach),
    /// In a downtime: record it, no fix.
    Downtime,
    /// The guard holds the fix back: record it, and say so unless acknowledged (the store
    /// tells each of the guard's messages once per incident, in the run's transaction).
    Held {
        guard: FixGuard,
        /// Fixes in the guard's window.
        fixes: i64,
        acked: bool,
    },
    /// Run the fix (an acknowledged problem is still fixed, but its messages are not sent).
    Fix { acked: bool },
}

/// The decision for a result (`failing`: neither OK nor cancelled) of a job whose schedule
/// read as `rules` (None: an ad-hoc job), at `now`.
pub fn decide(failing: bool, rules: Read<Option<Rules>>, facts: &dyn Facts, now: i64) -> Decision {
    let later = |what: &'static str, error: String| Decision::Later { what, error };
    let rules = match rules {
        Ok(Some(r)) => r,
        Ok(None) => return Decision::Record,
        Err(e) => return later("the job's schedule", e),
    };
    if !failing {
        return Decision::Record;
    }
    if facts.soft() {
        return Decision::Soft;
    }
    if !rules.has_fix {
        return Decision::Record;
    }
    match facts.quorum_fixer() {
        None | Some(Ok(true)) => {}
        Some(Ok(false)) => return Decision::Record,
        Some(Err(e)) => return later("the other sites' results", e),
    }
    match facts.reach() {
        Ok(Reach::Reachable) => {}
        Ok(r) => return Decision::Behind(r),
        Err(e) => return later("the check's parents", e),
    }
    match facts.in_downtime() {
        Ok(false) => {}
        Ok(true) => return Decision::Downtime,
        Err(e) => return later("downtimes", e),
    }
    let acked = match facts.acked() {
        Ok(a) => a,
        Err(e) => return later("the check", e),
    };
    let (fixes, last) = match facts.fixes() {
        Ok(f) => f,
        Err(e) => return later("the fixes in the guard's window", e),
    };
    match fix_guard(
        rules.guard_max_fixes,
        rules.guard_backoff_ms,
        fixes,
        last,
        now,
    ) {
        FixGuard::Allowed => Decision::Fix { acked },
        guard => Decision::Held {
            guard,
            fixes,
            acked,
        },
    }
}
