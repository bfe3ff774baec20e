//! `/ping/TOKEN[/start|/fail|/N]`: heartbeats' pings. No login: the token is the credential.
//! GET, POST and HEAD all count; a POST's body (at most 100 KB, more is refused with 413 before
//! it is read) is kept as the run's output. An unknown token gets 404. Each token may ping 20
//! times a second; more get 429, so a flood on one token cannot fill the history.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Web;
use super::http::{Req, Resp};
use crate::store::StoreError;
use crate::store::heartbeats::Ping;

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
        let slot = map.entry(token.to_string()).or_insert((now, 0));
        if now.duration_since(slot.0) >= Duration::from_secs(1) {
            *slot = (now, 0);
        }
        slot.1 += 1;
        slot.1 <= PER_SECOND
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
    let heartbeat = match web.store.heartbeat_by_token(token) {
        Ok(h) => h,
        Err(StoreError::NotFound { .. }) => {
            return Resp::text(404, "no heartbeat has that token\n");
        }
        Err(e) => return Resp::text(503, format!("database: {e}\n")),
    };
    let body = String::from_utf8_lossy(&req.body);
    match web.store.ping(&heartbeat, ping, &body) {
        Ok(pinged) => {
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
