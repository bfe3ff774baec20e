//! The HTML pages (maud: every value is escaped): layout, dashboard, queue, runs, run detail,
//! notifications and login, and the dispatch of page routes. Hosts and scripts have their own
//! modules; the other forms' POSTs are in [`super::actions`].

use std::sync::Arc;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::http::{Req, Resp, encode};
use super::router::Route;
use super::{Web, Who, actions, hosts, scripts};
use crate::store::{JobState, Role, RunFilter, Status, StoreError};

pub use crate::when::local as time;

/// How long ago, briefly: `12s`, `5m`, `3h`, `2d`.
pub fn ago(ms: i64, now: i64) -> String {
    let s = ((now - ms) / 1000).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

pub fn status_class(s: Status) -> &'static str {
    match s {
        Status::Ok => "st ok",
        Status::Warning => "st warning",
        Status::Critical => "st critical",
        Status::Cancelled => "st cancelled",
        _ => "st unknown",
    }
}

fn status(s: Status) -> Markup {
    html! { span class=(status_class(s)) { (s.as_str().to_uppercase()) } }
}

/// The hidden CSRF field every form of a session carries.
pub fn csrf(who: &Who) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(who.csrf.as_deref().unwrap_or("")); }
}

const NAV: &[(&str, &str)] = &[
    ("/", "Dashboard"),
    ("/hosts", "Hosts"),
    ("/scripts", "Scripts"),
    ("/schedule", "Schedule"),
    ("/queue", "Queue"),
    ("/runs", "Runs"),
    ("/notifications", "Notifications"),
];

/// A page's `<head>`; the script only where a page may refresh itself.
fn head(title: &str, script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · hostler" }
            link rel="stylesheet" href="/assets/style.css";
            link rel="icon" href="/assets/favicon.svg";
            @if script { script src="/assets/app.js" defer {} }
        }
    }
}

/// The form of a POST that needs `role`: the form, or the page that refuses it.
pub fn posted_form(
    who: &Who,
    req: &Req,
    role: Role,
    refusal: &str,
) -> Result<super::http::Form, Resp> {
    if !who.may(role) {
        return Err(error(who, 403, refusal));
    }
    req.form().map_err(|e| error(who, 400, &e.to_string()))
}

/// A form page: 200, or 400 when it comes back with an error.
pub fn form_page(who: &Who, title: &str, body: Markup, err: Option<&str>) -> Resp {
    let mut r = page(who, title, None, body);
    if err.is_some() {
        r.status = 400;
    }
    r
}

