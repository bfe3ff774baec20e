//! Checks as state: the state machine's properties over any sequence of results, and the
//! store keeping a check with its run in one transaction, with one message per problem and
//! one per recovery.

use hostler::store::checks::{Event, Observation, advance};
use hostler::store::{
    Check, CheckState, JobAction, NewRun, NewSchedule, RunPhase, Status, Store, Timing,
};
use proptest::prelude::*;

use crate::util::Work;

fn state() -> impl Strategy<Value = CheckState> {
    prop_oneof![
        Just(CheckState::Ok),
        Just(CheckState::Warning),
        Just(CheckState::Critical),
        Just(CheckState::Unknown),
    ]
}

/// Feeds observations through the machine as the store does, keeping the row.
fn replay(steps: &[(CheckState, bool, bool)], retries: i64) -> Vec<(Check, Option<Event>)> {
    let mut prev: Option<Check> = None;
    let mut out = Vec::new();
    for (i, (state, told, may_tell)) in steps.iter().enumerate() {
        let o = Observation {
            state: *state,
            at: 1000 * (i as i64 + 1),
            told: *told,
            may_tell: *may_tell,
        };
        let n = advance(prev.as_ref(), &o, retries);
        let check = Check {
            id: 1,
            host: Some("h".into()),
            script: "c".into(),
            state: n.state,
            hard: n.hard,
            attempts: n.attempts,
            since: n.since,
            last_run_id: None,
            last_run_at: o.at,
            message: String::new(),
            perfdata: None,
            notified: n.notified,
        };
        out.push((check.clone(), n.event));
        prev = Some(check);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the results: a problem is told at most once until it recovers, a recovery only
    /// follows a told problem, "since" moves exactly when the state changes, and a hard problem
    /// that nobody else tells is always told.
    #[test]
    fn the_state_machine_tells_each_change_once(
        steps in prop::collection::vec((state(), any::<bool>(), any::<bool>()), 1..60),
        retries in 1i64..4,
    ) {
        let run = replay(&steps, retries);
        let mut told = false;
        let mut prev: Option<&Check> = None;
        for ((check, event), (state, by_run, may_tell)) in run.iter().zip(&steps) {
            match event {
                Some(Event::Problem) => {
                    prop_assert!(!told, "a second problem message before a recovery");
                    prop_assert!(check.hard && *may_tell && !*by_run);
                    told = true;
                }
                Some(Event::Recovery { was, since }) => {
                    prop_assert!(told, "a recovery of a problem never told");
                    prop_assert_eq!(*state, CheckState::Ok);
                    let p = prev.expect("a recovery has a before");
                    prop_assert_eq!((*was, *since), (p.state, p.since));
                    told = false;
                }
                None => {
                    if *by_run && *state != CheckState::Ok {
                        told = true;
                    }
                    if *state == CheckState::Ok {
                        prop_assert!(!told, "an OK after a told problem must tell its recovery");
                    }
                }
            }
            prop_assert_eq!(check.notified, told);
            prop_assert_eq!(check.attempts == 0, *state == CheckState::Ok);
            prop_assert_eq!(check.hard, *state != CheckState::Ok && check.attempts >= retries);
            if check.hard && *may_tell {
                prop_assert!(check.notified, "a hard problem nobody else tells is told");
            }
            match prev {
                Some(p) if p.state == check.state => prop_assert_eq!(check.since, p.since),
                _ => prop_assert_eq!(check.since, check.last_run_at),
            }
            prev = Some(check);
        }
    }
}

fn schedule(store: &Store, script: &str, host: Option<&str>) -> i64 {
    store
        .add_schedule(&NewSchedule {
            script: script.into(),
            fix_script: None,
            host: host.map(String::from),
            tag: None,
            site: None,
            priority: 0,
            timing: Timing::Every(60_000),
            timeout_ms: None,
            max_attempts: 1,
            guard_max_fixes: 3,
            guard_window_ms: 3_600_000,
            guard_backoff_ms: 0,
            allow_duplicate: false,
            next_due: hostler::store::now_ms() + 3_600_000,
        })
        .expect("schedule")
}

fn run(schedule: Option<i64>, script: &str, status: Status, at: i64) -> NewRun {
    NewRun {
        job_id: None,
        schedule_id: schedule,
        script: script.into(),
        script_version: Some(1),
        host: Some("localhost".into()),
        node: Some("t".into()),
        status,
        message: format!("said {status}"),
        perfdata: Some("x=1".into()),
        output: String::new(),
        transcript: String::new(),
        started_at: at - 5,
        finished_at: at,
        attempt: 1,
        phase: None,
        notifications: vec![],
    }
}

#[test]
fn the_check_moves_with_its_run_and_tells_a_problem_and_its_recovery_once() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "check_x", "ok()");
    w.script(&store, "fix_x", "ok()");
    store
        .add_host(&hostler::store::NewHost {
            name: "localhost".into(),
            address: "127.0.0.1".into(),
            method: Some(hostler::store::Method::Local),
            ..Default::default()
        })
        .expect("host");
    let sid = schedule(&store, "check_x", Some("localhost"));
    let record = |r: NewRun| store.record_run(&r, JobAction::Keep).expect("record");

    // An ad-hoc run and a fix run are no check.
    record(run(None, "check_x", Status::Critical, 1_000));
    record(NewRun {
        phase: Some(RunPhase::Fix),
        ..run(Some(sid), "fix_x", Status::Ok, 1_500)
    });
    assert!(store.checks().expect("checks").is_empty());

    let first = record(run(Some(sid), "check_x", Status::Ok, 2_000));
    let c = store.check(Some("localhost"), "check_x").expect("check");
    assert_eq!(
        (c.state, c.since, c.last_run_id, c.perfdata.as_deref()),
        (CheckState::Ok, 2_000, Some(first), Some("x=1"))
    );
    // Failing: one problem message, however many runs fail.
    for at in [3_000, 4_000, 5_000] {
        record(run(Some(sid), "check_x", Status::Critical, at));
    }
    // A timeout is UNKNOWN: a change of state, but the problem was told already.
    record(run(Some(sid), "check_x", Status::Timeout, 6_000));
    let c = store.check(Some("localhost"), "check_x").expect("check");
    assert_eq!(
        (c.state, c.hard, c.attempts, c.since, c.notified),
        (CheckState::Unknown, true, 4, 6_000, true)
    );
    // A cancelled run says nothing.
    record(run(Some(sid), "check_x", Status::Cancelled, 6_500));
    assert_eq!(
        store
            .check(Some("localhost"), "check_x")
            .expect("check")
            .state,
        CheckState::Unknown
    );
    record(run(Some(sid), "check_x", Status::Ok, 7_000));
    record(run(Some(sid), "check_x", Status::Ok, 8_000));
    let subjects: Vec<String> = store
        .notifications(10)
        .expect("n")
        .into_iter()
        .rev()
        .map(|n| n.subject)
        .collect();
    assert_eq!(
        subjects,
        vec![
            "localhost: check_x is CRITICAL".to_string(),
            "localhost: check_x is OK again".to_string()
        ]
    );
    let c = store.check(Some("localhost"), "check_x").expect("check");
    assert_eq!(
        (c.state, c.attempts, c.notified, c.since),
        (CheckState::Ok, 0, false, 7_000)
    );

    // A run that a retry will follow, or one of a correction loop, does not tell by itself.
    record(run(Some(sid), "check_x", Status::Error, 9_000));
    let _ = store.record_run(
        &run(Some(sid), "check_x", Status::Error, 9_500),
        JobAction::Retry { due_at: 10_000 },
    );
    record(NewRun {
        phase: Some(RunPhase::Check),
        ..run(Some(sid), "check_x", Status::Critical, 10_000)
    });
    assert_eq!(
        store.notifications(10).expect("n").len(),
        3,
        "the 9,000 error told"
    );

    // Removing the schedule removes its check; the history stays.
    store.remove_schedule(sid).expect("rm");
    assert!(store.checks().expect("checks").is_empty());
    assert!(!store.runs(&Default::default()).expect("runs").is_empty());
}

