//! The dashboard page: a count per state, the problems first (hard before soft, then the
//! longest failing, with "failing since"), every host with its checks, the queue and the
//! notifications. What it shows is read by [`super::overview`].

use std::sync::Arc;

use maud::{Markup, PreEscaped, html};

use super::http::Resp;
use super::layout::{ago, csrf, page as frame, state_class, time};
use super::overview::Data;
use super::queue::jobs_table;
use super::runs::notification_table;
use super::{Web, WebResult, Who};
use crate::store::{JobState, Role};

/// `/`: the overview page.
pub fn page(web: &Web, who: &Who) -> WebResult {
    let d = web.dashboard.get(&web.store)?;
    let grid = d
        .grid
        .get_or_init(|| Arc::new(grid(&d).into_string()))
        .clone();
    let running = d
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Running)
        .count();
    let c = d.counts;
    // The database's size, a minute old at most; a failed count leaves the line out.
    let size = web.size().ok();
    let body = html! {
        p.meta { "As of " (time(d.at)) ". " (d.hosts.len()) " hosts, " (running) " jobs running, "
            (d.jobs.len() - running) " queued." }
        p.counts {
            span.st.critical { (c.critical) " critical" } " "
            span.st.warning { (c.warning) " warning" } " "
            span.st.unknown { (c.unknown) " unknown" } " "
            span.st.ok { (c.ok) " ok" }
        }
        section {
            h2 { "Problems" }
            (problems(web, &d, who))
        }
        section {
            h2 { "Hosts" }
            (PreEscaped(GRID_MARK))
        }
        section.split {
            div {
                h2 { "Running and queued" }
                (jobs_table(who, &d.jobs[..d.jobs.len().min(DASHBOARD_JOBS)], false))
                @if d.jobs.len() > DASHBOARD_JOBS {
                    p { a href="/queue" { "All " (d.jobs.len()) " jobs in the queue" } }
                }
            }
            div {
                h2 { "Notifications" }
                (notification_table(&d.notifications))
            }
        }
        @if let Some(size) = &size {
            p.meta.size {
                "Database: "
                @if let Some(b) = size.bytes { (format!("{:.1} MB", b as f64 / 1e6)) ", " }
                @for (i, (table, n)) in size.rows.iter().enumerate() {
                    @if i > 0 { ", " }
                    (n) " " (table)
                }
                ". History is kept as [history] says."
            }
        }
    };
    // The grid is spliced in where its mark is, without copying it into this response.
    let mut r: Resp = frame(who, "Dashboard", Some(15), body);
    if let Some(at) = r
        .body
        .windows(GRID_MARK.len())
        .position(|w| w == GRID_MARK.as_bytes())
    {
        let tail = r.body.split_off(at + GRID_MARK.len());
        r.body.truncate(at);
        r.splice = Some((grid, tail));
    }
    Ok(r)
}

/// The checks that are not OK, hard before soft, then the longest failing, with their flags
/// and, for an operator, a form to acknowledge one.
/// The problems whose rows get sparklines (each reads its series' last day).
const SPARKLINES: usize = 20;

/// A sparkline per perfdata label (at most two) of a check's last 24 hours.
fn sparks(web: &Web, host: Option<&str>, check: &str, now: i64) -> String {
    let series = web.store.series(host, check).unwrap_or_default();
    html! {
        @for s in series.iter().take(2) {
            @if let Ok((_, samples)) = web.store.samples(s.id, now - 86_400_000, now, web.keep_points_ms) {
                (super::chart::sparkline(&samples, &s.label)) " "
            }
        }
    }
    .into_string()
}

/// The problems' sparklines, drawn once per read of the overview (not per request: the
/// dashboard is the page under load).
fn all_sparks(web: &Web, d: &Data) -> Arc<Vec<String>> {
    d.sparks
        .get_or_init(|| {
            Arc::new(
                d.problems
                    .iter()
                    .take(SPARKLINES)
                    .map(|p| sparks(web, p.host.as_deref(), &p.script, d.at))
                    .collect(),
            )
        })
        .clone()
}

