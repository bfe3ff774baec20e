//! Delivering notifications: each pending one goes to the channels its routes name
//! ([`crate::notify`]), at once or, for an escalation, later and only if its problem still
//! holds unacknowledged. Events for one channel within `[notify] group_window` go out as one
//! message. Reminders are made here for problems that hold unacknowledged.
//!
//! Each channel is delivered on its own: the row keeps the channels that took the
//! notification, so a retry after a failed webhook never makes the mail go twice. A failed
//! delivery is retried with backoff, then given up; a rate limit or a window only waits.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{info, warn};

use crate::config::{self, Config, Notify};
use crate::notify::{self, Facts, Plan};
use crate::store::{Alert, Check, CheckState, Notice, Notification, Store, StoreError, now_ms};

/// Attempts before a notification is given up.
pub const MAX_TRIES: i64 = 8;
/// How long a notification held by the rate limit waits before the next pass tries it.
const HELD_FOR_MS: i64 = 5_000;
/// How often reminders are looked for.
const REMIND_EVERY_MS: i64 = 5_000;

/// The notification settings (`[notify]`, `[channel.*]`, `[[route]]`), the page's public
/// address for links to runs, and this process's rate limit per channel.
#[derive(Debug, Clone, Default)]
pub struct Channels {
    pub notify: Notify,
    pub channel: BTreeMap<String, config::Channel>,
    pub route: Vec<config::Route>,
    pub public_url: Option<String>,
    /// This node's name, for SMTP's greeting and Message-IDs.
    pub node: String,
    pub limit: Arc<RateLimit>,
    /// When reminders were last looked for (epoch ms).
    last_remind: Arc<AtomicI64>,
}

impl Channels {
    pub fn from_config(c: &Config) -> Channels {
        Channels {
            notify: c.notify.clone(),
            channel: c.channel.clone(),
            route: c.route.clone(),
            public_url: c.web.public_url.clone(),
            node: c.node(),
            ..Channels::default()
        }
    }

    /// The channels and routes, read and checked.
    pub fn plan(&self) -> Result<Plan, notify::NotifyError> {
        Plan::new(
            &self.notify,
            &self.channel,
            &self.route,
            self.public_url.clone(),
        )
    }
}

