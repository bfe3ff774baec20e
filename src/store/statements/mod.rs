//! Every statement the store runs, built from sections. [`catalog`] lists one instance of each
//! so tests can render all of them in every dialect.
//!
//! The queue rules are sections, written once: [`claimable`], [`host_not_busy`] and
//! [`in_site`] are combined by the claim, and [`queue_order`] orders the listing.

use crate::sql::{
    Delete, Expr, Insert, InsertRows, Join, JoinKind, Lock, Order, Section, Select, Statement,
    Update, Upsert, Value, col, lit, now, param, qcol,
};

pub const HOST_COLUMNS: &[&str] = &[
    "id",
    "name",
    "address",
    "port",
    "method",
    "username",
    "key_path",
    "prompt",
    "site",
    "tags",
    "vars",
    "keep_session",
    "enabled",
    "managed",
];
pub const SCRIPT_COLUMNS: &[&str] = &[
    "id",
    "name",
    "source",
    "description",
    "kind",
    "version",
    "updated_at",
];
pub const RUN_COLUMNS: &[&str] = &[
    "id",
    "job_id",
    "schedule_id",
    "script",
    "script_version",
    "host",
    "node",
    "status",
    "message",
    "perfdata",
    "output",
    "transcript",
    "started_at",
    "finished_at",
    "attempt",
    "phase",
    "check_name",
    "repeats",
];
pub const NOTIFICATION_COLUMNS: &[&str] = &[
    "id",
    "run_id",
    "host",
    "subject",
    "body",
    "channel",
    "created_at",
    "delivered_at",
    "error",
    "tries",
    "next_try_at",
    "event",
    "details",
    "sent",
];

mod checks;
mod heartbeats;
mod history;
mod hosts;
mod jobs;
mod runs;
mod schedules;
mod scripts;
mod users;

pub use checks::*;
pub use heartbeats::*;
pub use history::*;
pub use hosts::*;
pub use jobs::*;
pub use runs::*;
pub use schedules::*;
pub use scripts::*;
pub use users::*;

pub fn setting_get(key: &str) -> Statement {
    Select::from("settings")
        .columns(&["value"])
        .filter(col("key").eq(param(key)))
        .into()
}

pub fn setting_set(key: &str, value: &str) -> Statement {
    Upsert {
        table: "settings",
        key: vec!["key"],
        values: vec![("key", param(key)), ("value", param(value))],
        update: vec!["value"],
    }
    .into()
}

