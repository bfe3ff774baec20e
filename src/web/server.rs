//! hostler's own HTTP/1.1 connection handling: the listener, connection limits, bounded reads
//! with deadlines, and writing answers. Heads are parsed by `httparse`; everything a stranger
//! can send is bounded here before a handler sees it.
//!
//! Why not tiny_http (the design card's first choice): every hole a hostile client used was
//! in the part of it that owns the socket: header lines read without a limit, no read
//! deadline, a buffer sized from `Content-Length` when an unread body is dropped, and an
//! accept loop that ends on the first `EMFILE`. What would be left of it once those parts are
//! hostler's (writing a status line and headers) is a few lines.
//!
//! The shape: one acceptor thread that never ends while the server runs (errors are logged,
//! backed off and retried), and one thread per connection, under a limit per client address
//! and in total. A slow or stalled client holds only its own thread, and only until its
//! deadline: the head must arrive within [`Limits::head_time`] and the body within
//! [`Limits::body_time`]. At the limit in total, a newcomer takes the place of the connection
//! waiting longest for a request head from the address that holds the most connections (if
//! that address holds more than the newcomer's would): idle connections from a few addresses
//! never lock out another client, `/healthz` and the admin included.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::http::{MAX_BODY, Req, Resp};

/// What one client may send and hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The request line (`GET /path HTTP/1.1`), in bytes.
    pub request_line: usize,
    /// Each header line, in bytes.
    pub header_line: usize,
    /// The whole head, in bytes.
    pub head: usize,
    /// How many header lines.
    pub headers: usize,
    /// From the connection (or the end of the previous answer) to the end of the head.
    pub head_time: Duration,
    /// From the end of the head to the end of the body.
    pub body_time: Duration,
    /// Each write of an answer; a client that stops reading is dropped after it.
    pub write_time: Duration,
    /// Open connections in all.
    pub connections: usize,
    /// Open connections from one client address.
    pub per_client: usize,
    /// Requests on one kept-alive connection.
    pub requests_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: 8 * 1024,
            header_line: 8 * 1024,
            head: 64 * 1024,
            headers: 100,
            head_time: Duration::from_secs(10),
            body_time: Duration::from_secs(30),
            write_time: Duration::from_secs(30),
            connections: 512,
            per_client: 64,
            requests_per_connection: 10_000,
        }
    }
}

/// Why a head was refused; each maps to a status and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request line longer than {0} bytes")]
    RequestLine(usize),
    #[error("header line longer than {0} bytes")]
    HeaderLine(usize),
    #[error("request head longer than {0} bytes")]
    Head(usize),
    #[error("more than {0} header lines")]
    Headers(usize),
    #[error("malformed request head: {0}")]
    Malformed(String),
    #[error("bad Content-Length")]
    Length,
    #[error("chunked request bodies are not accepted; send Content-Length")]
    Chunked,
}

