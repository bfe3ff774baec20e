//! Test helpers: a temporary workspace, the real binary with a clean environment, and waits
//! with deadlines instead of blind sleeps.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use hostler::config::Sandbox;
use hostler::script::{Cache, Remote, Runner};
use hostler::session::Allowlist;
use hostler::store::{NewScript, ScriptKind, Store};

/// A temporary folder holding a database, removed on drop.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes `config` (a config that allows `sh` and `cat`) and `peek.rhai`, a script that
    /// says its parent's environment (`/proc/$PPID/environ`) as its message.
    pub fn peek_at_the_parents_environment(&self, config: &str) {
        std::fs::write(
            self.path(config),
            "[sandbox]\nallowed_commands = [\"sh\", \"cat\"]\n",
        )
        .expect("config");
        std::fs::write(
            self.path("peek.rhai"),
            r#"let r = exec("sh", ["-c", "cat /proc/$PPID/environ"]); ok(`${r.stdout}|${r.stderr}`)"#,
        )
        .expect("script");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db(&self) -> String {
        self.path("hostler.db").display().to_string()
    }

    pub fn store(&self) -> Arc<Store> {
        Arc::new(Store::open(&self.db()).expect("open store"))
    }

    /// The store, once another process has created the database.
    pub fn store_when_ready(&self) -> Arc<Store> {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if self.path("hostler.db").exists()
                && let Ok(s) = Store::open(&self.db())
            {
                return Arc::new(s);
            }
            assert!(
                std::time::Instant::now() < end,
                "the database never appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The real binary, in this folder, with a cleared environment and this database.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_with(&bin(), args)
    }

    /// Another program (a shell that sets limits, say) in the same environment.
    pub fn cmd_with(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("HOSTLER_DB", self.db())
            .stdin(Stdio::null());
        c
    }

    /// Runs the binary and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run hostler")
    }

    /// Runs the binary with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hostler");
        // hostler may exit before reading (a usage error, say): that is its answer, not ours.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes());
        child.wait_with_output().expect("wait hostler")
    }

    /// An environment for running scripts in-process, allowing `allowed` commands.
    pub fn env(&self, allowed: &[&str], limits: Option<Sandbox>) -> Runner {
        let mut limits = limits.unwrap_or_default();
        limits.allowed_commands = allowed.iter().map(|s| s.to_string()).collect();
        let allow = Allowlist::new(&limits.allowed_commands)
            .and_then(|a| {
                a.with_arguments(
                    &limits.refused_arguments,
                    &limits.arguments,
                    &limits.environment,
                )
            })
            .expect("allowlist");
        Runner::new(
            self.store(),
            limits,
            allow,
            Arc::new(Cache::default()),
            "test-node".into(),
            Arc::new(Remote::default()),
        )
    }

    /// Saves `source` as the script `main` and runs it once, without a host, with these
    /// commands allowed and these limits.
    pub fn run_script(
        &self,
        allowed: &[&str],
        limits: Option<Sandbox>,
        source: &str,
    ) -> hostler::store::NewRun {
        let env = self.env(allowed, limits);
        self.script(&env.store, "main", source);
        env.execute(
            &hostler::script::RunRequest {
                script: "main".into(),
                ..Default::default()
            },
            None,
        )
    }

    /// Saves a script.
    pub fn script(&self, store: &Store, name: &str, source: &str) {
        store
            .save_scripts(&[NewScript {
                name,
                source,
                description: None,
                kind: ScriptKind::Task,
            }])
            .expect("save script");
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Whether a required outside tool is present. When CI sets HOSTLER_REQUIRE_PEERS=1 a missing
/// tool fails the test; elsewhere the test says it is skipped, and why.
pub fn have(path: &str, why: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if std::env::var("HOSTLER_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("{path} is missing ({why}); the README's test command installs it");
    }
    eprintln!("SKIPPED: {path} is missing ({why}); run the README's test command to install it");
    false
}

/// Whether a process whose command line holds `marker` is running on this machine.
pub fn process_running(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|c| String::from_utf8_lossy(&c).contains(marker))
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The binary under test: `$HOSTLER_BIN` (CI points it at the static release build for the
/// hostile suite), else the one cargo built with the tests.
pub fn bin() -> String {
    std::env::var("HOSTLER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hostler").to_string())
}

/// This test process's resident memory in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