fn problems(web: &Web, d: &Data, who: &Who) -> Markup {
    let sparks = all_sparks(web, d);
    html! {
        @if d.problems.is_empty() && d.unreachable.is_empty() { p.empty { "None: every check is OK." } }
        @for (parent, behind) in &d.unreachable {
            details.unreachable {
                summary { (behind.len()) @if behind.len() == 1 { " check" } @else { " checks" } " unreachable behind " (parent) }
                ul {
                    @for c in behind {
                        li {
                            (c.host.as_deref().unwrap_or("-")) "/" (c.script) ": "
                            span class=(state_class(c.state)) { (c.state.as_str().to_uppercase()) }
                            " since " (time(c.since))
                        }
                    }
                }
            }
        }
        @if !d.problems.is_empty() {
            table.problems {
                tr { th { "Host" } th { "Check" } th { "State" } th { "Failing since" } th { "" } th { "Last day" } th { "Message" } }
                @for (i, (p, guard)) in d.problems.iter().zip(&d.guards).enumerate() {
                    tr {
                        td { @if let Some(h) = &p.host { a href={"/hosts/" (crate::urlencode::encode(h))} { (h) } } @else { "-" } }
                        td { a href={"/checks/" (crate::urlencode::encode(p.host.as_deref().unwrap_or("-"))) "/" (crate::urlencode::encode(&p.script))} { (p.script) } }
                        td { span class=(state_class(p.state)) { (p.state.as_str().to_uppercase()) } }
                        td title=(time(p.since)) { (ago(p.since, d.at)) }
                        td {
                            (if p.hard { "hard" } else { "soft" }) @if p.notified { ", told" }
                            @if d.in_downtime.contains(&p.id) { ", " a href="/downtimes" { "downtime" } }
                            @if p.flapping { ", flapping" }
                            @if let Some(g) = guard.as_ref().filter(|g| g.fixes > 0) {
                                ", " span title={"fix " (g.fix_script) ": " (g.fixes) " of " (g.max_fixes) " in the window"} {
                                    "guard " (g.fixes) "/" (g.max_fixes)
                                    @if let Some(t) = g.next_allowed { " until " (time(t)) }
                                }
                            }
                            @if p.acked {
                                ", " span title=(p.ack_comment.as_deref().unwrap_or("")) { "acked" }
                            } @else if who.may(Role::Operator) {
                                form.inline method="post" action={"/checks/" (crate::urlencode::encode(p.host.as_deref().unwrap_or("-"))) "/" (crate::urlencode::encode(&p.script)) "/ack"} {
                                    (csrf(who))
                                    input type="text" name="comment" placeholder="comment" required aria-label="acknowledgement comment" size="12";
                                    button type="submit" { "Ack" }
                                }
                            }
                        }
                        td.trend { @if let Some(s) = sparks.get(i) { (PreEscaped(s)) } }
                        td.msg {
                            @if let Some(run) = p.last_run_id { a href={"/runs/" (run)} { (p.message) } }
                            @else { (p.message) }
                        }
                    }
                }
            }
        }
    }
}

/// The dashboard lists this many jobs (running first, then in the order they will run).
const DASHBOARD_JOBS: usize = 50;

/// Where the dashboard's cached host grid goes.
const GRID_MARK: &str = "<!--hostler:grid-->";

/// A message cut for a tooltip.
fn short(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Every host with its checks: one badge per check, its state's colour, linked to the run
/// that said so.
pub fn grid(d: &Data) -> Markup {
    html! {
        @if d.hosts.is_empty() { p.empty { "No hosts yet. " a href="/hosts/new" { "Add one." } } }
        @else {
            table.grid {
                tr { th { "Host" } th { "Address" } th { "Checks" } }
                @for h in &d.hosts {
                    tr.disabled[!h.enabled] {
                        td { a href={"/hosts/" (crate::urlencode::encode(&h.name))} { (h.name) } }
                        td.addr { (h.method) " " (h.address) }
                        td {
                            @if h.checks.is_empty() { span.empty { "no checks scheduled" } }
                            @for c in &h.checks { (badge(c, d.at)) " " }
                        }
                    }
                }
            }
        }
        @if !d.other.is_empty() {
            p.meta { "Without a host: " @for c in &d.other { (badge(c, d.at)) " " } }
        }
    }
}

fn badge(c: &super::overview::Check, now: i64) -> Markup {
    let title = format!(
        "{} for {}, last run {} ago: {}",
        c.state.as_str().to_uppercase(),
        ago(c.since, now),
        ago(c.last_run_at, now),
        short(&c.message)
    );
    html! {
        @match c.run {
            Some(run) => a class=(state_class(c.state)) href={"/runs/" (run)} title=(title) { (c.script) },
            None => span class=(state_class(c.state)) title=(title) { (c.script) },
        }
    }
}
