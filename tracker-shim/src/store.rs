//! The swarm store, with no I/O: swarms keyed by info hash, peers keyed by peer id and
//! grouped by address family and PID so that ranking walks PIDs, not peers. Seeder, leecher
//! and completion counts are running totals. Peers expire after a timeout; memory is bounded
//! by caps on swarms and on peers per swarm. Each peer keeps the progress its last announces
//! reported (a fixed number of samples), and each PID's bucket a summary of it for the
//! locality policy (`alto_locality::policy`), remade at most once per
//! [`SUMMARY_EVERY_MS`]. The clock comes in as `now` (seconds) or `now_ms`.

use crate::protocol::scrape::ScrapeCounts;
use crate::protocol::{Event, InfoHash, PeerId};
use alto_locality::policy::{pid_summary, LocalityConfig, PidSummary};
use alto_locality::rank::{self, Bucket, Policy, Random};
use alto_locality::{Progress, Sample};
use alto_model::PidIdx;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Limits of the store.
#[derive(Clone, Copy, Debug)]
pub struct StoreConfig {
    /// Most swarms kept; an announce for a new torrent beyond it is refused.
    pub max_swarms: usize,
    /// Most peers kept per swarm; a new peer beyond it gets peers but is not kept.
    pub max_peers_per_swarm: usize,
    /// Seconds after its last announce that a peer is dropped.
    pub peer_timeout_secs: u64,
}

/// A peer as kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredPeer {
    /// Where to reach it.
    pub addr: SocketAddr,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Whether it has the whole torrent.
    pub seeder: bool,
    /// When it expires (seconds).
    pub expires: u64,
    /// What its announces reported.
    pub progress: Progress,
}

/// A PID's summary is remade at most this often, milliseconds: the work of an announce
/// stays independent of the size of its PID.
pub const SUMMARY_EVERY_MS: u64 = 1000;

/// An announce, reduced to what the store needs.
#[derive(Clone, Copy, Debug)]
pub struct PeerUpdate {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The peer.
    pub peer_id: PeerId,
    /// Where to reach it.
    pub addr: SocketAddr,
    /// `left == 0`.
    pub seeder: bool,
    /// The event.
    pub event: Event,
    /// Its figures (`downloaded`, `uploaded`, `left`) and when they came.
    pub sample: Sample,
}

/// What the store did with an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The peer is in the swarm.
    Kept,
    /// The swarm is full; the peer was not added.
    SwarmFull,
    /// The peer left (`stopped`).
    Removed,
}

/// Why an announce was refused by the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store holds `max_swarms` swarms already.
    #[error("the tracker is full: it holds {0} torrents")]
    TooManySwarms(usize),
}

#[derive(Debug, Default)]
struct PeerBucket {
    pid: Option<PidIdx>,
    v6: bool,
    peers: Vec<StoredPeer>,
    /// The locality summary of these peers, and when it was made (milliseconds).
    summary: Option<(u64, PidSummary<PeerId>)>,
}

#[derive(Debug, Default)]
struct Swarm {
    /// peer id → (bucket, position)
    slots: HashMap<PeerId, (usize, usize)>,
    buckets: Vec<PeerBucket>,
    seeders: u32,
    leechers: u32,
    downloaded: u32,
    /// The map generation the buckets were made with.
    generation: u64,
}

impl Swarm {
    fn bucket_for(&mut self, pid: Option<PidIdx>, v6: bool) -> usize {
        match self.buckets.iter().position(|b| b.pid == pid && b.v6 == v6) {
            Some(i) => i,
            None => {
                self.buckets.push(PeerBucket {
                    pid,
                    v6,
                    peers: Vec::new(),
                    summary: None,
                });
                self.buckets.len() - 1
            }
        }
    }

    fn insert(&mut self, p: StoredPeer, pid: Option<PidIdx>) {
        let b = self.bucket_for(pid, p.addr.is_ipv6());
        self.buckets[b].peers.push(p);
        self.slots
            .insert(p.peer_id, (b, self.buckets[b].peers.len() - 1));
        if p.seeder {
            self.seeders += 1;
        } else {
            self.leechers += 1;
        }
    }

