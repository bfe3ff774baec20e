//! Scripts: stored source with a version that every save bumps.

use super::statements as st;
use super::{ConnExt, Row, Script, ScriptKind, Store, StoreError, now_ms};

/// The id of the script named `name`, or a not-found error naming it.
pub(super) fn script_id(c: &mut dyn super::Conn, name: &str) -> Result<i64, StoreError> {
    c.query_one(st::script_version(name))?
        .ok_or_else(|| StoreError::NotFound {
            kind: "script",
            name: name.to_string(),
        })?
        .int("id")
}

fn script_from_row(r: &Row) -> Result<Script, StoreError> {
    Ok(Script {
        id: r.int("id")?,
        name: r.text("name")?,
        source: r.text("source")?,
        description: r.opt_text("description")?,
        kind: r.text("kind")?.parse().map_err(StoreError::Db)?,
        version: r.int("version")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(super) fn check_name(name: &str) -> Result<(), StoreError> {
    if super::hosts::valid_name(name) {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "invalid script name {name:?}: use letters, digits, '-', '_' and '.'"
    )))
}

/// What a save expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No script of that name.
    New,
    /// The script at this version.
    Version(i64),
    /// Anything: create or replace.
    Any,
}

/// Creates or replaces one script inside a write; returns its version.
pub(super) fn save_one(
    c: &mut dyn super::Conn,
    s: &NewScript<'_>,
    expect: Expect,
    at: i64,
) -> Result<i64, StoreError> {
    let kind = s.kind.as_str();
    let current = c
        .query_one(st::script_version(s.name))?
        .map(|r| r.int("version"))
        .transpose()?;
    match (expect, current) {
        (Expect::New, Some(_)) => {
            return Err(StoreError::Exists {
                kind: "script",
                name: s.name.to_string(),
            });
        }
        (Expect::Version(want), Some(v)) if v != want => {
            return Err(StoreError::Invalid(format!(
                "script {} changed since version {want} was opened (now version {v}); copy your text, reload and merge",
                s.name
            )));
        }
        (Expect::Version(_), None) => {
            return Err(StoreError::NotFound {
                kind: "script",
                name: s.name.to_string(),
            });
        }
        _ => {}
    }
    if let Some(v) = current {
        // Saving what is already there changes nothing, not even the version.
        let same = c
            .query_one(st::script_by_name(s.name))?
            .map(|r| script_from_row(&r))
            .transpose()?
            .is_some_and(|old| {
                old.source == s.source && old.kind == s.kind && old.description == s.description
            });
        if same {
            return Ok(v);
        }
    }
    if current.is_some() {
        c.exec(st::script_update(
            s.name,
            s.source,
            s.description.as_deref(),
            kind,
            at,
        ))?;
    } else {
        c.insert(st::script_insert(
            s.name,
            s.source,
            s.description.as_deref(),
            kind,
            at,
        ))?;
    }
    c.query_one(st::script_version(s.name))?
        .ok_or_else(|| StoreError::Db(format!("script {} vanished", s.name)))?
        .int("version")
}

/// A script to save.
#[derive(Debug, Clone)]
pub struct NewScript<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub description: Option<String>,
    pub kind: ScriptKind,
}

impl Store {
    pub fn scripts(&self) -> Result<Vec<Script>, StoreError> {
        self.read(|c| {
            c.query(st::script_list())?
                .iter()
                .map(script_from_row)
                .collect()
        })
    }

    pub fn script(&self, name: &str) -> Result<Script, StoreError> {
        self.find_script(name)?.ok_or_else(|| StoreError::NotFound {
            kind: "script",
            name: name.to_string(),
        })
    }

    pub fn find_script(&self, name: &str) -> Result<Option<Script>, StoreError> {
        self.read(|c| c.query_one(st::script_by_name(name)))?
            .map(|r| script_from_row(&r))
            .transpose()
    }

    /// The version of a stored script, if it exists (cheap: no source).
    pub fn script_version(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.read(|c| c.query_one(st::script_version(name)))?
            .map(|r| r.int("version"))
            .transpose()
    }

    /// The versions of the stored scripts among `names`, in one query (a name missing from the
    /// answer is not stored).
    pub fn script_versions(
        &self,
        names: &[String],
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        self.read(|c| c.query(st::scripts_versions(names)))?
            .iter()
            .map(|r| Ok((r.text("name")?, r.int("version")?)))
            .collect()
    }

    /// [`Store::script_versions`] of `names`, each name in the answer (None: not stored),
    /// with the time of the read: read once for many runs (the jobs of one claim).
    pub fn versions_read(&self, names: &[String]) -> Result<super::VersionsRead, StoreError> {
        let at = std::time::Instant::now();
        let found = self.script_versions(names)?;
        Ok(super::VersionsRead {
            at,
            of: names
                .iter()
                .map(|n| (n.clone(), found.get(n).copied()))
                .collect(),
        })
    }

    /// Saves scripts in one transaction: each is created, or replaced with its version bumped.
    /// Returns the saved versions in order.
    pub fn save_scripts(&self, scripts: &[NewScript<'_>]) -> Result<Vec<i64>, StoreError> {
        for s in scripts {
            check_name(s.name)?;
        }
        let at = now_ms();
        self.write(|c| {
            scripts
                .iter()
                .map(|s| save_one(c, s, Expect::Any, at))
                .collect()
        })
    }

    /// Saves one script if the stored one is what the editor expects (checked in the same
    /// transaction as the write, so two editors cannot both win); returns the new version.
    pub fn save_script_if(&self, s: &NewScript<'_>, expect: Expect) -> Result<i64, StoreError> {
        check_name(s.name)?;
        let at = now_ms();
        self.write(|c| save_one(c, s, expect, at))
    }

    /// Adds the scripts that do not exist yet; operator edits are never overwritten.
    /// Returns the names added.
    pub fn seed_scripts(&self, scripts: &[NewScript<'_>]) -> Result<Vec<String>, StoreError> {
        let at = now_ms();
        self.write(|c| {
            let mut added = Vec::new();
            for s in scripts {
                if c.query_one(st::script_version(s.name))?.is_none() {
                    c.insert(st::script_insert(
                        s.name,
                        s.source,
                        s.description.as_deref(),
                        s.kind.as_str(),
                        at,
                    ))?;
                    added.push(s.name.to_string());
                }
            }
            Ok(added)
        })
    }

    /// Removes a script with its schedules. Refused while its jobs are queued or running.
    pub fn remove_script(&self, name: &str) -> Result<(), StoreError> {
        self.write(|c| {
            let id = script_id(c, name)?;
            super::hosts::refuse_with_jobs(c, "script", name, "script_id", id)?;
            c.exec(st::script_delete(name))?;
            c.exec(st::check_delete_of("script", name))?;
            Ok(())
        })
    }
}
