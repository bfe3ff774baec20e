//! Secrets at rest: a host's login secret is sealed with AES-256-GCM (OpenSSL, already linked
//! for SSH) before it reaches any database, SQLite or SQL Server alike, so a copied database
//! file, its WAL or a backup holds no password.
//!
//! The key is 32 random bytes in a file only its owner can read: `$HOSTLER_KEY_FILE`, else
//! systemd's `$CREDENTIALS_DIRECTORY/hostler.key` (`LoadCredential=`), else `DB.key` beside a
//! database file, else `hostler.key` in the working folder for a database URL. It is created
//! (mode 0600, never written through a symlink) the first time a secret is sealed. A sealed
//! value names its key by id, so `hostler key rotate` can re-seal everything under a new key
//! (`KEY.new` until the re-sealing commits, then renamed over `KEY`) and an interrupted
//! rotation loses nothing. Values stored before sealing existed are sealed when the store
//! opens.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;

use super::StoreError;

/// What a sealed value starts with; anything else is a value from before sealing.
pub const SEALED: &str = "hostler-aead-v1:";
const AAD: &[u8] = b"hostler host secret";

#[derive(Clone)]
struct Key {
    id: String,
    bytes: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

impl Key {
    fn new(bytes: [u8; 32]) -> Key {
        use blake2::{Blake2b512, Digest};
        let digest = Blake2b512::digest(bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Key { id, bytes }
    }

    fn random() -> Result<Key, StoreError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| StoreError::Invalid(format!("cannot make a key: {e}")))?;
        Ok(Key::new(bytes))
    }
}

/// Where the keys live, and the keys once read.
#[derive(Debug)]
pub struct Vault {
    /// None: an in-memory database, with a key that lives as long as the process.
    path: Option<PathBuf>,
    /// The sealing key first, then any other that opens (a rotation's).
    keys: Mutex<Option<Vec<Key>>>,
    /// `KEY.lock`, held from [`Vault::begin_rotation`] to [`Vault::finish_rotation`]: one
    /// rotation at a time.
    rotation: Mutex<Option<nix::fcntl::Flock<std::fs::File>>>,
}

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("key file {}: {what}: {e}", path.display()))
}

impl Vault {
    /// The vault for a database: `sqlite_path` for a file, None for a URL.
    pub fn for_database(sqlite_path: Option<&Path>, in_memory: bool) -> Vault {
        let path = if let Some(p) = std::env::var_os("HOSTLER_KEY_FILE") {
            Some(PathBuf::from(p))
        } else if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(PathBuf::from)
            .filter(|d| d.join("hostler.key").exists())
        {
            Some(dir.join("hostler.key"))
        } else if in_memory {
            None
        } else {
            Some(match sqlite_path {
                Some(p) => PathBuf::from(format!("{}.key", p.display())),
                None => PathBuf::from("hostler.key"),
            })
        };
        Vault {
            path,
            keys: Mutex::new(None),
            rotation: Mutex::new(None),
        }
    }

    pub fn key_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether the key file is there (an in-memory vault always has its key).
    pub fn key_present(&self) -> bool {
        self.path.as_ref().is_none_or(|p| p.exists())
    }

