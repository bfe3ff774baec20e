//! `hostler downtime add|list|rm` and `hostler ack`: planned work and known problems, so
//! hostler neither fixes what an operator stopped on purpose nor keeps telling what is known.

use argh::FromArgs;

use super::{App, output};
use crate::queue::downtime::DowntimeWords;

/// maintenance windows: the checks they cover run and record, but nothing is fixed or told
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "downtime")]
pub struct DowntimeCmd {
    #[argh(subcommand)]
    pub action: DowntimeAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum DowntimeAction {
    Add(AddCmd),
    List(ListCmd),
    Rm(RmCmd),
}

/// add a downtime for a host, a tag or one check, for a while or until a time
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "add",
    example = "hostler downtime add --host web1 --for 2h --reason \"kernel update\"",
    example = "hostler downtime add --check web1/check_nginx --until \"2026-12-01 06:00\" --reason migration",
    example = "hostler downtime add --tag db --cron \"0 2 * * SUN\" --for 2h --reason \"weekly backup window\"",
    note = "With --cron, the downtime recurs: each time the expression fires (local time) a downtime of --for begins, made a day ahead at most (hostler downtime list shows the next). hostler downtime rm --recurring ID ends the series."
)]
pub struct AddCmd {
    /// a host: every check on it
    #[argh(option)]
    pub host: Option<String>,
    /// every host with this tag
    #[argh(option)]
    pub tag: Option<String>,
    /// one check: HOST/CHECK
    #[argh(option)]
    pub check: Option<String>,
    /// how long, from now or --from: 30m, 2h, 1d
    #[argh(option, long = "for")]
    pub for_: Option<String>,
    /// when it ends: 2026-12-01T06:00:00Z or local 2026-12-01 06:00
    #[argh(option)]
    pub until: Option<String>,
    /// when it begins (default: now)
    #[argh(option)]
    pub from: Option<String>,
    /// why: shown to operators and in the messages
    #[argh(option)]
    pub reason: String,
    /// cover the checks that depend on it too (hostler depend): the hosts behind a router
    #[argh(switch)]
    pub children: bool,
    /// recur each time this cron expression fires (local time), each time --for long
    #[argh(option)]
    pub cron: Option<String>,
}

/// list the current and coming downtimes
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// remove a downtime (end it now), or with --recurring a recurring one and its coming occurrences
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rm")]
pub struct RmCmd {
    /// the downtime's id (see hostler downtime list)
    #[argh(positional)]
    pub id: i64,
    /// the id is a recurring downtime's (the R column of hostler downtime list)
    #[argh(switch)]
    pub recurring: bool,
}

/// acknowledge a check's problem: nothing more is told of it until it recovers
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ack")]
pub struct AckCmd {
    /// the host
    #[argh(positional)]
    pub host: String,
    /// the check (its script's name)
    #[argh(positional)]
    pub check: String,
    /// what is being done about it
    #[argh(option)]
    pub comment: String,
}

/// the fix guard of a check: `hostler guard reset HOST CHECK` lets fixes run again at once
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "guard")]
pub struct GuardCmd {
    #[argh(subcommand)]
    pub action: GuardAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum GuardAction {
    Reset(GuardResetCmd),
}

/// clear a check's guard: the fixes run so far no longer count
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "reset")]
pub struct GuardResetCmd {
    /// the host
    #[argh(positional)]
    pub host: String,
    /// the check (its script's name)
    #[argh(positional)]
    pub check: String,
}

pub fn guard(app: &App, cmd: GuardCmd) -> anyhow::Result<u8> {
    let GuardAction::Reset(c) = cmd.action;
    let store = app.store()?;
    store.reset_guard(Some(&c.host), &c.check)?;
    output::text(&format!(
        "{}/{}: the guard is reset; the next failing check may run its fix at once",
        c.host, c.check
    ))?;
    Ok(0)
}

/// Who is at the keyboard, for the record (downtimes, acknowledgements, dependencies,
/// heartbeats).
pub(super) fn author() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "cli".into())
}

