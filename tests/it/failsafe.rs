//! Fail safe: a store whose chosen reads fail (SQLite behind a driver that refuses the read
//! transactions touching one table) under the real correction loop. For each read a decision
//! needs (the downtimes, the check, the guard's fixes, the dependencies, the schedule), a
//! failing check with a fix is recorded as a retry: no fix runs and nothing is told.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hostler::config::Sandbox;
use hostler::monitord::{JobFlags, Pace, run_job};
use hostler::script::{Cache, Runner};
use hostler::session::Allowlist;
use hostler::sql::{Dialect, Rendered};
use hostler::store::{
    Conn, Driver, JobState, Method, NewDependency, NewHost, NewJob, NewSchedule, RawResult,
    RunFilter, RunPhase, Sqlite, Status, Store, StoreError, now_ms,
};

use crate::util::Work;

/// Which table's reads fail (None: none).
type Fault = Arc<Mutex<Option<&'static str>>>;

/// SQLite whose read transactions fail on a statement that names the armed table; writes
/// (the record of a run) go through.
struct Faulty {
    inner: Sqlite,
    fault: Fault,
}

struct FaultyConn<'a> {
    inner: &'a mut dyn Conn,
    table: Option<&'static str>,
}

impl FaultyConn<'_> {
    fn check(&self, q: &Rendered) -> Result<(), StoreError> {
        match self.table {
            Some(t) if q.sql.contains(&format!("\"{t}\"")) => {
                Err(StoreError::Db(format!("injected: no reading {t}")))
            }
            _ => Ok(()),
        }
    }
}

impl Conn for FaultyConn<'_> {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
    fn rows(&mut self, q: &Rendered) -> Result<Vec<hostler::store::Row>, StoreError> {
        self.check(q)?;
        self.inner.rows(q)
    }
    fn count(&mut self, q: &Rendered) -> Result<u64, StoreError> {
        self.check(q)?;
        self.inner.count(q)
    }
    fn last_insert_id(&mut self) -> Result<i64, StoreError> {
        self.inner.last_insert_id()
    }
    fn ddl(&mut self, sql: &str) -> Result<(), StoreError> {
        self.inner.ddl(sql)
    }
}

type DriverWork<'a> = &'a mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>;

impl Driver for Faulty {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
    fn read(&mut self, work: DriverWork<'_>) -> Result<(), StoreError> {
        let table = *self.fault.lock().expect("fault");
        self.inner
            .read(&mut |c| work(&mut FaultyConn { inner: c, table }))
    }
    fn write(&mut self, work: DriverWork<'_>) -> Result<(), StoreError> {
        self.inner.write(work)
    }
    fn raw(&mut self, sql: &str, show_secrets: bool) -> Result<RawResult, StoreError> {
        self.inner.raw(sql, show_secrets)
    }
}

