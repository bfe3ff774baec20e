//! The one way work enters the queue: what a user asks to run, from the CLI (`hostler
//! schedule`), the shell (`:schedule`), the web page or the API: a script on hosts, a tag or a
//! site ([`Target`], resolved in one place), now (one job per target) or on a timing ([`When`]:
//! one schedule per named host, or one for the tag or site). Every front end goes through
//! [`submit`], so they check and store the same way; monitord only takes work out.
//! [`timing`] is when a schedule is due next; [`downtime`] reads a maintenance window as the
//! CLI, the page and the API ask for one.

pub mod downtime;
pub mod edit;
pub mod timing;

use serde::Serialize;

pub use crate::store::Target;
use crate::store::{NewJob, NewSchedule, Store, StoreError, Timing, now_ms, same_args};

/// When to run.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    Now,
    /// Once, at epoch milliseconds.
    At(i64),
    /// Repeatedly, every this many milliseconds (first run now).
    Every(i64),
    /// Repeatedly, on a cron expression in local time.
    Cron(String),
}

/// A request to run a script.
#[derive(Debug, Clone)]
pub struct Request {
    pub script: String,
    /// The fix to run when the check is not OK (needs a timing); the CLI's `--fix`.
    pub fix_script: Option<String>,
    /// Named hosts; empty with a tag, a site, or neither (a job without a host).
    pub hosts: Vec<String>,
    pub tag: Option<String>,
    pub site: Option<String>,
    pub priority: i64,
    pub when: When,
    pub timeout_ms: Option<i64>,
    pub max_attempts: i64,
    /// The guard: at most this many fixes (`--max-fixes`) ...
    pub guard_max_fixes: i64,
    /// ... in this window (`--fix-window`) ...
    pub guard_window_ms: i64,
    /// ... each waiting twice as long as the one before it (`--fix-backoff`).
    pub guard_backoff_ms: i64,
    pub allow_duplicate: bool,
    /// Results that are not OK before a problem is hard (`--retries`, default 1: at once).
    pub retries: i64,
    /// How soon a soft problem is checked again (`--retry-every`).
    pub retry_every_ms: Option<i64>,
    /// The check's name when one script is scheduled twice on a host (`--name`).
    pub name: Option<String>,
    /// The script's arguments (`--arg NAME=VALUE`) and the fix's (`--fix-arg`).
    pub args: Args,
    pub fix_args: Args,
    /// Whether the requester may give an argument that a script declares `(command)`: an
    /// admin on the page or the API, anyone on this machine's command line.
    pub may_give_commands: bool,
    /// Quorum across sites: run on a node of each site, a problem when `quorum` agree.
    pub sites: Vec<String>,
    pub quorum: Option<i64>,
}

/// A script's arguments by name, as given (`--arg url=http://...`); scripts read them with
/// `arg("url")`, which falls back on the host's vars.
pub type Args = std::collections::BTreeMap<String, String>;

