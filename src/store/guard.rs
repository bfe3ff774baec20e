//! The fix guard: how many fixes a correction loop may run on a host in a window, waiting
//! twice as long after each. [`fix_guard`] decides (a pure function the tests call directly);
//! [`Store::guard_state`] shows where a check's guard stands, and [`Store::reset_guard`] lets an
//! operator clear it (`hostler guard reset HOST CHECK`).

use serde::Serialize;

use super::{Check, Host, Schedule, Store, StoreError, Target, now_ms};

/// What the guard says about running a fix now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixGuard {
    /// Run it.
    Allowed,
    /// `fixes` already ran in the window, the most allowed: give up and escalate.
    Exhausted { fixes: i64 },
    /// The backoff after the last fix runs until `until` (epoch ms): hold it back.
    Backoff { until: i64 },
}

/// May a fix run now? `fixes` ran in the guard's window, the last at `last_fix`; the backoff
/// doubles with each fix in the window. A pure function: the tests call it directly.
pub fn fix_guard(
    max_fixes: i64,
    backoff_ms: i64,
    fixes: i64,
    last_fix: Option<i64>,
    now: i64,
) -> FixGuard {
    if fixes >= max_fixes {
        return FixGuard::Exhausted { fixes };
    }
    if let (true, Some(last)) = (fixes > 0, last_fix) {
        let until = last.saturating_add(backoff_ms.saturating_mul(1 << (fixes - 1).clamp(0, 20)));
        if now < until {
            return FixGuard::Backoff { until };
        }
    }
    FixGuard::Allowed
}

/// Where a check's guard stands: the fix, how many ran in the window, and when the next may.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardState {
    pub schedule_id: i64,
    pub fix_script: String,
    pub fixes: i64,
    pub max_fixes: i64,
    pub window_ms: i64,
    /// When a fix may run next (None: now).
    pub next_allowed: Option<i64>,
    /// The fixes in the window are used up: the guard has given up until some age out.
    pub exhausted: bool,
}

/// The setting that holds when a check's guard was last reset.
fn reset_key(host: Option<&str>, script: &str) -> String {
    format!("guard_reset:{}/{script}", host.unwrap_or("-"))
}

impl Store {
    /// The fixes a schedule ran on a host in its guard's window (since the last reset), and
    /// when the latest began.
    pub fn fixes_in_window(
        &self,
        sched: &Schedule,
        host: Option<&str>,
        fix_script: &str,
        now: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let reset = self
            .setting(&reset_key(host, sched.check()))?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let since = now.saturating_sub(sched.guard_window_ms).max(reset);
        self.count_runs(sched.id, host, fix_script, since)
    }

    /// The guard of a host's check of a script: that of the first schedule with a fix that runs
    /// it on the host (None: no fix, no guard).
    pub fn guard_state(
        &self,
        host: Option<&str>,
        script: &str,
    ) -> Result<Option<GuardState>, StoreError> {
        self.guard_state_in(host, script, &self.hosts()?, &self.schedules()?)
    }

    /// The guards of many checks, in their order, reading hosts and schedules once.
    pub fn guard_states(&self, checks: &[Check]) -> Result<Vec<Option<GuardState>>, StoreError> {
        let (hosts, schedules) = (self.hosts()?, self.schedules()?);
        checks
            .iter()
            .map(|c| self.guard_state_in(c.host.as_deref(), &c.script, &hosts, &schedules))
            .collect()
    }

    fn guard_state_in(
        &self,
        host: Option<&str>,
        script: &str,
        hosts: &[Host],
        schedules: &[Schedule],
    ) -> Result<Option<GuardState>, StoreError> {
        let sched = schedules.iter().find(|s| {
            s.check() == script
                && s.fix_script.is_some()
                && Target::of(s)
                    .resolve(hosts)
                    .iter()
                    .any(|h| h.as_deref() == host)
        });
        let Some(sched) = sched else {
            return Ok(None);
        };
        let fix = sched.fix_script.clone().unwrap_or_default();
        let now = now_ms();
        let (fixes, last) = self.fixes_in_window(sched, host, &fix, now)?;
        let (next_allowed, exhausted) = match fix_guard(
            sched.guard_max_fixes,
            sched.guard_backoff_ms,
            fixes,
            last,
            now,
        ) {
            FixGuard::Allowed => (None, false),
            FixGuard::Backoff { until } => (Some(until), false),
            // By the latest fix's start plus the window every fix in it has aged out: the
            // bound shown (one may age out sooner).
            FixGuard::Exhausted { .. } => {
                (last.map(|l| l.saturating_add(sched.guard_window_ms)), true)
            }
        };
        Ok(Some(GuardState {
            schedule_id: sched.id,
            fix_script: fix,
            fixes,
            max_fixes: sched.guard_max_fixes,
            window_ms: sched.guard_window_ms,
            next_allowed,
            exhausted,
        }))
    }

    /// Clears a check's guard: the fixes run so far no longer count.
    pub fn reset_guard(&self, host: Option<&str>, script: &str) -> Result<(), StoreError> {
        self.check(host, script)?;
        self.set_setting(&reset_key(host, script), &now_ms().to_string())
    }
}
