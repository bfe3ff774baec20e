//! Remote sessions from scripts: `connect(host[, method])`, `credentials(host)`,
//! `http(url[, opts])`, `http_get(url[, opts])`, and `s.exec(cmd)` on an SSH session.
//!
//! `connect` takes a pooled session of the host when one passes its health check (`s.reused`
//! is then true: it is logged in and at its prompt), else opens a new one: telnet (at the
//! login prompt; loginlib does the dialogue), SSH (logged in by the protocol, host key checked
//! against the pins in the database first), HTTP (a GET of the host's root), or a local shell.
//! `credentials` registers the password with the run's masker before a script can see it,
//! so it is masked in output, messages, transcripts and notifications.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::{HostRef, RunContext, ScriptSecret, SessionRef, current, rt, secs, session_err};
use crate::config::TrustNew;
use crate::session::ssh::{self, Auth, HostKey, Target};
use crate::session::{LocalProcess, Pool, Session, SessionError, Transport, http, telnet};
use crate::store::{Host, Method, Secret, Store};

/// What remote sessions of one process share: the pool and the connection settings.
#[derive(Debug)]
pub struct Remote {
    pub pool: Pool,
    pub trust_new: TrustNew,
    pub connect_timeout: Duration,
    pub health_timeout: Duration,
}

impl Default for Remote {
    fn default() -> Self {
        Remote {
            pool: Pool::new(Duration::ZERO, Duration::ZERO),
            trust_new: TrustNew::Accept,
            connect_timeout: Duration::from_secs(10),
            health_timeout: Duration::from_secs(5),
        }
    }
}

/// The host key check: a pinned key must match; a first key follows `[ssh] trust_new`.
pub fn verify_host_key(
    store: &Store,
    host: &str,
    trust_new: TrustNew,
    offered: &HostKey,
    peer: &str,
) -> Result<(), SessionError> {
    let err = |msg: String| SessionError::HostKey {
        peer: peer.to_string(),
        msg,
    };
    let db = |e: crate::store::StoreError| err(format!("cannot read the pinned host keys: {e}"));
    let pinned = store.host_keys(host).map_err(db)?;
    if pinned
        .iter()
        .any(|p| p.key_type == offered.key_type && p.key_data == offered.key_data)
    {
        return Ok(());
    }
    if let Some(p) = pinned.first() {
        return Err(err(format!(
            "HOST KEY CHANGED for {host}: pinned {} {}, offered {} {}; if the change is \
             deliberate, run `hostler host trust {host}`",
            p.key_type, p.fingerprint, offered.key_type, offered.fingerprint
        )));
    }
    match trust_new {
        TrustNew::Reject => Err(err(format!(
            "host key {} {} of {host} is not pinned and [ssh] trust_new is \"reject\"; check \
             it and run `hostler host trust {host}`",
            offered.key_type, offered.fingerprint
        ))),
        TrustNew::Accept => {
            let pinned = store.pin_host_key(
                host,
                &offered.key_type,
                &offered.key_data,
                &offered.fingerprint,
                false,
            );
            if let Err(e) = pinned {
                // Another run may have pinned it at the same moment: check again.
                return match store
                    .host_keys(host)
                    .map_err(db)?
                    .iter()
                    .any(|p| p.key_type == offered.key_type && p.key_data == offered.key_data)
                {
                    true => Ok(()),
                    false => Err(err(format!("cannot pin the host key: {e}"))),
                };
            }
            tracing::info!(host, key = %offered.fingerprint, "pinned a new SSH host key");
            Ok(())
        }
    }
}

fn port(h: &Host, method: Method) -> u16 {
    h.port.or(method.default_port()).unwrap_or(0)
}

