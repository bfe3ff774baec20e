//! `hostler apply FILE` and `hostler export`: the site as code. apply prints the plan, one
//! line per change, then carries it out in one transaction; export writes the site file.

use argh::FromArgs;
use serde_json::json;

use super::{App, output};
use crate::site::plan::{Action, Plan};

/// make the database what a site file says: print the plan, then apply it all or nothing
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "apply",
    example = "hostler apply site.toml --dry-run     # in review: what would change",
    example = "hostler apply site.toml               # after merge",
    example = "hostler apply sites/ --prune          # a folder of .toml files; remove what they no longer name",
    note = "The plan has a line per change: + made, ~ changed in place (a check keeps its state, acknowledgement and failing-since), - removed. What the file does not name (made by hand, or dropped from the file) is removed only with --prune; without it, the plan lists it. A second apply of the same file changes nothing. A bad file is refused whole, naming the file, line and key; nothing is written. A running hostler serve follows at its next pass."
)]
pub struct ApplyCmd {
    /// the site file, or a folder of them
    #[argh(positional)]
    pub file: std::path::PathBuf,
    /// print the plan and change nothing
    #[argh(switch)]
    pub dry_run: bool,
    /// remove what the file does not name
    #[argh(switch)]
    pub prune: bool,
    /// print JSON: {"changes", "held", "managed", "applied", "heartbeats"}
    #[argh(switch)]
    pub json: bool,
}

/// write the whole site (hosts without secrets, checks, dependencies, heartbeats) as a site file
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "export",
    example = "hostler export > site.toml && git add site.toml"
)]
pub struct ExportCmd {
    /// print the same as JSON
    #[argh(switch)]
    pub json: bool,
}

fn print_plan(plan: &Plan, prune: bool) -> anyhow::Result<()> {
    let mut lines: Vec<String> = plan.changes.iter().map(|c| c.line()).collect();
    if !plan.held.is_empty() && !prune {
        lines.push(format!(
            "# not in the file, left alone (give --prune to remove): {}",
            plan.held.len()
        ));
        lines.extend(plan.held.iter().map(|c| format!("#   {}", c.line())));
    }
    let count = |a: Action| plan.changes.iter().filter(|c| c.action == a).count();
    lines.push(format!(
        "plan: {} to add, {} to change, {} to remove; the file manages {} objects",
        count(Action::Add),
        count(Action::Change),
        count(Action::Remove),
        plan.managed
    ));
    output::text(&lines.join("\n"))
}

pub fn apply(app: &App, cmd: ApplyCmd) -> anyhow::Result<u8> {
    let site = crate::site::file::load(&cmd.file)?;
    // A script that does not compile is refused before anything is planned, as `hostler
    // script add` refuses it.
    for s in &site.scripts {
        crate::script::check_syntax(&s.name, &s.source).map_err(|e| {
            anyhow::anyhow!(
                "{}: script {}: {e}; nothing changed",
                cmd.file.display(),
                s.name
            )
        })?;
    }
    let store = app.store()?;
    let shown = cmd.file.display();
    let plan = crate::site::plan::plan(&store, &site, cmd.prune, &|v| std::env::var(v).ok())
        .map_err(|e| match e {
            crate::site::SiteError::Invalid(m) => anyhow::anyhow!("{shown}: {m}; nothing changed"),
            other => other.into(),
        })?;
    let base = app
        .config
        .web
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", app.config.web.listen));
    let mut beats = Vec::new();
    let mut held_ms = None;
    let applied = !cmd.dry_run && !plan.ops().is_empty();
    if applied {
        let done = store.apply_site(&plan.ops())?;
        held_ms = Some(done.held_ms);
        for (name, host, token) in done.tokens {
            beats.push(json!({
                "name": name,
                "host": host,
                "url": format!("{}/ping/{token}", base.trim_end_matches('/')),
            }));
        }
    }
    if cmd.json {
        output::json(&json!({
            "changes": plan.changes,
            "held": plan.held,
            "managed": plan.managed,
            "applied": applied,
            "transaction_ms": held_ms,
            "heartbeats": beats,
        }))?;
        return Ok(0);
    }
    if plan.changes.is_empty() {
        let mut text = format!(
            "no change: the database is as {} says ({} objects managed)",
            cmd.file.display(),
            plan.managed
        );
        if !plan.held.is_empty() {
            text.push_str(&format!(
                "\n# not in the file, left alone (give --prune to remove): {}",
                plan.held
                    .iter()
                    .map(|c| c.line())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        output::text(&text)?;
        return Ok(0);
    }
    print_plan(&plan, cmd.prune)?;
    if cmd.dry_run {
        output::text("dry run: nothing changed")?;
    } else if !plan.changes.is_empty() {
        output::text(&format!(
            "applied {} changes in one transaction ({} ms)",
            plan.changes.len(),
            held_ms.unwrap_or_default()
        ))?;
    }
    for b in beats {
        output::text(&format!(
            "heartbeat {}: ping {} (the token is shown only now)",
            b["name"].as_str().unwrap_or_default(),
            b["url"].as_str().unwrap_or_default()
        ))?;
    }
    Ok(0)
}

pub fn export(app: &App, cmd: ExportCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    let text = crate::site::export::export(
        &store.hosts()?,
        &store.schedules()?,
        &store.dependencies()?,
        &store.heartbeats()?,
        &store.recurring_downtimes()?,
    );
    if cmd.json {
        let v: toml::Table = toml::from_str(&text)?;
        output::json(&v)?;
    } else {
        print!("{text}");
    }
    Ok(0)
}
