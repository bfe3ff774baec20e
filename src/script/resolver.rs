//! `import "name"`: resolved from the scripts table first, then from the library bundled from
//! `scripts/`, never from the file system.
//!
//! Compiled scripts are cached by (name, version), so editing a script's row (which bumps its
//! version) takes effect on the next import, and an unchanged one is never recompiled. A library
//! of functions only (no statement at its top, as `checklib` and `loginlib`) evaluates to the
//! same module every time: it is cached too, and shared by every run that imports it.
//! Import cycles are caught with the run's stack of the imports being evaluated
//! ([`RunContext::imports`](super::api::RunContext)) and reported as a chain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rhai::{AST, Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use super::api::with_current;

use crate::bundled;
use crate::store::{ScriptKind, Store};

/// Where a script's source came from, and its version there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    Db(i64),
    Bundled,
}

impl Origin {
    /// The stored version it names (None: the bundled library's).
    fn version(&self) -> Option<i64> {
        match self {
            Origin::Db(v) => Some(*v),
            Origin::Bundled => None,
        }
    }
}

/// A compiled script and what its header says it is. The tree is shared, not copied, by the
/// runs that use it.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub ast: Arc<AST>,
    pub kind: ScriptKind,
}

/// A script loaded for a run: compiled, with where it came from and its version in the
/// database (None for the bundled one).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub ast: Arc<AST>,
    pub kind: ScriptKind,
    pub version: Option<i64>,
    pub origin: Origin,
}

type Key = (String, Origin);

/// Compiled scripts and evaluated libraries, shared by every run of a process.
#[derive(Debug, Default)]
pub struct Cache {
    asts: Mutex<HashMap<Key, Compiled>>,
    modules: Mutex<HashMap<Key, Shared<Module>>>,
    /// The scripts each script's last run imported: the next run reads their versions with
    /// its own, in one query.
    imported: Mutex<HashMap<String, Vec<String>>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    pub fn get(&self, name: &str, origin: &Origin) -> Option<Compiled> {
        locked(&self.asts)
            .get(&(name.to_string(), origin.clone()))
            .cloned()
    }

    pub fn put(&self, name: &str, origin: Origin, compiled: Compiled) {
        let mut m = locked(&self.asts);
        // Older versions of the same script will never be asked for again.
        m.retain(|(n, _), _| n != name);
        m.insert((name.to_string(), origin), compiled);
    }

    /// The scripts `name`'s last run imported.
    pub fn imports_of(&self, name: &str) -> Vec<String> {
        locked(&self.imported)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// What `name`'s run imported, for its next run to read ahead (the first 64: a script
    /// that imports names it makes up at run time gets the rest read as they are loaded).
    pub fn learn(&self, name: &str, mut imported: Vec<String>) {
        imported.truncate(64);
        let mut m = locked(&self.imported);
        if m.get(name) != Some(&imported) {
            m.insert(name.to_string(), imported);
        }
    }

    fn module(&self, name: &str, origin: &Origin) -> Option<Shared<Module>> {
        locked(&self.modules)
            .get(&(name.to_string(), origin.clone()))
            .cloned()
    }

    fn put_module(&self, name: &str, origin: Origin, module: Shared<Module>) {
        let mut m = locked(&self.modules);
        m.retain(|(n, _), _| n != name);
        m.insert((name.to_string(), origin), module);
    }
}

/// Compiles `source` as script `name`, with errors naming the script, line and column.
pub fn compile(engine: &Engine, name: &str, source: &str) -> Result<AST, super::ScriptError> {
    engine
        .compile(source)
        .map(|mut ast| {
            ast.set_source(name);
            ast
        })
        .map_err(|e| {
            let pos = e.position();
            super::ScriptError::Syntax {
                script: name.to_string(),
                line: pos.line().unwrap_or(0),
                column: pos.position().unwrap_or(0),
                message: e.err_type().to_string(),
            }
        })
}

/// The engine's module resolver: one per engine, serving every run; what belongs to one run
/// (its stack of imports) is that run's context's.
pub struct DbResolver {
    pub store: Arc<Store>,
    pub cache: Arc<Cache>,
}

/// A script of functions only: evaluating it runs nothing and gives the same module each time.
fn functions_only(ast: &AST) -> bool {
    ast.statements().is_empty()
}

impl DbResolver {
    pub fn new(store: Arc<Store>, cache: Arc<Cache>) -> DbResolver {
        DbResolver { store, cache }
    }

    /// The compiled script `name`, from the database or the bundled library.
    pub fn load(&self, engine: &Engine, name: &str) -> Result<Option<Loaded>, Box<EvalAltResult>> {
        let rt = |msg: String| Box::new(EvalAltResult::ErrorRuntime(msg.into(), Position::NONE));
        // Read ahead with the run's other scripts, or now.
        let ahead =
            super::api::with_current(|c| locked(&c.versions_ahead).get(name).copied()).flatten();
        let version = match ahead {
            Some(v) => v,
            None => self
                .store
                .script_version(name)
                .map_err(|e| rt(e.to_string()))?,
        };
        let (origin, source) = match version {
            Some(v) => (Origin::Db(v), None),
            None => match bundled::find(name) {
                Some(b) => (Origin::Bundled, Some(b.source.to_string())),
                None => return Ok(None),
            },
        };
        if let Some(c) = self.cache.get(name, &origin) {
            return Ok(Some(Loaded {
                ast: c.ast,
                kind: c.kind,
                version: origin.version(),
                origin,
            }));
        }
        let (source, kind, origin) = match source {
            Some(s) => {
                let kind = bundled::header(&s).1.unwrap_or(ScriptKind::Task);
                (s, kind, origin)
            }
            // The source as stored now, under its own version: an edit since the version was
            // read (the claim's read, ahead of the run) is what runs, and the run says so.
            None => {
                let s = self.store.script(name).map_err(|e| rt(e.to_string()))?;
                (s.source, s.kind, Origin::Db(s.version))
            }
        };
        let version = origin.version();
        let ast = Arc::new(compile(engine, name, &source).map_err(|e| rt(e.to_string()))?);
        self.cache.put(
            name,
            origin.clone(),
            Compiled {
                ast: ast.clone(),
                kind,
            },
        );
        Ok(Some(Loaded {
            ast,
            kind,
            version,
            origin,
        }))
    }
}

impl ModuleResolver for DbResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let stack =
            |f: &mut dyn FnMut(&mut Vec<String>)| with_current(|c| f(&mut locked(&c.imports)));
        let mut cycle = None;
        stack(&mut |s| {
            if s.iter().any(|x| x == path) {
                let chain: Vec<&str> = s.iter().map(String::as_str).chain([path]).collect();
                cycle = Some(chain.join(" -> "));
            }
        });
        if let Some(chain) = cycle {
            return Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("import cycle: {chain}").into(),
                pos,
            )));
        }
        let Some(Loaded { ast, origin, .. }) = self.load(engine, path)? else {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                format!("{path} (no script of that name in the database or the bundled library)"),
                pos,
            )));
        };
        super::api::with_current(|c| {
            let mut imported = locked(&c.imported);
            if !imported.iter().any(|i| i == path) {
                imported.push(path.to_string());
            }
        });
        let shared = functions_only(&ast);
        if shared && let Some(m) = self.cache.module(path, &origin) {
            return Ok(m);
        }
        stack(&mut |s| s.push(path.to_string()));
        // No lock is held while the module runs: its own imports come back here.
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        stack(&mut |s| {
            s.pop();
        });
        let module = Shared::new(module?);
        if shared {
            self.cache.put_module(path, origin, module.clone());
        }
        Ok(module)
    }
}
