//! The web page and API over HTTP, served in-process on a free loopback port (see webutil.rs):
//! login, cookies, CSRF and origin checks, forms that refuse bad input and keep secrets out of
//! pages, the queue's buttons, runs, the JSON API with tokens and roles, /metrics, and hostile
//! requests. The browser test is in browser.rs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use hostler::store::{JobAction, Method, NewHost, NewJob, NewRun, Secret, Status, Store, now_ms};
use hostler::web::auth;

use crate::util::{Work, code, stderr, stdout};
use crate::webutil::{ADMIN_PW, Site};

const HOST_PW: &str = "Web1-secret-pass-9";

fn seeded(w: &Work) -> Arc<Store> {
    let store = w.store();
    store
        .add_host(&NewHost {
            name: "localhost".into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Local),
            tags: vec!["lab".into()],
            ..Default::default()
        })
        .expect("host");
    w.script(&store, "check_x", "ok(\"fine\")");
    w.script(&store, "fix_x", "ok(\"fixed\")");
    store
}

/// Records a run of `script` on localhost as its schedule's (made the first time, due in an
/// hour so nothing runs it), so the run moves its check.
fn record(store: &Store, script: &str, status: Status, message: &str) -> i64 {
    let schedule = store
        .schedules()
        .expect("schedules")
        .into_iter()
        .find(|s| s.script == script)
        .map(|s| s.id)
        .unwrap_or_else(|| {
            store
                .add_schedule(&hostler::store::NewSchedule {
                    max_attempts: 1,
                    guard_backoff_ms: 0,
                    next_due: now_ms() + 3_600_000,
                    ..hostler::store::NewSchedule::every(script, Some("localhost"), 3_600_000)
                })
                .expect("schedule")
        });
    store
        .record_run(
            &NewRun {
                check_name: None,
                job_id: None,
                schedule_id: Some(schedule),
                script: script.into(),
                script_version: Some(1),
                host: Some("localhost".into()),
                node: Some("t".into()),
                status,
                message: message.into(),
                perfdata: Some("load1=0.5;1;2 'free \"space\"'=42%;;;0;100 bad==".into()),
                output: "line one\n<b>bold</b>\n".into(),
                transcript: r#"{"t":0,"d":">","s":1,"b":"uptime\n"}"#.to_string() + "\n",
                started_at: now_ms() - 5,
                finished_at: now_ms(),
                attempt: 1,
                phase: None,
                notifications: vec![],
            },
            JobAction::Keep,
        )
        .expect("record run")
}

#[test]
fn login_is_required_and_the_session_cookie_is_strict_and_httponly() {
    let w = Work::new();
    let site = Site::start(seeded(&w), false);
    let mut c = site.client();
    let r = c.get("/");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login?next=%2F"));
    let r = c.get("/api/hosts");
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains("Bearer"));
    assert_eq!(c.get("/metrics").status, 401);
    let r = c.get("/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

    // No token from the login form: refused.
    let r = c.post("/login", &[("username", "admin"), ("password", ADMIN_PW)]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!c.cookies.contains_key(auth::COOKIE));
    // A wrong password: the form again, no session.
    let r = c.login("admin", "not-the-password");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("wrong user name or password"), "{}", r.body);
    assert!(!c.cookies.contains_key(auth::COOKIE));

    let r = c.login("admin", ADMIN_PW);
    assert_eq!(r.status, 303);
    let cookie = r
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with(auth::COOKIE))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let r = c.get("/");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<h1>Dashboard</h1>") && r.body.contains("localhost"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));

    // Logging out ends the session on the server, not only in the browser.
    let old = c.cookies.get(auth::COOKIE).cloned().expect("cookie");
    assert_eq!(c.submit("/logout", &[]).status, 303);
    assert_eq!(c.get("/").status, 303);
    c.cookies.insert(auth::COOKIE.into(), old);
    assert_eq!(c.get("/").status, 303, "the old cookie no longer works");

    // Behind a TLS proxy that says so, the cookie is Secure.
    let mut p = site.client();
    let page = p.get("/login");
    let token = crate::webutil::field(&page.body, "csrf_token").expect("token");
    let r = p.post_with(
        "/login",
        &[
            ("csrf_token", &token),
            ("username", "admin"),
            ("password", ADMIN_PW),
        ],
        &[("x-forwarded-proto", "https")],
    );
    assert!(
        r.headers.iter().any(|(n, v)| n == "set-cookie"
            && v.starts_with(auth::COOKIE)
            && v.contains("; Secure")),
        "{:?}",
        r.headers
    );

    // `next` only ever leads to a local path.
    let mut c = site.client();
    let page = c.get("/login?next=//evil.example/x");
    let token = crate::webutil::field(&page.body, "csrf_token").expect("token");
    let r = c.post(
        "/login",
        &[
            ("csrf_token", &token),
            ("username", "admin"),
            ("password", ADMIN_PW),
            ("next", "//evil.example/x"),
        ],
    );
    assert_eq!(r.header("location"), Some("/"));
}

