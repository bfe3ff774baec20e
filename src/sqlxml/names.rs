//! SQL Server's escaping of names in XML: a character that may not appear in an XML name is
//! written `_xHHHH_` (UCS-2, four upper-case hex digits; `_xHHHHHHHH_` outside UCS-2), and `_`
//! is escaped only when `x` follows it. Names are decoded; values never are.

/// Decodes `_xHHHH_` and `_xHHHHHHHH_` sequences in a name. Anything that is not a whole
/// escape is left as it is.
pub fn decode(name: &str) -> String {
    if !name.contains("_x") {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find("_x") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let decoded = [8usize, 4].iter().find_map(|&n| {
            let hex = tail.get(..n)?;
            if tail.as_bytes().get(n) != Some(&b'_') || !hex.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return None;
            }
            char::from_u32(u32::from_str_radix(hex, 16).ok()?).map(|c| (c, n))
        });
        match decoded {
            Some((c, n)) => {
                out.push(c);
                rest = &tail[n + 1..];
            }
            None => {
                out.push_str("_x");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// XML 1.0's NameStartChar (without ':', which SQL Server leaves alone but hostler escapes).
fn name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0's NameChar.
fn name_char(c: char) -> bool {
    name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Encodes a column or table name the way SQL Server does, so [`decode`] gives it back.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        // A name may not begin with "xml" (reserved; `xmlns` would declare a namespace).
        let reserved = first && name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml"));
        let ok = !reserved && if first { name_start(c) } else { name_char(c) };
        let escape_underscore = c == '_' && chars.peek() == Some(&'x');
        if ok && !escape_underscore {
            out.push(c);
        } else if (c as u32) <= 0xFFFF {
            out.push_str(&format!("_x{:04X}_", c as u32));
        } else {
            out.push_str(&format!("_x{:08X}_", c as u32));
        }
        first = false;
    }
    if out.is_empty() {
        // SQL Server names an unnamed column this way in RAW mode; hostler's endpoint too.
        out.push_str("_x0020_");
    }
    out
}
