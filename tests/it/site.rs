//! Configuration as code (issue 30): `hostler apply` and `hostler export` through the binary
//! (the release binary in CI), on real SQLite. Plans for an add, a change of interval and of
//! arguments (the check keeps its state), a removal with and without `--prune`, a rule that
//! begins to cover a newly tagged host; bad files refused whole; passwords sealed and never
//! exported; export -> apply on an empty database -> export gives the same text, for any
//! site the CLI can build (a property test); a running `hostler serve` follows an apply.

use std::time::Duration;

use hostler::store::{CheckState, NewHost, Status, Store};
use proptest::prelude::*;

use crate::util::{Work, code, stderr, stdout, wait_for};

fn apply(w: &Work, file: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", file.to_str().expect("path")];
    args.extend(extra);
    w.run(&args)
}

fn export(w: &Work) -> String {
    let o = w.run(&["export"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o)
}

const SITE: &str = r#"
[scripts]
dir = "scripts"

[[host]]
name = "r1"
address = "127.0.0.1"
method = "local"

[[host]]
name = "web1"
address = "127.0.0.1"
method = "local"
tags = ["web"]
parents = ["r1/check_ping"]

[[check]]
script = "check_ping"
hosts = ["r1"]
every = "1m"

[[check]]
script = "probe"
tags = ["web"]
every = "1m"
args = { expect = "200" }

[[heartbeat]]
name = "backup"
host = "web1"
every = "1d"
grace = "1h"
"#;

fn site(w: &Work, text: &str) -> std::path::PathBuf {
    let dir = w.path("site");
    std::fs::create_dir_all(dir.join("scripts")).expect("dir");
    std::fs::write(
        dir.join("scripts/probe.rhai"),
        "ok(`probe ${arg(\"expect\")}`)",
    )
    .expect("script");
    let f = dir.join("site.toml");
    std::fs::write(&f, text).expect("site");
    f
}

#[test]
fn plans_apply_change_in_place_prune_and_rules() {
    let w = Work::new();
    let o = w.run(&["init"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let f = site(&w, SITE);
    // A dry run changes nothing.
    let before = export(&w);
    let o = apply(&w, &f, &["--dry-run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan = stdout(&o);
    for line in [
        "+ script probe",
        "+ host r1",
        "+ host web1",
        "+ check check_ping on r1",
        "+ check probe on tag web",
        "+ heartbeat backup on web1",
        "+ depend web1 on r1/check_ping",
    ] {
        assert!(plan.lines().any(|l| l == line), "no {line:?} in:\n{plan}");
    }
    assert_eq!(export(&w), before, "a dry run wrote something");
    let o = apply(&w, &f, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("heartbeat backup: ping http://"),
        "{}",
        stdout(&o)
    );
    // A second apply: no change.
    let o = apply(&w, &f, &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("no change"), "{}", stdout(&o));

    // The check has a state, an acknowledgement and a failing-since: a change of interval and
    // of arguments keeps them.
    let store = w.store();
    store
        .record_passive(&hostler::store::passive::Passive {
            host: Some("web1"),
            check: "probe",
            status: Status::Critical,
            message: "down",
            perfdata: None,
            by: "test",
        })
        .expect("result");
    store
        .acknowledge(Some("web1"), "probe", "ticket 4711", "alice")
        .expect("ack");
    let since = store.check(Some("web1"), "probe").expect("check").since;
    let changed = SITE
        .replace("every = \"1m\"\nargs", "every = \"30s\"\nargs")
        .replace("expect = \"200\"", "expect = \"204\"");
    std::fs::write(&f, &changed).expect("site");
    let o = apply(&w, &f, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).lines().any(|l| l
            == r#"~ check probe on tag web: every 1m -> 30s, args {"expect":"200"} -> {"expect":"204"}"#),
        "{}",
        stdout(&o)
    );
    let c = store.check(Some("web1"), "probe").expect("check");
    assert_eq!(
        (c.state, c.acked, c.ack_comment.as_deref(), c.since),
        (
            CheckState::Critical,
            true,
            Some("ticket 4711 (alice)"),
            since
        )
    );

    // A rule covers a host that gets its tag later: the plan adds only the host.
    let with_web2 = format!(
        "{changed}\n[[host]]\nname = \"web2\"\naddress = \"127.0.0.1\"\nmethod = \"local\"\ntags = [\"web\"]\n"
    );
    std::fs::write(&f, &with_web2).expect("site");
    let o = apply(&w, &f, &[]);
    let out = stdout(&o);
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with(['+', '~', '-']))
            .count(),
        1,
        "{out}"
    );
    assert!(out.lines().any(|l| l == "+ host web2"), "{out}");
    let hosts = store.hosts().expect("hosts");
    let rule = store
        .schedules()
        .expect("schedules")
        .into_iter()
        .find(|s| s.script == "probe")
        .expect("rule");
    let covered = hostler::store::Target::of(&rule).resolve(&hosts);
    assert!(covered.contains(&Some("web2".into())), "{covered:?}");

    // A host made by hand is left alone, and said so; removed with --prune.
    store
        .add_host(&NewHost {
            name: "byhand".into(),
            address: "127.0.0.1".into(),
            ..NewHost::default()
        })
        .expect("host");
    let o = apply(&w, &f, &[]);
    assert!(
        stdout(&o).contains("- host byhand (made by hand)"),
        "{}",
        stdout(&o)
    );
    assert!(store.host("byhand").is_ok());
    // web2 dropped from the file: kept without --prune, and the plan says it would go.
    std::fs::write(&f, &changed).expect("site");
    let o = apply(&w, &f, &[]);
    assert!(stdout(&o).contains("- host web2"), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains("web2 (made by hand)"),
        "web2 was the file's"
    );
    assert!(store.host("web2").is_ok());
    let o = apply(&w, &f, &["--prune", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let removed: Vec<&str> = v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] == "-")
        .filter_map(|c| c["what"].as_str())
        .collect();
    assert!(
        removed.contains(&"web2") && removed.contains(&"byhand"),
        "{v}"
    );
    assert!(store.host("web2").is_err() && store.host("byhand").is_err());
    assert!(store.hosts().expect("hosts").iter().all(|h| h.managed));
}

#[test]
fn a_bad_site_file_is_refused_whole_and_changes_nothing() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    let f = site(&w, SITE);
    assert_eq!(code(&apply(&w, &f, &[])), 0);
    let before = export(&w);
    let cases: &[(&str, &str)] = &[
        (
            "[[host]]\nname = \"a\"\nadress = \"b\"\n",
            "unknown key `adress`: did you mean `address`?",
        ),
        (
            "[[host]]\nname = \"a\"\naddress = 5\n",
            "invalid type: integer `5`, expected a string",
        ),
        (
            "[[host]]\nname = \"a\"\naddress = \"b\"\n[[host]]\nname = \"a\"\naddress = \"c\"\n",
            "host a is named twice",
        ),
        (
            "[[check]]\nscript = \"nosuch\"\nhosts = [\"r1\"]\nevery = \"1m\"\n",
            "no script nosuch",
        ),
        (
            "[[host]]\nname = \"a\"\naddress = \"b\"\nparents = [\"b/check_ping\"]\n[[host]]\nname = \"b\"\naddress = \"b\"\nparents = [\"a/check_ping\"]\n",
            "would make a cycle",
        ),
        (
            "[[check]]\nscript = \"check_ping\"\nhosts = [\"nohost\"]\nevery = \"1m\"\n",
            "no host nohost",
        ),
        (
            "[[check]]\nscript = \"check_ping\"\nhosts = [\"r1\"]\nevery = \"soon\"\n",
            "every: bad duration",
        ),
        (
            "[[host]]\nname = \"a\"\naddress = \"b\"\npassword_env = \"HOSTLER_TEST_UNSET_VAR\"\n",
            "that variable is not set",
        ),
    ];
    for (text, want) in cases {
        // Each bad part comes with good ones that must not be applied either.
        let text = format!("{SITE}\n[[host]]\nname = \"extra\"\naddress = \"127.0.0.1\"\n{text}");
        std::fs::write(&f, &text).expect("site");
        let o = apply(&w, &f, &[]);
        assert_ne!(code(&o), 0, "{text}");
        let err = stderr(&o);
        assert!(
            err.contains(want) && err.contains("site.toml"),
            "{want}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert_eq!(export(&w), before, "{want}: something was written");
    }
    // A script that does not compile is refused as `hostler script add` refuses it.
    std::fs::write(&f, SITE).expect("site");
    let broken = w.path("site/scripts/broken.rhai");
    std::fs::write(&broken, "let x = ;").expect("script");
    let o = apply(&w, &f, &[]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("script broken"), "{}", stderr(&o));
    assert!(w.store().find_script("broken").expect("read").is_none());
    // A script's kind and description come from its header.
    std::fs::write(
        &broken,
        "//! Restarts nginx.\n//! kind: fix\nok(\"restarted\")",
    )
    .expect("script");
    let o = apply(&w, &f, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s = w.store().script("broken").expect("script");
    assert_eq!(
        (s.kind, s.description.as_deref()),
        (hostler::store::ScriptKind::Fix, Some("Restarts nginx."))
    );
}

#[test]
fn passwords_from_the_environment_and_a_file_are_sealed_and_never_exported() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    std::fs::write(w.path("db2.pw"), "file-secret-42\n").expect("pw");
    let f = site(
        &w,
        &format!(
            "[[host]]\nname = \"db1\"\naddress = \"127.0.0.1\"\nuser = \"mon\"\npassword_env = \"DB1_PW\"\n\n[[host]]\nname = \"db2\"\naddress = \"127.0.0.1\"\npassword_file = \"{}\"\n",
            w.path("db2.pw").display()
        ),
    );
    let o = w
        .cmd(&["apply", f.to_str().expect("path")])
        .env("DB1_PW", "env-secret-17")
        .output()
        .expect("apply");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let store = w.store();
    let open = |h: &str| {
        store
            .host_secret(h)
            .expect("secret")
            .map(|s| s.expose().to_string())
    };
    assert_eq!(open("db1").as_deref(), Some("env-secret-17"));
    assert_eq!(open("db2").as_deref(), Some("file-secret-42"));
    let raw = std::fs::read(w.db()).expect("db");
    for s in ["env-secret-17", "file-secret-42"] {
        assert!(
            !raw.windows(s.len()).any(|x| x == s.as_bytes()),
            "{s} in the database file in the clear"
        );
    }
    let text = export(&w);
    assert!(!text.contains("secret-"), "{text}");
    // The same password again is no change; a new one is, named but not shown.
    let o = w
        .cmd(&["apply", f.to_str().expect("path")])
        .env("DB1_PW", "env-secret-17")
        .output()
        .expect("apply");
    assert!(stdout(&o).starts_with("no change"), "{}", stdout(&o));
    let o = w
        .cmd(&["apply", f.to_str().expect("path"), "--dry-run"])
        .env("DB1_PW", "rotated-99")
        .output()
        .expect("apply");
    assert!(
        stdout(&o).contains("~ host db1: password"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("rotated-99"));
}

/// A check: its target (a host's index, or a tag's with `true`), its interval in minutes, an
/// argument, its retries.
type BuiltCheck = (usize, bool, u32, Option<String>, Option<u8>);

/// A site the CLI can build: hosts with tags and vars, checks on hosts and on tags with their
/// settings, dependencies, heartbeats.
#[derive(Debug, Clone)]
struct Built {
    hosts: Vec<(String, Vec<String>, Option<String>)>,
    checks: Vec<BuiltCheck>,
    depends: Vec<(usize, usize, Option<String>)>,
    beats: Vec<(String, Option<usize>, u32)>,
}

fn built() -> impl Strategy<Value = Built> {
    let host = (
        proptest::collection::vec(prop_oneof!["web", "db", "edge"], 0..3),
        proptest::option::of("[a-z]{1,6}( [a-z]{1,4})?"),
    );
    (
        proptest::collection::vec(host, 1..5),
        proptest::collection::vec(
            (
                0usize..8,
                any::<bool>(),
                1u32..120,
                proptest::option::of("[a-z0-9:/.]{1,12}"),
                proptest::option::of(1u8..4),
            ),
            0..6,
        ),
        proptest::collection::vec(
            (0usize..8, 0usize..8, proptest::option::of("[a-z]{1,5}")),
            0..4,
        ),
        proptest::collection::vec(
            ("[a-z]{1,6}", proptest::option::of(0usize..8), 1u32..48),
            0..3,
        ),
    )
        .prop_map(|(hosts, checks, depends, beats)| Built {
            hosts: hosts
                .into_iter()
                .enumerate()
                .map(|(i, (mut tags, var))| {
                    tags.dedup();
                    (format!("h{i}"), tags, var)
                })
                .collect(),
            checks,
            depends,
            beats,
        })
}

/// Builds the site with the CLI's store calls (what `hostler host add`, `schedule`, `depend
/// add` and `heartbeat add` make).
fn build(store: &Store, b: &Built) {
    use hostler::store::{Method, NewDependency, NewSchedule, Timing};
    for (name, tags, var) in &b.hosts {
        let mut vars = serde_json::Map::new();
        if let Some(v) = var {
            vars.insert("note".into(), serde_json::Value::String(v.clone()));
        }
        store
            .add_host(&NewHost {
                name: name.clone(),
                address: "127.0.0.1".into(),
                method: Some(Method::Local),
                tags: tags.clone(),
                vars,
                ..NewHost::default()
            })
            .expect("host");
    }
    let n = b.hosts.len();
    let tags = ["web", "db", "edge"];
    for (i, (target, by_tag, minutes, arg, retries)) in b.checks.iter().enumerate() {
        let mut s = NewSchedule::every("check_ping", None, i64::from(*minutes) * 60_000);
        if *by_tag {
            s.tag = Some(tags[target % 3].to_string());
        } else {
            s.host = Some(b.hosts[target % n].0.clone());
        }
        s.name = Some(format!("c{i}"));
        s.args = arg
            .as_ref()
            .map(|a| serde_json::json!({ "host": a }).to_string());
        s.retries = retries.map_or(1, i64::from);
        if i % 2 == 1 {
            s.timing = Timing::Cron(format!("{} * * * *", i % 60));
        }
        store.add_schedule(&s).expect("schedule");
    }
    for (c, p, group) in &b.depends {
        let (child, parent) = (&b.hosts[c % n].0, &b.hosts[p % n].0);
        if child == parent {
            continue;
        }
        // A cycle is refused, as the CLI refuses it: the site simply lacks that one.
        let _ = store.add_dependency(&NewDependency {
            child_host: child.clone(),
            child_check: None,
            parent_host: parent.clone(),
            parent_check: "check_ping".into(),
            group: group.clone(),
            author: None,
        });
    }
    for (i, (name, host, hours)) in b.beats.iter().enumerate() {
        let _ = store.add_heartbeat(&hostler::store::heartbeats::NewHeartbeat {
            name: format!("{name}{i}"),
            host: host.map(|h| b.hosts[h % n].0.clone()),
            every_ms: i64::from(*hours) * 3_600_000,
            grace_ms: 60_000,
            ..Default::default()
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn export_then_apply_on_an_empty_database_then_export_is_the_same(b in built()) {
        let w = Work::new();
        prop_assert_eq!(code(&w.run(&["init"])), 0);
        build(&w.store(), &b);
        let first = export(&w);
        let file = w.path("exported.toml");
        std::fs::write(&file, &first).expect("file");
        let fresh = Work::new();
        let o = fresh.run(&["init"]);
        prop_assert_eq!(code(&o), 0);
        // The fresh database's own demo host is not in the file: --prune takes it away.
        let o = apply(&fresh, &file, &["--prune"]);
        prop_assert_eq!(code(&o), 0, "{}\n{}", stderr(&o), first);
        let second = export(&fresh);
        prop_assert_eq!(&first, &second);
        let o = apply(&fresh, &file, &[]);
        prop_assert!(stdout(&o).starts_with("no change"), "{}", stdout(&o));
    }
}

/// A running `hostler serve` follows an apply that changes an interval, with no restart.
#[test]
fn a_running_daemon_follows_an_apply() {
    let w = Work::new();
    let d = crate::hostile::Daemon::start(&w, "poll_interval = 0.1\n", None);
    let f = site(
        &w,
        "[scripts]\ndir = \"scripts\"\n[[host]]\nname = \"web1\"\naddress = \"127.0.0.1\"\nmethod = \"local\"\n[[check]]\nscript = \"probe\"\nhosts = [\"web1\"]\nevery = \"1h\"\n",
    );
    let o = apply(&w, &f, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let store = w.store();
    let runs = || {
        store
            .runs(&hostler::store::RunFilter {
                script: Some("probe".into()),
                limit: 100,
                ..Default::default()
            })
            .expect("runs")
            .iter()
            .map(|r| r.repeats)
            .sum::<i64>()
    };
    assert!(
        wait_for(Duration::from_secs(20), || runs() >= 1),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(runs(), 1, "every 1h: one run");
    std::fs::write(
        &f,
        std::fs::read_to_string(&f)
            .expect("f")
            .replace("every = \"1h\"", "every = \"1s\""),
    )
    .expect("f");
    let o = apply(&w, &f, &[]);
    assert!(
        stdout(&o).contains("~ check probe on web1: every 1h -> 1s"),
        "{}",
        stdout(&o)
    );
    assert!(
        wait_for(Duration::from_secs(20), || runs() >= 4),
        "{}",
        d.log()
    );
}

#[test]
fn the_readme_site_file_parses() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Configuration as code")
        .nth(1)
        .expect("the README's section");
    let text = section
        .split("```toml\n")
        .nth(1)
        .and_then(|t| t.split("```").next())
        .expect("its TOML example");
    let f = hostler::site::file::parse(std::path::Path::new("README.md"), text)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            f.host.len(),
            f.check.len(),
            f.depend.len(),
            f.heartbeat.len()
        ),
        (2, 2, 1, 1)
    );
    assert_eq!(f.check[1].tags, vec!["web".to_string()]);
}

/// Recurring downtimes: from the CLI (`--cron --for`) and from the site file; each occurrence
/// made once, a day ahead at most, and it covers its checks while it runs.
#[test]
fn recurring_downtimes_from_the_cli_and_the_site_file() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    let store = w.store();
    store
        .add_host(&NewHost {
            name: "db1".into(),
            address: "127.0.0.1".into(),
            tags: vec!["db".into()],
            ..NewHost::default()
        })
        .expect("host");
    // Every minute for two minutes: one is under way now.
    let o = w.run(&[
        "downtime",
        "add",
        "--tag",
        "db",
        "--cron",
        "* * * * *",
        "--for",
        "2m",
        "--reason",
        "rolling backup",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("recurring downtime R1"),
        "{}",
        stdout(&o)
    );
    assert!(store.in_downtime(Some("db1"), "check_disk").expect("read"));
    let now = hostler::store::now_ms();
    let n = store.downtimes().expect("list").len();
    assert_eq!(store.make_occurrences(now).expect("make"), 0, "made once");
    assert_eq!(store.downtimes().expect("list").len(), n);
    let o = w.run(&["downtime", "list"]);
    assert!(
        stdout(&o).contains("cron * * * * *") && stdout(&o).contains("rolling backup"),
        "{}",
        stdout(&o)
    );
    for (args, want) in [
        (
            vec!["--tag", "db", "--cron", "* * * * *", "--reason", "x"],
            "--cron needs --for",
        ),
        (
            vec![
                "--tag",
                "db",
                "--cron",
                "61 * * * *",
                "--for",
                "1h",
                "--reason",
                "x",
            ],
            "--cron",
        ),
        (
            vec![
                "--tag",
                "db",
                "--cron",
                "* * * * *",
                "--for",
                "10s",
                "--reason",
                "x",
            ],
            "at least a minute",
        ),
    ] {
        let mut a = vec!["downtime", "add"];
        a.extend(args);
        let o = w.run(&a);
        assert_ne!(code(&o), 0);
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
    }
    let o = w.run(&["downtime", "rm", "--recurring", "1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(store.recurring_downtimes().expect("list").is_empty());

    // From the site file: made, changed in place, exported, pruned.
    let f = site(
        &w,
        "[[host]]\nname = \"db1\"\naddress = \"127.0.0.1\"\ntags = [\"db\"]\n\n[[downtime]]\ntag = \"db\"\ncron = \"0 2 * * SUN\"\nduration = \"2h\"\nreason = \"weekly backup window\"\n",
    );
    let o = apply(&w, &f, &[]);
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l == "+ downtime tag db at cron 0 2 * * SUN"),
        "{}",
        stdout(&o)
    );
    let text = export(&w);
    assert!(
        text.contains("[[downtime]]\ntag = \"db\"\ncron = \"0 2 * * SUN\"\nduration = \"2h\""),
        "{text}"
    );
    std::fs::write(
        &f,
        std::fs::read_to_string(&f)
            .expect("f")
            .replace("\"2h\"", "\"3h\""),
    )
    .expect("f");
    let o = apply(&w, &f, &[]);
    assert!(
        stdout(&o).contains("~ downtime tag db at cron 0 2 * * SUN: for 2h -> 3h"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        store.recurring_downtimes().expect("list")[0].duration_ms,
        3 * 3_600_000
    );
    let week = 7 * 86_400_000;
    let made = store
        .make_occurrences(hostler::store::now_ms() + week)
        .expect("make");
    assert!(made <= 1);
}
