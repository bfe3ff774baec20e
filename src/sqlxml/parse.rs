//! A streaming reader of SQLXML results: FOR XML RAW, AUTO (nested) and ELEMENTS, fragments
//! or a document under a root, an inline XMLDATA schema, and `<?MSSQLError?>` instructions
//! anywhere. It holds one top-level record at a time, so a result of any size is read in
//! bounded memory; [`parse`] collects everything for small results.

use std::io::BufRead;
use std::sync::Arc;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::types::Schema;
use super::{MssqlError, SqlxmlError, names};

/// The largest single element start, text or instruction accepted (a huge attribute is an
/// error, not an allocation without end).
pub const MAX_TOKEN: usize = 16 * 1024 * 1024;

/// The largest row (the values of one element, attributes and ELEMENTS columns together).
pub const MAX_ROW: usize = 256 * 1024 * 1024;

/// One row element: its table (the element's decoded name), its columns in document order
/// (attributes, and text-only child elements in ELEMENTS mode) and its nested rows (AUTO).
/// A NULL column is absent. Compact: a row's values share one buffer and its column names
/// are shared with every other row's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub table: Arc<str>,
    /// Column names, and where each value ends in `text`.
    cols: Vec<(Arc<str>, u32)>,
    text: String,
    pub children: Vec<Record>,
}

impl Record {
    pub fn new(table: &str) -> Record {
        Record {
            table: table.into(),
            ..Record::default()
        }
    }

    /// Adds a column.
    pub fn push(&mut self, name: Arc<str>, value: &str) {
        self.text.push_str(value);
        self.cols.push((name, self.text.len() as u32));
    }

    /// The columns, in document order.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0usize;
        self.cols.iter().map(move |(name, end)| {
            let end = *end as usize;
            let value = &self.text[start..end];
            start = end;
            (&**name, value)
        })
    }

    pub fn get(&self, column: &str) -> Option<&str> {
        self.columns().find(|(c, _)| *c == column).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }
}

/// An element being read: the row it becomes, and its text (an ELEMENTS column's value).
#[derive(Debug, Default)]
struct Node {
    rec: Record,
    text: String,
    /// An XDR schema (it declares the XML-Data namespace), not a row.
    xdr: bool,
}

/// Reads records one by one from a body.
pub struct RecordReader<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    /// The root element to descend into (`root=` of a URL query, or a template's root).
    container: Option<String>,
    inside: bool,
    stack: Vec<Node>,
    pub schema: Schema,
    /// Error instructions met so far.
    pub errors: Vec<MssqlError>,
    /// The root element's name, once seen.
    pub root: Option<String>,
    done: bool,
    names: Names,
}

impl<R: BufRead> std::fmt::Debug for RecordReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordReader(depth {})", self.stack.len())
    }
}

/// The size of an event's data.
fn event_len(e: &Event<'_>) -> usize {
    match e {
        Event::Start(x) | Event::Empty(x) => x.len(),
        Event::Text(x) => x.len(),
        Event::CData(x) => x.len(),
        Event::PI(x) => x.len(),
        Event::Comment(x) => x.len(),
        _ => 0,
    }
}

/// The namespace of an inline XMLDATA schema.
const XDR_NS: &str = "urn:schemas-microsoft-com:xml-data";

impl<R: BufRead> RecordReader<R> {
    /// `container`: the name of the root element that wraps the rows, if the request asked for
    /// one; without it, top-level elements are the rows (a fragment).
    pub fn new(input: R, container: Option<&str>) -> RecordReader<R> {
        let mut reader = Reader::from_reader(input);
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.trim_text(false);
        RecordReader {
            reader,
            buf: Vec::with_capacity(4096),
            container: container.map(String::from),
            inside: false,
            stack: Vec::new(),
            schema: Schema::default(),
            errors: Vec::new(),
            root: None,
            done: false,
            names: Names::default(),
        }
    }

    fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn malformed(&self, msg: impl std::fmt::Display) -> SqlxmlError {
        SqlxmlError::Malformed {
            at: self.position(),
            msg: msg.to_string(),
        }
    }

