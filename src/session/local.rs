//! Local processes: the first transport (pipes, or a pseudo-terminal), `exec` to completion,
//! and the `[sandbox] allowed_commands` allowlist that both go through.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::transport::{ExecOutput, Recv, Transport};
use super::{Guard, SessionError};

/// Which commands scripts may run. A pattern without `/` matches a bare command name looked up
/// in PATH (`df`); a pattern with `/` matches the canonical absolute path
/// (`/usr/lib/nagios/plugins/check_*`), so `..` cannot walk out of an allowed directory.
#[derive(Debug, Clone)]
pub struct Allowlist {
    bare: GlobSet,
    paths: GlobSet,
    patterns: Vec<String>,
    /// Options no command may be given (see [`Allowlist::check_args`]).
    refused: Vec<String>,
    /// Per command (a glob over its canonical path): more refused options, and, when given,
    /// the only options allowed.
    rules: Vec<(globset::GlobMatcher, crate::config::ArgumentRule)>,
    /// The environment commands run with: PATH and LANG, plus `[sandbox] environment`.
    env: Vec<(String, String)>,
    /// Files no command may touch (the database, the key, the config): see
    /// [`super::sandbox_fs`].
    protected: super::sandbox_fs::Protected,
}

/// Options refused to every command by default: the monitoring plugins' `--extra-opts`
/// reads any INI file and echoes its keys and values in its error.
pub const REFUSED_ARGUMENTS: &[&str] = &["--extra-opts"];

/// Whether argument `arg` spells option `opt`: `--name`, `--name=value`, or an abbreviation
/// getopt_long accepts (`--extra`, `--ex=...`); for a short `-x`, any single-dash argument
/// that holds the letter (`-x`, `-xFILE`, `-vx`), which refuses more than needed, never less.
pub fn spells(arg: &str, opt: &str) -> bool {
    if let Some(long) = opt.strip_prefix("--") {
        let Some(given) = arg.strip_prefix("--") else {
            return false;
        };
        let name = given.split('=').next().unwrap_or("");
        !name.is_empty() && long.starts_with(name)
    } else if let Some(short) = opt.strip_prefix('-') {
        let mut letters = short.chars();
        match (letters.next(), letters.next()) {
            (Some(c), None) => {
                arg.starts_with('-') && !arg.starts_with("--") && arg[1..].contains(c)
            }
            _ => arg == opt,
        }
    } else {
        arg == opt
    }
}

