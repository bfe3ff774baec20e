//! `hostler user add|list|rm|token`: the web page's users and their API tokens. A password
//! comes from a prompt (asked twice) or stdin, never argv; a token is printed once and only
//! its hash is stored.

use std::io::{BufRead, IsTerminal};

use argh::FromArgs;

use super::{App, output};
use crate::store::Role;
use crate::web::auth;

/// manage the web page's users and API tokens
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "user")]
pub struct UserCmd {
    #[argh(subcommand)]
    pub action: UserAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum UserAction {
    Add(AddCmd),
    List(ListCmd),
    Rm(RmCmd),
    Token(TokenCmd),
    Unlock(UnlockCmd),
}

/// lift the login brake on a user name: failed logins from any address stop delaying it (a
/// running `hostler serve` sees this at the next try)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "unlock")]
pub struct UnlockCmd {
    /// the user name
    #[argh(positional)]
    pub name: String,
}

/// add a web user, or (with --replace) set an existing user's password
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct AddCmd {
    /// the user name to log in with
    #[argh(positional)]
    pub name: String,
    /// read the password from the first line of stdin (else it is asked for, twice)
    #[argh(switch)]
    pub password_stdin: bool,
    /// admin (everything), operator (schedule, cancel) or viewer (look only); default admin
    #[argh(option, default = "String::from(\"admin\")")]
    pub role: String,
    /// set the password of a user that exists (its role is kept)
    #[argh(switch)]
    pub replace: bool,
}

/// list web users
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// remove a web user (and its API tokens)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rm")]
pub struct RmCmd {
    #[argh(positional)]
    pub name: String,
}

/// make an API token for a user: send it as `Authorization: Bearer TOKEN` to /api/
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "token")]
pub struct TokenCmd {
    /// the user the token acts as
    #[argh(positional)]
    pub name: String,
    /// what the token is for, such as the tool that uses it
    #[argh(option, default = "String::from(\"api\")")]
    pub label: String,
}

fn read_password(cmd: &AddCmd) -> anyhow::Result<String> {
    let pw = if cmd.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password(format!("password for {}: ", cmd.name))?;
        let b = rpassword::prompt_password("again: ")?;
        if a != b {
            anyhow::bail!("the passwords differ; nothing was changed");
        }
        a
    } else {
        anyhow::bail!("stdin is not a terminal: use --password-stdin to pipe the password");
    };
    if pw.chars().count() < 8 {
        anyhow::bail!("the password is too short: use at least 8 characters");
    }
    Ok(pw)
}

pub fn run(app: &App, cmd: UserCmd) -> anyhow::Result<u8> {
    match cmd.action {
        UserAction::Add(c) => {
            let role: Role = c.role.parse().map_err(anyhow::Error::msg)?;
            let store = app.store()?;
            if !c.replace && store.find_user(&c.name)?.is_some() {
                anyhow::bail!(
                    "user {:?} already exists; use --replace to set its password",
                    c.name
                );
            }
            let pw = read_password(&c)?;
            store.add_user(&c.name, &auth::hash_password(&pw)?, role, c.replace)?;
            output::text(&format!(
                "{} user {}",
                if c.replace { "updated" } else { "added" },
                c.name
            ))?;
        }
        UserAction::List(c) => {
            let users = app.store()?.users()?;
            if c.json {
                output::json(&users)?;
            } else {
                let rows: Vec<_> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.role.to_string(),
                            output::time(u.created_at),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "ROLE", "CREATED"], &rows)?;
            }
        }
        UserAction::Rm(c) => {
            app.store()?.remove_user(&c.name)?;
            output::text(&format!("removed user {}", c.name))?;
        }
        UserAction::Unlock(c) => {
            let store = app.store()?;
            if store.find_user(&c.name)?.is_none() {
                anyhow::bail!("no user {:?} (hostler user list shows them)", c.name);
            }
            store.set_setting(
                &auth::unlock_key(&c.name),
                &crate::store::now_ms().to_string(),
            )?;
            output::text(&format!(
                "unlocked {}: its next login is checked at once",
                c.name
            ))?;
        }
        UserAction::Token(c) => {
            let token = auth::new_token(&*app.store()?, &c.name, &c.label)?;
            output::text(&token)?;
            eprintln!(
                "an API token for {} ({}): it is shown only this once",
                c.name, c.label
            );
        }
    }
    Ok(0)
}
