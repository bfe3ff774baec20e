//! The overview: every host with the latest status of each check, the queue, recent failures
//! and notifications. It is read at most once a second however many browsers ask (the status
//! grid over 100,000 runs is the page's one costly query), and its host grid is rendered once
//! per read.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::store::{Host, Job, Notification, Run, Status, Store, StoreError, now_ms};

/// How long one read of the overview is shown.
const TTL: Duration = Duration::from_secs(1);

/// The latest run of one script on one host.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub script: String,
    pub status: Status,
    pub message: String,
    pub run: i64,
    pub finished_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub address: String,
    pub method: String,
    pub site: Option<String>,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub checks: Vec<Check>,
}

/// One read of the overview.
#[derive(Debug, Serialize)]
pub struct Data {
    /// When it was read (epoch ms).
    pub at: i64,
    pub hosts: Vec<HostStatus>,
    /// Runs without a host, or of hosts since removed.
    pub other: Vec<Check>,
    pub jobs: Vec<Job>,
    pub failures: Vec<Run>,
    pub notifications: Vec<Notification>,
    /// The host grid's HTML, rendered once per read.
    #[serde(skip)]
    pub grid: OnceLock<String>,
}

impl Data {
    pub fn read(store: &Store) -> Result<Data, StoreError> {
        let hosts: Vec<Host> = store.hosts()?;
        let latest = store.latest_runs()?;
        let mut out: Vec<HostStatus> = hosts
            .into_iter()
            .map(|h| HostStatus {
                name: h.name,
                address: h.address,
                method: h.method.to_string(),
                site: h.site,
                tags: h.tags,
                enabled: h.enabled,
                checks: Vec::new(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let mut other = Vec::new();
        for r in latest {
            let check = Check {
                script: r.script,
                status: r.status,
                message: r.message,
                run: r.id,
                finished_at: r.finished_at,
            };
            let slot = r
                .host
                .as_deref()
                .and_then(|h| out.binary_search_by(|x| x.name.as_str().cmp(h)).ok());
            match slot {
                Some(i) => out[i].checks.push(check),
                None => other.push(check),
            }
        }
        Ok(Data {
            at: now_ms(),
            hosts: out,
            other,
            jobs: store.jobs()?,
            failures: store.recent_failures(20)?,
            notifications: store.notifications(10)?,
            grid: OnceLock::new(),
        })
    }
}

/// The last read, shared by every request within [`TTL`].
#[derive(Debug, Default)]
pub struct Cache(Mutex<Option<(Instant, Arc<Data>)>>);

impl Cache {
    pub fn get(&self, store: &Store) -> Result<Arc<Data>, StoreError> {
        // Held across the read, so a burst of requests makes one read, not one each.
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, d)) = slot.as_ref()
            && at.elapsed() < TTL
        {
            return Ok(d.clone());
        }
        let d = Arc::new(Data::read(store)?);
        *slot = Some((Instant::now(), d.clone()));
        Ok(d)
    }

    /// Forgets the last read (after a change made through the page).
    pub fn invalidate(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
