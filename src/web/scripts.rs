//! Script pages: the list, a script's source with its version and recent runs, and the edit
//! form. A save is syntax-checked with the engine runs use before anything is written; a
//! script that does not compile comes back in the form with the error.

use maud::html;

use super::http::{Form, Req, Resp};
use super::layout::{ago, csrf, error, form_page, page, posted_form, status_class, time};
use super::{Web, WebResult, Who};
use crate::store::{Expect, NewScript, Role, RunFilter, Script, ScriptKind, StoreError, now_ms};

pub fn scripts(web: &Web, who: &Who) -> WebResult {
    let list = web.store.scripts()?;
    let body = html! {
        @if who.may(Role::Admin) { p { a.button href="/scripts/new" { "New script" } } }
        table {
            tr { th { "Name" } th { "Kind" } th { "Version" } th { "Updated" } th { "Description" } }
            @for s in &list {
                tr {
                    td { a href={"/scripts/" (crate::urlencode::encode(&s.name))} { (s.name) } }
                    td { (s.kind) }
                    td { (s.version) }
                    td { (time(s.updated_at)) }
                    td { (s.description.as_deref().unwrap_or("")) }
                }
            }
        }
    };
    Ok(page(who, "Scripts", None, body))
}

pub fn script(web: &Web, who: &Who, name: &str) -> WebResult {
    let s = web.store.script(name)?;
    let mut values = Form::default();
    values.0.push(("source".into(), s.source.clone()));
    if let Some(d) = &s.description {
        values.0.push(("description".into(), d.clone()));
    }
    values.0.push(("kind".into(), s.kind.to_string()));
    show(web, who, &s, &values, None)
}

fn show(web: &Web, who: &Who, s: &Script, v: &Form, err: Option<&str>) -> WebResult {
    let runs = web.store.runs(&RunFilter {
        host: None,
        script: Some(s.name.clone()),
        check: None,
        status: None,
        before_id: None,
        limit: 20,
        summary: true,
    })?;
    let now = now_ms();
    let hosts = web.store.hosts()?;
    let body = html! {
        p.meta { (s.kind) ", version " (s.version) ", saved " (time(s.updated_at))
            @if let Some(d) = &s.description { ". " (d) } }
        @if who.may(Role::Operator) && s.kind != ScriptKind::Library {
            form.inline method="post" action="/schedule" {
                (csrf(who))
                input type="hidden" name="script" value=(s.name);
                input type="hidden" name="when" value="now";
                label { "Run now on " select name="host" {
                    @for h in &hosts { option { (h.name) } }
                } }
                button type="submit" { "Run now" }
                " " a.button href={"/schedule?script=" (crate::urlencode::encode(&s.name))} { "Schedule it" }
            }
        }
        @let docs = crate::bundled::arguments(&s.source);
        @if !docs.is_empty() {
            h2 { "Arguments" }
            table.args {
                tr { th { "Name" } th { "Default" } th { "What it is" } }
                @for a in &docs {
                    tr {
                        td { code { (a.name) } }
                        td { @if a.required { "required" } @else { (a.default.as_deref().unwrap_or("-")) } }
                        td { (a.help) }
                    }
                }
            }
        }
        @if let Some(e) = err { p.error role="alert" { (e) } }
        @if who.may(Role::Admin) {
            (editor(who, Some(s), v))
        } @else {
            pre.source { (s.source) }
        }
        h2 { "Recent runs" }
        @if runs.is_empty() { p.empty { "No runs yet." } } @else {
            table {
                tr { th { "Run" } th { "When" } th { "Host" } th { "Status" } th { "Message" } }
                @for r in &runs {
                    tr {
                        td { a href={"/runs/" (r.id)} { (r.id) } }
                        td { (ago(r.started_at, now)) " ago" }
                        td { (r.host.as_deref().unwrap_or("-")) }
                        td { span class=(status_class(r.status)) { (r.status.as_str().to_uppercase()) } }
                        td.msg { (r.message) }
                    }
                }
            }
        }
    };
    Ok(form_page(who, &format!("Script {}", s.name), body, err))
}

