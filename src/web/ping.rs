//! `/ping/TOKEN[/start|/fail|/N]`: heartbeats' pings. No login: the token is the credential.
//! GET, POST and HEAD all count; a POST's body (at most 100 KB, more is refused with 413 before
//! it is read) is kept as the run's output. An unknown token gets 404. Each token may ping 20
//! times a second; more get 429, so a flood on one token cannot fill the history.
//!
//! Pings are recorded many to a transaction: each handler hands its ping to one writer thread
//! and waits for the commit that holds it (group commit), so a 200 still means "recorded".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::Web;
use super::http::{Req, Resp};
use crate::store::heartbeats::{Ping, Pinged};
use crate::store::{Store, StoreError};

/// The most pings in one transaction.
const BATCH: usize = 512;

/// A ping handed to the writer (heartbeat id, what it says, its body), and where its outcome
/// goes (None: the heartbeat is gone).
struct Job {
    ping: (i64, Ping, String),
    reply: mpsc::SyncSender<Result<Option<Pinged>, String>>,
}

/// The thread that records pings, as many as came in together in one transaction.
#[derive(Debug)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("heartbeat", &self.ping.0)
            .finish()
    }
}

impl Writer {
    /// Starts the writer thread; it ends when the web server (every sender) is gone.
    pub fn start(store: Arc<Store>) -> Writer {
        let tx =
            crate::store::group::batcher("hostler-pings", BATCH, move |jobs| write(&store, jobs))
                .unwrap_or_else(|e| {
                    // Every ping then answers 503 ("the ping writer is gone").
                    tracing::error!("cannot start the ping writer: {e}");
                    mpsc::channel().0
                });
        Writer { tx }
    }

    /// Records one ping; returns once its transaction committed (or failed).
    fn record(&self, ping: (i64, Ping, String)) -> Result<Option<Pinged>, String> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .send(Job { ping, reply })
            .map_err(|_| "the ping writer is gone".to_string())?;
        rx.recv()
            .map_err(|_| "the ping writer is gone".to_string())?
    }
}

/// Records a batch in one transaction; when it fails, each ping again on its own, so that one
/// bad ping fails only itself.
fn write(store: &Store, jobs: Vec<Job>) {
    let (pings, replies): (Vec<_>, Vec<_>) = jobs.into_iter().map(|j| (j.ping, j.reply)).unzip();
    match store.ping_many(&pings) {
        Ok(done) => {
            for (r, d) in replies.into_iter().zip(done) {
                let _ = r.send(Ok(d));
            }
        }
        Err(e) if pings.len() == 1 => {
            let _ = replies[0].send(Err(e.to_string()));
        }
        Err(_) => {
            for (p, r) in pings.into_iter().zip(replies) {
                let one = store.ping_many(std::slice::from_ref(&p));
                let _ = r.send(
                    one.map_err(|e| e.to_string())
                        .and_then(|mut v| v.pop().ok_or_else(|| "nothing recorded".into())),
                );
            }
        }
    }
}

/// Pings one token may send in a second.
const PER_SECOND: u32 = 20;
/// Tokens tracked at once: past it, the window starts over for all (still bounded memory).
const TRACKED: usize = 10_000;

/// The pings each token sent in its current second.
#[derive(Debug, Default)]
pub struct Throttle(Mutex<HashMap<String, (Instant, u32)>>);

impl Throttle {
    /// Whether this token may ping now.
    fn allow(&self, token: &str) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= TRACKED && !map.contains_key(token) {
            map.clear();
        }
        let now = Instant::now();
        // A token seen before costs no allocation.
        let slot = match map.get_mut(token) {
            Some(slot) => slot,
            None => map.entry(token.to_string()).or_insert((now, 0)),
        };
        if now.duration_since(slot.0) >= Duration::from_secs(1) {
            *slot = (now, 0);
        }
        slot.1 += 1;
        slot.1 <= PER_SECOND
    }
}

