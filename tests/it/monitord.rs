//! monitord in-process (ordering, limits, retries, cancellation, shutdown, the correction loop,
//! notifications to a real webhook receiver) and as the real binary (kill -9 and restart, two
//! daemons on one queue).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostler::monitord::{self, DaemonOptions, Shutdown, Summary};
use hostler::store::{
    Method, NewHost, NewJob, NewSchedule, Run, RunFilter, RunPhase, Status, Store, now_ms,
};

use crate::util::{Work, wait_for};

pub(crate) fn opts(node: &str) -> DaemonOptions {
    let mut o = DaemonOptions::from_config(&hostler::config::Config::default());
    o.node = node.into();
    o.poll_interval = Duration::from_millis(50);
    o.lease = Duration::from_secs(3);
    o.grace = Duration::from_secs(5);
    o.retry_base = Duration::from_millis(100);
    o.recheck_within = Duration::from_secs(2);
    // Each event on its own, at once (the grouping test sets a window).
    o.channels.notify.group_window = "0s".into();
    o
}

/// Waits until job `id` is claimed and has passed its slot, so that it runs and is no longer
/// given back unrun (a claimed job is "running" in the queue before it has a slot).
fn wait_started(store: &Store, id: i64, health: &hostler::health::Health) {
    assert!(
        wait_for(Duration::from_secs(10), || store
            .job(id)
            .is_ok_and(|j| j.state == hostler::store::JobState::Running)
            && health.lateness.read().0.iter().sum::<u64>() == 1),
        "job {id} did not start within 10 s"
    );
}

/// A daemon running in a thread, stopped and joined on drop.
pub(crate) struct Daemon {
    shutdown: Shutdown,
    thread: Option<std::thread::JoinHandle<Summary>>,
}

impl Daemon {
    pub(crate) fn start(w: &Work, allowed: &[&str], o: DaemonOptions) -> (Daemon, Arc<Store>) {
        let env = w.env(allowed, None);
        let store = env.store.clone();
        let shutdown = Shutdown::default();
        let s = shutdown.clone();
        let thread =
            std::thread::spawn(move || monitord::run(Arc::new(env), o, s).expect("daemon"));
        (
            Daemon {
                shutdown,
                thread: Some(thread),
            },
            store,
        )
    }

    pub(crate) fn stop(mut self) -> Summary {
        self.shutdown.request();
        self.thread.take().expect("thread").join().expect("join")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown.request();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn host(store: &Store, name: &str) {
    store
        .add_host(&NewHost {
            name: name.into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Local),
            ..NewHost::default()
        })
        .expect("host");
}

pub(crate) fn job(script: &str, host: Option<&str>, priority: i64) -> NewJob {
    NewJob {
        name: None,
        script: script.into(),
        host: host.map(str::to_string),
        priority,
        due_at: now_ms(),
        max_attempts: 3,
        timeout_ms: None,
        schedule_id: None,
        args: None,
    }
}

pub(crate) fn all_runs(store: &Store) -> Vec<Run> {
    let mut runs = store
        .runs(&RunFilter {
            limit: 100_000,
            summary: false,
            ..RunFilter::default()
        })
        .expect("runs");
    runs.reverse();
    runs
}

fn queue_empty(store: &Store) -> bool {
    store.jobs().expect("jobs").is_empty()
}

#[test]
fn order_and_limits_hold_in_the_recorded_times() {
    let w = Work::new();
    let mut o = opts("n1");
    o.max_concurrent = 2;
    o.per_host = 1;
    // Claimed ahead, the first job queued would hold its host's one place before the others
    // are queued (a trade README states); here the order among jobs queued together counts.
    o.claim_ahead = Duration::ZERO;
    let (d, store) = Daemon::start(&w, &[], o);
    w.script(&store, "work", "sleep(0.15); ok()");
    for h in ["h1", "h2", "h3"] {
        host(&store, h);
    }
    // Queue everything before the daemon can claim: one transaction per job, due in 300 ms.
    let due = now_ms() + 300;
    let mut ids = HashMap::new();
    for (h, p) in [
        ("h1", 0),
        ("h1", 5),
        ("h1", 9),
        ("h2", 1),
        ("h2", 1),
        ("h3", 0),
    ] {
        let mut j = job("work", Some(h), p);
        j.due_at = due;
        let id = store.enqueue_with(&j, true).expect("enqueue").0;
        ids.insert(id, (h, p));
    }
    assert!(
        wait_for(Duration::from_secs(20), || queue_empty(&store)),
        "queue drained"
    );
    d.stop();
    let runs = all_runs(&store);
    assert_eq!(runs.len(), 6);
    // At every start: never more than 2 running, never two on one host.
    for a in &runs {
        let running: Vec<&Run> = runs
            .iter()
            .filter(|b| b.started_at <= a.started_at && a.started_at < b.finished_at)
            .collect();
        assert!(
            running.len() <= 2,
            "more than max_concurrent at once: {running:?}"
        );
        assert_eq!(
            running.iter().filter(|b| b.host == a.host).count(),
            1,
            "two runs at once on {:?}",
            a.host
        );
    }
    // Within a host: higher priority first, then FIFO.
    let h1: Vec<i64> = runs
        .iter()
        .filter(|r| r.host.as_deref() == Some("h1"))
        .map(|r| ids[&r.job_id.expect("job")].1)
        .collect();
    assert_eq!(h1, vec![9, 5, 0]);
    let h2: Vec<i64> = runs
        .iter()
        .filter(|r| r.host.as_deref() == Some("h2"))
        .filter_map(|r| r.job_id)
        .collect();
    assert!(
        h2.windows(2).all(|w| w[0] < w[1]),
        "FIFO within a priority: {h2:?}"
    );
}

/// Each retry starts at its backoff time, not at the next poll (which is long here): a run's
/// retry wakes the loop as a new job does, and a pass woken only by finished jobs reuses
/// reads of the queue made before the retry was queued.
#[test]
fn errors_are_retried_with_backoff_up_to_max_attempts() {
    let w = Work::new();
    let mut o = opts("n1");
    o.poll_interval = Duration::from_secs(30);
    o.lease = Duration::from_secs(30);
    let (d, store) = Daemon::start(&w, &[], o);
    w.script(&store, "flaky", r#"throw "broken""#);
    let mut j = job("flaky", None, 0);
    j.max_attempts = 3;
    store.enqueue(&j).expect("enqueue");
    let ok = wait_for(Duration::from_secs(20), || {
        all_runs(&store).len() == 3 && queue_empty(&store)
    });
    d.stop();
    assert!(ok, "{:?} {:?}", all_runs(&store), store.jobs());
    let runs = all_runs(&store);
    assert_eq!(
        runs.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(runs.iter().all(|r| r.status == Status::Error));
    // Backoff: 100 ms, then 200 ms between attempts.
    let gaps = [
        runs[1].started_at - runs[0].finished_at,
        runs[2].started_at - runs[1].finished_at,
    ];
    assert!(
        (90..1_000).contains(&gaps[0]) && (190..1_100).contains(&gaps[1]),
        "{gaps:?} ms between attempts: {runs:?}"
    );
}

#[test]
fn a_running_job_can_be_cancelled() {
    let w = Work::new();
    let mut o = opts("n1");
    o.lease = Duration::from_millis(900);
    let health = o.health.clone();
    let (d, store) = Daemon::start(&w, &[], o);
    w.script(&store, "long", "sleep(30); ok()");
    let (id, _) = store.enqueue(&job("long", None, 0)).expect("enqueue");
    wait_started(&store, id, &health);
    let t = Instant::now();
    assert_eq!(
        store.cancel_job(id, "cli").expect("cancel"),
        hostler::store::Cancelled::Requested
    );
    assert!(wait_for(Duration::from_secs(10), || queue_empty(&store)));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    d.stop();
    let runs = all_runs(&store);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, Status::Cancelled);
}

#[test]
fn a_queued_job_is_cancelled_with_a_record() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "s", "ok()");
    let mut j = job("s", None, 0);
    j.due_at = now_ms() + 3_600_000;
    let (id, _) = store.enqueue(&j).expect("enqueue");
    assert_eq!(
        store.cancel_job(id, "cli").expect("cancel"),
        hostler::store::Cancelled::Removed
    );
    assert!(queue_empty(&store));
    assert_eq!(all_runs(&store)[0].status, Status::Cancelled);
}

