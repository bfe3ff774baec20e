//! `/checks/HOST/CHECK` (host `-` for a host-less check): one check's state, and a chart per
//! perfdata label over a range (`?range=6h`, `24h`, `7d`, `30d`, `1y`): raw points while they
//! reach back that far, else hourly trends with their min–max band.

use maud::html;

use super::chart::{Chart, chart};
use super::http::Req;
use super::layout::{ago, page, state_class, time};
use super::{Web, WebResult, Who};

const HOUR: i64 = 3_600_000;
/// The ranges a chart offers, the first being the default.
pub const RANGES: &[(&str, i64)] = &[
    ("24h", 24 * HOUR),
    ("6h", 6 * HOUR),
    ("7d", 7 * 24 * HOUR),
    ("30d", 30 * 24 * HOUR),
    ("1y", 365 * 24 * HOUR),
];

pub fn page_of(web: &Web, who: &Who, host: Option<&str>, check: &str, req: &Req) -> WebResult {
    let c = web.store.check(host, check)?;
    let (range, span) = req
        .query("range")
        .and_then(|r| RANGES.iter().find(|(n, _)| *n == r))
        .copied()
        .unwrap_or(RANGES[0]);
    let until = crate::store::now_ms();
    let since = until - span;
    let changes = web.store.state_changes(host, check, since, until)?;
    let mut charts = Vec::new();
    for s in web.store.series(host, check)? {
        let (resolution, samples) = web.store.samples(s.id, since, until, web.keep_points_ms)?;
        charts.push((s, resolution, samples));
    }
    let target = host.unwrap_or("-");
    let title = format!("{} on {}", check, host.unwrap_or("no host"));
    let body = html! {
        p.meta {
            span class=(state_class(c.state)) { (c.state.as_str().to_uppercase()) }
            " since " (time(c.since)) " (" (ago(c.since, until)) "). "
            @if let Some(run) = c.last_run_id { a href={"/runs/" (run)} { (c.message) } } @else { (c.message) }
        }
        nav.ranges {
            @for (name, _) in RANGES {
                @if *name == range { strong { (name) } } @else {
                    a href={"/checks/" (crate::urlencode::encode(target)) "/" (crate::urlencode::encode(check)) "?range=" (name)} { (name) }
                }
                " "
            }
        }
        @if charts.is_empty() { p.empty { "This check has written no performance data." } }
        @for (s, resolution, samples) in &charts {
            section.chart {
                h2 { (s.label) @if !s.uom.is_empty() { " (" (s.uom) ")" } }
                p.meta { (samples.len()) " "
                    (match resolution { crate::store::series::Resolution::Raw => "points", _ => "hourly trends (min, average, max)" })
                    @if let Some(w) = &s.warn { ", warn " (w) }
                    @if let Some(c) = &s.crit { ", crit " (c) } }
                (chart(&Chart {
                    label: &s.label,
                    uom: &s.uom,
                    warn: s.warn.as_deref(),
                    crit: s.crit.as_deref(),
                    since,
                    until,
                    samples,
                    changes: &changes,
                }))
            }
        }
    };
    Ok(page(who, &title, None, body))
}
