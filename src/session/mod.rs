//! The expect engine (DPythOS's TelnetBase), written once over the [`Transport`] trait.
//!
//! A [`Session`] owns a receive buffer and offers `write`, `write_secret`, `read_some`,
//! `read_until`, `expect` and `cmd` (and `exec` where the transport has it). Transports: local
//! processes ([`LocalProcess`]), [`telnet`], [`ssh`] and [`http`]; logged-in sessions are kept
//! between runs by the [`Pool`]. Every wait is bounded three ways: its own timeout, the
//! run's wall-clock deadline, and the run's cancel flag, which is checked at least every
//! 100 ms so Ctrl-C and job cancellation take effect promptly.
//!
//! Invariants:
//! - a session knows nothing of the store; its transcript sink is handed in;
//! - `write_secret` text is never recorded, and registered secrets are masked in what is received;
//! - a timeout error carries the last text received, so the operator sees where it stuck.
//!
//! `read_until` searches only the bytes that arrived since the last search (plus the pattern's
//! length minus one), so reading a marker at the end of a long stream stays linear.

pub mod http;
mod http_io;
mod local;
pub mod net;
mod pool;
pub mod sandbox_fs;
mod spawn;
pub mod ssh;
pub mod telnet;
mod transcript;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use regex::bytes::Regex;

pub use local::{
    Allowlist, LocalProcess, Prepared, REFUSED_ARGUMENTS, exec, spells,
    wait_readable as local_wait_readable,
};
pub use pool::Pool;
pub use transcript::{Direction, MASK, Sink, Transcript};
pub use transport::{ExecOutput, Recv, Transport};

/// How much of the received text a timeout error shows.
const TAIL: usize = 200;
/// The largest single read.
const CHUNK: usize = 64 * 1024;
/// Regex searches look back this far into already-searched bytes when the buffer is large.
const REGEX_WINDOW: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("timed out after {waited:.1?} waiting for {what} from {peer}; last received: {last:?}")]
    Timeout {
        what: String,
        peer: String,
        waited: Duration,
        last: String,
    },
    #[error("{peer} closed the connection while waiting for {what}; last received: {last:?}")]
    Eof {
        what: String,
        peer: String,
        last: String,
    },
    #[error("cancelled")]
    Cancelled,
    #[error(
        "a command line holds control character 0x{code:02x} at byte {at}: refused, since a terminal would read it as a key (send keys with write)"
    )]
    ControlCharacter { code: u32, at: usize },
    #[error("the run's memory limit ([sandbox] max_memory) was reached")]
    Memory,
    #[error(
        "{peer} sent more than {limit} bytes while waiting for {what}, and nothing matched; last received: {last:?}"
    )]
    BufferFull {
        what: String,
        peer: String,
        limit: usize,
        last: String,
    },
    #[error("the script's time limit ran out")]
    Deadline,
    #[error("command {cmd:?} is not allowed by [sandbox] allowed_commands ({allowed})")]
    NotAllowed { cmd: String, allowed: String },
    #[error(
        "argument {arg:?} of {cmd} is refused: it could make the command read files or run programs ([sandbox] refused_arguments, [sandbox.arguments])"
    )]
    ArgumentRefused { cmd: String, arg: String },
    #[error("cannot start {cmd}: {msg}")]
    Spawn { cmd: String, msg: String },
    #[error("bad pattern {pattern:?}: {msg}")]
    BadPattern { pattern: String, msg: String },
    #[error("session closed")]
    Closed,
    #[error("{peer}: login failed: {msg}")]
    Auth { peer: String, msg: String },
    #[error("{peer}: {msg}")]
    HostKey { peer: String, msg: String },
    #[error("{peer}: {msg}")]
    Io { peer: String, msg: String },
}

/// A session's receive buffer holds at most this much unless its guard says otherwise.
pub const DEFAULT_MAX_BUFFER: usize = 64 << 20;

