//! Dependencies: the pure rules (a property test over results, parent states, downtimes and
//! acknowledgements), cycles refused by the CLI, downtimes that cover children, and the real
//! daemon with real TCP listeners: a router and 20 hosts behind it going down together, in
//! either order, and a host with two redundant uplinks.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hostler::store::checks::{Event, Observation, Policy, advance};
use hostler::store::depends::{ParentState, Reach, Settle, judge};
use hostler::store::{
    Check, CheckState, Dependency, Method, NewDependency, NewDowntime, NewHost, NewSchedule,
    RunFilter, RunPhase, Store, now_ms,
};
use proptest::prelude::*;

use crate::util::{Work, code, stderr, stdout, wait_for};

fn dep(child: &str, check: Option<&str>, parent: &str, group: Option<&str>) -> Dependency {
    let (ph, pc) = parent.split_once('/').expect("HOST/CHECK");
    Dependency {
        id: 0,
        child_host: child.into(),
        child_check: check.map(String::from),
        parent_host: ph.into(),
        parent_check: pc.into(),
        group: group.map(String::from),
        author: None,
        created_at: 0,
        managed: false,
    }
}

fn child_state() -> impl Strategy<Value = CheckState> {
    prop_oneof![
        2 => Just(CheckState::Ok),
        1 => Just(CheckState::Warning),
        3 => Just(CheckState::Critical),
    ]
}

/// One step: the parent down or not, the child's result, a downtime, an acknowledgement.
type Step = (bool, CheckState, bool, bool);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the results, parent states, downtimes and acknowledgements: no fix is asked
    /// for and nothing is told of a check while its parent is down; and a child that still
    /// fails after its parent recovered is told exactly once (unless a downtime or an
    /// acknowledgement holds it back), a settle time later.
    #[test]
    fn nothing_is_fixed_or_told_behind_a_parent_that_is_down(
        steps in prop::collection::vec(
            (prop::bool::weighted(0.4), child_state(), prop::bool::weighted(0.1), prop::bool::weighted(0.05)),
            1..50,
        ),
        tail in 3usize..6,
    ) {
        let deps = [dep("web1", None, "r1/check_ping", None)];
        let mine: Vec<&Dependency> = deps.iter().collect();
        let settle = Settle { settle_ms: 5_000, hold_ms: 60_000 };
        let policy = Policy { retries: 1, flap_changes: 0, ..Policy::default() };
        // The scenario ends with the parent up and the child failing, nothing in the way.
        let mut all: Vec<Step> = steps.clone();
        all.extend(std::iter::repeat_n((false, CheckState::Critical, false, false), tail));
        let mut prev: Option<Check> = None;
        let mut told_since_parent_up = 0;
        for (i, (down, state, quiet, ack)) in all.iter().enumerate() {
            let at = 10_000 * (i as i64 + 1);
            if let Some(p) = prev.as_mut().filter(|p| *ack && p.state != CheckState::Ok) {
                p.acked = true;
            }
            // The parent's latest result came just before the child's.
            let parent_state = ParentState {
                state: if *down { CheckState::Critical } else { CheckState::Ok },
                hard: *down,
                last_run_at: at - 1,
            };
            let parent = |_: &str, _: &str| Some(parent_state);
            let since = prev.as_ref().filter(|p| p.state != CheckState::Ok).map_or(at, |p| p.since);
            let reach = if *state == CheckState::Ok {
                Reach::Reachable
            } else {
                judge(&mine, &parent, since, at, settle)
            };
            let o = Observation {
                state: *state,
                at,
                told: false,
                may_tell: true,
                quiet: *quiet,
                unreachable: matches!(reach, Reach::Unreachable { .. }),
                hold: matches!(reach, Reach::Pending { .. }),
            };
            let n = advance(prev.as_ref(), &o, &policy);
            // monitord fixes only what is reachable, hard and not in a downtime.
            let fixes = n.hard && reach == Reach::Reachable && !quiet;
            if *down && *state != CheckState::Ok {
                prop_assert_eq!(&reach, &Reach::Unreachable { parent: "r1/check_ping".into() });
                prop_assert!(!fixes, "a fix behind a parent that is down");
                prop_assert!(n.event.is_none(), "told behind a parent that is down: {:?}", n.event);
            }
            // Each incident on its own: counted from the parent's recovery or the child's.
            if *down || *state == CheckState::Ok {
                told_since_parent_up = 0;
            } else if matches!(n.event, Some(Event::Problem { .. })) {
                told_since_parent_up += 1;
            }
            prev = Some(Check {
                id: 1,
                host: Some("web1".into()),
                script: "check_http".into(),
                state: n.state,
                hard: n.hard,
                attempts: n.attempts,
                since: n.since,
                last_run_id: None,
                last_run_at: at,
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
            });
        }
        let last = prev.expect("a last state");
        prop_assert!(last.hard, "a child failing behind a parent that is up turns hard");
        if !last.acked {
            // Told exactly once since the parent came back, unless it was told before the
            // parent went down (then not again).
            prop_assert!(last.notified);
            prop_assert!(told_since_parent_up <= 1, "told {told_since_parent_up} times");
        }
    }
}

