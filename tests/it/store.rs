//! The store on real SQLite: schema versioning, hosts, scripts, the queue, and how it fails on
//! corrupt, locked and read-only files.

use hostler::store::{Method, NewHost, NewJob, NewScript, ScriptKind, Secret, Store, StoreError};

use crate::util::Work;

fn host(name: &str) -> NewHost {
    NewHost {
        name: name.into(),
        address: "127.0.0.1".into(),
        method: Some(Method::Local),
        ..NewHost::default()
    }
}

fn job(script: &str, host: Option<&str>, priority: i64) -> NewJob {
    NewJob {
        name: None,
        script: script.into(),
        host: host.map(str::to_string),
        priority,
        due_at: 0,
        max_attempts: 3,
        timeout_ms: None,
        schedule_id: None,
        args: None,
    }
}

#[test]
fn open_applies_schema_once_and_records_version() {
    let w = Work::new();
    let s = w.store();
    drop(s);
    // Reopening finds the version and changes nothing.
    let s = w.store();
    let r = s
        .raw(
            "SELECT value FROM settings WHERE key = 'schema_version'",
            false,
        )
        .expect("raw");
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0][0].to_text().as_deref(), Some("7"));
}

#[test]
fn a_version_1_database_is_upgraded_in_place() {
    let w = Work::new();
    let s = w.store();
    s.add_host(&NewHost {
        name: "keep".into(),
        address: "192.0.2.1".into(),
        ..NewHost::default()
    })
    .expect("host");
    s.save_scripts(&[NewScript {
        name: "c",
        source: "ok()",
        description: None,
        kind: ScriptKind::Check,
    }])
    .expect("script");
    s.add_schedule(&hostler::store::NewSchedule {
        max_attempts: 1,
        guard_backoff_ms: 0,
        next_due: 0,
        retries: 5,
        retry_every_ms: Some(9_000),
        ..hostler::store::NewSchedule::every("c", Some("keep"), 60_000)
    })
    .expect("schedule");
    // Version 1 was version 2 without checks, downtimes, and two columns each of notifications
    // and schedules; version 3 added names and arguments.
    s.add_notification(
        None,
        &hostler::store::Notice {
            event: hostler::store::Alert::Notify,
            subject: "old".into(),
            body: "kept".into(),
        },
    )
    .expect("notification");
    for sql in [
        "DROP TABLE checks",
        "DROP TABLE downtimes",
        "ALTER TABLE notifications DROP COLUMN event",
        "ALTER TABLE notifications DROP COLUMN details",
        "ALTER TABLE schedules DROP COLUMN retries",
        "ALTER TABLE schedules DROP COLUMN retry_every_ms",
        "ALTER TABLE schedules DROP COLUMN name",
        "ALTER TABLE schedules DROP COLUMN args",
        "ALTER TABLE schedules DROP COLUMN fix_args",
        "ALTER TABLE jobs DROP COLUMN name",
        "ALTER TABLE runs DROP COLUMN changed",
        "DROP TABLE perf_series",
        "DROP TABLE perf_days",
        "DROP TABLE run_totals",
        "DROP INDEX runs_key",
        "ALTER TABLE runs DROP COLUMN key_id",
        "DROP TABLE run_keys",
        // Versions 1 to 4 kept the names in each run's row.
        "ALTER TABLE runs ADD host VARCHAR(255)",
        "ALTER TABLE runs ADD script VARCHAR(255)",
        "CREATE INDEX runs_host_script ON runs (host, script, id)",
        "CREATE INDEX runs_started ON runs (started_at)",
        "DROP INDEX notifications_created",
        "DROP INDEX notifications_run",
        "ALTER TABLE runs DROP COLUMN repeats",
        "DROP TABLE perf_raw",
        "DROP TABLE run_transcripts",
        "DROP TABLE dependencies",
        "DROP TABLE heartbeats",
        "ALTER TABLE schedules DROP COLUMN sites",
        "ALTER TABLE schedules DROP COLUMN quorum",
        "ALTER TABLE jobs DROP COLUMN site",
        "ALTER TABLE notifications DROP COLUMN sent",
        "ALTER TABLE hosts DROP COLUMN managed",
        "ALTER TABLE schedules DROP COLUMN managed",
        "DROP TABLE recurring_downtimes",
    ] {
        s.raw(sql, false).expect(sql);
    }
    s.raw(
        "UPDATE settings SET value = '1' WHERE key = 'schema_version'",
        false,
    )
    .expect("raw");
    drop(s);
    let s = w.store();
    assert!(s.checks().expect("the checks table is there").is_empty());
    let n = s
        .notifications(5)
        .expect("notifications read with the new columns");
    assert_eq!((n[0].body.as_str(), n[0].event), ("kept", None));
    assert_eq!(s.host("keep").expect("kept").address, "192.0.2.1");
    assert!(
        s.series(Some("keep"), "c")
            .expect("perfdata tables")
            .is_empty()
    );
    let sched = &s.schedules().expect("schedules read with the new columns")[0];
    assert_eq!(
        (sched.retries, sched.name.as_deref(), sched.args.as_deref()),
        (1, None, None)
    );
    let v = s
        .raw(
            "SELECT value FROM settings WHERE key = 'schema_version'",
            false,
        )
        .expect("raw");
    assert_eq!(v.rows[0][0].to_text().as_deref(), Some("7"));
    // The unique index came with it.
    let idx = s
        .raw(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'checks_host_script'",
            false,
        )
        .expect("raw");
    assert_eq!(idx.rows.len(), 1);
}

