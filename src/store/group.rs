//! The thread behind group commit: many threads hand it work, and it passes on what came in
//! together as one batch (up to a limit), so one transaction can take all of it. Used by the
//! pings' writer (`web/ping.rs`) and monitord's run writer (`monitord/writer.rs`); each
//! answers its callers after its commit.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts a thread named `name` that calls `work` with each batch: the first item that
/// arrives and whatever else arrives within `linger` of it, at most `max` (with no linger,
/// whatever is waiting then). It ends when every sender is gone.
pub fn batcher<J: Send + 'static>(
    name: &str,
    max: usize,
    linger: Duration,
    mut work: impl FnMut(Vec<J>) + Send + 'static,
) -> std::io::Result<mpsc::Sender<J>> {
    let (tx, rx) = mpsc::channel::<J>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let until = Instant::now() + linger;
                let mut batch = vec![first];
                while batch.len() < max {
                    let next = match rx.try_recv() {
                        Err(mpsc::TryRecvError::Empty) => {
                            let left = until.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                break;
                            }
                            rx.recv_timeout(left).ok()
                        }
                        got => got.ok(),
                    };
                    match next {
                        Some(j) => batch.push(j),
                        None => break,
                    }
                }
                work(batch);
            }
        })?;
    Ok(tx)
}
