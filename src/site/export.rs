//! `hostler export`: the whole site as a site file, from the database: hosts (never their
//! secrets), checks (one `[[check]]` for the schedules that differ only in their host or
//! tag, so rules stay rules), dependencies, heartbeats and recurring downtimes (a one-off
//! downtime is an operation, not configuration: it is not exported). Export, apply on an empty
//! database, and export again gives the same text.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::duration_text;
use crate::store::heartbeats::Heartbeat;
use crate::store::recurring::Recurring;
use crate::store::{Dependency, Host, Method, Schedule, Timing};

/// A TOML string (JSON's escapes are TOML's; DEL, which TOML refuses raw, escaped too).
fn quote(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('\u{7f}', "\\u007F")
}

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| quote(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A JSON value as a TOML value (vars are strings, numbers and booleans; anything else is
/// written as its JSON text).
fn value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => quote(s),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) if n.is_i64() => n.to_string(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() && f.fract() != 0.0 => format!("{f}"),
            Some(f) if f.is_finite() => format!("{f:.1}"),
            _ => quote(&n.to_string()),
        },
        other => quote(&other.to_string()),
    }
}

fn table<'a>(pairs: impl Iterator<Item = (&'a String, String)>) -> String {
    let inner: Vec<String> = pairs.map(|(k, v)| format!("{} = {v}", key(k))).collect();
    format!("{{ {} }}", inner.join(", "))
}

fn args(json: &Option<String>) -> Option<String> {
    let map: BTreeMap<String, String> = serde_json::from_str(json.as_deref()?).ok()?;
    (!map.is_empty()).then(|| table(map.iter().map(|(k, v)| (k, quote(v)))))
}

/// The settings of a schedule but its target: what makes two schedules one `[[check]]`.
fn check_body(s: &Schedule) -> String {
    let mut b = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(b, "{k} = {v}");
    };
    line("script", quote(&s.script));
    if let Some(n) = &s.name {
        line("name", quote(n));
    }
    match &s.timing {
        Timing::Every(ms) => line("every", quote(&duration_text(*ms))),
        Timing::Cron(c) => line("cron", quote(c)),
        Timing::At(_) => {}
    }
    if let Some(a) = args(&s.args) {
        line("args", a);
    }
    if let Some(f) = &s.fix_script {
        line("fix", quote(f));
    }
    if let Some(a) = args(&s.fix_args) {
        line("fix_args", a);
    }
    if s.retries > 1 {
        line("retries", s.retries.to_string());
    }
    if let Some(r) = s.retry_every_ms {
        line("retry_every", quote(&duration_text(r)));
    }
    if s.guard_max_fixes != 3 {
        line("max_fixes", s.guard_max_fixes.to_string());
    }
    if s.guard_window_ms != 3_600_000 {
        line("fix_window", quote(&duration_text(s.guard_window_ms)));
    }
    if s.guard_backoff_ms != 30_000 {
        line("fix_backoff", quote(&duration_text(s.guard_backoff_ms)));
    }
    if let Some(t) = s.timeout_ms {
        line("timeout", quote(&duration_text(t)));
    }
    if s.priority != 0 {
        line("priority", s.priority.to_string());
    }
    if s.max_attempts != 3 {
        line("attempts", s.max_attempts.to_string());
    }
    if !s.sites.is_empty() {
        line("sites", list(&s.sites));
    }
    if let Some(q) = s.quorum {
        line("quorum", q.to_string());
    }
    b
}

