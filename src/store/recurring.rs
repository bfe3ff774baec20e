//! Recurring downtimes: a host, a tag or a check quiet each time a cron expression fires,
//! for a while ("every Sunday 02:00 for 2h"). Each occurrence is made a day ahead at most as
//! an ordinary downtime (`downtimes.recurring_id`), so covering, telling its start and end,
//! the page and the API work on it as on any other. One node makes each occurrence, once.

use serde::Serialize;

use super::statements as st;
use super::{ConnExt, Row, Store, StoreError, now_ms};
use crate::sql::{Delete, Insert, Order, Section, Select, Statement, Update, col, param};

/// How far ahead occurrences are made.
const AHEAD_MS: i64 = 86_400_000;

/// A recurring downtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recurring {
    pub id: i64,
    pub host: Option<String>,
    pub tag: Option<String>,
    pub script: Option<String>,
    pub cron: String,
    pub duration_ms: i64,
    pub reason: String,
    pub author: Option<String>,
    pub children: bool,
    pub managed: bool,
}

/// A new recurring downtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecurring {
    pub host: Option<String>,
    pub tag: Option<String>,
    pub script: Option<String>,
    pub cron: String,
    pub duration_ms: i64,
    pub reason: String,
    pub author: Option<String>,
    pub children: bool,
}

const COLUMNS: &[&str] = &[
    "id",
    "host",
    "tag",
    "script",
    "cron",
    "duration_ms",
    "reason",
    "author",
    "children",
    "managed",
];

fn from_row(r: &Row) -> Result<Recurring, StoreError> {
    Ok(Recurring {
        id: r.int("id")?,
        host: r.opt_text("host")?,
        tag: r.opt_text("tag")?,
        script: r.opt_text("script")?,
        cron: r.text("cron")?,
        duration_ms: r.int("duration_ms")?,
        reason: r.text("reason")?,
        author: r.opt_text("author")?,
        children: r.boolean("children")?,
        managed: r.boolean("managed")?,
    })
}

fn list() -> Statement {
    Select::from("recurring_downtimes")
        .columns(COLUMNS)
        .with(Section::OrderBy(vec![(col("id"), Order::Asc)]))
        .into()
}

/// The occurrence of a recurring downtime that starts at `starts_at`, if made.
fn occurrence(recurring: i64, starts_at: i64) -> Statement {
    Select::from("downtimes")
        .columns(&["id"])
        .filter(col("recurring_id").eq(param(recurring)))
        .filter(col("starts_at").eq(param(starts_at)))
        .into()
}

/// Checks a recurring downtime before it is written.
pub fn check_recurring(r: &NewRecurring) -> Result<(), StoreError> {
    let bad = |m: &str| Err(StoreError::Invalid(m.to_string()));
    if [r.host.is_some(), r.tag.is_some()]
        .iter()
        .filter(|t| **t)
        .count()
        != 1
    {
        return bad("give a host, a tag or a check (HOST/CHECK), just one");
    }
    if r.script.is_some() && r.host.is_none() {
        return bad("a check's downtime names its host: HOST/CHECK");
    }
    if r.reason.trim().is_empty() {
        return bad("give the reason: operators will read it");
    }
    if r.duration_ms < 60_000 {
        return bad("--for: a recurring downtime lasts at least a minute");
    }
    crate::when::cron_next(&r.cron, now_ms())
        .map_err(|e| StoreError::Invalid(format!("--cron: {e}")))?;
    Ok(())
}

/// Inserts a checked recurring downtime; its id.
pub(super) fn insert_recurring(
    c: &mut dyn super::Conn,
    r: &NewRecurring,
    managed: bool,
) -> Result<i64, StoreError> {
    c.insert(Statement::from(Insert {
        table: "recurring_downtimes",
        values: vec![
            ("host", param(r.host.clone())),
            ("tag", param(r.tag.clone())),
            ("script", param(r.script.clone())),
            ("cron", param(r.cron.as_str())),
            ("duration_ms", param(r.duration_ms)),
            ("reason", param(r.reason.as_str())),
            ("author", param(r.author.clone())),
            ("created_at", param(now_ms())),
            ("children", param(r.children)),
            ("managed", param(managed)),
        ],
        returning_id: Some("id"),
    }))
}

