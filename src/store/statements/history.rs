//! Statements of housekeeping (what `[history]` keeps) and of perfdata series: written once
//! here, rendered per dialect like every other statement, and each bounded by a batch size so
//! no transaction holds the write lock for long.

use super::*;
use crate::sql::Func;

/// Runs housekeeping may delete now, at most `limit`, oldest first: an OK run that changed
/// nothing and was not part of a correction, finished before `ok_before`; any run finished
/// before `all_before`. A check's last run is never among them (the dashboard links to it).
pub fn runs_expired(ok_before: i64, all_before: i64, limit: u64) -> Select {
    let quiet_ok = Expr::And(vec![
        col("status").eq(lit("ok")),
        col("changed").eq(lit(false)),
        col("phase")
            .is_null()
            .or(col("phase").eq(lit(crate::store::RunPhase::Check.as_str()))),
        col("finished_at").lt(param(ok_before)),
    ]);
    let last_runs = Select::from("checks")
        .columns(&["last_run_id"])
        .filter(col("last_run_id").is_not_null());
    Select::from("runs")
        .columns(&["id"])
        .filter(quiet_ok.or(col("finished_at").lt(param(all_before))))
        .filter(Expr::Not(Box::new(col("id").in_select(last_runs))))
        .with(Section::OrderBy(vec![(col("id"), Order::Asc)]))
        .with(Section::Limit(limit))
}

/// How many runs [`runs_expired`] would select, without a limit (`prune --dry-run`).
pub fn runs_expired_count(ok_before: i64, all_before: i64) -> Statement {
    let mut s = runs_expired(ok_before, all_before, 1);
    s.columns = vec![(Expr::count_star(), Some("n"))];
    s.order_by.clear();
    s.limit = None;
    s.into()
}

/// Deletes the rows of `table` whose `id` a selection lists.
pub fn delete_ids(table: &'static str, ids: Select) -> Statement {
    Delete {
        table,
        conditions: vec![col("id").in_select(ids)],
    }
    .into()
}

/// Deletes the rows of `table` whose `column` is one of `ids`.
pub fn delete_in(table: &'static str, column: &'static str, ids: Vec<i64>) -> Statement {
    Delete {
        table,
        conditions: vec![col(column).in_list(ids.into_iter().map(param).collect())],
    }
    .into()
}

/// Notifications created before `before`, at most `limit`, oldest first.
pub fn notifications_expired(before: i64, limit: u64) -> Select {
    Select::from("notifications")
        .columns(&["id"])
        .filter(col("created_at").lt(param(before)))
        .with(Section::OrderBy(vec![(col("id"), Order::Asc)]))
        .with(Section::Limit(limit))
}

/// How many rows of `table` have `column` before `before`.
pub fn count_before(table: &'static str, column: &'static str, before: i64) -> Statement {
    Select::from(table)
        .with(Section::Columns(vec![(Expr::count_star(), Some("n"))]))
        .filter(col(column).lt(param(before)))
        .into()
}

/// Rows of `table` (points, trends) whose `column` is before `before`, at most `limit`,
/// oldest first: a batch for [`delete_ids`].
pub fn rows_before(table: &'static str, column: &'static str, before: i64, limit: u64) -> Select {
    Select::from(table)
        .columns(&["id"])
        .filter(col(column).lt(param(before)))
        .with(Section::OrderBy(vec![(col(column), Order::Asc)]))
        .with(Section::Limit(limit))
}

/// A perfdata series by its key.
pub fn series_get(host: &str, check: &str, label: &str) -> Statement {
    Select::from("perf_series")
        .columns(&["id", "uom", "warn", "crit"])
        .filter(col("host").eq(param(host)))
        .filter(col("check_name").eq(param(check)))
        .filter(col("label").eq(param(label)))
        .into()
}

