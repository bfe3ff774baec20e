//! The overview: every host with the latest status of each check, the queue, recent failures
//! and notifications. It is read at most once a second however many browsers ask (the status
//! grid over 100,000 runs is the page's one costly query), by one background thread, and its
//! host grid is rendered once per read and spliced into each response without a copy.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use maud::{Markup, PreEscaped, html};
use serde::Serialize;

use super::http::Resp;
use super::layout::{ago, page as frame, status, status_class, time};
use super::queue::jobs_table;
use super::runs::notification_table;
use super::{Web, WebResult, Who};
use crate::store::{Host, Job, JobState, Notification, Run, Status, Store, StoreError, now_ms};

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
    /// The host grid's HTML, rendered once per read and sent as is by every request.
    #[serde(skip)]
    pub grid: OnceLock<Arc<String>>,
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

/// The overview, read by one background thread while pages ask for it: at most once per
/// `TTL`, and at once after a change made through the page. A request shows the last read
/// without waiting, unless there is none yet or a change it may have made is not in it.
/// One thread doing the reads (and rendering the grid) also keeps their memory in one
/// allocator arena instead of one per web worker.
#[derive(Debug, Default)]
pub struct Cache {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct State {
    data: Option<Arc<Data>>,
    read_at: Option<Instant>,
    /// Reads asked for, the number of the last one finished, and the read a request must
    /// wait for after a change (one asked after it, not one already under way).
    asked: u64,
    done: u64,
    min_done: u64,
    error: Option<String>,
    reader: bool,
    stop: bool,
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.inner.lock().stop = true;
        self.inner.cond.notify_all();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How long a request waits for a read it needs.
const WAIT: Duration = Duration::from_secs(30);

impl Cache {
    pub fn get(&self, store: &Arc<Store>) -> Result<Arc<Data>, StoreError> {
        let mut st = self.inner.lock();
        if !st.reader {
            st.reader = true;
            let (inner, store) = (self.inner.clone(), store.clone());
            let spawned = std::thread::Builder::new()
                .name("web-dashboard".into())
                .spawn(move || {
                    // However the reader ends, the next request starts another; a read that
                    // panicked is an error for the requests waiting on it.
                    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        reader(&inner, &store)
                    }));
                    let mut st = inner.lock();
                    st.reader = false;
                    if read.is_err() {
                        st.error = Some("the dashboard read failed (internal error)".into());
                        st.done = st.asked;
                    }
                    inner.cond.notify_all();
                });
            if let Err(e) = spawned {
                st.reader = false;
                return Err(StoreError::Db(format!(
                    "cannot start the dashboard reader: {e}"
                )));
            }
        }
        let fresh = st.read_at.is_some_and(|at| at.elapsed() < TTL);
        if !fresh && st.asked == st.done {
            st.asked += 1;
            self.inner.cond.notify_all();
        }
        // Without a read yet: wait for the first; after a change made here: for a read that
        // began after it.
        let need = if st.data.is_none() { st.asked } else { st.done }.max(st.min_done);
        let end = Instant::now() + WAIT;
        while st.done < need {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Db("the dashboard read timed out".into()));
            }
            st = self
                .inner
                .cond
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        match (&st.error, &st.data) {
            (Some(e), _) => Err(StoreError::Db(e.clone())),
            (None, Some(d)) => Ok(d.clone()),
            (None, None) => Err(StoreError::Db("the dashboard has not been read".into())),
        }
    }

    /// After a change made through the page: the next request waits for a new read.
    pub fn invalidate(&self) {
        let mut st = self.inner.lock();
        st.read_at = None;
        // Even with a read under way: it may have begun before the change.
        st.asked += 1;
        st.min_done = st.asked;
        self.inner.cond.notify_all();
    }
}

