//! Remote sessions against real peers: OpenSSH sshd, busybox telnetd with /bin/login, and a
//! tiny_http server; plus hostile peers (silent, garbage) on raw sockets. See peers.rs.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostler::config::TrustNew;
use hostler::script::{Remote, RunRequest, Runner};
use hostler::session::{MASK, Pool};
use hostler::store::{Method, NewHost, NewRun, Secret, Status, Store};

use crate::peers::{PASSWORD, Sshd, Telnetd, USER, free_port};
use crate::util::{Work, code, stderr, stdout};

/// A password for hosts whose login never gets that far.
const UNUSED_PW: &str = "not-used-pw-1";

const LOGIN_HELLO: &str = r#"
import "loginlib" as l;
let s = l::login(host);
ok(s.cmd("echo hello from $(id -un)"))
"#;

/// A host on loopback for the test account; override fields with `..new_host(...)`.
fn new_host(name: &str, method: Method, port: u16, secret: Option<&str>) -> NewHost {
    NewHost {
        name: name.into(),
        address: "127.0.0.1".into(),
        port: Some(port),
        method: Some(method),
        username: Some(USER.into()),
        secret: secret.map(Secret::new),
        tags: vec!["peers".into()],
        ..NewHost::default()
    }
}

fn host(store: &Store, name: &str, method: Method, port: u16, secret: Option<&str>) {
    store
        .add_host(&new_host(name, method, port, secret))
        .expect("add host");
}

fn remote(idle: Duration, trust_new: TrustNew) -> Arc<Remote> {
    Arc::new(Remote {
        pool: Pool::new(idle, Duration::from_secs(3600)),
        trust_new,
        connect_timeout: Duration::from_secs(5),
        health_timeout: Duration::from_secs(5),
    })
}

fn env(w: &Work, remote: Arc<Remote>) -> Runner {
    let mut e = w.env(&["sh"], None);
    e.remote = remote;
    e
}

fn run(env: &Runner, script: &str, host: &str) -> NewRun {
    let run = env.execute(
        &RunRequest {
            script: script.into(),
            host: Some(host.into()),
            timeout: Some(Duration::from_secs(60)),
            attempt: 1,
            ..RunRequest::default()
        },
        None,
    );
    env.store
        .record_run(&run, hostler::store::JobAction::Keep)
        .expect("record");
    run
}

#[test]
fn ssh_password_login_runs_a_command_and_pins_the_host_key() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    let store = w.store();
    host(&store, "s1", Method::Ssh, sshd.port, Some(PASSWORD));
    w.script(&store, "up", LOGIN_HELLO);
    let env = env(&w, remote(Duration::ZERO, TrustNew::Accept));
    let r = run(&env, "up", "s1");
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert_eq!(r.message, format!("hello from {USER}"));
    let keys = store.host_keys("s1").expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key_type, "ssh-ed25519");
    assert_eq!(keys[0].fingerprint, sshd.fingerprint());
    assert!(!r.transcript.contains(PASSWORD));
    assert!(
        sshd.log().contains("Accepted password for hostlertest"),
        "{}",
        sshd.log()
    );
}

#[test]
fn ssh_keyboard_interactive_answers_the_password_prompt() {
    let Some(sshd) = Sshd::start(&["PasswordAuthentication=no"]) else {
        return;
    };
    let w = Work::new();
    let store = w.store();
    host(&store, "s1", Method::Ssh, sshd.port, Some(PASSWORD));
    w.script(&store, "up", LOGIN_HELLO);
    let r = run(
        &env(&w, remote(Duration::ZERO, TrustNew::Accept)),
        "up",
        "s1",
    );
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert!(
        sshd.log()
            .contains("Accepted keyboard-interactive/pam for hostlertest"),
        "{}",
        sshd.log()
    );
}

