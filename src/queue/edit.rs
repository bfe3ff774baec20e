//! Changing a schedule in place (`hostler schedule edit ID`, `POST /api/schedules/ID`): what is
//! given replaces what was; each argument given is set (the others stay; `unset_args` drops
//! one). The script, the target, the check's name and the sites stay: its checks keep their
//! state, acknowledgement and "failing since".

use super::{Args, SubmitError, When, commands_allowed, invalid, timing};
use crate::store::{NewSchedule, Schedule, Store, Timing, now_ms};

/// What to change; None (or empty) leaves it as it is.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub when: Option<When>,
    pub args: Args,
    pub unset_args: Vec<String>,
    pub fix: Option<String>,
    /// Drop the fix: the schedule only checks.
    pub no_fix: bool,
    pub fix_args: Args,
    pub priority: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub max_attempts: Option<i64>,
    pub guard_max_fixes: Option<i64>,
    pub guard_window_ms: Option<i64>,
    pub guard_backoff_ms: Option<i64>,
    pub retries: Option<i64>,
    pub retry_every_ms: Option<i64>,
    /// Whether the requester may give an argument a script declares `(command)`.
    pub may_give_commands: bool,
}

impl Edit {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.when.is_none()
            && self.args.is_empty()
            && self.unset_args.is_empty()
            && self.fix.is_none()
            && !self.no_fix
            && self.fix_args.is_empty()
            && self.priority.is_none()
            && self.timeout_ms.is_none()
            && self.max_attempts.is_none()
            && self.guard_max_fixes.is_none()
            && self.guard_window_ms.is_none()
            && self.guard_backoff_ms.is_none()
            && self.retries.is_none()
            && self.retry_every_ms.is_none()
    }
}

/// A schedule's stored arguments (a JSON object) as NAME=VALUE pairs.
fn stored_args(json: Option<&str>) -> Args {
    let map: serde_json::Map<String, serde_json::Value> = json
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect()
}

/// Changes schedule `id` as `e` says, and returns it as it now is.
pub fn edit(store: &Store, id: i64, e: &Edit) -> Result<Schedule, SubmitError> {
    if e.is_empty() {
        return Err(invalid(
            "nothing to change: give --every, --cron, --at, --arg, --fix, --retries ...",
        ));
    }
    let s = store.schedule(id)?;
    if e.fix.is_some() && e.no_fix {
        return Err(invalid("give --fix or --no-fix, not both"));
    }
    if let Some(r) = e.retries
        && !(1..=100).contains(&r)
    {
        return Err(invalid("retries must be 1 to 100"));
    }
    if e.retry_every_ms
        .is_some_and(|ms| !(1000..=super::MAX_INTERVAL_MS).contains(&ms))
    {
        return Err(invalid("the retry interval must be at least one second"));
    }
    let mut args = stored_args(s.args.as_deref());
    for k in &e.unset_args {
        if args.remove(k).is_none() {
            return Err(invalid(format!("schedule {id} has no argument {k:?}")));
        }
    }
    args.extend(e.args.clone());
    let fix_script = match (&e.fix, e.no_fix) {
        (Some(f), _) => Some(f.clone()),
        (None, true) => None,
        (None, false) => s.fix_script.clone(),
    };
    let mut fix_args = stored_args(s.fix_args.as_deref());
    fix_args.extend(e.fix_args.clone());
    if fix_script.is_none() {
        if !e.fix_args.is_empty() {
            return Err(invalid("--fix-arg needs a fix (--fix SCRIPT)"));
        }
        fix_args.clear();
    }
    commands_allowed(&store.script(&s.script)?, &e.args, e.may_give_commands)?;
    if let Some(f) = &fix_script {
        commands_allowed(&store.script(f)?, &e.fix_args, e.may_give_commands)?;
    }
    let now = now_ms();
    let (timing, next_due) = match &e.when {
        None => (s.timing.clone(), s.next_due.unwrap_or(now)),
        Some(When::Now) => {
            return Err(invalid(
                "a schedule keeps a timing: --every, --cron or --at (to run it now: hostler run)",
            ));
        }
        Some(When::At(at)) if !(now..=now.saturating_add(super::MAX_INTERVAL_MS)).contains(at) => {
            return Err(invalid(
                "the time must be between now and ten years from now",
            ));
        }
        Some(When::At(at)) => (Timing::At(*at), *at),
        Some(When::Every(ms)) if !(1000..=super::MAX_INTERVAL_MS).contains(ms) => {
            return Err(invalid("the interval must be one second to ten years"));
        }
        // The new interval counts from now: the next run is due at once.
        Some(When::Every(ms)) => (Timing::Every(*ms), now),
        Some(When::Cron(c)) => {
            let first = timing::cron_next(c, now).map_err(SubmitError::Invalid)?;
            (Timing::Cron(c.clone()), first)
        }
    };
    let new = NewSchedule {
        script: s.script.clone(),
        fix_script,
        host: s.host.clone(),
        tag: s.tag.clone(),
        site: s.site.clone(),
        priority: e.priority.unwrap_or(s.priority),
        timing,
        timeout_ms: e.timeout_ms.or(s.timeout_ms),
        max_attempts: e.max_attempts.unwrap_or(s.max_attempts).max(1),
        guard_max_fixes: e.guard_max_fixes.unwrap_or(s.guard_max_fixes).max(0),
        guard_window_ms: e.guard_window_ms.unwrap_or(s.guard_window_ms),
        guard_backoff_ms: e.guard_backoff_ms.unwrap_or(s.guard_backoff_ms),
        allow_duplicate: s.allow_duplicate,
        next_due,
        retries: e.retries.unwrap_or(s.retries),
        retry_every_ms: e.retry_every_ms.or(s.retry_every_ms),
        name: s.name.clone(),
        args: super::args_json(&args),
        fix_args: super::args_json(&fix_args),
        sites: s.sites.clone(),
        quorum: s.quorum,
    };
    store.update_schedule(id, &new)?;
    Ok(store.schedule(id)?)
}