    fn remove(&mut self, id: &PeerId) -> Option<StoredPeer> {
        let (b, i) = self.slots.remove(id)?;
        let bucket = &mut self.buckets[b].peers;
        let p = bucket.swap_remove(i);
        if let Some(moved) = bucket.get(i) {
            self.slots.insert(moved.peer_id, (b, i));
        }
        if p.seeder {
            self.seeders -= 1;
        } else {
            self.leechers -= 1;
        }
        Some(p)
    }

    /// Re-groups every peer after the network map changed.
    fn regroup(&mut self, pid_of: &dyn Fn(IpAddr) -> Option<PidIdx>, generation: u64) {
        let peers: Vec<StoredPeer> = self.buckets.drain(..).flat_map(|b| b.peers).collect();
        self.slots.clear();
        self.seeders = 0;
        self.leechers = 0;
        for p in peers {
            self.insert(p, pid_of(p.addr.ip()));
        }
        self.generation = generation;
    }

    fn len(&self) -> usize {
        self.slots.len()
    }
}

/// What [`Store::select`] picks for: up to `want` live peers of the torrent for the peer
/// `me` (never `me` itself; no seeders for a seeder) of the same address family as
/// `me_addr`, ranked by `policy` for the announcer's PID `own` with the cost row `cost`;
/// `ranked` false draws at random (plain mode).
#[derive(Clone, Copy)]
pub struct SelectRequest<'a> {
    /// The torrent.
    pub info_hash: &'a InfoHash,
    /// The announcer's peer id.
    pub me: &'a PeerId,
    /// The announcer's address: its family is the family of the peers picked.
    pub me_addr: SocketAddr,
    /// Whether the announcer is a seeder.
    pub me_seeder: bool,
    /// The announcer's PID.
    pub own: Option<PidIdx>,
    /// The cost from the announcer's PID to each PID.
    pub cost: &'a dyn Fn(PidIdx) -> Option<f64>,
    /// Whether to rank by PID and cost (head mode) or draw at random (plain mode).
    pub ranked: bool,
    /// Most peers picked.
    pub want: usize,
    /// The ranking policy.
    pub policy: &'a Policy,
    /// The time (seconds): expired peers are not picked.
    pub now: u64,
}

/// Swarms by info hash.
#[derive(Debug)]
pub struct Store {
    config: StoreConfig,
    swarms: HashMap<InfoHash, Swarm>,
    peers: usize,
}

impl Store {
    /// An empty store.
    pub fn new(config: StoreConfig) -> Self {
        Store {
            config,
            swarms: HashMap::new(),
            peers: 0,
        }
    }

    /// Records an announce. `pid_of` maps addresses to PIDs under map `generation`; a swarm
    /// grouped under an older generation is re-grouped first.
    pub fn announce(
        &mut self,
        u: &PeerUpdate,
        now: u64,
        pid_of: &dyn Fn(IpAddr) -> Option<PidIdx>,
        generation: u64,
    ) -> Result<Outcome, StoreError> {
        if !self.swarms.contains_key(&u.info_hash) {
            if u.event == Event::Stopped {
                return Ok(Outcome::Removed);
            }
            if self.swarms.len() >= self.config.max_swarms {
                return Err(StoreError::TooManySwarms(self.swarms.len()));
            }
        }
        let swarm = self.swarms.entry(u.info_hash).or_insert_with(|| Swarm {
            generation,
            ..Swarm::default()
        });
        if swarm.generation != generation {
            swarm.regroup(pid_of, generation);
        }
        let before = swarm.len();
        let old = swarm.remove(&u.peer_id);
        let outcome = if u.event == Event::Stopped {
            Outcome::Removed
        } else if old.is_none() && swarm.len() >= self.config.max_peers_per_swarm {
            Outcome::SwarmFull
        } else {
            if u.event == Event::Completed && !old.is_some_and(|o| o.seeder) {
                swarm.downloaded += 1;
            }
            let mut progress = old.map(|o| o.progress).unwrap_or_default();
            progress.record(u.sample);
            let p = StoredPeer {
                addr: u.addr,
                peer_id: u.peer_id,
                seeder: u.seeder,
                expires: now + self.config.peer_timeout_secs,
                progress,
            };
            swarm.insert(p, pid_of(u.addr.ip()));
            Outcome::Kept
        };
        let after = swarm.len();
        self.peers = self.peers + after - before;
        if after == 0 && swarm.downloaded == 0 {
            self.swarms.remove(&u.info_hash);
        }
        Ok(outcome)
    }

