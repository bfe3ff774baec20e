//! History that stays bounded: housekeeping keeps exactly what `[history]` says (runs by
//! status and change, transcripts, notifications, perfdata points and trends), reuses the
//! space it frees, and rolls perfdata up into hourly trends that match the raw points.

use hostler::store::history::{Pruned, Retention};
use hostler::store::{JobAction, NewRun, NewSchedule, Status, Store};
use proptest::prelude::*;

use crate::util::{Work, code, stdout};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn schedule(store: &Store) -> i64 {
    if store.host("localhost").is_err() {
        store
            .add_host(&hostler::store::NewHost {
                name: "localhost".into(),
                address: "127.0.0.1".into(),
                ..hostler::store::NewHost::default()
            })
            .expect("host");
    }
    store
        .add_schedule(&NewSchedule {
            next_due: hostler::store::now_ms() + HOUR,
            ..NewSchedule::every("c", Some("localhost"), 60_000)
        })
        .expect("schedule")
}

fn run(schedule: i64, status: Status, at: i64, transcript: &str) -> NewRun {
    NewRun {
        check_name: None,
        job_id: None,
        schedule_id: Some(schedule),
        script: "c".into(),
        script_version: Some(1),
        host: Some("localhost".into()),
        node: Some("t".into()),
        status,
        message: format!("said {status}"),
        perfdata: Some(format!("v={}", at % 1000)),
        output: "out".into(),
        transcript: transcript.into(),
        started_at: at - 5,
        finished_at: at,
        attempt: 1,
        phase: None,
        notifications: vec![],
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    let r = store.raw(sql, false).expect(sql);
    r.rows[0][0]
        .to_text()
        .and_then(|t| t.parse().ok())
        .expect("a count")
}

/// Passes until a pass finds nothing more to do.
fn prune_fully(store: &Store, r: &Retention, now: i64) -> Pruned {
    let mut all = Pruned::default();
    for _ in 0..400 {
        let p = store.prune(r, now, false, &|| {}).expect("prune");
        all.runs += p.runs;
        all.transcripts += p.transcripts;
        all.notifications += p.notifications;
        all.points += p.points;
        all.trends += p.trends;
        if p.is_empty() {
            return all;
        }
    }
    panic!("housekeeping did not settle");
}

#[test]
fn housekeeping_keeps_exactly_what_the_history_section_says() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "c", "ok()");
    let sched = schedule(&store);
    let now = hostler::store::now_ms();
    // (age, status, kept?) in the order they ran. The first run changes the state (none to
    // OK), as does every run whose status differs from the one before it.
    let plan = [
        (40 * DAY, Status::Ok, false), // changed, but older than keep_days (30)
        (20 * DAY, Status::Ok, false), // OK, changed nothing: older than 24 h
        (10 * DAY, Status::Critical, true), // a problem began: kept 30 days
        (9 * DAY, Status::Critical, true), // not OK: kept 30 days
        (8 * DAY, Status::Ok, true),   // the recovery: a change, kept
        (3 * DAY, Status::Ok, false),  // OK, changed nothing, older than 24 h
        (2 * HOUR, Status::Warning, true), // a change, recent
        (HOUR, Status::Ok, true),      // the recovery
        (30 * 60_000, Status::Ok, true), // OK, changed nothing, but within 24 h
    ];
    let mut ids = Vec::new();
    for (age, status, _) in plan {
        ids.push(
            store
                .record_run(&run(sched, status, now - age, "T"), JobAction::Keep)
                .expect("record"),
        );
    }
    let changed = count(&store, "SELECT count(*) FROM runs WHERE changed");
    assert_eq!(changed, 5, "the runs that moved the check are marked");
    // Notifications: the problems and recoveries told; two of them made a year and more old.
    let told = count(&store, "SELECT count(*) FROM notifications");
    store
        .raw(
            &format!(
                "UPDATE notifications SET created_at = {} WHERE id IN (SELECT id FROM notifications ORDER BY id LIMIT 2)",
                now - 400 * DAY
            ),
            false,
        )
        .expect("age notifications");
    let r = Retention::default();
    let dry = store.prune(&r, now, true, &|| {}).expect("dry run");
    assert_eq!(dry.runs, 3, "{dry:?}");
    assert_eq!(dry.notifications, 2, "{dry:?}");
    assert_eq!(
        count(&store, "SELECT count(*) FROM runs"),
        9,
        "a dry run changes nothing"
    );
    let done = prune_fully(&store, &r, now);
    assert_eq!(
        (done.runs, done.notifications),
        (dry.runs, dry.notifications),
        "{done:?}"
    );
    let kept: Vec<i64> = ids
        .iter()
        .zip(plan)
        .filter(|(_, (_, _, keep))| *keep)
        .map(|(id, _)| *id)
        .collect();
    let left: Vec<i64> = store
        .raw("SELECT id FROM runs ORDER BY id", false)
        .expect("ids")
        .rows
        .iter()
        .map(|r| r[0].to_text().and_then(|t| t.parse().ok()).expect("id"))
        .collect();
    assert_eq!(left, kept);
    // Transcripts of runs older than 7 days are gone; the runs stay.
    let with_transcript = count(&store, "SELECT count(*) FROM run_transcripts");
    assert_eq!(
        with_transcript, 3,
        "the three runs of the last day keep theirs"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM notifications"),
        told - 2
    );
    // Perfdata: an hour of trend for every hour with a point; raw points only in the hours
    // of the last two days.
    let hours_younger_than = |most: i64| {
        plan.iter()
            .filter(|(age, _, _)| *age < most)
            .map(|(age, _, _)| (now - age) - (now - age).rem_euclid(HOUR))
            .collect::<std::collections::BTreeSet<i64>>()
            .len() as i64
    };
    let trend_hours: i64 = store
        .raw("SELECT hours FROM perf_days", false)
        .expect("days")
        .rows
        .iter()
        .map(|r| r[0].to_text().expect("hours").split_whitespace().count() as i64)
        .sum();
    assert_eq!(trend_hours, hours_younger_than(i64::MAX));
    assert_eq!(
        count(&store, "SELECT count(*) FROM perf_raw"),
        hours_younger_than(2 * DAY - HOUR),
        "a row of raw points per hour of the last two days"
    );
    // The check's last run is never removed, however old: the dashboard links to it.
    let last = store
        .check(Some("localhost"), "c")
        .expect("check")
        .last_run_id;
    assert_eq!(last, Some(*ids.last().expect("ids")));
    let later = store
        .prune(&r, now + 60 * DAY, false, &|| {})
        .expect("prune later");
    assert!(later.runs >= 5, "{later:?}");
    assert_eq!(
        count(&store, "SELECT count(*) FROM runs"),
        1,
        "only the last run"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM run_transcripts"),
        0,
        "no transcript outlives its days or its run"
    );
    // A transcript reads back with its run, from its own row.
    let id = store
        .record_run(&run(sched, Status::Critical, now, "T2"), JobAction::Keep)
        .expect("record");
    assert_eq!(store.run(id).expect("run").transcript, "T2");
}

