//! The threads jobs run on. A script and its sessions are synchronous, so a job holds a thread
//! while it waits on the network; `[monitord] max_concurrent` (hundreds by default) bounds how
//! many do at once. smol's blocking pool would cap them at 500 threads shared with everything
//! else that blocks, so jobs get their own: a thread is started when none is idle, reused for
//! the next job, and ends after [`IDLE`] without one.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long an idle thread waits for another job before it ends.
const IDLE: Duration = Duration::from_secs(10);

type Task = Box<dyn FnOnce() + Send>;

/// Threads for jobs; cheap to clone.
#[derive(Clone, Default)]
pub struct JobPool {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    tasks: VecDeque<Task>,
    idle: usize,
    /// Threads alive, idle or not.
    threads: usize,
}

impl JobPool {
    /// Runs `f` on a thread of the pool; the future gives its result, or an error when no
    /// thread could be started for it and none is alive to take it (then `f` never runs). A
    /// panic in `f` is carried to whoever awaits it, as `smol::unblock` does.
    pub fn run<T: Send + 'static, F: FnOnce() -> T + Send + 'static>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, String>> + use<T, F> {
        let (tx, rx) = smol::channel::bounded(1);
        self.submit(Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.try_send(out);
        }));
        async move {
            match rx.recv().await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                // Dropped unrun by `submit`: no thread could take it.
                Err(_) => Err("no thread could be started for it".to_string()),
            }
        }
    }

    fn submit(&self, task: Task) {
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state.tasks.push_back(task);
        // A thread for every task waiting: an idle one each, else a new one. (A woken thread
        // counts as idle until it takes a task, so this may start one too many, never too few.)
        if state.idle >= state.tasks.len() {
            drop(state);
            self.inner.ready.notify_one();
            return;
        }
        state.threads += 1;
        drop(state);
        let inner = self.inner.clone();
        let started = std::thread::Builder::new()
            .name("job".into())
            .spawn(move || worker(&inner));
        if let Err(e) = started {
            let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
            state.threads -= 1;
            if state.threads == 0 {
                // Nobody would ever take them: dropped, so their futures say so.
                let stranded: Vec<Task> = state.tasks.drain(..).collect();
                drop(state);
                tracing::error!(
                    jobs = stranded.len(),
                    "cannot start a thread for a job: {e}"
                );
                drop(stranded);
            } else {
                // A thread that is alive takes it when its job ends.
                tracing::warn!("cannot start a thread for a job (it waits for a busy one): {e}");
            }
        }
    }
}

fn worker(inner: &Inner) {
    loop {
        let task = {
            let mut state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(t) = state.tasks.pop_front() {
                    break t;
                }
                state.idle += 1;
                let (s, waited) = inner
                    .ready
                    .wait_timeout(state, IDLE)
                    .unwrap_or_else(|p| p.into_inner());
                state = s;
                state.idle -= 1;
                if waited.timed_out() && state.tasks.is_empty() {
                    state.threads -= 1;
                    return;
                }
            }
        };
        task();
    }
}

#[cfg(test)]
mod tests {
    use super::JobPool;

    #[test]
    fn many_jobs_wait_at_once_and_each_gives_its_result() {
        let pool = JobPool::default();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(600));
        // 600 jobs that each wait for all the others: more than smol's blocking pool allows.
        let futures: Vec<_> = (0..600)
            .map(|i| {
                let b = barrier.clone();
                pool.run(move || {
                    b.wait();
                    i * 2
                })
            })
            .collect();
        let got: Vec<i32> = smol::block_on(async {
            let mut out = Vec::new();
            for f in futures {
                out.push(f.await.expect("ran"));
            }
            out
        });
        assert_eq!(got, (0..600).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_panic_reaches_whoever_awaits_it() {
        let pool = JobPool::default();
        let f = pool.run(|| -> i32 { panic!("boom") });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| smol::block_on(f)));
        assert!(caught.is_err());
        // The pool still works afterwards.
        assert_eq!(smol::block_on(pool.run(|| 7)), Ok(7));
    }
}
