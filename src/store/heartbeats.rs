//! Heartbeats: checks fed from outside. A cron job or a backup pings `/ping/TOKEN` (or runs
//! under `hostler exec`); each ping is a result of the heartbeat's check (host, name),
//! recorded as a passive run through the same state machine as any check. No ping within
//! `every` + `grace` of the last one (or of the heartbeat's making) is a CRITICAL result,
//! recorded once by whichever node sees it first, until the next ping.
//!
//! The token is the credential: it is shown once, and kept only as its hash.

use serde::Serialize;

use super::statements as st;
use super::{ConnExt, JobAction, NewRun, Row, Status, Store, StoreError, now_ms};
use crate::sql::param;

/// The most output a ping keeps (a larger body is refused by the web server with 413).
pub const MAX_BODY: usize = 100 * 1024;

/// A heartbeat, without its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heartbeat {
    pub id: i64,
    pub name: String,
    pub host: Option<String>,
    pub every_ms: i64,
    pub grace_ms: i64,
    /// When pings are expected (a cron expression, local time), instead of every `every_ms`.
    pub cron: Option<String>,
    pub last_ping_at: Option<i64>,
    pub last_start_at: Option<i64>,
    pub missed_at: Option<i64>,
    pub author: Option<String>,
    pub created_at: i64,
    /// The fix queued on its host when its problem begins.
    pub fix: Option<String>,
    /// The site file manages it (`hostler apply`).
    pub managed: bool,
}

/// A heartbeat's fix to queue now: its problem began (the caller queues it, the store knows
/// no queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixDue {
    pub heartbeat: String,
    pub host: Option<String>,
    pub script: String,
}

/// What a ping recorded: its status (None for a start), and the fix its problem calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinged {
    pub status: Option<Status>,
    pub fix: Option<FixDue>,
}

/// What a pass over the heartbeats recorded: how many missed pings, and the fixes they call
/// for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missed {
    pub told: usize,
    pub fixes: Vec<FixDue>,
}

impl Heartbeat {
    /// When a ping is due at the latest: the next expected time after the last ping (or the
    /// heartbeat's making), plus the grace; or why that cannot be told (a cron expression
    /// that no longer reads, or never matches again).
    pub fn deadline(&self) -> Result<i64, String> {
        let from = self.last_ping_at.unwrap_or(self.created_at);
        let expected = match &self.cron {
            Some(c) => crate::when::cron_next(c, from)?,
            None => from.saturating_add(self.every_ms),
        };
        Ok(expected.saturating_add(self.grace_ms))
    }

    /// What it expects, as its messages say: "every 1d" or "at cron 0 2 * * *".
    pub fn expected(&self) -> String {
        match &self.cron {
            Some(c) => format!("at cron {c}"),
            None => format!("every {}", span(self.every_ms)),
        }
    }
}

/// A new heartbeat.
#[derive(Debug, Clone, Default)]
pub struct NewHeartbeat {
    pub name: String,
    pub host: Option<String>,
    pub every_ms: i64,
    pub grace_ms: i64,
    /// Expected at these times instead (then `every_ms` is ignored).
    pub cron: Option<String>,
    pub author: Option<String>,
    /// A fix script to queue on the host when the heartbeat's problem begins.
    pub fix: Option<String>,
}

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// It ran and succeeded (`/ping/TOKEN`).
    Success,
    /// It started (`/ping/TOKEN/start`): the next result's run begins here.
    Start,
    /// It failed (`/ping/TOKEN/fail`).
    Fail,
    /// It ended with this exit status (`/ping/TOKEN/N`): 0 is OK, anything else CRITICAL.
    Exit(i64),
}

fn heartbeat_from_row(r: &Row) -> Result<Heartbeat, StoreError> {
    Ok(Heartbeat {
        id: r.int("id")?,
        name: r.text("name")?,
        host: r.opt_text("host")?,
        every_ms: r.int("every_ms")?,
        grace_ms: r.int("grace_ms")?,
        cron: r.opt_text("cron")?,
        last_ping_at: r.opt_int("last_ping_at")?,
        last_start_at: r.opt_int("last_start_at")?,
        missed_at: r.opt_int("missed_at")?,
        author: r.opt_text("author")?,
        created_at: r.int("created_at")?,
        fix: r.opt_text("fix")?,
        managed: r.boolean("managed")?,
    })
}

