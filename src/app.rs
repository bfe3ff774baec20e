//! The process context every command, the daemon and the shell start from: the config and
//! where the database is, and what they open from them (the store, a script environment, the
//! session settings). Depends on config, store, script and session; nothing depends back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::script::{Cache, Runner};
use crate::session::Allowlist;
use crate::store::Store;

/// What every command needs: the config and where the database is.
pub struct App {
    pub config: Config,
    /// Where the config came from (None: the defaults), for a reload.
    pub config_path: Option<PathBuf>,
    pub db: String,
}

impl App {
    /// From `--config` (or `$HOSTLER_CONFIG`) and `--db` (or `$HOSTLER_DB`, or the config's
    /// `[database] url`).
    pub fn new(db: Option<String>, config: Option<PathBuf>) -> anyhow::Result<App> {
        let config_path = config.or_else(|| std::env::var_os("HOSTLER_CONFIG").map(PathBuf::from));
        let config = match &config_path {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        let db = db
            .or_else(crate::environ::database_url)
            .unwrap_or_else(|| config.database.url.clone());
        Ok(App {
            config,
            config_path,
            db,
        })
    }

    /// Refuses a SQLite file that does not exist: a command that only reads must not create
    /// an empty database at a mistyped path.
    pub fn require_database(&self) -> anyhow::Result<()> {
        let path = self
            .db
            .strip_prefix("sqlite://")
            .or_else(|| self.db.strip_prefix("sqlite:"))
            .unwrap_or(&self.db);
        if path.contains("://") || path.is_empty() || path == ":memory:" {
            return Ok(());
        }
        if !std::path::Path::new(path).exists() {
            anyhow::bail!("no database at {path} (create one with `hostler init`, or give --db)");
        }
        Ok(())
    }

    /// The database as messages show it: a URL's password masked.
    pub fn shown_db(&self) -> String {
        crate::redact::database_url(&self.db)
    }

    pub fn store(&self) -> anyhow::Result<Arc<Store>> {
        let store = Store::open(&self.db)?;
        store.set_policy(self.policy());
        Ok(Arc::new(store))
    }

    /// When a check is flapping, from `[monitord] flap_changes` and `flap_window`; how long
    /// a failing child waits for its parents (`dependency_settle`).
    pub fn policy(&self) -> crate::store::checks::Policy {
        let m = &self.config.monitord;
        let ms = |secs: f64| {
            std::time::Duration::try_from_secs_f64(secs.max(0.0)).map_or(i64::MAX, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            })
        };
        crate::store::checks::Policy {
            flap_changes: m.flap_changes,
            flap_window_ms: ms(m.flap_window),
            settle: crate::store::depends::Settle::of(ms(m.dependency_settle)),
            collapse_ok: self.config.history.collapse_ok,
            ..Default::default()
        }
    }

    /// The files commands that scripts start may never touch: the database file (and its
    /// journal, key and one-time password, which share its name), the key file, the config.
    pub fn protected(&self, store: &Store) -> crate::session::sandbox_fs::Protected {
        let mut p = crate::session::sandbox_fs::Protected::default();
        match store.sqlite_file() {
            Some(db) => p.add(db),
            // A server's database: the first admin's password file is made here.
            None => p.add(std::path::Path::new("hostler.admin-password")),
        }
        if let Some(key) = store.vault.key_path() {
            p.add(key);
        }
        if let Some(c) = &self.config_path {
            p.add(c);
        }
        p
    }

    pub fn env(&self, store: Arc<Store>) -> anyhow::Result<Runner> {
        let sandbox = &self.config.sandbox;
        let allow = Allowlist::new(&sandbox.commands())
            .and_then(|a| {
                a.with_arguments(
                    &sandbox.refused_arguments,
                    &sandbox.arguments,
                    &sandbox.environment,
                )
            })
            .map_err(|e| anyhow::anyhow!("config [sandbox]: {e}"))?
            .with_protected(self.protected(&store));
        Ok(Runner::new(
            store,
            self.config.sandbox.clone(),
            allow,
            Arc::new(Cache::default()),
            self.config.node(),
            Arc::new(self.remote()),
        ))
    }

    /// The session settings of `[ssh]` and `[sessions]`.
    pub fn remote(&self) -> crate::script::Remote {
        let s = &self.config.sessions;
        let secs = |v: f64| Duration::from_secs_f64(v.clamp(0.0, 86_400.0));
        crate::script::Remote {
            pool: crate::session::Pool::new(secs(s.idle_timeout), secs(s.max_lifetime)),
            trust_new: self.config.ssh.trust_new,
            connect_timeout: secs(s.connect_timeout).max(Duration::from_millis(100)),
            health_timeout: secs(s.health_timeout).max(Duration::from_millis(100)),
        }
    }
}
