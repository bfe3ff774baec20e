//! A streaming reader of SQLXML results: FOR XML RAW, AUTO (nested) and ELEMENTS, fragments
//! or a document under a root, an inline XMLDATA schema, and `<?MSSQLError?>` instructions
//! anywhere. It holds one top-level record at a time, so a result of any size is read in
//! bounded memory; [`parse`] collects everything for small results.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::types::Schema;
use super::{MssqlError, SqlxmlError, names};

/// The largest single element start, text or instruction accepted (a huge attribute is an
/// error, not an allocation without end).
pub const MAX_TOKEN: usize = 16 * 1024 * 1024;

/// One row element: its table (the element's decoded name), its columns in document order
/// (attributes, and text-only child elements in ELEMENTS mode) and its nested rows (AUTO).
/// A NULL column is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub table: String,
    pub columns: Vec<(String, String)>,
    pub children: Vec<Record>,
}

impl Record {
    pub fn get(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v.as_str())
    }
}

/// An element being read.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
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

fn is_xdr(name: &str) -> bool {
    name == "Schema" || name.ends_with(":Schema")
}

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
                    let node = start(&e).map_err(|m| self.malformed(m))?;
                    if self.stack.is_empty()
                        && !self.inside
                        && self.container.as_deref() == Some(node.name.as_str())
                    {
                        self.inside = true;
                        self.root = Some(node.name);
                        continue;
                    }
                    self.stack.push(node);
                }
                Event::Empty(e) => {
                    let node = start(&e).map_err(|m| self.malformed(m))?;
                    if self.stack.is_empty()
                        && !self.inside
                        && self.container.as_deref() == Some(node.name.as_str())
                    {
                        self.root = Some(node.name);
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
                        top.text.push_str(&text);
                    }
                }
                Event::CData(c) => {
                    if let Some(top) = self.stack.last_mut() {
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
                            open.name
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

    /// An element ended: attach it to its parent, or hand it out if it is a top-level row.
    fn close(&mut self, node: Node) -> Result<Option<Record>, SqlxmlError> {
        if let Some(parent) = self.stack.last_mut() {
            parent.children.push(node);
            return Ok(None);
        }
        if is_xdr(&node.name) {
            read_schema(&node, &mut self.schema);
            return Ok(None);
        }
        Ok(Some(record(node, &self.schema)))
    }
}

/// An element start's decoded name and attributes (without namespace declarations).
fn start(e: &BytesStart<'_>) -> Result<Node, String> {
    let name = names::decode(std::str::from_utf8(e.name().as_ref()).map_err(|e| e.to_string())?);
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("bad attribute in <{name}>: {e}"))?;
        let key = std::str::from_utf8(a.key.as_ref()).map_err(|e| e.to_string())?;
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = a
            .unescape_value()
            .map_err(|e| format!("bad value of {key} in <{name}>: {e}"))?;
        attrs.push((names::decode(key), value.into_owned()));
    }
    Ok(Node {
        name,
        attrs,
        ..Node::default()
    })
}

/// A row element as a record: attributes are columns; a child element with neither
/// attributes nor children (or typed textOnly by the schema) is a column (ELEMENTS mode);
/// any other child is a nested row (AUTO).
fn record(node: Node, schema: &Schema) -> Record {
    let mut r = Record {
        table: node.name,
        columns: node.attrs,
        children: Vec::new(),
    };
    for c in node.children {
        let column =
            schema.text_only.contains_key(&c.name) || (c.attrs.is_empty() && c.children.is_empty());
        if column {
            r.columns.push((c.name, c.text));
        } else {
            r.children.push(record(c, schema));
        }
    }
    r
}

/// Reads an XDR `<Schema>`: attribute types per element, and text-only element types.
fn read_schema(node: &Node, schema: &mut Schema) {
    let attr = |n: &Node, k: &str| {
        n.attrs
            .iter()
            .find(|(a, _)| a == k || a.ends_with(&format!(":{k}")))
            .map(|(_, v)| v.clone())
    };
    for et in node
        .children
        .iter()
        .filter(|c| c.name == "ElementType" || c.name.ends_with(":ElementType"))
    {
        let Some(element) = attr(et, "name").map(|n| names::decode(&n)) else {
            continue;
        };
        if attr(et, "content").as_deref() == Some("textOnly") {
            schema.text_only.insert(
                element.clone(),
                attr(et, "type").unwrap_or_else(|| "string".into()),
            );
        }
        for at in et
            .children
            .iter()
            .filter(|c| c.name == "AttributeType" || c.name.ends_with(":AttributeType"))
        {
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
