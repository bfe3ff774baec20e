//! hostler's own HTTP/1.1 server, on smol: the listener, connections as tasks, bounded reads
//! with deadlines, and writing answers. Everything a stranger can send is bounded here, or in
//! [`super::head`], before a handler sees it.
//!
//! Why not tiny_http (the design card's first choice): every hole a hostile client used was
//! in the part of it that owns the socket: header lines read without a limit, no read
//! deadline, a buffer sized from `Content-Length` when an unread body is dropped, an accept
//! loop that ends on the first `EMFILE`, and a thread for every connection.
//!
//! The shape: two threads (`web`) run an executor with the acceptor and a task per
//! connection. An idle connection is a small future and a registered socket, with no buffer
//! while it waits, so ten thousand kept-alive connections cost megabytes, not threads. Only
//! the handlers, which read the database, run on smol's blocking pool. A slow or stalled
//! client holds only its own task, and only until its deadline: the head must arrive within
//! [`Limits::head_time`] and the body within [`Limits::body_time`]. The limits in total and
//! per client address, and who makes room at the limit, are `web/conns.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};
use smol::future;
use smol::lock::Semaphore;
use smol::{Async, Executor, Timer};
use tracing::{debug, warn};

use super::conns::{Conns, Slot};
pub use super::head::{Head, HeadError, Limits, parse_head};
use super::http::{MAX_BODY, Req, Resp};
use crate::timed::timed;

/// What the server calls for each request: the handler, and the body policy.
pub trait Service: Send + Sync + 'static {
    /// Whether a body of this size may be read for this head (a stranger's large body is
    /// refused before it is read). `Err` is the answer instead.
    fn admit(&self, req: &Req, content_length: usize) -> Result<(), Resp>;
    /// Answers a request (never panics outward). It runs on the blocking pool: it may read
    /// the database.
    fn answer(&self, req: Req) -> Resp;
    /// The answer, if it needs no database and no wait (`/healthz`, a static asset), given on
    /// the connection's own thread; `None` sends the request to [`Service::answer`].
    fn answer_now(&self, _req: &Req) -> Option<Resp> {
        None
    }
    /// Extra headers on every answer.
    fn headers(&self) -> &'static [(&'static str, &'static str)];
}

/// A running listener.
pub struct Listener {
    pub addr: SocketAddr,
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "web::server::Listener({})", self.addr)
    }
}

impl Listener {
    /// Stops accepting, waits (up to 10 s) for requests being answered to finish, and closes
    /// every connection.
    pub fn stop(self) {
        self.stop.close();
        let _ = self.thread.join();
    }
}

/// What every connection task shares.
struct Shared {
    limits: Limits,
    service: Arc<dyn Service>,
    conns: Arc<Conns>,
    /// Requests being answered now, from the head read to the last byte written.
    busy: AtomicUsize,
    /// Set once the listener stops: answers close their connection.
    stopping: AtomicBool,
    /// Bytes held in connections' read buffers past each one's first [`FIRST_CHUNK`].
    buffered: AtomicUsize,
    /// Handlers running at once on the blocking pool: a burst of requests waits here as
    /// futures, not as hundreds of new threads.
    handlers: Semaphore,
}

/// Handlers at once (each holds a thread of smol's blocking pool while it runs).
const HANDLERS: usize = 32;

