//! What the tracker's integration tests share.

// Each test binary uses a part of these helpers; they are not an API.
#![allow(dead_code, missing_docs)]

use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// A plain tracker on a free loopback port.
pub async fn start(config: TrackerConfig) -> RunningTracker {
    RunningTracker::start(
        Tracker::new(config),
        "127.0.0.1:0".parse().unwrap(),
        None,
        Mode::Plain,
    )
    .await
    .unwrap()
}
