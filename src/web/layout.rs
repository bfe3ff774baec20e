//! The frame every page shares (maud: every value is escaped): the head, the navigation, the
//! logout form, error pages, and the small pieces pages use (status badges, "5m ago", the
//! CSRF field).

use maud::{DOCTYPE, Markup, html};

use super::http::{Req, Resp};
use super::{WebError, Who};
use crate::store::{Role, Status};

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

/// A check state's badge class, the same colours as a run's status.
pub fn state_class(s: crate::store::CheckState) -> &'static str {
    use crate::store::CheckState as C;
    match s {
        C::Ok => "st ok",
        C::Warning => "st warning",
        C::Critical => "st critical",
        C::Unknown => "st unknown",
    }
}

pub fn status(s: Status) -> Markup {
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
    ("/downtimes", "Downtimes"),
    ("/dependencies", "Dependencies"),
    ("/notifications", "Notifications"),
];

/// A page's `<head>`; the script only where a page may refresh itself.
pub fn head(title: &str, script: bool) -> Markup {
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
) -> Result<super::http::Form, WebError> {
    if !who.may(role) {
        return Err(WebError::Forbidden(refusal.into()));
    }
    req.form().map_err(|e| WebError::Bad(e.to_string()))
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

/// A handler's error as a page.
pub fn error_page(who: &Who, e: &WebError) -> Resp {
    error(who, e.status(), &e.to_string())
}
