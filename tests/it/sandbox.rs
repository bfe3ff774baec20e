//! The Rhai sandbox: limits, the deadline, import from the database, and the first API,
//! all through `Runner::execute` exactly as `hostler run` and monitord use it.

use std::time::{Duration, Instant};

use hostler::config::Sandbox;
use hostler::script::{RunRequest, check_syntax};
use hostler::store::{Method, NewHost, NewRun, NewScript, ScriptKind, Status};

use crate::util::Work;

fn run(w: &Work, source: &str) -> NewRun {
    run_with(w, source, None)
}

fn run_with(w: &Work, source: &str, limits: Option<Sandbox>) -> NewRun {
    w.run_script(
        &["sh", "echo", "cat", "printf", "tty", "true"],
        limits,
        source,
    )
}

#[test]
fn results_map_to_nagios_states_with_perfdata() {
    let w = Work::new();
    let r = run(&w, r#"warning("disk 85%", #{used: 85})"#);
    assert_eq!(
        (r.status, r.message.as_str(), r.perfdata.as_deref()),
        (Status::Warning, "disk 85%", Some("used=85"))
    );
    assert_eq!(
        run(&w, r#"critical("down", "rta=10ms;100;200")"#)
            .perfdata
            .as_deref(),
        Some("rta=10ms;100;200")
    );
    assert_eq!(run(&w, "ok()").status, Status::Ok);
    assert_eq!(run(&w, r#"unknown("?")"#).status, Status::Unknown);
    assert_eq!(
        run(&w, r#"if true { return critical("early") } ok("late")"#).message,
        "early"
    );
}

#[test]
fn a_result_is_never_made_up() {
    let w = Work::new();
    // No result call: UNKNOWN, saying what to do, never OK.
    let r = run(&w, r#"let x = 1 + 1; print("done")"#);
    assert_eq!(
        (r.status, r.message.as_str()),
        (Status::Unknown, hostler::script::NO_RESULT)
    );
    let r = run(&w, r#""all fine""#);
    assert_eq!(r.status, Status::Unknown, "{}", r.message);
    assert!(r.message.contains("all fine"), "{}", r.message);
    // The catch block's result is the script's result (it used to be dropped: OK).
    let r = run(
        &w,
        r#"try { throw "connection refused"; ok("up") } catch (e) { critical(`down: ${e}`) }"#,
    );
    assert_eq!(
        (r.status, r.message.as_str()),
        (Status::Critical, "down: connection refused")
    );
    // A result ends the script at once: no try/catch, function or later line can change it.
    let r = run(
        &w,
        r#"try { ok("up") } catch (e) { critical("swallowed") }"#,
    );
    assert_eq!((r.status, r.message.as_str()), (Status::Ok, "up"));
    let r = run(
        &w,
        r#"fn probe() { try { critical("deep") } catch { } warning("after") }
           probe(); ok("never")"#,
    );
    assert_eq!((r.status, r.message.as_str()), (Status::Critical, "deep"));
    let r = run(&w, r#"ok("first"); critical("second")"#);
    assert_eq!((r.status, r.message.as_str()), (Status::Ok, "first"));
    // ... and from inside an imported module's function.
    let env = w.env(&[], None);
    w.script(
        &env.store,
        "probelib",
        r#"fn probe() { try { unknown("from the library") } catch { } ok("no") }"#,
    );
    w.script(
        &env.store,
        "main",
        r#"import "probelib" as p; try { p::probe() } catch { } critical("no")"#,
    );
    let r = env.execute(
        &RunRequest {
            script: "main".into(),
            ..RunRequest::default()
        },
        None,
    );
    assert_eq!(
        (r.status, r.message.as_str()),
        (Status::Unknown, "from the library")
    );
}

#[test]
fn a_fix_may_end_without_a_result() {
    let w = Work::new();
    let env = w.env(&[], None);
    env.store
        .save_scripts(&[NewScript {
            name: "restart_x",
            source: "//! Restarts x.\n//! kind: fix\nlet done = true;",
            description: None,
            kind: ScriptKind::Fix,
        }])
        .expect("save");
    let req = |script: &str, fix: bool| RunRequest {
        script: script.into(),
        fix,
        ..RunRequest::default()
    };
    // Declared a fix: judged by the re-check, so no result is fine (and not made up as a
    // check state: the message says so).
    let r = env.execute(&req("restart_x", false), None);
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert!(r.message.contains("re-check"), "{}", r.message);
    // Run as a fix by monitord: the same, whatever its header says.
    w.script(&env.store, "plain", "let done = true;");
    assert_eq!(env.execute(&req("plain", true), None).status, Status::Ok);
    assert_eq!(
        env.execute(&req("plain", false), None).status,
        Status::Unknown
    );
    // A fix that fails is still a failure.
    w.script(&env.store, "broken", r#"throw "cannot restart""#);
    assert_eq!(
        env.execute(&req("broken", true), None).status,
        Status::Error
    );
}

#[test]
fn print_and_log_are_captured_into_the_output() {
    let w = Work::new();
    let r = run(&w, r#"print("hello"); log("warn", "careful"); ok("done")"#);
    assert_eq!(r.output, "hello\nwarn: careful\n");
}

#[test]
fn runaway_loop_is_stopped_by_the_operation_limit() {
    let w = Work::new();
    let t = Instant::now();
    let r = run(&w, "let x = 0; loop { x += 1; }");
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("operations"), "{}", r.message);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn deep_recursion_is_stopped() {
    let w = Work::new();
    let t = Instant::now();
    let r = run(&w, "fn f(n) { f(n + 1) } f(0)");
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message.contains("nested deeper") || r.message.to_lowercase().contains("stack"),
        "{}",
        r.message
    );
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn huge_strings_and_arrays_are_stopped() {
    let w = Work::new();
    let r = run(&w, r#"let s = "x"; loop { s += s; }"#);
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message.to_lowercase().contains("too large") || r.message.contains("size"),
        "{}",
        r.message
    );
    let r = run(&w, "let a = []; loop { a += [1, 2, 3, 4, 5, 6, 7, 8]; }");
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message.to_lowercase().contains("too large") || r.message.contains("operations"),
        "{}",
        r.message
    );
}

#[test]
fn the_wall_clock_deadline_stops_a_waiting_script() {
    let w = Work::new();
    let limits = Sandbox {
        timeout: 1.0,
        ..Sandbox::default()
    };
    let t = Instant::now();
    let r = run_with(&w, "loop { sleep(0.05); }", Some(limits));
    assert_eq!(r.status, Status::Timeout, "{}", r.message);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert!(r.message.contains("time limit"), "{}", r.message);
}

#[test]
fn the_default_limits_stop_a_sleeping_loop_within_ten_seconds() {
    let w = Work::new();
    let t = Instant::now();
    let r = run(&w, "loop { sleep(1); }");
    assert_eq!(r.status, Status::Timeout);
    assert!(
        t.elapsed() <= Duration::from_millis(10_500),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn eval_is_disabled() {
    assert!(check_syntax("x", r#"eval("1 + 1")"#).is_err());
    let w = Work::new();
    let r = run(&w, "ok()");
    assert_eq!(r.status, Status::Ok);
}

#[test]
fn syntax_errors_name_the_script_line_and_column() {
    let e = check_syntax("broken", "let a = 1;\nlet b = ;\n").expect_err("syntax error");
    let msg = e.to_string();
    assert!(msg.starts_with("script broken, line 2, column"), "{msg}");
}

#[test]
fn import_resolves_from_the_database_before_the_bundled_library() {
    let w = Work::new();
    let env = w.env(&[], None);
    // The bundled nagioslib has plugin(); a database row of the same name replaces it.
    w.script(
        &env.store,
        "nagioslib",
        r#"fn plugin(n, a) { ok("from the database") }"#,
    );
    w.script(
        &env.store,
        "main",
        r#"import "nagioslib" as n; n::plugin("x", [])"#,
    );
    let req = RunRequest {
        script: "main".into(),
        ..RunRequest::default()
    };
    assert_eq!(env.execute(&req, None).message, "from the database");
    // Editing the row bumps its version, and the next run compiles the new source.
    w.script(
        &env.store,
        "nagioslib",
        r#"fn plugin(n, a) { ok("edited") }"#,
    );
    assert_eq!(env.execute(&req, None).message, "edited");
    // Without the row, the bundled library answers.
    env.store.remove_script("nagioslib").expect("rm");
    w.script(
        &env.store,
        "main",
        r#"import "nagioslib" as n; type_of(n::plugin_at)"#,
    );
    let r = env.execute(&req, None);
    assert_ne!(r.message, "edited", "{}", r.message);
}

/// monitord reads the versions of a claim's scripts once for all its jobs: a run uses that
/// read while it is fresh and names every script the run reads ahead (an edit after the claim
/// runs from the next claim on); a stale read, or one that lacks a name, is read again; and a
/// source read after an edit runs under its own version, which the run records.
#[test]
fn a_run_uses_its_claims_read_of_versions_while_fresh_and_records_what_ran() {
    use hostler::store::VersionsRead;
    let w = Work::new();
    let env = w.env(&[], None);
    w.script(&env.store, "lib", r#"fn v() { "one" }"#);
    w.script(&env.store, "main", r#"import "lib" as l; ok(l::v())"#);
    let req = RunRequest {
        script: "main".into(),
        ..RunRequest::default()
    };
    let first = env.execute(&req, None);
    assert_eq!(
        (first.message.as_str(), first.script_version),
        ("one", Some(1))
    );
    // The claim's read: the script, and what its last run imported.
    let read = env.versions_for(["main", "main"]).expect("read");
    let want: std::collections::HashMap<String, Option<i64>> =
        [("main".to_string(), Some(1)), ("lib".to_string(), Some(1))].into();
    assert_eq!(read.of, want);
    w.script(&env.store, "lib", r#"fn v() { "two" }"#);
    let with = |versions: VersionsRead| RunRequest {
        versions: Some(std::sync::Arc::new(versions)),
        ..req.clone()
    };
    let r = env.execute(&with((*read).clone()), None);
    assert_eq!(r.message, "one", "a fresh read of the claim is the run's");
    let stale = VersionsRead {
        at: read
            .at
            .checked_sub(VersionsRead::FRESH + Duration::from_secs(1))
            .expect("an instant"),
        ..(*read).clone()
    };
    assert_eq!(env.execute(&with(stale), None).message, "two");
    let mut lacking = (*read).clone();
    lacking.of.remove("lib");
    // The run before cached lib's version 2: read again, it is what runs.
    assert_eq!(env.execute(&with(lacking), None).message, "two");
    // A new process (nothing compiled) whose claim read version 1 of main, edited since:
    // the stored source runs, under its own version.
    w.script(&env.store, "main", r#"ok("main two")"#);
    let fresh = w.env(&[], None);
    let r = fresh.execute(&with((*read).clone()), None);
    assert_eq!(
        (r.message.as_str(), r.script_version),
        ("main two", Some(2))
    );
}

/// One engine serves every run: a library with statements at its top is evaluated for each
/// run (its variables are that run's), a library of functions only is shared, and runs on
/// several threads at once each see their own arguments, output and result.
#[test]
fn runs_on_the_shared_engine_each_see_their_own_context() {
    let w = Work::new();
    let env = w.env(&[], None);
    w.script(
        &env.store,
        "who",
        r#"let name = arg("name", "nobody"); export name;"#,
    );
    w.script(&env.store, "fns", r#"fn greet(n) { `hello ${n}` }"#);
    w.script(
        &env.store,
        "main",
        r#"import "who" as w; import "fns" as f; print(w::name); sleep(0.05); ok(f::greet(w::name))"#,
    );
    let req = |name: &str| RunRequest {
        script: "main".into(),
        args: Some(format!(r#"{{"name":"{name}"}}"#)),
        ..RunRequest::default()
    };
    let first = env.execute(&req("ann"), None);
    assert_eq!(first.message, "hello ann");
    let second = env.execute(&req("bob"), None);
    assert_eq!(
        second.message, "hello bob",
        "the library's variable was evaluated again"
    );
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let env = &env;
                let req = req(&format!("n{i}"));
                s.spawn(move || env.execute(&req, None))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("run"))
            .collect()
    });
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.status, Status::Ok, "{}", r.message);
        assert_eq!(r.message, format!("hello n{i}"));
        assert_eq!(
            r.output,
            format!("n{i}\n"),
            "a run's print went to another run"
        );
    }
}

#[test]
fn missing_modules_and_cycles_are_named() {
    let w = Work::new();
    let env = w.env(&[], None);
    w.script(&env.store, "main", r#"import "nosuch" as x; ok()"#);
    let req = RunRequest {
        script: "main".into(),
        ..RunRequest::default()
    };
    let r = env.execute(&req, None);
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("nosuch"), "{}", r.message);
    w.script(&env.store, "a", r#"import "b" as b; fn x() { 1 }"#);
    w.script(&env.store, "b", r#"import "a" as a; fn y() { 2 }"#);
    w.script(&env.store, "main", r#"import "a" as a; ok()"#);
    let t = Instant::now();
    let r = env.execute(&req, None);
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message.contains("import cycle: main -> a -> b -> a"),
        "{}",
        r.message
    );
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn host_variables_and_hosts_reach_the_script() {
    let w = Work::new();
    let env = w.env(&[], None);
    let mut vars = serde_json::Map::new();
    vars.insert("path".into(), serde_json::Value::String("/var".into()));
    env.store
        .add_host(&NewHost {
            name: "db1".into(),
            address: "10.0.0.5".into(),
            method: Some(Method::Ssh),
            tags: vec!["db".into()],
            vars,
            ..NewHost::default()
        })
        .expect("host");
    w.script(&env.store, "main", r#"ok(`${host.name} ${host.address} ${host.port} ${host.method} ${host.vars.path} ${hosts("db").len()} ${host.tags[0]}`)"#);
    let r = env.execute(
        &RunRequest {
            script: "main".into(),
            host: Some("db1".into()),
            ..RunRequest::default()
        },
        None,
    );
    assert_eq!(r.message, "db1 10.0.0.5 22 ssh /var 1 db", "{}", r.message);
}

#[test]
fn notify_is_recorded_and_schedule_queues_a_job() {
    let w = Work::new();
    let env = w.env(&[], None);
    w.script(&env.store, "other", "ok()");
    w.script(
        &env.store,
        "main",
        r#"notify("disk full", "on /"); let id = schedule("other", (), 5, 60); ok(`${id}`)"#,
    );
    let r = env.execute(
        &RunRequest {
            script: "main".into(),
            ..RunRequest::default()
        },
        None,
    );
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert_eq!(
        r.notifications,
        vec![hostler::store::Notice {
            event: hostler::store::Alert::Notify,
            subject: "disk full".to_string(),
            body: "on /".to_string()
        }]
    );
    let jobs = env.store.jobs().expect("jobs");
    assert_eq!(
        (jobs.len(), jobs[0].priority, jobs[0].script.as_str()),
        (1, 5, "other")
    );
    assert!(jobs[0].due_at > hostler::store::now_ms() + 50_000);
    let r = run(&w, r#"schedule("nosuch", (), 0, 0)"#);
    assert!(r.message.contains("nosuch"), "{}", r.message);
}

#[test]
fn regex_helpers() {
    let w = Work::new();
    let r = run(
        &w,
        r#"let c = captures("load 1.5", "load ([0-9.]+)"); ok(`${matches("abc", "^a")} ${c[1]} ${captures("x", "y") == ()}`)"#,
    );
    assert_eq!(r.message, "true 1.5 true");
    assert!(
        run(&w, r#"matches("a", "(")"#)
            .message
            .contains("bad regex")
    );
}

#[test]
fn commands_outside_the_allowlist_are_refused() {
    let w = Work::new();
    let r = run(&w, r#"exec("rm", ["-rf", "/nonexistent"])"#);
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("\"rm\" is not allowed"), "{}", r.message);
    let r = run(&w, r#"spawn("/bin/../bin/rm", [])"#);
    assert!(r.message.contains("not allowed"), "{}", r.message);
    let r = run(
        &w,
        r#"let r = exec("sh", ["-c", "echo out; echo err >&2; exit 3"]); ok(`${r.code}|${r.stdout}|${r.stderr}`)"#,
    );
    assert_eq!(r.message, "3|out\n|err\n");
}

#[test]
fn a_command_starts_clean_in_a_group_of_its_own_and_a_failed_start_says_why() {
    let w = Work::new();
    // What the started command sees of itself (cat reads its own /proc/self): exec starts it
    // by clone and execve, not fork, and resets in between what the daemon's threads set.
    let r = run(
        &w,
        r#"let s = exec("cat", ["/proc/self/status"]).stdout; let t = exec("cat", ["/proc/self/stat"]).stdout; ok(s + t)"#,
    );
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    let field = |name: &str| {
        let line = r.message.lines().find_map(|l| l.strip_prefix(name));
        let hex = line
            .unwrap_or_else(|| panic!("no {name} in {}", r.message))
            .trim();
        u64::from_str_radix(hex, 16).expect("hex")
    };
    assert_eq!(field("SigBlk:"), 0, "no signal stays blocked");
    assert_eq!(
        field("SigIgn:") & (1 << (13 - 1)),
        0,
        "SIGPIPE is not ignored"
    );
    if nix::unistd::geteuid().is_root() {
        assert_eq!(field("CapBnd:") & (1 << 19), 0, "CAP_SYS_PTRACE left");
    }
    // /proc/PID/stat: pid (comm) state ppid pgrp ...
    let stat = r.message.lines().last().expect("stat");
    let pid = stat.split(' ').next().expect("pid");
    let rest: Vec<&str> = stat.rsplit_once(')').expect("comm").1.split(' ').collect();
    assert_eq!(
        rest.get(3),
        Some(&pid),
        "in a process group of its own: {stat}"
    );
    // Ended by a signal: 128 + its number.
    let r = run(&w, r#"ok(`${exec("sh", ["-c", "kill -9 $$"]).code}`)"#);
    assert_eq!(r.message, "137");
    // A file of this test's, by its canonical path (as the allowlist names it).
    let file = |name: &str, text: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let file = w.dir.path().join(name);
        std::fs::write(&file, text).expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let path = file.canonicalize().expect("canonical");
        path.display().to_string()
    };
    // An allowed file that is not executable: the run fails with execve's own reason.
    let path = file("not-a-program", "#!/bin/sh\necho hi\n", 0o644);
    let r = w.run_script(
        &[&path],
        None,
        &format!(r#"exec({path:?}, []); ok("started")"#),
    );
    assert_eq!(r.status, Status::Error, "{}", r.message);
    assert!(r.message.contains("Permission denied"), "{}", r.message);
    assert!(r.message.contains("not-a-program"), "{}", r.message);
    // An executable file without `#!` runs through /bin/sh, as execvp runs it.
    let path = file("no-shebang", "echo \"run by sh: $1\"\n", 0o755);
    let r = w.run_script(
        &[&path],
        None,
        &format!(r#"let r = exec({path:?}, ["arg1"]); ok(`${{r.code}}|${{r.stdout}}`)"#),
    );
    assert_eq!(r.message, "0|run by sh: arg1\n", "{}", r.message);
}

#[test]
fn exec_keeps_the_first_mebibyte_of_a_flood_and_leaves_what_the_command_started_running() {
    let w = Work::new();
    let marker = format!("3.{}", std::process::id());
    // 3 MB on stdout (the run keeps its first 1 MiB, the rest is drained so the command never
    // blocks), a line on stderr, then a background job that holds stdout open after the
    // command's exit: exec returns within about a second of the exit, the job still running.
    let started = Instant::now();
    let r = run(
        &w,
        &format!(
            r#"let r = exec("sh", ["-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo err >&2; (sleep {marker}; echo late) & exit 4"]);
               ok(`${{r.code}}|${{r.stdout.len()}}|${{r.stdout.contains("late")}}|${{r.stderr}}`)"#
        ),
    );
    let took = started.elapsed();
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert_eq!(r.message, "4|1048576|false|err\n");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2900),
        "{took:?}"
    );
    let running = || crate::util::process_running(&marker);
    assert!(running(), "the background job was killed with the run");
    assert!(crate::util::wait_for(Duration::from_secs(5), || !running()));
}

#[test]
fn a_panic_inside_the_engine_becomes_this_runs_error_not_a_crash() {
    let w = Work::new();
    // `__hostler_test_panic` exists in debug builds only: a stand-in for a bug in an API call.
    let r = run(
        &w,
        r#"print("before"); __hostler_test_panic(); ok("never")"#,
    );
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("internal error"), "{}", r.message);
    assert!(r.message.contains("deliberate test panic"), "{}", r.message);
    assert_eq!(r.output, "before\n");
    // The next run in the same process is unaffected.
    assert_eq!(run(&w, r#"ok("after")"#).status, Status::Ok);
}

#[test]
fn a_process_that_floods_output_fails_the_wait_within_the_runs_memory() {
    let w = Work::new();
    let limits = Sandbox {
        max_memory: 32 << 20,
        timeout: 60.0,
        ..Sandbox::default()
    };
    // `yes` never prints the awaited text: before the cap the buffer grew without end.
    let started = Instant::now();
    let run = w.run_script(
        &["yes"],
        Some(limits.clone()),
        r#"let p = spawn("yes", []); p.read_until("never comes", 50)"#,
    );
    assert_eq!(run.status, Status::Error, "{}", run.message);
    assert!(
        run.message.contains("sent more than") && run.message.contains("never comes"),
        "{}",
        run.message
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the wait ran to its timeout"
    );
}

#[test]
fn a_jobs_own_timeout_stays_inside_the_sandbox_maximum() {
    let w = Work::new();
    let limits = Sandbox {
        max_timeout: 1.0,
        ..Sandbox::default()
    };
    let env = w.env(&[], Some(limits));
    w.script(&env.store, "main", "sleep(30); ok(\"slept\")");
    let started = Instant::now();
    let run = env.execute(
        &RunRequest {
            script: "main".into(),
            timeout: Some(Duration::from_secs(600)),
            ..RunRequest::default()
        },
        None,
    );
    assert_eq!(run.status, Status::Timeout, "{}", run.message);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
