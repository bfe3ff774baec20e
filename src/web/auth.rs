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
/// Failed logins for one name, from all addresses together, before the name is braked for
/// every address that has not logged in as it before: a name guessed at from many addresses
/// is slowed too.
const NAME_FREE_TRIES: u32 = 20;
const MAX_DELAY: Duration = Duration::from_secs(300);
/// A (name, address) with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(900);
/// An address that logged in as a name passes that name's brake for this long.
const TRUST_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// At most this many sessions per user: one user (a viewer) cannot fill the table and log
/// everyone else out; their own oldest session goes first.
const SESSIONS_PER_USER: usize = 32;
/// A successful HTTP basic login is remembered this long, so that a SQLXML client sending
/// its credentials with each request costs one argon2 check, not one a request.
const BASIC_CACHE_FOR: Duration = Duration::from_secs(300);
const BASIC_CACHE_SIZE: usize = 1024;
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

/// The sessions, recent login failures, and recent HTTP basic logins.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    pub throttle: Throttle,
    /// BLAKE2b of an `Authorization: Basic` value → (user, [`hash_key`], when checked).
    basic: Mutex<HashMap<String, (String, String, Instant)>>,
}

/// Why a login was refused; [`LoginError::status`] is the HTTP status it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("too many failed logins for this name from this address; try again in {0} s")]
    Throttled(u64),
    #[error(
        "too many failed logins for this name from many addresses; try again in {0} s, from an address that logged in before, or after hostler user unlock"
    )]
    NameThrottled(u64),
    #[error("too many password checks at once; try again in a second")]
    Busy,
    #[error("wrong user name or password")]
    Wrong,
    #[error("cannot check the login now: {0}")]
    Store(String),
}

impl LoginError {
    pub fn status(&self) -> u16 {
        match self {
            LoginError::Throttled(_) | LoginError::NameThrottled(_) => 429,
            LoginError::Busy | LoginError::Store(_) => 503,
            LoginError::Wrong => 401,
        }
    }

    /// Seconds for a `Retry-After` header, when trying later can help.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            LoginError::Throttled(s) | LoginError::NameThrottled(s) => Some(*s),
            LoginError::Busy | LoginError::Store(_) => Some(1),
            LoginError::Wrong => None,
        }
    }
}

/// The brake on guessing. Failed logins count per (name, client address), with growing
/// delays: one client's guesses slow that client down. They also count per name across all
/// addresses, which slows a name guessed at from many addresses, except for addresses that
/// logged in as it before. A success clears its (name, address) entry and is never counted.
/// The form and HTTP basic share it by user name; API tokens by [`token_key`] and address
/// only, so a stranger's wrong token never refuses a right one.
#[derive(Debug, Default)]
pub struct Throttle {
    map: Mutex<HashMap<(String, Option<IpAddr>), Failures>>,
    names: Mutex<HashMap<String, Failures>>,
    trusted: Mutex<HashMap<(String, Option<IpAddr>), Instant>>,
}

/// The brake's key for a bearer token: its first 12 characters (`hst_` and 8 of its random
/// ones), never the whole token.
pub fn token_key(token: &str) -> String {
    format!("token:{}", token.chars().take(12).collect::<String>())
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// When the last failure was, in epoch ms (for `hostler user unlock`).
    last_ms: i64,
}

impl Failures {
    fn wait(&self, free: u32) -> Duration {
        if self.count < free {
            return Duration::ZERO;
        }
        let delay = Duration::from_secs(1u64 << (self.count - free).min(16)).min(MAX_DELAY);
        delay.saturating_sub(self.last.elapsed())
    }

    fn add(&mut self) {
        self.count = self.count.saturating_add(1);
        self.last = Instant::now();
        self.last_ms = crate::store::now_ms();
    }
}

