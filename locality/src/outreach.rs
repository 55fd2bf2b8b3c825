//! Whether reaching out pays (rule 2's trial, `docs/locality.md`). A client that its own links
//! call underserved (it gets less than half its downlink, or less than it may give) cannot tell
//! by its rate alone whether its PID's sources are slow (peers of other PIDs would help) or
//! whether the limit is one no other PID lifts: a link the whole PID shares, a busy CPU. So it
//! reaches out on trial: after [`LocalityConfig::trial_ms`] it compares its download rate
//! since the trial began with the rate before. Faster by [`LocalityConfig::trial_gain`]: it
//! keeps reaching out while underserved. Not: it **leaves** the peers of other PIDs the trial
//! brought (librqbit keeps every connection, so handing no more is not enough), rests for
//! [`LocalityConfig::rest_ms`], doubled after each failed trial up to
//! [`LocalityConfig::max_rest_ms`], and then tries again with the same peers.
//!
//! Only this rule goes through the trial. A stall, a member far below its PID's fastest, and a
//! PID without a working head reach out at once and stay out (rules 2 and 4): they are what a
//! slow, junk or departed head looks like, and leaving then would cost the user. No I/O, no
//! clock: times are passed in, and the caller carries out the [`Step`].

use crate::policy::LocalityConfig;
use crate::progress::Progress;
use std::net::SocketAddr;

/// Peers a trial remembers: bounded, whatever the client is handed.
pub const MAX_TRIAL_PEERS: usize = 32;

/// Where a client stands.
#[derive(Clone, Debug, Default, PartialEq)]
enum Phase {
    /// Not reaching out by its links.
    #[default]
    Idle,
    /// Reaching out since `since_ms`, when it downloaded at `before_bps`.
    Trial { since_ms: u64, before_bps: f64 },
    /// Reaching out, and it paid.
    Paying,
    /// A trial did not pay: no reaching out by its links until `until_ms`.
    Resting { until_ms: u64 },
}

/// What the caller does with the client's connections this announce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// The client reaches out (hand it peers of other PIDs, rule 2).
    pub reach_out: bool,
    /// Disconnect these peers of other PIDs: a trial that did not pay brought them.
    pub leave: Vec<SocketAddr>,
    /// Connect these again: a new trial after a rest, with the peers the last one left.
    pub requeue: Vec<SocketAddr>,
    /// A trial begins with this announce.
    pub began_trial: bool,
}

/// One client's trial state in one torrent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outreach {
    phase: Phase,
    /// The next rest, milliseconds (0: not set yet, [`LocalityConfig::rest_ms`]).
    rest_ms: u64,
    /// Peers of other PIDs handed during the trial; after a failed one, those it left.
    peers: Vec<SocketAddr>,
}

impl Outreach {
    /// The step at an announce at `now_ms`, given whether the client's own links call it
    /// underserved (`wants`) and its `progress`.
    pub fn step(
        &mut self,
        cfg: &LocalityConfig,
        wants: bool,
        progress: &Progress,
        now_ms: u64,
    ) -> Step {
        let rate = |window_ms: u64| {
            progress
                .rates(now_ms, window_ms)
                .map_or(0.0, |r| r.down_bps)
        };
        let mut step = Step::default();
        match self.phase {
            Phase::Resting { until_ms } if now_ms < until_ms => {}
            _ if !wants => {
                // Served again (or seeding): back to idle; a paid trial's peers stay.
                if !matches!(self.phase, Phase::Resting { .. }) {
                    self.peers.clear();
                }
                self.phase = Phase::Idle;
            }
            Phase::Idle | Phase::Resting { .. } => {
                step.requeue = std::mem::take(&mut self.peers);
                self.phase = Phase::Trial {
                    since_ms: now_ms,
                    before_bps: rate(cfg.window_ms),
                };
                step.reach_out = true;
                step.began_trial = true;
            }
            Phase::Trial {
                since_ms,
                before_bps,
            } => {
                if now_ms < since_ms + cfg.trial_ms {
                    step.reach_out = true;
                } else if rate(now_ms - since_ms) >= before_bps * (1.0 + cfg.trial_gain) {
                    self.phase = Phase::Paying;
                    self.peers.clear();
                    self.rest_ms = 0;
                    step.reach_out = true;
                } else {
                    let rest = if self.rest_ms == 0 {
                        cfg.rest_ms
                    } else {
                        self.rest_ms
                    };
                    self.phase = Phase::Resting {
                        until_ms: now_ms + rest,
                    };
                    self.rest_ms = rest.saturating_mul(2).min(cfg.max_rest_ms.max(cfg.rest_ms));
                    step.leave = self.peers.clone();
                }
            }
            Phase::Paying => step.reach_out = true,
        }
        step
    }

    /// Notes peers of other PIDs handed to the client; kept only during a trial, at most
    /// [`MAX_TRIAL_PEERS`].
    pub fn handed(&mut self, foreign: impl IntoIterator<Item = SocketAddr>) {
        if !matches!(self.phase, Phase::Trial { .. }) {
            return;
        }
        for p in foreign {
            if self.peers.len() >= MAX_TRIAL_PEERS {
                break;
            }
            if !self.peers.contains(&p) {
                self.peers.push(p);
            }
        }
    }

    /// Whether a trial is under way (for logs and tests).
    pub fn on_trial(&self) -> bool {
        matches!(self.phase, Phase::Trial { .. })
    }

