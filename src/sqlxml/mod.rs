//! SQL Server 2000's XML-over-HTTP interface (SQLXML): a client ([`client`]) that sends URL
//! queries and templates and reads FOR XML results as they stream ([`parse`](mod@parse)), the name
//! escaping both sides use ([`names`]), XDR types ([`types`]), and the writer hostler's own
//! `/sqlxml` endpoint answers with ([`write`](mod@write)). The protocol facts and their sources are in
//! `docs/SQLXML.md`.

pub mod client;
pub mod names;
pub mod parse;
pub mod types;
pub mod write;

use std::io::{BufRead, Read};

pub use parse::{Record, RecordReader, parse};
pub use types::Schema;

/// An error instruction, `<?MSSQLError HResult Source Description?>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MssqlError {
    pub hresult: String,
    pub source: String,
    pub description: String,
}

impl std::fmt::Display for MssqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} from {})",
            self.description, self.hresult, self.source
        )
    }
}

/// A whole result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub records: Vec<Record>,
    pub schema: Schema,
    pub root: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SqlxmlError {
    /// The server reported an error inside the XML; the rows before it are kept.
    #[error("SQL Server: {error}{}", if *more > 0 { format!(" (and {more} more)") } else { String::new() })]
    Server {
        error: MssqlError,
        more: usize,
        partial: Box<Response>,
    },
    #[error("malformed XML at byte {at}: {msg}")]
    Malformed { at: u64, msg: String },
    #[error("truncated XML: {0}")]
    Truncated(String),
    /// Not an answer of the protocol: a non-2xx status, an HTML page, a refused connection.
    #[error("{0}")]
    Transport(String),
    #[error("bad request: {0}")]
    Request(String),
}

/// Strips a byte-order mark; UTF-16 (`outputencoding=UCS-2`) is turned into UTF-8 as it
/// streams.
pub fn decode_stream<R: Read + Send + 'static>(
    input: R,
) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut input = std::io::BufReader::with_capacity(64 * 1024, input);
    let head = input.fill_buf()?;
    match head {
        [0xEF, 0xBB, 0xBF, ..] => {
            input.consume(3);
            Ok(Box::new(input))
        }
        [0xFF, 0xFE, ..] => {
            input.consume(2);
            Ok(Box::new(std::io::BufReader::new(Utf16::new(input, false))))
        }
        [0xFE, 0xFF, ..] => {
            input.consume(2);
            Ok(Box::new(std::io::BufReader::new(Utf16::new(input, true))))
        }
        _ => Ok(Box::new(input)),
    }
}

/// UTF-16 bytes in, UTF-8 bytes out; a broken surrogate becomes U+FFFD.
struct Utf16<R> {
    inner: R,
    big_endian: bool,
    pending: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    high: Option<u16>,
}

impl<R: Read> Utf16<R> {
    fn new(inner: R, big_endian: bool) -> Utf16<R> {
        Utf16 {
            inner,
            big_endian,
            pending: Vec::new(),
            out: Vec::new(),
            pos: 0,
            high: None,
        }
    }
}

impl<R: Read> Read for Utf16<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.out.len() {
            self.out.clear();
            self.pos = 0;
            let mut chunk = [0u8; 8192];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                if self.high.take().is_some() || !self.pending.is_empty() {
                    self.pending.clear();
                    self.out.extend_from_slice("\u{FFFD}".as_bytes());
                    continue;
                }
                return Ok(0);
            }
            self.pending.extend_from_slice(&chunk[..n]);
            let whole = self.pending.len() / 2 * 2;
            let units: Vec<u16> = self.pending[..whole]
                .chunks_exact(2)
                .map(|p| {
                    if self.big_endian {
                        u16::from_be_bytes([p[0], p[1]])
                    } else {
                        u16::from_le_bytes([p[0], p[1]])
                    }
                })
                .collect();
            self.pending.drain(..whole);
            let mut all: Vec<u16> = self.high.take().into_iter().collect();
            all.extend(units);
            // Keep a trailing high surrogate for the next chunk.
            if all.last().is_some_and(|u| (0xD800..0xDC00).contains(u)) {
                self.high = all.pop();
            }
            for c in char::decode_utf16(all) {
                let mut b = [0u8; 4];
                self.out
                    .extend_from_slice(c.unwrap_or('\u{FFFD}').encode_utf8(&mut b).as_bytes());
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Records as a table: columns are the union over the rows in order of first appearance
/// (NULL is an absent attribute, so no single row need have them all); nested rows are
/// flattened after their parent's columns, named `table.column`.
pub fn table(records: &[Record]) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    fn flat(
        r: &Record,
        prefix: bool,
        parent: &[(String, String)],
        rows: &mut Vec<Vec<(String, String)>>,
    ) {
        let mut mine = parent.to_vec();
        for (c, v) in r.columns() {
            let name = if prefix {
                format!("{}.{c}", r.table)
            } else {
                c.to_string()
            };
            mine.push((name, v.to_string()));
        }
        if r.children.is_empty() {
            rows.push(mine);
        } else {
            for ch in &r.children {
                flat(ch, true, &mine, rows);
            }
        }
    }
    let mut rows = Vec::new();
    for r in records {
        flat(r, false, &[], &mut rows);
    }
    let mut columns: Vec<String> = Vec::new();
    for row in &rows {
        for (c, _) in row {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    let table = rows
        .into_iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row.iter().find(|(k, _)| k == c).map(|(_, v)| v.clone()))
                .collect()
        })
        .collect();
    (columns, table)
}
