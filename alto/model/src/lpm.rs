//! Longest-prefix match (RFC 1812 §5.2.4.3, required by RFC 7285 §11.2.2) over a flat,
//! cache-friendly table.
//!
//! The prefixes of a network map are flattened once into the sorted list of disjoint address
//! ranges that longest-prefix matching induces (each range carries the value of the longest
//! prefix covering it). A lookup then needs only one step through a 65,536-entry index on the
//! top 16 address bits and a binary search over the few ranges of that bucket: no pointer
//! chasing, and the index fits the L2 cache.
//!
//! Written by hand on purpose: it is the hot path of every PID lookup, and `alto-bench`
//! measures it against the textbook hash-table-per-prefix-length baseline in the same run.

/// Value stored for addresses no prefix covers.
pub const NONE: u32 = u32::MAX;

/// An address key: `u32` for IPv4, `u128` for IPv6.
pub trait Key: Copy + Ord + std::fmt::Debug {
    /// Width in bits.
    const BITS: u32;
    /// Narrows from the `u128` the builder works in.
    fn from_u128(v: u128) -> Self;
    /// The top 16 bits, the index bucket.
    fn bucket(self) -> usize;
}

impl Key for u32 {
    const BITS: u32 = 32;
    fn from_u128(v: u128) -> Self {
        v as u32
    }
    fn bucket(self) -> usize {
        (self >> 16) as usize
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    fn from_u128(v: u128) -> Self {
        v
    }
    fn bucket(self) -> usize {
        (self >> 112) as usize
    }
}

/// Two identical prefixes with different values: a map that violates the non-overlapping
/// property of RFC 7285 §11.2.2. Carries the positions of both in the builder's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// Input position of the first prefix.
    pub first: usize,
    /// Input position of the second, identical prefix.
    pub second: usize,
}

/// A longest-prefix-match table from addresses to `u32` values.
#[derive(Clone, Debug)]
pub struct PrefixTable<K> {
    starts: Vec<K>,
    values: Vec<u32>,
    index: Vec<u32>,
}

impl<K: Key> PrefixTable<K> {
    /// Builds the table from `(network address, prefix length, value)` triples; `value` must
    /// not be [`NONE`]. Identical prefixes with the same value count once; with different
    /// values they are a [`Conflict`].
    pub fn build(prefixes: &[(u128, u8, u32)]) -> Result<Self, Conflict> {
        let bits = K::BITS;
        let max: u128 = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        let mut order: Vec<usize> = (0..prefixes.len()).collect();
        order.sort_unstable_by_key(|&i| (prefixes[i].0, prefixes[i].1, i));

        // Segment starts with their values; `set` keeps them sorted and merged.
        let mut out: Vec<(u128, u32)> = vec![(0, NONE)];
        fn set(out: &mut Vec<(u128, u32)>, start: u128, value: u32) {
            match out.last_mut() {
                Some(last) if last.0 == start => last.1 = value,
                _ => out.push((start, value)),
            }
            let n = out.len();
            if n >= 2 && out[n - 2].1 == out[n - 1].1 {
                out.pop();
            }
        }
        // Open prefixes, outermost first: (last address, value).
        let mut stack: Vec<(u128, u32)> = Vec::new();
        let mut prev: Option<usize> = None;
        for &i in &order {
            let (start, len, value) = prefixes[i];
            if let Some(p) = prev {
                let (ps, pl, pv) = prefixes[p];
                if ps == start && pl == len {
                    if pv != value {
                        return Err(Conflict {
                            first: p.min(i),
                            second: p.max(i),
                        });
                    }
                    continue;
                }
            }
            prev = Some(i);
            let host = bits - len as u32;
            let last = if host == 128 {
                max
            } else {
                start | ((1u128 << host) - 1)
            };
            while let Some(&(top_last, _)) = stack.last() {
                if top_last >= start {
                    break;
                }
                stack.pop();
                let under = stack.last().map_or(NONE, |t| t.1);
                set(&mut out, top_last + 1, under);
            }
            set(&mut out, start, value);
            stack.push((last, value));
        }
        while let Some((top_last, _)) = stack.pop() {
            if top_last < max {
                let under = stack.last().map_or(NONE, |t| t.1);
                set(&mut out, top_last + 1, under);
            }
        }

        let starts: Vec<K> = out.iter().map(|&(s, _)| K::from_u128(s)).collect();
        let values: Vec<u32> = out.iter().map(|&(_, v)| v).collect();
        // index[b] = the range holding the first address of bucket b; index[65536] = last range.
        let mut index = Vec::with_capacity(65_537);
        let mut r = 0usize;
        for b in 0..65_536u128 {
            let first = b << (bits - 16);
            while r + 1 < out.len() && out[r + 1].0 <= first {
                r += 1;
            }
            index.push(r as u32);
        }
        index.push((out.len() - 1) as u32);
        Ok(PrefixTable {
            starts,
            values,
            index,
        })
    }