/// Counts a request as being answered until dropped (also when its task is dropped).
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Busy(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Connections waiting for `accept()`: std's 128 overflows when hundreds of clients connect
/// at once, and each one dropped retries its SYN a second later. The kernel caps it at
/// `net.core.somaxconn` (4,096 on current kernels).
const BACKLOG: i32 = 4096;

/// Binds a listener (address reuse on, as std does) with a backlog of 4,096, on the
/// first of `addr`'s addresses that binds.
pub fn bind(addr: &str) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    use std::net::ToSocketAddrs;
    let mut last = std::io::Error::new(ErrorKind::InvalidInput, "no address to listen on");
    for a in addr.to_socket_addrs()? {
        let bound = Socket::new(Domain::for_address(a), Type::STREAM, None).and_then(|s| {
            s.set_reuse_address(true)?;
            s.bind(&a.into())?;
            s.listen(BACKLOG)?;
            Ok(s)
        });
        match bound {
            Ok(s) => return Ok(s.into()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Starts accepting on a bound listener.
pub fn start(
    listener: TcpListener,
    limits: Limits,
    service: Arc<dyn Service>,
) -> std::io::Result<Listener> {
    let addr = listener.local_addr()?;
    let listener = Async::new(listener)?;
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let shared = Arc::new(Shared {
        limits,
        service,
        conns: Arc::new(Conns::default()),
        busy: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
        buffered: AtomicUsize::new(0),
        handlers: Semaphore::new(HANDLERS),
    });
    let ex = Arc::new(Executor::new());
    // A second thread runs connections too, until the listener stops: parsing and writing
    // use both cores of a small machine.
    let helper = {
        let (ex, stopped) = (ex.clone(), stopped.clone());
        std::thread::Builder::new()
            .name("web".into())
            .spawn(move || {
                smol::block_on(ex.run(async { while stopped.recv().await.is_ok() {} }))
            })?
    };
    let thread = std::thread::Builder::new()
        .name("web".into())
        .spawn(move || {
            smol::block_on(ex.run(accept_loop(&ex, &listener, &shared, &stopped)));
            let _ = helper.join();
            // Dropping the executor drops every connection's task, and closes its socket.
            drop(ex);
        })?;
    Ok(Listener { addr, stop, thread })
}

async fn accept_loop(
    ex: &Executor<'static>,
    listener: &Async<TcpListener>,
    shared: &Arc<Shared>,
    stopped: &Receiver<()>,
) {
    let mut backoff = Duration::from_millis(10);
    let mut last_warning: Option<Instant> = None;
    let mut accepted_in_turn = 0u32;
    loop {
        // Under a flood `accept()` is always ready, and `or` polls it first: the stop is
        // looked at here, and the thread yields to its connections every few accepts.
        if stopped.is_closed() {
            break;
        }
        accepted_in_turn += 1;
        if accepted_in_turn.is_multiple_of(64) {
            future::yield_now().await;
        }
        let next = future::or(async { Some(listener.accept().await) }, async {
            let _ = stopped.recv().await;
            None
        })
        .await;
        let Some(accepted) = next else { break };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let Some(slot) = shared.conns.take(peer.ip(), &shared.limits) else {
                    refuse(stream.get_ref());
                    continue;
                };
                ex.spawn(connection(stream, peer, shared.clone(), slot))
                    .detach();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: wait for descriptors or memory to come
                // back, and say so at most every 10 s. The listener is never given up.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    warn!(
                        open = shared.conns.open(),
                        "web: accept failed, retrying: {e}"
                    );
                    last_warning = Some(Instant::now());
                }
                if timed(backoff, stopped.recv()).await.is_some() {
                    break;
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    // Stopped: requests being answered get up to 10 s to finish and be sent (with
    // `connection: close`).
    shared.stopping.store(true, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(10);
    while shared.busy.load(Ordering::SeqCst) > 0 && Instant::now() < until {
        Timer::after(Duration::from_millis(10)).await;
    }
}

/// Over the connection limits: a 503 if the socket takes it at once, then closed.
fn refuse(stream: &TcpStream) {
    let mut s = stream;
    let _ = s.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 21\r\nconnection: close\r\nretry-after: 5\r\n\r\ntoo many connections\n",
    );
    let _ = stream.shutdown(Shutdown::Both);
}

/// Whether to keep the connection after an answer.
enum After {
    KeepAlive,
    Close,
}

/// Serves one connection until it closes, fails a limit, or asks to close.
async fn connection(stream: Async<TcpStream>, peer: SocketAddr, shared: Arc<Shared>, slot: Slot) {
    let _ = stream.get_ref().set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut held = Held {
        total: &shared.buffered,
        mine: 0,
    };
    for _ in 0..shared.limits.requests_per_connection {
        slot.set_waiting(true);
        match one_request(&stream, peer, &mut buf, &shared, &slot, &mut held).await {
            After::KeepAlive => {}
            After::Close => break,
        }
    }
    linger_close(&stream).await;
}

/// Reads until `buf` holds `want` bytes (never more): `Got`, or why not.
async fn fill(
    stream: &Async<TcpStream>,
    buf: &mut Vec<u8>,
    want: usize,
    deadline: Instant,
    held: &mut Held<'_>,
) -> Fill {
    while buf.len() < want {
        match fill_some(stream, buf, want, deadline, None, held).await {
            Fill::Got => {}
            other => return other,
        }
    }
    Fill::Got
}

/// What a read into a connection's buffer came to.
#[derive(Debug, PartialEq, Eq)]
enum Fill {
    /// At least one byte arrived.
    Got,
    /// The peer closed or failed, the deadline passed, or the connection must make room.
    Ended,
    /// The buffer would pass [`BUFFER_BUDGET`].
    Full,
}

/// Bytes all connections together may hold in read buffers past each one's first
/// [`FIRST_CHUNK`] (a head or body being read, and a body waiting for its handler). Ten
/// thousand connections each sending a 64 KiB head would otherwise hold over a gigabyte;
/// past the budget a request gets 503, and small requests (a head under 4 KiB) never meet it.
const BUFFER_BUDGET: usize = 64 << 20;

/// A connection's share of [`Shared::buffered`], given back when dropped.
struct Held<'a> {
    total: &'a AtomicUsize,
    mine: usize,
}

impl Held<'_> {
    /// Charges a buffer of `capacity` bytes (less its free first chunk); false, with nothing
    /// more charged, when that would pass [`BUFFER_BUDGET`].
    fn set(&mut self, capacity: usize) -> bool {
        let want = capacity.saturating_sub(FIRST_CHUNK);
        if want > self.mine {
            let add = want - self.mine;
            if self.total.fetch_add(add, Ordering::SeqCst) + add > BUFFER_BUDGET {
                self.total.fetch_sub(add, Ordering::SeqCst);
                return false;
            }
        } else {
            self.total.fetch_sub(self.mine - want, Ordering::SeqCst);
        }
        self.mine = want;
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.total.fetch_sub(self.mine, Ordering::SeqCst);
    }
}

/// The answer to a request refused for the buffer budget.
const BUSY: &str = "the server is reading too many large requests at once; retry shortly";

async fn one_request(
    stream: &Async<TcpStream>,
    peer: SocketAddr,
    buf: &mut Vec<u8>,
    shared: &Shared,
    slot: &Slot,
    held: &mut Held<'_>,
) -> After {
    let (limits, service) = (&shared.limits, shared.service.as_ref());
    if buf.is_empty() {
        // An idle connection holds no buffer while it waits (a body read for the last
        // request stayed charged until its answer was sent).
        *buf = Vec::new();
        held.set(0);
    }
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
                    send_error(stream, e.status(), &e.to_string(), shared).await;
                    return After::Close;
                }
            }
        }
        let before = buf.len();
        match fill_some(
            stream,
            buf,
            limits.head + 1,
            head_deadline,
            Some(slot),
            held,
        )
        .await
        {
            Fill::Got => {}
            Fill::Full => {
                send_error(stream, 503, BUSY, shared).await;
                return After::Close;
            }
            Fill::Ended => {
                if !buf.is_empty() && Instant::now() >= head_deadline {
                    send_error(stream, 408, "request head not received in time", shared).await;
                }
                return After::Close;
            }
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
                send_error(stream, e.status(), &e.to_string(), shared).await;
                return After::Close;
            }
        }
    };
    // From here the connection is in a request: never closed to make room.
    slot.set_waiting(false);
    let mut req = match Req::new(&head.method, &head.target) {
        Ok(r) => r,
        Err(e) => {
            send_error(stream, 400, &format!("bad query: {e}"), shared).await;
            return After::Close;
        }
    };
    req.headers = head.headers.clone();
    req.peer = Some(peer.ip());
    if head.content_length > MAX_BODY {
        send_error(stream, 413, "request body too large", shared).await;
        return After::Close;
    }
    // Admitting a body may read the database (who is logged in): off this thread.
    let admitted = if head.content_length == 0 {
        service.admit(&req, 0)
    } else {
        let svc = shared.service.clone();
        let n = head.content_length;
        let _handler = shared.handlers.acquire().await;
        let (back, admitted) = smol::unblock(move || {
            let admitted = svc.admit(&req, n);
            (req, admitted)
        })
        .await;
        req = back;
        admitted
    };
    if let Err(resp) = admitted {
        write_resp(stream, resp, head.method == "HEAD", false, shared).await;
        return After::Close;
    }
    // The body: exactly its length, in bounded chunks, by its deadline.
    buf.drain(..head.len);
    if head.content_length > buf.len()
        && head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        let _ = write_timed(stream, b"HTTP/1.1 100 Continue\r\n\r\n", limits.write_time).await;
    }
    let body_deadline = Instant::now() + limits.body_time;
    match fill(stream, buf, head.content_length, body_deadline, held).await {
        Fill::Got => {}
        Fill::Full => {
            send_error(stream, 503, BUSY, shared).await;
            return After::Close;
        }
        Fill::Ended => {
            if Instant::now() >= body_deadline {
                send_error(stream, 408, "request body not received in time", shared).await;
            }
            return After::Close;
        }
    }
    req.body = buf.drain(..head.content_length).collect();
    // Counted until the answer is written: a stop waits for it.
    let _busy = Busy::new(&shared.busy);
    let resp = match shared.service.answer_now(&req) {
        Some(resp) => resp,
        None => {
            let _handler = shared.handlers.acquire().await;
            let svc = shared.service.clone();
            smol::unblock(move || svc.answer(req)).await
        }
    };
    let keep = head.keep_alive() && !shared.stopping.load(Ordering::SeqCst);
    debug!(method = %head.method, target = %head.target, status = resp.status, "web");
    if write_resp(stream, resp, head.method == "HEAD", keep, shared).await && keep {
        After::KeepAlive
    } else {
        After::Close
    }
}

