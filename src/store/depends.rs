//! Dependencies: which checks stand behind which (the hosts behind a router, a service behind
//! its host's ping). The pure rules judge a failing check by its parents' states: cut off
//! (unreachable: neither fixed nor told), waiting for a parent's fresh result (pending: held
//! soft, the parent checked at once), or reachable. The store's side adds one (a cycle is
//! refused and named), lists and removes them, and queues the checks that a parent's state
//! asks for.
//!
//! The rules:
//! - a dependency's child is a host (each of its checks but the parent itself) or one check;
//! - parents that share a group are redundant: the group cuts the child off only when every
//!   one of them is in a hard problem; each group, and each parent outside a group, cuts it
//!   off on its own;
//! - a failing child whose parents are not known to be up waits: a parent is up when its
//!   latest result is OK and came at least `settle` after the child began to fail. Until then
//!   (at most `hold`), the child's problem stays soft and its parents are checked at once.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::checks::check_from_row;
use super::schedules::schedule_from_row;
use super::statements as st;
use super::{
    Check, CheckState, Conn, ConnExt, Dependency, NewDependency, NewJob, Row, Store, StoreError,
    Target,
};
use crate::sql::param;

impl Dependency {
    /// Whether it covers a host's check: its child is the host, or that very check, and the
    /// check is not the parent itself.
    pub fn applies_to(&self, host: &str, check: &str) -> bool {
        self.child_host == host
            && self.child_check.as_deref().is_none_or(|c| c == check)
            && !(self.parent_host == host && self.parent_check == check)
    }

    /// The child as it is written: `HOST` or `HOST/CHECK`.
    pub fn child(&self) -> String {
        spell(&self.child_host, self.child_check.as_deref())
    }

    /// The parent: `HOST/CHECK`.
    pub fn parent(&self) -> String {
        format!("{}/{}", self.parent_host, self.parent_check)
    }
}

fn spell(host: &str, check: Option<&str>) -> String {
    match check {
        Some(c) => format!("{host}/{c}"),
        None => host.to_string(),
    }
}

impl NewDependency {
    fn as_dependency(&self) -> Dependency {
        Dependency {
            id: 0,
            child_host: self.child_host.clone(),
            child_check: self.child_check.clone(),
            parent_host: self.parent_host.clone(),
            parent_check: self.parent_check.clone(),
            group: self.group.clone(),
            author: self.author.clone(),
            created_at: 0,
            managed: false,
        }
    }
}

/// What the rules need of a parent check: its state now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentState {
    pub state: CheckState,
    pub hard: bool,
    pub last_run_at: i64,
}

impl From<&Check> for ParentState {
    fn from(c: &Check) -> ParentState {
        ParentState {
            state: c.state,
            hard: c.hard,
            last_run_at: c.last_run_at,
        }
    }
}

/// How a failing check stands behind its parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// No parent cuts it off: it is fixed and told as any check.
    Reachable,
    /// A parent (or every parent of a group) is in a hard problem: named here.
    Unreachable { parent: String },
    /// No parent of some group is known to be up since the check began to fail: its problem
    /// stays soft, and these parents (host, check) are checked at once.
    Pending { parents: Vec<(String, String)> },
}

/// How long a failing child waits for its parents' word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// A parent's OK counts once it came this long after the child began to fail.
    pub settle_ms: i64,
    /// After this long failing, the child waits no more (a parent that is never checked
    /// does not hold it forever).
    pub hold_ms: i64,
}

impl Default for Settle {
    fn default() -> Settle {
        Settle::of(5_000)
    }
}

