//! monitord's queue benchmarks, in-process, each beside its peer in the same run:
//! - throughput of no-op jobs end to end (enqueue, claim, run, record) against a bare loop of
//!   the same SQLite transactions (the same rendered SQL, with rusqlite, no daemon, no script),
//!   both for a schedule's jobs (each run moves its check, in the run's transaction) and for
//!   ad-hoc jobs (no check);
//! - dispatch latency from the due time, for jobs queued in this process (woken at once) and
//!   for jobs due in the future (the daemon sleeps until the next due time);
//! - the cost of dependencies: failing checks of a host behind a router that is down, end to
//!   end, with the dependency and without it (then each is an ordinary problem); and the time
//!   from a router's hard problem to 1,000 checks behind it read as unreachable.
//!
//! Run: cargo bench --bench queue [-- N]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hostler::config::Sandbox;
use hostler::monitord::{self, DaemonOptions, Shutdown};
use hostler::script::{Cache, Runner};
use hostler::session::Allowlist;
use hostler::sql::{Dialect, Value, param};
use hostler::store::statements as st;
use hostler::store::{NewJob, NewScript, RunFilter, ScriptKind, Store, now_ms};

fn env(path: &str) -> Runner {
    let store = Arc::new(Store::open(path).expect("store"));
    store
        .save_scripts(&[NewScript {
            name: "noop",
            source: "ok()",
            description: None,
            kind: ScriptKind::Task,
        }])
        .expect("script");
    Runner::new(
        store,
        Sandbox::default(),
        Allowlist::new(&[]).expect("allowlist"),
        Arc::new(Cache::default()),
        "bench".into(),
        Arc::new(hostler::script::Remote::default()),
    )
}

/// A schedule of `noop` that never fires by itself: its jobs' runs move its check.
fn schedule(store: &Store) -> i64 {
    store
        .add_schedule(&hostler::store::NewSchedule {
            max_attempts: 1,
            guard_backoff_ms: 0,
            allow_duplicate: true,
            next_due: now_ms() + 86_400_000,
            ..hostler::store::NewSchedule::every("noop", None, 3_600_000)
        })
        .expect("schedule")
}

fn job(due_at: i64) -> NewJob {
    scheduled_job(due_at, None)
}

fn scheduled_job(due_at: i64, schedule_id: Option<i64>) -> NewJob {
    NewJob {
        script: "noop".into(),
        host: None,
        priority: 0,
        due_at,
        max_attempts: 1,
        timeout_ms: None,
        schedule_id,
        args: None,
        name: None,
    }
}

fn opts() -> DaemonOptions {
    let mut o = DaemonOptions::from_config(&hostler::config::Config::default());
    o.node = "bench".into();
    o.max_concurrent = 4;
    o.poll_interval = Duration::from_secs(1);
    o
}

fn runs(store: &Store) -> Vec<hostler::store::Run> {
    store
        .runs(&RunFilter {
            limit: 1_000_000,
            ..RunFilter::default()
        })
        .expect("runs")
}

