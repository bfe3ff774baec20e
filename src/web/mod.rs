//! The web page and JSON API that `hostler serve` serves (on loopback by default).
//!
//! - [`server`] connections, limits and deadlines; [`http`] request/response types and the
//!   form parser; [`router`] paths to routes;
//! - [`auth`] passwords, sessions, CSRF and API tokens;
//! - one file per resource, each with its GET and POST handlers (HTML through maud, so
//!   everything is escaped): [`dashboard`] (also the cached overview the API shows),
//!   [`hosts`], [`scripts`], [`queue`] (and scheduling), [`runs`] (and notifications),
//!   [`login`], [`account`]; [`pages`] dispatches page routes to them and [`layout`] is the
//!   frame they share;
//! - [`api`] JSON under `/api/`, [`metrics`] Prometheus text, [`sqlxml_endpoint`] `/sqlxml`;
//! - [`WebError`]: every handler's error, and the one place a failure gets its HTTP status.
//!
//! Rules every request follows: nothing but `/login`, `/healthz`, the assets (and `/metrics`
//! when configured public) answers without a login; every POST from a browser carries the
//! session's CSRF token and, if the browser says where it came from, comes from this origin;
//! bodies are capped at [`http::MAX_BODY`]; a handler that panics answers 500 and the server
//! goes on. Pages work without JavaScript; assets/app.js only refreshes them.

pub mod account;
pub mod api;
pub mod auth;
pub mod chart;
pub mod checks;
mod conns;
pub mod dashboard;
pub mod depends;
pub mod downtimes;
mod error;
pub mod head;
pub mod hosts;
pub mod http;
pub mod layout;
pub mod login;
pub mod metrics;
pub mod overview;
pub mod pages;
pub mod ping;
pub mod queue;
pub mod router;
pub mod runs;
pub mod scripts;
pub mod server;
pub mod sqlxml_endpoint;

pub use error::{WebError, WebResult};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

use crate::config::Sandbox;
use crate::store::{Role, Store};
use auth::Sessions;
use http::{Req, Resp};
use router::Route;

/// The largest body read before the request is known to come from someone logged in (the
/// login form is a few hundred bytes): a stranger cannot hold a worker with a slow body.
const ANONYMOUS_BODY: usize = 4096;

/// The page cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {msg} (set [web] listen, or serve --listen)")]
    Listen { addr: String, msg: String },
}

/// Settings from `[web]`.
#[derive(Debug, Clone)]
pub struct WebOptions {
    pub listen: String,
    pub public_metrics: bool,
    /// See `[web] allowed_hosts`.
    pub allowed_hosts: Vec<String>,
    /// See `[web] max_connections` and `max_connections_per_client`.
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

/// What every handler shares.
#[derive(Debug)]
pub struct Web {
    pub store: Arc<Store>,
    pub sessions: Sessions,
    pub opts: WebOptions,
    pub limits: Sandbox,
    pub dashboard: overview::Cache,
    /// Requests answered, and those that panicked (for /metrics).
    pub requests: AtomicU64,
    pub panics: AtomicU64,
    /// monitord's heartbeat, shared with it by `hostler serve`.
    pub health: Arc<crate::health::Health>,
    /// Set while a /sqlxml request's queries run.
    pub sqlxml_busy: Arc<std::sync::atomic::AtomicBool>,
    /// How far back raw perfdata points reach (`[history] keep_points_days`): `/api/perfdata`
    /// and the charts read trends beyond it.
    pub keep_points_ms: i64,
    /// The database's size, read at most once a minute (row counts of big tables cost).
    size: std::sync::Mutex<Option<(std::time::Instant, Arc<crate::store::size::Size>)>>,
    /// Pings per token in the current second.
    pings: ping::Throttle,
    /// Records pings many to a transaction.
    ping_writer: ping::Writer,
    /// Ping tokens seen lately.
    ping_tokens: ping::Tokens,
}

/// Who is asking, once authenticated.
#[derive(Debug, Clone)]
pub struct Who {
    pub user: String,
    pub role: Role,
    /// The session's CSRF token; None for an API token (not sent by a browser on its own).
    pub csrf: Option<String>,
    /// Logged in with a one-time password: nothing but setting a new one is allowed.
    pub must_change: bool,
}

impl Who {
    /// Whether the user's role allows at least `need`.
    pub fn may(&self, need: Role) -> bool {
        rank(self.role) >= rank(need)
    }
}

fn rank(r: Role) -> u8 {
    match r {
        Role::Viewer => 0,
        Role::Operator => 1,
        Role::Admin => 2,
    }
}

/// A running server; dropping it does not stop it, [`Server::stop`] does.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    listener: server::Listener,
}

