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

    /// Saves scripts in one transaction: each is created, or replaced with its version bumped.
    /// Returns the saved versions in order.
    pub fn save_scripts(&self, scripts: &[NewScript<'_>]) -> Result<Vec<i64>, StoreError> {
        for s in scripts {
            if !super::hosts::valid_name(s.name) {
                return Err(StoreError::Invalid(format!(
                    "invalid script name {:?}: use letters, digits, '-', '_' and '.'",
                    s.name
                )));
            }
        }
        let at = now_ms();
        self.write(|c| {
            let mut versions = Vec::new();
            for s in scripts {
                let kind = s.kind.as_str();
                if c.query_one(st::script_version(s.name))?.is_some() {
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
                let v = c
                    .query_one(st::script_version(s.name))?
                    .ok_or_else(|| StoreError::Db(format!("script {} vanished", s.name)))?
                    .int("version")?;
                versions.push(v);
            }
            Ok(versions)
        })
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
            Ok(())
        })
    }
}