    /// The value of the longest prefix holding `addr`, or [`NONE`].
    #[inline]
    pub fn lookup(&self, addr: K) -> u32 {
        let b = addr.bucket();
        let lo = self.index[b] as usize;
        let hi = self.index[b + 1] as usize;
        let slice = &self.starts[lo..=hi];
        let k = slice.partition_point(|&s| s <= addr);
        self.values[lo + k - 1]
    }

    /// The disjoint ranges of the table: `(first address, value)`, each running up to the
    /// next one's start.
    pub fn ranges(&self) -> impl Iterator<Item = (K, u32)> + '_ {
        self.starts.iter().copied().zip(self.values.iter().copied())
    }

    /// Number of disjoint ranges.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the table has no ranges (never: the whole space is always covered).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Bytes held by the table.
    pub fn heap_bytes(&self) -> usize {
        self.starts.len() * std::mem::size_of::<K>() + self.values.len() * 4 + self.index.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u128 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) as u128
    }

    /// Longest match by brute force over the prefix list, the reference for the table.
    fn naive(prefixes: &[(u128, u8, u32)], addr: u32) -> u32 {
        prefixes
            .iter()
            .filter(|&&(s, l, _)| {
                let mask = if l == 0 {
                    0
                } else {
                    u32::MAX << (32 - l as u32)
                };
                (addr & mask) as u128 == s
            })
            .max_by_key(|&&(_, l, _)| l)
            .map_or(NONE, |&(_, _, v)| v)
    }

    #[test]
    fn section_11_2_2_example_maps_192_0_2_1_to_pid3() {
        let p = [
            (0, 0, 1),
            (v4("192.0.2.0"), 24, 2),
            (v4("198.51.100.0"), 24, 2),
            (v4("192.0.2.0"), 25, 3),
            (v4("192.0.2.128"), 25, 3),
        ];
        let t = PrefixTable::<u32>::build(&p).unwrap();
        assert_eq!(t.lookup(v4("192.0.2.1") as u32), 3);
        assert_eq!(t.lookup(v4("192.0.2.200") as u32), 3);
        assert_eq!(t.lookup(v4("198.51.100.7") as u32), 2);
        assert_eq!(t.lookup(v4("10.0.0.1") as u32), 1);
        assert_eq!(t.lookup(u32::MAX), 1);
    }

    #[test]
    fn identical_prefixes_in_two_pids_conflict() {
        let p = [
            (0, 0, 1),
            (v4("192.0.2.0"), 24, 2),
            (v4("192.0.2.0"), 24, 3),
        ];
        assert_eq!(
            PrefixTable::<u32>::build(&p).unwrap_err(),
            Conflict {
                first: 1,
                second: 2
            }
        );
        let same = [(v4("192.0.2.0"), 24, 2), (v4("192.0.2.0"), 24, 2)];
        assert!(PrefixTable::<u32>::build(&same).is_ok());
    }

    #[test]
    fn gaps_map_to_none() {
        let p = [(v4("10.0.0.0"), 8, 7)];
        let t = PrefixTable::<u32>::build(&p).unwrap();
        assert_eq!(t.lookup(v4("9.255.255.255") as u32), NONE);
        assert_eq!(t.lookup(v4("10.1.2.3") as u32), 7);
        assert_eq!(t.lookup(v4("11.0.0.0") as u32), NONE);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn nested_prefixes_agree_with_brute_force() {
        // Deterministic pseudo-random nested prefixes, checked against the naive matcher.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut p = vec![(0u128, 0u8, 0u32)];
        for v in 1..400u32 {
            let len = 4 + (next() % 29) as u8;
            let addr = (next() as u32) & (u32::MAX << (32 - len as u32));
            if !p.iter().any(|&(s, l, _)| s == addr as u128 && l == len) {
                p.push((addr as u128, len, v));
            }
        }
        let t = PrefixTable::<u32>::build(&p).unwrap();
        for _ in 0..20_000 {
            let a = next() as u32;
            assert_eq!(t.lookup(a), naive(&p, a), "address {a:#x}");
        }
        for &(s, l, _) in &p {
            let last = s as u32 | ((1u64 << (32 - l as u32)) - 1) as u32;
            for a in [
                s as u32,
                last,
                last.wrapping_add(1),
                (s as u32).wrapping_sub(1),
            ] {
                assert_eq!(t.lookup(a), naive(&p, a), "edge {a:#x}");
            }
        }
    }

    #[test]
    fn ipv6_default_and_more_specific() {
        let net = u128::from("2001:db8::".parse::<std::net::Ipv6Addr>().unwrap());
        let p = [(0u128, 0u8, 1u32), (net, 32, 2)];
        let t = PrefixTable::<u128>::build(&p).unwrap();
        assert_eq!(t.lookup(net + 5), 2);
        assert_eq!(t.lookup(u128::MAX), 1);
        assert_eq!(t.lookup(0), 1);
    }
}