/// A series (columns `series`, `uom`, `warn`, `crit`) with its row of `day` (`id`, `hours`),
/// both locked for the write that follows (as [`day_get`]), and the last part of `hour`'s raw
/// points as [`raw_last`] reads it (`raw_id`, `raw_hour`, `raw_points`; null when the hour
/// has none): one read for a point of a series that has its day's row already. No row:
/// either is missing.
pub fn series_day(host: &str, check: &str, label: &str, day: i64, hour: i64) -> Statement {
    let last_part = Select::from_as("perf_raw", "r2")
        .with(Section::Columns(vec![(
            Expr::Func(Func::Max, vec![qcol("r2", "hour")]),
            None,
        )]))
        .filter(qcol("r2", "series_id").eq(qcol("d", "series_id")))
        .filter(qcol("r2", "hour").ge(param(hour)))
        .filter(qcol("r2", "hour").lt(param(hour + 3_600_000)));
    Select::from_as("perf_days", "d")
        .with(Section::Columns(vec![
            (qcol("d", "id"), None),
            (qcol("d", "hours"), None),
            (qcol("s", "id"), Some("series")),
            (qcol("s", "uom"), None),
            (qcol("s", "warn"), None),
            (qcol("s", "crit"), None),
            (qcol("r", "id"), Some("raw_id")),
            (qcol("r", "hour"), Some("raw_hour")),
            (qcol("r", "points"), Some("raw_points")),
        ]))
        .with(Section::Join(Join {
            kind: JoinKind::Inner,
            table: "perf_series",
            alias: "s",
            on: qcol("s", "id").eq(qcol("d", "series_id")),
        }))
        .with(Section::Join(Join {
            kind: JoinKind::Left,
            table: "perf_raw",
            alias: "r",
            on: qcol("r", "series_id")
                .eq(qcol("d", "series_id"))
                .and(qcol("r", "hour").eq(Expr::Sub(Box::new(last_part)))),
        }))
        .filter(qcol("s", "host").eq(param(host)))
        .filter(qcol("s", "check_name").eq(param(check)))
        .filter(qcol("s", "label").eq(param(label)))
        .filter(qcol("d", "day").eq(param(day)))
        .with(Section::Lock(Lock::ForUpdate))
        .into()
}

pub fn series_insert(
    host: &str,
    check: &str,
    label: &str,
    uom: &str,
    warn: Option<&str>,
    crit: Option<&str>,
) -> Statement {
    Insert {
        table: "perf_series",
        values: vec![
            ("host", param(host)),
            ("check_name", param(check)),
            ("label", param(label)),
            ("uom", param(uom)),
            ("warn", param(warn)),
            ("crit", param(crit)),
        ],
        returning_id: Some("id"),
    }
    .into()
}

/// A series' unit and thresholds, as its latest point gave them.
pub fn series_update(id: i64, uom: &str, warn: Option<&str>, crit: Option<&str>) -> Statement {
    Update {
        table: "perf_series",
        set: vec![
            ("uom", param(uom)),
            ("warn", param(warn)),
            ("crit", param(crit)),
        ],
        conditions: vec![col("id").eq(param(id))],
        returning: Vec::new(),
    }
    .into()
}

/// Every series of a host's check (a host-less check: host '').
pub fn series_of(host: &str, check: &str) -> Statement {
    Select::from("perf_series")
        .columns(&["id", "label", "uom", "warn", "crit"])
        .filter(col("host").eq(param(host)))
        .filter(col("check_name").eq(param(check)))
        .with(Section::OrderBy(vec![(col("id"), Order::Asc)]))
        .into()
}

/// The trends of one day of a series, to add a point to: locked until the transaction ends
/// where the database can (two nodes adding to one day take turns instead of losing a point).
pub fn day_get(series: i64, day: i64) -> Statement {
    Select::from("perf_days")
        .columns(&["id", "hours"])
        .filter(col("series_id").eq(param(series)))
        .filter(col("day").eq(param(day)))
        .with(Section::Lock(Lock::ForUpdate))
        .into()
}

pub fn day_set(id: i64, hours: &str) -> Statement {
    Update {
        table: "perf_days",
        set: vec![("hours", param(hours))],
        conditions: vec![col("id").eq(param(id))],
        returning: Vec::new(),
    }
    .into()
}

/// A new day of a series. Should another transaction have made it meanwhile (a database
/// without row locks before the row exists), this one's hours replace it.
pub fn day_insert(series: i64, day: i64, hours: &str) -> Statement {
    Upsert {
        table: "perf_days",
        key: vec!["series_id", "day"],
        values: vec![
            ("series_id", param(series)),
            ("day", param(day)),
            ("hours", param(hours)),
        ],
        update: vec!["hours"],
    }
    .into()
}

/// The figures of an hour of a series in the table of schema versions 3 and 4.
pub struct HourRow {
    pub n: i64,
    pub vmin: f64,
    pub vmax: f64,
    pub vsum: f64,
}

/// An hour's trend in the table of schema versions 3 and 4 (the upgrade from 3 adds to it
/// the hours that were not rolled up yet, and the upgrade to 5 packs it into days).
pub fn legacy_hour_get(series: i64, hour: i64) -> Statement {
    Select::from("perf_trends")
        .columns(&["id"])
        .filter(col("series_id").eq(param(series)))
        .filter(col("hour").eq(param(hour)))
        .into()
}

pub fn legacy_hour_insert(series: i64, hour: i64, row: &HourRow) -> Statement {
    Insert {
        table: "perf_trends",
        values: vec![
            ("series_id", param(series)),
            ("hour", param(hour)),
            ("n", param(row.n)),
            ("vmin", param(row.vmin)),
            ("vmax", param(row.vmax)),
            ("vsum", param(row.vsum)),
        ],
        returning_id: None,
    }
    .into()
}

