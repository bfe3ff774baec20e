-- hostler's data model: the single source from which every dialect's DDL is derived.
-- The accepted SQL subset is documented in src/sql/ddl.rs; see every dialect's rendering with
-- `hostler init --print-ddl sqlite|mssql2000|mssql2005|postgres|mysql`.
-- Times are milliseconds since the Unix epoch (UTC), in BIGINT columns.
-- Runs and notifications keep names instead of referencing rows: history outlives what it names
-- (a run names them through run_keys, which only history uses).
-- schema_version: 7

CREATE TABLE settings (
    key         VARCHAR(255) PRIMARY KEY,
    value       TEXT
);

CREATE TABLE hosts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        VARCHAR(255) NOT NULL UNIQUE,
    address     VARCHAR(255) NOT NULL,
    port        INTEGER,
    method      VARCHAR(16) NOT NULL DEFAULT 'ssh' CHECK (method IN ('local', 'ssh', 'telnet', 'http')),
    username    VARCHAR(255),
    -- The login secret. It leaves the store only into a session's login.
    secret      TEXT,
    key_path    TEXT,
    prompt      TEXT,
    site        VARCHAR(255),
    -- Space-separated tags.
    tags        TEXT,
    -- A JSON object of per-host variables for scripts.
    vars        TEXT,
    -- Reuse an authenticated session between runs of this host.
    keep_session BOOLEAN NOT NULL DEFAULT TRUE,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    -- The site file manages it (`hostler apply`); false: made by hand. Added in schema
    -- version 7.
    managed     BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE host_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id     BIGINT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    key_type    VARCHAR(64) NOT NULL,
    key_data    TEXT NOT NULL,
    fingerprint VARCHAR(128) NOT NULL,
    first_seen  BIGINT NOT NULL,
    UNIQUE (host_id, key_type)
);

CREATE TABLE scripts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        VARCHAR(255) NOT NULL UNIQUE,
    source      TEXT NOT NULL,
    description TEXT,
    kind        VARCHAR(16) NOT NULL DEFAULT 'task' CHECK (kind IN ('library', 'check', 'fix', 'task')),
    version     INTEGER NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE schedules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    script_id   BIGINT NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
    -- No ON DELETE action: SQL Server refuses two cascade paths from scripts.
    fix_script_id BIGINT REFERENCES scripts (id),
    host_id     BIGINT REFERENCES hosts (id) ON DELETE CASCADE,
    tag         VARCHAR(255),
    site        VARCHAR(255),
    priority    INTEGER NOT NULL DEFAULT 0,
    kind        VARCHAR(8) NOT NULL CHECK (kind IN ('at', 'every', 'cron')),
    at_time     BIGINT,
    every_ms    BIGINT,
    cron        VARCHAR(255),
    timeout_ms  BIGINT,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    next_due    BIGINT,
    guard_max_fixes INTEGER NOT NULL DEFAULT 3,
    guard_window_ms BIGINT NOT NULL DEFAULT 3600000,
    -- The first fix may run at once; each further fix in the window waits twice as long.
    guard_backoff_ms BIGINT NOT NULL DEFAULT 30000,
    -- Queue a job even when the same (script, host) is already queued.
    allow_duplicate BOOLEAN NOT NULL DEFAULT FALSE,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT NOT NULL,
    -- Consecutive results that are not OK before a problem is hard (told, and fixed); until
    -- then the check runs again every retry_every_ms (NULL: the interval, at most a minute).
    -- Added in schema version 2.
    retries     INTEGER NOT NULL DEFAULT 1,
    retry_every_ms BIGINT,
    -- The check's name, when one script is scheduled twice on a host (NULL: the script's);
    -- its arguments and its fix's, JSON objects handed to the scripts as `args`.
    -- Added in schema version 3.
    name        VARCHAR(255),
    args        TEXT,
    fix_args    TEXT,
    -- Quorum across sites: each time it is due, the check runs once on a node of each of these
    -- sites (comma-separated), and is a problem only when at least `quorum` of them see one in
    -- their latest result (NULL: no quorum). Added in schema version 6.
    sites       TEXT,
    quorum      INTEGER,
    -- The site file manages it (`hostler apply`); false: made by hand. Added in schema
    -- version 7.
    managed     BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    script_id   BIGINT NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
    host_id     BIGINT REFERENCES hosts (id) ON DELETE CASCADE,
    -- Higher runs first; then earlier due_at, then lower id.
    priority    INTEGER NOT NULL DEFAULT 0,
    due_at      BIGINT NOT NULL,
    state       VARCHAR(16) NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'cancelling')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    timeout_ms  BIGINT,
    lease_owner VARCHAR(255),
    lease_until BIGINT,
    -- No foreign key: SQL Server refuses a second cascade path from hosts via schedules.
    schedule_id BIGINT,
    -- A JSON object handed to the script as `args`.
    args        TEXT,
    created_at  BIGINT NOT NULL,
    -- The check it runs (NULL: named after its script). Added in schema version 3.
    name        VARCHAR(255),
    -- Only a node of this site runs it (a quorum schedule's job per site; NULL: any node that
    -- may run the host's jobs). Added in schema version 6.
    site        VARCHAR(255)
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      BIGINT,
    schedule_id BIGINT,
    script_version INTEGER,
    node        VARCHAR(255),
    status      VARCHAR(16) NOT NULL CHECK (status IN ('ok', 'warning', 'critical', 'unknown', 'error', 'timeout', 'cancelled')),
    message     TEXT,
    perfdata    TEXT,
    output      TEXT,
    -- Empty since schema version 4: a run's transcript is a row of run_transcripts.
    transcript  TEXT,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 1,
    -- In a correction loop: 'check', 'fix' or 'recheck'.
    phase       VARCHAR(16),
    -- The run changed its check's state: kept as long as problems are ([history] keep_days).
    -- Added in schema version 3.
    changed     BOOLEAN NOT NULL DEFAULT FALSE,
    -- How many runs the row stands for. OK runs of a check that changed nothing, one after
    -- another, share one row ([history] collapse_ok): the latest of them, and their count.
    -- Added in schema version 4.
    repeats     INTEGER NOT NULL DEFAULT 1,
    -- Its host, script and check: a row of run_keys. Added in schema version 5 (before, each
    -- run's row held the three names, and an index of them).
    key_id      BIGINT
);

-- The names of runs, each (host, script, check) once: its host (NULL for a host-less run),
-- its script, and the check it was a run of when not named after its script. Runs name
-- their key, and are found by it (the runs_key index): about 12 bytes a run, where the names
-- in each row and their index took about 85. A key is history's own: deleting a host or a
-- script leaves it, so history still says what it ran. Added in schema version 5.
CREATE TABLE run_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host        VARCHAR(255),
    script      VARCHAR(255) NOT NULL,
    check_name  VARCHAR(255)
);

