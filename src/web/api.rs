//! The JSON API under `/api/`, mirroring the pages. Reads need any login; changes need an
//! operator (schedule, cancel, re-prioritise) or an admin (hosts, scripts). Bodies are JSON
//! objects whose fields are the form's (`host` may be a list); errors are
//! `{"error": "..."}` with a 4xx status.

use serde_json::{Value, json};

use super::http::{Form, Req, Resp};
use super::queue::parse_schedule;
use super::router::Api;
use super::{Web, WebError, WebResult, Who, hosts, scripts};
use crate::queue::submit;
use crate::store::{Cancelled, Role, RunFilter, Status, StoreError};

/// A JSON object body as form pairs: strings and numbers as text, `true` as "on" (`false` and
/// null are left out), a list as the field repeated.
pub fn body_form(req: &Req) -> Result<Form, String> {
    let ct = req.header("content-type").unwrap_or("");
    if !ct
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(format!(
            "expected Content-Type: application/json, got {ct:?}"
        ));
    }
    let v: Value =
        serde_json::from_slice(&req.body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(map) = v else {
        return Err("the body must be a JSON object".into());
    };
    let mut pairs = Vec::new();
    for (k, v) in map {
        let items = match v {
            Value::Array(a) => a,
            v => vec![v],
        };
        for item in items {
            match item {
                Value::String(s) => pairs.push((k.clone(), s)),
                Value::Number(n) => pairs.push((k.clone(), n.to_string())),
                Value::Bool(true) => pairs.push((k.clone(), "on".into())),
                // Present but empty: "off" for a checkbox, "none" for an optional field.
                Value::Bool(false) | Value::Null => pairs.push((k.clone(), String::new())),
                Value::Object(_) | Value::Array(_)
                    if k == "vars" || k == "args" || k == "fix_args" =>
                {
                    pairs.push((k.clone(), item.to_string()));
                }
                _ => return Err(format!("field {k:?} must be a string, number or boolean")),
            }
        }
    }
    Ok(Form(pairs))
}

/// A 200 with `v` as JSON.
fn ok<T: serde::Serialize>(v: &T) -> WebResult {
    Ok(Resp::json(200, v))
}

pub fn handle(web: &Web, who: &Who, route: Api, req: &Req) -> Resp {
    answer(web, who, route, req).unwrap_or_else(|e| Resp::json_error(e.status(), &e.to_string()))
}