#[test]
fn housekeeping_gives_back_the_space_it_frees() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "c", "ok()");
    let sched = schedule(&store);
    let now = hostler::store::now_ms();
    let big = "x".repeat(20_000);
    let fill = |from: i64| {
        for i in 0..1_500 {
            let mut r = run(sched, Status::Critical, from + i, &big);
            r.output = big.clone();
            store.record_run(&r, JobAction::Keep).expect("record");
        }
    };
    fill(now - 60 * DAY);
    let full = store.database_bytes().expect("a file");
    let r = Retention::default();
    let done = prune_fully(&store, &r, now);
    assert_eq!(done.runs, 1_499, "all but the check's last run: {done:?}");
    let after = store.database_bytes().expect("a file");
    assert!(after < full / 4, "the file shrank: {full} -> {after} bytes");
    // Filled again with as much: it grows back to about what it was, not twice that.
    fill(now - HOUR);
    let again = store.database_bytes().expect("a file");
    assert!(again < full + full / 5, "{full} -> {again} bytes");
}

#[test]
fn prune_by_hand_says_what_it_removes() {
    let w = Work::new();
    assert_eq!(code(&w.run(&["init"])), 0);
    let store = w.store();
    w.script(&store, "c", "ok()");
    let sched = schedule(&store);
    let now = hostler::store::now_ms();
    for age in [50 * DAY, 40 * DAY, HOUR] {
        store
            .record_run(
                &run(sched, Status::Critical, now - age, ""),
                JobAction::Keep,
            )
            .expect("record");
    }
    drop(store);
    let o = w.run(&["history", "prune", "--dry-run"]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).starts_with("would remove: 2 runs,"),
        "{}",
        stdout(&o)
    );
    let o = w.run(&["runs", "prune", "--json"]);
    assert_eq!(code(&o), 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["runs"], 2, "{v}");
    let o = w.run(&["history", "prune"]);
    assert!(stdout(&o).starts_with("removed: 0 runs,"), "{}", stdout(&o));
}