/// The reader thread: a read per request for one, until the cache is dropped.
fn reader(inner: &Inner, store: &Store) {
    loop {
        let target = {
            let mut st = inner.lock();
            while st.asked == st.done && !st.stop {
                st = inner.cond.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.stop {
                return;
            }
            st.asked
        };
        let read = Data::read(store).map(|d| {
            d.grid.get_or_init(|| Arc::new(grid(&d).into_string()));
            Arc::new(d)
        });
        let mut st = inner.lock();
        match read {
            Ok(d) => {
                st.data = Some(d);
                st.error = None;
            }
            Err(e) => st.error = Some(e.to_string()),
        }
        st.read_at = Some(Instant::now());
        st.done = target;
        inner.cond.notify_all();
    }
}

/// `/`: the overview page.
pub fn page(web: &Web, who: &Who) -> WebResult {
    let d = web.dashboard.get(&web.store)?;
    let grid = d
        .grid
        .get_or_init(|| Arc::new(grid(&d).into_string()))
        .clone();
    let running = d
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Running)
        .count();
    let body = html! {
        p.meta { "As of " (time(d.at)) ". " (d.hosts.len()) " hosts, " (running) " jobs running, "
            (d.jobs.len() - running) " queued." }
        section {
            h2 { "Hosts" }
            (PreEscaped(GRID_MARK))
        }
        section.split {
            div {
                h2 { "Running and queued" }
                (jobs_table(who, &d.jobs[..d.jobs.len().min(DASHBOARD_JOBS)], false))
                @if d.jobs.len() > DASHBOARD_JOBS {
                    p { a href="/queue" { "All " (d.jobs.len()) " jobs in the queue" } }
                }
            }
            div {
                h2 { "Recent failures" }
                @if d.failures.is_empty() { p.empty { "None." } } @else {
                    table {
                        tr { th { "Run" } th { "When" } th { "Host" } th { "Script" } th { "Status" } th { "Message" } }
                        @for r in &d.failures {
                            tr {
                                td { a href={"/runs/" (r.id)} { (r.id) } }
                                td { (ago(r.finished_at, d.at)) " ago" }
                                td { (r.host.as_deref().unwrap_or("-")) }
                                td { (r.script) }
                                td { (status(r.status)) }
                                td.msg { (r.message) }
                            }
                        }
                    }
                }
                h2 { "Notifications" }
                (notification_table(&d.notifications))
            }
        }
    };
    // The grid is spliced in where its mark is, without copying it into this response.
    let mut r: Resp = frame(who, "Dashboard", Some(15), body);
    if let Some(at) = r
        .body
        .windows(GRID_MARK.len())
        .position(|w| w == GRID_MARK.as_bytes())
    {
        let tail = r.body.split_off(at + GRID_MARK.len());
        r.body.truncate(at);
        r.splice = Some((grid, tail));
    }
    Ok(r)
}

/// The dashboard lists this many jobs (running first, then in the order they will run).
const DASHBOARD_JOBS: usize = 50;

/// Where the dashboard's cached host grid goes.
const GRID_MARK: &str = "<!--hostler:grid-->";

/// A message cut for a tooltip.
fn short(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

pub fn grid(d: &super::dashboard::Data) -> Markup {
    html! {
        @if d.hosts.is_empty() { p.empty { "No hosts yet. " a href="/hosts/new" { "Add one." } } }
        @else {
            table.grid {
                tr { th { "Host" } th { "Address" } th { "Checks (latest run of each)" } }
                @for h in &d.hosts {
                    tr.disabled[!h.enabled] {
                        td { a href={"/hosts/" (h.name)} { (h.name) } }
                        td.addr { (h.method) " " (h.address) }
                        td {
                            @if h.checks.is_empty() { span.empty { "no runs yet" } }
                            @for c in &h.checks {
                                a class=(status_class(c.status)) href={"/runs/" (c.run)}
                                    title={(ago(c.finished_at, d.at)) " ago: " (short(&c.message))} {
                                    (c.script)
                                }
                                " "
                            }
                        }
                    }
                }
            }
        }
        @if !d.other.is_empty() {
            p.meta { "Without a host: "
                @for c in &d.other {
                    a class=(status_class(c.status)) href={"/runs/" (c.run)} { (c.script) } " "
                }
            }
        }
    }
}
