//! Starting a script's command without copying the daemon. `fork(2)` of a daemon with
//! hundreds of threads copies its page tables, and until the child execs every page either
//! side writes faults and flushes the TLB of every core: at 400 plugin checks a second that
//! was most of the daemon's CPU. So `exec` starts its command as glibc's `posix_spawn` does,
//! with `clone(2)` and `CLONE_VM | CLONE_VFORK`: the child borrows the daemon's memory on a
//! stack of its own until `execve(2)`, while the calling thread waits. Between the two it does
//! what `posix_spawn` cannot: CAP_SYS_PTRACE leaves the bounding set, and the Landlock ruleset
//! (with `no_new_privs`) is put on it. The caller gets a pidfd (`CLONE_PIDFD`): it becomes
//! readable when the command exits, so the caller waits for the exit and the command's output
//! in one `poll(2)`, with no thread and no timer of its own.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::wait::{Id, WaitPidFlag, WaitStatus};

/// The child's stack until `execve`: it makes a few dozen system calls and nothing else.
const STACK: usize = 64 * 1024;

thread_local! {
    /// Each thread's child stack, kept for its next command: a 64 KiB block allocated and
    /// freed per command cost a zeroing, and its free merged the allocator's small free
    /// chunks every time. Never initialised: only the child writes it, and only the few
    /// pages it touches are ever resident.
    static CHILD_STACK: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Linux's CAP_SYS_PTRACE (linux/capability.h).
const CAP_SYS_PTRACE: libc::c_ulong = 19;

/// A started command, until it is reaped (by [`Started::wait`], or killed and reaped when
/// dropped first).
pub struct Started {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    reaped: bool,
}

/// What the child reads (the daemon's memory is its memory until `execve`), and where it
/// says why it could not start.
struct ChildArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// `/bin/sh path args`: a file without `#!` that the kernel will not run (ENOEXEC) is
    /// run by the shell, as `execvp` (and so `std::process::Command`) does.
    sh_argv: *const *const libc::c_char,
    /// Its stdin, stdout and stderr, each above 2 so no `dup2` overwrites another.
    stdio: [libc::c_int; 3],
    /// Whether to confine it (`no_new_privs`), and the Landlock ruleset's fd (-1: none, on a
    /// kernel without Landlock).
    confine: bool,
    ruleset: libc::c_int,
    /// The errno of the step that failed; 0 when `execve` succeeded.
    errno: AtomicI32,
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in the command, an argument or the environment",
        )
    })
}

/// The pointers of `items` and a null after them, as `execve` takes its lists.
fn null_ended<'a>(items: impl Iterator<Item = &'a CStr>) -> Vec<*const libc::c_char> {
    items
        .map(CStr::as_ptr)
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// An fd above 2: the one given, or a copy of it that the caller keeps until the child has
/// started.
fn above_stdio(fd: BorrowedFd<'_>) -> io::Result<(libc::c_int, Option<OwnedFd>)> {
    if fd.as_raw_fd() > 2 {
        return Ok((fd.as_raw_fd(), None));
    }
    let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    #[allow(unsafe_code)]
    let owned = unsafe { OwnedFd::from_raw_fd(copy) };
    Ok((copy, Some(owned)))
}

/// Whether this kernel waits on a pidfd (`waitid(P_PIDFD)`, Linux 5.4): asked once, with
/// a descriptor number no process has open (EBADF where it can, EINVAL before; a negative
/// one is EINVAL everywhere).
#[allow(unsafe_code)]
fn pidfd_wait_works() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        // SAFETY: siginfo_t is plain data; the id names no open descriptor.
        let refused = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PIDFD,
                i32::MAX as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            ) < 0
        };
        !(refused && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL))
    })
}

/// Starts `path args` with exactly `env`, `stdio` as its fds 0, 1 and 2, in a process group
/// of its own, confined when `ruleset` is given. An error names the step's OS error: a
/// command that cannot be confined does not start.
pub fn start(
    path: &Path,
    args: &[String],
    env: &[(String, String)],
    ruleset: Option<landlock::RulesetCreated>,
    stdio: [BorrowedFd<'_>; 3],
) -> io::Result<Started> {
    if !pidfd_wait_works() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel cannot wait on a pidfd (commands need Linux 5.4 or later)",
        ));
    }
    let c_path = cstring(path.as_os_str())?;
    let mut c_args = vec![c_path.clone()];
    for a in args {
        c_args.push(cstring(OsStr::new(a))?);
    }
    let c_env = env
        .iter()
        .map(|(n, v)| cstring(OsStr::new(&format!("{n}={v}"))))
        .collect::<io::Result<Vec<_>>>()?;
    let argv = null_ended(c_args.iter().map(CString::as_c_str));
    let sh_argv =
        null_ended(std::iter::once(c"/bin/sh").chain(c_args.iter().map(CString::as_c_str)));
    let envp = null_ended(c_env.iter().map(CString::as_c_str));
    let mut kept = Vec::new();
    let mut fds = [-1; 3];
    for (slot, fd) in fds.iter_mut().zip(stdio) {
        let (raw, copy) = above_stdio(fd)?;
        *slot = raw;
        kept.extend(copy);
    }
    let confine = ruleset.is_some();
    let ruleset: Option<OwnedFd> = ruleset.and_then(Into::into);
    let args = ChildArgs {
        path: c_path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        sh_argv: sh_argv.as_ptr(),
        stdio: fds,
        confine,
        ruleset: ruleset.as_ref().map_or(-1, |f| f.as_raw_fd()),
        errno: AtomicI32::new(0),
    };
    let (pid, pidfd) = clone_vfork(&args)?;
    drop(kept);
    let failed = args.errno.load(Ordering::Acquire);
    let reap = || {
        let pid = nix::unistd::Pid::from_raw(pid);
        // Its group too: it exec'd already, and what it started is in the group.
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    };
    if failed != 0 {
        // It has exited (127) already: reap it, and say why.
        reap();
        return Err(io::Error::from_raw_os_error(failed));
    }
    Ok(Started {
        pid,
        pidfd,
        reaped: false,
    })
}