pub fn run(app: &App, cmd: DowntimeCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    match cmd.action {
        DowntimeAction::Add(c) if c.cron.is_some() => {
            let cron = c.cron.clone().unwrap_or_default();
            if c.from.is_some() || c.until.is_some() {
                anyhow::bail!(
                    "--cron goes with --for only: each occurrence begins when the expression fires"
                );
            }
            let Some(for_) = c.for_.as_deref() else {
                anyhow::bail!("--cron needs --for: how long each occurrence lasts (2h)");
            };
            let (host, script) = match c.check.as_deref() {
                Some(chk) => {
                    let (h, s) = chk
                        .split_once('/')
                        .ok_or_else(|| anyhow::anyhow!("--check {chk:?}: give HOST/CHECK"))?;
                    (Some(h.to_string()), Some(s.to_string()))
                }
                None => (c.host.clone(), None),
            };
            let r = crate::store::recurring::NewRecurring {
                host,
                tag: c.tag.clone(),
                script,
                cron,
                duration_ms: i64::try_from(crate::when::parse_duration(for_)?.as_millis())
                    .unwrap_or(i64::MAX),
                reason: c.reason.clone(),
                author: Some(author()),
                children: c.children,
            };
            let id = store.add_recurring(&r)?;
            output::text(&format!(
                "recurring downtime R{id}: at cron {} for {for_}; the next occurrences show in hostler downtime list",
                r.cron
            ))?;
        }
        DowntimeAction::Add(c) => {
            let d = crate::queue::downtime::downtime(&DowntimeWords {
                host: c.host.as_deref(),
                tag: c.tag.as_deref(),
                check: c.check.as_deref(),
                from: c.from.as_deref(),
                for_: c.for_.as_deref(),
                until: c.until.as_deref(),
                reason: &c.reason,
                author: &author(),
                children: c.children,
            })
            .map_err(anyhow::Error::msg)?;
            let (starts_at, ends_at) = (d.starts_at, d.ends_at);
            let id = store.add_downtime(&d)?;
            output::text(&format!(
                "downtime {id}: from {} until {}",
                output::time(starts_at),
                output::time(ends_at)
            ))?;
        }
        DowntimeAction::List(c) => {
            let list = store.downtimes()?;
            let recurring = store.recurring_downtimes()?;
            if c.json {
                output::json(&list)?;
                return Ok(0);
            }
            if !recurring.is_empty() {
                let rows: Vec<_> = recurring
                    .iter()
                    .map(|r| {
                        let covers = match (&r.host, &r.tag, &r.script) {
                            (Some(h), _, Some(s)) => format!("{h}/{s}"),
                            (Some(h), _, None) => format!("host {h}"),
                            (None, Some(t), _) => format!("tag {t}"),
                            _ => "-".into(),
                        };
                        vec![
                            format!("R{}", r.id),
                            covers,
                            format!("cron {}", r.cron),
                            crate::when::span(std::time::Duration::from_millis(
                                r.duration_ms.max(0) as u64,
                            )),
                            output::opt(&r.author),
                            r.reason.clone(),
                        ]
                    })
                    .collect();
                output::table(&["R", "COVERS", "WHEN", "FOR", "BY", "REASON"], &rows)?;
            }
            let rows: Vec<_> = list
                .iter()
                .map(|d| {
                    vec![
                        d.id.to_string(),
                        if d.children {
                            format!("{} and its children", d.scope())
                        } else {
                            d.scope()
                        },
                        output::time(d.starts_at),
                        output::time(d.ends_at),
                        output::opt(&d.author),
                        d.reason.clone(),
                    ]
                })
                .collect();
            output::table(&["ID", "COVERS", "FROM", "UNTIL", "BY", "REASON"], &rows)?;
        }
        DowntimeAction::Rm(c) if c.recurring => {
            store.remove_recurring(c.id)?;
            output::text(&format!(
                "recurring downtime R{} removed, with its occurrences to come",
                c.id
            ))?;
        }
        DowntimeAction::Rm(c) => {
            store.remove_downtime(c.id)?;
            output::text(&format!("downtime {} removed", c.id))?;
        }
    }
    Ok(0)
}

pub fn ack(app: &App, cmd: AckCmd) -> anyhow::Result<u8> {
    let c = app
        .store()?
        .acknowledge(Some(&cmd.host), &cmd.check, &cmd.comment, &author())?;
    output::text(&format!(
        "{}/{} is {}: acknowledged ({})",
        cmd.host,
        cmd.check,
        c.state.as_str().to_uppercase(),
        c.ack_comment.as_deref().unwrap_or("")
    ))?;
    Ok(0)
}
