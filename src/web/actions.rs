//! The forms' POSTs that are not about hosts or scripts: login and logout, scheduling, and the
//! queue's cancel, re-prioritise and remove-schedule buttons. Each answers a redirect on
//! success (so a reload does not post again) and the form with a message on bad input.

use maud::html;

use super::auth::{self, COOKIE, LOGIN_COOKIE, SESSION_LIFETIME};
use super::http::{Form, Req, Resp, encode};
use super::pages::{self, csrf, error, form_page};
use super::{Web, Who};
use crate::queue::{Request, SubmitError, Submitted, When, submit};
use crate::store::{Cancelled, Role, ScriptKind, StoreError};

/// Only a local path may be a place to go after login: no `//host`, no scheme, and nothing
/// but URL characters (a tab or line end could split the header or be dropped by a browser
/// into `//host`).
pub fn safe_next(next: Option<&str>) -> &str {
    let url_char = |c: char| c.is_ascii_alphanumeric() || "/-._~%?=&+,;:@!$'()*".contains(c);
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.chars().all(url_char) =>
        {
            n
        }
        _ => "/",
    }
}

fn login_page(status: u16, next: &str, err: Option<&str>) -> Resp {
    let token = match auth::random_hex(32) {
        Ok(t) => t,
        Err(e) => return Resp::text(500, format!("{e}\n")),
    };
    let mut r = Resp::html(status, pages::login(&token, next, err).into_string())
        .with("cache-control", "no-store")
        .with(
            "set-cookie",
            format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600"),
        );
    r.status = status;
    r
}

/// GET shows the form (and sets the login form's CSRF cookie); POST checks it.
pub fn login(web: &Web, req: &Req) -> Resp {
    let next = safe_next(req.query("next")).to_string();
    if !req.is_post() {
        return if req.method == "GET" || req.method == "HEAD" {
            login_page(200, &next, None)
        } else {
            Resp::text(405, "use GET or POST\n").with("allow", "GET, POST")
        };
    }
    if let Err(e) = super::check_origin(req) {
        return Resp::text(403, format!("{e}\n"));
    }
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return login_page(400, &next, Some(&e.to_string())),
    };
    let next = safe_next(form.get("next")).to_string();
    let token_ok = match (form.get("csrf_token"), req.cookie(LOGIN_COOKIE)) {
        (Some(f), Some(c)) => auth::same(f, c),
        _ => false,
    };
    if !token_ok {
        return login_page(
            403,
            &next,
            Some("the form expired or cookies are off: try again"),
        );
    }
    let (Some(name), Some(password)) = (form.get("username"), form.raw("password")) else {
        return login_page(400, &next, Some("give a user name and a password"));
    };
    let user = match web.sessions.login(&web.store, name, password, req.peer) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(user = name, "web login refused: {e}");
            return login_page(401, &next, Some(&e));
        }
    };
    let must_change = super::account::must_change(&web.store, &user.name);
    let id = match web.sessions.start(&user, must_change) {
        Ok(id) => id,
        Err(e) => return Resp::text(500, format!("{e}\n")),
    };
    tracing::info!(user = %user.name, "web login");
    // Behind a TLS proxy that says so, the cookie is never sent over plain HTTP.
    let secure = if req.header("x-forwarded-proto") == Some("https") {
        "; Secure"
    } else {
        ""
    };
    let next = if must_change {
        "/account/password".to_string()
    } else {
        next
    };
    Resp::redirect(&next)
        .with(
            "set-cookie",
            format!(
                "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                SESSION_LIFETIME.as_secs()
            ),
        )
        .with(
            "set-cookie",
            format!("{LOGIN_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0"),
        )
}

pub fn logout(web: &Web, req: &Req) -> Resp {
    if let Some(id) = req.cookie(COOKIE) {
        web.sessions.end(id);
    }
    Resp::redirect("/login").with(
        "set-cookie",
        format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    )
}