/// The frame of every page. `refresh` asks assets/app.js to reload the page every so many
/// seconds (never while a form is being filled in).
pub fn layout(who: &Who, title: &str, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body data-refresh=[refresh] {
                header {
                    a.brand href="/" { "hostler" }
                    nav { @for (href, label) in NAV { a href=(href) { (label) } } }
                    form.logout method="post" action="/logout" {
                        (csrf(who))
                        span.user { a href="/account/password" title="set a new password" { (who.user) } " (" (who.role.as_str()) ")" }
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn page(who: &Who, title: &str, refresh: Option<u32>, body: Markup) -> Resp {
    Resp::html(200, layout(who, title, refresh, body).into_string())
        .with("cache-control", "no-store")
}

/// An error page for a person: the status and a one-line reason.
pub fn error(who: &Who, status: u16, msg: &str) -> Resp {
    let title = match status {
        404 => "Not found",
        403 => "Not allowed",
        400 => "Bad request",
        _ => "Error",
    };
    let mut r = page(who, title, None, html! { p.error { (msg) } });
    r.status = status;
    r
}

/// A store error as a page: not found is 404, a refused change 400, the rest 500.
pub fn store_error(who: &Who, e: &StoreError) -> Resp {
    error(who, store_status(e), &e.to_string())
}

pub fn store_status(e: &StoreError) -> u16 {
    match e {
        StoreError::NotFound { .. } => 404,
        StoreError::Exists { .. } | StoreError::Invalid(_) | StoreError::Constraint(_) => 400,
        _ => 500,
    }
}

/// Page routes: GET shows, POST submits.
pub fn handle(web: &Web, who: &Who, route: Route, req: &Req) -> Resp {
    use Route as R;
    let post = req.is_post();
    if post && !who.may(Role::Operator) && !matches!(route, R::Logout | R::Password) {
        return error(who, 403, "viewers cannot change anything");
    }
    let r = match (route, post) {
        (R::Dashboard, false) => dashboard(web, who),
        (R::Logout, true) => Ok(actions::logout(web, req)),
        (R::Password, _) => Ok(super::account::handle(web, who, req)),
        (R::Hosts, false) => hosts::hosts(web, who),
        (R::HostNew, false) => Ok(hosts::host_form(who, None, &Default::default(), None)),
        (R::HostNew, true) => hosts::host_save(web, who, req, None),
        (R::Host(n), false) => hosts::host(web, who, &n),
        (R::HostEdit(n), false) => hosts::host_edit(web, who, &n),
        (R::HostEdit(n), true) => hosts::host_save(web, who, req, Some(&n)),
        (R::Scripts, false) => scripts::scripts(web, who),
        (R::ScriptNew, false) => Ok(scripts::script_form(who, None, &Default::default(), None)),
        (R::ScriptNew, true) => scripts::script_save(web, who, req, None),
        (R::Script(n), false) => scripts::script(web, who, &n),
        (R::Script(n), true) => scripts::script_save(web, who, req, Some(&n)),
        (R::Schedule, false) => actions::schedule_form(web, who, &query_form(req), None),
        (R::Schedule, true) => actions::schedule(web, who, req),
        (R::Queue, false) => queue(web, who, req),
        (R::JobCancel(id), true) => actions::cancel(web, who, id),
        (R::JobPriority(id), true) => actions::priority(web, who, req, id),
        (R::ScheduleRemove(id), true) => actions::schedule_remove(web, who, id),
        (R::Runs, false) => runs(web, who, req),
        (R::Run(id), false) => run(web, who, id),
        (R::Notifications, false) => notifications(web, who),
        _ => {
            return error(who, 405, &format!("{} is not allowed here", req.method))
                .with("allow", if post { "GET" } else { "POST" });
        }
    };
    r.unwrap_or_else(|e| store_error(who, &e))
}

/// The query string as a form (a link can pre-fill a form: `/schedule?script=x&host=y`).
fn query_form(req: &Req) -> super::http::Form {
    super::http::Form(req.query.clone())
}

fn dashboard(web: &Web, who: &Who) -> Result<Resp, StoreError> {
    let d = web.dashboard.get(&web.store)?;
    let grid = d
        .grid
        .get_or_init(|| Arc::new(grid(&d).into_string()))
        .clone();
    let running = d
        .jobs
        .iter()
        .filter(|j| j.state == crate::store::JobState::Running)
        .count();
    let body = html! {
        p.meta { "As of " (time(d.at)) ". " (d.hosts.len()) " hosts, " (running) " jobs running, "
            (d.jobs.len() - running) " queued." }
        section {
            h2 { "Hosts" }
            (PreEscaped(GRID_MARK))
        }
        section.split {
            div {
                h2 { "Running and queued" }
                (jobs_table(who, &d.jobs[..d.jobs.len().min(DASHBOARD_JOBS)], false))
                @if d.jobs.len() > DASHBOARD_JOBS {
                    p { a href="/queue" { "All " (d.jobs.len()) " jobs in the queue" } }
                }
            }
            div {
                h2 { "Recent failures" }
                @if d.failures.is_empty() { p.empty { "None." } } @else {
                    table {
                        tr { th { "Run" } th { "When" } th { "Host" } th { "Script" } th { "Status" } th { "Message" } }
                        @for r in &d.failures {
                            tr {
                                td { a href={"/runs/" (r.id)} { (r.id) } }
                                td { (ago(r.finished_at, d.at)) " ago" }
                                td { (r.host.as_deref().unwrap_or("-")) }
                                td { (r.script) }
                                td { (status(r.status)) }
                                td.msg { (r.message) }
                            }
                        }
                    }
                }
                h2 { "Notifications" }
                (notification_table(&d.notifications))
            }
        }
    };
    // The grid is spliced in where its mark is, without copying it into this response.
    let mut r = page(who, "Dashboard", Some(15), body);
    if let Some(at) = r
        .body
        .windows(GRID_MARK.len())
        .position(|w| w == GRID_MARK.as_bytes())
    {
        let tail = r.body.split_off(at + GRID_MARK.len());
        r.body.truncate(at);
        r.splice = Some((grid, tail));
    }
    Ok(r)
}

/// The dashboard lists this many jobs (running first, then in the order they will run).
const DASHBOARD_JOBS: usize = 50;

/// Where the dashboard's cached host grid goes.
const GRID_MARK: &str = "<!--hostler:grid-->";

/// A message cut for a tooltip.
fn short(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

pub fn grid(d: &super::dashboard::Data) -> Markup {
    html! {
        @if d.hosts.is_empty() { p.empty { "No hosts yet. " a href="/hosts/new" { "Add one." } } }
        @else {
            table.grid {
                tr { th { "Host" } th { "Address" } th { "Checks (latest run of each)" } }
                @for h in &d.hosts {
                    tr.disabled[!h.enabled] {
                        td { a href={"/hosts/" (h.name)} { (h.name) } }
                        td.addr { (h.method) " " (h.address) }
                        td {
                            @if h.checks.is_empty() { span.empty { "no runs yet" } }
                            @for c in &h.checks {
                                a class=(status_class(c.status)) href={"/runs/" (c.run)}
                                    title={(ago(c.finished_at, d.at)) " ago: " (short(&c.message))} {
                                    (c.script)
                                }
                                " "
                            }
                        }
                    }
                }
            }
        }
        @if !d.other.is_empty() {
            p.meta { "Without a host: "
                @for c in &d.other {
                    a class=(status_class(c.status)) href={"/runs/" (c.run)} { (c.script) } " "
                }
            }
        }
    }
}

pub fn notification_table(list: &[crate::store::Notification]) -> Markup {
    html! {
        @if list.is_empty() { p.empty { "None." } } @else {
            table {
                tr { th { "When" } th { "Host" } th { "Subject" } th { "Delivery" } }
                @for n in list {
                    tr {
                        td { (time(n.created_at)) }
                        td { (n.host.as_deref().unwrap_or("-")) }
                        td {
                            details { summary { (n.subject) } pre { (n.body) } }
                        }
                        td {
                            @if let Some(at) = n.delivered_at { "delivered " (time(at)) }
                            @else if let Some(e) = &n.error { span.st.critical { "failed" } " (" (n.tries) " tries): " (e) }
                            @else { "pending" }
                        }
                    }
                }
            }
        }
    }
}

fn jobs_table(who: &Who, jobs: &[crate::store::Job], controls: bool) -> Markup {
    let now = crate::store::now_ms();
    html! {
        @if jobs.is_empty() { p.empty { "The queue is empty." } } @else {
            table.jobs {
                tr { th { "Job" } th { "Script" } th { "Host" } th { "State" } th { "Priority" } th { "Due" } th { "Attempts" }
                     @if controls { th { "" } } }
                @for j in jobs {
                    tr {
                        td { (j.id) }
                        td { a href={"/scripts/" (j.script)} { (j.script) } }
                        td { (j.host.as_deref().unwrap_or("-")) }
                        td { (j.state.as_str()) @if let Some(o) = &j.lease_owner { " on " (o) } }
                        td {
                            @if controls && j.state == JobState::Queued && who.may(Role::Operator) {
                                form.inline method="post" action={"/queue/" (j.id) "/priority"} {
                                    (csrf(who))
                                    input type="number" name="priority" value=(j.priority) aria-label="priority";
                                    button type="submit" { "Set" }
                                }
                            } @else { (j.priority) }
                        }
                        td { @if j.due_at > now { "in " (ago(now, j.due_at)) } @else { (ago(j.due_at, now)) " ago" } }
                        td { (j.attempts) "/" (j.max_attempts) }
                        @if controls {
                            td {
                                @if who.may(Role::Operator) && matches!(j.state, JobState::Queued | JobState::Running) {
                                    form.inline method="post" action={"/queue/" (j.id) "/cancel"} {
                                        (csrf(who))
                                        button.danger type="submit" { "Cancel" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn queue(web: &Web, who: &Who, req: &Req) -> Result<Resp, StoreError> {
    let jobs = web.store.jobs()?;
    let schedules = web.store.schedules()?;
    let body = html! {
        @if let Some(msg) = req.query("done") { p.notice { (msg) } }
        (jobs_table(who, &jobs, true))
        h2 { "Schedules" }
        @if schedules.is_empty() { p.empty { "No schedules." } } @else {
            table {
                tr { th { "Id" } th { "Script" } th { "Fix" } th { "Target" } th { "Timing" } th { "Priority" } th { "Next due" } th { "" } }
                @for s in &schedules {
                    tr {
                        td { (s.id) }
                        td { a href={"/scripts/" (s.script)} { (s.script) } }
                        td { (s.fix_script.as_deref().unwrap_or("-")) }
                        td {
                            @if let Some(h) = &s.host { "host " a href={"/hosts/" (h)} { (h) } }
                            @else if let Some(t) = &s.tag { "tag " (t) }
                            @else if let Some(x) = &s.site { "site " (x) }
                            @else { "-" }
                        }
                        td { (crate::queue::timing::describe(&s.timing)) }
                        td { (s.priority) }
                        td { (s.next_due.map(time).unwrap_or_else(|| "done".into())) }
                        td {
                            @if who.may(Role::Operator) {
                                form.inline method="post" action={"/schedules/" (s.id) "/remove"} {
                                    (csrf(who))
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(who, "Queue", Some(10), body))
}

/// Runs, newest first, filtered by host, script and status; 100 a page, keyset paging.
fn runs(web: &Web, who: &Who, req: &Req) -> Result<Resp, StoreError> {
    let wanted = match req.query("status").map(str::parse::<Status>) {
        Some(Err(e)) => return Ok(error(who, 400, &e)),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let before = match req.query("before").map(str::parse::<i64>) {
        Some(Err(_)) => return Ok(error(who, 400, "before must be a run id")),
        Some(Ok(b)) => Some(b),
        None => None,
    };
    let filter = RunFilter {
        host: req.query("host").map(String::from),
        script: req.query("script").map(String::from),
        status: wanted,
        before_id: before,
        limit: 100,
        summary: true,
    };
    let list = web.store.runs(&filter)?;
    let hosts = web.store.hosts()?;
    let scripts = web.store.scripts()?;
    let now = crate::store::now_ms();
    let mut next = String::new();
    if let Some(last) = list.last().filter(|_| list.len() == 100) {
        next = format!("/runs?before={}", last.id);
        for (k, v) in [("host", &filter.host), ("script", &filter.script)] {
            if let Some(v) = v {
                next.push_str(&format!("&{k}={}", encode(v)));
            }
        }
        if let Some(s) = wanted {
            next.push_str(&format!("&status={s}"));
        }
    }
    let body = html! {
        form.filters method="get" action="/runs" {
            label { "Host " select name="host" {
                option value="" { "any" }
                @for h in &hosts { option selected[filter.host.as_deref() == Some(&h.name)] { (h.name) } }
            } }
            label { "Script " select name="script" {
                option value="" { "any" }
                @for s in &scripts { option selected[filter.script.as_deref() == Some(&s.name)] { (s.name) } }
            } }
            label { "Status " select name="status" {
                option value="" { "any" }
                @for s in Status::ALL { option selected[wanted == Some(*s)] { (s.as_str()) } }
            } }
            button type="submit" { "Filter" }
        }
        @if list.is_empty() { p.empty { "No runs match." } } @else {
            table.runs {
                tr { th { "Run" } th { "Started" } th { "Took" } th { "Host" } th { "Script" } th { "Phase" } th { "Status" } th { "Message" } }
                @for r in &list {
                    tr {
                        td { a href={"/runs/" (r.id)} { (r.id) } }
                        td title=(time(r.started_at)) { (ago(r.started_at, now)) " ago" }
                        td { ((r.finished_at - r.started_at).max(0)) " ms" }
                        td { (r.host.as_deref().unwrap_or("-")) }
                        td { (r.script) }
                        td { (r.phase.map_or("", |p| p.as_str())) }
                        td { (status(r.status)) }
                        td.msg { (r.message) }
                    }
                }
            }
            @if !next.is_empty() { p { a href=(next) { "Older runs" } } }
        }
    };
    Ok(page(who, "Runs", Some(10), body))
}

/// One line of a stored transcript.
#[derive(serde::Deserialize)]
struct Line {
    t: i64,
    d: String,
    s: Option<serde_json::Value>,
    b: String,
}

fn run(web: &Web, who: &Who, id: i64) -> Result<Resp, StoreError> {
    let r = web.store.run(id)?;
    let lines: Vec<Line> = r
        .transcript
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let body = html! {
        dl.fields {
            dt { "Status" } dd { (status(r.status)) " " (r.message) }
            dt { "Script" } dd { a href={"/scripts/" (r.script)} { (r.script) }
                @if let Some(v) = r.script_version { " (version " (v) ")" } }
            dt { "Host" } dd { @if let Some(h) = &r.host { a href={"/hosts/" (h)} { (h) } } @else { "-" } }
            dt { "Started" } dd { (time(r.started_at)) ", took " ((r.finished_at - r.started_at).max(0)) " ms" }
            dt { "Job" } dd { (r.job_id.map(|j| j.to_string()).unwrap_or_else(|| "-".into()))
                ", attempt " (r.attempt) @if let Some(p) = &r.phase { ", phase " (p) }
                @if let Some(n) = &r.node { ", on " (n) } }
            @if let Some(p) = &r.perfdata { dt { "Perfdata" } dd { code { (p) } } }
        }
        h2 { "Output" }
        @if r.output.is_empty() { p.empty { "No output." } } @else { pre.output { (r.output) } }
        h2 #transcript { "Transcript" }
        @if lines.is_empty() { p.empty { "No session traffic." } } @else {
            table.transcript {
                tr { th { "ms" } th { "" } th { "Session" } th { "Text" } }
                @for l in &lines {
                    tr class=(if l.d == ">" { "sent" } else { "recv" }) {
                        td { (l.t) }
                        td { (if l.d == ">" { "sent" } else { "received" }) }
                        td { (l.s.as_ref().map(|s| s.to_string()).unwrap_or_default()) }
                        td { pre { (l.b) } }
                    }
                }
            }
        }
    };
    Ok(page(who, &format!("Run {id}"), None, body))
}

fn notifications(web: &Web, who: &Who) -> Result<Resp, StoreError> {
    let list = web.store.notifications(200)?;
    Ok(page(
        who,
        "Notifications",
        Some(30),
        notification_table(&list),
    ))
}

/// The login page (no session yet: its CSRF token is the login cookie's).
pub fn login(token: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in", false))
            body.login {
                main {
                    h1 { "hostler" }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf_token" value=(token);
                        input type="hidden" name="next" value=(next);
                        label { "User " input type="text" name="username" autocomplete="username" required autofocus; }
                        label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}