impl Allowlist {
    pub fn new(patterns: &[String]) -> Result<Allowlist, String> {
        let mut bare = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let glob = |p: &str| {
            // `*` stops at `/`: "/usr/lib/nagios/plugins/*" must not reach into subfolders.
            GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("bad allowed_commands pattern {p:?}: {e}"))
        };
        for p in patterns {
            let g = glob(p)?;
            if p.contains('/') {
                paths.add(g);
                // A command is matched by its canonical path, so a symlinked name in the
                // pattern (/bin/sh, whose file is /usr/bin/dash) is matched by its own
                // canonical form too. Only the literal folders are resolved: the glob part
                // still stops at `/`, and `..` in a command cannot walk out.
                if let Some(canon) = canonical_pattern(p)
                    && canon != *p
                {
                    paths.add(glob(&canon)?);
                }
            } else {
                bare.add(g);
            }
        }
        let mut env = Vec::new();
        for name in ["PATH", "LANG"] {
            if let Ok(v) = std::env::var(name) {
                env.push((name.to_string(), v));
            }
        }
        if !env.iter().any(|(n, _)| n == "PATH") {
            env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
        }
        Ok(Allowlist {
            bare: bare.build().map_err(|e| e.to_string())?,
            paths: paths.build().map_err(|e| e.to_string())?,
            patterns: patterns.to_vec(),
            refused: REFUSED_ARGUMENTS.iter().map(|s| s.to_string()).collect(),
            rules: Vec::new(),
            env,
            protected: super::sandbox_fs::Protected::default(),
        })
    }

    /// Files no command a script starts may read or write (see [`super::sandbox_fs`]).
    pub fn with_protected(mut self, protected: super::sandbox_fs::Protected) -> Allowlist {
        self.protected = protected;
        self
    }

    /// `[sandbox] refused_arguments`, `[sandbox.arguments]` and `[sandbox] environment`.
    pub fn with_arguments(
        mut self,
        refused: &[String],
        rules: &std::collections::BTreeMap<String, crate::config::ArgumentRule>,
        environment: &[String],
    ) -> Result<Allowlist, String> {
        for r in refused {
            if !self.refused.contains(r) {
                self.refused.push(r.clone());
            }
        }
        for (pattern, rule) in rules {
            let g = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("bad [sandbox.arguments] pattern {pattern:?}: {e}"))?;
            self.rules.push((g.compile_matcher(), rule.clone()));
            if let Some(canon) = canonical_pattern(pattern)
                && canon != *pattern
                && let Ok(g) = GlobBuilder::new(&canon).literal_separator(true).build()
            {
                self.rules.push((g.compile_matcher(), rule.clone()));
            }
        }
        for name in environment {
            if let Ok(v) = std::env::var(name)
                && !self.env.iter().any(|(n, _)| n == name)
            {
                self.env.push((name.clone(), v));
            }
        }
        Ok(self)
    }

    /// Refuses arguments that would make an allowed command read or write files or run other
    /// programs: `--extra-opts` by default, and what `[sandbox]` adds for this command.
    pub fn check_args(&self, path: &Path, args: &[String]) -> Result<(), SessionError> {
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        let rules: Vec<&crate::config::ArgumentRule> = self
            .rules
            .iter()
            .filter(|(g, _)| {
                g.is_match(&canon)
                    || g.is_match(path)
                    || name.as_ref().is_some_and(|n| g.is_match(n))
            })
            .map(|(_, r)| r)
            .collect();
        let refused = |arg: &str| {
            self.refused.iter().any(|o| spells(arg, o))
                || rules
                    .iter()
                    .any(|r| r.refuse.iter().any(|o| spells(arg, o)))
        };
        // With `values`, a word that is not an option must be the value of the one before.
        let mut value_next = false;
        for arg in args {
            let takes_value = |a: &str| {
                rules
                    .iter()
                    .any(|r| r.values.as_ref().is_some_and(|v| v.iter().any(|o| o == a)))
            };
            let stray_word =
                !arg.starts_with('-') && !value_next && rules.iter().any(|r| r.values.is_some());
            value_next = arg.starts_with('-') && takes_value(arg);
            if stray_word {
                return Err(SessionError::ArgumentRefused {
                    cmd: path.display().to_string(),
                    arg: arg.clone(),
                });
            }
            let not_listed = arg.starts_with('-')
                && arg != "-"
                && rules.iter().any(|r| {
                    r.only.as_ref().is_some_and(|only| {
                        !only
                            .iter()
                            .any(|o| arg == o || arg.split('=').next() == Some(o.as_str()))
                    })
                });
            if refused(arg) || not_listed {
                return Err(SessionError::ArgumentRefused {
                    cmd: path.display().to_string(),
                    arg: arg.clone(),
                });
            }
        }
        Ok(())
    }

    /// The command a script may run: `path args`, arguments checked, with a clean
    /// environment (PATH and LANG only, plus `[sandbox] environment`), and its file sandbox.
    pub fn prepare(&self, path: &Path, args: &[String]) -> Result<Prepared, SessionError> {
        self.check_args(path, args)?;
        // Fail closed: a command that cannot be confined does not start.
        let ruleset = self
            .protected
            .ruleset()
            .map_err(|msg| SessionError::Spawn {
                cmd: path.display().to_string(),
                msg,
            })?;
        Ok(Prepared {
            path: path.to_path_buf(),
            args: args.to_vec(),
            env: self.env.clone(),
            ruleset,
        })
    }

    /// [`Allowlist::prepare`] as a [`Command`], stdin from /dev/null unless the caller gives
    /// another.
    pub fn command(&self, path: &Path, args: &[String]) -> Result<Command, SessionError> {
        Ok(self.prepare(path, args)?.into_command())
    }

    /// Resolves `cmd` to the path to execute, if the allowlist permits it.
    pub fn check(&self, cmd: &str) -> Result<PathBuf, SessionError> {
        let denied = || SessionError::NotAllowed {
            cmd: cmd.to_string(),
            allowed: self.patterns.join(", "),
        };
        if cmd.is_empty() || cmd.contains('\0') {
            return Err(denied());
        }
        if cmd.contains('/') {
            let canon = Path::new(cmd)
                .canonicalize()
                .map_err(|_| SessionError::Spawn {
                    cmd: cmd.to_string(),
                    msg: "no such file".into(),
                })?;
            return if self.paths.is_match(&canon) {
                Ok(canon)
            } else {
                Err(denied())
            };
        }
        let found = find_in_path(cmd).ok_or_else(|| SessionError::Spawn {
            cmd: cmd.to_string(),
            msg: "not found in PATH".into(),
        })?;
        let canon = found.canonicalize().unwrap_or_else(|_| found.clone());
        if self.bare.is_match(cmd) || self.paths.is_match(&canon) {
            Ok(found)
        } else {
            Err(denied())
        }
    }
}

