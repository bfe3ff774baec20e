//! The script library bundled from `scripts/` by build.rs. `init` and the first `serve` seed it
//! into the database; `import` falls back to it when the database has no script of a name.
//!
//! A script's leading `//!` lines describe it: the first is its description, a line
//! `//! kind: check` (library, check, fix or task) sets its kind, and each
//! `//! arg NAME = DEFAULT: what it is` (or `//! arg NAME (required): ...`) documents an
//! argument, for `hostler script show` and the schedule form. An argument declared
//! `(command)` (`(required, command)`) is a command to run: only an admin may give it.

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

/// One argument a script documents in its header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArgDoc {
    pub name: String,
    /// The default, as written (None: no default).
    pub default: Option<String>,
    pub required: bool,
    /// Declared `(command)`: its value is a command to run, which only an admin may give.
    pub command: bool,
    pub help: String,
}

/// The arguments a script's leading `//!` lines document, in order.
pub fn arguments(source: &str) -> Vec<ArgDoc> {
    source
        .lines()
        .map(str::trim)
        .take_while(|l| l.starts_with("//!"))
        .filter_map(|l| l.trim_start_matches("//!").trim().strip_prefix("arg "))
        .filter_map(|rest| {
            let (spec, help) = rest.split_once(':')?;
            // Flags in one trailing parenthesis: `(required)`, `(command)`, `(required, command)`.
            let (spec, flags) = match spec
                .trim()
                .strip_suffix(')')
                .and_then(|s| s.rsplit_once('('))
            {
                Some((s, flags)) => (s.trim(), flags.split(',').map(str::trim).collect()),
                None => (spec.trim(), Vec::new()),
            };
            let required = flags.contains(&"required");
            let command = flags.contains(&"command");
            let (name, default) = match spec.split_once('=') {
                Some((n, d)) => (n.trim(), Some(d.trim().to_string())),
                None => (spec, None),
            };
            let good =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            good.then(|| ArgDoc {
                name: name.to_string(),
                default,
                required,
                command,
                help: help.trim().to_string(),
            })
        })
        .collect()
}
