//! The store on a real PostgreSQL, a throwaway cluster per test ([`Pg`]): the store's
//! exercise as it runs on SQLite, a refused login, the wake-up across nodes, and a lost
//! connection made again.

use hostler::store::history::Retention;
use hostler::store::{JobAction, NewHost, NewJob, NewRun, NewSchedule, NewScript, ScriptKind};
use hostler::store::{Status, Store};

pub use crate::pgcluster::Pg;

fn run(schedule: i64, status: Status, at: i64) -> NewRun {
    NewRun {
        check_name: None,
        job_id: None,
        schedule_id: Some(schedule),
        script: "c".into(),
        script_version: Some(1),
        host: Some("web1".into()),
        node: Some("n1".into()),
        status,
        message: format!("said {status}"),
        perfdata: Some("time=12ms;50;80;0 size=5B".into()),
        output: "out".into(),
        transcript: "T".into(),
        started_at: at - 5,
        finished_at: at,
        attempt: 1,
        phase: None,
        notifications: vec![],
    }
}

/// The check script `c`, which says OK.
fn check_script(store: &Store) {
    store
        .save_scripts(&[NewScript {
            name: "c",
            source: "ok()",
            description: None,
            kind: ScriptKind::Check,
        }])
        .expect("script");
}

fn add_host(store: &Store, name: &str) -> Result<hostler::store::Host, hostler::store::StoreError> {
    store.add_host(&NewHost {
        name: name.into(),
        address: "192.0.2.1".into(),
        ..NewHost::default()
    })
}

#[test]
fn the_store_works_on_a_real_postgresql() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_store");
    let store = Store::open(&url).expect("open: the schema applies on PostgreSQL");
    // Opened again: the version is read, nothing applied twice.
    drop(store);
    let store = Store::open(&url).expect("reopen");
    store
        .add_host(&NewHost {
            name: "web1".into(),
            address: "192.0.2.1".into(),
            tags: vec!["web".into()],
            ..NewHost::default()
        })
        .expect("host");
    store
        .save_scripts(&[NewScript {
            name: "c",
            source: "ok()",
            description: Some("a check".into()),
            kind: ScriptKind::Check,
        }])
        .expect("script");
    assert_eq!(
        store.host("web1").expect("host").tags,
        vec!["web".to_string()]
    );
    let sid = store
        .add_schedule(&NewSchedule {
            args: Some(r#"{"url":"http://x/"}"#.into()),
            ..NewSchedule::every("c", Some("web1"), 60_000)
        })
        .expect("schedule");
    assert_eq!(
        store.schedule(sid).expect("schedule").args.as_deref(),
        Some(r#"{"url":"http://x/"}"#)
    );
    // The queue: enqueue (a duplicate refused), claim with a lease, record.
    let job = NewJob {
        script: "c".into(),
        host: Some("web1".into()),
        priority: 5,
        due_at: hostler::store::now_ms() - 1,
        max_attempts: 3,
        timeout_ms: None,
        schedule_id: Some(sid),
        args: None,
        name: None,
    };
    let (id, new) = store.enqueue(&job).expect("enqueue");
    assert!(new);
    assert_eq!(store.enqueue(&job).expect("again"), (id, false));
    let claimed = store
        .claim_jobs("n1", 60_000, 1, None, false, 4)
        .expect("claim: FOR UPDATE SKIP LOCKED on a real server");
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
    assert!(
        store
            .claim_jobs("n2", 60_000, 1, None, false, 4)
            .expect("claim")
            .is_empty()
    );
    let now = hostler::store::now_ms();
    let mut r = run(sid, Status::Critical, now);
    r.job_id = Some(id);
    let run_id = store.record_run(&r, JobAction::Done).expect("record");
    assert!(
        store.jobs().expect("jobs").is_empty(),
        "the job left with its run"
    );
    let check = store.check(Some("web1"), "c").expect("the check moved");
    assert_eq!(
        (check.state.as_str(), check.last_run_id),
        ("critical", Some(run_id))
    );
    assert_eq!(store.run(run_id).expect("run").message, "said critical");
    // Perfdata series, and housekeeping's statements.
    let series = store.series(Some("web1"), "c").expect("series");
    assert_eq!(series.len(), 2);
    let (_, samples) = store
        .samples(series[0].id, now - 60_000, now + 1, 86_400_000)
        .expect("samples");
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].avg, 12.0);
    store
        .record_run(
            &run(sid, Status::Ok, now - 40 * 86_400_000),
            JobAction::Keep,
        )
        .expect("an old run");
    // A newer run is the check's last one (the last run is never pruned).
    store
        .record_run(&run(sid, Status::Critical, now + 1), JobAction::Keep)
        .expect("a new run");
    let dry = store
        .prune(&Retention::default(), now, true, &|| {})
        .expect("dry run");
    assert_eq!(dry.runs, 1, "{dry:?}");
    let done = store
        .prune(&Retention::default(), now, false, &|| {})
        .expect("prune");
    assert_eq!(done.runs, 1, "{done:?}");
    let all = hostler::store::RunFilter {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.runs(&all).expect("runs").len(), 2);
    // Sizes, and `hostler sql`'s raw statements.
    let size = store.size().expect("size");
    assert!(
        size.rows.iter().any(|(t, n)| t == "runs" && *n == 2),
        "{size:?}"
    );
    let raw = store.raw("SELECT name FROM hosts", false).expect("raw");
    assert_eq!(raw.rows[0][0].to_text().as_deref(), Some("web1"));
    // OK runs that change nothing share a row here too (the recovery has its own), and each
    // adds its point to its hour under the hour's row lock.
    let ids: Vec<i64> = (2..5)
        .map(|dt| {
            store
                .record_run(&run(sid, Status::Ok, now + dt), JobAction::Keep)
                .expect("an OK run")
        })
        .collect();
    assert!(ids[0] != ids[1] && ids[1] == ids[2], "{ids:?}");
    assert_eq!(store.run(ids[2]).expect("shared").repeats, 2);
    let (_, samples) = store
        .samples(series[0].id, now - 60_000, now + 10, 86_400_000)
        .expect("samples");
    assert_eq!(
        samples.iter().map(|x| x.t - now).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4],
        "every run's point, in order"
    );
    let (_, hourly) = store
        .samples(series[0].id, now - 3_600_000, now + 10, 0)
        .expect("hourly");
    assert_eq!(hourly.iter().map(|x| x.n).sum::<i64>(), 5, "{hourly:?}");
}

