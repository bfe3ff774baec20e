//! Quorum across sites: a schedule with `--sites dc1,dc2,dc3 --quorum 2` runs its check once on
//! a node of each site each time it is due. Each site's latest result is kept in the check's
//! row (`checks.sites`, a JSON object), and the check's state is theirs taken together: a
//! problem only when at least `quorum` sites see one, and then the worst of what they see.
//! One site fixes it: the first, in the schedule's order, that sees the problem.
//!
//! Pure functions over the sites' results; the store keeps the map in the run's transaction
//! (`checks::record`), and monitord asks [`Store::quorum_after`] before a fix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::statements as st;
use super::{CheckState, Schedule, Store, StoreError};

/// One site's latest result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteResult {
    pub state: CheckState,
    pub at: i64,
    pub message: String,
}

/// Each site's latest result, by site.
pub type Sites = BTreeMap<String, SiteResult>;

/// The check as the sites see it together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// OK unless at least `quorum` sites see a problem; then the worst they see.
    pub state: CheckState,
    /// Which site saw what, in the schedule's order: "dc1: CRITICAL refused; dc2: OK ...".
    pub message: String,
    /// The site that fixes it: the first in the schedule's order that sees the problem.
    pub fixer: Option<String>,
}

/// How bad a problem state is, for the worst of several: CRITICAL, UNKNOWN, WARNING.
fn rank(s: CheckState) -> u8 {
    match s {
        CheckState::Ok => 0,
        CheckState::Warning => 1,
        CheckState::Unknown => 2,
        CheckState::Critical => 3,
    }
}

/// The sites' results taken together (only the schedule's `sites` count).
pub fn view(results: &Sites, sites: &[String], quorum: i64) -> View {
    let seen: Vec<(&String, &SiteResult)> = sites
        .iter()
        .filter_map(|s| results.get(s).map(|r| (s, r)))
        .collect();
    let problems: Vec<&(&String, &SiteResult)> = seen
        .iter()
        .filter(|(_, r)| r.state != CheckState::Ok)
        .collect();
    let agreed = problems.len() as i64 >= quorum.max(1);
    let state = if agreed {
        problems
            .iter()
            .map(|(_, r)| r.state)
            .max_by_key(|s| rank(*s))
            .unwrap_or(CheckState::Unknown)
    } else {
        CheckState::Ok
    };
    let message = sites
        .iter()
        .map(|s| match results.get(s) {
            Some(r) => format!("{s}: {} {}", r.state.as_str().to_uppercase(), r.message),
            None => format!("{s}: no result yet"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let message = format!(
        "{} of {} sites see a problem (quorum {quorum}) - {message}",
        problems.len(),
        sites.len()
    );
    View {
        state,
        message,
        fixer: agreed
            .then(|| problems.first().map(|(s, _)| (*s).clone()))
            .flatten(),
    }
}

/// A site's result as the row holds it.
#[derive(Deserialize)]
struct Stored {
    state: String,
    at: i64,
    message: String,
}

/// The map a check's row holds (a missing or unreadable one is empty, and an entry with a
/// state that is not one is left out: each site's next result fills it again).
pub fn parse(json: Option<&str>) -> Sites {
    let stored: BTreeMap<String, Stored> = json
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    stored
        .into_iter()
        .filter_map(|(site, r)| {
            Some((
                site,
                SiteResult {
                    state: r.state.parse().ok()?,
                    at: r.at,
                    message: r.message,
                },
            ))
        })
        .collect()
}

impl Store {
    /// How a quorum schedule's check would stand after `site` saw `state`: read the other
    /// sites' latest results, and take them together with this one.
    pub fn quorum_after(
        &self,
        host: Option<&str>,
        check: &str,
        sched: &Schedule,
        site: &str,
        result: SiteResult,
    ) -> Result<View, StoreError> {
        let row = self.read(|c| {
            use super::ConnExt;
            c.query_one(st::check_get(host, check))
        })?;
        let mut sites = match row {
            Some(r) => parse(r.opt_text("sites")?.as_deref()),
            None => Sites::new(),
        };
        sites.insert(site.to_string(), result);
        Ok(view(&sites, &sched.sites, sched.quorum.unwrap_or(1)))
    }
}
