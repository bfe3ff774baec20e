//! The correction policy, in one place: every rule that decides what happens to a check is a
//! pure function of (the check's state, the event, the time), and each is reached from here.
//!
//! - [`advance`]: a result moves the check: soft or hard, since when, flapping, and the one
//!   message the change is worth (`store::checks`, run in the run's transaction);
//! - [`judge`] and [`cut_off`]: how a failing check stands behind its parents: unreachable,
//!   waiting for their word, or reachable (`store::depends`);
//! - [`view`]: under a quorum, the sites' latest results taken together (`store::quorum`);
//! - [`fix_guard`]: whether the guard lets a fix run now (`store::guard`);
//! - [`decide`] (here): what monitord does with a result: record it, check it again soon,
//!   decide later (a read it needs failed: nothing on a guess), leave it to its parents or to
//!   a downtime, hold the fix back, or run the fix.
//!
//! [`decide`] asks for the facts it needs ([`Facts`]), each only when it gets to it; monitord
//! reads them from the store and carries the answer out (`monitord/runner.rs`), and the tests
//! answer them themselves, with no store and no clock. The store then judges the run in its
//! transaction with [`advance`], [`judge`] and [`view`], and keys the messages by event.
//!
//! The order of [`decide`]: a result that is not a failure is recorded; a soft problem is
//! checked again soon; without a fix the result is only recorded; under a quorum only the
//! first site that sees the problem goes on; behind a parent that is down, or one whose word
//! is awaited, nothing is fixed; in a downtime nothing is fixed; then the guard decides.

pub use super::checks::{Event, Next, Observation, Policy, advance};
pub use super::depends::{ParentState, Reach, Settle, cut_off, judge};
pub use super::guard::{FixGuard, fix_guard};
pub use super::quorum::{SiteResult, Sites, View, view};

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
    pub fn of(s: &super::Schedule) -> Rules {
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
