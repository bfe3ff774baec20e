//! The web page and JSON API that `hostler serve` serves (tiny_http, on loopback by default).
//!
//! - [`http`] request/response types and the form parser; [`router`] paths to routes;
//! - [`auth`] passwords, sessions, CSRF and API tokens;
//! - [`pages`] HTML (maud, so everything is escaped), [`actions`] the forms' POSTs,
//!   [`api`] JSON under `/api/`, [`metrics`] Prometheus text, [`dashboard`] the cached
//!   overview both the page and the API show.
//!
//! Rules every request follows: nothing but `/login`, `/healthz`, the assets (and `/metrics`
//! when configured public) answers without a login; every POST from a browser carries the
//! session's CSRF token and, if the browser says where it came from, comes from this origin;
//! bodies are capped at [`http::MAX_BODY`]; a handler that panics answers 500 and the server
//! goes on. Pages work without JavaScript; assets/app.js only refreshes them.

pub mod actions;
pub mod api;
pub mod auth;
pub mod dashboard;
pub mod hosts;
pub mod http;
pub mod metrics;
pub mod pages;
pub mod router;
pub mod scripts;
pub mod sqlxml;

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use tracing::{debug, warn};

use crate::script::Limits;
use crate::store::{Role, Store};
use auth::Sessions;
use http::{Req, Resp};
use router::Route;

/// How many threads answer requests.
const WORKERS: usize = 8;
/// The largest body read before the request is known to come from someone logged in (the
/// login form is a few hundred bytes): a stranger cannot hold a worker with a slow body.
const ANONYMOUS_BODY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on {addr}: {msg} (set [web] listen, or serve --listen)")]
    Listen { addr: String, msg: String },
}

/// Settings from `[web]`.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: String,
    pub public_metrics: bool,
    /// See `[web] allowed_hosts`.
    pub allowed_hosts: Vec<String>,
}

/// What every handler shares.
#[derive(Debug)]
pub struct Web {
    pub store: Arc<Store>,
    pub sessions: Sessions,
    pub opts: Options,
    pub limits: Limits,
    pub dashboard: dashboard::Cache,
    /// Requests answered, and those that panicked (for /metrics).
    pub requests: AtomicU64,
    pub panics: AtomicU64,
}

/// Who is asking, once authenticated.
#[derive(Debug, Clone)]
pub struct Who {
    pub user: String,
    pub role: Role,
    /// The session's CSRF token; None for an API token (not sent by a browser on its own).
    pub csrf: Option<String>,
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
pub struct Server {
    pub addr: SocketAddr,
    inner: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "web::Server({})", self.addr)
    }
}

impl Server {
    /// Stops accepting, and waits for the workers to finish their requests.
    pub fn stop(self) {
        self.inner.unblock();
        for _ in 1..self.workers.len() {
            self.inner.unblock();
        }
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// Binds and starts the workers.
pub fn start(web: Arc<Web>) -> Result<Server, WebError> {
    let listen_err = |e: &dyn std::fmt::Display| WebError::Listen {
        addr: web.opts.listen.clone(),
        msg: e.to_string(),
    };
    let listener = TcpListener::bind(&web.opts.listen).map_err(|e| listen_err(&e))?;
    // TCP_NODELAY on the listening socket, which Linux hands on to every accepted one:
    // tiny_http writes the headers and a large body in two writes, and with Nagle's algorithm
    // the client's delayed ACK held each response back by 40 ms.
    let socket = std::net::TcpStream::from(OwnedFd::from(listener));
    socket.set_nodelay(true).map_err(|e| listen_err(&e))?;
    // A send timeout, handed on the same way: a client that stops reading a response frees
    // its worker after 30 s. (Not a receive timeout: on the listener it would end accept().)
    socket
        .set_write_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(|e| listen_err(&e))?;
    let listener = TcpListener::from(OwnedFd::from(socket));
    let server = tiny_http::Server::from_listener(listener, None).map_err(|e| listen_err(&e))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| WebError::Listen {
            addr: web.opts.listen.clone(),
            msg: "not an IP address".into(),
        })?;
    let inner = Arc::new(server);
    let workers = (0..WORKERS)
        .map(|i| {
            let (inner, web) = (inner.clone(), web.clone());
            std::thread::Builder::new()
                .name(format!("web-{i}"))
                .spawn(move || {
                    while let Ok(rq) = inner.recv() {
                        serve_one(&web, rq);
                    }
                })
                .expect("spawning a web worker")
        })
        .collect();
    Ok(Server {
        addr,
        inner,
        workers,
    })
}

impl Web {
    pub fn new(store: Arc<Store>, opts: Options, limits: Limits) -> Web {
        Web {
            store,
            sessions: Sessions::default(),
            opts,
            limits,
            dashboard: dashboard::Cache::default(),
            requests: AtomicU64::new(0),
            panics: AtomicU64::new(0),
        }
    }

