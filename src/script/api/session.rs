//! Sessions from scripts: `spawn(cmd, args[, #{pty: true}])` returns a session with the expect
//! API; `exec(cmd, args)` runs a command to completion. Both go through the allowlist.

use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::{RunContext, current, rt, secs, session_err};
use crate::session::{LocalProcess, Session, compile, exec};

/// A session as scripts hold it.
#[derive(Clone)]
pub struct SessionRef(pub Arc<Mutex<Session>>);

impl SessionRef {
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, crate::session::SessionError>,
    ) -> Result<T, Box<EvalAltResult>> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s).map_err(session_err)
    }

    pub fn close_quietly(&self) {
        let _ = self.0.lock().unwrap_or_else(|p| p.into_inner()).close();
    }
}

fn strings(args: &Array) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn opt_timeout(t: &Dynamic) -> Result<Option<std::time::Duration>, Box<EvalAltResult>> {
    if t.is_unit() {
        Ok(None)
    } else {
        secs(t).map(Some)
    }
}

fn spawn(
    ctx: &Arc<RunContext>,
    cmd: &str,
    args: &Array,
    opts: &Map,
) -> Result<SessionRef, Box<EvalAltResult>> {
    let path = ctx.allow.check(cmd).map_err(session_err)?;
    ctx.admit(true)?;
    let pty = opts
        .get("pty")
        .is_some_and(|v| v.as_bool().unwrap_or(false));
    let command = ctx
        .allow
        .command(&path, &strings(args))
        .map_err(session_err)?;
    let proc = LocalProcess::spawn_command(command, pty).map_err(session_err)?;
    let mut session = Session::new(
        ctx.session_id(),
        Box::new(proc),
        ctx.guard.clone(),
        Some(ctx.transcript.clone()),
    );
    if let Some(t) = opts.get("timeout") {
        session.timeout = secs(t)?;
    }
    if let Some(p) = opts.get("prompt") {
        session.set_prompt(&p.to_string()).map_err(session_err)?;
    }
    Ok(ctx.track_new(session))
}

pub fn register(engine: &mut Engine) {
    engine.register_fn("spawn", |cmd: &str, args: Array| {
        spawn(&current()?, cmd, &args, &Map::new())
    });
    engine.register_fn("spawn", |cmd: &str, args: Array, opts: Map| {
        spawn(&current()?, cmd, &args, &opts)
    });
    // Whether exec() may run a command here: the sandbox allows it and it is installed.
    engine.register_fn(
        "command_allowed",
        |cmd: &str| -> Result<bool, Box<EvalAltResult>> { Ok(current()?.allow.check(cmd).is_ok()) },
    );
    engine.register_fn(
        "exec",
        |cmd: &str, args: Array| -> Result<Map, Box<EvalAltResult>> {
            let c = current()?;
            let path = c.allow.check(cmd).map_err(session_err)?;
            let command = c
                .allow
                .prepare(&path, &strings(&args))
                .map_err(session_err)?;
            let out = exec(command, &c.guard, c.max_output).map_err(session_err)?;
            Ok(exec_map(out))
        },
    );

    engine
        .register_type_with_name::<SessionRef>("Session")
        .register_fn("write", |s: &mut SessionRef, d: &str| {
            s.with(|x| x.write(d))
        })
        .register_fn("write_secret", |s: &mut SessionRef, d: &str| {
            s.with(|x| x.write_secret(d))
        })
        .register_fn(
            "write_secret",
            |s: &mut SessionRef, d: super::ScriptSecret| s.with(|x| x.write_secret(d.expose())),
        )
        .register_fn("read_some", |s: &mut SessionRef| {
            s.with(|x| x.read_some(None))
        })
        .register_fn("read_some", |s: &mut SessionRef, t: Dynamic| {
            let t = opt_timeout(&t)?;
            s.with(|x| x.read_some(t))
        })
        .register_fn("read_until", |s: &mut SessionRef, p: &str| {
            s.with(|x| x.read_until(p, None))
        })
        .register_fn("read_until", |s: &mut SessionRef, p: &str, t: Dynamic| {
            let t = opt_timeout(&t)?;
            s.with(|x| x.read_until(p, t))
        })
        .register_fn("read_all", |s: &mut SessionRef| {
            s.with(|x| x.read_to_end(None))
        })
        .register_fn("read_all", |s: &mut SessionRef, t: Dynamic| {
            let t = opt_timeout(&t)?;
            s.with(|x| x.read_to_end(t))
        })
        .register_fn("expect", |s: &mut SessionRef, pats: Dynamic| {
            expect(s, &pats, &Dynamic::UNIT)
        })
        .register_fn("expect", |s: &mut SessionRef, pats: Dynamic, t: Dynamic| {
            expect(s, &pats, &t)
        })
        .register_fn("cmd", |s: &mut SessionRef, line: &str| {
            s.with(|x| x.cmd(line, None))
        })
        .register_fn("cmd", |s: &mut SessionRef, line: &str, t: Dynamic| {
            let t = opt_timeout(&t)?;
            s.with(|x| x.cmd(line, t))
        })
        .register_fn("set_prompt", |s: &mut SessionRef, p: &str| {
            s.with(|x| x.set_prompt(p))
        })
        .register_fn("sync_prompt", |s: &mut SessionRef| {
            s.with(|x| x.sync_prompt(None))
        })
        .register_fn(
            "close",
            |s: &mut SessionRef| -> Result<Dynamic, Box<EvalAltResult>> {
                Ok(s.with(|x| x.close())?
                    .map_or(Dynamic::UNIT, |c| Dynamic::from(i64::from(c))))
            },
        )
        .register_get("before", |s: &mut SessionRef| {
            s.0.lock().map(|x| x.before.clone()).unwrap_or_default()
        })
        .register_get("matched", |s: &mut SessionRef| {
            s.0.lock().map(|x| x.matched.clone()).unwrap_or_default()
        })
        .register_get("eof", |s: &mut SessionRef| {
            s.0.lock().map(|x| x.is_eof()).unwrap_or(true)
        })
        .register_fn("to_string", |s: &mut SessionRef| {
            s.0.lock()
                .map(|x| format!("session to {}", x.peer()))
                .unwrap_or_default()
        });
}

/// A finished command as scripts see it: `#{code, stdout, stderr}`.
pub(super) fn exec_map(out: crate::session::ExecOutput) -> Map {
    let mut m = Map::new();
    m.insert("code".into(), Dynamic::from(out.code));
    m.insert("stdout".into(), Dynamic::from(out.stdout));
    m.insert("stderr".into(), Dynamic::from(out.stderr));
    m
}

/// `expect` takes one pattern or an array of them and returns the index of the one that matched.
fn expect(s: &mut SessionRef, pats: &Dynamic, t: &Dynamic) -> Result<i64, Box<EvalAltResult>> {
    let list: Vec<String> = match pats.read_lock::<Array>() {
        Some(a) => a.iter().map(|p| p.to_string()).collect(),
        None => vec![pats.to_string()],
    };
    if list.is_empty() {
        return Err(rt("expect needs at least one pattern"));
    }
    let regexes = list
        .iter()
        .map(|p| compile(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(session_err)?;
    let t = opt_timeout(t)?;
    s.with(|x| x.expect(&regexes, t)).map(|i| i as i64)
}
