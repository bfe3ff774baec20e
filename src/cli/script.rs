//! `hostler script add|list|show|rm|import|export`. Every save is syntax-checked first, so a
//! broken script never reaches the database.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use argh::FromArgs;

use super::{App, output};
use crate::bundled;
use crate::script::check_syntax;
use crate::store::{NewScript, ScriptKind};

/// manage scripts
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "script")]
pub struct ScriptCmd {
    #[argh(subcommand)]
    pub action: ScriptAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum ScriptAction {
    Add(AddCmd),
    List(ListCmd),
    Show(ShowCmd),
    Rm(RmCmd),
    Import(ImportCmd),
    Export(ExportCmd),
    Upgrade(super::upgrade::UpgradeCmd),
}

/// add a script, or replace it (its version goes up)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct AddCmd {
    /// the script's name, as `run` and `import` refer to it
    #[argh(positional)]
    pub name: String,
    /// the Rhai source file, or - for stdin
    #[argh(positional)]
    pub file: String,
    /// library, check, fix or task (default: the file's `//! kind:` line, else task)
    #[argh(option)]
    pub kind: Option<String>,
    /// a one-line description (default: the file's first `//!` line)
    #[argh(option)]
    pub description: Option<String>,
}

/// list scripts
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// print a script's source (its header documents its arguments; --json lists them)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct ShowCmd {
    /// the script's name
    #[argh(positional)]
    pub name: String,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// remove a script with its schedules (refused while it has queued or running jobs; its run
/// history stays)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rm")]
pub struct RmCmd {
    /// the script's name
    #[argh(positional)]
    pub name: String,
}

/// add every DIR/*.rhai as a script named by its file stem, all or nothing
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct ImportCmd {
    /// the folder to read
    #[argh(positional)]
    pub dir: PathBuf,
}

/// write every script to DIR/NAME.rhai
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
pub struct ExportCmd {
    /// the folder to write (created if missing)
    #[argh(positional)]
    pub dir: PathBuf,
}

fn read_source(file: &str) -> anyhow::Result<String> {
    if file == "-" || file == "/dev/stdin" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the script from stdin")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))
    }
}

fn new_script<'a>(
    name: &'a str,
    source: &'a str,
    kind: Option<&str>,
    description: Option<String>,
) -> anyhow::Result<NewScript<'a>> {
    check_syntax(name, source)?;
    let (desc, header_kind) = bundled::header(source);
    let kind = match kind {
        Some(k) => k.parse().map_err(anyhow::Error::msg)?,
        None => header_kind.unwrap_or(ScriptKind::Task),
    };
    Ok(NewScript {
        name,
        source,
        description: description.or(desc),
        kind,
    })
}

fn import(app: &App, dir: &Path) -> anyhow::Result<u8> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("{} holds no *.rhai files", dir.display());
    }
    let mut loaded = Vec::new();
    for f in &files {
        let name = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let source =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        loaded.push((name, source));
    }
    // Check everything before writing anything.
    let scripts = loaded
        .iter()
        .map(|(n, s)| new_script(n, s, None, None))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let versions = app.store()?.save_scripts(&scripts)?;
    for (s, v) in scripts.iter().zip(versions) {
        output::text(&format!("imported {} (version {v})", s.name))?;
    }
    Ok(0)
}

fn export(app: &App, dir: &Path) -> anyhow::Result<u8> {
    let scripts = app.store()?.scripts()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for s in &scripts {
        let path = dir.join(format!("{}.rhai", s.name));
        std::fs::write(&path, &s.source)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    output::text(&format!(
        "exported {} scripts to {}",
        scripts.len(),
        dir.display()
    ))?;
    Ok(0)
}

pub fn run(app: &App, cmd: ScriptCmd) -> anyhow::Result<u8> {
    match cmd.action {
        ScriptAction::Upgrade(c) => super::upgrade::run(app, c),
        ScriptAction::Add(c) => {
            let source = read_source(&c.file)?;
            let script = new_script(&c.name, &source, c.kind.as_deref(), c.description)?;
            let v = app.store()?.save_scripts(&[script])?;
            output::text(&format!(
                "saved script {} (version {})",
                c.name,
                v.first().copied().unwrap_or(1)
            ))?;
            Ok(0)
        }
        ScriptAction::List(c) => {
            let scripts = app.store()?.scripts()?;
            if c.json {
                let list: Vec<_> = scripts
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "kind": s.kind, "version": s.version,
                            "description": s.description, "updated_at": s.updated_at,
                        })
                    })
                    .collect();
                output::json(&list)?;
            } else {
                let rows: Vec<_> = scripts
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.kind.as_str().into(),
                            s.version.to_string(),
                            output::time(s.updated_at),
                            output::opt(&s.description),
                        ]
                    })
                    .collect();
                output::table(
                    &["NAME", "KIND", "VERSION", "UPDATED", "DESCRIPTION"],
                    &rows,
                )?;
            }
            Ok(0)
        }
        ScriptAction::Show(c) => {
            let s = app.store()?.script(&c.name)?;
            if c.json {
                // The arguments its header documents, read as the schedule form reads them.
                let mut v = serde_json::to_value(&s)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "arguments".into(),
                        serde_json::to_value(crate::bundled::arguments(&s.source))?,
                    );
                }
                output::json(&v)?;
            } else {
                output::text(&s.source)?;
            }
            Ok(0)
        }
        ScriptAction::Rm(c) => {
            app.store()?.remove_script(&c.name)?;
            output::text(&format!("removed script {}", c.name))?;
            Ok(0)
        }
        ScriptAction::Import(c) => import(app, &c.dir),
        ScriptAction::Export(c) => export(app, &c.dir),
    }
}
