//! Claiming ahead (`[monitord] claim_ahead`): schedules fire and jobs are claimed a little
//! before their due time, and each starts at its due time from memory, so that a write lock
//! held meanwhile by another process (a large `hostler apply`) does not delay it; a job
//! claimed ahead and not yet started goes back to the queue unrun when the daemon stops.

use std::sync::Arc;
use std::time::Duration;

use hostler::monitord::DaemonOptions;
use hostler::queue::timing::next_due;
use hostler::store::{JobState, NewJob, NewSchedule, Store, Timing, now_ms};

use crate::monitord::{Daemon, all_runs, host, job, opts};
use crate::util::{Work, wait_for};

/// A database with the script `tick` (it says OK) and the host `a`.
fn ticking() -> (Work, Arc<Store>) {
    let w = Work::new();
    let store = w.store();
    w.script(&store, "tick", "ok()");
    host(&store, "a");
    (w, store)
}

/// A schedule of `tick` on `a`, every `every_ms`, first due at `due`; its id.
fn schedule(store: &Store, every_ms: i64, due: i64) -> i64 {
    store
        .add_schedule(&NewSchedule {
            max_attempts: 1,
            next_due: due,
            ..NewSchedule::every("tick", Some("a"), every_ms)
        })
        .expect("schedule")
}

/// A job of `tick` on `host`, due at `due`; its id.
fn job_due(store: &Store, host: &str, due: i64) -> i64 {
    store
        .enqueue(&NewJob {
            due_at: due,
            ..job("tick", Some(host), 0)
        })
        .expect("job")
        .0
}

/// A daemon's options with `claim_ahead` of 1 s.
fn ahead_opts() -> DaemonOptions {
    let mut o = opts("n1");
    o.claim_ahead = Duration::from_secs(1);
    o
}

/// Whether job `id` is claimed (running under a lease) within `limit`.
fn claimed(store: &Store, id: i64, limit: Duration) -> bool {
    wait_for(limit, || {
        store.job(id).is_ok_and(|j| j.state == JobState::Running)
    })
}

/// Holds SQLite's write lock from another connection until `until` (epoch ms).
fn hold_write_lock(w: &Work, until: i64) {
    let conn = rusqlite::Connection::open(w.db()).expect("sqlite");
    conn.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    std::thread::sleep(Duration::from_millis(
        u64::try_from(until - now_ms()).unwrap_or(0),
    ));
    conn.execute_batch("COMMIT").expect("commit");
}

/// A schedule due in 1.5 s fires and is claimed ahead; another connection then holds
/// SQLite's write lock across the due time (as an apply of a whole site does). The job still
/// starts on time: nothing between its claim and its start needs the database.
#[test]
fn a_job_claimed_ahead_starts_on_time_while_another_process_holds_the_write_lock() {
    let (w, store) = ticking();
    let due = now_ms() + 1_500;
    schedule(&store, 600_000, due);
    drop(store);
    let mut o = ahead_opts();
    o.poll_interval = Duration::from_secs(30);
    let health = o.health.clone();
    let (d, store) = Daemon::start(&w, &[], o);
    let claimed = wait_for(Duration::from_millis(1_400), || {
        store
            .jobs()
            .expect("jobs")
            .iter()
            .any(|j| j.state == JobState::Running && j.due_at == due)
    });
    assert!(
        claimed,
        "the job was not claimed ahead of its due time: {:?}",
        store.jobs()
    );
    assert!(now_ms() < due, "claimed only at its due time");
    // The lock is held from before the due time until 700 ms after it.
    hold_write_lock(&w, due + 700);
    assert!(
        wait_for(Duration::from_secs(10), || !all_runs(&store).is_empty()),
        "no run recorded after the lock was let go"
    );
    d.stop();
    let started = all_runs(&store)[0].started_at;
    assert!(
        (due..due + 150).contains(&started),
        "started {} ms after its due time, while the lock was held",
        started - due
    );
    let (counts, _) = health.lateness.read();
    assert_eq!(counts.iter().sum::<u64>(), 1, "{counts:?}");
}

