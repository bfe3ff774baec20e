//! The plan: what an apply changes, one line per object (`+ host web3`, `~ check check_http
//! on tag web: every 1m -> 30s`, `- host old1`), worked out from the site file and the
//! database before anything is written. A file that cannot be applied (a duplicate, a script
//! or host that is nowhere, a dependency cycle, a bad value) is refused here, whole.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::file::{CheckDef, HostDef, Site};
use super::{SiteError, duration_text};
use crate::store::heartbeats::{Heartbeat, NewHeartbeat};
use crate::store::recurring::NewRecurring;
use crate::store::site::SiteOp;
use crate::store::{
    Dependency, Host, Method, NewDependency, NewHost, NewSchedule, Schedule, Secret, Store, Timing,
};

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "+")]
    Add,
    #[serde(rename = "~")]
    Change,
    #[serde(rename = "-")]
    Remove,
}

impl Action {
    pub fn sign(self) -> char {
        match self {
            Action::Add => '+',
            Action::Change => '~',
            Action::Remove => '-',
        }
    }
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub action: Action,
    pub kind: &'static str,
    pub what: String,
    /// What changes, for `~`: `every 1m -> 30s`.
    pub detail: String,
    /// For `-`: whether the file managed it (false: made by hand).
    pub managed: bool,
    #[serde(skip)]
    pub op: Option<SiteOp>,
}

impl Change {
    pub fn line(&self) -> String {
        let mut l = format!("{} {} {}", self.action.sign(), self.kind, self.what);
        if !self.detail.is_empty() {
            l.push_str(": ");
            l.push_str(&self.detail);
        }
        if self.action == Action::Remove && !self.managed {
            l.push_str(" (made by hand)");
        }
        l
    }
}

/// What an apply would do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// The changes it makes, in the order they are carried out.
    pub changes: Vec<Change>,
    /// What the file no longer names: removed only with `--prune`.
    pub held: Vec<Change>,
    /// Objects the file manages once applied.
    pub managed: usize,
    #[serde(skip)]
    pub marks: Vec<SiteOp>,
}

impl Plan {
    /// The store's operations, in order: the changes, then the marks of what is unchanged.
    pub fn ops(&self) -> Vec<SiteOp> {
        self.changes
            .iter()
            .filter_map(|c| c.op.clone())
            .chain(self.marks.iter().cloned())
            .collect()
    }
}

fn invalid(m: String) -> SiteError {
    SiteError::Invalid(m)
}

fn ms(text: &str, key: &str, of: &str) -> Result<i64, SiteError> {
    crate::when::parse_duration(text)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|e| invalid(format!("{of}: {key}: {e}")))
}

fn opt_ms(text: &Option<String>, key: &str, of: &str) -> Result<Option<i64>, SiteError> {
    text.as_deref().map(|t| ms(t, key, of)).transpose()
}

/// A password the file points at (never written in it).
fn password(
    h: &HostDef,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, SiteError> {
    match (&h.password_env, &h.password_file) {
        (Some(_), Some(_)) => Err(invalid(format!(
            "host {}: password_env or password_file, not both",
            h.name
        ))),
        (Some(var), None) => env(var).map(Some).ok_or_else(|| {
            invalid(format!(
                "host {}: password_env = {var:?}, but that variable is not set",
                h.name
            ))
        }),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| Some(s.lines().next().unwrap_or("").to_string()))
            .map_err(|e| invalid(format!("host {}: password_file {path}: {e}", h.name))),
        (None, None) => Ok(None),
    }
}

