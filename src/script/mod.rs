//! Running stored scripts in a hardened Rhai engine.
//!
//! One run: load the script (database first, then the bundled library), evaluate it on the
//! process's engine (hardened with [`harden`], with the API, built once) with the run's context
//! entered on its thread, and turn whatever happened into a [`NewRun`] for the history. A run always produces a record: a syntax error, a runaway loop
//! or a timeout become UNKNOWN or TIMEOUT runs with a message, never a lost run.
//!
//! Invariants:
//! - scripts cannot touch files: no file resolver or file function exists, `eval` is disabled,
//!   and commands run only through the `[sandbox] allowed_commands` allowlist;
//! - no database connection is held while a script runs; the API takes the store per call;
//! - every session a run opened is closed when the run ends, or, if the run ended normally and
//!   the session is at a known prompt, handed to the pool for the next run of its host.

pub mod api;
mod engine;
pub mod memory;
mod resolver;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, Scope};

pub use api::Remote;
pub use engine::harden;
pub use resolver::{Cache, DbResolver};

use crate::config::Sandbox;
use crate::session::{Allowlist, Guard, Transcript};
use crate::store::{Host, NewRun, ScriptKind, Status, Store, now_ms};
use api::{CheckResult, HostRef, RunContext};

/// A script that does not compile.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("script {script}, line {line}, column {column}: {message}")]
    Syntax {
        script: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// Runs scripts: what every run of this process shares (the store, the sandbox settings, the
/// compile cache, the session pool, the engine). [`Runner::execute`] makes one run.
#[derive(Clone)]
pub struct Runner {
    pub store: Arc<Store>,
    pub limits: Sandbox,
    /// Shared by every run: compiled once, never copied per run.
    pub allow: Arc<Allowlist>,
    pub cache: Arc<Cache>,
    /// This process's name in the runs table.
    pub node: String,
    /// The session pool and connection settings, shared by every run of this process.
    pub remote: Arc<Remote>,
    /// The engine every run evaluates on, built at the first run from `limits`.
    engine: Arc<std::sync::OnceLock<Engine>>,
}

/// One run to make.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub script: String,
    pub host: Option<String>,
    pub timeout: Option<Duration>,
    pub job_id: Option<i64>,
    pub schedule_id: Option<i64>,
    pub attempt: i64,
    /// A JSON object handed to the script as `args`.
    pub args: Option<String>,
    /// The check it is a run of, when not named after its script (a schedule's `--name`).
    pub check_name: Option<String>,
    /// The run is a fix: the re-check after it judges it, so it may end without a result
    /// (as may any script whose header says `//! kind: fix`).
    pub fix: bool,
    /// The host's row as the job's claim read it (monitord's runs): used instead of a read
    /// of its own when it is the row of `host`.
    pub host_row: Option<Box<Host>>,
    /// The scripts' versions as the job's claim read them for all its jobs (monitord's
    /// runs): used instead of a read of its own when fresh and naming every script the run
    /// reads ahead.
    pub versions: Option<Arc<crate::store::VersionsRead>>,
}

/// The message of a run that ended without a result call.
pub const NO_RESULT: &str =
    "script ended without a result (call ok(), warning(), critical() or unknown())";

/// Checks a script's syntax with the same engine settings runs use.
pub fn check_syntax(name: &str, source: &str) -> Result<(), ScriptError> {
    let mut engine = engine::base_engine();
    harden(&mut engine, &Sandbox::default());
    resolver::compile(&engine, name, source).map(|_| ())
}

/// Names of the API functions, taken from the engine itself so the list never goes stale.
pub fn api_function_names() -> Vec<String> {
    let mut engine = Engine::new_raw();
    api::register(&mut engine);
    let mut names: Vec<String> = engine
        .gen_fn_signatures(false)
        .into_iter()
        .filter_map(|s| s.split('(').next().map(str::to_string))
        // Property getters and setters (`get$address`) are not functions anyone calls.
        .filter(|n| !n.starts_with("__") && !n.contains('$'))
        .collect();
    names.sort();
    names.dedup();
    names
}

