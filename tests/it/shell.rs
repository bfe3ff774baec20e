//! `hostler shell` through a real pseudo-terminal, driven by hostler's own expect engine:
//! completion, multi-line input, Ctrl-C, Ctrl-D, login-shell mode; and the completion logic.

use std::path::Path;
use std::time::{Duration, Instant};

use hostler::session::{Guard, LocalProcess, Session};
use hostler::shell::complete::{Words, is_complete};

use crate::util::{Work, have};

const PROMPT: &str = "hostler> ";

/// `hostler shell` (or another argv) in a pty, with a real terminal type so the line editor
/// runs in full.
fn pty_shell(w: &Work, argv: &[&str]) -> Session {
    std::fs::write(
        w.path("c.toml"),
        "[sandbox]\nallowed_commands = [\"cat\"]\n",
    )
    .expect("config");
    let mut args: Vec<String> = vec![
        format!("HOSTLER_DB={}", w.db()),
        format!("HOSTLER_CONFIG={}", w.path("c.toml").display()),
        format!("HOME={}", w.dir.path().display()),
        "TERM=xterm".into(),
    ];
    args.extend(argv.iter().map(|s| s.to_string()));
    let p = LocalProcess::spawn(Path::new("/usr/bin/env"), &args, true).expect("spawn");
    let mut s = Session::new(
        1,
        Box::new(p),
        Guard::new(Some(Duration::from_secs(60))),
        None,
    );
    s.timeout = Duration::from_secs(10);
    s
}

fn hostler() -> &'static str {
    env!("CARGO_BIN_EXE_hostler")
}

fn setup() -> Work {
    let w = Work::new();
    assert_eq!(crate::util::code(&w.run(&["init"])), 0);
    assert_eq!(
        crate::util::code(&w.run(&["host", "add", "webserver01", "--address", "192.0.2.1"])),
        0
    );
    w
}

#[test]
fn tab_completes_a_partial_host_name_in_a_string() {
    let w = setup();
    let mut s = pty_shell(&w, &[hostler(), "shell"]);
    s.read_until(PROMPT, None).expect("prompt");
    s.write("get_host(\"webs").expect("type");
    s.write("\t").expect("tab");
    s.read_until("webserver01\"", None)
        .expect("completed in the line");
    s.write(").address\r").expect("enter");
    s.read_until("192.0.2.1", None)
        .expect("the completed name resolved");
    s.read_until(PROMPT, None).expect("prompt");
    s.write("\x04").expect("ctrl-d");
    s.read_to_end(None).expect("exits on Ctrl-D");
}

#[test]
fn tab_completes_a_method_after_a_dot() {
    let w = setup();
    let mut s = pty_shell(&w, &[hostler(), "shell"]);
    s.read_until(PROMPT, None).expect("prompt");
    s.write("\"a b\".captu\t").expect("type");
    s.read_until("captures", None).expect("completed");
    s.write("(\"(b)\")\r").expect("enter");
    s.read_until("[\"b\", \"b\"]", None)
        .expect("the completed method ran");
}

#[test]
fn a_multi_line_function_definition_works() {
    let w = setup();
    let mut s = pty_shell(&w, &[hostler(), "shell"]);
    s.read_until(PROMPT, None).expect("prompt");
    s.write("fn double(x) {\r").expect("line 1");
    s.write("  x * 2\r").expect("line 2");
    s.write("}\r").expect("line 3");
    // The prompt also shows in redraws of the open lines; the fresh one comes after the
    // closing brace (typing before it races rustyline's switch of terminal modes).
    s.read_until("}", None).expect("line 3 echoed");
    s.read_until(PROMPT, None).expect("defined");
    s.write("double(21)\r").expect("call");
    s.read_until("42", None).expect("the function persisted");
    // An error shows its position and the shell goes on.
    s.write("let = 1\r").expect("bad line");
    s.read_until("error: line 1, column", None)
        .expect("error with position");
    s.write("double(2)\r").expect("call");
    s.read_until("4", None).expect("still alive");
}