    /// The keys, read (or, with `create`, made) on first use.
    fn keys(&self, create: bool) -> Result<Vec<Key>, StoreError> {
        if let Some(k) = &*self.keys.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(k.clone());
        }
        self.read_files(create)
    }

    /// The keys as the files hold them now, remembered: a rotation's `KEY.new` first (it
    /// seals from now on, in every process, since it becomes the key), then `KEY`.
    fn read_files(&self, create: bool) -> Result<Vec<Key>, StoreError> {
        let mut cached = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let Some(path) = &self.path else {
            if let Some(k) = &*cached {
                return Ok(k.clone());
            }
            let k = vec![Key::random()?];
            *cached = Some(k.clone());
            return Ok(k);
        };
        let new = read_key(&rotating(path))?;
        let current = match read_key(path)? {
            Some(k) => Some(k),
            None if create && new.is_none() => Some(write_key(path, &Key::random()?)?),
            None if new.is_some() => None,
            None => {
                return Err(StoreError::Invalid(format!(
                    "key file {} is missing: the stored secrets cannot be read without it (copy it from the node that made it, restore it from a backup, or set $HOSTLER_KEY_FILE)",
                    path.display()
                )));
            }
        };
        let keys: Vec<Key> = new.into_iter().chain(current).collect();
        *cached = Some(keys.clone());
        Ok(keys)
    }

    /// Seals a secret with the key the files hold now (made if there is none yet), never
    /// with one remembered from before: another process may have rotated it away.
    pub fn seal(&self, plain: &str) -> Result<String, StoreError> {
        let key = self.read_files(true)?.remove(0);
        seal_with(&key, plain)
    }

    /// The plain text of a stored value: sealed ones are opened, older plain ones pass. A key
    /// id this process does not hold makes it read the key files again (`hostler key
    /// rotate` in another process).
    pub fn open(&self, stored: &str) -> Result<String, StoreError> {
        let Some(rest) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_string());
        };
        let (id, data) = rest
            .split_once(':')
            .ok_or_else(|| StoreError::Invalid("a sealed secret is malformed".into()))?;
        let mut keys = self.keys(false)?;
        if !keys.iter().any(|k| k.id == id) {
            keys = self.read_files(false)?;
        }
        let key = keys.iter().find(|k| k.id == id).ok_or_else(|| {
            StoreError::Invalid(format!(
                "a secret is sealed with key {id}, which is not in {}",
                self.path
                    .as_ref()
                    .map_or("memory".into(), |p| p.display().to_string())
            ))
        })?;
        open_with(key, data)
    }

    /// Starts a rotation: takes `KEY.lock` (a second rotation is refused while one runs),
    /// then a new key in `KEY.new` (or the one an interrupted rotation left), which seals
    /// from now on in every process; [`Vault::finish_rotation`] makes it the key once the
    /// re-sealed values are committed.
    pub fn begin_rotation(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Err(StoreError::Invalid(
                "an in-memory database has no key file to rotate".into(),
            ));
        };
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(0o600)
                .open(&lock_path)
                .map_err(|e| err(&lock_path, "cannot open it", e))?
        };
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| {
                StoreError::Invalid(format!(
                    "another key rotation is running (it holds {}: {e}); wait for it to end",
                    lock_path.display()
                ))
            })?;
        *self.rotation.lock().unwrap_or_else(|p| p.into_inner()) = Some(lock);
        self.keys(true)?;
        if read_key(&rotating(path))?.is_none() {
            write_key(&rotating(path), &Key::random()?)?;
        }
        self.read_files(false)?;
        Ok(())
    }

    /// The id of the key that seals now (a rotation's new key while one is under way).
    pub fn sealing_id(&self) -> Result<String, StoreError> {
        Ok(self.read_files(false)?.remove(0).id)
    }

    /// Whether a stored value is sealed with the key that seals now.
    pub fn sealed_with(&self, stored: &str, id: &str) -> bool {
        stored
            .strip_prefix(SEALED)
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(k, _)| k == id)
    }

    pub fn finish_rotation(&self) -> Result<String, StoreError> {
        let path = self.path.as_ref().ok_or_else(|| {
            StoreError::Invalid("an in-memory database has no key file to rotate".into())
        })?;
        std::fs::rename(rotating(path), path).map_err(|e| err(path, "cannot replace it", e))?;
        let id = self.read_files(false)?.remove(0).id;
        *self.rotation.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(id)
    }

    /// Gives up a rotation that failed: `KEY.new` stays (it seals, and opens what it sealed;
    /// the next rotation takes it up), the lock goes.
    pub fn abandon_rotation(&self) {
        *self.rotation.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The id of the key that seals now.
    pub fn key_id(&self) -> Result<String, StoreError> {
        Ok(self.keys(false)?.remove(0).id)
    }
}

fn rotating(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.new", path.display()))
}

fn read_key(path: &Path) -> Result<Option<Key>, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path, "cannot read it", e)),
    };
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "key file {} is readable by other users: chmod 600 it",
            path.display()
        );
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| err(path, "not a key", e))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| err(path, "not a key", "expected 32 bytes in base64"))?;
    Ok(Some(Key::new(bytes)))
}

/// Writes a new key file: mode 0600, never through a symlink, and whole or not at all: it is
/// written to a file of its own first and then linked into place, so a process reading it
/// meanwhile (another node, the daemon during `key rotate`) never sees it half written. If
/// another process made the file first, its key is the one returned.
fn write_key(path: &Path, key: &Key) -> Result<Key, StoreError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut suffix = [0u8; 8];
    getrandom::getrandom(&mut suffix)
        .map_err(|e| StoreError::Invalid(format!("cannot make a key: {e}")))?;
    let tmp = PathBuf::from(format!(
        "{}.{}.tmp",
        path.display(),
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            writeln!(
                f,
                "{}",
                base64::engine::general_purpose::STANDARD.encode(key.bytes)
            )?;
            f.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            tracing::info!(
                "made the key file {} for stored secrets; back it up with the database",
                path.display()
            );
            Ok(key.clone())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path)?
            .ok_or_else(|| err(path, "cannot create it", "it appeared and went away")),
        Err(e) => Err(err(path, "cannot create it", e)),
    }
}

fn seal_with(key: &Key, plain: &str) -> Result<String, StoreError> {
    use openssl::symm::{Cipher, encrypt_aead};
    let mut nonce = [0u8; 12];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| StoreError::Invalid(format!("cannot make a nonce: {e}")))?;
    let mut tag = [0u8; 16];
    let ct = encrypt_aead(
        Cipher::aes_256_gcm(),
        &key.bytes,
        Some(&nonce),
        AAD,
        plain.as_bytes(),
        &mut tag,
    )
    .map_err(|e| StoreError::Invalid(format!("cannot seal a secret: {e}")))?;
    let mut all = Vec::with_capacity(12 + ct.len() + 16);
    all.extend_from_slice(&nonce);
    all.extend_from_slice(&ct);
    all.extend_from_slice(&tag);
    Ok(format!(
        "{SEALED}{}:{}",
        key.id,
        base64::engine::general_purpose::STANDARD.encode(all)
    ))
}

fn open_with(key: &Key, data: &str) -> Result<String, StoreError> {
    use openssl::symm::{Cipher, decrypt_aead};
    let bad = || {
        StoreError::Invalid("a sealed secret does not open with its key (tampered with?)".into())
    };
    let all = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| bad())?;
    if all.len() < 28 {
        return Err(bad());
    }
    let (nonce, rest) = all.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let plain = decrypt_aead(Cipher::aes_256_gcm(), &key.bytes, Some(nonce), AAD, ct, tag)
        .map_err(|_| bad())?;
    String::from_utf8(plain).map_err(|_| bad())
}
