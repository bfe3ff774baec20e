//! The queue: `/queue` (jobs in the order they run, and the schedules), `/schedule` (the form
//! and its POST, through [`crate::queue::submit`]), and the queue's buttons: cancel,
//! re-prioritise, remove a schedule. A POST answers a redirect on success (a reload does not
//! post again) and the form with a message on bad input.

use maud::{Markup, html};

use super::http::{Form, Req, Resp, encode};
use super::layout::{ago, csrf, form_page, page, time};
use super::{Web, WebError, WebResult, Who};
use crate::queue::{Request, Submitted, When, submit};
use crate::store::{Cancelled, JobState, Role, ScriptKind, StoreError};

pub fn jobs_table(who: &Who, jobs: &[crate::store::Job], controls: bool) -> Markup {
    let now = crate::store::now_ms();
    html! {
        @if jobs.is_empty() { p.empty { "The queue is empty." } } @else {
            table.jobs {
                tr { th { "Job" } th { "Script" } th { "Host" } th { "State" } th { "Priority" } th { "Due" } th { "Attempts" }
                     @if controls { th { "" } } }
                @for j in jobs {
                    tr {
                        td { (j.id) }
                        td { a href={"/scripts/" (crate::urlencode::encode(&j.script))} { (j.script) } }
                        td { (j.host.as_deref().unwrap_or("-")) }
                        // A job claimed ahead of its due time waits on its node to start then.
                        td { @if j.state == JobState::Running && j.due_at > now { "claimed" } @else { (j.state.as_str()) }
                             @if let Some(o) = &j.lease_owner { " on " (o) } }
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

pub fn queue(web: &Web, who: &Who, req: &Req) -> WebResult {
    let jobs = web.store.jobs()?;
    let schedules = web.store.schedules()?;
    let body = html! {
        @if let Some(msg) = req.query("done") { p.notice { (msg) } }
        (jobs_table(who, &jobs, true))
        h2 { "Schedules" }
        @if schedules.is_empty() { p.empty { "No schedules." } } @else {
            table {
                tr { th { "Id" } th { "Script" } th { "Fix" } th { "Target" } th { "Timing" } th { "Priority" } th { "Next due" } th { "Managed" } th { "" } }
                @for s in &schedules {
                    tr {
                        td { (s.id) }
                        td {
                            a href={"/scripts/" (crate::urlencode::encode(&s.script))} { (s.script) }
                            @if let Some(n) = &s.name { " as " (n) }
                            @let words = crate::queue::describe_args(s.args.as_deref());
                            @if !words.is_empty() { br; code.args { (words) } }
                        }
                        td {
                            (s.fix_script.as_deref().unwrap_or("-"))
                            @let words = crate::queue::describe_args(s.fix_args.as_deref());
                            @if !words.is_empty() { br; code.args { (words) } }
                        }
                        td {
                            @if let Some(h) = &s.host { "host " a href={"/hosts/" (crate::urlencode::encode(h))} { (h) } }
                            @else if let Some(t) = &s.tag { "tag " (t) }
                            @else if let Some(x) = &s.site { "site " (x) }
                            @else { "-" }
                        }
                        td { (crate::queue::timing::describe(&s.timing)) }
                        td { (s.priority) }
                        td { (s.next_due.map(time).unwrap_or_else(|| "done".into())) }
                        td { (super::hosts::managed(s.managed)) }
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

/// The schedule form, pre-filled from `v` (the last post, or `?script=&host=` in a link).
pub fn schedule_form(web: &Web, who: &Who, v: &Form, err: Option<&str>) -> WebResult {
    if !who.may(Role::Operator) {
        return Err(WebError::Forbidden("viewers cannot schedule".into()));
    }
    let scripts = web.store.scripts()?;
    let hosts = web.store.hosts()?;
    let mut tags: Vec<&str> = hosts
        .iter()
        .flat_map(|h| h.tags.iter().map(String::as_str))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    let chosen = v.all("host");
    let when = v.get("when").unwrap_or("now");
    let runnable = scripts.iter().filter(|s| s.kind != ScriptKind::Library);
    let fixes = scripts
        .iter()
        .filter(|s| s.kind == ScriptKind::Fix || s.kind == ScriptKind::Task);
    // The fields of the chosen script's documented arguments (and its fix's); choosing another
    // script reloads the form by the small GET form above it, so no JavaScript is needed.
    let script = v
        .get("script")
        .and_then(|n| scripts.iter().find(|s| s.name == n))
        .or_else(|| runnable.clone().next());
    let fix = v
        .get("fix")
        .and_then(|n| scripts.iter().find(|s| s.name == n));
    let body = html! {
        @if let Some(e) = err { p.error role="alert" { (e) } }
        form.inline method="get" action="/schedule" {
            label { "Script " select name="script" {
                @for s in runnable.clone() { option selected[script.is_some_and(|c| c.name == s.name)] { (s.name) } }
            } }
            label { " with the fix " select name="fix" {
                option value="" { "none" }
                @for s in fixes.clone() { option selected[fix.is_some_and(|f| f.name == s.name)] { (s.name) } }
            } }
            " " button type="submit" { "Show their arguments" }
        }
        form.stacked method="post" action="/schedule" {
            (csrf(who))
            label { "Script " select name="script" required {
                @for s in runnable.clone() { option selected[script.is_some_and(|c| c.name == s.name)] { (s.name) } }
            } }
            @if let Some(s) = script {
                (argument_fields(s, "arg.", v))
            }
            label { "More arguments, NAME=VALUE per line "
                textarea name="args" rows="2" placeholder="url=http://127.0.0.1/" { (v.raw("args").unwrap_or("")) } }
            label { "Check name, when this script is scheduled twice on a host (empty: the script's) "
                input type="text" name="name" size="20" value=[v.get("name")]; }
            fieldset {
                legend { "Where" }
                label { "Hosts (one or more) " select name="host" multiple size=(hosts.len().clamp(2, 8)) {
                    @for h in &hosts { option selected[chosen.contains(&h.name.as_str())] { (h.name) } }
                } }
                label { "or every host tagged " select name="tag" {
                    option value="" { "-" }
                    @for t in &tags { option selected[v.get("tag") == Some(*t)] { (t) } }
                } }
            }
            label { "Priority (higher runs first) " input type="number" name="priority" value=(v.get("priority").unwrap_or("0")); }
            fieldset {
                legend { "When" }
                label.check { input type="radio" name="when" value="now" checked[when == "now"]; " Now" }
                label.check { input type="radio" name="when" value="at" checked[when == "at"]; " Once at "
                    input type="datetime-local" name="at" value=[v.get("at")]; }
                label.check { input type="radio" name="when" value="every" checked[when == "every"]; " Every "
                    input type="text" name="every" placeholder="5m" size="6" value=[v.get("every")]; }
                label.check { input type="radio" name="when" value="cron" checked[when == "cron"]; " Cron "
                    input type="text" name="cron" placeholder="*/5 * * * *" value=[v.get("cron")]; }
            }
            label { "Fix, run when the check fails (needs a timing) " select name="fix" {
                option value="" { "none" }
                @for s in fixes.clone() {
                    option selected[fix.is_some_and(|f| f.name == s.name)] { (s.name) } }
            } }
            @if let Some(f) = fix {
                (argument_fields(f, "fix_arg.", v))
            }
            label { "More arguments of the fix, NAME=VALUE per line "
                textarea name="fix_args" rows="2" placeholder="unit=nginx" { (v.raw("fix_args").unwrap_or("")) } }
            label { "Results that are not OK before a problem is hard (told, and fixed) "
                input type="number" name="retries" min="1" max="100" value=(v.get("retries").unwrap_or("1")); }
            label { "then checked again every (empty: the interval, at most 1m) "
                input type="text" name="retry_every" placeholder="30s" size="6" value=[v.get("retry_every")]; }
            label { "Time limit (empty: the default) " input type="text" name="timeout" placeholder="60s" size="6" value=[v.get("timeout")]; }
            label { "Quorum across sites: run on a node of each of the sites " input type="text" name="sites" placeholder="dc1,dc2,dc3" value=[v.get("sites")]; }
            label { "a problem when this many agree " input type="number" name="quorum" min="1" size="3" value=[v.get("quorum")]; }
            button type="submit" { "Schedule" }
        }
    };
    Ok(form_page(who, "Schedule a script", body, err))
}

/// A field per argument a script documents (`arg.NAME`, `fix_arg.NAME`), its default shown.
fn argument_fields(s: &crate::store::Script, prefix: &str, v: &Form) -> Markup {
    let docs = crate::bundled::arguments(&s.source);
    html! {
        @if !docs.is_empty() {
            fieldset.args {
                legend { "Arguments of " (s.name) }
                @for a in &docs {
                    @let field = format!("{prefix}{}", a.name);
                    label {
                        code { (a.name) } @if a.required { " (required)" } " " (a.help) " "
                        input type="text" name=(field) size="24"
                            placeholder=[a.default.as_deref()] value=[v.get(&field)];
                    }
                }
            }
        }
    }
}

/// Arguments from the form: the fields `PREFIX.NAME`, and the `text` field, either lines of
/// NAME=VALUE (the page) or a JSON object (the API's `"args": {...}`).
fn form_args(f: &Form, prefix: &str, text: &str) -> Result<crate::queue::Args, String> {
    let mut words: Vec<String> = Vec::new();
    if let Some(t) = f.get(text) {
        if t.starts_with('{') {
            let m: std::collections::BTreeMap<String, serde_json::Value> =
                serde_json::from_str(t).map_err(|e| format!("{text}: not a JSON object: {e}"))?;
            for (k, v) in m {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                words.push(format!("{k}={v}"));
            }
        } else {
            words.extend(
                t.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
    }
    for (k, v) in &f.0 {
        if let Some(name) = k.strip_prefix(prefix)
            && !v.trim().is_empty()
        {
            words.push(format!("{name}={}", v.trim()));
        }
    }
    crate::queue::parse_args(&words).map_err(|e| e.to_string())
}

/// Reads the schedule form (or the API's JSON, turned into the same pairs) into a request.
pub fn parse_schedule(f: &Form) -> Result<Request, String> {
    let script = f.get("script").ok_or("choose a script")?;
    let when = match f.get("when").unwrap_or("now") {
        "now" => When::Now,
        "at" => {
            let at = f.get("at").ok_or("give the time to run at")?;
            When::At(crate::when::parse_time(at).map_err(|e| e.to_string())?)
        }
        "every" => {
            let every = f.get("every").ok_or("give the interval, such as 5m")?;
            let d = crate::when::parse_duration(every).map_err(|e| e.to_string())?;
            When::Every(
                d.as_millis()
                    .try_into()
                    .map_err(|_| "the interval is too long")?,
            )
        }
        "cron" => When::Cron(f.get("cron").ok_or("give the cron expression")?.into()),
        w => return Err(format!("unknown timing {w:?}: use now, at, every or cron")),
    };
    let mut r = Request::new(script, when);
    r.hosts = f.all("host").into_iter().map(String::from).collect();
    r.tag = f.get("tag").map(String::from);
    r.site = f.get("site").map(String::from);
    r.fix_script = f.get("fix").map(String::from);
    r.args = form_args(f, "arg.", "args")?;
    r.fix_args = form_args(f, "fix_arg.", "fix_args")?;
    r.name = f.get("name").map(String::from);
    if let Some(p) = f.get("priority") {
        r.priority = p
            .parse()
            .map_err(|_| format!("bad priority {p:?}: use a whole number"))?;
    }
    if let Some(n) = f.get("retries") {
        r.retries = n
            .parse()
            .map_err(|_| format!("bad retries {n:?}: use a whole number from 1"))?;
    }
    r.sites = crate::store::split_sites(f.get("sites"));
    if let Some(q) = f.get("quorum").filter(|q| !q.trim().is_empty()) {
        r.quorum = Some(
            q.trim()
                .parse()
                .map_err(|_| format!("bad quorum {q:?}: use a whole number from 1"))?,
        );
    }
    if let Some(d) = f.get("retry_every") {
        let d = crate::when::parse_duration(d).map_err(|e| e.to_string())?;
        r.retry_every_ms = Some(
            d.as_millis()
                .try_into()
                .map_err(|_| "the retry interval is too long")?,
        );
    }
    if let Some(t) = f.get("timeout") {
        let d = crate::when::parse_duration(t).map_err(|e| e.to_string())?;
        r.timeout_ms = Some(
            d.as_millis()
                .try_into()
                .map_err(|_| "the time limit is too long")?,
        );
    }
    Ok(r)
}

pub fn schedule(web: &Web, who: &Who, req: &Req) -> WebResult {
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return Err(WebError::Bad(e.to_string())),
    };
    let mut request = match parse_schedule(&form) {
        Ok(r) => r,
        Err(e) => return schedule_form(web, who, &form, Some(&e)),
    };
    request.may_give_commands = who.may(crate::store::Role::Admin);
    let done = match submit(&web.store, &request) {
        Ok(Submitted::Jobs(q)) => {
            let ids: Vec<String> = q.iter().map(|j| j.job.to_string()).collect();
            format!("Queued {} as job {}.", request.script, ids.join(", "))
        }
        Ok(Submitted::Schedules { ids, next_due }) => format!(
            "Scheduled {} ({} schedule{}), first run {}.",
            request.script,
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            time(next_due)
        ),
        Err(e) => {
            let e = WebError::from(e);
            if e.status() == 400 || e.status() == 403 {
                return schedule_form(web, who, &form, Some(&e.to_string()));
            }
            return Err(e);
        }
    };
    web.dashboard.invalidate();
    Ok(Resp::redirect(&format!("/queue?done={}", encode(&done))))
}

pub fn cancel(web: &Web, who: &Who, id: i64) -> WebResult {
    let done = match web.store.cancel_job(id, &format!("web:{}", who.user))? {
        Cancelled::Removed => format!("Job {id} cancelled before it started."),
        Cancelled::Requested => format!("Job {id} was asked to stop."),
        Cancelled::AlreadyEnding => format!("Job {id} was already ending."),
    };
    web.dashboard.invalidate();
    Ok(Resp::redirect(&format!("/queue?done={}", encode(&done))))
}

pub fn priority(web: &Web, req: &Req, id: i64) -> WebResult {
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return Err(WebError::Bad(e.to_string())),
    };
    let Some(p) = form.get("priority").and_then(|p| p.parse::<i64>().ok()) else {
        return Err(WebError::Bad("the priority must be a whole number".into()));
    };
    match web.store.set_job_priority(id, p) {
        Ok(()) => Ok(Resp::redirect(&format!(
            "/queue?done={}",
            encode(&format!("Job {id} now has priority {p}."))
        ))),
        Err(StoreError::Invalid(m)) => Err(WebError::Conflict(m)),
        Err(e) => Err(e.into()),
    }
}

pub fn schedule_remove(web: &Web, _who: &Who, id: i64) -> WebResult {
    web.store.schedule(id)?;
    web.store.remove_schedule(id)?;
    Ok(Resp::redirect(&format!(
        "/queue?done={}",
        encode(&format!("Schedule {id} removed."))
    )))
}
