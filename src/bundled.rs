//! The script library bundled from `scripts/` by build.rs. `init` and the first `serve` seed it
//! into the database; `import` falls back to it when the database has no script of a name.
//!
//! A script's leading `//!` lines describe it: the first is its description, and a line
//! `//! kind: check` (library, check, fix or task) sets its kind.

use crate::store::ScriptKind;

/// A script compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    pub name: &'static str,
    pub source: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

pub fn find(name: &str) -> Option<&'static Bundled> {
    BUNDLED.iter().find(|b| b.name == name)
}

/// The description and kind declared in a script's leading `//!` lines.
pub fn header(source: &str) -> (Option<String>, Option<ScriptKind>) {
    let mut description = None;
    let mut kind = None;
    for line in source
        .lines()
        .map(str::trim)
        .take_while(|l| l.starts_with("//!"))
    {
        let text = line.trim_start_matches("//!").trim();
        if let Some(k) = text.strip_prefix("kind:") {
            kind = k.trim().parse().ok();
        } else if description.is_none() && !text.is_empty() {
            description = Some(text.to_string());
        }
    }
    (description, kind)
}
