//! `/downtimes` (the current and coming maintenance windows, and the form that adds one) and
//! acknowledgements (`/checks/HOST/CHECK/ack`). The API's `/api/downtimes` and
//! `/api/checks/HOST/CHECK/ack` read the same form fields from JSON.

use maud::html;

use super::http::{Form, Req, Resp, encode};
use super::layout::{csrf, form_page, time};
use super::{Web, WebError, WebResult, Who};
use crate::queue::downtime::DowntimeWords;
use crate::store::{NewDowntime, Role, now_ms};

/// Reads the downtime form (or the API's JSON as the same pairs): `host`, `tag` or `check`,
/// `for` or `until`, `from`, `reason`, `children` (see [`crate::queue::downtime`]).
pub fn parse(f: &Form, author: &str) -> Result<NewDowntime, String> {
    crate::queue::downtime::downtime(&DowntimeWords {
        host: f.get("host"),
        tag: f.get("tag"),
        check: f.get("check"),
        from: f.get("from"),
        for_: f.get("for"),
        until: f.get("until"),
        reason: f.get("reason").unwrap_or(""),
        author,
        children: matches!(f.get("children"), Some("on" | "true" | "1")),
    })
}

/// GET: the list, and the form for operators (pre-filled with `v` and an error after a bad
/// POST).
pub fn page(web: &Web, who: &Who, v: &Form, err: Option<&str>, done: Option<&str>) -> WebResult {
    let list = web.store.downtimes()?;
    let hosts = web.store.hosts()?;
    let now = now_ms();
    let body = html! {
        @if let Some(msg) = done { p.notice { (msg) } }
        @if list.is_empty() { p.empty { "No downtimes now or to come." } } @else {
            table.downtimes {
                tr { th { "Id" } th { "Covers" } th { "From" } th { "Until" } th { "By" } th { "Reason" } th { "" } }
                @for d in &list {
                    tr {
                        td { (d.id) @if d.starts_at <= now { " (now)" } }
                        td { (d.scope()) @if d.children { " and its children" } }
                        td { (time(d.starts_at)) }
                        td { (time(d.ends_at)) }
                        td { (d.author.as_deref().unwrap_or("-")) }
                        td.msg { (d.reason) }
                        td {
                            @if who.may(Role::Operator) {
                                form.inline method="post" action={"/downtimes/" (d.id) "/remove"} {
                                    (csrf(who))
                                    button.danger type="submit" { "End now" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if who.may(Role::Operator) {
            h2 { "Add a downtime" }
            @if let Some(e) = err { p.error role="alert" { (e) } }
            form.stacked method="post" action="/downtimes" {
                (csrf(who))
                label { "Host " select name="host" {
                    option value="" { "-" }
                    @for h in &hosts { option selected[v.get("host") == Some(h.name.as_str())] { (h.name) } }
                } }
                label { "or every host tagged " input type="text" name="tag" value=[v.get("tag")]; }
                label { "or one check (HOST/CHECK) " input type="text" name="check" placeholder="web1/check_nginx" value=[v.get("check")]; }
                label { "For " input type="text" name="for" placeholder="2h" size="6" value=[v.get("for")]; }
                label { "or until " input type="datetime-local" name="until" value=[v.get("until")]; }
                label { "Reason " input type="text" name="reason" required value=[v.get("reason")]; }
                label { input type="checkbox" name="children" checked[v.get("children").is_some()]; " and what depends on it" }
                button type="submit" { "Add downtime" }
            }
        }
    };
    Ok(form_page(who, "Downtimes", body, err))
}

/// POST `/downtimes`: adds one, or shows the form again with what was wrong.
pub fn add(web: &Web, who: &Who, req: &Req) -> WebResult {
    let form = req.form().map_err(|e| WebError::Bad(e.to_string()))?;
    let added = parse(&form, &format!("web:{}", who.user))
        .map_err(WebError::Bad)
        .and_then(|d| web.store.add_downtime(&d).map_err(WebError::from));
    match added {
        Ok(id) => {
            web.dashboard.invalidate();
            Ok(Resp::redirect(&format!(
                "/downtimes?done={}",
                encode(&format!("Downtime {id} added."))
            )))
        }
        Err(e) if e.status() == 400 || e.status() == 404 => {
            page(web, who, &form, Some(&e.to_string()), None)
        }
        Err(e) => Err(e),
    }
}

pub fn remove(web: &Web, id: i64) -> WebResult {
    web.store.remove_downtime(id)?;
    web.dashboard.invalidate();
    Ok(Resp::redirect(&format!(
        "/downtimes?done={}",
        encode(&format!("Downtime {id} ended."))
    )))
}

/// POST `/checks/HOST/CHECK/ack` with a `comment`.
pub fn ack(web: &Web, who: &Who, req: &Req, host: Option<&str>, script: &str) -> WebResult {
    let form = req.form().map_err(|e| WebError::Bad(e.to_string()))?;
    let comment = form.get("comment").unwrap_or("");
    web.store
        .acknowledge(host, script, comment, &format!("web:{}", who.user))?;
    web.dashboard.invalidate();
    Ok(Resp::redirect("/"))
}