impl HeadError {
    pub fn status(&self) -> u16 {
        match self {
            HeadError::RequestLine(_) => 414,
            HeadError::HeaderLine(_) | HeadError::Head(_) | HeadError::Headers(_) => 431,
            HeadError::Malformed(_) | HeadError::Length => 400,
            HeadError::Chunked => 411,
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// HTTP/1.1 (true) or 1.0.
    pub http11: bool,
    /// Names in lower case; values as sent, lossily decoded.
    pub headers: Vec<(String, String)>,
    pub content_length: usize,
    /// The bytes of the head, including its blank line.
    pub len: usize,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after the answer.
    fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.http11 {
            !conn.split(',').any(|t| t.trim() == "close")
        } else {
            conn.split(',').any(|t| t.trim() == "keep-alive")
        }
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete (and within the
/// limits so far), the head once its blank line has arrived, or why it is refused. Never
/// panics, whatever the bytes (a property test feeds it arbitrary ones).
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, HeadError> {
    // Line lengths first, on the bytes so far: an endless line is refused before the head
    // limit, and before it is ever complete.
    let end = find_head_end(buf);
    let scan = &buf[..end.unwrap_or(buf.len())];
    for (i, line) in scan.split(|b| *b == b'\n').enumerate() {
        let (max, err): (usize, fn(usize) -> HeadError) = if i == 0 {
            (limits.request_line, HeadError::RequestLine)
        } else {
            (limits.header_line, HeadError::HeaderLine)
        };
        if line.len() > max {
            return Err(err(max));
        }
        if i > limits.headers + 1 {
            return Err(HeadError::Headers(limits.headers));
        }
    }
    let Some(end) = end else {
        if buf.len() > limits.head {
            return Err(HeadError::Head(limits.head));
        }
        return Ok(None);
    };
    if end > limits.head {
        return Err(HeadError::Head(limits.head));
    }
    let mut slots = vec![httparse::EMPTY_HEADER; limits.headers];
    let mut req = httparse::Request::new(&mut slots);
    let parsed = req.parse(&buf[..end]).map_err(|e| match e {
        httparse::Error::TooManyHeaders => HeadError::Headers(limits.headers),
        other => HeadError::Malformed(other.to_string()),
    })?;
    let httparse::Status::Complete(len) = parsed else {
        return Err(HeadError::Malformed("incomplete head".into()));
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("no request line".into()));
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let mut content_length: Option<usize> = None;
    for (n, v) in &headers {
        if n == "transfer-encoding" {
            return Err(HeadError::Chunked);
        }
        if n == "content-length" {
            if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::Length);
            }
            // Over usize (or just huge): too large, never a buffer of that size.
            let n = v.parse::<u64>().unwrap_or(u64::MAX);
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if content_length.is_some_and(|c| c != n) {
                return Err(HeadError::Length);
            }
            content_length = Some(n);
        }
    }
    let content_length = content_length.unwrap_or(0);
    Ok(Some(Head {
        method: method.to_string(),
        target: target.to_string(),
        http11: version == 1,
        headers,
        content_length,
        len,
    }))
}

/// Where the head ends (just after its blank line), if it has.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(buf, b"\n\r\n").map(|i| i + 3);
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What the server calls for each request: the handler, and the body policy.
pub trait Service: Send + Sync + 'static {
    /// Whether a body of this size may be read for this head (a stranger's large body is
    /// refused before it is read). `Err` is the answer instead.
    fn admit(&self, req: &Req, content_length: usize) -> Result<(), Resp>;
    /// Answers a request (never panics outward).
    fn answer(&self, req: Req) -> Resp;
    /// Extra headers on every answer.
    fn headers(&self) -> &'static [(&'static str, &'static str)];
}

/// Connections open now, in all and per client address, and those waiting for a request
/// head (the only ones that may be closed to make room).
#[derive(Debug, Default)]
struct Conns {
    total: AtomicUsize,
    state: Mutex<ConnState>,
}

#[derive(Debug, Default)]
struct ConnState {
    per_ip: HashMap<IpAddr, usize>,
    open: HashMap<u64, Open>,
    next: u64,
    /// Connections told to close that have not closed yet: past the limit by this many.
    leaving: usize,
}

/// An open connection, as the acceptor sees it.
#[derive(Debug)]
struct Open {
    ip: IpAddr,
    since: Instant,
    /// Waiting for a request's head (not in the middle of one).
    waiting: Arc<AtomicBool>,
    /// Set to make it close while it waits for a head (it looks at least every
    /// [`EVICT_CHECK`]).
    evict: Arc<AtomicBool>,
}

/// How often a connection waiting for a head looks whether it must make room.
const EVICT_CHECK: Duration = Duration::from_millis(250);

/// One counted connection; uncounted when dropped.
struct Slot {
    conns: Arc<Conns>,
    ip: IpAddr,
    id: u64,
    /// Set while the connection waits for a request head.
    waiting: Arc<AtomicBool>,
    /// Set when it must close to make room.
    evict: Arc<AtomicBool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conns.total.fetch_sub(1, Ordering::SeqCst);
        let mut st = self.conns.state.lock().unwrap_or_else(|p| p.into_inner());
        st.open.remove(&self.id);
        if self.evict.load(Ordering::SeqCst) {
            st.leaving = st.leaving.saturating_sub(1);
        }
        if let Some(n) = st.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                st.per_ip.remove(&self.ip);
            }
        }
    }
}