impl Settle {
    /// A settle time, and the hold that goes with it (12 times as long, at least a minute).
    pub fn of(settle_ms: i64) -> Settle {
        let settle_ms = settle_ms.max(0);
        Settle {
            settle_ms,
            hold_ms: settle_ms.saturating_mul(12).max(60_000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Up,
    Down,
    Unsure,
}

fn side(p: Option<&ParentState>, fresh_after: i64) -> Side {
    match p {
        Some(p) if p.hard && p.state != CheckState::Ok => Side::Down,
        Some(p) if p.state == CheckState::Ok && p.last_run_at >= fresh_after => Side::Up,
        _ => Side::Unsure,
    }
}

/// The dependencies as units that cut off on their own: one per group, one per parent
/// outside a group.
fn units<'a>(deps: &[&'a Dependency]) -> Vec<Vec<&'a Dependency>> {
    let mut groups: BTreeMap<&str, Vec<&Dependency>> = BTreeMap::new();
    let mut out = Vec::new();
    for d in deps {
        match d.group.as_deref() {
            Some(g) => groups.entry(g).or_default().push(d),
            None => out.push(vec![*d]),
        }
    }
    out.extend(groups.into_values());
    out
}

/// The parent that cuts a check off now, if one does: the first unit whose parents are all
/// in a hard problem.
pub fn cut_off(
    deps: &[&Dependency],
    parent: &dyn Fn(&str, &str) -> Option<ParentState>,
) -> Option<String> {
    units(deps).into_iter().find_map(|unit| {
        unit.iter()
            .all(|d| side(parent(&d.parent_host, &d.parent_check).as_ref(), i64::MAX) == Side::Down)
            .then(|| unit[0].parent())
    })
}

/// How a check that has been failing since `since` stands at `at` behind `deps` (those that
/// apply to it). A pure function: the property tests drive it directly.
pub fn judge(
    deps: &[&Dependency],
    parent: &dyn Fn(&str, &str) -> Option<ParentState>,
    since: i64,
    at: i64,
    settle: Settle,
) -> Reach {
    if let Some(parent) = cut_off(deps, parent) {
        return Reach::Unreachable { parent };
    }
    let fresh_after = since.saturating_add(settle.settle_ms);
    let mut waiting = Vec::new();
    for unit in units(deps) {
        let sides: Vec<(Side, &Dependency)> = unit
            .iter()
            .map(|d| {
                let p = parent(&d.parent_host, &d.parent_check);
                (side(p.as_ref(), fresh_after), *d)
            })
            .collect();
        if sides.iter().all(|(s, _)| *s != Side::Up) {
            waiting.extend(
                sides
                    .iter()
                    .filter(|(s, _)| *s == Side::Unsure)
                    .map(|(_, d)| (d.parent_host.clone(), d.parent_check.clone())),
            );
        }
    }
    waiting.sort();
    waiting.dedup();
    if waiting.is_empty() || at >= since.saturating_add(settle.hold_ms) {
        Reach::Reachable
    } else {
        Reach::Pending { parents: waiting }
    }
}

/// Marks each check that is not OK and is cut off by a parent now as unreachable, naming the
/// parent (how `hostler status`, the API, the metrics and the dashboard show it).
pub fn mark_unreachable(checks: &mut [Check], deps: &[Dependency]) {
    if deps.is_empty() {
        return;
    }
    let states: HashMap<(&str, &str), ParentState> = checks
        .iter()
        .filter_map(|c| {
            Some((
                (c.host.as_deref()?, c.script.as_str()),
                ParentState::from(c),
            ))
        })
        .collect();
    let parent = |h: &str, c: &str| states.get(&(h, c)).copied();
    let mut by_child: HashMap<&str, Vec<&Dependency>> = HashMap::new();
    for d in deps {
        by_child.entry(d.child_host.as_str()).or_default().push(d);
    }
    let marks: Vec<Option<String>> = checks
        .iter()
        .map(|c| {
            let host = c.host.as_deref()?;
            if c.state == CheckState::Ok {
                return None;
            }
            let mine: Vec<&Dependency> = by_child
                .get(host)?
                .iter()
                .filter(|d| d.applies_to(host, &c.script))
                .copied()
                .collect();
            cut_off(&mine, &parent)
        })
        .collect();
    for (c, m) in checks.iter_mut().zip(marks) {
        c.unreachable = m.is_some();
        c.parent = m;
    }
}

