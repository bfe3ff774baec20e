//! Nagios performance data: `label=value[UOM];[warn];[crit];[min];[max]`, space-separated,
//! as the monitoring-plugins development guidelines define it. A label with spaces or `=` is
//! in single quotes, a quote inside it doubled (`'it''s'`). A leaf: it depends on nothing in
//! the crate.
//!
//! The parser never fails: a token it cannot read is skipped (plugins write all sorts), and it
//! reads at most [`MAX_POINTS`] points, so hostile output costs little.

use serde::Serialize;

/// The most points read from one perfdata string.
pub const MAX_POINTS: usize = 64;

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub label: String,
    /// None for `U` (the plugin could not measure it).
    pub value: Option<f64>,
    /// The unit of measure: empty, `s`, `ms`, `us`, `%`, `B`, `KB`, `MB`, `TB`, `c`, or
    /// whatever the plugin wrote.
    pub uom: String,
    /// The thresholds as written (ranges such as `10:20` or `@5:10` are kept as text).
    pub warn: Option<String>,
    pub crit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Splits `text` into tokens at spaces outside single-quoted labels.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if quoted && chars.peek() == Some(&'\'') => {
                cur.push('\'');
                cur.push('\'');
                chars.next();
            }
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
        if out.len() >= MAX_POINTS {
            return out;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The label before `=`, unquoted, and the rest after it.
fn split_label(token: &str) -> Option<(String, &str)> {
    if let Some(rest) = token.strip_prefix('\'') {
        // The closing quote is the first single quote not doubled.
        let mut label = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().map(|(_, n)| *n) == Some('\'') {
                    label.push('\'');
                    chars.next();
                    continue;
                }
                let after = &rest[i + 1..];
                return after.strip_prefix('=').map(|v| (label, v));
            }
            label.push(c);
        }
        return None;
    }
    let (label, value) = token.split_once('=')?;
    (!label.is_empty()).then(|| (label.to_string(), value))
}

/// A number as plugins write it (a decimal comma is taken too).
fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    s.replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

fn point(token: &str) -> Option<Point> {
    let (label, rest) = split_label(token).filter(|(l, _)| !l.is_empty())?;
    let mut fields = rest.split(';');
    let value_uom = fields.next().unwrap_or("");
    let (value, uom) = if value_uom == "U" {
        (None, String::new())
    } else {
        let end = value_uom
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+' | 'e' | 'E')))
            .unwrap_or(value_uom.len());
        // "1e" or "5E" alone: the e is a unit's start, not an exponent.
        let (mut num, mut unit) = value_uom.split_at(end);
        while num.ends_with(['e', 'E']) {
            let cut = num.len() - 1;
            unit = &value_uom[cut..];
            num = &num[..cut];
        }
        (Some(number(num)?), unit.to_string())
    };
    let text = |f: Option<&str>| f.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    let warn = text(fields.next());
    let crit = text(fields.next());
    let min = fields.next().and_then(number);
    let max = fields.next().and_then(number);
    Some(Point {
        label,
        value,
        uom,
        warn,
        crit,
        min,
        max,
    })
}

/// The points of a perfdata string, in order; unreadable tokens are skipped.
pub fn parse(text: &str) -> Vec<Point> {
    tokens(text).iter().filter_map(|t| point(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_guidelines_forms_parse() {
        let p = parse("'/'=14%;80;90;0;100 time=0.005s;;;0.000000 'it''s'=U load1=0.62;3.0;6.0;0");
        assert_eq!(p.len(), 4);
        assert_eq!(
            (p[0].label.as_str(), p[0].value, p[0].uom.as_str()),
            ("/", Some(14.0), "%")
        );
        assert_eq!((p[0].warn.as_deref(), p[0].max), (Some("80"), Some(100.0)));
        assert_eq!(
            (p[1].value, p[1].uom.as_str(), p[1].min),
            (Some(0.005), "s", Some(0.0))
        );
        assert_eq!((p[2].label.as_str(), p[2].value), ("it's", None));
        assert_eq!(p[3].crit.as_deref(), Some("6.0"));
        assert!(parse("garbage == =x ''=1").is_empty());
        assert_eq!(parse("rta=1,5ms")[0].value, Some(1.5));
        assert_eq!(parse("size=3MB")[0].uom, "MB");
        assert_eq!(parse("x=5E")[0].uom, "E");
    }
}