/// /metrics' run counters count every run recorded, with its duration, however many OK runs
/// share a row and however many rows housekeeping deletes: they never go down.
#[test]
fn run_totals_outlive_housekeeping_and_shared_rows() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "c", "ok()");
    let sched = schedule(&store);
    let now = hostler::store::now_ms();
    let plan = [
        Status::Ok,
        Status::Ok,
        Status::Ok,
        Status::Critical,
        Status::Critical,
    ];
    for (i, status) in plan.iter().enumerate() {
        let r = run(sched, *status, now - 40 * DAY + i as i64 * 60_000, "");
        store.record_run(&r, JobAction::Keep).expect("record");
    }
    store
        .record_run(&run(sched, Status::Ok, now, ""), JobAction::Keep)
        .expect("record");
    let totals = |store: &Store| -> Vec<(String, i64, i64)> {
        let mut t: Vec<_> = store
            .run_stats()
            .expect("stats")
            .by_status
            .iter()
            .filter(|s| s.runs > 0)
            .map(|s| (s.status.to_string(), s.runs, s.ms))
            .collect();
        t.sort();
        t
    };
    // Each run of the helper lasts 5 ms.
    let want = vec![("critical".to_string(), 2, 10), ("ok".to_string(), 4, 20)];
    assert_eq!(totals(&store), want);
    let rows = count(&store, "SELECT count(*) FROM runs");
    assert!(rows < 6, "OK runs share rows: {rows}");
    let done = prune_fully(&store, &Retention::default(), now);
    assert!(done.runs >= 2, "{done:?}");
    assert_eq!(totals(&store), want, "housekeeping lowers no counter");
}

/// An hour's raw points are kept in rows of at most `PART_POINTS`, so adding one rewrites one
/// small row whatever the hour holds: 150 points of one hour make rows of 60, 60 and 30, and
/// read back whole and in order. A row written before parts (an hour's first points in one
/// row, however many) takes no more: the next point starts a part after it.
#[test]
fn an_hours_raw_points_are_kept_in_parts_and_read_back_whole() {
    use hostler::store::series::PART_POINTS;
    let w = Work::new();
    let store = w.store();
    w.script(&store, "c", "ok()");
    let sched = schedule(&store);
    let now = hostler::store::now_ms();
    let hour = now - now.rem_euclid(HOUR) - 2 * HOUR;
    let record = |i: i64| {
        let mut r = run(sched, Status::Ok, hour + i * 1_000, "");
        r.perfdata = Some(format!("v={i}"));
        store.record_run(&r, JobAction::Keep).expect("record");
    };
    for i in 0..150 {
        record(i);
    }
    let parts = || {
        store
            .raw("SELECT hour, points FROM perf_raw ORDER BY hour", false)
            .expect("rows")
            .rows
            .iter()
            .map(|r| {
                let key: i64 = r[0].to_text().and_then(|t| t.parse().ok()).expect("hour");
                let n = r[1].to_text().expect("points").split_whitespace().count();
                (key - hour, n)
            })
            .collect::<Vec<(i64, usize)>>()
    };
    assert_eq!(PART_POINTS, 60);
    assert_eq!(parts(), vec![(0, 60), (1, 60), (2, 30)]);
    let read = |n: i64| {
        let id = store.series(Some("localhost"), "c").expect("series")[0].id;
        let (_, samples) = store
            .samples(id, hour, hour + HOUR, 30 * DAY)
            .expect("samples");
        let got: Vec<(i64, f64)> = samples.iter().map(|s| (s.t, s.avg)).collect();
        let want: Vec<(i64, f64)> = (0..n).map(|i| (hour + i * 1_000, i as f64)).collect();
        assert_eq!(got, want);
    };
    read(150);
    // The same hour as a row written before parts: all its points in one row.
    let conn = rusqlite::Connection::open(w.db()).expect("sqlite");
    conn.execute_batch(&format!(
        "UPDATE perf_raw SET points = (SELECT group_concat(points, ' ') FROM \
           (SELECT points FROM perf_raw ORDER BY hour)) WHERE hour = {hour}; \
         DELETE FROM perf_raw WHERE hour > {hour};"
    ))
    .expect("one row");
    assert_eq!(parts(), vec![(0, 150)]);
    record(150);
    assert_eq!(parts(), vec![(0, 150), (1, 1)]);
    read(151);
}

