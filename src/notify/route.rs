//! Routes: which channels a notification goes to, read in order from `[[route]]`. Pure: the
//! facts of the notification and the local time are handed in.
//!
//! A route matches when every list it gives matches (tags, hosts, checks, states, events), and
//! it is within its `hours`. The first match wins unless it says `continue = true`. A route
//! with `after` (escalation) or `repeat` (reminders) takes only problems: a recovery or an
//! acknowledgement goes where a route without them sends it. With no routes, everything goes
//! to every channel.

use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use jiff::civil::Weekday;

use super::NotifyError;
use crate::config;

/// The events that are problems: what escalation and reminders are about.
pub const PROBLEM_EVENTS: &[&str] = &["problem", "fix_failed", "give_up", "reminder"];

/// Every event a route may name.
pub const EVENTS: &[&str] = &[
    "problem",
    "recovery",
    "fix_failed",
    "guard",
    "give_up",
    "flapping_start",
    "flapping_end",
    "acknowledgement",
    "downtime_start",
    "downtime_end",
    "notify",
    "reminder",
];

const STATES: &[&str] = &["ok", "warning", "critical", "unknown"];

/// What a notification is about, as routes see it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub host: Option<&'a str>,
    /// The host's tags.
    pub tags: &'a [String],
    pub check: Option<&'a str>,
    /// The check's state, lower case.
    pub state: Option<&'a str>,
    pub event: &'a str,
}

/// A channel a notification goes to, and how long after it was made (escalation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub channel: String,
    /// Milliseconds after the notification was made; 0 at once.
    pub after_ms: i64,
    /// The route (0-based) that sent it there; None when no routes are configured.
    pub route: Option<usize>,
}

/// Days of the week and a span of minutes in a day: one part of `hours`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    /// Bit 0 is Monday.
    days: u8,
    start: u16,
    /// Exclusive; below `start` when the span runs over midnight into the next day.
    end: u16,
}

/// `hours = "Mon-Fri 08:00-18:00; Sat 10:00-14:00"`: when a route applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours(Vec<Span>);

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Option<u8> {
    let s = s.trim().to_ascii_lowercase();
    let head = s.get(..3)?;
    DAYS.iter()
        .position(|d| *d == head && (s.len() == 3 || s.starts_with(d)))
        .map(|i| i as u8)
}

fn minute(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

impl Hours {
    /// Parses `[DAYS] HH:MM-HH:MM`, parts separated by `;`. DAYS is a comma list of days or
    /// ranges (`Mon-Fri`, `Sat,Sun`, `Fri-Mon`); without it, every day.
    pub fn parse(text: &str) -> Result<Hours, String> {
        let bad = |why: &str| {
            format!("hours {text:?}: {why} (write e.g. \"Mon-Fri 08:00-18:00; Sat 10:00-14:00\")")
        };
        let mut spans = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (days_text, times) = match part.rsplit_once(char::is_whitespace) {
                Some((d, t)) => (Some(d.trim()), t),
                None => (None, part),
            };
            let mut days = 0u8;
            match days_text {
                None => days = 0x7f,
                Some(d) => {
                    for item in d.split(',') {
                        let (a, b) = match item.split_once('-') {
                            Some((a, b)) => (a, b),
                            None => (item, item),
                        };
                        let (a, b) = (
                            day(a).ok_or_else(|| bad(&format!("{a:?} is not a day")))?,
                            day(b).ok_or_else(|| bad(&format!("{b:?} is not a day")))?,
                        );
                        let mut i = a;
                        loop {
                            days |= 1 << i;
                            if i == b {
                                break;
                            }
                            i = (i + 1) % 7;
                        }
                    }
                }
            }
            let (s, e) = times
                .split_once('-')
                .ok_or_else(|| bad(&format!("{times:?} is not HH:MM-HH:MM")))?;
            let start = minute(s).ok_or_else(|| bad(&format!("{s:?} is not a time")))?;
            let end = minute(e).ok_or_else(|| bad(&format!("{e:?} is not a time")))?;
            if start == end || start == 1440 {
                return Err(bad(&format!("{times:?} is an empty span")));
            }
            spans.push(Span { days, start, end });
        }
        if spans.is_empty() {
            return Err(bad("no hours given"));
        }
        Ok(Hours(spans))
    }

    /// Whether a local time (its weekday and minute of the day) is within these hours.
    pub fn contains(&self, weekday: Weekday, minute: u16) -> bool {
        let d = weekday.to_monday_zero_offset() as u8;
        let yesterday = (d + 6) % 7;
        self.0.iter().any(|s| {
            if s.start < s.end {
                s.days & (1 << d) != 0 && (s.start..s.end).contains(&minute)
            } else {
                (s.days & (1 << d) != 0 && minute >= s.start)
                    || (s.days & (1 << yesterday) != 0 && minute < s.end)
            }
        })
    }
}

/// A `[[route]]`, read and checked.
#[derive(Debug, Clone)]
pub struct Rule {
    tags: Vec<String>,
    hosts: Option<GlobSet>,
    checks: Option<GlobSet>,
    states: Vec<String>,
    events: Vec<String>,
    pub channels: Vec<String>,
    pub continue_: bool,
    pub after: Option<Duration>,
    pub repeat: Option<Duration>,
    hours: Option<Hours>,
}

