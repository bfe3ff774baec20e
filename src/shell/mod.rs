//! `hostler shell`: an interactive script shell over a persistent Rhai scope, with the same
//! sandbox and API as scripts. Good enough to be a superuser's login shell.
//!
//! - Variables, functions and open sessions persist from one line to the next.
//! - Input continues over several lines while brackets are open.
//! - Tab completes meta-commands, host names, script names, API functions and methods; typing a
//!   function's `(` shows its signatures.
//! - An error shows its position and the shell goes on; Ctrl-C cancels the running line (a
//!   session wait too) and returns to the prompt; Ctrl-D leaves.
//! - `hostler shell -c CODE`, or code on a non-terminal stdin, runs once and exits with its
//!   status: a check result's Nagios code, 1 for an error, else 0.
//!
//! The meta-commands mirror the CLI's verbs and reuse them.

pub mod complete;
mod connect;
mod meta;

use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};

use crate::app::App;
use crate::script::Runner;
use crate::script::api::{CheckResult, RunContext};
use crate::session::{Guard, Transcript};
use complete::{ShellHelper, Words};

/// The shell's state: the engine, the scope and the functions defined so far.
pub struct Shell {
    pub env: Runner,
    pub ctx: Arc<RunContext>,
    engine: Engine,
    scope: Scope<'static>,
    functions: AST,
}

/// What a line did.
#[derive(Debug)]
pub enum Outcome {
    Value(Dynamic),
    Error(String),
    Cancelled,
}

impl Shell {
    pub fn new(env: Runner) -> anyhow::Result<Shell> {
        let guard = Guard::new(None);
        // Ctrl-C while a line runs sets the cancel flag instead of killing the shell.
        signal_hook::flag::register(signal_hook::consts::SIGINT, guard.cancel.clone())?;
        let mut ctx = RunContext::new(
            env.store.clone(),
            guard,
            env.allow.clone(),
            Transcript::sink(env.limits.max_output),
            None,
            env.limits.max_output,
            env.remote.clone(),
        );
        // The operator at the shell can read the database anyway.
        ctx.any_credentials = true;
        ctx.max_processes = env.limits.max_processes;
        ctx.max_sockets = env.limits.max_sockets;
        ctx.imports = std::sync::Mutex::new(vec!["<shell>".to_string()]);
        let ctx = Arc::new(ctx);
        let engine = env.shell_engine();
        let mut scope = Scope::new();
        scope.push_constant("host", Dynamic::UNIT);
        scope.push_constant("args", Dynamic::from_map(rhai::Map::new()));
        Ok(Shell {
            env,
            ctx,
            engine,
            scope,
            functions: AST::empty(),
        })
    }

    /// Evaluates one input, keeping its variables and functions for the next.
    pub fn eval(&mut self, input: &str) -> Outcome {
        let _line = crate::script::api::Enter::new(&self.ctx);
        self.ctx.guard.cancel.store(false, Ordering::SeqCst);
        let ast = match self.engine.compile_with_scope(&self.scope, input) {
            Ok(ast) => ast,
            Err(e) => {
                let p = e.position();
                return Outcome::Error(format!(
                    "line {}, column {}: {}",
                    p.line().unwrap_or(0),
                    p.position().unwrap_or(0),
                    e.err_type()
                ));
            }
        };
        let merged = self.functions.merge(&ast);
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &merged);
        self.functions = merged.clone_functions_only();
        let cancelled = self.ctx.guard.cancel.swap(false, Ordering::SeqCst);
        let log = self.ctx.take_output();
        if !log.is_empty() {
            print!("{log}");
        }
        match result {
            Ok(v) => Outcome::Value(v),
            Err(e) if cancelled || matches!(*e, EvalAltResult::ErrorTerminated(..)) => {
                Outcome::Cancelled
            }
            Err(e) => Outcome::Error(self.ctx.mask(&crate::script::error_text(&e))),
        }
    }

    fn words(&self) -> Words {
        let mut functions: Vec<(String, String)> = self
            .engine
            .gen_fn_signatures(false)
            .into_iter()
            .filter_map(|sig| {
                let name = sig.split('(').next()?.to_string();
                (!name.starts_with("get$")
                    && !name.starts_with("set$")
                    && !name.starts_with("anon$"))
                .then_some((name, sig))
            })
            .collect();
        for f in self.functions.iter_functions() {
            functions.push((
                f.name.to_string(),
                format!("{}({})", f.name, f.params.join(", ")),
            ));
        }
        // Getters are methods too: `s.before`.
        for sig in self.engine.gen_fn_signatures(false) {
            if let Some(rest) = sig.strip_prefix("get$") {
                let name = rest.split('(').next().unwrap_or_default().to_string();
                functions.push((name.clone(), format!("{name} (property)")));
            }
        }
        Words {
            hosts: self
                .env
                .store
                .hosts()
                .map(|h| h.into_iter().map(|h| h.name).collect())
                .unwrap_or_default(),
            scripts: self
                .env
                .store
                .scripts()
                .map(|s| s.into_iter().map(|s| s.name).collect())
                .unwrap_or_default(),
            functions,
            variables: self.scope.iter().map(|(n, _, _)| n.to_string()).collect(),
        }
    }
}