/// The clone itself: every signal this thread can block blocked across it (the child
/// unblocks them once it has reset their handlers; glibc keeps its own two, which its
/// handlers ignore when they were not sent by the daemon), and this thread suspended until
/// the child has exec'd or exited. Returns the pid and its pidfd.
#[allow(unsafe_code)]
fn clone_vfork(args: &ChildArgs) -> io::Result<(libc::pid_t, OwnedFd)> {
    CHILD_STACK.with_borrow_mut(|stack| {
        if stack.capacity() < STACK {
            *stack = Vec::with_capacity(STACK);
        }
        // The stack grows down from its 16-byte-aligned top.
        let top = (stack.as_mut_ptr() as usize + STACK) & !15;
        // SAFETY: `top` ends a block of STACK bytes that this thread's borrow keeps to itself
        // until the child has exec'd or exited (CLONE_VFORK), and nothing reads it after.
        unsafe { clone_on(args, top) }
    })
}

/// [`clone_vfork`] on a stack ending at `top`.
///
/// # Safety
///
/// `top` must end a writable block of [`STACK`] bytes that nothing else uses until this
/// returns.
#[allow(unsafe_code)]
unsafe fn clone_on(args: &ChildArgs, top: usize) -> io::Result<(libc::pid_t, OwnedFd)> {
    let mut pidfd: libc::c_int = -1;
    // SAFETY: the child runs `child` on the caller's stack block, which outlives it
    // (CLONE_VFORK: this call returns only once the child has exec'd or exited), and reads
    // `args`, which this frame keeps alive. sigset_t is plain data, initialised by sigfillset.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            args as *const ChildArgs as *mut libc::c_void,
            &mut pidfd as *mut libc::c_int,
        );
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(err);
        }
        if pidfd < 0 {
            // A kernel before 5.2 ignores CLONE_PIDFD (the check above should have refused
            // it first): the child started, with no pidfd.
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this kernel gives no pidfd for a new process (commands need Linux 5.4 or later)",
            ));
        }
        Ok((pid, OwnedFd::from_raw_fd(pidfd)))
    }
}

/// The child, until `execve`. It shares the daemon's memory, so it allocates nothing, takes
/// no lock and writes only its own stack and `errno`: only system calls from here on.
#[allow(unsafe_code)]
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` the parent's frame holds for as long as this runs;
    // every call below is a system call on values prepared before the clone.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        let fail = |errno: libc::c_int| exit_with(a, errno);
        let last = || *libc::__errno_location();
        // A handler of the daemon's must not run here: every caught signal (and SIGPIPE,
        // which Rust ignores) goes back to its default before the mask is lifted.
        for sig in 1..65 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let ignored = old.sa_sigaction == libc::SIG_IGN && sig != libc::SIGPIPE;
            if old.sa_sigaction != libc::SIG_DFL && !ignored {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            fail(last());
        }
        for (to, &from) in a.stdio.iter().enumerate() {
            if libc::dup2(from, to as libc::c_int) < 0 {
                fail(last());
            }
        }
        // Dropping a capability needs CAP_SETPCAP: a command that is not root never had
        // CAP_SYS_PTRACE, so a refusal here changes nothing.
        let _ = libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0);
        if a.confine {
            // As the landlock crate does: no_new_privs where the kernel has it.
            let _ = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        }
        if a.ruleset >= 0 && libc::syscall(libc::SYS_landlock_restrict_self, a.ruleset, 0) != 0 {
            fail(libc::EPERM);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(a.path, a.argv, a.envp);
        if last() == libc::ENOEXEC {
            libc::execve(c"/bin/sh".as_ptr(), a.sh_argv, a.envp);
        }
        fail(last())
    }
}

/// Says why the child could not start, and ends it.
#[allow(unsafe_code)]
fn exit_with(a: &ChildArgs, errno: libc::c_int) -> ! {
    a.errno.store(errno.max(1), Ordering::Release);
    // SAFETY: _exit(2) ends only this child; it runs no atexit handler of the daemon's.
    unsafe { libc::_exit(127) }
}

impl Started {
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Sends SIGKILL to the process (not its group: see the caller).
    pub fn kill(&self) {
        // The pid is still this child's: it is not reaped until `wait` or drop.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    /// Readable once the process has exited: for `poll(2)`, beside its pipes.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Its exit code (or 128 + the signal that ended it) once it has exited, and it is reaped
    /// then; None while it runs.
    pub fn try_wait(&mut self) -> io::Result<Option<i64>> {
        self.waitid(WaitPidFlag::WNOHANG)
    }

    /// Waits for its exit (a killed one's: it comes at once), and reaps it.
    pub fn wait(&mut self) -> io::Result<i64> {
        loop {
            if let Some(code) = self.waitid(WaitPidFlag::empty())? {
                return Ok(code);
            }
        }
    }

    fn waitid(&mut self, flags: WaitPidFlag) -> io::Result<Option<i64>> {
        let flags = flags | WaitPidFlag::WEXITED;
        loop {
            let code = match nix::sys::wait::waitid(Id::PIDFd(self.pidfd.as_fd()), flags) {
                Ok(WaitStatus::Exited(_, code)) => i64::from(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i64,
                Ok(_) | Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            self.reaped = true;
            return Ok(Some(code));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        }
    }
}