impl Conns {
    /// A slot for a new connection. At the limit, the connection that waits longest for a
    /// head, from the address holding the most connections, is closed to make room, if that
    /// address holds more than the newcomer's would: a stranger's idle connections from a
    /// few addresses never lock out a client from another (`/healthz`, the admin).
    fn take(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<Slot> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mine = st.per_ip.get(&ip).copied().unwrap_or(0);
        if mine >= limits.per_client {
            return None;
        }
        if self.total.load(Ordering::SeqCst) >= limits.connections + st.leaving {
            // Those told to close count as gone, but never more than a few at once.
            if st.leaving >= MAX_LEAVING {
                return None;
            }
            let victim = st
                .open
                .iter()
                .filter(|(_, o)| {
                    o.waiting.load(Ordering::SeqCst) && !o.evict.load(Ordering::SeqCst)
                })
                .map(|(id, o)| (*id, st.per_ip.get(&o.ip).copied().unwrap_or(0), o.since))
                .max_by_key(|(_, held, since)| (*held, std::cmp::Reverse(*since)))
                .filter(|(_, held, _)| *held > mine + 1);
            let (id, _, _) = victim?;
            if let Some(o) = st.open.get(&id) {
                debug!(victim = %o.ip, newcomer = %ip, "web: at the connection limit, closing an idle connection");
                o.evict.store(true, Ordering::SeqCst);
                st.leaving += 1;
            }
        }
        *st.per_ip.entry(ip).or_insert(0) += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        st.next += 1;
        let id = st.next;
        let waiting = Arc::new(AtomicBool::new(true));
        let evict = Arc::new(AtomicBool::new(false));
        st.open.insert(
            id,
            Open {
                ip,
                since: Instant::now(),
                waiting: waiting.clone(),
                evict: evict.clone(),
            },
        );
        Some(Slot {
            conns: self.clone(),
            ip,
            id,
            waiting,
            evict,
        })
    }
}

/// At most this many connections may be on their way out at once, each past the limit.
const MAX_LEAVING: usize = 64;

/// A running listener.
pub struct Listener {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    busy: Arc<AtomicUsize>,
    acceptor: JoinHandle<()>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "web::server::Listener({})", self.addr)
    }
}