fn answer(web: &Web, who: &Who, route: Api, req: &Req) -> WebResult {
    use Api as A;
    let post = req.is_post();
    if post && !who.may(Role::Operator) {
        return Err(WebError::Forbidden("viewers cannot change anything".into()));
    }
    if post && matches!(route, A::Hosts | A::Host(_) | A::Script(_)) && !who.may(Role::Admin) {
        return Err(WebError::Forbidden(
            "only an admin can change hosts and scripts".into(),
        ));
    }
    let form = || body_form(req);
    let s = &web.store;
    match (route, post) {
        (A::Dashboard, false) => ok(&*web.dashboard.get(s)?),
        (A::Hosts, false) => {
            let mut list = s.hosts()?;
            if !who.may(Role::Operator) {
                for h in &mut list {
                    h.vars = crate::queue::mask_map(std::mem::take(&mut h.vars));
                }
            }
            ok(&list)
        }
        (A::Host(n), false) => {
            let mut host = s.host(&n)?;
            if !who.may(Role::Operator) {
                host.vars = crate::queue::mask_map(std::mem::take(&mut host.vars));
            }
            let keys = s.host_keys(&n)?;
            let runs = s.runs(&RunFilter::host_recent(&n))?;
            Ok(Resp::json(
                200,
                &json!({"host": host, "keys": keys, "runs": runs}),
            ))
        }
        (A::Hosts, true) => match form() {
            Err(e) => Err(WebError::Bad(e)),
            Ok(f) => match f.get("name").map(|n| hosts::parse(n, &f)) {
                None => Err(WebError::Bad("the name is missing".into())),
                Some(Err(e)) => Err(WebError::Bad(e)),
                Some(Ok(h)) => {
                    let h = s.add_host(&h)?;
                    web.dashboard.invalidate();
                    Ok(Resp::json(201, &h))
                }
            },
        },
        // An update changes the fields it names; the others keep their values.
        (A::Host(n), true) => {
            let current = hosts::values(&s.host(&n)?);
            let merged = form().map(|given| {
                let mut all: Vec<(String, String)> = current
                    .0
                    .into_iter()
                    .filter(|(k, _)| !given.0.iter().any(|(g, _)| g == k))
                    .collect();
                all.extend(given.0);
                Form(all)
            });
            match merged.and_then(|f| hosts::parse(&n, &f).map(|h| (h, f))) {
                Err(e) => Err(WebError::Bad(e)),
                Ok((h, f)) => {
                    let h = s.update_host(&h, f.get("clear_password").is_some())?;
                    web.dashboard.invalidate();
                    Ok(Resp::json(200, &h))
                }
            }
        }
        (A::Scripts, false) => ok(&s.scripts()?),
        (A::Script(n), false) => ok(&s.script(&n)?),
        (A::Script(n), true) => match form() {
            Err(e) => Err(WebError::Bad(e)),
            Ok(f) => {
                let existing = s.find_script(&n)?.map(|_| n.clone());
                let mut f = f;
                if existing.is_none() {
                    f.0.push(("name".into(), n.clone()));
                }
                match scripts::save(web, existing.as_deref(), &f) {
                    Ok((name, version)) => {
                        Ok(Resp::json(200, &json!({"name": name, "version": version})))
                    }
                    Err(scripts::Refused::Bad(m)) => Err(WebError::Bad(m)),
                    Err(scripts::Refused::Store(e)) => Err(e.into()),
                }
            }
        },
        (A::Schedule, true) => match form().and_then(|f| parse_schedule(&f)).map(|mut r| {
            r.may_give_commands = who.may(Role::Admin);
            r
        }) {
            Err(e) => Err(WebError::Bad(e)),
            Ok(request) => match submit(s, &request) {
                Ok(done) => {
                    web.dashboard.invalidate();
                    Ok(Resp::json(201, &done))
                }
                Err(e) => Err(e.into()),
            },
        },
        (A::Checks, false) => {
            let mut list = s.checks()?;
            crate::store::checks::problems_first(&mut list);
            ok(&list)
        }
        (A::Check(host, script), false) => check(web, host.as_deref(), &script),
        (A::Perfdata, false) => perfdata(web, req),
        (A::Ack(host, script), true) => {
            let f = form().map_err(WebError::Bad)?;
            let c = s.acknowledge(
                host.as_deref(),
                &script,
                f.get("comment").unwrap_or(""),
                &format!("api:{}", who.user),
            )?;
            web.dashboard.invalidate();
            ok(&c)
        }
        (A::Downtimes, false) => ok(&s.downtimes()?),
        (A::Downtimes, true) => {
            let f = form().map_err(WebError::Bad)?;
            let d =
                super::downtimes::parse(&f, &format!("api:{}", who.user)).map_err(WebError::Bad)?;
            let id = s.add_downtime(&d)?;
            web.dashboard.invalidate();
            Ok(Resp::json(201, &json!({"id": id})))
        }
        (A::CheckResult(host, check), true) => {
            let f = form().map_err(WebError::Bad)?;
            let status = crate::store::passive::parse_status(f.get("status").unwrap_or(""))?;
            let by = format!("api:{}", who.user);
            let (run, check) = s.record_passive(&crate::store::passive::Passive {
                host: host.as_deref(),
                check: &check,
                status,
                message: f.get("message").unwrap_or(""),
                perfdata: f.get("perfdata").filter(|p| !p.is_empty()),
                by: &by,
            })?;
            web.dashboard.invalidate();
            Ok(Resp::json(201, &json!({"run_id": run, "check": check})))
        }
        (A::ScheduleEdit(id), true) => {
            let f = form().map_err(WebError::Bad)?;
            let mut e = schedule_edit(&f).map_err(WebError::Bad)?;
            e.may_give_commands = who.may(Role::Admin);
            // The URL's schedule: 404 when there is none (a missing script it names is 400).
            s.schedule(id)?;
            let done = crate::queue::edit::edit(s, id, &e)?;
            web.dashboard.invalidate();
            ok(&done)
        }
        (A::Dependencies, false) => ok(&s.dependencies()?),
        (A::Dependencies, true) => {
            let f = form().map_err(WebError::Bad)?;
            let d = super::depends::parse(&f, &format!("api:{}", who.user))?;
            let id = s.add_dependency(&d)?;
            web.dashboard.invalidate();
            Ok(Resp::json(201, &json!({"id": id})))
        }
        (A::DependencyRemove(id), true) => {
            s.remove_dependency(id)?;
            web.dashboard.invalidate();
            ok(&json!({"id": id, "removed": true}))
        }
        (A::DowntimeRemove(id), true) => {
            s.remove_downtime(id)?;
            web.dashboard.invalidate();
            ok(&json!({"id": id, "removed": true}))
        }
        // A viewer sees arguments as the page shows them: secret-looking ones masked.
        (A::Schedules, false) => {
            let mut list = s.schedules()?;
            if !who.may(Role::Operator) {
                for sch in &mut list {
                    sch.args = sch.args.as_deref().map(crate::queue::mask_args);
                    sch.fix_args = sch.fix_args.as_deref().map(crate::queue::mask_args);
                }
            }
            ok(&list)
        }
        (A::Queue, false) => {
            let mut list = s.jobs()?;
            if !who.may(Role::Operator) {
                for job in &mut list {
                    job.args = job.args.as_deref().map(crate::queue::mask_args);
                }
            }
            ok(&list)
        }
        (A::JobCancel(id), true) => {
            let result = match s.cancel_job(id, &format!("api:{}", who.user))? {
                Cancelled::Removed => "removed",
                Cancelled::Requested => "requested",
                Cancelled::AlreadyEnding => "already ending",
            };
            web.dashboard.invalidate();
            Ok(Resp::json(200, &json!({"job": id, "result": result})))
        }
        (A::JobPriority(id), true) => {
            match form().and_then(|f| {
                f.get("priority")
                    .and_then(|p| p.parse::<i64>().ok())
                    .ok_or_else(|| "priority must be a whole number".to_string())
            }) {
                Err(e) => Err(WebError::Bad(e)),
                Ok(p) => match s.set_job_priority(id, p) {
                    Ok(()) => Ok(Resp::json(200, &json!({"job": id, "priority": p}))),
                    Err(StoreError::Invalid(m)) => Err(WebError::Conflict(m)),
                    Err(e) => Err(e.into()),
                },
            }
        }
        (A::Runs, false) => runs(web, req),
        (A::Run(id), false) => ok(&s.run(id)?),
        (A::Notifications, false) => {
            let limit = req
                .query("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(100);
            ok(&s.notifications(limit.min(1000))?)
        }
        (_, post) => Ok(Resp::json_error(
            405,
            if post {
                "this API path only answers GET"
            } else {
                "this API path only answers POST"
            },
        )),
    }
}

/// One check, its latest runs, and the changes of state among them (oldest first).
fn check(web: &Web, host: Option<&str>, script: &str) -> WebResult {
    let check = web.store.check(host, script)?;
    let mut runs = web.store.runs(&RunFilter {
        host: host.map(String::from),
        check: Some(script.to_string()),
        limit: 200,
        summary: true,
        ..RunFilter::default()
    })?;
    // Runs without a host are filtered by script only; keep those of this check.
    runs.retain(|r| r.host.as_deref() == host && r.phase != Some(crate::store::RunPhase::Fix));
    let mut changes = Vec::new();
    let mut last = None;
    for r in runs.iter().rev() {
        let Some(state) = crate::store::CheckState::of(r.status) else {
            continue;
        };
        if last != Some(state) {
            changes.push(json!({"at": r.finished_at, "state": state, "run_id": r.id}));
            last = Some(state);
        }
    }
    let guard = web.store.guard_state(host, script)?;
    ok(&json!({"check": check, "guard": guard, "changes": changes, "runs": runs}))
}

/// The fields of `POST /api/schedules/ID`: `every`, `cron` or `at`; `args` and `fix_args`
/// (objects: each given is set), `unset_args` (names); `fix` or `no_fix`; `priority`,
/// `timeout`, `max_attempts`, `max_fixes`, `fix_window`, `fix_backoff`, `retries`,
/// `retry_every`.
fn schedule_edit(f: &super::http::Form) -> Result<crate::queue::edit::Edit, String> {
    use crate::queue::When;
    let dur = |k: &str| -> Result<Option<i64>, String> {
        f.get(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                crate::when::parse_duration(v)
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    .map_err(|e| format!("{k}: {e}"))
            })
            .transpose()
    };
    let int = |k: &str| -> Result<Option<i64>, String> {
        f.get(k)
            .filter(|v| !v.is_empty())
            .map(|v| v.parse().map_err(|_| format!("{k} {v:?}: a whole number")))
            .transpose()
    };
    let args = |k: &str| -> Result<crate::queue::Args, String> {
        match f.get(k).filter(|v| !v.is_empty()) {
            None => Ok(Default::default()),
            Some(j) => {
                let m: std::collections::BTreeMap<String, serde_json::Value> =
                    serde_json::from_str(j).map_err(|_| format!("{k}: give an object"))?;
                let words: Vec<String> = m
                    .into_iter()
                    .map(|(n, v)| match v {
                        serde_json::Value::String(s) => format!("{n}={s}"),
                        other => format!("{n}={other}"),
                    })
                    .collect();
                crate::queue::parse_args(&words).map_err(|e| e.to_string())
            }
        }
    };
    let when = match (f.get("every"), f.get("cron"), f.get("at")) {
        (Some(e), None, None) => Some(When::Every(
            dur("every")?.ok_or_else(|| format!("every {e:?}: a duration"))?,
        )),
        (None, Some(c), None) => Some(When::Cron(c.to_string())),
        (None, None, Some(a)) => Some(When::At(
            crate::when::parse_time(a).map_err(|e| format!("at: {e}"))?,
        )),
        (None, None, None) => None,
        _ => return Err("give one of every, cron and at".into()),
    };
    Ok(crate::queue::edit::Edit {
        when,
        args: args("args")?,
        unset_args: f.all("unset_args").into_iter().map(String::from).collect(),
        fix: f.get("fix").filter(|v| !v.is_empty()).map(String::from),
        no_fix: f.get("no_fix").is_some_and(|v| v == "on"),
        fix_args: args("fix_args")?,
        priority: int("priority")?,
        timeout_ms: dur("timeout")?,
        max_attempts: int("max_attempts")?,
        guard_max_fixes: int("max_fixes")?,
        guard_window_ms: dur("fix_window")?,
        guard_backoff_ms: dur("fix_backoff")?,
        retries: int("retries")?,
        retry_every_ms: dur("retry_every")?,
        may_give_commands: false,
    })
}

