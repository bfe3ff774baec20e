//! Perfdata as time series: each run's perfdata becomes points of its check's series, in the
//! transaction that records the run; reads give raw points or hourly trends by range.

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

fn real(r: &super::Row, name: &str) -> Result<f64, StoreError> {
    r.real(name)
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
        let id = match c.query_one(st::series_get(host, check, &p.label))? {
            Some(row) => {
                let id = row.int("id")?;
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
        c.exec(st::point_insert(id, run.finished_at, value))?;
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
    /// raw points are kept for (`raw_ms` back from now), else hourly trends.
    pub fn samples(
        &self,
        series: i64,
        since: i64,
        until: i64,
        raw_ms: i64,
    ) -> Result<(Resolution, Vec<Sample>), StoreError> {
        let raw = since >= super::now_ms().saturating_sub(raw_ms);
        self.read(|c| {
            if raw {
                let rows = c.query(st::points(series, since, until, MAX_SAMPLES))?;
                let samples = rows
                    .iter()
                    .map(|r| {
                        let v = real(r, "value")?;
                        Ok(Sample {
                            t: r.int("t")?,
                            n: 1,
                            min: v,
                            avg: v,
                            max: v,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                return Ok((Resolution::Raw, samples));
            }
            let rows = c.query(st::trends(series, since, until, MAX_SAMPLES))?;
            let samples = rows
                .iter()
                .map(|r| {
                    let n = r.int("n")?.max(1);
                    Ok(Sample {
                        t: r.int("hour")?,
                        n,
                        min: real(r, "vmin")?,
                        avg: real(r, "vsum")? / n as f64,
                        max: real(r, "vmax")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok((Resolution::Hourly, samples))
        })
    }
}