-- Runs recorded, by status, since the database was made: how many, and their summed duration
-- in ms. Brought up to date with each run, in its transaction, so housekeeping does not make
-- them go down (/metrics `hostler_runs_total` is a counter), and /metrics reads these rows
-- instead of the whole runs table. Each status has 16 rows (`stripe`, the run's id modulo
-- 16), so that runs recorded at once on several nodes seldom wait for one row's lock; a
-- reader adds them up. Added in schema version 5, from the runs kept then.
CREATE TABLE run_totals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    status      VARCHAR(16) NOT NULL,
    stripe      INTEGER NOT NULL,
    runs        BIGINT NOT NULL DEFAULT 0,
    ms          BIGINT NOT NULL DEFAULT 0,
    UNIQUE (status, stripe)
);

-- A run's transcript, JSON lines: {"t": ms since start, "d": "<" received | ">" sent,
-- "s": session, "b": text}. A row apart from the run's, so that it is deleted whole after
-- [history] keep_transcripts_days (SQLite would not give back the space of a row that shrank).
-- Added in schema version 4 (before, runs.transcript held it).
CREATE TABLE run_transcripts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    transcript  TEXT NOT NULL
);

CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      BIGINT,
    host        VARCHAR(255),
    subject     TEXT NOT NULL,
    body        TEXT,
    channel     VARCHAR(64),
    created_at  BIGINT NOT NULL,
    delivered_at BIGINT,
    error       TEXT,
    tries       INTEGER NOT NULL DEFAULT 0,
    -- When the next delivery attempt is due (NULL once delivered or given up).
    next_try_at BIGINT,
    -- What it tells (problem, recovery, fix_failed, guard, give_up, downtime_start, ...; notify for a
    -- script's own notify()), and its fields as a JSON object (check, state, previous_state,
    -- since, message, perfdata). Added in schema version 2.
    event       VARCHAR(32),
    details     TEXT,
    -- The channels that took it (or passed it over), comma-separated; `channel` before schema
    -- version 7, which holds only 64 characters. Added in schema version 7.
    sent        TEXT
);

