//! `import "name"`: resolved from the scripts table first, then from the library bundled from
//! `scripts/`, never from the file system.
//!
//! Compiled scripts are cached by (name, version), so editing a script's row (which bumps its
//! version) takes effect on the next import, and an unchanged one is never recompiled.
//! Import cycles are caught with a stack of the imports being evaluated and reported as a chain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rhai::{AST, Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use crate::bundled;
use crate::store::{ScriptKind, Store};

/// Where a script's source came from, and its version there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    Db(i64),
    Bundled,
}

/// A compiled script and what its header says it is.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub ast: AST,
    pub kind: ScriptKind,
}

/// A script loaded for a run: compiled, with its version in the database (None for the
/// bundled one).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub ast: AST,
    pub kind: ScriptKind,
    pub version: Option<i64>,
}

/// Compiled scripts, shared by every run of a process.
#[derive(Debug, Default)]
pub struct Cache {
    asts: Mutex<HashMap<(String, Origin), Compiled>>,
}

impl Cache {
    pub fn get(&self, name: &str, origin: &Origin) -> Option<Compiled> {
        self.lock()
            .get(&(name.to_string(), origin.clone()))
            .cloned()
    }

    pub fn put(&self, name: &str, origin: Origin, compiled: Compiled) {
        let mut m = self.lock();
        // Older versions of the same script will never be asked for again.
        m.retain(|(n, _), _| n != name);
        m.insert((name.to_string(), origin), compiled);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Origin), Compiled>> {
        self.asts.lock().unwrap_or_else(|p| p.into_inner())
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

pub struct DbResolver {
    pub store: Arc<Store>,
    pub cache: Arc<Cache>,
    stack: Mutex<Vec<String>>,
}

impl DbResolver {
    pub fn new(store: Arc<Store>, cache: Arc<Cache>, main: &str) -> DbResolver {
        DbResolver {
            store,
            cache,
            stack: Mutex::new(vec![main.to_string()]),
        }
    }

    fn stack(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.stack.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The compiled script `name`, from the database or the bundled library.
    pub fn load(&self, engine: &Engine, name: &str) -> Result<Option<Loaded>, Box<EvalAltResult>> {
        let rt = |msg: String| Box::new(EvalAltResult::ErrorRuntime(msg.into(), Position::NONE));
        let (origin, source) = match self
            .store
            .script_version(name)
            .map_err(|e| rt(e.to_string()))?
        {
            Some(v) => (Origin::Db(v), None),
            None => match bundled::find(name) {
                Some(b) => (Origin::Bundled, Some(b.source.to_string())),
                None => return Ok(None),
            },
        };
        let version = match origin {
            Origin::Db(v) => Some(v),
            Origin::Bundled => None,
        };
        if let Some(c) = self.cache.get(name, &origin) {
            return Ok(Some(Loaded {
                ast: c.ast,
                kind: c.kind,
                version,
            }));
        }
        let (source, kind) = match source {
            Some(s) => {
                let kind = bundled::header(&s).1.unwrap_or(ScriptKind::Task);
                (s, kind)
            }
            None => {
                let s = self.store.script(name).map_err(|e| rt(e.to_string()))?;
                (s.source, s.kind)
            }
        };
        let ast = compile(engine, name, &source).map_err(|e| rt(e.to_string()))?;
        self.cache.put(
            name,
            origin,
            Compiled {
                ast: ast.clone(),
                kind,
            },
        );
        Ok(Some(Loaded { ast, kind, version }))
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
        {
            let stack = self.stack();
            if stack.iter().any(|s| s == path) {
                let chain = stack
                    .iter()
                    .chain(std::iter::once(&path.to_string()))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" -> ");
                return Err(Box::new(EvalAltResult::ErrorRuntime(
                    format!("import cycle: {chain}").into(),
                    pos,
                )));
            }
        }
        let Some(Loaded { ast, .. }) = self.load(engine, path)? else {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                format!("{path} (no script of that name in the database or the bundled library)"),
                pos,
            )));
        };
        self.stack().push(path.to_string());
        // The lock is not held while the module runs: its own imports come back here.
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        self.stack().pop();
        Ok(Shared::new(module?))
    }
}