/// A series' points over two days, its unit changed on the second: the first point of each
/// day starts that day's row, the others find it with their series in one read, and every
/// point reads back (raw and hourly) under the series' latest unit.
#[test]
fn a_series_takes_points_across_days_and_a_changed_unit() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "c", "ok()");
    let sched = schedule(&store);
    let now = hostler::store::now_ms();
    let day0 = now - now.rem_euclid(DAY) - 2 * DAY;
    let points = [
        (day0 + HOUR, "v=1ms"),
        (day0 + 2 * HOUR, "v=2ms"),
        (day0 + DAY + HOUR, "v=3s;5;9"),
        (day0 + DAY + HOUR + 1_000, "v=4s;5;9"),
    ];
    for (t, perf) in points {
        let mut r = run(sched, Status::Ok, t, "");
        r.perfdata = Some(perf.into());
        store.record_run(&r, JobAction::Keep).expect("record");
    }
    let series = store.series(Some("localhost"), "c").expect("series");
    assert_eq!(series.len(), 1);
    let s = &series[0];
    assert_eq!(
        (s.uom.as_str(), s.warn.as_deref(), s.crit.as_deref()),
        ("s", Some("5"), Some("9"))
    );
    let days = store
        .raw("SELECT day, hours FROM perf_days ORDER BY day", false)
        .expect("days")
        .rows;
    assert_eq!(days.len(), 2, "a row a day");
    let (_, raw) = store
        .samples(s.id, day0, day0 + 2 * DAY, 30 * DAY)
        .expect("raw");
    let got: Vec<(i64, f64)> = raw.iter().map(|x| (x.t, x.avg)).collect();
    let want: Vec<(i64, f64)> = points
        .iter()
        .zip(1..)
        .map(|((t, _), v)| (*t, f64::from(v)))
        .collect();
    assert_eq!(got, want);
    let (_, hourly) = store
        .samples(s.id, day0, day0 + 2 * DAY, 0)
        .expect("hourly");
    let counts: Vec<(i64, i64)> = hourly.iter().map(|x| (x.t - day0, x.n)).collect();
    assert_eq!(counts, [(HOUR, 1), (2 * HOUR, 1), (DAY + HOUR, 2)]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Points recorded through runs' perfdata read back exactly, in time order, and each
    /// hour's figures equal the count, minimum, average and maximum computed here from them.
    #[test]
    fn hourly_trends_match_the_raw_points(
        points in proptest::collection::vec((0usize..3, 0i64..(5 * HOUR), -1e6f64..1e6), 1..120)
    ) {
        let w = Work::new();
        let store = w.store();
        w.script(&store, "c", "ok()");
        let sched = schedule(&store);
        let now = hostler::store::now_ms();
        let base = now - now.rem_euclid(HOUR) - 6 * HOUR;
        let mut want: std::collections::BTreeMap<(usize, i64), Vec<(i64, f64)>> = Default::default();
        for (s, dt, v) in &points {
            let t = base + dt;
            let mut r = run(sched, Status::Ok, t, "");
            r.perfdata = Some(format!("l{s}={v}"));
            store.record_run(&r, JobAction::Keep).expect("record");
            want.entry((*s, t - t.rem_euclid(HOUR))).or_default().push((t, *v));
        }
        let series = store.series(Some("localhost"), "c").expect("series");
        let id = |s: usize| series.iter().find(|x| x.label == format!("l{s}")).expect("a series").id;
        // Hourly: each hour's count, minimum, maximum and average, as its day's row keeps it.
        let mut hours = 0;
        for x in &series {
            let s: usize = x.label[1..].parse().expect("label");
            let (res, samples) = store.samples(x.id, base, now, 0).expect("samples");
            prop_assert_eq!(res, hostler::store::series::Resolution::Hourly);
            for got in &samples {
                let values = &want[&(s, got.t)];
                let min = values.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
                let max = values.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
                let avg = values.iter().map(|p| p.1).sum::<f64>() / values.len() as f64;
                prop_assert_eq!(got.n as usize, values.len());
                prop_assert_eq!((got.min, got.max), (min, max));
                prop_assert!((got.avg - avg).abs() <= 1e-6 * avg.abs().max(1.0));
            }
            hours += samples.len();
        }
        prop_assert_eq!(hours, want.len(), "an hour's trend for every hour with a point");
        for s in 0..3 {
            if !series.iter().any(|x| x.label == format!("l{s}")) {
                continue;
            }
            // Raw: every point, exactly, in time order.
            let (res, samples) = store.samples(id(s), base, now, 30 * DAY).expect("samples");
            prop_assert_eq!(res, hostler::store::series::Resolution::Raw);
            let mut expect: Vec<(i64, f64)> = want
                .iter()
                .filter(|((x, _), _)| *x == s)
                .flat_map(|(_, v)| v.iter().copied())
                .collect();
            expect.sort_by_key(|p| p.0);
            let read: Vec<(i64, f64)> = samples.iter().map(|x| (x.t, x.avg)).collect();
            prop_assert_eq!(
                read.iter().map(|p| p.0).collect::<Vec<_>>(),
                expect.iter().map(|p| p.0).collect::<Vec<_>>()
            );
            let mut by_time = expect.clone();
            by_time.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let mut read_sorted = read.clone();
            read_sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            prop_assert_eq!(read_sorted, by_time, "the same values, exactly");
        }
    }

    /// A day row's text of hourly trends reads back as the hours written, exactly, for any
    /// finite figures, and an hour with no point stays empty.
    #[test]
    fn day_text_reads_back_exactly(
        hours in proptest::collection::vec(
            proptest::option::of((1i64..1_000_000, proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO, proptest::num::f64::NORMAL | proptest::num::f64::ZERO, proptest::num::f64::NORMAL)),
            24,
        )
    ) {
        use hostler::store::series::{Day, Trend, format_day, parse_day};
        let mut day: Day = [None; 24];
        for (h, t) in hours.iter().enumerate() {
            day[h] = t.map(|(n, a, b, sum)| Trend { n, min: a.min(b), max: a.max(b), sum });
        }
        let text = format_day(&day);
        prop_assert_eq!(parse_day(&text), day, "{}", text);
    }

    /// Whatever a day row's text holds (edited by hand, cut short), reading it never panics
    /// and gives only hours with a count and finite figures, the minimum not above the maximum.
    #[test]
    fn any_day_text_reads_as_hours_or_nothing(text in "([0-9:.e -]|[a-z]){0,200}") {
        for t in hostler::store::series::parse_day(&text).iter().flatten() {
            prop_assert!(t.n > 0 && t.min <= t.max && t.sum.is_finite(), "{t:?} from {text:?}");
        }
    }

    /// Whatever an hour's text of points holds (edited by hand, cut short), reading it never
    /// panics and gives only finite values inside the hour.
    #[test]
    fn any_points_text_reads_as_points_or_nothing(text in ".{0,200}", hour in 0i64..1_000_000) {
        let hour = hour * HOUR;
        for (t, v) in hostler::store::series::parse_points(hour, &text) {
            prop_assert!((hour..hour + HOUR).contains(&t) && v.is_finite(), "{t} {v} from {text:?}");
        }
    }

    /// An hour's text of points reads back as the points written, for any finite value.
    #[test]
    fn points_text_reads_back_exactly(
        points in proptest::collection::vec((0i64..HOUR, proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO), 0..50)
    ) {
        use hostler::store::series::{parse_points, push_point};
        let mut text = String::new();
        for (o, v) in &points {
            push_point(&mut text, *o, *v);
        }
        prop_assert!(text.len() <= points.len() * 40, "{text}");
        let back: Vec<(i64, f64)> = parse_points(1_000 * HOUR, &text).collect();
        let want: Vec<(i64, f64)> = points.iter().map(|(o, v)| (1_000 * HOUR + o, *v)).collect();
        prop_assert_eq!(back, want);
    }
}

