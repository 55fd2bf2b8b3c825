//! What several of these tests share.

use std::time::Duration;

/// Moves tokio's clock, which the lease clocks of the server and the trackers and the heads'
/// rate windows follow, by `d` at once; real time resumes before anything else runs, because
/// the requests use real sockets and paused time would fire their timeouts whenever the
/// runtime is idle. Needs the current-thread runtime.
pub async fn advance(d: Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}