/// One instance of every statement the store builds, named, for the rendering tests.
pub fn catalog() -> Vec<(&'static str, Statement)> {
    let job = super::NewJob {
        script: "check".into(),
        host: Some("web1".into()),
        priority: 5,
        due_at: 1_700_000_000_000,
        max_attempts: 3,
        timeout_ms: Some(30_000),
        schedule_id: None,
        args: Some("{}".into()),
        name: Some("web".into()),
    };
    let filter = super::RunFilter {
        host: Some("web1".into()),
        script: Some("check".into()),
        check: None,
        status: Some(super::Status::Critical),
        before_id: Some(100),
        limit: 50,
        summary: false,
    };
    vec![
        ("schema_exists", Statement::TableExists("settings")),
        ("setting_get", setting_get("schema_version")),
        ("setting_set", setting_set("schema_version", "1")),
        ("host_list", host_list().into()),
        ("host_by_name", host_by_name("web1")),
        ("host_secret", host_secret("web1")),
        (
            "host_insert",
            host_insert(vec![
                ("name", param("web1")),
                ("address", param("192.0.2.1")),
                ("method", param("ssh")),
                ("keep_session", param(true)),
                ("created_at", param(1_700_000_000_000i64)),
                ("updated_at", param(1_700_000_000_000i64)),
            ]),
        ),
        ("host_delete", host_delete("web1")),
        ("host_keys", host_keys("web1")),
        ("host_id_by_name", host_id_by_name("web1")),
        ("host_ids", host_ids()),
        (
            "host_key_insert",
            host_key_insert(
                2,
                "ssh-ed25519",
                "AAAAC3Nza",
                "SHA256:abc",
                1_700_000_000_000,
            ),
        ),
        ("host_keys_delete", host_keys_delete(2)),
        ("script_list", script_list().into()),
        ("script_by_name", script_by_name("check")),
        ("script_version", script_version("check")),
        (
            "scripts_versions",
            scripts_versions(&["check_tcp".into(), "checklib".into()]),
        ),
        (
            "script_insert",
            script_insert("check", "ok(\"fine\")", Some("a check"), "check", 1),
        ),
        (
            "script_update",
            script_update("check", "ok(\"fine\")", None, "check", 2),
        ),
        ("script_delete", script_delete("check")),
        ("job_list", job_list()),
        ("job_by_id", job_by_id(7)),
        (
            "job_insert",
            job_insert(1, Some(2), &job, 1_700_000_000_000, Some("dc1")),
        ),
        (
            "jobs_insert_rows",
            jobs_insert_rows(vec![
                job_values(1, Some(2), &job, 1_700_000_000_000, Some("dc1")),
                job_values(1, Some(2), &job, 1_700_000_000_000, None),
            ]),
        ),
        ("job_top_priority", job_top_priority(Claimable::Due, None)),
        (
            "job_top_priority_below",
            job_top_priority(Claimable::Expired, Some(5)),
        ),
        (
            "job_claim_candidates",
            claim_candidates(1, None, Claimable::Due, 0, 64),
        ),
        (
            "job_claim_candidates_expired",
            claim_candidates(1, None, Claimable::Expired, 0, 64),
        ),
        (
            "job_claim_candidates_ahead",
            claim_candidates(1, None, Claimable::Ahead(1_000), 0, 64),
        ),
        (
            "job_claim_candidates_site",
            claim_candidates(2, Some("dc1"), Claimable::Due, 10, 64),
        ),
        ("jobs_by_ids", jobs_by_ids(&[7, 8])),
        (
            "series_day",
            series_day(
                "web1",
                "check_tcp",
                "time",
                1_700_006_400_000,
                1_700_010_000_000,
            ),
        ),
        ("hosts_of_jobs", hosts_of_jobs(&[7, 8])),
        (
            "job_requeue",
            job_requeue(7, 1_700_000_000_000, false, "node-a"),
        ),
        (
            "job_release",
            job_requeue(7, 1_700_000_000_000, true, "node-a"),
        ),
        (
            "job_give_back",
            job_give_back(7, 1_700_000_000_000, "node-a"),
        ),
        ("job_renew", job_renew("node-a", &[7, 8], 60_000)),
        ("job_states", job_states(&[7, 8])),
        ("job_cancel", job_cancel(7)),
        ("job_delete_queued", job_delete_queued(7)),
        ("job_hasten", job_hasten(7, 1_700_000_000_000)),
        (
            "job_queued_for",
            job_queued_for(1, Some(2), Some("web"), None, None),
        ),
        (
            "job_overdue_for",
            job_queued_for(1, Some(2), Some("web"), None, Some(1_700_000_000_000)),
        ),
        (
            "jobs_overdue_of_script",
            jobs_overdue_of_script(1, 1_700_000_000_000),
        ),
        ("job_next_due", job_next_due(1_700_000_000_000)),
        ("jobs_using_host", jobs_using("host_id", 2)),
        ("schedule_by_id", schedule_by_id(3)),
        ("job_reap", job_reap()),
        (
            "run_count",
            run_count(3, Some("web1"), "fix_web", 1_700_000_000_000),
        ),
        (
            "notification_pending",
            notification_pending(1_700_000_000_000, 10),
        ),
        (
            "notification_attempt",
            notification_attempt(1, "webhook", 1, Some("HTTP 500"), Some(2)),
        ),
        ("notification_claim", notification_claim(1, 2, 3)),
        ("notification_hold", notification_hold(1, "command", 3)),
        ("run_mark_changed", run_mark_changed(9)),
        (
            "check_for_update",
            check_for_update(Some("web1"), "check_tcp"),
        ),
        (
            "check_and_quiet",
            check_and_quiet(Some("web1"), "check_tcp", Quiet::Schedule(2)),
        ),
        (
            "check_and_quiet_pushed",
            check_and_quiet(Some("web1"), "ping", Quiet::Pushed),
        ),
        ("check_reminded", check_reminded(3, Some(5), 9)),
        (
            "run_repeat",
            run_repeat(
                9,
                vec![
                    ("message", param("answered 200 in 12 ms")),
                    ("finished_at", param(1_700_000_000_000i64)),
                ],
            ),
        ),
        (
            "runs_expired_count",
            runs_expired_count(1_700_000_000_000, 1_690_000_000_000),
        ),
        (
            "runs_expired",
            runs_expired(1_700_000_000_000, 1_690_000_000_000, 500).into(),
        ),
        ("transcript_of", transcript_of(9)),
        (
            "transcript_insert",
            transcript_insert(
                9,
                1_700_000_000_000,
                r#"{"t":0,"d":">","s":1,"b":"uptime\n"}"#,
            ),
        ),
        (
            "transcripts_of_runs_delete",
            delete_in("run_transcripts", "run_id", vec![1, 2, 3]),
        ),
        ("runs_delete", delete_in("runs", "id", vec![1, 2, 3])),
        (
            "transcripts_delete_old",
            delete_ids(
                "run_transcripts",
                rows_before("run_transcripts", "started_at", 1_700_000_000_000, 500),
            ),
        ),
        ("legacy_transcripts", legacy_transcripts(0, 500)),
        (
            "legacy_transcripts_clear",
            legacy_transcripts_clear(vec![1, 2, 3]),
        ),
        (
            "notifications_delete_expired",
            delete_ids(
                "notifications",
                notifications_expired(1_600_000_000_000, 500),
            ),
        ),
        (
            "count_before",
            count_before("perf_days", "day", 1_700_000_000_000),
        ),
        (
            "trends_delete_old",
            delete_ids(
                "perf_days",
                rows_before("perf_days", "day", 1_700_000_000_000, 500),
            ),
        ),
        ("series_get", series_get("web1", "check_http", "time")),
        (
            "series_insert",
            series_insert("web1", "check_http", "time", "ms", Some("200"), None),
        ),
        (
            "series_update",
            series_update(1, "ms", Some("300"), Some("900")),
        ),
        ("series_of", series_of("web1", "check_http")),
        ("day_get", day_get(1, 1_699_920_000_000)),
        ("day_set", day_set(7, "0:2:1:9.5:10.5")),
        ("day_insert", day_insert(1, 1_699_920_000_000, "3:1:1:1:1")),
        ("legacy_hour_get", legacy_hour_get(1, 1_699_999_200_000)),
        (
            "legacy_hour_insert",
            legacy_hour_insert(
                1,
                1_699_999_200_000,
                &HourRow {
                    n: 1,
                    vmin: 1.0,
                    vmax: 1.0,
                    vsum: 1.0,
                },
            ),
        ),
        ("legacy_hours", legacy_hours(1)),
        ("raw_last", raw_last(1, 1_699_999_200_000)),
        ("raw_set", raw_set(7, "0:1 60000:9.5")),
        ("raw_insert", raw_insert(1, 1_699_999_200_000, "0:1")),
        ("days", days(1, 1_600_000_000_000, 1_700_000_000_000, 1000)),
        (
            "raw_hours",
            raw_hours(1, 1_600_000_000_000, 1_700_000_000_000, 1000),
        ),
        (
            "raw_delete_old",
            delete_ids(
                "perf_raw",
                rows_before("perf_raw", "hour", 1_700_000_000_000, 500),
            ),
        ),
        ("legacy_points", legacy_points(1)),
        ("table_ids", table_ids("perf_series")),
        ("table_rows", table_rows("runs")),
        (
            "state_changes",
            state_changes(
                Some("web1"),
                "check_http",
                1_600_000_000_000,
                1_700_000_000_000,
            ),
        ),
        ("check_get", check_get(Some("web1"), "check_disk")),
        ("check_get_no_host", check_get(None, "check_disk")),
        ("check_list", check_list()),
        ("check_list_of_host", check_list_of_host("web1")),
        (
            "check_insert",
            check_insert(vec![
                ("host", param("web1")),
                ("script", param("check_disk")),
                ("state", param("critical")),
                ("hard", param(true)),
                ("attempts", param(1)),
                ("since", param(1_700_000_000_000_i64)),
                ("last_run_at", param(1_700_000_000_000_i64)),
                ("notified", param(false)),
            ]),
        ),
        (
            "check_update",
            check_update(4, vec![("state", param("ok")), ("attempts", param(0))]),
        ),
        ("check_delete_of", check_delete_of("script", "check_disk")),
        ("check_delete", check_delete(4)),
        ("downtime_list", downtime_list(1_700_000_000_000)),
        (
            "downtime_insert",
            downtime_insert(vec![
                ("host", param("web1")),
                ("starts_at", param(1_700_000_000_000_i64)),
                ("ends_at", param(1_700_003_600_000_i64)),
                ("reason", param("kernel update")),
                ("created_at", param(1_700_000_000_000_i64)),
            ]),
        ),
        ("downtime_delete", downtime_delete(2, 1_700_000_000_000)),
        ("downtime_end", downtime_end(2, 1_700_000_000_000)),
        (
            "downtime_due",
            downtime_due("start_told", 1_700_000_000_000),
        ),
        ("downtime_told", downtime_told(2, "end_told")),
        ("dependency_list", dependency_list()),
        ("heartbeat_list", heartbeat_list()),
        ("heartbeat_by_token", heartbeat_by_token("ab12")),
        ("heartbeat_get", heartbeat_get(4)),
        (
            "heartbeat_update",
            heartbeat_update(
                4,
                vec![("grace_ms", param(60_000)), ("managed", param(true))],
            ),
        ),
        (
            "heartbeat_insert",
            heartbeat_insert(vec![
                ("name", param("backup")),
                ("host", param("db1")),
                ("token_hash", param("ab12")),
                ("every_ms", param(86_400_000_i64)),
                ("grace_ms", param(3_600_000_i64)),
                ("cron", param("0 2 * * *")),
                ("created_at", param(1_700_000_000_000_i64)),
            ]),
        ),
        ("heartbeat_delete", heartbeat_delete(3)),
        ("heartbeat_delete_of", heartbeat_delete_of("db1")),
        (
            "heartbeat_pinged",
            heartbeat_pinged(3, 1_700_000_000_000, false),
        ),
        (
            "heartbeat_started",
            heartbeat_pinged(3, 1_700_000_000_000, true),
        ),
        ("heartbeat_missed", heartbeat_missed(3, 1_700_000_000_000)),
        ("dependency_of_child", dependency_of_child("web1")),
        (
            "dependency_of_parent",
            dependency_of_parent("r1", "check_ping"),
        ),
        (
            "dependency_insert",
            dependency_insert(vec![
                ("child_host", param("web1")),
                ("child_check", param(None::<String>)),
                ("parent_host", param("r1")),
                ("parent_check", param("check_ping")),
                ("grp", param("uplinks")),
                ("created_at", param(1_700_000_000_000_i64)),
            ]),
        ),
        ("dependency_delete", dependency_delete(5)),
        (
            "dependency_delete_of",
            dependency_delete_of("parent_host", "r1"),
        ),
        ("schedule_list", schedule_list().into()),
        ("schedule_due", schedule_due(1_000)),
        (
            "schedule_advance",
            schedule_advance(3, 1_700_000_000_000, Some(1_700_000_060_000), true),
        ),
        ("schedule_delete", schedule_delete(3)),
        (
            "schedule_update",
            schedule_update(3, vec![("every_ms", param(30_000)), ("args", param("{}"))]),
        ),
        ("schedule_retries", schedule_retries(3)),
        (
            "schedule_insert",
            schedule_insert(vec![
                ("script_id", param(1)),
                ("host_id", param(2)),
                ("priority", param(5)),
                ("kind", param("every")),
                ("every_ms", param(60_000)),
                ("next_due", param(1_700_000_000_000_i64)),
                ("enabled", param(true)),
                ("created_at", param(1_700_000_000_000_i64)),
            ]),
        ),
        (
            "job_claim_by_ids",
            job_claim_by_ids(&[7, 8], "node-a", 60_000),
        ),
        ("job_delete", job_delete(7)),
        ("jobs_done", jobs_done(&[7, 8], "node-a")),
        (
            "run_insert",
            run_insert(vec![
                ("key_id", param(1i64)),
                ("status", param("ok")),
                ("message", param("it's fine")),
                ("started_at", param(1i64)),
                ("finished_at", param(2i64)),
            ]),
        ),
        ("run_by_id", run_by_id(1)),
        ("run_total_add", run_total_add("ok", 1_234, 1_250)),
        ("run_total_insert", run_total_insert("critical", 3, 0, 0)),
        ("run_totals", run_totals()),
        ("claim_lock", claim_lock()),
        (
            "run_find",
            run_find((1, 2), (Some("web1"), "check"), "node1", Some(7)),
        ),
        ("run_key_get", run_key_get(Some("web1"), "check_http", None)),
        (
            "run_key_insert",
            run_key_insert(None, "backup", Some("nightly")),
        ),
        ("legacy_run_names", legacy_run_names()),
        (
            "legacy_key_runs",
            legacy_key_runs(3, Some("web1"), "check_http", None),
        ),
        ("run_list", run_list(&filter)),
        (
            "run_list_of_check",
            run_list(&super::RunFilter {
                host: Some("web1".into()),
                check: Some("disk_root".into()),
                limit: 200,
                summary: true,
                ..Default::default()
            }),
        ),
        (
            "notification_insert",
            notification_insert(
                Some(1),
                Some("web1"),
                &super::Notice {
                    event: super::Alert::Problem,
                    subject: "down".into(),
                    body: "body".into(),
                },
                Some(r#"{"check":"check_disk"}"#),
                1,
            ),
        ),
        ("notification_list", notification_list(20)),
        ("run_failures", run_failures(20)),
        ("run_stats", run_stats()),
        ("notification_failures", notification_failures()),
        (
            "host_update",
            host_update("web1", vec![("address", param("192.0.2.2"))]),
        ),
        (
            "host_reseal",
            host_reseal(
                "web1",
                "hostler-aead-v1:old:AAAA",
                "hostler-aead-v1:new:BBBB",
            ),
        ),
        ("job_set_priority", job_set_priority(7, 10)),
        ("user_list", user_list()),
        ("user_by_name", user_by_name("alice")),
        ("user_count", user_count()),
        (
            "user_insert",
            user_insert("alice", "$argon2id$...", "admin", 1),
        ),
        (
            "user_set_password",
            user_set_password("alice", "$argon2id$..."),
        ),
        ("user_delete", user_delete("alice")),
        ("token_insert", token_insert(1, "ci", "ab12", 1)),
        ("token_user", token_user("ab12")),
        ("token_touch", token_touch(1, 1)),
        ("token_list", token_list(None)),
        ("token_list_of_user", token_list(Some("alice"))),
        ("token_delete", token_delete(1)),
        ("token_delete_for_user", token_delete_for_user(1)),
        (
            "literal_escaping",
            Select::from("hosts")
                .columns(&["name"])
                .filter(col("name").eq(lit(Value::Text("O'Brien \\ ünï".into()))))
                .filter(col("enabled").eq(lit(true)))
                .into(),
        ),
    ]
}
