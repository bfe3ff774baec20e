//! monitord: the scheduler daemon (`hostler serve`). A library function, so tests run it
//! in-process; the CLI adds signal handling.
//!
//! One loop on smol (`Daemon`, one method a step). Each pass:
//! 1. claim due jobs while fewer than `max_concurrent` are due here, and jobs due within
//!    `claim_ahead` into as much room again: in one transaction, one claim statement (with
//!    its lease) per job so each sees the ones before it; each runs on a thread of the job
//!    pool (scripts and sessions are synchronous), a job claimed ahead at its due time, from
//!    memory, so a write lock held meanwhile by another process does not delay it;
//! 2. fire schedules due now or within `claim_ahead` into jobs due at their time (each
//!    schedule once, however many daemons share the queue);
//! 3. reap jobs asked to cancel whose node died, and close kept sessions past their idle time;
//! 4. renew the leases of running jobs (every third of the lease), and pass on cancellations;
//! 5. tell downtimes that began or ended, and deliver pending notifications (on the blocking
//!    pool, one batch at a time);
//! 6. sleep until the next job or schedule comes within `claim_ahead`, a job finishes, a job
//!    is queued in this process, the next lease renewal, or the poll interval, whichever
//!    comes first.
//!
//! Locking rule: a database transaction is one unit of work; none is held across a script or a
//! network wait. On shutdown the daemon stops claiming, lets running jobs finish within the
//! grace period, then cancels the rest and gives their jobs back to the queue.

mod deliver;
mod pool;
mod progress;
mod runner;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::store::Schedule;

pub use crate::store::guard::{FixGuard, fix_guard};
pub use deliver::{Channels, deliver_at, deliver_pending};
pub use runner::{JobFlags, Pace, backoff, run_job};

use crate::config::Config;
use crate::health::Health;
use crate::script::Runner;
use crate::store::{JobAction, StoreError, now_ms};

/// The daemon's settings, from `[monitord]` and `[notify]`.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub max_concurrent: usize,
    pub per_host: usize,
    pub poll_interval: Duration,
    pub lease: Duration,
    pub node: String,
    pub site: Option<String>,
    pub grace: Duration,
    pub retry_base: Duration,
    /// After a fix, how long the re-check may keep trying (`[monitord] recheck_within`).
    pub recheck_within: Duration,
    /// Where notifications go (`[notify]`, and `[web] public_url` for links).
    pub channels: Channels,
    /// Where the loop beats, for `/healthz`.
    pub health: Arc<Health>,
    /// What history keeps (`[history]`): the daemon's housekeeping passes.
    pub history: crate::config::History,
    /// How long the oldest due job may wait before the node says it is behind.
    pub max_lag: Duration,
    /// How far ahead of their due time schedules fire and jobs are claimed (zero: not at all).
    pub claim_ahead: Duration,
}