/// Reads `NAME=VALUE` (`--arg`, `--fix-arg`, the page's argument fields): the name is letters,
/// digits and `_`, not starting with a digit; the value may be empty.
pub fn parse_arg(s: &str) -> Result<(String, String), SubmitError> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| invalid(format!("argument {s:?}: write NAME=VALUE")))?;
    let name = name.trim();
    let good = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !good {
        return Err(invalid(format!(
            "argument name {name:?}: letters, digits and _ (at most 64), not starting with a digit"
        )));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Arguments from `NAME=VALUE` words, a name given twice refused.
pub fn parse_args<S: AsRef<str>>(words: &[S]) -> Result<Args, SubmitError> {
    let mut args = Args::new();
    for w in words {
        let (k, v) = parse_arg(w.as_ref())?;
        if args.insert(k.clone(), v).is_some() {
            return Err(invalid(format!("argument {k:?} is given twice")));
        }
    }
    Ok(args)
}

/// Stored arguments (a JSON object) with each value whose name looks secret masked, and a
/// URL's password: what a viewer is shown, through the page and the API alike
/// ([`crate::redact::argument`] decides). Anything but an object is masked whole.
pub fn mask_args(json: &str) -> String {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(json) else {
        return serde_json::Value::String(crate::redact::MASK.into()).to_string();
    };
    serde_json::Value::Object(mask_map(m)).to_string()
}

/// A map of arguments or host vars, masked as [`mask_args`] masks.
pub fn mask_map(
    m: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    m.into_iter()
        .map(|(k, v)| {
            let v = match v {
                _ if crate::redact::secret_name(&k) => {
                    serde_json::Value::String(crate::redact::MASK.into())
                }
                serde_json::Value::String(s) => {
                    serde_json::Value::String(crate::redact::argument(&k, &s))
                }
                other => other,
            };
            (k, v)
        })
        .collect()
}

/// Stored arguments in words, secrets masked: `url=http://127.0.0.1/ expect=200`.
pub fn describe_args(json: Option<&str>) -> String {
    let Some(serde_json::Value::Object(m)) = json.and_then(|j| serde_json::from_str(j).ok()) else {
        return String::new();
    };
    m.iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={}", crate::redact::argument(k, &v))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Arguments as the JSON object the store keeps (None: no arguments).
pub fn args_json(args: &Args) -> Option<String> {
    (!args.is_empty()).then(|| serde_json::to_string(args).unwrap_or_default())
}

impl Request {
    /// A request with the defaults of `hostler schedule`.
    pub fn new(script: impl Into<String>, when: When) -> Request {
        Request {
            script: script.into(),
            fix_script: None,
            hosts: Vec::new(),
            tag: None,
            site: None,
            priority: 0,
            when,
            timeout_ms: None,
            max_attempts: 3,
            guard_max_fixes: 3,
            guard_window_ms: 3_600_000,
            guard_backoff_ms: 30_000,
            allow_duplicate: false,
            retries: 1,
            retry_every_ms: None,
            name: None,
            args: Args::new(),
            fix_args: Args::new(),
            may_give_commands: true,
            sites: Vec::new(),
            quorum: None,
        }
    }
}

/// A job queued by a request to run now.
#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    pub job: i64,
    pub host: Option<String>,
    /// False when the same script was already queued for the host (that job is named).
    pub new: bool,
}

/// What a request made.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Submitted {
    Jobs(Vec<Queued>),
    /// Schedule ids, and when the first run is due.
    Schedules {
        ids: Vec<i64>,
        next_due: i64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Invalid(String),
    /// The requester's role does not allow what the request holds.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Queues a heartbeat's fix on its host, to run now (once: not beside the same fix already
/// queued there).
pub fn heartbeat_fix(
    store: &Store,
    fix: &crate::store::heartbeats::FixDue,
) -> Result<Submitted, SubmitError> {
    let r = Request {
        hosts: fix.host.iter().cloned().collect(),
        max_attempts: 1,
        priority: 10,
        ..Request::new(fix.script.clone(), When::Now)
    };
    let done = submit(store, &r)?;
    tracing::info!(
        heartbeat = %fix.heartbeat,
        host = fix.host.as_deref().unwrap_or("-"),
        "its problem began: fix {} queued",
        fix.script
    );
    Ok(done)
}

/// A check's name (`--name`) is a path segment in the page's links and the API's URLs, as
/// host and script names are: letters, digits, `-`, `_` and `.` (so no `/`, `?`, `#`, `%` or
/// control character), and never `..`.
pub fn check_name(name: &str) -> Result<(), SubmitError> {
    if !crate::store::valid_name(name) || name.contains("..") {
        return Err(invalid(format!(
            "check name {name:?}: letters, digits, - _ and . (at most 255), without .."
        )));
    }
    Ok(())
}

/// Err when `args` gives an argument that the script declares `(command)` and the requester
/// may not give commands.
fn commands_allowed(
    script: &crate::store::Script,
    args: &Args,
    may: bool,
) -> Result<(), SubmitError> {
    if may {
        return Ok(());
    }
    match crate::bundled::arguments(&script.source)
        .into_iter()
        .find(|a| a.command && args.contains_key(&a.name))
    {
        Some(a) => Err(SubmitError::Forbidden(format!(
            "argument {} of {} is a command to run: only an admin may give one",
            a.name, script.name
        ))),
        None => Ok(()),
    }
}

/// The longest interval, and how far ahead a one-off may be: ten years.
const MAX_INTERVAL_MS: i64 = 10 * 365 * 86_400_000;

fn invalid(msg: impl Into<String>) -> SubmitError {
    SubmitError::Invalid(msg.into())
}

/// Checks a request and stores its jobs or schedules, all in one transaction per row.
pub fn submit(store: &Store, r: &Request) -> Result<Submitted, SubmitError> {
    let targets = [!r.hosts.is_empty(), r.tag.is_some(), r.site.is_some()];
    if targets.iter().filter(|t| **t).count() > 1 {
        return Err(invalid("give hosts, a tag or a site, not more than one"));
    }
    if r.script.trim().is_empty() {
        return Err(invalid("the script is missing"));
    }
    if !(1..=100).contains(&r.retries) {
        return Err(invalid("retries must be 1 to 100"));
    }
    if r.retry_every_ms
        .is_some_and(|ms| !(1000..=MAX_INTERVAL_MS).contains(&ms))
    {
        return Err(invalid("the retry interval must be at least one second"));
    }
    if !r.fix_args.is_empty() && r.fix_script.is_none() {
        return Err(invalid("--fix-arg needs a fix (--fix SCRIPT)"));
    }
    if let Some(n) = &r.name {
        check_name(n)?;
    }
    if (r.quorum.is_some() || !r.sites.is_empty()) && matches!(r.when, When::Now) {
        return Err(invalid(
            "--sites and --quorum make a scheduled check: give a timing (--at, --in, --every or --cron)",
        ));
    }
    if r.name.is_some() && matches!(r.when, When::Now) {
        return Err(invalid(
            "--name names a scheduled check: it needs a timing (--at, --in, --every or --cron)",
        ));
    }
    let args = args_json(&r.args);
    let fix_args = args_json(&r.fix_args);
    // Fail on a missing script or host before anything is written.
    let script = store.script(&r.script)?;
    commands_allowed(&script, &r.args, r.may_give_commands)?;
    if let Some(f) = &r.fix_script {
        commands_allowed(&store.script(f)?, &r.fix_args, r.may_give_commands)?;
    }
    for h in &r.hosts {
        store.host(h)?;
    }
    let now = now_ms();
    let (timing, next_due) = match &r.when {
        When::Now => {
            if r.fix_script.is_some() {
                return Err(invalid(
                    "--fix needs a timing (--at, --in, --every or --cron): a correction loop is a schedule",
                ));
            }
            return run_now(store, r, args, now);
        }
        When::At(at) if !(0..=now.saturating_add(MAX_INTERVAL_MS)).contains(at) => {
            return Err(invalid(
                "the time must be between 1970 and ten years from now",
            ));
        }
        When::At(at) => (Timing::At(*at), *at),
        When::Every(ms) if *ms < 1000 => {
            return Err(invalid("the interval must be at least one second"));
        }
        When::Every(ms) if *ms > MAX_INTERVAL_MS => {
            return Err(invalid("the interval must be at most ten years"));
        }
        When::Every(ms) => (Timing::Every(*ms), now),
        When::Cron(c) => {
            let first = timing::cron_next(c, now).map_err(SubmitError::Invalid)?;
            (Timing::Cron(c.clone()), first)
        }
    };
    let hosts: Vec<Option<String>> = if r.hosts.is_empty() {
        vec![None]
    } else {
        r.hosts.iter().cloned().map(Some).collect()
    };
    // The same script, fix, target, name, arguments and timing again would run everything
    // twice; the same check with other arguments would mix two checks' states in one.
    let existing = store.schedules()?;
    let check = r.name.as_deref().unwrap_or(&r.script);
    for host in &hosts {
        let same_target = |s: &&crate::store::Schedule| {
            s.enabled && s.host == *host && s.tag == r.tag && s.site == r.site
        };
        if let Some(other) = existing.iter().filter(same_target).find(|s| {
            s.check() == check
                && (s.script != r.script || !same_args(s.args.as_deref(), args.as_deref()))
        }) {
            return Err(invalid(format!(
                "schedule {} already runs the check {check} {} with other arguments or another script; give this one a --name",
                other.id,
                host.as_deref()
                    .map(|h| format!("on {h}"))
                    .unwrap_or_default(),
            )));
        }
        if let Some(same) = existing.iter().filter(same_target).find(|s| {
            s.script == r.script
                && s.fix_script == r.fix_script
                && s.name == r.name
                && same_args(s.args.as_deref(), args.as_deref())
                && same_args(s.fix_args.as_deref(), fix_args.as_deref())
                && s.timing == timing
        }) {
            return Err(invalid(format!(
                "schedule {} already runs {} {} {}; remove it first (hostler cancel --schedule {})",
                same.id,
                r.script,
                host.as_deref()
                    .map(|h| format!("on {h}"))
                    .or_else(|| r.tag.as_ref().map(|t| format!("on tag {t}")))
                    .or_else(|| r.site.as_ref().map(|s| format!("on site {s}")))
                    .unwrap_or_else(|| "without a host".into()),
                timing::describe(&timing),
                same.id
            )));
        }
    }
    let mut ids = Vec::new();
    for host in hosts {
        ids.push(store.add_schedule(&NewSchedule {
            script: r.script.clone(),
            fix_script: r.fix_script.clone(),
            host,
            tag: r.tag.clone(),
            site: r.site.clone(),
            priority: r.priority,
            timing: timing.clone(),
            timeout_ms: r.timeout_ms,
            max_attempts: r.max_attempts.max(1),
            guard_max_fixes: r.guard_max_fixes.max(0),
            guard_window_ms: r.guard_window_ms,
            guard_backoff_ms: r.guard_backoff_ms,
            allow_duplicate: r.allow_duplicate,
            next_due,
            retries: r.retries,
            retry_every_ms: r.retry_every_ms,
            name: r.name.clone(),
            args: args.clone(),
            fix_args: fix_args.clone(),
            sites: r.sites.clone(),
            quorum: r.quorum,
        })?);
    }
    Ok(Submitted::Schedules { ids, next_due })
}

/// The hosts that named hosts and tags select (`hostler run --host A --tag T`), each once, in
/// the order given, a tag's hosts in name order. A named host must exist; a tag must match at
/// least one enabled host (a disabled host is left out, as schedules leave it out).
pub fn select_hosts(
    store: &Store,
    hosts: &[String],
    tags: &[String],
) -> Result<Vec<String>, SubmitError> {
    let mut names: Vec<String> = Vec::new();
    for h in hosts {
        store.host(h)?;
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    if tags.is_empty() {
        return Ok(names);
    }
    let all = store.hosts()?;
    for t in tags {
        let tagged = Target::Matching {
            tag: Some(t),
            site: None,
        }
        .resolve(&all);
        if tagged.is_empty() {
            return Err(invalid(format!("no enabled host has the tag {t:?}")));
        }
        for h in tagged.into_iter().flatten() {
            if !names.contains(&h) {
                names.push(h);
            }
        }
    }
    Ok(names)
}

/// One job per target host, due now.
fn run_now(
    store: &Store,
    r: &Request,
    args: Option<String>,
    now: i64,
) -> Result<Submitted, SubmitError> {
    let hosts: Vec<Option<String>> = if r.tag.is_some() || r.site.is_some() {
        let matching = Target::Matching {
            tag: r.tag.as_deref(),
            site: r.site.as_deref(),
        };
        let t = matching.resolve(&store.hosts()?);
        if t.is_empty() {
            return Err(invalid("no enabled host matches the tag or site"));
        }
        t
    } else if r.hosts.is_empty() {
        vec![None]
    } else {
        r.hosts.iter().cloned().map(Some).collect()
    };
    let mut queued = Vec::new();
    for host in hosts {
        let (job, new) = store.enqueue_with(
            &NewJob {
                script: r.script.clone(),
                host: host.clone(),
                priority: r.priority,
                due_at: now,
                max_attempts: r.max_attempts.max(1),
                timeout_ms: r.timeout_ms,
                schedule_id: None,
                args: args.clone(),
                name: None,
            },
            r.allow_duplicate,
        )?;
        queued.push(Queued { job, host, new });
    }
    Ok(Submitted::Jobs(queued))
}
