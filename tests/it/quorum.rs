//! Quorum across sites on a real PostgreSQL: three real `hostler serve` nodes, each in a site
//! of its own (dc1, dc2, dc3), run a check of one service; each node's check sees a flag file
//! of its own site (its environment names it), so one site can see a problem the others do
//! not; the fix removes every site's flag, as restarting the service would mend it for all. One site seeing it changes nothing; two make one problem, told once, naming what each
//! site saw; with a fix, one site (the first that sees it) fixes it, once.

use std::process::{Child, Stdio};
use std::time::Duration;

use hostler::store::{CheckState, Method, NewHost, NewSchedule, RunFilter, RunPhase, Store};

use crate::pg::Pg;
use crate::util::{Work, wait_for};

const SITES: [&str; 3] = ["dc1", "dc2", "dc3"];

/// One node per site, stopped on drop.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }
}

fn start_nodes(w: &Work, url: &str) -> Nodes {
    Nodes(
        SITES
            .iter()
            .enumerate()
            .map(|(i, site)| {
                let config = w.path(&format!("{site}.toml"));
                std::fs::write(
                    &config,
                    format!(
                        "[monitord]\nsite = \"{site}\"\npoll_interval = 0.1\nrecheck_within = 0.5\n\
                         [sandbox]\nallowed_commands = [\"sh\"]\nenvironment = [\"SITE_FLAG\", \"FLAG_DIR\"]\n"
                    ),
                )
                .expect("config");
                w.cmd(&[
                    "--config",
                    config.to_str().expect("path"),
                    "serve",
                    "--no-demo",
                    "--no-web",
                    "--node",
                    &format!("n{}", i + 1),
                ])
                .env("HOSTLER_DB", url)
                .env("SITE_FLAG", w.path(&format!("flags/flag-{site}")))
                .env("FLAG_DIR", w.path("flags"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(w.path(&format!("{site}.log"))).expect("log"))
                .spawn()
                .expect("hostler serve")
            })
            .collect(),
    )
}

fn logs(w: &Work) -> String {
    SITES
        .iter()
        .map(|s| std::fs::read_to_string(w.path(&format!("{s}.log"))).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn schedule(store: &Store, name: &str, fix: Option<&str>) -> i64 {
    store
        .add_schedule(&NewSchedule {
            fix_script: fix.map(String::from),
            name: Some(name.into()),
            max_attempts: 1,
            guard_backoff_ms: 0,
            sites: SITES.iter().map(|s| s.to_string()).collect(),
            quorum: Some(2),
            ..NewSchedule::every("probe", Some("svc"), 1_000)
        })
        .expect("quorum schedule")
}

#[test]
fn a_quorum_of_two_sites_makes_one_problem_and_one_fix() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.createdb("hostler_quorum");
    let store = Store::open(&url).expect("open");
    store
        .add_host(&NewHost {
            name: "svc".into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Local),
            ..NewHost::default()
        })
        .expect("host");
    let w = Work::new();
    // The flags live in a folder of their own: the config files' folder is closed to the
    // commands' writes (Landlock keeps them off the files beside the config).
    std::fs::create_dir(w.path("flags")).expect("flags");
    w.script(
        &store,
        "probe",
        r#"if exec("sh", ["-c", "test -e \"$SITE_FLAG\""]).code == 0 { critical("flag up") } else { ok("fine") }"#,
    );
    // Mending the service mends it for every site.
    w.script(
        &store,
        "mend",
        r#"exec("sh", ["-c", "rm -f \"$FLAG_DIR\"/flag-*"]); ok("mended")"#,
    );
    let alert = schedule(&store, "alert", None);
    // Refused: a quorum larger than its sites, or without sites.
    assert!(
        store
            .add_schedule(&NewSchedule {
                sites: vec!["dc1".into()],
                quorum: Some(2),
                ..NewSchedule::every("probe", Some("svc"), 1_000)
            })
            .is_err()
    );
    let _nodes = start_nodes(&w, &url);
    let check = |name: &str| store.check(Some("svc"), name).ok();
    let all_seen = |name: &str| {
        check(name).is_some_and(|c| {
            c.message.contains("0 of 3 sites")
                && !c.message.contains("no result yet")
                && c.state == CheckState::Ok
        })
    };
    assert!(
        wait_for(Duration::from_secs(60), || all_seen("alert")),
        "the three sites never reported: {:?}\n{}",
        check("alert"),
        logs(&w)
    );
    // One site sees a problem: nothing happens.
    std::fs::write(w.path("flags/flag-dc1"), "").expect("flag");
    assert!(
        wait_for(Duration::from_secs(30), || check("alert")
            .is_some_and(|c| c.message.contains("dc1: CRITICAL"))),
        "{:?}",
        check("alert")
    );
    std::thread::sleep(Duration::from_secs(3));
    let c = check("alert").expect("check");
    assert_eq!(c.state, CheckState::Ok, "{c:?}");
    assert!(
        store.notifications(10).expect("notifications").is_empty(),
        "one site's problem was told"
    );
    // Two sites see it: one problem, told once, naming what each site saw.
    std::fs::write(w.path("flags/flag-dc2"), "").expect("flag");
    assert!(
        wait_for(Duration::from_secs(30), || !store
            .notifications(10)
            .expect("notifications")
            .is_empty()),
        "two sites' problem never told: {:?}\n{}",
        check("alert"),
        logs(&w)
    );
    std::thread::sleep(Duration::from_secs(3));
    let told = store.notifications(10).expect("notifications");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].subject.contains("svc: alert is CRITICAL"),
        "{told:?}"
    );
    assert!(
        told[0].body.contains("dc1: CRITICAL flag up")
            && told[0].body.contains("dc2: CRITICAL flag up")
            && told[0].body.contains("dc3: OK fine"),
        "{}",
        told[0].body
    );
    for f in ["flags/flag-dc1", "flags/flag-dc2"] {
        std::fs::remove_file(w.path(f)).expect("unflag");
    }
    assert!(
        wait_for(Duration::from_secs(30), || store
            .notifications(10)
            .expect("notifications")
            .iter()
            .any(|n| n.subject.contains("OK again"))),
        "no recovery"
    );
    store.remove_schedule(alert).expect("remove");

    // With a fix: the first site that sees it (dc2) fixes it, once, for all.
    schedule(&store, "mended", Some("mend"));
    assert!(
        wait_for(Duration::from_secs(60), || all_seen("mended")),
        "{:?}\n{}",
        check("mended"),
        logs(&w)
    );
    std::fs::write(w.path("flags/flag-dc2"), "").expect("flag");
    std::fs::write(w.path("flags/flag-dc3"), "").expect("flag");
    let fixes = || {
        store
            .runs(&RunFilter {
                limit: 10_000,
                summary: true,
                ..RunFilter::default()
            })
            .expect("runs")
            .into_iter()
            .filter(|r| r.phase == Some(RunPhase::Fix))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_for(Duration::from_secs(30), || !fixes().is_empty()
            && !w.path("flags/flag-dc2").exists()
            && !w.path("flags/flag-dc3").exists()),
        "never fixed: {:?}\n{:?}\n{}",
        check("mended"),
        store.notifications(20),
        logs(&w)
    );
    std::thread::sleep(Duration::from_secs(3));
    let f = fixes();
    assert_eq!(f.len(), 1, "one fix, not one per site: {f:?}");
    assert_eq!(f[0].node.as_deref(), Some("n2"), "dc2 fixes: {f:?}");
    assert_eq!(check("mended").expect("check").state, CheckState::Ok);
    let told = store.notifications(20).expect("notifications");
    assert!(
        told.iter().all(|n| !n.subject.contains("mended")),
        "a fix that worked tells nobody: {told:?}"
    );
}

