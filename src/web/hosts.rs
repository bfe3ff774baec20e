//! Host pages: the list, a host's detail (settings, pinned SSH keys, recent runs), and the
//! add/edit form. A stored secret is never shown: the form says whether one is stored and
//! takes a new one, or a request to remove it.

use maud::{Markup, html};

use super::http::{Form, Req, Resp};
use super::layout::{ago, csrf, error, form_page, page, posted_form, status_class, time};
use super::{Web, WebResult, Who};
use crate::store::{Host, Method, NewHost, Role, RunFilter, Secret, StoreError, now_ms};

/// Whether the site file manages an object, as a table cell says it.
pub fn managed(yes: bool) -> &'static str {
    if yes { "site file" } else { "by hand" }
}

pub fn hosts(web: &Web, who: &Who) -> WebResult {
    let list = web.store.hosts()?;
    let body = html! {
        @if who.may(Role::Admin) { p { a.button href="/hosts/new" { "Add a host" } } }
        @if list.is_empty() { p.empty { "No hosts." } } @else {
            table {
                tr { th { "Name" } th { "Method" } th { "Address" } th { "User" } th { "Site" } th { "Tags" } th { "Secret" } th { "Managed" } }
                @for h in &list {
                    tr.disabled[!h.enabled] {
                        td { a href={"/hosts/" (crate::urlencode::encode(&h.name))} { (h.name) } }
                        td { (h.method) }
                        td { (h.address) @if let Some(p) = h.port { ":" (p) } }
                        td { (h.username.as_deref().unwrap_or("-")) }
                        td { (h.site.as_deref().unwrap_or("-")) }
                        td { (h.tags.join(" ")) }
                        td { (if h.has_secret { "stored" } else { "-" }) }
                        td { (managed(h.managed)) }
                    }
                }
            }
        }
    };
    Ok(page(who, "Hosts", None, body))
}

pub fn host(web: &Web, who: &Who, name: &str) -> WebResult {
    let h = web.store.host(name)?;
    let keys = web.store.host_keys(name)?;
    let runs = web.store.runs(&RunFilter::host_recent(name))?;
    let now = now_ms();
    let body = html! {
        p {
            @if who.may(Role::Admin) { a.button href={"/hosts/" (crate::urlencode::encode(&h.name)) "/edit"} { "Edit" } " " }
            @if who.may(Role::Operator) { a.button href={"/schedule?host=" (crate::urlencode::encode(&h.name))} { "Schedule a script here" } " " }
            a href={"/runs?host=" (crate::urlencode::encode(&h.name))} { "All runs" }
        }
        dl.fields {
            dt { "Method" } dd { (h.method) }
            dt { "Address" } dd { (h.address) @if let Some(p) = h.port { ":" (p) } }
            dt { "User" } dd { (h.username.as_deref().unwrap_or("-")) }
            dt { "Secret" } dd { (if h.has_secret { "a password is stored (never shown)" } else { "none" }) }
            @if let Some(k) = &h.key_path { dt { "Key file" } dd { (k) } }
            @if let Some(p) = &h.prompt { dt { "Prompt" } dd { code { (p) } } }
            dt { "Site" } dd { (h.site.as_deref().unwrap_or("-")) }
            dt { "Tags" } dd { (h.tags.join(" ")) }
            dt { "Sessions" } dd { (if h.keep_session { "kept for reuse" } else { "closed after each run" }) }
            dt { "Managed" } dd { (if h.managed { "by the site file (hostler apply): change it there" } else { "made by hand" }) }
            @if !h.vars.is_empty() {
                dt { "Vars" }
                dd { code { (if who.may(Role::Operator) {
                    serde_json::Value::Object(h.vars.clone())
                } else {
                    serde_json::Value::Object(crate::queue::mask_map(h.vars.clone()))
                }) } }
            }
        }
        h2 { "Pinned SSH host keys" }
        @if keys.is_empty() { p.empty { "None pinned yet (the first login pins the key, unless [ssh] trust_new = \"reject\")." } } @else {
            table {
                tr { th { "Type" } th { "Fingerprint" } th { "First seen" } }
                @for k in &keys { tr { td { (k.key_type) } td { code { (k.fingerprint) } } td { (time(k.first_seen)) } } }
            }
        }
        h2 { "Recent runs" }
        @if runs.is_empty() { p.empty { "No runs yet." } } @else {
            table {
                tr { th { "Run" } th { "When" } th { "Script" } th { "Status" } th { "Message" } }
                @for r in &runs {
                    tr {
                        td { a href={"/runs/" (r.id)} { (r.id) } }
                        td { (ago(r.started_at, now)) " ago" }
                        td { (r.script) }
                        td { span class=(status_class(r.status)) { (r.status.as_str().to_uppercase()) }
                            @if r.repeats > 1 { " ×" (r.repeats) } }
                        td.msg { (r.message) }
                    }
                }
            }
        }
    };
    Ok(page(who, &format!("Host {}", h.name), Some(15), body))
}

/// A host's settings as form values, to pre-fill the edit form (and under an API update).
pub fn values(h: &Host) -> Form {
    let mut v = vec![
        ("name", h.name.clone()),
        ("address", h.address.clone()),
        ("method", h.method.to_string()),
        ("tags", h.tags.join(" ")),
        (
            "vars",
            serde_json::Value::Object(h.vars.clone()).to_string(),
        ),
    ];
    for (k, x) in [
        ("username", &h.username),
        ("key_path", &h.key_path),
        ("prompt", &h.prompt),
        ("site", &h.site),
    ] {
        if let Some(x) = x {
            v.push((k, x.clone()));
        }
    }
    if let Some(p) = h.port {
        v.push(("port", p.to_string()));
    }
    if h.keep_session {
        v.push(("keep_session", "on".into()));
    }
    Form(v.into_iter().map(|(k, x)| (k.to_string(), x)).collect())
}