#[test]
fn shutdown_waits_for_the_grace_period_then_releases_the_job() {
    let w = Work::new();
    let mut o = opts("n1");
    o.grace = Duration::from_millis(300);
    let health = o.health.clone();
    let (d, store) = Daemon::start(&w, &[], o);
    w.script(&store, "long", "sleep(30); ok()");
    let (id, _) = store.enqueue(&job("long", None, 0)).expect("enqueue");
    wait_started(&store, id, &health);
    let t = Instant::now();
    let summary = d.stop();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(summary.released, 1);
    let j = store
        .job(id)
        .unwrap_or_else(|e| panic!("the job is back in the queue: {e} {:?}", all_runs(&store)));
    assert_eq!(
        (j.state.as_str(), j.lease_owner.as_deref(), j.attempts),
        ("queued", None, 0)
    );
    assert_eq!(all_runs(&store)[0].status, Status::Cancelled);
}

#[test]
fn interval_schedules_fire_and_missed_runs_are_coalesced() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "tick", "ok()");
    host(&store, "a");
    host(&store, "b");
    store
        .add_host(&NewHost {
            name: "c".into(),
            address: "x".into(),
            tags: vec!["web".into()],
            method: Some(Method::Local),
            ..NewHost::default()
        })
        .expect("c");
    // Due an hour ago, every 10 minutes: six runs were missed; one fires now.
    let id = store
        .add_schedule(&NewSchedule {
            tag: Some("web".into()),
            max_attempts: 1,
            guard_backoff_ms: 1000,
            next_due: now_ms() - 3_600_000,
            ..NewSchedule::every("tick", None, 600_000)
        })
        .expect("schedule");
    drop(store);
    let (d, store) = Daemon::start(&w, &[], opts("n1"));
    assert!(wait_for(Duration::from_secs(10), || !all_runs(&store)
        .is_empty()
        && queue_empty(&store)));
    std::thread::sleep(Duration::from_millis(300));
    d.stop();
    let runs = all_runs(&store);
    assert_eq!(
        runs.len(),
        1,
        "one run for the tag's one host, not one per missed interval"
    );
    assert_eq!(runs[0].host.as_deref(), Some("c"));
    let next = store
        .schedule(id)
        .expect("schedule")
        .next_due
        .expect("next");
    assert!(next > now_ms() && next <= now_ms() + 600_000);
}

/// A schedule fires at its due time, not at the next poll: with a 30 s poll interval, one
/// due in 1.5 s runs within a second of it, and this node's lateness histogram counts the start.
#[test]
fn a_schedule_fires_at_its_due_time_not_at_the_next_poll() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "tick", "ok()");
    host(&store, "a");
    let due = now_ms() + 1_500;
    store
        .add_schedule(&NewSchedule {
            max_attempts: 1,
            next_due: due,
            ..NewSchedule::every("tick", Some("a"), 600_000)
        })
        .expect("schedule");
    drop(store);
    let mut o = opts("n1");
    o.poll_interval = Duration::from_secs(30);
    let health = o.health.clone();
    let (d, store) = Daemon::start(&w, &[], o);
    assert!(
        wait_for(Duration::from_secs(10), || !all_runs(&store).is_empty()),
        "no run within 10 s of a schedule due in 1.5 s (the poll is every 30 s)"
    );
    let started = all_runs(&store)[0].started_at;
    d.stop();
    assert!(
        (due..due + 1_000).contains(&started),
        "started {} ms after its due time",
        started - due
    );
    let (counts, _) = health.lateness.read();
    let within_1s: u64 = hostler::health::LATENESS_BOUNDS_MS
        .iter()
        .zip(counts)
        .filter(|(b, _)| **b <= 1_000)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        (counts.iter().sum::<u64>(), within_1s),
        (1, 1),
        "{counts:?}"
    );
}

/// Local hosts web00, web01, ... tagged "web"; their names.
fn web_hosts(store: &Store, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("web{i:02}")).collect();
    for name in &names {
        store
            .add_host(&NewHost {
                name: name.clone(),
                address: "x".into(),
                tags: vec!["web".into()],
                method: Some(Method::Local),
                ..NewHost::default()
            })
            .expect("host");
    }
    names
}

/// A tag's schedule on an interval spreads its hosts over the interval, each at a stable
/// offset (the same at the next firing); a firing whose offsets have passed (late, or the
/// first after missed runs) queues every host at once; a host's own schedule is not spread.
#[test]
fn a_tag_schedule_spreads_its_hosts_over_its_interval() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "tick", "ok()");
    let names = web_hosts(&store, 40);
    let every = 60_000;
    let id = store
        .add_schedule(&NewSchedule {
            tag: Some("web".into()),
            max_attempts: 1,
            next_due: now_ms(),
            ..NewSchedule::every("tick", None, every)
        })
        .expect("schedule");
    let s = store.schedule(id).expect("schedule");
    let hosts: Vec<Option<String>> = names.iter().cloned().map(Some).collect();
    let offsets = |seen: i64| -> Vec<i64> {
        let mut jobs = store.jobs().expect("jobs");
        jobs.sort_by(|a, b| a.host.cmp(&b.host));
        jobs.iter().map(|j| j.due_at - seen).collect()
    };
    let seen = now_ms() + 1_000;
    assert_eq!(
        store
            .fire_schedule(&s, s.next_due.expect("due"), &hosts, Some(seen))
            .expect("fire"),
        40
    );
    // The first firing was due now: each offset counts from it.
    let first_seen = s.next_due.expect("due");
    let first = offsets(first_seen);
    assert!(first.iter().all(|o| (0..every).contains(o)), "{first:?}");
    let mut distinct = first.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() >= 38,
        "40 hosts, {} offsets: {first:?}",
        distinct.len()
    );
    assert!(
        first.iter().filter(|o| **o >= every / 2).count() >= 10,
        "spread over the whole interval: {first:?}"
    );
    // The same offsets at the next firing (the jobs of the first are gone).
    for j in store.jobs().expect("jobs") {
        store.cancel_job(j.id, "n1").expect("cancel");
    }
    let s = store.schedule(id).expect("schedule");
    assert_eq!(
        store
            .fire_schedule(&s, seen, &hosts, Some(seen + every))
            .expect("fire"),
        40
    );
    assert_eq!(offsets(seen), first, "stable per host");
    for j in store.jobs().expect("jobs") {
        store.cancel_job(j.id, "n1").expect("cancel");
    }
    // Due an hour ago: every offset has passed, all are due at once.
    let late = store
        .add_schedule(&NewSchedule {
            tag: Some("web".into()),
            name: Some("late".into()),
            max_attempts: 1,
            next_due: now_ms() - 3_600_000,
            ..NewSchedule::every("tick", None, every)
        })
        .expect("schedule");
    let s = store.schedule(late).expect("schedule");
    let before = now_ms();
    let due = s.next_due.expect("due");
    assert_eq!(
        store
            .fire_schedule(&s, due, &hosts, Some(now_ms() + every))
            .expect("fire"),
        40
    );
    let jobs = store.jobs().expect("jobs");
    assert!(
        jobs.iter()
            .all(|j| (before..before + 1_000).contains(&j.due_at)),
        "{jobs:?}"
    );
}