/// Changes a recurring downtime's duration, reason and children in place.
pub(super) fn update_recurring_in(
    c: &mut dyn super::Conn,
    id: i64,
    r: &NewRecurring,
    managed: bool,
) -> Result<(), StoreError> {
    c.exec(Statement::from(Update {
        table: "recurring_downtimes",
        set: vec![
            ("duration_ms", param(r.duration_ms)),
            ("reason", param(r.reason.as_str())),
            ("children", param(r.children)),
            ("managed", param(managed)),
        ],
        conditions: vec![col("id").eq(param(id))],
        returning: vec![],
    }))?;
    Ok(())
}

/// Removes a recurring downtime and its occurrences that have not begun (one under way runs
/// to its end).
pub(super) fn delete_recurring(c: &mut dyn super::Conn, id: i64) -> Result<(), StoreError> {
    let at = now_ms();
    let gone = c.exec(Statement::from(Delete {
        table: "recurring_downtimes",
        conditions: vec![col("id").eq(param(id))],
    }))?;
    if gone == 0 {
        return Err(StoreError::NotFound {
            kind: "recurring downtime",
            name: id.to_string(),
        });
    }
    c.exec(Statement::from(Delete {
        table: "downtimes",
        conditions: vec![
            col("recurring_id").eq(param(id)),
            col("starts_at").gt(param(at)),
        ],
    }))?;
    Ok(())
}

impl Store {
    /// Adds a recurring downtime, and makes its next occurrence if it is within a day.
    pub fn add_recurring(&self, r: &NewRecurring) -> Result<i64, StoreError> {
        check_recurring(r)?;
        if let Some(h) = &r.host {
            self.host(h)?;
        }
        if let Some(s) = &r.script {
            self.script(s)?;
        }
        let id = self.write(|c| insert_recurring(c, r, false))?;
        self.make_occurrences(now_ms())?;
        Ok(id)
    }

    pub fn recurring_downtimes(&self) -> Result<Vec<Recurring>, StoreError> {
        self.read(|c| c.query(list())?.iter().map(from_row).collect())
    }

    pub fn remove_recurring(&self, id: i64) -> Result<(), StoreError> {
        self.write(|c| delete_recurring(c, id))
    }

    /// Makes each recurring downtime's occurrence that is under way at `now` or begins within
    /// a day, once (under a lock: two nodes make it once). Returns how many were made.
    pub fn make_occurrences(&self, now: i64) -> Result<usize, StoreError> {
        let all = self.recurring_downtimes()?;
        if all.is_empty() {
            return Ok(0);
        }
        self.write(|c| {
            c.exec(Statement::Serialize("hostler_downtime"))?;
            let mut made = 0;
            for r in &all {
                // The first time it fires after now - duration: under way if not after now.
                let Ok(start) = crate::when::cron_next(&r.cron, now - r.duration_ms) else {
                    continue;
                };
                if start > now + AHEAD_MS || c.query_one(occurrence(r.id, start))?.is_some() {
                    continue;
                }
                c.insert(st::downtime_insert(vec![
                    ("host", param(r.host.clone())),
                    ("tag", param(r.tag.clone())),
                    ("script", param(r.script.clone())),
                    ("starts_at", param(start)),
                    ("ends_at", param(start + r.duration_ms)),
                    ("reason", param(r.reason.as_str())),
                    ("author", param(r.author.clone())),
                    ("created_at", param(now)),
                    ("children", param(r.children)),
                    ("recurring_id", param(r.id)),
                ]))?;
                made += 1;
            }
            Ok(made)
        })
    }
}