impl Listener {
    /// Stops accepting, and waits (up to 10 s) for requests being answered to finish.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.acceptor.join();
        let until = Instant::now() + Duration::from_secs(10);
        while self.busy.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Starts accepting on a bound listener.
pub fn start(
    listener: TcpListener,
    limits: Limits,
    service: Arc<dyn Service>,
) -> std::io::Result<Listener> {
    let addr = listener.local_addr()?;
    // Non-blocking, so the acceptor can look at the stop flag between polls.
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(AtomicUsize::new(0));
    let conns = Arc::new(Conns::default());
    let acceptor = {
        let (stop, busy) = (stop.clone(), busy.clone());
        std::thread::Builder::new()
            .name("web-accept".into())
            .spawn(move || accept_loop(&listener, &limits, &service, &conns, &stop, &busy))?
    };
    Ok(Listener {
        addr,
        stop,
        busy,
        acceptor,
    })
}

fn accept_loop(
    listener: &TcpListener,
    limits: &Limits,
    service: &Arc<dyn Service>,
    conns: &Arc<Conns>,
    stop: &AtomicBool,
    busy: &Arc<AtomicUsize>,
) {
    use std::os::fd::AsFd;
    let mut backoff = Duration::from_millis(10);
    let mut last_warning: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [nix::poll::PollFd::new(
            listener.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(250u16));
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let Some(slot) = conns.take(peer.ip(), limits) else {
                    refuse(stream);
                    continue;
                };
                let (limits, service, busy) = (limits.clone(), service.clone(), busy.clone());
                let spawned =
                    std::thread::Builder::new()
                        .name("web-conn".into())
                        .spawn(move || {
                            connection(stream, peer, &limits, service.as_ref(), &busy, &slot);
                        });
                if let Err(e) = spawned {
                    warn!("cannot start a thread for a web connection: {e}");
                    std::thread::sleep(backoff);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionAborted => {}
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: wait for descriptors or memory to come
                // back, and say so at most every 10 s. The listener is never given up.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    warn!("web: accept failed, retrying: {e}");
                    last_warning = Some(Instant::now());
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Over the connection limits: a 503 if the socket takes it at once, then closed.
fn refuse(stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let mut s = stream;
    let _ = s.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 21\r\nconnection: close\r\nretry-after: 5\r\n\r\ntoo many connections\n",
    );
    let _ = s.shutdown(Shutdown::Both);
}

/// Whether to keep the connection after an answer.
enum After {
    KeepAlive,
    Close,
}

/// Serves one connection until it closes, fails a limit, or asks to close.
fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    limits: &Limits,
    service: &dyn Service,
    busy: &AtomicUsize,
    slot: &Slot,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.write_time));
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    for _ in 0..limits.requests_per_connection {
        slot.waiting.store(true, Ordering::SeqCst);
        match one_request(&mut stream, peer, &mut buf, limits, service, busy, slot) {
            After::KeepAlive => {}
            After::Close => break,
        }
    }
    linger_close(stream);
}

/// Reads until `buf` holds `want` bytes (never more) or `deadline` passes; false when the
/// peer closed, failed, or ran out of time.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, want: usize, deadline: Instant) -> bool {
    while buf.len() < want {
        if !fill_some(stream, buf, want, deadline, None) {
            return false;
        }
    }
    true
}

fn one_request(
    stream: &mut TcpStream,
    peer: SocketAddr,
    buf: &mut Vec<u8>,
    limits: &Limits,
    service: &dyn Service,
    busy: &AtomicUsize,
    slot: &Slot,
) -> After {
    let head_deadline = Instant::now() + limits.head_time;
    // The head: read in chunks and refused as soon as a limit is passed. It is parsed again
    // only when a line has ended (a client sending a byte at a time costs a byte's work).
    let mut last_newline = memchr::memrchr(b'\n', buf);
    let mut reparse = true;
    let head = loop {
        if reparse {
            match parse_head(buf, limits) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(e) => {
                    send_error(stream, e.status(), &e.to_string(), service);
                    return After::Close;
                }
            }
        }
        let before = buf.len();
        if !fill_some(
            stream,
            buf,
            limits.head + 1,
            head_deadline,
            Some(&slot.evict),
        ) {
            if !buf.is_empty() && Instant::now() >= head_deadline {
                send_error(stream, 408, "request head not received in time", service);
            }
            return After::Close;
        }
        if let Some(i) = memchr::memrchr(b'\n', &buf[before..]) {
            last_newline = Some(before + i);
            reparse = true;
        } else {
            let line = buf.len() - last_newline.map_or(0, |i| i + 1);
            let (max, first) = match last_newline {
                None => (limits.request_line, true),
                Some(_) => (limits.header_line, false),
            };
            reparse = line > max || buf.len() > limits.head;
            if reparse && first {
                let e = HeadError::RequestLine(max);
                send_error(stream, e.status(), &e.to_string(), service);
                return After::Close;
            }
        }
    };
    // From here the connection is in a request: never closed to make room.
    slot.waiting.store(false, Ordering::SeqCst);
    let mut req = match Req::new(&head.method, &head.target) {
        Ok(r) => r,
        Err(e) => {
            send_error(stream, 400, &format!("bad query: {e}"), service);
            return After::Close;
        }
    };
    req.headers = head.headers.clone();
    req.peer = Some(peer.ip());
    if head.content_length > MAX_BODY {
        send_error(stream, 413, "request body too large", service);
        return After::Close;
    }
    if let Err(resp) = service.admit(&req, head.content_length) {
        write_resp(stream, resp, head.method == "HEAD", false, service);
        return After::Close;
    }
    // The body: exactly its length, in bounded chunks, by its deadline.
    buf.drain(..head.len);
    if head.content_length > buf.len()
        && head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let body_deadline = Instant::now() + limits.body_time;
    if !fill(stream, buf, head.content_length, body_deadline) {
        if Instant::now() >= body_deadline {
            send_error(stream, 408, "request body not received in time", service);
        }
        return After::Close;
    }
    req.body = buf.drain(..head.content_length).collect();
    let keep = head.keep_alive();
    busy.fetch_add(1, Ordering::SeqCst);
    let resp = service.answer(req);
    busy.fetch_sub(1, Ordering::SeqCst);
    debug!(method = %head.method, target = %head.target, status = resp.status, "web");
    if write_resp(stream, resp, head.method == "HEAD", keep, service) && keep {
        After::KeepAlive
    } else {
        After::Close
    }
}

