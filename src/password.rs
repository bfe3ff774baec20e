//! Web users' passwords: argon2id hashes (PHC strings), their check, and one-time passwords
//! for a person to type. A leaf: the web page, the CLI and `serve` share it.
//!
//! Hashing is a bounded resource: one argon2id check takes 19 MiB and tens of milliseconds,
//! so a process runs at most [`max_hashing`] at once (one per core, at most 4). A check that
//! finds every slot taken fails at once with [`PasswordError::Busy`]: the caller answers 503
//! without hashing, and the memory hashing holds stays below `max_hashing() × 19 MiB`
//! whatever the clients do.

use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("cannot get random bytes: {0}")]
    Random(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("too many password checks at once; try again in a second")]
    Busy,
}

/// Password checks running now.
static HASHING: AtomicUsize = AtomicUsize::new(0);

/// How many argon2 computations may run at once in this process.
pub fn max_hashing() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// One of the [`max_hashing`] slots, given back when dropped.
struct Slot;

impl Slot {
    fn take() -> Result<Slot, PasswordError> {
        let max = max_hashing();
        HASHING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| Slot)
            .map_err(|_| PasswordError::Busy)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        HASHING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A password for a person to type once: 20 characters without look-alikes.
pub fn random_password() -> Result<String, PasswordError> {
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut buf = [0u8; 20];
    getrandom::getrandom(&mut buf).map_err(|e| PasswordError::Random(e.to_string()))?;
    // 256 % 56 leaves a small bias; 20 characters of ~5.8 bits are still ~115 bits.
    Ok(buf
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()] as char)
        .collect())
}

/// An argon2id PHC string for a password (Busy when every hashing slot is taken).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| PasswordError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let _slot = Slot::take()?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether a password matches a stored hash (false for a malformed hash); Busy, without
/// hashing, when every hashing slot is taken.
pub fn verify_password(password: &str, hash: &str) -> Result<bool, PasswordError> {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return Ok(false);
    };
    let _slot = Slot::take()?;
    Ok(argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}