/// The run's wall-clock deadline, cancel flag and memory bounds, shared by everything the run
/// waits on.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    pub deadline: Option<Instant>,
    pub cancel: Arc<AtomicBool>,
    /// The most a session may hold received and not yet read ([`DEFAULT_MAX_BUFFER`] when
    /// None): a host that floods output fails the wait instead of growing the daemon.
    pub max_buffer: Option<usize>,
    /// Whether the run on this thread is over its memory budget (`[sandbox] max_memory`,
    /// kept by the script's allocator): a wait checks it as the engine's progress check
    /// would, since no script operation runs while a native call waits.
    pub over_budget: Option<fn() -> bool>,
}

impl Guard {
    pub fn new(timeout: Option<Duration>) -> Guard {
        Guard {
            deadline: timeout.map(|t| Instant::now() + t),
            cancel: Arc::new(AtomicBool::new(false)),
            max_buffer: None,
            over_budget: None,
        }
    }

    /// Err if the run was cancelled, its deadline passed or it is over its memory budget.
    pub fn check(&self) -> Result<(), SessionError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(SessionError::Cancelled);
        }
        if self.over_budget.is_some_and(|over| over()) {
            return Err(SessionError::Memory);
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(SessionError::Deadline),
            _ => Ok(()),
        }
    }

    /// `d`, cut to what is left of the run: every native wait (a connect, a TLS or SSH
    /// handshake, a DNS lookup) takes its timeout from here. Err when nothing is left.
    pub fn bound(&self, d: Duration) -> Result<Duration, SessionError> {
        self.check()?;
        Ok(match self.deadline {
            Some(dl) => d.min(dl.saturating_duration_since(Instant::now())),
            None => d,
        })
    }

    /// Runs a wait that cannot be interrupted where it blocks (a DNS lookup, a connect, an
    /// HTTP request's head) on a thread of its own, and waits for it in slices of 100 ms: a
    /// cancellation, the deadline or the memory budget ends the wait at once. The thread is
    /// left to end at its own timeout, which the caller bounds.
    pub fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, SessionError> {
        self.blocking_within(None, f)?
            .ok_or_else(|| SessionError::Io {
                peer: "this process".into(),
                msg: "a wait ended without an answer".into(),
            })
    }

    /// [`Guard::blocking`], and `Ok(None)` once `limit` has passed without an answer (the
    /// caller's own timeout, shorter than the run's).
    pub fn blocking_within<T: Send + 'static>(
        &self,
        limit: Option<Duration>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Option<T>, SessionError> {
        self.check()?;
        let until = limit.map(|l| Instant::now() + l);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("wait".into())
            .spawn(move || {
                let _ = tx.send(f());
            })
            .map_err(|e| SessionError::Io {
                peer: "this process".into(),
                msg: format!("cannot start a thread to wait on: {e}"),
            })?;
        loop {
            let slice = until.map_or(Duration::from_millis(100), |u| {
                u.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100))
            });
            match rx.recv_timeout(slice) {
                Ok(v) => return Ok(Some(v)),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    self.check()?;
                    if until.is_some_and(|u| Instant::now() >= u) {
                        return Ok(None);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(SessionError::Io {
                        peer: "this process".into(),
                        msg: "a wait ended without an answer".into(),
                    });
                }
            }
        }
    }

    /// Sleeps for `d`, waking early (with an error) on cancellation or the deadline.
    pub fn sleep(&self, d: Duration) -> Result<(), SessionError> {
        let end = Instant::now() + d;
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            let mut slice = (end - now).min(Duration::from_millis(50));
            if let Some(dl) = self.deadline {
                slice = slice.min(dl.saturating_duration_since(now));
            }
            std::thread::sleep(slice);
        }
    }
}

