//! monitord: the scheduler daemon (`hostler serve`). A library function, so tests run it
//! in-process; the CLI adds signal handling.
//!
//! One loop on smol. Each pass:
//! 1. fire due schedules into jobs (each schedule once, however many daemons share the queue);
//! 2. reap jobs asked to cancel whose node died, and close kept sessions past their idle time;
//! 3. claim due jobs while fewer than `max_concurrent` run here: up to the free slots in one
//!    transaction, one claim statement (with its lease) per job so each sees the ones before
//!    it, and run them on the blocking pool (scripts and sessions are synchronous);
//! 4. renew the leases of running jobs (every third of the lease), and pass on cancellations;
//! 5. deliver pending notifications (on the blocking pool, one batch at a time);
//! 6. sleep until the next job is due, a job finishes, a job is queued in this process, the
//!    next lease renewal, or the poll interval, whichever comes first.
//!
//! Locking rule: a database transaction is one unit of work; none is held across a script or a
//! network wait. On shutdown the daemon stops claiming, lets running jobs finish within the
//! grace period, then cancels the rest and gives their jobs back to the queue.

mod deliver;
mod runner;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};
use tracing::{Instrument, info, info_span, warn};

pub use deliver::deliver_pending;
pub use runner::{JobFlags, backoff, run_job};

use crate::config::{Config, Notify};
use crate::health::Health;
use crate::script::Env;
use crate::store::{StoreError, now_ms};

/// The daemon's settings, from `[monitord]` and `[notify]`.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_concurrent: usize,
    pub per_host: usize,
    pub poll_interval: Duration,
    pub lease: Duration,
    pub node: String,
    pub site: Option<String>,
    pub grace: Duration,
    pub retry_base: Duration,
    pub notify: Notify,
    /// Where the loop beats, for `/healthz`.
    pub health: Arc<Health>,
}

impl Options {
    pub fn from_config(c: &Config) -> Options {
        // try_from: an absurd value (inf, 1e300) in the config must not panic.
        let secs = |s: f64, min: f64| {
            Duration::try_from_secs_f64(s.max(min)).unwrap_or(Duration::from_secs(86_400 * 365))
        };
        Options {
            max_concurrent: c.monitord.max_concurrent.max(1),
            per_host: c.monitord.per_host.max(1),
            poll_interval: secs(c.monitord.poll_interval, 0.01),
            lease: secs(c.monitord.lease, 1.0),
            node: c.node(),
            site: c.monitord.site.clone(),
            grace: secs(c.monitord.grace, 0.0),
            retry_base: secs(c.monitord.retry_backoff, 0.0),
            notify: c.notify.clone(),
            health: Arc::default(),
        }
    }
}

/// Asks a running daemon to stop.
#[derive(Debug, Clone)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    wake: Sender<()>,
    rx: Receiver<()>,
}

impl Default for Shutdown {
    fn default() -> Self {
        let (wake, rx) = smol::channel::bounded(1);
        Shutdown {
            flag: Arc::new(AtomicBool::new(false)),
            wake,
            rx,
        }
    }
}

impl Shutdown {
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(());
    }
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// What the daemon did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub jobs_run: u64,
    pub released: u64,
}

struct Running {
    flags: JobFlags,
    task: smol::Task<()>,
}

/// Runs the daemon until `shutdown` is requested.
pub fn run(env: Arc<Env>, opts: Options, shutdown: Shutdown) -> Result<Summary, StoreError> {
    // Runs are recorded under the node name that holds the leases.
    let mut env = (*env).clone();
    env.node = opts.node.clone();
    smol::block_on(daemon(Arc::new(env), opts, shutdown))
}

