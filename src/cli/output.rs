//! Printing: aligned tables for people, JSON for scripts, local times. Every write goes through
//! `?`, so a closed pipe ends the command quietly instead of panicking.

use std::io::{self, Write};

use serde::Serialize;

/// Prints a value as pretty JSON.
pub fn json(v: &impl Serialize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints a value as one line of JSON (JSON Lines, for streams of records).
pub fn line_json(v: &impl Serialize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Prints rows as columns aligned under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
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
    for r in rows {
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
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    if !s.is_empty() && !s.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(())
}

/// Epoch milliseconds as local time.
pub fn time(ms: i64) -> String {
    crate::web::pages::time(ms)
}

pub fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}