/// Opens a new session to `h` by `method` on `port`, logging in with `secret` where the
/// protocol does (SSH); an HTTP session comes with its response head.
fn open(
    ctx: &RunContext,
    h: &Host,
    method: Method,
    port: u16,
    secret: Option<&Secret>,
) -> Result<(Box<dyn Transport>, Option<http::ResponseHead>), SessionError> {
    let remote = &ctx.remote;
    // Never longer than what is left of the run: six connects cannot take six timeouts.
    let timeout = ctx.guard.bound(remote.connect_timeout)?;
    let peer = format!("{method} {}:{port}", h.address);
    match method {
        Method::Local => {
            let sh = ctx.allow.check("sh")?;
            let p =
                LocalProcess::spawn_command(ctx.allow.command(&sh, &["-i".to_string()])?, true)?;
            Ok((Box::new(p), None))
        }
        // Connects (the name's lookup included) wait on a thread of their own, so that a
        // cancellation or the run's end interrupts them at once.
        Method::Telnet => {
            let address = h.address.clone();
            let t = ctx
                .guard
                .blocking(move || telnet::Telnet::connect(&address, port, timeout))?
                .map_err(|e| SessionError::Io {
                    peer: peer.clone(),
                    msg: e.to_string(),
                })?;
            Ok((Box::new(t), None))
        }
        // The TCP connect, the handshake and the login wait on a thread of their own too.
        Method::Ssh => {
            let user = h.username.clone().ok_or_else(|| SessionError::Auth {
                peer: peer.clone(),
                msg: format!("host {} has no user (hostler host add --user)", h.name),
            })?;
            let (address, key_path, secret) =
                (h.address.clone(), h.key_path.clone(), secret.cloned());
            let (store, name, trust_new) = (ctx.store.clone(), h.name.clone(), remote.trust_new);
            let ssh = ctx.guard.blocking(move || {
                let auth = match (key_path.as_deref().map(std::path::Path::new), &secret) {
                    (Some(path), s) => Auth::Key {
                        path,
                        passphrase: s.as_ref().map(Secret::expose),
                    },
                    (None, Some(s)) => Auth::Password(s.expose()),
                    (None, None) => Auth::Agent,
                };
                let target = Target {
                    address: &address,
                    port,
                    user: &user,
                    auth,
                    timeout,
                };
                let mut verify = |k: &HostKey| verify_host_key(&store, &name, trust_new, k, &peer);
                ssh::connect(&target, &mut verify)
            })??;
            Ok((Box::new(ssh), None))
        }
        Method::Http => {
            let req = http::Request {
                method: "GET".into(),
                url: format!("http://{}:{port}/", h.address),
                timeout,
                ..http::Request::default()
            };
            let (head, body) = http::request(&req, &ctx.guard)?;
            Ok((Box::new(body), Some(head)))
        }
    }
}

/// `connect(host[, method])`.
/// Everything that decides where and as whom a session logs in: a host re-added with a new
/// address or user never gets the old connection.
fn target(h: &Host, method: Option<&str>) -> Result<(Method, String), Box<EvalAltResult>> {
    let method = match method {
        Some(m) => m.parse::<Method>().map_err(rt)?,
        None => h.method,
    };
    let port = port(h, method);
    let key = format!(
        "{}/{}/{}@{}:{port}",
        h.name,
        method.as_str(),
        h.username.as_deref().unwrap_or(""),
        h.address,
    );
    Ok((method, key))
}

/// `run_session(host, method)`: the session this run already logged in to the host by that
/// method, at its prompt (loginlib takes it instead of logging in again), else `()`.
fn run_session(
    ctx: &RunContext,
    host: &HostRef,
    method: &str,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let (_, key) = target(&host.0, Some(method))?;
    Ok(ctx
        .session_at_prompt(&key)
        .map_or(Dynamic::UNIT, Dynamic::from))
}

fn connect(
    ctx: &Arc<RunContext>,
    host: &HostRef,
    method: Option<&str>,
) -> Result<SessionRef, Box<EvalAltResult>> {
    let h = &host.0;
    let (method, key) = target(h, method)?;
    let port = port(h, method);
    // Read once: whatever this session is, the host's secret is masked in all the run
    // records; a new SSH session logs in with it.
    let secret = ctx
        .store
        .host_secret(&h.name)
        .map_err(|e| rt(e.to_string()))?;
    if let Some(secret) = &secret {
        ctx.add_secret(secret.expose());
    }
    ctx.admit(method == Method::Local)?;
    let poolable = h.keep_session && ctx.remote.pool.enabled() && method != Method::Http;
    if poolable {
        while let Some(mut s) = ctx.remote.pool.checkout(&key) {
            s.rebind(
                ctx.session_id(),
                ctx.guard.clone(),
                Some(ctx.transcript.clone()),
            );
            if s.health_check(ctx.remote.health_timeout) {
                s.reused = true;
                s.target = Some(key.clone());
                s.pool_key = Some(key);
                return Ok(ctx.track_new(s));
            }
            tracing::debug!(host = %h.name, "a pooled session failed its health check");
        }
    }
    let (transport, head) = open(ctx, h, method, port, secret.as_ref()).map_err(session_err)?;
    let mut s = Session::new(
        ctx.session_id(),
        transport,
        ctx.guard.clone(),
        Some(ctx.transcript.clone()),
    );
    s.head = head;
    s.target = Some(key.clone());
    if poolable {
        s.pool_key = Some(key);
    }
    Ok(ctx.track_new(s))
}

