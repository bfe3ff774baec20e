//! The environment this process starts with, set right by starting again at once when it
//! must be:
//! - A password in `$HOSTLER_DB` never stays in this process's environment, where
//!   `/proc/PID/environ` shows it to whatever can read that file (a command a script starts,
//!   run as the same user or as root). hostler starts itself again without it, handing the URL
//!   over through a pipe; the new process reads it from there, so its environment never held
//!   it.
//! - The daemon turns glibc's per-thread cache of freed blocks off ([`TUNABLES`]), which only
//!   the environment at start can do.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::sync::OnceLock;

/// The variable that names the pipe the URL comes through.
const FD_VAR: &str = "HOSTLER_DB_FD";

/// glibc's tunables for the daemon. Each thread keeps a cache of the small blocks it freed
/// (up to 7 of each size to 1 KiB), which no other thread can use. The daemon runs each job
/// on a thread, and a check waiting on the network keeps its thread, and so that thread's
/// cache, for as long as it waits: 2,000 checks waiting on mute peers held 421 MB with the
/// cache and 273 MB without, at the same CPU per check at 2,000 checks a second
/// (BENCHMARKS.md, issue 31).
pub const TUNABLES: &str = "glibc.malloc.tcache_count=0";

/// Set beside `GLIBC_TUNABLES` by the start that set it: the new process takes both out of
/// its environment again at once (the allocator read them when the process started).
const TUNED_VAR: &str = "HOSTLER_MALLOC_TUNED";

/// The database URL handed over through the pipe.
static HANDED: OnceLock<String> = OnceLock::new();

/// First thing in `main`, once the command line is parsed (`daemon`: the command is `serve`):
/// takes the URL from the pipe if this process was started by this function's exec, or
/// starts this program again when its environment holds a password, or when the daemon's
/// allocator needs [`TUNABLES`] (unless `$GLIBC_TUNABLES` is set already: the operator's own
/// choice stands). Returns when nothing had to be done or the new start failed: then a
/// password stays in the environment, with a warning on stderr, and the daemon runs with
/// glibc's defaults.
pub fn scrub(daemon: bool) {
    let tuned = std::env::var_os(TUNED_VAR).is_some();
    if tuned {
        // SAFETY: first thing in `main`, before any other thread exists; nothing else reads
        // or writes the environment meanwhile.
        #[allow(unsafe_code)]
        unsafe {
            std::env::remove_var("GLIBC_TUNABLES");
            std::env::remove_var(TUNED_VAR);
        }
    }
    let handed = std::env::var(FD_VAR)
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    if tuned || handed.is_some() {
        restore_name();
    }
    if let Some(fd) = handed {
        let mut url = String::new();
        let read = take_pipe(fd).and_then(|mut f| f.read_to_string(&mut url));
        match read {
            Ok(_) => {
                let _ = HANDED.set(url.trim_end_matches('\n').to_string());
            }
            Err(e) => eprintln!("hostler: cannot read the database URL handed over: {e}"),
        }
        return;
    }
    let password = std::env::var("HOSTLER_DB")
        .ok()
        .filter(|url| crate::redact::has_password(url));
    let tune = daemon
        && !tuned
        && cfg!(all(target_os = "linux", target_env = "gnu"))
        && std::env::var_os("GLIBC_TUNABLES").is_none();
    if password.is_none() && !tune {
        return;
    }
    let err = match restart(password.as_deref(), tune) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Without the tunables the daemon works as before, with more memory per waiting check:
    // not worth a word on every start in a chroot without /proc.
    if password.is_some() {
        eprintln!(
            "hostler: warning: cannot start again without the password in $HOSTLER_DB ({err}); it stays in this process's environment"
        );
    }
}

/// A start through /proc/self/exe names the process "exe" (in ps, top, pgrep, the journal):
/// it takes back the name it was started under, as exec would have given it.
fn restore_name() {
    use std::os::unix::ffi::OsStrExt;
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let base = std::path::Path::new(&argv0)
        .file_name()
        .map_or(&b"hostler"[..], |n| n.as_bytes());
    // A login shell's argv[0] is "-hostler".
    let base = base.strip_prefix(b"-").unwrap_or(base);
    // The kernel keeps 15 bytes of a name.
    let name: Vec<u8> = base.iter().copied().filter(|b| *b != 0).take(15).collect();
    if let Ok(name) = std::ffi::CString::new(name) {
        let _ = nix::sys::prctl::set_name(&name);
    }
}

/// Takes the handed-over pipe as this process's own file, so it is closed once read and no
/// command started later inherits it. Refused unless the descriptor is a pipe.
#[allow(unsafe_code)]
fn take_pipe(fd: i32) -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    let what = std::fs::read_link(format!("/proc/self/fd/{fd}"))?;
    if !what.to_string_lossy().starts_with("pipe:") {
        return Err(std::io::Error::other(format!(
            "{FD_VAR}={fd} is not a pipe"
        )));
    }
    // SAFETY: the descriptor is open (its /proc link exists) and is the pipe the process that
    // exec'd this one left for it; nothing else in this process has taken it, since this runs
    // first in main.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Execs this program again: with `$HOSTLER_DB` taken out and handed over through a pipe
/// when `url` is given, with [`TUNABLES`] when `tune`.
fn restart(url: Option<&str>, tune: bool) -> std::io::Result<std::convert::Infallible> {
    use std::io::Write;
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0(argv0).args(args);
    if tune {
        cmd.env("GLIBC_TUNABLES", TUNABLES).env(TUNED_VAR, "1");
    }
    let mut pipe = None;
    if let Some(url) = url {
        let (r, w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
        let mut w = std::fs::File::from(w);
        // A URL is far smaller than a pipe's buffer: the write never waits for the reader.
        w.write_all(url.as_bytes())?;
        drop(w);
        cmd.env_remove("HOSTLER_DB")
            .env(FD_VAR, r.as_raw_fd().to_string());
        pipe = Some(r);
    }
    let err = cmd.exec();
    drop(pipe);
    Err(err)
}

/// `$HOSTLER_DB` as this process was given it: from the pipe, or from the environment.
pub fn database_url() -> Option<String> {
    HANDED
        .get()
        .cloned()
        .or_else(|| std::env::var("HOSTLER_DB").ok())
}