#[test]
fn every_post_needs_the_csrf_token_and_the_same_origin() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.login("admin");
    let fields = [
        ("script", "check_x"),
        ("host", "localhost"),
        ("when", "now"),
    ];
    let r = c.post("/schedule", &fields);
    assert_eq!(r.status, 403, "{}", r.body);
    let mut wrong = vec![("csrf_token", "0123")];
    wrong.extend_from_slice(&fields);
    assert_eq!(c.post("/schedule", &wrong).status, 403);
    c.get("/schedule");
    let token = c.csrf.clone().expect("token");
    let mut good = vec![("csrf_token", token.as_str())];
    good.extend_from_slice(&fields);
    let r = c.post_with("/schedule", &good, &[("origin", "http://evil.example")]);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = c.post_with("/schedule", &good, &[("sec-fetch-site", "cross-site")]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(store.jobs().expect("jobs").is_empty(), "nothing was queued");
    // Behind a TLS proxy: the origin names the proxy's host, passed on as X-Forwarded-Host.
    let r = c.post_with(
        "/schedule",
        &good,
        &[
            ("origin", "https://hostler.example"),
            ("x-forwarded-host", "hostler.example"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    store
        .cancel_job(store.jobs().expect("jobs")[0].id, "t")
        .expect("cancel");
    let origin = site.base.clone();
    let r = c.post_with("/schedule", &good, &[("origin", &origin)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("location").unwrap().starts_with("/queue?done="));
    assert_eq!(store.jobs().expect("jobs").len(), 1);
    // A malformed form is a 400, not a guess.
    let r = c.post("/schedule", &[("csrf_token", &token)]);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("choose a script"));
    let r = c.post_raw("/schedule", &format!("csrf_token={token}&script=%zz"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("bad percent-encoding"), "{}", r.body);
    assert_eq!(
        site.web.panics.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn host_form_never_shows_the_secret_and_keeps_it_on_edit() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.login("admin");
    let mut fields = vec![
        ("name", "web1"),
        ("address", "192.0.2.10"),
        ("method", "ssh"),
        ("username", "ops"),
        ("password", HOST_PW),
        ("tags", "web prod"),
        ("port", "abc"),
    ];
    let r = c.submit("/hosts/new", &fields);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("bad port"), "{}", r.body);
    assert!(
        !r.body.contains(HOST_PW),
        "the form never echoes the password"
    );
    assert!(r.body.contains("192.0.2.10"), "the other fields are kept");
    assert!(store.host("web1").is_err(), "nothing written");
    fields.pop();
    fields.push(("port", "2222"));
    fields.push(("keep_session", "on"));
    let r = c.submit("/hosts/new", &fields);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/hosts/web1"));
    assert_eq!(
        store
            .host_secret("web1")
            .expect("secret")
            .map(|s| s.expose().to_string()),
        Some(HOST_PW.to_string())
    );
    assert_eq!(
        c.submit("/hosts/new", &fields).status,
        400,
        "a duplicate is refused"
    );
    for page in [
        "/hosts/web1",
        "/hosts/web1/edit",
        "/hosts",
        "/",
        "/api/hosts/web1",
        "/api/dashboard",
    ] {
        let r = c.get(page);
        assert_eq!(r.status, 200, "{page}");
        assert!(!r.body.contains(HOST_PW), "{page} shows the secret");
    }
    let edit = c.get("/hosts/web1/edit");
    assert!(edit.body.contains("empty: keep the stored one"));
    let r = c.submit(
        "/hosts/web1/edit",
        &[
            ("address", "192.0.2.11"),
            ("method", "ssh"),
            ("password", ""),
            ("tags", "web"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let h = store.host("web1").expect("host");
    assert_eq!(
        (h.address.as_str(), h.tags.clone()),
        ("192.0.2.11", vec!["web".to_string()])
    );
    assert!(
        h.has_secret,
        "an empty password field keeps the stored secret"
    );
    let r = c.submit(
        "/hosts/web1/edit",
        &[
            ("address", "192.0.2.11"),
            ("clear_password", "on"),
            ("vars", "[1]"),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("vars must be a JSON object"));
    assert!(
        store.host("web1").expect("host").has_secret,
        "a refused edit changes nothing"
    );
    let r = c.submit(
        "/hosts/web1/edit",
        &[("address", "192.0.2.11"), ("clear_password", "on")],
    );
    assert_eq!(r.status, 303);
    assert!(!store.host("web1").expect("host").has_secret);
    assert_eq!(c.get("/hosts/nope").status, 404);
    assert_eq!(c.get("/hosts/..%2Fetc").status, 404);
    let mut viewer = site.login("view");
    assert_eq!(viewer.get("/hosts/web1").status, 200);
    assert_eq!(
        viewer
            .submit("/hosts/web1/edit", &[("address", "x")])
            .status,
        403
    );
    assert_eq!(store.host("web1").expect("host").address, "192.0.2.11");
}

#[test]
fn script_edits_are_syntax_checked_and_versioned() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.login("admin");
    let r = c.get("/scripts/check_x");
    assert!(r.body.contains("version 1"), "{}", r.body);
    let r = c.submit(
        "/scripts/check_x",
        &[
            ("source", "let x = ;\n// <tag>"),
            ("version", "1"),
            ("kind", "check"),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("not saved"), "{}", r.body);
    assert!(
        r.body.contains("// &lt;tag&gt;"),
        "the text is kept, escaped"
    );
    assert_eq!(store.script("check_x").expect("script").version, 1);
    let r = c.submit(
        "/scripts/check_x",
        &[
            ("source", "ok(\"better\")"),
            ("version", "1"),
            ("kind", "check"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let s = store.script("check_x").expect("script");
    assert_eq!((s.version, s.source.as_str()), (2, "ok(\"better\")"));
    let r = c.submit(
        "/scripts/check_x",
        &[("source", "ok(\"x\")"), ("version", "1")],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("changed since version 1 was opened"),
        "{}",
        r.body
    );
    let r = c.submit(
        "/scripts/new",
        &[("name", "bad name"), ("source", "ok(\"x\")")],
    );
    assert_eq!(r.status, 400);
    let r = c.submit(
        "/scripts/new",
        &[
            ("name", "new_one"),
            ("source", "ok(\"x\")"),
            ("kind", "task"),
        ],
    );
    assert_eq!(r.status, 303);
    assert_eq!(store.script("new_one").expect("script").version, 1);
    let mut op = site.login("oper");
    let r = op.submit(
        "/scripts/new_one",
        &[("source", "ok(\"y\")"), ("version", "1")],
    );
    assert_eq!(r.status, 403, "only an admin writes scripts");
}

#[test]
fn the_schedule_form_queues_now_schedules_and_refuses_bad_input() {
    let w = Work::new();
    let store = seeded(&w);
    store
        .add_host(&NewHost {
            name: "other".into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Local),
            ..Default::default()
        })
        .expect("host");
    let site = Site::start(store.clone(), false);
    let mut c = site.login("oper");
    for (fields, want) in [
        (vec![("when", "now")], "choose a script"),
        (
            vec![("script", "check_x"), ("host", "nope")],
            "host \"nope\" not found",
        ),
        (vec![("script", "nope")], "script \"nope\" not found"),
        (
            vec![("script", "check_x"), ("when", "every"), ("every", "abc")],
            "bad duration",
        ),
        (
            vec![("script", "check_x"), ("when", "cron"), ("cron", "* *")],
            "bad cron expression",
        ),
        (
            vec![("script", "check_x"), ("fix", "fix_x")],
            "needs a timing",
        ),
        (
            vec![("script", "check_x"), ("priority", "high")],
            "bad priority",
        ),
        (
            vec![("script", "check_x"), ("host", "localhost"), ("tag", "lab")],
            "not more than one",
        ),
    ] {
        let r = c.submit("/schedule", &fields);
        assert_eq!(r.status, 400, "{fields:?}: {}", r.body);
        assert!(
            r.body.contains(&maud::html! { (want) }.into_string()),
            "{fields:?}: {}",
            r.body
        );
    }
    assert!(store.jobs().expect("jobs").is_empty());
    assert!(store.schedules().expect("schedules").is_empty());
    let r = c.submit(
        "/schedule",
        &[
            ("script", "check_x"),
            ("host", "localhost"),
            ("host", "other"),
            ("priority", "7"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let jobs = store.jobs().expect("jobs");
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.priority == 7));
    let r = c.submit(
        "/schedule",
        &[
            ("script", "check_x"),
            ("tag", "lab"),
            ("when", "every"),
            ("every", "5m"),
            ("fix", "fix_x"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let s = store.schedules().expect("schedules");
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].tag.as_deref(), s[0].fix_script.as_deref()),
        (Some("lab"), Some("fix_x"))
    );
    let q = c.get("/queue");
    assert!(
        q.body.contains("every 5m") && q.body.contains("tag lab"),
        "{}",
        q.body
    );
    let r = c.submit(&format!("/schedules/{}/remove", s[0].id), &[]);
    assert_eq!(r.status, 303);
    assert!(store.schedules().expect("schedules").is_empty());
    assert_eq!(c.submit("/schedules/999/remove", &[]).status, 404);
    let mut viewer = site.login("view");
    assert_eq!(viewer.get("/schedule").status, 403);
}

#[test]
fn the_queue_cancels_and_reprioritises() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let (id, _) = store
        .enqueue_with(
            &NewJob {
                name: None,
                script: "check_x".into(),
                host: Some("localhost".into()),
                priority: 0,
                due_at: now_ms() + 3_600_000,
                max_attempts: 1,
                timeout_ms: None,
                schedule_id: None,
                args: None,
            },
            false,
        )
        .expect("enqueue");
    let mut c = site.login("oper");
    let q = c.get("/queue");
    assert!(
        q.body.contains(&format!("/queue/{id}/cancel")),
        "{}",
        q.body
    );
    let r = c.submit(&format!("/queue/{id}/priority"), &[("priority", "9")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(store.job(id).expect("job").priority, 9);
    assert_eq!(
        c.submit(&format!("/queue/{id}/priority"), &[("priority", "x")])
            .status,
        400
    );
    assert_eq!(
        c.submit("/queue/424242/priority", &[("priority", "1")])
            .status,
        404
    );
    assert_eq!(c.submit("/queue/abc/cancel", &[]).status, 404);
    assert_eq!(c.get(&format!("/queue/{id}/cancel")).status, 405);
    let r = c.submit(&format!("/queue/{id}/cancel"), &[]);
    assert_eq!(r.status, 303);
    assert!(store.jobs().expect("jobs").is_empty());
    let runs = store.runs(&Default::default()).expect("runs");
    assert_eq!(runs[0].status, Status::Cancelled);
    assert_eq!(runs[0].node.as_deref(), Some("web:oper"));
}

#[test]
fn runs_filter_escape_and_unknown_ids_are_404() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let ok = record(&store, "check_x", Status::Ok, "fine");
    let bad = record(
        &store,
        "check_x",
        Status::Critical,
        "<script>alert(1)</script>",
    );
    let mut c = site.login("view");
    let r = c.get("/runs?status=critical");
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains(&format!("/runs/{bad}")) && !r.body.contains(&format!("\"/runs/{ok}\""))
    );
    assert!(r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!r.body.contains("<script>alert"), "escaped everywhere");
    let d = c.get("/");
    assert!(!d.body.contains("<script>alert"));
    // The check's badge, and the problem listed with its escaped message.
    assert!(
        d.body
            .contains(&format!(r#"<a class="st critical" href="/runs/{bad}""#))
            && d.body.contains("1 critical")
            && d.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        d.body
    );
    let r = c.get(&format!("/runs/{bad}"));
    assert!(r.body.contains("&lt;b&gt;bold&lt;/b&gt;") && r.body.contains("Transcript"));
    assert!(r.body.contains("uptime"), "{}", r.body);
    assert_eq!(c.get("/runs/999999").status, 404);
    assert_eq!(c.get("/runs/abc").status, 404);
    assert_eq!(c.get("/runs?status=bogus").status, 400);
    assert_eq!(c.get("/runs?host=localhost&script=check_x").status, 200);
    // The recovery has its own row; the OK runs after it share one, and say how many.
    let recovery = record(&store, "check_x", Status::Ok, "fine again");
    let shared: Vec<i64> = (0..2)
        .map(|_| record(&store, "check_x", Status::Ok, "still fine"))
        .collect();
    assert!(
        shared[0] == shared[1] && shared[0] != recovery,
        "{shared:?}"
    );
    let list = c.get("/runs");
    assert!(list.body.contains("×2"), "{}", list.body);
    let page = c.get(&format!("/runs/{}", shared[0]));
    assert!(
        page.body.contains("The latest of 2 OK runs in a row"),
        "{}",
        page.body
    );
}

#[test]
fn the_api_takes_tokens_checks_roles_and_answers_json_errors() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    record(&store, "check_x", Status::Warning, "hmm");
    let admin = auth::new_token(&store, "admin", "test").expect("token");
    let viewer = auth::new_token(&store, "view", "test").expect("token");
    let mut c = site.client();
    let r = c.api_get("/api/hosts", &admin);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["name"], "localhost");
    assert_eq!(c.api_get("/api/hosts", "hst_wrong").status, 401);
    let d = c.api_get("/api/dashboard", &viewer).json();
    assert_eq!(d["hosts"][0]["checks"][0]["state"], "warning");
    assert_eq!(d["counts"]["warning"], 1);
    assert_eq!(d["problems"][0]["script"], "check_x");
    let list = c.api_get("/api/checks", &viewer).json();
    assert_eq!(
        (list[0]["host"].as_str(), list[0]["state"].as_str()),
        (Some("localhost"), Some("warning"))
    );
    record(&store, "check_x", Status::Ok, "fine again");
    let one = c.api_get("/api/checks/localhost/check_x", &viewer).json();
    assert_eq!(one["check"]["state"], "ok");
    let changes: Vec<&str> = one["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|x| x["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(changes, vec!["warning", "ok"]);
    assert_eq!(c.api_get("/api/checks/localhost/nope", &viewer).status, 404);
    assert_eq!(c.api_get("/api/checks/-/check_x", &viewer).status, 404);
    let r = c.api_post(
        "/api/schedule",
        &admin,
        r#"{"script": "check_x", "host": ["localhost"], "priority": 3}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let job = r.json()["jobs"][0]["job"].as_i64().expect("job id");
    assert_eq!(store.job(job).expect("job").priority, 3);
    for (body, want) in [
        ("{not json", "not JSON"),
        ("[1]", "JSON object"),
        (r#"{"host": "localhost"}"#, "choose a script"),
        (
            r#"{"script": "check_x", "host": {"a": 1}}"#,
            "must be a string",
        ),
    ] {
        let r = c.api_post("/api/schedule", &admin, body);
        assert_eq!(r.status, 400, "{body}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(want),
            "{body}: {}",
            r.body
        );
    }
    let r = c.api_post("/api/schedule", &viewer, r#"{"script": "check_x"}"#);
    assert_eq!(r.status, 403);
    let r = c.api_post(
        &format!("/api/queue/{job}/priority"),
        &admin,
        r#"{"priority": 8}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.api_post(&format!("/api/jobs/{job}/cancel"), &admin, "{}");
    assert_eq!(r.json()["result"], "removed");
    let r = c.api_post(
        "/api/scripts/check_x",
        &admin,
        r#"{"source": "ok(", "kind": "check"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = c.api_post(
        "/api/scripts/api_new",
        &admin,
        r#"{"source": "ok(\"api\")"}"#,
    );
    assert_eq!(r.json()["version"], 1, "{}", r.body);
    // With the version it started from, a save is checked against the stored one.
    let stale = r#"{"source": "ok(\"v2\")", "version": 1}"#;
    assert_eq!(
        c.api_post("/api/scripts/api_new", &admin, stale).json()["version"],
        2
    );
    let r = c.api_post("/api/scripts/api_new", &admin, stale);
    assert_eq!(
        r.status, 400,
        "a second save from version 1 loses: {}",
        r.body
    );
    assert!(r.body.contains("now version 2"), "{}", r.body);
    let r = c.api_post("/api/hosts", &admin, r#"{"name": "h2", "address": "192.0.2.5", "password": "H2-secret-pass-77", "keep_session": true}"#);
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(!r.body.contains("H2-secret-pass-77"));
    assert_eq!(c.api_get("/api/runs?limit=abc", &admin).status, 400);
    assert_eq!(c.api_get("/api/runs/99999", &admin).status, 404);
    assert_eq!(c.api_get("/api/nope", &admin).status, 404);
    assert_eq!(c.api_get("/api/schedule", &admin).status, 405);
    let runs = c.api_get("/api/runs?status=warning&full=1", &admin).json();
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    assert!(runs[0]["output"].as_str().unwrap().contains("line one"));
    // A browser session must add the CSRF header to API writes.
    let mut b = site.login("admin");
    let r = b.post_with(
        "/api/schedule",
        &[],
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
}

#[test]
fn metrics_are_public_only_when_configured() {
    let w = Work::new();
    let store = seeded(&w);
    record(&store, "check_x", Status::Ok, "a");
    record(&store, "check_x", Status::Ok, "b");
    record(&store, "check_x", Status::Critical, "c");
    let private = Site::start(store.clone(), false);
    assert_eq!(private.client().get("/metrics").status, 401);
    let token = auth::new_token(&store, "view", "prom").expect("token");
    let m = private.client().api_get("/metrics", &token);
    assert_eq!(m.status, 200);
    drop(private);
    let public = Site::start(store, true);
    let m = public.client().get("/metrics");
    assert_eq!(m.status, 200);
    // The database's size, and its rows per table, here and on the dashboard.
    let dash = public.login("view").get("/");
    assert!(dash.body.contains("Database: "), "{}", dash.body);
    assert!(dash.body.contains("3 runs"), "{}", dash.body);
    for want in [
        "# TYPE hostler_database_size_bytes gauge",
        "hostler_table_rows{table=\"runs\"} 3",
        "hostler_table_rows{table=\"perf_series\"} 2",
        "hostler_runs_total{status=\"ok\"} 2",
        "hostler_runs_total{status=\"critical\"} 1",
        "hostler_jobs{state=\"queued\"} 0",
        "hostler_run_duration_seconds_count{status=\"ok\"} 2",
        "hostler_notification_failures 0",
        "# TYPE hostler_runs_total counter",
        "hostler_check_state{host=\"localhost\",check=\"check_x\"} 2",
        "hostler_check_hard{host=\"localhost\",check=\"check_x\"} 1",
        "hostler_check_since_seconds{host=\"localhost\",check=\"check_x\"} ",
        "hostler_check_perfdata{host=\"localhost\",check=\"check_x\",label=\"load1\"} 0.5",
        "hostler_check_perfdata{host=\"localhost\",check=\"check_x\",label=\"free \\\"space\\\"\"} 42",
    ] {
        assert!(m.body.contains(want), "{want} in {}", m.body);
    }
    // Prometheus's own checker takes it, lint warnings and all.
    let promtool = std::env::var("HOSTLER_PROMTOOL").unwrap_or_else(|_| "/usr/bin/promtool".into());
    if crate::util::have(&promtool, "Prometheus's promtool checks /metrics") {
        let mut child = std::process::Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(m.body.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("promtool ran");
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool check metrics: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn oversized_and_malformed_requests_get_4xx_and_the_server_goes_on() {
    let w = Work::new();
    let site = Site::start(seeded(&w), false);
    let mut c = site.login("admin");
    let big = "x".repeat(hostler::web::http::MAX_BODY + 10);
    let r = c.submit("/scripts/new", &[("source", &big)]);
    assert_eq!(r.status, 413);
    let addr = site.base.trim_start_matches("http://").to_string();
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /%%%%?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n\xff\xfe\x00\x01\x02",
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: hostler_session=\xff\xff\r\n\r\n",
        b"GET /runs/99999999999999999999999 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0u8; 4096],
    ] {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = s.write_all(raw);
        let mut answer = Vec::new();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains(" 500 "), "{raw:?} gave {text}");
    }
    assert_eq!(c.get("/healthz").status, 200);
    assert_eq!(c.get("/runs/99999999999999999999999").status, 404);
    assert_eq!(
        site.web.panics.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn user_cli_adds_lists_tokens_and_removes() {
    let w = Work::new();
    let o = w.run_with_input(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--role",
            "operator",
        ],
        "Alice-pass-123\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = w.run_with_input(
        &["user", "add", "alice", "--password-stdin"],
        "Alice-pass-123\n",
    );
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let o = w.run_with_input(&["user", "add", "bob", "--password-stdin"], "short\n");
    assert!(stderr(&o).contains("too short"), "{}", stderr(&o));
    let o = w.run_with_input(
        &["user", "add", "bob", "--password-stdin", "--role", "boss"],
        "Bob-pass-12345\n",
    );
    assert!(stderr(&o).contains("unknown role"), "{}", stderr(&o));
    let o = w.run(&["user", "add", "carol"]);
    assert!(stderr(&o).contains("--password-stdin"), "{}", stderr(&o));
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&w.run(&["user", "list", "--json"]))).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["role"], "operator");
    assert!(list[0].get("password_hash").is_none());
    let o = w.run(&["user", "token", "add", "alice", "--label", "ci"]);
    let token = stdout(&o).trim().to_string();
    assert!(token.starts_with("hst_"), "{token}");
    let user_of = |t: &str| {
        w.store()
            .token_user(&auth::token_hash(t))
            .expect("lookup")
            .map(|u| u.name)
    };
    assert_eq!(user_of(&token).as_deref(), Some("alice"));
    // Listed by id, user and label; never by value.
    let o = w.run(&["user", "token", "list", "alice", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(list[0]["label"], "ci");
    assert!(!stdout(&o).contains(&token[4..]));
    // A new password keeps the tokens only when asked.
    let o = w.run_with_input(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--replace",
            "--keep-tokens",
        ],
        "Alice-new-pass-0\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(user_of(&token).as_deref(), Some("alice"));
    let o = w.run_with_input(
        &["user", "add", "alice", "--password-stdin", "--replace"],
        "Alice-new-pass-1\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("1 API tokens ended"), "{}", stdout(&o));
    assert_eq!(user_of(&token), None, "a new password ends the tokens");
    let u = w.store().find_user("alice").expect("read").expect("alice");
    assert!(auth::verify_password("Alice-new-pass-1", &u.password_hash).expect("not busy"));
    assert_eq!(u.role.as_str(), "operator", "--replace keeps the role");
    // One token revoked by its id, the other kept.
    let a = stdout(&w.run(&["user", "token", "add", "alice", "--label", "a"]))
        .trim()
        .to_string();
    let b = stdout(&w.run(&["user", "token", "add", "alice", "--label", "b"]))
        .trim()
        .to_string();
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&w.run(&["user", "token", "list", "--json"]))).expect("json");
    let id_a = list
        .as_array()
        .and_then(|l| l.iter().find(|t| t["label"] == "a"))
        .and_then(|t| t["id"].as_i64())
        .expect("a's id");
    let o = w.run(&["user", "token", "rm", &id_a.to_string()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(user_of(&a), None);
    assert_eq!(user_of(&b).as_deref(), Some("alice"));
    assert_ne!(code(&w.run(&["user", "token", "rm", &id_a.to_string()])), 0);
    assert_eq!(code(&w.run(&["user", "rm", "alice"])), 0);
    assert_eq!(user_of(&b), None, "its tokens went too");
    assert_ne!(code(&w.run(&["user", "rm", "alice"])), 0);
}

#[test]
fn secrets_given_to_the_api_never_come_back() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let token = auth::new_token(&store, "admin", "t").expect("token");
    let mut c = site.client();
    let r = c.api_post(
        "/api/hosts/localhost",
        &token,
        &format!(r#"{{"address": "127.0.0.1", "method": "local", "password": "{HOST_PW}"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        store.host_secret("localhost").expect("s"),
        Some(Secret::new(HOST_PW))
    );
    for p in ["/api/hosts", "/api/hosts/localhost", "/api/dashboard"] {
        assert!(!c.api_get(p, &token).body.contains(HOST_PW), "{p}");
    }
}

#[test]
fn sessions_end_when_the_user_changes_and_guessing_is_braked() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.login("oper");
    assert_eq!(c.get("/").status, 200);
    // A new password (another process, `hostler user add --replace`) ends the session.
    let hash = auth::hash_password("Another-pass-123").expect("hash");
    store
        .add_user("oper", &hash, hostler::store::Role::Operator, true)
        .expect("replace");
    assert_eq!(c.get("/").status, 303);
    let mut v = site.login("view");
    store.remove_user("view").expect("rm");
    assert_eq!(v.get("/").status, 303, "a removed user's session ends");

    // `next` never carries a line end or a tab into the Location header.
    for next in [
        "/%0D%0ASet-Cookie:%20x=1",
        "/%09/evil.example",
        "/\\evil.example",
    ] {
        let mut c = site.client();
        let page = c.get(&format!("/login?next={next}"));
        let token = crate::webutil::field(&page.body, "csrf_token").expect("token");
        let r = c.post(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", "admin"),
                ("password", ADMIN_PW),
                (
                    "next",
                    &hostler::web::http::decode(next.as_bytes()).unwrap(),
                ),
            ],
        );
        assert_eq!(r.header("location"), Some("/"), "{next}");
        assert!(
            !r.headers
                .iter()
                .any(|(n, v)| n == "set-cookie" && v.starts_with("x=")),
            "{next}"
        );
    }

    // Three wrong passwords are answered 401; then every try waits, even the right one,
    // with 429 and a Retry-After.
    let mut g = site.client();
    for _ in 0..3 {
        assert_eq!(g.login("admin", "wrong-password").status, 401);
    }
    assert_eq!(g.login("admin", "wrong-password").status, 429);
    let r = g.login("admin", ADMIN_PW);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert!(r.body.contains("too many failed logins"), "{}", r.body);

    // A stranger cannot make a worker read a large body.
    let mut anon = site.client();
    let big = "x".repeat(8000);
    let r = anon.post("/login", &[("junk", &big)]);
    assert_eq!(r.status, 401, "{}", r.body);
}

#[test]
fn absurd_timings_are_refused() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.login("admin");
    for (when, field, value) in [
        ("every", "every", "9223371000000000"),
        ("every", "every", "20000d"),
        ("at", "at", "9999-01-01 00:00"),
    ] {
        let r = c.submit(
            "/schedule",
            &[("script", "check_x"), ("when", when), (field, value)],
        );
        assert_eq!(r.status, 400, "{value}: {}", r.body);
    }
    assert!(store.schedules().expect("schedules").is_empty());
}

/// One raw request; the status line of the answer.
fn raw_status(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_loopback_server_answers_only_to_its_own_host_names() {
    let w = Work::new();
    let site = Site::start(seeded(&w), false);
    let addr = site.base.trim_start_matches("http://").to_string();
    for (host, want) in [
        ("evil.example", " 421 "),
        ("evil.example:8080", " 421 "),
        ("127.0.0.1.evil.example", " 421 "),
        ("localhost:8080", " 200 "),
        ("[::1]:8080", " 200 "),
        ("127.0.0.1", " 200 "),
        ("hostler.example", " 200 "),
    ] {
        let line = raw_status(
            &addr,
            &format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert!(line.contains(want), "{host}: {line}");
    }
}

#[test]
fn downtimes_and_acknowledgements_on_the_page_and_the_api() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.login("admin");
    let r = c.submit(
        "/downtimes",
        &[
            ("host", "localhost"),
            ("for", "2h"),
            ("reason", "kernel <update>"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = c.get("/downtimes");
    assert!(
        page.body.contains("kernel &lt;update&gt;") && page.body.contains("web:admin"),
        "{}",
        page.body
    );
    // Bad input: the form again, 400, saying what was wrong, nothing stored.
    let r = c.submit("/downtimes", &[("host", "localhost"), ("reason", "x")]);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("give for"), "{}", r.body);
    let r = c.submit(
        "/downtimes",
        &[("host", "nope"), ("for", "1h"), ("reason", "x")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(store.downtimes().expect("list").len(), 1);
    let id = store.downtimes().expect("list")[0].id;
    assert_eq!(
        c.submit(&format!("/downtimes/{id}/remove"), &[]).status,
        303
    );
    assert!(store.downtimes().expect("list").is_empty());

    // The API: a viewer reads, an operator writes.
    let admin = auth::new_token(&store, "admin", "t").expect("token");
    let viewer = auth::new_token(&store, "view", "t").expect("token");
    let r = c.api_post(
        "/api/downtimes",
        &admin,
        r#"{"check": "localhost/check_x", "for": "30m", "reason": "migration"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let list = c.api_get("/api/downtimes", &viewer).json();
    assert_eq!(list[0]["script"], "check_x");
    assert_eq!(
        c.api_post(
            "/api/downtimes",
            &viewer,
            r#"{"host": "localhost", "for": "1h", "reason": "x"}"#
        )
        .status,
        403
    );
    let r = c.api_post(
        "/api/downtimes",
        &admin,
        r#"{"host": "localhost", "reason": "x"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("give for")
    );

    // Acknowledging: refused while OK, shown once acknowledged.
    record(&store, "check_x", Status::Ok, "fine");
    let r = c.api_post(
        "/api/checks/localhost/check_x/ack",
        &admin,
        r#"{"comment": "on it"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    record(&store, "check_x", Status::Critical, "down");
    // The run was recorded behind the page's back: its overview is read again at once.
    site.web.dashboard.invalidate();
    let d = c.get("/");
    assert!(
        d.body.contains("/checks/localhost/check_x/ack"),
        "an Ack form"
    );
    let r = c.submit("/checks/localhost/check_x/ack", &[("comment", "on it")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let d = c.get("/");
    assert!(
        d.body.contains("title=\"on it (web:admin)\">acked</span>")
            && d.body.contains("<a href=\"/downtimes\">downtime</a>"),
        "{}",
        d.body
    );
    let one = c.api_get("/api/checks/localhost/check_x", &viewer).json();
    assert_eq!(one["check"]["acked"], true);
}

#[test]
fn a_run_can_be_run_again_and_a_script_run_now_on_a_host() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let id = record(&store, "check_x", Status::Critical, "down");
    let mut viewer = site.login("view");
    assert!(
        !viewer
            .get(&format!("/runs/{id}"))
            .body
            .contains("Run again")
    );
    let mut c = site.login("oper");
    let page = c.get(&format!("/runs/{id}"));
    assert!(
        page.body.contains("Run again")
            && page.body.contains(r#"name="script" value="check_x""#)
            && page.body.contains(r#"name="host" value="localhost""#),
        "{}",
        page.body
    );
    // What the button posts.
    let r = c.submit(
        "/schedule",
        &[
            ("script", "check_x"),
            ("host", "localhost"),
            ("when", "now"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let jobs = store.jobs().expect("jobs");
    assert_eq!(
        (jobs.len(), jobs[0].script.as_str(), jobs[0].host.as_deref()),
        (1, "check_x", Some("localhost"))
    );
    let page = c.get("/scripts/check_x");
    assert!(
        page.body.contains("Run now on") && page.body.contains("<option>localhost</option>"),
        "{}",
        page.body
    );
}

#[test]
fn the_perfdata_api_gives_a_checks_series_raw_or_hourly() {
    let w = Work::new();
    let store = seeded(&w);
    for m in ["a", "b", "c"] {
        record(&store, "check_x", Status::Ok, m);
    }
    let site = Site::start(store.clone(), false);
    let token = auth::new_token(&store, "view", "graphs").expect("token");
    let mut c = site.client();
    let r = c.api_get("/api/perfdata?host=localhost&check=check_x", &token);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let series = v["series"].as_array().expect("series");
    assert_eq!(series.len(), 2, "{v}");
    assert_eq!(series[0]["label"], "load1");
    assert_eq!(series[0]["resolution"], "raw");
    assert_eq!(series[0]["warn"], "1");
    let points = series[0]["points"].as_array().expect("points");
    assert_eq!(points.len(), 3);
    assert_eq!(points[0]["avg"], 0.5);
    assert!(
        points[0]["t"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );
    // One label; a range older than the raw points reads the hourly trends.
    let r = c.api_get(
        "/api/perfdata?host=localhost&check=check_x&label=load1&since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z",
        &token,
    );
    let v = r.json();
    assert_eq!(v["series"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["series"][0]["resolution"], "hourly");
    // Bad input is a 400 that says what was wrong.
    for (q, says) in [
        ("/api/perfdata?host=localhost", "check="),
        ("/api/perfdata?check=check_x&since=yesterday-ish", "since"),
        (
            "/api/perfdata?check=check_x&since=2000&until=1000",
            "before",
        ),
    ] {
        let r = c.api_get(q, &token);
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert!(r.body.contains(says), "{q}: {}", r.body);
    }
}

#[test]
fn a_checks_page_charts_its_perfdata_and_the_dashboard_its_last_day() {
    let w = Work::new();
    let store = seeded(&w);
    for (status, m) in [
        (Status::Ok, "a"),
        (Status::Critical, "b"),
        (Status::Critical, "c"),
    ] {
        record(&store, "check_x", status, m);
    }
    let site = Site::start(store.clone(), false);
    let mut c = site.login("view");
    let page = c.get("/checks/localhost/check_x");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.body.matches("<svg class=\"chart\"").count(),
        2,
        "one per label"
    );
    assert!(
        page.body.contains("class=\"change critical\""),
        "the change is marked"
    );
    for range in ["6h", "24h", "7d", "30d", "1y"] {
        assert!(
            page.body.contains(&format!("range={range}"))
                || page.body.contains(&format!("<strong>{range}</strong>"))
        );
    }
    let year = c.get("/checks/localhost/check_x?range=1y");
    assert!(year.body.contains("hourly trends"), "{}", year.body);
    assert_eq!(c.get("/checks/localhost/nosuch").status, 404);
    // The problem's row on the dashboard: a sparkline of its last day, linked to its page.
    let dash = c.get("/");
    assert!(dash.body.contains("<svg class=\"spark\""), "{}", dash.body);
    assert!(
        dash.body.contains("href=\"/checks/localhost/check_x\""),
        "{}",
        dash.body
    );
}

#[test]
fn the_brake_on_a_name_spares_addresses_that_logged_in_before() {
    use std::net::{IpAddr, Ipv4Addr};
    let t = auth::Throttle::default();
    let ip = |n: u8| Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)));
    t.succeeded("admin", ip(1));
    // Twenty addresses, one failure each: no address is braked on its own...
    for n in 20..40 {
        assert_eq!(t.wait("admin", ip(n), true, || 0), Ok(()));
        t.failed("admin", ip(n), true);
    }
    // ...but the name is, for every address that never logged in as it,
    assert!(matches!(
        t.wait("admin", ip(2), true, || 0),
        Err(auth::LoginError::NameThrottled(_))
    ));
    // not for the one that did, nor for another name, nor for token keys.
    assert_eq!(t.wait("admin", ip(1), true, || 0), Ok(()));
    assert_eq!(t.wait("alice", ip(2), true, || 0), Ok(()));
    assert_eq!(t.wait("admin", ip(2), false, || 0), Ok(()));
    // `hostler user unlock` (a time after the failures) lifts it.
    let later = hostler::store::now_ms() + 1;
    assert_eq!(t.wait("admin", ip(2), true, || later), Ok(()));
    assert_eq!(t.wait("admin", ip(3), true, || 0), Ok(()));
    // A token's brake key is its first characters, never the whole token.
    let key = auth::token_key("hst_0123456789abcdef");
    assert_eq!(key, "token:hst_01234567");
}

#[test]
fn only_an_admin_gives_a_command_and_viewers_never_see_secret_arguments() {
    let w = Work::new();
    let store = seeded(&w);
    let run_command = hostler::bundled::find("run_command").expect("bundled");
    w.script(&store, "run_command", run_command.source);
    let site = Site::start(store.clone(), false);
    let admin = auth::new_token(&store, "admin", "t").expect("token");
    let oper = auth::new_token(&store, "oper", "t").expect("token");
    let view = auth::new_token(&store, "view", "t").expect("token");
    let mut c = site.client();
    // An operator may schedule checks, but not give a command to run: API and page alike.
    let cmd = r#"{"script": "run_command", "host": ["localhost"], "args": {"command": "id"}}"#;
    let r = c.api_post("/api/schedule", &oper, cmd);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("only an admin"), "{}", r.body);
    let r = c.api_post(
        "/api/schedule",
        &oper,
        r#"{"script": "check_x", "host": ["localhost"], "when": "every", "every": "1h", "fix": "run_command", "fix_args": {"command": "id"}}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let mut op = site.login("oper");
    let r = op.submit(
        "/schedule",
        &[
            ("script", "run_command"),
            ("host", "localhost"),
            ("when", "now"),
            ("arg.command", "id"),
        ],
    );
    // The form comes back with the reason.
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("only an admin"), "{}", r.body);
    assert!(
        store.jobs().expect("jobs").is_empty(),
        "a refused request queued a job"
    );
    let r = c.api_post("/api/schedule", &admin, cmd);
    assert_eq!(r.status, 201, "{}", r.body);
    // Arguments and host vars whose names look secret, and a URL's password.
    let r = c.api_post(
        "/api/schedule",
        &admin,
        r#"{"script": "check_x", "host": ["localhost"], "when": "every", "every": "1h", "args": {"url": "http://u:Url-pw-9@x/", "api_token": "Tok-secret-9", "warn": "70"}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    store
        .update_host(
            &NewHost {
                name: "localhost".into(),
                address: "127.0.0.1".into(),
                method: Some(Method::Local),
                vars: serde_json::from_str(r#"{"db_password": "Var-pw-9", "disk": "/"}"#)
                    .expect("vars"),
                ..Default::default()
            },
            false,
        )
        .expect("vars");
    for path in [
        "/api/schedules",
        "/api/queue",
        "/api/hosts",
        "/api/hosts/localhost",
    ] {
        let seen = c.api_get(path, &view);
        assert_eq!(seen.status, 200, "{path}");
        for secret in ["Url-pw-9", "Tok-secret-9", "Var-pw-9"] {
            assert!(
                !seen.body.contains(secret),
                "a viewer saw {secret} in {path}: {}",
                seen.body
            );
        }
        let full = c.api_get(path, &oper);
        assert_eq!(full.status, 200, "{path}");
    }
    let seen = c.api_get("/api/schedules", &view).body;
    assert!(seen.contains("warn") && seen.contains("70"), "{seen}");
    assert!(
        c.api_get("/api/schedules", &oper)
            .body
            .contains("Tok-secret-9")
    );
    let page = site.login("view").get("/hosts/localhost");
    assert!(!page.body.contains("Var-pw-9"), "{}", page.body);
    assert!(page.body.contains("disk"), "{}", page.body);
    // /sqlxml: a viewer's query reads the argument columns as NULL, an operator's does not.
    let q = hostler::urlencode::encode(
        "SELECT args FROM schedules UNION ALL SELECT vars FROM hosts FOR XML RAW",
    );
    let seen = c.get_with(
        &format!("/sqlxml?sql={q}"),
        "authorization",
        &format!("Bearer {view}"),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    for secret in ["Url-pw-9", "Tok-secret-9", "Var-pw-9"] {
        assert!(!seen.body.contains(secret), "{}", seen.body);
    }
    // One /sqlxml request at a time: the viewer's may still hold its turn for a moment.
    let mut full = None;
    for _ in 0..50 {
        let r = c.get_with(
            &format!("/sqlxml?sql={q}"),
            "authorization",
            &format!("Bearer {oper}"),
        );
        if r.status != 503 {
            full = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let full = full.expect("/sqlxml stayed busy");
    assert!(full.body.contains("Tok-secret-9"), "{}", full.body);
}

#[test]
fn one_user_cannot_fill_the_session_table() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store, false);
    let mut admin = site.login("admin");
    assert_eq!(admin.get("/").status, 200);
    let first_viewer = site.login("view");
    for _ in 0..40 {
        site.login("view");
    }
    assert_eq!(admin.get("/").status, 200, "the admin was logged out");
    // The viewer's own oldest session went.
    let mut first_viewer = first_viewer;
    let r = first_viewer.get("/");
    assert_eq!(
        r.status, 303,
        "the viewer's 41st login kept its first session"
    );
}

#[test]
fn check_names_are_checked_and_encoded_in_links() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let admin = auth::new_token(&store, "admin", "t").expect("token");
    let mut c = site.client();
    for bad in [
        "../web1/check_load",
        "a?b",
        "a#b",
        "a%2Fb",
        "tab\there",
        "x\\y",
        "..",
        "a b",
    ] {
        let body = serde_json::json!({
            "script": "check_x", "host": ["localhost"], "when": "every", "every": "1h", "name": bad,
        })
        .to_string();
        let r = c.api_post("/api/schedule", &admin, &body);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        assert!(r.body.contains("check name"), "{}", r.body);
    }
    assert!(store.schedules().expect("schedules").is_empty());
    let out = w.run(&[
        "schedule",
        "check_x",
        "--host",
        "localhost",
        "--every",
        "1h",
        "--name",
        "../web1/x",
    ]);
    assert_ne!(crate::util::code(&out), 0);
    assert!(
        crate::util::stderr(&out).contains("check name"),
        "{}",
        crate::util::stderr(&out)
    );
    // A good name links to its check's page.
    let body = serde_json::json!({
        "script": "check_x", "host": ["localhost"], "when": "every", "every": "1h",
        "name": "disk-root.v2",
    })
    .to_string();
    assert_eq!(c.api_post("/api/schedule", &admin, &body).status, 201);
    let id = store.schedules().expect("schedules")[0].id;
    store
        .record_run(
            &NewRun {
                check_name: Some("disk-root.v2".into()),
                job_id: None,
                schedule_id: Some(id),
                script: "check_x".into(),
                script_version: Some(1),
                host: Some("localhost".into()),
                node: Some("n".into()),
                status: Status::Critical,
                message: "full".into(),
                perfdata: None,
                output: String::new(),
                transcript: String::new(),
                started_at: now_ms() - 5,
                finished_at: now_ms(),
                attempt: 1,
                phase: None,
                notifications: vec![],
            },
            JobAction::Keep,
        )
        .expect("run");
    let page = site.login("admin").get("/").body;
    assert!(page.contains("/checks/localhost/disk-root.v2"), "{page}");
    let mut admin_page = site.login("admin");
    let r = admin_page.get("/checks/localhost/disk-root.v2");
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn dependencies_on_the_page_and_the_api_and_unreachable_checks_folded_under_their_parent() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.login("admin");
    let admin = auth::new_token(&store, "admin", "t").expect("token");
    let viewer = auth::new_token(&store, "view", "t").expect("token");
    // The page: added, refused with the reason (nothing stored), removed.
    let r = c.submit(
        "/dependencies",
        &[("child", "localhost"), ("on", "localhost/check_x")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(c.get("/dependencies").body.contains("localhost/check_x"));
    for (form, says) in [
        ([("child", "localhost"), ("on", "localhost")], "HOST/CHECK"),
        ([("child", "nohost"), ("on", "localhost/check_x")], "nohost"),
        (
            [("child", "localhost"), ("on", "localhost/check_x")],
            "already",
        ),
    ] {
        let r = c.submit("/dependencies", &form);
        assert!(
            r.status == 400 || r.status == 404,
            "{form:?}: {} {}",
            r.status,
            r.body
        );
        assert!(r.body.contains(says), "{form:?}: {}", r.body);
    }
    let id = store.dependencies().expect("list")[0].id;
    assert_eq!(
        c.submit(&format!("/dependencies/{id}/remove"), &[]).status,
        303
    );
    assert!(store.dependencies().expect("list").is_empty());

    // The API: an operator writes, a viewer reads; a cycle is a 400 naming it.
    let r = c.api_post(
        "/api/dependencies",
        &admin,
        r#"{"child": "localhost/fix_x", "on": "localhost/check_x"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = c.api_post(
        "/api/dependencies",
        &admin,
        r#"{"child": "localhost/check_x", "on": "localhost/fix_x"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap_or("").contains("cycle"),
        "{}",
        r.body
    );
    assert_eq!(
        c.api_post(
            "/api/dependencies",
            &viewer,
            r#"{"child": "localhost", "on": "localhost/check_x"}"#
        )
        .status,
        403
    );
    let list = c.api_get("/api/dependencies", &viewer).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["child_check"], "fix_x");

    // The parent is down: the child's problem is unreachable, folded under it everywhere.
    record(&store, "check_x", Status::Critical, "router gone");
    record(&store, "fix_x", Status::Critical, "no route");
    site.web.dashboard.invalidate();
    let d = c.get("/");
    assert!(
        d.body
            .contains("1 check unreachable behind localhost/check_x"),
        "{}",
        d.body
    );
    let checks = c.api_get("/api/checks", &viewer).json();
    let child = checks
        .as_array()
        .expect("array")
        .iter()
        .find(|k| k["script"] == "fix_x")
        .cloned()
        .expect("fix_x");
    assert_eq!(child["unreachable"], true, "{child}");
    assert_eq!(child["parent"], "localhost/check_x");
    let m = c.api_get("/metrics", &viewer).body;
    assert!(
        m.contains("hostler_check_unreachable{host=\"localhost\",check=\"fix_x\"} 1")
            && m.contains("hostler_check_unreachable{host=\"localhost\",check=\"check_x\"} 0"),
        "{m}"
    );
    // Nothing was told of the child: only the parent's problem.
    let told: Vec<String> = store
        .notifications(10)
        .expect("notifications")
        .into_iter()
        .map(|n| n.subject)
        .collect();
    assert!(
        told.iter().all(|s| !s.contains("fix_x")) && told.iter().any(|s| s.contains("check_x")),
        "{told:?}"
    );
}

#[test]
fn a_result_pushed_to_the_api_moves_its_check_as_a_passive_check() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.client();
    let op = auth::new_token(&store, "admin", "t").expect("token");
    let viewer = auth::new_token(&store, "view", "t").expect("token");
    let url = "/api/checks/localhost/backup_nightly/result";
    let r = c.api_post(
        url,
        &op,
        r#"{"status": "critical", "message": "tar: exit 2", "perfdata": "time=512s"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!(v["check"]["state"], "critical");
    assert_eq!(
        v["check"]["hard"], true,
        "hard at once: no retries for a pushed result"
    );
    let told = store.notifications(10).expect("notifications");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].subject, "localhost: backup_nightly is CRITICAL");
    // Nagios's numbers too; the recovery is told once.
    let r = c.api_post(url, &op, r#"{"status": 0, "message": "done in 300 s"}"#);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["check"]["state"], "ok");
    let told = store.notifications(10).expect("notifications");
    assert!(told[0].subject.contains("is OK again"), "{told:?}");
    let runs = c
        .api_get("/api/checks/localhost/backup_nightly", &viewer)
        .json();
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(2), "{runs}");
    assert_eq!(runs["runs"][0]["phase"], "passive");
    assert_eq!(runs["runs"][0]["node"], "api:admin");
    // Bad input: a clear 4xx, nothing recorded.
    let before = store.checks().expect("checks").len();
    for (body, status, says) in [
        (r#"{"status": "fine"}"#, 400, "status"),
        (r#"{"status": 7}"#, 400, "status"),
        (r#"{"message": "no status"}"#, 400, "status"),
        ("not json", 400, "JSON"),
    ] {
        let r = c.api_post(url, &op, body);
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.body.contains(says), "{body}: {}", r.body);
    }
    let long = format!(r#"{{"status": "ok", "message": "{}"}}"#, "x".repeat(5000));
    let r = c.api_post(url, &op, &long);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = c.api_post(
        "/api/checks/nohost/backup_nightly/result",
        &op,
        r#"{"status": "ok"}"#,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        c.api_post(url, &viewer, r#"{"status": "ok"}"#).status,
        403,
        "a viewer cannot push"
    );
    assert_eq!(store.checks().expect("checks").len(), before);
    // A check without a host.
    let r = c.api_post(
        "/api/checks/-/nightly_report/result",
        &op,
        r#"{"status": "warning", "message": "late"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        store
            .check(None, "nightly_report")
            .is_ok_and(|k| k.state == hostler::store::CheckState::Warning)
    );
}

#[test]
fn a_named_checks_runs_and_changes_show_under_its_name() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.client();
    let viewer = auth::new_token(&store, "view", "t").expect("token");
    // check_x scheduled twice on localhost, once as disk_root.
    let id = store
        .add_schedule(&hostler::store::NewSchedule {
            name: Some("disk_root".into()),
            max_attempts: 1,
            next_due: now_ms() + 3_600_000,
            ..hostler::store::NewSchedule::every("check_x", Some("localhost"), 3_600_000)
        })
        .expect("schedule");
    for (status, message) in [(Status::Ok, "fine"), (Status::Critical, "full")] {
        let at = now_ms();
        store
            .record_run(
                &NewRun {
                    check_name: Some("disk_root".into()),
                    job_id: None,
                    schedule_id: Some(id),
                    script: "check_x".into(),
                    script_version: Some(1),
                    host: Some("localhost".into()),
                    node: Some("t".into()),
                    status,
                    message: message.into(),
                    perfdata: None,
                    output: String::new(),
                    transcript: String::new(),
                    started_at: at,
                    finished_at: at,
                    attempt: 1,
                    phase: None,
                    notifications: vec![],
                },
                JobAction::Keep,
            )
            .expect("record");
    }
    record(&store, "check_x", Status::Ok, "the other one");
    let v = c.api_get("/api/checks/localhost/disk_root", &viewer).json();
    assert_eq!(v["check"]["state"], "critical", "{v}");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v["changes"].as_array().map(Vec::len), Some(2), "{v}");
    // The script's own check does not take the named one's runs.
    let v = c.api_get("/api/checks/localhost/check_x", &viewer).json();
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(1), "{v}");
    let v = c.api_get("/api/runs?check=disk_root", &viewer).json();
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v}");
}

#[test]
fn the_api_edits_a_schedule_in_place() {
    let w = Work::new();
    let store = seeded(&w);
    let site = Site::start(store.clone(), false);
    let mut c = site.client();
    let op = auth::new_token(&store, "admin", "t").expect("token");
    let viewer = auth::new_token(&store, "view", "t").expect("token");
    record(&store, "check_x", Status::Critical, "down");
    let id = store.schedules().expect("schedules")[0].id;
    let since = store
        .check(Some("localhost"), "check_x")
        .expect("check")
        .since;
    let r = c.api_post(
        &format!("/api/schedules/{id}"),
        &op,
        r#"{"every": "2m", "args": {"warn": 90}, "retries": 3}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["id"], id);
    assert_eq!(v["retries"], 3);
    assert_eq!(v["args"], r#"{"warn":"90"}"#);
    assert_eq!(
        store
            .check(Some("localhost"), "check_x")
            .expect("check")
            .since,
        since
    );
    for (body, says) in [
        (r#"{"every": "soon"}"#, "every"),
        (r#"{"retries": 0}"#, "retries"),
        (r#"{"args": [1]}"#, "args"),
        ("{}", "nothing to change"),
    ] {
        let r = c.api_post(&format!("/api/schedules/{id}"), &op, body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(says), "{body}: {}", r.body);
    }
    let r = c.api_post("/api/schedules/999", &op, r#"{"every": "1m"}"#);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        c.api_post(
            &format!("/api/schedules/{id}"),
            &viewer,
            r#"{"every": "1m"}"#
        )
        .status,
        403
    );
}

/// A node that falls behind says so: `/metrics` has the queue's lag (the oldest due job's
/// wait), and monitord's health, past `[monitord] max_lag`, makes `/healthz` say "behind".
#[test]
fn the_queue_lag_is_in_metrics_and_past_its_limit_in_healthz() {
    let w = Work::new();
    let store = seeded(&w);
    store
        .enqueue(&hostler::store::NewJob {
            name: None,
            script: "check_x".into(),
            host: Some("localhost".into()),
            priority: 0,
            due_at: hostler::store::now_ms() - 90_000,
            max_attempts: 1,
            timeout_ms: None,
            schedule_id: None,
            args: None,
        })
        .expect("job");
    let lag = store.queue_lag(hostler::store::now_ms()).expect("lag");
    assert!((90_000..100_000).contains(&lag), "{lag}");
    let site = Site::start(store, true);
    let m = site.client().get("/metrics");
    let line = m
        .body
        .lines()
        .find(|l| l.starts_with("hostler_queue_lag_seconds "))
        .unwrap_or_else(|| panic!("no lag in {}", m.body));
    let secs: f64 = line
        .split_whitespace()
        .nth(1)
        .expect("value")
        .parse()
        .expect("number");
    assert!((90.0..100.0).contains(&secs), "{line}");
    // This node's start lateness is a histogram (no job started here: all zero).
    for line in [
        "# TYPE hostler_job_start_lateness_seconds histogram",
        "hostler_job_start_lateness_seconds_bucket{le=\"0.1\"} 0",
        "hostler_job_start_lateness_seconds_bucket{le=\"+Inf\"} 0",
        "hostler_job_start_lateness_seconds_count 0",
    ] {
        assert!(m.body.lines().any(|l| l == line), "no {line} in {}", m.body);
    }
    let health = hostler::health::Health::default();
    health.lag(lag, 60_000);
    let why = health.problem().expect("behind");
    assert!(
        why.starts_with("behind: the oldest due job has waited 9"),
        "{why}"
    );
    health.lag(1_000, 60_000);
    assert_eq!(health.problem(), None);
}
