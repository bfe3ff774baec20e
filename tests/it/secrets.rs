//! Hostile scripts, viewers and local users (issue 14): arguments that read files through
//! allowed plugins, the environment and processes a command gets, subjects that smuggle mail
//! headers, escape sequences from hosts on the operator's terminal, secrets through
//! `hostler sql` and /sqlxml, the database's file mode, and the admin-password file.

use std::time::{Duration, Instant};

use hostler::config::Sandbox;
use hostler::script::RunRequest;
use hostler::session::spells;
use hostler::store::{NewRun, Status};

use crate::util::{Work, code, have, stderr, stdout};

fn run_allowed(w: &Work, allowed: &[&str], limits: Option<Sandbox>, source: &str) -> NewRun {
    w.run_script(allowed, limits, source)
}

#[test]
fn extra_opts_is_refused_in_every_spelling_getopt_accepts() {
    for arg in [
        "--extra-opts",
        "--extra-opts=database@/etc/hostler/hostler.toml",
        "--extra=x@/etc/passwd",
        "--ex",
    ] {
        assert!(spells(arg, "--extra-opts"), "{arg}");
    }
    for arg in [
        "--expect=200",
        "-e",
        "--",
        "extra-opts",
        "-w",
        "--warning=1",
    ] {
        assert!(!spells(arg, "--extra-opts") || arg == "--", "{arg}");
    }
    assert!(spells("-vx", "-x") && spells("-xfile", "-x") && !spells("--x", "-x"));
    let w = Work::new();
    std::fs::write(
        w.path("secret.ini"),
        "[database]\nurl=postgres://u:Sup3rS3cret@db/h\n",
    )
    .expect("ini");
    if !have(
        "/usr/lib/nagios/plugins/check_load",
        "Debian's monitoring-plugins-basic",
    ) {
        return;
    }
    let ini = w.path("secret.ini").display().to_string();
    let r = run_allowed(
        &w,
        &Sandbox::default()
            .allowed_commands
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        None,
        &format!(
            r#"let r = exec("/usr/lib/nagios/plugins/check_load", ["--extra-opts=database@{ini}"]); ok(r.stdout + r.stderr)"#
        ),
    );
    assert_ne!(r.status, Status::Ok, "{}", r.message);
    assert!(r.message.contains("refused"), "{}", r.message);
    assert!(!r.message.contains("Sup3rS3cret") && !r.output.contains("Sup3rS3cret"));
    // The plugin itself still runs with its ordinary options.
    let r = run_allowed(
        &w,
        &["/usr/lib/nagios/plugins/check_load"],
        None,
        r#"let r = exec("/usr/lib/nagios/plugins/check_load", ["-w", "99,99,99", "-c", "99,99,99"]); ok(r.stdout)"#,
    );
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert!(r.message.contains("LOAD"), "{}", r.message);
}

#[test]
fn the_config_refuses_or_restricts_more_arguments_per_command() {
    let w = Work::new();
    let mut limits = Sandbox {
        refused_arguments: vec!["-c".into()],
        ..Sandbox::default()
    };
    limits.arguments.insert(
        "printf".into(),
        hostler::config::ArgumentRule {
            refuse: Vec::new(),
            only: Some(vec!["--".into()]),
            values: None,
        },
    );
    let r = run_allowed(
        &w,
        &["sh", "printf"],
        Some(limits.clone()),
        r#"exec("sh", ["-c", "echo hi"]); ok("ran")"#,
    );
    assert_eq!(r.status, Status::Error, "{}", r.message);
    assert!(r.message.contains("argument \"-c\""), "{}", r.message);
    let r = run_allowed(
        &w,
        &["sh", "printf"],
        Some(limits.clone()),
        r#"ok(exec("printf", ["%s", "plain"]).stdout)"#,
    );
    assert_eq!((r.status, r.message.as_str()), (Status::Ok, "plain"));
    let r = run_allowed(
        &w,
        &["sh", "printf"],
        Some(limits),
        r#"ok(exec("printf", ["--version"]).stdout)"#,
    );
    assert_eq!(r.status, Status::Error, "{}", r.message);
    assert!(r.message.contains("refused"), "{}", r.message);
}

#[test]
fn commands_get_a_clean_environment_and_no_stdin() {
    let w = Work::new();
    // SAFETY-free: the test process's own environment holds more than PATH and LANG (cargo's).
    let r = run_allowed(
        &w,
        &["env", "sh"],
        None,
        r#"let e = exec("env", []).stdout; let i = exec("sh", ["-c", "cat; echo end"]).stdout; ok(e + "|" + i)"#,
    );
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    let (env, input) = r.message.split_once('|').expect("two parts");
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    assert!(names.contains(&"PATH"), "{env}");
    assert!(
        names.iter().all(|n| *n == "PATH" || *n == "LANG"),
        "more than PATH and LANG: {env}"
    );
    assert_eq!(input.trim(), "end");
}

