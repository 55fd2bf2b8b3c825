//! The per-source limit on PID Head joins (docs/pid-head.md): a token bucket per source
//! address, with no I/O; the time comes in as an argument.

use std::collections::HashMap;
use std::net::IpAddr;

/// Joins allowed per source: a token bucket of `burst` joins refilled at `per_sec`.
#[derive(Debug)]
pub struct RateLimit {
    burst: f64,
    per_sec: f64,
    buckets: HashMap<IpAddr, (f64, f64)>,
}

impl RateLimit {
    /// A limiter.
    pub fn new(burst: f64, per_sec: f64) -> Self {
        RateLimit {
            burst,
            per_sec,
            buckets: HashMap::new(),
        }
    }

    /// Takes one join for `source` at `now` (seconds, fractional); `false` when over the
    /// limit, with nothing taken.
    pub fn allow(&mut self, source: IpAddr, now: f64) -> bool {
        if self.buckets.len() > 100_000 {
            let (burst, rate) = (self.burst, self.per_sec);
            self.buckets
                .retain(|_, (tokens, at)| *tokens + (now - *at) * rate < burst);
        }
        let (tokens, at) = self.buckets.entry(source).or_insert((self.burst, now));
        *tokens = (*tokens + (now - *at) * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_refills() {
        let mut l = RateLimit::new(2.0, 1.0);
        let ip: IpAddr = "127.1.0.1".parse().unwrap();
        assert!(l.allow(ip, 0.0) && l.allow(ip, 0.0));
        assert!(!l.allow(ip, 0.1));
        assert!(l.allow("127.1.0.2".parse().unwrap(), 0.1));
        assert!(l.allow(ip, 1.2));
    }
}
