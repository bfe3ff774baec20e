//! Perfdata drawn on the server as SVG, with no JavaScript: a sparkline for a dashboard row,
//! and a chart with time and value axes, the unit, the warn and crit lines, the min–max band
//! of hourly trends, and a mark where the check changed state. Vector graphics with strokes
//! that do not scale, so they stay sharp at any zoom.

use maud::{Markup, html};

use crate::store::series::Sample;

/// A chart's size in SVG units (the page scales it to its width).
const W: f64 = 720.0;
const H: f64 = 220.0;
/// Room for the value labels on the left and the time labels below.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;
const RIGHT: f64 = 10.0;

/// The largest magnitude drawn: beyond it a value is drawn at the edge (a span of two of them
/// still fits in an f64).
const LIMIT: f64 = 1e300;

fn clamp(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(-LIMIT, LIMIT)
    }
}

/// A number as SVG and people read it: two decimals at most, no `-0`, large ones as `1.5e9`.
fn n(v: f64) -> String {
    let v = clamp(v);
    if v.abs() >= 1e9 {
        return format!("{v:.2e}");
    }
    let r = (v * 100.0).round() / 100.0;
    if r == 0.0 { "0".into() } else { format!("{r}") }
}

/// The value range of samples (min of mins, max of maxes), widened to include `extra` values
/// (thresholds) and never empty.
fn value_range(samples: &[Sample], extra: &[f64]) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in samples {
        lo = lo.min(clamp(s.min));
        hi = hi.max(clamp(s.max));
    }
    for v in extra {
        lo = lo.min(clamp(*v));
        hi = hi.max(clamp(*v));
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    (lo, hi)
}

/// A sparkline of the samples' averages (and their min–max band for trends): `w`×`h`.
pub fn sparkline(samples: &[Sample], label: &str) -> Markup {
    let (w, h) = (120.0, 24.0);
    if samples.len() < 2 {
        return html! { span.spark.empty title=(label) { "-" } };
    }
    let (t0, t1) = (
        samples[0].t,
        samples[samples.len() - 1].t.max(samples[0].t + 1),
    );
    let (lo, hi) = value_range(samples, &[]);
    let x = |t: i64| (t - t0) as f64 / (t1 - t0) as f64 * (w - 2.0) + 1.0;
    let y = |v: f64| h - 1.0 - (clamp(v) - lo) / (hi - lo) * (h - 2.0);
    let line: Vec<String> = samples
        .iter()
        .map(|s| format!("{},{}", n(x(s.t)), n(y(s.avg))))
        .collect();
    let last = samples[samples.len() - 1].avg;
    html! {
        svg.spark width=(w) height=(h) viewBox={"0 0 " (w) " " (h)} role="img"
            aria-label={(label) ": last " (n(last))} xmlns="http://www.w3.org/2000/svg" {
            title { (label) ": " (n(lo)) " to " (n(hi)) ", last " (n(last)) }
            polyline points=(line.join(" ")) fill="none" stroke="currentColor"
                stroke-width="1.5" vector-effect="non-scaling-stroke" {}
        }
    }
}

/// A threshold's line values: the numbers of a Nagios range (`10`, `10:20`, `@5:10`, `~:20`).
pub fn threshold_values(range: Option<&str>) -> Vec<f64> {
    let Some(r) = range else { return Vec::new() };
    r.trim_start_matches('@')
        .split(':')
        .filter_map(|p| p.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect()
}

/// Up to `count` round steps between `lo` and `hi` (1, 2 or 5 times a power of ten).
fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let span = (hi - lo).abs().max(f64::EPSILON);
    let raw = span / count.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| span / s <= count as f64)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 && out.len() <= count * 2 {
        out.push(v);
        v += step;
    }
    out
}

/// A time tick's label: hours and minutes within two days, else the date.
fn time_label(t: i64, span_ms: i64) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(t) else {
        return String::new();
    };
    let z = ts.to_zoned(jiff::tz::TimeZone::system());
    if span_ms <= 2 * 86_400_000 {
        z.strftime("%H:%M").to_string()
    } else {
        z.strftime("%b %d").to_string()
    }
}

/// What a chart shows.
pub struct Chart<'a> {
    pub label: &'a str,
    pub uom: &'a str,
    pub warn: Option<&'a str>,
    pub crit: Option<&'a str>,
    pub since: i64,
    pub until: i64,
    pub samples: &'a [Sample],
    /// When the check changed state in the range, and to what (`ok`, `critical`...).
    pub changes: &'a [(i64, String)],
}

