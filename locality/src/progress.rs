//! A client's progress as it reports it, and the rates that follow. Every announce carries
//! `uploaded`, `downloaded` and `left` (BEP 3; BEP 15 for UDP): a head sees each member's
//! progress over time, and a client's announce proxy sees its own. A few samples per client,
//! of fixed size, are enough for a rate over the last seconds; the clock comes in as
//! milliseconds.

/// One announce's figures, at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// When it was reported, milliseconds.
    pub at_ms: u64,
    /// Bytes downloaded since the client started the torrent.
    pub downloaded: u64,
    /// Bytes uploaded likewise.
    pub uploaded: u64,
    /// Bytes it still lacks.
    pub left: u64,
}

/// Samples kept per client.
pub const SAMPLES: usize = 4;

/// Samples closer than this to the newest replace it, so that a burst of announces does not
/// push the older samples (and the span of the rate) out.
pub const MIN_GAP_MS: u64 = 250;

/// A rate needs samples at least this far apart.
pub const MIN_SPAN_MS: u64 = 500;

/// Download and upload rates, bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Download rate.
    pub down_bps: f64,
    /// Upload rate.
    pub up_bps: f64,
    /// Milliseconds the rates were measured over.
    pub span_ms: u64,
    /// Announce intervals they were measured over (samples less one).
    pub intervals: usize,
}

/// The last [`SAMPLES`] samples of one client, oldest first; `Copy`, so that a swarm store
/// keeps it inline with the peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    samples: [Sample; SAMPLES],
    len: u8,
}

impl Progress {
    /// The samples, oldest first.
    pub fn samples(&self) -> &[Sample] {
        &self.samples[..self.len as usize]
    }

    /// The newest sample.
    pub fn last(&self) -> Option<Sample> {
        self.samples().last().copied()
    }

    /// Adds a sample. One older than the newest is ignored; counters that go backwards (the
    /// client restarted the torrent) start the series anew.
    pub fn record(&mut self, s: Sample) {
        let Some(last) = self.last() else {
            self.samples[0] = s;
            self.len = 1;
            return;
        };
        if s.at_ms < last.at_ms {
            return;
        }
        if s.downloaded < last.downloaded || s.uploaded < last.uploaded {
            *self = Progress::default();
            return self.record(s);
        }
        if s.at_ms < last.at_ms + MIN_GAP_MS {
            self.samples[self.len as usize - 1] = s;
            return;
        }
        if self.len as usize == SAMPLES {
            self.samples.copy_within(1.., 0);
            self.samples[SAMPLES - 1] = s;
        } else {
            self.samples[self.len as usize] = s;
            self.len += 1;
        }
    }

    /// The rates between the newest sample and the oldest within `window_ms` of it; `None`
    /// when the newest is older than `window_ms` at `now_ms` (the client went quiet) or the
    /// samples span less than [`MIN_SPAN_MS`].
    pub fn rates(&self, now_ms: u64, window_ms: u64) -> Option<Rates> {
        let last = self.last()?;
        if now_ms.saturating_sub(last.at_ms) > window_ms {
            return None;
        }
        let (skipped, first) = self
            .samples()
            .iter()
            .enumerate()
            .find(|(_, s)| last.at_ms - s.at_ms <= window_ms)?;
        let span = last.at_ms - first.at_ms;
        if span < MIN_SPAN_MS {
            return None;
        }
        let secs = span as f64 / 1000.0;
        Some(Rates {
            down_bps: (last.downloaded - first.downloaded) as f64 / secs,
            up_bps: (last.uploaded - first.uploaded) as f64 / secs,
            span_ms: span,
            intervals: self.len as usize - 1 - skipped,
        })
    }

    /// Whether the client has the whole torrent, by its newest sample.
    pub fn seeding(&self) -> bool {
        self.last().is_some_and(|s| s.left == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, down: u64, up: u64) -> Sample {
        Sample {
            at_ms: ms,
            downloaded: down,
            uploaded: up,
            left: 1000 - down.min(1000),
        }
    }

    #[test]
    fn rates_span_the_window_and_need_two_samples_apart() {
        let mut p = Progress::default();
        assert_eq!(p.rates(0, 10_000), None);
        p.record(at(0, 0, 0));
        assert_eq!(p.rates(0, 10_000), None, "one sample is no rate");
        p.record(at(200, 40, 10));
        assert_eq!(
            p.samples().len(),
            1,
            "a sample 200 ms on replaces the newest"
        );
        assert_eq!(p.rates(200, 10_000), None, "no span");
        p.record(at(2000, 400, 100));
        let r = p.rates(2000, 10_000).unwrap();
        assert_eq!((r.down_bps, r.up_bps), (200.0, 50.0));
        assert_eq!(p.rates(13_000, 10_000), None, "a client that went quiet");
    }

    #[test]
    fn the_oldest_samples_go_and_restarts_reset() {
        let mut p = Progress::default();
        for k in 0..6 {
            p.record(at(k * 1000, k * 100, 0));
        }
        assert_eq!(p.samples().len(), SAMPLES);
        assert_eq!(p.samples()[0].at_ms, 2000);
        // A 1.5 s window from the newest keeps the last two samples only.
        assert_eq!(p.rates(5000, 1500).unwrap().down_bps, 100.0);
        p.record(at(4000, 900, 0));
        assert_eq!(p.last().unwrap().at_ms, 5000, "an older sample is ignored");
        p.record(at(6000, 10, 0));
        assert_eq!(
            p.samples().len(),
            1,
            "downloaded went backwards: a new series"
        );
        assert!(!p.seeding());
        p.record(at(7000, 1000, 0));
        assert!(p.seeding());
    }
}