#[test]
fn ssh_key_with_a_passphrase_and_exec_without_a_shell() {
    let Some(sshd) = Sshd::start(&[
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
    ]) else {
        return;
    };
    let key = sshd.client_key("id_test", "key-pass-9");
    let w = Work::new();
    let store = w.store();
    store
        .add_host(&NewHost {
            key_path: Some(key.display().to_string()),
            ..new_host("k1", Method::Ssh, sshd.port, Some("key-pass-9"))
        })
        .expect("host");
    w.script(
        &store,
        "ex",
        r#"let s = connect(host);
           let r = s.exec("echo out; echo err >&2; exit 3");
           ok(`${r.code}|${r.stdout}|${r.stderr}`)"#,
    );
    let r = run(
        &env(&w, remote(Duration::ZERO, TrustNew::Accept)),
        "ex",
        "k1",
    );
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert_eq!(r.message, "3|out\n|err\n");
    assert!(
        sshd.log().contains("Accepted publickey for hostlertest"),
        "{}",
        sshd.log()
    );
}

#[test]
fn ssh_agent_login_through_the_cli() {
    let Some(sshd) = Sshd::start(&[
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
    ]) else {
        return;
    };
    let key = sshd.client_key("id_agent", "");
    let w = Work::new();
    let sock = w.path("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent");
    assert!(crate::util::wait_for(Duration::from_secs(5), || sock.exists()));
    let added = std::process::Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("ssh-add");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let port = sshd.port.to_string();
    let o = w.run(&["init"]);
    assert_eq!(code(&o), 0);
    let o = w.run(&[
        "host",
        "add",
        "a1",
        "--address",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        USER,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::fs::write(w.path("up.rhai"), LOGIN_HELLO).expect("write");
    assert_eq!(code(&w.run(&["script", "add", "up", "up.rhai"])), 0);
    let o = w
        .cmd(&["run", "up", "--host", "a1"])
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("run");
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("OK: hello from {USER}"));
}

#[test]
fn a_changed_host_key_fails_hard_until_host_trust_repins_it() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    let store = w.store();
    host(&store, "s1", Method::Ssh, sshd.port, Some(PASSWORD));
    w.script(&store, "up", LOGIN_HELLO);
    let old = "SHA256:0ldK3yF1ngerpr1ntTh4tW4sPinn3dB3f0reXXXXXX";
    store
        .pin_host_key("s1", "ssh-ed25519", "AAAAold", old, false)
        .expect("pin");
    let env = env(&w, remote(Duration::ZERO, TrustNew::Accept));
    let r = run(&env, "up", "s1");
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("HOST KEY CHANGED"), "{}", r.message);
    assert!(r.message.contains(old), "{}", r.message);
    assert!(r.message.contains(&sshd.fingerprint()), "{}", r.message);
    assert!(r.message.contains("hostler host trust s1"), "{}", r.message);
    // No password was sent to the impostor.
    assert!(!sshd.log().contains("Accepted"), "{}", sshd.log());

    // Not on a terminal and unconfirmed: nothing is pinned, and it says how to confirm.
    let o = w.run(&["host", "trust", "s1"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("--fingerprint"), "{}", stderr(&o));
    let o = w.run(&["host", "trust", "s1", "--fingerprint", "SHA256:wrong"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("nothing pinned"), "{}", stderr(&o));
    assert_eq!(store.host_keys("s1").expect("keys")[0].fingerprint, old);
    let o = w.run(&["host", "trust", "s1", "--fingerprint", &sshd.fingerprint()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(&sshd.fingerprint()), "{}", stdout(&o));
    assert!(stdout(&o).contains(old), "{}", stdout(&o));
    let r = run(&env, "up", "s1");
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    let shown = stdout(&w.run(&["host", "show", "s1"]));
    assert!(shown.contains(&sshd.fingerprint()), "{shown}");
}

#[test]
fn trust_new_reject_refuses_an_unpinned_key() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    let store = w.store();
    host(&store, "s1", Method::Ssh, sshd.port, Some(PASSWORD));
    w.script(&store, "up", LOGIN_HELLO);
    let r = run(
        &env(&w, remote(Duration::ZERO, TrustNew::Reject)),
        "up",
        "s1",
    );
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("not pinned"), "{}", r.message);
    assert!(r.message.contains(&sshd.fingerprint()), "{}", r.message);
    assert!(store.host_keys("s1").expect("keys").is_empty());
}

