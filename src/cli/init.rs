//! `hostler init`: create or upgrade the database and seed the bundled scripts; or print the
//! DDL of a dialect for a DBA.

use argh::FromArgs;

use super::{App, output};
use crate::bundled;
use crate::sql::Dialect;
use crate::store::{Method, NewHost, NewScript, ScriptKind, Store};

/// create or upgrade the database, add the bundled scripts it lacks, and (on a database with
/// no hosts) a `localhost` host reached as local processes
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "init")]
pub struct InitCmd {
    /// print the schema's DDL for a dialect (sqlite, mssql2000, mssql2005, postgres, mysql)
    /// instead of touching a database
    #[argh(option)]
    pub print_ddl: Option<String>,
}

/// Adds the bundled scripts the database lacks; returns their names.
pub fn seed(store: &Store) -> anyhow::Result<Vec<String>> {
    let scripts: Vec<NewScript<'_>> = bundled::BUNDLED
        .iter()
        .map(|b| {
            let (description, kind) = bundled::header(b.source);
            NewScript {
                name: b.name,
                source: b.source,
                description,
                kind: kind.unwrap_or(ScriptKind::Task),
            }
        })
        .collect();
    Ok(store.seed_scripts(&scripts)?)
}

/// The `localhost` host, reached as local processes: what the demo and a first `init` add.
pub fn add_localhost(store: &Store) -> anyhow::Result<()> {
    store.add_host(&NewHost {
        name: "localhost".into(),
        address: "127.0.0.1".into(),
        method: Some(Method::Local),
        ..NewHost::default()
    })?;
    Ok(())
}

pub fn run(app: &App, cmd: InitCmd) -> anyhow::Result<u8> {
    if let Some(d) = cmd.print_ddl {
        let dialect: Dialect = d.parse().map_err(anyhow::Error::msg)?;
        let schema = crate::store::schema()?;
        output::text(&schema.ddl_script(dialect))?;
        return Ok(0);
    }
    let store = app.store()?;
    let added = seed(&store)?;
    if store.hosts()?.is_empty() {
        add_localhost(&store)?;
        output::text("added host localhost (local processes on this machine)")?;
    }
    // Nothing changes silently: a bundled script this binary has newer is only named.
    let stale = super::upgrade::differing(&store)?;
    if !stale.is_empty() {
        output::text(&format!(
            "bundled scripts that differ from this binary's copies: {} (see hostler script upgrade --dry-run)",
            stale
                .iter()
                .map(|(b, _)| b.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
    }
    let version = crate::store::schema()?.version;
    if added.is_empty() {
        output::text(&format!(
            "{}: schema version {version}; bundled scripts already present",
            app.shown_db()
        ))?;
    } else {
        output::text(&format!(
            "{}: schema version {version}; added bundled scripts: {}",
            app.shown_db(),
            added.join(", ")
        ))?;
    }
    Ok(0)
}
