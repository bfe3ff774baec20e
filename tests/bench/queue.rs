//! monitord's queue benchmarks, in-process, each beside its peer in the same run:
//! - throughput of no-op jobs end to end (enqueue, claim, run, record) against a bare loop of
//!   the same SQLite transactions (the same rendered SQL, with rusqlite, no daemon, no script),
//!   both for a schedule's jobs (each run moves its check, in the run's transaction) and for
//!   ad-hoc jobs (no check);
//! - dispatch latency from the due time, for jobs queued in this process (woken at once) and
//!   for jobs due in the future (the daemon sleeps until the next due time).
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
    Runner {
        store,
        limits: Sandbox::default(),
        allow: Allowlist::new(&[]).expect("allowlist"),
        cache: Arc::new(Cache::default()),
        node: "bench".into(),
        remote: Arc::new(hostler::script::Remote::default()),
    }
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

fn run_count(store: &Store) -> usize {
    let r = store
        .raw("SELECT COUNT(*) FROM runs", false)
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
    assert_eq!(runs(&store).len(), n);
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
    let t = Instant::now();
    for _ in 0..n {
        let at = now_ms();
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        exec(
            &conn,
            st::job_insert(1, None, &scheduled_job(at, sched), at),
        );
        conn.execute_batch("COMMIT").expect("commit");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let id = exec(&conn, st::job_claim("bench", 60_000, 1, None, false)).expect("claimed");
        conn.execute_batch("COMMIT").expect("commit");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        exec(
            &conn,
            st::run_insert(vec![
                ("job_id", param(id)),
                ("script", param("noop")),
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
        exec(&conn, st::job_delete(id, Some("bench")));
        conn.execute_batch("COMMIT").expect("commit");
    }
    n as f64 / t.elapsed().as_secs_f64()
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