#[test]
fn a_wrong_ssh_password_is_a_clear_recorded_error() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    let store = w.store();
    host(
        &store,
        "s1",
        Method::Ssh,
        sshd.port,
        Some("not-the-password"),
    );
    w.script(&store, "up", LOGIN_HELLO);
    let r = run(
        &env(&w, remote(Duration::ZERO, TrustNew::Accept)),
        "up",
        "s1",
    );
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("login failed"), "{}", r.message);
    assert!(!r.message.contains("not-the-password"), "{}", r.message);
    let runs = store
        .runs(&hostler::store::RunFilter {
            limit: 10,
            summary: false,
            ..Default::default()
        })
        .expect("runs");
    assert_eq!(runs.len(), 1);
}

#[test]
fn telnet_login_through_busybox_and_login_masks_the_password() {
    let Some(t) = Telnetd::start() else { return };
    let w = Work::new();
    let store = w.store();
    host(&store, "t1", Method::Telnet, t.port, Some(PASSWORD));
    w.script(&store, "up", LOGIN_HELLO);
    let r = run(
        &env(&w, remote(Duration::ZERO, TrustNew::Accept)),
        "up",
        "t1",
    );
    assert_eq!(r.status, Status::Ok, "{} / {}", r.message, r.transcript);
    assert_eq!(r.message, format!("hello from {USER}"));
    assert!(!r.transcript.contains(PASSWORD), "{}", r.transcript);
    assert!(r.transcript.contains(MASK), "{}", r.transcript);
    assert!(r.transcript.contains("login:"), "{}", r.transcript);
}

#[test]
fn a_wrong_telnet_password_is_refused_by_name() {
    let Some(t) = Telnetd::start() else { return };
    let w = Work::new();
    let store = w.store();
    host(&store, "t1", Method::Telnet, t.port, Some("wrong-pw-1"));
    w.script(&store, "up", LOGIN_HELLO);
    let r = run(
        &env(&w, remote(Duration::ZERO, TrustNew::Accept)),
        "up",
        "t1",
    );
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("was refused"), "{}", r.message);
    assert!(r.message.contains("Login incorrect"), "{}", r.message);
    assert!(!r.transcript.contains("wrong-pw-1"), "{}", r.transcript);
}

#[test]
fn credentials_never_reach_output_or_messages() {
    let w = Work::new();
    let store = w.store();
    host(&store, "t1", Method::Telnet, 1, Some("sekrit-42"));
    w.script(
        &store,
        "leak",
        r#"let c = credentials(host); print(`pw=${c.password}`); notify("s", `${c.password}`);
           critical(`user ${c.user} pw ${c.password}`)"#,
    );
    let r = run(
        &env(&w, remote(Duration::ZERO, TrustNew::Accept)),
        "leak",
        "t1",
    );
    assert_eq!(r.status, Status::Critical);
    assert_eq!(r.message, format!("user {USER} pw {MASK}"));
    assert_eq!(r.output, format!("pw={MASK}\n"));
    assert_eq!(r.notifications.len(), 1);
    assert!(r.notifications.iter().all(|n| !n.body.contains("sekrit")));
}