/// What a session's `expect` or `read_until` is waiting for.
enum Want<'a> {
    Literal(&'a [u8]),
    Regexes(&'a [Regex]),
}

/// An expect-style session over any transport.
pub struct Session {
    id: u32,
    transport: Box<dyn Transport>,
    buf: Vec<u8>,
    /// Bytes of `buf` already searched without a match.
    searched: usize,
    scratch: Vec<u8>,
    eof: bool,
    closed: bool,
    transcript: Option<Sink>,
    guard: Guard,
    /// Default timeout of a wait.
    pub timeout: Duration,
    prompt: Option<Regex>,
    /// Text before the last `expect` match, and the match itself.
    pub before: String,
    pub matched: String,
    prompt_seq: u32,
    /// An HTTP session's status and headers.
    pub head: Option<http::ResponseHead>,
    /// Where the session goes back to when its run ends, if it may be reused.
    pub pool_key: Option<String>,
    /// The session came from the pool: it is logged in and at its prompt.
    pub reused: bool,
    /// The host, method, user and address it was opened for (`connect`), whether or not it
    /// may be pooled: a second login to the same target in one run takes this session.
    pub target: Option<String>,
    /// Something was sent or received (a shell was used).
    used: bool,
    /// A wait failed (timeout, end of stream, error): the state of the peer is unknown.
    dirty: bool,
    /// When the session was opened (the pool retires it after `[sessions] max_lifetime`).
    pub opened: Instant,
}

/// What is left in a script's handle after its session went back to the pool.
struct Detached(String);

impl Transport for Detached {
    fn send(&mut self, _: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("session closed"))
    }
    fn recv(&mut self, _: &mut [u8], _: Duration) -> std::io::Result<Recv> {
        Ok(Recv::Eof)
    }
    fn close(&mut self) -> std::io::Result<Option<i32>> {
        Ok(None)
    }
    fn describe(&self) -> String {
        self.0.clone()
    }
    fn alive(&mut self) -> bool {
        false
    }
}

impl Session {
    pub fn new(
        id: u32,
        transport: Box<dyn Transport>,
        guard: Guard,
        transcript: Option<Sink>,
    ) -> Session {
        Session {
            id,
            transport,
            buf: Vec::new(),
            searched: 0,
            scratch: vec![0; CHUNK],
            eof: false,
            closed: false,
            transcript,
            guard,
            timeout: Duration::from_secs(30),
            prompt: None,
            before: String::new(),
            matched: String::new(),
            prompt_seq: 0,
            head: None,
            pool_key: None,
            target: None,
            reused: false,
            used: false,
            dirty: false,
            opened: Instant::now(),
        }
    }

    /// Still open: a local process, or a socket?
    pub fn open_kind(&self) -> Option<bool> {
        (!self.closed).then(|| self.transport.is_process())
    }

    /// Takes the live session out, leaving a closed one in its place (for the pool).
    pub fn detach(&mut self) -> Session {
        let mut closed = Session::new(
            self.id,
            Box::new(Detached(self.peer())),
            Guard::default(),
            None,
        );
        closed.closed = true;
        std::mem::swap(self, &mut closed);
        closed
    }

    /// Hands a pooled session to a new run: its id, guard and transcript, and nothing of the
    /// last run's text or settings.
    pub fn rebind(&mut self, id: u32, guard: Guard, transcript: Option<Sink>) {
        self.id = id;
        self.guard = guard;
        self.transcript = transcript;
        self.before.clear();
        self.matched.clear();
        self.timeout = Duration::from_secs(30);
    }

    /// Whether the session can go back to the pool: open, no wait of it failed, nothing
    /// unread, and either at a prompt it knows (a shell after `set_prompt`/`sync_prompt`) or
    /// never used as a shell at all (an SSH connection used for `exec`).
    /// Tells the peer's terminal its size (a pty, ssh, telnet with NAWS; others ignore it).
    pub fn resize(&mut self, cols: u16, rows: u16) -> Result<(), SessionError> {
        self.transport
            .resize(cols, rows)
            .map_err(|e| self.io_err(e))
    }

    /// Logged in and at a known prompt, with nothing pending: ready for the next `cmd`.
    pub fn at_prompt(&self) -> bool {
        self.prompt.is_some() && !self.closed && !self.eof && !self.dirty && self.buf.is_empty()
    }

    pub fn reusable(&mut self) -> bool {
        !self.closed
            && !self.eof
            && !self.dirty
            && self.buf.is_empty()
            && (self.prompt.is_some() || !self.used)
            && self.transport.alive()
    }