/// A series' hourly trends in the table of schema versions 3 and 4, oldest first.
pub fn legacy_hours(series: i64) -> Statement {
    Select::from("perf_trends")
        .columns(&["hour", "n", "vmin", "vmax", "vsum"])
        .filter(col("series_id").eq(param(series)))
        .with(Section::OrderBy(vec![(col("hour"), Order::Asc)]))
        .into()
}

/// The last part of an hour's raw points of a series (see `series::PART_POINTS`): its row's
/// `hour` is the hour's start plus the part's number, in milliseconds.
pub fn raw_last(series: i64, hour: i64) -> Statement {
    Select::from("perf_raw")
        .columns(&["id", "hour", "points"])
        .filter(col("series_id").eq(param(series)))
        .filter(col("hour").ge(param(hour)))
        .filter(col("hour").lt(param(hour + 3_600_000)))
        .with(Section::OrderBy(vec![(col("hour"), Order::Desc)]))
        .with(Section::Limit(1))
        .into()
}

pub fn raw_set(id: i64, points: &str) -> Statement {
    Update {
        table: "perf_raw",
        set: vec![("points", param(points))],
        conditions: vec![col("id").eq(param(id))],
        returning: Vec::new(),
    }
    .into()
}

/// The raw points of a new hour of a series, or a new part of an hour's (made with its
/// trend, so under its lock): `hour` is the hour's start plus the part's number, in ms.
pub fn raw_insert(series: i64, hour: i64, points: &str) -> Statement {
    Upsert {
        table: "perf_raw",
        key: vec!["series_id", "hour"],
        values: vec![
            ("series_id", param(series)),
            ("hour", param(hour)),
            ("points", param(points)),
        ],
        update: vec!["points"],
    }
    .into()
}

/// A series' rows of `table` whose `span` (`perf_days` by day, `perf_raw` by hour) overlaps
/// `[since, until)`, oldest first, at most `limit`.
fn spanning(
    (table, column, span): (&'static str, &'static str, i64),
    columns: &[&'static str],
    series: i64,
    (since, until): (i64, i64),
    limit: u64,
) -> Statement {
    Select::from(table)
        .columns(columns)
        .filter(col("series_id").eq(param(series)))
        .filter(col(column).gt(param(since - span)))
        .filter(col(column).lt(param(until)))
        .with(Section::OrderBy(vec![(col(column), Order::Asc)]))
        .with(Section::Limit(limit))
        .into()
}

/// A series' days of hourly trends that overlap `[since, until)`.
pub fn days(series: i64, since: i64, until: i64, limit: u64) -> Statement {
    let table = ("perf_days", "day", 86_400_000);
    spanning(table, &["day", "hours"], series, (since, until), limit)
}

/// A series' rows of raw points (parts of hours) that overlap `[since, until)`.
pub fn raw_hours(series: i64, since: i64, until: i64, limit: u64) -> Statement {
    let table = ("perf_raw", "hour", 3_600_000);
    spanning(table, &["hour", "points"], series, (since, until), limit)
}

/// Every id of a table.
pub fn table_ids(table: &'static str) -> Statement {
    Select::from(table)
        .columns(&["id"])
        .with(Section::OrderBy(vec![(col("id"), Order::Asc)]))
        .into()
}

/// A series' points in the table of schema version 3, oldest first (the upgrade to 4 folds
/// them into their hours).
pub fn legacy_points(series: i64) -> Statement {
    Select::from("perf_points")
        .columns(&["t", "value"])
        .filter(col("series_id").eq(param(series)))
        .with(Section::OrderBy(vec![(col("t"), Order::Asc)]))
        .into()
}

/// Rows in a table (`/metrics`, the dashboard).
pub fn table_rows(table: &'static str) -> Statement {
    Select::from(table)
        .with(Section::Columns(vec![(Expr::count_star(), Some("n"))]))
        .into()
}

/// The runs of a host's check that changed its state in `[since, until)`, oldest first (the
/// chart's marks): at most 500.
pub fn state_changes(host: Option<&str>, check: &str, since: i64, until: i64) -> Statement {
    let named = col("check_name").eq(param(check)).or(col("check_name")
        .is_null()
        .and(col("script").eq(param(check))));
    Select::from("runs")
        .columns(&["finished_at", "status"])
        .filter(keyed(host_is(host).and(named)))
        .filter(col("changed").eq(lit(true)))
        .filter(col("finished_at").ge(param(since)))
        .filter(col("finished_at").lt(param(until)))
        .with(Section::OrderBy(vec![(col("finished_at"), Order::Asc)]))
        .with(Section::Limit(500))
        .into()
}