/// A database of schema version 4 on a real PostgreSQL: the upgrade to 5 packs hourly trends
/// into days, gives runs the key of their names and drops the names' columns, and starts the
/// run totals, all in PostgreSQL's own words.
#[test]
fn a_version_4_database_on_postgresql_is_upgraded_to_6() {
    const HOUR: i64 = 3_600_000;
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_v4");
    let store = Store::open(&url).expect("open");
    add_host(&store, "web1").expect("host");
    check_script(&store);
    let now = hostler::store::now_ms();
    let h0 = now - now.rem_euclid(24 * HOUR) - 2 * 24 * HOUR;
    let v4 = [
        "DROP TABLE perf_days".to_string(),
        "DROP TABLE run_totals".to_string(),
        "DROP INDEX runs_key".to_string(),
        "ALTER TABLE runs DROP COLUMN key_id".to_string(),
        "DROP TABLE run_keys".to_string(),
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
        "ALTER TABLE runs ADD host VARCHAR(255)".to_string(),
        "ALTER TABLE runs ADD script VARCHAR(255) NOT NULL DEFAULT ''".to_string(),
        "ALTER TABLE runs ADD check_name VARCHAR(255)".to_string(),
        "CREATE INDEX runs_host_script ON runs (host, script, id)".to_string(),
        "CREATE INDEX runs_started ON runs (started_at)".to_string(),
        "CREATE TABLE perf_trends (id BIGSERIAL PRIMARY KEY, series_id BIGINT NOT NULL, hour BIGINT NOT NULL, n INTEGER NOT NULL, vmin DOUBLE PRECISION NOT NULL, vmax DOUBLE PRECISION NOT NULL, vsum DOUBLE PRECISION NOT NULL)".to_string(),
        "CREATE UNIQUE INDEX perf_trends_series ON perf_trends (series_id, hour)".to_string(),
        "INSERT INTO perf_series (host, check_name, label, uom) VALUES ('web1', 'c', 'time', 'ms')".to_string(),
        format!("INSERT INTO perf_trends (series_id, hour, n, vmin, vmax, vsum) VALUES (1, {h0}, 2, 1.5, 2.5, 4), (1, {}, 60, 0.25, 9, 120), (1, {}, 1, 7, 7, 7)", h0 + 23 * HOUR, h0 + 24 * HOUR),
        "INSERT INTO runs (host, script, check_name, status, message, started_at, finished_at, repeats) VALUES ('web1', 'c', NULL, 'critical', 'down', 10, 15, 1), ('web1', 'c', NULL, 'ok', 'up', 20, 22, 3), (NULL, 'backup', 'nightly', 'warning', 'slow', 30, 40, 1)".to_string(),
        "UPDATE settings SET value = '4' WHERE key = 'schema_version'".to_string(),
    ];
    for sql in &v4 {
        store
            .raw(sql, false)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    drop(store);
    let store = Store::open(&url).expect("the upgrade from 4 runs on PostgreSQL");
    let runs = |host: Option<&str>, script: Option<&str>| {
        let f = hostler::store::RunFilter {
            limit: 10,
            host: host.map(Into::into),
            script: script.map(Into::into),
            ..Default::default()
        };
        let mut got: Vec<_> = store
            .runs(&f)
            .expect("runs")
            .iter()
            .map(|r| {
                (
                    r.host.clone(),
                    r.script.clone(),
                    r.check_name.clone(),
                    r.message.clone(),
                )
            })
            .collect();
        got.sort();
        got
    };
    assert_eq!(
        runs(Some("web1"), None),
        vec![
            (Some("web1".into()), "c".into(), None, "down".into()),
            (Some("web1".into()), "c".into(), None, "up".into()),
        ]
    );
    assert_eq!(
        runs(None, Some("backup")),
        vec![(None, "backup".into(), Some("nightly".into()), "slow".into())]
    );
    assert!(
        store.raw("SELECT host FROM runs", false).is_err(),
        "the names' columns are gone"
    );
    let (_, hourly) = store.samples(1, h0, now, 0).expect("hourly");
    let got: Vec<_> = hourly
        .iter()
        .map(|x| (x.t - h0, x.n, x.min, x.avg, x.max))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 2, 1.5, 2.0, 2.5),
            (23 * HOUR, 60, 0.25, 2.0, 9.0),
            (24 * HOUR, 1, 7.0, 7.0, 7.0)
        ],
        "each hour in its day's row"
    );
    let stats = store.run_stats().expect("totals");
    let n = |s: Status| {
        stats
            .by_status
            .iter()
            .find(|x| x.status == s)
            .map_or(0, |x| x.runs)
    };
    assert_eq!(
        (n(Status::Ok), n(Status::Critical), n(Status::Warning)),
        (3, 1, 1)
    );
    // And it goes on: a new run of the same check finds its key, and counts.
    let sid = store
        .add_schedule(&NewSchedule::every("c", Some("web1"), 60_000))
        .expect("schedule");
    store
        .record_run(&run(sid, Status::Critical, now), JobAction::Keep)
        .expect("record");
    assert_eq!(runs(Some("web1"), Some("c")).len(), 3);
    let stats = store.run_stats().expect("totals");
    assert_eq!(
        stats
            .by_status
            .iter()
            .find(|x| x.status == Status::Critical)
            .map(|x| x.runs),
        Some(2)
    );
}

