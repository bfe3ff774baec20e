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
    /// set the password of a user that exists (its role is kept; its API tokens end)
    #[argh(switch)]
    pub replace: bool,
    /// with --replace: keep the user's API tokens working
    #[argh(switch)]
    pub keep_tokens: bool,
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

/// API tokens for scripts and tools: add (printed once), list, rm
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "token")]
pub struct TokenCmd {
    #[argh(subcommand)]
    pub action: TokenAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum TokenAction {
    Add(TokenAddCmd),
    List(TokenListCmd),
    Rm(TokenRmCmd),
}

/// make an API token for a user: send it as `Authorization: Bearer TOKEN` to /api/
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct TokenAddCmd {
    /// the user the token acts as
    #[argh(positional)]
    pub name: String,
    /// what the token is for, such as the tool that uses it
    #[argh(option, default = "String::from(\"api\")")]
    pub label: String,
}

/// list API tokens (their ids, users, labels and last use; never their values)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct TokenListCmd {
    /// only this user's
    #[argh(positional)]
    pub name: Option<String>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// revoke an API token by the id `hostler user token list` shows
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rm")]
pub struct TokenRmCmd {
    #[argh(positional)]
    pub id: i64,
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
            let ended = if c.replace && !c.keep_tokens {
                store.tokens(Some(&c.name))?.len()
            } else {
                0
            };
            store.set_user(
                &c.name,
                &auth::hash_password(&pw)?,
                role,
                c.replace,
                c.keep_tokens,
            )?;
            if c.replace {
                crate::web::account::password_changed(&store, &c.name);
            }
            output::text(&format!(
                "{} user {}{}",
                if c.replace { "updated" } else { "added" },
                c.name,
                if ended > 0 {
                    format!(" ({ended} API tokens ended; --keep-tokens keeps them)")
                } else {
                    String::new()
                }
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
        UserAction::Token(c) => token(app, c)?,
    }
    Ok(0)
}

fn token(app: &App, cmd: TokenCmd) -> anyhow::Result<()> {
    let store = app.store()?;
    match cmd.action {
        TokenAction::Add(c) => {
            let token = auth::new_token(&store, &c.name, &c.label)?;
            output::text(&token)?;
            eprintln!(
                "an API token for {} ({}): it is shown only this once",
                c.name, c.label
            );
        }
        TokenAction::List(c) => {
            let tokens = store.tokens(c.name.as_deref())?;
            if c.json {
                output::json(&tokens)?;
            } else {
                let rows: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            t.user.clone(),
                            t.label.clone(),
                            output::time(t.created_at),
                            t.last_used_at.map_or("never".into(), output::time),
                        ]
                    })
                    .collect();
                output::table(&["ID", "USER", "LABEL", "CREATED", "LAST USED"], &rows)?;
            }
        }
        TokenAction::Rm(c) => {
            store.remove_token(c.id)?;
            output::text(&format!("revoked token {}", c.id))?;
        }
    }
    Ok(())
}
