//! The expect engine over real local processes (pipes and a pty), and transcripts.

use std::time::{Duration, Instant};

use hostler::script::RunRequest;
use hostler::session::{Guard, LocalProcess, Session, SessionError, Transcript, compile};
use hostler::store::Status;

use crate::util::Work;

fn sh(pty: bool, script: &str) -> Session {
    let p = LocalProcess::spawn(
        std::path::Path::new("/bin/sh"),
        &["-c".into(), script.into()],
        pty,
    )
    .expect("spawn");
    Session::new(
        1,
        Box::new(p),
        Guard::new(Some(Duration::from_secs(30))),
        None,
    )
}

#[test]
fn read_until_returns_through_the_marker_and_keeps_the_rest() {
    let mut s = sh(false, "printf 'one\\ntwo MARK three'");
    assert_eq!(s.read_until("MARK", None).expect("marker"), "one\ntwo MARK");
    assert_eq!(s.read_to_end(None).expect("rest"), " three");
}

#[test]
fn read_until_finds_a_marker_split_across_reads() {
    let mut s = sh(false, "printf 'ab'; sleep 0.2; printf 'cdEND'");
    assert_eq!(s.read_until("bcdE", None).expect("marker"), "abcdE");
}

#[test]
fn read_until_after_a_long_stream_finds_the_marker() {
    let mut s = sh(
        false,
        "head -c 5000000 /dev/zero | tr '\\0' x; echo END_MARKER",
    );
    let got = s.read_until("END_MARKER", None).expect("marker");
    assert_eq!(got.len(), 5_000_000 + "END_MARKER".len());
}

#[test]
fn expect_returns_the_index_of_the_first_match() {
    let mut s = sh(false, "echo 'login: '");
    let pats = [
        compile("password:").expect("re"),
        compile("login:\\s*").expect("re"),
    ];
    assert_eq!(s.expect(&pats, None).expect("match"), 1);
    assert_eq!(s.matched, "login: \n");
}

#[test]
fn a_timeout_names_the_wait_and_shows_the_last_text() {
    let mut s = sh(false, "echo 'almost there'; sleep 5");
    let t = Instant::now();
    let e = s
        .read_until("never", Some(Duration::from_millis(300)))
        .expect_err("timeout");
    assert!(t.elapsed() < Duration::from_secs(2));
    match &e {
        SessionError::Timeout { last, .. } => assert!(last.contains("almost there"), "{e}"),
        other => panic!("expected timeout, got {other:?}"),
    }
}

#[test]
fn end_of_stream_while_waiting_is_an_error_not_a_hang() {
    let mut s = sh(false, "echo bye");
    let e = s
        .read_until("never", Some(Duration::from_secs(5)))
        .expect_err("eof");
    assert!(matches!(e, SessionError::Eof { .. }), "{e:?}");
}

#[test]
fn cancellation_interrupts_a_wait_promptly() {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut guard = Guard::new(None);
    guard.cancel = flag.clone();
    let p = LocalProcess::spawn(std::path::Path::new("/bin/sleep"), &["10".into()], false)
        .expect("spawn");
    let mut s = Session::new(2, Box::new(p), guard, None);
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let t = Instant::now();
    let e = s
        .read_until("x", Some(Duration::from_secs(30)))
        .expect_err("cancelled");
    assert!(matches!(e, SessionError::Cancelled), "{e:?}");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    setter.join().expect("join");
}

#[test]
fn cmd_over_an_interactive_shell_strips_echo_and_prompt() {
    for pty in [false, true] {
        let p = LocalProcess::spawn(std::path::Path::new("/bin/sh"), &["-i".into()], pty)
            .expect("spawn");
        let mut s = Session::new(
            1,
            Box::new(p),
            Guard::new(Some(Duration::from_secs(30))),
            None,
        );
        assert_eq!(
            s.cmd("echo hello; echo world", None).expect("cmd"),
            "hello\nworld",
            "pty={pty}"
        );
        assert_eq!(s.cmd("expr 2 + 3", None).expect("cmd"), "5", "pty={pty}");
        s.close().expect("close");
    }
}