/// The checks above a host's check, nearest first: its parents, theirs, and so on.
pub fn ancestors(deps: &[Dependency], host: &str, check: &str) -> Vec<(String, String)> {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut queue = VecDeque::from([(host.to_string(), check.to_string())]);
    let mut out = Vec::new();
    while let Some((h, c)) = queue.pop_front() {
        for d in deps.iter().filter(|d| d.applies_to(&h, &c)) {
            let p = (d.parent_host.clone(), d.parent_check.clone());
            if seen.insert(p.clone()) {
                out.push(p.clone());
                queue.push_back(p);
            }
        }
    }
    out
}

/// The cycle `new` would close, if any: the checks from its parent up to one that is its
/// child, as `HOST/CHECK`.
pub fn find_cycle(deps: &[Dependency], new: &NewDependency) -> Option<Vec<String>> {
    let new = new.as_dependency();
    let start = (new.parent_host.clone(), new.parent_check.clone());
    let mut came_from: HashMap<(String, String), Option<(String, String)>> =
        HashMap::from([(start.clone(), None)]);
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        if new.applies_to(&node.0, &node.1) {
            let mut path = vec![format!("{}/{}", node.0, node.1)];
            let mut at = came_from.get(&node).cloned().flatten();
            while let Some(n) = at {
                path.push(format!("{}/{}", n.0, n.1));
                at = came_from.get(&n).cloned().flatten();
            }
            path.reverse();
            return Some(path);
        }
        for d in deps.iter().filter(|d| d.applies_to(&node.0, &node.1)) {
            let p = (d.parent_host.clone(), d.parent_check.clone());
            if !came_from.contains_key(&p) {
                came_from.insert(p.clone(), Some(node.clone()));
                queue.push_back(p);
            }
        }
    }
    None
}

pub(super) fn dependency_from_row(r: &Row) -> Result<Dependency, StoreError> {
    Ok(Dependency {
        id: r.int("id")?,
        child_host: r.text("child_host")?,
        child_check: r.opt_text("child_check")?,
        parent_host: r.text("parent_host")?,
        parent_check: r.text("parent_check")?,
        group: r.opt_text("grp")?,
        author: r.opt_text("author")?,
        created_at: r.int("created_at")?,
        managed: r.boolean("managed")?,
    })
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

/// A check's state within a unit of work, if it has run.
fn state_in(c: &mut dyn Conn, host: &str, check: &str) -> Result<Option<Check>, StoreError> {
    c.query_one(st::check_get(Some(host), check))?
        .map(|r| check_from_row(&r))
        .transpose()
}

/// How a host's check that has been failing since `since` stands behind its parents at `at`,
/// within a unit of work.
pub(super) fn reach_in(
    c: &mut dyn Conn,
    host: &str,
    check: &str,
    since: i64,
    at: i64,
    settle: Settle,
) -> Result<Reach, StoreError> {
    let deps: Vec<Dependency> = c
        .query(st::dependency_of_child(host))?
        .iter()
        .map(dependency_from_row)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|d| d.applies_to(host, check))
        .collect();
    if deps.is_empty() {
        return Ok(Reach::Reachable);
    }
    let mut parents: HashMap<(String, String), Option<ParentState>> = HashMap::new();
    for d in &deps {
        let key = (d.parent_host.clone(), d.parent_check.clone());
        if let std::collections::hash_map::Entry::Vacant(e) = parents.entry(key) {
            let p = state_in(c, &d.parent_host, &d.parent_check)?;
            e.insert(p.as_ref().map(ParentState::from));
        }
    }
    let mine: Vec<&Dependency> = deps.iter().collect();
    let parent = |h: &str, ch: &str| {
        parents
            .get(&(h.to_string(), ch.to_string()))
            .copied()
            .flatten()
    };
    Ok(judge(&mine, &parent, since, at, settle))
}

