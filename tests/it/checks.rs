//! Checks as state: the state machine's properties over any sequence of results, and the
//! store keeping a check with its run in one transaction, with one message per problem and
//! one per recovery.

use hostler::store::checks::{Event, Observation, Policy, advance};
use hostler::store::{
    Check, CheckState, JobAction, NewDowntime, NewRun, NewSchedule, RunPhase, Status, Store,
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

/// One step of a replay: a result, whether monitord told it, whether someone else will,
/// whether a downtime covers it, and whether an operator acknowledged the problem before it.
type Step = (CheckState, bool, bool, bool, bool);

/// Feeds observations through the machine as the store does, keeping the row.
fn replay(steps: &[Step], policy: &Policy) -> Vec<(Check, Option<Event>)> {
    let mut prev: Option<Check> = None;
    let mut out = Vec::new();
    for (i, (state, told, may_tell, quiet, ack)) in steps.iter().enumerate() {
        if let Some(p) = prev.as_mut().filter(|p| *ack && p.state != CheckState::Ok) {
            p.acked = true;
        }
        let o = Observation {
            state: *state,
            at: 1000 * (i as i64 + 1),
            told: *told,
            may_tell: *may_tell,
            quiet: *quiet,
            unreachable: false,
            hold: false,
        };
        let n = advance(prev.as_ref(), &o, policy);
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
            acked: n.acked,
            ack_comment: None,
            changes: n.changes,
            flapping: n.flapping,
            reminded_at: None,
            unreachable: false,
            parent: None,
        };
        out.push((check.clone(), n.event));
        prev = Some(check);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the results: a problem is told at most once until it recovers, a recovery only
    /// follows a told problem, nothing is told in a downtime or of an acknowledged problem,
    /// "since" moves exactly when the state changes, and a hard problem that nobody else tells
    /// is told as soon as no downtime or acknowledgement holds it back.
    #[test]
    fn the_state_machine_tells_each_change_once(
        steps in prop::collection::vec(
            (state(), any::<bool>(), any::<bool>(), prop::bool::weighted(0.2), prop::bool::weighted(0.1)),
            1..60,
        ),
        retries in 1i64..4,
        flap_changes in prop_oneof![Just(0usize), Just(3), Just(6)],
        flap_window_ms in prop_oneof![Just(5_000i64), Just(3_600_000)],
    ) {
        let policy = Policy { retries, flap_changes, flap_window_ms, ..Policy::default() };
        let run = replay(&steps, &policy);
        let mut flapping = false;
        let mut told = false;
        let mut prev: Option<&Check> = None;
        for ((check, event), (state, by_run, may_tell, quiet, ack)) in run.iter().zip(&steps) {
            // Acknowledged before this result: earlier, or by the operator just now.
            let was_acked = prev.is_some_and(|p| p.acked || (*ack && p.state != CheckState::Ok));
            if *quiet {
                prop_assert!(event.is_none(), "told in a downtime: {event:?}");
            }
            let was_flapping = prev.is_some_and(|p| p.flapping);
            prop_assert_eq!(was_flapping, flapping);
            match event {
                Some(Event::FlappingStart { changes }) => {
                    prop_assert!(!flapping && check.flapping && *changes >= flap_changes);
                    flapping = true;
                }
                Some(Event::FlappingEnd) => {
                    prop_assert!(flapping && !check.flapping);
                    flapping = false;
                }
                Some(Event::Problem { .. } | Event::Changed { .. } | Event::Recovery { .. }) => {
                    prop_assert!(!flapping && !check.flapping, "told while flapping: {event:?}");
                }
                None => {
                    // Flapping starts and stops only with its message, or in silence when an
                    // acknowledgement holds it back.
                    if check.flapping != flapping {
                        prop_assert!(was_acked, "flapping changed without its message");
                        flapping = check.flapping;
                    }
                }
            }
            prop_assert_eq!(check.flapping, flapping, "flapping changes only with its message or in a downtime");
            let settled = !flapping && !was_flapping;
            if flap_changes == 0 {
                prop_assert!(!check.flapping);
            }
            match event {
                Some(Event::FlappingStart { .. } | Event::FlappingEnd) => {
                    if *by_run && *state != CheckState::Ok {
                        told = true;
                    }
                }
                Some(Event::Problem { since }) => {
                    prop_assert!(!told, "a second problem message before a recovery");
                    prop_assert!(check.hard && *may_tell && !*by_run && !was_acked);
                    prop_assert_eq!(*since, check.since);
                    told = true;
                }
                Some(Event::Changed { was, since }) => {
                    prop_assert!(told, "a change of a problem never told");
                    let p = prev.expect("a change has a before");
                    prop_assert!(*was == p.state && p.state != *state && *state != CheckState::Ok);
                    prop_assert!(check.hard && *may_tell && !*by_run && !was_acked);
                    prop_assert_eq!(*since, check.since);
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
                    if *state == CheckState::Ok && !*quiet && settled {
                        prop_assert!(!told, "an OK after a told problem must tell its recovery");
                    }
                }
            }
            prop_assert_eq!(check.notified, told);
            prop_assert_eq!(check.attempts == 0, *state == CheckState::Ok);
            prop_assert_eq!(check.hard, *state != CheckState::Ok && check.attempts >= retries);
            if *state == CheckState::Ok && !check.flapping {
                prop_assert!(!check.acked, "an acknowledgement ends with its problem");
            }
            let flap_event = matches!(event, Some(Event::FlappingStart { .. } | Event::FlappingEnd));
            if check.hard && *may_tell && !*quiet && !was_acked && settled && !flap_event {
                prop_assert!(check.notified, "a hard problem nobody else tells is told");
            }
            // "since": the state's start, or for a problem, when the check began to fail.
            match prev {
                Some(p) if p.state == check.state => prop_assert_eq!(check.since, p.since),
                Some(p) if p.state != CheckState::Ok && check.state != CheckState::Ok => {
                    prop_assert_eq!(check.since, p.since)
                }
                _ => prop_assert_eq!(check.since, check.last_run_at),
            }
            // Every change of a told hard problem's state is told, unless something holds
            // it back (a downtime, an acknowledgement, flapping, the run's own message).
            if let Some(p) = prev
                && p.notified && p.state != CheckState::Ok && *state != CheckState::Ok
                && p.state != *state && check.hard && *may_tell && !*quiet && !was_acked
                && !*by_run && settled
            {
                prop_assert!(matches!(event, Some(Event::Changed { .. })), "{:?} to {state:?} untold", p.state);
            }
            prev = Some(check);
        }
    }
}

fn schedule(store: &Store, script: &str, host: Option<&str>) -> i64 {
    store
        .add_schedule(&NewSchedule {
            max_attempts: 1,
            guard_backoff_ms: 0,
            next_due: hostler::store::now_ms() + 3_600_000,
            ..NewSchedule::every(script, host, 60_000)
        })
        .expect("schedule")
}

fn run(schedule: Option<i64>, script: &str, status: Status, at: i64) -> NewRun {
    NewRun {
        check_name: None,
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
    // A timeout is UNKNOWN: a change of the told problem's state, told with the state
    // before; the problem is still failing since 3,000.
    record(run(Some(sid), "check_x", Status::Timeout, 6_000));
    let c = store.check(Some("localhost"), "check_x").expect("check");
    assert_eq!(
        (c.state, c.hard, c.attempts, c.since, c.notified),
        (CheckState::Unknown, true, 4, 3_000, true)
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
            "localhost: check_x is UNKNOWN (was CRITICAL)".to_string(),
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
        4,
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
    let o = w.run(&["status", "--problems"]);
    let text = crate::util::stdout(&o);
    assert!(
        text.contains("b-bad") && text.contains("CRITICAL") && text.contains("hard,told"),
        "{text}"
    );
    assert!(!text.contains("a-ok"), "{text}");
    // As a Nagios plugin: 2 with a critical among the problems.
    assert_eq!(crate::util::code(&o), 2);
    assert_eq!(
        crate::util::code(&w.run(&["status", "--problems", "--json"])),
        2
    );
    let store = w.store();
    store
        .record_run(
            &NewRun {
                host: Some("b-bad".into()),
                ..run(
                    Some(b),
                    "check_x",
                    Status::Warning,
                    hostler::store::now_ms(),
                )
            },
            JobAction::Keep,
        )
        .expect("record");
    assert_eq!(crate::util::code(&w.run(&["status", "--problems"])), 1);
    store
        .record_run(
            &NewRun {
                host: Some("b-bad".into()),
                ..run(Some(b), "check_x", Status::Ok, hostler::store::now_ms())
            },
            JobAction::Keep,
        )
        .expect("record");
    assert_eq!(crate::util::code(&w.run(&["status", "--problems"])), 0);
    // Without --problems, the listing itself succeeds.
    assert_eq!(crate::util::code(&w.run(&["status"])), 0);
}

#[test]
fn every_change_of_a_told_problem_is_told_with_the_state_before() {
    let w = Work::new();
    let store = w.store();
    store
        .add_host(&hostler::store::NewHost {
            name: "localhost".into(),
            address: "127.0.0.1".into(),
            method: Some(hostler::store::Method::Local),
            ..Default::default()
        })
        .expect("host");
    w.script(&store, "check_x", "ok()");
    let sid = schedule(&store, "check_x", Some("localhost"));
    let record = |status, at| {
        store
            .record_run(&run(Some(sid), "check_x", status, at), JobAction::Keep)
            .expect("record")
    };
    record(Status::Ok, 1_000);
    record(Status::Warning, 2_000);
    record(Status::Warning, 3_000);
    record(Status::Critical, 4_000);
    record(Status::Critical, 5_000);
    record(Status::Warning, 6_000);
    record(Status::Ok, 7_000);
    let told: Vec<(String, String)> = store
        .notifications(10)
        .expect("n")
        .into_iter()
        .rev()
        .map(|n| (n.subject, n.body))
        .collect();
    let subjects: Vec<&str> = told.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        vec![
            "localhost: check_x is WARNING",
            "localhost: check_x is CRITICAL (was WARNING)",
            "localhost: check_x is WARNING (was CRITICAL)",
            "localhost: check_x is OK again",
        ]
    );
    // "since" is when the check began to fail (2,000), in every message of the problem.
    let began = hostler::when::local(2_000);
    for (subject, body) in &told[..3] {
        assert!(body.contains(&began), "{subject}: {body}");
    }
    assert_eq!(
        store
            .check(Some("localhost"), "check_x")
            .expect("check")
            .since,
        7_000
    );
}

fn host(store: &Store, name: &str, tags: &[&str]) {
    store
        .add_host(&hostler::store::NewHost {
            name: name.into(),
            address: "127.0.0.1".into(),
            method: Some(hostler::store::Method::Local),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })
        .expect("host");
}

/// Runs recorded together (a group commit) read the downtimes once, yet each is judged at its
/// own time and for its own host and check: one that finished before the others, in a window
/// that had ended by their time, is still quiet.
#[test]
fn runs_recorded_together_are_each_judged_against_the_downtimes_at_their_time() {
    let w = Work::new();
    let store = w.store();
    host(&store, "a", &["web"]);
    host(&store, "b", &[]);
    w.script(&store, "check_x", "ok()");
    w.script(&store, "check_y", "ok()");
    let ax = schedule(&store, "check_x", Some("a"));
    let bx = schedule(&store, "check_x", Some("b"));
    let ay = schedule(&store, "check_y", Some("a"));
    let now = hostler::store::now_ms();
    store
        .add_downtime(&NewDowntime {
            tag: Some("web".into()),
            reason: "kernel update".into(),
            starts_at: now - 10,
            ends_at: now + 60_000,
            ..Default::default()
        })
        .expect("add");
    // One that is over by now (the API refuses those), for a's check_y at now - 2 s only.
    store
        .raw(
            &format!(
                "INSERT INTO downtimes (host, script, starts_at, ends_at, reason, created_at) \
                 VALUES ('a', 'check_y', {}, {}, 'earlier', {})",
                now - 3_000,
                now - 1_500,
                now - 3_000
            ),
            false,
        )
        .expect("insert");
    let with_host = |mut r: NewRun, h: &str| {
        r.host = Some(h.into());
        (r, JobAction::Keep)
    };
    let batch = [
        with_host(run(Some(ax), "check_x", Status::Critical, now), "a"),
        with_host(run(Some(bx), "check_x", Status::Critical, now), "b"),
        with_host(run(Some(ay), "check_y", Status::Critical, now - 2_000), "a"),
    ];
    store.record_runs(&batch, &|_| Ok(())).expect("record");
    let notified = |h: &str, check: &str| store.check(Some(h), check).expect("check").notified;
    assert!(!notified("a", "check_x"), "a is in the tag's downtime");
    assert!(notified("b", "check_x"), "b is in none");
    assert!(
        !notified("a", "check_y"),
        "a's check_y finished inside the window that was over for the others"
    );
}

/// Writers that record at once (on PostgreSQL) count their runs in totals rows of their own,
/// so two never wait on each other: lane 1 of 3 counts only in stripes 1, 4, 7, 10 and 13.
/// A batch counts all its runs in one of them (one statement a status, and another node's
/// batch of the same lane waits on it only when its turn falls on the same stripe), and the
/// batches take them in turn; every run counts once.
#[test]
fn each_writer_counts_its_runs_in_totals_rows_of_its_own() {
    let w = Work::new();
    let store = w.store();
    host(&store, "localhost", &[]);
    w.script(&store, "check_x", "ok()");
    let sid = schedule(&store, "check_x", Some("localhost"));
    let now = hostler::store::now_ms();
    let lane = hostler::store::Lane { index: 1, of: 3 };
    let counted = || -> Vec<(i64, i64)> {
        let rows = store
            .raw("SELECT stripe, runs FROM run_totals WHERE runs > 0", false)
            .expect("totals")
            .rows;
        rows.iter()
            .map(|r| {
                let n = |v: &hostler::sql::Value| {
                    v.to_text()
                        .and_then(|t| t.parse::<i64>().ok())
                        .expect("a number")
                };
                (n(&r[0]), n(&r[1]))
            })
            .collect()
    };
    for b in 0..10 {
        let batch: Vec<_> = (0..4)
            .map(|i| {
                (
                    run(Some(sid), "check_x", Status::Critical, now - 40 + b * 4 + i),
                    JobAction::Keep,
                )
            })
            .collect();
        store
            .record_runs_in(&batch, &|_| Ok(()), lane)
            .expect("record");
        if b == 0 {
            assert_eq!(
                counted().len(),
                1,
                "a batch counts in one stripe: {:?}",
                counted()
            );
        }
    }
    let counted = counted();
    assert!(
        counted.iter().all(|(stripe, _)| stripe % 3 == 1),
        "{counted:?}"
    );
    assert_eq!(
        counted.len(),
        5,
        "the batches go round the lane's stripes: {counted:?}"
    );
    assert_eq!(counted.iter().map(|(_, n)| n).sum::<i64>(), 40);
}

#[test]
fn a_downtime_keeps_quiet_and_the_problem_is_told_once_it_ends() {
    let w = Work::new();
    let store = w.store();
    host(&store, "localhost", &["web"]);
    w.script(&store, "check_x", "ok()");
    let sid = schedule(&store, "check_x", Some("localhost"));
    let now = hostler::store::now_ms();
    // Refused: no target, two targets, no reason, over already, a check without its host.
    let base = NewDowntime {
        host: Some("localhost".into()),
        reason: "r".into(),
        starts_at: now,
        ends_at: now + 1000,
        ..Default::default()
    };
    for (d, why) in [
        (
            NewDowntime {
                host: None,
                ..base.clone()
            },
            "just one",
        ),
        (
            NewDowntime {
                tag: Some("web".into()),
                ..base.clone()
            },
            "just one",
        ),
        (
            NewDowntime {
                reason: " ".into(),
                ..base.clone()
            },
            "reason",
        ),
        (
            NewDowntime {
                starts_at: now - 2000,
                ends_at: now - 1000,
                ..base.clone()
            },
            "over",
        ),
        (
            NewDowntime {
                host: None,
                tag: Some("web".into()),
                script: Some("check_x".into()),
                ..base.clone()
            },
            "HOST/CHECK",
        ),
    ] {
        let e = store.add_downtime(&d).expect_err("refused").to_string();
        assert!(e.contains(why), "{e}");
    }
    // By tag: it covers the host's checks now.
    let id = store
        .add_downtime(&NewDowntime {
            tag: Some("web".into()),
            reason: "kernel update".into(),
            starts_at: now - 10,
            ends_at: now + 60_000,
            author: Some("ops".into()),
            ..Default::default()
        })
        .expect("add");
    assert!(store.in_downtime(Some("localhost"), "check_x").expect("in"));
    assert!(!store.in_downtime(Some("elsewhere"), "check_x").expect("in"));
    let at = hostler::store::now_ms();
    store
        .record_run(
            &run(Some(sid), "check_x", Status::Critical, at),
            JobAction::Keep,
        )
        .expect("record");
    let c = store.check(Some("localhost"), "check_x").expect("check");
    assert_eq!(
        (c.state, c.hard, c.notified),
        (CheckState::Critical, true, false)
    );
    assert_eq!(store.checks_in_downtime(&[c]).expect("ids").len(), 1);
    // Its start is told once, whichever node looks first.
    assert_eq!(store.tell_downtimes().expect("tell"), 1);
    assert_eq!(store.tell_downtimes().expect("tell"), 0);
    let n = store.notifications(10).expect("n");
    assert_eq!(n.len(), 1, "only the downtime's start: {n:?}");
    assert_eq!(n[0].event, Some(hostler::store::Alert::DowntimeStart));
    // It ends: the problem that still holds is told at the next run.
    store.remove_downtime(id).expect("rm");
    std::thread::sleep(std::time::Duration::from_millis(5));
    store
        .record_run(
            &run(
                Some(sid),
                "check_x",
                Status::Critical,
                hostler::store::now_ms(),
            ),
            JobAction::Keep,
        )
        .expect("record");
    let n = store.notifications(10).expect("n");
    assert_eq!(n[0].event, Some(hostler::store::Alert::Problem), "{n:?}");
    let gone = store.remove_downtime(id).expect_err("gone").to_string();
    assert!(gone.contains("downtime"), "{gone}");
}

#[test]
fn an_acknowledged_problem_tells_nothing_more_until_it_recovers() {
    let w = Work::new();
    let store = w.store();
    host(&store, "localhost", &[]);
    w.script(&store, "check_x", "ok()");
    let sid = schedule(&store, "check_x", Some("localhost"));
    let rec = |status, at| {
        store
            .record_run(&run(Some(sid), "check_x", status, at), JobAction::Keep)
            .expect("record");
    };
    rec(Status::Ok, 1_000);
    drop(store);
    // Nothing to acknowledge while it is OK: a one-line error and a non-zero exit.
    let o = w.run(&["ack", "localhost", "check_x", "--comment", "looking"]);
    assert_ne!(crate::util::code(&o), 0);
    assert!(
        crate::util::stderr(&o).contains("is OK"),
        "{}",
        crate::util::stderr(&o)
    );
    let store = w.store();
    let rec = |status, at| {
        store
            .record_run(&run(Some(sid), "check_x", status, at), JobAction::Keep)
            .expect("record");
    };
    rec(Status::Critical, 2_000);
    let o = w.run(&["ack", "localhost", "check_x", "--comment", "disk ordered"]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    // A change to WARNING while acknowledged: still quiet. Then the recovery is told.
    rec(Status::Warning, 3_000);
    let c = store.check(Some("localhost"), "check_x").expect("check");
    assert!(
        c.acked
            && c.ack_comment
                .as_deref()
                .unwrap_or("")
                .starts_with("disk ordered")
    );
    rec(Status::Ok, 4_000);
    let c = store.check(Some("localhost"), "check_x").expect("check");
    assert!(!c.acked && c.ack_comment.is_none());
    let events: Vec<_> = store
        .notifications(10)
        .expect("n")
        .into_iter()
        .rev()
        .filter_map(|n| n.event)
        .collect();
    use hostler::store::Alert::*;
    assert_eq!(events, vec![Problem, Acknowledgement, Recovery]);
    let text = crate::util::stdout(&w.run(&["status"]));
    assert!(!text.contains("acked"), "{text}");
}

#[test]
fn downtime_commands_add_list_and_remove_with_clear_errors() {
    let w = Work::new();
    let store = w.store();
    host(&store, "web1", &[]);
    w.script(&store, "check_x", "ok()");
    drop(store);
    let o = w.run(&[
        "downtime",
        "add",
        "--host",
        "web1",
        "--for",
        "2h",
        "--reason",
        "kernel update",
    ]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let o = w.run(&[
        "downtime",
        "add",
        "--check",
        "web1/check_x",
        "--until",
        "2099-01-01 00:00",
        "--reason",
        "migration",
    ]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    for (args, why) in [
        (
            &["downtime", "add", "--host", "web1", "--reason", "x"][..],
            "--for",
        ),
        (
            &[
                "downtime", "add", "--host", "nope", "--for", "1h", "--reason", "x",
            ][..],
            "nope",
        ),
        (
            &[
                "downtime", "add", "--check", "web1", "--for", "1h", "--reason", "x",
            ][..],
            "HOST/CHECK",
        ),
        (
            &[
                "downtime", "add", "--host", "web1", "--for", "soon", "--reason", "x",
            ][..],
            "bad duration",
        ),
        (&["downtime", "rm", "999"][..], "999"),
    ] {
        let o = w.run(args);
        let err = crate::util::stderr(&o);
        assert_ne!(crate::util::code(&o), 0, "{args:?}");
        assert!(
            err.contains(why) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&w.run(&["downtime", "list", "--json"]).stdout).expect("json");
    let list = v.as_array().expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0]["host"].as_str(), list[0]["reason"].as_str()),
        (Some("web1"), Some("kernel update"))
    );
    assert_eq!(list[1]["script"], "check_x");
    let id = list[0]["id"].as_i64().expect("id").to_string();
    assert_eq!(crate::util::code(&w.run(&["downtime", "rm", &id])), 0);
    let text = crate::util::stdout(&w.run(&["downtime", "list"]));
    assert!(
        text.contains("check web1/check_x") && !text.contains("kernel update"),
        "{text}"
    );
}

#[test]
fn a_flapping_check_tells_one_start_and_one_end_and_holds_the_rest() {
    let w = Work::new();
    let store = Store::open(&w.db()).expect("store");
    store.set_policy(Policy {
        flap_changes: 4,
        flap_window_ms: 10_000,
        ..Policy::default()
    });
    host(&store, "localhost", &[]);
    w.script(&store, "check_x", "ok()");
    let sid = schedule(&store, "check_x", Some("localhost"));
    let rec = |status, at| {
        store
            .record_run(&run(Some(sid), "check_x", status, at), JobAction::Keep)
            .expect("record");
    };
    // OK, then flipping every second: problem, recovery, problem, then flapping.
    rec(Status::Ok, 1_000);
    for (i, status) in [
        Status::Critical,
        Status::Ok,
        Status::Critical,
        Status::Ok,
        Status::Critical,
        Status::Ok,
    ]
    .into_iter()
    .enumerate()
    {
        rec(status, 2_000 + 1_000 * i as i64);
    }
    let c = store.check(Some("localhost"), "check_x").expect("check");
    assert!(c.flapping, "{c:?}");
    // It settles: the changes age out of the window, and one message says it stopped.
    rec(Status::Ok, 30_000);
    rec(Status::Ok, 31_000);
    let events: Vec<_> = store
        .notifications(20)
        .expect("n")
        .into_iter()
        .rev()
        .filter_map(|n| n.event)
        .collect();
    use hostler::store::Alert::*;
    assert_eq!(
        events,
        vec![
            Problem,
            Recovery,
            Problem,
            FlappingStart,
            FlappingEnd,
            Recovery
        ],
        "the recovery owed when it started flapping is told once it stopped"
    );
    assert!(
        !store
            .check(Some("localhost"), "check_x")
            .expect("check")
            .flapping
    );
}

#[test]
fn a_schedule_edited_in_place_keeps_its_checks_state_and_acknowledgement() {
    let w = Work::new();
    let store = w.store();
    host(&store, "localhost", &[]);
    w.script(&store, "check_x", "ok(\"fine\")");
    w.script(&store, "fix_x", "ok(\"fixed\")");
    let o = w.run(&[
        "schedule",
        "check_x",
        "--host",
        "localhost",
        "--every",
        "1h",
        "--arg",
        "path=/",
        "--arg",
        "warn=80",
        "--json",
    ]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let id = store.schedules().expect("schedules")[0].id;
    let at = hostler::store::now_ms();
    store
        .record_run(
            &run(Some(id), "check_x", Status::Critical, at),
            JobAction::Keep,
        )
        .expect("record");
    let o = w.run(&["ack", "localhost", "check_x", "--comment", "ticket 4711"]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let before = store.check(Some("localhost"), "check_x").expect("check");
    let o = w.run(&[
        "schedule",
        "edit",
        &id.to_string(),
        "--every",
        "30s",
        "--arg",
        "warn=85",
        "--unset-arg",
        "path",
        "--fix",
        "fix_x",
        "--json",
    ]);
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&crate::util::stdout(&o)).expect("json");
    assert_eq!(s["id"], id, "the same schedule");
    let s = store.schedule(id).expect("schedule");
    assert_eq!(s.timing, hostler::store::Timing::Every(30_000));
    assert_eq!(s.args.as_deref(), Some(r#"{"warn":"85"}"#));
    assert_eq!(s.fix_script.as_deref(), Some("fix_x"));
    let after = store.check(Some("localhost"), "check_x").expect("check");
    assert_eq!(
        (
            after.state,
            after.since,
            after.acked,
            after.ack_comment.clone()
        ),
        (before.state, before.since, true, before.ack_comment.clone()),
        "the check keeps its state, its since and its acknowledgement"
    );
    // Bad input: a clear error, nothing changed.
    for (args, says) in [
        (vec!["schedule", "edit", "999", "--every", "1m"], "999"),
        (
            vec!["schedule", "edit", &id.to_string(), "--every", "10ms"],
            "second",
        ),
        (
            vec!["schedule", "edit", &id.to_string()],
            "nothing to change",
        ),
        (
            vec!["schedule", "edit", &id.to_string(), "--unset-arg", "nope"],
            "nope",
        ),
        (
            vec![
                "schedule",
                "edit",
                &id.to_string(),
                "--every",
                "1m",
                "--cron",
                "* * * * *",
            ],
            "one of",
        ),
        (
            vec!["schedule", "edit", &id.to_string(), "--fix", "nosuch"],
            "nosuch",
        ),
    ] {
        let o = w.run(&args);
        assert_ne!(crate::util::code(&o), 0, "{args:?}");
        let err = crate::util::stderr(&o);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(store.schedule(id).expect("schedule"), s, "nothing changed");
}
