//! The engines: hardened with the `[sandbox]` limits ([`harden`]), and the one engine a
//! process's runs share ([`for_runs`]), which finds each run through its thread.

use std::sync::Arc;

use rhai::{Dynamic, Engine};

use super::api::{self, with_current};
use super::resolver::{Cache, DbResolver};
use crate::config::Sandbox;
use crate::store::Store;

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

/// The engine every run of a process evaluates on: hardened, with the API, `print` and
/// `debug` going to the run's output, and `import` from the database. Building it (the API's
/// 89 functions with their signatures) cost 50 KB and 112 µs a run when each run built
/// its own.
pub fn for_runs(limits: &Sandbox, store: Arc<Store>, cache: Arc<Cache>) -> Engine {
    let mut engine = base_engine();
    harden(&mut engine, limits);
    api::register(&mut engine);
    engine.on_print(|s| {
        with_current(|c| c.out(s));
    });
    engine.on_debug(|s, _, pos| {
        with_current(|c| c.out(&format!("debug {pos}: {s}")));
    });
    engine.set_module_resolver(DbResolver::new(store, cache));
    engine
}

/// Applies every limit to `engine`, checks the run's deadline, cancel flag and memory on each
/// operation, and removes `eval`. File access never exists: no file module resolver or file
/// function is registered (the module resolver is the database's).
pub fn harden(engine: &mut Engine, limits: &Sandbox) {
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
        match with_current(|c| c.guard.check()).unwrap_or(Ok(())) {
            Ok(()) => None,
            Err(crate::session::SessionError::Cancelled) => {
                Some(Dynamic::from(TERMINATED_CANCELLED))
            }
            Err(crate::session::SessionError::Memory) => Some(Dynamic::from(TERMINATED_MEMORY)),
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
