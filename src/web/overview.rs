//! The overview the dashboard and `/api/dashboard` show: every host with the state of each of
//! its checks, the problems, a count per state, the queue and the notifications. It is read at
//! most once a second however many browsers ask, by one background thread, and its host grid
//! is rendered once per read (by [`super::dashboard`]) and spliced into each response without
//! a copy.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::dashboard::grid;
use crate::store::checks::problems_first;
use crate::store::guard::GuardState;
use crate::store::{
    Check as CheckRow, CheckState, Host, Job, Notification, Run, Store, StoreError, now_ms,
};

/// How long one read of the overview is shown.
const TTL: Duration = Duration::from_secs(1);

/// One check of a host, as the grid shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub script: String,
    pub state: CheckState,
    pub hard: bool,
    pub since: i64,
    pub message: String,
    /// The run that said so last.
    pub run: Option<i64>,
    pub last_run_at: i64,
    /// The parent that cuts it off, when it is unreachable.
    pub parent: Option<String>,
}

impl From<&CheckRow> for Check {
    fn from(c: &CheckRow) -> Check {
        Check {
            script: c.script.clone(),
            state: c.state,
            hard: c.hard,
            since: c.since,
            message: c.message.clone(),
            run: c.last_run_id,
            last_run_at: c.last_run_at,
            parent: c.parent.clone(),
        }
    }
}

/// How many checks are in each state.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub ok: usize,
    pub warning: usize,
    pub critical: usize,
    pub unknown: usize,
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
    /// Checks without a host.
    pub other: Vec<Check>,
    /// The checks that are not OK and not unreachable: hard before soft, then the longest
    /// failing.
    pub problems: Vec<CheckRow>,
    /// The unreachable checks, folded under the parent that cuts them off (by parent).
    pub unreachable: Vec<(String, Vec<CheckRow>)>,
    /// The ids of the checks a downtime covers now.
    pub in_downtime: Vec<i64>,
    /// Each problem's fix guard (None: no fix), in the order of `problems`.
    pub guards: Vec<Option<GuardState>>,
    pub counts: Counts,
    pub jobs: Vec<Job>,
    pub failures: Vec<Run>,
    pub notifications: Vec<Notification>,
    /// The host grid's HTML, rendered once per read and sent as is by every request.
    #[serde(skip)]
    pub grid: OnceLock<Arc<String>>,
    /// The problems' sparklines (HTML, in the order of `problems`), drawn once per read.
    #[serde(skip)]
    pub sparks: OnceLock<Arc<Vec<String>>>,
}

impl Data {
    pub fn read(store: &Store) -> Result<Data, StoreError> {
        let hosts: Vec<Host> = store.hosts()?;
        let mut checks = store.checks()?;
        problems_first(&mut checks);
        let in_downtime = store.checks_in_downtime(&checks)?;
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
        let mut counts = Counts::default();
        for c in &checks {
            *match c.state {
                CheckState::Ok => &mut counts.ok,
                CheckState::Warning => &mut counts.warning,
                CheckState::Critical => &mut counts.critical,
                CheckState::Unknown => &mut counts.unknown,
            } += 1;
            let slot = c
                .host
                .as_deref()
                .and_then(|h| out.binary_search_by(|x| x.name.as_str().cmp(h)).ok());
            match slot {
                Some(i) => out[i].checks.push(Check::from(c)),
                None => other.push(Check::from(c)),
            }
        }
        for h in &mut out {
            h.checks.sort_by(|a, b| a.script.cmp(&b.script));
        }
        checks.retain(|c| c.state != CheckState::Ok);
        let mut unreachable: std::collections::BTreeMap<String, Vec<CheckRow>> =
            std::collections::BTreeMap::new();
        checks.retain(|c| match &c.parent {
            Some(p) => {
                unreachable.entry(p.clone()).or_default().push(c.clone());
                false
            }
            None => true,
        });
        let guards = store.guard_states(&checks)?;
        Ok(Data {
            at: now_ms(),
            hosts: out,
            other,
            problems: checks,
            unreachable: unreachable.into_iter().collect(),
            in_downtime,
            guards,
            counts,
            jobs: store.jobs()?,
            failures: store.recent_failures(20)?,
            notifications: store.notifications(10)?,
            grid: OnceLock::new(),
            sparks: OnceLock::new(),
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