fn globs(list: &[String], key: &str, n: usize) -> Result<Option<GlobSet>, NotifyError> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for g in list {
        b.add(Glob::new(g).map_err(|e| NotifyError::Route(n, format!("{key}: {e}")))?);
    }
    b.build()
        .map(Some)
        .map_err(|e| NotifyError::Route(n, format!("{key}: {e}")))
}

fn duration(text: &Option<String>, key: &str, n: usize) -> Result<Option<Duration>, NotifyError> {
    text.as_deref()
        .map(|t| {
            crate::when::parse_duration(t)
                .map_err(|e| NotifyError::Route(n, format!("{key}: {e}")))
                .and_then(|d| {
                    if d.is_zero() && key == "repeat" {
                        Err(NotifyError::Route(
                            n,
                            "repeat = \"0s\": give a duration above zero".into(),
                        ))
                    } else {
                        Ok(d)
                    }
                })
        })
        .transpose()
}

impl Rule {
    /// Reads route number `n` (1-based in messages), checking that its channels exist.
    pub fn read(n: usize, r: &config::Route, channels: &[String]) -> Result<Rule, NotifyError> {
        let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
        let (states, events) = (lower(&r.states), lower(&r.events));
        if let Some(s) = states.iter().find(|s| !STATES.contains(&s.as_str())) {
            return Err(NotifyError::Route(
                n,
                format!("unknown state {s:?} (states are {})", STATES.join(", ")),
            ));
        }
        if let Some(e) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err(NotifyError::Route(
                n,
                format!("unknown event {e:?} (events are {})", EVENTS.join(", ")),
            ));
        }
        if r.channels.is_empty() {
            return Err(NotifyError::Route(
                n,
                "channels = [...] names no channel".into(),
            ));
        }
        for c in &r.channels {
            if !channels.contains(c) {
                return Err(NotifyError::Route(
                    n,
                    format!(
                        "no channel {c:?} (there are: {})",
                        if channels.is_empty() {
                            "none".to_string()
                        } else {
                            channels.join(", ")
                        }
                    ),
                ));
            }
        }
        Ok(Rule {
            tags: r.tags.clone(),
            hosts: globs(&r.hosts, "hosts", n)?,
            checks: globs(&r.checks, "checks", n)?,
            states,
            events,
            channels: r.channels.clone(),
            continue_: r.continue_,
            after: duration(&r.after, "after", n)?,
            repeat: duration(&r.repeat, "repeat", n)?,
            hours: r
                .hours
                .as_deref()
                .map(Hours::parse)
                .transpose()
                .map_err(|e| NotifyError::Route(n, e))?,
        })
    }

    /// Whether the route takes a notification with these facts at this local time.
    pub fn matches(&self, f: &Facts, weekday: Weekday, minute: u16) -> bool {
        let problem = PROBLEM_EVENTS.contains(&f.event);
        if (self.after.is_some() || self.repeat.is_some()) && !problem {
            return false;
        }
        // A reminder is what a `repeat` route sends; no other route repeats itself.
        if f.event == "reminder" && self.repeat.is_none() {
            return false;
        }
        let event_ok = self.events.is_empty()
            || self.events.iter().any(|e| e == f.event)
            || (f.event == "reminder" && self.events.iter().any(|e| e == "problem"));
        event_ok
            && (self.tags.is_empty() || self.tags.iter().any(|t| f.tags.contains(t)))
            && self
                .hosts
                .as_ref()
                .is_none_or(|g| f.host.is_some_and(|h| g.is_match(h)))
            && self
                .checks
                .as_ref()
                .is_none_or(|g| f.check.is_some_and(|c| g.is_match(c)))
            && (self.states.is_empty()
                || f.state.is_some_and(|s| self.states.iter().any(|x| x == s)))
            && self
                .hours
                .as_ref()
                .is_none_or(|h| h.contains(weekday, minute))
    }
}

/// Where a notification goes: the channels of the first matching route (and of the later ones
/// while a match says `continue`), each once at its earliest time. With no rules, every
/// channel at once.
pub fn targets(
    rules: &[Rule],
    all: &[String],
    f: &Facts,
    weekday: Weekday,
    minute: u16,
) -> Vec<Target> {
    if rules.is_empty() {
        return all
            .iter()
            .map(|c| Target {
                channel: c.clone(),
                after_ms: 0,
                route: None,
            })
            .collect();
    }
    let mut out: Vec<Target> = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if !r.matches(f, weekday, minute) {
            continue;
        }
        let after_ms = r
            .after
            .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64);
        for c in &r.channels {
            match out.iter_mut().find(|t| &t.channel == c) {
                Some(t) if t.after_ms > after_ms => {
                    t.after_ms = after_ms;
                    t.route = Some(i);
                }
                Some(_) => {}
                None => out.push(Target {
                    channel: c.clone(),
                    after_ms,
                    route: Some(i),
                }),
            }
        }
        if !r.continue_ {
            break;
        }
    }
    out
}