/// Queues a host's check to run at `due_at`, as its schedule would (the schedule of its
/// latest run, else one that names the check on the host). Returns whether a job was queued
/// or one already queued was brought forward to `due_at` (one due by then is left as it is).
pub(super) fn recheck_in(
    c: &mut dyn Conn,
    host: &str,
    check: &str,
    at: i64,
    due_at: i64,
) -> Result<bool, StoreError> {
    let mut schedule_id = None;
    if let Some(run) = state_in(c, host, check)?.and_then(|k| k.last_run_id) {
        schedule_id = c
            .query_one(st::run_by_id(run))?
            .map(|r| r.opt_int("schedule_id"))
            .transpose()?
            .flatten();
    }
    let schedule = match schedule_id {
        Some(id) => c
            .query_one(st::schedule_by_id(id))?
            .map(|r| schedule_from_row(&r))
            .transpose()?,
        None => None,
    };
    let schedule = match schedule {
        Some(s) => Some(s),
        None => {
            let hosts: Vec<super::Host> = c
                .query_one(st::host_by_name(host))?
                .map(|r| super::hosts::host_from_row(&r))
                .transpose()?
                .into_iter()
                .collect();
            c.query(crate::sql::Statement::from(st::schedule_list()))?
                .iter()
                .map(schedule_from_row)
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .find(|s| {
                    s.enabled
                        && s.check() == check
                        && Target::of(s)
                            .resolve(&hosts)
                            .iter()
                            .any(|h| h.as_deref() == Some(host))
                })
        }
    };
    let Some(s) = schedule else {
        return Ok(false);
    };
    let job = NewJob {
        script: s.script.clone(),
        host: Some(host.to_string()),
        priority: s.priority,
        due_at,
        max_attempts: s.max_attempts,
        timeout_ms: s.timeout_ms,
        schedule_id: Some(s.id),
        args: s.args.clone(),
        name: s.name.clone(),
    };
    // A quorum's check runs on a node of each of its sites.
    let sites: Vec<Option<&str>> = if s.quorum.is_some() {
        s.sites.iter().map(|x| Some(x.as_str())).collect()
    } else {
        vec![None]
    };
    let mut queued = false;
    for site in sites {
        // A job of the check already waiting joins the recheck: brought forward to its time
        // when it was due later (a retry's backoff), so a check asked for at once runs once.
        queued |= match super::jobs::enqueue_in(c, &job, false, at, site, None)? {
            (_, true) => true,
            (id, false) => c.exec(st::job_hasten(id, due_at))? > 0,
        };
    }
    Ok(queued)
}

/// After a parent check recovered: its children that are not OK, each to be queued to run at
/// once (by the caller, in one order with its other rechecks), so only those that still fail
/// go on to a fix and a message.
pub(super) fn failing_children_in(
    c: &mut dyn Conn,
    host: &str,
    check: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let deps: Vec<Dependency> = c
        .query(st::dependency_of_parent(host, check))?
        .iter()
        .map(dependency_from_row)
        .collect::<Result<_, _>>()?;
    let mut children: Vec<(String, String)> = Vec::new();
    for d in &deps {
        match &d.child_check {
            Some(ch) => children.push((d.child_host.clone(), ch.clone())),
            None => {
                for r in c.query(st::check_list_of_host(&d.child_host))? {
                    let k = check_from_row(&r)?;
                    if d.applies_to(&d.child_host, &k.script) {
                        children.push((d.child_host.clone(), k.script));
                    }
                }
            }
        }
    }
    children.sort();
    children.dedup();
    let mut failing = Vec::new();
    for (h, ch) in children {
        if state_in(c, &h, &ch)?.is_some_and(|k| k.state != CheckState::Ok) {
            failing.push((h, ch));
        }
    }
    Ok(failing)
}

/// Splits `HOST/CHECK` (or, where a host is allowed, `HOST`).
pub fn parse_target(s: &str, host_allowed: bool) -> Result<(String, Option<String>), StoreError> {
    let s = s.trim();
    match s.split_once('/') {
        Some((h, c)) if !h.is_empty() && !c.is_empty() && !c.contains('/') => {
            Ok((h.to_string(), Some(c.to_string())))
        }
        None if host_allowed && !s.is_empty() => Ok((s.to_string(), None)),
        _ if host_allowed => Err(invalid(format!(
            "{s:?}: give a host (web1) or a check (web1/check_http)"
        ))),
        _ => Err(invalid(format!(
            "{s:?}: give a check as HOST/CHECK (r1/check_ping)"
        ))),
    }
}