pub fn host_edit(web: &Web, who: &Who, name: &str) -> WebResult {
    let h = web.store.host(name)?;
    Ok(host_form(who, Some(&h), &values(&h), None))
}

/// The add form (`existing` None) or the edit form, with the values last sent and an error.
pub fn host_form(who: &Who, existing: Option<&Host>, v: &Form, err: Option<&str>) -> Resp {
    if !who.may(Role::Admin) {
        return error(who, 403, "only an admin can add or edit hosts");
    }
    let new = existing.is_none();
    let is_new_default = new && v.0.is_empty();
    let action = match existing {
        Some(h) => format!("/hosts/{}/edit", crate::urlencode::encode(&h.name)),
        None => "/hosts/new".into(),
    };
    let method = v.get("method").unwrap_or("ssh");
    let body: Markup = html! {
        @if let Some(e) = err { p.error role="alert" { (e) } }
        form.stacked method="post" action=(action) {
            (csrf(who))
            @if new {
                label { "Name " input type="text" name="name" value=[v.get("name")] required pattern="[A-Za-z0-9._-]+"; }
            }
            label { "Address " input type="text" name="address" value=[v.get("address")] required; }
            label { "Method " select name="method" {
                @for m in Method::ALL { option selected[method == m.as_str()] { (m.as_str()) } }
            } }
            label { "Port (empty: the method's default) " input type="number" name="port" min="1" max="65535" value=[v.get("port")]; }
            label { "User " input type="text" name="username" value=[v.get("username")] autocomplete="off"; }
            label {
                @if existing.is_some_and(|h| h.has_secret) { "New password (empty: keep the stored one) " }
                @else { "Password " }
                input type="password" name="password" autocomplete="new-password";
            }
            @if existing.is_some_and(|h| h.has_secret) {
                label.check { input type="checkbox" name="clear_password"; " Remove the stored password" }
            }
            label { "Key file (SSH; the password is its passphrase) " input type="text" name="key_path" value=[v.get("key_path")]; }
            label { "Prompt regex (empty: set one per session) " input type="text" name="prompt" value=[v.get("prompt")]; }
            label { "Site " input type="text" name="site" value=[v.get("site")]; }
            label { "Tags (separated by spaces) " input type="text" name="tags" value=[v.get("tags")]; }
            label { "Vars (a JSON object scripts read as host.vars) "
                textarea name="vars" rows="3" { (v.raw("vars").unwrap_or("{}")) } }
            label.check { input type="checkbox" name="keep_session" checked[is_new_default || v.has("keep_session")]; " Keep sessions open for the next run" }
            button type="submit" { (if new { "Add host" } else { "Save" }) }
        }
    };
    let title = match existing {
        Some(h) => format!("Edit host {}", h.name),
        None => "Add a host".into(),
    };
    form_page(who, &title, body, err)
}

/// Reads the host form into a NewHost; the error names the field.
pub fn parse(name: &str, f: &Form) -> Result<NewHost, String> {
    let method: Method = f.get("method").unwrap_or("ssh").parse()?;
    let port = match f.get("port") {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("bad port {p:?}: use 1 to 65535"))?,
        ),
    };
    let vars = match f.get("vars") {
        None => serde_json::Map::new(),
        Some(v) => match serde_json::from_str::<serde_json::Value>(v) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err("vars must be a JSON object, such as {\"disk\": \"/\"}".into()),
        },
    };
    let opt = |k: &str| f.get(k).map(String::from);
    Ok(NewHost {
        name: name.to_string(),
        address: f
            .get("address")
            .ok_or("the address is missing")?
            .to_string(),
        port,
        method: Some(method),
        username: opt("username"),
        secret: f.raw("password").filter(|p| !p.is_empty()).map(Secret::new),
        key_path: opt("key_path"),
        prompt: opt("prompt"),
        site: opt("site"),
        tags: f
            .get("tags")
            .unwrap_or("")
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        vars,
        // A checkbox sends "on" when ticked and nothing otherwise; the API sends "" for false.
        no_keep_session: f.get("keep_session").is_none(),
    })
}

pub fn host_save(web: &Web, who: &Who, req: &Req, existing: Option<&str>) -> WebResult {
    let form = posted_form(who, req, Role::Admin, "only an admin can add or edit hosts")?;
    let current = existing.map(|n| web.store.host(n)).transpose()?;
    // What the form shows again on an error: never the password.
    let mut shown = form.clone();
    shown.0.retain(|(k, _)| k != "password");
    let name = match existing {
        Some(n) => n.to_string(),
        None => match form.get("name") {
            Some(n) => n.to_string(),
            None => return Ok(host_form(who, None, &shown, Some("the name is missing"))),
        },
    };
    let h = match parse(&name, &form) {
        Ok(h) => h,
        Err(e) => return Ok(host_form(who, current.as_ref(), &shown, Some(&e))),
    };
    let saved = match &current {
        Some(_) => web.store.update_host(&h, form.has("clear_password")),
        None => web.store.add_host(&h),
    };
    match saved {
        Ok(h) => {
            web.dashboard.invalidate();
            Ok(Resp::redirect(&format!(
                "/hosts/{}",
                crate::urlencode::encode(&h.name)
            )))
        }
        Err(e @ (StoreError::Invalid(_) | StoreError::Exists { .. })) => Ok(host_form(
            who,
            current.as_ref(),
            &shown,
            Some(&e.to_string()),
        )),
        Err(e) => Err(e.into()),
    }
}
