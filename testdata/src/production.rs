//! A seeded generator of a production-sized ALTO deployment: about 1,700 PIDs, 250,000
//! prefixes and 1.3 million cost pairs, the order of a large ISP's network map. It is
//! generated on demand (benchmarks, load tests, `alto-gen-map`), never committed.
//!
//! Shape: regions of metros of PIDs (names `r03-m07-p05`) plus a `default` PID holding
//! `0.0.0.0/0` and `::/0`. IPv4 prefixes of /16 to /24 are laid out without overlap, and one
//! in ten is followed by more-specifics given to other PIDs, so longest-prefix matching
//! matters as in real maps. Each source PID has costs to every PID of its region, to a
//! random sample of the others, and to `default`: same PID 1, same metro about 5, same region
//! 10 to 20, other regions 30 and up with distance.

use std::collections::HashSet;
use std::fmt::Write;

/// Sizes of the generated deployment.
#[derive(Clone, Debug)]
pub struct Params {
    /// Number of regions.
    pub regions: usize,
    /// Metros per region.
    pub metros_per_region: usize,
    /// PIDs per metro.
    pub pids_per_metro: usize,
    /// IPv4 prefixes, more-specifics included.
    pub ipv4_prefixes: usize,
    /// IPv6 prefixes.
    pub ipv6_prefixes: usize,
    /// Destinations outside its region each source PID has a cost to.
    pub remote_pairs_per_row: usize,
    /// Seed of the pseudo-random choices.
    pub seed: u64,
}

impl Default for Params {
    /// The production size: 1,701 PIDs, 250,002 prefixes, about 1.3 million cost pairs.
    fn default() -> Self {
        Params {
            regions: 17,
            metros_per_region: 10,
            pids_per_metro: 10,
            ipv4_prefixes: 235_000,
            ipv6_prefixes: 15_000,
            remote_pairs_per_row: 663,
            seed: 7285,
        }
    }
}

impl Params {
    /// A small deployment for tests: 2 regions × 2 metros × 3 PIDs, 200 prefixes.
    pub fn small() -> Self {
        Params {
            regions: 2,
            metros_per_region: 2,
            pids_per_metro: 3,
            ipv4_prefixes: 180,
            ipv6_prefixes: 20,
            remote_pairs_per_row: 4,
            seed: 1,
        }
    }
}

/// The generated files and their sizes.
#[derive(Clone, Debug)]
pub struct Generated {
    /// Network map file (RFC 7285 §11.2.1.6 format).
    pub network_map: String,
    /// Numerical `routingcost` cost map file (§11.2.3.6 format).
    pub routingcost: String,
    /// PIDs, `default` included.
    pub pids: usize,
    /// Prefixes, the two of `default` included.
    pub prefixes: usize,
    /// Cost pairs.
    pub pairs: usize,
    /// IPv4 addresses inside generated prefixes, for lookup benchmarks.
    pub sample_v4: Vec<u32>,
}

/// SplitMix64: small, seeded, good enough for test data. The same generator as
/// `alto_locality::rank::SplitMix64`, kept here on purpose: `alto-model`'s own tests use this
/// crate, so it must not depend on `alto-model`.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

fn v4_len(rng: &mut SplitMix) -> u32 {
    match rng.below(100) {
        0..=49 => 24,
        50..=64 => 23,
        65..=79 => 22,
        80..=87 => 21,
        88..=94 => 20,
        r => 16 + (r % 4) as u32,
    }
}