/// How long a token's heartbeat is taken from memory before it is read again. A heartbeat
/// removed meanwhile is still caught: the writer reads each one in its transaction, and a
/// ping whose remembered heartbeat is gone looks its token up again at once.
const TOKEN_TTL: Duration = Duration::from_secs(60);
/// How long a token that no heartbeat has is remembered as such: short, so that a heartbeat
/// made with that token (an apply of a site file that names it) is pinged within seconds.
const UNKNOWN_TTL: Duration = Duration::from_secs(2);

/// Tokens seen lately and their heartbeats' ids (None: no heartbeat has it), so that a ping
/// costs no read of its own.
#[derive(Debug, Default)]
pub struct Tokens(Mutex<HashMap<String, (Instant, Option<i64>)>>);

impl Tokens {
    fn get(&self, token: &str) -> Option<Option<i64>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token)
            .filter(|(at, id)| at.elapsed() < if id.is_some() { TOKEN_TTL } else { UNKNOWN_TTL })
            .map(|(_, id)| *id)
    }

    fn put(&self, token: &str, id: Option<i64>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= TRACKED && !map.contains_key(token) {
            map.clear();
        }
        map.insert(token.to_string(), (Instant::now(), id));
    }

    fn forget(&self, token: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }
}

/// What the path after `/ping/TOKEN` says: nothing, `start`, `fail` or an exit status.
pub fn parse(kind: Option<&str>) -> Option<Ping> {
    match kind {
        None | Some("") => Some(Ping::Success),
        Some("start") => Some(Ping::Start),
        Some("fail") => Some(Ping::Fail),
        Some(n) if !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()) => {
            n.parse::<i64>().ok().filter(|n| *n <= 255).map(Ping::Exit)
        }
        _ => None,
    }
}

/// Reads which heartbeat has this token (None: none has), and remembers it.
fn lookup(web: &Web, token: &str) -> Result<Option<i64>, Resp> {
    match web.store.heartbeat_by_token(token) {
        Ok(h) => {
            web.ping_tokens.put(token, Some(h.id));
            Ok(Some(h.id))
        }
        Err(StoreError::NotFound { .. }) => {
            web.ping_tokens.put(token, None);
            Ok(None)
        }
        Err(e) => Err(Resp::text(503, format!("database: {e}\n"))),
    }
}

/// Answers a ping.
pub fn answer(web: &Web, req: &Req, token: &str, ping: Ping) -> Resp {
    if !matches!(req.method.as_str(), "GET" | "POST" | "HEAD") {
        return Resp::text(405, "ping with GET, POST or HEAD\n").with("allow", "GET, POST, HEAD");
    }
    if token.is_empty()
        || token.len() > 100
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Resp::text(404, "no heartbeat has that token\n");
    }
    if !web.pings.allow(token) {
        return Resp::text(429, "too many pings for this token: at most 20 a second\n")
            .with("retry-after", "1");
    }
    let (mut id, mut remembered) = match web.ping_tokens.get(token) {
        Some(id) => (id, true),
        None => match lookup(web, token) {
            Ok(id) => (id, false),
            Err(resp) => return resp,
        },
    };
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let recorded = loop {
        let Some(heartbeat) = id else {
            return Resp::text(404, "no heartbeat has that token\n");
        };
        match web.ping_writer.record((heartbeat, ping, body.clone())) {
            // The remembered heartbeat is gone: the token may belong to a new one now.
            Ok(None) if remembered => {
                web.ping_tokens.forget(token);
                remembered = false;
                id = match lookup(web, token) {
                    Ok(id) => id,
                    Err(resp) => return resp,
                };
            }
            other => break other,
        }
    };
    match recorded {
        Ok(None) => {
            web.ping_tokens.forget(token);
            Resp::text(404, "no heartbeat has that token\n")
        }
        Ok(Some(pinged)) => {
            if let Some(fix) = pinged.fix
                && let Err(e) = crate::queue::heartbeat_fix(&web.store, &fix)
            {
                tracing::warn!(heartbeat = %fix.heartbeat, "cannot queue its fix {}: {e}", fix.script);
            }
            web.dashboard.invalidate();
            Resp::text(200, "OK\n").with("cache-control", "no-store")
        }
        Err(e) => Resp::text(503, format!("database: {e}\n")),
    }
}