fn sample(t: i64, v: f64) -> hostler::store::series::Sample {
    hostler::store::series::Sample {
        t,
        n: 1,
        min: v,
        avg: v,
        max: v,
    }
}

/// Parses an SVG as XML (it must be well formed) and gives its elements' names in order.
fn elements(svg: &str) -> Vec<String> {
    let mut r = quick_xml::Reader::from_str(svg);
    let mut names = Vec::new();
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Start(e)) | Ok(quick_xml::events::Event::Empty(e)) => {
                names.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            Ok(quick_xml::events::Event::Eof) => return names,
            Ok(_) => {}
            Err(e) => panic!("not well-formed SVG: {e}\n{svg}"),
        }
    }
}

#[test]
fn charts_draw_points_thresholds_bands_and_changes_as_well_formed_svg() {
    use hostler::web::chart::{Chart, chart, sparkline, threshold_values};
    assert_eq!(threshold_values(Some("@5:10")), vec![5.0, 10.0]);
    assert_eq!(threshold_values(Some("~:20")), vec![20.0]);
    assert_eq!(threshold_values(Some("80")), vec![80.0]);
    assert!(threshold_values(None).is_empty());
    let t0 = 1_790_000_000_000;
    let raw: Vec<_> = (0..10)
        .map(|i| sample(t0 + i * 60_000, i as f64 * 10.0))
        .collect();
    let changes = vec![(t0 + 300_000, "critical".to_string())];
    let svg = chart(&Chart {
        label: "time",
        uom: "ms",
        warn: Some("50"),
        crit: Some("80"),
        since: t0,
        until: t0 + 600_000,
        samples: &raw,
        changes: &changes,
    })
    .into_string();
    let names = elements(&svg);
    assert_eq!(names[0], "svg");
    assert!(names.contains(&"polyline".to_string()), "{svg}");
    assert!(
        svg.contains("class=\"warn\"") && svg.contains("class=\"crit\""),
        "{svg}"
    );
    assert!(svg.contains("class=\"change critical\""), "{svg}");
    assert!(
        svg.contains("vector-effect=\"non-scaling-stroke\""),
        "sharp at any zoom"
    );
    let points = svg
        .split("class=\"avg\" points=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the average line");
    assert_eq!(points.split(' ').count(), 10, "one vertex per point");
    // The crit line (80) is above the warn line (50): smaller y.
    let y_of = |class: &str| -> f64 {
        let at = svg.find(&format!("class=\"{class}\"")).expect(class);
        svg[at..]
            .split("y1=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse().ok())
            .expect("y1")
    };
    assert!(y_of("crit") < y_of("warn"), "{svg}");
    assert!(!svg.contains("polygon"), "raw points have no band");
    // Hourly trends get their min–max band.
    let trends: Vec<_> = (0..5)
        .map(|i| hostler::store::series::Sample {
            t: t0 + i * 3_600_000,
            n: 60,
            min: 1.0,
            avg: 2.0,
            max: 3.0 + i as f64,
        })
        .collect();
    let svg = chart(&Chart {
        label: "load",
        uom: "",
        warn: None,
        crit: None,
        since: t0,
        until: t0 + 5 * 3_600_000,
        samples: &trends,
        changes: &[],
    })
    .into_string();
    assert!(elements(&svg).contains(&"polygon".to_string()), "{svg}");
    // Nothing to draw says so; hostile values (NaN is never stored; huge, equal) still draw.
    let empty = chart(&Chart {
        label: "x",
        uom: "",
        warn: None,
        crit: None,
        since: t0,
        until: t0 + 1,
        samples: &[],
        changes: &[],
    })
    .into_string();
    assert!(empty.contains("no points in this range"));
    let flat: Vec<_> = (0..3).map(|i| sample(t0 + i, 1e300)).collect();
    let svg = chart(&Chart {
        label: "x",
        uom: "B",
        warn: Some("@1e308:"),
        crit: None,
        since: t0,
        until: t0 + 3,
        samples: &flat,
        changes: &[],
    })
    .into_string();
    elements(&svg);
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    // A sparkline needs two points; labels are escaped.
    let one = sparkline(&raw[..1], "x").into_string();
    assert!(!one.contains("<svg"), "{one}");
    let spark = sparkline(&raw, "<b>time</b>").into_string();
    assert!(spark.contains("&lt;b&gt;time"), "{spark}");
    elements(&spark);
}

/// A run that joins a shared row brings its transcript (OK transcripts kept), and none of the
/// row's earlier one stays behind; a run without one leaves the row none.
#[test]
fn a_shared_row_holds_only_its_latest_runs_transcript() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "c", "ok()");
    let sched = schedule(&store);
    let mut t = hostler::store::now_ms() - HOUR;
    let mut record = |transcript: &str| {
        t += 60_000;
        store
            .record_run(&run(sched, Status::Ok, t, transcript), JobAction::Keep)
            .expect("record")
    };
    let first = record("");
    let shared = record("T1");
    assert_ne!(
        first, shared,
        "the first OK changed the state: a row of its own"
    );
    let transcripts = |id: i64| {
        count(
            &store,
            &format!("SELECT count(*) FROM run_transcripts WHERE run_id = {id}"),
        )
    };
    for (transcript, rows) in [("T2", 1), ("", 0), ("", 0), ("T3", 1)] {
        assert_eq!(record(transcript), shared);
        assert_eq!(transcripts(shared), rows, "after {transcript:?}");
        assert_eq!(store.run(shared).expect("run").transcript, transcript);
    }
}

