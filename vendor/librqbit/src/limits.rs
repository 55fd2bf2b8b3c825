use arc_swap::ArcSwapOption;
use governor::DefaultDirectRateLimiter as RateLimiter;
use governor::Quota;
use serde::Deserialize;
use serde::Serialize;
use std::num::NonZeroU32;
use std::sync::Arc;

#[derive(Default, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    pub upload_bps: Option<NonZeroU32>,
    pub download_bps: Option<NonZeroU32>,
    /// Patched (vendor/README.md, change 8): the milliseconds of its rate a limit lets
    /// through at once after a pause; `None`, a whole second as upstream.
    #[serde(default)]
    pub burst_ms: Option<NonZeroU32>,
}

/// Patched (vendor/README.md, change 8): what a limit of `bps` lets through at once: `ms`
/// of its rate, at least [`MIN_BURST`] so that any chunk a peer may ask for fits, and never
/// more than upstream's second of it.
fn burst(bps: NonZeroU32, ms: Option<NonZeroU32>) -> NonZeroU32 {
    let Some(ms) = ms else { return bps };
    let part = (u64::from(bps.get()) * u64::from(ms.get()) / 1000).max(u64::from(MIN_BURST));
    NonZeroU32::new(part.min(u64::from(bps.get())) as u32).unwrap_or(bps)
}

/// The smallest burst: eight 16 KiB chunks.
const MIN_BURST: u32 = 128 * 1024;

struct Limit {
    limiter: ArcSwapOption<RateLimiter>,
    current_bps: std::sync::atomic::AtomicU32,
    burst_ms: Option<NonZeroU32>,
}

impl Limit {
    fn new_inner(
        bps: Option<NonZeroU32>,
        burst_ms: Option<NonZeroU32>,
    ) -> Option<Arc<RateLimiter>> {
        let bps = bps?;
        let quota = Quota::per_second(bps).allow_burst(burst(bps, burst_ms));
        Some(Arc::new(RateLimiter::direct(quota)))
    }

    fn new(bps: Option<NonZeroU32>, burst_ms: Option<NonZeroU32>) -> Self {
        use std::sync::atomic::AtomicU32;
        Self {
            limiter: ArcSwapOption::new(Self::new_inner(bps, burst_ms)),
            current_bps: AtomicU32::new(bps.map(|v| v.get()).unwrap_or(0)),
            burst_ms,
        }
    }

    async fn acquire(&self, size: NonZeroU32) -> crate::Result<()> {
        let lim = self.limiter.load().clone();
        if let Some(rl) = lim.as_ref() {
            rl.until_n_ready(size).await?;
        }
        Ok(())
    }

    fn set(&self, limit: Option<NonZeroU32>) {
        use std::sync::atomic::Ordering;
        let new = Self::new_inner(limit, self.burst_ms);
        self.limiter.swap(new);
        self.current_bps
            .store(limit.map(|v| v.get()).unwrap_or(0), Ordering::Relaxed);
    }

    fn get(&self) -> Option<NonZeroU32> {
        use std::sync::atomic::Ordering;
        NonZeroU32::new(self.current_bps.load(Ordering::Relaxed))
    }
}

pub struct Limits {
    down: Limit,
    up: Limit,
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Self {
        Self {
            down: Limit::new(config.download_bps, config.burst_ms),
            up: Limit::new(config.upload_bps, config.burst_ms),
        }
    }

    pub async fn prepare_for_upload(&self, len: NonZeroU32) -> crate::Result<()> {
        self.up.acquire(len).await
    }

    pub async fn prepare_for_download(&self, len: NonZeroU32) -> crate::Result<()> {
        self.down.acquire(len).await
    }

    pub fn set_upload_bps(&self, bps: Option<NonZeroU32>) {
        self.up.set(bps);
    }

    pub fn set_download_bps(&self, bps: Option<NonZeroU32>) {
        self.down.set(bps);
    }

    pub fn get_upload_bps(&self) -> Option<NonZeroU32> {
        self.up.get()
    }

    pub fn get_download_bps(&self) -> Option<NonZeroU32> {
        self.down.get()
    }

    pub fn get_config(&self) -> LimitsConfig {
        LimitsConfig {
            upload_bps: self.get_upload_bps(),
            download_bps: self.get_download_bps(),
            burst_ms: self.up.burst_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_bursts_its_share_of_a_second_within_eight_chunks_and_one_second() {
        let b = |bps: u32, ms: Option<u32>| {
            burst(NonZeroU32::new(bps).unwrap(), ms.and_then(NonZeroU32::new)).get()
        };
        assert_eq!(b(4 << 20, None), 4 << 20, "upstream: a second");
        assert_eq!(b(4 << 20, Some(100)), (4 << 20) / 10);
        assert_eq!(b(256 << 10, Some(100)), 128 << 10, "at least eight chunks");
        assert_eq!(b(64 << 10, Some(100)), 64 << 10, "never more than a second");
        assert_eq!(b(4 << 20, Some(5000)), 4 << 20, "never more than a second");
    }
}