#[test]
fn sessions_are_reused_across_runs_checked_and_dropped_when_idle_or_opted_out() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    let store = w.store();
    host(&store, "s1", Method::Ssh, sshd.port, Some(PASSWORD));
    w.script(
        &store,
        "reuse",
        r#"import "loginlib" as l; let s = l::login(host); let pid = s.cmd("echo $$"); ok(`${s.reused} ${pid}`)"#,
    );
    let env = env(&w, remote(Duration::from_secs(60), TrustNew::Accept));
    let a = run(&env, "reuse", "s1");
    let b = run(&env, "reuse", "s1");
    assert!(a.message.starts_with("false "), "{}", a.message);
    assert!(b.message.starts_with("true "), "{}", b.message);
    // The same shell process answered both runs.
    assert_eq!(a.message[6..], b.message[5..]);
    assert_eq!(
        sshd.log().matches("Accepted password").count(),
        1,
        "{}",
        sshd.log()
    );

    // A session whose shell exited fails the health check: a fresh login replaces it.
    w.script(
        &store,
        "quit",
        r#"import "loginlib" as l; let s = l::login(host); s.write("exit\n"); ok()"#,
    );
    run(&env, "quit", "s1");
    let c = run(&env, "reuse", "s1");
    assert_eq!(c.status, Status::Ok, "{}", c.message);
    assert!(c.message.starts_with("false "), "{}", c.message);

    // A run that left a command running (a wait timed out) never pools its session.
    w.script(
        &store,
        "slow",
        r#"import "loginlib" as l; let s = l::login(host); try { s.cmd("sleep 3", 0.2) } catch {} ok()"#,
    );
    run(&env, "slow", "s1");
    assert!(run(&env, "reuse", "s1").message.starts_with("false "));

    // Idle past the timeout: closed, not reused.
    let short = self::env(&w, remote(Duration::from_millis(200), TrustNew::Accept));
    run(&short, "reuse", "s1");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(short.remote.pool.reap(), 1);
    assert!(run(&short, "reuse", "s1").message.starts_with("false "));

    // Used often but past its lifetime: closed, not reused.
    let aged = self::env(
        &w,
        Arc::new(Remote {
            // Long enough for two runs on a loaded 2-core machine, short enough to wait out.
            pool: Pool::new(Duration::from_secs(60), Duration::from_secs(3)),
            ..Remote::default()
        }),
    );
    assert!(run(&aged, "reuse", "s1").message.starts_with("false "));
    assert!(run(&aged, "reuse", "s1").message.starts_with("true "));
    std::thread::sleep(Duration::from_millis(3100));
    assert!(run(&aged, "reuse", "s1").message.starts_with("false "));

    // A host that opts out never reuses.
    store
        .add_host(&NewHost {
            no_keep_session: true,
            ..new_host("s2", Method::Ssh, sshd.port, Some(PASSWORD))
        })
        .expect("host");
    run(&env, "reuse", "s2");
    assert!(run(&env, "reuse", "s2").message.starts_with("false "));
}

/// A peer that accepts and then says nothing (or `greeting`, then nothing).
fn silent_peer(greeting: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let _ = s.write_all(greeting);
            std::thread::sleep(Duration::from_secs(4));
        }
    });
    (port, h)
}