#[test]
fn what_a_command_started_is_killed_with_a_run_that_times_out() {
    let w = Work::new();
    let marker = format!("{}.{}", 31, std::process::id());
    let started = Instant::now();
    let env = w.env(&["sh"], None);
    w.script(
        &env.store,
        "main",
        &format!(r#"exec("sh", ["-c", "sleep {marker} & sleep 30"]); ok("done")"#),
    );
    let r = env.execute(
        &RunRequest {
            script: "main".into(),
            timeout: Some(Duration::from_secs(1)),
            ..RunRequest::default()
        },
        None,
    );
    assert_eq!(r.status, Status::Timeout, "{}", r.message);
    assert!(started.elapsed() < Duration::from_secs(5));
    let running = || crate::util::process_running(&marker);
    assert!(
        crate::util::wait_for(Duration::from_secs(2), || !running()),
        "sleep {marker}, started by the command, outlived the run"
    );
}

#[test]
fn a_symlinked_name_in_allowed_commands_matches_its_file() {
    let w = Work::new();
    let canon = std::path::Path::new("/bin/sh").canonicalize().expect("sh");
    assert_ne!(
        canon,
        std::path::Path::new("/bin/sh"),
        "/bin/sh is no symlink here"
    );
    let r = run_allowed(
        &w,
        &["/bin/sh"],
        None,
        r#"ok(exec("/bin/sh", ["-c", "echo via-sh"]).stdout)"#,
    );
    assert_eq!((r.status, r.message.trim()), (Status::Ok, "via-sh"));
    // Still no walking out of an allowed folder.
    let r = run_allowed(
        &w,
        &["/bin/sh"],
        None,
        r#"ok(exec("/bin/../bin/true", []).stdout)"#,
    );
    assert_eq!(r.status, Status::Error, "{}", r.message);
    assert!(r.message.contains("not allowed"), "{}", r.message);
}

#[test]
fn a_notification_subject_is_one_line() {
    let w = Work::new();
    let r = run_allowed(
        &w,
        &[],
        None,
        r#"notify("disk full\nBcc: thief@example.com\r\nX: y", "body"); ok()"#,
    );
    assert_eq!(r.notifications.len(), 1);
    let subject = &r.notifications[0].subject;
    assert!(
        !subject.contains('\n') && !subject.contains('\r'),
        "{subject:?}"
    );
    assert!(subject.starts_with("disk full"), "{subject:?}");
}

#[test]
fn the_cli_shows_escape_sequences_from_hosts_as_text() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    std::fs::write(
        w.path("evil.rhai"),
        "print(\"\\x1b]0;pwned\\x07\\x1b[2J\"); critical(\"down \\x1b[31mred\\x9b\")",
    )
    .expect("script");
    let out = w.run(&["script", "add", "evil", "evil.rhai"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for args in [
        &["run", "evil"][..],
        &["history"][..],
        &["show-run", "1"][..],
    ] {
        let out = w.run(args);
        let text = stdout(&out);
        assert!(
            !text.contains('\x1b') && !text.contains('\u{9b}'),
            "{args:?}: {text:?}"
        );
        assert!(text.contains("\\x1b"), "{args:?}: {text:?}");
    }
    let out = w.run(&["--raw", "show-run", "1"]);
    assert!(stdout(&out).contains('\x1b'));
}

#[test]
fn hostler_sql_reads_secrets_as_null_unless_the_owner_asks() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    add_host_with_password(&w, "r1", "Sup3rS3cret");
    for sql in [
        "SELECT secret || '' AS s FROM hosts",
        "SELECT substr(secret, 1) AS x, upper(secret) AS y FROM hosts",
        "SELECT name FROM hosts WHERE secret LIKE 'S%'",
    ] {
        let out = w.run(&["sql", sql, "--json"]);
        assert_eq!(code(&out), 0, "{sql}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            !text.to_ascii_lowercase().contains("sup3rs3cret"),
            "{sql}: {text}"
        );
    }
    // A WHERE on the secret sees NULL too: no row, so no yes/no oracle.
    let out = w.run(&[
        "sql",
        "SELECT name FROM hosts WHERE secret LIKE 'S%'",
        "--json",
    ]);
    assert!(!stdout(&out).contains("r1"), "{}", stdout(&out));
    let out = w.run(&[
        "sql",
        "SELECT secret FROM hosts",
        "--show-secrets",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("Sup3rS3cret"));
}

#[test]
fn the_database_and_its_wal_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    // A second process keeps the WAL open while we look.
    let store = w.store();
    store.set_setting("probe", "1").expect("write");
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", w.db());
        let mode = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{p} has mode {:o}", mode & 0o777);
    }
    drop(store);
    // An existing readable database is warned about.
    std::fs::set_permissions(w.db(), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = w.run(&["host", "list"]);
    assert!(
        stderr(&out).contains("readable by other users"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_admin_password_file_is_never_written_through() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    let target = w.path("someone-elses-file");
    std::fs::write(&target, "theirs\n").expect("target");
    let file = format!("{}.admin-password", w.db());
    std::os::unix::fs::symlink(&target, &file).expect("symlink");
    let out = w
        .cmd(&["serve", "--no-demo", "--listen", "127.0.0.1:0"])
        .output()
        .expect("serve");
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&target).expect("target"),
        "theirs\n"
    );
    // No admin was made with a password nobody could read.
    let out = w.run(&["user", "list", "--json"]);
    assert_eq!(stdout(&out).trim(), "[]", "{}", stdout(&out));
}

#[test]
fn priorities_and_timeouts_have_bounds() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    for args in [
        &[
            "schedule",
            "check_load",
            "--host",
            "localhost",
            "--priority",
            "99999999",
        ][..],
        &[
            "schedule",
            "check_load",
            "--host",
            "localhost",
            "--timeout",
            "100d",
        ][..],
    ] {
        let out = w.run(args);
        assert_ne!(code(&out), 0, "{args:?}");
        assert!(
            stderr(&out).contains("out of range"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn viewers_do_not_see_the_accounts_through_sqlxml() {
    use crate::webutil::{ADMIN_PW, Site};
    let w = Work::new();
    let site = Site::start(w.store(), false);
    let query = |user: &str, sql: &str| {
        let mut c = site.login(user);
        let r = c.get(&format!("/sqlxml?sql={}", hostler::urlencode::encode(sql)));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    };
    for sql in [
        "SELECT name, role FROM users FOR XML RAW",
        "SELECT name FROM api_tokens FOR XML RAW",
        "SELECT (SELECT count(*) FROM users) AS n FOR XML RAW",
    ] {
        let body = query("view", sql);
        assert!(body.contains("MSSQLError"), "{sql}: {body}");
        assert!(!body.contains("admin"), "{sql}: {body}");
    }
    let body = query("admin", "SELECT name, role FROM users FOR XML RAW");
    assert!(body.contains("name=\"view\""), "{body}");
    assert!(!body.contains(ADMIN_PW));
}

/// A host with a password, and a run of `source` against it.
fn run_on_host(w: &Work, limits: Option<Sandbox>, source: &str) -> NewRun {
    use hostler::store::{Method, NewHost};
    let env = w.env(&[], limits);
    for name in ["r1", "r2"] {
        if env.store.host(name).is_ok() {
            continue;
        }
        env.store
            .add_host(&NewHost {
                name: name.into(),
                address: "192.0.2.1".into(),
                method: Some(Method::Telnet),
                username: Some("admin".into()),
                secret: Some(hostler::store::Secret::new(format!("Sup3rS3cret-{name}"))),
                ..NewHost::default()
            })
            .expect("host");
    }
    w.script(&env.store, "main", source);
    env.execute(
        &RunRequest {
            script: "main".into(),
            host: Some("r1".into()),
            ..RunRequest::default()
        },
        None,
    )
}

#[test]
fn a_password_cannot_be_turned_into_text() {
    let w = Work::new();
    let leaks = [
        r#"let p = credentials(host).password; ok(`${p}`)"#,
        r#"let p = credentials(host).password; ok(p.to_string())"#,
        r#"let p = credentials(host).password; ok(`${p + ""}`)"#,
        r#"let c = credentials(host); ok(c.to_json())"#,
        r#"let c = credentials(host); ok(`${c}`)"#,
        r#"let p = credentials(host).password; print(p); debug(p); ok(type_of(p))"#,
        r#"let p = credentials(host).password; ok(`${p == "Sup3rS3cret-r1"} ${p != "x"}`)"#,
        r#"let p = credentials(host).password; let s = ""; for c in p.chars() { s += c + " "; } ok(s)"#,
        r#"let p = credentials(host).password; ok(p.sub_string(0, 4))"#,
        r#"let p = credentials(host).password; ok(`${p.len()}`)"#,
        r#"let p = credentials(host).password; ok(p.split("S3")[0])"#,
        r#"let p = credentials(host).password; let f = || p; ok(`${f()}`)"#,
        r#"let p = credentials(host).password; ok(`${[p].reverse()}`)"#,
    ];
    for source in leaks {
        let r = run_on_host(&w, None, source);
        let all = format!("{} {} {:?}", r.message, r.output, r.notifications);
        assert!(
            !all.contains("Sup3")
                && !all.contains("S3cret")
                && !all.contains("S u p")
                && !all.contains("terceS"),
            "{source}: {all}"
        );
    }
    let r = run_on_host(
        &w,
        None,
        r#"let p = credentials(host).password; ok(`${p} ${type_of(p)}`)"#,
    );
    assert_eq!(r.message, "******** Secret");
}

#[test]
fn a_run_gets_only_its_own_hosts_credentials() {
    let w = Work::new();
    let r = run_on_host(
        &w,
        None,
        r#"let c = credentials(get_host("r2")); ok("got it")"#,
    );
    assert_eq!(r.status, Status::Error, "{}", r.message);
    assert!(r.message.contains("only its own host"), "{}", r.message);
    let r = run_on_host(
        &w,
        None,
        r#"let n = 0; for h in hosts() { try { credentials(h); n += 1; } catch {} } ok(`${n}`)"#,
    );
    assert_eq!(r.message, "1");
    let limits = Sandbox {
        credentials_of_other_hosts: true,
        ..Sandbox::default()
    };
    let r = run_on_host(
        &w,
        Some(limits),
        r#"let c = credentials(get_host("r2")); ok(c.user)"#,
    );
    assert_eq!((r.status, r.message.as_str()), (Status::Ok, "admin"));
}

#[test]
fn a_regex_over_big_text_cannot_outrun_the_deadline() {
    let w = Work::new();
    let started = Instant::now();
    let r = run_allowed(
        &w,
        &[],
        None,
        r#"let s = "ab"; while s.len() < 4000000 { s += s; }
           let errors = [];
           for i in 0..3 { try { matches(s, "\\w{100}z"); } catch (e) { errors.push(`${e}`); } }
           try { matches(s.sub_string(0, 100000), "\\w{100}z"); } catch (e) { errors.push(`${e}`); }
           try { matches(s, "a"); } catch (e) { errors.push(`${e}`); }
           let long = "a"; while long.len() < 5000 { long += long; }
           try { matches("a", long); } catch (e) { errors.push(`${e}`); }
           ok(errors.len().to_string() + " " + errors[0] + " | " + errors[4] + " | " + errors[5])"#,
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert!(r.message.starts_with("6 "), "{}", r.message);
    assert!(r.message.contains("at most 1 MiB"), "{}", r.message);
    assert!(r.message.contains("patterns are limited"), "{}", r.message);
    assert!(r.message.contains("size limit"), "{}", r.message);
    // Ordinary patterns on ordinary text still work.
    let r = run_allowed(
        &w,
        &[],
        None,
        r#"ok(`${matches("load 1.5", "\\d+\\.\\d+")}`)"#,
    );
    assert_eq!(r.message, "true");
}

#[test]
fn connects_take_their_timeout_from_what_is_left_of_the_run() {
    use hostler::store::{Method, NewHost};
    // A peer that accepts and never says a word: an SSH handshake waits for its banner.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let w = Work::new();
    let mut env = w.env(&[], None);
    env.remote = std::sync::Arc::new(hostler::script::Remote {
        connect_timeout: Duration::from_secs(10),
        ..hostler::script::Remote::default()
    });
    env.store
        .add_host(&NewHost {
            name: "mute".into(),
            address: "127.0.0.1".into(),
            port: Some(port),
            method: Some(Method::Ssh),
            username: Some("u".into()),
            secret: Some(hostler::store::Secret::new("pw")),
            ..NewHost::default()
        })
        .expect("host");
    w.script(
        &env.store,
        "main",
        r#"for i in 0..6 { try { connect(host); } catch {} } ok("six connects")"#,
    );
    let started = Instant::now();
    let r = env.execute(
        &RunRequest {
            script: "main".into(),
            host: Some("mute".into()),
            timeout: Some(Duration::from_secs(2)),
            ..RunRequest::default()
        },
        None,
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "six connects took {took:?}");
    assert_ne!(r.status, Status::Ok, "{}", r.message);
}

#[test]
fn a_run_cannot_hold_more_processes_than_its_limit() {
    let w = Work::new();
    let limits = Sandbox {
        max_processes: 4,
        ..Sandbox::default()
    };
    let r = run_allowed(
        &w,
        &["sleep"],
        Some(limits),
        r#"let held = []; let err = "";
           for i in 0..600 { try { held.push(spawn("sleep", ["30"])); } catch (e) { err = `${e}`; break; } }
           ok(`${held.len()} ${err}`)"#,
    );
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert!(r.message.starts_with("4 "), "{}", r.message);
    assert!(r.message.contains("max_processes"), "{}", r.message);
    // Closed ones do not count.
    let r = run_allowed(
        &w,
        &["true"],
        Some(Sandbox {
            max_processes: 2,
            ..Sandbox::default()
        }),
        r#"for i in 0..10 { let p = spawn("true", []); p.close(); } ok("ten")"#,
    );
    assert_eq!(
        (r.status, r.message.as_str()),
        (Status::Ok, "ten"),
        "{}",
        r.message
    );
}

#[test]
fn memory_held_by_closures_counts_against_the_run() {
    let w = Work::new();
    let limits = Sandbox {
        max_memory: 64 << 20,
        ..Sandbox::default()
    };
    let started = Instant::now();
    let r = run_allowed(
        &w,
        &[],
        Some(limits.clone()),
        r#"let big = "x"; while big.len() < 2000000 { big += big; }
           let held = [];
           for i in 0..500 { let s = big + i; held.push(|| s.len()); }
           ok(`held ${held.len()}`)"#,
    );
    assert_eq!(r.status, Status::Error, "{}", r.message);
    assert!(r.message.contains("max_memory"), "{}", r.message);
    assert!(started.elapsed() < Duration::from_secs(10));
    // Well under the budget, the same shape runs.
    let r = run_allowed(
        &w,
        &[],
        Some(limits),
        r#"let big = "x"; while big.len() < 1000000 { big += big; }
           let held = [];
           for i in 0..20 { let s = big + i; held.push(|| s.len()); }
           ok(`held ${held.len()}`)"#,
    );
    assert_eq!((r.status, r.message.as_str()), (Status::Ok, "held 20"));
}

fn add_host_with_password(w: &Work, name: &str, password: &str) {
    let out = w
        .cmd(&[
            "host",
            "add",
            name,
            "--address",
            "192.0.2.1",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(format!("{password}\n").as_bytes())?;
            c.wait_with_output()
        })
        .expect("host add");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

fn file_holds(path: &str, needle: &str) -> bool {
    std::fs::read(path)
        .map(|b| memchr::memmem::find(&b, needle.as_bytes()).is_some())
        .unwrap_or(false)
}

#[test]
fn stored_secrets_are_sealed_and_the_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    // Kept open so the WAL is not checkpointed away before it is looked at.
    let store = w.store();
    add_host_with_password(&w, "r1", "Sup3rS3cret-at-rest");
    for suffix in ["", "-wal"] {
        let p = format!("{}{suffix}", w.db());
        assert!(!file_holds(&p, "Sup3rS3cret"), "{p} holds the password");
    }
    let key = format!("{}.key", w.db());
    let mode = std::fs::metadata(&key)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        store
            .host_secret("r1")
            .expect("secret")
            .expect("some")
            .expose(),
        "Sup3rS3cret-at-rest"
    );
    let out = w.run(&[
        "sql",
        "SELECT secret FROM hosts WHERE name = 'r1'",
        "--show-secrets",
    ]);
    assert!(
        stdout(&out).contains("Sup3rS3cret-at-rest"),
        "{}",
        stdout(&out)
    );
    // Rotation: a new key, the old file replaced, the secret still opens.
    let before = stdout(&w.run(&["key", "show", "--json"]));
    let out = w.run(&["key", "rotate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("re-sealed 1 host secrets"),
        "{}",
        stdout(&out)
    );
    let after = stdout(&w.run(&["key", "show", "--json"]));
    assert_ne!(before, after);
    assert!(!std::path::Path::new(&format!("{key}.new")).exists());
    let fresh = w.store();
    assert_eq!(
        fresh
            .host_secret("r1")
            .expect("secret")
            .expect("some")
            .expose(),
        "Sup3rS3cret-at-rest"
    );
    // Without its key file, a secret is a clear error, never garbage.
    std::fs::rename(&key, w.path("elsewhere.key")).expect("move");
    let err = w.store().host_secret("r1").expect_err("no key");
    assert!(err.to_string().contains("is missing"), "{err}");
    // With it, from $HOSTLER_KEY_FILE.
    let out = w
        .cmd(&[
            "sql",
            "SELECT secret FROM hosts WHERE name = 'r1'",
            "--show-secrets",
        ])
        .env("HOSTLER_KEY_FILE", w.path("elsewhere.key"))
        .output()
        .expect("sql");
    assert!(
        stdout(&out).contains("Sup3rS3cret-at-rest"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plain_secrets_from_before_are_sealed_on_open_and_tampering_is_caught() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    add_host_with_password(&w, "r1", "placeholder");
    {
        let conn = rusqlite::Connection::open(w.db()).expect("sqlite");
        conn.execute(
            "UPDATE hosts SET secret = 'Old-plain-pw' WHERE name = 'r1'",
            [],
        )
        .expect("update");
    }
    let store = w.store();
    assert_eq!(
        store
            .host_secret("r1")
            .expect("secret")
            .expect("some")
            .expose(),
        "Old-plain-pw"
    );
    let conn = rusqlite::Connection::open(w.db()).expect("sqlite");
    let stored: String = conn
        .query_row("SELECT secret FROM hosts WHERE name = 'r1'", [], |r| {
            r.get(0)
        })
        .expect("row");
    assert!(
        stored.starts_with(hostler::store::vault::SEALED),
        "{stored}"
    );
    // One flipped character: refused, not misread.
    let mut bytes = stored.into_bytes();
    let last = bytes.len() - 3;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("ascii");
    conn.execute(
        "UPDATE hosts SET secret = ?1 WHERE name = 'r1'",
        [&tampered],
    )
    .expect("update");
    let err = store.host_secret("r1").expect_err("tampered");
    assert!(err.to_string().contains("does not open"), "{err}");
}

#[test]
fn the_one_time_password_must_be_replaced_and_its_file_goes() {
    use crate::hostile::request;
    use base64::Engine as _;
    let w = Work::new();
    // Daemon::start replaces it from the CLI; here the web page does, so start by hand.
    let log = std::fs::File::create(w.path("serve.log")).expect("log");
    let child = w
        .cmd(&["serve", "--no-demo", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve");
    let _guard = crate::hostile::Guard(child);
    let file = w.path("hostler.db.admin-password");
    let mut addr = None;
    assert!(crate::util::wait_for(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(w.path("serve.log")).unwrap_or_default();
        addr = text
            .lines()
            .find_map(|l| l.split("web page on http://").nth(1))
            .and_then(|u| {
                u.trim()
                    .trim_end_matches('/')
                    .parse::<std::net::SocketAddr>()
                    .ok()
            });
        addr.is_some() && file.exists()
    }));
    let addr = addr.expect("address");
    let once = std::fs::read_to_string(&file)
        .expect("file")
        .trim()
        .to_string();
    let basic = |pw: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("admin:{pw}"));
        request(
            addr,
            2,
            format!("GET /sqlxml?sql=SELECT+1+AS+x+FOR+XML+RAW HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    // By basic auth the one-time password is refused for everything.
    let (status, body) = basic(&once);
    assert_eq!(status, 403, "{body}");
    // By the form, it leads to the password page, and only there.
    let mut c = crate::webutil::Client::new(&format!("http://{addr}"));
    let r = c.login("admin", &once);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/account/password"));
    let r = c.get("/hosts");
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/account/password"))
    );
    let page = c.get("/account/password");
    assert_eq!(page.status, 200, "{}", page.body);
    let r = c.submit(
        "/account/password",
        &[("password", "short"), ("again", "short")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let new = "Brand-new-admin-pw";
    let r = c.submit("/account/password", &[("password", new), ("again", new)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!file.exists(), "the one-time password file is gone");
    assert_eq!(c.get("/hosts").status, 200);
    assert_eq!(basic(&once).0, 401);
    assert_eq!(basic(new).0, 200);
}

#[test]
fn basic_auth_sends_a_password_only_to_its_own_host() {
    use hostler::store::{Method, NewHost};
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("server"));
    let port = server.server_addr().to_ip().expect("ip").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let (server, seen) = (server.clone(), seen.clone());
        std::thread::spawn(move || {
            for rq in server.incoming_requests() {
                let auth = rq
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string());
                seen.lock().expect("seen").push(auth);
                let _ = rq.respond(tiny_http::Response::from_string("ok"));
            }
        });
    }
    let w = Work::new();
    let env = w.env(&[], None);
    env.store
        .add_host(&NewHost {
            name: "web".into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Http),
            port: Some(port),
            username: Some("admin".into()),
            secret: Some(hostler::store::Secret::new("Basic-pw-42")),
            ..NewHost::default()
        })
        .expect("host");
    let run = |source: &str| {
        w.script(&env.store, "main", source);
        env.execute(
            &RunRequest {
                script: "main".into(),
                host: Some("web".into()),
                ..RunRequest::default()
            },
            None,
        )
    };
    let r = run(&format!(
        r#"let s = http("http://127.0.0.1:{port}/", #{{basic_auth: credentials(host)}}); ok(`${{s.status}}`)"#
    ));
    assert_eq!(
        (r.status, r.message.as_str()),
        (Status::Ok, "200"),
        "{}",
        r.message
    );
    use base64::Engine as _;
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:Basic-pw-42")
    );
    assert_eq!(
        seen.lock().expect("seen").last().cloned().flatten(),
        Some(want.clone())
    );
    assert!(!r.transcript.contains(&want[6..]) && !r.output.contains(&want[6..]));
    // Anywhere else (another name for the same machine included): refused, nothing sent.
    let before = seen.lock().expect("seen").len();
    let r = run(&format!(
        r#"let s = http("http://localhost:{port}/", #{{basic_auth: credentials(host)}}); ok("sent")"#
    ));
    assert_eq!(r.status, Status::Error, "{}", r.message);
    assert!(
        r.message.contains("only to that host's address"),
        "{}",
        r.message
    );
    assert_eq!(seen.lock().expect("seen").len(), before);
}

#[test]
fn a_process_that_holds_the_old_key_reads_and_seals_after_a_rotation() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    add_host_with_password(&w, "r1", "pw-before-rotation");
    // The daemon's store: it has read the key.
    let daemon = w.store();
    let secret = |s: &hostler::store::Store, name: &str| {
        s.host_secret(name)
            .expect("secret")
            .expect("some")
            .expose()
            .to_string()
    };
    assert_eq!(secret(&daemon, "r1"), "pw-before-rotation");
    let out = w.run(&["key", "rotate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // It opens what the rotation re-sealed, with the key now on disk...
    assert_eq!(secret(&daemon, "r1"), "pw-before-rotation");
    // ...and seals a new secret with it, never with the key it remembered.
    daemon
        .add_host(&hostler::store::NewHost {
            name: "r2".into(),
            address: "192.0.2.2".into(),
            secret: Some(hostler::store::Secret::new("pw-after-rotation")),
            ..hostler::store::NewHost::default()
        })
        .expect("add");
    let out = w.run(&["key", "rotate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("re-sealed 2 host secrets"),
        "{}",
        stdout(&out)
    );
    let fresh = w.store();
    assert_eq!(secret(&fresh, "r2"), "pw-after-rotation");
    assert_eq!(secret(&daemon, "r2"), "pw-after-rotation");
    // A rotation holds KEY.lock: a second one at the same time is refused, and says why.
    let holder = w.store();
    holder.vault.begin_rotation().expect("begin");
    let out = w.run(&["key", "rotate"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("another key rotation is running"),
        "{}",
        stderr(&out)
    );
    holder.vault.abandon_rotation();
    let out = w.run(&["key", "rotate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(secret(&w.store(), "r1"), "pw-before-rotation");
    assert_eq!(secret(&w.store(), "r2"), "pw-after-rotation");
}

#[test]
fn hosts_added_through_the_api_during_rotations_keep_their_secrets() {
    let w = Work::new();
    let d = crate::hostile::Daemon::start(&w, "", None);
    let out = w.run(&["user", "token", "add", "admin"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    let addr = d.addr;
    let add = move |name: String| -> u16 {
        let body = serde_json::json!({
            "name": name, "address": "192.0.2.7", "method": "ssh", "username": "u",
            "password": format!("pw-{name}"),
        })
        .to_string();
        let got = crate::hostile::request(
            addr,
            2,
            format!(
                "POST /api/hosts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        if got.0 != 201 {
            eprintln!("adding {name}: {} {}", got.0, got.1);
        }
        got.0
    };
    // The daemon makes the key and seals with it.
    assert_eq!(add("a0".into()), 201);
    for i in 0..40 {
        add_host_with_password(&w, &format!("c{i}"), &format!("pw-c{i}"));
    }
    // Hosts added through the daemon while rotations run, two of them at a time.
    let add2 = add.clone();
    let adder = std::thread::spawn(move || {
        (1..40)
            .map(|i| add2(format!("a{i}")))
            .filter(|s| *s != 201)
            .count()
    });
    let mut refused = 0;
    for _ in 0..3 {
        let rotations: Vec<_> = (0..2)
            .map(|_| {
                let mut cmd = w.cmd(&["key", "rotate"]);
                std::thread::spawn(move || cmd.output().expect("rotate"))
            })
            .collect();
        for r in rotations {
            let out = r.join().expect("rotation");
            if code(&out) != 0 {
                assert!(
                    stderr(&out).contains("another key rotation is running"),
                    "{}",
                    stderr(&out)
                );
                refused += 1;
            }
        }
    }
    assert_eq!(adder.join().expect("adder"), 0, "some API adds failed");
    eprintln!("{refused} of 6 rotations were refused because another ran");
    // Every secret opens, in a fresh process and in the daemon's (one more rotation opens
    // them all there too).
    let fresh = w.store();
    for name in (0..40)
        .map(|i| format!("a{i}"))
        .chain((0..40).map(|i| format!("c{i}")))
    {
        let got = fresh
            .host_secret(&name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .expect("some");
        assert_eq!(got.expose(), format!("pw-{name}"));
    }
    let out = w.run(&["key", "rotate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(add("z1".into()), 201);
    assert_eq!(
        w.store()
            .host_secret("z1")
            .expect("z1")
            .expect("some")
            .expose(),
        "pw-z1"
    );
    drop(d);
}

#[test]
fn ps_shows_processes_but_never_their_environment() {
    let w = Work::new();
    let env = w.env(&["ps"], None);
    // ps as the bundled checks run it.
    w.script(
        &env.store,
        "main",
        r#"let r = exec("ps", ["-e", "-o", "pid=", "-o", "comm="]); ok(`${r.code}`)"#,
    );
    let run = env.execute(&main_run(), None);
    assert_eq!(run.status, Status::Ok, "{}", run.message);
    assert_eq!(run.message, "0");
    // Every spelling of BSD's e (the environment) is refused before ps starts.
    for args in [
        r#"["eww", "-e"]"#,
        r#"["e"]"#,
        r#"["-e", "e"]"#,
        r#"["axe"]"#,
        r#"["-ef"]"#,
    ] {
        w.script(
            &env.store,
            "main",
            &format!(r#"exec("ps", {args}); ok("ran")"#),
        );
        let run = env.execute(&main_run(), None);
        assert_eq!(run.status, Status::Error, "ps {args}: {}", run.message);
        assert!(
            run.message.contains("is refused"),
            "ps {args}: {}",
            run.message
        );
    }
}

#[test]
fn commands_scripts_start_cannot_read_the_database_the_key_or_the_config() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    add_host_with_password(&w, "r1", "Landlock-secret-1");
    std::fs::write(w.path("hostler.toml"), "[sandbox]\ntimeout = 10\n").expect("config");
    std::fs::write(w.path("notes.txt"), "readable beside it\n").expect("notes");
    let key = format!("{}.key", w.db());
    let app = hostler::app::App::new(Some(w.db()), Some(w.path("hostler.toml"))).expect("app");
    let mut env = app.env(w.store()).expect("env");
    env.allow = hostler::session::Allowlist::new(&["cat".to_string(), "grep".to_string()])
        .expect("allowlist")
        .with_protected(app.protected(&env.store))
        .into();
    let cat = |path: &str| {
        w.script(
            &env.store,
            "main",
            &format!(
                r#"let r = exec("cat", [{path:?}]); ok(`${{r.code}}|${{r.stdout}}|${{r.stderr}}`)"#
            ),
        );
        env.execute(&main_run(), None).message
    };
    let wal = format!("{}-wal", w.db());
    for path in [
        w.db(),
        wal,
        key.clone(),
        w.path("hostler.toml").display().to_string(),
    ] {
        if !std::path::Path::new(&path).exists() {
            continue;
        }
        let said = cat(&path);
        assert!(
            said.starts_with("1|") && said.contains("Permission denied"),
            "cat {path}: {said}"
        );
    }
    // What is not protected still reads: a file beside the database, and the system's.
    assert!(cat(&w.path("notes.txt").display().to_string()).starts_with("0|readable beside it"));
    assert!(cat("/etc/hostname").starts_with("0|"));
    // grep, which README suggests for check_file, cannot read the key either.
    w.script(
        &env.store,
        "main",
        &format!(r#"let r = exec("grep", ["-r", "", {key:?}]); ok(`${{r.code}}`)"#),
    );
    assert_eq!(env.execute(&main_run(), None).message, "2");
}

#[test]
fn a_password_never_goes_on_the_command_line() {
    let w = Work::new();
    for url in [
        "postgres://hostler:Pw-on-argv-1@127.0.0.1:1/x",
        "postgres://hostler@127.0.0.1:1/x?password=Pw-on-argv-1",
        "mssql://sa:Pw-on-argv-1@127.0.0.1:1/x",
    ] {
        let out = w.run(&["--db", url, "status"]);
        assert_eq!(code(&out), 1, "{url}");
        let e = stderr(&out);
        assert!(
            e.contains("--db holds a password") && e.contains("HOSTLER_DB"),
            "{e}"
        );
        assert!(!e.contains("Pw-on-argv-1"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // Without a password, --db is taken as before (here: nothing listens).
    let out = w.run(&["--db", "postgres://hostler@127.0.0.1:1/x", "status"]);
    assert!(
        !stderr(&out).contains("--db holds a password"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_script_cannot_read_the_database_password_from_hostlers_environment() {
    let Some(pg) = crate::pgcluster::Pg::start() else {
        return;
    };
    let url = pg
        .createdb("hostler_environ")
        .replace("hostler@", "hostler:Env-secret-77@");
    let w = Work::new();
    let hostler = |args: &[&str]| {
        w.cmd(args)
            .env("HOSTLER_DB", &url)
            .output()
            .expect("hostler")
    };
    assert_eq!(code(&hostler(&["init"])), 0);
    // A job that reads its parent's (hostler's) environment, as `ps eww` did.
    w.peek_at_the_parents_environment("hostler.toml");
    let out = hostler(&["script", "add", "peek", "peek.rhai"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = hostler(&["--config", "hostler.toml", "run", "peek"]);
    let said = stdout(&out);
    assert!(said.starts_with("OK"), "{said}{}", stderr(&out));
    // It read the environment (the run worked on that database), without the password.
    assert!(said.contains("HOSTLER_DB_FD="), "{said}");
    assert!(!said.contains("Env-secret-77"), "{said}");
}

fn main_run() -> RunRequest {
    RunRequest {
        script: "main".into(),
        ..RunRequest::default()
    }
}
