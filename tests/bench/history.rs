//! History benchmarks, each beside its peer in the same run:
//! - a scaled soak: CHECKS checks (default 200: 40 hosts × 5) each run once a simulated
//!   minute for DAYS simulated days (default 3), recorded through the store's own
//!   `record_run` (97% OK, 3% failing, two perfdata labels), housekeeping run at each
//!   simulated day's end; beside the same load kept whole (no housekeeping, a row per run):
//!   the file sizes, the housekeeping time per simulated day, its longest transaction. MIX
//!   `flappy` (the default): every check fails ten minutes in every 333, four incidents a
//!   day each; `steady`: ten hours in every 333, one incident a fortnight each (the same 3%
//!   of runs fail, with 60 times fewer changes of state and notifications);
//! - the cost of drawing a year of hourly trends for one label (8,760 samples) as an SVG
//!   chart, and a day of raw points (1,440) as a sparkline.
//!
//! Run: cargo bench --bench history [-- CHECKS DAYS [MIX]]   (`HOSTLER_SOAK_KEEP=PATH` keeps the
//! soaked database there, for the web page's benchmark at that size; `HOSTLER_SOAK_WHOLE=0`
//! skips the store kept whole, for long soaks; `HOSTLER_SOAK_SHORT=1` keeps runs, events and
//! trends one or two days instead of 30 and 365, so that from day 3 each pass deletes a full
//! day of every kind of row, as at steady state, and the time per day is that of a steady day)

use std::time::Instant;

use hostler::store::history::Retention;
use hostler::store::series::Sample;
use hostler::store::{JobAction, NewHost, NewRun, NewSchedule, Status, Store};

const MINUTE: i64 = 60_000;
const DAY: i64 = 1_440 * MINUTE;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn setup(path: &str, checks: usize) -> (Store, Vec<(i64, String)>) {
    let store = Store::open(path).expect("store");
    store
        .save_scripts(&[hostler::store::NewScript {
            name: "check_web",
            source: "ok()",
            description: None,
            kind: hostler::store::ScriptKind::Check,
        }])
        .expect("script");
    let mut scheds = Vec::new();
    for i in 0..checks {
        let host = format!("web{:04}.example.com", i / 5);
        if i % 5 == 0 {
            store
                .add_host(&NewHost {
                    name: host.clone(),
                    address: "192.0.2.1".into(),
                    ..NewHost::default()
                })
                .expect("host");
        }
        let id = store
            .add_schedule(&NewSchedule {
                next_due: hostler::store::now_ms() + 365 * DAY,
                name: Some(format!("check_web_{}", i % 5)),
                ..NewSchedule::every("check_web", Some(&host), MINUTE)
            })
            .expect("schedule");
        scheds.push((id, host));
    }
    (store, scheds)
}