fn new_failures() -> Failures {
    Failures {
        count: 0,
        last: Instant::now(),
        last_ms: 0,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Adds `key` to a bounded map, forgetting what is older than `keep` and then the oldest.
fn bounded_entry<K: std::hash::Hash + Eq + Clone>(
    m: &mut HashMap<K, Failures>,
    key: K,
) -> &mut Failures {
    m.retain(|_, f| f.last.elapsed() < FORGET_AFTER);
    if !m.contains_key(&key)
        && m.len() >= MAX_SESSIONS
        && let Some(oldest) = m.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| k.clone())
    {
        m.remove(&oldest);
    }
    m.entry(key).or_insert_with(new_failures)
}

impl Throttle {
    /// Ok when this client may try this name now; else how long it must wait, and why.
    /// `by_name` applies the brake across addresses too (user names, not token keys).
    /// `unlocked_ms` is when an admin last ran `hostler user unlock` for the name; it is
    /// read only when a brake would refuse.
    pub fn wait(
        &self,
        name: &str,
        peer: Option<IpAddr>,
        by_name: bool,
        unlocked_ms: impl FnOnce() -> i64,
    ) -> Result<(), LoginError> {
        let key = (name.to_string(), peer);
        let mine = lock(&self.map).get(&key).copied();
        let theirs = if by_name && !self.trusted(&key) {
            lock(&self.names).get(name).copied()
        } else {
            None
        };
        let wait_mine = mine.map_or(Duration::ZERO, |f| f.wait(FREE_TRIES));
        let wait_name = theirs.map_or(Duration::ZERO, |f| f.wait(NAME_FREE_TRIES));
        if wait_mine.is_zero() && wait_name.is_zero() {
            return Ok(());
        }
        // Only a refusal reads the database.
        let unlocked = unlocked_ms();
        if mine.is_some_and(|f| unlocked >= f.last_ms)
            || theirs.is_some_and(|f| unlocked >= f.last_ms)
        {
            lock(&self.map).remove(&key);
            lock(&self.names).remove(name);
            return Ok(());
        }
        let secs = |d: Duration| d.as_secs().max(1);
        if !wait_mine.is_zero() {
            return Err(LoginError::Throttled(secs(wait_mine)));
        }
        Err(LoginError::NameThrottled(secs(wait_name)))
    }

    fn trusted(&self, key: &(String, Option<IpAddr>)) -> bool {
        lock(&self.trusted)
            .get(key)
            .is_some_and(|t| t.elapsed() < TRUST_FOR)
    }

    /// Counts a failure of this (name, address), and of the name when `by_name`.
    pub fn failed(&self, name: &str, peer: Option<IpAddr>, by_name: bool) {
        bounded_entry(&mut lock(&self.map), (name.to_string(), peer)).add();
        if by_name {
            bounded_entry(&mut lock(&self.names), name.to_string()).add();
        }
    }

    /// A success: clears this (name, address), and trusts the address for the name.
    pub fn succeeded(&self, name: &str, peer: Option<IpAddr>) {
        let key = (name.to_string(), peer);
        lock(&self.map).remove(&key);
        let mut t = lock(&self.trusted);
        t.retain(|_, at| at.elapsed() < TRUST_FOR);
        if !t.contains_key(&key)
            && t.len() >= MAX_SESSIONS
            && let Some(oldest) = t.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone())
        {
            t.remove(&oldest);
        }
        t.insert(key, Instant::now());
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
        let mut map = lock(&self.map);
        let theirs: Vec<(String, Instant)> = map
            .iter()
            .filter(|(_, s)| s.user == user.name)
            .map(|(k, s)| (k.clone(), s.started))
            .collect();
        if theirs.len() >= SESSIONS_PER_USER
            && let Some((oldest, _)) = theirs.iter().min_by_key(|(_, at)| *at)
        {
            map.remove(oldest);
        }
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

    /// Checks a name and password from a client, under the [`Throttle`] and the bound on
    /// password hashing: a refusal by either costs no hashing.
    pub fn login(
        &self,
        store: &Store,
        name: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<User, LoginError> {
        self.throttle
            .wait(name, peer, true, || unlocked_at(store, name))?;
        let user = store
            .find_user(name)
            .map_err(|e| LoginError::Store(e.to_string()))?;
        // Without a user, hash anyway so the answer takes as long.
        let hash = user
            .as_ref()
            .map_or(DUMMY_HASH, |u| u.password_hash.as_str());
        let ok = verify_password(password, hash).map_err(|e| match e {
            crate::password::PasswordError::Busy => LoginError::Busy,
            other => LoginError::Store(other.to_string()),
        })?;
        match user {
            Some(u) if ok => {
                self.throttle.succeeded(name, peer);
                Ok(u)
            }
            _ => {
                self.throttle.failed(name, peer, true);
                Err(LoginError::Wrong)
            }
        }
    }

    /// An `Authorization: Basic` login: remembered for 5 minutes once it
    /// succeeds (as long as the user keeps the same role and password), so that a client
    /// sending it with every request is hashed once.
    pub fn basic_login(
        &self,
        store: &Store,
        header: &str,
        name: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<User, LoginError> {
        let key = token_hash(header);
        let cached = lock(&self.basic).get(&key).cloned();
        if let Some((user, hkey, at)) = cached
            && at.elapsed() < BASIC_CACHE_FOR
            && user == name
        {
            match store.find_user(name) {
                Ok(Some(u)) if same(&hash_key(&u.password_hash), &hkey) => return Ok(u),
                Ok(_) => {
                    lock(&self.basic).remove(&key);
                }
                Err(e) => return Err(LoginError::Store(e.to_string())),
            }
        }
        let u = self.login(store, name, password, peer)?;
        let mut m = lock(&self.basic);
        m.retain(|_, (_, _, at)| at.elapsed() < BASIC_CACHE_FOR);
        if m.len() >= BASIC_CACHE_SIZE
            && let Some(oldest) = m.iter().min_by_key(|(_, e)| e.2).map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(
            key,
            (u.name.clone(), hash_key(&u.password_hash), Instant::now()),
        );
        Ok(u)
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
    match store.add_user("admin", &hash_password(&password)?, Role::Admin, false) {
        Ok(()) => Ok(Some(password)),
        // Another node starting on the same fresh database made its admin first.
        Err(_) if store.user_count()? > 0 => Ok(None),
        Err(e) => Err(e.into()),
    }
}
