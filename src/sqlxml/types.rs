//! XDR types from an inline XMLDATA schema, and typing of the lexical values a result holds.
//! Values stay strings until a caller asks for a type; a schema, when present, says which.

use std::collections::HashMap;

use serde_json::Value;

/// The types an XMLDATA schema declares, per element (table) and column; names decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// (element, column) -> dt:type, such as `i4`, `string`, `dateTime`, `fixed.14.4`.
    pub types: HashMap<(String, String), String>,
    /// Element types whose content is text only: in ELEMENTS mode, columns.
    pub text_only: HashMap<String, String>,
}

impl Schema {
    pub fn is_empty(&self) -> bool {
        self.types.is_empty() && self.text_only.is_empty()
    }

    /// The declared type of a column, if any.
    pub fn type_of(&self, table: &str, column: &str) -> Option<&str> {
        self.types
            .get(&(table.to_string(), column.to_string()))
            .or_else(|| self.text_only.get(column))
            .map(String::as_str)
    }
}

/// The XDR vocabulary (MSXML's XML data types).
pub const XDR_TYPES: &[&str] = &[
    "bin.base64",
    "bin.hex",
    "boolean",
    "char",
    "date",
    "dateTime",
    "dateTime.tz",
    "fixed.14.4",
    "float",
    "int",
    "number",
    "time",
    "time.tz",
    "i1",
    "i2",
    "i4",
    "i8",
    "ui1",
    "ui2",
    "ui4",
    "ui8",
    "r4",
    "r8",
    "uuid",
    "uri",
    "string",
    "id",
    "idref",
    "idrefs",
    "entity",
    "entities",
    "enumeration",
    "nmtoken",
    "nmtokens",
    "notation",
];

/// A lexical value typed by its XDR type, as JSON. Integers become numbers, `boolean` a bool,
/// floats numbers; decimals (`number`, `fixed.14.4`) stay strings so no digit is lost;
/// `bin.base64` and `bin.hex` stay as sent (decode them on purpose); the rest are strings.
/// A value that does not parse as its type stays a string.
pub fn typed(value: &str, xdr: Option<&str>) -> Value {
    let s = value.trim();
    match xdr {
        Some("i1" | "i2" | "i4" | "i8" | "int" | "ui1" | "ui2" | "ui4" | "ui8") => s
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| s.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::from(value)),
        Some("boolean") => match s {
            "1" | "true" => Value::Bool(true),
            "0" | "false" => Value::Bool(false),
            _ => Value::from(value),
        },
        Some("r4" | "r8" | "float") => s
            .parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            .unwrap_or_else(|| Value::from(value)),
        _ => Value::from(value),
    }
}

/// Decodes a `bin.base64` value.
pub fn base64(value: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| format!("bad base64 value: {e}"))
}
