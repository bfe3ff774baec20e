//! The job queue: enqueue, list, claim with a lease.

use super::statements as st;
use super::{ConnExt, Job, NewJob, Row, Store, StoreError, now_ms};
use crate::sql::Dialect;

fn job_from_row(r: &Row) -> Result<Job, StoreError> {
    Ok(Job {
        id: r.int("id")?,
        script: r.text("script")?,
        host: r.opt_text("host")?,
        priority: r.int("priority")?,
        due_at: r.int("due_at")?,
        state: r.text("state")?,
        attempts: r.int("attempts")?,
        max_attempts: r.int("max_attempts")?,
        timeout_ms: r.opt_int("timeout_ms")?,
        lease_owner: r.opt_text("lease_owner")?,
        lease_until: r.opt_int("lease_until")?,
        schedule_id: r.opt_int("schedule_id")?,
        args: r.opt_text("args")?,
    })
}

impl Store {
    /// Queues a job; the script and host must exist.
    pub fn enqueue(&self, job: &NewJob) -> Result<i64, StoreError> {
        let at = now_ms();
        self.write(|c| {
            let script_id = c
                .query_one(crate::store::statements::script_version(&job.script))?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "script",
                    name: job.script.clone(),
                })?
                .int("id")?;
            let host_id = match &job.host {
                Some(h) => Some(
                    c.query_one(st::host_by_name(h))?
                        .ok_or_else(|| StoreError::NotFound {
                            kind: "host",
                            name: h.clone(),
                        })?
                        .int("id")?,
                ),
                None => None,
            };
            c.insert(st::job_insert(script_id, host_id, job, at))
        })
    }

    /// The queue in the order it would run.
    pub fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.read(|c| c.query(st::job_list())?.iter().map(job_from_row).collect())
    }

    /// Claims the next runnable job for `owner` with a lease of `lease_ms`, in one transaction.
    pub fn claim_job(
        &self,
        owner: &str,
        lease_ms: i64,
        per_host: i64,
        site: Option<&str>,
    ) -> Result<Option<Job>, StoreError> {
        let dialect = self.dialect();
        self.write(|c| {
            let id = match dialect {
                Dialect::Mssql2000 | Dialect::Mysql => {
                    let Some(row) = c.query_one(st::next_job(per_host, site))? else {
                        return Ok(None);
                    };
                    let id = row.int("id")?;
                    if c.exec(st::job_claim_by_id(id, owner, lease_ms))? == 0 {
                        return Ok(None);
                    }
                    id
                }
                _ => match c.query_one(st::job_claim(owner, lease_ms, per_host, site))? {
                    Some(row) => row.int("id")?,
                    None => return Ok(None),
                },
            };
            c.query_one(st::job_by_id(id))?
                .map(|r| job_from_row(&r))
                .transpose()
        })
    }
}
