//! The script API, grouped by theme: host, arguments, result, util, session, network probes,
//! notify. It is registered once per engine, and one engine serves every run of a process.
//!
//! Every function reaches its run through one [`RunContext`]: the store, the guard (deadline and
//! cancel flag), the command allowlist, the transcript and the captured output. A run is
//! evaluated on one thread, so the context is that thread's while the run holds an [`Enter`];
//! [`current`] finds it.

mod args;
mod host;
mod notify;
mod probe;
mod remote;
mod result;
mod secret;
mod session;
mod util;

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, Position};

pub use host::HostRef;
pub use remote::{Remote, verify_host_key};
pub use result::CheckResult;
pub use secret::ScriptSecret;
pub use session::SessionRef;

use crate::session::{Allowlist, Guard, Session, SessionError, Sink};
use crate::store::{Alert, Host, Notice, Store};

/// Everything a run's API functions share.
pub struct RunContext {
    pub store: Arc<Store>,
    pub guard: Guard,
    pub allow: Arc<Allowlist>,
    pub transcript: Sink,
    pub host: Option<Host>,
    /// The run's arguments (`arg(name)`); the host's vars are their defaults.
    pub args: serde_json::Map<String, serde_json::Value>,
    pub max_output: usize,
    pub remote: Arc<Remote>,
    /// Whether `credentials()` answers for hosts other than the run's own
    /// (`[sandbox] credentials_of_other_hosts`, or the operator's shell).
    pub any_credentials: bool,
    /// Open local processes and sockets a run may hold (`[sandbox] max_processes`,
    /// `max_sockets`): no script can starve the daemon of file descriptors.
    pub max_processes: usize,
    pub max_sockets: usize,
    output: Mutex<String>,
    elided: Mutex<usize>,
    notifications: Mutex<Vec<Notice>>,
    sessions: Mutex<Vec<SessionRef>>,
    next_session: AtomicU32,
    /// The scripts being imported, the run's own first: an import of one of them is a cycle.
    pub imports: Mutex<Vec<String>>,
    /// Versions read ahead in one query: the run's script's and those of the scripts its
    /// script's last run imported (None: not in the database). A script not in it is read
    /// when it is loaded.
    pub versions_ahead: Mutex<std::collections::HashMap<String, Option<i64>>>,
    /// Every script the run imported, once each: what the next run of its script reads ahead.
    pub imported: Mutex<Vec<String>>,
}

thread_local! {
    /// The run this thread evaluates (see [`Enter`]). A constant initializer: reading it never
    /// allocates, which the memory budget's allocator relies on.
    static CURRENT: RefCell<Option<Arc<RunContext>>> = const { RefCell::new(None) };
}

/// While held, `ctx` is this thread's run: the API functions, `print` and the engine's
/// progress check find it. Dropping it brings back the run before (none, but for a nested
/// evaluation).
pub struct Enter {
    previous: Option<Arc<RunContext>>,
    /// The context belongs to this thread: an `Enter` never moves to another.
    _thread: PhantomData<*const ()>,
}

impl Enter {
    pub fn new(ctx: &Arc<RunContext>) -> Enter {
        let previous = CURRENT.with_borrow_mut(|c| c.replace(ctx.clone()));
        Enter {
            previous,
            _thread: PhantomData,
        }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // `try_with`: a thread being torn down may have dropped its locals already.
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = previous);
    }
}

/// The run this thread evaluates, for an API function: an error outside a run (the engine
/// also serves syntax checks and the shell's completion, which run nothing).
pub fn current() -> Result<Arc<RunContext>, Box<EvalAltResult>> {
    CURRENT
        .with_borrow(Clone::clone)
        .ok_or_else(|| rt("no run is being evaluated on this thread"))
}