#[test]
fn a_refused_postgresql_login_is_one_clear_line_without_the_password() {
    let Some(pg) = Pg::start() else { return };
    let url = format!(
        "postgres://hostler:s3cret-pw@127.0.0.1:{}/no_such_db?sslmode=disable",
        pg.port
    );
    let e = match Store::open(&url) {
        Ok(_) => panic!("an unknown database opened"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("no_such_db"), "{e}");
    assert!(!e.contains("s3cret-pw"), "the password is never shown: {e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn a_job_queued_on_one_node_wakes_another_through_listen_notify() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_wake");
    let a = Store::open(&url).expect("node a");
    let b = Store::open(&url).expect("node b");
    a.save_scripts(&[NewScript {
        name: "c",
        source: "ok()",
        description: None,
        kind: ScriptKind::Task,
    }])
    .expect("script");
    let (tx, rx) = std::sync::mpsc::channel();
    // Node b never polls here: only its listener can call the hook.
    b.on_enqueue(Box::new(move || {
        let _ = tx.send(std::time::Instant::now());
    }));
    let job = |i: i64| NewJob {
        script: "c".into(),
        host: None,
        priority: 0,
        due_at: hostler::store::now_ms() + i,
        max_attempts: 1,
        timeout_ms: None,
        schedule_id: None,
        args: Some(format!(r#"{{"i":{i}}}"#)),
        name: None,
    };
    // The listener connects on its own thread: the first enqueues may come before it listens.
    let mut heard = false;
    for i in 0..50 {
        a.enqueue(&job(i)).expect("enqueue");
        if rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_ok()
        {
            heard = true;
            break;
        }
    }
    assert!(heard, "node b never heard of node a's jobs");
    while rx.try_recv().is_ok() {}
    let mut waits = Vec::new();
    for i in 100..120 {
        let t0 = std::time::Instant::now();
        a.enqueue(&job(i)).expect("enqueue");
        let at = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("node b heard of the job");
        waits.push(at.saturating_duration_since(t0));
        while rx.try_recv().is_ok() {}
    }
    waits.sort();
    eprintln!(
        "LISTEN/NOTIFY wake-up across nodes: median {:?}, max {:?}",
        waits[10], waits[19]
    );
    // A store opened for one command starts no listener: no hook, no thread.
    drop(a);
}

#[test]
fn a_store_connects_again_after_a_killed_session_and_a_restarted_server() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_reconnect");
    let secret_url = url.replace("hostler@", "hostler:pw-n0t-shown@");
    let store = Store::open(&secret_url).expect("open");
    add_host(&store, "web1").expect("host");
    // A killed session (pg_terminate_backend): the next unit of work connects again and goes
    // through, since nothing of it reached the dead connection.
    assert!(pg.kill_sessions(&url) >= 1, "the store's session was ended");
    let hosts = store.hosts().expect("read after the session was killed");
    assert_eq!(hosts.len(), 1);
    assert!(pg.kill_sessions(&url) >= 1);
    add_host(&store, "web2").expect("write after the session was killed");
    // The server stopped: work fails at once with a one-line "cannot be reached", never
    // the password, and never a wrong answer.
    pg.stop();
    let t = std::time::Instant::now();
    for _ in 0..3 {
        match store.hosts() {
            Ok(h) => panic!("hosts read from a stopped server: {h:?}"),
            Err(e) => {
                let m = e.to_string();
                assert!(
                    matches!(e, hostler::store::StoreError::Unreachable(_)),
                    "{m}"
                );
                assert!(!m.contains("pw-n0t-shown"), "{m}");
                assert_eq!(m.lines().count(), 1, "{m}");
            }
        }
    }
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "failing while down took {:?}",
        t.elapsed()
    );
    // Back up: the store connects again by itself (its next try is at most 10 s away).
    pg.start_again();
    let back = crate::util::wait_for(std::time::Duration::from_secs(30), || {
        store.hosts().is_ok_and(|h| h.len() == 2)
    });
    assert!(back, "the store never connected again");
}

/// A read runs its statements without a transaction of its own (no BEGIN and COMMIT around
/// it), so it may send queries only: anything else is refused before it reaches the server.
#[test]
fn a_read_sends_only_queries() {
    use hostler::sql::{Rendered, Returns};
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_reads");
    let store = Store::open(&url).expect("open");
    add_host(&store, "web1").expect("host");
    let sql = |s: &str| Rendered {
        sql: s.into(),
        params: Vec::new(),
        returns: Returns::Count,
    };
    for write in [
        "DELETE FROM hosts",
        "WITH d AS (DELETE FROM hosts RETURNING id) SELECT id FROM d",
        "update hosts set port = 1",
    ] {
        let e = store
            .read(|c| c.count(&sql(write)))
            .expect_err("a write through a read");
        assert!(e.to_string().contains("not a query"), "{e}");
        let e = store
            .read(|c| c.rows(&sql(write)))
            .expect_err("a write through a read");
        assert!(e.to_string().contains("not a query"), "{e}");
    }
    let e = store
        .read(|c| c.ddl("DROP TABLE hosts"))
        .expect_err("DDL through a read");
    assert!(e.to_string().contains("not a query"), "{e}");
    assert_eq!(store.hosts().expect("hosts").len(), 1);
    assert_eq!(
        store
            .read(|c| c.rows(&sql("  select count(*) as n from hosts")))
            .expect("a query")
            .len(),
        1
    );
}

#[test]
fn a_list_of_ids_is_one_parameter_so_every_length_is_one_statement() {
    use hostler::sql::{Dialect, Order, Section, Select, col, param};
    use hostler::store::ConnExt;
    use hostler::store::statements::jobs_by_ids;
    // The text is the same for one id and for 500; SQLite's has a placeholder an id.
    let one = jobs_by_ids(&[7]).render(Dialect::Postgres).expect("render");
    let many = (1..=500).collect::<Vec<i64>>();
    let all = jobs_by_ids(&many)
        .render(Dialect::Postgres)
        .expect("render");
    assert_eq!(one.sql, all.sql);
    assert_eq!(all.params.len(), 1, "{:?}", &all.params[..2]);
    let lite = jobs_by_ids(&[7, 8])
        .render(Dialect::Sqlite)
        .expect("render");
    assert_eq!(lite.params.len(), 2);
    // And the server finds exactly the rows named, negative and absent ids too.
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_lists");
    let store = Store::open(&url).expect("open");
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d"] {
        ids.push(add_host(&store, name).expect("host").id);
    }
    let names = |want: &[i64]| {
        let stmt = Select::from("hosts")
            .columns(&["name"])
            .filter(col("id").in_list(want.iter().map(|i| param(*i)).collect()))
            .with(Section::OrderBy(vec![(col("name"), Order::Asc)]));
        let rows = store.read(|c| c.query(stmt.clone())).expect("read");
        rows.iter()
            .map(|r| r.text("name").expect("name"))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&[ids[1]]), ["b"]);
    assert_eq!(names(&[ids[3], -1, ids[0], 999_999, ids[3]]), ["a", "d"]);
    assert_eq!(names(&[i64::MIN, i64::MAX]), Vec::<String>::new());
    assert_eq!(names(&[]), Vec::<String>::new());
    let wide: Vec<i64> = (0..2_000).chain(ids.iter().copied()).collect();
    assert_eq!(names(&wide), ["a", "b", "c", "d"]);
}