#[test]
fn cmd_on_stock_bash_with_bracketed_paste_gives_clean_output() {
    // bash as a login shell would run it: a terminal, TERM=xterm, readline on.
    let p = LocalProcess::spawn(
        std::path::Path::new("/usr/bin/env"),
        &[
            "TERM=xterm".into(),
            "/bin/bash".into(),
            "--norc".into(),
            "-i".into(),
        ],
        true,
    )
    .expect("spawn");
    let mut s = Session::new(
        1,
        Box::new(p),
        Guard::new(Some(Duration::from_secs(30))),
        None,
    );
    assert_eq!(
        s.cmd("df -P / | tail -n 1 | cut -c1-1", None).expect("cmd"),
        "/"
    );
    // Turned on again on purpose (as an /etc/inputrc may): the escapes are still stripped.
    s.cmd("bind 'set enable-bracketed-paste on'", None)
        .expect("bind");
    let out = s
        .cmd("printf 'a\\033[1mb\\033[0mc\\n'; echo d", None)
        .expect("cmd");
    assert_eq!(out, "abc\nd", "{out:?}");
    s.close().expect("close");
    assert_eq!(
        hostler::session::strip_escapes(
            "\x1b[?2004hx\x1b]0;title\x07y\x1b]2;t\x1b\\z\x1b=w\x1b[?2004l"
        ),
        "xyzw"
    );
}

#[test]
fn pty_mode_gives_the_process_a_terminal() {
    let mut s = sh(true, "tty; test -t 0 && echo IS_A_TTY");
    let out = s.read_to_end(None).expect("output");
    assert!(
        out.contains("/dev/pts/") && out.contains("IS_A_TTY"),
        "{out:?}"
    );
    let mut s = sh(false, "test -t 0 && echo IS_A_TTY || echo NOT_A_TTY");
    assert!(s.read_to_end(None).expect("output").contains("NOT_A_TTY"));
}

#[test]
fn write_secret_is_masked_in_the_transcript_and_its_echo_too() {
    let sink = Transcript::sink(1 << 20);
    let p = LocalProcess::spawn(std::path::Path::new("/bin/cat"), &[], false).expect("spawn");
    let mut s = Session::new(
        7,
        Box::new(p),
        Guard::new(Some(Duration::from_secs(10))),
        Some(sink.clone()),
    );
    s.write("user\n").expect("write");
    s.write_secret("s3cr3t-pw\n").expect("write");
    s.read_until("s3cr3t-pw", None).expect("echo");
    s.close().expect("close");
    let t = sink.lock().expect("lock").to_jsonl();
    assert!(!t.contains("s3cr3t"), "secret leaked: {t}");
    assert!(t.contains("********") && t.contains("user"), "{t}");
}