fn new_host(h: &HostDef, env: &dyn Fn(&str) -> Option<String>) -> Result<NewHost, SiteError> {
    let method = h
        .method
        .as_deref()
        .map(|m| {
            m.parse::<Method>()
                .map_err(|e| invalid(format!("host {}: method: {e}", h.name)))
        })
        .transpose()?;
    let vars = h
        .vars
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                serde_json::to_value(v).map_err(|e| invalid(e.to_string()))?,
            ))
        })
        .collect::<Result<serde_json::Map<_, _>, SiteError>>()?;
    Ok(NewHost {
        name: h.name.clone(),
        address: h.address.clone(),
        port: h.port,
        method,
        username: h.user.clone(),
        secret: password(h, env)?.map(Secret::new),
        key_path: h.key_path.clone(),
        prompt: h.prompt.clone(),
        site: h.site.clone(),
        tags: h.tags.clone(),
        vars,
        no_keep_session: false,
    })
}

/// What differs between a host as stored and as the file says it (not its secret).
fn host_diff(old: &Host, new: &NewHost) -> Vec<String> {
    let mut d = Vec::new();
    let mut cmp = |what: &str, a: String, b: String| {
        if a != b {
            d.push(format!("{what} {a} -> {b}"));
        }
    };
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    cmp("address", old.address.clone(), new.address.clone());
    cmp(
        "port",
        old.port.map_or("-".into(), |p| p.to_string()),
        new.port.map_or("-".into(), |p| p.to_string()),
    );
    cmp(
        "method",
        old.method.as_str().into(),
        new.method.unwrap_or(Method::Ssh).as_str().into(),
    );
    cmp("user", opt(&old.username), opt(&new.username));
    cmp("key_path", opt(&old.key_path), opt(&new.key_path));
    cmp("prompt", opt(&old.prompt), opt(&new.prompt));
    cmp("site", opt(&old.site), opt(&new.site));
    cmp("tags", old.tags.join(","), new.tags.join(","));
    cmp(
        "vars",
        serde_json::Value::Object(old.vars.clone()).to_string(),
        serde_json::Value::Object(new.vars.clone()).to_string(),
    );
    d
}

/// A check's identity: its script, name and target (`host web1`, `tag web`).
type CheckKey = (String, Option<String>, Option<String>, Option<String>);

fn key_of(s: &Schedule) -> CheckKey {
    (
        s.script.clone(),
        s.name.clone(),
        s.host.clone(),
        s.tag.clone(),
    )
}

fn describe(k: &CheckKey) -> String {
    let name = k.1.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
    match (&k.2, &k.3) {
        (Some(h), _) => format!("{}{name} on {h}", k.0),
        (None, Some(t)) => format!("{}{name} on tag {t}", k.0),
        _ => format!("{}{name}", k.0),
    }
}

fn timing_text(t: &Timing) -> String {
    match t {
        Timing::Every(ms) => format!("every {}", duration_text(*ms)),
        Timing::Cron(c) => format!("cron {c}"),
        Timing::At(t) => format!("at {}", crate::when::local(*t)),
    }
}

fn args_text(a: &Option<String>) -> String {
    a.clone().unwrap_or_else(|| "{}".into())
}