/// Runs one failing check with a fix through the correction loop while reads of `table`
/// fail (or, with `schedule_unread`, as monitord does when the job's schedule could not be
/// read). Returns the store (its folder kept alive) and the job's status.
fn run_once(table: Option<&'static str>, schedule_unread: bool) -> (Work, Arc<Store>, Status) {
    let w = Work::new();
    let fault: Fault = Arc::default();
    let driver = Faulty {
        inner: Sqlite::open(&w.path("faulty.db")).expect("sqlite"),
        fault: fault.clone(),
    };
    let store = Arc::new(Store::with_driver(Box::new(driver), "faulty.db").expect("store"));
    // No waiting for the parent's word: the dependency is read, and r1 (never checked) does
    // not hold the fix back.
    store.set_policy(hostler::store::checks::Policy {
        settle: hostler::store::depends::Settle {
            settle_ms: 0,
            hold_ms: 0,
        },
        ..Default::default()
    });
    for h in ["localhost", "r1"] {
        store
            .add_host(&NewHost {
                name: h.into(),
                address: "127.0.0.1".into(),
                method: Some(Method::Local),
                ..NewHost::default()
            })
            .expect("host");
    }
    w.script(&store, "probe", "critical(\"down\")");
    w.script(&store, "mend", "ok(\"mended\")");
    // localhost stands behind r1, which is not down: the dependency is read, and allows the
    // fix.
    store
        .add_dependency(&NewDependency {
            child_host: "localhost".into(),
            parent_host: "r1".into(),
            parent_check: "ping".into(),
            ..NewDependency::default()
        })
        .expect("depend");
    let id = store
        .add_schedule(&NewSchedule {
            fix_script: Some("mend".into()),
            max_attempts: 1,
            guard_backoff_ms: 0,
            next_due: now_ms() + 3_600_000,
            ..NewSchedule::every("probe", Some("localhost"), 3_600_000)
        })
        .expect("schedule");
    let sched = store.schedule(id).expect("schedule");
    store
        .enqueue(&NewJob {
            script: "probe".into(),
            host: Some("localhost".into()),
            priority: 0,
            due_at: now_ms(),
            max_attempts: 1,
            timeout_ms: None,
            schedule_id: Some(id),
            args: None,
            name: None,
        })
        .expect("enqueue");
    let job = store
        .claim_job("n1", 60_000, 1, None, false)
        .expect("claim")
        .expect("a job");
    let runner = Runner::new(
        store.clone(),
        Sandbox::default(),
        Allowlist::new(&[]).expect("allowlist"),
        Arc::new(Cache::default()),
        "n1".into(),
        Arc::new(hostler::script::Remote::default()),
    );
    let pace = Pace {
        retry_base: Duration::from_millis(100),
        recheck_within: Duration::from_millis(100),
        ok_transcripts: false,
    };
    *fault.lock().expect("fault") = table;
    let schedule = if schedule_unread {
        Err("injected: no reading schedules")
    } else {
        Ok(Some(&sched))
    };
    let status = run_job(&runner, &job, schedule, &JobFlags::default(), pace);
    *fault.lock().expect("fault") = None;
    (w, store, status)
}

/// Checks that nothing was decided on a guess: the check's run alone, recorded as a retry.
fn nothing_decided_when(table: Option<&'static str>, schedule_unread: bool) {
    let (_w, store, status) = run_once(table, schedule_unread);
    let what = table.unwrap_or("schedules");
    assert_eq!(status, Status::Critical, "{what}");
    let runs = store
        .runs(&RunFilter {
            limit: 100,
            ..RunFilter::default()
        })
        .expect("runs");
    assert_eq!(runs.len(), 1, "{what}: only the check ran: {runs:?}");
    assert!(
        runs.iter().all(|r| r.phase != Some(RunPhase::Fix)),
        "{what}: a fix ran on a guess"
    );
    assert!(
        store.notifications(10).expect("notifications").is_empty(),
        "{what}: something was told on a guess"
    );
    let jobs = store.jobs().expect("jobs");
    assert_eq!(jobs.len(), 1, "{what}: the job is tried again");
    assert_eq!(jobs[0].state, JobState::Queued, "{what}");
    assert!(
        jobs[0].due_at > now_ms() + 20_000,
        "{what}: tried again once the store may answer (30 s)"
    );
}

#[test]
fn a_downtime_that_cannot_be_read_fixes_and_tells_nothing() {
    nothing_decided_when(Some("downtimes"), false);
}

#[test]
fn a_check_row_that_cannot_be_read_fixes_and_tells_nothing() {
    nothing_decided_when(Some("checks"), false);
}

#[test]
fn a_guard_that_cannot_be_read_fixes_and_tells_nothing() {
    nothing_decided_when(Some("settings"), false);
}

#[test]
fn dependencies_that_cannot_be_read_fix_and_tell_nothing() {
    nothing_decided_when(Some("dependencies"), false);
}

#[test]
fn a_schedule_that_cannot_be_read_fixes_and_tells_nothing() {
    nothing_decided_when(None, true);
}

#[test]
fn with_every_read_answered_the_same_check_is_fixed_and_told() {
    // The control: the same harness with nothing failing runs the fix and tells.
    let (_w, store, status) = run_once(None, false);
    assert_eq!(status, Status::Critical);
    let runs = store
        .runs(&RunFilter {
            limit: 100,
            ..RunFilter::default()
        })
        .expect("runs");
    assert!(
        runs.iter().any(|r| r.phase == Some(RunPhase::Fix)),
        "{runs:?}"
    );
    let told = store.notifications(10).expect("notifications");
    assert!(
        told.iter()
            .any(|n| n.subject.contains("mend did not fix it")),
        "{told:?}"
    );
    assert!(store.jobs().expect("jobs").is_empty(), "the job is done");
}
