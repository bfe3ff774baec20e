//! Schedules: one-shot, interval and cron timings of a script (or a check with its fix) on a
//! host, a tag or a site.

use std::collections::HashMap;

use super::hosts::host_id;
use super::scripts::script_id;
use super::statements as st;
use super::{ConnExt, Host, NewSchedule, Row, Schedule, Store, StoreError, Timing, now_ms};
use crate::sql::param;

/// What a job or schedule runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// No host: the script runs once, on its own.
    Nothing,
    /// One named host.
    Host(&'a str),
    /// Every enabled host with a tag, or in a site, or both.
    Matching {
        tag: Option<&'a str>,
        site: Option<&'a str>,
    },
}

impl<'a> Target<'a> {
    /// A schedule's target.
    pub fn of(s: &'a Schedule) -> Target<'a> {
        match (&s.host, &s.tag, &s.site) {
            (Some(h), _, _) => Target::Host(h),
            (None, None, None) => Target::Nothing,
            (None, tag, site) => Target::Matching {
                tag: tag.as_deref(),
                site: site.as_deref(),
            },
        }
    }

    /// The hosts it names now: `None` stands for "no host".
    pub fn resolve(&self, hosts: &[Host]) -> Vec<Option<String>> {
        match self {
            Target::Nothing => vec![None],
            Target::Host(h) => vec![Some(h.to_string())],
            Target::Matching { tag, site } => hosts
                .iter()
                .filter(|h| {
                    h.enabled
                        && tag.is_none_or(|t| h.tags.iter().any(|x| x == t))
                        && site.is_none_or(|s| h.site.as_deref() == Some(s))
                })
                .map(|h| Some(h.name.clone()))
                .collect(),
        }
    }
}

/// Where in its interval a host's run of a tag's or a site's schedule falls: a stable offset
/// in `0..every_ms` from the schedule and the host's name (FNV-1a, the same on every node and
/// every release), so that a rule over a thousand hosts spreads their runs over its interval
/// instead of queueing all of them at once, as Icinga's check splay does.
pub fn splay(schedule: i64, host: &str, every_ms: i64) -> i64 {
    if every_ms <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in schedule.to_le_bytes().iter().chain(host.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % every_ms as u64) as i64
}

/// A schedule's sites as stored (comma-separated).
pub fn split_sites(s: Option<&str>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// A timing as the schedule's columns: kind, at_time, every_ms, cron.
type TimingColumns = (&'static str, Option<i64>, Option<i64>, Option<String>);

fn timing_columns(t: &Timing) -> Result<TimingColumns, StoreError> {
    Ok(match t {
        Timing::At(t) => ("at", Some(*t), None, None),
        Timing::Every(ms) if *ms < 1000 => {
            return Err(StoreError::Invalid(
                "an interval must be at least one second".into(),
            ));
        }
        Timing::Every(ms) => ("every", None, Some(*ms), None),
        Timing::Cron(c) => ("cron", None, None, Some(c.clone())),
    })
}

/// A quorum names its sites (each once, valid names), and asks for 1 to all of them.
fn check_quorum(sites: &[String], quorum: Option<i64>) -> Result<(), StoreError> {
    let bad = |m: String| Err(StoreError::Invalid(m));
    match quorum {
        None if sites.is_empty() => Ok(()),
        None => bad("--sites goes with --quorum N: how many sites must see a problem".into()),
        Some(_) if sites.is_empty() => {
            bad("--quorum goes with --sites: the sites that each run the check".into())
        }
        Some(q) if q < 1 || q > sites.len() as i64 => bad(format!(
            "--quorum {q}: give 1 to {} (the number of sites)",
            sites.len()
        )),
        Some(_) => {
            for (i, site) in sites.iter().enumerate() {
                if !super::valid_name(site) || site.contains(',') {
                    return bad(format!("site {site:?}: letters, digits, '.', '-' and '_'"));
                }
                if sites[..i].contains(site) {
                    return bad(format!("site {site} is named twice"));
                }
            }
            Ok(())
        }
    }
}

pub(super) fn schedule_from_row(r: &Row) -> Result<Schedule, StoreError> {
    let timing = match r.text("kind")?.as_str() {
        "at" => Timing::At(r.opt_int("at_time")?.unwrap_or(0)),
        "every" => Timing::Every(r.opt_int("every_ms")?.unwrap_or(60_000)),
        "cron" => Timing::Cron(r.text("cron")?),
        other => return Err(StoreError::Db(format!("unknown schedule kind {other:?}"))),
    };
    Ok(Schedule {
        id: r.int("id")?,
        script: r.text("script")?,
        fix_script: r.opt_text("fix_script")?,
        host: r.opt_text("host")?,
        tag: r.opt_text("tag")?,
        site: r.opt_text("site")?,
        priority: r.int("priority")?,
        timing,
        timeout_ms: r.opt_int("timeout_ms")?,
        max_attempts: r.int("max_attempts")?,
        next_due: r.opt_int("next_due")?,
        guard_max_fixes: r.int("guard_max_fixes")?,
        guard_window_ms: r.int("guard_window_ms")?,
        guard_backoff_ms: r.int("guard_backoff_ms")?,
        allow_duplicate: r.boolean("allow_duplicate")?,
        enabled: r.boolean("enabled")?,
        retries: r.int("retries")?,
        retry_every_ms: r.opt_int("retry_every_ms")?,
        name: r.opt_text("name")?,
        args: r.opt_text("args")?,
        fix_args: r.opt_text("fix_args")?,
        sites: split_sites(r.opt_text("sites")?.as_deref()),
        quorum: r.opt_int("quorum")?,
        managed: r.boolean("managed")?,
    })
}

/// Checks a schedule before it is written.
pub(super) fn check_schedule(s: &NewSchedule) -> Result<(), StoreError> {
    super::jobs::check_bounds(s.priority, s.timeout_ms)?;
    let targets = [s.host.is_some(), s.tag.is_some(), s.site.is_some()];
    if targets.iter().filter(|t| **t).count() > 1 {
        return Err(StoreError::Invalid(
            "a schedule targets one host, or a tag, or a site".into(),
        ));
    }
    super::jobs::check_args(s.args.as_deref())?;
    super::jobs::check_args(s.fix_args.as_deref())?;
    super::jobs::check_name(s.name.as_deref())?;
    check_quorum(&s.sites, s.quorum)?;
    timing_columns(&s.timing).map(|_| ())
}

/// Scripts' and hosts' ids by name, read once within one transaction: an apply of many
/// schedules reads each script and host once, not once a schedule.
#[derive(Debug, Default)]
pub(super) struct Ids {
    scripts: HashMap<String, i64>,
    hosts: HashMap<String, i64>,
}

/// `name`'s id from `known`, or read by `read` and kept there.
fn id_of(
    known: &mut HashMap<String, i64>,
    c: &mut dyn super::Conn,
    name: &str,
    read: fn(&mut dyn super::Conn, &str) -> Result<i64, StoreError>,
) -> Result<i64, StoreError> {
    if let Some(id) = known.get(name) {
        return Ok(*id);
    }
    let id = read(c, name)?;
    known.insert(name.to_string(), id);
    Ok(id)
}

impl Ids {
    fn script(&mut self, c: &mut dyn super::Conn, name: &str) -> Result<i64, StoreError> {
        id_of(&mut self.scripts, c, name, script_id)
    }

    fn host(&mut self, c: &mut dyn super::Conn, name: &str) -> Result<i64, StoreError> {
        id_of(&mut self.hosts, c, name, host_id)
    }

    /// A host made in this transaction.
    pub(super) fn made_host(&mut self, name: &str, id: i64) {
        self.hosts.insert(name.to_string(), id);
    }
}

/// Inserts a checked schedule; its id.
pub(super) fn insert_schedule(
    c: &mut dyn super::Conn,
    s: &NewSchedule,
    managed: bool,
) -> Result<i64, StoreError> {
    insert_schedule_with(c, s, managed, &mut Ids::default())
}

/// [`insert_schedule`], with the ids read before in this transaction.
pub(super) fn insert_schedule_with(
    c: &mut dyn super::Conn,
    s: &NewSchedule,
    managed: bool,
    ids: &mut Ids,
) -> Result<i64, StoreError> {
    let (kind, at, every, cron) = timing_columns(&s.timing)?;
    let at_now = now_ms();
    let script = ids.script(c, &s.script)?;
    let fix = s
        .fix_script
        .as_deref()
        .map(|f| ids.script(c, f))
        .transpose()?;
    let host = match &s.host {
        Some(h) => Some(ids.host(c, h)?),
        None => None,
    };
    c.insert(st::schedule_insert(vec![
        ("script_id", param(script)),
        ("fix_script_id", param(fix)),
        ("host_id", param(host)),
        ("tag", param(s.tag.clone())),
        ("site", param(s.site.clone())),
        ("priority", param(s.priority)),
        ("kind", param(kind)),
        ("at_time", param(at)),
        ("every_ms", param(every)),
        ("cron", param(cron.clone())),
        ("timeout_ms", param(s.timeout_ms)),
        ("max_attempts", param(s.max_attempts)),
        ("next_due", param(s.next_due)),
        ("guard_max_fixes", param(s.guard_max_fixes)),
        ("guard_window_ms", param(s.guard_window_ms)),
        ("guard_backoff_ms", param(s.guard_backoff_ms)),
        ("allow_duplicate", param(s.allow_duplicate)),
        ("enabled", param(true)),
        ("created_at", param(at_now)),
        ("retries", param(s.retries.max(1))),
        ("retry_every_ms", param(s.retry_every_ms)),
        ("name", param(s.name.clone())),
        ("args", param(s.args.clone())),
        ("fix_args", param(s.fix_args.clone())),
        (
            "sites",
            param((!s.sites.is_empty()).then(|| s.sites.join(","))),
        ),
        ("quorum", param(s.quorum)),
        ("managed", param(managed)),
    ]))
}

/// Changes schedule `id` in place to a checked `s` (its script, target, name and sites stay).
pub(super) fn update_schedule_in(
    c: &mut dyn super::Conn,
    id: i64,
    s: &NewSchedule,
    managed: bool,
) -> Result<(), StoreError> {
    let (kind, at, every, cron) = timing_columns(&s.timing)?;
    let fix = s
        .fix_script
        .as_deref()
        .map(|f| script_id(c, f))
        .transpose()?;
    let changed = c.exec(st::schedule_update(
        id,
        vec![
            ("fix_script_id", param(fix)),
            ("priority", param(s.priority)),
            ("kind", param(kind)),
            ("at_time", param(at)),
            ("every_ms", param(every)),
            ("cron", param(cron.clone())),
            ("timeout_ms", param(s.timeout_ms)),
            ("max_attempts", param(s.max_attempts)),
            ("next_due", param(s.next_due)),
            ("enabled", param(true)),
            ("guard_max_fixes", param(s.guard_max_fixes)),
            ("guard_window_ms", param(s.guard_window_ms)),
            ("guard_backoff_ms", param(s.guard_backoff_ms)),
            ("retries", param(s.retries.max(1))),
            ("retry_every_ms", param(s.retry_every_ms)),
            ("args", param(s.args.clone())),
            ("fix_args", param(s.fix_args.clone())),
            ("managed", param(managed)),
        ],
    ))?;
    match changed {
        0 => Err(StoreError::NotFound {
            kind: "schedule",
            name: id.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Removes a schedule, and the checks of its script that no other schedule runs.
pub(super) fn delete_schedule(c: &mut dyn super::Conn, id: i64) -> Result<(), StoreError> {
    let gone = c
        .query_one(st::schedule_by_id(id))?
        .map(|r| schedule_from_row(&r))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound {
            kind: "schedule",
            name: id.to_string(),
        })?;
    c.exec(st::schedule_delete(id))?;
    let rest: Vec<Schedule> = c
        .query(st::schedule_list())?
        .iter()
        .map(schedule_from_row)
        .filter(|s| s.as_ref().map_or(true, |s| s.script == gone.script))
        .collect::<Result<_, _>>()?;
    let hosts: Vec<Host> = c
        .query(st::host_list())?
        .iter()
        .map(super::hosts::host_from_row)
        .collect::<Result<_, _>>()?;
    let covered: Vec<Option<String>> = rest
        .iter()
        .flat_map(|s| Target::of(s).resolve(&hosts))
        .collect();
    for row in c.query(st::check_list())? {
        let check = super::checks::check_from_row(&row)?;
        if check.script == gone.script && !covered.contains(&check.host) {
            c.exec(st::check_delete(check.id))?;
        }
    }
    Ok(())
}

impl Store {
    pub fn add_schedule(&self, s: &NewSchedule) -> Result<i64, StoreError> {
        check_schedule(s)?;
        self.write(|c| insert_schedule(c, s, false))
    }

    /// Changes schedule `id` in place to `s` (its script, target, name and sites stay): its
    /// checks keep their state, acknowledgement and "failing since".
    pub fn update_schedule(&self, id: i64, s: &NewSchedule) -> Result<(), StoreError> {
        check_schedule(s)?;
        let managed = self.schedule(id)?.managed;
        self.write(|c| update_schedule_in(c, id, s, managed))
    }

    pub fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.read(|c| {
            c.query(st::schedule_list())?
                .iter()
                .map(schedule_from_row)
                .collect()
        })
    }

    pub fn schedule(&self, id: i64) -> Result<Schedule, StoreError> {
        self.read(|c| c.query_one(st::schedule_by_id(id)))?
            .map(|r| schedule_from_row(&r))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "schedule",
                name: id.to_string(),
            })
    }

    /// Enabled schedules whose next due time has come, or comes within `ahead_ms`.
    pub fn due_schedules(&self, ahead_ms: i64) -> Result<Vec<Schedule>, StoreError> {
        self.read(|c| {
            c.query(st::schedule_due(ahead_ms))?
                .iter()
                .map(schedule_from_row)
                .collect()
        })
    }

    /// When the next enabled schedule falls due (None: none will).
    pub fn next_schedule_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .read(|c| c.query_one(st::schedule_next_due()))?
            .map(|r| r.opt_int("due"))
            .transpose()?
            .flatten())
    }

    /// Removes a schedule, and the checks of its script that no other schedule runs.
    pub fn remove_schedule(&self, id: i64) -> Result<(), StoreError> {
        self.write(|c| delete_schedule(c, id))
    }
}
