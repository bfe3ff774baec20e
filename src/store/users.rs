//! Web users and API tokens. The store keeps only hashes; hashing and checking passwords is
//! the web module's job.

use super::statements as st;
use super::{ConnExt, Role, Row, Store, StoreError, now_ms};

/// A web user. The password hash is kept out of `Debug` and serialisation.
#[derive(Clone, serde::Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub created_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User({}, {})", self.name, self.role)
    }
}

fn user_from_row(r: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: r.int("id")?,
        name: r.text("name")?,
        password_hash: r.text("password_hash")?,
        role: r.text("role")?.parse().map_err(StoreError::Db)?,
        created_at: r.int("created_at")?,
    })
}

/// An API token as listed: never its value, which only its creator saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl Store {
    /// API tokens, newest first; of one user when given.
    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        self.read(|c| {
            c.query(st::token_list(user))?
                .iter()
                .map(|r| {
                    Ok(TokenInfo {
                        id: r.int("id")?,
                        user: r.text("user")?,
                        label: r.text("label")?,
                        created_at: r.int("created_at")?,
                        last_used_at: r.opt_int("last_used_at")?,
                    })
                })
                .collect()
        })
    }

    /// Revokes one API token.
    pub fn remove_token(&self, id: i64) -> Result<(), StoreError> {
        self.write(|c| match c.exec(st::token_delete(id))? {
            0 => Err(StoreError::NotFound {
                kind: "token",
                name: id.to_string(),
            }),
            _ => Ok(()),
        })
    }

    /// A value from `settings`.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .read(|c| c.query_one(st::setting_get(key)))?
            .map(|r| r.opt_text("value"))
            .transpose()?
            .flatten())
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.write(|c| c.exec(st::setting_set(key, value)).map(|_| ()))
    }

    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|c| {
            c.query(st::user_list())?
                .iter()
                .map(user_from_row)
                .collect()
        })
    }

    pub fn user_count(&self) -> Result<i64, StoreError> {
        self.read(|c| match c.query_one(st::user_count())? {
            Some(r) => r.int("n"),
            None => Ok(0),
        })
    }

    pub fn find_user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.read(|c| c.query_one(st::user_by_name(name)))?
            .map(|r| user_from_row(&r))
            .transpose()
    }

    /// Adds a user, or (with `replace`) sets an existing user's password hash and keeps its
    /// role.
    pub fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        replace: bool,
    ) -> Result<(), StoreError> {
        self.set_user(name, password_hash, role, replace, false)
    }

    /// [`Store::add_user`]; a new password for an existing user also ends its API tokens,
    /// unless `keep_tokens`. Returns nothing; the tokens go in the same transaction.
    pub fn set_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        replace: bool,
        keep_tokens: bool,
    ) -> Result<(), StoreError> {
        if !super::valid_name(name) {
            return Err(StoreError::Invalid(format!(
                "invalid user name {name:?}: use letters, digits, '-', '_' and '.'"
            )));
        }
        self.write(|c| {
            if let Some(existing) = c.query_one(st::user_by_name(name))? {
                if !replace {
                    return Err(StoreError::Exists {
                        kind: "user",
                        name: name.into(),
                    });
                }
                c.exec(st::user_set_password(name, password_hash))?;
                if !keep_tokens {
                    c.exec(st::token_delete_for_user(existing.int("id")?))?;
                }
                return Ok(());
            }
            c.insert(st::user_insert(
                name,
                password_hash,
                role.as_str(),
                now_ms(),
            ))?;
            Ok(())
        })
    }

    pub fn remove_user(&self, name: &str) -> Result<(), StoreError> {
        self.write(|c| match c.exec(st::user_delete(name))? {
            0 => Err(StoreError::NotFound {
                kind: "user",
                name: name.into(),
            }),
            _ => Ok(()),
        })
    }

    /// Stores an API token's hash for a user.
    pub fn add_token(&self, user: &str, label: &str, token_hash: &str) -> Result<(), StoreError> {
        self.write(|c| {
            let u = c
                .query_one(st::user_by_name(user))?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "user",
                    name: user.into(),
                })?;
            c.insert(st::token_insert(u.int("id")?, label, token_hash, now_ms()))?;
            Ok(())
        })
    }

    /// The user an API token hash belongs to. Its last use is recorded at most once a minute.
    pub fn token_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let Some(row) = self.read(|c| c.query_one(st::token_user(token_hash)))? else {
            return Ok(None);
        };
        let at = now_ms();
        if row.opt_int("last_used_at")?.is_none_or(|t| at - t > 60_000) {
            let id = row.int("token_id")?;
            // Bookkeeping only: a busy database must not turn a valid token away.
            if let Err(e) = self.write(|c| c.exec(st::token_touch(id, at)).map(drop)) {
                tracing::debug!("recording an API token's use: {e}");
            }
        }
        user_from_row(&row).map(Some)
    }
}