async fn daemon(env: Arc<Env>, opts: Options, shutdown: Shutdown) -> Result<Summary, StoreError> {
    let store = env.store.clone();
    let (wake_tx, wake_rx) = smol::channel::bounded::<()>(1);
    {
        let wake = wake_tx.clone();
        store.on_enqueue(Box::new(move || {
            let _ = wake.try_send(());
        }));
    }
    let (done_tx, done_rx) = smol::channel::unbounded::<i64>();
    let stopping = Arc::new(AtomicBool::new(false));
    let mut running: HashMap<i64, Running> = HashMap::new();
    let mut summary = Summary::default();
    let renew_every = opts.lease / 3;
    let mut last_renew = Instant::now();
    let mut delivery: Option<smol::Task<usize>> = None;
    info!(node = %opts.node, max_concurrent = opts.max_concurrent, per_host = opts.per_host, "monitord started");

    // Housekeeping (schedules, orphans, expired leases, notifications) runs once per poll
    // interval; claims run on every pass, so a local enqueue or a finished job acts at once.
    let mut last_housekeeping: Option<Instant> = None;
    // Every pass ends within the poll interval; many missed passes mean the loop is stuck.
    let stall_after = (opts.poll_interval * 10).max(Duration::from_secs(30));
    while !shutdown.requested() {
        opts.health.beat(stall_after);
        let housekeeping = last_housekeeping.is_none_or(|t| t.elapsed() >= opts.poll_interval);
        if housekeeping {
            last_housekeeping = Some(Instant::now());
            // 1. Schedules.
            fire_schedules(&env);
            // 2. Orphaned cancellations, and kept sessions past their idle time.
            reap(&env);
            // Closing an SSH session to a dead peer can wait seconds: not on this loop.
            let remote = env.remote.clone();
            smol::unblock(move || remote.pool.reap()).detach();
        }
        // 3. Claims.
        let free = opts.max_concurrent.saturating_sub(running.len());
        let claimed = if free == 0 {
            Vec::new()
        } else {
            store
                .claim_jobs(
                    &opts.node,
                    opts.lease.as_millis() as i64,
                    opts.per_host as i64,
                    opts.site.as_deref(),
                    housekeeping,
                    free,
                )
                .inspect(|_| opts.health.database(Ok(())))
                .unwrap_or_else(|e| {
                    warn!("claim failed: {e}");
                    opts.health.database(Err(e.to_string()));
                    Vec::new()
                })
        };
        for job in claimed {
            let flags = JobFlags {
                stopping: stopping.clone(),
                ..JobFlags::default()
            };
            let schedule = job.schedule_id.and_then(|id| store.schedule(id).ok());
            let (env2, flags2, done, retry) =
                (env.clone(), flags.clone(), done_tx.clone(), opts.retry_base);
            let id = job.id;
            let span = info_span!("job", id, script = %job.script, host = job.host.as_deref().unwrap_or("-"), attempt = job.attempts);
            // The span is entered on the blocking thread too, so the job's logs carry it.
            let inner = span.clone();
            let task = smol::spawn(
                async move {
                    smol::unblock(move || {
                        let _entered = inner.enter();
                        let _ = run_job(&env2, &job, schedule.as_ref(), &flags2, retry);
                    })
                    .await;
                    let _ = done.send(id).await;
                }
                .instrument(span),
            );
            running.insert(id, Running { flags, task });
            summary.jobs_run += 1;
        }
        // 4. Leases and cancellations.
        if !running.is_empty() && last_renew.elapsed() >= renew_every {
            renew(&env, &opts, &running);
            last_renew = Instant::now();
        }
        // 5. Notifications.
        if housekeeping && delivery.as_ref().is_none_or(|t| t.is_finished()) {
            if let Some(t) = delivery.take() {
                t.await;
            }
            let (store2, cfg) = (store.clone(), opts.notify.clone());
            delivery = Some(smol::unblock(move || deliver_pending(&store2, &cfg)));
        }
        // 6. Sleep.
        let mut sleep = opts
            .poll_interval
            .saturating_sub(last_housekeeping.map_or(Duration::ZERO, |t| t.elapsed()));
        if !running.is_empty() {
            sleep = sleep.min(renew_every.saturating_sub(last_renew.elapsed()));
        }
        // A job due in the future: sleep until then. One already due was not claimable (its
        // host is busy, or it is another site's): a finished job or the poll brings it back,
        // so there is nothing to gain from spinning on it.
        if running.len() < opts.max_concurrent
            && let Ok(Some(due)) = store.next_due()
            && due > now_ms()
        {
            sleep = sleep.min(Duration::from_millis((due - now_ms()) as u64));
        }
        let wait = async {
            smol::Timer::after(sleep).await;
        };
        let woke = async {
            let _ = wake_rx.recv().await;
        };
        let finished = async {
            if let Ok(id) = done_rx.recv().await
                && let Some(r) = running.remove(&id)
            {
                r.task.await;
            }
        };
        let stop = async {
            let _ = shutdown.rx.recv().await;
        };
        smol::future::or(
            smol::future::or(wait, woke),
            smol::future::or(finished, stop),
        )
        .await;
        // Collect every other job that finished meanwhile.
        while let Ok(id) = done_rx.try_recv() {
            if let Some(r) = running.remove(&id) {
                r.task.await;
            }
        }
    }

    // Shutdown: no more claims; let running jobs finish within the grace period.
    info!(running = running.len(), grace = ?opts.grace, "monitord stopping");
    opts.health.stopping();
    stopping.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + opts.grace;
    while !running.is_empty() && Instant::now() < deadline {
        // Wake for renewals too: a grace period longer than the lease must not lose the jobs.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(renew_every.saturating_sub(last_renew.elapsed()));
        let next = async { done_rx.recv().await.ok() };
        let timer = async {
            smol::Timer::after(left).await;
            None
        };
        if let Some(id) = smol::future::or(next, timer).await
            && let Some(r) = running.remove(&id)
        {
            r.task.await;
        }
        if !running.is_empty() && last_renew.elapsed() >= renew_every {
            renew(&env, &opts, &running);
            last_renew = Instant::now();
        }
    }
    // The rest are cancelled; their runs are recorded as cancelled and their jobs released.
    summary.released = running.len() as u64;
    for r in running.values() {
        r.flags.cancel.store(true, Ordering::SeqCst);
    }
    for (_, r) in running.drain() {
        r.task.await;
    }
    if let Some(t) = delivery.take() {
        t.await;
    }
    info!(
        jobs_run = summary.jobs_run,
        released = summary.released,
        "monitord stopped"
    );
    Ok(summary)
}