    /// Seeders, completions and leechers of a torrent (zeros when unknown).
    pub fn counts(&self, h: &InfoHash) -> ScrapeCounts {
        self.swarms
            .get(h)
            .map_or_else(ScrapeCounts::default, |s| ScrapeCounts {
                complete: s.seeders,
                downloaded: s.downloaded,
                incomplete: s.leechers,
            })
    }

    /// Picks peers for the announcer of `req` into `out`: see [`SelectRequest`].
    pub fn select(
        &self,
        req: &SelectRequest<'_>,
        rng: &mut impl Random,
        out: &mut Vec<StoredPeer>,
    ) {
        let SelectRequest {
            info_hash,
            me,
            me_addr,
            me_seeder,
            own,
            cost,
            ranked,
            want,
            policy,
            now,
        } = *req;
        let Some(swarm) = self.swarms.get(info_hash) else {
            return;
        };
        let v6 = me_addr.is_ipv6();
        let buckets: Vec<Bucket<'_, StoredPeer>> = swarm
            .buckets
            .iter()
            .filter(|b| b.v6 == v6)
            .map(|b| Bucket {
                pid: if ranked { b.pid } else { None },
                peers: &b.peers,
            })
            .collect();
        let eligible =
            |p: &StoredPeer| p.peer_id != *me && p.expires > now && !(me_seeder && p.seeder);
        if ranked {
            rank::select(own, &buckets, cost, want, policy, rng, eligible, out);
        } else {
            rank::random(&buckets, want, rng, eligible, out);
        }
    }

    /// Whether a live peer of a torrent has the address `ip` (in PID `pid`).
    pub fn has_ip(&self, h: &InfoHash, ip: IpAddr, pid: Option<PidIdx>, now: u64) -> bool {
        self.swarms.get(h).is_some_and(|s| {
            s.buckets
                .iter()
                .filter(|b| b.pid == pid && b.v6 == ip.is_ipv6())
                .flat_map(|b| b.peers.iter())
                .any(|p| p.addr.ip() == ip && p.expires > now)
        })
    }

    /// The progress a peer of a torrent reported.
    pub fn progress(&self, h: &InfoHash, id: &PeerId) -> Option<Progress> {
        let s = self.swarms.get(h)?;
        let &(b, i) = s.slots.get(id)?;
        Some(s.buckets[b].peers[i].progress)
    }

    /// The locality summary of a torrent's live peers in PID `pid` of the family of `v6`,
    /// remade when older than [`SUMMARY_EVERY_MS`] at `now_ms`.
    pub fn summary(
        &mut self,
        h: &InfoHash,
        pid: Option<PidIdx>,
        v6: bool,
        now_ms: u64,
        cfg: &LocalityConfig,
    ) -> Option<PidSummary<PeerId>> {
        let swarm = self.swarms.get_mut(h)?;
        let bucket = swarm
            .buckets
            .iter_mut()
            .find(|b| b.pid == pid && b.v6 == v6)?;
        match &bucket.summary {
            Some((at, s)) if now_ms < at + SUMMARY_EVERY_MS => Some(s.clone()),
            _ => {
                let now = now_ms / 1000;
                let live = bucket
                    .peers
                    .iter()
                    .filter(|p| p.expires > now)
                    .map(|p| (p.peer_id, &p.progress));
                let s = pid_summary(cfg, live, now_ms);
                bucket.summary = Some((now_ms, s.clone()));
                Some(s)
            }
        }
    }

    /// Every peer of a torrent (for member lists), live ones only.
    pub fn members(&self, h: &InfoHash, now: u64) -> Vec<StoredPeer> {
        self.swarms.get(h).map_or_else(Vec::new, |s| {
            s.buckets
                .iter()
                .flat_map(|b| b.peers.iter())
                .filter(|p| p.expires > now)
                .copied()
                .collect()
        })
    }