    /// The next top-level record, None at the end of the body.
    pub fn next_record(&mut self) -> Result<Option<Record>, SqlxmlError> {
        while !self.done {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(e) => e,
                Err(e) => return Err(self.malformed(e)),
            };
            if event_len(&event) > MAX_TOKEN {
                return Err(self.malformed(format!(
                    "one element or value is over {} MiB",
                    MAX_TOKEN >> 20
                )));
            }
            match event {
                Event::Start(e) => {
                    let node = start(&e, &mut self.names).map_err(|m| self.malformed(m))?;
                    if self.is_container(&node) {
                        self.inside = true;
                        self.root = Some(node.rec.table.to_string());
                        continue;
                    }
                    self.stack.push(node);
                }
                Event::Empty(e) => {
                    let node = start(&e, &mut self.names).map_err(|m| self.malformed(m))?;
                    if self.is_container(&node) {
                        self.root = Some(node.rec.table.to_string());
                        continue;
                    }
                    if let Some(r) = self.close(node)? {
                        return Ok(Some(r));
                    }
                }
                Event::End(_) => match self.stack.pop() {
                    Some(node) => {
                        if let Some(r) = self.close(node)? {
                            return Ok(Some(r));
                        }
                    }
                    // The container's end.
                    None => self.inside = false,
                },
                Event::Text(t) => {
                    // Decoded even outside a row, so bytes that are not text are an error.
                    let text = t.unescape().map_err(|e| SqlxmlError::Malformed {
                        at: self.reader.buffer_position(),
                        msg: e.to_string(),
                    })?;
                    if let Some(top) = self.stack.last_mut() {
                        if top.text.len() + text.len() > MAX_TOKEN {
                            return Err(SqlxmlError::Malformed {
                                at: self.reader.buffer_position(),
                                msg: format!("a value is over {} MiB", MAX_TOKEN >> 20),
                            });
                        }
                        top.text.push_str(&text);
                    } else if !self.inside && !text.trim().is_empty() {
                        // Plain text, JSON or an error page where XML should be.
                        let start: String = text.trim().chars().take(200).collect();
                        return Err(self.malformed(format!("text outside any element: {start}")));
                    }
                }
                Event::CData(c) => {
                    if let Some(top) = self.stack.last_mut() {
                        if top.text.len() + c.len() > MAX_TOKEN {
                            return Err(SqlxmlError::Malformed {
                                at: self.reader.buffer_position(),
                                msg: format!("a value is over {} MiB", MAX_TOKEN >> 20),
                            });
                        }
                        top.text.push_str(&String::from_utf8_lossy(&c));
                    }
                }
                Event::PI(pi) => {
                    if pi.target() == b"MSSQLError" {
                        let err = error_pi(pi.content());
                        self.errors.push(err);
                    }
                }
                Event::Eof => {
                    if let Some(open) = self.stack.last() {
                        return Err(SqlxmlError::Truncated(format!(
                            "the body ends inside <{}>",
                            open.rec.table
                        )));
                    }
                    if self.inside {
                        return Err(SqlxmlError::Truncated(format!(
                            "the body ends before </{}>",
                            self.container.as_deref().unwrap_or("")
                        )));
                    }
                    self.done = true;
                }
                Event::Decl(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
        Ok(None)
    }

    fn is_container(&self, node: &Node) -> bool {
        self.stack.is_empty() && !self.inside && self.container.as_deref() == Some(&*node.rec.table)
    }

    /// An element ended: attach it to its parent (a text-only child is a column in ELEMENTS
    /// mode, any other a nested row), or hand it out if it is a top-level row.
    fn close(&mut self, node: Node) -> Result<Option<Record>, SqlxmlError> {
        if let Some(parent) = self.stack.last_mut() {
            let column = self.schema.text_only.contains_key(&*node.rec.table)
                || (node.rec.is_empty() && node.rec.children.is_empty());
            if column {
                // Offsets into a row's text are u32: a row stays far below 4 GiB.
                if parent.rec.text.len() + node.text.len() > MAX_ROW {
                    return Err(self.malformed(format!("a row is over {} MiB", MAX_ROW >> 20)));
                }
                parent.rec.push(node.rec.table, &node.text);
            } else {
                parent.rec.children.push(node.rec);
            }
            return Ok(None);
        }
        if node.xdr {
            read_schema(&node.rec, &mut self.schema);
            return Ok(None);
        }
        Ok(Some(node.rec))
    }
}

/// Decoded names by their raw bytes. Rows repeat the same names in the same order, so the
/// search starts after the last hit.
#[derive(Debug, Default)]
struct Names {
    seen: Vec<(Vec<u8>, Arc<str>)>,
    next: usize,
    /// The last row's column count and text length: the next row's likely sizes.
    shape: (usize, usize),
}

impl Names {
    fn get(&mut self, raw: &[u8]) -> Result<Arc<str>, String> {
        let n = self.seen.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.seen[i].0 == raw {
                self.next = i + 1;
                return Ok(self.seen[i].1.clone());
            }
        }
        let name: Arc<str> =
            names::decode(std::str::from_utf8(raw).map_err(|e| e.to_string())?).into();
        if n < 1024 {
            self.seen.push((raw.to_vec(), name.clone()));
            self.next = n + 1;
        }
        Ok(name)
    }
}

/// An element start as a node: its decoded name and attributes (without namespace
/// declarations).
fn start(e: &BytesStart<'_>, cache: &mut Names) -> Result<Node, String> {
    // Sized like the last row (rows repeat their shape), never beyond the markup itself.
    let (n, len) = cache.shape;
    let mut rec = Record {
        table: cache.get(e.name().as_ref())?,
        cols: Vec::with_capacity(n.max(1)),
        text: String::with_capacity((len + len / 4 + 8).min(e.len())),
        children: Vec::new(),
    };
    // Without quick-xml's duplicate-name check (a Vec per element, a quarter of the time):
    // a repeated attribute is only a repeated column.
    let mut xdr = false;
    for a in e.attributes().with_checks(false) {
        let a = a.map_err(|err| format!("bad attribute in <{}>: {err}", rec.table))?;
        let key = a.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            xdr |= &*a.value == XDR_NS.as_bytes();
            continue;
        }
        let name = cache.get(key)?;
        unescape_into(&a.value, &mut rec.text)
            .map_err(|err| format!("bad value of {name} in <{}>: {err}", rec.table))?;
        rec.cols.push((name, rec.text.len() as u32));
    }
    if !rec.cols.is_empty() {
        cache.shape = (rec.cols.len(), rec.text.len());
    }
    Ok(Node {
        rec,
        text: String::new(),
        xdr,
    })
}