/// The schedules a `[[check]]` stands for, one per host and one per tag.
fn schedules_of(c: &CheckDef, now: i64) -> Result<Vec<NewSchedule>, SiteError> {
    let of = format!("check {}", c.script);
    let timing = match (&c.every, &c.cron) {
        (Some(e), None) => Timing::Every(ms(e, "every", &of)?),
        (None, Some(cron)) => {
            crate::when::cron_next(cron, now).map_err(|e| invalid(format!("{of}: cron: {e}")))?;
            Timing::Cron(cron.clone())
        }
        _ => return Err(invalid(format!("{of}: give every or cron, one of them"))),
    };
    if c.hosts.is_empty() && c.tags.is_empty() {
        return Err(invalid(format!(
            "{of}: give hosts = [...] or tags = [...] (a rule for every host with the tag)"
        )));
    }
    let args = |a: &BTreeMap<String, String>| crate::queue::args_json(a);
    let base = NewSchedule {
        fix_script: c.fix.clone(),
        priority: c.priority.unwrap_or(0),
        timing: timing.clone(),
        timeout_ms: opt_ms(&c.timeout, "timeout", &of)?,
        max_attempts: c.attempts.unwrap_or(3),
        guard_max_fixes: c.max_fixes.unwrap_or(3),
        guard_window_ms: opt_ms(&c.fix_window, "fix_window", &of)?.unwrap_or(3_600_000),
        guard_backoff_ms: opt_ms(&c.fix_backoff, "fix_backoff", &of)?.unwrap_or(30_000),
        retries: c.retries.unwrap_or(1),
        retry_every_ms: opt_ms(&c.retry_every, "retry_every", &of)?,
        name: c.name.clone(),
        args: args(&c.args),
        fix_args: args(&c.fix_args),
        sites: c.sites.clone(),
        quorum: c.quorum,
        next_due: first_due(&timing, now),
        ..NewSchedule::every(c.script.clone(), None, 60_000)
    };
    let mut out = Vec::new();
    for h in &c.hosts {
        out.push(NewSchedule {
            host: Some(h.clone()),
            ..base.clone()
        });
    }
    for t in &c.tags {
        out.push(NewSchedule {
            tag: Some(t.clone()),
            ..base.clone()
        });
    }
    Ok(out)
}

/// When a new schedule first runs: now, or its cron's next time.
fn first_due(t: &Timing, now: i64) -> i64 {
    match t {
        Timing::Cron(c) => crate::when::cron_next(c, now).unwrap_or(now),
        Timing::At(t) => *t,
        Timing::Every(_) => now,
    }
}

/// What differs between a schedule and what the file says of it.
fn schedule_diff(old: &Schedule, new: &NewSchedule) -> Vec<String> {
    let mut d = Vec::new();
    let mut cmp = |what: &str, a: String, b: String| {
        if a != b {
            d.push(if what.is_empty() {
                format!("{a} -> {b}")
            } else {
                format!("{what} {a} -> {b}")
            });
        }
    };
    let opt_d = |o: Option<i64>| o.map_or("-".into(), duration_text);
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    match (&old.timing, &new.timing) {
        (Timing::Every(a), Timing::Every(b)) => cmp("every", duration_text(*a), duration_text(*b)),
        (a, b) => cmp("", timing_text(a), timing_text(b)),
    }
    cmp("args", args_text(&old.args), args_text(&new.args));
    cmp("fix", opt(&old.fix_script), opt(&new.fix_script));
    cmp(
        "fix_args",
        args_text(&old.fix_args),
        args_text(&new.fix_args),
    );
    cmp(
        "retries",
        old.retries.to_string(),
        new.retries.max(1).to_string(),
    );
    cmp(
        "retry_every",
        opt_d(old.retry_every_ms),
        opt_d(new.retry_every_ms),
    );
    cmp(
        "max_fixes",
        old.guard_max_fixes.to_string(),
        new.guard_max_fixes.to_string(),
    );
    cmp(
        "fix_window",
        duration_text(old.guard_window_ms),
        duration_text(new.guard_window_ms),
    );
    cmp(
        "fix_backoff",
        duration_text(old.guard_backoff_ms),
        duration_text(new.guard_backoff_ms),
    );
    cmp("timeout", opt_d(old.timeout_ms), opt_d(new.timeout_ms));
    cmp(
        "priority",
        old.priority.to_string(),
        new.priority.to_string(),
    );
    cmp(
        "attempts",
        old.max_attempts.to_string(),
        new.max_attempts.to_string(),
    );
    cmp("sites", old.sites.join(","), new.sites.join(","));
    cmp(
        "quorum",
        old.quorum.map_or("-".into(), |q| q.to_string()),
        new.quorum.map_or("-".into(), |q| q.to_string()),
    );
    d
}