#[test]
fn a_claim_takes_its_jobs_at_once_and_a_group_commit_deletes_only_those_its_node_holds() {
    use hostler::store::JobState;
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_batches");
    let store = Store::open(&url).expect("open");
    check_script(&store);
    let mut ids = Vec::new();
    for h in ["h1", "h2", "h3", "h4"] {
        add_host(&store, h).expect("host");
        let job = NewJob {
            name: None,
            script: "c".into(),
            host: Some(h.into()),
            priority: 0,
            due_at: 0,
            max_attempts: 3,
            timeout_ms: None,
            schedule_id: None,
            args: None,
        };
        ids.push(store.enqueue(&job).expect("enqueue").0);
    }
    // Node a takes all four in one claim, on leases that have already run out.
    let mine = store.claim_jobs("a", -1, 1, None, true, 10).expect("claim");
    let mut got: Vec<i64> = mine.iter().map(|j| j.id).collect();
    got.sort_unstable();
    assert_eq!(got, ids);
    assert!(mine.iter().all(|j| j.state == JobState::Running
        && j.lease_owner.as_deref() == Some("a")
        && j.attempts == 1));
    // Node b takes one over; a then records all four runs in one transaction.
    let theirs = store
        .claim_job("b", 60_000, 1, None, true)
        .expect("claim")
        .expect("taken over");
    let runs: Vec<(NewRun, JobAction)> = mine
        .iter()
        .map(|j| {
            let mut r = run(0, Status::Ok, 1_000);
            r.schedule_id = None;
            r.job_id = Some(j.id);
            r.host = j.host.clone();
            r.node = Some("a".into());
            (r, JobAction::Done)
        })
        .collect();
    store.record_runs(&runs, &|_| Ok(())).expect("record");
    for id in ids {
        match store.job(id) {
            Ok(j) => {
                assert_eq!(id, theirs.id, "only b's job is left");
                assert_eq!(j.lease_owner.as_deref(), Some("b"));
            }
            Err(_) => assert_ne!(id, theirs.id, "b's job is b's to delete"),
        }
    }
    let all = hostler::store::RunFilter {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store.runs(&all).expect("runs").len(),
        4,
        "every run recorded"
    );
}

/// The queue's hot reads seek their index even while PostgreSQL's statistics still say the
/// queue is empty (as before autovacuum's first ANALYZE of a new database, or after a burst):
/// with 3,000 jobs queued, none due, each touches a few pages, not every queued job. A claim's
/// due condition was a filter over every queued job (the time was volatile), and the top
/// priority and next due time were aggregates over all of them, about 1.4 ms each.
#[test]
fn the_queues_hot_reads_seek_their_index_with_statistics_of_an_empty_queue() {
    use hostler::sql::{Dialect, Statement, Value};
    use hostler::store::statements::{Claimable, claim_candidates, job_next_due, job_top_priority};
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_plans");
    let store = Store::open(&url).expect("open");
    check_script(&store);
    store.raw("ANALYZE jobs", false).expect("analyze");
    store
        .raw(
            "INSERT INTO jobs (script_id, priority, due_at, state, created_at) \
             SELECT (SELECT id FROM scripts WHERE name = 'c'), 0, 4000000000000 + g, 'queued', 0 \
             FROM generate_series(1, 3000) g",
            false,
        )
        .expect("jobs");
    // The statement as the store sends it, its parameters written in.
    let pages = |stmt: Statement| {
        let r = stmt.render(Dialect::Postgres).expect("render");
        let mut sql = r.sql.clone();
        for (i, v) in r.params.iter().enumerate().rev() {
            let lit = match v {
                Value::Int(n) => n.to_string(),
                Value::Text(t) => format!("'{t}'"),
                other => panic!("a parameter {other:?}"),
            };
            sql = sql.replace(&format!("${}", i + 1), &lit);
        }
        let plan = store
            .raw(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), false)
            .expect("explain")
            .rows
            .iter()
            .map(|r| r[0].to_text().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let hit = plan
            .split("shared hit=")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no pages counted in the plan:\n{plan}"));
        (hit, plan)
    };
    let now = hostler::store::now_ms();
    for (name, stmt) in [
        ("top", job_top_priority(Claimable::Due, None)),
        ("next_due", job_next_due(now)),
        ("due", claim_candidates(1, None, Claimable::Due, 0, 64)),
    ] {
        let (hit, plan) = pages(stmt);
        assert!(hit <= 10, "{name}: {hit} pages for one row or none\n{plan}");
    }
}

