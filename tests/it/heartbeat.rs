//! Heartbeats against the real `hostler serve` (the static release binary in CI): a ping, a
//! missed ping turning the check CRITICAL and a late one recovering it, `/fail`, an exit
//! status, a start (the run's duration), an oversized body, a wrong token, a flood on one
//! token, and `hostler exec` of a failing command. Requests are raw HTTP over TCP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hostler::store::{CheckState, Method, NewHost};

use crate::hostile::Daemon;
use crate::util::{Work, code, stderr, stdout, wait_for};

/// One request; the status code and the body.
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    // A refused body may close the connection before all of it is written.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

#[test]
fn heartbeats_pinged_missed_failed_and_run_by_hostler_exec() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "poll_interval = 0.1\n", None);
    let store = w.store();
    store
        .add_host(&NewHost {
            name: "db1".into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Local),
            ..NewHost::default()
        })
        .expect("host");
    let o = w.run(&[
        "heartbeat",
        "add",
        "backup",
        "--host",
        "db1",
        "--every",
        "2s",
        "--grace",
        "1s",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let url = v["url"].as_str().expect("url");
    let token = url.rsplit('/').next().expect("token").to_string();
    assert!(token.len() >= 40, "an unguessable token: {token}");
    let ping = |kind: &str, method: &str, body: &[u8]| {
        request(d.addr, method, &format!("/ping/{token}{kind}"), body)
    };
    let check = || store.check(Some("db1"), "backup").ok();
    // A ping: OK, no login needed.
    assert_eq!(ping("", "GET", b"").0, 200);
    assert_eq!(check().expect("made").state, CheckState::Ok);
    // No ping for every + grace: CRITICAL, told, naming what was expected.
    assert!(
        wait_for(Duration::from_secs(15), || check()
            .is_some_and(|c| c.state == CheckState::Critical)),
        "a missed ping was not recorded: {:?}",
        check()
    );
    let c = check().expect("check");
    assert!(
        c.message.contains("no ping since") && c.message.contains("expected every 2s, grace 1s"),
        "{}",
        c.message
    );
    let told = store.notifications(10).expect("notifications");
    assert!(
        told.iter().any(|n| n.subject == "db1: backup is CRITICAL"),
        "{told:?}"
    );
    // A late ping: recovered, and the recovery told.
    assert_eq!(ping("", "POST", b"backup done: 4 GB").0, 200);
    assert_eq!(check().expect("check").state, CheckState::Ok);
    assert!(
        store
            .notifications(10)
            .expect("notifications")
            .iter()
            .any(|n| n.subject == "db1: backup is OK again")
    );
    // /fail and exit statuses.
    assert_eq!(ping("/fail", "HEAD", b"").0, 200);
    assert_eq!(check().expect("check").state, CheckState::Critical);
    assert_eq!(ping("/0", "GET", b"").0, 200);
    assert_eq!(check().expect("check").state, CheckState::Ok);
    assert_eq!(ping("/3", "GET", b"").0, 200);
    let c = check().expect("check");
    assert_eq!(c.state, CheckState::Critical);
    assert_eq!(c.message, "exit status 3");
    // A start, then the result: the run lasts from the start.
    assert_eq!(ping("/start", "GET", b"").0, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ping("", "POST", b"all good").0, 200);
    let c = check().expect("check");
    assert!(c.message.starts_with("ping after "), "{}", c.message);
    assert!(
        c.perfdata
            .as_deref()
            .is_some_and(|p| p.starts_with("duration=")),
        "{:?}",
        c.perfdata
    );
    let run = store.run(c.last_run_id.expect("run")).expect("run");
    assert_eq!(run.output, "all good");
    assert!(run.finished_at - run.started_at >= 300, "{run:?}");
    // Hostile: an oversized body, a wrong token, a bad kind, another method, a flood.
    let big = vec![b'x'; 101 * 1024];
    assert_eq!(ping("", "POST", &big).0, 413);
    assert_eq!(request(d.addr, "GET", "/ping/hb_nope", b"").0, 404);
    assert_eq!(ping("/sometimes", "GET", b"").0, 404);
    assert_eq!(ping("/256", "GET", b"").0, 404);
    assert_eq!(ping("", "DELETE", b"").0, 405);
    let codes: Vec<u16> = (0..40).map(|_| ping("", "GET", b"").0).collect();
    assert!(codes.contains(&429), "no brake on a flood: {codes:?}");
    assert_eq!(request(d.addr, "GET", "/healthz", b"").0, 200);
    // hostler exec: the start, the exit status and the output, and its own exit status.
    std::thread::sleep(Duration::from_millis(1100));
    let o = w.run(&[
        "exec",
        "backup",
        "--host",
        "db1",
        "--",
        "sh",
        "-c",
        "echo copying; echo disk full >&2; exit 4",
    ]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let c = check().expect("check");
    assert_eq!(c.state, CheckState::Critical);
    assert!(
        c.message.starts_with("exit status 4 after "),
        "{}",
        c.message
    );
    let run = store.run(c.last_run_id.expect("run")).expect("run");
    assert!(
        run.output.contains("copying") && run.output.contains("disk full"),
        "{run:?}"
    );
    // 5 MB of output: the run keeps its last 100 KB.
    let o = w.run(&[
        "exec",
        "backup",
        "--host",
        "db1",
        "--",
        "sh",
        "-c",
        "head -c 5000000 /dev/zero | tr '\\0' x; echo the end",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let c = check().expect("check");
    let run = store.run(c.last_run_id.expect("run")).expect("run");
    assert!(
        run.output.len() <= 100 * 1024 && run.output.ends_with("the end\n"),
        "{} bytes",
        run.output.len()
    );
    let o = w.run(&["exec", "backup", "--host", "db1", "--", "/nonexistent/tool"]);
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    let o = w.run(&["exec", "nosuch", "--", "true"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));
    // Listed without its token; removed, the token stops working.
    let o = w.run(&["heartbeat", "list", "--json"]);
    assert!(
        !stdout(&o).contains(&token),
        "the token is never shown again"
    );
    assert_eq!(
        code(&w.run(&["heartbeat", "rm", "backup", "--host", "db1"])),
        0
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(ping("", "GET", b"").0, 404);
    assert!(d.alive());
}

#[test]
fn a_heartbeat_expected_on_a_cron_expression_is_missed_after_its_grace() {
    let w = Work::new();
    let mut d = Daemon::start(&w, "poll_interval = 0.1\n", None);
    let store = w.store();
    for (args, says) in [
        (
            vec![
                "heartbeat",
                "add",
                "x",
                "--every",
                "1m",
                "--cron",
                "* * * * *",
            ],
            "one of them",
        ),
        (vec!["heartbeat", "add", "x"], "one of them"),
        (
            vec!["heartbeat", "add", "x", "--cron", "61 * * * *"],
            "--cron",
        ),
        (
            vec!["heartbeat", "add", "x y", "--every", "1m"],
            "heartbeat",
        ),
    ] {
        let o = w.run(&args);
        assert_ne!(code(&o), 0, "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert!(store.heartbeats().expect("list").is_empty(), "nothing made");
    // Every second, with a second's grace: missed within a few seconds of no ping.
    let o = w.run(&[
        "heartbeat",
        "add",
        "tick",
        "--cron",
        "* * * * * *",
        "--grace",
        "1s",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        wait_for(Duration::from_secs(15), || store
            .check(None, "tick")
            .is_ok_and(|c| c.state == CheckState::Critical)),
        "the cron heartbeat was never missed"
    );
    let c = store.check(None, "tick").expect("check");
    assert!(
        c.message.contains("expected at cron * * * * * *, grace 1s"),
        "{}",
        c.message
    );
    let o = w.run(&["heartbeat", "list"]);
    assert!(stdout(&o).contains("at cron * * * * * *"), "{}", stdout(&o));
    assert!(d.alive());
}

#[test]
fn a_heartbeat_whose_due_time_cannot_be_told_is_unknown_not_forgotten() {
    let w = Work::new();
    let store = w.store();
    store
        .add_heartbeat(&hostler::store::heartbeats::NewHeartbeat {
            name: "report".into(),
            cron: Some("0 6 * * *".into()),
            ..Default::default()
        })
        .expect("heartbeat");
    // A cron expression that no longer reads (an older binary's syntax, a hand edit).
    store
        .raw("UPDATE heartbeats SET cron = 'every morning'", false)
        .expect("raw");
    let now = hostler::store::now_ms();
    assert_eq!(store.check_heartbeats(now).expect("pass").told, 1);
    let c = store.check(None, "report").expect("check");
    assert_eq!(c.state, CheckState::Unknown);
    assert!(
        c.message.contains("cannot tell when a ping is due"),
        "{}",
        c.message
    );
    // Once, until the next ping.
    assert_eq!(store.check_heartbeats(now + 1000).expect("pass").told, 0);
}

/// `--fix`: a missed ping queues the fix on the heartbeat's host, once per problem; a failure
/// while the problem holds queues nothing more; after a recovery, the next failure does again.
#[test]
fn a_heartbeat_with_a_fix_queues_it_once_per_problem() {
    let w = Work::new();
    let d = Daemon::start(&w, "poll_interval = 0.1\n", None);
    let store = w.store();
    store
        .add_host(&NewHost {
            name: "files1".into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Local),
            ..NewHost::default()
        })
        .expect("host");
    w.script(&store, "restart_sync", r#"ok("sync restarted")"#);
    let o = w.run(&[
        "heartbeat",
        "add",
        "sync",
        "--host",
        "files1",
        "--every",
        "1s",
        "--grace",
        "1s",
        "--fix",
        "nosuchscript",
        "--json",
    ]);
    assert_ne!(code(&o), 0, "a fix that is no script is refused");
    assert!(stderr(&o).contains("nosuchscript"), "{}", stderr(&o));
    let o = w.run(&[
        "heartbeat",
        "add",
        "sync",
        "--host",
        "files1",
        "--every",
        "1s",
        "--grace",
        "1s",
        "--fix",
        "restart_sync",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let token = v["url"]
        .as_str()
        .expect("url")
        .rsplit('/')
        .next()
        .expect("token")
        .to_string();
    let fixes = || {
        store
            .runs(&hostler::store::RunFilter {
                script: Some("restart_sync".into()),
                limit: 50,
                ..Default::default()
            })
            .expect("runs")
            .len()
    };
    // No ping within 2 s: CRITICAL, and the fix runs on files1.
    assert!(
        wait_for(Duration::from_secs(20), || fixes() == 1),
        "{}",
        d.log()
    );
    let run = &store
        .runs(&hostler::store::RunFilter {
            script: Some("restart_sync".into()),
            limit: 1,
            ..Default::default()
        })
        .expect("runs")[0];
    assert_eq!(run.host.as_deref(), Some("files1"));
    assert_eq!(run.message, "sync restarted");
    // A failure while the problem holds queues nothing more.
    assert_eq!(
        request(d.addr, "GET", &format!("/ping/{token}/fail"), b"").0,
        200
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(fixes(), 1);
    // A ping recovers it; the next failure begins a new problem, and its fix.
    assert_eq!(
        request(d.addr, "GET", &format!("/ping/{token}"), b"").0,
        200
    );
    assert_eq!(
        request(d.addr, "GET", &format!("/ping/{token}/3"), b"").0,
        200
    );
    assert!(
        wait_for(Duration::from_secs(20), || fixes() == 2),
        "{}",
        d.log()
    );
}

/// Group commit: pings recorded together are one transaction, in order; a start earlier in the
/// batch gives a later result its duration; each ping's result is its own.
#[test]
fn pings_recorded_together_are_one_transaction_in_order() {
    use hostler::store::heartbeats::{NewHeartbeat, Ping};
    let w = Work::new();
    let store = w.store();
    let mut hs = Vec::new();
    for name in ["a", "b"] {
        store
            .add_heartbeat(&NewHeartbeat {
                name: name.into(),
                every_ms: 60_000,
                ..Default::default()
            })
            .expect("heartbeat");
        hs.push(store.heartbeat(name, None).expect("read"));
    }
    let out = store
        .ping_many(&[
            (hs[0].id, Ping::Start, String::new()),
            (hs[1].id, Ping::Fail, "disk full".into()),
            (hs[0].id, Ping::Exit(0), "done".into()),
            (9_999, Ping::Fail, String::new()),
        ])
        .expect("batch");
    let statuses: Vec<_> = out.iter().map(|p| p.as_ref().map(|p| p.status)).collect();
    assert_eq!(
        statuses,
        vec![
            Some(None),
            Some(Some(hostler::store::Status::Critical)),
            Some(Some(hostler::store::Status::Ok)),
            None
        ],
        "a heartbeat that is gone records nothing, the others record"
    );
    let a = store.check(None, "a").expect("a");
    assert_eq!(a.state, CheckState::Ok);
    assert!(a.message.starts_with("ping after"), "{}", a.message);
    let b = store.check(None, "b").expect("b");
    assert_eq!(b.state, CheckState::Critical);
    assert!(
        store
            .heartbeat("a", None)
            .expect("a")
            .last_ping_at
            .is_some()
    );
    // Quiet OK pings share one row, as a schedule's quiet OK runs do: history does not grow
    // by a row a ping.
    for _ in 0..5 {
        store.ping(&hs[0], Ping::Success, "").expect("ping");
    }
    let runs_of_a = || {
        store
            .runs(&hostler::store::RunFilter {
                check: Some("a".into()),
                limit: 50,
                ..Default::default()
            })
            .expect("runs")
    };
    let runs = runs_of_a();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].repeats, 5, "{runs:?}");
    // A failure gets a row of its own, and so does the recovery after it.
    store.ping(&hs[0], Ping::Fail, "").expect("ping");
    store.ping(&hs[0], Ping::Success, "").expect("ping");
    assert_eq!(runs_of_a().len(), 4);
    // Every result is counted in the totals, a batch's as a single run's.
    let stats = store.run_stats().expect("stats");
    let count = |st: hostler::store::Status| {
        stats
            .by_status
            .iter()
            .find(|c| c.status == st)
            .map_or(0, |c| c.runs)
    };
    assert_eq!(
        (
            count(hostler::store::Status::Ok),
            count(hostler::store::Status::Critical)
        ),
        (7, 2)
    );
}