#[test]
fn ctrl_c_cancels_a_sleep_and_returns_to_the_prompt() {
    let w = setup();
    let mut s = pty_shell(&w, &[hostler(), "shell"]);
    s.read_until(PROMPT, None).expect("prompt");
    s.write("sleep(10); print(\"slept\")\r").expect("sleep");
    std::thread::sleep(Duration::from_millis(400));
    let t = Instant::now();
    s.write("\x03").expect("ctrl-c");
    s.read_until("cancelled", Some(Duration::from_secs(5)))
        .expect("cancelled");
    s.read_until(PROMPT, Some(Duration::from_secs(5)))
        .expect("prompt again");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    // Sessions opened in one line stay usable in the next, after a cancel too.
    s.write("let c = spawn(\"cat\", []);\r").expect("spawn");
    s.read_until(PROMPT, None).expect("prompt");
    s.write("c.write(\"ping\\n\"); c.read_until(\"ping\", 5).len()\r")
        .expect("use");
    s.read_until("4", None).expect("the session answered");
}

#[test]
fn login_shell_mode_is_entered_through_argv0() {
    let w = setup();
    if !have("/bin/bash", "bash's exec -a sets argv[0]") {
        return;
    }
    let cmd = format!("exec -a -hostler {}", hostler());
    let mut s = pty_shell(&w, &["/bin/bash", "-c", &cmd]);
    s.read_until(PROMPT, None).expect("a login shell prompt");
    s.write(":hosts\r").expect("meta");
    s.read_until("webserver01", None).expect("meta-command");
    s.write(":quit\r").expect("quit");
    s.read_to_end(None).expect("exits");
}

#[test]
fn schedule_in_the_shell_is_the_cli_verb() {
    let w = setup();
    let mut s = pty_shell(&w, &[hostler(), "shell"]);
    s.read_until(PROMPT, None).expect("prompt");
    s.write(":schedule check_disk --host webserver01 --priority 4\r")
        .expect("schedule");
    s.read_until(PROMPT, None).expect("prompt again");
    // Its usage errors are the CLI's, on one line, and the shell goes on.
    s.write(":schedule check_disk --bogus\r").expect("bad");
    s.read_until("Unrecognized argument: --bogus", None)
        .expect("the CLI's error");
    s.write(":quit\r").expect("quit");
    s.read_to_end(None).expect("exits");
    let v: serde_json::Value =
        serde_json::from_slice(&w.run(&["queue", "--json"]).stdout).expect("json");
    assert_eq!(
        (
            v[0]["script"].as_str(),
            v[0]["host"].as_str(),
            v[0]["priority"].as_i64()
        ),
        (Some("check_disk"), Some("webserver01"), Some(4)),
        "{v}"
    );
}

#[test]
fn dash_c_and_stdin_run_once_with_the_status() {
    let w = setup();
    let o = w.run(&["shell", "-c", "critical(\"down\")"]);
    assert_eq!(
        (crate::util::code(&o), crate::util::stdout(&o).as_str()),
        (2, "CRITICAL: down\n")
    );
    let o = w.run_with_input(&["shell"], "let a = [1, 2, 3];\nprint(a.len());\n");
    assert_eq!(
        (crate::util::code(&o), crate::util::stdout(&o).as_str()),
        (0, "3\n")
    );
    let o = w.run(&["shell", "-c", "let = 1"]);
    assert_eq!(crate::util::code(&o), 1);
    assert!(
        crate::util::stderr(&o).contains("line 1, column"),
        "{}",
        crate::util::stderr(&o)
    );
}

fn words() -> Words {
    Words {
        hosts: vec!["web1".into(), "web2".into(), "db1".into()],
        scripts: vec!["check_disk".into(), "loginlib".into()],
        functions: vec![
            (
                "spawn".into(),
                "spawn(cmd: &str, args: Array) -> SessionRef".into(),
            ),
            (
                "read_until".into(),
                "read_until(s: &mut SessionRef, p: &str) -> String".into(),
            ),
            ("hosts".into(), "hosts() -> Array".into()),
        ],
        variables: vec!["session".into()],
    }
}

fn names(c: (usize, Vec<rustyline::completion::Pair>)) -> (usize, Vec<String>) {
    (c.0, c.1.into_iter().map(|p| p.replacement).collect())
}

#[test]
fn completion_logic() {
    let w = words();
    assert_eq!(
        names(w.complete("get_host(\"we", 12)),
        (10, vec!["web1\"".into(), "web2\"".into()])
    );
    assert_eq!(
        names(w.complete("import \"lo", 10)),
        (8, vec!["loginlib\"".into()])
    );
    assert_eq!(names(w.complete(":ru", 3)), (0, vec![":run ".into()]));
    assert_eq!(
        names(w.complete(":run check", 10)),
        (5, vec!["check_disk ".into()])
    );
    assert_eq!(
        names(w.complete(":run check_disk d", 17)),
        (16, vec!["db1 ".into()])
    );
    assert_eq!(
        names(w.complete("session.rea", 11)),
        (8, vec!["read_until".into()])
    );
    assert_eq!(
        names(w.complete("let x = sp", 10)),
        (8, vec!["spawn".into()])
    );
    assert_eq!(names(w.complete("ses", 3)), (0, vec!["session".into()]));
    assert_eq!(
        w.hint("spawn(", 6).as_deref(),
        Some("  spawn(cmd: &str, args: Array) -> SessionRef")
    );
    assert_eq!(w.hint("nosuch(", 7), None);
}