-- A check: a (host, script) pair that a schedule runs, and its state. Its row changes in the
-- transaction that records each of its runs (never a fix's); removing the host, the script or
-- the last schedule that runs it removes it. Names, as in runs: a check reads like its history.
-- Added in schema version 2.
CREATE TABLE checks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host        VARCHAR(255),
    -- The check's name: its script's, or the name its schedule gives it (`--name`).
    script      VARCHAR(255) NOT NULL,
    state       VARCHAR(16) NOT NULL CHECK (state IN ('ok', 'warning', 'critical', 'unknown')),
    -- A problem is hard once it has held for the schedule's retries (today: at once).
    hard        BOOLEAN NOT NULL DEFAULT FALSE,
    -- Consecutive results that were not OK.
    attempts    INTEGER NOT NULL DEFAULT 0,
    -- When the state last changed: "failing since".
    since       BIGINT NOT NULL,
    last_run_id BIGINT,
    last_run_at BIGINT NOT NULL,
    message     TEXT,
    perfdata    TEXT,
    -- A problem was told (a notification went out), so its recovery will be told too.
    notified    BOOLEAN NOT NULL DEFAULT FALSE,
    -- An operator acknowledged the problem: nothing more is told until it recovers.
    acked       BOOLEAN NOT NULL DEFAULT FALSE,
    ack_comment TEXT,
    -- The times of its recent changes of state (a JSON array), and whether that many changes
    -- mark it flapping: then its problems and recoveries are held, and one message says so.
    changes     TEXT,
    flapping    BOOLEAN NOT NULL DEFAULT FALSE,
    -- Under a quorum: each site's latest result (a JSON object: site -> state, at, message).
    -- Added in schema version 6.
    sites       TEXT,
    -- The correction loop's messages told in the current incident (a JSON object: event ->
    -- the incident's "since"), so each is told once per incident. Added in schema version 6.
    told        TEXT,
    -- When a reminder of its problem last went out (routes with `repeat`). Added in schema
    -- version 7.
    reminded_at BIGINT
);

-- A maintenance window: while it lasts, the checks it covers still run and record, but no fix
-- runs and nothing is told. It covers a host, every host with a tag, or one check (host and
-- script). Added in schema version 2.
CREATE TABLE downtimes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host        VARCHAR(255),
    tag         VARCHAR(255),
    script      VARCHAR(255),
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    author      VARCHAR(255),
    created_at  BIGINT NOT NULL,
    -- Its start and its end were told (once, whichever node saw it first).
    start_told  BOOLEAN NOT NULL DEFAULT FALSE,
    end_told    BOOLEAN NOT NULL DEFAULT FALSE,
    -- It covers the hosts and checks that depend on what it covers too. Added in schema
    -- version 6.
    children    BOOLEAN NOT NULL DEFAULT FALSE,
    -- The recurring downtime it is an occurrence of (NULL: made once). Added in schema
    -- version 7.
    recurring_id BIGINT
);

-- A downtime that recurs: each time its cron expression fires (local time) a downtime of
-- `duration_ms` is made from it, at most a day ahead, as an occurrence (`downtimes`
-- .recurring_id). Added in schema version 7.
CREATE TABLE recurring_downtimes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host        VARCHAR(255),
    tag         VARCHAR(255),
    script      VARCHAR(255),
    cron        VARCHAR(255) NOT NULL,
    duration_ms BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    author      VARCHAR(255),
    created_at  BIGINT NOT NULL,
    children    BOOLEAN NOT NULL DEFAULT FALSE,
    -- The site file manages it (`hostler apply`).
    managed     BOOLEAN NOT NULL DEFAULT FALSE
);

-- A dependency: the child (every check of a host, or one check) is cut off while its parent
-- check is in a hard problem; parents that share a group are redundant (the child is cut off
-- only when all of them are down). A cut-off check still runs and records, but is neither
-- fixed nor told. Added in schema version 6.
CREATE TABLE dependencies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    child_host  VARCHAR(255) NOT NULL,
    -- NULL: every check of the child host (but the parent itself).
    child_check VARCHAR(255),
    parent_host VARCHAR(255) NOT NULL,
    parent_check VARCHAR(255) NOT NULL,
    -- Redundant parents share a group; NULL: this parent cuts the child off on its own.
    grp         VARCHAR(255),
    author      VARCHAR(255),
    created_at  BIGINT NOT NULL,
    -- The site file manages it (`hostler apply`); false: made by hand. Added in schema
    -- version 7.
    managed     BOOLEAN NOT NULL DEFAULT FALSE
);

