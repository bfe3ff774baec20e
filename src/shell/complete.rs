//! The shell's line editor helper: completion of meta-commands, host names, script names, API
//! functions and methods; signature hints; and multi-line input while brackets are open.
//!
//! Completion is computed from plain data ([`Words`]) so it can be tested without a terminal.

use std::borrow::Cow;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

/// The meta-commands, with a one-line description each.
pub const META: &[(&str, &str)] = &[
    (":help", "this help"),
    (":hosts", "list hosts"),
    (":scripts", "list scripts"),
    (
        ":run",
        ":run SCRIPT [HOST]: run a stored script now and record it",
    ),
    (
        ":schedule",
        ":schedule SCRIPT --host H [--every 5m ...]: as `hostler schedule`",
    ),
    (":edit", ":edit SCRIPT: edit in $EDITOR, syntax-check, save"),
    (
        ":connect",
        ":connect HOST: an interactive session to the host (Ctrl-] returns here)",
    ),
    (":quit", "leave the shell (Ctrl-D too)"),
];

/// What can be completed, refreshed by the shell before each prompt.
#[derive(Debug, Clone, Default)]
pub struct Words {
    pub hosts: Vec<String>,
    pub scripts: Vec<String>,
    /// Function names with their signatures, from the engine.
    pub functions: Vec<(String, String)>,
    /// Variables in the shell's scope.
    pub variables: Vec<String>,
}

const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "while", "loop", "for", "in", "return", "break",
    "continue", "import", "true", "false", "switch", "throw", "try", "catch",
];

fn pairs<'a>(items: impl Iterator<Item = &'a String>, prefix: &str, suffix: &str) -> Vec<Pair> {
    let mut v: Vec<Pair> = items
        .filter(|w| w.starts_with(prefix))
        .map(|w| Pair {
            display: w.clone(),
            replacement: format!("{w}{suffix}"),
        })
        .collect();
    v.sort_by(|a, b| a.display.cmp(&b.display));
    v.dedup_by(|a, b| a.display == b.display);
    v
}

/// Whether the cursor is inside a string literal, and where that literal's text starts.
fn open_string(before: &str) -> Option<usize> {
    let mut start = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        match (c, start) {
            ('\\', Some(_)) if !escaped => {
                escaped = true;
                continue;
            }
            ('"', None) => start = Some(i + 1),
            ('"', Some(_)) if !escaped => start = None,
            _ => {}
        }
        escaped = false;
    }
    start
}

impl Words {
    /// Completes `line` at `pos`: the start of the replaced text, and the candidates.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let before = &line[..pos];
        // Meta-commands and their arguments.
        if before.starts_with(':') {
            let words: Vec<&str> = before.split_whitespace().collect();
            let at_new_word = before.ends_with(' ');
            let start = if at_new_word {
                pos
            } else {
                before.rfind(' ').map_or(0, |i| i + 1)
            };
            let partial = &before[start..];
            let index = if at_new_word {
                words.len()
            } else {
                words.len().saturating_sub(1)
            };
            if index == 0 {
                let names: Vec<String> = META.iter().map(|(m, _)| m.to_string()).collect();
                return (start, pairs(names.iter(), partial, " "));
            }
            let list = match (words[0], index) {
                (":run" | ":edit" | ":schedule", 1) => &self.scripts,
                (":run", 2) | (":connect", 1) => &self.hosts,
                _ => return (pos, Vec::new()),
            };
            return (start, pairs(list.iter(), partial, " "));
        }
        // Inside a string: script names after `import`, host names elsewhere.
        if let Some(start) = open_string(before) {
            let partial = &before[start..];
            let prefix = before[..start - 1].trim_end();
            let list = if prefix.ends_with("import") {
                &self.scripts
            } else {
                &self.hosts
            };
            return (start, pairs(list.iter(), partial, "\""));
        }
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| {
                i + before[i..].chars().next().map_or(1, char::len_utf8)
            });
        let partial = &before[start..];
        let after_dot = before[..start].ends_with('.');
        let fns = self.functions.iter().map(|(n, _)| n);
        if after_dot {
            // Methods: any function that takes a receiver.
            let methods: Vec<String> = self
                .functions
                .iter()
                .filter(|(_, sig)| !sig.contains("()"))
                .map(|(n, _)| n.clone())
                .collect();
            return (start, pairs(methods.iter(), partial, ""));
        }
        if partial.is_empty() {
            return (pos, Vec::new());
        }
        let keywords: Vec<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
        let all: Vec<&String> = fns
            .chain(self.variables.iter())
            .chain(keywords.iter())
            .collect();
        (start, pairs(all.into_iter(), partial, ""))
    }

    /// The signature of the function whose call is being typed, as a hint.
    pub fn hint(&self, line: &str, pos: usize) -> Option<String> {
        if pos < line.len() || open_string(line).is_some() {
            return None;
        }
        let name_end = line.strip_suffix('(').map(str::len)?;
        let name_start = line[..name_end]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &line[name_start..name_end];
        let sigs: Vec<&String> = self
            .functions
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| s)
            .collect();
        (!sigs.is_empty()).then(|| {
            format!(
                "  {}",
                sigs.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("  |  ")
            )
        })
    }
}

/// Whether the input is complete: every bracket, brace and parenthesis closed, outside strings
/// and comments.
pub fn is_complete(input: &str) -> bool {
    let mut depth = 0i64;
    let mut in_string = false;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    depth <= 0 && !in_string
}

/// The rustyline helper.
pub struct ShellHelper {
    pub words: Words,
}

impl Completer for ShellHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.words.complete(line, pos))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, _: &Context<'_>) -> Option<String> {
        self.words.hint(line, pos)
    }
}

impl Highlighter for ShellHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for ShellHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for ShellHelper {}