/// A firing coalesces into a job of its script already overdue for the host (same check
/// name, same arguments), and queues every other: the same whether it asks once a host (a
/// few hosts) or reads the host ids and the overdue jobs once (many: issue 31's 5,000 a
/// second). A host named twice is queued once; an unknown host fails the firing whole.
#[test]
fn a_firing_coalesces_the_same_with_few_hosts_and_with_many() {
    for n in [8usize, 40] {
        let w = Work::new();
        let store = w.store();
        w.script(&store, "tick", "ok()");
        w.script(&store, "other", "ok()");
        let names = web_hosts(&store, n);
        let args = Some(r#"{"port":"80"}"#.to_string());
        let past = now_ms() - 60_000;
        let queue =
            |script: &str, host: &str, due_at: i64, args: Option<&str>, name: Option<&str>| {
                store
                    .enqueue_with(
                        &NewJob {
                            due_at,
                            args: args.map(str::to_string),
                            name: name.map(str::to_string),
                            ..job(script, Some(host), 0)
                        },
                        true,
                    )
                    .expect("enqueue");
            };
        // web00: the same check overdue (coalesced). web01: other arguments. web02: another
        // check name. web03: the same check, not due yet. web04: another script.
        queue("tick", "web00", past, Some(r#"{ "port": "80" }"#), None);
        queue("tick", "web01", past, Some(r#"{"port":"81"}"#), None);
        queue("tick", "web02", past, args.as_deref(), Some("second"));
        queue("tick", "web03", now_ms() + 3_600_000, args.as_deref(), None);
        queue("other", "web04", past, args.as_deref(), None);
        let before = store.jobs().expect("jobs").len();
        let id = store
            .add_schedule(&NewSchedule {
                tag: Some("web".into()),
                max_attempts: 1,
                args: args.clone(),
                // Due an hour ago: every host's offset has passed, all are due at once.
                next_due: now_ms() - 3_600_000,
                ..NewSchedule::every("tick", None, 60_000)
            })
            .expect("schedule");
        let s = store.schedule(id).expect("schedule");
        let mut hosts: Vec<Option<String>> = names.iter().cloned().map(Some).collect();
        hosts.push(Some("web05".into()));
        let due = s.next_due.expect("due");
        assert_eq!(
            store
                .fire_schedule(&s, due, &hosts, Some(due + 60_000))
                .expect("fire"),
            n - 1,
            "{n} hosts"
        );
        let jobs = store.jobs().expect("jobs");
        assert_eq!(jobs.len(), before + n - 1, "{n} hosts: {jobs:?}");
        let of = |host: &str| {
            jobs.iter()
                .filter(|j| j.host.as_deref() == Some(host) && j.script == "tick")
                .count()
        };
        assert_eq!(
            [
                of("web00"),
                of("web01"),
                of("web02"),
                of("web03"),
                of("web05")
            ],
            [1, 2, 2, 2, 1],
            "{n} hosts"
        );
        // Fired again at once: every host has its check overdue now.
        let s = store.schedule(id).expect("schedule");
        let due = s.next_due.expect("due");
        assert_eq!(
            store
                .fire_schedule(&s, due, &hosts[..n], Some(due + 60_000))
                .expect("fire"),
            0,
            "{n} hosts"
        );
        // A host that is not there: nothing of the firing is written.
        let count = store.jobs().expect("jobs").len();
        let s = store.schedule(id).expect("schedule");
        let mut bad: Vec<Option<String>> = (0..n).map(|i| Some(format!("new{i:02}"))).collect();
        bad.push(Some("nowhere".into()));
        for b in bad.iter().take(n) {
            store
                .add_host(&NewHost {
                    name: b.clone().expect("name"),
                    address: "x".into(),
                    method: Some(Method::Local),
                    ..NewHost::default()
                })
                .expect("host");
        }
        let err = store
            .fire_schedule(&s, s.next_due.expect("due"), &bad, Some(now_ms() + 60_000))
            .expect_err("unknown host");
        assert!(err.to_string().contains("nowhere"), "{err}");
        assert_eq!(store.jobs().expect("jobs").len(), count, "{n} hosts");
    }
}

/// A real local webhook receiver on a free port; collects request bodies.
fn webhook() -> (
    String,
    Arc<std::sync::Mutex<Vec<String>>>,
    Arc<tiny_http::Server>,
) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("listen"));
    let addr = server.server_addr().to_ip().expect("ip");
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (s, g) = (server.clone(), got.clone());
    std::thread::spawn(move || {
        for mut req in s.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            g.lock().expect("lock").push(body);
            let _ = req.respond(tiny_http::Response::from_string("ok"));
        }
    });
    (format!("http://{addr}/hook"), got, server)
}

/// A real service: a `sleep` process whose pid is in a file.
struct Service {
    pidfile: std::path::PathBuf,
}

impl Service {
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()
    }
    fn alive(&self) -> bool {
        self.pid()
            .is_some_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok())
    }
    fn kill(&self) {
        if let Some(p) = self.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
            // Reap it if it is our child's child; the state check below tolerates a zombie.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn correction_schedule(store: &Store, fix: &str, max_fixes: i64) -> i64 {
    correction_schedule_with(store, fix, max_fixes, 0)
}

fn correction_schedule_with(store: &Store, fix: &str, max_fixes: i64, backoff_ms: i64) -> i64 {
    store
        .add_schedule(&NewSchedule {
            fix_script: Some(fix.into()),
            max_attempts: 1,
            guard_max_fixes: max_fixes,
            guard_backoff_ms: backoff_ms,
            ..NewSchedule::every("svc_check", Some("localhost"), 1_000)
        })
        .expect("schedule")
}

#[test]
fn the_correction_loop_restarts_a_real_process_and_stays_quiet() {
    let w = Work::new();
    let svc = Service {
        pidfile: w.path("svc.pid"),
    };
    let pidfile = svc.pidfile.display().to_string();
    let (url, got, _server) = webhook();
    let mut o = opts("n1");
    o.channels.notify.webhook = Some(url);
    let (d, store) = Daemon::start(&w, &["sh"], o);
    host(&store, "localhost");
    // kill -0 on a zombie succeeds, so the check also reads the process state.
    w.script(&store, "svc_check", &format!(
        r#"let r = exec("sh", ["-c", "p=$(cat {pidfile}) && kill -0 $p && ! grep -q '^State:.*Z' /proc/$p/status"]);
           if r.code == 0 {{ ok("running") }} else {{ critical("not running") }}"#
    ));
    w.script(&store, "svc_fix", &format!(
        r#"exec("sh", ["-c", "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {pidfile}"]); ok("started")"#
    ));
    assert!(!svc.alive());
    correction_schedule(&store, "svc_fix", 3);
    let ok = wait_for(Duration::from_secs(15), || {
        all_runs(&store)
            .iter()
            .any(|r| r.phase == Some(RunPhase::Recheck))
    });
    d.stop();
    assert!(ok, "{:?} {:?}", all_runs(&store), store.jobs());
    assert!(svc.alive(), "the fix started the service");
    let runs = all_runs(&store);
    let phases: Vec<(Option<&str>, Status)> = runs
        .iter()
        .take(3)
        .map(|r| (r.phase.map(|p| p.as_str()), r.status))
        .collect();
    assert_eq!(
        phases,
        vec![
            (Some("check"), Status::Critical),
            (Some("fix"), Status::Ok),
            (Some("recheck"), Status::Ok)
        ]
    );
    assert!(
        store.notifications(10).expect("n").is_empty(),
        "a successful fix tells nobody"
    );
    assert!(got.lock().expect("lock").is_empty());
}

#[test]
fn a_fix_that_starts_the_service_late_is_no_false_alarm() {
    let w = Work::new();
    let svc = Service {
        pidfile: w.path("svc.pid"),
    };
    let pidfile = svc.pidfile.display().to_string();
    let (url, got, _server) = webhook();
    let mut o = opts("n1");
    o.channels.notify.webhook = Some(url);
    o.recheck_within = Duration::from_secs(15);
    let (d, store) = Daemon::start(&w, &["sh"], o);
    host(&store, "localhost");
    w.script(&store, "svc_check", &format!(
        r#"let r = exec("sh", ["-c", "p=$(cat {pidfile}) && kill -0 $p && ! grep -q '^State:.*Z' /proc/$p/status"]);
           if r.code == 0 {{ ok("running") }} else {{ critical("not running") }}"#
    ));
    // The service comes up two seconds after the fix ends, as a slow daemon does.
    w.script(&store, "svc_fix", &format!(
        r#"exec("sh", ["-c", "(sleep 2; setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {pidfile}) </dev/null >/dev/null 2>&1 &"])"#
    ));
    correction_schedule(&store, "svc_fix", 3);
    let fixed = wait_for(Duration::from_secs(30), || {
        all_runs(&store)
            .iter()
            .any(|r| r.phase == Some(RunPhase::Recheck) && r.status == Status::Ok)
    });
    d.stop();
    let runs = all_runs(&store);
    assert!(fixed, "{runs:?}");
    assert!(svc.alive(), "the fix started the service");
    let loop_runs: Vec<(RunPhase, Status)> = runs
        .iter()
        .filter_map(|r| r.phase.map(|p| (p, r.status)))
        .take_while(|(p, s)| !(*p == RunPhase::Recheck && *s == Status::Ok))
        .collect();
    assert_eq!(
        loop_runs[..2],
        [
            (RunPhase::Check, Status::Critical),
            (RunPhase::Fix, Status::Ok)
        ],
        "{runs:?}"
    );
    assert!(
        loop_runs[2..]
            .iter()
            .all(|r| *r == (RunPhase::Recheck, Status::Critical)),
        "re-checks until it came up: {loop_runs:?}"
    );
    assert!(
        loop_runs.len() > 2,
        "the first re-check was too early to pass: {runs:?}"
    );
    assert!(store.notifications(10).expect("n").is_empty());
    assert!(got.lock().expect("lock").is_empty(), "no false alarm");
}

#[test]
fn a_check_without_a_fix_tells_one_problem_and_one_recovery() {
    let w = Work::new();
    let (url, got, _server) = webhook();
    let mut o = opts("n1");
    o.channels.notify.webhook = Some(url);
    o.channels.public_url = Some("https://hostler.example/".into());
    let (d, store) = Daemon::start(&w, &["sh"], o);
    host(&store, "localhost");
    let flag = w.path("down");
    std::fs::write(&flag, "").expect("flag");
    w.script(&store, "svc_check", &format!(
        r#"if exec("sh", ["-c", "test -e {}"]).code == 0 {{ critical("flag is up") }} else {{ ok("fine") }}"#,
        flag.display()
    ));
    store
        .add_schedule(&NewSchedule {
            max_attempts: 1,
            guard_backoff_ms: 0,
            ..NewSchedule::every("svc_check", Some("localhost"), 1_000)
        })
        .expect("schedule");
    // Failing for several runs: one message.
    assert!(wait_for(Duration::from_secs(15), || {
        all_runs(&store)
            .iter()
            .filter(|r| r.status == Status::Critical)
            .count()
            >= 3
    }));
    std::fs::remove_file(&flag).expect("repair");
    assert!(wait_for(Duration::from_secs(15), || {
        all_runs(&store)
            .iter()
            .rev()
            .take(2)
            .all(|r| r.status == Status::Ok)
            && got.lock().expect("lock").len() >= 2
    }));
    d.stop();
    let bodies = got.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(
        bodies[0].contains("localhost: svc_check is CRITICAL"),
        "{bodies:?}"
    );
    assert!(
        bodies[1].contains("localhost: svc_check is OK again"),
        "{bodies:?}"
    );
    // The webhook's keys: what happened, to which check, from what, since when, and a link.
    let problem: serde_json::Value = serde_json::from_str(&bodies[0]).expect("json");
    let recovery: serde_json::Value = serde_json::from_str(&bodies[1]).expect("json");
    for (k, v) in [
        ("event", "problem"),
        ("host", "localhost"),
        ("check", "svc_check"),
        ("state", "critical"),
        ("message", "flag is up"),
    ] {
        assert_eq!(problem[k], serde_json::json!(v), "{k}: {problem}");
    }
    for (k, v) in [
        ("event", "recovery"),
        ("state", "ok"),
        ("previous_state", "critical"),
    ] {
        assert_eq!(recovery[k], serde_json::json!(v), "{k}: {recovery}");
    }
    assert!(problem["since"].as_i64().is_some(), "{problem}");
    let run = problem["run_id"].as_i64().expect("run id");
    assert_eq!(
        problem["url"],
        serde_json::json!(format!("https://hostler.example/runs/{run}"))
    );
    let c = store.check(Some("localhost"), "svc_check").expect("check");
    assert_eq!(
        (c.state, c.notified),
        (hostler::store::CheckState::Ok, false)
    );
}

/// A service that is down while the file `down` exists, checked by `svc_check` every second
/// with the do-nothing fix `svc_fix` (at most `max_fixes` an hour), under a daemon whose
/// messages go to a webhook receiver.
struct FlagService {
    _w: Work,
    d: Daemon,
    store: Arc<Store>,
    flag: std::path::PathBuf,
    got: Arc<std::sync::Mutex<Vec<String>>>,
    _server: Arc<tiny_http::Server>,
}

impl FlagService {
    fn start(max_fixes: i64, down: bool) -> FlagService {
        let w = Work::new();
        let (url, got, server) = webhook();
        let mut o = opts("n1");
        o.channels.notify.webhook = Some(url);
        o.recheck_within = Duration::from_millis(100);
        let (d, store) = Daemon::start(&w, &["sh"], o);
        host(&store, "localhost");
        let flag = w.path("down");
        if down {
            std::fs::write(&flag, "").expect("flag");
        }
        w.script(&store, "svc_check", &format!(
            r#"if exec("sh", ["-c", "test -e {}"]).code == 0 {{ critical("flag is up") }} else {{ ok("fine") }}"#,
            flag.display()
        ));
        w.script(&store, "svc_fix", "let tried = true;");
        correction_schedule(&store, "svc_fix", max_fixes);
        FlagService {
            _w: w,
            d,
            store,
            flag,
            got,
            _server: server,
        }
    }

    /// The messages received so far that contain `text`.
    fn told(&self, text: &str) -> usize {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|b| b.contains(text))
            .count()
    }
}