#[test]
fn redundant_parents_cut_off_only_together_and_each_group_on_its_own() {
    let deps = [
        dep("db1", None, "sw1/check_ping", Some("uplinks")),
        dep("db1", None, "sw2/check_ping", Some("uplinks")),
        dep("db1", Some("check_pg"), "san/check_iscsi", None),
    ];
    let mine: Vec<&Dependency> = deps.iter().collect();
    let settle = Settle::of(5_000);
    let state = |down: &[&str]| {
        let down: Vec<String> = down.iter().map(|s| s.to_string()).collect();
        move |h: &str, _: &str| {
            let is_down = down.iter().any(|d| d == h);
            Some(ParentState {
                state: if is_down {
                    CheckState::Critical
                } else {
                    CheckState::Ok
                },
                hard: is_down,
                last_run_at: 100_000,
            })
        }
    };
    let at = 90_000;
    assert_eq!(
        judge(&mine, &state(&["sw1"]), 0, at, settle),
        Reach::Reachable
    );
    assert_eq!(
        judge(&mine, &state(&["sw1", "sw2"]), 0, at, settle),
        Reach::Unreachable {
            parent: "sw1/check_ping".into()
        }
    );
    assert_eq!(
        judge(&mine, &state(&["san"]), 0, at, settle),
        Reach::Unreachable {
            parent: "san/check_iscsi".into()
        }
    );
    // A parent whose OK is older than the child's failure is not known to be up: its check
    // is asked for, and the child waits, but not past the hold.
    let stale = |h: &str, _: &str| {
        Some(ParentState {
            state: CheckState::Ok,
            hard: false,
            last_run_at: if h == "sw2" { 10 } else { 100_000 },
        })
    };
    let only_sw = [&deps[0], &deps[1]];
    assert_eq!(
        judge(&only_sw, &stale, 50_000, 51_000, settle),
        Reach::Reachable,
        "sw1 is up: the group is up"
    );
    let both_stale = |_: &str, _: &str| {
        Some(ParentState {
            state: CheckState::Ok,
            hard: false,
            last_run_at: 10,
        })
    };
    assert_eq!(
        judge(&only_sw, &both_stale, 50_000, 51_000, settle),
        Reach::Pending {
            parents: vec![
                ("sw1".into(), "check_ping".into()),
                ("sw2".into(), "check_ping".into())
            ]
        }
    );
    assert_eq!(
        judge(&only_sw, &both_stale, 50_000, 50_000 + 60_000, settle),
        Reach::Reachable,
        "the hold ends"
    );
}

fn host(store: &Store, name: &str) {
    store
        .add_host(&NewHost {
            name: name.into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Local),
            ..NewHost::default()
        })
        .expect("host");
}

