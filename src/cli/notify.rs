//! `hostler notify channels|test|routes`: the configured channels, a test message through
//! one, and which route and channels a notification would take.

use argh::FromArgs;
use serde::Serialize;
use serde_json::json;

use super::{App, output};
use crate::notify::{Facts, Plan};

/// notification channels and routes: list them, test one, see where a problem would go
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "notify")]
pub struct NotifyCmd {
    #[argh(subcommand)]
    pub action: NotifyAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum NotifyAction {
    Channels(ChannelsCmd),
    Test(TestCmd),
    Routes(RoutesCmd),
}

/// list the channels the config defines ([channel.NAME], and [notify] webhook and command)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "channels")]
pub struct ChannelsCmd {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// send a test message through one channel now, and say what came back
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "test",
    example = "hostler notify test ops-slack",
    note = "The message is sent at once, past routes, windows and rate limits, and is not stored. The exit status is 0 when the service took it; its answer (an HTTP status and body, or the SMTP server's reply) is printed either way, with secrets masked."
)]
pub struct TestCmd {
    /// the channel's name
    #[argh(positional)]
    pub channel: String,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// which route and channels a notification would take, now or at a given time
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "routes",
    example = "hostler notify routes --host db1 --check check_pg --state critical",
    example = "hostler notify routes --host web1 --event recovery --at '2026-12-07 03:00'",
    note = "The host's tags are read from the database. Without --event, a problem is assumed. Escalations show their delay; a route outside its hours does not match."
)]
pub struct RoutesCmd {
    /// the host
    #[argh(option)]
    pub host: Option<String>,
    /// the check's name
    #[argh(option)]
    pub check: Option<String>,
    /// the event: problem (the default), recovery, fix_failed, reminder, ...
    #[argh(option, default = "String::from(\"problem\")")]
    pub event: String,
    /// the check's state: ok, warning, critical (the default for problems), unknown
    #[argh(option)]
    pub state: Option<String>,
    /// the time to route at (default: now), as 2026-12-01 04:00 or RFC 3339
    #[argh(option)]
    pub at: Option<String>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

pub fn run(app: &App, cmd: NotifyCmd) -> anyhow::Result<u8> {
    let plan = Plan::from_config(&app.config)?;
    match cmd.action {
        NotifyAction::Channels(c) => channels(&plan, c),
        NotifyAction::Test(c) => test(app, &plan, c),
        NotifyAction::Routes(c) => routes(app, &plan, c),
    }?;
    Ok(0)
}

#[derive(Serialize)]
struct ChannelRow {
    name: String,
    kind: String,
    max_per_minute: usize,
}

fn channels(plan: &Plan, c: ChannelsCmd) -> anyhow::Result<()> {
    let rows: Vec<ChannelRow> = plan
        .channels
        .iter()
        .map(|d| ChannelRow {
            name: d.name.clone(),
            kind: format!("{:?}", d.kind).to_ascii_lowercase(),
            max_per_minute: d.per_minute,
        })
        .collect();
    if c.json {
        return output::json(&rows);
    }
    if rows.is_empty() {
        return output::text(
            "no channels: notifications are only stored and logged (add [channel.NAME] to the config)",
        );
    }
    output::table(
        &["NAME", "KIND", "PER MINUTE"],
        &rows
            .iter()
            .map(|r| vec![r.name.clone(), r.kind.clone(), r.max_per_minute.to_string()])
            .collect::<Vec<_>>(),
    )
}

fn test(app: &App, plan: &Plan, c: TestCmd) -> anyhow::Result<()> {
    let Some(def) = plan.channel(&c.channel) else {
        let names: Vec<&str> = plan.channels.iter().map(|d| d.name.as_str()).collect();
        anyhow::bail!(
            "no channel {:?} (there are: {})",
            c.channel,
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        );
    };
    let node = app.config.node();
    let now = crate::store::now_ms();
    let item = json!({
        "event": "notify",
        "host": null,
        "check": "hostler-test",
        "state": "ok",
        "message": format!("a test message from hostler on {node}"),
        "subject": format!("hostler test: channel {} works", def.name),
        "body": format!("A test message from hostler on {node}, sent by `hostler notify test {}` at {}.", def.name, crate::when::local(now)),
        "run_id": null,
        "url": null,
        "id": 0,
        "created_at": now,
    });
    let result = def.send(std::slice::from_ref(&item), &node);
    if c.json {
        output::json(&json!({
            "channel": def.name,
            "ok": result.is_ok(),
            "answer": result.as_ref().ok(),
            "error": result.as_ref().err(),
        }))?;
        if result.is_err() {
            anyhow::bail!("channel {}: not delivered", def.name);
        }
        return Ok(());
    }
    match result {
        Ok(answer) => output::text(&format!("{}: delivered ({answer})", def.name)),
        Err(e) => anyhow::bail!("{}: not delivered: {e}", def.name),
    }
}

#[derive(Serialize)]
struct RouteRow {
    channel: String,
    /// The route's number (1-based) in the config; null with no routes.
    route: Option<usize>,
    after_s: i64,
}

fn routes(app: &App, plan: &Plan, c: RoutesCmd) -> anyhow::Result<()> {
    if !crate::notify::route::EVENTS.contains(&c.event.as_str()) {
        anyhow::bail!(
            "--event {:?}: events are {}",
            c.event,
            crate::notify::route::EVENTS.join(", ")
        );
    }
    let at = match &c.at {
        Some(t) => crate::when::parse_time(t)?,
        None => crate::store::now_ms(),
    };
    let tags = match &c.host {
        Some(h) => app.store()?.host(h)?.tags,
        None => Vec::new(),
    };
    let state = c.state.clone().map(|s| s.to_ascii_lowercase()).or_else(|| {
        crate::notify::route::PROBLEM_EVENTS
            .contains(&c.event.as_str())
            .then(|| "critical".to_string())
    });
    let facts = Facts {
        host: c.host.as_deref(),
        tags: &tags,
        check: c.check.as_deref(),
        state: state.as_deref(),
        event: &c.event,
    };
    let rows: Vec<RouteRow> = plan
        .targets(&facts, at)
        .into_iter()
        .map(|t| RouteRow {
            channel: t.channel,
            route: t.route.map(|r| r + 1),
            after_s: t.after_ms / 1000,
        })
        .collect();
    if c.json {
        return output::json(&rows);
    }
    if plan.channels.is_empty() {
        return output::text("no channels: it would only be stored and logged");
    }
    if rows.is_empty() {
        return output::text("no route matches: it would be stored and logged, and sent nowhere");
    }
    output::table(
        &["CHANNEL", "ROUTE", "AFTER"],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.channel.clone(),
                    r.route
                        .map_or("(no routes: every channel)".into(), |n| format!("#{n}")),
                    if r.after_s == 0 {
                        "at once".into()
                    } else {
                        crate::when::span(std::time::Duration::from_secs(r.after_s as u64))
                    },
                ]
            })
            .collect::<Vec<_>>(),
    )
}