    /// Answers one request. Never panics outward: see [`serve_one`].
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
            Route::Asset(_, ct, body) => {
                return Resp::new(200, ct, body.to_vec())
                    .with("cache-control", "public, max-age=3600");
            }
            Route::Login => return actions::login(self, req),
            Route::Metrics if self.opts.public_metrics => return metrics::render(self),
            _ => {}
        }
        let who = self.identify(req);
        match route {
            Route::Api(a) => {
                let Some(who) = who else {
                    return Resp::json_error(
                        401,
                        "log in: send Authorization: Bearer TOKEN (see hostler user token)",
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
                let who = who.or_else(|| self.basic(req));
                match who {
                    Some(w) if !req.is_post() || check_origin(req).is_ok() => {
                        sqlxml::handle(self, &w, req)
                    }
                    Some(_) => Resp::text(403, "cross-origin POST refused\n"),
                    None => Resp::text(401, "log in: HTTP basic authentication, or a token\n")
                        .with(
                            "www-authenticate",
                            "Basic realm=\"hostler\", charset=\"UTF-8\"",
                        ),
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
        self.identify(req).is_some()
            || req
                .header("authorization")
                .is_some_and(|a| a.starts_with("Basic ") && self.basic(req).is_some())
    }

    /// A session cookie, or an API bearer token.
    fn identify(&self, req: &Req) -> Option<Who> {
        if let Some(token) = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
        {
            return match self.store.token_user(&auth::token_hash(token.trim())) {
                Ok(Some(u)) => Some(Who {
                    user: u.name,
                    role: u.role,
                    csrf: None,
                }),
                Ok(None) => None,
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
                })
            }
            _ => {
                self.sessions.end(id);
                None
            }
        }
    }

    /// HTTP basic authentication (only for /sqlxml: a browser would send cached basic
    /// credentials with a forged form, and pages rely on CSRF tokens instead).
    fn basic(&self, req: &Req) -> Option<Who> {
        use base64::Engine as _;
        let encoded = req.header("authorization")?.strip_prefix("Basic ")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (user, password) = text.split_once(':')?;
        match self.sessions.login(&self.store, user, password) {
            Ok(u) => Some(Who {
                user: u.name,
                role: u.role,
                csrf: None,
            }),
            Err(e) => {
                warn!(user, "sqlxml basic login refused: {e}");
                None
            }
        }
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

    fn healthz(&self) -> Resp {
        match self.store.user_count() {
            Ok(_) => Resp::text(200, "ok\n"),
            Err(e) => Resp::text(503, format!("database: {e}\n")),
        }
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

fn not_found(req: &Req) -> Resp {
    if req.path.starts_with("/api/") {
        Resp::json_error(404, "no such API path")
    } else {
        Resp::text(404, "not found\n")
    }
}

/// Reads a tiny_http request into a [`Req`], answers it, and contains any panic.
fn serve_one(web: &Web, mut rq: tiny_http::Request) {
    web.requests.fetch_add(1, Ordering::Relaxed);
    let resp = match read_request(web, &mut rq) {
        Ok(req) => {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| web.handle(&req))) {
                Ok(r) => r,
                Err(_) => {
                    web.panics.fetch_add(1, Ordering::Relaxed);
                    warn!(path = %req.path, "a web handler panicked");
                    Resp::text(500, "internal error\n")
                }
            }
        }
        Err(r) => r,
    };
    debug!(method = %rq.method(), url = %rq.url(), status = resp.status, "web");
    let mut headers = vec![header("content-type", resp.content_type)];
    headers.extend(SECURITY_HEADERS.iter().map(|(n, v)| header(n, v)));
    headers.extend(resp.headers.iter().map(|(n, v)| header(n, v)));
    let (status, len) = (resp.status, resp.len());
    let out = tiny_http::Response::new(
        tiny_http::StatusCode(status),
        headers,
        resp.reader(),
        Some(len),
        None,
    );
    let _ = rq.respond(out);
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

fn header(name: &str, value: &str) -> tiny_http::Header {
    // Our own names and values are printable ASCII; one that is not (a line end would split
    // the header) is replaced, not sent and not panicked on.
    let printable = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
    match (printable(name) && printable(value))
        .then(|| tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok())
        .flatten()
    {
        Some(h) => h,
        None => {
            warn!(
                header = name,
                "a response header with a bad value was dropped"
            );
            tiny_http::Header::from_bytes(&b"x-dropped-header"[..], &b"1"[..])
                .expect("a constant header")
        }
    }
}

fn read_request(web: &Web, rq: &mut tiny_http::Request) -> Result<Req, Resp> {
    let mut req = Req::new(rq.method().as_str(), rq.url())
        .map_err(|e| Resp::text(400, format!("bad query: {e}\n")))?;
    req.headers = rq
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.to_string(),
            )
        })
        .collect();
    if rq.body_length().is_some_and(|n| n > http::MAX_BODY) {
        return Err(Resp::text(413, "request body too large\n"));
    }
    let big = rq.body_length().is_none_or(|n| n > ANONYMOUS_BODY);
    if big
        && !matches!(
            rq.method(),
            tiny_http::Method::Get | tiny_http::Method::Head
        )
        && !web.known(&req)
    {
        return Err(Resp::text(401, "log in before sending a large body\n"));
    }
    let mut body = Vec::new();
    rq.as_reader()
        .take(http::MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Resp::text(400, format!("cannot read the body: {e}\n")))?;
    if body.len() > http::MAX_BODY {
        return Err(Resp::text(413, "request body too large\n"));
    }
    req.body = body;
    Ok(req)
}
