//! The byte pipe under a session. Each transport (local process, telnet, ssh, http) implements
//! this; the expect engine in [`super::Session`] is written once above it. [`connect_tcp`] is
//! the TCP connection telnet and ssh share.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The outcome of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// This many bytes were read into the buffer.
    Data(usize),
    /// The peer closed its side.
    Eof,
    /// Nothing arrived within the timeout.
    Timeout,
}

/// What `exec` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

pub trait Transport: Send {
    /// Sends all of `data`.
    fn send(&mut self, data: &[u8]) -> io::Result<()>;
    /// Reads what is available into `buf`, waiting at most `timeout` for something.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Recv>;
    /// Closes the transport; returns the exit code where the peer has one.
    fn close(&mut self) -> io::Result<Option<i32>>;
    /// What this transport talks to, for messages ("local process df -P").
    fn describe(&self) -> String;
    /// A cheap check that the connection still stands (the pool asks before reusing it).
    fn alive(&mut self) -> bool {
        true
    }
    /// Tells the peer's terminal its new size (`:connect` follows the operator's window);
    /// transports without a terminal ignore it.
    fn resize(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        let _ = (cols, rows);
        Ok(())
    }
    /// A local process (counted against `[sandbox] max_processes`), not a socket.
    fn is_process(&self) -> bool {
        false
    }
    /// Runs one command without a shell, where the transport can (SSH: a channel of its own),
    /// within `timeout`, keeping at most `max` bytes of each stream; gives up when `stop()`.
    fn exec(
        &mut self,
        command: &str,
        timeout: Duration,
        max: usize,
        stop: &dyn Fn() -> bool,
    ) -> io::Result<ExecOutput> {
        let _ = (command, timeout, max, stop);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{} cannot run a command without its shell", self.describe()),
        ))
    }
}

/// `address:port` resolved within `timeout`: getaddrinfo has no timeout of its own, so it
/// runs on a thread of its own that is left behind if the resolver hangs.
pub fn resolve(address: &str, port: u16, timeout: Duration) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = address.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let name = address.to_string();
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = tx.send(
                (name.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect),
            );
        })?;
    match rx.recv_timeout(timeout) {
        Ok(r) => r.map_err(|e: io::Error| {
            io::Error::new(e.kind(), format!("cannot resolve {address}:{port}: {e}"))
        }),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("cannot resolve {address}: no answer within {timeout:?}"),
        )),
    }
}

/// A TCP connection to `address:port` within `timeout`, with errors that name the peer.
/// The whole of it, the DNS lookup included, is bounded by `timeout`.
pub fn connect_tcp(address: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = std::time::Instant::now() + timeout;
    let addrs = resolve(address, port, timeout)?;
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{address}:{port} resolves to no address"),
    );
    for addr in addrs {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("cannot connect to {address}:{port}: out of time"),
            ));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => {
                last = io::Error::new(e.kind(), format!("cannot connect to {address}:{port}: {e}"))
            }
        }
    }
    Err(last)
}
