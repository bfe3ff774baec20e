//! `/login` and `/logout`: the login form (with its own CSRF cookie, as there is no session
//! yet), the check of a name and password, and the session cookie.

use maud::{DOCTYPE, Markup, html};

use super::Web;
use super::auth::{self, COOKIE, LOGIN_COOKIE, SESSION_LIFETIME};
use super::http::{Req, Resp};
use super::layout::head;

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

/// The login form (no session yet: its CSRF token is the login cookie's).
fn form(token: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in", false))
            body.login {
                main {
                    h1 { "hostler" }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf_token" value=(token);
                        input type="hidden" name="next" value=(next);
                        label { "User " input type="text" name="username" autocomplete="username" required autofocus; }
                        label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

fn login_page(status: u16, next: &str, err: Option<&str>) -> Resp {
    let token = match auth::random_hex(32) {
        Ok(t) => t,
        Err(e) => return Resp::text(500, format!("{e}\n")),
    };
    let mut r = Resp::html(status, form(&token, next, err).into_string())
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
            let page = login_page(e.status(), &next, Some(&e.to_string()));
            return match e.retry_after() {
                Some(s) => page.with("retry-after", s.to_string()),
                None => page,
            };
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