-- A heartbeat: a check fed from outside. Whatever it watches (a cron job, a backup) pings
-- /ping/TOKEN; no ping within every_ms + grace_ms of the last one (or of its making) is a
-- CRITICAL result of its check (host, name). The token is kept as its hash. Added in schema
-- version 6.
CREATE TABLE heartbeats (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        VARCHAR(255) NOT NULL,
    host        VARCHAR(255),
    token_hash  VARCHAR(64) NOT NULL UNIQUE,
    every_ms    BIGINT NOT NULL,
    grace_ms    BIGINT NOT NULL,
    -- When pings are expected, as a cron expression (local time); then every_ms is 0.
    cron        VARCHAR(255),
    last_ping_at BIGINT,
    last_start_at BIGINT,
    -- When the missing ping was recorded (NULL: none missed since the last ping).
    missed_at   BIGINT,
    author      VARCHAR(255),
    created_at  BIGINT NOT NULL,
    -- The fix queued (on the heartbeat's host) when its problem begins. Added in schema
    -- version 7.
    fix         VARCHAR(255),
    -- The site file manages it (`hostler apply`); false: made by hand. Added in schema
    -- version 7.
    managed     BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        VARCHAR(255) NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role        VARCHAR(16) NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        VARCHAR(255) NOT NULL,
    token_hash  VARCHAR(255) NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    last_used_at BIGINT
);

-- Perfdata as time series. A series is one label of one check of one host ('' without a
-- host), with its unit and the thresholds its latest point carried. Added in schema version 3.
CREATE TABLE perf_series (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host        VARCHAR(255) NOT NULL,
    check_name  VARCHAR(255) NOT NULL,
    label       VARCHAR(255) NOT NULL,
    uom         VARCHAR(16),
    warn        VARCHAR(64),
    crit        VARCHAR(64),
    UNIQUE (host, check_name, label)
);

-- Hourly trends, one row per series and UTC day (the day's start in epoch ms): each hour of the
-- day that had a point as "hour:count:minimum:maximum:sum" (the average is sum / count; the
-- numbers in the shortest text that reads back exactly), space-separated, kept [history]
-- keep_trends_days. Kept up to date as each point arrives: nothing is rolled up later. Added in
-- schema version 5 (versions 3 and 4 kept a row per hour in perf_trends, about 77 bytes an
-- hour with its indexes; a day row takes about 20 bytes an hour).
CREATE TABLE perf_days (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    series_id   BIGINT NOT NULL,
    day         BIGINT NOT NULL,
    hours       TEXT NOT NULL
);

-- Raw points: rows per series and hour, its points as text ("ms-into-the-hour:value",
-- space-separated), kept [history] keep_points_days. An hour's points are kept in parts of at
-- most 60, a row each, whose hour is the hour's start plus the part's number in ms (0..11),
-- so adding a point rewrites one small row. Rows of their own, apart from the trend, so that
-- they are deleted whole (SQLite reuses a deleted row's page; it would not give back the space
-- of a row that shrank). Added in schema version 4 (version 3 had a row per point).
CREATE TABLE perf_raw (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    series_id   BIGINT NOT NULL,
    hour        BIGINT NOT NULL,
    points      TEXT NOT NULL
);

CREATE INDEX jobs_due ON jobs (state, due_at);
CREATE INDEX jobs_host ON jobs (host_id, state);
CREATE INDEX runs_key ON runs (key_id, id);
CREATE INDEX run_keys_names ON run_keys (host, script, check_name);
CREATE INDEX notifications_pending ON notifications (next_try_at);
CREATE INDEX jobs_claim ON jobs (state, priority DESC, due_at, id);
CREATE INDEX schedules_due ON schedules (enabled, next_due);
CREATE UNIQUE INDEX checks_host_script ON checks (host, script);
CREATE INDEX downtimes_ends ON downtimes (ends_at);
CREATE UNIQUE INDEX perf_days_series ON perf_days (series_id, day);
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX perf_days_day ON perf_days (day);
CREATE UNIQUE INDEX perf_raw_series ON perf_raw (series_id, hour);
CREATE INDEX perf_raw_hour ON perf_raw (hour);
CREATE INDEX run_transcripts_run ON run_transcripts (run_id);
CREATE INDEX run_transcripts_started ON run_transcripts (started_at);
CREATE INDEX notifications_run ON notifications (run_id);
CREATE INDEX dependencies_child ON dependencies (child_host);
CREATE INDEX dependencies_parent ON dependencies (parent_host, parent_check);
