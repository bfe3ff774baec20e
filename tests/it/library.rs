//! The bundled library of checks and fixes with arguments: `arg()`, `--arg`/`--fix-arg`/
//! `--name`, the documented arguments on the CLI and the page, and each check and fix against
//! real services here (busybox httpd, openssl s_server, processes, files, ping) and through a
//! real sshd whose account has a stock bash. The README's Monit-style example runs end to end
//! under `hostler serve`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hostler::script::RunRequest;
use hostler::store::{Method, NewHost, Secret, Status};

use crate::peers::{BASH_USER, PASSWORD, Sshd, free_port};
use crate::util::{Work, code, have, stderr, stdout, wait_for};
use crate::webutil::Site;

/// A busybox httpd serving `dir` on a free loopback port, stopped on drop.
struct Httpd {
    child: Child,
    port: u16,
}

impl Httpd {
    fn start(dir: &std::path::Path) -> Option<Httpd> {
        if !have("/bin/busybox", "busybox httpd as a real HTTP server") {
            return None;
        }
        let port = free_port();
        let child = Command::new("/bin/busybox")
            .args(["httpd", "-f", "-p"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-h")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("busybox httpd");
        let h = Httpd { child, port };
        assert!(
            wait_for(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "httpd did not listen"
        );
        Some(h)
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hostler run SCRIPT --arg ...` in `w`: (exit code, the first line).
fn check(w: &Work, script: &str, args: &[&str]) -> (i32, String) {
    check_env(w, script, args, &[])
}

fn check_env(w: &Work, script: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut all = vec!["run", script];
    for a in args {
        all.push("--arg");
        all.push(a);
    }
    let mut cmd = w.cmd(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("hostler run");
    let line = stdout(&o).lines().next().unwrap_or_default().to_string();
    (code(&o), format!("{line}{}", stderr(&o)))
}

fn ready(w: &Work) {
    assert_eq!(code(&w.run(&["init"])), 0);
}

#[test]
fn arg_takes_the_run_then_the_host_vars_then_the_default_in_its_type() {
    let w = Work::new();
    let store = w.store();
    let vars = serde_json::from_str(r#"{"warn": 70, "path": "/var", "crit": 1}"#).expect("vars");
    store
        .add_host(&NewHost {
            name: "h1".into(),
            address: "192.0.2.1".into(),
            method: Some(Method::Local),
            vars,
            ..NewHost::default()
        })
        .expect("host");
    w.script(
        &store,
        "main",
        r#"let a = arg("warn", 80); let b = arg("crit", 90); let c = arg("path", "/");
           let d = arg("missing"); let e = arg("flag", false); let f = arg("ratio", 1.5);
           ok(`${a} ${type_of(a)} ${b} ${c} ${d == ()} ${e} ${f}`)"#,
    );
    let env = w.env(&[], None);
    let run = |args: &str| {
        env.execute(
            &RunRequest {
                script: "main".into(),
                host: Some("h1".into()),
                args: Some(args.into()),
                ..RunRequest::default()
            },
            None,
        )
    };
    let r = run(r#"{"crit": "95", "path": "/srv", "flag": "yes", "ratio": "2"}"#);
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert_eq!(r.message, "70 i64 95 /srv true true 2.0");
    // A value that is not of the default's type is an error naming the argument.
    let r = run(r#"{"warn": "lots"}"#);
    assert_eq!(r.status, Status::Error, "{}", r.message);
    assert!(
        r.message
            .contains(r#"argument warn: expected a whole number, got "lots""#),
        "{}",
        r.message
    );
}

#[test]
fn run_and_schedule_arguments_are_checked_and_shown() {
    let w = Work::new();
    ready(&w);
    assert_eq!(
        code(&w.run(&[
            "host",
            "add",
            "web1",
            "--address",
            "127.0.0.1",
            "--method",
            "local"
        ])),
        0
    );
    let refused = |args: &[&str], says: &str| {
        let o = w.run(args);
        assert_ne!(code(&o), 0, "{args:?} was accepted");
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(all.contains(says), "{args:?}: {all}");
    };
    refused(
        &[
            "schedule",
            "check_http",
            "--host",
            "web1",
            "--every",
            "1m",
            "--arg",
            "url=a",
            "--arg",
            "url=b",
        ],
        "given twice",
    );
    refused(
        &[
            "schedule",
            "check_http",
            "--host",
            "web1",
            "--every",
            "1m",
            "--arg",
            "1url=a",
        ],
        "argument name",
    );
    refused(
        &[
            "schedule",
            "check_http",
            "--host",
            "web1",
            "--every",
            "1m",
            "--arg",
            "url",
        ],
        "NAME=VALUE",
    );
    refused(
        &[
            "schedule",
            "check_http",
            "--host",
            "web1",
            "--every",
            "1m",
            "--fix-arg",
            "unit=x",
        ],
        "--fix-arg needs a fix",
    );
    refused(
        &["schedule", "check_http", "--host", "web1", "--name", "x"],
        "--name names a scheduled check",
    );
    // A bad argument to `run` is UNKNOWN (3), as a plugin's bad option is.
    let (c, line) = check(&w, "check_http", &["=x"]);
    assert_eq!(c, 3, "{line}");
    let first = [
        "schedule",
        "check_http",
        "--host",
        "web1",
        "--every",
        "1m",
        "--arg",
        "url=http://127.0.0.1:1/",
        "--fix",
        "restart_service",
        "--fix-arg",
        "unit=nginx",
    ];
    assert_eq!(code(&w.run(&first)), 0);
    // The same check with other arguments would mix two checks' states: a name is asked for.
    let second = [
        "schedule",
        "check_http",
        "--host",
        "web1",
        "--every",
        "1m",
        "--arg",
        "url=http://127.0.0.1:2/",
    ];
    refused(&second, "give this one a --name");
    let mut named = second.to_vec();
    named.extend(["--name", "web1-api"]);
    assert_eq!(code(&w.run(&named)), 0, "{}", stderr(&w.run(&named)));
    let list = stdout(&w.run(&["schedules"]));
    assert!(list.contains("CHECK"), "{list}");
    assert!(list.contains("web1-api"), "{list}");
    assert!(
        list.contains("check_http url=http://127.0.0.1:1/"),
        "{list}"
    );
    assert!(list.contains("restart_service unit=nginx"), "{list}");
    let store = w.store();
    let scheds = store.schedules().expect("schedules");
    assert_eq!(scheds.len(), 2);
    assert_eq!(scheds[1].check(), "web1-api");
    // Both fire: two jobs, the same script on the same host, told apart by name and arguments.
    let (hosts, due) = (
        vec![Some("web1".to_string())],
        scheds[0].next_due.expect("due"),
    );
    assert_eq!(
        store
            .fire_schedule(&scheds[0], due, &hosts, Some(due + 60_000))
            .expect("fire"),
        1
    );
    let due = scheds[1].next_due.expect("due");
    assert_eq!(
        store
            .fire_schedule(&scheds[1], due, &hosts, Some(due + 60_000))
            .expect("fire"),
        1
    );
    let jobs = store.jobs().expect("jobs");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(jobs.iter().any(|j| j.check() == "web1-api"));
    // What the header documents, as scripts and the schedule form read it.
    let shown = stdout(&w.run(&["script", "show", "check_http", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&shown).expect("json");
    let url = v["arguments"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "url"))
        .expect("url documented");
    assert_eq!(url["required"], true);
    assert!(v["arguments"].as_array().is_some_and(|a| {
        a.iter()
            .any(|a| a["name"] == "expect" && a["default"] == "200")
    }));
}

#[test]
fn the_schedule_form_offers_a_scripts_documented_arguments() {
    let w = Work::new();
    ready(&w);
    let store = w.store();
    let site = Site::start(store.clone(), false);
    let mut c = site.login("oper");
    let page = c.get("/schedule?script=check_http&fix=restart_service");
    assert_eq!(page.status, 200);
    for field in [
        r#"name="arg.url""#,
        r#"name="arg.expect""#,
        r#"name="fix_arg.unit""#,
    ] {
        assert!(page.body.contains(field), "{field} missing");
    }
    assert!(
        page.body.contains(r#"placeholder="200""#),
        "the default is shown"
    );
    let r = c.submit(
        "/schedule",
        &[
            ("script", "check_http"),
            ("when", "every"),
            ("every", "1m"),
            ("arg.url", "http://127.0.0.1:9/"),
            ("arg.expect", ""),
            ("args", "text=hello\ntimeout=3"),
            ("fix", "restart_service"),
            ("fix_arg.unit", "nginx"),
            ("name", "web-home"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let s = &store.schedules().expect("schedules")[0];
    let args: serde_json::Value =
        serde_json::from_str(s.args.as_deref().expect("args")).expect("json");
    assert_eq!(
        args,
        serde_json::json!({"url": "http://127.0.0.1:9/", "text": "hello", "timeout": "3"})
    );
    assert_eq!(s.fix_args.as_deref(), Some(r#"{"unit":"nginx"}"#));
    assert_eq!(s.name.as_deref(), Some("web-home"));
    // A bad argument name comes back on the form, nothing stored.
    let r = c.submit(
        "/schedule",
        &[
            ("script", "check_http"),
            ("when", "now"),
            ("args", "bad name=1"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("argument name"), "{}", r.body);
    // The script's page lists them.
    let page = c.get("/scripts/check_http");
    assert!(page.body.contains("Arguments"), "{}", page.body);
    assert!(page.body.contains("the status expected"), "{}", page.body);
}

#[test]
fn bundled_checks_judge_real_services_here() {
    let w = Work::new();
    ready(&w);
    let www = w.path("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("index.html"), "hello hostler\n").expect("index");
    let Some(httpd) = Httpd::start(&www) else {
        return;
    };
    let url = format!("url=http://127.0.0.1:{}/", httpd.port);
    let closed = free_port();
    let (c, line) = check(&w, "check_http", &[&url]);
    assert_eq!(c, 0, "{line}");
    assert!(line.starts_with("OK: http://127.0.0.1:"), "{line}");
    assert!(line.contains("| time="), "{line}");
    assert_eq!(check(&w, "check_http", &[&url, "text=hello"]).0, 0);
    let (c, line) = check(&w, "check_http", &[&url, "text=goodbye"]);
    assert_eq!(
        (c, line.contains(r#"without "goodbye""#)),
        (2, true),
        "{line}"
    );
    let (c, line) = check(
        &w,
        "check_http",
        &[&format!("{url}nothere"), "expect=200,301"],
    );
    assert_eq!(
        (c, line.contains("answered 404, expected 200,301")),
        (2, true),
        "{line}"
    );
    // A service that is down is CRITICAL with the reason, never a script error.
    let (c, line) = check(
        &w,
        "check_http",
        &[&format!("url=http://u:sekrit@127.0.0.1:{closed}/")],
    );
    assert_eq!(c, 2, "{line}");
    assert!(line.contains("refused"), "{line}");
    assert!(
        !line.contains("sekrit"),
        "a password in the URL is never shown: {line}"
    );
    let (c, line) = check(&w, "check_http", &[]);
    assert_eq!(c, 3, "{line}");
    assert!(line.contains("argument url is missing"), "{line}");

    let port = format!("port={}", httpd.port);
    assert_eq!(check(&w, "check_tcp", &[&port]).0, 0);
    let (c, line) = check(
        &w,
        "check_tcp",
        &[&port, "send=HEAD / HTTP/1.0\\r\\n\\r\\n", "expect=^HTTP/1"],
    );
    assert_eq!(c, 0, "{line}");
    let (c, line) = check(
        &w,
        "check_tcp",
        &[
            &port,
            "send=HEAD / HTTP/1.0\\r\\n\\r\\n",
            "expect=^SSH-",
            "timeout=2",
        ],
    );
    assert_eq!(c, 2, "{line}");
    let (c, line) = check(&w, "check_tcp", &[&format!("port={closed}")]);
    assert_eq!((c, line.contains("refused")), (2, true), "{line}");

    // A process by a pattern of its command line; gone, it is CRITICAL.
    let mut sleeper = Command::new("sleep").arg("7319").spawn().expect("sleep");
    let (c, line) = check(&w, "check_process", &["pattern=^sleep 7319$"]);
    assert_eq!((c, line.contains("1 process,")), (0, true), "{line}");
    let (c, line) = check(
        &w,
        "check_process",
        &["name=sleep", "pattern=7319", "max=0", "min=2"],
    );
    assert_eq!(c, 2, "{line}");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let (c, line) = check(&w, "check_process", &["pattern=^sleep 7319$"]);
    assert_eq!((c, line.contains("0 processes")), (2, true), "{line}");
    let (c, line) = check(&w, "check_process", &[]);
    assert_eq!(c, 3, "{line}");

    let index = format!("path={}", www.join("index.html").display());
    let (c, line) = check(&w, "check_file", &[&index, "max_age=3600"]);
    assert_eq!((c, line.contains("14 bytes")), (0, true), "{line}");
    let (c, line) = check(&w, "check_file", &[&index, "min_size=1000"]);
    assert_eq!(c, 2, "{line}");
    let (c, line) = check(
        &w,
        "check_file",
        &[&format!("path={}", w.path("none").display())],
    );
    assert_eq!((c, line.contains("No such file")), (2, true), "{line}");

    let (c, line) = check(&w, "check_mem", &["warn=100", "crit=101"]);
    assert_eq!(c, 0, "{line}");
    assert!(line.contains("| mem="), "{line}");
    if have("/usr/bin/ping", "ping for check_ping") {
        let (c, line) = check(&w, "check_ping", &["address=127.0.0.1", "count=2"]);
        assert_eq!((c, line.contains("0% lost")), (0, true), "{line}");
        let (c, line) = check(
            &w,
            "check_ping",
            &["address=nosuch.invalid", "count=1", "timeout=2"],
        );
        assert_eq!(c, 2, "{line}");
    }
}

#[test]
fn check_cert_and_check_http_read_a_real_servers_certificate() {
    let w = Work::new();
    let Some(server) = crate::peers::TlsServer::start(w.dir.path(), 30) else {
        return;
    };
    ready(&w);
    let (port, cert) = (server.port, server.cert.clone());
    let trusted = [("SSL_CERT_FILE", cert.to_str().expect("path"))];
    let untrusted = [("SSL_CERT_FILE", "/nonexistent")];
    let p = format!("port={port}");
    let base = ["address=127.0.0.1", "server_name=localhost", p.as_str()];
    let (c, line) = check_env(&w, "check_cert", &base, &trusted);
    assert_eq!(c, 0, "{line}");
    assert!(line.contains("expires in 29 days"), "{line}");
    let mut soon = base.to_vec();
    soon.push("warn_days=60");
    let (c, line) = check_env(&w, "check_cert", &soon, &trusted);
    assert_eq!(c, 1, "{line}");
    let (c, line) = check_env(&w, "check_cert", &base, &untrusted);
    assert_eq!((c, line.contains("does not verify")), (2, true), "{line}");
    let mut unverified = base.to_vec();
    unverified.push("verify=false");
    assert_eq!(check_env(&w, "check_cert", &unverified, &untrusted).0, 0);
    let (c, line) = check_env(
        &w,
        "check_cert",
        &["address=127.0.0.1", &format!("port={}", free_port())],
        &trusted,
    );
    assert_eq!(c, 2, "{line}");
    // check_http on HTTPS: the certificate's days in its perfdata, and a warning when few.
    let url = format!("url=https://localhost:{port}/");
    let o = w
        .cmd(&[
            "run",
            "check_http",
            "--arg",
            &url,
            "--arg",
            "cert_warn_days=60",
        ])
        .env("SSL_CERT_FILE", &cert)
        .output()
        .expect("run");
    drop(server);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("certificate expires in 29 days"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("cert_days=29;60;7"), "{}", stdout(&o));
}

/// A SysV-style init script for a busybox httpd on `port`, in `dir/init.d/web`, with its pid
/// file in `dir/run` (writable by everyone: the ssh test account runs it too).
fn init_script(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let (initd, run, www) = (dir.join("init.d"), dir.join("run"), dir.join("www"));
    for d in [&initd, &run, &www] {
        std::fs::create_dir_all(d).expect("dir");
    }
    std::fs::write(www.join("index.html"), "served by web\n").expect("index");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    for d in [dir, &initd, &www] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let pid = run.join("web.pid");
    let script = format!(
        r#"#!/bin/sh
# A SysV init script, as on a host without systemd.
PID={pid}
running() {{ [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; }}
case "$1" in
  start)
    running && exit 0
    setsid /bin/busybox httpd -f -p 127.0.0.1:{port} -h {www} </dev/null >/dev/null 2>&1 &
    echo $! > "$PID"
    sleep 0.3
    running ;;
  stop)
    running && kill "$(cat "$PID")"
    rm -f "$PID"
    exit 0 ;;
  restart) "$0" stop; "$0" start ;;
  status)
    if running; then echo "web is running"; exit 0; fi
    echo "web is not running"; exit 3 ;;
  *) echo "usage: $0 start|stop|restart|status"; exit 2 ;;
esac
"#,
        pid = pid.display(),
        www = www.display(),
    );
    let path = initd.join("web");
    std::fs::write(&path, script).expect("init script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn stop_service(script: &std::path::Path) {
    let _ = Command::new(script).arg("stop").status();
}

#[test]
fn bundled_checks_and_fixes_run_through_sshd_with_a_stock_bash() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    let store = w.store();
    let dir = tempfile::tempdir().expect("tempdir");
    let web_port = free_port();
    let script = init_script(dir.path(), web_port);
    let init_dir = format!("init_dir={}", script.parent().expect("dir").display());
    store
        .add_host(&NewHost {
            name: "b1".into(),
            address: "127.0.0.1".into(),
            port: Some(sshd.port),
            method: Some(Method::Ssh),
            username: Some(BASH_USER.into()),
            secret: Some(Secret::new(PASSWORD)),
            ..NewHost::default()
        })
        .expect("host");
    let mut env = w.env(&[], None);
    // Sessions kept between runs, as monitord keeps them.
    env.remote = std::sync::Arc::new(hostler::script::api::Remote {
        pool: hostler::session::Pool::new(Duration::from_secs(60), Duration::from_secs(3600)),
        ..hostler::script::api::Remote::default()
    });
    let run = |script: &str, args: &[&str]| {
        let map: serde_json::Map<String, serde_json::Value> = args
            .iter()
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        let run = env.execute(
            &RunRequest {
                script: script.into(),
                host: Some("b1".into()),
                args: Some(serde_json::Value::Object(map).to_string()),
                timeout: Some(Duration::from_secs(60)),
                ..RunRequest::default()
            },
            None,
        );
        (run.status, run.message, run.transcript)
    };
    let ok = |script: &str, args: &[&str]| {
        let (status, message, transcript) = run(script, args);
        assert_eq!(status, Status::Ok, "{script}: {message}\n{transcript}");
        message
    };
    ok("check_disk", &["warn=100", "crit=101"]);
    ok("check_load", &["warn=1000", "crit=2000"]);
    ok("check_mem", &["warn=100", "crit=101"]);
    let m = ok("check_process", &["name=sshd"]);
    assert!(!m.contains("\u{1b}"), "no escape in a message: {m:?}");
    ok("check_file", &["path=/etc/passwd", "text=root:"]);
    let (status, m, _) = run(
        "check_file",
        &["path=/etc/passwd", "text=no-such-user-here:"],
    );
    assert_eq!(status, Status::Critical, "{m}");
    // A SysV service on a host without systemd: down, restarted by the fix, up.
    let manager = "manager=sysv";
    let (status, m, _) = run("check_service", &["unit=web", &init_dir, manager]);
    assert_eq!(status, Status::Critical, "{m}");
    assert!(m.contains("web is not running"), "{m}");
    let m = ok("restart_service", &["unit=web", &init_dir, manager]);
    assert!(m.contains("web restarted (sysv)"), "{m}");
    ok("check_service", &["unit=web", &init_dir, manager]);
    ok(
        "check_http",
        &[
            &format!("url=http://127.0.0.1:{web_port}/"),
            "text=served by web",
        ],
    );
    // A process stopped by kill_process, then a command run by run_command.
    let pidfile = format!("pidfile={}", dir.path().join("run/web.pid").display());
    ok("check_process", &[&pidfile]);
    let m = ok("kill_process", &[&pidfile, "grace=3"]);
    assert!(m.contains("stopped 1"), "{m}");
    let (status, m, _) = run("check_process", &[&pidfile]);
    assert_eq!(status, Status::Critical, "{m}");
    let marker = dir.path().join("run/ran");
    ok(
        "run_command",
        &[&format!("command=touch {}", marker.display())],
    );
    assert!(marker.exists(), "run_command ran its command");
    let (status, m, _) = run("run_command", &["command=false"]);
    assert_eq!(status, Status::Critical, "{m}");
    stop_service(&script);
    // One login served every run (the session is kept between runs of one process).
    assert_eq!(
        sshd.log().matches("Accepted password").count(),
        1,
        "{}",
        sshd.log()
    );
}

#[test]
fn the_readme_monit_style_example_restarts_a_down_http_service() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let w = Work::new();
    ready(&w);
    let dir = tempfile::tempdir().expect("tempdir");
    let web_port = free_port();
    let script = init_script(dir.path(), web_port);
    let init_dir = format!("init_dir={}", script.parent().expect("dir").display());
    let port = sshd.port.to_string();
    // As the README says it, word for word but for the addresses.
    let o = w.run_with_input(
        &[
            "host",
            "add",
            "web1",
            "--address",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            BASH_USER,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let url = format!("url=http://127.0.0.1:{web_port}/");
    let o = w.run(&[
        "schedule",
        "check_http",
        "--host",
        "web1",
        "--arg",
        &url,
        "--arg",
        "expect=200",
        "--every",
        "2s",
        "--fix",
        "restart_service",
        "--fix-arg",
        "unit=web",
        "--fix-arg",
        &init_dir,
        "--fix-arg",
        "manager=sysv",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    std::fs::write(w.path("c.toml"), "[monitord]\npoll_interval = 0.1\n").expect("config");
    let log = std::fs::File::create(w.path("serve.log")).expect("log");
    let mut serve = w
        .cmd(&["--config", "c.toml", "serve", "--no-demo", "--no-web"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve");
    let store = w.store();
    // The service was never started: the check fails, the fix starts it, the re-check passes.
    let fixed = wait_for(Duration::from_secs(60), || {
        store
            .check(Some("web1"), "check_http")
            .is_ok_and(|c| c.state == hostler::store::CheckState::Ok)
    });
    let up = std::net::TcpStream::connect(("127.0.0.1", web_port)).is_ok();
    let _ = Command::new("kill").arg(serve.id().to_string()).status();
    let _ = serve.wait();
    stop_service(&script);
    let runs = store
        .runs(&hostler::store::RunFilter {
            limit: 50,
            ..Default::default()
        })
        .expect("runs");
    let said: Vec<String> = runs
        .iter()
        .rev()
        .map(|r| format!("{} {:?} {}: {}", r.script, r.phase, r.status, r.message))
        .collect();
    assert!(
        fixed,
        "{said:#?}\n{}",
        std::fs::read_to_string(w.path("serve.log")).unwrap_or_default()
    );
    assert!(up, "the service answers after the fix");
    let phase = |p: hostler::store::RunPhase, script: &str, status: Status| {
        runs.iter()
            .any(|r| r.phase == Some(p) && r.script == script && r.status == status)
    };
    assert!(
        phase(
            hostler::store::RunPhase::Check,
            "check_http",
            Status::Critical
        ),
        "{said:#?}"
    );
    assert!(
        phase(hostler::store::RunPhase::Fix, "restart_service", Status::Ok),
        "{said:#?}"
    );
    assert!(
        phase(hostler::store::RunPhase::Recheck, "check_http", Status::Ok),
        "{said:#?}"
    );
    // The administrator hears nothing: the fix worked.
    let told = store.notifications(10).expect("notifications");
    assert!(
        told.iter()
            .all(|n| n.event != Some(hostler::store::Alert::FixFailed)),
        "{told:?}"
    );
}

#[test]
fn bundled_checks_run_over_telnet_through_busybox_telnetd_and_login() {
    let Some(telnetd) = crate::peers::Telnetd::start() else {
        return;
    };
    let w = Work::new();
    let store = w.store();
    store
        .add_host(&NewHost {
            name: "t1".into(),
            address: "127.0.0.1".into(),
            port: Some(telnetd.port),
            method: Some(Method::Telnet),
            username: Some(crate::peers::USER.into()),
            secret: Some(Secret::new(PASSWORD)),
            ..NewHost::default()
        })
        .expect("host");
    let env = w.env(&[], None);
    let run = |script: &str, args: &str| {
        env.execute(
            &RunRequest {
                script: script.into(),
                host: Some("t1".into()),
                args: Some(args.into()),
                timeout: Some(Duration::from_secs(60)),
                ..RunRequest::default()
            },
            None,
        )
    };
    let mem = run("check_mem", r#"{"warn": 100, "crit": 101}"#);
    assert_eq!(
        mem.status,
        Status::Ok,
        "{}\n{}",
        mem.message,
        mem.transcript
    );
    // telnetd itself runs as root; ps in the login shell sees it.
    let p = run("check_process", r#"{"pattern": "telnetd"}"#);
    assert_eq!(p.status, Status::Ok, "{}\n{}", p.message, p.transcript);
    let f = run("check_file", r#"{"path": "/nonexistent/x"}"#);
    assert_eq!(
        f.status,
        Status::Critical,
        "{}\n{}",
        f.message,
        f.transcript
    );
    assert!(!mem.transcript.contains(PASSWORD), "the password is masked");
}

/// A peer that accepts and then drips one byte every 200 ms, for as long as it is read.
/// A loopback port whose listener never accepts and whose queue is full: a connect to it
/// gets no answer (its SYN is dropped) until the connect's own timeout. Keep the second value
/// alive as long as the port is used.
fn unanswered_peer() -> (u16, (socket2::Socket, Vec<std::net::TcpStream>)) {
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    l.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .expect("addr")
            .into(),
    )
    .expect("bind");
    l.listen(0).expect("listen");
    let addr = l.local_addr().expect("addr").as_socket().expect("inet");
    let mut fillers = Vec::new();
    for _ in 0..4 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    (addr.port(), (l, fillers))
}

fn dripping_peer() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(4) {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                use std::io::Write;
                for _ in 0..100 {
                    if conn.write_all(b"x").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    port
}

#[test]
fn probes_end_at_their_timeout_on_dripping_and_mute_peers() {
    let w = Work::new();
    let drip = dripping_peer();
    let (silent, _held) = unanswered_peer();
    let r = w.run_script(
        &[],
        None,
        &format!(
            r#"let t0 = now();
               let a = tcp_check("127.0.0.1", {drip}, #{{expect: "^SSH-", timeout: 1}});
               let b = tls_check("127.0.0.1", {drip}, #{{timeout: 1}});
               let c = tcp_check("127.0.0.1", {silent}, #{{timeout: 1}});
               ok(`${{a.ok}} ${{b.ok}} ${{c.ok}} ${{now() - t0}}|${{a.error}}|${{b.error}}`)"#
        ),
    );
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    let (flags, why) = r.message.split_once('|').expect("message");
    let words: Vec<&str> = flags.split(' ').collect();
    assert_eq!(&words[..3], ["false", "false", "false"], "{}", r.message);
    let ms: i64 = words[3].parse().expect("ms");
    assert!(
        ms < 5_000,
        "three probes of 1 s took {ms} ms: {}",
        r.message
    );
    assert!(why.contains("within the timeout"), "{why}");
    assert!(
        why.contains("timed out") || why.contains("handshake"),
        "{why}"
    );
    // A pattern that would compile too big is refused like any script regex.
    let r = w.run_script(
        &[],
        None,
        &format!(
            r#"tcp_check("127.0.0.1", {drip}, #{{expect: "(a{{1000}}){{1000}}", timeout: 1}})"#
        ),
    );
    assert_eq!(r.status, Status::Error, "{}", r.message);
}

/// A bundled script, the argument it quotes onto a remote command line, and the other
/// arguments it needs.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

#[test]
fn no_control_character_in_an_argument_becomes_a_keystroke_on_a_host() {
    let Some(sshd) = Sshd::start(&[]) else { return };
    let Some(telnetd) = crate::peers::Telnetd::start() else {
        return;
    };
    let w = Work::new();
    let store = w.store();
    for (name, port, method, user) in [
        ("bash1", sshd.port, Method::Ssh, BASH_USER),
        ("dash1", sshd.port, Method::Ssh, crate::peers::USER),
        ("tel1", telnetd.port, Method::Telnet, crate::peers::USER),
    ] {
        store
            .add_host(&NewHost {
                name: name.into(),
                address: "127.0.0.1".into(),
                port: Some(port),
                method: Some(method),
                username: Some(user.into()),
                secret: Some(Secret::new(PASSWORD)),
                ..NewHost::default()
            })
            .expect("host");
    }
    let mut env = w.env(&[], None);
    env.remote = std::sync::Arc::new(hostler::script::api::Remote {
        pool: hostler::session::Pool::new(Duration::from_secs(60), Duration::from_secs(3600)),
        ..hostler::script::api::Remote::default()
    });
    // What each bundled script puts on a remote command line.
    let cases: &[Case] = &[
        ("check_file", "path", &[]),
        ("check_file", "text", &[("path", "/etc/hostname")]),
        ("check_process", "pidfile", &[]),
        ("check_service", "unit", &[]),
        (
            "check_service",
            "init_dir",
            &[("unit", "x"), ("manager", "sysv")],
        ),
        ("restart_service", "unit", &[]),
        ("kill_process", "pidfile", &[]),
        ("check_disk", "path", &[]),
        ("run_command", "command", &[]),
    ];
    let marker = w.path("pwned");
    let controls: Vec<char> = (0u8..0x20).chain([0x7f]).map(char::from).collect();
    let mut runs = 0;
    for host in ["bash1", "dash1", "tel1"] {
        for (script, arg, others) in cases {
            for c in &controls {
                let value = format!("/etc/hostname{c}touch {} #", marker.display());
                let mut map = serde_json::Map::new();
                for (k, v) in *others {
                    map.insert(k.to_string(), serde_json::Value::String(v.to_string()));
                }
                map.insert(arg.to_string(), serde_json::Value::String(value));
                let run = env.execute(
                    &RunRequest {
                        script: script.to_string(),
                        host: Some(host.into()),
                        args: Some(serde_json::Value::Object(map).to_string()),
                        timeout: Some(Duration::from_secs(30)),
                        ..RunRequest::default()
                    },
                    None,
                );
                runs += 1;
                assert!(
                    matches!(run.status, Status::Unknown | Status::Error),
                    "{host} {script} {arg}={c:?}: {:?} {}\n{}",
                    run.status,
                    run.message,
                    run.transcript
                );
                assert!(
                    run.message.contains("control character"),
                    "{host} {script} {arg}={c:?}: {}",
                    run.message
                );
                assert!(
                    !run.transcript.contains("touch"),
                    "{host} {script} {arg}={c:?} sent the argument:\n{}",
                    run.transcript
                );
                assert!(
                    !marker.exists(),
                    "{host} {script} {arg}={c:?} ran a command on the host"
                );
            }
        }
    }
    assert_eq!(runs, 3 * cases.len() * controls.len());

    // A host that floods output while cmd() waits for the prompt: the wait fails at the
    // buffer's cap (a quarter of max_memory), and this process stays small.
    w.script(
        &store,
        "flood",
        r#"import "loginlib" as l; let s = l::login(host); s.cmd("yes", 60)"#,
    );
    let before = crate::util::rss_kib();
    let run = env.execute(
        &RunRequest {
            script: "flood".into(),
            host: Some("bash1".into()),
            timeout: Some(Duration::from_secs(60)),
            ..RunRequest::default()
        },
        None,
    );
    assert_eq!(run.status, Status::Error, "{}", run.message);
    assert!(run.message.contains("sent more than"), "{}", run.message);
    let grown = crate::util::rss_kib().saturating_sub(before);
    assert!(grown < 512 * 1024, "grew by {grown} KiB during the flood");
}

/// Runs the script `probe` (on `host`) with a 120 s limit and cancels it at 0.5 s: the run,
/// and how long it took.
fn cancelled_at_half_a_second(
    env: &hostler::script::Runner,
    host: Option<&str>,
) -> (hostler::store::NewRun, Duration) {
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let t0 = std::time::Instant::now();
    let run = env.execute(
        &RunRequest {
            script: "probe".into(),
            host: host.map(String::from),
            timeout: Some(Duration::from_secs(120)),
            ..RunRequest::default()
        },
        Some(cancel),
    );
    let took = t0.elapsed();
    canceller.join().expect("canceller");
    (run, took)
}

#[test]
fn a_cancel_interrupts_probes_and_requests_to_mute_peers_within_a_second() {
    let w = Work::new();
    // Accepts and never says a word.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mute_port = mute.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in mute.incoming().take(16) {
            held.push(c);
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    let (silent, _held) = unanswered_peer();
    let env = w.env(&[], None);
    for (what, source) in [
        (
            "a banner wait",
            format!(r#"tcp_check("127.0.0.1", {mute_port}, #{{expect: "x", timeout: 60}})"#),
        ),
        (
            "a connect",
            format!(r#"tcp_check("127.0.0.1", {silent}, #{{timeout: 60}})"#),
        ),
        (
            "a TLS handshake",
            format!(r#"tls_check("127.0.0.1", {mute_port}, #{{timeout: 60}})"#),
        ),
        (
            "an HTTP answer",
            format!(r#"http_get("http://127.0.0.1:{mute_port}/", #{{timeout: 60}})"#),
        ),
    ] {
        w.script(&env.store, "probe", &source);
        let (run, took) = cancelled_at_half_a_second(&env, None);
        assert_eq!(run.status, Status::Cancelled, "{what}: {}", run.message);
        assert!(
            took < Duration::from_millis(1500),
            "{what} ended {took:?} after its start, a cancel at 0.5 s"
        );
    }
    // An SSH login whose connect gets no answer, and a telnet one to a peer that never
    // speaks: a cancel ends them too.
    for (name, port, method) in [
        ("ssh-silent", silent, Method::Ssh),
        ("tel-mute", mute_port, Method::Telnet),
    ] {
        env.store
            .add_host(&NewHost {
                name: name.into(),
                address: "127.0.0.1".into(),
                port: Some(port),
                method: Some(method),
                username: Some("nobody".into()),
                secret: Some(Secret::new("x")),
                ..NewHost::default()
            })
            .expect("host");
        w.script(
            &env.store,
            "probe",
            r#"import "loginlib" as l; l::login(host).cmd("true")"#,
        );
        let (run, took) = cancelled_at_half_a_second(&env, Some(name));
        assert_eq!(run.status, Status::Cancelled, "{name}: {}", run.message);
        assert!(
            took < Duration::from_millis(1500),
            "{name} ended after {took:?}"
        );
    }
}
