//! Applies schema.sql to a new database, or upgrades an older one, in one transaction.
//!
//! The version lives in `settings` under `schema_version`. The check is a read, so a current
//! database opened read-only still works; only a missing or older schema takes the write lock.

use std::sync::OnceLock;

use super::statements;
use super::{Conn, ConnExt, Store, StoreError};
use crate::sql::{Schema, SchemaError, Statement};

/// schema.sql, compiled in.
pub const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// The parsed data model.
pub fn schema() -> Result<&'static Schema, SchemaError> {
    static SCHEMA: OnceLock<Result<Schema, SchemaError>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| Schema::parse(SCHEMA_SQL))
        .as_ref()
        .map_err(Clone::clone)
}

/// What an upgrade step adds, taken from schema.sql itself (a new table is created as a new
/// database would create it, a new column as the schema declares it).
enum Add {
    Table(&'static str),
    Column(&'static str, &'static str),
    Index(&'static str),
    /// Schema version 3's raw points, a row each, folded into their hours' rows.
    FoldPoints,
    /// Transcripts moved from their runs' rows into run_transcripts.
    MoveTranscripts,
    /// Schema versions 3 and 4's hourly trends, a row each, packed into rows per day.
    PackTrends,
    /// Runs recorded before schema version 5 given the key of their names.
    KeyRuns,
    /// The run totals started from the runs kept.
    SeedTotals,
    /// An index no longer declared (table, index), dropped if it is there.
    DropIndex(&'static str, &'static str),
    /// A column that a later version drops (table, column, type), so no longer in schema.sql.
    OldColumn(&'static str, &'static str, &'static str),
    /// A column no longer declared (table, column), dropped.
    DropColumn(&'static str, &'static str),
}

/// `DROP INDEX` if the index is there, in a dialect's words.
fn drop_index(d: crate::sql::Dialect, table: &str, index: &str) -> String {
    use crate::sql::Dialect;
    match d {
        Dialect::Sqlite | Dialect::Postgres => format!("DROP INDEX IF EXISTS {index}"),
        // sysindexes is there from 2000 on (a compatibility view since 2005).
        Dialect::Mssql2000 | Dialect::Mssql2005 => format!(
            "IF EXISTS (SELECT 1 FROM sysindexes WHERE name = '{index}') DROP INDEX {table}.{index}"
        ),
        Dialect::Mysql => format!("DROP INDEX {index} ON {table}"),
    }
}

/// The upgrade step from `from` to the next version.
fn step(from: i64) -> Option<&'static [Add]> {
    match from {
        // 2: checks and their state, downtimes, notifications that say what they tell.
        1 => Some(&[
            Add::Table("checks"),
            Add::Table("downtimes"),
            Add::Column("notifications", "event"),
            Add::Column("notifications", "details"),
            Add::Column("schedules", "retries"),
            Add::Column("schedules", "retry_every_ms"),
        ]),
        // 3: arguments per schedule (and its fix), named checks; perfdata series; what
        // housekeeping needs (runs that changed state, notifications by age).
        2 => Some(&[
            Add::Column("schedules", "name"),
            Add::Column("schedules", "args"),
            Add::Column("schedules", "fix_args"),
            Add::Column("jobs", "name"),
            Add::OldColumn("runs", "check_name", "VARCHAR(255)"),
            Add::Column("runs", "changed"),
            Add::Table("perf_series"),
            // Trends come with version 5's perf_days; version 3's tables are not needed.
            Add::Index("notifications_created"),
        ]),
        // 4: OK runs that change nothing share a row; raw points kept a row per hour; trends
        // by hour; transcripts in rows of their own; notifications by run; no runs_schedule.
        3 => Some(&[
            Add::Column("runs", "repeats"),
            Add::Table("perf_raw"),
            Add::FoldPoints,
            Add::Table("run_transcripts"),
            Add::MoveTranscripts,
            // The fix guard's count is served by runs_host_script (fixes are few per host).
            Add::DropIndex("runs", "runs_schedule"),
            Add::Index("notifications_run"),
        ]),
        // 5: hourly trends packed a row per series and day; a run names its host, script and
        // check by a key (run_keys), and is found by it instead of by an index of the names;
        // no index by start.
        4 => Some(&[
            Add::Table("perf_days"),
            Add::PackTrends,
            Add::Column("runs", "key_id"),
            Add::Table("run_keys"),
            Add::KeyRuns,
            Add::DropIndex("runs", "runs_host_script"),
            Add::DropIndex("runs", "runs_started"),
            Add::DropColumn("runs", "host"),
            Add::DropColumn("runs", "script"),
            Add::DropColumn("runs", "check_name"),
            Add::Index("runs_key"),
            Add::Table("run_totals"),
            Add::SeedTotals,
        ]),
        // 6: dependencies between checks; downtimes that cover children too.
        5 => Some(&[
            Add::Table("dependencies"),
            Add::Table("heartbeats"),
            Add::Column("downtimes", "children"),
            Add::Column("schedules", "sites"),
            Add::Column("schedules", "quorum"),
            Add::Column("jobs", "site"),
            Add::Column("checks", "sites"),
            Add::Column("checks", "told"),
        ]),
        // 7: named channels (more than `channel`'s 64 characters of them), reminders, heartbeats'
        // fixes, and what the site file manages.
        6 => Some(&[
            Add::Column("notifications", "sent"),
            Add::Column("checks", "reminded_at"),
            Add::Column("heartbeats", "fix"),
            Add::Column("hosts", "managed"),
            Add::Column("schedules", "managed"),
            Add::Column("dependencies", "managed"),
            Add::Column("heartbeats", "managed"),
            Add::Column("downtimes", "recurring_id"),
            Add::Table("recurring_downtimes"),
        ]),
        _ => None,
    }
}

/// Runs the step from `from`. `made` lists the tables this migration created whole (from
/// schema.sql, so with every later column): a later step's column of one is there already.
fn upgrade(
    conn: &mut dyn Conn,
    schema: &Schema,
    from: i64,
    made: &mut Vec<&'static str>,
) -> Result<(), StoreError> {
    let steps = step(from)
        .ok_or_else(|| StoreError::Db(format!("no upgrade path from schema version {from}")))?;
    let d = conn.dialect();
    for add in steps {
        let ddl = match add {
            Add::FoldPoints => {
                fold_points(conn)?;
                continue;
            }
            Add::DropIndex(t, i) => Some(vec![drop_index(d, t, i)]),
            // `ADD` without `COLUMN`: the words every dialect takes.
            Add::OldColumn(t, c, ty) => Some(vec![format!("ALTER TABLE {t} ADD {c} {ty}")]),
            Add::DropColumn(t, c) => Some(vec![format!("ALTER TABLE {t} DROP COLUMN {c}")]),
            Add::MoveTranscripts => {
                move_transcripts(conn)?;
                continue;
            }
            Add::PackTrends => {
                pack_trends(conn)?;
                continue;
            }
            Add::KeyRuns => {
                key_runs(conn)?;
                continue;
            }
            Add::SeedTotals => {
                seed_totals(conn)?;
                continue;
            }
            Add::Table(t) => {
                made.push(t);
                schema.table_ddl(t, d)
            }
            Add::Column(t, _) if made.contains(t) => continue,
            Add::Column(t, c) => schema.add_column_ddl(t, c, d).map(|s| vec![s]),
            Add::Index(i) => schema.index_ddl(i, d).map(|s| vec![s]),
        }
        .ok_or_else(|| StoreError::Db("schema.sql lacks what an upgrade step adds".into()))?;
        for stmt in ddl {
            conn.ddl(&stmt)?;
        }
    }
    Ok(())
}

/// Version 3 kept a row per raw point in `perf_points`, and rolled closed hours up into
/// `perf_trends` later: writes each series' points into their hours' rows of `perf_raw`, gives
/// an hour not rolled up yet its trend from them (one already rolled up keeps its own), and
/// drops the old table. A database that came from version 2 in this same upgrade has neither
/// table; the upgrade to 5 packs `perf_trends` into days.
fn fold_points(conn: &mut dyn Conn) -> Result<(), StoreError> {
    use crate::store::series::{MAX_POINTS_PER_HOUR, push_point};
    const HOUR: i64 = 3_600_000;
    if conn
        .query(Statement::TableExists("perf_points"))?
        .is_empty()
    {
        return Ok(());
    }
    let series = conn.query(statements::table_ids("perf_series"))?;
    let mut folded = 0usize;
    for row in &series {
        let id = row.int("id")?;
        let points = conn.query(statements::legacy_points(id))?;
        let mut at = 0;
        while at < points.len() {
            let t0 = points[at].int("t")?;
            let hour = t0 - t0.rem_euclid(HOUR);
            let (mut text, mut n, mut vmin, mut vmax, mut vsum) =
                (String::new(), 0, f64::INFINITY, f64::NEG_INFINITY, 0.0);
            while let Some(p) = points.get(at) {
                let t = p.int("t")?;
                if t - t.rem_euclid(HOUR) != hour {
                    break;
                }
                let v = p.real("value")?;
                if n < MAX_POINTS_PER_HOUR {
                    push_point(&mut text, t - hour, v);
                }
                (n, vmin, vmax, vsum) = (n + 1, vmin.min(v), vmax.max(v), vsum + v);
                at += 1;
            }
            folded += n as usize;
            if conn
                .query_one(statements::legacy_hour_get(id, hour))?
                .is_none()
            {
                let figures = statements::HourRow {
                    n,
                    vmin,
                    vmax,
                    vsum,
                };
                conn.exec(statements::legacy_hour_insert(id, hour, &figures))?;
            }
            conn.exec(statements::raw_insert(id, hour, &text))?;
        }
    }
    conn.ddl("DROP TABLE perf_points")?;
    tracing::info!(
        "{folded} raw perfdata points of {} series moved into their hours",
        series.len()
    );
    Ok(())
}

/// Versions 3 and 4 kept a row per series and hour in `perf_trends`: writes each series'
/// hours into its days' rows of `perf_days`, then drops the old table (a database that came
/// from version 2 in this same upgrade has none).
fn pack_trends(conn: &mut dyn Conn) -> Result<(), StoreError> {
    use crate::store::series::{Day, Trend, format_day};
    const DAY: i64 = 86_400_000;
    if conn
        .query(Statement::TableExists("perf_trends"))?
        .is_empty()
    {
        return Ok(());
    }
    let series = conn.query(statements::table_ids("perf_series"))?;
    let mut packed = 0usize;
    for row in &series {
        let id = row.int("id")?;
        let hours = conn.query(statements::legacy_hours(id))?;
        let mut day: Option<(i64, Day)> = None;
        for h in &hours {
            let hour = h.int("hour")?;
            let start = hour - hour.rem_euclid(DAY);
            if let Some((d, text)) = day.take_if(|(d, _)| *d != start) {
                conn.exec(statements::day_insert(id, d, &format_day(&text)))?;
            }
            let (_, hours) = day.get_or_insert((start, [None; 24]));
            hours[((hour - start) / 3_600_000) as usize] = Some(Trend {
                n: h.int("n")?,
                min: h.real("vmin")?,
                max: h.real("vmax")?,
                sum: h.real("vsum")?,
            });
            packed += 1;
        }
        if let Some((d, text)) = day {
            conn.exec(statements::day_insert(id, d, &format_day(&text)))?;
        }
    }
    conn.ddl("DROP TABLE perf_trends")?;
    tracing::info!(
        "{packed} hourly trends of {} series packed into rows per day",
        series.len()
    );
    Ok(())
}

/// Gives each run recorded before schema version 5 the key of its host, script and check
/// (one UPDATE per key, served by the old index of the names; the names' columns and their
/// index are dropped after).
fn key_runs(conn: &mut dyn Conn) -> Result<(), StoreError> {
    let names = conn.query(statements::legacy_run_names())?;
    for n in &names {
        let host = n.opt_text("host")?;
        let script = n.text("script")?;
        let check = n.opt_text("check_name")?;
        let (h, c) = (host.as_deref(), check.as_deref());
        let key = conn.insert(statements::run_key_insert(h, &script, c))?;
        conn.exec(statements::legacy_key_runs(key, h, &script, c))?;
    }
    if !names.is_empty() {
        tracing::info!("runs of {} checks given their keys", names.len());
    }
    Ok(())
}

/// Gives every status its rows of run totals, one per stripe, started from the runs kept (in
/// stripe 0; all zero in a new database; a row that stands for several OK runs counts them,
/// with its latest's duration).
fn seed_totals(conn: &mut dyn Conn) -> Result<(), StoreError> {
    let kept = conn.query(statements::run_stats())?;
    for status in crate::store::Status::ALL {
        let row = kept
            .iter()
            .find(|r| r.text("status").is_ok_and(|s| s == status.as_str()));
        let (runs, ms) = match row {
            Some(r) => (r.opt_int("n")?.unwrap_or(0), r.opt_int("ms")?.unwrap_or(0)),
            None => (0, 0),
        };
        for stripe in 0..statements::TOTAL_STRIPES {
            let (runs, ms) = if stripe == 0 { (runs, ms) } else { (0, 0) };
            conn.exec(statements::run_total_insert(
                status.as_str(),
                stripe,
                runs,
                ms,
            ))?;
        }
    }
    Ok(())
}

/// Moves the transcripts that runs' rows hold (schema version 3 and before) into rows of
/// run_transcripts, 500 runs at a time, and empties the old column.
fn move_transcripts(conn: &mut dyn Conn) -> Result<(), StoreError> {
    let (mut after, mut moved) = (0, 0usize);
    loop {
        let rows = conn.query(statements::legacy_transcripts(after, 500))?;
        let Some(last) = rows.last() else { break };
        after = last.int("id")?;
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            let id = r.int("id")?;
            let text = r.opt_text("transcript")?.unwrap_or_default();
            conn.exec(statements::transcript_insert(
                id,
                r.int("started_at")?,
                &text,
            ))?;
            ids.push(id);
        }
        moved += ids.len();
        conn.exec(statements::legacy_transcripts_clear(ids))?;
    }
    if moved > 0 {
        tracing::info!("{moved} run transcripts moved into rows of their own");
    }
    Ok(())
}

fn version(conn: &mut dyn Conn) -> Result<i64, StoreError> {
    if conn.query(Statement::TableExists("settings"))?.is_empty() {
        return Ok(0);
    }
    match conn.query_one(statements::setting_get("schema_version"))? {
        Some(row) => row.int("value"),
        None => Ok(0),
    }
}

pub fn migrate(store: &Store) -> Result<(), StoreError> {
    let schema = schema().map_err(|e| StoreError::Db(e.to_string()))?;
    let found = store.read(version)?;
    if found == schema.version {
        return Ok(());
    }
    if found > schema.version {
        return Err(StoreError::TooNew {
            found,
            supported: schema.version,
        });
    }
    store.write(|conn| {
        // Nodes starting together on a fresh PostgreSQL: one makes the schema, the others
        // wait here and then find it made (SQLite's write lock already serialises this).
        conn.exec(crate::sql::Statement::Serialize("hostler_migrate"))?;
        // Another process may have migrated between our read and our write lock.
        let mut v = version(conn)?;
        if v == 0 {
            for ddl in schema.ddl(conn.dialect()) {
                conn.ddl(&ddl)?;
            }
            seed_totals(conn)?;
            v = schema.version;
        }
        let mut made = Vec::new();
        while v < schema.version {
            upgrade(conn, schema, v, &mut made)?;
            v += 1;
            tracing::info!("database schema upgraded to version {v}");
        }
        conn.exec(statements::setting_set(
            "schema_version",
            &schema.version.to_string(),
        ))?;
        Ok(())
    })
}