impl Server {
    /// Stops accepting, and waits for the requests being answered to finish.
    pub fn stop(self) {
        self.listener.stop();
    }
}

/// Binds and starts accepting.
pub fn start(web: Arc<Web>) -> Result<Server, StartError> {
    let addr = web.opts.listen.clone();
    let listen_err = |e: &dyn std::fmt::Display| StartError::Listen {
        addr: addr.clone(),
        msg: e.to_string(),
    };
    let listener = server::bind(&addr).map_err(|e| listen_err(&e))?;
    let limits = server::Limits {
        connections: descriptors_allow(web.opts.max_connections.max(1)),
        per_client: web.opts.max_connections_per_client.max(1),
        ..server::Limits::default()
    };
    let listener = server::start(listener, limits, web).map_err(|e| listen_err(&e))?;
    Ok(Server {
        addr: listener.addr,
        listener,
    })
}

impl Web {
    /// Answers, counted, and contains any panic.
    fn contained(&self, req: &Req) -> Resp {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(req))) {
            Ok(r) => r,
            Err(_) => {
                self.panics.fetch_add(1, Ordering::Relaxed);
                warn!(path = %req.path, "a web handler panicked");
                Resp::text(500, "internal error\n")
            }
        }
    }
}

/// Descriptors kept for everything but web connections: the database, scripts' sessions,
/// plugins' pipes.
const KEPT_DESCRIPTORS: u64 = 512;

/// `want` connections, cut to what the open-files limit leaves (with a warning when cut): at
/// the limit a connection is refused with a 503, never left to fail `accept()`.
fn descriptors_allow(want: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return want;
    };
    let room = usize::try_from(soft.saturating_sub(KEPT_DESCRIPTORS))
        .unwrap_or(usize::MAX)
        .max(16);
    if want > room {
        warn!(
            max_connections = want,
            open_files = soft,
            "web: max_connections is cut to {room}, what the open-files limit leaves"
        );
        return room;
    }
    want
}

impl server::Service for Web {
    /// A body larger than a login form is read only for someone logged in, whatever the
    /// method: a stranger cannot make the server read a megabyte.
    fn admit(&self, req: &Req, content_length: usize) -> Result<(), Resp> {
        // A ping's body is its run's output: up to 100 KB, read for anyone with the path.
        if req.path.starts_with("/ping/") {
            if content_length > crate::store::heartbeats::MAX_BODY {
                return Err(Resp::text(413, "a ping's body takes at most 100 KB\n"));
            }
            return Ok(());
        }
        if content_length > ANONYMOUS_BODY && !self.known(req) {
            return Err(Resp::text(401, "log in before sending a large body\n"));
        }
        Ok(())
    }

    /// Answers, and contains any panic.
    fn answer(&self, req: Req) -> Resp {
        self.contained(&req)
    }

    /// `/healthz` and the static assets read only memory: answered on the web thread, so a
    /// burst of requests that wait on the database never delays them.
    fn answer_now(&self, req: &Req) -> Option<Resp> {
        match router::route(&req.path) {
            Some(Route::Healthz | Route::Asset(..)) => Some(self.contained(req)),
            _ => None,
        }
    }

    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        SECURITY_HEADERS
    }
}

impl Web {
    pub fn new(store: Arc<Store>, opts: WebOptions, limits: Sandbox) -> Web {
        Web {
            store: store.clone(),
            sessions: Sessions::default(),
            opts,
            limits,
            dashboard: overview::Cache::default(),
            requests: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            health: Arc::default(),
            sqlxml_busy: Arc::default(),
            size: std::sync::Mutex::default(),
            keep_points_ms: crate::store::history::Retention::default().keep_points_ms,
            pings: ping::Throttle::default(),
            ping_writer: ping::Writer::start(store.clone()),
            ping_tokens: ping::Tokens::default(),
        }
    }