#[test]
fn refused_silent_and_garbage_peers_give_clear_errors_in_time() {
    let w = Work::new();
    let store = w.store();
    let short = Arc::new(Remote {
        connect_timeout: Duration::from_secs(1),
        ..Remote::default()
    });
    let env = env(&w, short);
    w.script(&store, "up", LOGIN_HELLO);
    w.script(
        &store,
        "prompt",
        r#"let s = connect(host); s.expect(["login:"], 1); ok()"#,
    );

    // Refused: nothing listens on port 1 (a free port could be taken by a parallel test).
    host(&store, "refused", Method::Ssh, 1, Some(UNUSED_PW));
    let t = Instant::now();
    let r = run(&env, "up", "refused");
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("refused"), "{}", r.message);
    assert!(t.elapsed() < Duration::from_secs(3));

    // An SSH peer that never sends its banner: the handshake times out.
    let (port, h) = silent_peer(b"");
    host(&store, "silent", Method::Ssh, port, Some(UNUSED_PW));
    let t = Instant::now();
    let r = run(&env, "up", "silent");
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("handshake"), "{}", r.message);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    h.join().expect("peer");

    // A telnet peer whose login prompt never comes: the timeout shows the last text.
    let (port, h) = silent_peer(b"\xff\xfb\x01Welcome to the box\r\n");
    host(&store, "noprompt", Method::Telnet, port, Some(UNUSED_PW));
    let r = run(&env, "prompt", "noprompt");
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("timed out"), "{}", r.message);
    assert!(r.message.contains("Welcome to the box"), "{}", r.message);
    h.join().expect("peer");

    // Binary garbage with broken telnet sequences, then the peer hangs up.
    let (port, h) = silent_peer(b"\x00\xff\xff\xfe\x01\x80\x81\xff\xfa\x18\x01\xff\x07zz\xff\xfa");
    host(&store, "garbage", Method::Telnet, port, Some(UNUSED_PW));
    let r = run(&env, "prompt", "garbage");
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message.contains("timed out") || r.message.contains("closed"),
        "{}",
        r.message
    );
    h.join().expect("peer");
}

#[test]
fn http_sessions_read_bodies_through_the_expect_api() {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("http server");
    let port = server.server_addr().to_ip().expect("ip").port();
    let handle = std::thread::spawn(move || {
        for _ in 0..3 {
            let Ok(mut req) = server.recv() else { return };
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let text = format!(
                "method={} url={} token={} body={body}\nline two\nEND\n",
                req.method(),
                req.url(),
                req.headers()
                    .iter()
                    .find(|h| h.field.equiv("x-token"))
                    .map_or("-".to_string(), |h| h.value.to_string())
            );
            let resp = tiny_http::Response::from_string(text)
                .with_status_code(201)
                .with_header(tiny_http::Header::from_bytes("X-Answer", "42").expect("header"));
            let _ = req.respond(resp);
        }
    });
    let w = Work::new();
    let store = w.store();
    host(&store, "web", Method::Http, port, None);
    w.script(
        &store,
        "post",
        &format!(
            r#"let s = http("http://127.0.0.1:{port}/submit?x=1", #{{method: "POST", headers: #{{"X-Token": "t0k"}}, body: "hello"}});
               let first = s.read_until("\n");
               let rest = s.read_all();
               ok(`${{s.status}} ${{s.headers["x-answer"]}} ${{first}}${{rest}}`)"#
        ),
    );
    w.script(
        &store,
        "get",
        &format!(
            r#"let r = http_get("http://127.0.0.1:{port}/health");
               if r.elapsed_ms < 0 {{ throw "no time" }}
               ok(`${{r.status}} ${{r.body}}`)"#
        ),
    );
    w.script(
        &store,
        "host",
        r#"let s = connect(host); s.read_until("END"); ok(`${s.status}`)"#,
    );
    let env = env(&w, remote(Duration::ZERO, TrustNew::Accept));
    let r = run(&env, "post", "web");
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert_eq!(
        r.message,
        "201 42 method=POST url=/submit?x=1 token=t0k body=hello\nline two\nEND\n"
    );
    let r = run(&env, "get", "web");
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert!(
        r.message.starts_with("201 method=GET url=/health"),
        "{}",
        r.message
    );
    let r = run(&env, "host", "web");
    assert_eq!(r.message, "201");
    handle.join().expect("server");
}