/// `/api/runs?host=&script=&status=&before=&limit=` (limit up to 1000; `full=1` adds output
/// and transcript).
fn runs(web: &Web, req: &Req) -> WebResult {
    let status = match req.query("status").map(str::parse::<Status>) {
        Some(Err(e)) => return Err(WebError::Bad(e)),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let num = |k: &str| -> Result<Option<i64>, Resp> {
        req.query(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| Resp::json_error(400, &format!("{k} must be a whole number")))
            })
            .transpose()
    };
    let (before, limit) = match (num("before"), num("limit")) {
        (Ok(b), Ok(l)) => (b, l),
        (Err(r), _) | (_, Err(r)) => return Ok(r),
    };
    let list = web.store.runs(&RunFilter {
        host: req.query("host").map(String::from),
        script: req.query("script").map(String::from),
        check: req.query("check").map(String::from),
        status,
        before_id: before,
        limit: limit.unwrap_or(100).clamp(1, 1000) as u64,
        summary: req.query("full") != Some("1"),
    })?;
    Ok(Resp::json(200, &list))
}

/// A time in a query: epoch milliseconds, or a time as the CLI takes it (RFC 3339, local
/// `2026-12-01 04:00`).
fn query_time(req: &Req, name: &str, default: i64) -> Result<i64, WebError> {
    match req.query(name).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .or_else(|_| crate::when::parse_time(v))
            .map_err(|e| WebError::Bad(format!("{name}: {e}"))),
    }
}

/// `/api/perfdata`: a check's series with their points in a range (default: the last 24
/// hours): raw while raw points are kept for the whole range, else hourly trends.
fn perfdata(web: &Web, req: &Req) -> WebResult {
    let check = req
        .query("check")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| WebError::Bad("give check=NAME (and host=NAME)".into()))?;
    let host = req.query("host").filter(|h| !h.is_empty() && *h != "-");
    let now = crate::store::now_ms();
    let until = query_time(req, "until", now)?;
    let since = query_time(req, "since", until - 86_400_000)?;
    if since >= until {
        return Err(WebError::Bad("since must be before until".into()));
    }
    let raw_ms = web.keep_points_ms;
    let label = req.query("label");
    let mut out = Vec::new();
    for s in web.store.series(host, check)? {
        if label.is_some_and(|l| l != s.label) {
            continue;
        }
        let (resolution, points) = web.store.samples(s.id, since, until, raw_ms)?;
        out.push(json!({
            "label": s.label, "uom": s.uom, "warn": s.warn, "crit": s.crit,
            "resolution": resolution, "points": points,
        }));
    }
    ok(&json!({"host": host, "check": check, "since": since, "until": until, "series": out}))
}
