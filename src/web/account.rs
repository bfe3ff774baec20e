//! `/account/password`: a user sets a new password. The first admin must, before anything
//! else: its one-time password (shown once by `hostler serve`) opens only this page, and its
//! file is removed once the new password is stored.

use maud::html;

use super::auth::{self, COOKIE, SESSION_LIFETIME};
use super::http::{Req, Resp};
use super::layout::{csrf, form_page};
use super::{Web, Who};
use crate::store::Store;

/// The shortest password this page takes.
const MIN_LENGTH: usize = 12;

/// The `settings` key that says a user must set a new password before anything else.
pub fn required_key(name: &str) -> String {
    format!("password_change_required:{name}")
}

/// The `settings` key naming the first admin's one-time password file.
pub const FIRST_ADMIN_FILE: &str = "first_admin_password_file";

/// Whether `name` must set a new password first (an unreadable setting counts as yes).
pub fn must_change(store: &Store, name: &str) -> bool {
    store
        .setting(&required_key(name))
        .map_or(true, |v| v.is_some_and(|v| v == "1"))
}

/// After a new password is stored (here, or by `hostler user add --replace`): nothing more
/// is required, and the first admin's one-time password file goes.
pub fn password_changed(store: &Store, name: &str) {
    if let Err(e) = store.set_setting(&required_key(name), "") {
        tracing::warn!("cannot clear the password-change flag of {name}: {e}");
    }
    if name != "admin" {
        return;
    }
    if let Ok(Some(path)) = store.setting(FIRST_ADMIN_FILE)
        && !path.is_empty()
    {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!("removed the first admin's one-time password file {path}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove {path}: {e}"),
        }
        let _ = store.set_setting(FIRST_ADMIN_FILE, "");
    }
}

fn form(who: &Who, err: Option<&str>) -> Resp {
    let body = html! {
        @if who.must_change {
            p { "This is a one-time password: set your own before going on." }
        }
        @if let Some(e) = err { p.error role="alert" { (e) } }
        form method="post" action="/account/password" {
            (csrf(who))
            label { "New password " input type="password" name="password" autocomplete="new-password" minlength=(MIN_LENGTH) required autofocus; }
            label { "Again " input type="password" name="again" autocomplete="new-password" minlength=(MIN_LENGTH) required; }
            button type="submit" { "Set password" }
        }
    };
    form_page(who, "Set a new password", body, err)
}

pub fn handle(web: &Web, who: &Who, req: &Req) -> Resp {
    if !req.is_post() {
        return form(who, None);
    }
    let f = match req.form() {
        Ok(f) => f,
        Err(e) => return form(who, Some(&e.to_string())),
    };
    let (Some(pw), Some(again)) = (f.raw("password"), f.raw("again")) else {
        return form(who, Some("give the new password twice"));
    };
    if pw != again {
        return form(who, Some("the two passwords differ"));
    }
    if pw.chars().count() < MIN_LENGTH {
        return form(who, Some(&format!("use at least {MIN_LENGTH} characters")));
    }
    let hash = match auth::hash_password(pw) {
        Ok(h) => h,
        Err(e @ crate::password::PasswordError::Busy) => {
            return Resp::text(503, format!("{e}\n")).with("retry-after", "1");
        }
        Err(e) => return Resp::text(500, format!("{e}\n")),
    };
    // API tokens are kept: the person changing it is logged in with the old one.
    if let Err(e) = web.store.set_user(&who.user, &hash, who.role, true, true) {
        return form(who, Some(&e.to_string()));
    }
    password_changed(&web.store, &who.user);
    tracing::info!(user = %who.user, "password changed on the web page");
    // The old session ended with the old password: a new one, on this browser.
    if let Some(id) = req.cookie(COOKIE) {
        web.sessions.end(id);
    }
    let user = match web.store.find_user(&who.user) {
        Ok(Some(u)) => u,
        _ => return Resp::redirect("/login"),
    };
    match web.sessions.start(&user, false) {
        Ok(id) => Resp::redirect("/").with(
            "set-cookie",
            format!(
                "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                SESSION_LIFETIME.as_secs()
            ),
        ),
        Err(e) => Resp::text(500, format!("{e}\n")),
    }
}
