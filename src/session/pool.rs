//! Authenticated sessions kept between runs of one process (monitord, the shell, a repeated
//! fan-out), keyed by host, method, user, address and port.
//!
//! A run's sessions come back here when it ends, if they are reusable (open, nothing unread,
//! at a known prompt or never used as a shell). A session idle longer than the idle timeout is
//! closed, at the next checkout or by [`Pool::reap`], and so is one older than the maximum
//! lifetime, however often it is used. Before reuse the caller runs
//! [`Session::health_check`]; one that fails is closed and a fresh login made. Hosts with
//! `keep_session` off never reach the pool.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Session;

pub struct Pool {
    idle: Mutex<HashMap<String, Vec<(Instant, Session)>>>,
    idle_timeout: Duration,
    max_lifetime: Duration,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.len())
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .finish()
    }
}

impl Pool {
    /// A pool; an idle timeout of zero keeps nothing.
    pub fn new(idle_timeout: Duration, max_lifetime: Duration) -> Pool {
        Pool {
            idle: Mutex::new(HashMap::new()),
            idle_timeout,
            max_lifetime,
        }
    }

    /// Whether an idle session (idle since `since`) is past its idle time or its lifetime.
    fn expired(&self, now: Instant, since: Instant, s: &Session) -> bool {
        now.duration_since(since) >= self.idle_timeout
            || now.duration_since(s.opened) >= self.max_lifetime
    }

    pub fn enabled(&self) -> bool {
        !self.idle_timeout.is_zero()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(Instant, Session)>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the most recently used idle session for `key`, if one is still within its idle
    /// time. Expired ones are closed (outside the lock).
    pub fn checkout(&self, key: &str) -> Option<Session> {
        let now = Instant::now();
        let (found, expired) = {
            let mut idle = self.lock();
            let list = idle.get_mut(key)?;
            let mut expired = Vec::new();
            let mut found = None;
            while let Some((since, s)) = list.pop() {
                if !self.expired(now, since, &s) {
                    found = Some(s);
                    break;
                }
                expired.push(s);
            }
            (found, expired)
        };
        drop(expired);
        found
    }

    /// Keeps a session for reuse, or closes it if the pool is off.
    pub fn checkin(&self, key: String, session: Session) {
        if self.enabled() {
            self.lock()
                .entry(key)
                .or_default()
                .push((Instant::now(), session));
        }
    }

    /// Closes every session idle longer than the idle timeout or older than the lifetime;
    /// returns how many.
    pub fn reap(&self) -> usize {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut idle = self.lock();
            for list in idle.values_mut() {
                let (old, keep): (Vec<_>, Vec<_>) = list
                    .drain(..)
                    .partition(|(since, s)| self.expired(now, *since, s));
                *list = keep;
                expired.extend(old);
            }
            idle.retain(|_, l| !l.is_empty());
        }
        expired.len()
    }

    /// How many sessions are idle.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
