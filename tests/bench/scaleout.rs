//! Scale-out on one PostgreSQL (a throwaway cluster on this machine), beside its peer in the
//! same run:
//! - no-op jobs end to end (claimed, run as a script, recorded) by 1, 2 and 3 real
//!   `hostler serve` nodes (this build's binary), over 30 hosts with `per_host = 1`; beside a
//!   bare loop of the same PostgreSQL transactions (the store's claim and record, no daemon,
//!   no script) on 1 and on 3 connections;
//! - jobs that wait 50 ms each (a check waiting on its peer) by 1, 2 and 3 nodes;
//! - dispatch latency across nodes: a job queued by another client of the database while node
//!   a is busy, to its start on node b (woken by LISTEN/NOTIFY; polling every 30 s).
//!
//! Run: cargo bench --bench scaleout [-- JOBS ROUNDS]   (default 3,000 and 3, medians;
//! needs Debian's postgresql)

#[path = "../it/pgcluster.rs"]
#[allow(dead_code)] // the tests' helpers beside the cluster
mod pgcluster;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hostler::store::{JobAction, NewHost, NewJob, NewRun, NewScript, ScriptKind, Status, Store};

const HOSTS: usize = 30;

fn count(store: &Store, sql: &str) -> i64 {
    store
        .raw(sql, false)
        .ok()
        .and_then(|r| r.rows.first().and_then(|row| row[0].to_text()))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn job(host: usize) -> NewJob {
    NewJob {
        script: "noop".into(),
        host: Some(format!("h{host:02}")),
        priority: 0,
        due_at: hostler::store::now_ms(),
        max_attempts: 1,
        timeout_ms: Some(30_000),
        schedule_id: None,
        args: None,
        name: None,
    }
}

/// A new database with the hosts, the no-op script and `jobs` jobs due now.
fn fill(pg: &pgcluster::Pg, name: &str, jobs: usize, script: &str) -> (String, Store) {
    let url = pg.createdb(name);
    let store = Store::open(&url).expect("open");
    for h in 0..HOSTS {
        store
            .add_host(&NewHost {
                name: format!("h{h:02}"),
                address: "192.0.2.1".into(),
                ..NewHost::default()
            })
            .expect("host");
    }
    store
        .save_scripts(&[
            NewScript {
                name: "noop",
                source: "ok()",
                description: None,
                kind: ScriptKind::Task,
            },
            NewScript {
                name: "wait",
                source: "sleep(0.05); ok()",
                description: None,
                kind: ScriptKind::Task,
            },
        ])
        .expect("script");
    for i in 0..jobs {
        let mut j = job(i % HOSTS);
        j.script = script.into();
        j.args = Some(format!(r#"{{"i":{i}}}"#));
        store.enqueue(&j).expect("enqueue");
    }
    (url, store)
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

fn node(home: &std::path::Path, url: &str, name: &str, monitord: &str) -> Node {
    let config = home.join(format!("{name}.toml"));
    std::fs::write(&config, format!("[monitord]\n{monitord}\n")).expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_hostler"))
        .args(["--config", config.to_str().expect("path")])
        .args(["serve", "--no-demo", "--no-web", "--node", name])
        .env_clear()
        .env("HOME", home)
        .env("HOSTLER_DB", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hostler serve");
    Node(child)
}

/// The machine's CPU ticks so far: (busy, all), from /proc/stat.
fn cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let all: u64 = ticks.iter().sum();
    // idle and iowait
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (all - idle, all)
}

/// The share of the machine's CPU used between two readings.
fn busy(before: (u64, u64), after: (u64, u64)) -> f64 {
    (after.0 - before.0) as f64 / ((after.1 - before.1).max(1)) as f64
}

/// Jobs a second over the runs' own window (first start to last finish).
fn window_rate(store: &Store, jobs: usize) -> f64 {
    let first = count(store, "SELECT min(started_at) FROM runs");
    let last = count(store, "SELECT max(finished_at) FROM runs");
    jobs as f64 / ((last - first).max(1) as f64 / 1000.0)
}

fn nodes_rate(
    pg: &pgcluster::Pg,
    home: &std::path::Path,
    n: usize,
    jobs: usize,
    round: usize,
    script: &str,
) -> (f64, f64) {
    let (url, store) = fill(pg, &format!("{script}{n}_{round}"), jobs, script);
    let monitord = "max_concurrent = 8\nper_host = 1\nlease = 60.0\npoll_interval = 1.0";
    let before = cpu();
    let nodes: Vec<Node> = (0..n)
        .map(|i| node(home, &url, &format!("n{i}"), monitord))
        .collect();
    let end = Instant::now() + Duration::from_secs(300);
    while count(&store, "SELECT count(*) FROM jobs") > 0 {
        assert!(Instant::now() < end, "{n} nodes did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let used = busy(before, cpu());
    drop(nodes);
    assert_eq!(count(&store, "SELECT count(*) FROM runs"), jobs as i64);
    (window_rate(&store, jobs), used)
}

/// The same transactions as a node's, with nothing else: claim one job, record its run.
fn bare_rate(pg: &pgcluster::Pg, conns: usize, jobs: usize, round: usize) -> (f64, f64) {
    let (url, _store) = fill(pg, &format!("bare{conns}_{round}"), jobs, "noop");
    let t = Instant::now();
    let before = cpu();
    std::thread::scope(|s| {
        for c in 0..conns {
            let url = url.clone();
            s.spawn(move || {
                let store = Store::open(&url).expect("open");
                let node = format!("bare{c}");
                loop {
                    let claimed = store
                        .claim_jobs(&node, 60_000, 1, None, false, 1)
                        .expect("claim");
                    let Some(j) = claimed.into_iter().next() else {
                        if count(&store, "SELECT count(*) FROM jobs") == 0 {
                            return;
                        }
                        continue;
                    };
                    let now = hostler::store::now_ms();
                    let mut run = NewRun::cancelled(&j, &node, "", now);
                    run.status = Status::Ok;
                    store.record_run(&run, JobAction::Done).expect("record");
                }
            });
        }
    });
    (jobs as f64 / t.elapsed().as_secs_f64(), busy(before, cpu()))
}

fn latency(pg: &pgcluster::Pg, home: &std::path::Path, samples: usize) -> Vec<i64> {
    let (url, store) = fill(pg, "latency", 0, "noop");
    store
        .save_scripts(&[NewScript {
            name: "long",
            source: "sleep(600.0); ok()",
            description: None,
            kind: ScriptKind::Task,
        }])
        .expect("script");
    let slow = "per_host = 1\nlease = 60.0\npoll_interval = 30.0";
    let _a = node(home, &url, "a", &format!("{slow}\nmax_concurrent = 1"));
    let mut long = job(HOSTS - 1);
    long.script = "long".into();
    store.enqueue(&long).expect("enqueue");
    while count(&store, "SELECT count(*) FROM jobs WHERE lease_owner = 'a'") == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _b = node(home, &url, "b", &format!("{slow}\nmax_concurrent = 8"));
    let mut waits = Vec::new();
    // The first few warm node b up (and wait for its listener).
    for i in 0..samples + 5 {
        let before = count(&store, "SELECT count(*) FROM runs");
        let t0 = hostler::store::now_ms();
        store.enqueue(&job(i % (HOSTS - 1))).expect("enqueue");
        let end = Instant::now() + Duration::from_secs(40);
        while count(&store, "SELECT count(*) FROM runs") == before {
            assert!(Instant::now() < end, "node b never ran a job");
            std::thread::sleep(Duration::from_millis(1));
        }
        if i >= 5 {
            waits.push(count(&store, "SELECT max(started_at) FROM runs") - t0);
        }
    }
    waits.sort();
    waits
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse::<usize>().ok());
    let jobs = args.next().unwrap_or(3_000);
    let rounds = args.next().unwrap_or(3).max(1);
    let Some(pg) = pgcluster::Pg::start() else {
        println!("SKIPPED: no PostgreSQL server here (Debian's postgresql)");
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    println!(
        "scale-out on one PostgreSQL, {jobs} no-op jobs over {HOSTS} hosts (per_host = 1), median of {rounds} rounds"
    );
    let mut m = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; 3];
    for round in 0..rounds {
        for n in 1..=3 {
            let (rate, cpu) = bare_rate(&pg, n, jobs, round);
            m[n - 1][0].push(rate);
            m[n - 1][1].push(cpu);
            let (rate, cpu) = nodes_rate(&pg, home.path(), n, jobs, round, "noop");
            m[n - 1][2].push(rate);
            m[n - 1][3].push(cpu);
        }
    }
    let m: Vec<Vec<f64>> = m
        .into_iter()
        .map(|v| v.into_iter().map(median).collect())
        .collect();
    for n in 1..=3 {
        let s = if n == 1 { "" } else { "s" };
        let (bare, bare_cpu, nodes, nodes_cpu) =
            (m[n - 1][0], m[n - 1][1], m[n - 1][2], m[n - 1][3]);
        println!(
            "  {n} node{s}:  {nodes:>5.0} jobs/s ({:.2}x one node), machine CPU {:>3.0}% busy;  bare loop on {n} connection{s}: {bare:>5.0} jobs/s ({:.2}x one), CPU {:>3.0}%",
            nodes / m[0][2],
            nodes_cpu * 100.0,
            bare / m[0][0],
            bare_cpu * 100.0,
        );
    }
    // Jobs that wait on the network, as checks do (50 ms each): a node's 8 slots are its
    // limit, not the CPU.
    let waiting = jobs / 2;
    let mut w = vec![Vec::new(); 3];
    for round in 0..rounds {
        for n in 1..=3 {
            w[n - 1].push(nodes_rate(&pg, home.path(), n, waiting, round, "wait").0);
        }
    }
    let w: Vec<f64> = w.into_iter().map(median).collect();
    for n in 1..=3 {
        println!(
            "  {waiting} jobs of 50 ms each, {n} node{}: {:>5.0} jobs/s ({:.2}x one node)",
            if n == 1 { "" } else { "s" },
            w[n - 1],
            w[n - 1] / w[0]
        );
    }
    let waits = latency(&pg, home.path(), 200);
    let p = |q: f64| waits[((waits.len() - 1) as f64 * q) as usize];
    println!(
        "  queued to started on node b while node a is busy ({} jobs): p50 {} ms, p99 {} ms, max {} ms",
        waits.len(),
        p(0.5),
        p(0.99),
        waits[waits.len() - 1]
    );
}