/// Jobs left, by a cheap count (the benchmark must not load the store it measures).
fn queued(store: &Store) -> i64 {
    let r = store
        .raw("SELECT COUNT(*) FROM jobs", false)
        .expect("count");
    r.rows[0][0]
        .to_text()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// Runs recorded (OK runs that change nothing share a row: `repeats` counts them).
fn run_count(store: &Store) -> usize {
    let r = store
        .raw("SELECT COALESCE(SUM(repeats), 0) FROM runs", false)
        .expect("count");
    r.rows[0][0]
        .to_text()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn wait_runs(store: &Store, n: usize, limit: Duration) {
    let end = Instant::now() + limit;
    while run_count(store) < n {
        assert!(
            Instant::now() < end,
            "only {} of {n} runs recorded",
            run_count(store)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn hostler_throughput(dir: &std::path::Path, n: usize, checks: bool) -> f64 {
    let name = if checks {
        "hostler-checks.db"
    } else {
        "hostler.db"
    };
    let env = Arc::new(env(&dir.join(name).display().to_string()));
    let store = env.store.clone();
    let sched = checks.then(|| schedule(&store));
    let shutdown = Shutdown::default();
    let t = Instant::now();
    for _ in 0..n {
        store
            .enqueue_with(&scheduled_job(now_ms(), sched), true)
            .expect("enqueue");
    }
    let enqueued = t.elapsed();
    let (e, s) = (env.clone(), shutdown.clone());
    let daemon = std::thread::spawn(move || monitord::run(e, opts(), s).expect("daemon"));
    let end = Instant::now() + Duration::from_secs(300);
    while queued(&store) > 0 {
        assert!(Instant::now() < end, "queue not drained");
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = t.elapsed();
    shutdown.request();
    daemon.join().expect("join");
    assert_eq!(run_count(&store), n);
    if checks {
        let c = store.checks().expect("checks");
        assert_eq!(c.len(), 1, "every run moved the one check");
        assert_eq!(c[0].last_run_id, runs(&store).first().map(|r| r.id));
    }
    eprintln!(
        "  (enqueue {:.0}/s, then claim+run+record {:.0}/s)",
        n as f64 / enqueued.as_secs_f64(),
        n as f64 / (elapsed - enqueued).as_secs_f64()
    );
    n as f64 / elapsed.as_secs_f64()
}

fn exec(conn: &rusqlite::Connection, stmt: hostler::sql::Statement) -> Option<i64> {
    let r = stmt.render(Dialect::Sqlite).expect("render");
    let params = r.params.iter().map(|v| match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Bool(b) => rusqlite::types::Value::Integer(i64::from(*b)),
        Value::Int(i) => rusqlite::types::Value::Integer(*i),
        Value::Real(f) => rusqlite::types::Value::Real(*f),
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    });
    let mut s = conn.prepare_cached(&r.sql).expect("prepare");
    let mut rows = s.query(rusqlite::params_from_iter(params)).expect("query");
    rows.next().expect("row").map(|row| row.get(0).unwrap_or(0))
}

/// The same three transactions per job, in a loop: insert the job; claim it; record its run
/// (with `checks`: and move its check, as the store does) and delete it.
fn bare_throughput(dir: &std::path::Path, n: usize, checks: bool) -> f64 {
    let path = dir.join(if checks { "bare-checks.db" } else { "bare.db" });
    let sched = {
        let e = env(&path.display().to_string());
        checks.then(|| schedule(&e.store))
    };
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("sync");
    // A run names its host, script and check by a key (schema version 5).
    conn.execute(
        "INSERT INTO run_keys (host, script) VALUES (NULL, 'noop')",
        [],
    )
    .expect("run key");
    let key = conn.last_insert_rowid();
    let t = Instant::now();
    for _ in 0..n {
        let at = now_ms();
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        exec(
            &conn,
            st::job_insert(1, None, &scheduled_job(at, sched), at, None),
        );
        conn.execute_batch("COMMIT").expect("commit");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        // The store's claim: the top priority, its candidates, the claim by ids, the job
        // read back.
        let level = exec(&conn, st::job_top_priority(st::Claimable::Due, None)).expect("a level");
        let id = exec(
            &conn,
            st::claim_candidates(1, None, st::Claimable::Due, level, 18),
        )
        .expect("claimable");
        exec(&conn, st::job_claim_by_ids(&[id], "bench", 60_000));
        exec(&conn, st::jobs_by_ids(&[id]));
        conn.execute_batch("COMMIT").expect("commit");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        exec(
            &conn,
            st::run_insert(vec![
                ("job_id", param(id)),
                ("key_id", param(key)),
                ("status", param("ok")),
                ("message", param("")),
                ("output", param("")),
                ("transcript", param("")),
                ("started_at", param(at)),
                ("finished_at", param(now_ms())),
                ("attempt", param(1i64)),
            ]),
        );
        if checks {
            let done = now_ms();
            exec(&conn, st::downtime_list(done));
            let values = vec![
                ("state", param("ok")),
                ("hard", param(false)),
                ("attempts", param(0i64)),
                ("since", param(at)),
                ("last_run_id", param(id)),
                ("last_run_at", param(done)),
                ("message", param("")),
                ("perfdata", param(None::<String>)),
                ("notified", param(false)),
                ("acked", param(false)),
                ("ack_comment", param(None::<String>)),
            ];
            match exec(&conn, st::check_get(None, "noop")) {
                Some(check) => {
                    exec(&conn, st::check_update(check, values));
                }
                None => {
                    let mut values = values;
                    values.push(("host", param(None::<String>)));
                    values.push(("script", param("noop")));
                    exec(&conn, st::check_insert(values));
                }
            }
        }
        exec(&conn, st::jobs_done(&[id], "bench"));
        conn.execute_batch("COMMIT").expect("commit");
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// A failing check's schedule on `host` (never fires by itself).
fn failing_schedule(store: &Store, host: &str) -> i64 {
    store
        .add_schedule(&hostler::store::NewSchedule {
            max_attempts: 1,
            guard_backoff_ms: 0,
            allow_duplicate: true,
            next_due: now_ms() + 86_400_000,
            ..hostler::store::NewSchedule::every("fail", Some(host), 3_600_000)
        })
        .expect("schedule")
}

fn add_host(store: &Store, name: &str) {
    store
        .add_host(&hostler::store::NewHost {
            name: name.into(),
            address: "127.0.0.1".into(),
            method: Some(hostler::store::Method::Local),
            ..Default::default()
        })
        .expect("host");
}

/// Records one CRITICAL result of `fail` on `host` for its schedule: with retries 1, a hard
/// problem at once.
fn record_critical(store: &Store, host: &str, schedule: i64) {
    let at = now_ms();
    store
        .record_run(
            &hostler::store::NewRun {
                job_id: None,
                schedule_id: Some(schedule),
                script: "fail".into(),
                script_version: None,
                host: Some(host.into()),
                node: None,
                status: hostler::store::Status::Critical,
                message: "down".into(),
                perfdata: None,
                output: String::new(),
                transcript: String::new(),
                started_at: at,
                finished_at: at,
                attempt: 1,
                phase: None,
                notifications: Vec::new(),
                check_name: None,
            },
            hostler::store::JobAction::Keep,
        )
        .expect("record");
}

fn fail_env(path: &str) -> Runner {
    let env = env(path);
    env.store
        .save_scripts(&[NewScript {
            name: "fail",
            source: "critical(\"down\")",
            description: None,
            kind: ScriptKind::Check,
        }])
        .expect("script");
    env
}

/// `n` failing checks of h1, whose router r1 is in a hard problem, end to end (4 slots, 4
/// per host); with `depends`, h1 depends on r1 (each run reads its dependencies and the
/// router's state, twice: to decide the fix, and in the run's transaction), without, each is
/// an ordinary told problem.
fn failing_throughput(dir: &std::path::Path, n: usize, depends: bool) -> f64 {
    let name = if depends { "deps.db" } else { "nodeps.db" };
    let env = Arc::new(fail_env(&dir.join(name).display().to_string()));
    let store = env.store.clone();
    add_host(&store, "r1");
    add_host(&store, "h1");
    let router = failing_schedule(&store, "r1");
    record_critical(&store, "r1", router);
    let sched = failing_schedule(&store, "h1");
    if depends {
        store
            .add_dependency(&hostler::store::NewDependency {
                child_host: "h1".into(),
                parent_host: "r1".into(),
                parent_check: "fail".into(),
                ..Default::default()
            })
            .expect("depend");
    }
    let t = Instant::now();
    for _ in 0..n {
        store
            .enqueue_with(
                &NewJob {
                    script: "fail".into(),
                    host: Some("h1".into()),
                    ..scheduled_job(now_ms(), Some(sched))
                },
                true,
            )
            .expect("enqueue");
    }
    let shutdown = Shutdown::default();
    let (e, s) = (env.clone(), shutdown.clone());
    let mut o = opts();
    o.per_host = 4;
    let daemon = std::thread::spawn(move || monitord::run(e, o, s).expect("daemon"));
    let end = Instant::now() + Duration::from_secs(300);
    while queued(&store) > 0 {
        assert!(Instant::now() < end, "queue not drained");
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = t.elapsed();
    shutdown.request();
    daemon.join().expect("join");
    let h1 = store.check(Some("h1"), "fail").expect("h1's check");
    let c = store
        .checks()
        .expect("checks")
        .into_iter()
        .find(|c| c.host.as_deref() == Some("h1"))
        .expect("h1");
    assert_eq!(c.unreachable, depends, "{c:?}");
    assert_eq!(h1.notified, !depends, "told only without the dependency");
    n as f64 / elapsed.as_secs_f64()
}

/// 1,000 hosts with a failing check each behind r1 (OK): records r1's hard problem, then
/// reads the checks as the status, the API and the dashboard do; returns the time from the
/// record to a read that shows all 1,000 unreachable, and that read's own time, in ms.
fn unreachable_marking(dir: &std::path::Path, n: usize) -> (f64, f64) {
    let env = fail_env(&dir.join("marking.db").display().to_string());
    let store = env.store.clone();
    add_host(&store, "r1");
    let router = failing_schedule(&store, "r1");
    for i in 0..n {
        let h = format!("c{i:04}");
        add_host(&store, &h);
        let s = failing_schedule(&store, &h);
        store
            .add_dependency(&hostler::store::NewDependency {
                child_host: h.clone(),
                parent_host: "r1".into(),
                parent_check: "fail".into(),
                ..Default::default()
            })
            .expect("depend");
        record_critical(&store, &h, s);
    }
    assert_eq!(
        store
            .checks()
            .expect("checks")
            .iter()
            .filter(|c| c.unreachable)
            .count(),
        0
    );
    let t = Instant::now();
    record_critical(&store, "r1", router);
    let recorded = t.elapsed();
    let read = Instant::now();
    let cut = store
        .checks()
        .expect("checks")
        .iter()
        .filter(|c| c.unreachable)
        .count();
    let total = t.elapsed();
    assert_eq!(cut, n, "all {n} unreachable at the first read");
    let _ = recorded;
    (
        total.as_secs_f64() * 1000.0,
        read.elapsed().as_secs_f64() * 1000.0,
    )
}

fn percentile(v: &mut [i64], p: f64) -> i64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Dispatch latency (started_at minus due_at), p50 and p99 in ms: for jobs queued in this
/// process and due at once, and for jobs due in the future.
fn latency(dir: &std::path::Path, n: usize) -> ((i64, i64), (i64, i64)) {
    let env = Arc::new(env(&dir.join("latency.db").display().to_string()));
    let store = env.store.clone();
    let shutdown = Shutdown::default();
    let (e, s) = (env.clone(), shutdown.clone());
    let daemon = std::thread::spawn(move || monitord::run(e, opts(), s).expect("daemon"));
    std::thread::sleep(Duration::from_millis(200));
    let mut due = std::collections::HashMap::new();
    let mut now_ids = Vec::new();
    for _ in 0..n {
        let at = now_ms();
        let (id, _) = store.enqueue_with(&job(at), true).expect("enqueue");
        due.insert(id, at);
        now_ids.push(id);
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_runs(&store, n, Duration::from_secs(60));
    let base = now_ms() + 200;
    for i in 0..n {
        let at = base + i as i64 * 10;
        let (id, _) = store.enqueue_with(&job(at), true).expect("enqueue");
        due.insert(id, at);
    }
    wait_runs(&store, 2 * n, Duration::from_secs(60));
    shutdown.request();
    daemon.join().expect("join");
    let (mut immediate, mut later) = (Vec::new(), Vec::new());
    for r in runs(&store) {
        let id = r.job_id.expect("job");
        let lat = r.started_at - due[&id];
        if now_ids.contains(&id) {
            immediate.push(lat)
        } else {
            later.push(lat)
        }
    }
    (
        (
            percentile(&mut immediate, 0.5),
            percentile(&mut immediate, 0.99),
        ),
        (percentile(&mut later, 0.5), percentile(&mut later, 0.99)),
    )
}

fn main() {
    if std::env::var("ENGINE_COST").is_ok() {
        engine_cost();
        return;
    }
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("tempdir");
    println!("throughput, {n} no-op jobs end to end:");
    for (checks, what) in [
        (
            true,
            "a schedule's jobs (each run moves its check in its transaction)",
        ),
        (false, "ad-hoc jobs (no check)"),
    ] {
        let bare = bare_throughput(dir.path(), n, checks);
        let ours = hostler_throughput(dir.path(), n, checks);
        println!("  {what}:");
        println!("    bare loop of the same SQLite transactions: {bare:.0} jobs/s");
        println!(
            "    hostler (enqueue, claim, run, record):     {ours:.0} jobs/s ({:.2}x of the bare loop)",
            ours / bare
        );
    }
    let without = failing_throughput(dir.path(), n, false);
    let with = failing_throughput(dir.path(), n, true);
    println!("  failing checks of a host behind a router that is down:");
    println!("    without the dependency (each an ordinary problem): {without:.0} jobs/s");
    println!(
        "    with it (each unreachable):                         {with:.0} jobs/s ({:.2}x; goal at least 0.90x)",
        with / without
    );
    let (total, read) = unreachable_marking(dir.path(), 1000);
    println!(
        "1,000 checks behind one router: from its hard problem to all read unreachable: {total:.1} ms (of which the read {read:.1} ms; poll interval 1,000 ms)"
    );
    let ((p50, p99), (f50, f99)) = latency(dir.path(), 300);
    println!("dispatch latency from the due time, 300 jobs each:");
    println!("  queued in this process, due now: p50 {p50} ms, p99 {p99} ms");
    println!("  due in the future:               p50 {f50} ms, p99 {f99} ms");
}

#[allow(dead_code)]
fn engine_cost() {
    let t = Instant::now();
    for _ in 0..1000 {
        let e = rhai::Engine::new();
        std::hint::black_box(&e);
    }
    println!("Engine::new: {:?} each", t.elapsed() / 1000);
    // What each run paid to build its own engine until one engine served every run: hardened,
    // with the API's functions registered.
    let t = Instant::now();
    for _ in 0..1000 {
        let mut e = rhai::Engine::new_raw();
        hostler::script::harden(&mut e, &Sandbox::default());
        hostler::script::api::register(&mut e);
        std::hint::black_box(&e);
    }
    println!(
        "an engine with the API registered: {:?} each",
        t.elapsed() / 1000
    );
    let w = tempfile::tempdir().expect("dir");
    let env = env(&w.path().join("e.db").display().to_string());
    let req = hostler::script::RunRequest {
        script: "noop".into(),
        ..Default::default()
    };
    let t = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(env.execute(&req, None));
    }
    println!("execute(noop): {:?} each", t.elapsed() / 1000);
}
