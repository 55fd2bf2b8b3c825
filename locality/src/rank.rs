//! Peer ranking with ALTO costs, the policy shared by the tracker shim and the plugin (RFC
//! 7285 §12.1 and §12.3, with the locality policy of the RFC 5632 trial): same PID first,
//! then other PIDs by ascending cost, random order among equal costs, and a share of random
//! out-of-PID peers so that a swarm never splits into islands.
//!
//! Candidates come grouped by PID ("buckets"), as a swarm store keeps them, so a selection
//! costs O(PIDs + wanted) rather than a sort of every peer. No I/O: the randomness comes in.

use alto_model::PidIdx;

/// A source of random numbers, passed in so that the policy stays deterministic in tests.
pub trait Random {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// SplitMix64: a small, fast generator, good for shuffling peer lists (not for secrets).
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl Random for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The knobs of the policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Share of each answer drawn at random from peers outside the announcer's PID
    /// (0.1 = 10%, as in the RFC 5632 trial); the rest is ranked.
    pub random_share: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { random_share: 0.1 }
    }
}

/// Candidates that share a PID (`None`: the address is in no known PID).
#[derive(Clone, Copy, Debug)]
pub struct Bucket<'a, P> {
    /// The PID of every peer in the bucket.
    pub pid: Option<PidIdx>,
    /// The peers.
    pub peers: &'a [P],
}

/// Picks up to `want` peers for an announcer in `own` PID and writes them to `out`, best
/// first: the ranked part (same PID, then PIDs by ascending `cost`, PIDs without a cost
/// last, ties in random order), then the random out-of-PID share. `eligible` filters peers
/// out (the announcer itself; seeders, for a seeder). Work is O(buckets + want) for all but
/// pathological filters.
#[allow(clippy::too_many_arguments)]
pub fn select<P: Copy>(
    own: Option<PidIdx>,
    buckets: &[Bucket<'_, P>],
    cost: impl Fn(PidIdx) -> Option<f64>,
    want: usize,
    policy: &Policy,
    rng: &mut impl Random,
    eligible: impl Fn(&P) -> bool,
    out: &mut Vec<P>,
) {
    let start = out.len();
    if want == 0 {
        return;
    }
    // Order the buckets by (class, cost, random tie-break): class 0 is the own PID, 1 a PID
    // with a cost, 2 a PID without one.
    let mut order: Vec<(u8, f64, u64, usize)> = buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| !b.peers.is_empty())
        .map(|(i, b)| {
            let (class, c) = match (b.pid, own) {
                (Some(p), Some(o)) if p == o => (0, 0.0),
                (Some(p), _) => cost(p).map_or((2, 0.0), |c| (1, c)),
                (None, _) => (2, 0.0),
            };
            (class, c, rng.next_u64(), i)
        })
        .collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));

    // Each bucket is walked from a random offset; `walked[b]` counts positions visited.
    let offsets: Vec<usize> = buckets
        .iter()
        .map(|b| {
            if b.peers.is_empty() {
                0
            } else {
                rng.below(b.peers.len())
            }
        })
        .collect();
    let mut walked = vec![0usize; buckets.len()];
    let visited = |walked: &[usize], b: usize, i: usize| {
        let len = buckets[b].peers.len();
        (i + len - offsets[b]) % len < walked[b]
    };
    let mut drawn: Vec<(usize, usize)> = Vec::new();

    // Walks the buckets in order until `limit` peers are out.
    let walk =
        |walked: &mut Vec<usize>, drawn: &[(usize, usize)], out: &mut Vec<P>, limit: usize| {
            for &(_, _, _, b) in &order {
                let len = buckets[b].peers.len();
                while walked[b] < len && out.len() - start < limit {
                    let i = (offsets[b] + walked[b]) % len;
                    walked[b] += 1;
                    let p = &buckets[b].peers[i];
                    if eligible(p) && !drawn.contains(&(b, i)) {
                        out.push(*p);
                    }
                }
                if out.len() - start >= limit {
                    return;
                }
            }
        };

    let outside: Vec<usize> = order.iter().filter(|o| o.0 != 0).map(|o| o.3).collect();
    let outside_total: usize = outside.iter().map(|&b| buckets[b].peers.len()).sum();
    let random_quota =
        (((want as f64) * policy.random_share.clamp(0.0, 1.0)).round() as usize).min(outside_total);
    walk(&mut walked, &drawn, out, want - random_quota);

    // Random share: uniform draws over the outside peers not yet given, by rejection.
    let mut attempts = 8 * random_quota + 32;
    while drawn.len() < random_quota && attempts > 0 && out.len() - start < want {
        attempts -= 1;
        let mut k = rng.below(outside_total);
        let mut b = 0;
        for &ob in &outside {
            let len = buckets[ob].peers.len();
            if k < len {
                b = ob;
                break;
            }
            k -= len;
        }
        let p = &buckets[b].peers[k];
        if !visited(&walked, b, k) && !drawn.contains(&(b, k)) && eligible(p) {
            drawn.push((b, k));
            out.push(*p);
        }
    }
    // Too few random candidates (or too many rejections): top up in ranked order.
    walk(&mut walked, &drawn, out, want);
}

