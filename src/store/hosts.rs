//! Hosts: add, list, show, remove, and the one door through which a secret leaves the store.

use super::statements as st;
use super::{ConnExt, Host, Method, NewHost, PinnedKey, Row, Secret, Store, StoreError, now_ms};
use crate::sql::{Expr, param};

/// Host names appear in scripts, URLs and completion: keep them plain.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The id of the host named `name`, or a not-found error naming it.
pub(super) fn host_id(c: &mut dyn super::Conn, name: &str) -> Result<i64, StoreError> {
    c.query_one(st::host_id_by_name(name))?
        .ok_or_else(|| StoreError::NotFound {
            kind: "host",
            name: name.to_string(),
        })?
        .int("id")
}

/// Fails while jobs use the host or script `id` (in `column`).
pub(super) fn refuse_with_jobs(
    c: &mut dyn super::Conn,
    kind: &'static str,
    name: &str,
    column: &'static str,
    id: i64,
) -> Result<(), StoreError> {
    let n = c
        .query_one(st::jobs_using(column, id))?
        .map(|r| r.int("n"))
        .transpose()?
        .unwrap_or(0);
    if n > 0 {
        return Err(StoreError::Invalid(format!(
            "{kind} {name:?} has {n} queued or running jobs; cancel them first (hostler queue, hostler cancel ID)"
        )));
    }
    Ok(())
}

pub(super) fn host_from_row(r: &Row) -> Result<Host, StoreError> {
    let method: Method = r.text("method")?.parse().map_err(StoreError::Db)?;
    let vars = match r.opt_text("vars")? {
        Some(v) if !v.is_empty() => serde_json::from_str(&v)
            .map_err(|e| StoreError::Db(format!("host vars are not a JSON object: {e}")))?,
        _ => serde_json::Map::new(),
    };
    Ok(Host {
        id: r.int("id")?,
        name: r.text("name")?,
        address: r.text("address")?,
        port: r.opt_int("port")?.and_then(|p| u16::try_from(p).ok()),
        method,
        username: r.opt_text("username")?,
        has_secret: r.boolean("has_secret")?,
        key_path: r.opt_text("key_path")?,
        prompt: r.opt_text("prompt")?,
        site: r.opt_text("site")?,
        tags: r
            .opt_text("tags")?
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        vars,
        keep_session: r.boolean("keep_session")?,
        managed: r.boolean("managed")?,
        enabled: r.boolean("enabled")?,
    })
}

/// Checks a host's fields before any write.
pub(super) fn validate(h: &NewHost) -> Result<(), StoreError> {
    if !valid_name(&h.name) {
        return Err(StoreError::Invalid(format!(
            "invalid host name {:?}: use letters, digits, '-', '_' and '.'",
            h.name
        )));
    }
    if h.address.trim().is_empty() {
        return Err(StoreError::Invalid(format!(
            "host {}: the address is empty",
            h.name
        )));
    }
    if let Some(p) = &h.prompt {
        regex::Regex::new(p)
            .map_err(|e| StoreError::Invalid(format!("host {}: bad prompt regex: {e}", h.name)))?;
    }
    for t in &h.tags {
        if !valid_name(t) {
            return Err(StoreError::Invalid(format!("invalid tag {t:?}")));
        }
    }
    Ok(())
}

/// The columns a host's settings write, on insert and update alike (not the secret).
fn host_values(h: &NewHost) -> Vec<(&'static str, Expr)> {
    let vars = serde_json::Value::Object(h.vars.clone()).to_string();
    vec![
        ("name", param(h.name.as_str())),
        ("address", param(h.address.as_str())),
        ("port", param(h.port.map(i64::from))),
        ("method", param(h.method.unwrap_or(Method::Ssh).as_str())),
        ("username", param(h.username.clone())),
        ("key_path", param(h.key_path.clone())),
        ("prompt", param(h.prompt.clone())),
        ("site", param(h.site.clone())),
        (
            "tags",
            param((!h.tags.is_empty()).then(|| h.tags.join(" "))),
        ),
        ("vars", param(vars)),
        ("keep_session", param(!h.no_keep_session)),
    ]
}

/// Inserts a validated host with its sealed secret.
/// Inserts a validated host; its id. (`known_new`: the caller has seen that no host has the
/// name, as an apply's plan has, and the unique index refuses one made since; otherwise it
/// is read first, for a clearer error.)
pub(super) fn insert_host(
    c: &mut dyn super::Conn,
    h: &NewHost,
    sealed: Option<String>,
    managed: bool,
    known_new: bool,
) -> Result<i64, StoreError> {
    if !known_new && c.query_one(st::host_by_name(&h.name))?.is_some() {
        return Err(StoreError::Exists {
            kind: "host",
            name: h.name.clone(),
        });
    }
    let at = now_ms();
    let mut values = host_values(h);
    values.extend([
        ("secret", param(sealed)),
        ("enabled", param(true)),
        ("created_at", param(at)),
        ("updated_at", param(at)),
        ("managed", param(managed)),
    ]);
    c.insert(st::host_insert(values))
}

