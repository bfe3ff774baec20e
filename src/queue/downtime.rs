//! A maintenance window as people ask for one, from the CLI (`hostler downtime add`), the page
//! or the API: the same words, read in one place.

use crate::store::{NewDowntime, now_ms};

/// What a user gives: one of `host`, `tag` or `check` (HOST/CHECK), `for` (a duration) or
/// `until` (a time), an optional `from`, a reason and who asks.
#[derive(Debug, Clone, Default)]
pub struct DowntimeWords<'a> {
    pub host: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub check: Option<&'a str>,
    pub from: Option<&'a str>,
    pub for_: Option<&'a str>,
    pub until: Option<&'a str>,
    pub reason: &'a str,
    pub author: &'a str,
    /// Cover what depends on the target too.
    pub children: bool,
}

/// The downtime the words ask for, or what is wrong with them (the store checks the rest:
/// one target, a reason, an end in the future).
pub fn downtime(w: &DowntimeWords) -> Result<NewDowntime, String> {
    let starts_at = match w.from {
        Some(t) => crate::when::parse_time(t).map_err(|e| e.to_string())?,
        None => now_ms(),
    };
    let ends_at = match (w.for_, w.until) {
        (Some(d), None) => {
            let d = crate::when::parse_duration(d).map_err(|e| e.to_string())?;
            starts_at.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        }
        (None, Some(t)) => crate::when::parse_time(t).map_err(|e| e.to_string())?,
        _ => {
            return Err(
                "give for (--for, a duration such as 2h) or until (--until, a time), one of them"
                    .into(),
            );
        }
    };
    let (host, script) = match (w.check, w.host) {
        (Some(_), Some(_)) => return Err("give a host, a tag or a check, just one".into()),
        (Some(c), None) => match c.split_once('/') {
            Some((h, s)) if !h.is_empty() && !s.is_empty() => {
                (Some(h.to_string()), Some(s.to_string()))
            }
            _ => return Err("a check is HOST/CHECK, as in web1/check_nginx".into()),
        },
        (None, h) => (h.map(String::from), None),
    };
    Ok(NewDowntime {
        host,
        tag: w.tag.map(String::from),
        script,
        starts_at,
        ends_at,
        reason: w.reason.to_string(),
        author: Some(w.author.to_string()),
        children: w.children,
    })
}