/// The most read at once.
const CHUNK: usize = 16 * 1024;
/// The most read at once into a buffer holding less than this.
const FIRST_CHUNK: usize = 4 * 1024;

/// Reads whatever arrives next (at least one byte) without taking `buf` past `cap`; false
/// at the deadline, at the end of the stream, or once the connection must make room. No
/// buffer is taken before bytes are there to read.
async fn fill_some(
    stream: &Async<TcpStream>,
    buf: &mut Vec<u8>,
    cap: usize,
    deadline: Instant,
    evict: Option<&Slot>,
    held: &mut Held<'_>,
) -> Fill {
    if buf.len() >= cap {
        return Fill::Ended;
    }
    loop {
        let ready = future::or(async { stream.readable().await.is_ok() }, async {
            future::or(Timer::at(deadline), async {
                match evict {
                    Some(slot) => slot.evicted().await,
                    None => std::future::pending::<()>().await,
                }
                Instant::now()
            })
            .await;
            false
        })
        .await;
        if !ready {
            return Fill::Ended;
        }
        // The room is zeroed before each read (safe code cannot read into spare capacity):
        // small while the buffer is small, since most heads are well under 4 KiB.
        let len = buf.len();
        let room = (cap - len).min(if len < FIRST_CHUNK {
            FIRST_CHUNK
        } else {
            CHUNK
        });
        if len + room > buf.capacity() {
            if !held.set(len + room) {
                return Fill::Full;
            }
            buf.reserve_exact(room);
        }
        buf.resize(len + room, 0);
        let got = stream.get_ref().read(&mut buf[len..]);
        match got {
            Ok(n) if n > 0 => {
                buf.truncate(len + n);
                return Fill::Got;
            }
            Ok(_) => {
                buf.truncate(len);
                return Fill::Ended;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                buf.truncate(len);
            }
            Err(_) => {
                buf.truncate(len);
                return Fill::Ended;
            }
        }
    }
}

