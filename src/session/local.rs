//! Local processes: the first transport (pipes, or a pseudo-terminal), `exec` to completion,
//! and the `[sandbox] allowed_commands` allowlist that both go through.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::transport::{Recv, Transport};
use super::{Guard, SessionError};

/// Which commands scripts may run. A pattern without `/` matches a bare command name looked up
/// in PATH (`df`); a pattern with `/` matches the canonical absolute path
/// (`/usr/lib/nagios/plugins/check_*`), so `..` cannot walk out of an allowed directory.
#[derive(Debug, Clone)]
pub struct Allowlist {
    bare: GlobSet,
    paths: GlobSet,
    patterns: Vec<String>,
}

impl Allowlist {
    pub fn new(patterns: &[String]) -> Result<Allowlist, String> {
        let mut bare = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for p in patterns {
            // `*` stops at `/`: "/usr/lib/nagios/plugins/*" must not reach into subfolders.
            let g = GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("bad allowed_commands pattern {p:?}: {e}"))?;
            if p.contains('/') {
                paths.add(g);
            } else {
                bare.add(g);
            }
        }
        Ok(Allowlist {
            bare: bare.build().map_err(|e| e.to_string())?,
            paths: paths.build().map_err(|e| e.to_string())?,
            patterns: patterns.to_vec(),
        })
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
        let label = format!("local process {}", path.display());
        let spawn_err = |e: io::Error| SessionError::Spawn {
            cmd: path.display().to_string(),
            msg: e.to_string(),
        };
        let mut cmd = Command::new(path);
        cmd.args(args);
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
                let _ = self.child.kill();
                return Ok(self.child.wait()?.code());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What `exec` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `path args` to completion, with stdin closed, within the guard's deadline.
/// Each stream is kept up to `cap` bytes.
pub fn exec(
    path: &Path,
    args: &[String],
    guard: &Guard,
    cap: usize,
) -> Result<ExecOutput, SessionError> {
    let spawn_err = |e: io::Error| SessionError::Spawn {
        cmd: path.display().to_string(),
        msg: e.to_string(),
    };
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // Each stream is read on its own thread into a shared buffer (kept up to `cap`, the rest
    // drained so a chatty command never blocks on a full pipe). The threads are not joined:
    // a background process that inherited the pipe could hold it open forever.
    let reader = |r: Option<Box<dyn Read + Send>>| {
        let buf = Arc::new(Mutex::new((Vec::new(), false)));
        let b = buf.clone();
        std::thread::spawn(move || {
            let Some(mut r) = r else {
                b.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
                return;
            };
            let mut chunk = [0u8; 8192];
            loop {
                let n = match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut g = b.lock().unwrap_or_else(|p| p.into_inner());
                let room = cap.saturating_sub(g.0.len());
                g.0.extend_from_slice(&chunk[..n.min(room)]);
            }
            b.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        });
        buf
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(st) = child.try_wait().map_err(spawn_err)? {
            break st;
        }
        if let Err(e) = guard.check() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // The command has exited; give its pipes a moment to reach end of file.
    let settle = Instant::now() + Duration::from_secs(1);
    let done = |b: &Arc<Mutex<(Vec<u8>, bool)>>| b.lock().map(|g| g.1).unwrap_or(true);
    while !(done(&out) && done(&err)) && Instant::now() < settle && guard.check().is_ok() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let take = |b: &Arc<Mutex<(Vec<u8>, bool)>>| {
        let g = b.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&g.0).into_owned()
    };
    let (stdout, stderr) = (take(&out), take(&err));
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .map_or_else(|| 128 + i64::from(status.signal().unwrap_or(0)), i64::from);
    Ok(ExecOutput {
        code,
        stdout,
        stderr,
    })
}
