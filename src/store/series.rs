//! Perfdata as time series: each run's perfdata becomes points of its check's series, in the
//! transaction that records the run. A series keeps a row per day of hourly trends (each
//! hour's count, minimum, maximum and sum, kept up to date as each point arrives, so there is
//! nothing to roll up later) and rows of raw points as text, an hour's in parts of at most
//! [`PART_POINTS`], until housekeeping deletes them: adding a point rewrites one small row,
//! whatever the hour holds already. Reads give raw points or hourly trends by range.

use serde::Serialize;

use super::statements as st;
use super::{Conn, ConnExt, NewRun, RunPhase, Status, Store, StoreError};

/// Points one run may add: a script that writes hundreds of labels adds the first ones.
pub const MAX_POINTS_PER_RUN: usize = 32;
/// Series one check may have: new labels past it are not kept (a label with a counter in
/// it would otherwise grow the table without bound).
pub const MAX_SERIES_PER_CHECK: usize = 64;
/// The longest label kept.
const MAX_LABEL: usize = 128;
/// Raw points one series keeps for one hour (a point every 5 s): past it, the hour's count,
/// minimum, average and maximum still take every point in, but its raw points stop growing.
pub const MAX_POINTS_PER_HOUR: i64 = 720;
/// Raw points one row holds: an hour's raw points are kept in parts, each a row whose `hour`
/// is the hour's start plus the part's number in milliseconds (0, 1, ... 11; a row written
/// before parts holds an hour's first points, however many). A point is added to the hour's
/// last part, or starts the next, so adding one costs the same at the hour's first point as at
/// its 700th.
pub const PART_POINTS: usize = 60;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// One series: a label of a host's check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub id: i64,
    pub label: String,
    pub uom: String,
    pub warn: Option<String>,
    pub crit: Option<String>,
}

/// A point of a series as read back: raw (`n` 1, min = avg = max) or an hour's trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Epoch ms: the point's time, or the hour's start.
    pub t: i64,
    pub n: i64,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

/// Which resolution a read gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Raw,
    Hourly,
}

/// A number in the shortest text that reads back as the same number. Display never uses an
/// exponent, so 1e300 would take 301 digits: past 24 characters the exponent form is used.
fn push_number(out: &mut String, value: f64) {
    use std::fmt::Write;
    let plain = value.to_string();
    if plain.len() > 24 {
        let _ = write!(out, "{value:e}");
    } else {
        out.push_str(&plain);
    }
}

/// A point as an hour row keeps it: its milliseconds into the hour, then its value, in the
/// shortest text that reads back as the same number.
pub fn push_point(points: &mut String, offset_ms: i64, value: f64) {
    use std::fmt::Write;
    if !points.is_empty() {
        points.push(' ');
    }
    let _ = write!(points, "{offset_ms}:");
    push_number(points, value);
}

/// The points of an hour row's text, as (epoch ms, value); what does not read as a point
/// (the text was edited by hand) is left out.
pub fn parse_points(hour: i64, text: &str) -> impl Iterator<Item = (i64, f64)> + '_ {
    text.split_ascii_whitespace().filter_map(move |p| {
        let (offset, value) = p.split_once(':')?;
        let offset: i64 = offset.parse().ok().filter(|o| (0..HOUR).contains(o))?;
        let value: f64 = value.parse().ok().filter(|v: &f64| v.is_finite())?;
        Some((hour + offset, value))
    })
}

/// An hour's trend: how many points, their minimum, maximum and sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    pub n: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

impl Trend {
    pub fn of(value: f64) -> Trend {
        Trend {
            n: 1,
            min: value,
            max: value,
            sum: value,
        }
    }

    pub fn add(&mut self, value: f64) {
        self.n += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
    }
}

/// The 24 hours of a day (UTC) of a series, `None` where the hour had no point.
pub type Day = [Option<Trend>; 24];

