//! The one function that hardens a Rhai engine, and the limits it applies.

use std::time::Duration;

use rhai::{Dynamic, Engine};
use serde::Deserialize;

use crate::session::Guard;

/// The `[sandbox]` settings. Every field has a default, so a run with no config at all is bounded:
/// a busy loop hits `max_operations` in well under a second, a wait-heavy loop hits `timeout`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Rhai operations per script (and per imported module's initialisation).
    pub max_operations: u64,
    /// Wall-clock seconds per run, including every network wait.
    pub timeout: f64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_modules: usize,
    /// Bytes of output and of transcript kept per run.
    pub max_output: usize,
    /// Globs of the commands scripts may run with `exec` and `spawn` (see
    /// [`crate::session::Allowlist`]).
    pub allowed_commands: Vec<String>,
    /// Options refused to every command, besides `--extra-opts` (always refused).
    pub refused_arguments: Vec<String>,
    /// `[sandbox.arguments."GLOB"]`: per command, more refused options, or the only ones.
    pub arguments: std::collections::BTreeMap<String, crate::session::ArgumentRule>,
    /// Names of environment variables commands get besides PATH and LANG.
    pub environment: Vec<String>,
    /// Whether `credentials(host)` answers for hosts other than the run's own.
    pub credentials_of_other_hosts: bool,
    /// Local processes (`spawn`, a local login) one run may have open at once.
    pub max_processes: usize,
    /// Sockets (`connect`, `http`) one run may have open at once.
    pub max_sockets: usize,
    /// Bytes one run may allocate and hold (counted by the allocator; see `script::memory`).
    pub max_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 10_000_000,
            timeout: 10.0,
            max_call_levels: 48,
            max_expr_depth: 64,
            max_string_size: 4 << 20,
            max_array_size: 100_000,
            max_map_size: 10_000,
            max_modules: 32,
            max_output: 1 << 20,
            // Read-only checks only: not check_by_ssh (runs any command) nor check_log
            // (copies files).
            allowed_commands: vec![
                "df".into(),
                "uptime".into(),
                "/usr/lib/nagios/plugins/check_{disk,load,users,procs,swap,dummy,ping,tcp,http,dns,ntp_time,uptime}".into(),
            ],
            refused_arguments: Vec::new(),
            arguments: std::collections::BTreeMap::new(),
            environment: Vec::new(),
            credentials_of_other_hosts: false,
            max_processes: 16,
            max_sockets: 64,
            max_memory: 256 << 20,
        }
    }
}

impl Limits {
    pub fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.timeout.max(0.001)).unwrap_or(Duration::from_secs(10))
    }
}

/// A raw engine with Rhai's standard library. The library is built once per process and
/// shared: `Engine::new()` rebuilds it every time, which cost 270 µs per run. A raw engine also
/// has no module resolver, so nothing can import from the file system before ours is set.
pub fn base_engine() -> Engine {
    use rhai::packages::{Package, StandardPackage};
    static STD: std::sync::OnceLock<StandardPackage> = std::sync::OnceLock::new();
    let mut engine = Engine::new_raw();
    engine.register_global_module(STD.get_or_init(StandardPackage::new).as_shared_module());
    engine
}

/// The token a run is terminated with when its deadline passes.
pub const TERMINATED_TIMEOUT: &str = "timeout";
/// The token a run is terminated with when it goes over its memory budget.
pub const TERMINATED_MEMORY: &str = "memory";
/// The token a run is terminated with when it is cancelled.
pub const TERMINATED_CANCELLED: &str = "cancelled";

/// Applies every limit to `engine`, checks the guard's deadline and cancel flag on each
/// operation, and removes `eval`. File access never exists: no file module resolver or file
/// function is registered (the module resolver is the database's, set by the caller).
pub fn harden(engine: &mut Engine, limits: &Limits, guard: Guard) {
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth / 2);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_modules(limits.max_modules);
    engine.disable_symbol("eval");
    unreserve_spawn(engine);
    engine.on_progress(move |ops| {
        // Checking the clock every 256 operations keeps the cost out of tight loops.
        if ops & 0xff != 0 {
            return None;
        }
        if super::memory::over_budget() {
            return Some(Dynamic::from(TERMINATED_MEMORY));
        }
        match guard.check() {
            Ok(()) => None,
            Err(crate::session::SessionError::Cancelled) => {
                Some(Dynamic::from(TERMINATED_CANCELLED))
            }
            Err(_) => Some(Dynamic::from(TERMINATED_TIMEOUT)),
        }
    });
}

/// Rhai reserves `spawn` for a future threading feature; hostler's API uses it for processes
/// (DPythOS's name), so the token is handed to the parser as a plain identifier.
#[allow(deprecated)] // on_parse_token is marked volatile, not deprecated.
fn unreserve_spawn(engine: &mut Engine) {
    engine.on_parse_token(|token, _, _| match token {
        rhai::Token::Reserved(s) if s.as_str() == "spawn" => rhai::Token::Identifier(s),
        other => other,
    });
}