#[test]
fn tls_to_postgresql_checks_the_servers_certificate() {
    if !crate::util::have("/usr/bin/openssl", "openssl makes the test's certificates") {
        return;
    }
    let Some((pg, ca)) = Pg::start_tls() else {
        return;
    };
    let plain = pg.createdb("hostler_tls");
    let url = plain.replace("sslmode=disable", "sslmode=require");
    // Signed by a CA the system does not trust: refused, in one line, without the password.
    let with_pw = url.replace("hostler@", "hostler:pw-n0t-shown@");
    let e = match Store::open(&with_pw) {
        Ok(_) => panic!("a certificate from an unknown CA was accepted"),
        // Refused for good, not "cannot be reached" (which a daemon would keep retrying).
        Err(e @ hostler::store::StoreError::Unreachable(_)) => panic!("{e}"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("certificate"), "{e}");
    assert!(!e.contains("pw-n0t-shown"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    // With that CA named: the store works, over TLS.
    let trusted = format!("{url}&sslrootcert={}", ca.display());
    let store = Store::open(&trusted).expect("open over TLS with the CA");
    let r = store
        .raw(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            false,
        )
        .expect("pg_stat_ssl");
    assert!(
        matches!(r.rows[0][0], hostler::sql::Value::Bool(true)),
        "the session is encrypted: {:?}",
        r.rows
    );
    // The same CA, but the name in the URL is not the certificate's.
    let wrong = trusted.replace("127.0.0.1", "localhost");
    match Store::open(&wrong) {
        Ok(_) => panic!("a certificate for another name was accepted"),
        Err(e) => assert!(e.to_string().contains("certificate"), "{e}"),
    }
}

#[test]
fn a_slow_statement_does_not_hold_up_the_rest_of_a_node() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_pool");
    // How long a quick read waits while another thread of the same store runs a 2 s one.
    let quick_read_while_busy = |url: &str| {
        let store = std::sync::Arc::new(Store::open(url).expect("open"));
        let slow = {
            let store = store.clone();
            std::thread::spawn(move || store.raw("SELECT pg_sleep(2)", false).map(|_| ()))
        };
        // Until the server runs it, so the quick read below comes second.
        let plain = url.split("&connections=").next().unwrap_or(url);
        let mut admin = postgres::Client::connect(plain, postgres::NoTls).expect("admin");
        assert!(
            crate::util::wait_for(std::time::Duration::from_secs(10), || {
                admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'",
                        &[],
                    )
                    .is_ok_and(|r| r.get::<_, i64>(0) == 1)
            }),
            "the slow statement never started"
        );
        let t = std::time::Instant::now();
        store.hosts().expect("hosts");
        let took = t.elapsed();
        slow.join().expect("thread").expect("slow statement");
        took
    };
    let pooled = quick_read_while_busy(&url);
    assert!(
        pooled < std::time::Duration::from_millis(1_000),
        "a read waited {pooled:?} behind another thread's statement"
    );
    // With one connection it must wait: the figure above is the pool's doing.
    let single = quick_read_while_busy(&format!("{url}&connections=1"));
    assert!(
        single >= std::time::Duration::from_millis(1_000),
        "one connection, yet no wait ({single:?})"
    );
}

#[test]
fn init_and_sql_json_work_on_postgresql_through_the_binary() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_cli");
    let w = crate::util::Work::new();
    let run = |args: &[&str]| {
        w.cmd(args)
            .env("HOSTLER_DB", &url)
            .output()
            .expect("hostler")
    };
    let o = run(&["init"]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    assert!(
        crate::util::stdout(&o).contains("check_http"),
        "{}",
        crate::util::stdout(&o)
    );
    let o = run(&[
        "sql",
        "--json",
        "SELECT count(*) AS n, 'x' AS t, true AS b, NULL AS z, 1.5::float8 AS r FROM scripts",
    ]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&crate::util::stdout(&o)).expect("JSON");
    let row = &v[0];
    assert!(row["n"].as_i64().is_some_and(|n| n > 5), "{v}");
    assert_eq!(row["t"], "x", "{v}");
    assert_eq!(row["b"], true, "{v}");
    assert!(row["z"].is_null(), "{v}");
    assert_eq!(row["r"], 1.5, "{v}");
    // Several statements at once still run (as text), and a changing one says how many.
    let o = run(&[
        "sql",
        "UPDATE scripts SET description = description WHERE 1 = 0",
    ]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let o = run(&["sql", "SELECT 1 AS a; SELECT 2 AS a"]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
}

/// One claim takes one job, whatever plan PostgreSQL picks. With the planner steered to the
/// plan it picks on its own for a small or freshly vacuumed queue (a Nested Loop Semi Join
/// that rescans the claim's subquery per row of `jobs`), `id IN (SELECT ... LIMIT 1 FOR
/// UPDATE SKIP LOCKED)` claimed all 20 jobs at once: all but one sat "running" with nobody
/// running them, several of one host at `per_host = 1` (issue 27's phantom runs).
#[test]
fn one_claim_takes_one_job_whatever_plan_postgresql_picks() {
    let Some(pg) = Pg::start() else { return };
    let (store, mut admin, _) = two_hosts_queue(
        &pg,
        "hostler_claim_plan",
        &[
            "enable_material = off",
            "enable_hashjoin = off",
            "enable_mergejoin = off",
            "enable_hashagg = off",
            "enable_sort = off",
        ],
        20,
    );
    admin.batch_execute("ANALYZE jobs").expect("analyze");
    let mut taken = Vec::new();
    for _ in 0..3 {
        let job = store
            .claim_job("n1", 60_000, 1, None, false)
            .expect("claim");
        taken.extend(job.map(|j| j.id));
        let running: i64 = admin
            .query_one("SELECT count(*) FROM jobs WHERE state = 'running'", &[])
            .expect("count")
            .get(0);
        assert_eq!(
            running as usize,
            taken.len(),
            "jobs running that no claim returned"
        );
    }
    // Two hosts at per_host = 1: the third claim finds both busy.
    assert_eq!(taken.len(), 2, "{taken:?}");
}

/// A renewal never waits for a row the run writer holds: it renews the rows it can lock and
/// skips the ones being recorded. Taken in the order a table scan meets them (the lower id's
/// row rewritten, so it lies behind), a renewal that waited would hold the higher id while
/// the writer waits for it, and PostgreSQL would end one of the two.
#[test]
fn a_lease_renewal_skips_the_rows_the_run_writer_holds_and_never_waits_for_them() {
    let Some(pg) = Pg::start() else { return };
    // A table scan, not the id index: the plan that visits rows in the order they lie on disk.
    let (store, mut admin, url) = two_hosts_queue(
        &pg,
        "hostler_renew_order",
        &["enable_indexscan = off", "enable_bitmapscan = off"],
        2,
    );
    let ids = claim_each(&store, 2);
    let [lo, hi] = ids[..] else {
        panic!("two jobs claimed: {ids:?}")
    };
    // The lower id's row is written again, so it now lies behind the higher one on disk.
    admin
        .execute("UPDATE jobs SET attempts = attempts WHERE id = $1", &[&lo])
        .expect("move the row");
    let until = |admin: &mut postgres::Client, id: i64| -> i64 {
        admin
            .query_one("SELECT lease_until FROM jobs WHERE id = $1", &[&id])
            .expect("lease")
            .get(0)
    };
    let (lo_before, hi_before) = (until(&mut admin, lo), until(&mut admin, hi));
    // The run writer records the lower id's run, in a transaction held open.
    let mut writer = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let mut tx = writer.transaction().expect("begin");
    tx.execute("DELETE FROM jobs WHERE id = $1", &[&lo])
        .expect("delete lo");
    // Meanwhile a renewal of both comes back at once, with the row it could take.
    let (sent, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sent.send(store.renew_leases("n1", &[lo, hi], 120_000));
    });
    let leases = got
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the renewal waited for the writer's row")
        .expect("the renewal");
    assert_eq!(
        leases.iter().map(|l| l.job).collect::<Vec<_>>(),
        [hi],
        "the row being recorded is skipped"
    );
    assert!(
        until(&mut admin, hi) > hi_before,
        "the higher id's lease extended"
    );
    assert_eq!(
        until(&mut admin, lo),
        lo_before,
        "the row being recorded is not renewed"
    );
    // So the writer goes on to the higher id without a deadlock, and commits.
    tx.execute("DELETE FROM jobs WHERE id = $1", &[&hi])
        .expect("the writer's second delete");
    tx.commit().expect("commit");
    let left: i64 = admin
        .query_one("SELECT count(*) FROM jobs", &[])
        .expect("jobs")
        .get(0);
    assert_eq!(left, 0, "both runs recorded");
    // A renewal with nobody in its way extends every lease it holds.
    let (store, mut admin, _) = two_hosts_queue(&pg, "hostler_renew_all", &[], 2);
    let ids = claim_each(&store, 2);
    let before: Vec<i64> = ids.iter().map(|id| until(&mut admin, *id)).collect();
    let leases = store.renew_leases("n1", &ids, 600_000).expect("renew");
    assert_eq!(leases.len(), 2, "{leases:?}");
    for (id, b) in ids.iter().zip(before) {
        assert!(
            until(&mut admin, *id) > b + 300_000,
            "job {id}'s lease extended"
        );
    }
}

/// Two nodes of two sites record a quorum's two checks at once, their jobs in opposite
/// orders (a site's job for one check came after a firing the other site had run before).
/// Each run locks its check's row: taken in the order of the jobs, the two transactions
/// wait for each other in a cycle and PostgreSQL ends one ("deadlock detected"). The store
/// takes them in the order of the checks.
#[test]
fn two_sites_recording_a_quorums_checks_in_opposite_job_orders_never_deadlock() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_quorum_order");
    let store = Store::open(&url).expect("open");
    check_script(&store);
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    for h in ["h1", "h2"] {
        add_host(&store, h).expect("host");
        let id = store
            .add_schedule(&NewSchedule {
                max_attempts: 1,
                guard_backoff_ms: 0,
                sites: vec!["dc1".into(), "dc2".into()],
                quorum: Some(2),
                ..NewSchedule::every("c", Some(h), 60_000)
            })
            .expect("quorum schedule");
        let s = store.schedule(id).expect("schedule");
        let due = s.next_due.expect("due");
        assert_eq!(
            store
                .fire_schedule(&s, due, &[Some(h.to_string())], Some(due + 60_000))
                .expect("fire"),
            2,
            "a job for each site"
        );
    }
    // dc2's job for h1 comes after its job for h2.
    admin
        .execute(
            "UPDATE jobs SET id = id + 1000 WHERE id = (SELECT min(id) FROM jobs WHERE site = 'dc2')",
            &[],
        )
        .expect("renumber");
    // The checks' rows, as an earlier round of runs left them.
    admin
        .batch_execute(
            "INSERT INTO checks (host, script, state, since, last_run_at) \
             VALUES ('h1', 'c', 'ok', 0, 0), ('h2', 'c', 'ok', 0, 0)",
        )
        .expect("checks");
    let node = |name: &str, site: &str| {
        let store = Store::open(&url).expect("open");
        let mut jobs = store
            .claim_jobs(name, 60_000, 10, Some(site), false, 10)
            .expect("claim");
        jobs.sort_by_key(|j| j.id);
        let runs: Vec<(NewRun, JobAction)> = jobs
            .iter()
            .map(|j| {
                let at = hostler::store::now_ms();
                let run = NewRun {
                    job_id: Some(j.id),
                    host: j.host.clone(),
                    node: Some(name.into()),
                    ..run(
                        j.schedule_id.expect("a schedule's job"),
                        Status::Critical,
                        at,
                    )
                };
                (run, JobAction::Done)
            })
            .collect();
        (store, runs)
    };
    let (dc1, dc1_runs) = node("n1", "dc1");
    let (dc2, dc2_runs) = node("n2", "dc2");
    let hosts = |runs: &[(NewRun, JobAction)]| -> Vec<String> {
        runs.iter()
            .map(|(r, _)| r.host.clone().unwrap_or_default())
            .collect()
    };
    assert_eq!(hosts(&dc1_runs), ["h1", "h2"], "dc1's jobs in id order");
    assert_eq!(hosts(&dc2_runs), ["h2", "h1"], "dc2's jobs in id order");
    // h1's row is held a moment (a third writer), so that both nodes' batches are under way
    // before either can finish.
    let mut other = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let mut held = other.transaction().expect("begin");
    held.query("SELECT id FROM checks WHERE host = 'h1' FOR UPDATE", &[])
        .expect("hold h1");
    let first = std::thread::spawn(move || dc1.record_runs(&dc1_runs, &|_| Ok(())));
    assert!(
        lock_waiters(&mut admin, 1),
        "dc1's batch never waited for h1"
    );
    // dc2 in job order would take h2 now, then wait for h1: once dc1 has h1, it waits for
    // h2 in turn.
    let second = std::thread::spawn(move || dc2.record_runs(&dc2_runs, &|_| Ok(())));
    assert!(lock_waiters(&mut admin, 2), "dc2's batch never waited");
    held.commit().expect("release h1");
    let first = first.join().expect("dc1's thread");
    let second = second.join().expect("dc2's thread");
    assert!(first.is_ok(), "dc1's batch: {first:?}");
    assert!(second.is_ok(), "dc2's batch: {second:?}");
    for h in ["h1", "h2"] {
        let c = store.check(Some(h), "c").expect("check");
        assert!(
            c.message.contains("dc1: CRITICAL") && c.message.contains("dc2: CRITICAL"),
            "{h}: both sites' results count: {}",
            c.message
        );
    }
    let left: i64 = admin
        .query_one("SELECT count(*) FROM jobs", &[])
        .expect("jobs")
        .get(0);
    assert_eq!(left, 0, "every job is done");
}

/// Two nodes' web servers record the same two heartbeats' pings at once, in opposite orders
/// (each records the pings it gathered in one transaction). Taken as they came, each locks
/// one heartbeat and waits for the other's; the store takes them in heartbeat order.
#[test]
fn two_nodes_recording_pings_in_opposite_orders_never_deadlock() {
    use hostler::store::heartbeats::{NewHeartbeat, Ping};
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_ping_order");
    let store = Store::open(&url).expect("open");
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        store
            .add_heartbeat(&NewHeartbeat {
                name: name.into(),
                every_ms: 60_000,
                ..Default::default()
            })
            .expect("heartbeat");
        ids.push(store.heartbeat(name, None).expect("read").id);
    }
    let [a, b] = ids[..] else { unreachable!() };
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let mut other = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let mut held = other.transaction().expect("begin");
    held.query("SELECT id FROM heartbeats WHERE id = $1 FOR UPDATE", &[&a])
        .expect("hold a");
    let one = Store::open(&url).expect("open");
    let two = Store::open(&url).expect("open");
    let first = std::thread::spawn(move || {
        one.ping_many(&[
            (a, Ping::Success, "1".into()),
            (b, Ping::Success, "1".into()),
        ])
    });
    assert!(
        lock_waiters(&mut admin, 1),
        "the first batch never waited for a"
    );
    let second = std::thread::spawn(move || {
        two.ping_many(&[(b, Ping::Fail, "2".into()), (a, Ping::Fail, "2".into())])
    });
    assert!(lock_waiters(&mut admin, 2), "the second batch never waited");
    held.commit().expect("release a");
    let first = first.join().expect("first thread");
    let second = second.join().expect("second thread");
    assert!(first.is_ok(), "the first batch: {first:?}");
    let second = second.expect("the second batch");
    assert!(
        second
            .iter()
            .all(|p| p.as_ref().and_then(|p| p.status) == Some(Status::Critical)),
        "each ping of the second batch answered as its own: {second:?}"
    );
    for name in ["a", "b"] {
        let c = store.check(None, name).expect("check");
        assert_eq!(
            c.state,
            hostler::store::CheckState::Critical,
            "{name}: the later batch's fail"
        );
    }
}