/// A chart with axes: time below, values (with the unit) on the left.
pub fn chart(c: &Chart<'_>) -> Markup {
    let warn = threshold_values(c.warn);
    let crit = threshold_values(c.crit);
    let extra: Vec<f64> = warn.iter().chain(&crit).copied().collect();
    let (lo, hi) = value_range(c.samples, &extra);
    let (t0, t1) = (c.since, c.until.max(c.since + 1));
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * pw;
    let y = |v: f64| TOP + ph - (clamp(v) - lo) / (hi - lo) * ph;
    let avg: Vec<String> = c
        .samples
        .iter()
        .map(|s| format!("{},{}", n(x(s.t)), n(y(s.avg))))
        .collect();
    // The min–max band of trends: along the maxima, back along the minima.
    let band = c.samples.iter().any(|s| s.n > 1).then(|| {
        let up = c
            .samples
            .iter()
            .map(|s| format!("{},{}", n(x(s.t)), n(y(s.max))));
        let down = c
            .samples
            .iter()
            .rev()
            .map(|s| format!("{},{}", n(x(s.t)), n(y(s.min))));
        up.chain(down).collect::<Vec<_>>().join(" ")
    });
    let vticks = ticks(lo, hi, 5);
    let span = t1 - t0;
    let tticks: Vec<i64> = (0..=6).map(|i| t0 + span * i / 6).collect();
    let unit = if c.uom.is_empty() {
        String::new()
    } else {
        format!(" ({})", c.uom)
    };
    html! {
        svg.chart viewBox={"0 0 " (W) " " (H)} role="img" xmlns="http://www.w3.org/2000/svg"
            aria-label={(c.label) (unit) ", " (c.samples.len()) " points"} {
            title { (c.label) (unit) }
            g.axes {
                line x1=(n(LEFT)) y1=(n(TOP)) x2=(n(LEFT)) y2=(n(TOP + ph)) stroke="currentColor" vector-effect="non-scaling-stroke" {}
                line x1=(n(LEFT)) y1=(n(TOP + ph)) x2=(n(LEFT + pw)) y2=(n(TOP + ph)) stroke="currentColor" vector-effect="non-scaling-stroke" {}
                @for v in &vticks {
                    line.grid x1=(n(LEFT)) y1=(n(y(*v))) x2=(n(LEFT + pw)) y2=(n(y(*v))) stroke="#ccc" vector-effect="non-scaling-stroke" {}
                    text x=(n(LEFT - 4.0)) y=(n(y(*v) + 4.0)) text-anchor="end" font-size="11" { (n(*v)) }
                }
                @for (i, t) in tticks.iter().enumerate() {
                    // The first and last labels lean inwards, so neither is cut at an edge.
                    @let anchor = if i == 0 { "start" } else if i + 1 == tticks.len() { "end" } else { "middle" };
                    text x=(n(x(*t))) y=(n(H - 6.0)) text-anchor=(anchor) font-size="11" { (time_label(*t, span)) }
                }
                text x="4" y=(n(TOP + 10.0)) font-size="11" { (c.uom) }
            }
            @for (t, state) in c.changes {
                @if *t >= t0 && *t <= t1 {
                    line class={"change " (state)} x1=(n(x(*t))) y1=(n(TOP)) x2=(n(x(*t))) y2=(n(TOP + ph))
                        stroke-dasharray="2 3" vector-effect="non-scaling-stroke" {
                        title { (state) " at " (crate::when::local(*t)) }
                    }
                }
            }
            @if let Some(points) = &band {
                polygon.band points=(points) fill="currentColor" fill-opacity="0.15" stroke="none" {}
            }
            @for v in &warn {
                line.warn x1=(n(LEFT)) y1=(n(y(*v))) x2=(n(LEFT + pw)) y2=(n(y(*v))) stroke="#c90" stroke-dasharray="6 3" vector-effect="non-scaling-stroke" {
                    title { "warn " (n(*v)) }
                }
            }
            @for v in &crit {
                line.crit x1=(n(LEFT)) y1=(n(y(*v))) x2=(n(LEFT + pw)) y2=(n(y(*v))) stroke="#c00" stroke-dasharray="6 3" vector-effect="non-scaling-stroke" {
                    title { "crit " (n(*v)) }
                }
            }
            @if avg.len() == 1 {
                circle.avg cx=(n(x(c.samples[0].t))) cy=(n(y(c.samples[0].avg))) r="2.5" fill="currentColor" {}
            } @else if !avg.is_empty() {
                polyline.avg points=(avg.join(" ")) fill="none" stroke="currentColor" stroke-width="1.5" vector-effect="non-scaling-stroke" {}
            } @else {
                text x=(n(LEFT + pw / 2.0)) y=(n(TOP + ph / 2.0)) text-anchor="middle" font-size="13" { "no points in this range" }
            }
        }
    }
}