/// A router back from a hard problem and a host behind it still failing, recorded in one
/// transaction, the host's run a retry: the recheck the router's recovery asks for joins the
/// host's retried job, whichever run the batch records first, and brings it forward to now.
/// Queued while the retry was not yet back in the queue, it made a second job of the same
/// check; joined as it was, it waited for the retry's backoff.
#[test]
fn a_parent_recovering_in_the_batch_that_retries_its_child_queues_the_child_once() {
    use hostler::store::{JobAction, JobState, NewRun, Status};
    let w = Work::new();
    let store = w.store();
    w.script(&store, "c", "ok()");
    // Either order of the two checks in the batch: "a-router" before "web", "zz-router" after.
    for router in ["a-router", "zz-router"] {
        let web = format!("web-{router}");
        host(&store, router);
        host(&store, &web);
        store
            .add_dependency(&NewDependency {
                child_host: web.clone(),
                child_check: Some("c".into()),
                parent_host: router.into(),
                parent_check: "c".into(),
                group: None,
                author: None,
            })
            .expect("dependency");
        let schedule = |h: &str| {
            let id = store
                .add_schedule(&NewSchedule {
                    max_attempts: 3,
                    guard_backoff_ms: 0,
                    next_due: now_ms() - 1_000,
                    ..NewSchedule::every("c", Some(h), 60_000)
                })
                .expect("schedule");
            store.schedule(id).expect("read")
        };
        let (r, h) = (schedule(router), schedule(&web));
        let run = |s: &hostler::store::Schedule, status: Status, job: Option<i64>| NewRun {
            check_name: None,
            job_id: job,
            schedule_id: Some(s.id),
            script: "c".into(),
            script_version: Some(1),
            host: s.host.clone(),
            node: Some("n1".into()),
            status,
            message: format!("said {status}"),
            perfdata: None,
            output: String::new(),
            transcript: String::new(),
            started_at: now_ms() - 5,
            finished_at: now_ms(),
            attempt: 1,
            phase: None,
            notifications: vec![],
        };
        // The router is down (hard at once), the host behind it fails.
        store
            .record_run(&run(&r, Status::Critical, None), JobAction::Keep)
            .expect("router down");
        store
            .record_run(&run(&h, Status::Critical, None), JobAction::Keep)
            .expect("host down");
        for s in [&r, &h] {
            let due = s.next_due.expect("due");
            store
                .fire_schedule(s, due, std::slice::from_ref(&s.host), Some(due + 60_000))
                .expect("fire");
        }
        let jobs = store
            .claim_jobs("n1", 60_000, 10, None, false, 10)
            .expect("claim");
        let job_of = |host: &str| {
            jobs.iter()
                .find(|j| j.host.as_deref() == Some(host))
                .map(|j| j.id)
                .expect("a job for each host")
        };
        let (router_job, web_job) = (job_of(router), job_of(&web));
        let retry_at = now_ms() + 60_000;
        store
            .record_runs(
                &[
                    (
                        run(&h, Status::Critical, Some(web_job)),
                        JobAction::Retry { due_at: retry_at },
                    ),
                    (run(&r, Status::Ok, Some(router_job)), JobAction::Done),
                ],
                &|_| Ok(()),
            )
            .expect("the batch");
        let queued: Vec<_> = store
            .jobs()
            .expect("jobs")
            .into_iter()
            .filter(|j| j.host.as_deref() == Some(web.as_str()) && j.state == JobState::Queued)
            .collect();
        assert_eq!(
            queued.iter().map(|j| j.id).collect::<Vec<_>>(),
            [web_job],
            "{router}: one queued job for the host's check, its own: {queued:?}"
        );
        assert!(
            queued[0].due_at < retry_at - 30_000,
            "{router}: the retry is brought forward, the host checked again at once: {queued:?}"
        );
        assert_eq!(
            store.check(Some(router), "c").expect("router").state,
            CheckState::Ok
        );
    }
}

