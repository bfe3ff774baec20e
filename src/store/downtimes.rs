//! Maintenance windows and acknowledgements: what keeps hostler from fixing or telling about a
//! problem an operator already knows of. A downtime's start and end are told once each,
//! whichever node sees them first.

use super::checks::{check_from_row, downtime_from_row};
use super::statements as st;
use super::{
    Alert, Check, CheckState, ConnExt, Downtime, NewDowntime, Notice, Store, StoreError, now_ms,
};
use crate::sql::param;

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

/// A host's tags (no host: none), as a reader finds them.
pub(super) type TagsOf<'a> = dyn FnMut(Option<&str>) -> Result<Vec<String>, StoreError> + 'a;

/// Whether one of `windows` covers a host's check of `script` at `at`: the check itself, or,
/// for a window with `children`, a check it depends on (through `deps`). `tags` gives a
/// host's tags. How the correction loop, the record and the dashboard all judge a downtime.
pub(super) fn covered(
    windows: &[Downtime],
    deps: &[super::Dependency],
    host: Option<&str>,
    script: &str,
    at: i64,
    tags: &mut TagsOf<'_>,
) -> Result<bool, StoreError> {
    if !windows.iter().any(|d| d.starts_at <= at && at < d.ends_at) {
        return Ok(false);
    }
    let own = tags(host)?;
    if windows.iter().any(|d| d.covers(host, &own, script, at)) {
        return Ok(true);
    }
    let Some(host) = host.filter(|_| windows.iter().any(|d| d.children)) else {
        return Ok(false);
    };
    for (h, s) in super::depends::ancestors(deps, host, script) {
        let theirs = tags(Some(&h))?;
        if windows
            .iter()
            .any(|d| d.children && d.covers(Some(&h), &theirs, &s, at))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Store {
    /// Adds a downtime: a host, a tag, or one check (a host and a script), from `starts_at` to
    /// `ends_at`, with a reason.
    pub fn add_downtime(&self, d: &NewDowntime) -> Result<i64, StoreError> {
        let targets = [d.host.is_some(), d.tag.is_some()];
        if targets.iter().filter(|t| **t).count() != 1 {
            return Err(invalid(
                "give a host, a tag or a check (HOST/CHECK), just one",
            ));
        }
        if d.script.is_some() && d.host.is_none() {
            return Err(invalid("a check's downtime names its host: HOST/CHECK"));
        }
        if d.reason.trim().is_empty() {
            return Err(invalid("give the reason: operators will read it"));
        }
        if d.ends_at <= d.starts_at {
            return Err(invalid("the downtime must end after it starts"));
        }
        if d.ends_at <= now_ms() {
            return Err(invalid("the downtime would already be over"));
        }
        if let Some(h) = &d.host {
            self.host(h)?;
        }
        if let Some(s) = &d.script {
            self.script(s)?;
        }
        let at = now_ms();
        self.write(|c| {
            c.insert(st::downtime_insert(vec![
                ("host", param(d.host.clone())),
                ("tag", param(d.tag.clone())),
                ("script", param(d.script.clone())),
                ("starts_at", param(d.starts_at)),
                ("ends_at", param(d.ends_at)),
                ("reason", param(d.reason.as_str())),
                ("author", param(d.author.clone())),
                ("created_at", param(at)),
                ("children", param(d.children)),
            ]))
        })
    }

    /// The downtimes that have not ended: the current ones and those to come.
    pub fn downtimes(&self) -> Result<Vec<Downtime>, StoreError> {
        let at = now_ms();
        self.read(|c| {
            c.query(st::downtime_list(at))?
                .iter()
                .map(downtime_from_row)
                .collect()
        })
    }

    /// Ends a downtime now (its end is told), or removes one that has not begun.
    pub fn remove_downtime(&self, id: i64) -> Result<(), StoreError> {
        let at = now_ms();
        self.write(|c| {
            match c.exec(st::downtime_end(id, at))? + c.exec(st::downtime_delete(id, at))? {
                0 => Err(StoreError::NotFound {
                    kind: "downtime",
                    name: id.to_string(),
                }),
                _ => Ok(()),
            }
        })
    }

    /// The ids of the checks a downtime covers now.
    pub fn checks_in_downtime(&self, checks: &[Check]) -> Result<Vec<i64>, StoreError> {
        let windows = self.downtimes()?;
        let at = now_ms();
        if windows.iter().all(|d| d.starts_at > at) {
            return Ok(Vec::new());
        }
        let hosts = self.hosts()?;
        let deps = if windows.iter().any(|d| d.children) {
            self.dependencies()?
        } else {
            Vec::new()
        };
        let mut tags = |h: Option<&str>| -> Result<Vec<String>, StoreError> {
            Ok(hosts
                .iter()
                .find(|x| Some(x.name.as_str()) == h)
                .map_or_else(Vec::new, |x| x.tags.clone()))
        };
        let mut out = Vec::new();
        for c in checks {
            if covered(&windows, &deps, c.host.as_deref(), &c.script, at, &mut tags)? {
                out.push(c.id);
            }
        }
        Ok(out)
    }

    /// Whether a downtime covers a host's check of a script now.
    pub fn in_downtime(&self, host: Option<&str>, script: &str) -> Result<bool, StoreError> {
        let at = now_ms();
        self.read(|c| super::checks::in_downtime(c, host, script, at))
    }

    /// Tells each downtime's start and end once (one node tells it; the others find it told).
    /// Returns how many were told.
    pub fn tell_downtimes(&self) -> Result<usize, StoreError> {
        let at = now_ms();
        self.write(|c| {
            let mut told = 0;
            for (flag, event) in [
                ("start_told", Alert::DowntimeStart),
                ("end_told", Alert::DowntimeEnd),
            ] {
                let due: Vec<Downtime> = c
                    .query(st::downtime_due(flag, at))?
                    .iter()
                    .map(downtime_from_row)
                    .collect::<Result<_, _>>()?;
                for d in due {
                    if c.exec(st::downtime_told(d.id, flag))? == 0 {
                        continue;
                    }
                    let what = d.scope();
                    let notice = match event {
                        Alert::DowntimeStart => Notice {
                            event,
                            subject: format!("downtime for {what} begins"),
                            body: format!(
                                "until {}: {} ({})",
                                crate::when::local(d.ends_at),
                                d.reason,
                                d.author.as_deref().unwrap_or("-")
                            ),
                        },
                        _ => Notice {
                            event,
                            subject: format!("downtime for {what} is over"),
                            body: format!("it was: {}", d.reason),
                        },
                    };
                    let details = serde_json::json!({"check": d.script, "message": d.reason});
                    c.insert(st::notification_insert(
                        None,
                        d.host.as_deref(),
                        &notice,
                        Some(&details.to_string()),
                        at,
                    ))?;
                    told += 1;
                }
            }
            Ok(told)
        })
    }

    /// Acknowledges a check's problem: nothing more is told of it until it recovers. The
    /// acknowledgement itself is told once.
    pub fn acknowledge(
        &self,
        host: Option<&str>,
        script: &str,
        comment: &str,
        author: &str,
    ) -> Result<Check, StoreError> {
        if comment.trim().is_empty() {
            return Err(invalid("give a comment: say what is being done about it"));
        }
        let at = now_ms();
        self.write(|c| {
            let check = c
                .query_one(st::check_get(host, script))?
                .map(|r| check_from_row(&r))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "check",
                    name: format!("{}/{script}", host.unwrap_or("-")),
                })?;
            if check.state == CheckState::Ok {
                return Err(invalid(format!(
                    "{}/{script} is OK: there is no problem to acknowledge",
                    host.unwrap_or("-")
                )));
            }
            let comment = format!("{comment} ({author})");
            c.exec(st::check_update(
                check.id,
                vec![
                    ("acked", param(true)),
                    ("ack_comment", param(comment.as_str())),
                ],
            ))?;
            let target = host.unwrap_or("(no host)");
            let notice = Notice {
                event: Alert::Acknowledgement,
                subject: format!(
                    "{target}: {script} is {}, acknowledged",
                    check.state.as_str().to_uppercase()
                ),
                body: comment.clone(),
            };
            let details = serde_json::json!({
                "check": script, "state": check.state, "since": check.since,
                "message": check.message, "perfdata": check.perfdata,
            });
            c.insert(st::notification_insert(
                check.last_run_id,
                host,
                &notice,
                Some(&details.to_string()),
                at,
            ))?;
            Ok(Check {
                acked: true,
                ack_comment: Some(comment),
                ..check
            })
        })
    }
}