impl Runner {
    pub fn new(
        store: Arc<Store>,
        limits: Sandbox,
        allow: Allowlist,
        cache: Arc<Cache>,
        node: String,
        remote: Arc<Remote>,
    ) -> Runner {
        Runner {
            store,
            limits,
            allow: Arc::new(allow),
            cache,
            node,
            remote,
            engine: Arc::default(),
        }
    }

    /// An engine for an interactive shell: the same sandbox and API as a run, with `print`
    /// going straight to the terminal and no deadline (Ctrl-C sets the guard's cancel flag).
    /// The shell enters its context ([`api::Enter`]) while it evaluates a line.
    pub fn shell_engine(&self) -> Engine {
        let mut engine = engine::base_engine();
        harden(&mut engine, &self.limits);
        api::register(&mut engine);
        // Secrets the run has seen (credentials(), a host's password) are masked here too.
        engine.on_print(|s| {
            api::with_current(|c| println!("{}", c.mask(s)));
        });
        engine.on_debug(|s, _, pos| {
            api::with_current(|c| println!("debug {pos}: {}", c.mask(s)));
        });
        engine.set_module_resolver(DbResolver::new(self.store.clone(), self.cache.clone()));
        engine
    }

    /// The scripts a run of `script` reads the versions of before it starts: the script, and
    /// what its last run imported.
    fn read_ahead_names(&self, script: &str) -> Vec<String> {
        let mut names = vec![script.to_string()];
        names.extend(self.cache.imports_of(script));
        names
    }