    /// The database's size, as read within the last minute.
    pub fn size(&self) -> Result<Arc<crate::store::size::Size>, crate::store::StoreError> {
        let mut cached = self.size.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, size)) = cached.as_ref()
            && at.elapsed() < std::time::Duration::from_secs(60)
        {
            return Ok(size.clone());
        }
        let size = Arc::new(self.store.size()?);
        *cached = Some((std::time::Instant::now(), size.clone()));
        Ok(size)
    }

    /// Answers one request (the server calls it through `answer`, which contains a panic).
    pub fn handle(&self, req: &Req) -> Resp {
        if !self.host_allowed(req) {
            return Resp::text(
                421,
                "this server does not answer to that host name; add it to [web] allowed_hosts\n",
            );
        }
        let Some(route) = router::route(&req.path) else {
            return not_found(req);
        };
        match &route {
            Route::Healthz => return self.healthz(),
            Route::Ping(token, ping) => return ping::answer(self, req, token, *ping),
            Route::Asset(_, ct, body) => {
                return Resp::new(200, ct, body.to_vec())
                    .with("cache-control", "public, max-age=3600");
            }
            Route::Login => return login::login(self, req),
            Route::Metrics if self.opts.public_metrics => return metrics::render(self),
            _ => {}
        }
        let who = self.identify(req);
        // A one-time password opens the page that replaces it, and nothing else.
        if let Some(w) = &who
            && w.must_change
            && !matches!(route, Route::Password | Route::Logout)
        {
            return match route {
                Route::Api(_) => {
                    Resp::json_error(403, "set a new password first: /account/password")
                }
                _ if req.method == "GET" => Resp::redirect("/account/password"),
                _ => Resp::text(403, "set a new password first: /account/password\n"),
            };
        }
        match route {
            Route::Api(a) => {
                let Some(who) = who else {
                    return Resp::json_error(
                        401,
                        "log in: send Authorization: Bearer TOKEN (see hostler user token add)",
                    );
                };
                if req.is_post()
                    && let Some(csrf) = &who.csrf
                    && !req
                        .header("x-csrf-token")
                        .is_some_and(|t| auth::same(t, csrf))
                {
                    return Resp::json_error(403, "missing or wrong X-CSRF-Token header");
                }
                api::handle(self, &who, a, req)
            }
            Route::Sqlxml => {
                // SQLXML clients log in as they did to IIS: HTTP basic authentication.
                let who = match who {
                    Some(w) => Some(Ok(w)),
                    None => self.basic(req),
                };
                match who {
                    Some(Ok(w)) if w.must_change => Resp::text(
                        403,
                        "set a new password first: log in on the web page (/account/password)\n",
                    ),
                    Some(Ok(w)) if !req.is_post() || check_origin(req).is_ok() => {
                        sqlxml_endpoint::handle(self, &w, req)
                    }
                    Some(Ok(_)) => Resp::text(403, "cross-origin POST refused\n"),
                    Some(Err(e)) if e.retry_after().is_some() => login_refused(&e),
                    Some(Err(_)) | None => {
                        Resp::text(401, "log in: HTTP basic authentication, or a token\n").with(
                            "www-authenticate",
                            "Basic realm=\"hostler\", charset=\"UTF-8\"",
                        )
                    }
                }
            }
            Route::Metrics => match who {
                Some(_) => metrics::render(self),
                None => Resp::text(401, "log in, or set [web] public_metrics = true\n"),
            },
            page => {
                let Some(who) = who else {
                    if req.method == "GET" {
                        let next = http::encode(&req.path);
                        return Resp::redirect(&format!("/login?next={next}"));
                    }
                    return Resp::text(403, "log in first\n");
                };
                if req.is_post()
                    && let Err(r) = self.check_post(req, &who)
                {
                    return r;
                }
                pages::handle(self, &who, page, req)
            }
        }
    }

    /// The `Host` a request names is one this server answers to: on a loopback listener a
    /// loopback name or address, or one of `[web] allowed_hosts`; elsewhere anything, unless
    /// the list is given. (A page on another site whose name was rebound to 127.0.0.1 still
    /// sends its own name.)
    fn host_allowed(&self, req: &Req) -> bool {
        let Some(host) = req.header("host") else {
            return true;
        };
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        let listed = self
            .opts
            .allowed_hosts
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(name));
        let loopback_name = name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if listed || loopback_name {
            return true;
        }
        let listen_host = self.opts.listen.rsplit_once(':').map_or("", |(h, _)| h);
        let listen_host = listen_host.trim_start_matches('[').trim_end_matches(']');
        let on_loopback = listen_host.eq_ignore_ascii_case("localhost")
            || listen_host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        !on_loopback && self.opts.allowed_hosts.is_empty()
    }

    /// Whether a request comes from a session, a valid token or basic credentials (checked
    /// from its headers alone, before its body is read).
    fn known(&self, req: &Req) -> bool {
        self.identify(req).is_some() || self.basic(req).is_some_and(|r| r.is_ok())
    }

    /// A session cookie, or an API bearer token.
    fn identify(&self, req: &Req) -> Option<Who> {
        if let Some(token) = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
        {
            // Token guesses share the login brake, keyed by the token's first characters
            // and the address: a stranger's wrong token never brakes a right one.
            let token = token.trim();
            let key = auth::token_key(token);
            if self
                .sessions
                .throttle
                .wait(&key, req.peer, false, || 0)
                .is_err()
            {
                return None;
            }
            return match self.store.token_user(&auth::token_hash(token)) {
                Ok(Some(u)) => Some(Who {
                    user: u.name,
                    role: u.role,
                    csrf: None,
                    must_change: false,
                }),
                Ok(None) => {
                    self.sessions.throttle.failed(&key, req.peer, false);
                    None
                }
                Err(e) => {
                    warn!("checking an API token: {e}");
                    None
                }
            };
        }
        let id = req.cookie(auth::COOKIE)?;
        let s = self.sessions.get(id)?;
        // The user as the database has it now: removed, given another role or a new password
        // (`hostler user`, from another process), the session ends.
        let current = match self.store.find_user(&s.user) {
            Ok(u) => u,
            Err(e) => {
                warn!("checking a session's user: {e}");
                return None;
            }
        };
        match current {
            Some(u)
                if u.role == s.role && auth::same(&auth::hash_key(&u.password_hash), &s.key) =>
            {
                Some(Who {
                    user: s.user,
                    role: s.role,
                    csrf: Some(s.csrf),
                    must_change: s.must_change,
                })
            }
            _ => {
                self.sessions.end(id);
                None
            }
        }
    }

    /// HTTP basic authentication (only for /sqlxml: a browser would send cached basic
    /// credentials with a forged form, and pages rely on CSRF tokens instead). None when the
    /// request carries no basic credentials.
    fn basic(&self, req: &Req) -> Option<Result<Who, auth::LoginError>> {
        use base64::Engine as _;
        let header = req.header("authorization")?;
        let encoded = header.strip_prefix("Basic ")?;
        let Some((user, password)) = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| {
                t.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
        else {
            return Some(Err(auth::LoginError::Wrong));
        };
        Some(
            match self
                .sessions
                .basic_login(&self.store, header, &user, &password, req.peer)
            {
                Ok(u) => Ok(Who {
                    must_change: account::must_change(&self.store, &u.name),
                    user: u.name,
                    role: u.role,
                    csrf: None,
                }),
                Err(e) => {
                    warn!(user, "sqlxml basic login refused: {e}");
                    Err(e)
                }
            },
        )
    }

    /// A browser POST: same origin (when the browser says), and the session's CSRF token.
    fn check_post(&self, req: &Req, who: &Who) -> Result<(), Resp> {
        check_origin(req).map_err(|e| Resp::text(403, format!("{e}\n")))?;
        let Some(csrf) = &who.csrf else {
            return Ok(());
        };
        let form = req.form().map_err(|e| Resp::text(400, format!("{e}\n")))?;
        match form.get("csrf_token") {
            Some(t) if auth::same(t, csrf) => Ok(()),
            _ => Err(Resp::text(
                403,
                "missing or wrong csrf_token: reload the page and try again\n",
            )),
        }
    }

    /// From [`crate::health`] alone: never waits for the database or another request.
    fn healthz(&self) -> Resp {
        let resp = match self.health.problem() {
            None => Resp::text(200, "ok\n"),
            Some(p) => Resp::text(503, format!("degraded: {p}\n")),
        };
        resp.with("cache-control", "no-store")
    }
}