/// Writes all of `bytes`; false if the client is gone or a write took longer than
/// `per_write` (a client that stops reading is dropped).
async fn write_timed(stream: &Async<TcpStream>, mut bytes: &[u8], per_write: Duration) -> bool {
    while !bytes.is_empty() {
        let write = stream.write_with(|s| {
            let mut s: &TcpStream = s;
            s.write(bytes)
        });
        let wrote = timed(per_write, write).await;
        match wrote {
            Some(Ok(n)) if n > 0 => bytes = &bytes[n..],
            _ => return false,
        }
    }
    true
}

async fn send_error(stream: &Async<TcpStream>, status: u16, msg: &str, shared: &Shared) {
    let resp = Resp::text(status, format!("{msg}\n"));
    write_resp(stream, resp, false, false, shared).await;
}

/// A body up to this size goes out in the same write as the head.
const WITH_HEAD: usize = 16 * 1024;

/// Writes an answer; false if the client is gone.
async fn write_resp(
    stream: &Async<TcpStream>,
    resp: Resp,
    head_only: bool,
    keep: bool,
    shared: &Shared,
) -> bool {
    let mut out = Vec::with_capacity(512 + resp.len().min(WITH_HEAD));
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type
    );
    for (n, v) in shared.service.headers() {
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
    let per_write = shared.limits.write_time;
    if head_only {
        return write_timed(stream, &out, per_write).await;
    }
    if len <= WITH_HEAD {
        out.extend_from_slice(&resp.bytes());
        return write_timed(stream, &out, per_write).await;
    }
    if !write_timed(stream, &out, per_write).await
        || !write_timed(stream, &resp.body, per_write).await
    {
        return false;
    }
    match &resp.splice {
        Some((mid, tail)) => {
            write_timed(stream, mid.as_bytes(), per_write).await
                && write_timed(stream, tail, per_write).await
        }
        None => true,
    }
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
async fn linger_close(stream: &Async<TcpStream>) {
    let _ = stream.get_ref().shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_millis(500);
    let mut sink = vec![0u8; 4096];
    let mut drained = 0usize;
    while drained < 1 << 20 {
        let slice = until
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(200));
        let read = stream.read_with(|s| {
            let mut s: &TcpStream = s;
            s.read(&mut sink)
        });
        let got = timed(slice, read).await;
        match got {
            Some(Ok(n)) if n > 0 => drained += n,
            _ => break,
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