#[test]
fn scripts_drive_sessions_and_runs_keep_a_masked_transcript() {
    let w = Work::new();
    let env = w.env(&["cat", "sh"], None);
    w.script(
        &env.store,
        "main",
        r#"
        let s = spawn("cat", []);
        s.write("hello\n");
        let got = s.read_until("hello", 5);
        s.write_secret("topsecret\n");
        s.read_until("topsecret", 5);
        print(`said ${got} and topsecret`);
        let sh = spawn("sh", ["-i"], #{pty: true, timeout: 10});
        let out = sh.cmd("echo $((6 * 7))");
        ok(out)
        "#,
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
        (Status::Ok, "42"),
        "{}",
        r.message
    );
    assert!(
        !r.transcript.contains("topsecret") && !r.output.contains("topsecret"),
        "{}\n{}",
        r.transcript,
        r.output
    );
    assert!(r.output.contains("said hello and ********"), "{}", r.output);
    assert!(r.transcript.contains("\"d\":\">\"") && r.transcript.contains("\"d\":\"<\""));
}

#[test]
fn a_session_wait_is_bounded_by_the_run_deadline() {
    let w = Work::new();
    let env = w.env(&["sh"], None);
    w.script(
        &env.store,
        "main",
        r#"let s = spawn("sh", ["-c", "sleep 30"]); s.read_until("never", 60)"#,
    );
    let t = Instant::now();
    let r = env.execute(
        &RunRequest {
            script: "main".into(),
            timeout: Some(Duration::from_millis(500)),
            ..RunRequest::default()
        },
        None,
    );
    assert_eq!(r.status, Status::Timeout, "{}", r.message);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn a_failed_wait_does_not_hide_text_from_the_next_one() {
    let mut s = sh(false, "printf 'Password: '; sleep 5");
    assert!(
        s.read_until("login:", Some(Duration::from_millis(300)))
            .is_err()
    );
    let t = Instant::now();
    assert_eq!(
        s.read_until("Password:", Some(Duration::from_secs(2)))
            .expect("already here"),
        "Password:"
    );
    assert!(t.elapsed() < Duration::from_millis(500));
}

#[test]
fn allowlist_globs_do_not_cross_folders() {
    let dir = tempfile::tempdir().expect("dir");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    for p in [dir.path().join("tool"), sub.join("deep")] {
        std::fs::copy("/bin/true", &p).expect("copy");
    }
    let base = dir.path().canonicalize().expect("canon");
    let allow =
        hostler::session::Allowlist::new(&[format!("{}/*", base.display())]).expect("allowlist");
    assert!(
        allow
            .check(&base.join("tool").display().to_string())
            .is_ok()
    );
    assert!(
        allow
            .check(&base.join("sub/deep").display().to_string())
            .is_err(),
        "* must not match /"
    );
    assert!(
        allow
            .check(&base.join("sub/../tool").display().to_string())
            .is_ok(),
        "canonicalised"
    );
}

#[test]
fn a_secret_echoed_across_two_reads_is_masked() {
    let sink = Transcript::sink(1 << 20);
    {
        let mut t = sink.lock().expect("lock");
        t.add_secret("hunter2");
        t.record(
            1,
            hostler::session::Direction::Received,
            b"password is hun",
            false,
        );
        t.record(1, hostler::session::Direction::Received, b"ter2, ok", false);
    }
    let j = sink.lock().expect("lock").to_jsonl();
    assert!(!j.contains("hunter2") && !j.contains("ter2,"), "{j}");
    assert!(j.contains("********"), "{j}");
}

#[test]
fn after_a_cancelled_or_timed_out_cmd_the_next_one_gets_its_own_output() {
    let p =
        LocalProcess::spawn(std::path::Path::new("/bin/sh"), &["-i".into()], true).expect("spawn");
    let guard = Guard::new(Some(Duration::from_secs(60)));
    let cancel = guard.cancel.clone();
    let mut s = Session::new(1, Box::new(p), guard, None);
    assert_eq!(s.cmd("echo ready", None).expect("cmd"), "ready");
    // Ctrl-C in the shell sets the cancel flag while cmd() waits.
    let setter = std::thread::spawn({
        let cancel = cancel.clone();
        move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let t = Instant::now();
    assert!(matches!(
        s.cmd("sleep 30; echo late-one", None),
        Err(SessionError::Cancelled)
    ));
    setter.join().expect("join");
    cancel.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(s.cmd("echo mine", None).expect("cmd"), "mine");
    // A timeout too.
    assert!(
        s.cmd("sleep 30; echo late-two", Some(Duration::from_millis(300)))
            .is_err()
    );
    assert_eq!(s.cmd("echo also-mine", None).expect("cmd"), "also-mine");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "the sleeps were interrupted"
    );
    s.close().expect("close");
}
