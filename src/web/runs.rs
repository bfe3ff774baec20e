//! The run history: `/runs` (filtered, keyset-paged), `/runs/ID` (output and transcript) and
//! `/notifications`.

use maud::{Markup, html};

use super::http::{Req, encode};
use super::layout::{ago, csrf, page, status, time};
use super::{Web, WebError, WebResult, Who};
use crate::store::{Role, RunFilter, Status};

/// Runs, newest first, filtered by host, script and status; 100 a page, keyset paging.
pub fn runs(web: &Web, who: &Who, req: &Req) -> WebResult {
    let wanted = match req.query("status").map(str::parse::<Status>) {
        Some(Err(e)) => return Err(WebError::Bad(e)),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let before = match req.query("before").map(str::parse::<i64>) {
        Some(Err(_)) => return Err(WebError::Bad("before must be a run id".into())),
        Some(Ok(b)) => Some(b),
        None => None,
    };
    let filter = RunFilter {
        host: req.query("host").map(String::from),
        script: req.query("script").map(String::from),
        check: None,
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
                        td { (status(r.status))
                            @if r.repeats > 1 { " " span.repeats title="OK runs that changed nothing, one after another: this is the latest" { "×" (r.repeats) } } }
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

pub fn run(web: &Web, who: &Who, id: i64) -> WebResult {
    let r = web.store.run(id)?;
    let lines: Vec<Line> = r
        .transcript
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let body = html! {
        @if who.may(Role::Operator) {
            form.inline method="post" action="/schedule" {
                (csrf(who))
                input type="hidden" name="script" value=(r.script);
                @if let Some(h) = &r.host { input type="hidden" name="host" value=(h); }
                input type="hidden" name="when" value="now";
                button type="submit" { "Run again" }
            }
        }
        dl.fields {
            dt { "Status" } dd { (status(r.status)) " " (r.message) }
            @if r.repeats > 1 {
                dt { "Runs" } dd { "The latest of " (r.repeats) " OK runs in a row that changed nothing (they share this record)" }
            }
            dt { "Script" } dd { a href={"/scripts/" (crate::urlencode::encode(&r.script))} { (r.script) }
                @if let Some(v) = r.script_version { " (version " (v) ")" } }
            dt { "Host" } dd { @if let Some(h) = &r.host { a href={"/hosts/" (crate::urlencode::encode(h))} { (h) } } @else { "-" } }
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

pub fn notifications(web: &Web, who: &Who) -> WebResult {
    let list = web.store.notifications(200)?;
    Ok(page(
        who,
        "Notifications",
        Some(30),
        notification_table(&list),
    ))
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
