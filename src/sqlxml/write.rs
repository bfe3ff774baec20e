//! FOR XML output, as SQL Server 2000 writes it, for hostler's `/sqlxml` endpoint: RAW
//! (`<row col="v"/>`), AUTO (an element per table, nested in the order tables first appear in
//! the select list, adjacent rows with the same parent values sharing the parent), ELEMENTS
//! (AUTO only, as in SQL Server 2000), XMLDATA (an inline XDR schema first) and BINARY
//! BASE64. NULL is left out. Errors are `<?MSSQLError?>` instructions.

use std::fmt::Write as _;

use base64::Engine as _;

use super::{MssqlError, names};
use crate::sql::Value;

/// What `FOR XML ...` asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    pub auto: bool,
    pub elements: bool,
    pub xmldata: bool,
    pub binary_base64: bool,
}

/// A column of a result: its name, its table (None for an expression) and declared type.
#[derive(Debug, Clone, Default)]
pub struct Column {
    pub name: String,
    pub table: Option<String>,
    pub decl: Option<String>,
}

/// Escapes text for an attribute or element: the five entities, tab and line ends as
/// character references, and characters XML 1.0 cannot carry as U+FFFD.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// An error instruction.
pub fn error_pi(e: &MssqlError) -> String {
    let mut s = String::from("<?MSSQLError HResult=\"");
    escape(&e.hresult, &mut s);
    s.push_str("\" Source=\"");
    escape(&e.source, &mut s);
    s.push_str("\" Description=\"");
    escape(&e.description, &mut s);
    s.push_str("\"?>");
    s
}