    /// The versions the runs of `scripts` read ahead, in one query for all of them (the jobs
    /// of one claim); None when the read fails (each run then reads its own, and says why
    /// it failed).
    pub fn versions_for<'a>(
        &self,
        scripts: impl IntoIterator<Item = &'a str>,
    ) -> Option<Arc<crate::store::VersionsRead>> {
        let mut names: Vec<String> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for script in scripts {
            // Each script's names once (one imported by another is read ahead for its own
            // runs too).
            if seen.contains(&script) {
                continue;
            }
            seen.push(script);
            for n in self.read_ahead_names(script) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        if names.is_empty() {
            return None;
        }
        self.store.versions_read(&names).ok().map(Arc::new)
    }

    /// The engine runs evaluate on.
    fn engine(&self) -> &Engine {
        self.engine
            .get_or_init(|| engine::for_runs(&self.limits, self.store.clone(), self.cache.clone()))
    }

    /// Runs a script and returns the record of the run. Never fails: failures are the record.
    pub fn execute(&self, req: &RunRequest, cancel: Option<Arc<AtomicBool>>) -> NewRun {
        let started_at = now_ms();
        let timeout = self.limits.run_timeout(req.timeout);
        let mut guard = Guard::new(Some(timeout));
        if let Some(c) = cancel {
            guard.cancel = c;
        }
        // A session's buffer counts against the run's memory (the allocator charges it to
        // this thread), and on its own holds at most a quarter of it.
        guard.over_budget = Some(memory::over_budget);
        guard.max_buffer = Some((self.limits.max_memory / 4).max(1 << 20));
        let transcript = Transcript::sink(self.limits.max_output);
        let mut run = NewRun {
            job_id: req.job_id,
            schedule_id: req.schedule_id,
            script: req.script.clone(),
            script_version: None,
            host: req.host.clone(),
            node: Some(self.node.clone()),
            status: Status::Error,
            message: String::new(),
            perfdata: None,
            output: String::new(),
            transcript: String::new(),
            started_at,
            finished_at: started_at,
            attempt: req.attempt.max(1),
            phase: None,
            notifications: Vec::new(),
            check_name: req.check_name.clone(),
        };
        let claimed = req
            .host_row
            .as_deref()
            .filter(|r| Some(&r.name) == req.host.as_ref());
        let host = match (&req.host, claimed) {
            (Some(_), Some(row)) => Some(row.clone()),
            (Some(h), None) => match self.store.host(h) {
                Ok(h) => Some(h),
                Err(e) => {
                    run.message = e.to_string();
                    run.finished_at = now_ms();
                    return run;
                }
            },
            (None, _) => None,
        };
        // The process's engine, built by the first run: before the budget starts, so that no
        // run is charged for it.
        let engine = self.engine();
        // Everything this thread allocates from here until the run is recorded counts.
        let budget = memory::Budget::start(self.limits.max_memory);
        let mut ctx = RunContext::new(
            self.store.clone(),
            guard.clone(),
            self.allow.clone(),
            transcript.clone(),
            host.clone(),
            self.limits.max_output,
            self.remote.clone(),
        );
        if let Some(serde_json::Value::Object(args)) = req
            .args
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
        {
            ctx.args = args;
        }
        ctx.any_credentials = self.limits.credentials_of_other_hosts;
        ctx.max_processes = self.limits.max_processes;
        ctx.max_sockets = self.limits.max_sockets;
        ctx.imports = std::sync::Mutex::new(vec![req.script.clone()]);
        // The versions of the script and of what its last run imported: as the claim read
        // them for all its jobs, or else in one query; on an error each is read when loaded
        // instead, and fails there with its reason.
        let names = self.read_ahead_names(&req.script);
        let claimed = req
            .versions
            .as_deref()
            .and_then(|v| v.all_of(&names, std::time::Instant::now()));
        if let Some(versions) = claimed {
            ctx.versions_ahead = std::sync::Mutex::new(versions);
        } else if let Ok(found) = self.store.versions_read(&names) {
            ctx.versions_ahead = std::sync::Mutex::new(found.of);
        }
        let ctx = Arc::new(ctx);
        let _run = api::Enter::new(&ctx);
        let resolver = DbResolver::new(self.store.clone(), self.cache.clone());

        let (ast, kind) = match resolver.load(engine, &req.script) {
            Ok(Some(loaded)) => {
                run.script_version = loaded.version;
                (loaded.ast, loaded.kind)
            }
            Ok(None) => {
                run.message = format!("script {:?} not found", req.script);
                run.finished_at = now_ms();
                return run;
            }
            Err(e) => {
                run.message = e.to_string();
                run.finished_at = now_ms();
                return run;
            }
        };
        let mut scope = Scope::new();
        if let Some(h) = host {
            scope.push_constant("host", HostRef::new(h));
        } else {
            scope.push_constant("host", Dynamic::UNIT);
        }
        let args = req
            .args
            .as_deref()
            .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
            .map_or_else(
                || Dynamic::from_map(rhai::Map::new()),
                |v| api::json_to_dynamic(&v),
            );
        scope.push_constant("args", args);

        // A panic is a bug in hostler (or a crate), not in the script; it becomes this run's
        // error record instead of taking monitord, or a fan-out, down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(script = %req.script, "internal error during a run: {what}");
            Err(api::rt(format!(
                "internal error (a bug in hostler, please report it): {what}"
            )))
        });
        // Only a run that ended normally leaves its sessions in a known state for reuse.
        ctx.close_sessions(result.is_ok());
        let imported = std::mem::take(&mut *ctx.imported.lock().unwrap_or_else(|p| p.into_inner()));
        self.cache.learn(&req.script, imported);
        let fix = req.fix || kind == ScriptKind::Fix;
        let (status, message, perfdata) = classify(&req.script, result, fix, &self.limits, timeout);
        run.status = status;
        run.message = transcript
            .lock()
            .map(|t| t.mask(&message))
            .unwrap_or(message);
        run.perfdata = perfdata.map(|p| ctx.mask(&p));
        run.output = ctx.output();
        run.transcript = transcript.lock().map(|t| t.to_jsonl()).unwrap_or_default();
        run.notifications = ctx.take_notifications();
        run.finished_at = now_ms();
        drop(budget);
        run
    }
}