    /// Checks a pooled session before reuse: the connection stands and, for a shell, an empty
    /// line brings the prompt back within `timeout`. Anything unread (up to 64 KiB) is dropped
    /// first; a session still streaming more than that is not healthy.
    pub fn health_check(&mut self, timeout: Duration) -> bool {
        if self.closed || self.eof || self.dirty || !self.transport.alive() {
            return false;
        }
        if self.prompt.is_none() {
            return !self.used;
        }
        while self.buf.len() < 64 * 1024
            && let Ok(true) = self.fill(Instant::now() + Duration::from_millis(1))
        {}
        if self.buf.len() >= 64 * 1024 {
            return false;
        }
        self.consume(self.buf.len());
        let Some(prompt) = self.prompt.clone() else {
            return false;
        };
        let answered = self.write("\n").is_ok()
            && self
                .expect(std::slice::from_ref(&prompt), Some(timeout))
                .is_ok();
        // One prompt, and nothing after it: a second would mean output of an earlier command
        // still arriving, and the next `cmd` would read the wrong answer.
        answered
            && self.before.trim().is_empty()
            && matches!(
                self.fill(Instant::now() + Duration::from_millis(20)),
                Ok(false)
            )
            && self.buf.is_empty()
            && !self.eof
    }

    /// For an interactive relay: what arrived but was not read yet, and the transport.
    pub fn relay_parts(&mut self) -> (Vec<u8>, &mut dyn Transport) {
        let pending = self.consume(self.buf.len());
        (pending, self.transport.as_mut())
    }