/// Reads whatever arrives next (at least one byte) without taking `buf` past `cap`; false
/// at the deadline, at the end of the stream, or once `evict` is set.
fn fill_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    cap: usize,
    deadline: Instant,
    evict: Option<&AtomicBool>,
) -> bool {
    if buf.len() >= cap {
        return false;
    }
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if evict.is_some_and(|e| e.load(Ordering::SeqCst)) {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let slice = match evict {
            Some(_) => left.min(EVICT_CHECK),
            None => left,
        };
        let _ = stream.set_read_timeout(Some(slice.max(Duration::from_millis(1))));
        let room = (cap - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A slice ran out: look at the deadline and the eviction flag again.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return false,
        }
    }
}

fn send_error(stream: &mut TcpStream, status: u16, msg: &str, service: &dyn Service) {
    let resp = Resp::text(status, format!("{msg}\n"));
    write_resp(stream, resp, false, false, service);
}

/// Writes an answer; false if the client is gone.
fn write_resp(
    stream: &mut TcpStream,
    resp: Resp,
    head_only: bool,
    keep: bool,
    service: &dyn Service,
) -> bool {
    let mut out = Vec::with_capacity(512);
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type
    );
    for (n, v) in service.headers() {
        header_line(&mut out, n, v);
    }
    for (n, v) in &resp.headers {
        header_line(&mut out, n, v);
    }
    let len = resp.len();
    let _ = write!(
        out,
        "content-length: {len}\r\nconnection: {}\r\n\r\n",
        if keep { "keep-alive" } else { "close" }
    );
    if stream.write_all(&out).is_err() {
        return false;
    }
    if head_only {
        return stream.flush().is_ok();
    }
    let mut body = resp.reader();
    std::io::copy(&mut body, stream).is_ok() && stream.flush().is_ok()
}

/// One header line; a name or value that is not printable ASCII (a line end would split the
/// header) is dropped with a warning, never sent.
fn header_line(out: &mut Vec<u8>, name: &str, value: &str) {
    let printable = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
    if printable(name) && printable(value) && !name.contains(':') && !name.is_empty() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    } else {
        warn!(
            header = name,
            "a response header with a bad value was dropped"
        );
    }
}

/// Closes after sending: the write side first, then a short, bounded drain of what the client
/// still sends, so that an answer sent before its body was read arrives instead of a reset.
fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 16 * 1024];
    let until = Instant::now() + Duration::from_millis(500);
    let mut drained = 0usize;
    while Instant::now() < until && drained < 1 << 20 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
