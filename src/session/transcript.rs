//! The transcript of a run: every byte sent and received by its sessions, with time and
//! direction, and with secrets masked.
//!
//! Secrets are registered before they are written ([`Transcript::add_secret`]), so the text of
//! `write_secret` and any echo of it come out as `********`. The transcript is capped, because a
//! 56 MB stream must not become a 56 MB history row; what is dropped is counted.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

/// The mask written in place of a secret.
pub use crate::redact::MASK;

/// The default cap on transcript text per run.
pub const DEFAULT_CAP: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    #[serde(rename = ">")]
    Sent,
    #[serde(rename = "<")]
    Received,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Milliseconds since the run started.
    pub t: u64,
    pub d: Direction,
    /// Which session of the run.
    pub s: u32,
    pub b: String,
}

#[derive(Debug)]
pub struct Transcript {
    start: Instant,
    entries: Vec<Entry>,
    kept: usize,
    cap: usize,
    elided: usize,
    secrets: Vec<String>,
}

/// A transcript shared by the sessions of one run.
pub type Sink = Arc<Mutex<Transcript>>;

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new(DEFAULT_CAP)
    }
}

impl Transcript {
    pub fn new(cap: usize) -> Transcript {
        Transcript {
            start: Instant::now(),
            entries: Vec::new(),
            kept: 0,
            cap,
            elided: 0,
            secrets: Vec::new(),
        }
    }

    pub fn sink(cap: usize) -> Sink {
        Arc::new(Mutex::new(Transcript::new(cap)))
    }

    /// Registers a secret: from now on it is masked wherever it appears.
    pub fn add_secret(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            // Longest first, so a secret containing another is masked whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every registered secret replaced by the mask.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// Records bytes that crossed a session. `secret` text is recorded as the mask only.
    pub fn record(&mut self, session: u32, d: Direction, data: &[u8], secret: bool) {
        if data.is_empty() {
            return;
        }
        if self.kept >= self.cap {
            self.elided += data.len();
            return;
        }
        let room = self.cap - self.kept;
        let (head, rest) = data.split_at(data.len().min(room));
        self.elided += rest.len();
        let text = if secret {
            MASK.to_string()
        } else {
            self.mask(&String::from_utf8_lossy(head))
        };
        self.kept += head.len();
        let t = self.start.elapsed().as_millis() as u64;
        match self.entries.last_mut() {
            // Received text joins the entry before it until the direction changes, so a secret
            // echoed across two reads is one string when it is masked (see `to_jsonl`).
            Some(last)
                if last.d == d
                    && last.s == session
                    && !secret
                    && (d == Direction::Received || last.t == t)
                    && last.b != MASK =>
            {
                last.b.push_str(&text)
            }
            _ => self.entries.push(Entry {
                t,
                d,
                s: session,
                b: text,
            }),
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The transcript as JSON lines, as stored in `runs.transcript`.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            let masked = Entry {
                b: self.mask(&e.b),
                ..e.clone()
            };
            if let Ok(line) = serde_json::to_string(&masked) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        if self.elided > 0 {
            out.push_str(&format!("{{\"elided\":{}}}\n", self.elided));
        }
        out
    }
}