/// Version 3 kept a row per raw perfdata point, and a row per hour of trends: the upgrade
/// moves the points into their hours (exactly, and an hour already rolled up keeps its
/// figures), packs the hours' trends into their days, and drops the old tables.
#[test]
fn a_version_3_database_gets_its_points_moved_into_their_hours() {
    const HOUR: i64 = 3_600_000;
    let w = Work::new();
    let s = w.store();
    let now = hostler::store::now_ms();
    let h0 = now - now.rem_euclid(HOUR) - 3 * HOUR;
    for sql in [
        "DROP TABLE perf_days".to_string(),
        "DROP TABLE run_totals".to_string(),
        "CREATE TABLE perf_trends (id INTEGER PRIMARY KEY AUTOINCREMENT, series_id BIGINT NOT NULL, hour BIGINT NOT NULL, n INTEGER NOT NULL, vmin REAL NOT NULL, vmax REAL NOT NULL, vsum REAL NOT NULL)".to_string(),
        "CREATE UNIQUE INDEX perf_trends_series ON perf_trends (series_id, hour)".to_string(),
        "DROP INDEX notifications_run".to_string(),
        "ALTER TABLE runs DROP COLUMN repeats".to_string(),
        "DROP INDEX runs_key".to_string(),
        "ALTER TABLE runs DROP COLUMN key_id".to_string(),
        "DROP TABLE run_keys".to_string(),
        "ALTER TABLE runs ADD host VARCHAR(255)".to_string(),
        "ALTER TABLE runs ADD script VARCHAR(255)".to_string(),
        "ALTER TABLE runs ADD check_name VARCHAR(255)".to_string(),
        "CREATE INDEX runs_host_script ON runs (host, script, id)".to_string(),
        "CREATE INDEX runs_started ON runs (started_at)".to_string(),
        "DROP TABLE perf_raw".to_string(),
        "DROP TABLE run_transcripts".to_string(),
        "DROP TABLE dependencies".to_string(),
        "DROP TABLE heartbeats".to_string(),
        "ALTER TABLE downtimes DROP COLUMN children".to_string(),
        "ALTER TABLE schedules DROP COLUMN sites".to_string(),
        "ALTER TABLE schedules DROP COLUMN quorum".to_string(),
        "ALTER TABLE jobs DROP COLUMN site".to_string(),
        "ALTER TABLE checks DROP COLUMN sites".to_string(),
        "ALTER TABLE checks DROP COLUMN told".to_string(),
        "ALTER TABLE checks DROP COLUMN reminded_at".to_string(),
        "ALTER TABLE notifications DROP COLUMN sent".to_string(),
        "ALTER TABLE hosts DROP COLUMN managed".to_string(),
        "ALTER TABLE schedules DROP COLUMN managed".to_string(),
        "ALTER TABLE downtimes DROP COLUMN recurring_id".to_string(),
        "DROP TABLE recurring_downtimes".to_string(),
        "INSERT INTO runs (script, status, message, transcript, started_at, finished_at) VALUES ('c', 'critical', 'old', '{\"t\":0,\"d\":\"<\",\"s\":1,\"b\":\"no\"}', 5, 6)".to_string(),
        "INSERT INTO runs (script, host, check_name, status, message, transcript, started_at, finished_at) VALUES ('c', 'h', 'named', 'warning', 'hosted', '', 7, 8)".to_string(),
        "CREATE INDEX runs_schedule ON runs (schedule_id, host, started_at)".to_string(),
        "CREATE TABLE perf_points (id INTEGER PRIMARY KEY AUTOINCREMENT, series_id BIGINT NOT NULL, t BIGINT NOT NULL, value REAL NOT NULL)".to_string(),
        "INSERT INTO perf_series (host, check_name, label, uom) VALUES ('h', 'c', 'load', '')".to_string(),
        // Hour 0 was rolled up (its first point already deleted: the trend says 3 points);
        // hour 1 was not.
        format!("INSERT INTO perf_trends (series_id, hour, n, vmin, vmax, vsum) VALUES (1, {h0}, 3, 0.25, 2.5, 3.75)"),
        format!("INSERT INTO perf_points (series_id, t, value) VALUES (1, {}, 1.0), (1, {}, 2.5)", h0 + 60_000, h0 + 120_000),
        format!("INSERT INTO perf_points (series_id, t, value) VALUES (1, {}, 0.1), (1, {}, -7e-3), (1, {}, 1e300)", h0 + HOUR, h0 + HOUR + 1, h0 + 2 * HOUR - 1),
        "UPDATE settings SET value = '3' WHERE key = 'schema_version'".to_string(),
    ] {
        s.raw(&sql, false).expect(&sql);
    }
    drop(s);
    let s = w.store();
    let (_, samples) = s.samples(1, h0, now, 30 * 24 * HOUR).expect("raw samples");
    let got: Vec<(i64, f64)> = samples.iter().map(|x| (x.t - h0, x.avg)).collect();
    assert_eq!(
        got,
        vec![
            (60_000, 1.0),
            (120_000, 2.5),
            (HOUR, 0.1),
            (HOUR + 1, -7e-3),
            (2 * HOUR - 1, 1e300)
        ]
    );
    // The transcript left its run's row for a row of its own, and reads back with the run.
    // Each run keeps its names: the upgrade gave it the key of them, and dropped the columns.
    let by_host = s
        .runs(&hostler::store::RunFilter {
            limit: 5,
            host: Some("h".into()),
            ..Default::default()
        })
        .expect("runs of h");
    let names: Vec<_> = by_host
        .iter()
        .map(|r| {
            (
                r.host.as_deref(),
                r.script.as_str(),
                r.check_name.as_deref(),
                r.message.as_str(),
            )
        })
        .collect();
    assert_eq!(names, vec![(Some("h"), "c", Some("named"), "hosted")]);
    assert!(
        s.raw("SELECT host FROM runs", false).is_err(),
        "the names' columns are gone from runs"
    );
    let run = s
        .runs(&hostler::store::RunFilter {
            limit: 5,
            script: Some("c".into()),
            ..Default::default()
        })
        .expect("runs")
        .iter()
        .find(|r| r.host.is_none())
        .expect("the host-less run")
        .id;
    assert_eq!(
        s.run(run).expect("the old run").transcript,
        r#"{"t":0,"d":"<","s":1,"b":"no"}"#
    );
    let left = s
        .raw("SELECT count(*) FROM runs WHERE transcript <> ''", false)
        .expect("raw");
    assert_eq!(left.rows[0][0].to_text().as_deref(), Some("0"));
    let (_, hourly) = s.samples(1, h0, now, 0).expect("hourly samples");
    let figures: Vec<(i64, f64, f64)> = hourly.iter().map(|x| (x.n, x.min, x.max)).collect();
    assert_eq!(figures, vec![(3, 0.25, 2.5), (3, -7e-3, 1e300)]);
    let gone = s
        .raw(
            "SELECT name FROM sqlite_master WHERE name IN ('perf_points', 'perf_trends', 'perf_trends_hour', 'notifications_run', 'perf_raw', 'perf_days', 'runs_schedule', 'runs_host_script', 'runs_started', 'runs_key', 'run_keys')",
            false,
        )
        .expect("raw");
    let names: Vec<_> = gone.rows.iter().filter_map(|r| r[0].to_text()).collect();
    assert_eq!(
        names.len(),
        5,
        "the old tables and indexes dropped, the new ones made: {names:?}"
    );
    let days = s.raw("SELECT hours FROM perf_days", false).expect("raw");
    assert_eq!(
        days.rows.len(),
        1 + usize::from(h0.rem_euclid(24 * HOUR) == 23 * HOUR)
    );
    assert!(!names.contains(&"perf_points".to_string()));
    assert!(!names.contains(&"runs_schedule".to_string()));
}