#[test]
fn a_fix_that_cannot_help_tells_once_then_the_recovery_once() {
    let f = FlagService::start(100, true);
    // Several loops that fail: the first tells, the rest try quietly.
    assert!(wait_for(Duration::from_secs(20), || {
        all_runs(&f.store)
            .iter()
            .filter(|r| r.phase == Some(RunPhase::Fix))
            .count()
            >= 3
    }));
    std::fs::remove_file(&f.flag).expect("the operator repairs it");
    assert!(wait_for(Duration::from_secs(15), || {
        f.got.lock().expect("lock").len() >= 2
    }));
    std::thread::sleep(Duration::from_millis(1500));
    f.d.stop();
    let bodies = f.got.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[0].contains("svc_fix did not fix it"), "{bodies:?}");
    assert!(
        bodies[1].contains("localhost: svc_check is OK again"),
        "{bodies:?}"
    );
}

#[test]
fn flapping_never_hides_a_fix_that_cannot_help() {
    let f = FlagService::start(100, false);
    assert!(wait_for(Duration::from_secs(20), || f
        .store
        .check(Some("localhost"), "svc_check")
        .is_ok()));
    // The check has flapped lately (its crashes were mended by the fix, say).
    let now = now_ms();
    let changes: Vec<i64> = (1..=8).map(|i| now - i * 1000).collect();
    f.store
        .raw(
            &format!(
                "UPDATE checks SET flapping = 1, changes = '{}'",
                serde_json::json!(changes)
            ),
            false,
        )
        .expect("flapping");
    // Now the fix stops working: that is told, flapping or not.
    std::fs::write(&f.flag, "").expect("flag");
    assert!(
        wait_for(Duration::from_secs(20), || f.told("svc_fix did not fix it")
            > 0),
        "a failing fix was hidden by flapping: {:?}",
        f.got.lock().expect("lock")
    );
    assert!(
        f.store
            .check(Some("localhost"), "svc_check")
            .expect("check")
            .flapping
    );
    f.d.stop();
}