/// A value's text, or None for NULL. Binary needs BINARY BASE64, as in SQL Server 2000.
fn text(v: &Value, mode: Mode, column: &str) -> Result<Option<String>, String> {
    Ok(match v {
        Value::Null => None,
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        Value::Int(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Text(t) => Some(t.clone()),
        Value::Blob(b) if mode.binary_base64 => {
            Some(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Value::Blob(_) => {
            return Err(format!(
                "FOR XML: column {column} is binary; add BINARY BASE64 to the FOR XML clause"
            ));
        }
    })
}

/// The XDR type for a declared SQLite column type.
pub fn xdr_type(decl: Option<&str>) -> &'static str {
    let d = decl.unwrap_or("").to_ascii_uppercase();
    if d.contains("BIGINT") {
        "i8"
    } else if d.contains("INT") {
        "i4"
    } else if d.contains("BOOL") {
        "boolean"
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        "r8"
    } else if d.contains("BLOB") || d.contains("BINARY") {
        "bin.base64"
    } else if d.contains("DEC") || d.contains("NUMERIC") {
        "number"
    } else {
        "string"
    }
}

/// One nesting level of AUTO: an element name and the columns that belong to it.
#[derive(Debug)]
struct Level {
    element: String,
    columns: Vec<usize>,
}

/// The levels of a result: RAW has one, `row`; AUTO one per table in order of first
/// appearance, an expression column going to the level reached so far.
fn levels(columns: &[Column], mode: Mode) -> Vec<Level> {
    if !mode.auto {
        return vec![Level {
            element: "row".into(),
            columns: (0..columns.len()).collect(),
        }];
    }
    let mut out: Vec<Level> = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        match &c.table {
            Some(t) => match out.iter_mut().find(|l| &l.element == t) {
                Some(l) => l.columns.push(i),
                None => out.push(Level {
                    element: t.clone(),
                    columns: vec![i],
                }),
            },
            None => match out.last_mut() {
                Some(l) => l.columns.push(i),
                None => out.push(Level {
                    element: "row".into(),
                    columns: vec![i],
                }),
            },
        }
    }
    if out.is_empty() {
        out.push(Level {
            element: "row".into(),
            columns: Vec::new(),
        });
    }
    out
}

fn schema(columns: &[Column], levels: &[Level], mode: Mode, name: &str) -> String {
    let mut s = format!(
        "<Schema name=\"{name}\" xmlns=\"urn:schemas-microsoft-com:xml-data\" xmlns:dt=\"urn:schemas-microsoft-com:datatypes\">"
    );
    for (k, l) in levels.iter().enumerate() {
        let nested = k + 1 < levels.len();
        let content = if mode.elements || nested {
            "eltOnly"
        } else {
            "empty"
        };
        let _ = write!(
            s,
            "<ElementType name=\"{}\" content=\"{content}\" model=\"closed\">",
            names::encode(&l.element)
        );
        if mode.elements {
            for &i in &l.columns {
                let n = names::encode(&columns[i].name);
                let _ = write!(s, "<element type=\"{n}\"/>");
            }
        } else {
            for &i in &l.columns {
                let n = names::encode(&columns[i].name);
                let t = xdr_type(columns[i].decl.as_deref());
                let _ = write!(
                    s,
                    "<AttributeType name=\"{n}\" dt:type=\"{t}\"/><attribute type=\"{n}\"/>"
                );
            }
        }
        if nested {
            let _ = write!(
                s,
                "<element type=\"{}\"/>",
                names::encode(&levels[k + 1].element)
            );
        }
        s.push_str("</ElementType>");
        if mode.elements {
            for &i in &l.columns {
                let n = names::encode(&columns[i].name);
                let t = xdr_type(columns[i].decl.as_deref());
                let _ = write!(
                    s,
                    "<ElementType name=\"{n}\" content=\"textOnly\" model=\"closed\" dt:type=\"{t}\"/>"
                );
            }
        }
    }
    s.push_str("</Schema>");
    s
}

/// Writes rows in the FOR XML shape `mode` asks for.
pub fn rows(columns: &[Column], rows: &[Vec<Value>], mode: Mode) -> Result<String, String> {
    let levels = levels(columns, mode);
    // Two columns of one element with one name would be malformed XML: SQL Server refuses too.
    for l in &levels {
        for (k, &i) in l.columns.iter().enumerate() {
            if l.columns[..k]
                .iter()
                .any(|&j| columns[j].name == columns[i].name)
            {
                return Err(format!(
                    "FOR XML: column name {:?} is repeated in <{}>; give each column its own alias",
                    columns[i].name, l.element
                ));
            }
        }
    }
    let mut out = String::new();
    let schema_name = "Schema1";
    if mode.xmldata {
        out.push_str(&schema(columns, &levels, mode, schema_name));
    }
    // The values of each open level, to group adjacent rows under one parent.
    let mut open: Vec<Vec<Option<String>>> = Vec::new();
    for row in rows {
        let mut keys = Vec::with_capacity(levels.len());
        for l in &levels {
            let mut k = Vec::with_capacity(l.columns.len());
            for &i in &l.columns {
                k.push(text(&row[i], mode, &columns[i].name)?);
            }
            keys.push(k);
        }
        // The first level whose values differ from the open element's starts anew; the last
        // level (or RAW's only one) is one element per row.
        let mut same = 0;
        while same + 1 < levels.len() && same < open.len() && open[same] == keys[same] {
            same += 1;
        }
        while open.len() > same {
            open.pop();
            close(&mut out, &levels[open.len()]);
        }
        for (k, key) in keys.iter().enumerate().skip(same) {
            let last = k + 1 == levels.len();
            let element = names::encode(&levels[k].element);
            out.push('<');
            out.push_str(&element);
            if k == 0 && mode.xmldata {
                let _ = write!(out, " xmlns=\"x-schema:#{schema_name}\"");
            }
            if !mode.elements {
                for (&i, v) in levels[k].columns.iter().zip(key) {
                    if let Some(v) = v {
                        out.push(' ');
                        out.push_str(&names::encode(&columns[i].name));
                        out.push_str("=\"");
                        escape(v, &mut out);
                        out.push('"');
                    }
                }
            }
            if last && !mode.elements {
                out.push_str("/>");
                continue;
            }
            out.push('>');
            if mode.elements {
                for (&i, v) in levels[k].columns.iter().zip(key) {
                    if let Some(v) = v {
                        let n = names::encode(&columns[i].name);
                        let _ = write!(out, "<{n}>");
                        escape(v, &mut out);
                        let _ = write!(out, "</{n}>");
                    }
                }
            }
            if last {
                let _ = write!(out, "</{element}>");
            } else {
                open.push(key.clone());
            }
        }
    }
    while open.pop().is_some() {
        close(&mut out, &levels[open.len()]);
    }
    Ok(out)
}

fn close(out: &mut String, level: &Level) {
    let _ = write!(out, "</{}>", names::encode(&level.element));
}