/// A day row's text: "hour:n:min:max:sum" for each hour that had a point, in order.
pub fn format_day(day: &Day) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (h, t) in day.iter().enumerate() {
        let Some(t) = t else { continue };
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{h}:{}:", t.n);
        push_number(&mut out, t.min);
        out.push(':');
        push_number(&mut out, t.max);
        out.push(':');
        push_number(&mut out, t.sum);
    }
    out
}

/// The hours of a day row's text; what does not read as an hour's trend (the text was edited
/// by hand) is left out.
pub fn parse_day(text: &str) -> Day {
    let mut day: Day = [None; 24];
    for entry in text.split_ascii_whitespace() {
        let mut f = entry.split(':');
        let (Some(h), Some(n), Some(min), Some(max), Some(sum), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let num = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
        let (Ok(h), Ok(n), Some(min), Some(max), Some(sum)) = (
            h.parse::<usize>(),
            n.parse::<i64>(),
            num(min),
            num(max),
            num(sum),
        ) else {
            continue;
        };
        if h < 24 && n > 0 && min <= max {
            day[h] = Some(Trend { n, min, max, sum });
        }
    }
    day
}

/// A series' row of one day, read (and locked) for a point's write.
struct DayRow {
    id: i64,
    hours: String,
    /// The last part of the point's hour's raw points, when read with the day's row (the
    /// outer Option: whether it was): its id, `hour` and points.
    raw: Option<Option<RawPart>>,
}

/// A part of an hour's raw points (see [`PART_POINTS`]).
struct RawPart {
    id: i64,
    hour: i64,
    points: String,
}

impl RawPart {
    /// How many points it holds.
    fn len(&self) -> usize {
        self.points.split_ascii_whitespace().count()
    }

    /// Whether this part, the last of `hour`'s, ends where the hour's trend of `n` points
    /// does: every part before it full ([`PART_POINTS`]).
    fn agrees(&self, hour: i64, n: i64) -> bool {
        let before = self.hour - hour;
        let parts = MAX_POINTS_PER_HOUR / PART_POINTS as i64;
        (0..=parts).contains(&before) && before * PART_POINTS as i64 + self.len() as i64 == n
    }

    fn of(r: &super::Row, id: &str, hour: &str, points: &str) -> Result<RawPart, StoreError> {
        Ok(RawPart {
            id: r.int(id)?,
            hour: r.int(hour)?,
            points: r.text(points)?,
        })
    }
}

/// The start of `t`'s day (UTC).
fn day_of(t: i64) -> i64 {
    t - t.rem_euclid(DAY)
}

/// Adds one point to its series: the trend of its hour (in its day's row) takes it in, and
/// the hour's raw points gain it. An hour's raw points start with its trend, so a late point
/// for an hour whose raw points are gone (deleted, or from before schema version 4) changes
/// its trend alone.
fn add_point(
    c: &mut dyn Conn,
    series: i64,
    t: i64,
    value: f64,
    read: Option<DayRow>,
) -> Result<(), StoreError> {
    let day = day_of(t);
    let h = ((t - day) / HOUR) as usize;
    let hour = day + h as i64 * HOUR;
    let mut point = String::new();
    push_point(&mut point, t - hour, value);
    let mut row = match read {
        Some(row) => Some(row),
        None => c
            .query_one(st::day_get(series, day))?
            .map(|r| {
                Ok::<_, StoreError>(DayRow {
                    id: r.int("id")?,
                    hours: r.text("hours")?,
                    raw: None,
                })
            })
            .transpose()?,
    };
    let raw_read = row.as_mut().and_then(|r| r.raw.take());
    let mut hours = match &row {
        Some(row) => parse_day(&row.hours),
        None => [None; 24],
    };
    let before = hours[h];
    match &mut hours[h] {
        Some(trend) => trend.add(value),
        empty => *empty = Some(Trend::of(value)),
    }
    let text = format_day(&hours);
    match &row {
        Some(row) => c.exec(st::day_set(row.id, &text))?,
        None => c.exec(st::day_insert(series, day, &text))?,
    };
    match before {
        Some(trend) => {
            let last = match raw_read {
                _ if trend.n >= MAX_POINTS_PER_HOUR => None,
                // The part read with the day's row, when it holds what the trend counts. The
                // day's row is the newest (locked); the part is as the statement's snapshot
                // saw it, and on PostgreSQL a writer of the same series that committed while
                // this one waited for the lock has moved past it (an ad-hoc run, a check's
                // first, take no lock of their check before): read it again then.
                Some(Some(part)) if part.agrees(hour, trend.n) => Some(part),
                _ => c
                    .query_one(st::raw_last(series, hour))?
                    .map(|r| RawPart::of(&r, "id", "hour", "points"))
                    .transpose()?,
            };
            if let Some(raw) = last {
                if raw.len() < PART_POINTS {
                    c.exec(st::raw_set(raw.id, &format!("{} {point}", raw.points)))?;
                } else {
                    c.exec(st::raw_insert(series, raw.hour + 1, &point))?;
                }
            }
        }
        None => {
            c.exec(st::raw_insert(series, hour, &point))?;
        }
    }
    Ok(())
}

/// Stores the perfdata of a recorded run as points, in its transaction. Runs of checks only:
/// fixes and cancelled runs measure nothing of the check.
pub(super) fn record(c: &mut dyn Conn, run: &NewRun) -> Result<(), StoreError> {
    let Some(text) = run.perfdata.as_deref().filter(|p| !p.trim().is_empty()) else {
        return Ok(());
    };
    if run.phase == Some(RunPhase::Fix)
        || !matches!(
            run.status,
            Status::Ok | Status::Warning | Status::Critical | Status::Unknown
        )
    {
        return Ok(());
    }
    let host = run.host.as_deref().unwrap_or("");
    let check = run.check();
    let mut known: Option<usize> = None;
    for p in crate::perfdata::parse(text)
        .into_iter()
        .take(MAX_POINTS_PER_RUN)
    {
        let Some(value) = p.value.filter(|v| v.is_finite()) else {
            continue;
        };
        if p.label.is_empty() || p.label.len() > MAX_LABEL {
            continue;
        }
        let (warn, crit) = (p.warn.as_deref(), p.crit.as_deref());
        let t = run.finished_at;
        // The series, its day's row and the last part of its hour's raw points in one read;
        // a series' first point of a day (or of all) reads them one by one.
        let day = day_of(t);
        let hour = day + (t - day) / HOUR * HOUR;
        let (found, day) = match c.query_one(st::series_day(host, check, &p.label, day, hour))? {
            Some(row) => {
                let raw = match row.opt_int("raw_id")? {
                    Some(_) => Some(RawPart::of(&row, "raw_id", "raw_hour", "raw_points")?),
                    None => None,
                };
                let day = DayRow {
                    id: row.int("id")?,
                    hours: row.text("hours")?,
                    raw: Some(raw),
                };
                (Some((row.int("series")?, row)), Some(day))
            }
            None => {
                let row = c.query_one(st::series_get(host, check, &p.label))?;
                (
                    row.map(|r| r.int("id").map(|id| (id, r))).transpose()?,
                    None,
                )
            }
        };
        let id = match found {
            Some((id, row)) => {
                let same = row.text("uom")? == p.uom
                    && row.opt_text("warn")?.as_deref() == warn
                    && row.opt_text("crit")?.as_deref() == crit;
                if !same {
                    c.exec(st::series_update(id, &p.uom, warn, crit))?;
                }
                id
            }
            None => {
                let n = match known {
                    Some(n) => n,
                    None => c.query(st::series_of(host, check))?.len(),
                };
                if n >= MAX_SERIES_PER_CHECK {
                    continue;
                }
                known = Some(n + 1);
                c.insert(st::series_insert(host, check, &p.label, &p.uom, warn, crit))?
            }
        };
        add_point(c, id, t, value, day)?;
    }
    Ok(())
}

fn series_from_row(r: &super::Row) -> Result<Series, StoreError> {
    Ok(Series {
        id: r.int("id")?,
        label: r.text("label")?,
        uom: r.text("uom")?,
        warn: r.opt_text("warn")?,
        crit: r.opt_text("crit")?,
    })
}

/// The most samples one read gives.
pub const MAX_SAMPLES: u64 = 20_000;

impl Store {
    /// When a host's check changed state in `[since, until)`, and to what status.
    pub fn state_changes(
        &self,
        host: Option<&str>,
        check: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(|c| {
            c.query(st::state_changes(host, check, since, until))?
                .iter()
                .map(|r| Ok((r.int("finished_at")?, r.text("status")?)))
                .collect()
        })
    }

    /// The series of a host's check (None: the host-less check).
    pub fn series(&self, host: Option<&str>, check: &str) -> Result<Vec<Series>, StoreError> {
        self.read(|c| {
            c.query(st::series_of(host.unwrap_or(""), check))?
                .iter()
                .map(series_from_row)
                .collect()
        })
    }

    /// A series' samples in `[since, until)`: raw points while the range lies within what
    /// raw points are kept for (`raw_ms` back from now), else hourly trends. An hour whose raw
    /// points are gone (deleted, or from before schema version 4) gives its trend either way.
    pub fn samples(
        &self,
        series: i64,
        since: i64,
        until: i64,
        raw_ms: i64,
    ) -> Result<(Resolution, Vec<Sample>), StoreError> {
        let raw = since >= super::now_ms().saturating_sub(raw_ms);
        let (days, points) = self.read(|c| {
            let days = c.query(st::days(series, since, until, MAX_SAMPLES / 24 + 2))?;
            let points = if raw {
                c.query(st::raw_hours(series, since, until, MAX_SAMPLES))?
            } else {
                Vec::new()
            };
            Ok((days, points))
        })?;
        let mut trends = Vec::new();
        for r in &days {
            let day = r.int("day")?;
            let hours = parse_day(&r.text("hours")?);
            trends.extend(
                (0..24)
                    .filter_map(|h| Some((day + h as i64 * HOUR, hours[h]?)))
                    .filter(|(hour, _)| *hour > since - HOUR && *hour < until),
            );
        }
        let mut points = points.iter().peekable();
        let mut samples = Vec::new();
        for (hour, trend) in trends {
            // The hour's parts: rows whose `hour` is its start plus the part's number.
            let of_hour = |p: &&super::Row, cmp: fn(i64, i64) -> bool| {
                p.int("hour")
                    .is_ok_and(|h| cmp(h - h.rem_euclid(HOUR), hour))
            };
            while points.next_if(|p| of_hour(p, |a, b| a < b)).is_some() {}
            let mut text: Option<String> = None;
            while let Some(p) = points.next_if(|p| of_hour(p, |a, b| a == b)) {
                let part = p.text("points")?;
                match &mut text {
                    Some(t) => {
                        t.push(' ');
                        t.push_str(&part);
                    }
                    None => text = Some(part),
                }
            }
            if let Some(text) = text {
                let start = samples.len();
                samples.extend(
                    parse_points(hour, &text)
                        .filter(|(t, _)| (since..until).contains(t))
                        .map(|(t, v)| Sample {
                            t,
                            n: 1,
                            min: v,
                            avg: v,
                            max: v,
                        }),
                );
                // Points arrive in order but for a late run's: each hour reads back in order.
                samples[start..].sort_by_key(|s| s.t);
            } else if hour >= since {
                samples.push(Sample {
                    t: hour,
                    n: trend.n,
                    min: trend.min,
                    avg: trend.sum / trend.n as f64,
                    max: trend.max,
                });
            }
            if samples.len() as u64 >= MAX_SAMPLES {
                samples.truncate(MAX_SAMPLES as usize);
                break;
            }
        }
        Ok((
            if raw {
                Resolution::Raw
            } else {
                Resolution::Hourly
            },
            samples,
        ))
    }
}
