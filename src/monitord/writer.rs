//! Group commit of finished runs: one writer thread records the runs that finished together in
//! one transaction (each with everything one run records: the run, its check's state, its
//! perfdata, its notifications, its job's fate, the totals), so that a busy node pays for one
//! commit, not one a run.
//!
//! The guarantees of a run recorded on its own stay: a job's row is deleted, re-queued or
//! released only in the transaction that writes its run, and a job thread waits for the
//! commit that holds its run, so no run it goes on from is lost in a crash. A batch that fails
//! is recorded again run by run, so one bad run fails only itself. A run the writer could not
//! record comes back to its job thread, which records it on its own (and waits for a database
//! that cannot be reached, as before).

use std::sync::{Arc, mpsc};

use crate::store::{JobAction, NewRun, Store, StoreError};

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

/// The sending side of the writer thread; the thread ends when this is dropped.
#[derive(Debug)]
pub struct RunWriter {
    tx: mpsc::Sender<Job>,
}

impl RunWriter {
    /// Starts the writer thread (None when the thread cannot be made: runs are then
    /// recorded each on its own).
    pub fn start(store: Arc<Store>) -> Option<RunWriter> {
        match crate::store::group::batcher("hostler-record", BATCH, move |jobs| write(&store, jobs))
        {
            Ok(tx) => Some(RunWriter { tx }),
            Err(e) => {
                tracing::warn!("cannot start the run writer, each run is recorded on its own: {e}");
                None
            }
        }
    }

    /// Records one run with the others that finished meanwhile; returns once its transaction
    /// committed, or gives the run back with the error.
    pub fn record(&self, run: NewRun, action: JobAction) -> Reply {
        let (reply, rx) = mpsc::sync_channel(1);
        if let Err(mpsc::SendError(job)) = self.tx.send(Job { run, action, reply }) {
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
fn write(store: &Store, mut jobs: Vec<Job>) {
    // In job id order: a renewal locks the node's job rows in that order too, so the two
    // never wait on each other in a cycle (PostgreSQL's "deadlock detected").
    jobs.sort_by_key(|j| j.run.job_id);
    let mut runs = Vec::with_capacity(jobs.len());
    let mut replies = Vec::with_capacity(jobs.len());
    for j in jobs {
        runs.push((j.run, j.action));
        replies.push(j.reply);
    }
    match store.record_runs(&runs, &|_| Ok(())) {
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
                let one = store.record_runs(std::slice::from_ref(&pair), &|_| Ok(()));
                let _ = r.send(match one {
                    Ok(mut ids) => ids.pop().ok_or_else(|| (gone(), Some(Box::new(pair.0)))),
                    Err(e) => Err((e, Some(Box::new(pair.0)))),
                });
            }
        }
    }
}
