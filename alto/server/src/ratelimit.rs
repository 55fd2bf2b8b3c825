//! The limits on PID Head joins (docs/pid-head.md): a token bucket per key, keyed by source
//! address and by source prefix (an IPv4 /24 and an IPv6 /64 by default, so that a host
//! with a whole /64 is one source), with no I/O; the time comes in as an argument.

use std::collections::HashMap;

pub use alto_model::addr::{prefix_key, SourceKey as Key};

/// Joins allowed per key: a token bucket of `burst` joins refilled at `per_sec`.
#[derive(Debug)]
pub struct RateLimit {
    burst: f64,
    per_sec: f64,
    buckets: HashMap<Key, (f64, f64)>,
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

    /// Whether `key` has a join left at `now`, taking nothing.
    pub fn has(&self, key: Key, now: f64) -> bool {
        self.buckets.get(&key).is_none_or(|(tokens, at)| {
            (*tokens + (now - *at) * self.per_sec).min(self.burst) >= 1.0
        })
    }

    /// Takes one join for `source` at `now` (seconds, fractional); `false` when over the
    /// limit, with nothing taken.
    pub fn allow(&mut self, source: Key, now: f64) -> bool {
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

    fn key(s: &str) -> Key {
        prefix_key(s.parse().unwrap(), 32, 128)
    }

    #[test]
    fn rate_limit_refills() {
        let mut l = RateLimit::new(2.0, 1.0);
        let ip = key("127.1.0.1");
        assert!(l.allow(ip, 0.0) && l.allow(ip, 0.0));
        assert!(!l.has(ip, 0.1) && !l.allow(ip, 0.1));
        assert!(l.allow(key("127.1.0.2"), 0.1));
        assert!(l.has(ip, 1.2) && l.allow(ip, 1.2));
    }

    #[test]
    fn prefixes_group_a_subnet_and_keep_families_apart() {
        let k = |s: &str| prefix_key(s.parse().unwrap(), 24, 64);
        assert_eq!(k("127.1.0.5"), k("127.1.0.200"));
        assert_ne!(k("127.1.0.5"), k("127.1.1.5"));
        assert_eq!(k("::ffff:127.1.0.9"), k("127.1.0.5"));
        assert_eq!(k("2001:db8::1"), k("2001:db8::ffff:1"));
        assert_ne!(k("2001:db8::1"), k("2001:db8:0:1::1"));
        assert_ne!(k("::"), k("0.0.0.0"));
        // Whole addresses at /32 and /128.
        assert_ne!(key("2001:db8::1"), key("2001:db8::2"));
    }
}
