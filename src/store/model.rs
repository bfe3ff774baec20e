//! The domain types the store hands out. None of them carries a host's secret.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// An enum stored and typed as lowercase text: `as_str`, `FromStr` with an error that lists
/// the choices, `Display`, and serde's lowercase names.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal {
        $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    format!("unknown {} {s:?}; expected one of {}", $what, [$($text),+].join(", "))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// How hostler reaches a host.
    Method, "method" { Local => "local", Ssh => "ssh", Telnet => "telnet", Http => "http" }
);

impl Method {
    /// The port used when a host names none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Method::Local => None,
            Method::Ssh => Some(22),
            Method::Telnet => Some(23),
            Method::Http => Some(80),
        }
    }
}

/// A monitored host, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub method: Method,
    pub username: Option<String>,
    /// Whether a secret is stored (never the secret itself).
    pub has_secret: bool,
    pub key_path: Option<String>,
    pub prompt: Option<String>,
    pub site: Option<String>,
    pub tags: Vec<String>,
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub keep_session: bool,
    pub enabled: bool,
    /// The site file manages it (`hostler apply`).
    pub managed: bool,
}

/// An SSH host key pinned for a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedKey {
    pub key_type: String,
    /// The key blob, base64.
    pub key_data: String,
    pub fingerprint: String,
    pub first_seen: i64,
}

/// A host to add.
#[derive(Debug, Clone, Default)]
pub struct NewHost {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub method: Option<Method>,
    pub username: Option<String>,
    pub secret: Option<super::Secret>,
    pub key_path: Option<String>,
    pub prompt: Option<String>,
    pub site: Option<String>,
    pub tags: Vec<String>,
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Close its sessions after each run instead of keeping them for the next.
    pub no_keep_session: bool,
}

text_enum!(
    /// What a web user may do: `admin` everything, `operator` schedule and cancel, `viewer`
    /// only look.
    Role, "role" { Admin => "admin", Operator => "operator", Viewer => "viewer" }
);

text_enum!(
    /// What a script is for.
    ScriptKind, "script kind" { Library => "library", Check => "check", Fix => "fix", Task => "task" }
);

/// A stored script.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Script {
    pub id: i64,
    pub name: String,
    pub source: String,
    pub description: Option<String>,
    pub kind: ScriptKind,
    pub version: i64,
    pub updated_at: i64,
}

text_enum!(
    /// The outcome of a run: the four Nagios states, plus how a run can end without one.
    Status, "status" {
        Ok => "ok",
        Warning => "warning",
        Critical => "critical",
        Unknown => "unknown",
        Error => "error",
        Timeout => "timeout",
        Cancelled => "cancelled",
    }
);

impl Status {
    /// The Nagios plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (and every failure).
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            _ => 3,
        }
    }
}

text_enum!(
    /// A check's state: the four Nagios states.
    CheckState, "check state" {
        Ok => "ok",
        Warning => "warning",
        Critical => "critical",
        Unknown => "unknown",
    }
);

impl CheckState {
    /// The state a run's status puts its check in. An error or a timeout is UNKNOWN (the
    /// check could not say); a cancelled run says nothing of the service.
    pub fn of(s: Status) -> Option<CheckState> {
        match s {
            Status::Ok => Some(CheckState::Ok),
            Status::Warning => Some(CheckState::Warning),
            Status::Critical => Some(CheckState::Critical),
            Status::Unknown | Status::Error | Status::Timeout => Some(CheckState::Unknown),
            Status::Cancelled => None,
        }
    }

    /// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, as Nagios numbers them.
    pub fn code(self) -> u8 {
        match self {
            CheckState::Ok => 0,
            CheckState::Warning => 1,
            CheckState::Critical => 2,
            CheckState::Unknown => 3,
        }
    }
}

/// A check: a (host, script) pair that a schedule runs, and its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub id: i64,
    pub host: Option<String>,
    pub script: String,
    pub state: CheckState,
    /// The problem has held for the schedule's retries: it is told, and fixed.
    pub hard: bool,
    /// Consecutive results that were not OK.
    pub attempts: i64,
    /// When the state last changed ("failing since").
    pub since: i64,
    pub last_run_id: Option<i64>,
    pub last_run_at: i64,
    pub message: String,
    pub perfdata: Option<String>,
    /// A problem was told, so its recovery will be told too.
    pub notified: bool,
    /// An operator acknowledged the problem: nothing more is told until it recovers.
    pub acked: bool,
    pub ack_comment: Option<String>,
    /// When its state changed lately (within the flapping window).
    pub changes: Vec<i64>,
    /// Changing state too often: its problems and recoveries are held.
    pub flapping: bool,
    /// When a reminder of its problem last went out.
    pub reminded_at: Option<i64>,
    /// A problem behind a parent that is down (see [`Dependency`]): it is neither fixed nor
    /// told. Worked out when the checks are read, from the parents' states now.
    pub unreachable: bool,
    /// The parent that cuts it off (`HOST/CHECK`), when unreachable.
    pub parent: Option<String>,
}