/// `credentials(host)`: `#{user, password, key_path}`, the password an opaque [`ScriptSecret`]
/// (and registered with the run's masker). Only the run's own host, unless the config says
/// otherwise.
fn credentials(ctx: &RunContext, host: &HostRef) -> Result<Map, Box<EvalAltResult>> {
    let h = &host.0;
    let own = ctx.host.as_ref().is_some_and(|r| r.name == h.name);
    if !own && !ctx.any_credentials {
        return Err(rt(format!(
            "credentials({}): a run gets only its own host's credentials ({}); connect() logs in to others, or set [sandbox] credentials_of_other_hosts = true",
            h.name,
            ctx.host
                .as_ref()
                .map_or("this run has no host", |r| r.name.as_str())
        )));
    }
    let secret = ctx
        .store
        .host_secret(&h.name)
        .map_err(|e| rt(e.to_string()))?;
    let mut m = Map::new();
    m.insert(
        "user".into(),
        h.username.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert(
        "key_path".into(),
        h.key_path.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    let pw = match secret {
        Some(s) => {
            ctx.add_secret(s.expose());
            Dynamic::from(ScriptSecret::new(s.expose(), &h.address))
        }
        None => Dynamic::UNIT,
    };
    m.insert("password".into(), pw);
    Ok(m)
}

/// `http`'s `basic_auth: #{user, password}` (what `credentials(host)` returns): the header
/// built here, from the opaque secret, and masked in the run's records.
fn basic_auth(
    ctx: &RunContext,
    url: &str,
    v: &Dynamic,
) -> Result<(String, String), Box<EvalAltResult>> {
    use base64::Engine as _;
    let map = v.read_lock::<Map>().ok_or_else(|| {
        rt("http: basic_auth must be #{user, password}, as credentials(host) gives")
    })?;
    let user = map
        .get("user")
        .filter(|u| u.is_string())
        .map(|u| u.to_string())
        .ok_or_else(|| rt("http: basic_auth has no user"))?;
    let password = map
        .get("password")
        .and_then(|p| p.read_lock::<ScriptSecret>().map(|s| s.clone()))
        .ok_or_else(|| rt("http: basic_auth's password must be a secret from credentials(host)"))?;
    // A host's password goes to that host only, never to an address a script chose.
    let target = url.parse::<ureq::http::Uri>().ok().and_then(|u| {
        u.host()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
    });
    let own = password
        .address()
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    if own.is_empty() || target.as_deref() != Some(own.as_str()) {
        return Err(rt(format!(
            "http: basic_auth sends a host's password only to that host's address ({}), not to {url}",
            password.address()
        )));
    }
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
    ctx.add_secret(&encoded);
    Ok(("authorization".into(), format!("Basic {encoded}")))
}

fn http_session(
    ctx: &Arc<RunContext>,
    url: &str,
    opts: &Map,
) -> Result<SessionRef, Box<EvalAltResult>> {
    http_open(ctx, url, opts)?.map_err(session_err)
}

/// An HTTP request as a session: the outer error is the script's (a bad option, the sandbox),
/// the inner one the network's (refused, unreachable, timed out, a bad certificate).
fn http_open(
    ctx: &Arc<RunContext>,
    url: &str,
    opts: &Map,
) -> Result<Result<SessionRef, SessionError>, Box<EvalAltResult>> {
    ctx.admit(false)?;
    let mut req = http::Request {
        method: "GET".into(),
        url: url.to_string(),
        timeout: ctx.remote.connect_timeout.max(Duration::from_secs(30)),
        ..http::Request::default()
    };
    let mut auth = None;
    for (k, v) in opts {
        match k.as_str() {
            "method" => req.method = v.to_string().to_uppercase(),
            "body" => req.body = Some(v.to_string().into_bytes()),
            "timeout" => req.timeout = secs(v)?,
            "basic_auth" => auth = Some(basic_auth(ctx, url, v)?),
            "headers" => {
                let map = v
                    .read_lock::<Map>()
                    .ok_or_else(|| rt("http: headers must be a map"))?;
                req.headers = map
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            }
            other => {
                return Err(rt(format!(
                    "http: unknown option {other:?} (method, headers, body, timeout, basic_auth)"
                )));
            }
        }
    }
    if let Some(a) = auth {
        req.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        req.headers.push(a);
    }
    if let Some(d) = ctx.guard.deadline {
        req.timeout = req.timeout.min(d.saturating_duration_since(Instant::now()));
    }
    // The connect and the answer's head wait on this thread in slices: a cancellation or
    // the run's end interrupts the wait at once (the body then comes through the session).
    let (head, body) = match http::request(&req, &ctx.guard) {
        Ok(r) => r,
        Err(e @ (SessionError::Cancelled | SessionError::Deadline | SessionError::Memory)) => {
            return Err(session_err(e));
        }
        Err(e) => return Ok(Err(e)),
    };
    let mut s = Session::new(
        ctx.session_id(),
        Box::new(body),
        ctx.guard.clone(),
        Some(ctx.transcript.clone()),
    );
    s.timeout = req.timeout;
    s.head = Some(head);
    Ok(Ok(ctx.track_new(s)))
}

fn headers_map(head: &http::ResponseHead) -> Map {
    let mut m = Map::new();
    for (k, v) in &head.headers {
        m.insert(k.to_lowercase().into(), Dynamic::from(v.clone()));
    }
    m
}

/// `http_get(url)`: `#{status, body, headers, elapsed_ms}`. A service that cannot be reached
/// (refused, unreachable, timed out, a bad certificate) is data, not an error: `status` 0 and
/// `error` saying why, so `if r.status != 200 { critical(...) }` needs no try/catch. A body
/// longer than the run's output limit is an error, not a daemon out of memory.
fn http_get(ctx: &Arc<RunContext>, url: &str, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    let start = Instant::now();
    let elapsed = |start: Instant| {
        Dynamic::from(i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX))
    };
    let s = match http_open(ctx, url, opts)? {
        Ok(s) => s,
        Err(e) => {
            let mut m = Map::new();
            m.insert("status".into(), Dynamic::from(0_i64));
            m.insert("error".into(), Dynamic::from(ctx.mask(&e.to_string())));
            m.insert("body".into(), Dynamic::from(String::new()));
            m.insert("headers".into(), Dynamic::from_map(Map::new()));
            m.insert("elapsed_ms".into(), elapsed(start));
            return Ok(m);
        }
    };
    let mut session = s.0.lock().unwrap_or_else(|p| p.into_inner());
    let mut body = String::new();
    while !session.is_eof() {
        body.push_str(&session.read_some(None).map_err(session_err)?);
        if body.len() > ctx.max_output {
            let _ = session.close();
            return Err(rt(format!(
                "http_get {}: the body is over {} bytes ([sandbox] max_output)",
                crate::redact::request_url(url),
                ctx.max_output
            )));
        }
    }
    let head = session.head.clone().unwrap_or_default();
    let _ = session.close();
    let mut m = Map::new();
    m.insert("status".into(), Dynamic::from(i64::from(head.status)));
    m.insert("body".into(), Dynamic::from(body));
    m.insert("headers".into(), Dynamic::from_map(headers_map(&head)));
    m.insert("elapsed_ms".into(), elapsed(start));
    Ok(m)
}

pub fn register(engine: &mut Engine) {
    engine.register_fn("connect", |h: HostRef| connect(&current()?, &h, None));
    engine.register_fn("connect", |h: HostRef, m: &str| {
        connect(&current()?, &h, Some(m))
    });
    engine.register_fn("credentials", |h: HostRef| credentials(&*current()?, &h));
    engine.register_fn("run_session", |h: HostRef, m: &str| {
        run_session(&*current()?, &h, m)
    });
    engine.register_fn("http", |url: &str| {
        http_session(&current()?, url, &Map::new())
    });
    engine.register_fn("http", |url: &str, opts: Map| {
        http_session(&current()?, url, &opts)
    });
    engine.register_fn("http_get", |url: &str| {
        http_get(&current()?, url, &Map::new())
    });
    engine.register_fn("http_get", |url: &str, opts: Map| {
        http_get(&current()?, url, &opts)
    });
    engine.register_fn(
        "exec",
        |s: &mut SessionRef, cmd: &str| -> Result<Map, Box<EvalAltResult>> {
            let max = current()?.max_output;
            s.with(|x| x.exec(cmd, None, max))
                .map(super::session::exec_map)
        },
    );
    engine
        .register_get("reused", |s: &mut SessionRef| {
            s.0.lock().map(|x| x.reused).unwrap_or(false)
        })
        .register_get("status", |s: &mut SessionRef| {
            s.0.lock()
                .ok()
                .and_then(|x| x.head.as_ref().map(|h| Dynamic::from(i64::from(h.status))))
                .unwrap_or(Dynamic::UNIT)
        })
        .register_get("headers", |s: &mut SessionRef| {
            s.0.lock()
                .ok()
                .and_then(|x| x.head.as_ref().map(|h| Dynamic::from_map(headers_map(h))))
                .unwrap_or(Dynamic::UNIT)
        });
}

/// Wraps a session for a script.
pub fn wrap(s: Session) -> SessionRef {
    SessionRef(Arc::new(Mutex::new(s)))
}