/// Checks a new dependency's names (not that its hosts exist).
pub(super) fn check_dependency(d: &NewDependency) -> Result<(), StoreError> {
    for name in [
        Some(&d.parent_check),
        d.child_check.as_ref(),
        d.group.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        super::jobs::check_name(Some(name))?;
    }
    if d.child_check.as_deref() == Some(d.parent_check.as_str()) && d.child_host == d.parent_host {
        return Err(invalid(format!(
            "{}/{} cannot depend on itself",
            d.child_host, d.parent_check
        )));
    }
    Ok(())
}

/// Inserts a checked dependency, refusing a duplicate or a cycle (under a lock that makes two
/// nodes adding the two halves of a cycle wait for each other); its id.
pub(super) fn insert_dependency(
    c: &mut dyn Conn,
    d: &NewDependency,
    managed: bool,
) -> Result<i64, StoreError> {
    let at = super::now_ms();
    let new = d.as_dependency();
    // Two nodes adding the two halves of a cycle at once: one waits for the other.
    c.exec(crate::sql::Statement::Serialize("hostler_depend"))?;
    let all: Vec<Dependency> = c
        .query(st::dependency_list())?
        .iter()
        .map(dependency_from_row)
        .collect::<Result<_, _>>()?;
    if all.iter().any(|x| {
        x.child_host == new.child_host
            && x.child_check == new.child_check
            && x.parent_host == new.parent_host
            && x.parent_check == new.parent_check
    }) {
        return Err(invalid(format!(
            "{} already depends on {}",
            new.child(),
            new.parent()
        )));
    }
    if let Some(path) = find_cycle(&all, d) {
        return Err(invalid(format!(
            "{} on {} would make a cycle: {} depends on {}",
            new.child(),
            new.parent(),
            path.last().cloned().unwrap_or_default(),
            path.join(", which depends on ")
        )));
    }
    c.insert(st::dependency_insert(vec![
        ("child_host", param(d.child_host.as_str())),
        ("child_check", param(d.child_check.clone())),
        ("parent_host", param(d.parent_host.as_str())),
        ("parent_check", param(d.parent_check.as_str())),
        ("grp", param(d.group.clone())),
        ("author", param(d.author.clone())),
        ("created_at", param(at)),
        ("managed", param(managed)),
    ]))
}

impl Store {
    /// Adds a dependency. Both hosts must exist; a check cannot depend on itself; the same
    /// dependency twice, and one that would close a cycle, are refused (the cycle named).
    pub fn add_dependency(&self, d: &NewDependency) -> Result<i64, StoreError> {
        check_dependency(d)?;
        self.host(&d.child_host)?;
        self.host(&d.parent_host)?;
        self.write(|c| insert_dependency(c, d, false))
    }

    /// Every dependency, by child then parent.
    pub fn dependencies(&self) -> Result<Vec<Dependency>, StoreError> {
        self.read(|c| {
            c.query(st::dependency_list())?
                .iter()
                .map(dependency_from_row)
                .collect()
        })
    }

    /// Removes a dependency by its id.
    pub fn remove_dependency(&self, id: i64) -> Result<(), StoreError> {
        self.write(|c| match c.exec(st::dependency_delete(id))? {
            0 => Err(StoreError::NotFound {
                kind: "dependency",
                name: id.to_string(),
            }),
            _ => Ok(()),
        })
    }

    /// How a host's check that fails at `at` stands behind its parents: failing since its
    /// row says, or since `at` if this is its first failure.
    pub fn reach(&self, host: &str, check: &str, at: i64) -> Result<Reach, StoreError> {
        let settle = self.policy().settle;
        self.read(|c| {
            let since = state_in(c, host, check)?
                .filter(|k| k.state != CheckState::Ok)
                .map_or(at, |k| k.since);
            reach_in(c, host, check, since, at, settle)
        })
    }
}
