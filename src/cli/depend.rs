//! `hostler depend add|list|rm`: which checks stand behind which, so that when a router goes
//! down the hosts behind it are marked unreachable instead of fixed and told one by one.

use argh::FromArgs;

use super::{App, output};
use crate::store::NewDependency;
use crate::store::depends::parse_target;

/// dependencies: a check behind a parent that is down is unreachable, neither fixed nor told
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "depend")]
pub struct DependCmd {
    #[argh(subcommand)]
    pub action: DependAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum DependAction {
    Add(AddCmd),
    List(ListCmd),
    Rm(RmCmd),
}

/// make a host (all its checks) or one check depend on a parent check
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "add",
    example = "hostler depend add web1 --on r1/check_ping",
    example = "hostler depend add web1/check_http --on web1/check_ping",
    example = "hostler depend add db1 --on sw1/check_ping --group uplinks\nhostler depend add db1 --on sw2/check_ping --group uplinks",
    note = "While the parent is in a hard problem, the child's failing checks still run and record, but are neither fixed nor told: they show as unreachable. Parents in one --group are redundant: the child is cut off only when all of them are down. When the parent recovers, its children that still fail are checked at once, and only those go on to a fix and a message."
)]
pub struct AddCmd {
    /// the child: HOST (each of its checks) or HOST/CHECK
    #[argh(positional)]
    pub child: String,
    /// the parent check: HOST/CHECK
    #[argh(option)]
    pub on: String,
    /// a group of redundant parents: the child is cut off only when all are down
    #[argh(option)]
    pub group: Option<String>,
}

/// list the dependencies
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// remove a dependency: by its id, or as it was added (CHILD --on PARENT/CHECK)
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "rm",
    example = "hostler depend rm web1 --on r1/check_ping",
    example = "hostler depend rm 4"
)]
pub struct RmCmd {
    /// the dependency's id (see hostler depend list), or its child
    #[argh(positional)]
    pub child: String,
    /// the parent check, when the child is named
    #[argh(option)]
    pub on: Option<String>,
}

pub fn run(app: &App, cmd: DependCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    match cmd.action {
        DependAction::Add(c) => {
            let (child_host, child_check) = parse_target(&c.child, true)?;
            let (parent_host, parent_check) = parse_target(&c.on, false)?;
            let d = NewDependency {
                child_host,
                child_check,
                parent_host,
                parent_check: parent_check.unwrap_or_default(),
                group: c.group,
                author: Some(super::downtime::author()),
            };
            let id = store.add_dependency(&d)?;
            output::text(&format!(
                "dependency {id}: {} depends on {}/{}{}",
                c.child.trim(),
                d.parent_host,
                d.parent_check,
                d.group
                    .as_deref()
                    .map(|g| format!(" (group {g})"))
                    .unwrap_or_default()
            ))?;
        }
        DependAction::List(c) => {
            let list = store.dependencies()?;
            if c.json {
                output::json(&list)?;
                return Ok(0);
            }
            let rows: Vec<_> = list
                .iter()
                .map(|d| {
                    vec![
                        d.id.to_string(),
                        d.child(),
                        d.parent(),
                        output::opt(&d.group),
                        output::opt(&d.author),
                    ]
                })
                .collect();
            output::table(&["ID", "CHILD", "ON", "GROUP", "BY"], &rows)?;
        }
        DependAction::Rm(c) => {
            let id = match (&c.on, c.child.parse::<i64>()) {
                (None, Ok(id)) => id,
                (None, Err(_)) => {
                    anyhow::bail!("give the dependency's id, or its child and --on PARENT/CHECK")
                }
                (Some(on), _) => {
                    let (h, ch) = parse_target(&c.child, true)?;
                    let (ph, pc) = parse_target(on, false)?;
                    store
                        .dependencies()?
                        .into_iter()
                        .find(|d| {
                            d.child_host == h
                                && d.child_check == ch
                                && d.parent_host == ph
                                && Some(&d.parent_check) == pc.as_ref()
                        })
                        .map(|d| d.id)
                        .ok_or_else(|| {
                            anyhow::anyhow!("{} does not depend on {on}", c.child.trim())
                        })?
                }
            };
            store.remove_dependency(id)?;
            output::text(&format!("dependency {id} removed"))?;
        }
    }
    Ok(0)
}