/// How a value is shown at the prompt, and the exit code of `-c`.
fn show(v: &Dynamic) -> (Option<String>, u8) {
    if let Some(r) = v.read_lock::<CheckResult>() {
        let mut s = format!("{}: {}", r.status.as_str().to_uppercase(), r.message);
        if let Some(p) = &r.perfdata {
            s.push_str(&format!(" | {p}"));
        }
        return (Some(s), r.status.exit_code());
    }
    if v.is_unit() {
        (None, 0)
    } else if v.is_string() {
        (Some(v.to_string()), 0)
    } else {
        (Some(format!("{v:?}")), 0)
    }
}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("HOSTLER_HISTORY")
        .map(Into::into)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".hostler_history"))
        })
}

/// Runs code once (`-c`, or a non-terminal stdin) and returns the exit code.
fn run_once(shell: &mut Shell, code: &str) -> u8 {
    match shell.eval(code) {
        Outcome::Value(v) => {
            let (text, code) = show(&v);
            if let Some(t) = text {
                println!("{}", shell.ctx.mask(&t));
            }
            code
        }
        Outcome::Error(e) => {
            eprintln!("hostler: {e}");
            1
        }
        Outcome::Cancelled => {
            eprintln!("hostler: cancelled");
            130
        }
    }
}

/// The shell: `-c CODE`, code on stdin, or the interactive prompt.
/// The CLI's verbs the shell offers as meta commands, handed in by the CLI so that the shell
/// does not depend on it (`:schedule ARGS` takes `hostler schedule`'s arguments).
#[derive(Clone, Copy)]
pub struct Verbs {
    pub schedule: fn(&App, &[&str]) -> anyhow::Result<()>,
}

pub fn run(app: &App, verbs: Verbs, code: Option<String>) -> anyhow::Result<u8> {
    let env = app.env(app.store()?)?;
    let mut shell = Shell::new(env)?;
    if let Some(code) = code {
        return Ok(run_once(&mut shell, &code));
    }
    if !std::io::stdin().is_terminal() {
        let mut code = String::new();
        std::io::stdin().read_to_string(&mut code)?;
        return Ok(run_once(&mut shell, &code));
    }
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper {
        words: shell.words(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "hostler shell on {}: :help for commands, Tab completes, Ctrl-D leaves",
        app.shown_db()
    );
    loop {
        if let Some(h) = editor.helper_mut() {
            h.words = shell.words();
        }
        match editor.readline("hostler> ") {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line.as_str());
                if line.trim_start().starts_with(':') {
                    if meta::run(app, verbs, &mut shell, line.trim())? {
                        break;
                    }
                    continue;
                }
                match shell.eval(&line) {
                    Outcome::Value(v) => {
                        if let Some(t) = show(&v).0 {
                            println!("{}", shell.ctx.mask(&t));
                        }
                    }
                    Outcome::Error(e) => println!("error: {e}"),
                    Outcome::Cancelled => println!("cancelled"),
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    shell.ctx.close_sessions(false);
    Ok(0)
}
