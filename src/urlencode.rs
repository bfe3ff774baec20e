//! `application/x-www-form-urlencoded` and percent-encoding, strict on input: the web
//! page's forms and queries, and the SQLXML client's URLs.

/// Why a form or query could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("bad percent-encoding in {0:?}")]
    Percent(String),
    #[error("the form is not UTF-8")]
    Utf8,
    #[error("expected a form (application/x-www-form-urlencoded), got {0:?}")]
    ContentType(String),
}

/// Parses `a=1&b=x+y%21`. Strict: a bad `%` escape or bytes that are not UTF-8 once decoded
/// are errors, not guesses.
pub fn parse_urlencoded(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut out = Vec::new();
    for part in input.split(|b| *b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

/// Decodes one percent-encoded component (`+` is a space).
pub fn decode(s: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                match hex {
                    // from_str_radix takes a sign; only two hex digits are an escape.
                    Some(b) if s[i + 1].is_ascii_hexdigit() => {
                        out.push(b);
                        i += 2;
                    }
                    _ => {
                        let end = (i + 3).min(s.len());
                        return Err(FormError::Percent(
                            String::from_utf8_lossy(&s[i..end]).into_owned(),
                        ));
                    }
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::Utf8)
}

/// Decodes a percent-encoded part of a URL (a user, a password, a path): unlike a form
/// value, `+` is a plus.
pub fn decode_part(s: &str) -> Result<String, FormError> {
    decode(s.replace('+', "%2B").as_bytes())
}

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