/// The site file for these objects.
pub fn export(
    hosts: &[Host],
    schedules: &[Schedule],
    deps: &[Dependency],
    beats: &[Heartbeat],
    windows: &[Recurring],
) -> String {
    let mut out = String::from(
        "# hostler site file (hostler export). Passwords are never exported: give each host\n# password_env or password_file.\n",
    );
    // A host's own parents: dependencies of all its checks, in no group.
    let parents = |h: &str| -> Vec<String> {
        let mut p: Vec<String> = deps
            .iter()
            .filter(|d| d.child_host == h && d.child_check.is_none() && d.group.is_none())
            .map(|d| format!("{}/{}", d.parent_host, d.parent_check))
            .collect();
        p.sort();
        p
    };
    let mut hosts: Vec<&Host> = hosts.iter().collect();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    for h in hosts {
        let _ = writeln!(
            out,
            "\n[[host]]\nname = {}\naddress = {}",
            quote(&h.name),
            quote(&h.address)
        );
        if h.method != Method::Ssh {
            let _ = writeln!(out, "method = {}", quote(h.method.as_str()));
        }
        if let Some(p) = h.port {
            let _ = writeln!(out, "port = {p}");
        }
        if let Some(u) = &h.username {
            let _ = writeln!(out, "user = {}", quote(u));
        }
        if !h.tags.is_empty() {
            let _ = writeln!(out, "tags = {}", list(&h.tags));
        }
        if let Some(s) = &h.site {
            let _ = writeln!(out, "site = {}", quote(s));
        }
        if !h.vars.is_empty() {
            let vars: BTreeMap<&String, &serde_json::Value> = h.vars.iter().collect();
            let _ = writeln!(
                out,
                "vars = {}",
                table(vars.into_iter().map(|(k, v)| (k, value(v))))
            );
        }
        let p = parents(&h.name);
        if !p.is_empty() {
            let _ = writeln!(out, "parents = {}", list(&p));
        }
        if let Some(k) = &h.key_path {
            let _ = writeln!(out, "key_path = {}", quote(k));
        }
        if let Some(pr) = &h.prompt {
            let _ = writeln!(out, "prompt = {}", quote(pr));
        }
    }
    // Schedules that differ only in their host or tag are one check.
    let mut checks: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut skipped = Vec::new();
    for s in schedules {
        if s.site.is_some() || matches!(s.timing, Timing::At(_)) {
            skipped.push(s.id);
            continue;
        }
        let e = checks.entry(check_body(s)).or_default();
        match (&s.host, &s.tag) {
            (Some(h), _) => e.0.push(h.clone()),
            (None, Some(t)) => e.1.push(t.clone()),
            _ => {}
        }
    }
    for (body, (mut hosts, mut tags)) in checks {
        hosts.sort();
        tags.sort();
        let _ = write!(out, "\n[[check]]\n{body}");
        if !hosts.is_empty() {
            let _ = writeln!(out, "hosts = {}", list(&hosts));
        }
        if !tags.is_empty() {
            let _ = writeln!(out, "tags = {}", list(&tags));
        }
    }
    let mut rest: Vec<&Dependency> = deps
        .iter()
        .filter(|d| d.child_check.is_some() || d.group.is_some())
        .collect();
    rest.sort_by_key(|d| {
        (
            d.child_host.clone(),
            d.child_check.clone(),
            d.parent_host.clone(),
            d.parent_check.clone(),
            d.group.clone(),
        )
    });
    for d in rest {
        let child = match &d.child_check {
            Some(c) => format!("{}/{c}", d.child_host),
            None => d.child_host.clone(),
        };
        let _ = writeln!(
            out,
            "\n[[depend]]\nchild = {}\non = {}",
            quote(&child),
            quote(&format!("{}/{}", d.parent_host, d.parent_check))
        );
        if let Some(g) = &d.group {
            let _ = writeln!(out, "group = {}", quote(g));
        }
    }
    let mut beats: Vec<&Heartbeat> = beats.iter().collect();
    beats.sort_by_key(|b| (b.host.clone(), b.name.clone()));
    for b in beats {
        let _ = writeln!(out, "\n[[heartbeat]]\nname = {}", quote(&b.name));
        if let Some(h) = &b.host {
            let _ = writeln!(out, "host = {}", quote(h));
        }
        match &b.cron {
            Some(c) => {
                let _ = writeln!(out, "cron = {}", quote(c));
            }
            None => {
                let _ = writeln!(out, "every = {}", quote(&duration_text(b.every_ms)));
            }
        }
        if b.grace_ms != 0 {
            let _ = writeln!(out, "grace = {}", quote(&duration_text(b.grace_ms)));
        }
        if let Some(f) = &b.fix {
            let _ = writeln!(out, "fix = {}", quote(f));
        }
    }
    let mut windows: Vec<&Recurring> = windows.iter().collect();
    windows.sort_by_key(|w| {
        (
            w.host.clone(),
            w.tag.clone(),
            w.script.clone(),
            w.cron.clone(),
        )
    });
    for w in windows {
        let _ = writeln!(out, "\n[[downtime]]");
        match (&w.host, &w.tag, &w.script) {
            (Some(h), _, Some(s)) => {
                let _ = writeln!(out, "check = {}", quote(&format!("{h}/{s}")));
            }
            (Some(h), _, None) => {
                let _ = writeln!(out, "host = {}", quote(h));
            }
            (None, Some(t), _) => {
                let _ = writeln!(out, "tag = {}", quote(t));
            }
            _ => {}
        }
        let _ = writeln!(
            out,
            "cron = {}\nduration = {}\nreason = {}",
            quote(&w.cron),
            quote(&duration_text(w.duration_ms)),
            quote(&w.reason)
        );
        if w.children {
            let _ = writeln!(out, "children = true");
        }
    }
    if !skipped.is_empty() {
        let _ = writeln!(
            out,
            "\n# Not in the file: schedules {} (run once at a time, or by site), which the site file does not describe.",
            skipped
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}