/// The dependencies the file states: each host's `parents`, and each `[[depend]]`.
fn dependencies_of(site: &Site) -> Result<Vec<NewDependency>, SiteError> {
    use crate::store::depends::parse_target;
    let mut out = Vec::new();
    for h in &site.hosts {
        for p in &h.parents {
            let (ph, pc) = parse_target(p, false)?;
            out.push(NewDependency {
                child_host: h.name.clone(),
                child_check: None,
                parent_host: ph,
                parent_check: pc.unwrap_or_default(),
                group: None,
                author: Some("site file".into()),
            });
        }
    }
    for d in &site.depends {
        let (ch, cc) = parse_target(&d.child, true)?;
        let (ph, pc) = parse_target(&d.on, false)?;
        out.push(NewDependency {
            child_host: ch,
            child_check: cc,
            parent_host: ph,
            parent_check: pc.unwrap_or_default(),
            group: d.group.clone(),
            author: Some("site file".into()),
        });
    }
    Ok(out)
}

type DepKey = (String, Option<String>, String, String, Option<String>);

fn dep_key_new(d: &NewDependency) -> DepKey {
    (
        d.child_host.clone(),
        d.child_check.clone(),
        d.parent_host.clone(),
        d.parent_check.clone(),
        d.group.clone(),
    )
}

fn dep_key(d: &Dependency) -> DepKey {
    (
        d.child_host.clone(),
        d.child_check.clone(),
        d.parent_host.clone(),
        d.parent_check.clone(),
        d.group.clone(),
    )
}

fn dep_text(k: &DepKey) -> String {
    let child = match &k.1 {
        Some(c) => format!("{}/{c}", k.0),
        None => k.0.clone(),
    };
    let group =
        k.4.as_ref()
            .map(|g| format!(" (group {g})"))
            .unwrap_or_default();
    format!("{child} on {}/{}{group}", k.2, k.3)
}

fn new_heartbeat(h: &super::file::HeartbeatDef) -> Result<NewHeartbeat, SiteError> {
    let of = format!("heartbeat {}", h.name);
    let every_ms = match (&h.every, &h.cron) {
        (Some(e), None) => ms(e, "every", &of)?,
        (None, Some(_)) => 0,
        _ => return Err(invalid(format!("{of}: give every or cron, one of them"))),
    };
    Ok(NewHeartbeat {
        name: h.name.clone(),
        host: h.host.clone(),
        every_ms,
        grace_ms: opt_ms(&h.grace, "grace", &of)?.unwrap_or(0),
        cron: h.cron.clone(),
        author: Some("site file".into()),
        fix: h.fix.clone(),
    })
}

type WindowKey = (Option<String>, Option<String>, Option<String>, String);

fn window_text(k: &WindowKey) -> String {
    let covers = match (&k.0, &k.1, &k.2) {
        (Some(h), _, Some(s)) => format!("{h}/{s}"),
        (Some(h), _, None) => format!("host {h}"),
        (None, Some(t), _) => format!("tag {t}"),
        _ => "-".into(),
    };
    format!("{covers} at cron {}", k.3)
}

fn new_recurring(d: &super::file::DowntimeDef) -> Result<NewRecurring, SiteError> {
    let of = format!("downtime at cron {}", d.cron);
    let (host, script) = match (&d.check, &d.host) {
        (Some(c), None) => {
            let (h, s) = c
                .split_once('/')
                .ok_or_else(|| invalid(format!("{of}: check {c:?}: give HOST/CHECK")))?;
            (Some(h.to_string()), Some(s.to_string()))
        }
        (None, h) => (h.clone(), None),
        (Some(_), Some(_)) => {
            return Err(invalid(format!("{of}: give host, tag or check, just one")));
        }
    };
    let r = NewRecurring {
        host,
        tag: d.tag.clone(),
        script,
        cron: d.cron.clone(),
        duration_ms: ms(&d.duration, "duration", &of)?,
        reason: d.reason.clone(),
        author: Some("site file".into()),
        children: d.children,
    };
    crate::store::recurring::check_recurring(&r).map_err(|e| invalid(format!("{of}: {e}")))?;
    Ok(r)
}

