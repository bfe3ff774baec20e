//! `/dependencies`: which checks stand behind which, the form that adds one and the buttons
//! that remove them. The API's `/api/dependencies` reads the same fields from JSON.

use maud::html;

use super::http::{Form, Req, Resp, encode};
use super::layout::{csrf, form_page};
use super::{Web, WebError, WebResult, Who};
use crate::store::depends::parse_target;
use crate::store::{NewDependency, Role, StoreError};

/// Reads the form (or the API's JSON as the same pairs): `child` (HOST or HOST/CHECK), `on`
/// (HOST/CHECK) and an optional `group`.
pub fn parse(f: &Form, author: &str) -> Result<NewDependency, StoreError> {
    let (child_host, child_check) = parse_target(f.get("child").unwrap_or(""), true)?;
    let (parent_host, parent_check) = parse_target(f.get("on").unwrap_or(""), false)?;
    Ok(NewDependency {
        child_host,
        child_check,
        parent_host,
        parent_check: parent_check.unwrap_or_default(),
        group: f
            .get("group")
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(String::from),
        author: Some(author.to_string()),
    })
}

/// GET: the list, and the form for operators (pre-filled with `v` and an error after a bad
/// POST).
pub fn page(web: &Web, who: &Who, v: &Form, err: Option<&str>, done: Option<&str>) -> WebResult {
    let list = web.store.dependencies()?;
    let body = html! {
        @if let Some(msg) = done { p.notice { (msg) } }
        p { "A check behind a parent in a hard problem is unreachable: it still runs and records, but it is neither fixed nor told. Parents in one group are redundant: the child is cut off only when all of them are down." }
        @if list.is_empty() { p.empty { "No dependencies." } } @else {
            table.dependencies {
                tr { th { "Id" } th { "Child" } th { "On" } th { "Group" } th { "By" } th { "Managed" } th { "" } }
                @for d in &list {
                    tr {
                        td { (d.id) }
                        td { (d.child()) }
                        td { (d.parent()) }
                        td { (d.group.as_deref().unwrap_or("-")) }
                        td { (d.author.as_deref().unwrap_or("-")) }
                        td { (super::hosts::managed(d.managed)) }
                        td {
                            @if who.may(Role::Operator) {
                                form.inline method="post" action={"/dependencies/" (d.id) "/remove"} {
                                    (csrf(who))
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if who.may(Role::Operator) {
            h2 { "Add a dependency" }
            @if let Some(e) = err { p.error role="alert" { (e) } }
            form.stacked method="post" action="/dependencies" {
                (csrf(who))
                label { "Child (HOST or HOST/CHECK) " input type="text" name="child" required placeholder="web1" value=[v.get("child")]; }
                label { "depends on (HOST/CHECK) " input type="text" name="on" required placeholder="r1/check_ping" value=[v.get("on")]; }
                label { "Group of redundant parents " input type="text" name="group" placeholder="uplinks" value=[v.get("group")]; }
                button type="submit" { "Add dependency" }
            }
        }
    };
    Ok(form_page(who, "Dependencies", body, err))
}

/// POST `/dependencies`: adds one, or shows the form again with what was wrong.
pub fn add(web: &Web, who: &Who, req: &Req) -> WebResult {
    let form = req.form().map_err(|e| WebError::Bad(e.to_string()))?;
    let added = parse(&form, &format!("web:{}", who.user))
        .and_then(|d| web.store.add_dependency(&d))
        .map_err(WebError::from);
    match added {
        Ok(id) => {
            web.dashboard.invalidate();
            Ok(Resp::redirect(&format!(
                "/dependencies?done={}",
                encode(&format!("Dependency {id} added."))
            )))
        }
        Err(e) if e.status() == 400 || e.status() == 404 => {
            page(web, who, &form, Some(&e.to_string()), None)
        }
        Err(e) => Err(e),
    }
}

pub fn remove(web: &Web, id: i64) -> WebResult {
    web.store.remove_dependency(id)?;
    web.dashboard.invalidate();
    Ok(Resp::redirect(&format!(
        "/dependencies?done={}",
        encode(&format!("Dependency {id} removed."))
    )))
}
