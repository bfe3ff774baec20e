//! Passive results: a check's result pushed from outside (`POST
//! /api/checks/HOST/CHECK/result`), as Nagios's passive checks. It is recorded as a run of the
//! check (phase `passive`), which moves the check (made if new) through the same state machine
//! in the same transaction: hard at once, told, recovered, never fixed; downtimes,
//! acknowledgements and dependencies hold as for any check.

use super::{Check, JobAction, NewRun, Status, Store, StoreError, now_ms};

/// The longest message and perfdata a pushed result may carry.
pub const MAX_MESSAGE: usize = 4096;

/// A result pushed from outside.
#[derive(Debug, Clone)]
pub struct Passive<'a> {
    pub host: Option<&'a str>,
    pub check: &'a str,
    pub status: Status,
    pub message: &'a str,
    pub perfdata: Option<&'a str>,
    /// Who pushed it (`api:USER`), recorded as the run's node.
    pub by: &'a str,
}

/// A pushed status: `ok`, `warning`, `critical`, `unknown`, or Nagios's 0 to 3.
pub fn parse_status(s: &str) -> Result<Status, StoreError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "0" | "ok" => Ok(Status::Ok),
        "1" | "warning" => Ok(Status::Warning),
        "2" | "critical" => Ok(Status::Critical),
        "3" | "unknown" => Ok(Status::Unknown),
        other => Err(StoreError::Invalid(format!(
            "status {other:?}: give ok, warning, critical or unknown (or 0 to 3)"
        ))),
    }
}

impl Store {
    /// Records a pushed result and returns its run's id and the check as it now stands.
    pub fn record_passive(&self, p: &Passive) -> Result<(i64, Check), StoreError> {
        let bad = |m: String| Err(StoreError::Invalid(m));
        if !super::valid_name(p.check) || p.check.contains("..") {
            return bad(format!(
                "check {:?}: letters, digits, '.', '-' and '_'",
                p.check
            ));
        }
        if !matches!(
            p.status,
            Status::Ok | Status::Warning | Status::Critical | Status::Unknown
        ) {
            return bad(format!("status {}: not a check's state", p.status));
        }
        if p.message.chars().count() > MAX_MESSAGE
            || p.perfdata.is_some_and(|d| d.chars().count() > MAX_MESSAGE)
        {
            return bad(format!(
                "the message and the perfdata take at most {MAX_MESSAGE} characters each"
            ));
        }
        if p.message
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return bad("the message holds control characters".into());
        }
        if let Some(h) = p.host {
            self.host(h)?;
        }
        let run = NewRun {
            perfdata: p.perfdata.map(String::from),
            ..NewRun::passive(
                p.host,
                p.check,
                p.by,
                p.status,
                p.message.to_string(),
                now_ms(),
            )
        };
        let id = self.record_run(&run, JobAction::Keep)?;
        Ok((id, self.check(p.host, p.check)?))
    }
}