#[test]
fn fan_out_prints_a_line_per_host_and_exits_with_the_worst_status() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    let port = sshd.port.to_string();
    for (name, pw) in [
        ("f1", PASSWORD),
        ("f2", PASSWORD),
        ("f3", PASSWORD),
        ("f4", "wrong"),
    ] {
        let o = w.run_with_input(
            &[
                "host",
                "add",
                name,
                "--address",
                "127.0.0.1",
                "--port",
                &port,
                "--user",
                USER,
                "--tag",
                "fan",
                "--password-stdin",
            ],
            &format!("{pw}\n"),
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    std::fs::write(
        w.path("check.rhai"),
        r#"import "loginlib" as l; let s = l::login(host);
           let n = s.cmd("echo $((1+1))");
           if host.name == "f3" { critical(`got ${n}`) } else { ok(`got ${n}`) }"#,
    )
    .expect("write");
    assert_eq!(code(&w.run(&["script", "add", "check", "check.rhai"])), 0);

    let o = w.run(&["run", "check", "--tag", "fan", "--parallel", "4"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 2, "{out}{}", stderr(&o));
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.lines().any(|l| l.starts_with("f1 OK: got 2")), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("f3 CRITICAL: got 2")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("f4 UNKNOWN (error)") && l.contains("login failed")),
        "{out}"
    );
    assert!(stderr(&o).contains("4 runs on 4 hosts"), "{}", stderr(&o));

    let o = w.run(&[
        "run", "check", "--host", "f1", "--host", "f2", "--json", "--repeat", "2",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let records: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(records.len(), 4);
    assert!(
        records
            .iter()
            .all(|r| r["status"] == "ok" && r["id"].as_i64() > Some(0))
    );

    let o = w.run(&["run", "check", "--tag", "nosuchtag"]);
    assert_ne!(code(&o), 0);
    assert!(
        stdout(&o).contains("no enabled host has the tag")
            || stderr(&o).contains("no enabled host has the tag")
    );
}

#[test]
fn bundled_checks_run_on_an_ssh_host_through_loginlib() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    let store = w.store();
    // Thresholds far above what a busy 2-core test machine reaches: the status must be OK.
    let vars: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"warn": "1000", "crit": "2000"}"#).expect("vars");
    store
        .add_host(&NewHost {
            vars,
            ..new_host("s1", Method::Ssh, sshd.port, Some(PASSWORD))
        })
        .expect("host");
    // Shared sessions: the second check reuses the first one's login.
    let env = env(&w, remote(Duration::from_secs(60), TrustNew::Accept));
    let load = run(&env, "check_load", "s1");
    assert_eq!(load.status, Status::Ok, "{}", load.message);
    assert!(
        load.perfdata
            .as_deref()
            .is_some_and(|p| p.starts_with("load1=")),
        "{:?}",
        load.perfdata
    );
    let disk = run(&env, "check_disk", "s1");
    assert!(
        matches!(disk.status, Status::Ok | Status::Warning | Status::Critical),
        "{}",
        disk.message
    );
    assert!(
        disk.perfdata
            .as_deref()
            .is_some_and(|p| p.starts_with("'/'=")),
        "{:?}",
        disk.perfdata
    );
    assert_eq!(
        sshd.log().matches("Accepted password").count(),
        1,
        "{}",
        sshd.log()
    );
}

#[test]
fn https_verifies_certificates_against_the_system_store() {
    let w = Work::new();
    let Some(server) = crate::peers::TlsServer::start(w.dir.path(), 1) else {
        return;
    };
    let (port, cert) = (server.port, server.cert.clone());
    assert_eq!(code(&w.run(&["init"])), 0);
    std::fs::write(
        w.path("tls.rhai"),
        format!(
            r#"let r = http_get("https://localhost:{port}/");
               if r.status == 0 {{ unknown(r.error) }} else {{ ok(`status ${{r.status}}`) }}"#
        ),
    )
    .expect("write");
    assert_eq!(code(&w.run(&["script", "add", "tls", "tls.rhai"])), 0);
    // A self-signed certificate nobody trusts: refused, and the reason named.
    let o = w
        .cmd(&["run", "tls"])
        .env("SSL_CERT_FILE", "/nonexistent")
        .output()
        .expect("run");
    let refused = stdout(&o);
    // Trusted through the CA store OpenSSL reads (SSL_CERT_FILE here): the request succeeds.
    let o2 = w
        .cmd(&["run", "tls"])
        .env("SSL_CERT_FILE", &cert)
        .output()
        .expect("run");
    drop(server);
    assert_eq!(code(&o), 3, "{refused}");
    assert!(refused.contains("certificate verify failed"), "{refused}");
    assert_eq!(code(&o2), 0, "{}{}", stdout(&o2), stderr(&o2));
    assert_eq!(stdout(&o2).trim(), "OK: status 200");
}