impl DaemonOptions {
    pub fn from_config(c: &Config) -> DaemonOptions {
        // try_from: an absurd value (inf, 1e300) in the config must not panic.
        let secs = |s: f64, min: f64| {
            Duration::try_from_secs_f64(s.max(min)).unwrap_or(Duration::from_secs(86_400 * 365))
        };
        DaemonOptions {
            max_concurrent: c.monitord.max_concurrent.max(1),
            per_host: c.monitord.per_host.max(1),
            poll_interval: secs(c.monitord.poll_interval, 0.01),
            lease: secs(c.monitord.lease, 1.0),
            node: c.node(),
            site: c.monitord.site.clone(),
            grace: secs(c.monitord.grace, 0.0),
            retry_base: secs(c.monitord.retry_backoff, 0.0),
            recheck_within: secs(c.monitord.recheck_within, 0.0),
            channels: Channels::from_config(c),
            health: Arc::default(),
            history: c.history.clone(),
            max_lag: secs(c.monitord.max_lag, 1.0),
            // Within a lease: a job claimed ahead must not lose its lease before it starts.
            claim_ahead: secs(c.monitord.claim_ahead.min(c.monitord.lease / 3.0), 0.0),
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

/// A new configuration for a running daemon (SIGHUP), taken at the start of its next pass:
/// the sandbox and sessions (a new `Runner` on the same store) and `[monitord]`/`[notify]`
/// settings. The node's name stays; jobs already running finish with what they started with.
#[derive(Clone, Default)]
pub struct Reload {
    next: Arc<std::sync::Mutex<Option<(Runner, DaemonOptions)>>>,
}

impl Reload {
    pub fn offer(&self, env: Runner, opts: DaemonOptions) {
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = Some((env, opts));
    }

    fn take(&self) -> Option<(Runner, DaemonOptions)> {
        self.next.lock().unwrap_or_else(|p| p.into_inner()).take()
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
    /// When it starts (epoch ms): its due time when it was claimed ahead, else its claim.
    starts_at: i64,
}

/// Runs the daemon until `shutdown` is requested.
pub fn run(
    env: Arc<Runner>,
    opts: DaemonOptions,
    shutdown: Shutdown,
) -> Result<Summary, StoreError> {
    run_with_reload(env, opts, shutdown, Reload::default())
}

/// Runs the daemon until `shutdown` is requested, taking new configurations from `reload`.
pub fn run_with_reload(
    env: Arc<Runner>,
    opts: DaemonOptions,
    shutdown: Shutdown,
    reload: Reload,
) -> Result<Summary, StoreError> {
    // Runs are recorded under the node name that holds the leases.
    let mut env = (*env).clone();
    env.node = opts.node.clone();
    smol::block_on(daemon(Arc::new(env), opts, shutdown, reload))
}

/// The daemon between passes: what runs here, and when each periodic step last ran.
struct Daemon {
    env: Arc<Runner>,
    opts: DaemonOptions,
    running: HashMap<i64, Running>,
    summary: Summary,
    /// Set on shutdown: a job cancelled then goes back to the queue.
    stopping: Arc<AtomicBool>,
    /// Finished jobs report their ids here.
    done_tx: Sender<i64>,
    done_rx: Receiver<i64>,
    /// A job queued in this process wakes the loop.
    wake_rx: Receiver<()>,
    renew_every: Duration,
    last_renew: Instant,
    /// When this node last knew its leases good: a renewal that went through, or no jobs.
    leases_good: Instant,
    /// The last claim or renewal found the database unreachable: the steps that need it wait.
    db_down: bool,
    last_housekeeping: Option<Instant>,
    /// When the next schedule falls due, as the last pass read it: the loop wakes then and
    /// fires it, not at the next poll.
    next_fire: Option<i64>,
    /// The last firing fired something, and nothing failed: a schedule whose time to fire has
    /// come already may fire at once. Otherwise it waits for the poll, so neither a failure nor
    /// a schedule that the database's clock does not call due yet spins the loop.
    fire_again: bool,
    delivery: Option<smol::Task<usize>>,
    /// The last history pass (`[history] prune_every`), and the one running.
    last_prune: Option<Instant>,
    pruning: Option<smol::Task<()>>,
    /// Whether it keeps up: runs, skipped runs, the queue's lag.
    progress: Arc<progress::Progress>,
    /// Records finished runs many to a transaction (None: each on its own).
    writer: Option<Arc<writer::RunWriter>>,
    /// Jobs running at once (`max_concurrent`): a job claimed ahead takes one at its due time.
    slots: Arc<smol::lock::Semaphore>,
    /// The threads jobs run on.
    pool: pool::JobPool,
    /// When the next queued job not yet due falls due, as the last pass read it: a claim asks
    /// for jobs ahead only when one is within reach (on PostgreSQL every statement of a claim
    /// holds the lock that all nodes' claims take in turn).
    next_queued: Option<i64>,
    /// The next schedule's due time, as the last pass read it.
    next_schedule: Option<i64>,
    /// What the last reads of the queue and the schedules saw, and when: a pass that only
    /// collected finished jobs and changed nothing reuses them (see `reads_hold`).
    reads: Reads,
}

/// The last reads of the queue's next job and the next schedule.
#[derive(Debug, Default)]
struct Reads {
    /// When they were made.
    at: Option<Instant>,
    /// Whether `next_queued` is a read (a node without room does not read it).
    queue: bool,
    /// A queued job was due already (its host busy, or another site's): a finished job may
    /// have freed it, so every pass tries a claim of due jobs.
    overdue: bool,
    /// Something since may have changed the queue or the schedules: a claim, a firing, a
    /// job queued here, or a wake other than a finished job.
    stale: bool,
}

/// How long a pass that changed nothing reuses the last reads. A finished job frees room but
/// queues nothing that does not wake the loop itself (a fix, a recheck), so a node that
/// keeps up does not read the queue once a check; a job queued by another process is seen
/// at most this much later (or at the next claim, firing or poll).
const REREAD: Duration = Duration::from_millis(250);

/// Why a pass's sleep ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Woke {
    Timer,
    Queued,
    Finished,
    Stop,
}

/// The least a pass sleeps for a job that falls due: jobs due within it of each other start
/// in one pass (and one claim), at most this late.
const BATCH_WAKE: Duration = Duration::from_millis(5);

/// The loop itself: the module's list of steps, one method each.
async fn daemon(
    env: Arc<Runner>,
    opts: DaemonOptions,
    shutdown: Shutdown,
    reload: Reload,
) -> Result<Summary, StoreError> {
    let mut d = Daemon::new(env, opts);
    // Every pass ends within the poll interval; many missed passes mean the loop is stuck.
    let stall_after = (d.opts.poll_interval * 10).max(Duration::from_secs(30));
    while !shutdown.requested() {
        if let Some((env, opts)) = reload.take() {
            d.reconfigure(env, opts);
        }
        d.opts.health.beat(stall_after);
        // Housekeeping (schedules, orphans, expired leases, notifications) runs once per poll
        // interval; claims run on every pass, so a local enqueue or a finished job acts at once.
        let housekeeping = d.housekeeping_due();
        // While the database cannot be reached, only the claim (which fails at once until
        // it works again) and the lease renewals try it; the rest waits. Claims come before
        // firing: a check's job that has just fallen due is taken before its schedule fires
        // the next one (which a job still queued would hold back).
        d.claim(housekeeping);
        if housekeeping && !d.db_down {
            d.fire_and_reap();
        } else if !d.db_down && d.next_fire.is_some_and(|t| t <= now_ms()) {
            d.reads.stale = true;
            d.fire_again = fire_schedules(&d.env, &d.progress, d.ahead_ms());
        }
        d.renew_if_due();
        if housekeeping && !d.db_down {
            d.deliver().await;
            d.prune_if_due();
        }
        d.sleep(&shutdown).await;
        d.collect_finished().await;
    }
    d.shut_down().await
}

impl Daemon {
    fn new(env: Arc<Runner>, opts: DaemonOptions) -> Daemon {
        let (wake_tx, wake_rx) = smol::channel::bounded::<()>(1);
        env.store.on_enqueue(Box::new(move || {
            let _ = wake_tx.try_send(());
        }));
        let (done_tx, done_rx) = smol::channel::unbounded::<i64>();
        info!(node = %opts.node, max_concurrent = opts.max_concurrent, per_host = opts.per_host, "monitord started");
        let writer = writer::RunWriter::start(env.store.clone()).map(Arc::new);
        let slots = Arc::new(smol::lock::Semaphore::new(opts.max_concurrent));
        Daemon {
            renew_every: opts.lease / 3,
            env,
            opts,
            running: HashMap::new(),
            summary: Summary::default(),
            stopping: Arc::new(AtomicBool::new(false)),
            done_tx,
            done_rx,
            wake_rx,
            last_renew: Instant::now(),
            leases_good: Instant::now(),
            db_down: false,
            last_housekeeping: None,
            next_fire: None,
            fire_again: false,
            delivery: None,
            last_prune: None,
            pruning: None,
            progress: Arc::default(),
            writer,
            slots,
            pool: pool::JobPool::default(),
            next_queued: None,
            next_schedule: None,
            reads: Reads::default(),
        }
    }

    /// Takes a new configuration: the node's name and heartbeat stay.
    fn reconfigure(&mut self, mut env: Runner, mut opts: DaemonOptions) {
        opts.node = self.opts.node.clone();
        opts.health = self.opts.health.clone();
        env.node = opts.node.clone();
        self.renew_every = opts.lease / 3;
        // The same slots, as many as the new configuration says: jobs running keep theirs, and
        // fewer take effect as they finish.
        let (old, new) = (self.opts.max_concurrent, opts.max_concurrent);
        if new > old {
            self.slots.add_permits(new - old);
        } else if new < old {
            let slots = self.slots.clone();
            smol::spawn(async move {
                for _ in new..old {
                    slots.acquire_arc().await.forget();
                }
            })
            .detach();
        }
        info!(
            max_concurrent = opts.max_concurrent,
            per_host = opts.per_host,
            "configuration reloaded"
        );
        self.env = Arc::new(env);
        self.opts = opts;
        self.reads.stale = true;
        // The runs of jobs started from now on go to the new store's writer; the old one ends
        // with the last job that holds it.
        self.writer = writer::RunWriter::start(self.env.store.clone()).map(Arc::new);
    }

    /// Whether a poll interval has passed since the last housekeeping (and marks it begun).
    fn housekeeping_due(&mut self) -> bool {
        let due = self
            .last_housekeeping
            .is_none_or(|t| t.elapsed() >= self.opts.poll_interval);
        if due {
            self.last_housekeeping = Some(Instant::now());
        }
        due
    }

    /// Steps 1 and 2: fire due schedules into jobs; reap orphaned cancellations; close kept
    /// sessions past their idle time (on the blocking pool: a dead peer can take seconds).
    fn fire_and_reap(&mut self) {
        self.reads.stale = true;
        self.fire_again = fire_schedules(&self.env, &self.progress, self.ahead_ms());
        reap(&self.env);
        let remote = self.env.remote.clone();
        smol::unblock(move || remote.pool.reap()).detach();
    }

    /// How far ahead schedules fire and jobs are claimed, in ms.
    fn ahead_ms(&self) -> i64 {
        self.opts.claim_ahead.as_millis() as i64
    }

    /// The least room for jobs ahead that a claim of them alone waits for: a quarter of the
    /// slots. Without it a node that keeps up claims one job at a time, each as the one
    /// before it starts: a transaction a check, where a batch costs about the same.
    fn ahead_batch(&self) -> usize {
        (self.opts.max_concurrent / 4).max(1)
    }

    /// Room for more claims at `now`: (due jobs, jobs claimed ahead). Due jobs fill the slots
    /// that jobs already due leave free; jobs claimed ahead, up to as many again, wait for
    /// their due time (when they count as due, and take a slot as one frees).
    fn room(&self, now: i64) -> (usize, usize) {
        let max = self.opts.max_concurrent;
        let due = self.running.values().filter(|r| r.starts_at <= now).count();
        let ahead = self.running.len() - due;
        // Jobs claimed ahead whose time came while every slot was taken wait as due ones:
        // counted in all, this node never holds more than twice `max_concurrent`.
        let ahead_room = if self.opts.claim_ahead.is_zero() {
            0
        } else {
            max.saturating_sub(ahead)
                .min((2 * max).saturating_sub(self.running.len()))
        };
        (max.saturating_sub(due), ahead_room)
    }

    /// Step 3: claim due jobs into the free slots, and jobs due within `claim_ahead` into the
    /// room for those, in one transaction, and start each on the job threads (a job claimed
    /// ahead at its due time). The claim's outcome is the database's health for `/healthz`.
    fn claim(&mut self, include_expired: bool) {
        let now = now_ms();
        let (mut free, mut ahead_room) = self.room(now);
        // Whether the last reads saw a job due by now, and whether one may be due. No claim of
        // due jobs when none can be: the reads still hold (only finished jobs woke this pass)
        // and saw none.
        let seen_due = self.reads.queue
            && (self.reads.overdue || self.next_queued.is_some_and(|due| due <= now));
        if !seen_due && !include_expired && self.reads_hold() && self.reads.queue {
            free = 0;
        }
        // A claim for jobs ahead alone waits until it can take a batch of them; one that
        // claims a due job anyway takes as many ahead as there is room for.
        let due_now = free > 0 && seen_due;
        if self
            .next_queued
            .is_none_or(|due| due > now + self.ahead_ms())
            || (!due_now && ahead_room < self.ahead_batch())
        {
            ahead_room = 0;
        }
        if free == 0 && ahead_room == 0 {
            return;
        }
        self.reads.stale = true;
        let ask = crate::store::ClaimAsk {
            owner: &self.opts.node,
            lease_ms: self.opts.lease.as_millis() as i64,
            per_host: self.opts.per_host as i64,
            site: self.opts.site.as_deref(),
            include_expired,
            max: free,
            ahead: (ahead_room > 0).then(|| (self.ahead_ms(), ahead_room)),
        };
        let claimed = self
            .env
            .store
            .claim_asked(&ask)
            .inspect(|_| {
                self.db_down = false;
                if self.opts.health.database(Ok(())) {
                    info!("the database works again; claiming jobs");
                }
            })
            .unwrap_or_else(|e| {
                self.db_down = matches!(e, StoreError::Unreachable(_));
                // Logged when it starts failing (and at debug level after that): while the
                // database cannot be reached, every pass fails at once.
                if self.opts.health.database(Err(e.to_string())) {
                    warn!("claim failed; no jobs are claimed until the database works: {e}");
                } else {
                    tracing::debug!("claim failed: {e}");
                }
                Vec::new()
            });
        // The jobs of one schedule (a tag's hosts) share its row: read once per claim. So
        // do their scripts' versions (one read for the claim, not one a run).
        let mut schedules: HashMap<i64, Result<Option<Arc<Schedule>>, String>> = HashMap::new();
        let versions = if claimed.len() > 1 {
            self.env
                .versions_for(claimed.iter().map(|j| j.script.as_str()))
        } else {
            None
        };
        for mut job in claimed {
            job.versions.clone_from(&versions);
            // Our own job, claimed again after its lease ran out while the database was
            // away: it still runs here, and its run will end the row. No second copy.
            if self.running.contains_key(&job.id) {
                info!(
                    job = job.id,
                    "claimed again while it still runs here; keeping the one copy"
                );
                continue;
            }
            let schedule = match job.schedule_id {
                None => Ok(None),
                Some(id) => schedules
                    .entry(id)
                    .or_insert_with(|| self.read_schedule(id))
                    .clone(),
            };
            self.start(job, schedule);
        }
    }

    /// A job's schedule: None when it was removed meanwhile; one that cannot be read is an
    /// error, and the job decides nothing on a guess (see run_job).
    fn read_schedule(&self, id: i64) -> Result<Option<Arc<Schedule>>, String> {
        match self.env.store.schedule(id) {
            Err(crate::store::StoreError::NotFound { .. }) => Ok(None),
            Ok(s) => Ok(Some(Arc::new(s))),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Runs one claimed job on the job threads, at its due time if that is still ahead (by
    /// this node's clock, and at most `claim_ahead` from now), once a slot is free; it
    /// reports its id when done. One not started when the daemon stops goes back unrun.
    fn start(&mut self, job: crate::store::Job, schedule: Result<Option<Arc<Schedule>>, String>) {
        let now = now_ms();
        let starts_at = job.due_at.min(now.saturating_add(self.ahead_ms())).max(now);
        let flags = JobFlags {
            stopping: self.stopping.clone(),
            writer: self.writer.clone(),
            ..JobFlags::default()
        };
        let pace = Pace {
            retry_base: self.opts.retry_base,
            recheck_within: self.opts.recheck_within,
            ok_transcripts: self.opts.history.ok_transcripts,
        };
        let id = job.id;
        let span = info_span!("job", id, script = %job.script, host = job.host.as_deref().unwrap_or("-"), attempt = job.attempts);
        let start = JobStart {
            env: self.env.clone(),
            job,
            schedule,
            flags: flags.clone(),
            pace,
            progress: self.progress.clone(),
            health: self.opts.health.clone(),
            slots: self.slots.clone(),
            pool: self.pool.clone(),
            node: self.opts.node.clone(),
            wait: Duration::from_millis(u64::try_from(starts_at - now).unwrap_or(0)),
            // Entered on the job's thread too, so the job's logs carry it.
            span: span.clone(),
        };
        let done = self.done_tx.clone();
        let task = smol::spawn(
            async move {
                start.run().await;
                let _ = done.send(id).await;
            }
            .instrument(span),
        );
        self.running.insert(
            id,
            Running {
                flags,
                task,
                starts_at,
            },
        );
        self.summary.jobs_run += 1;
    }

    /// Step 4: renew the leases of running jobs every third of the lease, and pass on
    /// cancellations and lost leases.
    fn renew_if_due(&mut self) {
        if self.running.is_empty() {
            self.leases_good = Instant::now();
            return;
        }
        if self.last_renew.elapsed() < self.renew_every {
            return;
        }
        self.last_renew = Instant::now();
        match renew(&self.env, &self.opts, &self.running) {
            Ok(()) => {
                self.leases_good = Instant::now();
                self.db_down = false;
                self.opts.health.database(Ok(()));
            }
            Err(e) => {
                self.db_down = matches!(e, StoreError::Unreachable(_));
                if self.opts.health.database(Err(e.to_string())) {
                    warn!("cannot renew leases: {e}");
                }
                // Past the lease, another node may have taken our jobs over: stop our copies
                // rather than run a host's job twice. Their runs are recorded once the
                // database is back.
                if self.leases_good.elapsed() > self.opts.lease {
                    let live: Vec<&Running> = self
                        .running
                        .values()
                        .filter(|r| !r.flags.lost.load(Ordering::SeqCst))
                        .collect();
                    if !live.is_empty() {
                        warn!(
                            jobs = live.len(),
                            "no lease renewed for longer than the lease; stopping our jobs, which another node may now run"
                        );
                    }
                    for r in live {
                        r.flags.lost.store(true, Ordering::SeqCst);
                        r.flags.cancel.store(true, Ordering::SeqCst);
                    }
                }
            }
        }
    }

    /// Step 5: tell downtimes that began or ended, and deliver pending notifications, one batch
    /// at a time, on the blocking pool.
    async fn deliver(&mut self) {
        if self.delivery.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        if let Some(t) = self.delivery.take() {
            t.await;
        }
        let (store, cfg) = (self.env.store.clone(), self.opts.channels.clone());
        let (health, max_lag, pace) = (
            self.opts.health.clone(),
            self.opts.max_lag,
            self.progress.clone(),
        );
        self.delivery = Some(smol::unblock(move || {
            pace.report(&store, &health, max_lag);
            if let Err(e) = store.make_occurrences(crate::store::now_ms()) {
                warn!("cannot make the recurring downtimes' occurrences: {e}");
            }
            if let Err(e) = store.tell_downtimes() {
                warn!("cannot tell downtimes: {e}");
            }
            // Heartbeats whose ping is overdue: a CRITICAL result each, once.
            match store.check_heartbeats(crate::store::now_ms()) {
                Ok(missed) => {
                    for fix in missed.fixes {
                        if let Err(e) = crate::queue::heartbeat_fix(&store, &fix) {
                            warn!(heartbeat = %fix.heartbeat, "cannot queue its fix {}: {e}", fix.script);
                        }
                    }
                }
                Err(e) => warn!("cannot check the heartbeats: {e}"),
            }
            deliver_pending(&store, &cfg)
        }));
    }

    /// Step 5b: every `[history] prune_every`, one history pass on the blocking pool (batches
    /// of short transactions with a pause between, so claims go on), and a warning when the
    /// database's disk runs low.
    fn prune_if_due(&mut self) {
        let every = self.opts.history.prune_every;
        if every <= 0.0 || self.pruning.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        if self
            .last_prune
            .is_some_and(|t| t.elapsed().as_secs_f64() < every)
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        let store = self.env.store.clone();
        let history = self.opts.history.clone();
        self.pruning = Some(smol::unblock(move || {
            let r = crate::store::history::Retention::from_config(&history);
            let pause = || std::thread::sleep(Duration::from_millis(5));
            match store.prune(&r, now_ms(), false, &pause) {
                Ok(p) if !p.is_empty() => info!(
                    runs = p.runs,
                    transcripts = p.transcripts,
                    notifications = p.notifications,
                    points = p.points,
                    trends = p.trends,
                    batches = p.batches,
                    longest_batch_ms = p.longest_batch_ms,
                    pages_freed = p.pages_freed,
                    "history pruned"
                ),
                Ok(_) => {}
                Err(e) => warn!("history pass failed: {e}"),
            }
            if let Some(free) = store.free_disk_bytes()
                && free < history.min_free_mb.saturating_mul(1 << 20)
            {
                warn!(
                    free_mb = free >> 20,
                    "the database's disk is nearly full ([history] min_free_mb = {})",
                    history.min_free_mb
                );
            }
        }));
    }

    /// Step 6: sleep until the next job is due, a job finishes, a job is queued in this
    /// process, the next lease renewal, the poll interval, or shutdown.
    async fn sleep(&mut self, shutdown: &Shutdown) {
        let mut sleep = self.opts.poll_interval.saturating_sub(
            self.last_housekeeping
                .map_or(Duration::ZERO, |t| t.elapsed()),
        );
        if !self.running.is_empty() {
            sleep = sleep.min(self.renew_every.saturating_sub(self.last_renew.elapsed()));
        }
        // A job due in the future: sleep until then. One already due was not claimable (its
        // host is busy, or it is another site's): a finished job or the poll brings it back,
        // so there is nothing to gain from spinning on it.
        // With room for jobs claimed ahead, wake when the next comes within reach; with only
        // free slots, when it falls due.
        let now = now_ms();
        let (free, ahead_room) = self.room(now);
        let hold = self.reads_hold();
        if !hold {
            self.reads = Reads {
                at: Some(Instant::now()),
                ..Reads::default()
            };
            self.next_queued = None;
        }
        if (free > 0 || ahead_room > 0) && !self.reads.queue {
            self.read_queue(now);
        }
        if (free > 0 || ahead_room > 0)
            && let Some(due) = self.next_queued
        {
            let ahead = due - self.ahead_ms();
            let at = if ahead_room >= self.ahead_batch() && ahead > now {
                Some(ahead)
            } else {
                (free > 0 && due > now).then_some(due)
            };
            if let Some(at) = at {
                // Jobs due within a few milliseconds of each other (a rule's hosts spread
                // over its interval) are claimed in one pass, not one pass and one claim each.
                let until = Duration::from_millis((at - now) as u64);
                sleep = sleep.min(until.max(BATCH_WAKE));
            }
        }
        // The next schedule: it fires `claim_ahead` before its due time. One whose time to
        // fire has come already fires at once after a pass that fired: a schedule that fell
        // behind (its interval is not longer than `claim_ahead`, or the node was busy) catches
        // up, each firing moving it past now. Otherwise it waits for the next poll.
        if !hold {
            self.next_schedule = self.env.store.next_schedule_due().ok().flatten();
        }
        self.next_fire = self
            .next_schedule
            .map(|due| due - self.ahead_ms())
            .filter(|at| (self.fire_again && !self.db_down) || *at > now_ms());
        if let Some(at) = self.next_fire {
            sleep = sleep.min(Duration::from_millis((at - now_ms()).max(0) as u64));
        }
        let (wake_rx, done_rx, running) = (&self.wake_rx, &self.done_rx, &mut self.running);
        let wait = async {
            smol::Timer::after(sleep).await;
            Woke::Timer
        };
        let woke = async {
            let _ = wake_rx.recv().await;
            Woke::Queued
        };
        let finished = async {
            if let Ok(id) = done_rx.recv().await
                && let Some(r) = running.remove(&id)
            {
                r.task.await;
            }
            Woke::Finished
        };
        let stop = async {
            let _ = shutdown.rx.recv().await;
            Woke::Stop
        };
        let why = smol::future::or(
            smol::future::or(wait, woke),
            smol::future::or(finished, stop),
        )
        .await;
        self.reads.stale |= why != Woke::Finished;
    }

    /// Reads when the next queued job falls due after `now`, and whether one is due already.
    fn read_queue(&mut self, now: i64) {
        let store = &self.env.store;
        let read = match store.next_due(i64::MIN) {
            Ok(Some(first)) if first <= now => store.next_due(now).map(|next| (true, next)),
            other => other.map(|first| (false, first)),
        };
        if let Ok((overdue, next)) = read {
            self.next_queued = next;
            self.reads.overdue = overdue;
            self.reads.queue = true;
        }
    }

    /// Whether the last reads of the queue and the schedules still hold: nothing since but
    /// finished jobs, within `REREAD`.
    fn reads_hold(&self) -> bool {
        !self.reads.stale && self.reads.at.is_some_and(|t| t.elapsed() < REREAD)
    }

    /// Collects every job that finished meanwhile.
    async fn collect_finished(&mut self) {
        while let Ok(id) = self.done_rx.try_recv() {
            if let Some(r) = self.running.remove(&id) {
                r.task.await;
            }
        }
    }

    /// Shutdown: no more claims; running jobs get the grace period to finish (their leases
    /// still renewed), then the rest are cancelled and their jobs given back to the queue.
    async fn shut_down(mut self) -> Result<Summary, StoreError> {
        info!(running = self.running.len(), grace = ?self.opts.grace, "monitord stopping");
        self.opts.health.stopping();
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.opts.grace;
        while !self.running.is_empty() && Instant::now() < deadline {
            // Wake for renewals too: a grace period longer than the lease must not lose the jobs.
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(self.renew_every.saturating_sub(self.last_renew.elapsed()));
            let done_rx = &self.done_rx;
            let next = async { done_rx.recv().await.ok() };
            let timer = async {
                smol::Timer::after(left).await;
                None
            };
            if let Some(id) = smol::future::or(next, timer).await
                && let Some(r) = self.running.remove(&id)
            {
                r.task.await;
            }
            self.renew_if_due();
        }
        // The rest are cancelled; their runs are recorded as cancelled and their jobs released.
        self.summary.released = self.running.len() as u64;
        for r in self.running.values() {
            r.flags.cancel.store(true, Ordering::SeqCst);
        }
        for (_, r) in self.running.drain() {
            r.task.await;
        }
        if let Some(t) = self.delivery.take() {
            t.await;
        }
        info!(
            jobs_run = self.summary.jobs_run,
            released = self.summary.released,
            "monitord stopped"
        );
        Ok(self.summary)
    }
}

/// A claimed job on its way to a thread: it waits for its due time (claimed ahead) and a
/// slot, then runs. One not started when the daemon stops goes back to the queue unrun; one
/// whose lease was lost meanwhile is left to the node that holds it now.
struct JobStart {
    env: Arc<Runner>,
    job: crate::store::Job,
    schedule: Result<Option<Arc<Schedule>>, String>,
    flags: JobFlags,
    pace: Pace,
    progress: Arc<progress::Progress>,
    health: Arc<Health>,
    slots: Arc<smol::lock::Semaphore>,
    pool: pool::JobPool,
    node: String,
    wait: Duration,
    span: tracing::Span,
}

impl JobStart {
    async fn run(self) {
        if !self.wait.is_zero() {
            smol::Timer::after(self.wait).await;
        }
        if self.flags.stopping.load(Ordering::SeqCst) {
            return self.give_back().await;
        }
        let _slot = self.slots.acquire_arc().await;
        if self.flags.stopping.load(Ordering::SeqCst) {
            return self.give_back().await;
        }
        if self.flags.lost.load(Ordering::SeqCst) {
            warn!(
                job = self.job.id,
                "lease lost before the job started; not run here"
            );
            return;
        }
        let late = now_ms().saturating_sub(self.job.due_at);
        self.health
            .lateness
            .record(u64::try_from(late).unwrap_or(0));
        let JobStart {
            env,
            job,
            schedule,
            flags,
            pace,
            progress,
            pool,
            span,
            ..
        } = self;
        let ran = pool
            .run(move || {
                let _entered = span.enter();
                let schedule = schedule
                    .as_ref()
                    .map(|s| s.as_deref())
                    .map_err(String::as_str);
                progress.ran(run_job(&env, &job, schedule, &flags, pace));
            })
            .await;
        if let Err(e) = ran {
            warn!("a job could not be run: {e}");
        }
    }

    /// Not started: back to the queue as it was, for this or another node (unless it was
    /// asked to cancel meanwhile: the reaper records that once the lease runs out).
    async fn give_back(self) {
        let (store, id, due, node) = (
            self.env.store.clone(),
            self.job.id,
            self.job.due_at,
            self.node,
        );
        if let Err(e) = smol::unblock(move || store.release_job(id, &node, due)).await {
            warn!(job = id, "cannot give back a job not yet started: {e}");
        }
    }
}

/// Fires the schedules due now or within `ahead_ms`: their jobs are queued for their due time.
/// Whether it fired any (false also when one could not be fired, or the schedules or hosts
/// read): only then may the loop fire again at once.
fn fire_schedules(env: &Runner, pace: &progress::Progress, ahead_ms: i64) -> bool {
    let store = &env.store;
    let due = match store.due_schedules(ahead_ms) {
        Ok(d) => d,
        Err(e) => {
            warn!("cannot read schedules: {e}");
            return false;
        }
    };
    if due.is_empty() {
        return false;
    }
    // Without the host list a tag's or a site's schedule would fire with no job and move on:
    // nothing fires until it can be read. It is read only when such a schedule is due (a
    // site of thousands of hosts is not read each second for one host's check).
    let matching = due.iter().any(|s| {
        matches!(
            crate::queue::Target::of(s),
            crate::queue::Target::Matching { .. }
        )
    });
    let hosts = if matching {
        match store.hosts() {
            Ok(h) => h,
            Err(e) => {
                warn!("cannot read hosts, no schedule fires this pass: {e}");
                return false;
            }
        }
    } else {
        Vec::new()
    };
    let now = now_ms();
    let mut fired = true;
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
            Ok(n) => {
                debug!(schedule = s.id, script = %s.script, queued = n, "schedule fired");
                pace.skipped(targets.len().saturating_sub(n));
            }
            Err(e) => {
                warn!(schedule = s.id, "cannot fire schedule: {e}");
                fired = false;
            }
        }
    }
    fired
}

/// Jobs asked to cancel whose node died: record them as cancelled and remove them.
fn reap(env: &Runner) {
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
        if let Err(e) = env.store.record_run(&run, JobAction::Reap) {
            warn!(job = job.id, "cannot reap a cancelled job: {e}");
        }
    }
}

fn renew(
    env: &Runner,
    opts: &DaemonOptions,
    running: &HashMap<i64, Running>,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = running.keys().copied().collect();
    let states = env
        .store
        .renew_leases(&opts.node, &ids, opts.lease.as_millis() as i64)?;
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
    Ok(())
}