/// The schedule form, pre-filled from `v` (the last post, or `?script=&host=` in a link).
pub fn schedule_form(
    web: &Web,
    who: &Who,
    v: &Form,
    err: Option<&str>,
) -> Result<Resp, StoreError> {
    if !who.may(Role::Operator) {
        return Ok(error(who, 403, "viewers cannot schedule"));
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
    let body = html! {
        @if let Some(e) = err { p.error role="alert" { (e) } }
        form.stacked method="post" action="/schedule" {
            (csrf(who))
            label { "Script " select name="script" required {
                @for s in runnable.clone() { option selected[v.get("script") == Some(s.name.as_str())] { (s.name) } }
            } }
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
                @for s in &scripts { @if s.kind == ScriptKind::Fix || s.kind == ScriptKind::Task {
                    option selected[v.get("fix") == Some(s.name.as_str())] { (s.name) } } }
            } }
            label { "Time limit (empty: the default) " input type="text" name="timeout" placeholder="60s" size="6" value=[v.get("timeout")]; }
            button type="submit" { "Schedule" }
        }
    };
    Ok(form_page(who, "Schedule a script", body, err))
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
    r.fix = f.get("fix").map(String::from);
    if let Some(p) = f.get("priority") {
        r.priority = p
            .parse()
            .map_err(|_| format!("bad priority {p:?}: use a whole number"))?;
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

/// A submit error as (status, message).
pub fn submit_status(e: &SubmitError) -> u16 {
    match e {
        SubmitError::Invalid(_) => 400,
        SubmitError::Store(s) => match pages::store_status(s) {
            // A named host or script that does not exist is bad input here, not a bad URL.
            404 => 400,
            n => n,
        },
    }
}

pub fn schedule(web: &Web, who: &Who, req: &Req) -> Result<Resp, StoreError> {
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return Ok(error(who, 400, &e.to_string())),
    };
    let request = match parse_schedule(&form) {
        Ok(r) => r,
        Err(e) => return schedule_form(web, who, &form, Some(&e)),
    };
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
            pages::time(next_due)
        ),
        Err(e) if submit_status(&e) == 400 => {
            return schedule_form(web, who, &form, Some(&e.to_string()));
        }
        Err(SubmitError::Store(e)) => return Err(e),
        Err(e) => return Ok(error(who, 500, &e.to_string())),
    };
    web.dashboard.invalidate();
    Ok(Resp::redirect(&format!("/queue?done={}", encode(&done))))
}

pub fn cancel(web: &Web, who: &Who, id: i64) -> Result<Resp, StoreError> {
    let done = match web.store.cancel_job(id, &format!("web:{}", who.user))? {
        Cancelled::Removed => format!("Job {id} cancelled before it started."),
        Cancelled::Requested => format!("Job {id} was asked to stop."),
        Cancelled::AlreadyEnding => format!("Job {id} was already ending."),
    };
    web.dashboard.invalidate();
    Ok(Resp::redirect(&format!("/queue?done={}", encode(&done))))
}

pub fn priority(web: &Web, who: &Who, req: &Req, id: i64) -> Result<Resp, StoreError> {
    let form = match req.form() {
        Ok(f) => f,
        Err(e) => return Ok(error(who, 400, &e.to_string())),
    };
    let Some(p) = form.get("priority").and_then(|p| p.parse::<i64>().ok()) else {
        return Ok(error(who, 400, "the priority must be a whole number"));
    };
    match web.store.set_job_priority(id, p) {
        Ok(()) => Ok(Resp::redirect(&format!(
            "/queue?done={}",
            encode(&format!("Job {id} now has priority {p}."))
        ))),
        Err(StoreError::Invalid(m)) => Ok(error(who, 409, &m)),
        Err(e) => Err(e),
    }
}

pub fn schedule_remove(web: &Web, _who: &Who, id: i64) -> Result<Resp, StoreError> {
    web.store.schedule(id)?;
    web.store.remove_schedule(id)?;
    Ok(Resp::redirect(&format!(
        "/queue?done={}",
        encode(&format!("Schedule {id} removed."))
    )))
}