/// A point's read of its series joins its hour's last part of raw points to its day's row,
/// which it locks. On PostgreSQL a writer of the same series that committed while the read
/// waited for that lock has added to the part after the read's snapshot (runs that lock no
/// check row first: an ad-hoc run, a check's first): the point goes after that writer's, and
/// none is lost.
#[test]
fn a_point_recorded_while_another_writer_held_its_day_keeps_that_writers_point() {
    use hostler::store::series::{format_day, parse_day, parse_points, push_point};
    const HOUR: i64 = 3_600_000;
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_raw_wait");
    let store = Store::open(&url).expect("open");
    add_host(&store, "web1").expect("host");
    check_script(&store);
    let now = hostler::store::now_ms();
    let hour = now - now.rem_euclid(HOUR) - HOUR;
    // Ad-hoc runs: no schedule, so no check row is locked before the series.
    let adhoc = |offset: i64, value: i64| NewRun {
        schedule_id: None,
        perfdata: Some(format!("v={value}")),
        ..run(0, Status::Ok, hour + offset)
    };
    for (offset, value) in [(1_000, 1), (2_000, 2)] {
        store
            .record_run(&adhoc(offset, value), JobAction::Keep)
            .expect("record");
    }
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let mut other = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    // Another writer adds a point as a run's record does: the hour's trend in its day's row
    // (locked first), then the hour's raw part.
    let mut held = other.transaction().expect("begin");
    let row = held
        .query_one(
            "SELECT d.id::bigint, d.hours, d.day::bigint, d.series_id::bigint FROM perf_days d \
             JOIN perf_series s ON s.id = d.series_id WHERE s.label = 'v' FOR UPDATE OF d",
            &[],
        )
        .expect("the day's row");
    let (day_id, hours, day, series): (i64, String, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let mut trends = parse_day(&hours);
    trends[((hour - day) / HOUR) as usize]
        .as_mut()
        .expect("the hour's trend")
        .add(7.0);
    held.execute(
        "UPDATE perf_days SET hours = $1 WHERE id = $2::bigint",
        &[&format_day(&trends), &day_id],
    )
    .expect("the trend");
    let mut point = String::new();
    push_point(&mut point, 3_000, 7.0);
    let n = held
        .execute(
            "UPDATE perf_raw SET points = points || ' ' || $1 \
             WHERE series_id = $2::bigint AND hour = $3::bigint",
            &[&point, &series, &hour],
        )
        .expect("the raw part");
    assert_eq!(n, 1);
    let last = adhoc(4_000, 9);
    let writer = Store::open(&url).expect("open");
    let recording = std::thread::spawn(move || writer.record_run(&last, JobAction::Keep));
    assert!(
        lock_waiters(&mut admin, 1),
        "the run never waited for the day's row"
    );
    held.commit().expect("commit");
    recording.join().expect("thread").expect("recorded");
    let text: Vec<String> = admin
        .query(
            "SELECT points FROM perf_raw WHERE series_id = $1::bigint ORDER BY hour",
            &[&series],
        )
        .expect("raw")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let values: Vec<f64> = parse_points(hour, &text.join(" "))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, vec![1.0, 2.0, 7.0, 9.0], "{text:?}");
}