/// Appends an attribute value with its entity and character references resolved (the five
/// XML entities, `&#NN;`, `&#xHH;`), straight into the row's buffer.
fn unescape_into(raw: &[u8], out: &mut String) -> Result<(), String> {
    let mut rest = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
    while let Some(amp) = memchr::memchr(b'&', rest.as_bytes()) {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = memchr::memchr(b';', after.as_bytes())
            .filter(|&n| n <= 32)
            .ok_or("an entity without its ';'")?;
        let entity = &after[..semi];
        if let Some(num) = entity.strip_prefix('#') {
            let (digits, radix) = match num.strip_prefix('x') {
                Some(h) => (h, 16),
                None => (num, 10),
            };
            let code = (!digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)))
                .then(|| u32::from_str_radix(digits, radix).ok())
                .flatten()
                .and_then(char::from_u32)
                .filter(|c| *c != '\0')
                .ok_or_else(|| format!("bad character reference &{entity};"))?;
            out.push(code);
        } else {
            out.push_str(
                quick_xml::escape::resolve_xml_entity(entity)
                    .ok_or_else(|| format!("unknown entity &{entity};"))?,
            );
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(())
}

/// Reads an XDR `<Schema>`: attribute types per element, and text-only element types.
fn read_schema(schema_el: &Record, schema: &mut Schema) {
    let attr = |r: &Record, k: &str| {
        r.columns()
            .find(|(a, _)| *a == k || a.ends_with(&format!(":{k}")))
            .map(|(_, v)| v.to_string())
    };
    let is = |r: &Record, k: &str| &*r.table == k || r.table.ends_with(&format!(":{k}"));
    for et in schema_el.children.iter().filter(|c| is(c, "ElementType")) {
        let Some(element) = attr(et, "name").map(|n| names::decode(&n)) else {
            continue;
        };
        if attr(et, "content").as_deref() == Some("textOnly") {
            schema.text_only.insert(
                element.clone(),
                attr(et, "type").unwrap_or_else(|| "string".into()),
            );
        }
        for at in et.children.iter().filter(|c| is(c, "AttributeType")) {
            if let Some(col) = attr(at, "name") {
                let t = attr(at, "type").unwrap_or_else(|| "string".into());
                schema
                    .types
                    .insert((element.clone(), names::decode(&col)), t);
            }
        }
    }
}

/// `HResult="0x80004005" Source="..." Description="..."`, entities decoded. A field that is
/// missing is empty; a malformed instruction still becomes an error carrying its text.
fn error_pi(content: &[u8]) -> MssqlError {
    let text = String::from_utf8_lossy(content).trim().to_string();
    let fake = format!("e {text}");
    let e = BytesStart::from_content(fake.as_str(), 1);
    let mut err = MssqlError::default();
    let mut any = false;
    for a in e.attributes().with_checks(false).flatten() {
        let v = a
            .unescape_value()
            .map(|v| v.into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(&a.value).into_owned());
        match a.key.as_ref() {
            b"HResult" => err.hresult = v,
            b"Source" => err.source = v,
            b"Description" => err.description = v,
            _ => continue,
        }
        any = true;
    }
    if !any {
        err.description = text;
    }
    err
}

/// Reads a whole body: the records, the schema and any error instructions.
pub fn parse<R: BufRead>(
    input: R,
    container: Option<&str>,
) -> Result<super::Response, SqlxmlError> {
    let mut rr = RecordReader::new(input, container);
    let mut records = Vec::new();
    let result = loop {
        match rr.next_record() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let response = super::Response {
        records,
        schema: std::mem::take(&mut rr.schema),
        root: rr.root.take(),
    };
    if let Some(error) = rr.errors.first().cloned() {
        return Err(SqlxmlError::Server {
            error,
            more: rr.errors.len() - 1,
            partial: Box::new(response),
        });
    }
    result.map(|()| response)
}