#[test]
fn input_is_complete_only_when_brackets_close() {
    assert!(is_complete("let a = 1"));
    assert!(!is_complete("fn f(x) {"));
    assert!(!is_complete("let a = [1,"));
    assert!(is_complete("let s = \"{\""));
    assert!(!is_complete("let s = \"open"));
    assert!(is_complete("// a comment {\nlet a = 1"));
    assert!(is_complete("fn f(x) {\n  x * 2\n}"));
}

#[test]
fn connect_relays_a_local_host_until_the_escape_key() {
    let w = setup();
    let mut s = pty_shell(&w, &[hostler(), "shell"]);
    s.read_until(PROMPT, None).expect("prompt");
    s.write(":connect localhost\r").expect("connect");
    s.read_until("Ctrl-] returns", None).expect("connected");
    std::thread::sleep(Duration::from_millis(300));
    s.write("echo CONNECTED_$((40 + 2))\r").expect("command");
    s.read_until("CONNECTED_42", None)
        .expect("the remote shell answered");
    s.write("\x1d").expect("escape");
    s.read_until("back in hostler", None).expect("back");
    s.read_until(PROMPT, None).expect("prompt again");
    let port = crate::peers::free_port().to_string();
    let o = w.run(&[
        "host",
        "add",
        "down",
        "--address",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        "x",
    ]);
    assert_eq!(crate::util::code(&o), 0);
    s.write(":connect down\r").expect("connect ssh host");
    s.read_until("down: ", None)
        .expect("an error naming the host");
    let line = s.read_until("\n", None).expect("the error line");
    assert!(line.contains("refused"), "{line}");
    s.read_until(PROMPT, None).expect("prompt again");
}

#[test]
fn connect_logs_in_to_an_ssh_host_through_loginlib() {
    let Some(sshd) = crate::peers::Sshd::start(&[]) else {
        return;
    };
    let w = setup();
    let port = sshd.port.to_string();
    let o = w.run_with_input(
        &[
            "host",
            "add",
            "box",
            "--address",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            crate::peers::USER,
            "--password-stdin",
        ],
        &format!("{}\n", crate::peers::PASSWORD),
    );
    assert_eq!(crate::util::code(&o), 0, "{}", crate::util::stderr(&o));
    let mut s = pty_shell(&w, &[hostler(), "shell"]);
    s.resize(97, 31).expect("size the terminal");
    s.read_until(PROMPT, None).expect("prompt");
    s.write(":connect box\r").expect("connect");
    s.read_until("Ctrl-] returns", None).expect("connected");
    s.write("echo REMOTE_$((6 * 7)) $(id -un)\r")
        .expect("command");
    s.read_until(&format!("REMOTE_42 {}", crate::peers::USER), None)
        .expect("the remote shell answered");
    // The operator's terminal: its size, its type, and the shell's own prompt (dash's "$ "),
    // not the one loginlib set for scripts.
    s.write("echo SIZE=$(stty size) T=$TERM P=[$PS1]\r")
        .expect("command");
    s.read_until("SIZE=31 97 T=xterm P=[$ ]", None)
        .expect("the real size, type and prompt");
    // A resized window resizes the remote terminal.
    s.resize(120, 40).expect("resize");
    std::thread::sleep(Duration::from_millis(200));
    s.write("echo NOW=$(stty size)\r").expect("command");
    s.read_until("NOW=40 120", None).expect("the new size");
    s.write("\x1d").expect("escape");
    s.read_until("back in hostler", None).expect("back");
    s.read_until(PROMPT, None).expect("prompt again");
}

#[test]
fn the_api_names_the_shell_offers_are_callable_names_only() {
    let names = hostler::script::api_function_names();
    assert!(names.iter().any(|n| n == "http_get") && names.iter().any(|n| n == "critical"));
    assert!(
        names
            .iter()
            .all(|n| !n.contains('$') && !n.starts_with("__")),
        "{names:?}"
    );
}