/// Picks up to `want` eligible peers at random, ignoring PIDs: the plain tracker's choice and
/// the baseline of every comparison. Like common trackers it walks the candidates from a
/// random start with a random stride coprime to their number, so the picks are distinct and
/// the work is O(buckets + want).
pub fn random<P: Copy>(
    buckets: &[Bucket<'_, P>],
    want: usize,
    rng: &mut impl Random,
    eligible: impl Fn(&P) -> bool,
    out: &mut Vec<P>,
) {
    let total: usize = buckets.iter().map(|b| b.peers.len()).sum();
    if total == 0 || want == 0 {
        return;
    }
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let first = rng.below(total);
    let mut stride = 1 + rng.below(total);
    while gcd(stride, total) != 1 {
        stride = 1 + rng.below(total);
    }
    let start = out.len();
    let mut idx = first;
    for _ in 0..total {
        if out.len() - start >= want {
            break;
        }
        let mut k = idx;
        for b in buckets {
            if k < b.peers.len() {
                let p = &b.peers[k];
                if eligible(p) {
                    out.push(*p);
                }
                break;
            }
            k -= b.peers.len();
        }
        idx = (idx + stride) % total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peers as (pid, n): easy to read in assertions.
    fn buckets(spec: &[(Option<u32>, u32)]) -> Vec<Vec<(Option<u32>, u32)>> {
        spec.iter()
            .map(|&(pid, n)| (0..n).map(|k| (pid, k)).collect())
            .collect()
    }

    fn run(
        own: Option<u32>,
        spec: &[(Option<u32>, u32)],
        costs: &[(u32, f64)],
        want: usize,
        share: f64,
        seed: u64,
    ) -> Vec<(Option<u32>, u32)> {
        let data = buckets(spec);
        let b: Vec<Bucket<'_, (Option<u32>, u32)>> = spec
            .iter()
            .zip(&data)
            .map(|(&(pid, _), p)| Bucket { pid, peers: p })
            .collect();
        let mut out = Vec::new();
        let cost = |p: u32| costs.iter().find(|c| c.0 == p).map(|c| c.1);
        select(
            own,
            &b,
            cost,
            want,
            &Policy {
                random_share: share,
            },
            &mut SplitMix64(seed),
            |_| true,
            &mut out,
        );
        out
    }

    #[test]
    fn same_pid_first_then_by_cost() {
        let spec = [(Some(3), 4), (Some(1), 3), (Some(2), 3), (None, 2)];
        let costs = [(1, 1.0), (2, 5.0), (3, 40.0)];
        let out = run(Some(1), &spec, &costs, 8, 0.0, 7);
        let pids: Vec<_> = out.iter().map(|p| p.0).collect();
        assert_eq!(
            pids,
            [
                Some(1),
                Some(1),
                Some(1),
                Some(2),
                Some(2),
                Some(2),
                Some(3),
                Some(3)
            ]
        );
        // Everything when asked for more than there is, unknown PIDs last.
        let out = run(Some(1), &spec, &costs, 100, 0.0, 7);
        assert_eq!(out.len(), 12);
        assert_eq!(out[11].0, None);
    }

    #[test]
    fn a_tenth_is_random_from_outside_the_pid() {
        let spec = [(Some(1), 50), (Some(2), 50), (Some(3), 50)];
        let costs = [(1, 1.0), (2, 5.0), (3, 40.0)];
        let mut far = 0;
        for seed in 0..200 {
            let out = run(Some(1), &spec, &costs, 50, 0.1, seed);
            assert_eq!(out.len(), 50);
            // 45 ranked from the own PID, 5 random from the others.
            assert!(out[..45].iter().all(|p| p.0 == Some(1)));
            assert!(out[45..].iter().all(|p| p.0 != Some(1)));
            far += out[45..].iter().filter(|p| p.0 == Some(3)).count();
            let mut uniq = out.clone();
            uniq.sort();
            uniq.dedup();
            assert_eq!(uniq.len(), 50, "a peer was given twice");
        }
        // The random share reaches the expensive PID too (about half of 1,000 draws).
        assert!((350..650).contains(&far), "{far}");
    }

    #[test]
    fn filters_and_small_swarms() {
        let spec = [(Some(1), 3), (Some(2), 2)];
        let data = buckets(&spec);
        let b: Vec<_> = spec
            .iter()
            .zip(&data)
            .map(|(&(pid, _), p)| Bucket {
                pid,
                peers: p.as_slice(),
            })
            .collect();
        let mut out = Vec::new();
        select(
            Some(1),
            &b,
            |_| Some(1.0),
            10,
            &Policy::default(),
            &mut SplitMix64(1),
            |p| *p != (Some(1), 0),
            &mut out,
        );
        assert_eq!(out.len(), 4);
        assert!(!out.contains(&(Some(1), 0)));
        out.clear();
        select(
            Some(1),
            &b,
            |_| Some(1.0),
            0,
            &Policy::default(),
            &mut SplitMix64(1),
            |_| true,
            &mut out,
        );
        assert!(out.is_empty());
        select::<(Option<u32>, u32)>(
            Some(1),
            &[],
            |_| None,
            5,
            &Policy::default(),
            &mut SplitMix64(1),
            |_| true,
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn random_picks_are_distinct_and_spread() {
        let spec = [(Some(1), 30), (Some(2), 30), (None, 40)];
        let data = buckets(&spec);
        let b: Vec<_> = spec
            .iter()
            .zip(&data)
            .map(|(&(pid, _), p)| Bucket {
                pid,
                peers: p.as_slice(),
            })
            .collect();
        let mut seen = std::collections::HashMap::new();
        for seed in 0..500 {
            let mut out = Vec::new();
            random(
                &b,
                10,
                &mut SplitMix64(seed),
                |p| *p != (Some(1), 0),
                &mut out,
            );
            assert_eq!(out.len(), 10);
            let mut u = out.clone();
            u.sort();
            u.dedup();
            assert_eq!(u.len(), 10);
            assert!(!out.contains(&(Some(1), 0)));
            for p in out {
                *seen.entry(p).or_insert(0) += 1;
            }
        }
        // 99 eligible peers, 5,000 picks: every peer is picked, none far too often.
        assert_eq!(seen.len(), 99);
        assert!(seen.values().all(|&n| (15..=90).contains(&n)), "{seen:?}");
        let mut out = Vec::new();
        random(&b, 500, &mut SplitMix64(1), |_| true, &mut out);
        assert_eq!(out.len(), 100);
    }

    #[test]
    fn equal_costs_share_the_load() {
        let spec = [(Some(2), 10), (Some(3), 10)];
        let costs = [(2, 5.0), (3, 5.0)];
        let mut first_from_2 = 0;
        for seed in 0..400 {
            if run(Some(1), &spec, &costs, 1, 0.0, seed)[0].0 == Some(2) {
                first_from_2 += 1;
            }
        }
        assert!((120..280).contains(&first_from_2), "{first_from_2}");
    }
}