#[test]
fn an_edited_loginlib_row_replaces_the_bundled_one() {
    let w = Work::new();
    let store = w.store();
    host(&store, "t1", Method::Telnet, 1, Some("pw"));
    w.script(&store, "up", LOGIN_HELLO);
    // The operator's own loginlib: import takes the database row, not the bundled script.
    w.script(
        &store,
        "loginlib",
        r#"fn login(host) { throw `site loginlib refuses ${host.name}` }"#,
    );
    let r = run(
        &env(&w, remote(Duration::ZERO, TrustNew::Accept)),
        "up",
        "t1",
    );
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message.contains("site loginlib refuses t1"),
        "{}",
        r.message
    );
}

#[test]
fn fan_out_shows_progress_on_a_terminal_and_not_in_a_pipe() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    for name in ["p1", "p2", "p3"] {
        let o = w.run(&[
            "host",
            "add",
            name,
            "--address",
            "localhost",
            "--method",
            "local",
            "--tag",
            "prog",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    std::fs::write(
        w.path("nap.rhai"),
        r#"sleep(0.3); ok(`rested on ${host.name}`)"#,
    )
    .expect("write");
    assert_eq!(code(&w.run(&["script", "add", "nap", "nap.rhai"])), 0);

    // In a pipe: the lines and the summary, no progress line.
    let o = w.run(&["run", "nap", "--tag", "prog", "--parallel", "1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 3);
    assert!(!stderr(&o).contains("[1/3]"), "{}", stderr(&o));

    // On a terminal (a real pty): a progress line that counts up.
    let p = hostler::session::LocalProcess::spawn(
        std::path::Path::new("/usr/bin/env"),
        &[
            format!("HOSTLER_DB={}", w.db()),
            env!("CARGO_BIN_EXE_hostler").to_string(),
            "run".into(),
            "nap".into(),
            "--tag".into(),
            "prog".into(),
            "--parallel".into(),
            "1".into(),
        ],
        true,
    )
    .expect("spawn in a pty");
    let mut s = hostler::session::Session::new(
        1,
        Box::new(p),
        hostler::session::Guard::new(Some(Duration::from_secs(30))),
        None,
    );
    let text = s
        .read_to_end(Some(Duration::from_secs(20)))
        .expect("output");
    assert!(text.contains("[1/3]") && text.contains("[3/3]"), "{text}");
    assert!(text.contains("3 runs on 3 hosts"), "{text}");
    assert!(text.contains("rested on p2"), "{text}");
}

#[test]
fn a_service_that_is_down_is_data_to_http_get_not_an_error() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    let port = free_port();
    std::fs::write(
        w.path("web.rhai"),
        format!(
            r#"let r = http_get("http://127.0.0.1:{port}/");
               if r.status != 200 {{ critical(`down: ${{r.error}}`) }} else {{ ok("up") }}"#
        ),
    )
    .expect("write");
    assert_eq!(code(&w.run(&["script", "add", "web", "web.rhai"])), 0);
    let o = w.run(&["run", "web"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 2, "CRITICAL, not an error: {out}{}", stderr(&o));
    assert!(
        out.starts_with("CRITICAL: down: ") && out.to_lowercase().contains("refused"),
        "{out}"
    );
}

#[test]
fn cmd_and_prompt_syncing_work_on_stock_login_shells() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    let store = w.store();
    let shells = [
        (USER, "dash"),
        (crate::peers::BASH_USER, "bash"),
        (crate::peers::ASH_USER, "busybox ash"),
        (crate::peers::ZSH_USER, "zsh"),
    ];
    for (user, _) in shells {
        store
            .add_host(&NewHost {
                username: Some(user.into()),
                ..new_host(user, Method::Ssh, sshd.port, Some(PASSWORD))
            })
            .expect("host");
    }
    w.script(
        &store,
        "shells",
        r#"import "loginlib" as l;
           let s = l::login(host);
           let a = s.cmd("echo one; echo two");
           let b = s.cmd("printf 'no newline'");
           let c = s.cmd("false; echo rc=$?");
           let d = s.cmd("echo $TERM");
           ok(`${a}|${b}|${c}|${d}`)"#,
    );
    let env = env(&w, remote(Duration::from_secs(60), TrustNew::Accept));
    for (user, shell) in shells {
        let r = run(&env, "shells", user);
        assert_eq!(
            r.status,
            Status::Ok,
            "{shell}: {}\n{}",
            r.message,
            r.transcript
        );
        assert_eq!(
            r.message, "one\ntwo|no newline|rc=1|dumb",
            "{shell}: {}",
            r.transcript
        );
        let disk = run(&env, "check_disk", user);
        assert!(
            matches!(disk.status, Status::Ok | Status::Warning | Status::Critical),
            "{shell}: {}\n{}",
            disk.message,
            disk.transcript
        );
    }
}

/// A router-style CLI: its own login dialogue, a `router>` prompt, a few show commands.
const ROUTER: &str = r#"#!/bin/busybox sh
printf 'User Access Verification\r\n\r\nUsername: '
read -r user
printf 'Password: '
stty -echo
read -r pass
stty echo
printf '\r\n'
if [ "$user" != admin ] || [ "$pass" != router-pw ]; then
  printf '%% Login invalid\r\n'
  exit 1
fi
while printf 'router> '; read -r line; do
  case "$line" in
    "show version") printf 'RouterOS 1.0, uptime 5 weeks\r\n' ;;
    "show interfaces") printf 'eth0 up\r\neth1 down\r\n' ;;
    exit) exit 0 ;;
    "") ;;
    *) printf '%% Unknown command: %s\r\n' "$line" ;;
  esac