/// A pattern with its literal leading folders resolved (`/bin/sh` -> `/usr/bin/dash`,
/// `/lib/x/check_*` -> `/usr/lib/x/check_*`), if they exist.
fn canonical_pattern(p: &str) -> Option<String> {
    let is_glob = |s: &str| s.contains(['*', '?', '[', '{']);
    if !is_glob(p) {
        return Path::new(p)
            .canonicalize()
            .ok()
            .map(|c| c.display().to_string());
    }
    let (dir, rest) = p.rsplit_once('/')?;
    if is_glob(dir) || dir.is_empty() {
        return None;
    }
    let canon = Path::new(dir).canonicalize().ok()?;
    Some(format!("{}/{rest}", canon.display()))
}

fn find_in_path(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// Waits until `fd` is readable or `timeout` passes. Returns whether it is readable.
pub fn wait_readable(fd: &impl AsFd, timeout: Duration) -> io::Result<bool> {
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// A local process under the expect engine.
pub struct LocalProcess {
    child: Child,
    input: Option<File>,
    output: File,
    pty: bool,
    label: String,
}

impl LocalProcess {
    /// Starts `path args` with stdout and stderr merged into one stream, over pipes or a pty.
    pub fn spawn(path: &Path, args: &[String], pty: bool) -> Result<LocalProcess, SessionError> {
        let mut cmd = Command::new(path);
        cmd.args(args);
        LocalProcess::spawn_command(cmd, pty)
    }

    /// Starts a prepared command (a script's, from [`Allowlist::command`]) in a process group
    /// of its own (over a pty, a session of its own), so closing it ends everything it
    /// started.
    pub fn spawn_command(mut cmd: Command, pty: bool) -> Result<LocalProcess, SessionError> {
        use std::os::unix::process::CommandExt;
        let path = PathBuf::from(cmd.get_program());
        let label = format!("local process {}", path.display());
        let spawn_err = |e: io::Error| SessionError::Spawn {
            cmd: path.display().to_string(),
            msg: e.to_string(),
        };
        if !pty {
            cmd.process_group(0);
        }
        let (child, input, output) = if pty {
            let ws = nix::pty::Winsize {
                ws_row: 24,
                ws_col: 200,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let pair = nix::pty::openpty(Some(&ws), None).map_err(|e| spawn_err(e.into()))?;
            let slave: OwnedFd = pair.slave;
            cmd.stdin(Stdio::from(slave.try_clone().map_err(spawn_err)?))
                .stdout(Stdio::from(slave.try_clone().map_err(spawn_err)?))
                .stderr(Stdio::from(slave));
            cmd.env("TERM", "dumb");
            set_controlling_tty(&mut cmd);
            let child = cmd.spawn().map_err(spawn_err)?;
            drop(cmd);
            let master = File::from(pair.master);
            (child, master.try_clone().map_err(spawn_err)?, master)
        } else {
            let (reader, writer) = io::pipe().map_err(spawn_err)?;
            cmd.stdin(Stdio::piped())
                .stdout(writer.try_clone().map_err(spawn_err)?)
                .stderr(writer);
            let mut child = cmd.spawn().map_err(spawn_err)?;
            // The Command holds the parent's copies of the pipe's write end: drop it, or the
            // reader never sees end of file.
            drop(cmd);
            let stdin = child.stdin.take().map(|s| File::from(OwnedFd::from(s)));
            let stdin = stdin.ok_or_else(|| spawn_err(io::Error::other("no stdin")))?;
            (child, stdin, File::from(OwnedFd::from(reader)))
        };
        Ok(LocalProcess {
            child,
            input: Some(input),
            output,
            pty,
            label,
        })
    }
}

/// A command a script may run, checked, with its environment and its file sandbox, not yet
/// started: [`exec`] starts it without a fork of the daemon, [`Prepared::into_command`]
/// makes it a [`Command`] for sessions.
pub struct Prepared {
    path: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ruleset: Option<landlock::RulesetCreated>,
}

impl Prepared {
    pub fn into_command(self) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(&self.args).env_clear().stdin(Stdio::null());
        for (n, v) in &self.env {
            cmd.env(n, v);
        }
        confine(&mut cmd, self.ruleset);
        cmd
    }
}

/// Linux's CAP_SYS_PTRACE (linux/capability.h).
const CAP_SYS_PTRACE: libc::c_ulong = 19;

/// As the command starts: it can never trace the daemon (CAP_SYS_PTRACE leaves its bounding
/// set, so even a command run as root cannot read the non-dumpable daemon's
/// `/proc/PID/environ` or memory), and it is put under `ruleset` (see [`super::sandbox_fs`]).
#[allow(unsafe_code)]
fn confine(cmd: &mut Command, ruleset: Option<landlock::RulesetCreated>) {
    use std::os::unix::process::CommandExt;
    let mut ruleset = ruleset;
    // SAFETY: between fork and exec only prctl(2), landlock_restrict_self(2) and close(2) are
    // called: restrict_self allocates nothing and takes no lock on success, and a failure is
    // reported as a plain OS error (no allocation either).
    unsafe {
        cmd.pre_exec(move || {
            // Dropping a capability needs CAP_SETPCAP: a command that is not root never had
            // CAP_SYS_PTRACE, so a refusal here changes nothing.
            let _ = libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0);
            match ruleset.take() {
                Some(r) => match r.restrict_self() {
                    Ok(_) => Ok(()),
                    Err(_) => Err(io::Error::from_raw_os_error(libc::EPERM)),
                },
                None => Ok(()),
            }
        });
    }
}

#[allow(unsafe_code)]
fn set_controlling_tty(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls are made: setsid(2) and
    // ioctl(2), which allocate nothing and take no locks.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Transport for LocalProcess {
    fn resize(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        if !self.pty {
            return Ok(());
        }
        let ws = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&self.output, ws).map_err(io::Error::from)
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.input {
            Some(f) => f.write_all(data),
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "input closed")),
        }
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Recv> {
        if !wait_readable(&self.output, timeout)? {
            return Ok(Recv::Timeout);
        }
        match self.output.read(buf) {
            Ok(0) => Ok(Recv::Eof),
            Ok(n) => Ok(Recv::Data(n)),
            // A pty master reports EIO once the last process on the slave side is gone.
            Err(e) if self.pty && e.raw_os_error() == Some(libc::EIO) => Ok(Recv::Eof),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Recv::Timeout),
            Err(e) => Err(e),
        }
    }

    fn close(&mut self) -> io::Result<Option<i32>> {
        self.input = None;
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st.code());
            }
            if Instant::now() >= deadline {
                kill_group(&self.child);
                let _ = self.child.kill();
                return Ok(self.child.wait()?.code());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn is_process(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        kill_group(&self.child);
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Kills the process group a child leads (what it started in the background too). A child
/// that leads no group has no group of its id: nothing happens then.
fn kill_group(child: &Child) {
    kill_pid_group(child.id());
}

/// Kills the process group that `pid` leads.
fn kill_pid_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Runs a prepared command (from [`Allowlist::prepare`]) to completion, with stdin from
/// /dev/null, in a process group of its own, within the guard's deadline: past it (or on
/// cancel) the whole group is killed, what it started too. Its exit code (128 + the signal
/// that ended it), and up to `cap` bytes of each of stdout and stderr.
///
/// It starts through `session::spawn`, not a fork of the daemon, and the calling thread (a
/// job's, which waits anyway) waits in one `poll(2)` on both pipes and the command's pidfd:
/// the pipes are read as they fill and the exit comes as an event, with no thread, reactor
/// registration or timer per run and no polling for the exit. Only the guard's cancel flag
/// and memory budget, which no event announces, are looked at every 100 ms (`GUARD_TICK`).
pub fn exec(p: Prepared, guard: &Guard, cap: usize) -> Result<ExecOutput, SessionError> {
    let spawn_err = |e: io::Error| SessionError::Spawn {
        cmd: p.path.display().to_string(),
        msg: e.to_string(),
    };
    let (out_r, out_w) = io::pipe().map_err(spawn_err)?;
    let (err_r, err_w) = io::pipe().map_err(spawn_err)?;
    let mut child = super::spawn::start(
        &p.path,
        &p.args,
        &p.env,
        p.ruleset,
        [dev_null().map_err(spawn_err)?, out_w.as_fd(), err_w.as_fd()],
    )
    .map_err(spawn_err)?;
    // The daemon's copies of the write ends go, or the reads never see end of file.
    drop((out_w, err_w));
    let pid = child.pid();
    let mut streams = [
        Stream::new(File::from(OwnedFd::from(out_r))),
        Stream::new(File::from(OwnedFd::from(err_r))),
    ];
    let mut code = None;
    let mut tick = Instant::now() + guard_wait(guard);
    // Once it has exited: what it started in the background is left running (a fix that
    // starts a service, `svc &`, must not have it killed behind it) and may hold the pipes
    // open; they get a second to reach end of file. A run that times out or is cancelled
    // kills the whole group, below.
    let mut linger = None;
    loop {
        let open = streams.iter().any(|s| s.file.is_some());
        if code.is_some() && !open {
            break;
        }
        let now = Instant::now();
        if linger.is_some_and(|until| now >= until) {
            break;
        }
        if code.is_none() && now >= tick {
            if let Err(e) = guard.check() {
                kill_pid_group(pid);
                child.kill();
                let _ = child.wait();
                return Err(e);
            }
            tick = now + guard_wait(guard);
        }
        let wake = linger.unwrap_or(tick);
        let ms = wake
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000);
        let mut fds = Vec::with_capacity(3);
        for s in &streams {
            if let Some(f) = &s.file {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
        }
        if code.is_none() {
            fds.push(PollFd::new(child.pidfd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(
            &mut fds,
            PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX)),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(spawn_err(e.into())),
        }
        // Readable, at end of file (POLLHUP) or in error: a read (or waitid) says which.
        let mut ready = [false; 3];
        for (r, f) in ready.iter_mut().zip(&fds) {
            *r = f.any().unwrap_or(true);
        }
        drop(fds);
        let mut at = 0;
        for s in &mut streams {
            if s.file.is_some() {
                if ready[at] {
                    s.read(cap);
                }
                at += 1;
            }
        }
        if code.is_none()
            && ready[at]
            && let Some(c) = child.try_wait().map_err(spawn_err)?
        {
            code = Some(c);
            linger = Some(Instant::now() + Duration::from_secs(1));
        }
    }
    let [stdout, stderr] = streams.map(|s| String::from_utf8_lossy(&s.kept).into_owned());
    Ok(ExecOutput {
        code: code.unwrap_or_default(),
        stdout,
        stderr,
    })
}

/// `/dev/null`, opened once: every command's stdin.
fn dev_null() -> io::Result<std::os::fd::BorrowedFd<'static>> {
    static NULL: std::sync::OnceLock<File> = std::sync::OnceLock::new();
    if NULL.get().is_none() {
        let _ = NULL.set(File::open("/dev/null")?);
    }
    Ok(NULL.get().expect("set above").as_fd())
}

/// How often a running command's guard is looked at for a cancel or the memory budget.
const GUARD_TICK: Duration = Duration::from_millis(100);

/// Until the guard should be looked at again: its deadline, or a tick, whichever comes first.
fn guard_wait(guard: &Guard) -> Duration {
    guard.deadline.map_or(GUARD_TICK, |d| {
        d.saturating_duration_since(Instant::now()).min(GUARD_TICK)
    })
}

/// One of a command's output pipes, read to its end: the first `cap` bytes kept, the rest
/// drained, so a chatty command never blocks on a full pipe.
struct Stream {
    /// None once at end of file (or a failed read).
    file: Option<File>,
    kept: Vec<u8>,
}

impl Stream {
    fn new(file: File) -> Stream {
        Stream {
            file: Some(file),
            kept: Vec::new(),
        }
    }

    /// One read, after `poll` said the pipe is readable (so it does not block).
    fn read(&mut self, cap: usize) {
        let Some(f) = &mut self.file else { return };
        let mut chunk = [0u8; 8192];
        match f.read(&mut chunk) {
            Ok(0) => self.file = None,
            Ok(n) => {
                let room = cap.saturating_sub(self.kept.len());
                self.kept.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.file = None,
        }
    }
}
