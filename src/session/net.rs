//! Network waits on the run's own thread, in slices: a TCP connect polled in slices of
//! [`SLICE`], so that a cancel, the run's deadline or its memory budget ends it at once, with
//! no thread of its own. A run that waits on a mute peer holds its one thread and a socket,
//! nothing more. Only a name's lookup (getaddrinfo blocks, and cannot be interrupted) still
//! waits on a thread of its own, through [`Guard::blocking`].

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::{Guard, SessionError};

/// The longest a wait goes without looking at its guard.
pub const SLICE: Duration = Duration::from_millis(100);

/// The addresses of `address` (an IP literal at once; a name looked up on a thread of its
/// own, so that a cancel interrupts the lookup, within `timeout`). The inner Err says why
/// there are none.
pub fn resolve(
    guard: &Guard,
    address: &str,
    port: u16,
    timeout: Duration,
) -> Result<Result<Vec<SocketAddr>, String>, SessionError> {
    let bare = address.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Ok(vec![SocketAddr::new(ip, port)]));
    }
    let name = address.to_string();
    let found = guard.blocking_within(Some(timeout), move || {
        (name.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| format!("cannot resolve {name}: {e}"))
    })?;
    Ok(found.unwrap_or_else(|| {
        Err(format!(
            "cannot resolve {address}: no answer within {:.1} s",
            timeout.as_secs_f64()
        ))
    }))
}

/// Connects to the first of `addrs` that answers, within `timeout` in all. The budget is
/// shared as ureq and curl share it: the first address gets the most (half of it and more),
/// each next one half of the one before, and none less than 10 ms, so a first address that
/// drops packets (an IPv6 route that goes nowhere) leaves time for the next. The outer Err
/// is the guard's (cancelled, out of time, over budget); the inner one the connect's.
pub fn connect(
    guard: &Guard,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<Result<TcpStream, String>, SessionError> {
    let start = Instant::now();
    let timeout = timeout.max(Duration::from_millis(1));
    let end = start + timeout;
    let n = i32::try_from(addrs.len().min(30)).unwrap_or(30);
    let total_weight = 2.0 * (1.0 - 0.5_f64.powi(n));
    let mut weight = 1.0_f64;
    let mut last = "no address to connect to".to_string();
    for a in addrs {
        let share = timeout
            .mul_f64(weight / total_weight)
            .max(Duration::from_millis(10));
        let until = (Instant::now() + share).min(end);
        match connect_one(guard, *a, until)? {
            Ok(s) => return Ok(Ok(s)),
            Err(e) => last = e,
        }
        if Instant::now() >= end {
            break;
        }
        weight /= 2.0;
    }
    Ok(Err(last))
}

fn connect_one(
    guard: &Guard,
    addr: SocketAddr,
    end: Instant,
) -> Result<Result<TcpStream, String>, SessionError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let fail = |e: std::io::Error| Ok(Err(e.to_string()));
    let s = match Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if let Err(e) = s.set_nonblocking(true) {
        return fail(e);
    }
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => loop {
            guard.check()?;
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Err("connection timed out".into()));
            }
            let slice = left.min(SLICE);
            let ms = u16::try_from(slice.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [nix::poll::PollFd::new(
                s.as_fd(),
                nix::poll::PollFlags::POLLOUT,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => break,
                Err(e) => return Ok(Err(e.to_string())),
            }
        },
        Err(e) => return fail(e),
    }
    match s.take_error() {
        Ok(None) => {}
        Ok(Some(e)) | Err(e) => return fail(e),
    }
    if let Err(e) = s.set_nonblocking(false) {
        return fail(e);
    }
    Ok(Ok(s.into()))
}
