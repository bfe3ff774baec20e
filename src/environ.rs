//! A password in `$HOSTLER_DB` never stays in this process's environment, where
//! `/proc/PID/environ` shows it to whatever can read that file (a command a script starts,
//! run as the same user or as root). When the variable holds a password, hostler starts
//! itself again at once without it, handing the URL over through a pipe; the new process
//! reads it from there, so its environment never held it.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::sync::OnceLock;

/// The variable that names the pipe the URL comes through.
const FD_VAR: &str = "HOSTLER_DB_FD";

/// The database URL handed over through the pipe.
static HANDED: OnceLock<String> = OnceLock::new();

/// First thing in `main`: takes the URL from the pipe if this process was started by
/// [`scrub`]'s exec, or starts this program again without the password in its environment.
/// Returns only when nothing had to be done or the new start failed (then the variable
/// stays, with a warning on stderr).
pub fn scrub() {
    if let Some(fd) = std::env::var(FD_VAR)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    {
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
    let Ok(url) = std::env::var("HOSTLER_DB") else {
        return;
    };
    if !crate::redact::has_password(&url) {
        return;
    }
    let err = match restart_without(&url) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    eprintln!(
        "hostler: warning: cannot start again without the password in $HOSTLER_DB ({err}); it stays in this process's environment"
    );
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

/// Execs this program again with `$HOSTLER_DB` taken out and handed over through a pipe.
fn restart_without(url: &str) -> std::io::Result<std::convert::Infallible> {
    use std::io::Write;
    let (r, w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    let mut w = std::fs::File::from(w);
    // A URL is far smaller than a pipe's buffer: the write never waits for the reader.
    w.write_all(url.as_bytes())?;
    drop(w);
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(args)
        .env_remove("HOSTLER_DB")
        .env(FD_VAR, r.as_raw_fd().to_string())
        .exec();
    drop(r);
    Err(err)
}

/// `$HOSTLER_DB` as this process was given it: from the pipe, or from the environment.
pub fn database_url() -> Option<String> {
    HANDED
        .get()
        .cloned()
        .or_else(|| std::env::var("HOSTLER_DB").ok())
}
