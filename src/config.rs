//! The TOML configuration, as plain data: every part reads its own section from here, and
//! this module depends on no other part. Every key is optional; an unknown key is an error
//! that names it.

use std::path::Path;

use serde::Deserialize;

use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: Database,
    /// `[sandbox]`: what scripts may do and use.
    pub sandbox: Sandbox,
    pub monitord: Monitord,
    pub web: Web,
    pub ssh: Ssh,
    pub sessions: Sessions,
    pub notify: Notify,
    /// `[channel.NAME]`: where notifications can go, each a service of its kind.
    pub channel: std::collections::BTreeMap<String, Channel>,
    /// `[[route]]`: which notifications go to which channels, read in order.
    pub route: Vec<Route>,
    /// `[history]`: how long runs, transcripts, notifications and perfdata are kept.
    pub history: History,
}

/// `[history]`: what housekeeping keeps, and for how long. The database's size is bounded by
/// these and the number of checks (README: "Running for years").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct History {
    /// Days a run that was not OK, or that changed its check's state, is kept.
    pub keep_days: f64,
    /// Hours an OK run that changed nothing is kept (its perfdata stays as points and trends).
    pub keep_ok_hours: f64,
    /// OK runs of a check that change nothing, one after another, share one row: the latest
    /// of them, and how many there were (false: a row each, kept `keep_ok_hours`).
    pub collapse_ok: bool,
    /// Days a transcript of a run that was not OK is kept (then the run stays without it).
    pub keep_transcripts_days: f64,
    /// Keep the transcripts of monitord's OK runs too (by default they are not stored).
    pub ok_transcripts: bool,
    /// Days notifications (problems, recoveries, fixes that failed) are kept.
    pub keep_events_days: f64,
    /// Days raw perfdata points are kept; after that only their hourly trends.
    pub keep_points_days: f64,
    /// Days hourly trends are kept.
    pub keep_trends_days: f64,
    /// Seconds between housekeeping passes in monitord (0: never; `hostler runs prune` by hand).
    pub prune_every: f64,
    /// Rows per transaction: each batch holds the write lock briefly, so the queue goes on.
    pub batch: usize,
    /// A warning is logged when the database's file system has less free space (MiB).
    pub min_free_mb: u64,
}

impl Default for History {
    fn default() -> Self {
        History {
            keep_days: 30.0,
            keep_ok_hours: 24.0,
            collapse_ok: true,
            keep_transcripts_days: 7.0,
            ok_transcripts: false,
            keep_events_days: 365.0,
            keep_points_days: 2.0,
            keep_trends_days: 365.0,
            prune_every: 600.0,
            batch: 500,
            min_free_mb: 1024,
        }
    }
}

/// The `[sandbox]` settings. Every field has a default, so a run with no config at all is bounded:
/// a busy loop hits `max_operations` in well under a second, a wait-heavy loop hits `timeout`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sandbox {
    /// Rhai operations per script (and per imported module's initialisation).
    pub max_operations: u64,
    /// Wall-clock seconds per run, including every network wait.
    pub timeout: f64,
    /// The longest a run may take whatever its job asks (`--timeout`), in seconds.
    pub max_timeout: f64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_modules: usize,
    /// Bytes of output and of transcript kept per run.
    pub max_output: usize,
    /// Globs of the commands scripts may run with `exec` and `spawn` (see
    /// [`crate::session::Allowlist`]).
    pub allowed_commands: Vec<String>,
    /// More commands on top of `allowed_commands` (which replaces the defaults when set).
    pub extra_commands: Vec<String>,
    /// Options refused to every command, besides `--extra-opts` (always refused).
    pub refused_arguments: Vec<String>,
    /// `[sandbox.arguments."GLOB"]`: per command, more refused options, or the only ones.
    pub arguments: std::collections::BTreeMap<String, ArgumentRule>,
    /// Names of environment variables commands get besides PATH and LANG.
    pub environment: Vec<String>,
    /// Whether `credentials(host)` answers for hosts other than the run's own.
    pub credentials_of_other_hosts: bool,
    /// Local processes (`spawn`, a local login) one run may have open at once.
    pub max_processes: usize,
    /// Sockets (`connect`, `http`) one run may have open at once.
    pub max_sockets: usize,
    /// Bytes one run may allocate and hold (counted by the allocator; see `script::memory`).
    pub max_memory: usize,
}