fn editor(who: &Who, existing: Option<&Script>, v: &Form) -> maud::Markup {
    let action = match existing {
        Some(s) => format!("/scripts/{}", crate::urlencode::encode(&s.name)),
        None => "/scripts/new".into(),
    };
    let kind = v.get("kind").unwrap_or("check");
    html! {
        form.stacked method="post" action=(action) {
            (csrf(who))
            @if let Some(s) = existing {
                input type="hidden" name="version" value=(s.version);
            } @else {
                label { "Name " input type="text" name="name" value=[v.get("name")] required pattern="[A-Za-z0-9._-]+"; }
            }
            label { "Description " input type="text" name="description" value=[v.get("description")]; }
            label { "Kind " select name="kind" {
                @for k in ScriptKind::ALL { option selected[kind == k.as_str()] { (k.as_str()) } }
            } }
            label { "Source (Rhai) " textarea.code name="source" rows="24" spellcheck="false" { (v.raw("source").unwrap_or("")) } }
            button type="submit" { "Check and save" }
        }
    }
}

/// The new-script form.
pub fn script_form(who: &Who, _existing: Option<&Script>, v: &Form, err: Option<&str>) -> Resp {
    if !who.may(Role::Admin) {
        return error(who, 403, "only an admin can write scripts");
    }
    let body = html! {
        @if let Some(e) = err { p.error role="alert" { (e) } }
        (editor(who, None, v))
    };
    form_page(who, "New script", body, err)
}

pub fn script_save(web: &Web, who: &Who, req: &Req, existing: Option<&str>) -> WebResult {
    let form = posted_form(who, req, Role::Admin, "only an admin can write scripts")?;
    let current = existing.map(|n| web.store.script(n)).transpose()?;
    match save(web, existing, &form) {
        Ok((name, _)) => Ok(Resp::redirect(&format!(
            "/scripts/{}",
            crate::urlencode::encode(&name)
        ))),
        Err(Refused::Store(e)) => Err(e.into()),
        Err(Refused::Bad(msg)) => match &current {
            Some(s) => show(web, who, s, &form, Some(&msg)),
            None => Ok(script_form(who, None, &form, Some(&msg))),
        },
    }
}

/// Why a save was refused: bad input (shown with the form), or the store.
#[derive(Debug)]
pub enum Refused {
    Bad(String),
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Refused {
        Refused::Store(e)
    }
}

/// Checks and saves a script from form fields (`name` for a new one, `source`,
/// `description`, `kind`, and `version`: the version the editor started from; without it an
/// existing script is replaced whatever its version). Returns the name and the new version.
/// Shared by the page and the API.
pub fn save(web: &Web, existing: Option<&str>, form: &Form) -> Result<(String, i64), Refused> {
    let bad = |m: String| Err(Refused::Bad(m));
    let name = match (existing, form.get("name")) {
        (Some(n), _) | (None, Some(n)) => n.to_string(),
        (None, None) => return bad("the name is missing".into()),
    };
    if !crate::store::valid_name(&name) {
        return bad("invalid script name: use letters, digits, '-', '_' and '.'".into());
    }
    let expect = match (existing, form.get("version")) {
        (None, _) => Expect::New,
        (Some(_), Some(v)) => match v.parse() {
            Ok(v) => Expect::Version(v),
            Err(_) => return bad(format!("bad version {v:?}")),
        },
        (Some(_), None) => Expect::Any,
    };
    let source = form.raw("source").unwrap_or("").replace("\r\n", "\n");
    if source.trim().is_empty() {
        return bad("the source is empty".into());
    }
    if let Err(e) = crate::script::check_syntax(&name, &source) {
        return bad(format!("not saved: {e}"));
    }
    let (header_desc, header_kind) = crate::bundled::header(&source);
    let kind = match form.get("kind") {
        Some(k) => k.parse::<ScriptKind>().map_err(Refused::Bad)?,
        None => header_kind.unwrap_or(ScriptKind::Task),
    };
    let saved = web.store.save_script_if(
        &NewScript {
            name: &name,
            source: &source,
            description: form.get("description").map(String::from).or(header_desc),
            kind,
        },
        expect,
    );
    match saved {
        Ok(v) => Ok((name, v)),
        Err(StoreError::Exists { .. }) => bad(format!(
            "script {name:?} already exists; open it to edit it"
        )),
        Err(StoreError::Invalid(m)) => bad(m),
        Err(e) => Err(Refused::Store(e)),
    }
}