fn heartbeat_diff(old: &Heartbeat, new: &NewHeartbeat) -> Vec<String> {
    let mut d = Vec::new();
    let expected = |cron: &Option<String>, every: i64| match cron {
        Some(c) => format!("cron {c}"),
        None => format!("every {}", duration_text(every)),
    };
    let (a, b) = (
        expected(&old.cron, old.every_ms),
        expected(&new.cron, new.every_ms),
    );
    if a != b {
        d.push(format!("{a} -> {b}"));
    }
    if old.grace_ms != new.grace_ms {
        d.push(format!(
            "grace {} -> {}",
            duration_text(old.grace_ms),
            duration_text(new.grace_ms)
        ));
    }
    if old.fix != new.fix {
        let o = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
        d.push(format!("fix {} -> {}", o(&old.fix), o(&new.fix)));
    }
    d
}

/// Works out the plan that brings the database to what `site` says. With `prune`, what the
/// file does not name is removed; without, it is listed in [`Plan::held`]. `env` reads the
/// environment (passwords from `password_env`).
pub fn plan(
    store: &Store,
    site: &Site,
    prune: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, SiteError> {
    let now = crate::store::now_ms();
    let mut p = Plan::default();
    let change = |action, kind, what: String, detail: Vec<String>, op| Change {
        action,
        kind,
        what,
        detail: detail.join(", "),
        managed: true,
        op: Some(op),
    };

    // Scripts: made or given a new version; never removed (the bundled ones live there too).
    let stored: HashMap<String, String> = store
        .scripts()?
        .into_iter()
        .map(|s| (s.name, s.source))
        .collect();
    let mut seen = HashSet::new();
    for s in &site.scripts {
        if !seen.insert(s.name.clone()) {
            return Err(invalid(format!(
                "script {} is in the scripts folders twice",
                s.name
            )));
        }
        // Kind and description from the header, as `hostler script add` reads them.
        let (description, kind) = crate::bundled::header(&s.source);
        let op = SiteOp::PutScript {
            name: s.name.clone(),
            source: s.source.clone(),
            kind: kind.unwrap_or(crate::store::ScriptKind::Task),
            description,
        };
        match stored.get(&s.name) {
            Some(src) if *src == s.source => {}
            Some(_) => p.changes.push(change(
                Action::Change,
                "script",
                s.name.clone(),
                vec!["new version".into()],
                op,
            )),
            None => p
                .changes
                .push(change(Action::Add, "script", s.name.clone(), vec![], op)),
        }
    }
    let script_known = |name: &str| stored.contains_key(name) || seen.contains(name);

    // Hosts.
    let hosts = store.hosts()?;
    let by_name: HashMap<&str, &Host> = hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    let mut names = HashSet::new();
    for h in &site.hosts {
        if !names.insert(h.name.clone()) {
            return Err(invalid(format!("host {} is named twice", h.name)));
        }
        let new = new_host(h, env)?;
        match by_name.get(h.name.as_str()) {
            None => p.changes.push(change(
                Action::Add,
                "host",
                h.name.clone(),
                vec![],
                SiteOp::AddHost(new),
            )),
            Some(old) => {
                let mut diff = host_diff(old, &new);
                if let Some(pw) = &new.secret {
                    let same = store
                        .host_secret(&h.name)?
                        .is_some_and(|s| s.expose() == pw.expose());
                    if !same {
                        diff.push("password".into());
                    }
                }
                if !diff.is_empty() {
                    p.changes.push(change(
                        Action::Change,
                        "host",
                        h.name.clone(),
                        diff,
                        SiteOp::UpdateHost(new),
                    ));
                } else if !old.managed {
                    p.marks.push(SiteOp::Manage {
                        table: "hosts",
                        id: old.id,
                    });
                }
            }
        }
    }
    let host_known = |name: &str| names.contains(name) || (!prune && by_name.contains_key(name));
    for h in &hosts {
        if !names.contains(&h.name) {
            p.held.push(Change {
                action: Action::Remove,
                kind: "host",
                what: h.name.clone(),
                detail: String::new(),
                managed: h.managed,
                op: Some(SiteOp::RemoveHost(h.name.clone())),
            });
        }
    }
    let host_removals: Vec<Change> = std::mem::take(&mut p.held);

    // Checks.
    let schedules = store.schedules()?;
    let mut wanted: Vec<(CheckKey, NewSchedule)> = Vec::new();
    let mut wanted_keys: HashSet<CheckKey> = HashSet::new();
    for c in &site.checks {
        for s in [Some(&c.script), c.fix.as_ref()].into_iter().flatten() {
            if !script_known(s) {
                return Err(invalid(format!(
                    "check {}: no script {s} in the database or the scripts folder",
                    c.script
                )));
            }
        }
        for h in &c.hosts {
            if !host_known(h) {
                return Err(invalid(format!("check {}: no host {h}", c.script)));
            }
        }
        for s in schedules_of(c, now)? {
            let key = (
                s.script.clone(),
                s.name.clone(),
                s.host.clone(),
                s.tag.clone(),
            );
            if !wanted_keys.insert(key.clone()) {
                return Err(invalid(format!("check {} is named twice", describe(&key))));
            }
            wanted.push((key, s));
        }
    }
    let n_checks = wanted.len();
    let mut matched = HashSet::new();
    let mut schedule_changes = Vec::new();
    let mut by_key: HashMap<CheckKey, Vec<&Schedule>> = HashMap::new();
    for s in schedules.iter().filter(|s| s.site.is_none()) {
        by_key.entry(key_of(s)).or_default().push(s);
    }
    for (key, new) in wanted {
        let old = by_key
            .get(&key)
            .and_then(|v| v.iter().find(|s| !matched.contains(&s.id)).copied());
        match old {
            None => schedule_changes.push(change(
                Action::Add,
                "check",
                describe(&key),
                vec![],
                SiteOp::AddSchedule(new),
            )),
            Some(old) => {
                matched.insert(old.id);
                let diff = schedule_diff(old, &new);
                if diff.is_empty() {
                    if !old.managed {
                        p.marks.push(SiteOp::Manage {
                            table: "schedules",
                            id: old.id,
                        });
                    }
                    continue;
                }
                // Due checks are not delayed: the next run comes no later than the new
                // timing says, and an unchanged timing keeps its next time.
                let next_due = match (&old.timing, &new.timing, old.next_due) {
                    (a, b, Some(n)) if a == b => n,
                    (_, Timing::Every(ms), Some(n)) => n.min(now + ms),
                    (_, t, _) => first_due(t, now),
                };
                let new = NewSchedule { next_due, ..new };
                schedule_changes.push(change(
                    Action::Change,
                    "check",
                    describe(&key),
                    diff,
                    SiteOp::UpdateSchedule(old.id, new),
                ));
            }
        }
    }
    let schedule_removals: Vec<Change> = schedules
        .iter()
        .filter(|s| !matched.contains(&s.id))
        .map(|s| Change {
            action: Action::Remove,
            kind: "check",
            what: describe(&key_of(s)),
            detail: String::new(),
            managed: s.managed,
            op: Some(SiteOp::RemoveSchedule(s.id)),
        })
        .collect();

    // Heartbeats.
    let beats = store.heartbeats()?;
    let beat_by_key: HashMap<(Option<String>, String), &Heartbeat> = beats
        .iter()
        .map(|b| ((b.host.clone(), b.name.clone()), b))
        .collect();
    let mut beat_changes = Vec::new();
    let mut beat_seen = HashSet::new();
    let mut beat_matched = HashSet::new();
    for h in &site.heartbeats {
        let key = (h.host.clone(), h.name.clone());
        let what = match &h.host {
            Some(host) => format!("{} on {host}", h.name),
            None => h.name.clone(),
        };
        if !beat_seen.insert(key.clone()) {
            return Err(invalid(format!("heartbeat {what} is named twice")));
        }
        if let Some(host) = &h.host
            && !host_known(host)
        {
            return Err(invalid(format!("heartbeat {what}: no host {host}")));
        }
        if let Some(f) = &h.fix
            && !script_known(f)
        {
            return Err(invalid(format!("heartbeat {what}: no script {f}")));
        }
        let new = new_heartbeat(h)?;
        match beat_by_key.get(&key) {
            None => beat_changes.push(change(
                Action::Add,
                "heartbeat",
                what,
                vec![],
                SiteOp::AddHeartbeat(new),
            )),
            Some(old) => {
                beat_matched.insert(old.id);
                let diff = heartbeat_diff(old, &new);
                if !diff.is_empty() {
                    beat_changes.push(change(
                        Action::Change,
                        "heartbeat",
                        what,
                        diff,
                        SiteOp::UpdateHeartbeat(old.id, new),
                    ));
                } else if !old.managed {
                    p.marks.push(SiteOp::Manage {
                        table: "heartbeats",
                        id: old.id,
                    });
                }
            }
        }
    }
    let beat_removals: Vec<Change> = beats
        .iter()
        .filter(|b| !beat_matched.contains(&b.id))
        .map(|b| Change {
            action: Action::Remove,
            kind: "heartbeat",
            what: match &b.host {
                Some(h) => format!("{} on {h}", b.name),
                None => b.name.clone(),
            },
            detail: String::new(),
            managed: b.managed,
            op: Some(SiteOp::RemoveHeartbeat(b.id)),
        })
        .collect();

    // Dependencies: their identity is all they are (a changed group is a removal and an add).
    let deps = store.dependencies()?;
    let dep_by_key: HashMap<DepKey, &Dependency> = deps.iter().map(|d| (dep_key(d), d)).collect();
    let mut dep_changes = Vec::new();
    let mut dep_matched = HashSet::new();
    let mut dep_keys = HashSet::new();
    let wanted_deps = dependencies_of(site)?;
    for d in &wanted_deps {
        let key = dep_key_new(d);
        if !dep_keys.insert(key.clone()) {
            return Err(invalid(format!(
                "dependency {} is named twice",
                dep_text(&key)
            )));
        }
        for h in [&d.child_host, &d.parent_host] {
            if !host_known(h) {
                return Err(invalid(format!(
                    "dependency {}: no host {h}",
                    dep_text(&key)
                )));
            }
        }
        match dep_by_key.get(&key) {
            Some(old) => {
                dep_matched.insert(old.id);
                if !old.managed {
                    p.marks.push(SiteOp::Manage {
                        table: "dependencies",
                        id: old.id,
                    });
                }
            }
            None => dep_changes.push(change(
                Action::Add,
                "depend",
                dep_text(&key),
                vec![],
                SiteOp::AddDependency(d.clone()),
            )),
        }
    }
    let dep_removals: Vec<Change> = deps
        .iter()
        .filter(|d| !dep_matched.contains(&d.id))
        .map(|d| Change {
            action: Action::Remove,
            kind: "depend",
            what: dep_text(&dep_key(d)),
            detail: String::new(),
            managed: d.managed,
            op: Some(SiteOp::RemoveDependency(d.id)),
        })
        .collect();
    // A cycle among what will stand: the kept dependencies and the new ones.
    let mut standing: Vec<Dependency> = deps
        .iter()
        .filter(|d| !prune || dep_matched.contains(&d.id))
        .cloned()
        .collect();
    let mut standing_keys: HashSet<DepKey> = standing.iter().map(dep_key).collect();
    for d in &wanted_deps {
        if !standing_keys.insert(dep_key_new(d)) {
            continue;
        }
        if let Some(path) = crate::store::depends::find_cycle(&standing, d) {
            return Err(invalid(format!(
                "dependency {} would make a cycle: {}",
                dep_text(&dep_key_new(d)),
                path.join(" depends on ")
            )));
        }
        standing.push(Dependency {
            id: 0,
            child_host: d.child_host.clone(),
            child_check: d.child_check.clone(),
            parent_host: d.parent_host.clone(),
            parent_check: d.parent_check.clone(),
            group: d.group.clone(),
            author: None,
            created_at: 0,
            managed: true,
        });
    }

    // Recurring downtimes: their identity is what they cover and when; the rest changes in
    // place.
    let windows = store.recurring_downtimes()?;
    let mut win_changes = Vec::new();
    let mut win_matched = HashSet::new();
    let mut win_keys = HashSet::new();
    for d in &site.downtimes {
        let r = new_recurring(d)?;
        let key = (
            r.host.clone(),
            r.tag.clone(),
            r.script.clone(),
            r.cron.clone(),
        );
        let what = window_text(&key);
        if !win_keys.insert(key.clone()) {
            return Err(invalid(format!("downtime {what} is named twice")));
        }
        if let Some(h) = &r.host
            && !host_known(h)
        {
            return Err(invalid(format!("downtime {what}: no host {h}")));
        }
        match windows.iter().find(|w| {
            (
                w.host.clone(),
                w.tag.clone(),
                w.script.clone(),
                w.cron.clone(),
            ) == key
        }) {
            None => win_changes.push(change(
                Action::Add,
                "downtime",
                what,
                vec![],
                SiteOp::AddRecurring(r),
            )),
            Some(old) => {
                win_matched.insert(old.id);
                let mut diff = Vec::new();
                if old.duration_ms != r.duration_ms {
                    diff.push(format!(
                        "for {} -> {}",
                        duration_text(old.duration_ms),
                        duration_text(r.duration_ms)
                    ));
                }
                if old.reason != r.reason {
                    diff.push(format!("reason {:?} -> {:?}", old.reason, r.reason));
                }
                if old.children != r.children {
                    diff.push(format!("children {} -> {}", old.children, r.children));
                }
                if !diff.is_empty() {
                    win_changes.push(change(
                        Action::Change,
                        "downtime",
                        what,
                        diff,
                        SiteOp::UpdateRecurring(old.id, r),
                    ));
                } else if !old.managed {
                    p.marks.push(SiteOp::Manage {
                        table: "recurring_downtimes",
                        id: old.id,
                    });
                }
            }
        }
    }
    let win_removals: Vec<Change> = windows
        .iter()
        .filter(|w| !win_matched.contains(&w.id))
        .map(|w| Change {
            action: Action::Remove,
            kind: "downtime",
            what: window_text(&(
                w.host.clone(),
                w.tag.clone(),
                w.script.clone(),
                w.cron.clone(),
            )),
            detail: String::new(),
            managed: w.managed,
            op: Some(SiteOp::RemoveRecurring(w.id)),
        })
        .collect();

    // Removals first (a dependency removed before one is added cannot make a false cycle),
    // hosts last (their checks and heartbeats are gone by then).
    let removals: Vec<Change> = dep_removals
        .into_iter()
        .chain(win_removals)
        .chain(beat_removals)
        .chain(schedule_removals)
        .collect();
    let mut ordered = std::mem::take(&mut p.changes);
    if prune {
        ordered.extend(removals);
    } else {
        p.held.extend(removals);
    }
    ordered.extend(schedule_changes);
    ordered.extend(beat_changes);
    ordered.extend(dep_changes);
    ordered.extend(win_changes);
    if prune {
        ordered.extend(host_removals);
    } else {
        p.held.extend(host_removals);
    }
    p.changes = ordered;
    p.managed = site.hosts.len()
        + n_checks
        + site.heartbeats.len()
        + wanted_deps.len()
        + site.downtimes.len();
    Ok(p)
}