/// What a token is kept as.
pub fn token_hash(token: &str) -> String {
    use blake2::{Blake2b512, Digest};
    Blake2b512::digest(token.as_bytes())[..32]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a new heartbeat's name and timing.
pub(super) fn check_heartbeat(h: &NewHeartbeat) -> Result<(), StoreError> {
    let bad = |m: String| Err(StoreError::Invalid(m));
    if !super::valid_name(&h.name) || h.name.contains("..") {
        return bad(format!(
            "heartbeat {:?}: letters, digits, '.', '-' and '_'",
            h.name
        ));
    }
    match &h.cron {
        Some(c) => {
            if let Err(e) = crate::when::cron_next(c, now_ms()) {
                return bad(format!("--cron: {e}"));
            }
        }
        None if h.every_ms < 1000 => {
            return bad("--every: at least one second (or give --cron)".into());
        }
        None => {}
    }
    if h.grace_ms < 0 {
        return bad("--grace: not negative".into());
    }
    Ok(())
}

/// The columns a heartbeat's settings write, on insert and update alike.
fn heartbeat_values(h: &NewHeartbeat, managed: bool) -> Vec<(&'static str, crate::sql::Expr)> {
    vec![
        (
            "every_ms",
            param(if h.cron.is_some() { 0 } else { h.every_ms }),
        ),
        ("cron", param(h.cron.clone())),
        ("grace_ms", param(h.grace_ms)),
        ("fix", param(h.fix.clone())),
        ("managed", param(managed)),
    ]
}

/// Inserts a checked heartbeat with its token (kept as its hash); its id.
pub(super) fn insert_heartbeat(
    c: &mut dyn super::Conn,
    h: &NewHeartbeat,
    token: &str,
    managed: bool,
) -> Result<i64, StoreError> {
    let mut values = vec![
        ("name", param(h.name.as_str())),
        ("host", param(h.host.clone())),
        ("token_hash", param(token_hash(token))),
        ("author", param(h.author.clone())),
        ("created_at", param(now_ms())),
    ];
    values.extend(heartbeat_values(h, managed));
    c.insert(st::heartbeat_insert(values))
}

/// Changes a heartbeat's timing and fix in place (its token and pings stay).
pub(super) fn update_heartbeat_in(
    c: &mut dyn super::Conn,
    id: i64,
    h: &NewHeartbeat,
    managed: bool,
) -> Result<(), StoreError> {
    c.exec(st::heartbeat_update(id, heartbeat_values(h, managed)))?;
    Ok(())
}

/// A new heartbeat's token.
pub(super) fn new_token() -> Result<String, StoreError> {
    let mut buf = [0u8; 20];
    getrandom::getrandom(&mut buf).map_err(|e| StoreError::Db(format!("no randomness: {e}")))?;
    Ok(format!(
        "hb_{}",
        buf.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

fn span(ms: i64) -> String {
    crate::when::span(std::time::Duration::from_millis(ms.max(0) as u64))
}

impl Store {
    /// Makes a heartbeat and returns its id and its token (shown once, kept as its hash).
    pub fn add_heartbeat(&self, h: &NewHeartbeat) -> Result<(i64, String), StoreError> {
        check_heartbeat(h)?;
        if let Some(host) = &h.host {
            self.host(host)?;
        }
        if let Some(fix) = &h.fix {
            self.script(fix)?;
        }
        if self
            .heartbeats()?
            .iter()
            .any(|x| x.name == h.name && x.host == h.host)
        {
            return Err(StoreError::Invalid(format!(
                "heartbeat {} exists already",
                h.name
            )));
        }
        let token = new_token()?;
        let id = self.write(|c| insert_heartbeat(c, h, &token, false))?;
        Ok((id, token))
    }

    /// Every heartbeat, by host then name.
    pub fn heartbeats(&self) -> Result<Vec<Heartbeat>, StoreError> {
        self.read(|c| {
            c.query(st::heartbeat_list())?
                .iter()
                .map(heartbeat_from_row)
                .collect()
        })
    }

    /// A heartbeat by its name (and host).
    pub fn heartbeat(&self, name: &str, host: Option<&str>) -> Result<Heartbeat, StoreError> {
        self.heartbeats()?
            .into_iter()
            .find(|h| h.name == name && h.host.as_deref() == host)
            .ok_or_else(|| StoreError::NotFound {
                kind: "heartbeat",
                name: name.to_string(),
            })
    }

    /// Removes a heartbeat (its check and runs stay until the check is removed).
    pub fn remove_heartbeat(&self, name: &str, host: Option<&str>) -> Result<(), StoreError> {
        let h = self.heartbeat(name, host)?;
        self.write(|c| c.exec(st::heartbeat_delete(h.id)).map(|_| ()))
    }

    /// The heartbeat a token opens (NotFound for any other token).
    pub fn heartbeat_by_token(&self, token: &str) -> Result<Heartbeat, StoreError> {
        let hash = token_hash(token);
        self.read(|c| c.query_one(st::heartbeat_by_token(&hash)))?
            .map(|r| heartbeat_from_row(&r))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "heartbeat",
                name: "(that token)".into(),
            })
    }

    /// The state of a heartbeat's check before a result (None: it has none yet).
    fn state_before(&self, h: &Heartbeat) -> Result<Option<super::CheckState>, StoreError> {
        match self.check(h.host.as_deref(), &h.name) {
            Ok(c) => Ok(Some(c.state)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The fix a result calls for: the heartbeat has one, the result begins a problem (its
    /// check was OK, or new), and no downtime covers it.
    fn fix_due(
        &self,
        h: &Heartbeat,
        before: Option<super::CheckState>,
        status: Status,
    ) -> Result<Option<FixDue>, StoreError> {
        let Some(script) = &h.fix else {
            return Ok(None);
        };
        if status == Status::Ok || before.is_some_and(|s| s != super::CheckState::Ok) {
            return Ok(None);
        }
        if self.in_downtime(h.host.as_deref(), &h.name)? {
            return Ok(None);
        }
        Ok(Some(FixDue {
            heartbeat: h.name.clone(),
            host: h.host.clone(),
            script: script.clone(),
        }))
    }

    /// Records a ping of `h`: a start, or a result with `body` as its output. Returns the
    /// status recorded (None for a start) and the fix to queue, if its problem began.
    pub fn ping(&self, h: &Heartbeat, ping: Ping, body: &str) -> Result<Pinged, StoreError> {
        self.ping_many(&[(h.id, ping, body.to_string())])?
            .pop()
            .flatten()
            .ok_or_else(|| StoreError::NotFound {
                kind: "heartbeat",
                name: h.name.clone(),
            })
    }

    /// Records pings (heartbeat id, what it says, its body) in one transaction: group commit,
    /// for the pings the web server gathers as they come in together. Each heartbeat's pings
    /// are taken in the order they came, and the heartbeats in id order: two nodes' batches
    /// lock the rows they share in the same order, so they never deadlock. Each heartbeat is
    /// read as it stands in the transaction (a start earlier in the batch counts); None for
    /// one that is gone. All or none.
    pub fn ping_many(
        &self,
        pings: &[(i64, Ping, String)],
    ) -> Result<Vec<Option<Pinged>>, StoreError> {
        let at = now_ms();
        let mut done = self.recorded(super::runs::Lane::default());
        let mut due = Vec::new();
        let out = self.write(|c| {
            let mut out: Vec<Option<Pinged>> = (0..pings.len()).map(|_| None).collect();
            let mut order: Vec<usize> = (0..pings.len()).collect();
            order.sort_by_key(|&i| pings[i].0);
            for i in order {
                let (id, ping, body) = &pings[i];
                let Some(row) = c.query_one(st::heartbeat_get(*id))? else {
                    continue;
                };
                let h = heartbeat_from_row(&row)?;
                if *ping == Ping::Start {
                    c.exec(st::heartbeat_pinged(h.id, at, true))?;
                    out[i] = Some(Pinged {
                        status: None,
                        fix: None,
                    });
                    continue;
                }
                let (status, what) = match ping {
                    Ping::Success | Ping::Exit(0) => (Status::Ok, "ping".to_string()),
                    Ping::Fail => (Status::Critical, "failure reported (/fail)".to_string()),
                    Ping::Exit(n) => (Status::Critical, format!("exit status {n}")),
                    Ping::Start => unreachable!("handled above"),
                };
                // A start since the last result begins this run: its duration is known.
                let started = h
                    .last_start_at
                    .filter(|s| h.last_ping_at.is_none_or(|p| *s >= p) && *s <= at);
                let message = match started {
                    Some(s) => format!("{what} after {}", span(at - s)),
                    None => what,
                };
                let mut cut = body.len().min(MAX_BODY);
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                let run = NewRun {
                    perfdata: started.map(|s| format!("duration={}ms;;;0", at - s)),
                    output: body[..cut].to_string(),
                    started_at: started.unwrap_or(at),
                    ..NewRun::passive(h.host.as_deref(), &h.name, "ping", status, message, at)
                };
                // Only a heartbeat with a fix needs its check's state from before.
                let before = match &h.fix {
                    Some(_) => Some(
                        c.query_one(st::check_get(h.host.as_deref(), &h.name))?
                            .map(|r| super::checks::check_from_row(&r).map(|c| c.state))
                            .transpose()?,
                    ),
                    None => None,
                };
                c.exec(st::heartbeat_pinged(h.id, at, false))?;
                self.record_in(c, &run, JobAction::Keep, &mut done)?;
                if let Some(before) = before {
                    due.push((i, h, before, status));
                }
                out[i] = Some(Pinged {
                    status: Some(status),
                    fix: None,
                });
            }
            done.finish(c)?;
            Ok(out)
        });
        self.after_record(out.is_ok(), done);
        let mut out = out?;
        for (i, h, before, status) in due {
            if let Some(Some(p)) = out.get_mut(i) {
                p.fix = self.fix_due(&h, before, status)?;
            }
        }
        Ok(out)
    }

    /// Records a CRITICAL result for each heartbeat whose ping is overdue at `now` (UNKNOWN,
    /// saying why, for one whose due time cannot be told), once until its next ping (one node
    /// records it; the others find it marked). Returns how many.
    pub fn check_heartbeats(&self, now: i64) -> Result<Missed, StoreError> {
        let mut missed = Missed::default();
        for h in self.heartbeats()? {
            let unknown = match h.deadline() {
                _ if h.missed_at.is_some() => continue,
                Ok(due) if due > now => continue,
                Ok(_) => None,
                Err(e) => Some(format!("cannot tell when a ping is due: {e}")),
            };
            let before = if h.fix.is_some() {
                self.state_before(&h)?
            } else {
                None
            };
            if self.write(|c| c.exec(st::heartbeat_missed(h.id, now)))? == 0 {
                continue;
            }
            if let Some(message) = unknown {
                let run = NewRun::passive(
                    h.host.as_deref(),
                    &h.name,
                    "heartbeat",
                    Status::Unknown,
                    message,
                    now,
                );
                self.record_run(&run, JobAction::Keep)?;
                missed.told += 1;
                continue;
            }
            let since = match h.last_ping_at {
                Some(p) => format!("no ping since {}", crate::when::local(p)),
                None => format!(
                    "no ping since it was made at {}",
                    crate::when::local(h.created_at)
                ),
            };
            let message = format!(
                "{since} (expected {}, grace {})",
                h.expected(),
                span(h.grace_ms)
            );
            let run = NewRun::passive(
                h.host.as_deref(),
                &h.name,
                "heartbeat",
                Status::Critical,
                message,
                now,
            );
            self.record_run(&run, JobAction::Keep)?;
            missed.told += 1;
            if let Some(fix) = self.fix_due(&h, before, Status::Critical)? {
                missed.fixes.push(fix);
            }
        }
        Ok(missed)
    }
}
