//! `hostler script upgrade [--dry-run] [NAME...]`: the bundled scripts whose stored copy
//! differs from this binary's, each shown as a line diff, and (without `--dry-run`) replaced
//! by the binary's (a new version of the script: the old one stays in its history). Nothing
//! changes unless asked: `hostler init` only says which differ.

use argh::FromArgs;

use super::{App, output};
use crate::bundled;
use crate::store::{NewScript, ScriptKind, Store};

/// replace bundled scripts that differ from this binary's copies (a diff first; --dry-run: only the diff)
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "upgrade",
    example = "hostler script upgrade --dry-run",
    example = "hostler script upgrade check_disk"
)]
pub struct UpgradeCmd {
    /// only show what would change
    #[argh(switch)]
    pub dry_run: bool,
    /// only these scripts (default: every bundled script that differs)
    #[argh(positional)]
    pub names: Vec<String>,
}

/// The bundled scripts whose stored copy differs from this binary's: (name, stored source).
pub fn differing(store: &Store) -> anyhow::Result<Vec<(&'static bundled::Bundled, String)>> {
    let stored = store.scripts()?;
    Ok(bundled::BUNDLED
        .iter()
        .filter_map(|b| {
            let s = stored.iter().find(|s| s.name == b.name)?;
            (s.source != b.source).then(|| (b, s.source.clone()))
        })
        .collect())
}

/// A line diff of `old` to `new` (`-` and `+` lines, with `@@ line N` before each change),
/// from their longest common subsequence. Scripts are short: the table is at most a few
/// hundred lines square.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        return format!(
            "(too long to compare: {} lines against {})\n",
            a.len(),
            b.len()
        );
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out, mut in_change) = (0, 0, String::new(), false);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
            in_change = false;
            continue;
        }
        if !in_change {
            out.push_str(&format!("@@ line {}\n", j + 1));
            in_change = true;
        }
        if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}

pub fn run(app: &App, cmd: UpgradeCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    for n in &cmd.names {
        if bundled::find(n).is_none() {
            anyhow::bail!("{n} is not a bundled script (see hostler script list)");
        }
    }
    let todo: Vec<_> = differing(&store)?
        .into_iter()
        .filter(|(b, _)| cmd.names.is_empty() || cmd.names.iter().any(|n| n == b.name))
        .collect();
    if todo.is_empty() {
        output::text("every bundled script is as this binary has it")?;
        return Ok(0);
    }
    for (b, stored) in &todo {
        output::text(&format!(
            "--- {} (stored)\n+++ {} (this binary)\n{}",
            b.name,
            b.name,
            diff(stored, b.source)
        ))?;
    }
    if cmd.dry_run {
        output::text(&format!(
            "{} script(s) differ; nothing changed (--dry-run)",
            todo.len()
        ))?;
        return Ok(0);
    }
    let scripts: Vec<NewScript<'_>> = todo
        .iter()
        .map(|(b, _)| {
            let (description, kind) = bundled::header(b.source);
            NewScript {
                name: b.name,
                source: b.source,
                description,
                kind: kind.unwrap_or(ScriptKind::Task),
            }
        })
        .collect();
    store.save_scripts(&scripts)?;
    output::text(&format!(
        "upgraded: {}",
        todo.iter()
            .map(|(b, _)| b.name)
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    Ok(0)
}