/// Without claiming ahead the same lock delays the start: the test above can fail.
#[test]
fn without_claiming_ahead_a_held_write_lock_delays_the_start() {
    let (w, store) = ticking();
    let due = now_ms() + 1_000;
    job_due(&store, "a", due);
    drop(store);
    let mut o = opts("n1");
    o.claim_ahead = Duration::ZERO;
    let (d, store) = Daemon::start(&w, &[], o);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        store
            .jobs()
            .expect("jobs")
            .iter()
            .all(|j| j.state == JobState::Queued),
        "claimed before its due time with claim_ahead = 0"
    );
    hold_write_lock(&w, due + 700);
    assert!(wait_for(Duration::from_secs(10), || !all_runs(&store).is_empty()));
    d.stop();
    let started = all_runs(&store)[0].started_at;
    assert!(
        started >= due + 600,
        "started {} ms after its due time although the lock was held 700 ms past it",
        started - due
    );
}

/// A job claimed ahead and not started when the daemon stops goes back to the queue as it
/// was: queued, its attempt uncounted, no run recorded.
#[test]
fn a_job_claimed_ahead_goes_back_unrun_when_the_daemon_stops() {
    let (w, store) = ticking();
    // Long enough ahead for `hostler queue` to see it claimed and waiting.
    let due = now_ms() + 900;
    let id = job_due(&store, "a", due);
    drop(store);
    let (d, store) = Daemon::start(&w, &[], ahead_opts());
    assert!(
        claimed(&store, id, Duration::from_millis(800)),
        "not claimed ahead"
    );
    let listed = crate::util::stdout(&w.run(&["queue"]));
    let row = listed
        .lines()
        .find(|l| l.contains("tick"))
        .unwrap_or_default()
        .to_string();
    d.stop();
    assert!(
        row.contains("claimed") && row.contains("n1"),
        "a job claimed ahead is listed as claimed on its node: {listed}"
    );
    let j = store.job(id).expect("the job is still queued");
    assert_eq!(
        (j.state, j.attempts, j.due_at, j.lease_owner.as_deref()),
        (JobState::Queued, 0, due, None)
    );
    assert!(all_runs(&store).is_empty(), "{:?}", all_runs(&store));
}

/// A schedule fired ahead of its due time moves on past it: every interval and cron
/// schedule's next time is after both now and the time it was due.
#[test]
fn a_schedule_fired_ahead_moves_on_past_its_due_time() {
    // On a minute's boundary: each cron case is due at its next occurrence after now.
    let now = 1_800_000_000_000;
    for (timing, seen) in [
        (Timing::Cron("* * * * *".into()), now + 60_000),
        (Timing::Cron("*/5 * * * * *".into()), now + 5_000),
        (Timing::Every(1_000), now + 999),
        (Timing::Every(60_000), now + 1),
        (Timing::Every(1_000), now - 5_500),
    ] {
        let next = next_due(&timing, seen, now).expect("next").expect("some");
        assert!(
            next > seen && next > now,
            "{timing:?} due at {seen} (now {now}): next {next}"
        );
    }
}

/// A schedule whose interval is no longer than `claim_ahead` and whose first firing is late
/// (made due before the daemon started) catches up at once, not at the next poll (30 s here):
/// after the first run, each starts at its due time.
#[test]
fn a_schedule_every_second_catches_up_and_then_starts_on_time() {
    let (w, store) = ticking();
    schedule(&store, 1_000, now_ms() - 300);
    drop(store);
    let mut o = ahead_opts();
    o.poll_interval = Duration::from_secs(30);
    let health = o.health.clone();
    let (d, _store) = Daemon::start(&w, &[], o);
    // Started jobs, counted by the lateness histogram (OK runs that change nothing share a
    // row of the history).
    let started = || health.lateness.read().0.iter().sum::<u64>();
    assert!(
        wait_for(Duration::from_secs(10), || started() >= 4),
        "fewer than 4 starts of a schedule every second: {}",
        started()
    );
    d.stop();
    let (counts, _) = health.lateness.read();
    let within_25ms: u64 = hostler::health::LATENESS_BOUNDS_MS
        .iter()
        .zip(counts)
        .filter(|(b, _)| **b <= 25)
        .map(|(_, n)| n)
        .sum();
    let all: u64 = counts.iter().sum();
    assert!(
        all >= 4 && within_25ms + 1 >= all,
        "more than the first start was late: {counts:?}"
    );
}