/// Turns a script's value or error into a status, a message and perfdata. A result is never
/// made up: a check that ends without one is UNKNOWN; only a fix (judged by its re-check)
/// may end without one, and is then recorded as having run to its end.
fn classify(
    script: &str,
    result: Result<Dynamic, Box<EvalAltResult>>,
    fix: bool,
    limits: &Sandbox,
    timeout: Duration,
) -> (Status, String, Option<String>) {
    match result {
        Ok(v) => {
            if let Some(r) = v.read_lock::<CheckResult>() {
                return (r.status, r.message.clone(), r.perfdata.clone());
            }
            let last = (!v.is_unit()).then(|| v.to_string());
            match (fix, last) {
                (true, None) => (
                    Status::Ok,
                    "fix ran to its end (the re-check judges it)".into(),
                    None,
                ),
                (true, Some(last)) => (Status::Ok, last, None),
                (false, None) => (Status::Unknown, NO_RESULT.into(), None),
                (false, Some(last)) => (
                    Status::Unknown,
                    format!("{NO_RESULT}; its last value was {last:?}"),
                    None,
                ),
            }
        }
        Err(e) => {
            let inner = innermost(&e);
            match inner {
                EvalAltResult::ErrorTerminated(token, _)
                    if token.to_string() == engine::TERMINATED_CANCELLED =>
                {
                    (
                        Status::Cancelled,
                        format!("script {script} was cancelled"),
                        None,
                    )
                }
                EvalAltResult::ErrorTerminated(token, _)
                    if token.to_string() == engine::TERMINATED_MEMORY =>
                {
                    (
                        Status::Error,
                        format!(
                            "script {script} stopped: it used more than {} MiB of memory ([sandbox] max_memory)",
                            limits.max_memory >> 20
                        ),
                        None,
                    )
                }
                EvalAltResult::ErrorTerminated(..) => (
                    Status::Timeout,
                    format!("script {script} stopped: its time limit of {timeout:.1?} ran out"),
                    None,
                ),
                EvalAltResult::ErrorTooManyOperations(pos) => (
                    Status::Error,
                    format!(
                        "script {script} stopped at {pos}: more than {} operations (runaway loop?)",
                        limits.max_operations
                    ),
                    None,
                ),
                EvalAltResult::ErrorStackOverflow(pos) => (
                    Status::Error,
                    format!(
                        "script {script} stopped at {pos}: calls nested deeper than {} (runaway recursion?)",
                        limits.max_call_levels
                    ),
                    None,
                ),
                // Rhai says "Runtime error: boom (line 1, position 1)"; the prefix adds nothing.
                // An error inside an imported function names where it happened, on one line.
                _ => (
                    Status::Error,
                    format!("script {script}: {}", error_text(&e)),
                    None,
                ),
            }
        }
    }
}

/// A script error on one line: what went wrong, where, and in which imported function;
/// not Rhai's chain of "in call to function" lines.
pub fn error_text(e: &EvalAltResult) -> String {
    let text = innermost(e).to_string();
    let text = text.strip_prefix("Runtime error: ").unwrap_or(&text);
    let place = match deepest_call(e) {
        Some((f, src)) if !src.is_empty() => format!(" (in {src}::{f})"),
        Some((f, _)) => format!(" (in {f})"),
        None => String::new(),
    };
    format!("{text}{place}")
}

/// The innermost function call (name, module) an error passed through.
fn deepest_call(e: &EvalAltResult) -> Option<(String, String)> {
    match e {
        EvalAltResult::ErrorInFunctionCall(f, src, inner, _) => {
            deepest_call(inner).or_else(|| Some((f.clone(), src.clone())))
        }
        EvalAltResult::ErrorInModule(_, inner, _) => deepest_call(inner),
        _ => None,
    }
}

/// The error at the bottom of a chain of "in function" and "in module" wrappers.
fn innermost(e: &EvalAltResult) -> &EvalAltResult {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}
