//! A future bounded in time: its output, or `None` once the limit has passed. Shared by the
//! TDS driver's requests and the web server's writes and closing drains. A leaf.

use std::future::Future;
use std::time::Duration;

/// `fut`'s output, or `None` if `limit` passes first.
pub async fn timed<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}
