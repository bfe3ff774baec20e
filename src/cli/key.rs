//! `hostler key rotate|show`: the key that seals host secrets at rest (see `store::vault`).

use argh::FromArgs;

use super::{App, output};

/// the key that seals the hosts' stored secrets: where it is, and a new one
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "key")]
pub struct KeyCmd {
    #[argh(subcommand)]
    pub action: KeyAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum KeyAction {
    Rotate(RotateCmd),
    Show(ShowCmd),
}

/// make a new key and re-seal every stored secret with it (the old key file is replaced
/// once the database has committed; back up the new one with the database)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rotate")]
pub struct RotateCmd {}

/// print where the key file is and the id of the key that seals now
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct ShowCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

pub fn run(app: &App, cmd: KeyCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    let path = store
        .vault
        .key_path()
        .map_or_else(|| "(memory)".to_string(), |p| p.display().to_string());
    match cmd.action {
        KeyAction::Rotate(_) => {
            let (n, id) = store.rotate_key()?;
            output::text(&format!(
                "re-sealed {n} host secrets with key {id} in {path}; back up that file with the database"
            ))?;
        }
        KeyAction::Show(c) => {
            let id = match store.vault.key_id() {
                Ok(id) => Some(id),
                Err(_) if !store.vault.key_path().is_some_and(|p| p.exists()) => None,
                Err(e) => return Err(e.into()),
            };
            if c.json {
                output::json(&serde_json::json!({ "path": path, "key_id": id }))?;
            } else {
                output::text(&format!(
                    "key file {path}: {}",
                    id.map_or("not made yet (no secret stored)".into(), |i| format!(
                        "key {i}"
                    ))
                ))?;
            }
        }
    }
    Ok(0)
}