/// `f` of this thread's run, without taking a reference to it; None outside a run.
pub fn with_current<R>(f: impl FnOnce(&RunContext) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| c.borrow().as_deref().map(f))
        .ok()
        .flatten()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RunContext {
    pub fn new(
        store: Arc<Store>,
        guard: Guard,
        allow: Arc<Allowlist>,
        transcript: Sink,
        host: Option<Host>,
        max_output: usize,
        remote: Arc<Remote>,
    ) -> RunContext {
        RunContext {
            store,
            guard,
            allow,
            transcript,
            host,
            args: serde_json::Map::new(),
            max_output,
            remote,
            any_credentials: false,
            max_processes: 16,
            max_sockets: 64,
            output: Mutex::new(String::new()),
            elided: Mutex::new(0),
            notifications: Mutex::new(Vec::new()),
            sessions: Mutex::new(Vec::new()),
            next_session: AtomicU32::new(1),
            imports: Mutex::new(Vec::new()),
            versions_ahead: Mutex::default(),
            imported: Mutex::default(),
        }
    }

    /// Appends a line to the run's output, up to the cap.
    pub fn out(&self, line: &str) {
        let mut out = lock(&self.output);
        let room = self.max_output.saturating_sub(out.len());
        if line.len() < room {
            out.push_str(line);
            out.push('\n');
        } else {
            *lock(&self.elided) += line.len() + 1;
        }
    }

    /// `text` with every secret this run has seen masked.
    pub fn mask(&self, text: &str) -> String {
        lock(&self.transcript).mask(text)
    }

    /// Takes the captured output so far, with secrets masked (the shell prints it per line).
    pub fn take_output(&self) -> String {
        let out = std::mem::take(&mut *lock(&self.output));
        lock(&self.transcript).mask(&out)
    }

    /// The captured output, with secrets masked.
    pub fn output(&self) -> String {
        let out = lock(&self.output);
        let mut text = lock(&self.transcript).mask(&out);
        let elided = *lock(&self.elided);
        if elided > 0 {
            text.push_str(&format!(
                "[{elided} bytes of output dropped: over the {} byte limit]\n",
                self.max_output
            ));
        }
        text
    }

    /// Records a notification; its subject is made one line (see [`one_line`]).
    pub fn notify(&self, subject: String, body: String) {
        lock(&self.notifications).push(Notice {
            event: Alert::Notify,
            subject: one_line(&subject),
            body,
        });
    }

    /// The notifications raised, with secrets masked.
    pub fn take_notifications(&self) -> Vec<Notice> {
        std::mem::take(&mut *lock(&self.notifications))
            .into_iter()
            .map(|n| Notice {
                event: n.event,
                subject: self.mask(&n.subject),
                body: self.mask(&n.body),
            })
            .collect()
    }

    pub fn session_id(&self) -> u32 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Refuses a new local process (`process`) or socket past the run's limit; closed
    /// sessions do not count.
    pub fn admit(&self, process: bool) -> Result<(), Box<EvalAltResult>> {
        let open = lock(&self.sessions)
            .iter()
            .filter(|s| match s.0.try_lock() {
                Ok(g) => g.open_kind() == Some(process),
                // In use right now: open, and counted as this kind.
                Err(_) => true,
            })
            .count();
        let (limit, what, key) = if process {
            (self.max_processes, "local processes", "max_processes")
        } else {
            (self.max_sockets, "sockets", "max_sockets")
        };
        if open >= limit {
            return Err(rt(format!(
                "this run already holds {open} open {what}, its limit ([sandbox] {key} = {limit}); close some first"
            )));
        }
        Ok(())
    }

    /// A session this run opened to `target` that is at its prompt, not in use right now.
    pub fn session_at_prompt(&self, target: &str) -> Option<SessionRef> {
        lock(&self.sessions)
            .iter()
            .find(|s| {
                s.0.try_lock()
                    .is_ok_and(|g| g.target.as_deref() == Some(target) && g.at_prompt())
            })
            .cloned()
    }

    pub fn track(&self, s: SessionRef) {
        lock(&self.sessions).push(s);
    }

    /// Wraps a new session for the script and tracks it.
    pub fn track_new(&self, s: Session) -> SessionRef {
        let r = remote::wrap(s);
        self.track(r.clone());
        r
    }

    /// Registers a secret: from now on it is masked in everything the run records.
    pub fn add_secret(&self, secret: &str) {
        lock(&self.transcript).add_secret(secret);
    }

    /// Ends every session the run opened. With `keep` (the run ended normally), a reusable
    /// one of a host that keeps sessions goes back to the pool; the rest are closed. A run
    /// that failed or was cancelled may have left a command running: its sessions are closed.
    pub fn close_sessions(&self, keep: bool) {
        for s in lock(&self.sessions).drain(..) {
            let mut session = s.0.lock().unwrap_or_else(|p| p.into_inner());
            match session.pool_key.clone() {
                Some(key) if keep && self.remote.pool.enabled() && session.reusable() => {
                    let live = session.detach();
                    self.remote.pool.checkin(key, live);
                }
                _ => {
                    let _ = session.close();
                }
            }
        }
    }
}

/// Registers the whole API on `engine`; each function finds its run with [`current`].
pub fn register(engine: &mut Engine) {
    host::register(engine);
    args::register(engine);
    result::register(engine);
    secret::register(engine);
    util::register(engine);
    session::register(engine);
    remote::register(engine);
    probe::register(engine);
    notify::register(engine);
}

/// A runtime error for the script.
pub fn rt(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

/// A session error for the script: a passed deadline or a cancellation terminates the run.
pub fn session_err(e: SessionError) -> Box<EvalAltResult> {
    match e {
        SessionError::Deadline => Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(super::engine::TERMINATED_TIMEOUT),
            Position::NONE,
        )),
        SessionError::Cancelled => Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(super::engine::TERMINATED_CANCELLED),
            Position::NONE,
        )),
        SessionError::Memory => Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(super::engine::TERMINATED_MEMORY),
            Position::NONE,
        )),
        other => rt(other.to_string()),
    }
}

/// Seconds (an integer or a float) as a duration.
pub fn secs(d: &Dynamic) -> Result<Duration, Box<EvalAltResult>> {
    let s = if let Ok(i) = d.as_int() {
        i as f64
    } else if let Ok(f) = d.as_float() {
        f
    } else {
        return Err(rt(format!(
            "expected seconds as a number, got {}",
            d.type_name()
        )));
    };
    if !(0.0..=86_400.0 * 365.0).contains(&s) {
        return Err(rt(format!("bad duration {s} seconds")));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Converts JSON to a Rhai value.
pub fn json_to_dynamic(v: &serde_json::Value) -> Dynamic {
    match v {
        serde_json::Value::Null => Dynamic::UNIT,
        serde_json::Value::Bool(b) => Dynamic::from(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from(i),
            None => Dynamic::from(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Dynamic::from(s.clone()),
        serde_json::Value::Array(a) => Dynamic::from_array(a.iter().map(json_to_dynamic).collect()),
        serde_json::Value::Object(o) => {
            let m: rhai::Map = o
                .iter()
                .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                .collect();
            Dynamic::from_map(m)
        }
    }
}

pub use crate::redact::one_line;