/// OK runs that change nothing share one row (the latest, and how many); every other run
/// keeps its own; with `collapse_ok` off each OK run has its own row again.
#[test]
fn ok_runs_that_change_nothing_share_one_row() {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "c", "ok()");
    let sched = schedule(&store);
    let now = hostler::store::now_ms();
    let mut t = now - 2 * HOUR;
    let mut record = |status: Status, notify: bool| {
        t += 60_000;
        let mut r = run(sched, status, t, "");
        if notify {
            r.notifications.push(hostler::store::Notice {
                event: hostler::store::Alert::Notify,
                subject: "said so".into(),
                body: String::new(),
            });
        }
        (store.record_run(&r, JobAction::Keep).expect("record"), t)
    };
    let (first, _) = record(Status::Ok, false);
    let streak: Vec<_> = (0..5).map(|_| record(Status::Ok, false)).collect();
    let (crit, _) = record(Status::Critical, false);
    let again: Vec<_> = (0..2).map(|_| record(Status::Critical, false)).collect();
    let (recovery, _) = record(Status::Ok, false);
    let (told, _) = record(Status::Ok, true);
    let after: Vec<_> = (0..3).map(|_| record(Status::Ok, false)).collect();
    // The first OK changed the state (none to OK): its own row. The five after it: one row.
    assert!(
        streak.iter().all(|(id, _)| *id == streak[0].0),
        "{streak:?}"
    );
    assert_ne!(streak[0].0, first);
    let row = store.run(streak[0].0).expect("the streak's row");
    assert_eq!(row.repeats, 5);
    assert_eq!(row.finished_at, streak[4].1, "the row is the latest run");
    assert_ne!(
        again[0].0, again[1].0,
        "every run that is not OK has its own row"
    );
    assert!(![first, crit, again[0].0, recovery].contains(&told));
    // A run that told something keeps its row; the OK runs after it get a new one.
    assert!(after.iter().all(|(id, _)| *id == after[0].0 && *id != told));
    assert_eq!(store.run(told).expect("told").repeats, 1);
    assert_eq!(
        store.run(after[0].0).expect("after").repeats,
        3,
        "counted from the run after the one that told"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM runs"), 8);
    assert_eq!(
        count(&store, "SELECT sum(repeats) FROM runs"),
        14,
        "every run counted"
    );
    assert_eq!(
        store
            .check(Some("localhost"), "c")
            .expect("check")
            .last_run_id,
        Some(after[0].0)
    );
    // Perfdata: a point per run, shared row or not.
    let series = store.series(Some("localhost"), "c").expect("series");
    let (_, points) = store
        .samples(series[0].id, now - 3 * HOUR, now + HOUR, DAY)
        .expect("points");
    assert_eq!(points.len(), 14);
    // Each run its own row when asked.
    store.set_policy(hostler::store::checks::Policy {
        collapse_ok: false,
        ..Default::default()
    });
    let (a, _) = record(Status::Ok, false);
    let (b, _) = record(Status::Ok, false);
    assert!(a != b && a != after[0].0, "{a} {b}");
}