/// Generates a deployment.
pub fn generate(p: &Params) -> Generated {
    let mut rng = SplitMix::new(p.seed);
    let per_region = p.metros_per_region * p.pids_per_metro;
    let n = p.regions * per_region;
    let mut names: Vec<String> = Vec::with_capacity(n + 1);
    for r in 0..p.regions {
        for m in 0..p.metros_per_region {
            for k in 0..p.pids_per_metro {
                names.push(format!("r{r:02}-m{m:02}-p{k:02}"));
            }
        }
    }
    let default = n;
    names.push("default".into());

    let mut v4: Vec<Vec<String>> = vec![Vec::new(); n + 1];
    let mut v6: Vec<Vec<String>> = vec![Vec::new(); n + 1];
    let mut sample_v4 = Vec::new();
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    let mut cursor: u64 = 1 << 24; // 1.0.0.0
    let mut made = 0;
    while made < p.ipv4_prefixes {
        let len = v4_len(&mut rng);
        let size = 1u64 << (32 - len);
        cursor = (cursor + size - 1) & !(size - 1);
        if cursor + size > 0xe000_0000 {
            cursor = 1 << 24; // wrap before multicast; `seen` keeps prefixes distinct
        }
        let addr = cursor as u32;
        cursor += size + 256 * rng.below(4);
        if !seen.insert((addr, len)) {
            continue;
        }
        let owner = rng.below(n as u64) as usize;
        v4[owner].push(format!("{}/{len}", std::net::Ipv4Addr::from(addr)));
        sample_v4.push(addr | rng.below(size) as u32);
        made += 1;
        if rng.below(10) == 0 {
            // more-specifics inside, owned by other PIDs
            for _ in 0..1 + rng.below(3) {
                if made >= p.ipv4_prefixes {
                    break;
                }
                let clen = (len + 1 + rng.below(4) as u32).min(30);
                let sub = addr | ((rng.below(1 << (clen - len)) as u32) << (32 - clen));
                if seen.insert((sub, clen)) {
                    let o = rng.below(n as u64) as usize;
                    v4[o].push(format!("{}/{clen}", std::net::Ipv4Addr::from(sub)));
                    made += 1;
                }
            }
        }
    }
    let mut c6: u128 = 0x2400 << 112;
    for _ in 0..p.ipv6_prefixes {
        let len = 32 + rng.below(17) as u32;
        let size = 1u128 << (128 - len);
        c6 = (c6 + size - 1) & !(size - 1);
        let owner = rng.below(n as u64) as usize;
        v6[owner].push(format!("{}/{len}", std::net::Ipv6Addr::from(c6)));
        c6 += size;
    }
    v4[default].push("0.0.0.0/0".into());
    v6[default].push("::/0".into());

    let mut network_map = String::with_capacity(p.ipv4_prefixes * 24 + p.ipv6_prefixes * 30);
    network_map.push_str(
        "{\"meta\":{\"description\":\"generated production-sized map\"},\"network-map\":{\n",
    );
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            network_map.push_str(",\n");
        }
        write!(network_map, "\"{name}\":{{").unwrap();
        let mut first = true;
        for (ty, list) in [("ipv4", &v4[i]), ("ipv6", &v6[i])] {
            if list.is_empty() {
                continue;
            }
            if !first {
                network_map.push(',');
            }
            first = false;
            write!(network_map, "\"{ty}\":[").unwrap();
            for (k, pfx) in list.iter().enumerate() {
                if k > 0 {
                    network_map.push(',');
                }
                write!(network_map, "\"{pfx}\"").unwrap();
            }
            network_map.push(']');
        }
        network_map.push('}');
    }
    network_map.push_str("\n}}\n");

    let region = |i: usize| i / per_region;
    let metro = |i: usize| i / p.pids_per_metro;
    let mut routingcost = String::with_capacity(n * (per_region + p.remote_pairs_per_row) * 18);
    routingcost.push_str(
        "{\"meta\":{\"cost-type\":{\"cost-mode\":\"numerical\",\"cost-metric\":\"routingcost\"}},\"cost-map\":{\n",
    );
    let mut pairs = 0;
    let mut others: Vec<usize> = Vec::with_capacity(n);
    for s in 0..n {
        if s > 0 {
            routingcost.push_str(",\n");
        }
        write!(routingcost, "\"{}\":{{", names[s]).unwrap();
        let entry = |d: usize, c: u64, out: &mut String, first: bool| {
            if !first {
                out.push(',');
            }
            write!(out, "\"{}\":{c}", names[d]).unwrap();
        };
        let base = region(s) * per_region;
        for d in base..base + per_region {
            let c = if d == s {
                1
            } else if metro(d) == metro(s) {
                4 + rng.below(3)
            } else {
                10 + rng.below(11)
            };
            entry(d, c, &mut routingcost, d == base);
            pairs += 1;
        }
        others.clear();
        others.extend((0..n).filter(|&d| region(d) != region(s)));
        let take = p.remote_pairs_per_row.min(others.len());
        for k in 0..take {
            let j = k + rng.below((others.len() - k) as u64) as usize;
            others.swap(k, j);
            let d = others[k];
            let dist = region(d).abs_diff(region(s)) as u64;
            entry(d, 30 + 10 * dist + rng.below(10), &mut routingcost, false);
            pairs += 1;
        }
        entry(default, 500, &mut routingcost, false);
        pairs += 1;
        routingcost.push('}');
    }
    routingcost.push_str("\n}}\n");

    let prefixes = v4.iter().chain(&v6).map(Vec::len).sum();
    Generated {
        network_map,
        routingcost,
        pids: n + 1,
        prefixes,
        pairs,
        sample_v4,
    }
}