impl Sandbox {
    /// Every command scripts may run: `allowed_commands` and `extra_commands`.
    pub fn commands(&self) -> Vec<String> {
        let mut all = self.allowed_commands.clone();
        all.extend(self.extra_commands.iter().cloned());
        all
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            max_operations: 10_000_000,
            timeout: 10.0,
            max_timeout: 3600.0,
            max_call_levels: 48,
            max_expr_depth: 64,
            max_string_size: 4 << 20,
            max_array_size: 100_000,
            max_map_size: 10_000,
            max_modules: 32,
            max_output: 1 << 20,
            // Read-only checks only: not check_by_ssh (runs any command) nor check_log
            // (copies files).
            allowed_commands: vec![
                "df".into(),
                "uptime".into(),
                "nproc".into(),
                "ps".into(),
                "free".into(),
                "stat".into(),
                "ping".into(),
                "/usr/lib/nagios/plugins/check_{disk,load,users,procs,swap,dummy,ping,tcp,http,dns,ntp_time,uptime}".into(),
            ],
            extra_commands: Vec::new(),
            refused_arguments: Vec::new(),
            // ping with a count and a deadline, never a flood (-f) or a pattern; ps with the
            // processes and columns to show, never BSD's `e` (every process's environment).
            arguments: std::collections::BTreeMap::from([
                (
                    "ping".into(),
                    ArgumentRule {
                        refuse: Vec::new(),
                        only: Some(["-c", "-W", "-w", "-n", "-q", "-4", "-6"].map(String::from).to_vec()),
                        values: None,
                    },
                ),
                (
                    "ps".into(),
                    ArgumentRule {
                        refuse: Vec::new(),
                        only: Some(
                            [
                                "-e", "-A", "-o", "-p", "-C", "-u", "-U", "-f", "-l", "-w",
                                "-ww", "-h", "-q", "-H", "--no-headers", "--pid", "--ppid",
                                "--sort",
                            ]
                            .map(String::from)
                            .to_vec(),
                        ),
                        values: Some(
                            ["-o", "-p", "-C", "-u", "-U", "-q", "--pid", "--ppid", "--sort"]
                                .map(String::from)
                                .to_vec(),
                        ),
                    },
                ),
            ]),
            environment: Vec::new(),
            credentials_of_other_hosts: false,
            max_processes: 16,
            max_sockets: 64,
            max_memory: 256 << 20,
        }
    }
}

impl Sandbox {
    pub fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.timeout.max(0.001)).unwrap_or(Duration::from_secs(10))
    }

    /// What a run may take at most: its job's timeout, or `timeout`, cut to `max_timeout`.
    pub fn run_timeout(&self, asked: Option<Duration>) -> Duration {
        let max = Duration::try_from_secs_f64(self.max_timeout.max(0.001))
            .unwrap_or(Duration::from_secs(3600));
        asked.unwrap_or_else(|| self.timeout()).min(max)
    }
}

/// `[sandbox.arguments."GLOB"]`: what one command may be given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArgumentRule {
    /// Options refused besides `[sandbox] refused_arguments`.
    pub refuse: Vec<String>,
    /// When given, the only options (arguments starting with `-`) allowed; values pass.
    pub only: Option<Vec<String>>,
    /// When given, the options that take the next word as their value; any other word that
    /// is not an option is refused (so `ps e`, BSD's "show the environment", is refused).
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// A SQLite file path (the default, `hostler.db`), or a database URL.
    pub url: String,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: "hostler.db".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Monitord {
    /// Jobs running at once: a check waiting on the network holds a thread (100 to 350 KB) and
    /// no database connection, so hundreds by default.
    pub max_concurrent: usize,
    pub per_host: usize,
    /// Seconds between queue polls.
    pub poll_interval: f64,
    /// Lease length in seconds.
    pub lease: f64,
    /// This node's name in leases and runs (default: the host name).
    pub node: Option<String>,
    /// Claim only jobs for hosts of this site.
    pub site: Option<String>,
    /// Seconds running jobs get to finish on shutdown before they are cancelled.
    pub grace: f64,
    /// Seconds before the first retry of a failed job; doubled per attempt, capped at 300.
    pub retry_backoff: f64,
    /// Seconds after a fix during which the re-check keeps trying (0.5 s, 1 s, 2 s ... apart)
    /// before the fix is judged to have failed: a service may take a while to start.
    pub recheck_within: f64,
    /// A check whose state changed this many times within `flap_window` seconds is flapping:
    /// its problems and recoveries are held, and one message says so. It stops flapping when
    /// the changes in the window fall to half that.
    pub flap_changes: usize,
    pub flap_window: f64,
    /// Seconds after a check began to fail before its parents' OK counts (see `hostler
    /// depend`): a failing child waits that long (and its parents are checked at once) before
    /// it is fixed or told, so a router that goes down a moment after its hosts still cuts
    /// them off. It waits at most 12 times this, and at least a minute.
    pub dependency_settle: f64,
    /// Seconds the oldest due job may wait in the queue before the node says it is behind: a
    /// warning (at most once a minute) and a degraded `/healthz`.
    pub max_lag: f64,
    /// Seconds ahead of their due time that schedules fire and jobs are claimed; each job then
    /// starts at its due time from memory, so a write lock held meanwhile (a large `hostler
    /// apply`, a backup) does not delay it. At most `max_concurrent` jobs wait so; a host's
    /// waiting job counts toward `per_host`. 0 turns it off.
    pub claim_ahead: f64,
}

