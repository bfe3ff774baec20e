//! The files a script's commands may never touch: the database and its journal, the key file,
//! the config file, the first admin's password file. Each command a script starts (`exec`,
//! `spawn`, a local login shell) runs under a Landlock ruleset that allows every path on the
//! machine except those files, so an allowed command (`grep`, a plugin) cannot read a secret
//! the daemon holds. Landlock also keeps the command from tracing the daemon, so its
//! environment (`/proc/PID/environ`, which `ps e` reads) stays closed too.
//!
//! Landlock only allows: a rule opens everything beneath a path. So the ruleset opens every
//! entry of each folder on the way to a protected file except the one leading to it, and in
//! the protected file's own folder every entry but the protected ones (as they were when the
//! ruleset was made, at most a second before the command starts: an entry made later in that
//! folder stays closed). On a kernel without
//! Landlock the rules are not enforced, and hostler says so once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr,
    path_beneath_rules,
};

/// A folder with more entries than this is not opened entry by entry: its entries stay
/// closed to commands (the safe side), and hostler says so.
const MAX_ENTRIES: usize = 4096;

/// The protected files, as names (prefixes: `hostler.db` covers `hostler.db-wal` and
/// `hostler.db.key`) in their folders.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    /// Folder (canonical) → names protected in it.
    by_dir: BTreeMap<PathBuf, BTreeSet<String>>,
    /// The last ruleset made, for [`RULESET_KEPT`]: each command gets a copy of it.
    made: Arc<Mutex<Option<Made>>>,
}

/// How long a ruleset is used again. Building one lists every folder on the way to the
/// protected files and adds a rule per entry (about a hundred), for each command; kept, an
/// entry made meanwhile stays closed a little longer, never open.
const RULESET_KEPT: Duration = Duration::from_secs(1);

/// A ruleset and when it was made.
struct Made(Instant, RulesetCreated);

impl std::fmt::Debug for Made {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Made").field(&self.0).finish()
    }
}

impl Protected {
    /// Protects `path` and every file beside it whose name starts with its name.
    pub fn add(&mut self, path: &Path) {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().to_string()) else {
            return;
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        self.by_dir.entry(dir).or_default().insert(name);
    }

    pub fn is_empty(&self) -> bool {
        self.by_dir.is_empty()
    }

    /// What is protected, for messages.
    pub fn describe(&self) -> String {
        self.by_dir
            .iter()
            .flat_map(|(d, names)| names.iter().map(move |n| d.join(format!("{n}*"))))
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The paths a command may use: everything but the protected files.
    fn open_paths(&self) -> Vec<PathBuf> {
        // Every folder on the way to a protected file, and what is closed in it.
        let mut closed: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
        let mut prefixes: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
        for (dir, names) in &self.by_dir {
            prefixes
                .entry(dir.clone())
                .or_default()
                .extend(names.iter().cloned());
            closed.entry(dir.clone()).or_default();
            let mut child = dir.as_path();
            while let Some(parent) = child.parent() {
                if let Some(n) = child.file_name() {
                    closed
                        .entry(parent.to_path_buf())
                        .or_default()
                        .insert(n.to_string_lossy().to_string());
                }
                child = parent;
            }
        }
        let mut open = Vec::new();
        for (dir, names) in &closed {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let protected = prefixes.get(dir);
            let mut listed = Vec::new();
            for e in entries.flatten().take(MAX_ENTRIES + 1) {
                let name = e.file_name().to_string_lossy().to_string();
                let hidden = names.contains(&name)
                    || protected.is_some_and(|p| p.iter().any(|n| name.starts_with(n.as_str())));
                if !hidden {
                    listed.push(e.path());
                }
            }
            if listed.len() > MAX_ENTRIES {
                warn_once(&format!(
                    "{} has more than {MAX_ENTRIES} entries: commands that scripts start cannot use any of them",
                    dir.display()
                ));
                continue;
            }
            open.extend(listed);
        }
        open
    }

    /// A ruleset for one command: every path open but the protected files. None when there
    /// is nothing to protect.
    pub fn ruleset(&self) -> Result<Option<RulesetCreated>, String> {
        if self.is_empty() {
            return Ok(None);
        }
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Made(at, r)) = &*made
            && at.elapsed() < RULESET_KEPT
            && let Ok(copy) = r.try_clone()
        {
            return Ok(Some(copy));
        }
        let fresh = self.build()?;
        // A copy that cannot be made: this command gets the fresh one, and none is kept.
        *made = fresh
            .try_clone()
            .ok()
            .map(|copy| Made(Instant::now(), copy));
        Ok(Some(fresh))
    }

    fn build(&self) -> Result<RulesetCreated, String> {
        let abi = ABI::V5;
        let created = Ruleset::default()
            .handle_access(AccessFs::from_all(abi))
            .and_then(|r| r.create())
            .and_then(|r| {
                r.add_rules(path_beneath_rules(
                    self.open_paths(),
                    AccessFs::from_all(abi),
                ))
            })
            .map_err(|e| format!("cannot make the file sandbox: {e}"))?;
        Ok(created)
    }
}

fn warn_once(msg: &str) {
    static SAID: std::sync::Mutex<Option<BTreeSet<String>>> = std::sync::Mutex::new(None);
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if said
        .get_or_insert_with(BTreeSet::new)
        .insert(msg.to_string())
    {
        tracing::warn!("{msg}");
    }
}