/// A schedule's firing is coalesced into a run of its check that is overdue (queued, due, not
/// started: the node is behind), and only into that: the last firing's job still waiting for
/// its time (fired ahead, or spread over the interval) holds no firing back.
#[test]
fn a_firing_is_held_back_only_by_an_overdue_job_of_its_check() {
    let (_w, store) = ticking();
    let every = 10_000;
    let id = schedule(&store, every, now_ms() + 500);
    let hosts = vec![Some("a".to_string())];
    let fire = |seen: i64| {
        let s = store.schedule(id).expect("schedule");
        store
            .fire_schedule(&s, seen, &hosts, Some(seen + every))
            .expect("fire")
    };
    let seen = store.schedule(id).expect("schedule").next_due.expect("due");
    assert_eq!(fire(seen), 1);
    // The first job waits for its time: the next firing queues its own.
    assert_eq!(fire(seen + every), 1, "held back by a job not yet due");
    assert_eq!(store.jobs().expect("jobs").len(), 2);
    // A run of the check that is overdue: the next firing is coalesced into it.
    for j in store.jobs().expect("jobs") {
        store.cancel_job(j.id, "n1").expect("cancel");
    }
    job_due(&store, "a", now_ms() - 1_000);
    assert_eq!(
        fire(seen + 2 * every),
        0,
        "not coalesced into an overdue job"
    );
    assert_eq!(store.jobs().expect("jobs").len(), 1);
}

/// A node holds at most twice `max_concurrent` jobs: claimed ahead, a job whose time comes
/// while every slot is taken waits as a due one, and makes no room for more to be claimed.
#[test]
fn a_node_with_every_slot_taken_holds_at_most_twice_its_slots() {
    let (w, store) = ticking();
    w.script(&store, "slow", "sleep(3.0); ok()");
    let start = now_ms();
    host(&store, "busy");
    store
        .enqueue(&NewJob {
            due_at: start,
            ..job("slow", Some("busy"), 0)
        })
        .expect("slow job");
    for i in 0..6 {
        let h = format!("h{i}");
        host(&store, &h);
        job_due(&store, &h, start + 300 + 300 * i);
    }
    drop(store);
    let mut o = ahead_opts();
    o.max_concurrent = 1;
    let (d, store) = Daemon::start(&w, &[], o);
    let mut most = 0;
    while now_ms() < start + 2_500 {
        let held = store
            .jobs()
            .expect("jobs")
            .iter()
            .filter(|j| j.state == JobState::Running)
            .count();
        most = most.max(held);
        std::thread::sleep(Duration::from_millis(50));
    }
    d.stop();
    assert!(
        (1..=2).contains(&most),
        "held {most} jobs at once with one slot"
    );
}

/// A job claimed ahead and asked to cancel before its due time is not given back to the
/// queue when the daemon stops: it stays cancelled.
#[test]
fn a_job_claimed_ahead_and_cancelled_is_not_given_back() {
    let (w, store) = ticking();
    let id = job_due(&store, "a", now_ms() + 900);
    drop(store);
    let (d, store) = Daemon::start(&w, &[], ahead_opts());
    assert!(
        claimed(&store, id, Duration::from_millis(800)),
        "not claimed ahead"
    );
    store.cancel_job(id, "n1").expect("cancel");
    d.stop();
    let state = store.job(id).map(|j| j.state);
    assert!(
        !matches!(state, Ok(JobState::Queued)),
        "a cancelled job went back to the queue: {state:?}"
    );
}