/// A maintenance window: the checks it covers run and record, but no fix runs and nothing is
/// told. It covers a host, every host with a tag, or one check (a host and a script).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Downtime {
    pub id: i64,
    pub host: Option<String>,
    pub tag: Option<String>,
    pub script: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub author: Option<String>,
    pub created_at: i64,
    /// It covers the checks that depend on what it covers too (`--children`).
    pub children: bool,
}

impl Downtime {
    /// What it covers, in words: `host web1`, `tag web`, `check web1/check_nginx`.
    pub fn scope(&self) -> String {
        match (&self.host, &self.tag, &self.script) {
            (Some(h), _, Some(s)) => format!("check {h}/{s}"),
            (Some(h), _, None) => format!("host {h}"),
            (None, Some(t), _) => format!("tag {t}"),
            _ => "everything".into(),
        }
    }

    /// Whether it covers a host's check of a script at `at` (the host's tags given).
    pub fn covers(&self, host: Option<&str>, tags: &[String], script: &str, at: i64) -> bool {
        if !(self.starts_at <= at && at < self.ends_at) {
            return false;
        }
        let host_ok = self.host.is_none() || self.host.as_deref() == host;
        let tag_ok = self.tag.as_ref().is_none_or(|t| tags.contains(t));
        let script_ok = self.script.as_deref().is_none_or(|s| s == script);
        host_ok && tag_ok && script_ok
    }
}

/// A new maintenance window.
#[derive(Debug, Clone, Default)]
pub struct NewDowntime {
    pub host: Option<String>,
    pub tag: Option<String>,
    pub script: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub author: Option<String>,
    /// Cover the checks that depend on what it covers too.
    pub children: bool,
}

/// A dependency: the child (every check of a host but the parent itself, or one check) is
/// cut off while its parent check is in a hard problem. Parents that share a group are
/// redundant: the child is cut off only when every one of them is down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub id: i64,
    pub child_host: String,
    /// None: every check of the child host.
    pub child_check: Option<String>,
    pub parent_host: String,
    pub parent_check: String,
    pub group: Option<String>,
    pub author: Option<String>,
    pub created_at: i64,
    /// The site file manages it (`hostler apply`).
    pub managed: bool,
}

/// A new dependency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewDependency {
    pub child_host: String,
    pub child_check: Option<String>,
    pub parent_host: String,
    pub parent_check: String,
    pub group: Option<String>,
    pub author: Option<String>,
}

text_enum!(
    /// Where a job is in the queue (the word the `jobs.state` column holds). The row goes
    /// when its run is recorded.
    JobState, "job state" {
        /// Waiting for its due time and a free slot.
        Queued => "queued",
        /// Claimed by a node under a lease.
        Running => "running",
        /// Running, and asked to stop: its node records a cancelled run.
        Cancelling => "cancelling",
    }
);

/// A running job's lease as its node sees it on renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: i64,
    pub state: JobState,
    /// The node that holds it now: another node's name means the lease was lost.
    pub owner: Option<String>,
}

/// A queued or running job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: i64,
    pub script: String,
    pub host: Option<String>,
    pub priority: i64,
    pub due_at: i64,
    pub state: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub timeout_ms: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub schedule_id: Option<i64>,
    pub args: Option<String>,
    /// The check it runs when not named after its script.
    pub name: Option<String>,
    /// Only a node of this site runs it (a quorum schedule's job per site).
    pub site: Option<String>,
    /// Its host's row as the claim that took it read it, in the claim's transaction: its run
    /// needs no read of its own. None for a job read any other way, or whose host is gone.
    #[serde(skip)]
    pub host_row: Option<Box<Host>>,
    /// Its scripts' versions as read once for the jobs of its claim (monitord): its run needs
    /// no read of its own while that read is fresh. None for a job read any other way.
    #[serde(skip)]
    pub versions: Option<std::sync::Arc<VersionsRead>>,
}

/// Scripts' versions as one read found them, and when: a name that maps to None is not
/// stored (a bundled script's, or none). Read with [`crate::store::Store::versions_read`].
#[derive(Debug, Clone, PartialEq)]
pub struct VersionsRead {
    pub at: std::time::Instant,
    pub of: std::collections::HashMap<String, Option<i64>>,
}