#[test]
fn the_sites_taken_together_are_the_worst_of_a_quorum_and_the_first_such_site_fixes() {
    use hostler::store::quorum::{SiteResult, Sites, view};
    let sites: Vec<String> = SITES.iter().map(|s| s.to_string()).collect();
    let r = |state, message: &str| SiteResult {
        state,
        at: 1,
        message: message.into(),
    };
    let mut seen = Sites::new();
    seen.insert("dc3".into(), r(CheckState::Warning, "slow"));
    let v = view(&seen, &sites, 2);
    assert_eq!((v.state, v.fixer), (CheckState::Ok, None));
    assert!(v.message.contains("dc1: no result yet"), "{}", v.message);
    seen.insert("dc2".into(), r(CheckState::Critical, "refused"));
    seen.insert("dc1".into(), r(CheckState::Ok, "fine"));
    let v = view(&seen, &sites, 2);
    assert_eq!(
        v.state,
        CheckState::Critical,
        "the worst of those that agree"
    );
    assert_eq!(
        v.fixer.as_deref(),
        Some("dc2"),
        "the first in order that sees it"
    );
    assert_eq!(
        v.message,
        "2 of 3 sites see a problem (quorum 2) - dc1: OK fine; dc2: CRITICAL refused; dc3: WARNING slow"
    );
    // A site no longer in the schedule does not count.
    let v = view(&seen, &sites[..2], 2);
    assert_eq!(v.state, CheckState::Ok);
}
