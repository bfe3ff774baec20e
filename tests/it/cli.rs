//! The real binary, end to end, in a temporary folder with a cleared environment.

use crate::util::{Work, code, have, stderr, stdout};

fn init(w: &Work) {
    let o = w.run(&["init"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("added host localhost"),
        "{}",
        stdout(&o)
    );
    let o = w.run(&["host", "show", "localhost", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn add_script(w: &Work, name: &str, source: &str) {
    let o = w.run_with_input(&["script", "add", name, "-"], source);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn init_seeds_the_bundled_scripts_once() {
    let w = Work::new();
    let o = w.run(&["init"]);
    assert!(
        stdout(&o).contains("added bundled scripts: check_cert, check_disk"),
        "{}",
        stdout(&o)
    );
    let o = w.run(&["init"]);
    assert!(stdout(&o).contains("already present"), "{}", stdout(&o));
    let o = w.run(&["script", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let names: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"check_disk") && names.contains(&"nagioslib"),
        "{names:?}"
    );
}

#[test]
fn run_exits_with_the_nagios_code_of_the_result() {
    let w = Work::new();
    init(&w);
    for (src, want, line) in [
        (r#"ok("fine")"#, 0, "OK: fine"),
        (r#"warning("meh", "x=1")"#, 1, "WARNING: meh | x=1"),
        (r#"critical("bad")"#, 2, "CRITICAL: bad"),
        (r#"unknown("eh")"#, 3, "UNKNOWN: eh"),
        ("let x = ;", 3, "UNKNOWN"),
        (r#"throw "boom""#, 3, "UNKNOWN (error): script s: boom"),
    ] {
        // A syntax error cannot be saved, so write that one through SQL.
        if src == "let x = ;" {
            let o = w.run(&[
                "sql",
                "UPDATE scripts SET source = 'let x = ;' WHERE name = 's'",
            ]);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
        } else {
            add_script(&w, "s", src);
        }
        let o = w.run(&["run", "s", "--host", "localhost"]);
        assert_eq!(code(&o), want, "{src}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).starts_with(line), "{src}: {}", stdout(&o));
    }
}

#[test]
fn the_bundled_disk_check_runs_against_localhost() {
    let w = Work::new();
    init(&w);
    let o = w.run(&["run", "check_disk", "--host", "localhost", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["status"], "ok", "{v}");
    assert!(
        v["perfdata"]
            .as_str()
            .unwrap_or_default()
            .starts_with("'/'="),
        "{v}"
    );
    let o = w.run(&["runs", "--json"]);
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    // The old name is an alias: the same answer, also after top-level options.
    let old = w.run(&["--db", &w.db(), "history", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&old.stdout).expect("json"),
        h
    );
    assert_eq!(h[0]["script"], "check_disk");
    let id = h[0]["id"].as_i64().expect("id").to_string();
    let o = w.run(&["show-run", &id]);
    assert!(
        stdout(&o).contains("--- transcript ---") && stdout(&o).contains("s1 <-"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn nagioslib_maps_a_real_monitoring_plugin() {
    let plugin = "/usr/lib/nagios/plugins/check_dummy";
    if !have(plugin, "Debian's monitoring-plugins-basic") {
        return;
    }
    let w = Work::new();
    init(&w);
    add_script(
        &w,
        "dummy",
        r#"import "nagioslib" as n; n::plugin("check_dummy", ["1", "half full"])"#,
    );
    let o = w.run(&["run", "dummy", "--host", "localhost"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("WARNING: WARNING: half full"),
        "{}",
        stdout(&o)
    );
    add_script(
        &w,
        "load",
        r#"import "nagioslib" as n; n::plugin("check_load", ["-w", "999,999,999", "-c", "999,999,999"])"#,
    );
    let o = w.run(&["run", "load", "--host", "localhost"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("| load1="),
        "perfdata is split off: {}",
        stdout(&o)
    );
}

#[test]
fn unknown_host_or_script_is_one_line_and_non_zero() {
    let w = Work::new();
    init(&w);
    let o = w.run(&["run", "check_disk", "--host", "nosuch"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (3, "UNKNOWN: host \"nosuch\" not found\n")
    );
    let o = w.run(&["run", "nosuch"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (3, "UNKNOWN: script \"nosuch\" not found\n")
    );
    let o = w.run(&["host", "show", "nosuch"]);
    assert_eq!(
        (code(&o), stderr(&o).as_str()),
        (1, "hostler: host \"nosuch\" not found\n")
    );
    let o = w.run(&["script", "rm", "nosuch"]);
    assert_eq!((code(&o), stderr(&o).lines().count()), (1, 1));
}

#[test]
fn a_script_with_a_syntax_error_is_not_saved() {
    let w = Work::new();
    init(&w);
    let o = w.run_with_input(&["script", "add", "bad", "-"], "let a = 1;\nlet = 2;\n");
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.starts_with("hostler: script bad, line 2, column"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let o = w.run(&["script", "show", "bad"]);
    assert_eq!(code(&o), 1, "nothing was saved");
}

#[test]
fn passwords_come_from_stdin_and_are_never_shown() {
    let w = Work::new();
    init(&w);
    let o = w.run_with_input(
        &[
            "host",
            "add",
            "r1",
            "--address",
            "192.0.2.7",
            "--user",
            "admin",
            "--password-stdin",
            "--tag",
            "core",
        ],
        "pa55word\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for args in [
        vec!["host", "show", "r1"],
        vec!["host", "show", "r1", "--json"],
        vec!["host", "list", "--json"],
    ] {
        let o = w.run(&args);
        assert!(
            !stdout(&o).contains("pa55word"),
            "{args:?} leaked the secret"
        );
    }
    assert!(stdout(&w.run(&["host", "show", "r1"])).contains("stored (hidden)"));
    for q in [
        "SELECT name, secret FROM hosts",
        "SELECT secret AS s FROM hosts",
        "SELECT upper(secret) FROM hosts",
    ] {
        let o = w.run(&["sql", q, "--json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(
            !stdout(&o).to_lowercase().contains("pa55word"),
            "{q} leaked the secret: {}",
            stdout(&o)
        );
        // Read as NULL under SQLite's authorizer, whatever the expression.
        let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        let r1 = rows.as_array().and_then(|a| a.get(1)).expect("r1's row");
        assert!(
            r1.as_object()
                .is_some_and(|m| m.iter().any(|(k, v)| k != "name" && v.is_null())),
            "{q}: {r1}"
        );
    }
    let o = w.run_with_input(
        &["host", "add", "r2", "--address", "x", "--password-stdin"],
        "",
    );
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("stdin held no password"));
}

#[test]
fn sql_json_is_an_array_of_row_objects_with_typed_values() {
    let w = Work::new();
    init(&w);
    let o = w.run(&[
        "sql",
        "SELECT name, port, site, 2 + 3 AS n, 1.5 AS f, x'ff00' AS b FROM hosts",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        v,
        serde_json::json!([{"name": "localhost", "port": null, "site": null, "n": 5, "f": 1.5, "b": "/wA="}])
    );
    // Other listings give times in RFC 3339, the epoch milliseconds beside them.
    // (Thresholds no busy machine reaches: this is about the listing, not the load.)
    let o = w.run(&[
        "run",
        "check_load",
        "--arg",
        "warn=1000",
        "--arg",
        "crit=2000",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = w.run(&["runs", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let started = v[0]["started_at"].as_str().expect("a string");
    assert!(
        started.len() == 24 && started.ends_with('Z') && started.as_bytes()[10] == b'T',
        "{started}"
    );
    let ms = v[0]["started_at_ms"].as_i64().expect("ms");
    assert_eq!(hostler::when::rfc3339(ms).as_deref(), Some(started));
    let o = w.run(&["sql", "SELEKT nonsense"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("syntax error"), "{}", stderr(&o));
}

#[test]
fn print_ddl_prints_each_dialect_and_rejects_unknown_ones() {
    let w = Work::new();
    let o = w.run(&["init", "--print-ddl", "mssql2000"]);
    assert!(stdout(&o).contains("CREATE TABLE [hosts]") && stdout(&o).contains("GO"));
    assert!(
        !w.path("hostler.db").exists(),
        "print-ddl touches no database"
    );
    let o = w.run(&["init", "--print-ddl", "oracle"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("unknown SQL dialect \"oracle\""));
}

#[test]
fn config_rejects_unknown_keys_by_name() {
    let w = Work::new();
    std::fs::write(
        w.path("c.toml"),
        "[sandbox]\ntimeout = 5\nmax_opertions = 1\n",
    )
    .expect("write");
    let o = w.run(&["--config", "c.toml", "jobs"]);
    assert_eq!(code(&o), 1);
    let e = stderr(&o);
    assert!(e.contains("max_opertions") && e.contains("line 3"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn config_refuses_numbers_that_are_not_finite_by_key() {
    let w = Work::new();
    for (text, key) in [
        (
            "[sessions]\nconnect_timeout = nan\n",
            "sessions.connect_timeout",
        ),
        ("[sandbox]\ntimeout = inf\n", "sandbox.timeout"),
        (
            "[monitord]\npoll_interval = -inf\n",
            "monitord.poll_interval",
        ),
        ("[history]\nkeep_days = +nan\n", "history.keep_days"),
    ] {
        std::fs::write(w.path("c.toml"), text).expect("write");
        let o = w.run(&["--config", "c.toml", "serve", "--no-demo"]);
        assert_eq!(code(&o), 1, "{text}");
        let e = stderr(&o);
        assert!(e.contains(key) && e.contains("finite"), "{text}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn config_limits_apply_to_runs() {
    let w = Work::new();
    init(&w);
    std::fs::write(w.path("c.toml"), "[sandbox]\ntimeout = 0.5\n").expect("write");
    add_script(&w, "slow", "sleep(5); ok()");
    let o = w.run(&["--config", "c.toml", "run", "slow"]);
    assert_eq!(code(&o), 3);
    assert!(
        stdout(&o).starts_with("UNKNOWN (timeout)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn script_import_and_export_round_trip() {
    let w = Work::new();
    init(&w);
    std::fs::create_dir(w.path("in")).expect("mkdir");
    std::fs::write(w.path("in/one.rhai"), "//! the first\nok(\"1\")").expect("write");
    std::fs::write(w.path("in/two.rhai"), "ok(\"2\")").expect("write");
    let o = w.run(&["script", "import", "in"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&w.run(&["run", "one"])), "OK: 1\n");
    // A broken file makes the whole import fail, and nothing of it is saved.
    std::fs::write(w.path("in/three.rhai"), "let = ;").expect("write");
    std::fs::write(w.path("in/one.rhai"), "ok(\"changed\")").expect("write");
    let o = w.run(&["script", "import", "in"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&w.run(&["run", "one"])), "OK: 1\n");
    let o = w.run(&["script", "export", "out"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(w.path("out/two.rhai")).expect("read"),
        "ok(\"2\")"
    );
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let w = Work::new();
    init(&w);
    let mut child = w
        .cmd(&["init", "--print-ddl", "postgres"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("wait");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let w = Work::new();
    let o = w.run(&["frobnicate"]);
    assert_eq!(code(&o), 2);
    let o = w.run(&["--help"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("host") && stdout(&o).contains("show-run"));
    let o = w.run(&["host", "add", "--help"]);
    assert!(stdout(&o).contains("--password-stdin"));
}

#[test]
fn queue_lists_what_scripts_scheduled() {
    let w = Work::new();
    init(&w);
    add_script(
        &w,
        "later",
        r#"schedule("check_disk", "localhost", 7, 3600); ok()"#,
    );
    assert_eq!(code(&w.run(&["run", "later"])), 0);
    let o = w.run(&["queue", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let old = w.run(&["jobs", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&old.stdout).expect("json"),
        v,
        "jobs is queue's old name"
    );
    assert_eq!(
        (
            v[0]["script"].as_str(),
            v[0]["host"].as_str(),
            v[0]["priority"].as_i64()
        ),
        (Some("check_disk"), Some("localhost"), Some(7))
    );
}

#[test]
fn the_example_config_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hostler.example.toml");
    let c = hostler::config::Config::load(std::path::Path::new(path)).expect("example config");
    assert_eq!(c.monitord.per_host, 1);
}

#[test]
fn serve_seeds_the_demo_runs_it_and_stops_on_sigterm() {
    let w = Work::new();
    let mut child = w
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let store = w.store_when_ready();
    let ran = crate::util::wait_for(std::time::Duration::from_secs(20), || {
        store
            .runs(&hostler::store::RunFilter {
                limit: 10,
                summary: false,
                ..Default::default()
            })
            .is_ok_and(|r| r.len() >= 2)
    });
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let t = std::time::Instant::now();
    let _ = child.wait();
    let o = child.wait_with_output().expect("output");
    assert!(ran, "the demo checks ran: {}", stderr(&o));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("seeded the demo"), "{}", stdout(&o));
    // The first serve made the web admin and showed its password once, on the terminal only.
    let err = stderr(&o);
    assert!(err.contains("web page on http://127.0.0.1:"), "{err}");
    // Its stderr is a pipe here, as under systemd: the password goes to a file only this user
    // can read, never to the log.
    let file = format!("{}.admin-password", w.db());
    assert!(err.contains(&file), "{err}");
    let password = std::fs::read_to_string(&file).expect("password file");
    let password = password.trim();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let admin = w.store().find_user("admin").expect("read").expect("admin");
    assert!(hostler::web::auth::verify_password(password, &admin.password_hash).expect("not busy"));
    assert!(
        !err.contains(password),
        "the password is not in the log: {err}"
    );
    let s = stdout(&w.run(&["schedules"]));
    assert!(s.contains("check_disk") && s.contains("every 1m"), "{s}");
}

#[test]
fn schedule_validates_and_lists_and_removes() {
    let w = Work::new();
    init(&w);
    let o = w.run(&[
        "schedule",
        "check_disk",
        "--host",
        "localhost",
        "--cron",
        "not a cron",
    ]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("bad cron expression"), "{}", stderr(&o));
    let o = w.run(&[
        "schedule",
        "check_disk",
        "--host",
        "localhost",
        "--fix",
        "check_load",
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("--fix needs a timing"),
        "{}",
        stderr(&o)
    );
    let o = w.run(&[
        "schedule",
        "check_disk",
        "--host",
        "localhost",
        "--every",
        "1m",
        "--retries",
        "0",
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("retries must be 1 to 100"),
        "{}",
        stderr(&o)
    );
    let o = w.run(&[
        "schedule",
        "check_disk",
        "--host",
        "localhost",
        "--every",
        "5m",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["timing"]["every"], 300_000);
    let id = v["id"].as_i64().expect("id").to_string();
    let o = w.run(&[
        "schedule",
        "check_disk",
        "--host",
        "nosuch",
        "--every",
        "5m",
    ]);
    assert_eq!(
        (code(&o), stderr(&o).as_str()),
        (1, "hostler: host \"nosuch\" not found\n")
    );
    let o = w.run(&[
        "schedule",
        "check_disk",
        "--host",
        "localhost",
        "--at",
        "2030-01-01 04:00",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = w.run(&["schedules", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(code(&w.run(&["cancel", "--schedule", &id])), 0);
    let o = w.run(&["cancel", "--schedule", &id]);
    assert_eq!(
        (code(&o), stderr(&o).as_str()),
        (
            1,
            format!("hostler: schedule \"{id}\" not found\n").as_str()
        )
    );
    // Now: one job per host; the same again is not queued twice.
    let o = w.run(&["schedule", "check_disk", "--host", "localhost"]);
    assert!(stdout(&o).starts_with("queued job"), "{}", stdout(&o));
    let o = w.run(&["schedule", "check_disk", "--host", "localhost"]);
    assert!(
        stdout(&o).starts_with("already queued as job"),
        "{}",
        stdout(&o)
    );
    let job = serde_json::from_slice::<serde_json::Value>(&w.run(&["jobs", "--json"]).stdout)
        .expect("json")[0]["id"]
        .to_string();
    let o = w.run(&["cancel", &job]);
    assert!(stdout(&o).contains("cancelled job"), "{}", stdout(&o));
    let h = stdout(&w.run(&["history", "--status", "cancelled"]));
    assert!(h.contains("CANCELLED"), "{h}");
}

#[test]
fn the_bundled_checks_take_numeric_thresholds_and_load_is_judged_per_cpu() {
    let w = Work::new();
    init(&w);
    let store = w.store();
    // Numbers, as the web form stores them: 0 per CPU warns whatever the load.
    let vars: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"warn": 0, "crit": 1000}"#).expect("vars");
    store
        .add_host(&hostler::store::NewHost {
            name: "busy".into(),
            address: "127.0.0.1".into(),
            method: Some(hostler::store::Method::Local),
            vars,
            ..Default::default()
        })
        .expect("host");
    drop(store);
    // The disk check takes numbers too (it failed with "Function not found: parse_int (i64)").
    let o = w.run(&["run", "check_disk", "--host", "busy"]);
    assert_eq!(code(&o), 1, "{} {}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("WARNING: / is "), "{}", stdout(&o));
    let o = w.run(&["run", "check_load", "--host", "busy"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out} {}", stderr(&o));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        out.starts_with("WARNING: load ") && out.contains(&format!("on {cpus} CPUs")),
        "{out}"
    );
    assert!(out.contains(&format!("cpus={cpus}")), "{out}");
}

#[test]
fn habits_version_did_you_mean_and_dash_c_after_global_options() {
    let w = Work::new();
    let o = w.run(&["--version"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o).trim(),
        format!("hostler {}", env!("CARGO_PKG_VERSION"))
    );
    for (args, hint, usage) in [
        (
            &["serv"][..],
            "Did you mean 'serve'?",
            "Run 'hostler --help' for usage.",
        ),
        (
            &["host", "lst"][..],
            "Did you mean 'list'?",
            "Run 'hostler host --help' for usage.",
        ),
        (
            &["schedule", "check_disk", "--evry", "1m"][..],
            "Did you mean '--every'?",
            "Run 'hostler schedule --help' for usage.",
        ),
    ] {
        let o = w.run(args);
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(err.contains(hint) && err.contains(usage), "{args:?}: {err}");
    }
    // Nothing close: no guess.
    assert!(!stderr(&w.run(&["zzzzzz"])).contains("Did you mean"));
    let db = w.path("other.db").display().to_string();
    let o = w.run(&["--db", &db, "-c", "40 + 2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "42");
}

#[test]
fn read_commands_on_a_missing_database_say_so_and_create_nothing() {
    let w = Work::new();
    let missing = w.path("typo.db").display().to_string();
    for args in [
        &["status"][..],
        &["runs"][..],
        &["queue"][..],
        &["host", "list"][..],
        &["script", "show", "x"][..],
        &["downtime", "list"][..],
    ] {
        let mut all = vec!["--db", missing.as_str()];
        all.extend_from_slice(args);
        let o = w.run(&all);
        let err = stderr(&o);
        assert_eq!(code(&o), 1, "{args:?}");
        assert!(
            err.contains(&format!("no database at {missing}")) && err.contains("hostler init"),
            "{args:?}: {err}"
        );
    }
    assert!(
        !std::path::Path::new(&missing).exists(),
        "nothing was created"
    );
    // A command that writes still creates it.
    assert_eq!(code(&w.run(&["--db", &missing, "init"])), 0);
    assert_eq!(code(&w.run(&["--db", &missing, "status"])), 0);
}

#[test]
fn ask_password_without_a_terminal_is_a_clear_error() {
    let w = Work::new();
    init(&w);
    // setsid: no controlling terminal, as under cron or systemd.
    let o = w
        .cmd_with(
            "setsid",
            &[
                &crate::util::bin(),
                "host",
                "add",
                "r1",
                "--address",
                "192.0.2.1",
                "--ask-password",
            ],
        )
        .output()
        .expect("setsid");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--ask-password needs a terminal")
            && stderr(&o).contains("--password-stdin"),
        "{}",
        stderr(&o)
    );
    assert_ne!(code(&w.run(&["host", "show", "r1"])), 0, "nothing added");
}

#[test]
fn an_identical_schedule_is_refused_and_an_unchanged_import_keeps_its_version() {
    let w = Work::new();
    init(&w);
    let args = [
        "schedule",
        "check_disk",
        "--host",
        "localhost",
        "--every",
        "5m",
    ];
    assert_eq!(code(&w.run(&args)), 0);
    let o = w.run(&args);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("schedule 1 already runs check_disk on localhost every 5m")
            && stderr(&o).contains("hostler cancel --schedule 1"),
        "{}",
        stderr(&o)
    );
    // Another timing is another schedule.
    assert_eq!(
        code(&w.run(&[
            "schedule",
            "check_disk",
            "--host",
            "localhost",
            "--every",
            "10m"
        ])),
        0
    );

    let dir = w.path("lib");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("mine.rhai"), "//! kind: check\nok(\"fine\")\n").expect("write");
    let import = ["script", "import", dir.to_str().expect("path")];
    let version = |w: &Work| -> i64 {
        let v: serde_json::Value =
            serde_json::from_slice(&w.run(&["script", "list", "--json"]).stdout).expect("json");
        v.as_array()
            .expect("list")
            .iter()
            .find(|s| s["name"] == "mine")
            .and_then(|s| s["version"].as_i64())
            .expect("mine")
    };
    assert_eq!(code(&w.run(&import)), 0);
    assert_eq!(version(&w), 1);
    assert_eq!(code(&w.run(&import)), 0);
    assert_eq!(version(&w), 1, "unchanged: the same version");
    std::fs::write(dir.join("mine.rhai"), "//! kind: check\nok(\"better\")\n").expect("write");
    assert_eq!(code(&w.run(&import)), 0);
    assert_eq!(version(&w), 2);
}

#[test]
fn a_run_that_cannot_be_recorded_is_unknown_with_the_reason() {
    let w = Work::new();
    init(&w);
    add_script(
        &w,
        "big",
        r#"let s = ""; for i in 0..5000 { s += "0123456789012345678901234567890123456789"; } print(s); ok("fine")"#,
    );
    // Files may grow to 32 KiB (with SIGXFSZ ignored, a larger write fails as a full disk
    // would): the database opens, the run's 200 KB of output cannot be written.
    let o = w
        .cmd_with(
            "sh",
            &[
                "-c",
                "trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\"",
                &crate::util::bin(),
                "run",
                "big",
            ],
        )
        .output()
        .expect("sh");
    let out = stdout(&o);
    assert_eq!(code(&o), 3, "{out} {}", stderr(&o));
    assert!(
        out.starts_with(
            "UNKNOWN: the run said OK: fine, but it could not be recorded: database error"
        ),
        "{}",
        &out[..out.len().min(300)]
    );
    assert!(
        !stdout(&w.run(&["runs"])).contains("big"),
        "nothing half-written"
    );
}

#[test]
fn extra_commands_add_to_the_defaults_and_allowed_commands_replaces_them() {
    let w = Work::new();
    init(&w);
    add_script(
        &w,
        "both",
        r#"let a = exec("true", []); let b = exec("df", ["-P", "/"]); ok(`${a.code} ${b.code}`)"#,
    );
    std::fs::write(
        w.path("extra.toml"),
        "[sandbox]\nextra_commands = [\"true\"]\n",
    )
    .expect("cfg");
    let o = w.run(&["--config", "extra.toml", "run", "both"]);
    assert_eq!(
        (code(&o), stdout(&o).trim()),
        (0, "OK: 0 0"),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        w.path("only.toml"),
        "[sandbox]\nallowed_commands = [\"true\"]\n",
    )
    .expect("cfg");
    let o = w.run(&["--config", "only.toml", "run", "both"]);
    assert_ne!(code(&o), 0);
    assert!(
        stdout(&o).contains("\"df\" is not allowed"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn host_edit_changes_only_what_it_is_given() {
    let w = Work::new();
    init(&w);
    let o = w.run(&[
        "host",
        "add",
        "web1",
        "--address",
        "192.0.2.10",
        "--user",
        "admin",
        "--tag",
        "web",
        "--var",
        "warn=70",
        "--var",
        "path=/srv",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let show = |w: &Work| -> serde_json::Value {
        serde_json::from_slice(&w.run(&["host", "show", "web1", "--json"]).stdout).expect("json")
    };
    let o = w.run_with_input(
        &[
            "host",
            "edit",
            "web1",
            "--address",
            "192.0.2.11",
            "--tag",
            "web",
            "--tag",
            "eu",
            "--var",
            "path=",
            "--password-stdin",
        ],
        "s3cret-Pass\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).contains("s3cret"), "{}", stdout(&o));
    let h = show(&w);
    let h = if h["host"].is_object() {
        h["host"].clone()
    } else {
        h
    };
    assert_eq!(h["address"], "192.0.2.11");
    assert_eq!(h["username"], "admin", "unchanged");
    assert_eq!(h["tags"], serde_json::json!(["web", "eu"]));
    assert_eq!(
        h["vars"],
        serde_json::json!({"warn": "70"}),
        "path= removed it"
    );
    assert_eq!(h["has_secret"], true);
    assert_eq!(
        code(&w.run(&["host", "edit", "web1", "--clear-password"])),
        0
    );
    let h = show(&w);
    let h = if h["host"].is_object() {
        h["host"].clone()
    } else {
        h
    };
    assert_eq!(
        (h["has_secret"].clone(), h["address"].clone()),
        (serde_json::json!(false), serde_json::json!("192.0.2.11"))
    );
    let o = w.run(&["host", "edit", "nope", "--address", "x"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
}

#[test]
fn global_options_work_after_the_subcommand() {
    let w = Work::new();
    let other = w.path("other.db");
    let other = other.to_str().expect("path");
    // HOSTLER_DB names the work folder's database, which does not exist: only a hoisted
    // --db reaches the other one.
    let o = w.run(&["init", "--db", other]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = w.run(&["runs", "--json", "--db", other, "-v"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "[]");
    let o = w.run(&["sql", "--db", other, "SELECT 7 AS x", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains('7'), "{}", stdout(&o));
    // An option's value is never taken for a global option.
    let o = w.run(&["host", "add", "h", "--address", "--db", "--db", other]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = w.run(&["host", "show", "h", "--db", other, "--json"]);
    assert!(
        stdout(&o).contains(r#""address": "--db""#),
        "{}",
        stdout(&o)
    );
    // A global option without its value is still an error that names it.
    let o = w.run(&["runs", "--db"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--db"), "{}", stderr(&o));
}

#[test]
fn bundled_scripts_that_differ_are_named_by_init_and_upgraded_only_when_asked() {
    let w = Work::new();
    let o = w.run(&["init"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).contains("differ"), "{}", stdout(&o));
    // An operator's edit of a bundled script (or an older binary's copy).
    let store = w.store();
    let original = store.script("check_disk").expect("bundled").source;
    let edited = original.replacen(
        "import \"checklib\"",
        "// local tweak\nimport \"checklib\"",
        1,
    );
    assert_ne!(edited, original);
    std::fs::write(w.path("check_disk.rhai"), &edited).expect("write");
    let o = w.run(&["script", "add", "check_disk", "check_disk.rhai"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let version = store.script("check_disk").expect("script").version;
    let o = w.run(&["init"]);
    assert!(
        stdout(&o).contains("differ from this binary's copies: check_disk"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        store.script("check_disk").expect("script").source,
        edited,
        "init changes nothing"
    );
    let o = w.run(&["script", "upgrade", "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("--- check_disk (stored)")
            && out.contains("-    // local tweak")
            && out.contains("nothing changed"),
        "{out}"
    );
    assert_eq!(store.script("check_disk").expect("script").version, version);
    let o = w.run(&["script", "upgrade", "nosuch"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));
    let o = w.run(&["script", "upgrade", "check_disk"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("upgraded: check_disk"),
        "{}",
        stdout(&o)
    );
    let s = store.script("check_disk").expect("script");
    assert_eq!((s.source, s.version), (original, version + 1));
    let o = w.run(&["script", "upgrade"]);
    assert!(
        stdout(&o).contains("every bundled script is as this binary has it"),
        "{}",
        stdout(&o)
    );
}
