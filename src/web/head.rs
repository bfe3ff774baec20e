//! The request head: what one client may send ([`Limits`]), and the parser that refuses a
//! head past them before it is complete. Heads are parsed by `httparse`; this file owns only
//! the limits around it, and never panics on any bytes (a property test feeds it arbitrary
//! ones).

use std::time::Duration;

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
            connections: 10_000,
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
    pub fn keep_alive(&self) -> bool {
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