#[test]
fn newer_schema_is_refused() {
    let w = Work::new();
    let s = w.store();
    s.raw(
        "UPDATE settings SET value = '999' WHERE key = 'schema_version'",
        false,
    )
    .expect("raw");
    drop(s);
    match Store::open(&w.db()) {
        Err(StoreError::TooNew { found: 999, .. }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn hosts_add_list_show_remove_and_secret_stays_inside() {
    let w = Work::new();
    let s = w.store();
    let mut h = host("web1");
    h.secret = Some(Secret::new("hunter2"));
    h.tags = vec!["web".into(), "prod".into()];
    let added = s.add_host(&h).expect("add");
    assert!(added.has_secret);
    assert_eq!(added.tags, vec!["web", "prod"]);
    assert!(!format!("{added:?}").contains("hunter2"));
    assert_eq!(
        s.host_secret("web1")
            .expect("secret")
            .expect("some")
            .expose(),
        "hunter2"
    );
    assert!(!format!("{:?}", s.host_secret("web1")).contains("hunter2"));
    match s.add_host(&h) {
        Err(StoreError::Exists { .. }) => {}
        other => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(s.hosts().expect("list").len(), 1);
    s.remove_host("web1").expect("rm");
    match s.host("web1") {
        Err(e @ StoreError::NotFound { .. }) => {
            assert_eq!(e.to_string(), "host \"web1\" not found")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn saving_a_script_bumps_its_version() {
    let w = Work::new();
    let s = w.store();
    w.script(&s, "a", "1");
    w.script(&s, "a", "2");
    let sc = s.script("a").expect("script");
    assert_eq!((sc.version, sc.source.as_str()), (2, "2"));
}

#[test]
fn failed_write_leaves_the_database_as_it_was() {
    let w = Work::new();
    let s = w.store();
    w.script(&s, "keep", "1");
    // The second script's kind violates the CHECK constraint only in SQL; force it through
    // a name that is valid and a duplicate insert that fails inside the same transaction.
    let before = s.scripts().expect("list");
    let res = s.save_scripts(&[
        NewScript {
            name: "new1",
            source: "1",
            description: None,
            kind: ScriptKind::Task,
        },
        NewScript {
            name: "bad name!",
            source: "1",
            description: None,
            kind: ScriptKind::Task,
        },
    ]);
    assert!(res.is_err());
    assert_eq!(
        s.scripts().expect("list"),
        before,
        "nothing of the failed batch was written"
    );
    // A job for a missing host fails without leaving a row.
    assert!(s.enqueue(&job("keep", Some("nohost"), 0)).is_err());
    assert!(s.jobs().expect("jobs").is_empty());
}

#[test]
fn claims_follow_priority_and_per_host_limit_and_record_deletes_the_job() {
    let w = Work::new();
    let s = w.store();
    w.script(&s, "c", "ok()");
    s.add_host(&host("h1")).expect("h1");
    s.add_host(&host("h2")).expect("h2");
    let low = s.enqueue(&job("c", Some("h1"), 0)).expect("enqueue").0;
    // The same (script, host) again is not queued twice unless asked.
    assert_eq!(
        s.enqueue(&job("c", Some("h1"), 5)).expect("enqueue"),
        (low, false)
    );
    let high = s
        .enqueue_with(&job("c", Some("h1"), 5), true)
        .expect("enqueue")
        .0;
    let other = s.enqueue(&job("c", Some("h2"), 1)).expect("enqueue").0;
    let j = s
        .claim_job("n1", 60_000, 1, None, true)
        .expect("claim")
        .expect("a job");
    assert_eq!((j.id, j.attempts, j.state.as_str()), (high, 1, "running"));
    assert_eq!(j.lease_owner.as_deref(), Some("n1"));
    // h1 is busy, so h2's job comes next although h1 still has a queued job.
    assert_eq!(
        s.claim_job("n1", 60_000, 1, None, true)
            .expect("claim")
            .map(|j| j.id),
        Some(other)
    );
    assert_eq!(
        s.claim_job("n1", 60_000, 1, None, true).expect("claim"),
        None
    );
    // Recording the run deletes the job row in the same transaction.
    let run = hostler::store::NewRun {
        check_name: None,
        job_id: Some(high),
        schedule_id: None,
        script: "c".into(),
        script_version: Some(1),
        host: Some("h1".into()),
        node: Some("n1".into()),
        status: hostler::store::Status::Ok,
        message: "fine".into(),
        perfdata: None,
        output: String::new(),
        transcript: String::new(),
        started_at: 1,
        finished_at: 2,
        attempt: 1,
        phase: None,
        notifications: vec![hostler::store::Notice {
            event: hostler::store::Alert::Notify,
            subject: "subj".into(),
            body: "body".into(),
        }],
    };
    let run_id = s
        .record_run(&run, hostler::store::JobAction::Done)
        .expect("record");
    assert!(s.jobs().expect("jobs").iter().all(|j| j.id != high));
    assert_eq!(s.run(run_id).expect("run").message, "fine");
    let n = s.notifications(10).expect("notifications");
    assert_eq!((n.len(), n[0].run_id), (1, Some(run_id)));
    // h1 is free again: its remaining job is claimable.
    assert_eq!(
        s.claim_job("n1", 60_000, 1, None, true)
            .expect("claim")
            .map(|j| j.id),
        Some(low)
    );
}

/// One claim of many jobs: priorities highest first, queue order within one, at most
/// `per_host` of a host however many of its jobs stand in front, and nothing of another
/// priority taken while one of a higher waits.
#[test]
fn a_batch_claim_walks_priorities_and_passes_over_a_busy_hosts_many_jobs() {
    let w = Work::new();
    let s = w.store();
    w.script(&s, "c", "ok()");
    for h in ["busy", "a", "b", "c"] {
        s.add_host(&host(h)).expect("host");
    }
    // 40 jobs of one host in front of the others at priority 5: more than a claim's first
    // look at the queue (twice the jobs wanted, and 16).
    let mut front = Vec::new();
    for i in 0..40 {
        let mut j = job("c", Some("busy"), 5);
        j.due_at = i;
        front.push(s.enqueue_with(&j, true).expect("enqueue").0);
    }
    let mut ja = job("c", Some("a"), 5);
    ja.due_at = 100;
    let a = s.enqueue(&ja).expect("a").0;
    let b = s.enqueue(&job("c", Some("b"), 1)).expect("b").0;
    let c = s.enqueue(&job("c", Some("c"), 0)).expect("c").0;
    let mut later = job("c", None, 9);
    later.due_at = hostler::store::now_ms() + 3_600_000;
    let not_due = s.enqueue(&later).expect("not due").0;
    // One claim of at most `max` jobs, `per_host` at most of a host: the ids taken.
    let claim = |per_host: i64, max: usize| -> Vec<i64> {
        s.claim_jobs("n1", 60_000, per_host, None, false, max)
            .expect("claim")
            .iter()
            .map(|j| j.id)
            .collect()
    };
    let taken = claim(1, 3);
    assert_eq!(
        taken,
        [front[0], a, b],
        "priority 5 first, one of the busy host"
    );
    let more = claim(1, 10);
    assert_eq!(
        more,
        [c],
        "the busy host's others wait; the job not due is not taken"
    );
    assert!(!more.contains(&not_due));
    // per_host = 2: the busy host's second job now.
    let two = claim(2, 10);
    assert_eq!(two, [front[1]]);
    let running = s
        .jobs()
        .expect("jobs")
        .iter()
        .filter(|j| j.state.as_str() == "running")
        .count();
    assert_eq!(running, 5, "every job claimed runs, and no other");
}

#[test]
fn expired_lease_returns_the_job_with_the_attempt_counted() {
    let w = Work::new();
    let s = w.store();
    w.script(&s, "c", "ok()");
    let id = s.enqueue(&job("c", None, 0)).expect("enqueue").0;
    let first = s
        .claim_job("dead-node", -1, 1, None, true)
        .expect("claim")
        .expect("job");
    assert_eq!(first.id, id);
    let again = s
        .claim_job("n2", 60_000, 1, None, true)
        .expect("claim")
        .expect("re-claimed");
    assert_eq!(
        (again.id, again.attempts, again.lease_owner.as_deref()),
        (id, 2, Some("n2"))
    );
}

#[test]
fn corrupt_file_gives_a_clear_error() {
    let w = Work::new();
    std::fs::write(w.db(), vec![0x42u8; 8192]).expect("write junk");
    let e = Store::open(&w.db()).expect_err("corrupt");
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
    assert!(
        e.to_string().contains("corrupt or not a hostler database"),
        "{e}"
    );
}

#[test]
fn read_only_file_reads_but_refuses_writes_clearly() {
    let w = Work::new();
    drop(w.store());
    let ro = format!("file:{}?mode=ro", w.db());
    let s = Store::open(&ro).expect("read-only open");
    assert!(s.hosts().expect("read works").is_empty());
    let e = s.add_host(&host("x")).expect_err("write refused");
    assert!(matches!(e, StoreError::ReadOnly(_)), "{e:?}");
}

#[test]
fn locked_database_gives_a_clear_error_after_the_busy_timeout() {
    let w = Work::new();
    let s = w.store();
    let locker = rusqlite::Connection::open(w.db()).expect("second connection");
    locker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let e = s.add_host(&host("x")).expect_err("locked");
    assert!(matches!(e, StoreError::Locked(_)), "{e:?}");
    assert!(e.to_string().contains("locked"), "{e}");
    locker.execute_batch("ROLLBACK").expect("unlock");
    s.add_host(&host("x")).expect("works once unlocked");
}

#[test]
fn a_node_that_lost_its_lease_leaves_the_job_to_the_new_owner() {
    let w = Work::new();
    let s = w.store();
    w.script(&s, "c", "ok()");
    let id = s.enqueue(&job("c", None, 0)).expect("enqueue").0;
    s.claim_job("a", -1, 1, None, true)
        .expect("claim")
        .expect("job");
    s.claim_job("b", 60_000, 1, None, true)
        .expect("claim")
        .expect("taken over");
    let run = |node: &str| hostler::store::NewRun {
        check_name: None,
        job_id: Some(id),
        schedule_id: None,
        script: "c".into(),
        script_version: None,
        host: None,
        node: Some(node.into()),
        status: hostler::store::Status::Ok,
        message: String::new(),
        perfdata: None,
        output: String::new(),
        transcript: String::new(),
        started_at: 1,
        finished_at: 2,
        attempt: 1,
        phase: None,
        notifications: vec![],
    };
    s.record_run(&run("a"), hostler::store::JobAction::Done)
        .expect("record a");
    let j = s.job(id).expect("still there: b holds it");
    assert_eq!(j.lease_owner.as_deref(), Some("b"));
    s.record_run(&run("b"), hostler::store::JobAction::Done)
        .expect("record b");
    assert!(s.job(id).is_err(), "b's record deletes it");
}

#[test]
fn hosts_and_scripts_with_jobs_are_not_removed() {
    let w = Work::new();
    let s = w.store();
    w.script(&s, "c", "ok()");
    s.add_host(&host("h1")).expect("h1");
    s.enqueue(&job("c", Some("h1"), 0)).expect("enqueue");
    let e = s.remove_host("h1").expect_err("refused");
    assert!(
        e.to_string().contains("has 1 queued or running jobs"),
        "{e}"
    );
    assert!(s.remove_script("c").is_err());
    assert!(
        s.host("h1").is_ok() && s.jobs().expect("jobs").len() == 1,
        "nothing was removed"
    );
}

/// SQLite whose next write commits and then says the connection was lost, as a commit whose
/// answer never came back.
struct AnswerLost {
    inner: hostler::store::Sqlite,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

type DriverWork<'a> = &'a mut dyn FnMut(&mut dyn hostler::store::Conn) -> Result<(), StoreError>;

impl hostler::store::Driver for AnswerLost {
    fn dialect(&self) -> hostler::sql::Dialect {
        self.inner.dialect()
    }
    fn read(&mut self, work: DriverWork<'_>) -> Result<(), StoreError> {
        self.inner.read(work)
    }
    fn write(&mut self, work: DriverWork<'_>) -> Result<(), StoreError> {
        let done = self.inner.write(work);
        if done.is_ok() && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unreachable(
                "the commit's answer was lost".into(),
            ));
        }
        done
    }
    fn raw(
        &mut self,
        sql: &str,
        show_secrets: bool,
    ) -> Result<hostler::store::RawResult, StoreError> {
        self.inner.raw(sql, show_secrets)
    }
}

#[test]
fn a_run_whose_commit_answer_was_lost_is_recorded_once() {
    let w = crate::util::Work::new();
    let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let driver = AnswerLost {
        inner: hostler::store::Sqlite::open(&w.path("lost.db")).expect("sqlite"),
        armed: armed.clone(),
    };
    let s = Store::with_driver(Box::new(driver), "lost.db").expect("store");
    w.script(&s, "c", "ok()");
    s.add_host(&host("h1")).expect("h1");
    s.enqueue(&job("c", Some("h1"), 0)).expect("enqueue");
    let j = s
        .claim_job("n1", 60_000, 1, None, false)
        .expect("claim")
        .expect("a job");
    let mut run = hostler::store::NewRun::cancelled(&j, "n1", "ran", hostler::store::now_ms());
    run.status = hostler::store::Status::Ok;
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let id = s
        .record_run_until(&run, hostler::store::JobAction::Done, &|| false, false)
        .expect("recorded");
    let runs = s
        .runs(&hostler::store::RunFilter {
            limit: 10,
            ..Default::default()
        })
        .expect("runs");
    assert_eq!(runs.len(), 1, "recorded once, not again: {runs:?}");
    assert_eq!(runs[0].id, id);
    assert!(s.jobs().expect("jobs").is_empty(), "the job is done");
}

#[test]
fn reads_do_not_wait_for_a_long_write_on_sqlite() {
    let w = crate::util::Work::new();
    let s = w.store();
    s.add_host(&host("h1")).expect("h1");
    let (inside_tx, inside_rx) = std::sync::mpsc::channel();
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || {
            s.write(|_| {
                let _ = inside_tx.send(());
                std::thread::sleep(std::time::Duration::from_millis(1_500));
                Ok(())
            })
        })
    };
    inside_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the write began");
    // The writer's connection is busy for 1.5 s: a reader answers meanwhile, and sees what
    // was committed.
    let t = std::time::Instant::now();
    let hosts = s.hosts().expect("hosts");
    let took = t.elapsed();
    writer.join().expect("writer").expect("write");
    assert_eq!(hosts.len(), 1);
    assert!(
        took < std::time::Duration::from_millis(1_000),
        "a read waited {took:?} for another thread's write"
    );
}

/// A read that finds every connection busy waits for a reader, not for the writer: a write
/// transaction may hold the writer for long (a group commit of many runs, a firing of
/// thousands of jobs), and job threads' reads waited behind it (issue 31).
#[test]
fn a_read_waits_for_a_reader_not_behind_a_long_write() {
    use std::time::{Duration, Instant};
    let w = Work::new();
    let s = w.store();
    let held = |d: Duration| {
        move |_: &mut dyn hostler::store::Conn| -> Result<(), StoreError> {
            std::thread::sleep(d);
            Ok(())
        }
    };
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| s.write(held(Duration::from_millis(2500))));
        std::thread::sleep(Duration::from_millis(150));
        // Three reads take the three readers.
        let readers: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| s.read(held(Duration::from_millis(600)))))
            .collect();
        std::thread::sleep(Duration::from_millis(150));
        let t = Instant::now();
        s.read(|c| {
            use hostler::store::ConnExt;
            c.query_one(hostler::store::statements::script_version("x"))
                .map(|_| ())
        })
        .expect("read");
        let waited = t.elapsed();
        assert!(
            waited < Duration::from_millis(1500),
            "the read waited {waited:?}: behind the 2.5 s write, not for a reader"
        );
        for r in readers {
            r.join().expect("reader").expect("read");
        }
        writer.join().expect("writer").expect("write");
    });
}