fn fire_schedules(env: &Env) {
    let store = &env.store;
    let due = match store.due_schedules() {
        Ok(d) => d,
        Err(e) => {
            warn!("cannot read schedules: {e}");
            return;
        }
    };
    if due.is_empty() {
        return;
    }
    let hosts = store.hosts().unwrap_or_default();
    let now = now_ms();
    for s in due {
        let Some(seen) = s.next_due else { continue };
        let next = match crate::queue::timing::next_due(&s.timing, seen, now) {
            Ok(n) => n,
            Err(e) => {
                warn!(schedule = s.id, "disabling schedule: {e}");
                None
            }
        };
        let targets = crate::queue::Target::of(&s).resolve(&hosts);
        match store.fire_schedule(&s, seen, &targets, next) {
            Ok(n) => info!(schedule = s.id, script = %s.script, queued = n, "schedule fired"),
            Err(e) => warn!(schedule = s.id, "cannot fire schedule: {e}"),
        }
    }
}

/// Jobs asked to cancel whose node died: record them as cancelled and remove them.
fn reap(env: &Env) {
    let Ok(orphans) = env.store.orphaned_cancels() else {
        return;
    };
    for job in orphans {
        let run = crate::store::NewRun::cancelled(
            &job,
            &env.node,
            "cancelled; the node running it stopped before it could",
            now_ms(),
        );
        if let Err(e) = env.store.record_run(&run) {
            warn!(job = job.id, "cannot reap a cancelled job: {e}");
        }
    }
}

fn renew(env: &Env, opts: &Options, running: &HashMap<i64, Running>) {
    let ids: Vec<i64> = running.keys().copied().collect();
    match env
        .store
        .renew_leases(&opts.node, &ids, opts.lease.as_millis() as i64)
    {
        Ok(states) => {
            for lease in states {
                let Some(r) = running.get(&lease.job) else {
                    continue;
                };
                if lease.owner.as_deref() != Some(opts.node.as_str()) {
                    warn!(
                        job = lease.job,
                        "lease lost to {:?}; stopping our copy", lease.owner
                    );
                    r.flags.lost.store(true, Ordering::SeqCst);
                    r.flags.cancel.store(true, Ordering::SeqCst);
                } else if lease.state == crate::store::JobState::Cancelling {
                    info!(job = lease.job, "cancel requested");
                    r.flags.cancel.store(true, Ordering::SeqCst);
                }
            }
        }
        Err(e) => warn!("cannot renew leases: {e}"),
    }
}
