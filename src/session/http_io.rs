//! ureq's name lookup, TCP connect and socket I/O for a script's HTTP request, on the run's
//! own thread: every wait is cut into slices of [`net::SLICE`], and between two slices the
//! run's guard is looked at, so a cancel, the deadline or the memory budget ends the request
//! at once. A request waiting on a mute server holds its run's thread and a socket; ureq's
//! own resolver would start a thread for every lookup, IP addresses included.
//!
//! This is ureq's `unversioned` transport API: it may change in a minor release of ureq, and
//! Cargo.lock pins the version it is written against.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
};

use super::{Guard, net};

/// The run's guard, as ureq's resolver and TCP connector.
#[derive(Debug, Clone)]
pub struct Guarded(pub Guard);

/// A guard's refusal as ureq's error (the caller asks the guard again for the real reason).
fn guard_err(e: &super::SessionError) -> ureq::Error {
    ureq::Error::Io(io::Error::other(e.to_string()))
}

impl Resolver for Guarded {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .ok_or_else(|| ureq::Error::BadUri(format!("{uri} has no host")))?;
        let port = uri
            .port_u16()
            .or_else(|| match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })
            .ok_or_else(|| ureq::Error::BadUri(format!("{uri} has no port")))?;
        let within = timeout.not_zero().map_or(Duration::from_secs(3600), |d| *d);
        let found = net::resolve(&self.0, host, port, within)
            .map_err(|e| guard_err(&e))?
            .map_err(|msg| ureq::Error::Io(io::Error::other(msg)))?;
        let mut out = self.empty();
        // ureq keeps at most 16 addresses of a name.
        for a in found.into_iter().take(16) {
            out.push(a);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

impl<In: Transport> Connector<In> for Guarded {
    type Out = Either<In, Sliced>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if chained.is_some() {
            return Ok(chained.map(Either::A));
        }
        let addrs: Vec<SocketAddr> = details.addrs.iter().copied().collect();
        let timeout = details
            .timeout
            .not_zero()
            .map_or(Duration::from_secs(3600), |d| *d);
        let stream = net::connect(&self.0, &addrs, timeout)
            .map_err(|e| guard_err(&e))?
            .map_err(|msg| ureq::Error::Io(io::Error::other(msg)))?;
        let _ = stream.set_nodelay(true);
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(Sliced {
            stream,
            buffers,
            guard: self.0.clone(),
            read_slice: None,
            write_slice: None,
        })))
    }
}

/// A TCP connection whose reads and writes wait at most a slice at a time.
pub struct Sliced {
    stream: TcpStream,
    buffers: LazyBuffers,
    guard: Guard,
    /// The socket's timeouts as last set (set again only when they change).
    read_slice: Option<Duration>,
    write_slice: Option<Duration>,
}

impl fmt::Debug for Sliced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sliced({:?})", self.stream.peer_addr().ok())
    }
}

/// When `timeout` ends (None: never); Err when it already has.
fn end_of(timeout: NextTimeout) -> Result<Option<Instant>, ureq::Error> {
    if timeout.after.is_not_happening() {
        return Ok(None);
    }
    if timeout.after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(Some(Instant::now() + *timeout.after))
}

impl Sliced {
    /// The next slice to wait: the guard first, then what is left of `end`.
    fn slice(&self, end: Option<Instant>, timeout: NextTimeout) -> Result<Duration, ureq::Error> {
        self.guard.check().map_err(|e| guard_err(&e))?;
        let left = match end {
            Some(end) => end.saturating_duration_since(Instant::now()),
            None => net::SLICE,
        };
        if left.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        Ok(left.min(net::SLICE))
    }
}

/// A slice that ran out, or a signal: wait again.
fn again(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

impl Transport for Sliced {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let end = end_of(timeout)?;
        let mut done = 0;
        while done < amount {
            let slice = self.slice(end, timeout)?;
            if self.write_slice != Some(slice) {
                self.stream.set_write_timeout(Some(slice))?;
                self.write_slice = Some(slice);
            }
            let out = &self.buffers.output()[done..amount];
            match (&self.stream).write(out) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => done += n,
                Err(e) if again(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let end = end_of(timeout)?;
        loop {
            let slice = self.slice(end, timeout)?;
            if self.read_slice != Some(slice) {
                self.stream.set_read_timeout(Some(slice))?;
                self.read_slice = Some(slice);
            }
            let input = self.buffers.input_append_buf();
            match (&self.stream).read(input) {
                Ok(n) => {
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                Err(e) if again(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether a kept connection may be used again: open, with nothing unasked for waiting.
    fn is_open(&mut self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut one = [0u8];
        let idle = matches!((&self.stream).read(&mut one), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).is_ok() && idle
    }
}