impl Default for Monitord {
    fn default() -> Self {
        Monitord {
            max_concurrent: 256,
            per_host: 1,
            poll_interval: 1.0,
            lease: 60.0,
            node: None,
            site: None,
            grace: 30.0,
            retry_backoff: 5.0,
            recheck_within: 30.0,
            flap_changes: 6,
            flap_window: 3600.0,
            dependency_settle: 5.0,
            max_lag: 60.0,
            claim_ahead: 2.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    pub listen: String,
    pub public_metrics: bool,
    /// Host names the page answers to besides loopback ones (behind a proxy that passes the
    /// browser's Host). On a loopback listener, requests for any other name are refused:
    /// that stops DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Open connections at once, in all; past it a new one gets 503 and is closed. An idle
    /// kept-alive connection costs a few KB and a descriptor; the limit is cut to what the
    /// open-files limit leaves (with 512 kept for the rest of the process).
    pub max_connections: usize,
    /// Open connections at once from one client address (raise it behind a proxy).
    pub max_connections_per_client: usize,
    /// The page's address as people reach it (`https://hostler.example`): notifications
    /// link to their run under it.
    pub public_url: Option<String>,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            listen: "127.0.0.1:8080".into(),
            public_metrics: false,
            allowed_hosts: Vec::new(),
            max_connections: 10_000,
            max_connections_per_client: 64,
            public_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ssh {
    /// What to do with the host key of a host seen for the first time: `accept` (pin it) or
    /// `reject`. A key that differs from the pinned one always fails.
    pub trust_new: TrustNew,
}

impl Default for Ssh {
    fn default() -> Self {
        Ssh {
            trust_new: TrustNew::Accept,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustNew {
    Accept,
    Reject,
}

/// `[sessions]`: remote sessions (ssh, telnet, http).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sessions {
    /// Seconds to wait for a TCP connection, an SSH handshake or login step.
    pub connect_timeout: f64,
    /// Seconds an authenticated session stays open for reuse after a run; 0 turns reuse off.
    pub idle_timeout: f64,
    /// Seconds after its login that a session is no longer reused, however busy.
    pub max_lifetime: f64,
    /// Seconds a pooled session gets to answer its health check before it is replaced.
    pub health_timeout: f64,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            connect_timeout: 10.0,
            idle_timeout: 300.0,
            max_lifetime: 3600.0,
            health_timeout: 5.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// A URL that gets each notification as a JSON POST.
    pub webhook: Option<String>,
    /// A command that gets each notification as a mail on stdin (`sendmail -t` sends it),
    /// and its fields as `HOSTLER_*` environment variables.
    pub command: Option<String>,
    /// The mail's `To:` for the command.
    pub mail_to: Option<String>,
    /// At most this many deliveries per channel in any minute, by this node (0: no limit);
    /// the rest wait their turn, nothing is dropped.
    pub max_per_minute: usize,
    /// Events that come to one channel within this long go out as one message that lists
    /// them ("0s": each on its own). A window's first event waits at most this long.
    pub group_window: String,
}

impl Default for Notify {
    fn default() -> Notify {
        Notify {
            webhook: None,
            command: None,
            mail_to: None,
            max_per_minute: 30,
            group_window: "10s".into(),
        }
    }
}

/// What kind of service a channel sends to; each has its own documented message shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Webhook,
    Command,
    Smtp,
    Slack,
    Teams,
    Discord,
    Mattermost,
    Ntfy,
    Gotify,
    Telegram,
    Pagerduty,
    Opsgenie,
}

/// How an SMTP channel speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on the same host or network).
    None,
    /// Plain, then STARTTLS before anything else; refused if the server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `[channel.NAME]`: one place notifications can go. Which keys a kind takes is checked when
/// the config is read (`hostler::notify`); secrets can live in files (`*_file`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub kind: ChannelKind,
    /// The service's URL: a webhook's, or a server's base (ntfy, gotify, telegram, pagerduty,
    /// opsgenie have defaults where the service has one).
    pub url: Option<String>,
    /// A file holding the URL, for webhook URLs that carry their secret (Slack, Teams, ...).
    pub url_file: Option<String>,
    /// The service's token: a bot token, an app token, PagerDuty's routing key, Opsgenie's
    /// API key, an ntfy access token.
    pub token: Option<String>,
    pub token_file: Option<String>,
    /// `command`: the command line that gets the mail on stdin.
    pub command: Option<String>,
    /// `smtp`: the server as HOST:PORT.
    pub server: Option<String>,
    pub tls: Option<SmtpTls>,
    /// `smtp`: extra CA certificates (PEM) to trust, for a private CA.
    pub ca_file: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<String>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    /// `telegram`: the chat to post to.
    pub chat_id: Option<String>,
    /// `ntfy`: the topic.
    pub topic: Option<String>,
    /// At most this many deliveries in any minute (default: `[notify] max_per_minute`).
    pub max_per_minute: Option<usize>,
}

impl Channel {
    /// A channel of a kind with nothing else set.
    pub fn new(kind: ChannelKind) -> Channel {
        Channel {
            kind,
            url: None,
            url_file: None,
            token: None,
            token_file: None,
            command: None,
            server: None,
            tls: None,
            ca_file: None,
            user: None,
            password_file: None,
            from: None,
            to: Vec::new(),
            chat_id: None,
            topic: None,
            max_per_minute: None,
        }
    }
}

/// `[[route]]`: notifications that match go to its channels. Every list that is given must
/// match (an empty or absent list matches anything).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// The host has one of these tags.
    pub tags: Vec<String>,
    /// The host's name matches one of these (`*` and `?` as in a shell).
    pub hosts: Vec<String>,
    /// The check's name matches one of these.
    pub checks: Vec<String>,
    /// The check's state is one of these (ok, warning, critical, unknown).
    pub states: Vec<String>,
    /// The event is one of these (problem, recovery, fix_failed, ...).
    pub events: Vec<String>,
    pub channels: Vec<String>,
    /// Later routes are read too (otherwise the first match wins).
    #[serde(rename = "continue")]
    pub continue_: bool,
    /// Sent only if the problem still holds, unacknowledged, this long after it was told.
    pub after: Option<String>,
    /// Reminded this often while the problem holds unacknowledged.
    pub repeat: Option<String>,
    /// Only within these hours, in the node's time zone: "Mon-Fri 08:00-18:00".
    pub hours: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {msg}")]
    Read { path: String, msg: String },
    #[error("config {path}: {msg}")]
    Parse { path: String, msg: String },
}

/// Err naming the first key whose number is NaN or infinite.
fn finite(table: &toml::Table, prefix: &str) -> Result<(), String> {
    fn value(v: &toml::Value, key: &str) -> Result<(), String> {
        match v {
            toml::Value::Float(f) if !f.is_finite() => Err(format!(
                "{key} = {f}: give a finite number (nan and inf are not accepted)"
            )),
            toml::Value::Table(t) => finite(t, key),
            toml::Value::Array(a) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| value(v, &format!("{key}[{i}]"))),
            _ => Ok(()),
        }
    }
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        value(v, &key)?;
    }
    Ok(())
}

impl Config {
    /// Loads a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        Config::parse(&text).map_err(|msg| ConfigError::Parse {
            path: path.display().to_string(),
            msg,
        })
    }

    /// Parses config text; the error is one line naming the key. A number that is not
    /// finite (`nan`, `inf`) is refused wherever it stands: no setting means "no limit" or
    /// "never" by one.
    pub fn parse(text: &str) -> Result<Config, String> {
        if let Ok(table) = toml::from_str::<toml::Table>(text) {
            finite(&table, "")?;
        }
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|s| {
                    format!(
                        " (line {})",
                        text.as_bytes()[..s.start.min(text.len())]
                            .iter()
                            .filter(|&&b| b == b'\n')
                            .count()
                            + 1
                    )
                })
                .unwrap_or_default();
            format!("{}{at}", e.message().replace('\n', " "))
        })
    }

    /// This node's name.
    pub fn node(&self) -> String {
        self.monitord.node.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "hostler".into())
        })
    }
}
