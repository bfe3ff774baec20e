//! Memory over a long run: a real `hostler serve` (this build's binary, on SQLite, default
//! settings, 8 slots) runs JOBS no-op jobs (default 1,000,000) that this benchmark keeps
//! queued, a few thousand ahead, through the store; the daemon's resident memory (VmRSS) is
//! read every STEP jobs. Reports the curve and the growth after warm-up (the first 10%).
//!
//! Run: cargo bench --bench memory [-- JOBS]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hostler::store::{NewJob, NewScript, ScriptKind, Store};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn count(store: &Store, sql: &str) -> u64 {
    store
        .raw(sql, false)
        .ok()
        .and_then(|r| r.rows.first().and_then(|row| row[0].to_text()))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let jobs: u64 = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let step = (jobs / 20).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("hostler.db");
    let store = Store::open(db.to_str().expect("path")).expect("store");
    store
        .save_scripts(&[NewScript {
            name: "noop",
            source: "ok()",
            description: None,
            kind: ScriptKind::Task,
        }])
        .expect("script");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[monitord]\nmax_concurrent = 8\npoll_interval = 0.2\n",
    )
    .expect("config");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_hostler"))
        .args(["--config", config.to_str().expect("path")])
        .args(["serve", "--no-demo", "--no-web"])
        .env_clear()
        .env("HOME", dir.path())
        .env("HOSTLER_DB", &db)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hostler serve");
    let pid = serve.id();
    println!(
        "hostler serve (pid {pid}) running {jobs} no-op jobs on SQLite; VmRSS every {step} jobs"
    );
    let t = Instant::now();
    let (mut queued, mut next_report) = (0u64, 0u64);
    let mut curve = Vec::new();
    let job = |i: u64| NewJob {
        script: "noop".into(),
        host: None,
        priority: 0,
        due_at: hostler::store::now_ms(),
        max_attempts: 1,
        timeout_ms: None,
        schedule_id: None,
        args: Some(format!(r#"{{"i":{i}}}"#)),
        name: None,
    };
    loop {
        let done = count(&store, "SELECT max(id) FROM runs");
        if done >= next_report {
            let rss = rss_kib(pid);
            curve.push((done, rss));
            println!(
                "  {done:>8} jobs  {:>6.1} s  VmRSS {:>6.1} MiB",
                t.elapsed().as_secs_f64(),
                rss as f64 / 1024.0
            );
            next_report += step;
        }
        if done >= jobs {
            break;
        }
        // Keep a few thousand queued ahead of the daemon.
        while queued < jobs && queued < done + 4_000 {
            store.enqueue(&job(queued)).expect("enqueue");
            queued += 1;
        }
        if serve.try_wait().ok().flatten().is_some() {
            panic!("hostler serve stopped");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = serve.wait();
    let warm = curve
        .iter()
        .find(|(d, _)| *d >= jobs / 10)
        .map_or(0, |(_, r)| *r);
    let peak = curve.iter().map(|(_, r)| *r).max().unwrap_or(0);
    let last = curve.last().map_or(0, |(_, r)| *r);
    println!(
        "{jobs} jobs in {secs:.0} s ({:.0} jobs/s); VmRSS after warm-up (10%) {:.1} MiB, at the end {:.1} MiB, peak {:.1} MiB: growth after warm-up {:+.1} MiB",
        jobs as f64 / secs,
        warm as f64 / 1024.0,
        last as f64 / 1024.0,
        peak as f64 / 1024.0,
        (last as f64 - warm as f64) / 1024.0
    );
}