#[test]
fn the_guard_gives_up_once_per_incident_not_once_per_window() {
    // One fix an hour: the second failing check gives up.
    let f = FlagService::start(1, true);
    let gave_up = || f.told("giving up for now");
    assert!(
        wait_for(Duration::from_secs(20), || gave_up() == 1),
        "{:?}",
        f.got.lock().expect("lock")
    );
    // Repaired, then broken again within the hour: a new incident, told again, with its cause.
    std::fs::remove_file(&f.flag).expect("repair");
    assert!(wait_for(Duration::from_secs(20), || f.told("is OK again") > 0));
    std::fs::write(&f.flag, "").expect("break again");
    assert!(
        wait_for(Duration::from_secs(20), || gave_up() == 2),
        "the second incident's give-up was not told: {:?}",
        f.got.lock().expect("lock")
    );
    // Within one incident it is said once.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(gave_up(), 2, "{:?}", f.got.lock().expect("lock"));
    assert!(
        f.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|b| b.contains("giving up for now"))
            .all(|b| b.contains("flag is up"))
    );
    f.d.stop();
}

#[test]
fn a_downtime_stops_fixes_and_messages_until_it_ends() {
    let w = Work::new();
    let (url, got, _server) = webhook();
    let mut o = opts("n1");
    o.channels.notify.webhook = Some(url);
    o.recheck_within = Duration::from_millis(100);
    let (d, store) = Daemon::start(&w, &["sh"], o);
    host(&store, "localhost");
    w.script(
        &store,
        "svc_check",
        r#"critical("stopped for the upgrade")"#,
    );
    w.script(&store, "svc_fix", "let tried = true;");
    let dt = store
        .add_downtime(&hostler::store::NewDowntime {
            host: Some("localhost".into()),
            reason: "upgrade".into(),
            starts_at: now_ms() - 1,
            ends_at: now_ms() + 600_000,
            ..Default::default()
        })
        .expect("downtime");
    correction_schedule(&store, "svc_fix", 100);
    assert!(wait_for(Duration::from_secs(15), || {
        all_runs(&store)
            .iter()
            .filter(|r| r.phase == Some(RunPhase::Check))
            .count()
            >= 3
    }));
    let fixes = |store: &Store| {
        all_runs(store)
            .iter()
            .filter(|r| r.phase == Some(RunPhase::Fix))
            .count()
    };
    assert_eq!(fixes(&store), 0, "no fix runs in a downtime");
    let events = |got: &Arc<std::sync::Mutex<Vec<String>>>| -> Vec<String> {
        got.lock()
            .expect("lock")
            .iter()
            .map(|b| {
                serde_json::from_str::<serde_json::Value>(b).expect("json")["event"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        events(&got),
        vec!["downtime_start"],
        "only the downtime is told"
    );
    // It ends: the next failing check is fixed (in vain) and told.
    store.remove_downtime(dt).expect("end it");
    assert!(wait_for(Duration::from_secs(15), || events(&got)
        .contains(&"fix_failed".to_string())));
    d.stop();
    assert!(fixes(&store) >= 1);
    let told = events(&got);
    assert_eq!(&told[..2], ["downtime_start", "downtime_end"], "{told:?}");
}

#[test]
fn a_problem_is_hard_only_after_its_retries_and_soft_ones_are_checked_again_soon() {
    let w = Work::new();
    let (url, got, _server) = webhook();
    let mut o = opts("n1");
    o.channels.notify.webhook = Some(url);
    let (d, store) = Daemon::start(&w, &["sh"], o);
    host(&store, "localhost");
    w.script(&store, "svc_check", r#"critical("down")"#);
    // Every hour: only the retries, a second apart, make the later runs.
    store
        .add_schedule(&NewSchedule {
            max_attempts: 1,
            guard_backoff_ms: 0,
            retries: 3,
            retry_every_ms: Some(1_000),
            ..NewSchedule::every("svc_check", Some("localhost"), 3_600_000)
        })
        .expect("schedule");
    let mut seen = Vec::new();
    assert!(wait_for(Duration::from_secs(15), || {
        if let Ok(c) = store.check(Some("localhost"), "svc_check")
            && seen.last() != Some(&(c.attempts, c.hard, got.lock().expect("lock").len()))
        {
            seen.push((c.attempts, c.hard, got.lock().expect("lock").len()));
        }
        !got.lock().expect("lock").is_empty()
    }));
    std::thread::sleep(Duration::from_millis(500));
    d.stop();
    let runs = all_runs(&store);
    assert_eq!(
        runs.len(),
        3,
        "two soft results, checked again, then hard: {runs:?}"
    );
    let gaps: Vec<i64> = runs
        .windows(2)
        .map(|p| p[1].started_at - p[0].finished_at)
        .collect();
    assert!(
        gaps.iter().all(|g| (900..5_000).contains(g)),
        "a second apart: {gaps:?}"
    );
    // Soft results told nobody; the hard one told once.
    assert!(
        seen.contains(&(1, false, 0)) && seen.contains(&(2, false, 0)),
        "{seen:?}"
    );
    let bodies = got.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let c = store.check(Some("localhost"), "svc_check").expect("check");
    assert_eq!((c.attempts, c.hard, c.notified), (3, true, true));
}

#[test]
fn a_fix_held_back_by_the_guard_is_said_at_once_and_once() {
    let w = Work::new();
    let (url, got, _server) = webhook();
    let mut o = opts("n1");
    o.channels.notify.webhook = Some(url);
    o.recheck_within = Duration::from_millis(200);
    let (d, store) = Daemon::start(&w, &["sh"], o);
    host(&store, "localhost");
    w.script(&store, "svc_check", r#"critical("not running")"#);
    w.script(
        &store,
        "svc_fix",
        r#"print("bind: Address already in use"); critical("restart refused")"#,
    );
    // Three fixes an hour, the second only a minute after the first.
    correction_schedule_with(&store, "svc_fix", 3, 60_000);
    assert!(wait_for(Duration::from_secs(20), || {
        got.lock().expect("lock").len() >= 2
    }));
    // More failing checks while held back: still only the one message.
    std::thread::sleep(Duration::from_millis(2500));
    d.stop();
    let bodies = got.lock().expect("lock").clone();
    assert!(bodies[0].contains("svc_fix did not fix it"), "{bodies:?}");
    let held: Vec<&String> = bodies.iter().filter(|b| b.contains("held back")).collect();
    assert_eq!(held.len(), 1, "{bodies:?}");
    let v: serde_json::Value = serde_json::from_str(held[0]).expect("JSON");
    let text = v["body"].as_str().expect("body");
    assert!(
        text.starts_with("fix svc_fix held back by the guard until ")
            && text.contains("(1 fixes in the last 1h)"),
        "{text}"
    );
    // It carries the cause: what the check said, and what the last fix said and printed.
    assert!(
        text.contains("the check said: not running")
            && text.contains("the last fix (svc_fix, ")
            && text.contains("CRITICAL restart refused")
            && text.contains("bind: Address already in use"),
        "{text}"
    );
    // The time is a local clock time, not epoch milliseconds.
    assert!(!text.contains(&now_ms().to_string()[..6]), "{text}");
    let fixes = all_runs(&store)
        .iter()
        .filter(|r| r.phase == Some(RunPhase::Fix))
        .count();
    assert_eq!(fixes, 1, "the backoff held the second fix back");
    // Where the guard stands, in the store, the status and the API's check; then a reset.
    let g = store
        .guard_state(Some("localhost"), "svc_check")
        .expect("guard")
        .expect("a fix, so a guard");
    assert_eq!((g.fixes, g.max_fixes, g.exhausted), (1, 3, false));
    assert!(g.next_allowed.expect("held back") > now_ms());
    let status = crate::util::stdout(&w.run(&["status"]));
    assert!(status.contains("guard 1/3 until "), "{status}");
    let o = w.run(&["guard", "reset", "localhost", "svc_check"]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let g = store
        .guard_state(Some("localhost"), "svc_check")
        .expect("guard")
        .expect("guard");
    assert_eq!((g.fixes, g.next_allowed), (0, None));
    let o = w.run(&["guard", "reset", "localhost", "nope"]);
    assert_ne!(crate::util::code(&o), 0);
}

#[test]
fn a_failed_fix_notifies_through_the_webhook_and_the_guard_escalates() {
    let w = Work::new();
    let (url, got, _server) = webhook();
    let mut o = opts("n1");
    o.channels.notify.webhook = Some(url);
    o.channels.notify.command = Some(format!("tee -a {}", w.path("mail.txt").display()));
    let (d, store) = Daemon::start(&w, &["sh"], o);
    host(&store, "localhost");
    w.script(&store, "svc_check", r#"critical("not running")"#);
    w.script(&store, "svc_fix", r#"ok("tried")"#);
    correction_schedule(&store, "svc_fix", 1);
    // The first failure runs the fix, which does not help: "did not fix it".
    // The next failure finds the guard tripped (1 fix per window): one escalation.
    assert!(wait_for(Duration::from_secs(20), || got
        .lock()
        .expect("lock")
        .len()
        >= 2));
    std::thread::sleep(Duration::from_millis(1500));
    d.stop();
    let bodies = got.lock().expect("lock").clone();
    assert!(bodies[0].contains("svc_fix did not fix it"), "{bodies:?}");
    assert!(bodies[1].contains("giving up for now"), "{bodies:?}");
    assert_eq!(
        bodies.iter().filter(|b| b.contains("giving up")).count(),
        1,
        "one escalation per window: {bodies:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&bodies[0]).expect("JSON body");
    assert_eq!(v["host"], "localhost");
    let mail = std::fs::read_to_string(w.path("mail.txt")).expect("the command got the message");
    assert!(
        mail.starts_with("Subject: localhost: svc_check is CRITICAL"),
        "{mail}"
    );
    let n = store.notifications(10).expect("n");
    assert!(
        n.iter()
            .all(|n| n.delivered_at.is_some() && n.channel.as_deref() == Some("webhook,command")),
        "{n:?}"
    );
    let fixes = all_runs(&store)
        .iter()
        .filter(|r| r.phase == Some(RunPhase::Fix))
        .count();
    assert_eq!(fixes, 1, "the guard allowed one fix");
}

#[test]
fn failed_deliveries_are_recorded_and_retried() {
    let w = Work::new();
    let store = w.store();
    let id = store
        .add_notification(
            Some("h"),
            &hostler::store::Notice {
                event: hostler::store::Alert::Notify,
                subject: "subject".into(),
                body: "body".into(),
            },
        )
        .expect("add");
    let mut cfg = monitord::Channels::default();
    cfg.notify = hostler::config::Notify {
        webhook: Some("http://127.0.0.1:9/nothing-listens-here".into()),
        command: None,
        mail_to: None,
        max_per_minute: 30,
        group_window: "0s".into(),
    };
    assert_eq!(monitord::deliver_pending(&store, &cfg), 0);
    let n = store.notifications(1).expect("n");
    assert_eq!((n[0].id, n[0].tries, n[0].delivered_at), (id, 1, None));
    assert!(
        n[0].error
            .as_deref()
            .unwrap_or_default()
            .contains("webhook"),
        "{n:?}"
    );
    assert!(n[0].next_try_at.expect("a retry is planned") > now_ms());
}

#[test]
fn each_channel_is_retried_on_its_own_and_the_command_gets_a_whole_mail() {
    let w = Work::new();
    let store = w.store();
    store
        .add_notification(
            Some("web1"),
            &hostler::store::Notice {
                event: hostler::store::Alert::FixFailed,
                subject: "web1: check_nginx is CRITICAL and restart_nginx did not fix it".into(),
                body: "the body".into(),
            },
        )
        .expect("add");
    let mail = w.path("mail.txt");
    let env_file = w.path("env.txt");
    let script = w.path("mailer.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat >> {}\nenv | grep ^HOSTLER_ | sort >> {}\nenv >> {}\n",
            mail.display(),
            env_file.display(),
            w.path("env-all.txt").display()
        ),
    )
    .expect("mailer");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mut cfg = monitord::Channels::default();
    cfg.notify = hostler::config::Notify {
        webhook: Some("http://127.0.0.1:9/nothing-listens-here".into()),
        command: Some(script.display().to_string()),
        mail_to: Some("ops@example.com".into()),
        max_per_minute: 30,
        group_window: "0s".into(),
    };
    // The webhook is down: the command takes it, the row remembers that.
    assert_eq!(monitord::deliver_pending(&store, &cfg), 0);
    let n = &store.notifications(1).expect("n")[0];
    assert_eq!(
        (n.channel.as_deref(), n.delivered_at),
        (Some("command"), None)
    );
    // The retry goes to the webhook alone: the mail is not sent twice.
    store
        .raw("UPDATE notifications SET next_try_at = 0", false)
        .expect("due now");
    assert_eq!(monitord::deliver_pending(&store, &cfg), 0);
    let text = std::fs::read_to_string(&mail).expect("mail");
    assert_eq!(text.matches("Subject: ").count(), 1, "{text}");
    assert!(
        text.starts_with("To: ops@example.com\nSubject: web1: check_nginx is CRITICAL and restart_nginx did not fix it\nDate: ")
            && text.contains("X-Hostler-Event: fix_failed\n\nthe body\n"),
        "{text}"
    );
    let env = std::fs::read_to_string(&env_file).expect("env");
    assert!(
        env.contains("HOSTLER_EVENT=fix_failed\n") && env.contains("HOSTLER_HOST=web1\n"),
        "{env}"
    );
    // Nothing of the daemon's own environment (this test runner's CARGO_*, HOME, ...): only
    // its HOSTLER_* variables, PATH and LANG, and what sh sets itself.
    let all = std::fs::read_to_string(w.path("env-all.txt")).expect("env");
    for line in all.lines() {
        let name = line.split('=').next().unwrap_or("");
        assert!(
            name.starts_with("HOSTLER_")
                || ["PATH", "LANG", "PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
            "the notify command got {name}: {all}"
        );
    }
    assert_eq!(store.notifications(1).expect("n")[0].tries, 2);
}

#[test]
fn the_rate_limit_holds_notifications_back_and_drops_none() {
    let w = Work::new();
    let store = w.store();
    for i in 0..5 {
        store
            .add_notification(
                Some("web1"),
                &hostler::store::Notice {
                    event: hostler::store::Alert::Notify,
                    subject: format!("message {i}"),
                    body: "b".into(),
                },
            )
            .expect("add");
    }
    let mail = w.path("mail.txt");
    let mut cfg = monitord::Channels::default();
    cfg.notify = hostler::config::Notify {
        webhook: None,
        command: Some(format!("tee -a {}", mail.display())),
        mail_to: None,
        max_per_minute: 2,
        group_window: "0s".into(),
    };
    assert_eq!(monitord::deliver_pending(&store, &cfg), 2);
    let text = std::fs::read_to_string(&mail).expect("mail");
    assert_eq!(text.matches("Subject: ").count(), 2, "{text}");
    let all = store.notifications(10).expect("n");
    let held: Vec<_> = all.iter().filter(|n| n.delivered_at.is_none()).collect();
    assert_eq!(held.len(), 3);
    assert!(
        held.iter().all(|n| n.tries == 0
            && n.error.is_none()
            && n.next_try_at.is_some_and(|t| t > now_ms())),
        "held, not failed: {held:?}"
    );
    // A later pass within the minute still holds them; none is ever given up for it.
    store
        .raw(
            "UPDATE notifications SET next_try_at = 0 WHERE delivered_at IS NULL",
            false,
        )
        .expect("due now");
    assert_eq!(monitord::deliver_pending(&store, &cfg), 0);
    assert!(
        store
            .notifications(10)
            .expect("n")
            .iter()
            .all(|n| n.tries <= 1)
    );
}

/// The real daemon; its log goes to NODE.log in the work folder (a pipe nobody reads would
/// fill up and stop it).
fn serve(w: &Work, node: &str, config: &str) -> std::process::Child {
    let log = std::fs::File::create(w.path(&format!("{node}.log"))).expect("log file");
    w.cmd(&[
        "--config",
        config,
        "serve",
        "--node",
        node,
        "--no-demo",
        "--no-web",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(log)
    .spawn()
    .expect("serve")
}

fn log(w: &Work, node: &str) -> String {
    std::fs::read_to_string(w.path(&format!("{node}.log"))).unwrap_or_default()
}

#[test]
fn kill_9_mid_batch_then_restart_completes_every_job() {
    let w = Work::new();
    std::fs::write(
        w.path("c.toml"),
        "[monitord]\nlease = 1.0\npoll_interval = 0.05\nmax_concurrent = 3\n",
    )
    .expect("config");
    let store = w.store();
    w.script(&store, "work", "sleep(0.4); ok()");
    let mut ids = Vec::new();
    for i in 0..9 {
        let h = format!("h{}", i % 3);
        if i < 3 {
            host(&store, &h);
        }
        ids.push(
            store
                .enqueue_with(&job("work", Some(&h), 0), true)
                .expect("enqueue")
                .0,
        );
    }
    let mut first = serve(&w, "node-a", "c.toml");
    assert!(wait_for(Duration::from_secs(15), || store
        .jobs()
        .expect("jobs")
        .iter()
        .any(|j| j.state == hostler::store::JobState::Running)));
    first.kill().expect("kill -9");
    first.wait().expect("reap");
    let second = serve(&w, "node-b", "c.toml");
    let done = wait_for(Duration::from_secs(60), || queue_empty(&store));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(second.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = second.wait_with_output().expect("wait");
    assert!(
        done,
        "queue not drained: {:?}\n{}",
        store.jobs(),
        log(&w, "node-b")
    );
    let runs = all_runs(&store);
    for id in &ids {
        assert!(
            runs.iter()
                .any(|r| r.job_id == Some(*id) && r.status == Status::Ok),
            "job {id} has no OK run"
        );
    }
    assert!(
        runs.iter()
            .any(|r| r.attempt >= 2 && r.node.as_deref() == Some("node-b")),
        "the re-run after the lease expired is visible: {runs:?}"
    );
}

#[test]
fn two_daemons_share_a_thousand_jobs_without_running_one_twice() {
    let w = Work::new();
    std::fs::write(
        w.path("c.toml"),
        "[monitord]\nlease = 60.0\npoll_interval = 0.05\nmax_concurrent = 4\n",
    )
    .expect("config");
    let store = w.store();
    w.script(&store, "noop", "ok()");
    for i in 0..20 {
        host(&store, &format!("h{i}"));
    }
    // Queue them in one transaction, before either daemon starts.
    let n = 1000;
    let mut a = serve(&w, "node-a", "c.toml");
    let mut b = serve(&w, "node-b", "c.toml");
    for i in 0..n {
        store
            .enqueue_with(&job("noop", Some(&format!("h{}", i % 20)), 0), true)
            .expect("enqueue");
    }
    let done = wait_for(Duration::from_secs(120), || queue_empty(&store));
    for c in [&a, &b] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = a.wait();
    let _ = b.wait();
    assert!(
        done,
        "queue not drained\n{}\n{}",
        log(&w, "node-a"),
        log(&w, "node-b")
    );
    let runs = all_runs(&store);
    let mut per_job: HashMap<i64, Vec<&Run>> = HashMap::new();
    for r in &runs {
        per_job
            .entry(r.job_id.expect("job id"))
            .or_default()
            .push(r);
    }
    assert_eq!(per_job.len(), n, "every job ran");
    for (id, rs) in &per_job {
        // A duplicate is allowed only as a marked re-run after a lease expired.
        assert!(
            rs.len() == 1 || rs.iter().skip(1).all(|r| r.attempt > 1),
            "job {id} ran twice: {rs:?}"
        );
    }
    assert_eq!(
        runs.len(),
        n,
        "with 60 s leases nothing expired, so nothing ran twice"
    );
    let nodes: std::collections::HashSet<_> = runs.iter().filter_map(|r| r.node.clone()).collect();
    assert_eq!(nodes.len(), 2, "both daemons worked: {nodes:?}");
}

#[test]
fn the_fix_guard_is_a_pure_decision() {
    use hostler::monitord::{FixGuard, fix_guard};
    assert_eq!(fix_guard(3, 30_000, 0, None, 1_000), FixGuard::Allowed);
    // The backoff after a fix doubles with each fix in the window.
    assert_eq!(
        fix_guard(3, 30_000, 1, Some(1_000), 20_000),
        FixGuard::Backoff { until: 31_000 }
    );
    assert_eq!(
        fix_guard(3, 30_000, 1, Some(1_000), 31_000),
        FixGuard::Allowed
    );
    assert_eq!(
        fix_guard(3, 30_000, 2, Some(1_000), 50_000),
        FixGuard::Backoff { until: 61_000 }
    );
    assert_eq!(
        fix_guard(3, 30_000, 3, Some(1_000), 10_000_000),
        FixGuard::Exhausted { fixes: 3 }
    );
    assert_eq!(
        fix_guard(0, 30_000, 0, None, 0),
        FixGuard::Exhausted { fixes: 0 }
    );
    // Absurd settings saturate instead of overflowing.
    assert_eq!(
        fix_guard(i64::MAX, i64::MAX, 100, Some(i64::MAX), 0),
        FixGuard::Backoff { until: i64::MAX }
    );
}

#[test]
fn sighup_reloads_the_config_and_a_bad_one_keeps_the_running_one() {
    let w = Work::new();
    let cfg = w.path("c.toml");
    let write = |extra: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[monitord]\npoll_interval = 0.05\n[sandbox]\nallowed_commands = [\"df\"{extra}]\n"
            ),
        )
        .expect("config")
    };
    write("");
    let store = w.store();
    host(&store, "localhost");
    w.script(
        &store,
        "ex",
        r#"let r = exec("true", []); ok(`exit ${r.code}`)"#,
    );
    let mut child = serve(&w, "n1", "c.toml");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let run_once = |store: &Store| -> hostler::store::Run {
        let before = all_runs(store).len();
        let o = w.run(&["schedule", "ex", "--host", "localhost"]);
        assert_eq!(code_of(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        assert!(wait_for(Duration::from_secs(15), || all_runs(store).len() > before));
        all_runs(store).pop().expect("run")
    };
    let first = run_once(&store);
    assert!(first.message.contains("not allowed"), "{first:?}");
    // Allowed now: SIGHUP, and the next run may run it.
    write(", \"true\"");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("hup");
    assert!(wait_for(Duration::from_secs(10), || log(&w, "n1")
        .contains("configuration reloaded")));
    let second = run_once(&store);
    assert_eq!(
        (second.status, second.message.as_str()),
        (Status::Ok, "exit 0"),
        "{second:?}"
    );
    // A file that does not parse: the daemon lives on with what it had, and says why.
    std::fs::write(&cfg, "[sandbox\nallowed_commands = 3\n").expect("bad config");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("hup");
    assert!(wait_for(Duration::from_secs(10), || log(&w, "n1")
        .contains("was not reloaded")));
    let third = run_once(&store);
    assert_eq!(third.status, Status::Ok, "{third:?}");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "alive: {}",
        log(&w, "n1")
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}: {}", log(&w, "n1"));
}

fn code_of(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The daemon's environment at start, from /proc (the block exec gave it).
fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// The daemon starts again at once with glibc's per-thread cache off (a check waiting on the
/// network keeps its thread's cache: issue 31's mute-peer memory); an operator's own
/// `$GLIBC_TUNABLES` stands, and commands other than `serve` are not started again.
#[test]
fn serve_restarts_with_the_allocators_tunables_unless_the_operator_set_theirs() {
    let w = Work::new();
    std::fs::write(w.path("c.toml"), "[monitord]\npoll_interval = 0.2\n").expect("config");
    let config = w.path("c.toml").to_str().expect("path").to_string();
    let start = |tunables: Option<&str>, node: &str| {
        let log = std::fs::File::create(w.path(&format!("{node}.log"))).expect("log file");
        let mut cmd = w.cmd(&[
            "--config",
            &config,
            "serve",
            "--node",
            node,
            "--no-demo",
            "--no-web",
        ]);
        match tunables {
            Some(t) => cmd.env("GLIBC_TUNABLES", t),
            None => cmd.env_remove("GLIBC_TUNABLES"),
        };
        cmd.stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("serve")
    };
    let stop = |mut child: std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };

    let child = start(None, "a");
    let started = wait_for(Duration::from_secs(20), || {
        log(&w, "a").contains("monitord started")
    });
    let env = environ(child.id());
    // Started again through /proc/self/exe, it still goes by its own name in ps.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
    stop(child);
    assert!(started, "{}", log(&w, "a"));
    assert_eq!(comm.trim(), "hostler");
    assert!(
        env.iter()
            .any(|v| *v == format!("GLIBC_TUNABLES={}", hostler::environ::TUNABLES)),
        "{env:?}"
    );
    assert!(env.iter().any(|v| v == "HOSTLER_MALLOC_TUNED=1"), "{env:?}");

    let child = start(Some("glibc.malloc.arena_max=2"), "b");
    let started = wait_for(Duration::from_secs(20), || {
        log(&w, "b").contains("monitord started")
    });
    let env = environ(child.id());
    stop(child);
    assert!(started, "{}", log(&w, "b"));
    assert!(
        env.iter()
            .any(|v| v == "GLIBC_TUNABLES=glibc.malloc.arena_max=2"),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|v| v.starts_with("HOSTLER_MALLOC_TUNED")),
        "{env:?}"
    );

    // A command that is not the daemon: a script it runs reads its parent's environment.
    w.peek_at_the_parents_environment("s.toml");
    let out = w.run(&[
        "script",
        "add",
        "peek",
        w.path("peek.rhai").to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let out = w
        .cmd(&[
            "--config",
            w.path("s.toml").to_str().expect("path"),
            "run",
            "peek",
        ])
        .env_remove("GLIBC_TUNABLES")
        .output()
        .expect("run");
    let said = crate::util::stdout(&out);
    assert!(
        said.starts_with("OK"),
        "{said}{}",
        crate::util::stderr(&out)
    );
    assert!(said.contains("PATH="), "{said}");
    assert!(!said.contains("GLIBC_TUNABLES"), "{said}");
}