/// At most so many deliveries per channel in any minute (this process's own count).
#[derive(Debug, Default)]
pub struct RateLimit {
    sent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimit {
    /// Whether `channel` may deliver one more now (`per_minute` 0: always); counts it if so.
    fn allow(&self, channel: &str, per_minute: usize) -> bool {
        if per_minute == 0 {
            return true;
        }
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let q = sent.entry(channel.to_string()).or_default();
        let now = Instant::now();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            q.pop_front();
        }
        if q.len() >= per_minute {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// One pending notification in this pass: what took it, what it waits for, what failed.
struct Pending {
    n: Notification,
    fields: Value,
    took: Vec<String>,
    errors: Vec<String>,
    /// The earliest time it must be looked at again (a window, an escalation, a rate limit).
    wait_until: Option<i64>,
}

impl Pending {
    fn wait(&mut self, until: i64) {
        self.wait_until = Some(self.wait_until.map_or(until, |w| w.min(until)));
    }
}

/// The host's tags, read once a pass.
fn tags_of<'a>(hosts: &'a HashMap<String, Vec<String>>, host: Option<&str>) -> &'a [String] {
    host.and_then(|h| hosts.get(h)).map_or(&[], Vec::as_slice)
}

fn host_tags(store: &Store) -> Result<HashMap<String, Vec<String>>, StoreError> {
    Ok(store
        .hosts()?
        .into_iter()
        .map(|h| (h.name, h.tags))
        .collect())
}

/// Whether an escalation still stands: its check still has a problem nobody acknowledged.
/// Err when the check cannot be read (then the escalation waits; it is never dropped on a
/// failed read).
fn escalation_stands(store: &Store, n: &Notification, f: &Value) -> Result<bool, StoreError> {
    let Some(check) = f.get("check").and_then(Value::as_str) else {
        return Ok(true);
    };
    match store.check(n.host.as_deref(), check) {
        Ok(c) => Ok(c.state != CheckState::Ok && !c.acked),
        // The check is gone (its host or schedule removed): nothing left to escalate.
        Err(StoreError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Delivers every due notification once, to each channel that has not taken it yet; returns
/// how many are now delivered to all.
pub fn deliver_pending(store: &Store, ch: &Channels) -> usize {
    deliver_at(store, ch, now_ms())
}

/// [`deliver_pending`] as of `now` (epoch ms): windows, escalations, reminders and routes'
/// hours are judged by it.
pub fn deliver_at(store: &Store, ch: &Channels, now: i64) -> usize {
    let plan = match ch.plan() {
        Ok(p) => p,
        Err(e) => {
            warn!("notifications wait: {e}");
            return 0;
        }
    };
    if let Err(e) = remind(store, ch, &plan, now) {
        warn!("cannot look for reminders: {e}");
    }
    let pending = match store.pending_notifications(now, 500) {
        Ok(p) => p,
        Err(e) => {
            warn!("cannot read pending notifications: {e}");
            return 0;
        }
    };
    if pending.is_empty() {
        return 0;
    }
    let hosts = if plan.rules.is_empty() {
        HashMap::new()
    } else {
        match host_tags(store) {
            Ok(h) => h,
            Err(e) => {
                warn!("cannot read the hosts' tags for routes: {e}");
                return 0;
            }
        }
    };
    let mut rows: Vec<Pending> = Vec::new();
    // Channel -> (row, when it became due) for this pass.
    let mut by_channel: HashMap<String, Vec<(usize, i64)>> = HashMap::new();
    for n in pending {
        // Several daemons share the table: only the one that takes it delivers it.
        if !store.claim_notification(&n, 60_000).unwrap_or(false) {
            continue;
        }
        let took: Vec<String> = n
            .channel
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        let fields = notify::message::fields(&n, plan.public_url.as_deref());
        let mut p = Pending {
            n,
            fields,
            took,
            errors: Vec::new(),
            wait_until: None,
        };
        let idx = rows.len();
        if plan.channels.is_empty() {
            // Nowhere to send it: the row and the log are the record.
            info!(subject = %p.n.subject, "notification (no channel configured)");
            if !p.took.iter().any(|t| t == "log") {
                p.took.push("log".into());
            }
            rows.push(p);
            continue;
        }
        let event = p.n.event.map_or("notify", |e| e.as_str());
        let state = p.fields["state"].as_str().map(str::to_ascii_lowercase);
        let facts = Facts {
            host: p.n.host.as_deref(),
            tags: tags_of(&hosts, p.n.host.as_deref()),
            check: p.fields["check"].as_str(),
            state: state.as_deref(),
            event,
        };
        let targets = plan.targets(&facts, now);
        if targets.is_empty() && p.took.is_empty() {
            info!(id = p.n.id, subject = %p.n.subject, "notification matched no route");
            p.took.push("unrouted".into());
        }
        for t in targets {
            if p.took.contains(&t.channel) {
                continue;
            }
            let due = p.n.created_at.saturating_add(t.after_ms);
            if due > now {
                p.wait(due);
                continue;
            }
            if t.after_ms > 0 {
                match escalation_stands(store, &p.n, &p.fields) {
                    Ok(true) => {}
                    Ok(false) => {
                        info!(
                            id = p.n.id,
                            channel = %t.channel,
                            "escalation not sent: the problem recovered or was acknowledged"
                        );
                        p.took.push(t.channel.clone());
                        continue;
                    }
                    Err(e) => {
                        warn!(id = p.n.id, "escalation waits: cannot read its check: {e}");
                        p.wait(now + HELD_FOR_MS);
                        continue;
                    }
                }
            }
            by_channel.entry(t.channel).or_default().push((idx, due));
        }
        rows.push(p);
    }
    // In the config's order (the old webhook before the old command).
    for def in &plan.channels {
        let Some(entries) = by_channel.remove(&def.name) else {
            continue;
        };
        let name = def.name.clone();
        let window = if notify::message::groups(def.kind) {
            plan.group_window_ms
        } else {
            0
        };
        let first = entries.iter().map(|(_, due)| *due).min().unwrap_or(now);
        if window > 0 && first + window > now {
            for (i, _) in &entries {
                rows[*i].wait(first + window);
            }
            continue;
        }
        // With no window, each event is a message of its own.
        let batches: Vec<&[(usize, i64)]> = if window > 0 {
            vec![&entries[..]]
        } else {
            entries.chunks(1).collect()
        };
        for batch in batches {
            if !ch.limit.allow(&name, def.per_minute) {
                info!(
                    channel = %name,
                    "notifications held by the channel's rate limit ({} a minute)",
                    def.per_minute
                );
                for (i, _) in batch {
                    rows[*i].wait(now + HELD_FOR_MS);
                }
                continue;
            }
            let items: Vec<Value> = batch.iter().map(|(i, _)| rows[*i].fields.clone()).collect();
            match def.send(&items, &ch.node) {
                Ok(answer) => {
                    info!(channel = %name, events = items.len(), "notified: {answer}");
                    for (i, _) in batch {
                        rows[*i].took.push(name.clone());
                    }
                }
                Err(e) => {
                    for (i, _) in batch {
                        rows[*i].errors.push(format!("{name}: {e}"));
                    }
                }
            }
        }
    }
    let mut delivered = 0;
    for p in rows {
        let took = p.took.join(",");
        if p.errors.is_empty() {
            if let Some(until) = p.wait_until {
                // Waiting for a window, an escalation or the rate limit: no try is counted.
                if let Err(e) = store.hold_notification(p.n.id, &took, until) {
                    warn!("cannot hold a notification: {e}");
                }
                continue;
            }
            delivered += 1;
            if let Err(e) = store.notification_attempt(p.n.id, &took, Ok(()), None) {
                warn!("cannot record a delivery: {e}");
            }
            continue;
        }
        let err = p.errors.join("; ");
        let backoff = now + 10_000 * (1 << p.n.tries.clamp(0, 12));
        let next =
            (p.n.tries + 1 < MAX_TRIES).then(|| p.wait_until.map_or(backoff, |w| w.min(backoff)));
        warn!(
            id = p.n.id,
            tries = p.n.tries + 1,
            "notification not delivered: {err}"
        );
        if let Err(e) = store.notification_attempt(p.n.id, &took, Err(err), next) {
            warn!("cannot record a delivery attempt: {e}");
        }
    }
    delivered
}

/// Makes a reminder for each problem that holds unacknowledged past the `repeat` of a route
/// that takes it (at most every few seconds a pass, and only when some route repeats).
fn remind(store: &Store, ch: &Channels, plan: &Plan, now: i64) -> Result<(), StoreError> {
    if !plan.rules.iter().any(|r| r.repeat.is_some()) {
        return Ok(());
    }
    let last = ch.last_remind.load(Ordering::Relaxed);
    if now - last < REMIND_EVERY_MS {
        return Ok(());
    }
    ch.last_remind.store(now, Ordering::Relaxed);
    let checks = store.checks()?;
    let candidates: Vec<&Check> = checks
        .iter()
        .filter(|c| {
            c.hard
                && c.state != CheckState::Ok
                && c.notified
                && !c.acked
                && !c.flapping
                && !c.unreachable
        })
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let quiet = store.checks_in_downtime(&checks)?;
    let hosts = host_tags(store)?;
    for c in candidates {
        if quiet.contains(&c.id) {
            continue;
        }
        let state = c.state.as_str();
        let facts = Facts {
            host: c.host.as_deref(),
            tags: tags_of(&hosts, c.host.as_deref()),
            check: Some(&c.script),
            state: Some(state),
            event: "reminder",
        };
        let Some(every) = plan.repeat_ms(&facts, now) else {
            continue;
        };
        let last = c.reminded_at.filter(|t| *t >= c.since).unwrap_or(c.since);
        if now - last < every {
            continue;
        }
        let target = format!("{}/{}", c.host.as_deref().unwrap_or("(no host)"), c.script);
        let upper = state.to_ascii_uppercase();
        let notice = Notice {
            event: Alert::Reminder,
            subject: format!(
                "REMINDER: {target} still {upper} since {}: {}",
                crate::when::local(c.since),
                c.message
            ),
            body: format!(
                "{target} has been {upper} since {}, and nobody has acknowledged it.\n{}",
                crate::when::local(c.since),
                c.message
            ),
        };
        let details = json!({
            "check": c.script,
            "state": state,
            "since": c.since,
            "message": c.message,
            "perfdata": c.perfdata,
        });
        if store.remind(c, &notice, &details, now)? {
            info!(check = %target, "reminder made");
        }
    }
    Ok(())
}
