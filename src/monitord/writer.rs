//! Group commit of finished runs: a writer thread records the runs that finished together in
//! one transaction (each with everything one run records: the run, its check's state, its
//! perfdata, its notifications, its job's fate, the totals), so that a busy node pays for one
//! commit, not one a run. On PostgreSQL several writers record at once (`Store::writers`),
//! each on a connection of its own: a run goes to the writer of its host and check, so one
//! check's runs are recorded in order and two writers never touch the same check's rows, and
//! each counts in totals rows of its own ([`crate::store::Lane`]).
//!
//! The guarantees of a run recorded on its own stay: a job's row is deleted, re-queued or
//! released only in the transaction that writes its run, and a job thread waits for the
//! commit that holds its run, so no run it goes on from is lost in a crash. A batch that fails
//! is recorded again run by run, so one bad run fails only itself. A run the writer could not
//! record comes back to its job thread, which records it on its own (and waits for a database
//! that cannot be reached, as before).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, mpsc};

use crate::store::{JobAction, Lane, NewRun, Store, StoreError};

/// The most runs in one transaction.
const BATCH: usize = 256;

/// What a run's job thread gets back: its run's id, or the error with the run itself (None
/// only when the writer died with it: the job's lease then runs out and it runs again).
type Reply = Result<i64, (StoreError, Option<Box<NewRun>>)>;

struct Job {
    run: NewRun,
    action: JobAction,
    reply: mpsc::SyncSender<Reply>,
}

/// The sending sides of the writer threads; each thread ends when this is dropped.
#[derive(Debug)]
pub struct RunWriter {
    lanes: Vec<mpsc::Sender<Job>>,
}

impl RunWriter {
    /// Starts the store's number of writer threads (None when not one can be made: runs are
    /// then recorded each on its own).
    pub fn start(store: Arc<Store>) -> Option<RunWriter> {
        let of = store.writers().max(1);
        let mut lanes = Vec::with_capacity(of);
        for index in 0..of {
            let store = store.clone();
            let lane = Lane { index, of };
            match crate::store::group::batcher("hostler-record", BATCH, move |jobs| {
                write(&store, jobs, lane)
            }) {
                Ok(tx) => lanes.push(tx),
                Err(e) => tracing::warn!("cannot start run writer {index} of {of}: {e}"),
            }
        }
        if lanes.is_empty() {
            tracing::warn!("no run writer could be started: each run is recorded on its own");
            return None;
        }
        Some(RunWriter { lanes })
    }

    /// Records one run with the others that finished meanwhile; returns once its transaction
    /// committed, or gives the run back with the error.
    pub fn record(&self, run: NewRun, action: JobAction) -> Reply {
        let (reply, rx) = mpsc::sync_channel(1);
        // The writer of the run's check: its runs in order, its rows in one writer's hands.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (run.host.as_deref(), run.check()).hash(&mut h);
        let lane = &self.lanes[(h.finish() % self.lanes.len() as u64) as usize];
        if let Err(mpsc::SendError(job)) = lane.send(Job { run, action, reply }) {
            return Err((gone(), Some(Box::new(job.run))));
        }
        // The writer answers every job it took; a closed channel means it died with ours.
        rx.recv().map_err(|_| (gone(), None))?
    }
}

fn gone() -> StoreError {
    StoreError::Db("the run writer is gone".into())
}

/// Records a batch in one transaction; when that fails, each run again on its own.
/// The store takes the batch's rows in an order that cannot deadlock with another writer or
/// a lease renewal ([`Store::record_runs_in`]).
fn write(store: &Store, jobs: Vec<Job>, lane: Lane) {
    let mut runs = Vec::with_capacity(jobs.len());
    let mut replies = Vec::with_capacity(jobs.len());
    for j in jobs {
        runs.push((j.run, j.action));
        replies.push(j.reply);
    }
    match store.record_runs_in(&runs, &|_| Ok(()), lane) {
        Ok(ids) => {
            for (r, id) in replies.into_iter().zip(ids) {
                let _ = r.send(Ok(id));
            }
        }
        Err(e) if runs.len() == 1 => {
            if let (Some(r), Some((run, _))) = (replies.pop(), runs.pop()) {
                let _ = r.send(Err((e, Some(Box::new(run)))));
            }
        }
        Err(_) => {
            for (pair, r) in runs.into_iter().zip(replies) {
                let one = store.record_runs_in(std::slice::from_ref(&pair), &|_| Ok(()), lane);
                let _ = r.send(match one {
                    Ok(mut ids) => ids.pop().ok_or_else(|| (gone(), Some(Box::new(pair.0)))),
                    Err(e) => Err((e, Some(Box::new(pair.0)))),
                });
            }
        }
    }
}