impl VersionsRead {
    /// How long a read stands for a run that starts after it: longer than a job claimed
    /// ahead waits for its time at the default `claim_ahead` (2 s); a run that starts later
    /// (a longer `claim_ahead`, a correction loop's re-check) reads its own.
    pub const FRESH: std::time::Duration = std::time::Duration::from_secs(5);

    /// The versions of all of `names`, if this read found every one of them and is fresh at
    /// `now`; otherwise the run reads them itself.
    pub fn all_of(
        &self,
        names: &[String],
        now: std::time::Instant,
    ) -> Option<std::collections::HashMap<String, Option<i64>>> {
        if now.saturating_duration_since(self.at) > Self::FRESH {
            return None;
        }
        names
            .iter()
            .map(|n| self.of.get(n).map(|v| (n.clone(), *v)))
            .collect()
    }
}

impl Job {
    /// The name of the check it runs: its own, else its script's.
    pub fn check(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.script)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub script: String,
    pub host: Option<String>,
    pub priority: i64,
    pub due_at: i64,
    pub max_attempts: i64,
    pub timeout_ms: Option<i64>,
    pub schedule_id: Option<i64>,
    pub args: Option<String>,
    pub name: Option<String>,
}

/// One finished run, as recorded in the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub id: i64,
    pub job_id: Option<i64>,
    pub schedule_id: Option<i64>,
    pub script: String,
    pub script_version: Option<i64>,
    pub host: Option<String>,
    pub node: Option<String>,
    pub status: Status,
    pub message: String,
    pub perfdata: Option<String>,
    pub output: String,
    pub transcript: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub attempt: i64,
    /// In a correction loop: check, fix or recheck.
    pub phase: Option<RunPhase>,
    /// The check it was a run of, when not named after its script.
    pub check_name: Option<String>,
    /// How many runs the row stands for: OK runs that changed nothing, one after another,
    /// share the row of the latest (`[history] collapse_ok`).
    pub repeats: i64,
}

impl Run {
    /// The name of the check it was a run of.
    pub fn check(&self) -> &str {
        self.check_name.as_deref().unwrap_or(&self.script)
    }
}

text_enum!(
    /// Which step of a correction loop a run was (the word the `runs.phase` column holds).
    RunPhase, "run phase" {
        /// The scheduled check (of a schedule that has a fix).
        Check => "check",
        /// The fix, after the check failed.
        Fix => "fix",
        /// The check again, after the fix: what judges the fix.
        Recheck => "recheck",
        /// A result pushed from outside (`POST /api/checks/HOST/CHECK/result`): it moves its
        /// check with no schedule (hard at once, never fixed).
        Passive => "passive",
    }
);

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub host: Option<String>,
    pub script: Option<String>,
    /// The runs of one check: its name (`--name`), or its script's when it has none.
    pub check: Option<String>,
    pub status: Option<Status>,
    /// Only runs with an id below this (keyset paging).
    pub before_id: Option<i64>,
    pub limit: u64,
    /// Leave out output and transcript (lists that show neither).
    pub summary: bool,
}

impl RunFilter {
    /// The latest runs of one host, without output and transcript (a host's page).
    pub fn host_recent(host: &str) -> RunFilter {
        RunFilter {
            host: Some(host.to_string()),
            limit: 50,
            summary: true,
            ..RunFilter::default()
        }
    }
}

text_enum!(
    /// What a notification tells.
    Alert, "alert" {
        /// A check's hard problem, told once.
        Problem => "problem",
        /// A told problem is over.
        Recovery => "recovery",
        /// The fix ran and the check still fails.
        FixFailed => "fix_failed",
        /// The fix guard held a fix back.
        Guard => "guard",
        /// The fix guard gave up: no more fixes within its window.
        GiveUp => "give_up",
        FlappingStart => "flapping_start",
        FlappingEnd => "flapping_end",
        /// An operator acknowledged a problem.
        Acknowledgement => "acknowledgement",
        DowntimeStart => "downtime_start",
        DowntimeEnd => "downtime_end",
        /// A script's own `notify()`.
        Notify => "notify",
        /// A problem still holds, unacknowledged (routes with `repeat`).
        Reminder => "reminder",
    }
);

/// A message a run raises, stored with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub event: Alert,
    pub subject: String,
    pub body: String,
}