/// Refuses a POST whose `Origin` (or, failing that, `Sec-Fetch-Site`) says it came from
/// another site. Behind a TLS proxy the origin may name the proxy's host, which the proxy
/// passes as `Host` or `X-Forwarded-Host` (a page on another site cannot set either).
pub fn check_origin(req: &Req) -> Result<(), &'static str> {
    if let Some(origin) = req.header("origin")
        && origin != "null"
    {
        let bare = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("");
        let ours = [req.header("host"), req.header("x-forwarded-host")]
            .into_iter()
            .flatten()
            .any(|h| !bare.is_empty() && h.trim().eq_ignore_ascii_case(bare));
        if !ours {
            return Err("cross-origin POST refused");
        }
    }
    if req
        .header("sec-fetch-site")
        .is_some_and(|s| s == "cross-site")
    {
        return Err("cross-site POST refused");
    }
    Ok(())
}

/// A login refused for now (a brake, every hashing slot busy, the store away): its status
/// and a `Retry-After`.
pub fn login_refused(e: &auth::LoginError) -> Resp {
    let r = Resp::text(e.status(), format!("{e}\n"));
    match e.retry_after() {
        Some(s) => r.with("retry-after", s.to_string()),
        None => r,
    }
}

fn not_found(req: &Req) -> Resp {
    if req.path.starts_with("/api/") {
        Resp::json_error(404, "no such API path")
    } else {
        Resp::text(404, "not found\n")
    }
}

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
];