    /// Whether the client is resting after a trial that did not pay.
    pub fn resting(&self) -> bool {
        matches!(self.phase, Phase::Resting { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Sample;

    const KIB: u64 = 1024;
    const CFG: LocalityConfig = LocalityConfig::DEFAULT;

    /// A client's progress over `rates`: (until ms, KiB/s from the previous point), sampled
    /// every 2 s (the lab's announce interval).
    fn progress(rates: &[(u64, u64)]) -> Progress {
        let mut p = Progress::default();
        let (mut t, mut got) = (0, 0);
        p.record(Sample {
            at_ms: 0,
            downloaded: 0,
            uploaded: 0,
            left: 1 << 30,
        });
        for &(until, kib) in rates {
            while t < until {
                t += 2000;
                got += kib * KIB * 2;
                p.record(Sample {
                    at_ms: t,
                    downloaded: got,
                    uploaded: 0,
                    left: (1 << 30) - got,
                });
            }
        }
        p
    }

    fn peer(k: u8) -> SocketAddr {
        SocketAddr::from(([127, k, 0, 10], 6881))
    }

    #[test]
    fn a_trial_that_pays_keeps_reaching_out_and_keeps_its_peers() {
        let mut o = Outreach::default();
        let before = progress(&[(6000, 1000)]);
        let s = o.step(&CFG, true, &before, 6000);
        assert!(s.reach_out && o.on_trial());
        o.handed([peer(2), peer(3)]);
        // Twice as fast over the trial: it paid.
        let during = progress(&[(6000, 1000), (12_000, 2000)]);
        assert!(
            o.step(&CFG, true, &during, 10_000).reach_out,
            "still on trial"
        );
        let s = o.step(&CFG, true, &during, 12_000);
        assert_eq!(
            s,
            Step {
                reach_out: true,
                ..Step::default()
            }
        );
        assert!(!o.on_trial() && !o.resting());
        // Served again: idle, and nothing is left.
        let s = o.step(&CFG, false, &during, 14_000);
        assert_eq!(s, Step::default());
        assert!(o.step(&CFG, true, &during, 16_000).requeue.is_empty());
    }

    #[test]
    fn a_trial_that_does_not_pay_leaves_its_peers_rests_and_tries_them_again() {
        // A shared link: the rate stays where it was.
        let flat = |until| progress(&[(until, 1000)]);
        let mut o = Outreach::default();
        assert!(o.step(&CFG, true, &flat(6000), 6000).reach_out);
        o.handed([peer(2), peer(3), peer(2)]);
        let s = o.step(&CFG, true, &flat(12_000), 12_000);
        assert!(!s.reach_out);
        assert_eq!(
            s.leave,
            vec![peer(2), peer(3)],
            "the trial's peers, once each"
        );
        assert!(o.resting());
        o.handed([peer(4)]);
        // Resting: no reaching out, whether the links want it or not.
        for now in [14_000, 20_000, 12_000 + CFG.rest_ms - 1] {
            assert_eq!(o.step(&CFG, true, &flat(now), now), Step::default());
        }
        // The rest is over: a new trial, with the peers the last one left.
        let now = 12_000 + CFG.rest_ms;
        let s = o.step(&CFG, true, &flat(now), now);
        assert!(s.reach_out && o.on_trial());
        assert_eq!(s.requeue, vec![peer(2), peer(3)]);
        // It fails again: the rest doubles.
        let later = now + CFG.trial_ms;
        let s = o.step(&CFG, true, &flat(later), later);
        assert!(
            s.leave.is_empty() && o.resting(),
            "no peers handed this time"
        );
        let end = later + 2 * CFG.rest_ms;
        assert!(!o.step(&CFG, true, &flat(end - 2000), end - 2000).reach_out);
        assert!(o.step(&CFG, true, &flat(end), end).reach_out);
    }

    #[test]
    fn rests_double_up_to_the_longest() {
        let mut o = Outreach::default();
        let mut now = 6000;
        let mut rests = Vec::new();
        for _ in 0..8 {
            let flat = progress(&[(now, 1000)]);
            assert!(o.step(&CFG, true, &flat, now).reach_out);
            now += CFG.trial_ms;
            let flat = progress(&[(now, 1000)]);
            assert!(!o.step(&CFG, true, &flat, now).reach_out);
            let start = now;
            while !o.step(&CFG, true, &progress(&[(now, 1000)]), now).reach_out {
                now += 1000;
            }
            rests.push(now - start);
        }
        assert_eq!(rests[0], CFG.rest_ms);
        assert_eq!(rests[1], 2 * CFG.rest_ms);
        assert_eq!(*rests.last().unwrap(), CFG.max_rest_ms);
    }

    #[test]
    fn a_trial_remembers_a_bounded_number_of_peers_and_only_on_trial() {
        let mut o = Outreach::default();
        o.handed([peer(2)]);
        assert!(o.peers.is_empty(), "idle: nothing is noted");
        o.step(&CFG, true, &progress(&[(6000, 1000)]), 6000);
        o.handed((0..100u16).map(|k| SocketAddr::from(([127, 2, 0, 10], 7000 + k))));
        assert_eq!(o.peers.len(), MAX_TRIAL_PEERS);
    }

    #[test]
    fn a_client_served_during_its_trial_goes_back_to_idle() {
        let mut o = Outreach::default();
        o.step(&CFG, true, &progress(&[(6000, 1000)]), 6000);
        o.handed([peer(2)]);
        let s = o.step(&CFG, false, &progress(&[(8000, 1000)]), 8000);
        assert_eq!(s, Step::default());
        assert!(!o.on_trial() && !o.resting());
    }
}
