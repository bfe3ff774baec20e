//! Carrying out a site file's plan (`hostler apply`): every change in one transaction, all or
//! nothing, with the same inserts, updates and removals the CLI's commands make. What the
//! file names is marked managed. The plan itself is made by `crate::site`.

use super::heartbeats::NewHeartbeat;
use super::hosts::SecretChange;
use super::recurring::NewRecurring;
use super::scripts::{Expect, NewScript};
use super::{ConnExt, NewDependency, NewHost, NewSchedule, ScriptKind, Store, StoreError};
use crate::sql::{Update, col, param};

/// One change of a plan.
#[derive(Debug, Clone)]
pub enum SiteOp {
    /// A script from the site's scripts folder: made, or a new version (its kind and
    /// description as its header declares them).
    PutScript {
        name: String,
        source: String,
        kind: ScriptKind,
        description: Option<String>,
    },
    AddHost(NewHost),
    /// New settings; the secret only when the file gives a password.
    UpdateHost(NewHost),
    RemoveHost(String),
    AddSchedule(NewSchedule),
    UpdateSchedule(i64, NewSchedule),
    RemoveSchedule(i64),
    AddDependency(NewDependency),
    RemoveDependency(i64),
    AddHeartbeat(NewHeartbeat),
    UpdateHeartbeat(i64, NewHeartbeat),
    RemoveHeartbeat(i64),
    AddRecurring(NewRecurring),
    UpdateRecurring(i64, NewRecurring),
    RemoveRecurring(i64),
    /// An object the file names as it already is: only marked managed.
    Manage {
        table: &'static str,
        id: i64,
    },
}

/// What an apply made that is shown once: each new heartbeat's token, and how long its
/// transaction held the database (while it does, a running daemon's claims wait on SQLite).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// (name, host, token) of each heartbeat made.
    pub tokens: Vec<(String, Option<String>, String)>,
    /// From the transaction's start to its commit, in milliseconds.
    pub held_ms: u64,
}

fn mark(table: &'static str, id: i64) -> crate::sql::Statement {
    Update {
        table,
        set: vec![("managed", param(true))],
        conditions: vec![col("id").eq(param(id))],
        returning: vec![],
    }
    .into()
}

impl Store {
    /// Carries out `ops` in one transaction; an error rolls every one back.
    pub fn apply_site(&self, ops: &[SiteOp]) -> Result<Applied, StoreError> {
        // Everything that can be checked without the database, before it is touched.
        let mut sealed = Vec::new();
        for op in ops {
            match op {
                SiteOp::PutScript { name, .. } => super::scripts::check_name(name)?,
                SiteOp::AddHost(h) | SiteOp::UpdateHost(h) => {
                    super::hosts::validate(h)?;
                    sealed.push(self.seal_of(h)?);
                }
                SiteOp::AddSchedule(s) | SiteOp::UpdateSchedule(_, s) => {
                    super::schedules::check_schedule(s)?
                }
                SiteOp::AddDependency(d) => super::depends::check_dependency(d)?,
                SiteOp::AddHeartbeat(h) | SiteOp::UpdateHeartbeat(_, h) => {
                    super::heartbeats::check_heartbeat(h)?
                }
                SiteOp::AddRecurring(r) | SiteOp::UpdateRecurring(_, r) => {
                    super::recurring::check_recurring(r)?
                }
                _ => {}
            }
        }
        let mut tokens = Vec::new();
        for op in ops {
            if let SiteOp::AddHeartbeat(h) = op {
                tokens.push((
                    h.name.clone(),
                    h.host.clone(),
                    super::heartbeats::new_token()?,
                ));
            }
        }
        let at = super::now_ms();
        let began = std::time::Instant::now();
        self.write(|c| {
            let (mut seals, mut toks) = (sealed.iter(), tokens.iter());
            let mut ids = super::schedules::Ids::default();
            for op in ops {
                match op {
                    SiteOp::PutScript {
                        name,
                        source,
                        kind,
                        description,
                    } => {
                        let s = NewScript {
                            name,
                            source,
                            description: description.clone(),
                            kind: *kind,
                        };
                        super::scripts::save_one(c, &s, Expect::Any, at)?;
                    }
                    SiteOp::AddHost(h) => {
                        let seal = seals.next().cloned().flatten();
                        let id = super::hosts::insert_host(c, h, seal, true, true)?;
                        ids.made_host(&h.name, id);
                    }
                    SiteOp::UpdateHost(h) => {
                        let secret = match seals.next().cloned().flatten() {
                            Some(s) => SecretChange::Set(s),
                            None => SecretChange::Keep,
                        };
                        super::hosts::update_host_in(c, h, &secret, Some(true))?;
                    }
                    SiteOp::RemoveHost(name) => super::hosts::delete_host(c, name)?,
                    SiteOp::AddSchedule(s) => {
                        super::schedules::insert_schedule_with(c, s, true, &mut ids)?;
                    }
                    SiteOp::UpdateSchedule(id, s) => {
                        super::schedules::update_schedule_in(c, *id, s, true)?
                    }
                    SiteOp::RemoveSchedule(id) => super::schedules::delete_schedule(c, *id)?,
                    SiteOp::AddDependency(d) => {
                        super::depends::insert_dependency(c, d, true)?;
                    }
                    SiteOp::RemoveDependency(id) => {
                        c.exec(super::statements::dependency_delete(*id))?;
                    }
                    SiteOp::AddHeartbeat(h) => {
                        let token = toks.next().map(|t| t.2.clone()).unwrap_or_default();
                        super::heartbeats::insert_heartbeat(c, h, &token, true)?;
                    }
                    SiteOp::UpdateHeartbeat(id, h) => {
                        super::heartbeats::update_heartbeat_in(c, *id, h, true)?
                    }
                    SiteOp::RemoveHeartbeat(id) => {
                        c.exec(super::statements::heartbeat_delete(*id))?;
                    }
                    SiteOp::AddRecurring(r) => {
                        super::recurring::insert_recurring(c, r, true)?;
                    }
                    SiteOp::UpdateRecurring(id, r) => {
                        super::recurring::update_recurring_in(c, *id, r, true)?
                    }
                    SiteOp::RemoveRecurring(id) => super::recurring::delete_recurring(c, *id)?,
                    SiteOp::Manage { table, id } => {
                        c.exec(mark(table, *id))?;
                    }
                }
            }
            Ok(())
        })?;
        let held_ms = began.elapsed().as_millis() as u64;
        self.make_occurrences(at)?;
        Ok(Applied { tokens, held_ms })
    }
}