    /// Runs one command without the shell (SSH: on its own channel), within `timeout` and the
    /// run's deadline, stopping early on cancellation.
    pub fn exec(
        &mut self,
        command: &str,
        timeout: Option<Duration>,
        max: usize,
    ) -> Result<ExecOutput, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        self.guard.check()?;
        let mut t = timeout.unwrap_or(self.timeout);
        if let Some(d) = self.guard.deadline {
            t = t.min(d.saturating_duration_since(Instant::now()));
        }
        self.record(
            Direction::Sent,
            format!("[exec] {command}\n").as_bytes(),
            false,
        );
        let guard = self.guard.clone();
        let out = self
            .transport
            .exec(command, t.max(Duration::from_millis(1)), max, &|| {
                guard.check().is_err()
            })
            .map_err(|e| self.io_err(e));
        // A deadline or a cancellation says so, rather than a transport error.
        self.guard.check()?;
        let out = out?;
        self.record(Direction::Received, out.stdout.as_bytes(), false);
        self.record(Direction::Received, out.stderr.as_bytes(), false);
        Ok(out)
    }

    pub fn peer(&self) -> String {
        self.transport.describe()
    }

    fn record(&self, d: Direction, data: &[u8], secret: bool) {
        if let Some(t) = &self.transcript {
            let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
            if secret {
                t.add_secret(&String::from_utf8_lossy(data));
            }
            t.record(self.id, d, data, secret);
        }
    }

    fn io_err(&self, e: std::io::Error) -> SessionError {
        SessionError::Io {
            peer: self.peer(),
            msg: e.to_string(),
        }
    }

    fn send(&mut self, data: &[u8], secret: bool) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        self.guard.check()?;
        self.used = true;
        self.record(Direction::Sent, data, secret);
        let sent = self.transport.send(data).map_err(|e| self.io_err(e));
        self.dirty |= sent.is_err();
        sent
    }

    pub fn write(&mut self, data: &str) -> Result<(), SessionError> {
        self.send(data.as_bytes(), false)
    }

    /// Writes text that is masked in the transcript, as is any later echo of it.
    pub fn write_secret(&mut self, data: &str) -> Result<(), SessionError> {
        self.send(data.as_bytes(), true)
    }

    /// Reads one chunk into the buffer, waiting until `end` at most.
    /// Returns false on timeout; sets `eof` at end of stream.
    fn fill(&mut self, end: Instant) -> Result<bool, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        self.used = true;
        loop {
            self.guard.check()?;
            let now = Instant::now();
            if now >= end {
                return Ok(false);
            }
            let mut slice = (end - now).min(Duration::from_millis(100));
            if let Some(dl) = self.guard.deadline {
                slice = slice.min(
                    dl.saturating_duration_since(now)
                        .max(Duration::from_millis(1)),
                );
            }
            let got = self.transport.recv(&mut self.scratch, slice);
            if got.is_err() {
                // A transport that looks at the guard itself (an HTTP body) fails when the run
                // is cancelled or out of time: that is the guard's error, not the peer's.
                self.guard.check()?;
            }
            match got.map_err(|e| SessionError::Io {
                peer: self.transport.describe(),
                msg: e.to_string(),
            })? {
                Recv::Data(n) => {
                    let limit = self.guard.max_buffer.unwrap_or(DEFAULT_MAX_BUFFER);
                    if self.buf.len() + n > limit {
                        return Err(SessionError::BufferFull {
                            what: String::new(),
                            peer: self.transport.describe(),
                            limit,
                            last: self.tail(),
                        });
                    }
                    let data = &self.scratch[..n];
                    if let Some(t) = &self.transcript {
                        t.lock().unwrap_or_else(|p| p.into_inner()).record(
                            self.id,
                            Direction::Received,
                            data,
                            false,
                        );
                    }
                    self.buf.extend_from_slice(data);
                    return Ok(true);
                }
                Recv::Eof => {
                    self.eof = true;
                    return Ok(false);
                }
                Recv::Timeout => continue,
            }
        }
    }

    fn tail(&self) -> String {
        let start = self.buf.len().saturating_sub(TAIL);
        let text = String::from_utf8_lossy(&self.buf[start..]).into_owned();
        match &self.transcript {
            Some(t) => t.lock().unwrap_or_else(|p| p.into_inner()).mask(&text),
            None => text,
        }
    }

    fn consume(&mut self, end: usize) -> Vec<u8> {
        let rest = self.buf.split_off(end);
        self.searched = 0;
        std::mem::replace(&mut self.buf, rest)
    }

    /// Searches the buffer for `want`; returns (index, match start, match end).
    fn search(&mut self, want: &Want<'_>) -> Option<(usize, usize, usize)> {
        match want {
            Want::Literal(p) => {
                let from = self.searched.saturating_sub(p.len().saturating_sub(1));
                let found = memchr::memmem::find(&self.buf[from..], p)
                    .map(|i| (0, from + i, from + i + p.len()));
                if found.is_none() {
                    self.searched = self.buf.len();
                }
                found
            }
            Want::Regexes(rs) => {
                // Small buffers are searched whole; a large one from a window before the new
                // bytes, so a flood without a match does not turn quadratic.
                let from = if self.buf.len() <= 4 * REGEX_WINDOW {
                    0
                } else {
                    self.searched.saturating_sub(REGEX_WINDOW)
                };
                let hay = &self.buf[from..];
                let best = rs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| r.find(hay).map(|m| (i, from + m.start(), from + m.end())))
                    .min_by_key(|&(i, s, _)| (s, i));
                if best.is_none() {
                    self.searched = self.buf.len();
                }
                best
            }
        }
    }

    /// Waits until `want` matches; consumes the buffer through the match and returns the
    /// pattern's index, the consumed bytes, and where in them the match starts.
    fn wait_for(
        &mut self,
        want: Want<'_>,
        what: &str,
        timeout: Option<Duration>,
    ) -> Result<(usize, Vec<u8>, usize), SessionError> {
        let waited = timeout.unwrap_or(self.timeout);
        let end = Instant::now() + waited;
        loop {
            if let Some((i, start, stop)) = self.search(&want) {
                return Ok((i, self.consume(stop), start));
            }
            // `searched` is only valid for this pattern: a failed wait forgets it, so the
            // next wait (another pattern) searches what already arrived.
            if self.eof {
                self.searched = 0;
                self.dirty = true;
                return Err(SessionError::Eof {
                    what: what.to_string(),
                    peer: self.peer(),
                    last: self.tail(),
                });
            }
            match self.fill(end) {
                Ok(true) => {}
                Ok(false) if self.eof => {}
                other => {
                    self.searched = 0;
                    self.dirty = true;
                    if let Err(SessionError::BufferFull {
                        peer, limit, last, ..
                    }) = other
                    {
                        // What was received is dropped: the session is dirty and never reused.
                        self.buf = Vec::new();
                        return Err(SessionError::BufferFull {
                            what: what.to_string(),
                            peer,
                            limit,
                            last,
                        });
                    }
                    other?;
                    return Err(SessionError::Timeout {
                        what: what.to_string(),
                        peer: self.peer(),
                        waited,
                        last: self.tail(),
                    });
                }
            }
        }
    }

    /// Reads up to and including `pattern` (a literal), and returns that text.
    pub fn read_until(
        &mut self,
        pattern: &str,
        timeout: Option<Duration>,
    ) -> Result<String, SessionError> {
        let (_, data, _) = self.wait_for(
            Want::Literal(pattern.as_bytes()),
            &format!("{pattern:?}"),
            timeout,
        )?;
        Ok(text(data))
    }

    /// Waits for the first of several regexes; returns its index. `before` and `matched`
    /// hold the text before the match and the match.
    pub fn expect(
        &mut self,
        patterns: &[Regex],
        timeout: Option<Duration>,
    ) -> Result<usize, SessionError> {
        let what = patterns
            .iter()
            .map(|r| format!("/{}/", r.as_str()))
            .collect::<Vec<_>>()
            .join(" or ");
        let (i, mut data, start) = self.wait_for(Want::Regexes(patterns), &what, timeout)?;
        let m = data.split_off(start);
        self.before = text(data);
        self.matched = text(m);
        Ok(i)
    }

    /// Returns what has arrived, waiting up to `timeout` for at least one byte.
    /// An empty string means nothing came (or the stream ended).
    pub fn read_some(&mut self, timeout: Option<Duration>) -> Result<String, SessionError> {
        if self.buf.is_empty() && !self.eof {
            let end = Instant::now() + timeout.unwrap_or(self.timeout);
            self.fill(end)?;
        }
        let all = self.consume(self.buf.len());
        Ok(text(all))
    }

    /// Reads everything until the peer closes the stream.
    pub fn read_to_end(&mut self, timeout: Option<Duration>) -> Result<String, SessionError> {
        let waited = timeout.unwrap_or(self.timeout);
        let end = Instant::now() + waited;
        while !self.eof {
            if !self.fill(end)? && !self.eof {
                self.dirty = true;
                return Err(SessionError::Timeout {
                    what: "end of output".into(),
                    peer: self.peer(),
                    waited,
                    last: self.tail(),
                });
            }
        }
        let all = self.consume(self.buf.len());
        Ok(text(all))
    }

    pub fn is_eof(&self) -> bool {
        self.eof && self.buf.is_empty()
    }

    /// Sets the shell prompt regex that `cmd` waits for.
    pub fn set_prompt(&mut self, pattern: &str) -> Result<(), SessionError> {
        self.prompt = Some(compile(pattern)?);
        Ok(())
    }

    /// Sets a unique prompt on a POSIX shell, as pexpect's pxssh does, so that prompt matching
    /// cannot be fooled by output. The quotes split the marker, so the echoed command itself
    /// never matches.
    pub fn sync_prompt(&mut self, timeout: Option<Duration>) -> Result<(), SessionError> {
        self.prompt_seq += 1;
        let marker = format!("HOSTLER{}P{}>", std::process::id(), self.prompt_seq);
        let (a, b) = marker.split_at(4);
        self.write(&format!("{}{a}''{b} ' {QUIET}\n", SYNC_PROMPT))?;
        let re = compile(&regex::escape(&format!("{marker} ")))?;
        self.expect(std::slice::from_ref(&re), timeout)?;
        self.prompt = Some(re);
        Ok(())
    }

    /// Gives the shell back the prompt it had before [`Session::sync_prompt`] (`:connect`
    /// hands the session to a person), and the terminal type `term`.
    pub fn restore_prompt(&mut self, term: &str) -> Result<(), SessionError> {
        let term: String = term
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        self.prompt = None;
        self.write(&format!(
            "{RESTORE_PROMPT}; export TERM='{}' {QUIET}\n",
            if term.is_empty() { "xterm" } else { &term }
        ))
    }

    /// Sends a command line to a shell and returns its output, without the echo or the prompt.
    /// A line with a control character is refused before anything is sent: a shell on a
    /// terminal reads Ctrl-U, Ctrl-C, a line end or a tab as keys, not as text, and what
    /// followed would run as a command of its own. Control keys go through `write`.
    pub fn cmd(&mut self, line: &str, timeout: Option<Duration>) -> Result<String, SessionError> {
        if let Some((at, c)) = line.char_indices().find(|(_, c)| is_control_key(*c)) {
            return Err(SessionError::ControlCharacter {
                code: u32::from(c),
                at,
            });
        }
        if self.prompt.is_none() {
            self.sync_prompt(timeout)?;
        }
        self.write(&format!("{line}\n"))?;
        let prompt = self.prompt.clone().ok_or(SessionError::Closed)?;
        if let Err(e) = self.expect(std::slice::from_ref(&prompt), timeout) {
            if matches!(
                e,
                SessionError::Cancelled | SessionError::Deadline | SessionError::Timeout { .. }
            ) {
                // The command may still run and its output still come: interrupt it, and
                // forget the prompt, so the next cmd() syncs a fresh one past all of that
                // instead of returning this command's late output as its own.
                self.record(Direction::Sent, b"\x03", false);
                let _ = self.transport.send(b"\x03");
                self.prompt = None;
            }
            return Err(e);
        }
        // Terminal escapes (bracketed paste, colours, titles) are for a screen, not a script;
        // the transcript keeps them.
        let text = strip_escapes(&self.before)
            .replace("\r\n", "\n")
            .replace('\r', "");
        let text = match text.strip_prefix(line) {
            Some(rest) => rest.strip_prefix('\n').unwrap_or(rest),
            None => &text,
        };
        Ok(text.trim_end_matches('\n').to_string())
    }

    /// Closes the session; returns the exit code where the transport has one.
    pub fn close(&mut self) -> Result<Option<i32>, SessionError> {
        if self.closed {
            return Ok(None);
        }
        self.closed = true;
        self.transport.close().map_err(|e| self.io_err(e))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Whether a character acts as a key on a terminal rather than as text: C0 controls and DEL.
pub fn is_control_key(c: char) -> bool {
    (c as u32) < 0x20 || c == '\x7f'
}

/// Text without terminal escape sequences: CSI (`ESC [ ... final`, as bracketed paste's
/// `ESC[?2004h` and colours), OSC (`ESC ] ... BEL` or `ESC ] ... ESC \`, as window titles) and
/// two-character escapes.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            // A two-character escape (ESC =, ESC >, ESC 7 ...): both go.
            Some(_) | None => {}
        }
    }
    out
}