done
"#;

#[test]
fn cmd_works_on_a_router_cli_behind_a_real_telnetd() {
    use std::os::unix::fs::PermissionsExt;
    let w = Work::new();
    let program = w.path("router.sh");
    std::fs::write(&program, ROUTER).expect("router");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let Some(telnetd) = Telnetd::start_program(&program) else {
        return;
    };
    let store = w.store();
    store
        .add_host(&NewHost {
            username: Some("admin".into()),
            prompt: Some(r"router> $".into()),
            ..new_host("r1", Method::Telnet, telnetd.port, Some("router-pw"))
        })
        .expect("host");
    w.script(
        &store,
        "router",
        r#"import "loginlib" as l;
           let s = l::login(host);
           let v = s.cmd("show version");
           let i = s.cmd("show interfaces");
           let bad = s.cmd("reload");
           if !i.contains("eth1 down") { critical(`eth1? ${i}`) }
           ok(`${v}|${i}|${bad}`)"#,
    );
    let env = env(&w, remote(Duration::ZERO, TrustNew::Accept));
    let r = run(&env, "router", "r1");
    assert_eq!(r.status, Status::Ok, "{}\n{}", r.message, r.transcript);
    assert_eq!(
        r.message, "RouterOS 1.0, uptime 5 weeks|eth0 up\neth1 down|% Unknown command: reload",
        "{}",
        r.transcript
    );
    assert!(
        !r.transcript.contains("router-pw"),
        "the password is masked"
    );
}
