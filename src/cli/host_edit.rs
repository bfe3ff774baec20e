//! `hostler host edit NAME`: changes the fields given and keeps the rest, the stored password
//! included unless a new one is given or `--clear-password`.

use argh::FromArgs;

use super::host::read_password;
use super::{App, output};
use crate::store::{Method, NewHost};

/// change a host: only the fields given change (a tag or var list given replaces the old one;
/// --var NAME= removes one); the password stays unless a new one is given or --clear-password
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "edit",
    example = "hostler host edit web1 --address 192.0.2.11 --tag web --tag eu",
    example = "echo 'new-pass' | hostler host edit web1 --password-stdin"
)]
pub struct EditCmd {
    /// the host's name
    #[argh(positional)]
    pub name: String,
    /// a new address
    #[argh(option)]
    pub address: Option<String>,
    /// a new port
    #[argh(option)]
    pub port: Option<u16>,
    /// how to reach it: local, ssh, telnet or http
    #[argh(option)]
    pub method: Option<String>,
    /// the login user
    #[argh(option)]
    pub user: Option<String>,
    /// read a new password from the first line of stdin
    #[argh(switch)]
    pub password_stdin: bool,
    /// prompt for a new password on the terminal
    #[argh(switch)]
    pub ask_password: bool,
    /// remove the stored password
    #[argh(switch)]
    pub clear_password: bool,
    /// path of an SSH private key
    #[argh(option)]
    pub key: Option<String>,
    /// a regex matching the host's shell prompt
    #[argh(option)]
    pub prompt: Option<String>,
    /// the tags (repeatable; given, they replace the old ones)
    #[argh(option)]
    pub tag: Vec<String>,
    /// the site
    #[argh(option)]
    pub site: Option<String>,
    /// a script variable NAME=VALUE (repeatable; NAME= removes it)
    #[argh(option)]
    pub var: Vec<String>,
    /// log in afresh for every run
    #[argh(switch)]
    pub no_keep_session: bool,
    /// keep the session for the next run (the default)
    #[argh(switch)]
    pub keep_session: bool,
}

pub fn run(app: &App, cmd: EditCmd) -> anyhow::Result<u8> {
    if cmd.keep_session && cmd.no_keep_session {
        anyhow::bail!("use either --keep-session or --no-keep-session, not both");
    }
    if cmd.clear_password && (cmd.password_stdin || cmd.ask_password) {
        anyhow::bail!("--clear-password and a new password: choose one");
    }
    let method: Option<Method> = cmd
        .method
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let store = app.store()?;
    let old = store.host(&cmd.name)?;
    let mut vars = old.vars.clone();
    for v in &cmd.var {
        let (k, val) = v.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--var {v:?}: expected NAME=VALUE (NAME= removes it)")
        })?;
        if val.is_empty() {
            vars.remove(k);
        } else {
            vars.insert(k.to_string(), serde_json::Value::String(val.to_string()));
        }
    }
    // Ask before writing, so a failed prompt changes nothing.
    let secret = read_password(&cmd.name, cmd.password_stdin, cmd.ask_password)?;
    let host = store.update_host(
        &NewHost {
            name: old.name.clone(),
            address: cmd.address.unwrap_or(old.address),
            port: cmd.port.or(old.port),
            method: Some(method.unwrap_or(old.method)),
            username: cmd.user.or(old.username),
            secret,
            key_path: cmd.key.or(old.key_path),
            prompt: cmd.prompt.or(old.prompt),
            site: cmd.site.or(old.site),
            tags: if cmd.tag.is_empty() {
                old.tags
            } else {
                cmd.tag
            },
            vars,
            no_keep_session: if cmd.keep_session || cmd.no_keep_session {
                cmd.no_keep_session
            } else {
                !old.keep_session
            },
        },
        cmd.clear_password,
    )?;
    output::text(&format!(
        "changed host {} ({} {}{})",
        host.name,
        host.method,
        host.address,
        if host.has_secret {
            ", password stored"
        } else {
            ""
        }
    ))?;
    Ok(0)
}