/// A claim of jobs ahead alone waits until a quarter of the slots is free for them, so a node
/// that keeps up claims them in batches, not one at a time as each held job starts (a
/// transaction a check). A job left over is not held back: it is claimed when it falls due,
/// and starts then.
#[test]
fn jobs_ahead_are_claimed_in_batches_and_one_left_over_still_starts_on_time() {
    let (w, store) = ticking();
    let due = now_ms() + 2_500;
    let held: Vec<i64> = (0..7)
        .map(|i| {
            let h = format!("h{i}");
            host(&store, &h);
            job_due(&store, &h, due)
        })
        .collect();
    host(&store, "late");
    host(&store, "far");
    drop(store);
    let mut o = ahead_opts();
    o.claim_ahead = Duration::from_secs(2);
    // A batch is 2: with 7 of the 8 held ahead, a claim of one more alone waits.
    o.max_concurrent = 8;
    o.poll_interval = Duration::from_secs(30);
    let (d, store) = Daemon::start(&w, &[], o);
    for id in &held {
        assert!(
            claimed(&store, *id, Duration::from_millis(1_800)),
            "job {id} was not claimed ahead: {:?}",
            store.jobs()
        );
    }
    let left = job_due(&store, "late", due);
    std::thread::sleep(Duration::from_millis(50));
    // Another job queued here wakes the daemon again, with the first one in reach.
    let far = job_due(&store, "far", due + 600_000);
    std::thread::sleep(Duration::from_millis(250));
    let state = store.job(left).map(|j| j.state);
    assert!(
        now_ms() < due - 100,
        "the test ran too slowly to tell (the jobs fell due)"
    );
    assert_eq!(
        state.ok(),
        Some(JobState::Queued),
        "one job was claimed ahead alone, into room for one"
    );
    assert!(
        wait_for(Duration::from_secs(10), || all_runs(&store).len() == 8),
        "not every job ran: {:?}",
        all_runs(&store)
    );
    d.stop();
    assert_eq!(store.job(far).map(|j| j.state).ok(), Some(JobState::Queued));
    let runs = all_runs(&store);
    let late = runs
        .iter()
        .map(|r| r.started_at - due)
        .max()
        .unwrap_or_default();
    assert!(
        (0..250).contains(&late),
        "a job started {late} ms after its due time"
    );
}

/// A job due while its host is busy (per host one at a time) is claimed as soon as the job
/// before it finishes, although a pass woken by a finished job alone reuses the last reads of
/// the queue: they saw a job due already, so the pass tries a claim. (Without that the job
/// would wait for the next lease renewal or poll.)
#[test]
fn a_job_due_behind_its_busy_host_starts_when_the_host_is_free() {
    let (w, store) = ticking();
    w.script(&store, "slow", "sleep(0.1); ok()");
    // Both due now; the first (of a higher priority) is claimed, the second waits for `a`.
    let first = store
        .enqueue(&job("slow", Some("a"), 1))
        .expect("slow job")
        .0;
    let second = job_due(&store, "a", now_ms());
    drop(store);
    let mut o = ahead_opts();
    o.poll_interval = Duration::from_secs(30);
    o.lease = Duration::from_secs(30);
    let (d, store) = Daemon::start(&w, &[], o);
    assert!(
        wait_for(Duration::from_secs(10), || all_runs(&store).len() == 2),
        "both jobs did not run: {:?}",
        store.jobs()
    );
    d.stop();
    let runs = all_runs(&store);
    let (slow, tick) = (&runs[0], &runs[1]);
    assert_eq!(
        (slow.job_id, tick.job_id),
        (Some(first), Some(second)),
        "{runs:?}"
    );
    let gap = tick.started_at - slow.finished_at;
    assert!(
        gap < 300,
        "the job behind its busy host started {gap} ms after the host was free"
    );
}
