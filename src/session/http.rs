//! HTTP under the expect engine (ureq, rustls): one request per session, whose response body
//! is read with `read_until`/`read_some` like any other stream, and whose status and headers
//! are kept in [`ResponseHead`].
//!
//! The body is read by a small thread into a bounded channel, so the engine's waits keep their
//! timeouts and the run's cancel flag; dropping the session ends the thread at its next chunk.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use super::http_io::Guarded;
use super::transport::{Recv, Transport};
use super::{Guard, SessionError};

/// An HTTP request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// The whole exchange, from connect to the last byte of the body.
    pub timeout: Duration,
}

/// The status line and headers of a response.
#[derive(Debug, Clone, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

/// A response body being read.
pub struct Http {
    /// None once closed: dropping the receiver ends the reader thread at its next chunk.
    rx: Option<Receiver<io::Result<Vec<u8>>>>,
    pending: Vec<u8>,
    peer: String,
    eof: bool,
}

/// What one request holds for reading and for writing. ureq's defaults are 128 KiB each, a
/// quarter of a megabyte for every check waiting on a slow server; a response head may be as
/// long as the input buffer, and the body streams through it.
const INPUT_BUFFER: usize = 32 * 1024;
const OUTPUT_BUFFER: usize = 16 * 1024;

/// An HTTP client: the whole exchange within `timeout`, statuses as data, TLS by OpenSSL
/// (native-tls) with the system's CA certificates.
pub fn agent(timeout: Duration) -> ureq::Agent {
    config(timeout).into()
}

/// [`agent`]'s configuration.
fn config(timeout: Duration) -> ureq::config::Config {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(OUTPUT_BUFFER)
        .max_response_header_size(INPUT_BUFFER)
        .tls_config(tls)
        .build()
}

/// [`agent`] whose lookups, connects and socket waits run on the caller's thread in slices,
/// each ended at once by `guard` (`session::http_io`).
fn guarded_agent(timeout: Duration, guard: &Guard) -> ureq::Agent {
    use ureq::unversioned::transport::{ConnectProxyConnector, Connector, NativeTlsConnector};
    let config = config(timeout);
    let guarded = Guarded(guard.clone());
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(guarded.clone())
            .chain(NativeTlsConnector::default());
    ureq::Agent::with_parts(config, connector, guarded)
}

/// Sends the request and returns the head and the body as a transport. Everything up to the
/// head waits on the caller's thread, and ends at once when `guard` says so (with the
/// guard's own error: cancelled, out of time, over budget).
pub fn request(req: &Request, guard: &Guard) -> Result<(ResponseHead, Http), SessionError> {
    let peer = format!(
        "http {} {}",
        req.method,
        crate::redact::request_url(&req.url)
    );
    let err = |msg: String| SessionError::Io {
        peer: peer.clone(),
        msg,
    };
    let agent = guarded_agent(req.timeout, guard);
    let mut builder = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(req.url.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let built = builder
        .body(req.body.clone().unwrap_or_default())
        .map_err(|e| err(format!("bad request: {e}")))?;
    let resp = agent
        .run(built)
        // Errors may quote the URL; it can carry credentials.
        .map_err(|e| {
            if let Err(stopped) = guard.check() {
                return stopped;
            }
            err(e
                .to_string()
                .replace(&req.url, &crate::redact::request_url(&req.url)))
        })?;
    let head = ResponseHead {
        status: resp.status().as_u16(),
        headers: resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    let mut reader = resp.into_body().into_reader();
    let (tx, rx): (SyncSender<io::Result<Vec<u8>>>, _) = sync_channel(4);
    std::thread::Builder::new()
        .name("http-body".into())
        .spawn(move || {
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let msg = match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => Ok(chunk[..n].to_vec()),
                    Err(e) => Err(e),
                };
                let failed = msg.is_err();
                if tx.send(msg).is_err() || failed {
                    break;
                }
            }
        })
        .map_err(|e| err(format!("cannot start the body reader: {e}")))?;
    Ok((
        head,
        Http {
            rx: Some(rx),
            pending: Vec::new(),
            peer,
            eof: false,
        },
    ))
}

impl Transport for Http {
    fn send(&mut self, _data: &[u8]) -> io::Result<()> {
        Err(io::Error::other(
            "an HTTP session sends its request when it opens; open another to send more",
        ))
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Recv> {
        if self.pending.is_empty() && !self.eof {
            let Some(rx) = &self.rx else {
                return Ok(Recv::Eof);
            };
            match rx.recv_timeout(timeout) {
                Ok(Ok(data)) => self.pending = data,
                Ok(Err(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) => return Ok(Recv::Timeout),
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
            }
        }
        if self.pending.is_empty() {
            return Ok(Recv::Eof);
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(Recv::Data(n))
    }

    fn close(&mut self) -> io::Result<Option<i32>> {
        self.eof = true;
        self.rx = None;
        self.pending.clear();
        Ok(None)
    }

    fn describe(&self) -> String {
        self.peer.clone()
    }
}
