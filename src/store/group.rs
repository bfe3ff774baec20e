//! The thread behind group commit: many threads hand it work, and it passes on what came in
//! together as one batch (up to a limit), so one transaction can take all of it. Used by the
//! pings' writer (`web/ping.rs`) and monitord's run writer (`monitord/writer.rs`); each
//! answers its callers after its commit.

use std::sync::mpsc;

/// Starts a thread named `name` that calls `work` with each batch: the first item that
/// arrives and whatever else is waiting then, at most `max`. It ends when every sender is gone.
pub fn batcher<J: Send + 'static>(
    name: &str,
    max: usize,
    mut work: impl FnMut(Vec<J>) + Send + 'static,
) -> std::io::Result<mpsc::Sender<J>> {
    let (tx, rx) = mpsc::channel::<J>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while batch.len() < max {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
                work(batch);
            }
        })?;
    Ok(tx)
}