/// What becomes of a host's stored secret when its settings change.
#[derive(Debug, Clone)]
pub enum SecretChange {
    Keep,
    /// Replaced by this sealed one.
    Set(String),
    Clear,
}

/// Changes a validated host's settings (`managed`: Some marks it so, None leaves the mark).
pub(super) fn update_host_in(
    c: &mut dyn super::Conn,
    h: &NewHost,
    secret: &SecretChange,
    managed: Option<bool>,
) -> Result<(), StoreError> {
    let mut values = host_values(h);
    values.push(("updated_at", param(now_ms())));
    match secret {
        SecretChange::Keep => {}
        SecretChange::Set(s) => values.push(("secret", param(s.clone()))),
        SecretChange::Clear => values.push(("secret", param(None::<String>))),
    }
    if let Some(m) = managed {
        values.push(("managed", param(m)));
    }
    match c.exec(st::host_update(&h.name, values))? {
        0 => Err(StoreError::NotFound {
            kind: "host",
            name: h.name.clone(),
        }),
        _ => Ok(()),
    }
}

/// Removes a host with its checks, dependencies and heartbeats (schedules and pinned keys go
/// by cascade); refused while its jobs are queued or running.
pub(super) fn delete_host(c: &mut dyn super::Conn, name: &str) -> Result<(), StoreError> {
    let id = host_id(c, name)?;
    refuse_with_jobs(c, "host", name, "host_id", id)?;
    c.exec(st::host_delete(name))?;
    c.exec(st::check_delete_of("host", name))?;
    c.exec(st::dependency_delete_of("child_host", name))?;
    c.exec(st::dependency_delete_of("parent_host", name))?;
    c.exec(st::heartbeat_delete_of(name))?;
    Ok(())
}

impl Store {
    /// A host's new secret, sealed (None: none given).
    pub(super) fn seal_of(&self, h: &NewHost) -> Result<Option<String>, StoreError> {
        h.secret
            .as_ref()
            .map(|s| self.vault.seal(s.expose()))
            .transpose()
    }

    pub fn add_host(&self, h: &NewHost) -> Result<Host, StoreError> {
        validate(h)?;
        let sealed = self.seal_of(h)?;
        self.write(|c| insert_host(c, h, sealed, false, false).map(drop))?;
        self.host(&h.name)
    }

    /// Changes a host's settings. Its secret is replaced only when `h.secret` is given, and
    /// removed when `clear_secret`; otherwise the stored one is kept (a form never shows it).
    pub fn update_host(&self, h: &NewHost, clear_secret: bool) -> Result<Host, StoreError> {
        validate(h)?;
        let secret = match self.seal_of(h)? {
            Some(s) => SecretChange::Set(s),
            None if clear_secret => SecretChange::Clear,
            None => SecretChange::Keep,
        };
        self.write(|c| update_host_in(c, h, &secret, None))?;
        self.host(&h.name)
    }

    pub fn hosts(&self) -> Result<Vec<Host>, StoreError> {
        self.read(|c| {
            c.query(st::host_list())?
                .iter()
                .map(host_from_row)
                .collect()
        })
    }

