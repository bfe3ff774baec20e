//! The shape of the crate: which part may use which (the graph `src/lib.rs` states). A new
//! `crate::` path between parts that the table below does not list fails here, so a cycle
//! cannot creep back in unnoticed.

use std::collections::{BTreeMap, BTreeSet};

/// Each part and the parts it may use. Leaves use none.
const ALLOWED: &[(&str, &[&str])] = &[
    ("redact", &[]),
    ("when", &[]),
    ("timed", &[]),
    ("password", &[]),
    ("perfdata", &[]),
    ("urlencode", &[]),
    ("health", &[]),
    ("config", &[]),
    ("sql", &[]),
    ("environ", &["redact"]),
    ("session", &["config", "redact"]),
    ("sqlxml", &["redact", "session", "sql", "urlencode"]),
    (
        "store",
        &[
            "config",
            "perfdata",
            "redact",
            "sql",
            "sqlxml",
            "timed",
            "urlencode",
            "when",
        ],
    ),
    ("bundled", &["store"]),
    ("site", &["bundled", "queue", "store", "when"]),
    (
        "notify",
        &["config", "redact", "session", "store", "urlencode", "when"],
    ),
    ("queue", &["bundled", "redact", "store", "when"]),
    (
        "script",
        &["bundled", "config", "redact", "session", "store"],
    ),
    (
        "app",
        &["config", "environ", "redact", "script", "session", "store"],
    ),
    (
        "monitord",
        &[
            "config", "health", "notify", "queue", "script", "session", "store", "when",
        ],
    ),
    (
        "web",
        &[
            "bundled",
            "config",
            "health",
            "password",
            "perfdata",
            "queue",
            "redact",
            "script",
            "sql",
            "sqlxml",
            "store",
            "timed",
            "urlencode",
            "when",
        ],
    ),
    // The shell's `:schedule` is the CLI's verb, handed in by `cli` (`shell::Verbs`).
    ("shell", &["app", "bundled", "script", "session", "store"]),
    (
        "cli",
        &[
            "app", "bundled", "config", "health", "monitord", "notify", "password", "queue",
            "redact", "site", "script", "session", "shell", "sql", "sqlxml", "store", "web",
            "when",
        ],
    ),
];

/// `part -> parts it names as crate::X`, from the source, comments left out.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![std::path::PathBuf::from(src)];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("src").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).expect("under src");
            let part = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .map(|s| s.trim_end_matches(".rs").to_string())
                .expect("a part");
            if part == "lib" || part == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("read");
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                for (i, _) in code.match_indices("crate::") {
                    let name: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != part {
                        out.entry(part.clone()).or_default().insert(name);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn parts_use_only_the_parts_the_graph_allows() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(p, uses)| (*p, uses.iter().copied().collect()))
        .collect();
    let mut wrong = Vec::new();
    for (part, uses) in edges() {
        let Some(ok) = allowed.get(part.as_str()) else {
            wrong.push(format!("{part}: a part the graph does not list"));
            continue;
        };
        for u in uses {
            if !ok.contains(u.as_str()) {
                wrong.push(format!("{part} -> {u}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "uses outside the graph in tests/it/shape.rs (and src/lib.rs):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_graph_has_no_cycle_but_the_known_one() {
    // Without the shell's use of the CLI, the parts can be put in an order where each uses
    // only the ones before it.
    let mut left: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(p, uses)| {
            let uses = uses
                .iter()
                .copied()
                .filter(|u| !(*p == "shell" && *u == "cli"))
                .collect();
            (*p, uses)
        })
        .collect();
    let mut order = Vec::new();
    while !left.is_empty() {
        let ready: Vec<&str> = left
            .iter()
            .filter(|(_, uses)| uses.iter().all(|u| order.contains(u)))
            .map(|(p, _)| *p)
            .collect();
        assert!(!ready.is_empty(), "a cycle among {:?}", left.keys());
        for p in ready {
            left.remove(p);
            order.push(p);
        }
    }
    assert_eq!(order.len(), ALLOWED.len());
}