/// Node n1 claims up to `n` jobs, one a claim (a minute's lease); their ids in order.
fn claim_each(store: &Store, n: usize) -> Vec<i64> {
    let mut ids: Vec<i64> = (0..n)
        .filter_map(|_| {
            store
                .claim_job("n1", 60_000, 1, None, false)
                .expect("claim")
        })
        .map(|j| j.id)
        .collect();
    ids.sort();
    ids
}

/// Waits (up to 10 s) until at least `n` sessions wait for a lock; false if they never do.
fn lock_waiters(admin: &mut postgres::Client, n: i64) -> bool {
    crate::util::wait_for(std::time::Duration::from_secs(10), || {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                &[],
            )
            .is_ok_and(|r| r.get::<_, i64>(0) >= n)
    })
}

/// A store on a new database `db` with these planner settings, the no-op script `c`, hosts
/// h1 and h2, and `jobs` jobs of `c` due, each host in turn; with a client of its own and
/// the database's URL.
fn two_hosts_queue(
    pg: &Pg,
    db: &str,
    settings: &[&str],
    jobs: i64,
) -> (Store, postgres::Client, String) {
    let url = pg.createdb(db);
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    for setting in settings {
        admin
            .batch_execute(&format!("ALTER DATABASE {db} SET {setting}"))
            .expect("planner setting");
    }
    let store = Store::open(&url).expect("open");
    store
        .save_scripts(&[NewScript {
            name: "c",
            source: "ok()",
            description: None,
            kind: ScriptKind::Task,
        }])
        .expect("script");
    add_host(&store, "h1").expect("host");
    add_host(&store, "h2").expect("host");
    for i in 0..jobs {
        store
            .enqueue(&NewJob {
                script: "c".into(),
                host: Some(if i % 2 == 0 { "h1" } else { "h2" }.into()),
                priority: 0,
                due_at: hostler::store::now_ms() - 1000 + i,
                max_attempts: 1,
                timeout_ms: None,
                schedule_id: None,
                args: Some(format!(r#"{{"i":{i}}}"#)),
                name: None,
            })
            .expect("enqueue");
    }
    (store, admin, url)
}
