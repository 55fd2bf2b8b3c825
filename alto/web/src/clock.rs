//! Wall-clock time for leases and announce intervals, read through tokio's clock: seconds
//! since the epoch at start, plus the tokio time elapsed since. Under `tokio::time::pause`
//! the clock stands still and `tokio::time::advance` moves it, so tests drive leases instead
//! of sleeping through them. Wall time is
//! read once per process; after that the clock is monotonic.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn now() -> u64 {
    now_millis() / 1000
}

/// Milliseconds since the epoch.
pub fn now_millis() -> u64 {
    let wall = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
    // One base for the process: the wall clock and the monotonic instant read together.
    static BASE: OnceLock<(u64, std::time::Instant)> = OnceLock::new();
    let (base_ms, base_at) = *BASE.get_or_init(|| (wall(), std::time::Instant::now()));
    // tokio's `Instant::now()` is the std clock, or the paused clock of the runtime at hand.
    let at = tokio::time::Instant::now().into_std();
    base_ms + at.saturating_duration_since(base_at).as_millis() as u64
}