/// One simulated run: mostly OK, failing 3% of the time: ten minutes in every 333 (`scale`
/// 1), or `scale` times as long in a cycle `scale` times as long.
fn run(sched: i64, host: &str, check: usize, minute: i64, t: i64, scale: i64) -> NewRun {
    let failing = (minute + check as i64 * 37 * scale) % (333 * scale) < 10 * scale;
    let ms = 20 + (minute * 7 + check as i64) % 180;
    NewRun {
        job_id: None,
        schedule_id: Some(sched),
        script: "check_web".into(),
        script_version: Some(1),
        host: Some(host.into()),
        node: Some("bench".into()),
        status: if failing {
            Status::Critical
        } else {
            Status::Ok
        },
        message: if failing {
            format!("http://{host}/ answered 503 in {ms} ms")
        } else {
            format!("http://{host}/ answered 200 in {ms} ms")
        },
        perfdata: Some(format!("time={ms}ms;500;1000;0 size={}B;;;0", 5000 + ms)),
        output: String::new(),
        // monitord keeps no transcript of an OK run; a failing one has a short one.
        transcript: if failing {
            format!(r#"{{"t":0,"d":">","s":1,"b":"GET / HTTP/1.1\nHost: {host}\n"}}"#)
        } else {
            String::new()
        },
        started_at: t - ms,
        finished_at: t,
        attempt: 1,
        phase: None,
        notifications: Vec::new(),
        check_name: Some(format!("check_web_{}", check % 5)),
    }
}

/// The database file's bytes after a checkpoint has moved the write-ahead log into it and
/// cut the log to nothing (so the figure does not swing with the log's size). On a
/// connection of its own: the store runs every statement in a transaction, where SQLite
/// cannot checkpoint.
fn bytes(store: &Store, path: &std::path::Path) -> u64 {
    let c = rusqlite::Connection::open(path).expect("open for a checkpoint");
    let busy: i64 = c
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .expect("checkpoint");
    assert_eq!(busy, 0, "the checkpoint was blocked");
    store.database_bytes().unwrap_or(0)
}

fn soak(checks: usize, days: i64, scale: i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = dir.path().join("kept.db");
    let whole = dir.path().join("whole.db");
    let (store, scheds) = setup(kept.to_str().expect("path"), checks);
    let keep_whole = std::env::var("HOSTLER_SOAK_WHOLE").map_or(true, |v| v != "0");
    let (naive, _) = setup(whole.to_str().expect("path"), checks);
    // Kept whole: a row for every run, nothing pruned.
    naive.set_policy(hostler::store::checks::Policy {
        collapse_ok: false,
        ..Default::default()
    });
    let start = hostler::store::now_ms() - days * DAY;
    let short = std::env::var("HOSTLER_SOAK_SHORT").is_ok_and(|v| v == "1");
    let r = if short {
        Retention {
            keep_ms: DAY,
            keep_events_ms: DAY,
            keep_trends_ms: 2 * DAY,
            ..Retention::default()
        }
    } else {
        Retention::default()
    };
    let mut prune_secs = Vec::new();
    let mut longest = 0;
    let write = Instant::now();
    for day in 0..days {
        for m in 0..1_440 {
            let minute = day * 1_440 + m;
            let t = start + minute * MINUTE;
            for (i, (sched, host)) in scheds.iter().enumerate() {
                let run = run(*sched, host, i, minute, t, scale);
                store.record_run(&run, JobAction::Keep).expect("record");
                if keep_whole {
                    naive.record_run(&run, JobAction::Keep).expect("record");
                }
            }
        }
        let end_of_day = start + (day + 1) * DAY;
        let p0 = Instant::now();
        let p = store.prune(&r, end_of_day, false, &|| {}).expect("prune");
        longest = longest.max(p.longest_batch_ms);
        prune_secs.push(p0.elapsed().as_secs_f64());
        println!(
            "day {}: {} MB with housekeeping, {} MB kept whole; housekeeping {:.2} s",
            day + 1,
            bytes(&store, &kept) / 1_000_000,
            if keep_whole {
                bytes(&naive, &whole) / 1_000_000
            } else {
                0
            },
            p0.elapsed().as_secs_f64()
        );
    }
    let runs_per_day = (checks * 1_440) as f64;
    let kept_bytes = bytes(&store, &kept) as f64;
    let whole_bytes = if keep_whole {
        bytes(&naive, &whole) as f64
    } else {
        0.0
    };
    println!(
        "soak: {checks} checks x {days} days ({:.0} runs a day, {} mix), written at {:.0} runs/s ({})",
        runs_per_day,
        if scale == 1 { "flappy" } else { "steady" },
        (runs_per_day * days as f64 * if keep_whole { 2.0 } else { 1.0 })
            / write.elapsed().as_secs_f64(),
        if keep_whole {
            "both stores"
        } else {
            "one store"
        }
    );
    let whole = if keep_whole {
        format!(
            "{:.1} MB kept whole (ratio {:.2})",
            whole_bytes / 1e6,
            kept_bytes / whole_bytes
        )
    } else {
        "nothing kept whole (HOSTLER_SOAK_WHOLE=0)".to_string()
    };
    println!(
        "  size: {:.1} MB with {} vs {whole}; {:.0} KB per check",
        kept_bytes / 1e6,
        if short {
            "short retention"
        } else {
            "the defaults"
        },
        kept_bytes / checks as f64 / 1e3
    );
    // From day 3 on, raw points (kept two days) are deleted too.
    let later: Vec<f64> = prune_secs.iter().skip(2).copied().collect();
    let later = if later.is_empty() {
        prune_secs.clone()
    } else {
        later
    };
    let most = later.iter().copied().fold(0.0, f64::max);
    println!(
        "  housekeeping per simulated day from day 3: median {:.2} s ({:.2} s per 1,000 checks), at most {:.2} s; longest transaction {} ms",
        median(later.clone()),
        median(later) * 1_000.0 / checks as f64,
        most,
        longest
    );
    // For the web page's benchmark at this size (tests/bench/bench.py, history_web).
    if let Ok(to) = std::env::var("HOSTLER_SOAK_KEEP") {
        drop(store);
        std::fs::copy(&kept, &to).expect("keep the soaked database");
        println!("  kept the soaked database as {to}");
    }
}

fn charts() {
    let t0 = hostler::store::now_ms() - 365 * DAY;
    let year: Vec<Sample> = (0..8_760)
        .map(|h| Sample {
            t: t0 + h * 3_600_000,
            n: 60,
            min: 10.0,
            avg: 50.0 + (h % 24) as f64,
            max: 120.0 + (h % 7) as f64,
        })
        .collect();
    let day: Vec<Sample> = (0..1_440)
        .map(|m| Sample {
            t: t0 + m * MINUTE,
            n: 1,
            min: m as f64,
            avg: m as f64,
            max: m as f64,
        })
        .collect();
    let changes = vec![(t0 + 100 * 3_600_000, "critical".to_string())];
    let mut chart_ms = Vec::new();
    let mut spark_ms = Vec::new();
    let mut size = 0;
    for _ in 0..31 {
        let s = Instant::now();
        let svg = hostler::web::chart::chart(&hostler::web::chart::Chart {
            label: "time",
            uom: "ms",
            warn: Some("500"),
            crit: Some("1000"),
            since: t0,
            until: t0 + 365 * DAY,
            samples: &year,
            changes: &changes,
        })
        .into_string();
        chart_ms.push(s.elapsed().as_secs_f64() * 1e3);
        size = svg.len();
        let s = Instant::now();
        let _ = hostler::web::chart::sparkline(&day, "time").into_string();
        spark_ms.push(s.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "chart of a year of hourly trends (8,760 samples): median {:.2} ms, {} KB of SVG; sparkline of a day (1,440 points): median {:.2} ms",
        median(chart_ms),
        size / 1024,
        median(spark_ms)
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let checks = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let days = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let scale = match args.get(2).map(String::as_str) {
        None | Some("flappy") => 1,
        Some("steady") => 60,
        Some(other) => panic!("MIX is flappy or steady, not {other}"),
    };
    charts();
    soak(checks, days, scale);
}