#[test]
fn a_claim_hands_each_job_its_hosts_row_and_the_run_uses_it_without_a_read() {
    let w = Work::new();
    let s = w.store();
    s.add_host(&host("web1")).expect("host");
    w.script(&s, "main", "ok(host.address)");
    s.enqueue(&job("main", Some("web1"), 0)).expect("enqueue");
    s.enqueue(&job("main", None, 0)).expect("enqueue");
    let jobs = s
        .claim_jobs("n1", 60_000, 1, None, true, 10)
        .expect("claim");
    assert_eq!(jobs.len(), 2);
    let row = jobs
        .iter()
        .find_map(|j| j.host_row.as_deref())
        .expect("the host's row");
    assert_eq!(row, &s.host("web1").expect("host"));
    assert!(
        jobs.iter()
            .any(|j| j.host.is_none() && j.host_row.is_none()),
        "a job without a host has no row"
    );
    // The run takes the row it is handed (an address only that row has) ...
    let env = w.env(&[], None);
    let handed = hostler::store::Host {
        address: "198.51.100.7".into(),
        ..row.clone()
    };
    let run = |row: hostler::store::Host| {
        env.execute(
            &hostler::script::RunRequest {
                script: "main".into(),
                host: Some("web1".into()),
                host_row: Some(Box::new(row)),
                ..Default::default()
            },
            None,
        )
    };
    assert_eq!(run(handed.clone()).message, "198.51.100.7");
    // ... but not another host's: then it reads its own.
    let other = hostler::store::Host {
        name: "web2".into(),
        ..handed
    };
    assert_eq!(run(other).message, "127.0.0.1");
}