#[test]
fn removing_a_host_or_script_removes_their_checks() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "check_x", "ok()");
    for h in ["localhost", "other"] {
        store
            .add_host(&hostler::store::NewHost {
                name: h.into(),
                address: "127.0.0.1".into(),
                method: Some(hostler::store::Method::Local),
                ..Default::default()
            })
            .expect("host");
    }
    let a = schedule(&store, "check_x", Some("localhost"));
    let b = schedule(&store, "check_x", Some("other"));
    store
        .record_run(&run(Some(a), "check_x", Status::Ok, 1_000), JobAction::Keep)
        .expect("record");
    store
        .record_run(
            &NewRun {
                host: Some("other".into()),
                ..run(Some(b), "check_x", Status::Ok, 1_000)
            },
            JobAction::Keep,
        )
        .expect("record");
    assert_eq!(store.checks().expect("checks").len(), 2);
    store.remove_host("other").expect("rm host");
    let left: Vec<Option<String>> = store
        .checks()
        .expect("checks")
        .into_iter()
        .map(|c| c.host)
        .collect();
    assert_eq!(left, vec![Some("localhost".to_string())]);
    store.remove_script("check_x").expect("rm script");
    assert!(store.checks().expect("checks").is_empty());
}

#[test]
fn status_lists_problems_first_and_only_problems_when_asked() {
    let w = Work::new();
    let store = w.store();
    for h in ["a-ok", "b-bad"] {
        store
            .add_host(&hostler::store::NewHost {
                name: h.into(),
                address: "127.0.0.1".into(),
                method: Some(hostler::store::Method::Local),
                ..Default::default()
            })
            .expect("host");
    }
    w.script(&store, "check_x", "ok()");
    let a = schedule(&store, "check_x", Some("a-ok"));
    let b = schedule(&store, "check_x", Some("b-bad"));
    let rec = |sid, host: &str, status| {
        store
            .record_run(
                &NewRun {
                    host: Some(host.into()),
                    ..run(Some(sid), "check_x", status, hostler::store::now_ms())
                },
                JobAction::Keep,
            )
            .expect("record");
    };
    rec(a, "a-ok", Status::Ok);
    rec(b, "b-bad", Status::Critical);
    drop(store);
    let o = w.run(&["status", "--json"]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let order: Vec<(&str, &str, bool)> = v
        .as_array()
        .expect("list")
        .iter()
        .map(|c| {
            (
                c["host"].as_str().unwrap_or(""),
                c["state"].as_str().unwrap_or(""),
                c["hard"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![("b-bad", "critical", true), ("a-ok", "ok", false)]
    );
    assert_eq!(v[0]["code"], 2);
    let text = crate::util::stdout(&w.run(&["status", "--problems"]));
    assert!(
        text.contains("b-bad") && text.contains("CRITICAL") && text.contains("hard,told"),
        "{text}"
    );
    assert!(!text.contains("a-ok"), "{text}");
}
