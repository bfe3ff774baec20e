//! Who is asking: password hashes (argon2id), login sessions kept in memory, CSRF tokens,
//! API tokens (stored as BLAKE2b hashes), and a brake on password guessing.
//!
//! Sessions live in this process: a restart logs everyone out, which is the safe direction.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use blake2::{Blake2b512, Digest};

use crate::store::{Role, Store, StoreError, User};

/// The session cookie's name.
pub const COOKIE: &str = "hostler_session";
/// The cookie that carries the login form's CSRF token before there is a session.
pub const LOGIN_COOKIE: &str = "hostler_login";
/// How long a session lasts after its login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions are kept; the oldest go first.
const MAX_SESSIONS: usize = 10_000;
/// Failed logins for one (name, address) before each next try must wait: 1 s after the
/// third, doubling with each failure up to [`MAX_DELAY`].
const FREE_TRIES: u32 = 3;
const MAX_DELAY: Duration = Duration::from_secs(300);
/// A (name, address) with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(900);
/// The `settings` key whose value (epoch ms) `hostler user unlock NAME` sets.
pub fn unlock_key(name: &str) -> String {
    format!("login_unlock:{name}")
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot get random bytes: {0}")]
    Random(String),
    #[error(transparent)]
    Password(#[from] crate::password::PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> Result<String, AuthError> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(hex(&buf))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub use crate::password::{hash_password, random_password, verify_password};

/// What an API token is stored as: tokens are long random strings, so a fast hash is enough.
pub fn token_hash(token: &str) -> String {
    hex(&Blake2b512::digest(token.as_bytes())[..32])
}

/// Makes an API token for a user, stores its hash, and returns the token (shown once).
pub fn new_token(store: &Store, user: &str, label: &str) -> Result<String, AuthError> {
    let token = format!("hst_{}", random_hex(24)?);
    store.add_token(user, label, &token_hash(&token))?;
    Ok(token)
}

/// Compares two strings in time that depends only on their lengths.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// The token every form of this session carries in `csrf_token`.
    pub csrf: String,
    pub started: Instant,
    /// A digest of the password hash at login: a changed password ends the session.
    pub key: String,
    /// Logged in with a one-time password: only `/account/password` answers.
    pub must_change: bool,
}

/// What a session remembers of the password hash it logged in with.
pub fn hash_key(password_hash: &str) -> String {
    token_hash(password_hash)
}

/// The sessions, and recent login failures per (name, client address).
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    pub throttle: Throttle,
}

/// Failed logins per (name, client address), with growing delays: one client's guesses
/// slow that client down, never lock the name for everyone. A success clears its entry and is
/// never counted. The form, HTTP basic and API tokens (under the name `token`) share it.
#[derive(Debug, Default)]
pub struct Throttle {
    map: Mutex<HashMap<(String, Option<IpAddr>), Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// When the entry began, in epoch ms (for `hostler user unlock`).
    last_ms: i64,
}

impl Failures {
    fn wait(&self) -> Duration {
        if self.count < FREE_TRIES {
            return Duration::ZERO;
        }
        let delay = Duration::from_secs(1u64 << (self.count - FREE_TRIES).min(16)).min(MAX_DELAY);
        delay.saturating_sub(self.last.elapsed())
    }
}

impl Throttle {
    /// How long this client must still wait before trying this name again (zero: go on).
    /// `unlocked_ms` is when an admin last ran `hostler user unlock` for the name.
    pub fn wait(
        &self,
        name: &str,
        peer: Option<IpAddr>,
        unlocked_ms: impl FnOnce() -> i64,
    ) -> Duration {
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key = (name.to_string(), peer);
        let Some(f) = m.get(&key).copied() else {
            return Duration::ZERO;
        };
        let wait = f.wait();
        if wait.is_zero() {
            return wait;
        }
        drop(m);
        // Only a refusal reads the database.
        if unlocked_ms() >= f.last_ms {
            self.map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            return Duration::ZERO;
        }
        wait
    }

    pub fn failed(&self, name: &str, peer: Option<IpAddr>) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, f| f.last.elapsed() < FORGET_AFTER);
        let key = (name.to_string(), peer);
        if !m.contains_key(&key)
            && m.len() >= MAX_SESSIONS
            && let Some(oldest) = m.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        let f = m.entry(key).or_insert(Failures {
            count: 0,
            last: Instant::now(),
            last_ms: 0,
        });
        f.count = f.count.saturating_add(1);
        f.last = Instant::now();
        f.last_ms = crate::store::now_ms();
    }

    pub fn succeeded(&self, name: &str, peer: Option<IpAddr>) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(name.to_string(), peer));
    }
}

impl Sessions {
    /// Starts a session; returns its cookie value.
    pub fn start(&self, user: &User, must_change: bool) -> Result<String, AuthError> {
        let id = random_hex(32)?;
        let session = Session {
            user: user.name.clone(),
            role: user.role,
            csrf: random_hex(32)?,
            started: Instant::now(),
            key: hash_key(&user.password_hash),
            must_change,
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.started.elapsed() < SESSION_LIFETIME);
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.started)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), session);
        Ok(id)
    }

    /// The live session a cookie names.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(s) if s.started.elapsed() < SESSION_LIFETIME => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Ends every session of a user (a removed user, a changed role).
    pub fn end_user(&self, user: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.user != user);
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks a name and password from a client, under the [`Throttle`].
    pub fn login(
        &self,
        store: &Store,
        name: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<User, String> {
        let wait = self.throttle.wait(name, peer, || unlocked_at(store, name));
        if !wait.is_zero() {
            return Err(format!(
                "too many failed logins for this name from this address; try again in {} s",
                wait.as_secs().max(1)
            ));
        }
        let user = store.find_user(name).map_err(|e| e.to_string())?;
        // Without a user, hash anyway so the answer takes as long.
        let ok = match &user {
            Some(u) => verify_password(password, &u.password_hash),
            None => {
                let _ = verify_password(password, DUMMY_HASH);
                false
            }
        };
        match user {
            Some(u) if ok => {
                self.throttle.succeeded(name, peer);
                Ok(u)
            }
            _ => {
                self.throttle.failed(name, peer);
                Err("wrong user name or password".into())
            }
        }
    }
}

/// When `hostler user unlock NAME` last ran (0: never, or unreadable).
pub fn unlocked_at(store: &Store, name: &str) -> i64 {
    store
        .setting(&unlock_key(name))
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A valid argon2id hash of a random password, checked against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Pj4xaMDaZ8WbSvbz0x3L9UTB5vvqE2sJbnpMUtgz6aA";

/// On a database without users: adds `admin` with a random password and returns it, to be
/// shown once.
pub fn first_admin(store: &Store) -> Result<Option<String>, AuthError> {
    if store.user_count()? > 0 {
        return Ok(None);
    }
    let password = random_password()?;
    store.add_user("admin", &hash_password(&password)?, Role::Admin, false)?;
    Ok(Some(password))
}
