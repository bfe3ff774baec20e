//! Printing: aligned tables for people, JSON for scripts, local times. Every write goes through
//! `?`, so a closed pipe ends the command quietly instead of panicking. Text from runs and
//! hosts is printed with its control characters made visible (`\x1b`), unless `--raw`.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static RAW: AtomicBool = AtomicBool::new(false);

/// `--raw`: print control characters as they are.
pub fn set_raw(raw: bool) {
    RAW.store(raw, Ordering::Relaxed);
}

/// Text with every control character but line feed and tab shown as an escape (`\x1b`,
/// `\r`, `\u{9b}`), so an escape sequence from a monitored host cannot retitle, clear or
/// rewrite the operator's terminal.
pub fn visible(s: &str) -> Cow<'_, str> {
    let shown = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if RAW.load(Ordering::Relaxed) || s.chars().all(shown) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            c if shown(c) => out.push(c),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

use serde::Serialize;

/// Prints a value as pretty JSON.
pub fn json(v: &impl Serialize) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(v)?;
    crate::when::json_times(&mut v);
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints a value as JSON exactly as it serializes (`hostler sql`: the database's own values).
pub fn json_as_is(v: &impl Serialize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints a value as one line of JSON (JSON Lines, for streams of records).
pub fn line_json(v: &impl Serialize) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(v)?;
    crate::when::json_times(&mut v);
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, &v)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Prints rows as columns aligned under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| visible(c).replace('\n', "\\n")).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = io::stdout().lock();
    let line = |cells: Vec<&str>| -> String {
        let n = cells.len();
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(header.to_vec()).trim_end())?;
    for r in &rows {
        writeln!(
            out,
            "{}",
            line(r.iter().map(String::as_str).collect()).trim_end()
        )?;
    }
    Ok(())
}

/// Prints lines of text.
pub fn text(s: &str) -> anyhow::Result<()> {
    let s = visible(s);
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    if !s.is_empty() && !s.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(())
}

/// Epoch milliseconds as local time.
pub fn time(ms: i64) -> String {
    crate::when::local(ms)
}

pub fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}