    /// The host named `name`, or a not-found error naming it.
    pub fn host(&self, name: &str) -> Result<Host, StoreError> {
        self.read(|c| c.query_one(st::host_by_name(name)))?
            .map(|r| host_from_row(&r))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "host",
                name: name.to_string(),
            })
    }

    /// Removes a host with its schedules, pinned keys, checks and dependencies. Refused while jobs of the host are
    /// queued or running: they would vanish without a run in the history.
    pub fn remove_host(&self, name: &str) -> Result<(), StoreError> {
        self.write(|c| delete_host(c, name))
    }

    /// The SSH host keys pinned for a host.
    pub fn host_keys(&self, name: &str) -> Result<Vec<PinnedKey>, StoreError> {
        self.read(|c| {
            host_id(c, name)?;
            c.query(st::host_keys(name))?
                .iter()
                .map(|r| {
                    Ok(PinnedKey {
                        key_type: r.text("key_type")?,
                        key_data: r.text("key_data")?,
                        fingerprint: r.text("fingerprint")?,
                        first_seen: r.int("first_seen")?,
                    })
                })
                .collect()
        })
    }

    /// Pins `key` for a host. With `replace`, the keys pinned before are dropped in the same
    /// transaction (`hostler host trust`); without, a key of a type already pinned is refused
    /// by the unique constraint rather than silently replaced.
    pub fn pin_host_key(
        &self,
        name: &str,
        key_type: &str,
        key_data: &str,
        fingerprint: &str,
        replace: bool,
    ) -> Result<(), StoreError> {
        self.write(|c| {
            let id = host_id(c, name)?;
            if replace {
                c.exec(st::host_keys_delete(id))?;
            }
            c.exec(st::host_key_insert(
                id,
                key_type,
                key_data,
                fingerprint,
                now_ms(),
            ))?;
            Ok(())
        })
    }

    /// The stored secret of a host, for a session's login only.
    pub fn host_secret(&self, name: &str) -> Result<Option<Secret>, StoreError> {
        let row = self
            .read(|c| c.query_one(st::host_secret(name)))?
            .ok_or_else(|| StoreError::NotFound {
                kind: "host",
                name: name.to_string(),
            })?;
        row.opt_text("secret")?
            .map(|s| self.vault.open(&s).map(Secret::new))
            .transpose()
    }

    /// Seals the secrets stored before sealing existed (on open). A database that cannot be
    /// written now (read-only, busy) keeps them until the next open that can.
    pub fn seal_plain_secrets(&self) {
        let plain = self.read(|c| {
            let mut out = Vec::new();
            for r in c.query(st::host_secrets())? {
                let secret = r.opt_text("secret")?.unwrap_or_default();
                if !secret.starts_with(super::vault::SEALED) {
                    out.push((r.text("name")?, secret));
                }
            }
            Ok(out)
        });
        let plain = match plain {
            Ok(p) if p.is_empty() => return,
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("cannot look for unsealed secrets: {e}");
                return;
            }
        };
        let sealed: Result<Vec<(String, String)>, StoreError> = plain
            .iter()
            .map(|(n, s)| Ok((n.clone(), self.vault.seal(s)?)))
            .collect();
        let result = sealed.and_then(|sealed| self.store_sealed(&sealed));
        match result {
            Ok(()) => tracing::info!(
                hosts = plain.len(),
                "sealed stored secrets with the key file"
            ),
            Err(e) => tracing::warn!("cannot seal {} stored secrets yet: {e}", plain.len()),
        }
    }

    /// Stores sealed secrets by host name, all in one transaction.
    fn store_sealed(&self, sealed: &[(String, String)]) -> Result<(), StoreError> {
        self.write(|c| {
            for (name, value) in sealed {
                c.exec(st::host_update(
                    name,
                    vec![("secret", param(value.clone()))],
                ))?;
            }
            Ok(())
        })
    }

    /// Re-seals every host secret under a new key (`hostler key rotate`); returns how many
    /// and the new key's id.
    pub fn rotate_key(&self) -> Result<(usize, String), StoreError> {
        self.vault.begin_rotation()?;
        let done = self.reseal_all();
        if done.is_err() {
            self.vault.abandon_rotation();
        }
        let resealed = done?;
        let id = self.vault.finish_rotation()?;
        Ok((resealed, id))
    }

    /// How many hosts have a stored secret (`serve` says at start when they cannot be
    /// opened because the key file is missing).
    pub fn stored_secrets(&self) -> Result<usize, StoreError> {
        self.read(|c| Ok(c.query(st::host_secrets())?.len()))
    }

    /// Re-seals every secret not sealed with the new key, until a pass finds none: a secret
    /// another process sealed with the old key just before the rotation began, and committed
    /// after this read the secrets, is caught by the next pass.
    fn reseal_all(&self) -> Result<usize, StoreError> {
        let new_id = self.vault.sealing_id()?;
        let mut total = 0;
        for _pass in 0..10 {
            let rows = self.read(|c| {
                let mut out = Vec::new();
                for r in c.query(st::host_secrets())? {
                    out.push((r.text("name")?, r.opt_text("secret")?.unwrap_or_default()));
                }
                Ok(out)
            })?;
            let mut resealed = Vec::new();
            for (name, stored) in &rows {
                if stored.is_empty() || self.vault.sealed_with(stored, &new_id) {
                    continue;
                }
                let plain = self.vault.open(stored)?;
                resealed.push((name.clone(), stored.clone(), self.vault.seal(&plain)?));
            }
            if resealed.is_empty() {
                return Ok(total);
            }
            total += self.write(|c| {
                let mut n = 0;
                for (name, old, new) in &resealed {
                    n += c.exec(st::host_reseal(name, old, new))? as usize;
                }
                Ok(n)
            })?;
        }
        Err(StoreError::Invalid(
            "secrets kept being sealed with the old key during the rotation; try again".into(),
        ))
    }
}
