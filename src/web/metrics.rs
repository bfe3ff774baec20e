//! `/metrics` in the Prometheus text format: the database's size and rows per table, each
//! check's state (for alerting from Prometheus), the queue by state, runs by status with their summed duration, failed
//! notifications, and the web server's own counters. Read from the
//! database on each scrape, so every node of a shared database reports the same figures.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::Web;
use super::http::Resp;
use crate::store::Status;

pub fn render(web: &Web) -> Resp {
    match text(web) {
        Ok(t) => Resp::new(200, "text/plain; version=0.0.4; charset=utf-8", t),
        Err(e) => Resp::text(503, format!("# database: {e}\n")),
    }
}

fn text(web: &Web) -> Result<String, crate::store::StoreError> {
    let jobs = web.store.jobs()?;
    let checks = web.store.checks()?;
    let stats = web.store.run_stats()?;
    let runs = &stats.by_status;
    let failed = stats.failed_notifications;
    let mut text = String::new();
    let size = web.size()?;
    if let Some(bytes) = size.bytes {
        let _ = writeln!(
            text,
            "# HELP hostler_database_size_bytes The SQLite file with its write-ahead log.\n# TYPE hostler_database_size_bytes gauge\nhostler_database_size_bytes {bytes}"
        );
    }
    let _ = writeln!(
        text,
        "# HELP hostler_table_rows Rows in the tables that grow (read at most once a minute).\n# TYPE hostler_table_rows gauge"
    );
    for (table, n) in &size.rows {
        let _ = writeln!(text, "hostler_table_rows{{table=\"{table}\"}} {n}");
    }
    let _ = writeln!(
        text,
        "# HELP hostler_jobs Jobs in the queue, by state.\n# TYPE hostler_jobs gauge"
    );
    use crate::store::JobState;
    for state in [JobState::Queued, JobState::Running, JobState::Cancelling] {
        let n = jobs.iter().filter(|j| j.state == state).count();
        let _ = writeln!(text, "hostler_jobs{{state=\"{state}\"}} {n}");
    }
    let now = crate::store::now_ms();
    // How far behind the nodes are: the oldest due job's wait, from the queue itself.
    let lag = jobs
        .iter()
        .filter(|j| j.state == JobState::Queued && j.due_at <= now)
        .map(|j| now - j.due_at)
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        text,
        "# HELP hostler_queue_lag_seconds How long the oldest due job has waited in the queue.\n# TYPE hostler_queue_lag_seconds gauge\nhostler_queue_lag_seconds {:.3}",
        lag as f64 / 1000.0
    );
    // This node's own: how late its jobs started against their due time.
    let (counts, sum_ms) = web.health.lateness.read();
    let _ = writeln!(
        text,
        "# HELP hostler_job_start_lateness_seconds How late this node's jobs started after their due time.\n# TYPE hostler_job_start_lateness_seconds histogram"
    );
    let mut seen = 0;
    for (bound, n) in crate::health::LATENESS_BOUNDS_MS.iter().zip(counts) {
        seen += n;
        let _ = writeln!(
            text,
            "hostler_job_start_lateness_seconds_bucket{{le=\"{}\"}} {seen}",
            *bound as f64 / 1000.0
        );
    }
    let total: u64 = counts.iter().sum();
    let _ = writeln!(
        text,
        "hostler_job_start_lateness_seconds_bucket{{le=\"+Inf\"}} {total}\nhostler_job_start_lateness_seconds_sum {:.3}\nhostler_job_start_lateness_seconds_count {total}",
        sum_ms as f64 / 1000.0
    );
    let _ = writeln!(
        text,
        "# HELP hostler_check_state A check's state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n# TYPE hostler_check_state gauge"
    );
    for c in &checks {
        let _ = writeln!(text, "hostler_check_state{} {}", labels(c), c.state.code());
    }
    let _ = writeln!(
        text,
        "# HELP hostler_check_hard 1 while a check's problem is hard (told, and fixed), else 0.\n# TYPE hostler_check_hard gauge"
    );
    for c in &checks {
        let _ = writeln!(text, "hostler_check_hard{} {}", labels(c), u8::from(c.hard));
    }
    let _ = writeln!(
        text,
        "# HELP hostler_check_unreachable 1 while a check's problem is behind a parent that is down (neither fixed nor told), else 0.\n# TYPE hostler_check_unreachable gauge"
    );
    for c in &checks {
        let _ = writeln!(
            text,
            "hostler_check_unreachable{} {}",
            labels(c),
            u8::from(c.unreachable)
        );
    }
    let _ = writeln!(
        text,
        "# HELP hostler_check_since_seconds Seconds since a check's state last changed.\n# TYPE hostler_check_since_seconds gauge"
    );
    for c in &checks {
        let secs = now.saturating_sub(c.since).max(0) as f64 / 1000.0;
        let _ = writeln!(text, "hostler_check_since_seconds{} {secs}", labels(c));
    }
    let _ = writeln!(
        text,
        "# HELP hostler_check_perfdata Each check's latest performance data, by label (the value as the plugin wrote it, in its unit).\n# TYPE hostler_check_perfdata gauge"
    );
    for c in &checks {
        let points = crate::perfdata::parse(c.perfdata.as_deref().unwrap_or(""));
        let mut seen = std::collections::HashSet::new();
        for p in points {
            // One sample per label: a plugin that repeats one keeps its first.
            let Some(v) = p.value.filter(|_| seen.insert(p.label.clone())) else {
                continue;
            };
            let _ = writeln!(
                text,
                "hostler_check_perfdata{{{},label=\"{}\"}} {v}",
                check_labels(c),
                escape(&p.label)
            );
        }
    }
    let _ = writeln!(
        text,
        "# HELP hostler_runs_total Runs recorded, by status, since the database was made (since its schema 5: the runs kept then, and every run after).\n# TYPE hostler_runs_total counter"
    );
    for s in Status::ALL {
        let n = runs.iter().find(|r| r.status == *s).map_or(0, |r| r.runs);
        let _ = writeln!(text, "hostler_runs_total{{status=\"{s}\"}} {n}");
    }
    let _ = writeln!(
        text,
        "# HELP hostler_run_duration_seconds Time spent in runs, by status.\n# TYPE hostler_run_duration_seconds summary"
    );
    for s in Status::ALL {
        let (n, ms) = runs
            .iter()
            .find(|r| r.status == *s)
            .map_or((0, 0), |r| (r.runs, r.ms));
        let _ = writeln!(
            text,
            "hostler_run_duration_seconds_sum{{status=\"{s}\"}} {}\nhostler_run_duration_seconds_count{{status=\"{s}\"}} {n}",
            ms as f64 / 1000.0
        );
    }
    let _ = writeln!(
        text,
        "# HELP hostler_notification_failures Notifications whose last delivery attempt failed.\n# TYPE hostler_notification_failures gauge\nhostler_notification_failures {failed}"
    );
    let _ = writeln!(
        text,
        "# HELP hostler_web_requests_total Web requests answered.\n# TYPE hostler_web_requests_total counter\nhostler_web_requests_total {}",
        web.requests.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        text,
        "# HELP hostler_web_panics_total Web requests whose handler panicked (answered 500).\n# TYPE hostler_web_panics_total counter\nhostler_web_panics_total {}",
        web.panics.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        text,
        "# HELP hostler_web_sessions Logged-in browser sessions.\n# TYPE hostler_web_sessions gauge\nhostler_web_sessions {}",
        web.sessions.len()
    );
    Ok(text)
}

/// A check's labels: `{host="...",check="..."}` (host empty for none).
fn labels(c: &crate::store::Check) -> String {
    format!("{{{}}}", check_labels(c))
}

/// `host="...",check="..."`, values escaped as the text format requires.
fn check_labels(c: &crate::store::Check) -> String {
    format!(
        "host=\"{}\",check=\"{}\"",
        escape(c.host.as_deref().unwrap_or("")),
        escape(&c.script)
    )
}

/// A label value as the text format requires: backslash, quote and line end escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
