//! The operator's trial (issue 28), on the real `hostler serve` (the static release binary in
//! CI) with a service whose state is files in a folder: a disk that goes WARNING then
//! CRITICAL, a flapping service whose fix starts to fail, and a crash inside the guard's
//! pause. Each time, what was told comes from the database's notifications.

use std::process::{Child, Stdio};
use std::time::Duration;

use hostler::store::{Method, NewHost, NewSchedule, Store};

use crate::util::{Work, wait_for};

/// A real daemon over a service kept as files in `svc/` (`$SVC` in the scripts' commands).
struct Trial {
    w: Work,
    store: std::sync::Arc<Store>,
    daemon: Option<Child>,
}

impl Trial {
    fn new(monitord: &str) -> Trial {
        let w = Work::new();
        // The service's files live in a folder of their own: the config's folder is closed
        // to the commands' writes.
        std::fs::create_dir(w.path("svc")).expect("svc");
        std::fs::write(
            w.path("c.toml"),
            format!(
                "[monitord]\npoll_interval = 0.1\nrecheck_within = 0.5\n{monitord}\n\
                 [sandbox]\nallowed_commands = [\"sh\"]\nenvironment = [\"SVC\"]\n"
            ),
        )
        .expect("config");
        let store = w.store();
        store
            .add_host(&NewHost {
                name: "box".into(),
                address: "127.0.0.1".into(),
                method: Some(Method::Local),
                ..NewHost::default()
            })
            .expect("host");
        Trial {
            w,
            store,
            daemon: None,
        }
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.w.path("serve.log")).expect("log");
        self.daemon = Some(
            self.w
                .cmd(&[
                    "--config",
                    "c.toml",
                    "serve",
                    "--node",
                    "n1",
                    "--no-demo",
                    "--no-web",
                ])
                .env("SVC", self.w.path("svc"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("serve"),
        );
    }

    fn file(&self, name: &str, text: Option<&str>) {
        let p = self.w.path(&format!("svc/{name}"));
        match text {
            Some(t) => std::fs::write(p, t).expect("write"),
            None => {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    fn exists(&self, name: &str) -> bool {
        self.w.path(&format!("svc/{name}")).exists()
    }

    /// The subjects told so far, oldest first.
    fn told(&self) -> Vec<String> {
        let mut n = self.store.notifications(100).expect("notifications");
        n.reverse();
        n.into_iter().map(|n| n.subject).collect()
    }

    fn bodies(&self) -> Vec<String> {
        self.store
            .notifications(100)
            .expect("notifications")
            .into_iter()
            .map(|n| n.body)
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.w.path("serve.log")).unwrap_or_default()
    }

    fn wait_told(&self, what: &str, secs: u64) {
        assert!(
            wait_for(Duration::from_secs(secs), || self
                .told()
                .iter()
                .any(|s| s.contains(what))),
            "never told {what:?}: {:?}\n{}",
            self.told(),
            self.log()
        );
    }
}

impl Drop for Trial {
    fn drop(&mut self) {
        if let Some(c) = &mut self.daemon {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }
}

/// A service that is down while `svc/down` exists; its fix removes the file unless
/// `svc/broken` exists (then the restart is refused).
const CHECK: &str = r#"if exec("sh", ["-c", "test -e \"$SVC/down\""]).code == 0 { critical("not running") } else { ok("running") }"#;
const FIX: &str = r#"if exec("sh", ["-c", "test -e \"$SVC/broken\""]).code == 0 { print("bind: Address already in use"); critical("restart refused") } else { exec("sh", ["-c", "rm -f \"$SVC/down\""]); ok("restarted") }"#;

fn service(t: &Trial, backoff_ms: i64) {
    t.w.script(&t.store, "svc_check", CHECK);
    t.w.script(&t.store, "svc_fix", FIX);
    t.store
        .add_schedule(&NewSchedule {
            fix_script: Some("svc_fix".into()),
            max_attempts: 1,
            guard_max_fixes: 20,
            guard_backoff_ms: backoff_ms,
            ..NewSchedule::every("svc_check", Some("box"), 1_000)
        })
        .expect("schedule");
}

#[test]
fn a_disk_that_goes_warning_then_critical_tells_each_change_with_the_one_before() {
    let mut t = Trial::new("");
    t.w.script(
        &t.store,
        "check_disk",
        r#"let l = exec("sh", ["-c", "cat \"$SVC/level\""]).stdout;
l.trim();
if l == "critical" { critical("/ is 95% full") } else if l == "warning" { warning("/ is 80% full") } else { ok("/ is 50% full") }"#,
    );
    t.file("level", Some("ok"));
    t.store
        .add_schedule(&NewSchedule {
            max_attempts: 1,
            ..NewSchedule::every("check_disk", Some("box"), 1_000)
        })
        .expect("schedule");
    t.start();
    assert!(
        wait_for(Duration::from_secs(20), || t
            .store
            .check(Some("box"), "check_disk")
            .is_ok()),
        "{}",
        t.log()
    );
    t.file("level", Some("warning"));
    t.wait_told("box: check_disk is WARNING", 20);
    t.file("level", Some("critical"));
    t.wait_told("box: check_disk is CRITICAL (was WARNING)", 20);
    t.file("level", Some("warning"));
    t.wait_told("box: check_disk is WARNING (was CRITICAL)", 20);
    t.file("level", Some("ok"));
    t.wait_told("box: check_disk is OK again", 20);
    std::thread::sleep(Duration::from_secs(2));
    let told = t.told();
    assert_eq!(told.len(), 4, "each change once: {told:?}");
    // "since" is when it began to fail, not when each message was sent.
    let check = t.store.check(Some("box"), "check_disk").expect("check");
    assert_eq!(check.state, hostler::store::CheckState::Ok);
    let bodies = t.bodies();
    let critical = bodies
        .iter()
        .find(|b| b.starts_with("CRITICAL, was WARNING; failing since"))
        .expect("the change's body");
    let warning = bodies
        .iter()
        .find(|b| b.starts_with("WARNING since"))
        .expect("the first problem's body");
    // "... since 2026-12-06 14:20:01: / is 95% full": the time between "since " and ": ".
    let since = |b: &str| {
        b.split("since ")
            .nth(1)
            .and_then(|r| r.split(": ").next())
            .map(String::from)
    };
    assert!(since(critical).is_some(), "{critical}");
    assert_eq!(since(critical), since(warning), "{critical} / {warning}");
}

#[test]
fn a_flapping_service_whose_fix_starts_to_fail_is_still_told() {
    let mut t = Trial::new("flap_changes = 4");
    service(&t, 0);
    t.start();
    assert!(
        wait_for(Duration::from_secs(20), || t
            .store
            .check(Some("box"), "svc_check")
            .is_ok()),
        "{}",
        t.log()
    );
    // Crashes, each mended by the fix in silence, until the check flaps.
    for _ in 0..3 {
        t.file("down", Some(""));
        assert!(
            wait_for(Duration::from_secs(20), || !t.exists("down")),
            "the fix never mended it: {}",
            t.log()
        );
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert!(
        wait_for(Duration::from_secs(20), || t
            .store
            .check(Some("box"), "svc_check")
            .is_ok_and(|c| c.flapping)),
        "not flapping: {:?}",
        t.store.check(Some("box"), "svc_check")
    );
    // Now the fix fails: told, flapping or not, with the fix's output.
    t.file("broken", Some(""));
    t.file("down", Some(""));
    t.wait_told("box: svc_check is CRITICAL and svc_fix did not fix it", 30);
    let body = t
        .bodies()
        .into_iter()
        .find(|b| b.contains("fix svc_fix: CRITICAL restart refused"))
        .expect("the fix's result in the message");
    assert!(body.contains("check: CRITICAL not running"), "{body}");
}

#[test]
fn a_crash_inside_the_guards_pause_is_told_once_with_its_cause() {
    let mut t = Trial::new("");
    // After a fix, the next may run only 10 minutes later.
    service(&t, 600_000);
    t.start();
    assert!(
        wait_for(Duration::from_secs(20), || t
            .store
            .check(Some("box"), "svc_check")
            .is_ok()),
        "{}",
        t.log()
    );
    t.file("down", Some(""));
    assert!(
        wait_for(Duration::from_secs(20), || !t.exists("down")),
        "the first crash was not mended: {}",
        t.log()
    );
    assert!(
        t.told().is_empty(),
        "a mended crash tells nobody: {:?}",
        t.told()
    );
    // A second crash right after: the guard holds the fix back, and says why, once.
    std::thread::sleep(Duration::from_millis(1500));
    t.file("down", Some(""));
    t.wait_told(
        "box: svc_check is CRITICAL; the fix is held back by the guard",
        20,
    );
    std::thread::sleep(Duration::from_secs(3));
    let told = t.told();
    assert_eq!(
        told.iter().filter(|s| s.contains("held back")).count(),
        1,
        "{told:?}"
    );
    let body = t
        .bodies()
        .into_iter()
        .find(|b| b.contains("held back by the guard"))
        .expect("body");
    assert!(
        body.contains("the check said: not running")
            && body.contains("the last fix (svc_fix, ")
            && body.contains("OK restarted"),
        "{body}"
    );
    // It was not mended (the guard held the fix back).
    assert!(t.exists("down"));
}