/// Bytes as text, without a copy when they are valid UTF-8 (the common case).
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Compiles a pattern with a clear error.
/// The shell line that sets hostler's prompt (followed by the quoted marker): it keeps the
/// shell's own prompt settings once (for `:connect`), and quiets what would put escapes or
/// extra lines around output: bash's PROMPT_COMMAND and bracketed paste, zsh's right prompt
/// and its partial-line marker. Words a shell does not know fail quietly.
const SYNC_PROMPT: &str = "[ -n \"${HOSTLER_PS1+x}\" ] || { HOSTLER_PS1=$PS1; HOSTLER_PS2=$PS2; HOSTLER_PC=$PROMPT_COMMAND; }; \
unset PROMPT_COMMAND; RPROMPT=''; PS2=''; \
bind 'set enable-bracketed-paste off' 2>/dev/null; unsetopt PROMPT_SP PROMPT_CR 2>/dev/null; PS1='";

/// The shell line that gives back the prompt settings [`SYNC_PROMPT`] kept.
const RESTORE_PROMPT: &str = "PS1=$HOSTLER_PS1; PS2=$HOSTLER_PS2; PROMPT_COMMAND=$HOSTLER_PC; \
[ -n \"$PROMPT_COMMAND\" ] || unset PROMPT_COMMAND; unset HOSTLER_PS1 HOSTLER_PS2 HOSTLER_PC";

/// Quiets the rest of a shell line's complaints.
const QUIET: &str = "2>/dev/null";

pub fn compile(pattern: &str) -> Result<Regex, SessionError> {
    Regex::new(pattern).map_err(|e| SessionError::BadPattern {
        pattern: pattern.to_string(),
        msg: e.to_string(),
    })
}