/// A notification, with its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub id: i64,
    pub run_id: Option<i64>,
    pub host: Option<String>,
    /// What it tells (None for one stored before schema version 2).
    pub event: Option<Alert>,
    /// Its fields: check, state, previous_state, since, message, perfdata.
    pub details: Option<serde_json::Value>,
    pub subject: String,
    pub body: String,
    /// The channels that took it.
    pub channel: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub error: Option<String>,
    pub tries: i64,
    pub next_try_at: Option<i64>,
}

/// What becomes of a queued job when its run is recorded, in the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobAction {
    /// No job (an ad-hoc run), or not the last run of the job.
    #[default]
    Keep,
    /// The job is done: its row goes (held under this node's lease).
    Done,
    /// Queue it again at `due_at` (a retry with backoff), keeping its attempt count.
    Retry { due_at: i64 },
    /// Give it back to the queue as it was before the claim (shutdown).
    Release,
    /// The row goes whoever holds it: a cancelled job whose node died (the reaper).
    Reap,
}

/// How a schedule repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Timing {
    /// Once, at epoch milliseconds.
    At(i64),
    /// Every so many milliseconds.
    Every(i64),
    /// A cron expression (five or six fields), in the machine's time zone.
    Cron(String),
}

/// A schedule: a script (or a check with its fix) on a host, a tag or a site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub id: i64,
    pub script: String,
    pub fix_script: Option<String>,
    pub host: Option<String>,
    pub tag: Option<String>,
    pub site: Option<String>,
    pub priority: i64,
    pub timing: Timing,
    pub timeout_ms: Option<i64>,
    pub max_attempts: i64,
    pub next_due: Option<i64>,
    pub guard_max_fixes: i64,
    pub guard_window_ms: i64,
    pub guard_backoff_ms: i64,
    pub allow_duplicate: bool,
    pub enabled: bool,
    /// Results that are not OK before a problem is hard (1: at once).
    pub retries: i64,
    /// How soon a soft problem is checked again (None: the interval, at most a minute).
    pub retry_every_ms: Option<i64>,
    /// The check's name when it is not the script's (one script scheduled twice on a host).
    pub name: Option<String>,
    /// The check's arguments and its fix's: JSON objects, the scripts' `args`.
    pub args: Option<String>,
    pub fix_args: Option<String>,
    /// Quorum across sites: the check runs on a node of each of these sites each time it is
    /// due, and is a problem only when at least `quorum` of them see one.
    pub sites: Vec<String>,
    pub quorum: Option<i64>,
    /// The site file manages it (`hostler apply`).
    pub managed: bool,
}

impl Schedule {
    /// The name of the check it runs: its own, else its script's.
    pub fn check(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.script)
    }

    /// How soon a soft problem is checked again.
    pub fn retry_every(&self) -> i64 {
        self.retry_every_ms.unwrap_or(match self.timing {
            Timing::Every(ms) => ms.min(60_000),
            _ => 60_000,
        })
    }
}

/// A schedule to create.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub script: String,
    pub fix_script: Option<String>,
    pub host: Option<String>,
    pub tag: Option<String>,
    pub site: Option<String>,
    pub priority: i64,
    pub timing: Timing,
    pub timeout_ms: Option<i64>,
    pub max_attempts: i64,
    pub guard_max_fixes: i64,
    pub guard_window_ms: i64,
    pub guard_backoff_ms: i64,
    pub allow_duplicate: bool,
    /// The first due time.
    pub next_due: i64,
    pub retries: i64,
    pub retry_every_ms: Option<i64>,
    pub name: Option<String>,
    pub args: Option<String>,
    pub fix_args: Option<String>,
    /// Quorum across sites (see [`Schedule::sites`]).
    pub sites: Vec<String>,
    pub quorum: Option<i64>,
}

impl NewSchedule {
    /// `script` on `host` (None: no host) every `every_ms`, first due now, with the defaults of
    /// `hostler schedule`: three attempts, no fix, a guard of 3 fixes an hour 30 s apart,
    /// hard at the first result that is not OK.
    pub fn every(script: impl Into<String>, host: Option<&str>, every_ms: i64) -> NewSchedule {
        NewSchedule {
            script: script.into(),
            fix_script: None,
            host: host.map(String::from),
            tag: None,
            site: None,
            priority: 0,
            timing: Timing::Every(every_ms),
            timeout_ms: None,
            max_attempts: 3,
            guard_max_fixes: 3,
            guard_window_ms: 3_600_000,
            guard_backoff_ms: 30_000,
            allow_duplicate: false,
            next_due: super::now_ms(),
            retries: 1,
            retry_every_ms: None,
            name: None,
            args: None,
            fix_args: None,
            sites: Vec::new(),
            quorum: None,
        }
    }
}