    /// Drops expired peers and empty swarms; returns how many peers went.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut gone = 0;
        self.swarms.retain(|_, s| {
            let dead: Vec<PeerId> = s
                .buckets
                .iter()
                .flat_map(|b| b.peers.iter())
                .filter(|p| p.expires <= now)
                .map(|p| p.peer_id)
                .collect();
            for id in &dead {
                s.remove(id);
            }
            gone += dead.len();
            s.len() > 0 || s.downloaded > 0
        });
        self.peers -= gone;
        gone
    }

    /// Number of swarms.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Number of peers over all swarms.
    pub fn peer_count(&self) -> usize {
        self.peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alto_locality::rank::SplitMix64;

    const CFG: StoreConfig = StoreConfig {
        max_swarms: 2,
        max_peers_per_swarm: 3,
        peer_timeout_secs: 100,
    };

    fn up(h: u8, p: u8, ip: &str, seeder: bool, event: Event) -> PeerUpdate {
        PeerUpdate {
            info_hash: InfoHash([h; 20]),
            peer_id: PeerId([p; 20]),
            addr: format!("{ip}:6881").parse().unwrap(),
            seeder,
            event,
            sample: Sample::default(),
        }
    }

    /// PID = second octet of a 127.x address.
    fn pid_of(ip: IpAddr) -> Option<PidIdx> {
        match ip {
            IpAddr::V4(a) => Some(a.octets()[1] as u32),
            IpAddr::V6(_) => None,
        }
    }

    #[test]
    fn counts_are_running_totals() {
        let mut s = Store::new(CFG);
        s.announce(&up(1, 1, "127.1.0.1", false, Event::Started), 0, &pid_of, 0)
            .unwrap();
        s.announce(&up(1, 2, "127.1.0.2", true, Event::Started), 0, &pid_of, 0)
            .unwrap();
        assert_eq!(
            s.counts(&InfoHash([1; 20])),
            ScrapeCounts {
                complete: 1,
                downloaded: 0,
                incomplete: 1
            }
        );
        s.announce(
            &up(1, 1, "127.1.0.1", true, Event::Completed),
            1,
            &pid_of,
            0,
        )
        .unwrap();
        assert_eq!(
            s.counts(&InfoHash([1; 20])),
            ScrapeCounts {
                complete: 2,
                downloaded: 1,
                incomplete: 0
            }
        );
        // A repeated `completed` does not count twice.
        s.announce(
            &up(1, 1, "127.1.0.1", true, Event::Completed),
            2,
            &pid_of,
            0,
        )
        .unwrap();
        assert_eq!(s.counts(&InfoHash([1; 20])).downloaded, 1);
        assert_eq!(
            s.announce(&up(1, 2, "127.1.0.2", true, Event::Stopped), 3, &pid_of, 0),
            Ok(Outcome::Removed)
        );
        assert_eq!(
            s.counts(&InfoHash([1; 20])),
            ScrapeCounts {
                complete: 1,
                downloaded: 1,
                incomplete: 0
            }
        );
        assert_eq!(s.peer_count(), 1);
    }

    #[test]
    fn caps_have_defined_behaviour() {
        let mut s = Store::new(CFG);
        for p in 1..=3 {
            assert_eq!(
                s.announce(&up(1, p, "127.1.0.1", false, Event::None), 0, &pid_of, 0),
                Ok(Outcome::Kept)
            );
        }
        assert_eq!(
            s.announce(&up(1, 4, "127.1.0.4", false, Event::None), 0, &pid_of, 0),
            Ok(Outcome::SwarmFull)
        );
        // A known peer may still announce in a full swarm.
        assert_eq!(
            s.announce(&up(1, 3, "127.1.0.3", true, Event::None), 0, &pid_of, 0),
            Ok(Outcome::Kept)
        );
        s.announce(&up(2, 1, "127.1.0.1", false, Event::None), 0, &pid_of, 0)
            .unwrap();
        assert_eq!(
            s.announce(&up(3, 1, "127.1.0.1", false, Event::None), 0, &pid_of, 0),
            Err(StoreError::TooManySwarms(2))
        );
        assert_eq!(s.swarm_count(), 2);
        assert_eq!(s.peer_count(), 4);
        // `stopped` for an unknown torrent creates nothing.
        assert_eq!(
            s.announce(&up(4, 1, "127.1.0.1", false, Event::Stopped), 0, &pid_of, 0),
            Ok(Outcome::Removed)
        );
        assert_eq!(s.swarm_count(), 2);
    }

    #[test]
    fn peers_expire() {
        let mut s = Store::new(CFG);
        s.announce(&up(1, 1, "127.1.0.1", false, Event::None), 0, &pid_of, 0)
            .unwrap();
        s.announce(&up(1, 2, "127.1.0.2", false, Event::None), 50, &pid_of, 0)
            .unwrap();
        let mut out = Vec::new();
        let me = PeerId([9; 20]);
        let addr: SocketAddr = "127.1.0.9:1".parse().unwrap();
        s.select(
            &SelectRequest {
                info_hash: &InfoHash([1; 20]),
                me: &me,
                me_addr: addr,
                me_seeder: false,
                own: Some(1),
                cost: &|_| None,
                ranked: true,
                want: 10,
                policy: &Policy::default(),
                now: 120,
            },
            &mut SplitMix64(1),
            &mut out,
        );
        assert_eq!(out.len(), 1, "the peer past its timeout is not handed out");
        assert_eq!(s.expire(120), 1);
        assert_eq!(s.expire(200), 1);
        assert_eq!(s.swarm_count(), 0);
        assert_eq!(s.peer_count(), 0);
    }

    #[test]
    fn selection_ranks_filters_and_regroups() {
        let mut s = Store::new(StoreConfig {
            max_peers_per_swarm: 100,
            ..CFG
        });
        for (p, ip, seeder) in [
            (1, "127.3.0.1", true),
            (2, "127.2.0.1", false),
            (3, "127.1.0.1", false),
            (4, "127.1.0.2", true),
        ] {
            s.announce(&up(1, p, ip, seeder, Event::None), 0, &pid_of, 0)
                .unwrap();
        }
        s.announce(&up(1, 5, "[::1]", false, Event::None), 0, &pid_of, 0)
            .unwrap();
        let h = InfoHash([1; 20]);
        let cost = |p: PidIdx| Some(p as f64);
        let mut out = Vec::new();
        let me = PeerId([3; 20]);
        let me_addr: SocketAddr = "127.1.0.1:6881".parse().unwrap();
        s.select(
            &SelectRequest {
                info_hash: &h,
                me: &me,
                me_addr,
                me_seeder: false,
                own: Some(1),
                cost: &cost,
                ranked: true,
                want: 10,
                policy: &Policy { random_share: 0.0 },
                now: 1,
            },
            &mut SplitMix64(3),
            &mut out,
        );
        let ids: Vec<u8> = out.iter().map(|p| p.peer_id.0[0]).collect();
        assert_eq!(
            ids,
            [4, 2, 1],
            "own PID, then by cost; never me, never IPv6 for an IPv4 announcer"
        );
        out.clear();
        s.select(
            &SelectRequest {
                info_hash: &h,
                me: &PeerId([4; 20]),
                me_addr: "127.1.0.2:1".parse().unwrap(),
                me_seeder: true,
                own: Some(1),
                cost: &cost,
                ranked: true,
                want: 10,
                policy: &Policy { random_share: 0.0 },
                now: 1,
            },
            &mut SplitMix64(3),
            &mut out,
        );
        assert!(out.iter().all(|p| !p.seeder), "a seeder gets no seeders");
        // A new map generation moves 127.2.x into PID 9: it now ranks last.
        let moved = |ip: IpAddr| {
            if ip.to_string().starts_with("127.2.") {
                Some(9)
            } else {
                pid_of(ip)
            }
        };
        s.announce(&up(1, 3, "127.1.0.1", false, Event::None), 2, &moved, 1)
            .unwrap();
        out.clear();
        s.select(
            &SelectRequest {
                info_hash: &h,
                me: &me,
                me_addr,
                me_seeder: false,
                own: Some(1),
                cost: &cost,
                ranked: true,
                want: 10,
                policy: &Policy { random_share: 0.0 },
                now: 2,
            },
            &mut SplitMix64(3),
            &mut out,
        );
        assert_eq!(
            out.iter().map(|p| p.peer_id.0[0]).collect::<Vec<_>>(),
            [4, 1, 2]
        );
    }
}