#[test]
fn a_cycle_is_refused_and_named_and_the_cli_lists_and_removes() {
    let w = Work::new();
    let store = w.store();
    for h in ["r1", "r2", "web1"] {
        host(&store, h);
    }
    let ok = |args: &[&str]| {
        let o = w.run(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    ok(&["depend", "add", "web1", "--on", "r2/check_ping"]);
    ok(&["depend", "add", "r2", "--on", "r1/check_ping"]);
    let o = w.run(&["depend", "add", "r1", "--on", "web1/check_http"]);
    assert_ne!(code(&o), 0);
    let err = stderr(&o);
    assert!(
        err.contains("cycle")
            && err.contains("web1/check_http")
            && err.contains("r2/check_ping")
            && err.contains("r1/check_ping"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let o = w.run(&[
        "depend",
        "add",
        "web1/check_ping",
        "--on",
        "web1/check_ping",
    ]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("itself"), "{}", stderr(&o));
    let o = w.run(&["depend", "add", "nosuch", "--on", "r1/check_ping"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));
    let o = w.run(&["depend", "add", "web1", "--on", "r1"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("HOST/CHECK"), "{}", stderr(&o));
    // A host's own check may stand behind another of its checks (the host-wide dependency
    // never covers the parent itself).
    ok(&["depend", "add", "web1", "--on", "web1/check_ping"]);
    let list: serde_json::Value =
        serde_json::from_str(&ok(&["depend", "list", "--json"])).expect("json");
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(
        list.iter()
            .any(|d| d["child_host"] == "r2" && d["parent_check"] == "check_ping")
    );
    ok(&["depend", "rm", "r2", "--on", "r1/check_ping"]);
    // Without r2 on r1 there is no cycle any more.
    ok(&["depend", "add", "r1", "--on", "web1/check_http"]);
    let o = w.run(&["depend", "rm", "r2", "--on", "r1/check_ping"]);
    assert_ne!(code(&o), 0, "removed twice");
    assert_eq!(store.dependencies().expect("list").len(), 3);
}

#[test]
fn a_downtime_with_children_covers_what_depends_on_it() {
    let w = Work::new();
    let store = w.store();
    for h in ["r1", "web1", "db1"] {
        host(&store, h);
    }
    w.script(&store, "probe", "ok()");
    store
        .add_dependency(&NewDependency {
            child_host: "web1".into(),
            parent_host: "r1".into(),
            parent_check: "probe".into(),
            ..NewDependency::default()
        })
        .expect("depend");
    for h in ["r1", "web1", "db1"] {
        let id = store
            .add_schedule(&NewSchedule::every("probe", Some(h), 60_000))
            .expect("schedule");
        let run = hostler::store::NewRun {
            job_id: None,
            schedule_id: Some(id),
            script: "probe".into(),
            script_version: None,
            host: Some(h.into()),
            node: None,
            status: hostler::store::Status::Critical,
            message: "down".into(),
            perfdata: None,
            output: String::new(),
            transcript: String::new(),
            started_at: now_ms(),
            finished_at: now_ms(),
            attempt: 1,
            phase: None,
            notifications: Vec::new(),
            check_name: None,
        };
        store
            .record_run(&run, hostler::store::JobAction::Keep)
            .expect("record");
    }
    let base = NewDowntime {
        host: Some("r1".into()),
        starts_at: now_ms() - 1000,
        ends_at: now_ms() + 3_600_000,
        reason: "router swap".into(),
        ..NewDowntime::default()
    };
    store.add_downtime(&base).expect("downtime");
    let checks = store.checks().expect("checks");
    let name = |id: i64| {
        checks
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.host.clone())
            .expect("host")
    };
    let covered: Vec<String> = store
        .checks_in_downtime(&checks)
        .expect("covered")
        .into_iter()
        .map(name)
        .collect();
    assert_eq!(covered, ["r1"]);
    assert!(!store.in_downtime(Some("web1"), "probe").expect("read"));
    store
        .add_downtime(&NewDowntime {
            children: true,
            ..base
        })
        .expect("downtime with children");
    let mut covered: Vec<String> = store
        .checks_in_downtime(&checks)
        .expect("covered")
        .into_iter()
        .map(name)
        .collect();
    covered.sort();
    assert_eq!(covered, ["r1", "web1"], "db1 does not depend on r1");
    assert!(store.in_downtime(Some("web1"), "probe").expect("read"));
    assert!(!store.in_downtime(Some("db1"), "probe").expect("read"));
    // The router is down: web1 shows as unreachable behind it, db1 does not.
    let web1 = checks
        .iter()
        .find(|c| c.host.as_deref() == Some("web1"))
        .expect("web1");
    assert!(web1.unreachable, "{web1:?}");
    assert_eq!(web1.parent.as_deref(), Some("r1/probe"));
    assert!(
        !checks
            .iter()
            .find(|c| c.host.as_deref() == Some("db1"))
            .expect("db1")
            .unreachable
    );
}

/// A TCP port that accepts (and drops) connections until it is closed.
struct Port {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Port {
    fn open(port: u16) -> Port {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => drop(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Port {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener: connections are refused from now on.
    fn close(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.close();
    }
}

/// A router `r1` and `n` hosts behind it, each checked every second by connecting to its own
/// real listener, with a fix that cannot help; the real daemon runs them.
struct Network {
    w: Work,
    store: Arc<Store>,
    router: Port,
    hosts: Vec<Port>,
    daemon: std::process::Child,
}

const TCP: &str = r#"let r = tcp_check("127.0.0.1", arg("port", 0), #{timeout: 1});
if r.ok { ok("port open") } else { critical(`port closed: ${r.error}`) }"#;

impl Network {
    fn start(n: usize, group_of_two: bool) -> Network {
        let w = Work::new();
        std::fs::write(
            w.path("c.toml"),
            "[monitord]\npoll_interval = 0.05\nmax_concurrent = 8\nrecheck_within = 0.5\ndependency_settle = 1.0\n",
        )
        .expect("config");
        let store = w.store();
        w.script(&store, "tcp", TCP);
        w.script(&store, "nudge", "let tried = true;");
        let schedule = |h: &str, port: u16| {
            store
                .add_schedule(&NewSchedule {
                    fix_script: Some("nudge".into()),
                    max_attempts: 1,
                    guard_max_fixes: 100,
                    guard_backoff_ms: 0,
                    args: Some(serde_json::json!({ "port": port }).to_string()),
                    ..NewSchedule::every("tcp", Some(h), 1_000)
                })
                .expect("schedule");
        };
        let router = Port::open(0);
        host(&store, "r1");
        schedule("r1", router.port);
        let mut hosts = Vec::new();
        if group_of_two {
            host(&store, "r2");
        }
        for i in 0..n {
            let name = format!("h{i:02}");
            host(&store, &name);
            let p = Port::open(0);
            schedule(&name, p.port);
            let parent = |ph: &str| NewDependency {
                child_host: name.clone(),
                parent_host: ph.into(),
                parent_check: "tcp".into(),
                group: group_of_two.then(|| "uplinks".to_string()),
                ..NewDependency::default()
            };
            store.add_dependency(&parent("r1")).expect("depend");
            if group_of_two {
                store.add_dependency(&parent("r2")).expect("depend");
            }
            hosts.push(p);
        }
        if group_of_two {
            // r2 stays up on a port of its own (no fix needed: it never fails).
            let r2 = Port::open(0);
            store
                .add_schedule(&NewSchedule {
                    args: Some(serde_json::json!({ "port": r2.port }).to_string()),
                    ..NewSchedule::every("tcp", Some("r2"), 1_000)
                })
                .expect("schedule");
            hosts.push(r2);
        }
        let log = std::fs::File::create(w.path("serve.log")).expect("log");
        let daemon = w
            .cmd(&[
                "--config",
                "c.toml",
                "serve",
                "--node",
                "n1",
                "--no-demo",
                "--no-web",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("serve");
        let net = Network {
            w,
            store,
            router,
            hosts,
            daemon,
        };
        let expected = n + 1 + usize::from(group_of_two);
        assert!(
            wait_for(Duration::from_secs(30), || {
                let c = net.store.checks().expect("checks");
                c.len() == expected && c.iter().all(|c| c.state == CheckState::Ok)
            }),
            "not all OK at first: {:?}\n{}",
            net.store.checks(),
            net.log()
        );
        net
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.w.path("serve.log")).unwrap_or_default()
    }

    /// `hostler status --json`, from the real CLI.
    fn status(&self) -> Vec<serde_json::Value> {
        let o = self.w.run(&["status", "--json"]);
        serde_json::from_str::<serde_json::Value>(&stdout(&o))
            .expect("status json")
            .as_array()
            .cloned()
            .expect("array")
    }

    fn unreachable_behind_r1(&self) -> usize {
        self.status()
            .iter()
            .filter(|c| c["unreachable"] == true && c["parent"] == "r1/tcp")
            .count()
    }

    /// Notifications about a host, and fix runs on it.
    fn told(&self, host: &str) -> Vec<String> {
        self.store
            .notifications(1000)
            .expect("notifications")
            .into_iter()
            .filter(|n| n.host.as_deref() == Some(host))
            .map(|n| n.subject)
            .collect()
    }

    fn fixes(&self, host: &str) -> usize {
        self.store
            .runs(&RunFilter {
                limit: 100_000,
                summary: false,
                host: Some(host.into()),
                ..RunFilter::default()
            })
            .expect("runs")
            .iter()
            .filter(|r| r.phase == Some(RunPhase::Fix))
            .count()
    }

    fn children_told_or_fixed(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..self.hosts.len() {
            let h = format!("h{i:02}");
            out.extend(self.told(&h).into_iter().map(|s| format!("{h}: told {s}")));
            if self.fixes(&h) > 0 {
                out.push(format!("{h}: {} fixes", self.fixes(&h)));
            }
        }
        out
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.daemon.wait();
    }
}

/// Closes the router and the hosts (the hosts `lead` earlier), checks the outcome while they
/// are down, opens them again, and checks the outcome after.
fn storm(lead: Duration) {
    let mut net = Network::start(20, false);
    let ports: Vec<u16> = net.hosts.iter().map(|p| p.port).collect();
    for p in &mut net.hosts {
        p.close();
    }
    std::thread::sleep(lead);
    let router_port = net.router.port;
    net.router.close();
    assert!(
        wait_for(Duration::from_secs(30), || net.unreachable_behind_r1()
            == 20),
        "not all 20 unreachable: {:?}\n{}",
        net.status(),
        net.log()
    );
    // Past the settle time and a few rounds of checks, the 20 stay cut off.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(net.unreachable_behind_r1(), 20, "{:?}", net.status());
    let r1 = net.status();
    let r1 = r1.iter().find(|c| c["host"] == "r1").expect("r1");
    assert_eq!(r1["state"], "critical");
    assert_eq!(r1["hard"], true);
    assert!(
        net.children_told_or_fixed().is_empty(),
        "the hosts behind the router were fixed or told: {:?}",
        net.children_told_or_fixed()
    );
    assert!(net.fixes("r1") > 0, "the router's own fix runs");
    let problem = net.told("r1");
    assert!(
        problem.iter().any(|s| s.contains("r1: tcp is CRITICAL")),
        "the router's problem is told: {problem:?}"
    );
    // All come back: one recovery (the router's), nothing about the 20.
    net.router = Port::open(router_port);
    net.hosts = ports.into_iter().map(Port::open).collect();
    assert!(
        wait_for(Duration::from_secs(30), || net
            .store
            .checks()
            .expect("checks")
            .iter()
            .all(|c| c.state == CheckState::Ok)),
        "not all OK again: {:?}\n{}",
        net.store.checks(),
        net.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let told = net.told("r1");
    assert_eq!(
        told.iter().filter(|s| s.contains("OK again")).count(),
        1,
        "{told:?}"
    );
    assert!(
        net.children_told_or_fixed().is_empty(),
        "{:?}",
        net.children_told_or_fixed()
    );
}

#[test]
fn a_router_and_twenty_hosts_down_together_tell_one_problem_and_fix_none_behind_it() {
    storm(Duration::ZERO);
}

#[test]
fn the_hosts_failing_a_second_before_their_router_is_the_same_outcome() {
    storm(Duration::from_secs(1));
}

#[test]
fn a_host_with_one_of_two_redundant_uplinks_up_is_fixed_and_told() {
    let mut net = Network::start(1, true);
    net.router.close();
    net.hosts[0].close();
    assert!(
        wait_for(Duration::from_secs(30), || !net.told("h00").is_empty()
            && net.fixes("h00") > 0),
        "h00 behind a live uplink was not fixed and told: {:?}\n{}",
        net.status(),
        net.log()
    );
    let h00 = net.status();
    let h00 = h00.iter().find(|c| c["host"] == "h00").expect("h00");
    assert_eq!(h00["unreachable"], false, "{h00}");
    assert!(
        net.told("h00")[0].contains("did not fix it"),
        "{:?}",
        net.told("h00")
    );
}
