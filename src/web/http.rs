//! The request and response types the handlers see, independent of the connection code: query and
//! form parsing (`application/x-www-form-urlencoded`), cookies, and response builders with
//! the security headers every answer carries.

use std::fmt;

pub use crate::urlencode::{FormError, decode, encode, parse_urlencoded};
use std::sync::Arc;

/// The largest request body accepted (a script's source is the biggest thing posted).
pub const MAX_BODY: usize = 1024 * 1024;

/// A request, read in full (the body is capped at [`MAX_BODY`]).
#[derive(Debug, Clone, Default)]
pub struct Req {
    /// Upper case: GET, POST, ...
    pub method: String,
    /// The path, still percent-encoded, without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's address (None in tests that build requests by hand).
    pub peer: Option<std::net::IpAddr>,
}

impl Req {
    /// Splits `path?query`; a query that does not parse counts as empty pairs are kept as is.
    pub fn new(method: &str, url: &str) -> Result<Req, FormError> {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        Ok(Req {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: parse_urlencoded(query.as_bytes())?,
            ..Req::default()
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The first value of a query parameter; an empty one counts as absent.
    pub fn query(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    /// The body as a URL-encoded form.
    pub fn form(&self) -> Result<Form, FormError> {
        let ct = self.header("content-type").unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(FormError::ContentType(ct.to_string()));
        }
        Ok(Form(parse_urlencoded(&self.body)?))
    }

    pub fn is_post(&self) -> bool {
        self.method == "POST"
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, v)| n == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// A parsed form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first non-empty value of a field, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        first(&self.0, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The value as sent (a script's source keeps its whitespace).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of a repeated field (a multi-select).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

/// A response.
#[derive(Clone)]
pub struct Resp {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Shared text sent after `body`, then more bytes: a large cached part of a page goes out
    /// without being copied into each response.
    pub splice: Option<(Arc<String>, Vec<u8>)>,
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resp({}, {} bytes)", self.status, self.len())
    }
}

/// Shared text as a byte slice, for a reader.
#[derive(Debug, Clone)]
pub struct SharedBytes(pub Arc<String>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Resp {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Resp {
        Resp {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            splice: None,
        }
    }

    /// The length of the whole body.
    pub fn len(&self) -> usize {
        self.body.len()
            + self
                .splice
                .as_ref()
                .map_or(0, |(mid, tail)| mid.len() + tail.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body in one buffer (for tests and small answers).
    pub fn bytes(&self) -> Vec<u8> {
        let mut all = self.body.clone();
        if let Some((mid, tail)) = &self.splice {
            all.extend_from_slice(mid.as_bytes());
            all.extend_from_slice(tail);
        }
        all
    }

    /// The body as a reader, without copying a spliced part.
    pub fn reader(self) -> impl std::io::Read + Send + 'static {
        use std::io::{Cursor, Read};
        let (mid, tail) = self
            .splice
            .map_or((SharedBytes(Arc::default()), Vec::new()), |(m, t)| {
                (SharedBytes(m), t)
            });
        Cursor::new(self.body)
            .chain(Cursor::new(mid))
            .chain(Cursor::new(tail))
    }

    pub fn html(status: u16, body: impl Into<Vec<u8>>) -> Resp {
        Resp::new(status, "text/html; charset=utf-8", body)
    }

    pub fn text(status: u16, body: impl Into<String>) -> Resp {
        Resp::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// JSON, its times in RFC 3339 (with the epoch milliseconds beside them, as `..._ms`).
    pub fn json(status: u16, v: &impl serde::Serialize) -> Resp {
        let body = serde_json::to_value(v)
            .map(|mut v| {
                crate::when::json_times(&mut v);
                v
            })
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_else(|_| b"{}".to_vec());
        Resp::new(status, "application/json", body)
    }

    /// `{"error": msg}` with the status.
    pub fn json_error(status: u16, msg: &str) -> Resp {
        Resp::json(status, &serde_json::json!({ "error": msg }))
    }

    /// 303 See Other: after a successful POST, the browser GETs the page.
    pub fn redirect(to: &str) -> Resp {
        Resp::new(303, "text/plain; charset=utf-8", format!("see {to}\n")).with("location", to)
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Resp {
        self.headers.push((name, value.into()));
        self
    }
}
