//! The swarm store, with no I/O: swarms keyed by info hash, peers keyed by peer id and IP
//! address ([`PeerKey`]) and grouped by address family and PID so that ranking walks PIDs,
//! not peers. Seeder, leecher and completion counts are running totals. Peers expire after
//! a timeout. Memory is bounded by caps on swarms, on peers in all, on peers per swarm and
//! on peers per source address (an IPv6 /64 counting as one), all exact: the totals are
//! counters of a [`Budget`] that every shard of a tracker shares, so no announce counts
//! peers. Each peer keeps the progress its last announces reported (a fixed number of
//! samples), and each PID's bucket a summary of it for the locality policy
//! (`alto_locality::policy`), remade at most once per [`SUMMARY_EVERY_MS`]. The clock comes
//! in as `now` (seconds) or `now_ms`.

use crate::protocol::scrape::ScrapeCounts;
use crate::protocol::{Event, InfoHash, PeerId};
use alto_locality::policy::{pid_summary, LocalityConfig, PidSummary};
use alto_locality::rank::{self, Bucket, Policy, Random};
use alto_locality::{Progress, Sample};
use alto_model::PidIdx;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Limits of the store.
#[derive(Clone, Copy, Debug)]
pub struct StoreConfig {
    /// Most swarms kept; an announce for a new torrent beyond it is refused.
    pub max_swarms: usize,
    /// Most peers kept in all swarms; an announce of a new peer beyond it is refused.
    pub max_peers: usize,
    /// Most peers kept per swarm; a new peer beyond it gets peers but is not kept.
    pub max_peers_per_swarm: usize,
    /// Most peers one source holds over all swarms (an IPv4 address, or an IPv6 /64); an
    /// announce of a new peer beyond it is refused.
    pub max_peers_per_source: usize,
    /// Seconds after its last announce that a peer is dropped; a swarm without peers that
    /// keeps a completion count goes as long after its last announce.
    pub peer_timeout_secs: u64,
}

/// Who a peer of a swarm is: its peer id and its IP address. The port is not part of it, so
/// a client whose port changes updates its entry; an announce with the same peer id from
/// another address is another peer, so it can neither move nor (with `stopped`) remove the
/// first one. (opentracker keys peers by address and port; a peer id is only what the client
/// says it is.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerKey {
    /// The peer id.
    pub peer_id: PeerId,
    /// The IP address.
    pub ip: IpAddr,
}

impl PeerKey {
    /// The key of `peer_id` announcing for `addr`.
    pub fn new(peer_id: PeerId, addr: SocketAddr) -> Self {
        PeerKey {
            peer_id,
            ip: addr.ip(),
        }
    }
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

impl StoredPeer {
    /// Its key in the swarm.
    pub fn key(&self) -> PeerKey {
        PeerKey::new(self.peer_id, self.addr)
    }
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
    /// The peer left (`stopped`), or was not there.
    Removed,
}

/// Why an announce was refused by the store; the message is the failure reason (BEP 3) or
/// the BEP 15 error message sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store holds `max_swarms` swarms already.
    #[error("the tracker is full: it holds {0} torrents")]
    TooManySwarms(usize),
    /// The store holds `max_peers` peers already.
    #[error("the tracker is full: it holds {0} peers")]
    TooManyPeers(usize),
    /// The announcer's address (IPv6: its /64) holds `max_peers_per_source` peers already.
    #[error("too many peers from one address: at most {0} over all torrents (IPv6: per /64)")]
    TooManyFromSource(usize),
}

/// What the per-source cap counts an address as: an IPv4 address, or the /64 of an IPv6
/// one (the smallest prefix a site is given, RFC 6177), so that a host does not multiply its
/// share by picking interface identifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Source(alto_model::addr::SourceKey);

impl Source {
    fn of(ip: IpAddr) -> Self {
        Source(alto_model::addr::subscriber(ip))
    }
}

/// The totals the caps bound, shared by every shard of a store: swarms, peers, and peers
/// per source. Taking a unit fails at the cap, so the caps are exact; each costs an atomic
/// or a lock of one of a few small maps (keyed with a random hasher, since sources are the
/// clients' choice), never a scan. Only the arrival and departure of a peer or a swarm
/// touches it; a re-announce does not.
#[derive(Debug)]
pub struct Budget {
    max_swarms: usize,
    max_peers: usize,
    max_per_source: usize,
    swarms: AtomicUsize,
    peers: AtomicUsize,
    keys: RandomState,
    /// Peers per source; a source with none has no entry.
    sources: Vec<Mutex<HashMap<Source, usize>>>,
}

/// Adds one to `counter` unless it is at `max`.
fn take(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
        .is_ok()
}

impl Budget {
    /// The budget of `config`'s caps, its per-source counts split over `shards` locks.
    pub fn new(config: &StoreConfig, shards: usize) -> Self {
        Budget {
            max_swarms: config.max_swarms,
            max_peers: config.max_peers,
            max_per_source: config.max_peers_per_source,
            swarms: AtomicUsize::new(0),
            peers: AtomicUsize::new(0),
            keys: RandomState::new(),
            sources: (0..shards.max(1))
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
        }
    }

    fn sources(&self, s: &Source) -> &Mutex<HashMap<Source, usize>> {
        let i = std::hash::BuildHasher::hash_one(&self.keys, s) as usize % self.sources.len();
        &self.sources[i]
    }

    fn take_swarm(&self) -> Result<(), StoreError> {
        if take(&self.swarms, self.max_swarms) {
            Ok(())
        } else {
            Err(StoreError::TooManySwarms(self.max_swarms))
        }
    }

    fn give_swarms(&self, n: usize) {
        self.swarms.fetch_sub(n, Relaxed);
    }

    fn take_peer(&self, ip: IpAddr) -> Result<(), StoreError> {
        if !take(&self.peers, self.max_peers) {
            return Err(StoreError::TooManyPeers(self.max_peers));
        }
        let source = Source::of(ip);
        let mut counts = self.sources(&source).lock().expect("budget lock");
        let n = counts.get(&source).copied().unwrap_or(0);
        if n >= self.max_per_source {
            drop(counts);
            self.peers.fetch_sub(1, Relaxed);
            return Err(StoreError::TooManyFromSource(self.max_per_source));
        }
        counts.insert(source, n + 1);
        Ok(())
    }

    fn give_peer(&self, ip: IpAddr) {
        let source = Source::of(ip);
        if let Entry::Occupied(mut e) = self
            .sources(&source)
            .lock()
            .expect("budget lock")
            .entry(source)
        {
            if *e.get() <= 1 {
                e.remove();
            } else {
                *e.get_mut() -= 1;
            }
        }
        self.peers.fetch_sub(1, Relaxed);
    }

    /// Swarms kept, over all shards.
    pub fn swarms(&self) -> usize {
        self.swarms.load(Relaxed)
    }

    /// Peers kept, over all shards.
    pub fn peers(&self) -> usize {
        self.peers.load(Relaxed)
    }

    /// Peers kept from the source of `ip` (its /64 for IPv6), over all shards.
    pub fn peers_from(&self, ip: IpAddr) -> usize {
        let source = Source::of(ip);
        let counts = self.sources(&source).lock().expect("budget lock");
        counts.get(&source).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct PeerBucket {
    pid: Option<PidIdx>,
    v6: bool,
    peers: Vec<StoredPeer>,
    /// The locality summary of these peers, and when it was made (milliseconds); boxed, as
    /// only a head's buckets of its own PID have one.
    summary: Option<Box<(u64, PidSummary<PeerKey>)>>,
}

/// Pushes `x`, allocating room for one only when `v` has none: most swarms have one peer
/// in one bucket, and `Vec`'s first allocation is for four.
fn push_tight<T>(v: &mut Vec<T>, x: T) {
    if v.capacity() == 0 {
        v.reserve_exact(1);
    }
    v.push(x);
}

#[derive(Debug, Default)]
struct Swarm {
    /// peer → (bucket, position)
    slots: HashMap<PeerKey, (usize, usize)>,
    buckets: Vec<PeerBucket>,
    seeders: u32,
    leechers: u32,
    downloaded: u32,
    /// The map generation the buckets were made with.
    generation: u64,
    /// When the swarm may go once it has no peers (seconds): its last announce plus the
    /// peer timeout. A completion count alone does not keep it for ever.
    expires: u64,
}

impl Swarm {
    fn bucket_for(&mut self, pid: Option<PidIdx>, v6: bool) -> usize {
        match self.buckets.iter().position(|b| b.pid == pid && b.v6 == v6) {
            Some(i) => i,
            None => {
                push_tight(
                    &mut self.buckets,
                    PeerBucket {
                        pid,
                        v6,
                        peers: Vec::new(),
                        summary: None,
                    },
                );
                self.buckets.len() - 1
            }
        }
    }

    fn insert(&mut self, p: StoredPeer, pid: Option<PidIdx>) {
        let b = self.bucket_for(pid, p.addr.is_ipv6());
        push_tight(&mut self.buckets[b].peers, p);
        self.slots
            .insert(p.key(), (b, self.buckets[b].peers.len() - 1));
        if p.seeder {
            self.seeders += 1;
        } else {
            self.leechers += 1;
        }
    }

    fn remove(&mut self, key: &PeerKey) -> Option<StoredPeer> {
        let (b, i) = self.slots.remove(key)?;
        let bucket = &mut self.buckets[b].peers;
        let p = bucket.swap_remove(i);
        if let Some(moved) = bucket.get(i) {
            self.slots.insert(moved.key(), (b, i));
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
/// `me` (never a peer with its peer id; no seeders for a seeder) of the same address family
/// as `me_addr`, ranked by `policy` for the announcer's PID `own` with the cost row `cost`;
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

/// Swarms by info hash: one shard of a tracker's swarms, whose caps hold over all the shards
/// that share its [`Budget`].
#[derive(Debug)]
pub struct Store {
    config: StoreConfig,
    budget: Arc<Budget>,
    swarms: HashMap<InfoHash, Swarm>,
    peers: usize,
}

impl Store {
    /// An empty store with a budget of its own.
    pub fn new(config: StoreConfig) -> Self {
        Store::sharing(config, Arc::new(Budget::new(&config, 1)))
    }

    /// An empty store whose swarms and peers count against `budget`, which other stores
    /// share (its caps, not `config`'s, are the ones that hold).
    pub fn sharing(config: StoreConfig, budget: Arc<Budget>) -> Self {
        Store {
            config,
            budget,
            swarms: HashMap::new(),
            peers: 0,
        }
    }

    /// The budget the store counts against.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Records an announce. `pid_of` maps addresses to PIDs under map `generation`; a swarm
    /// grouped under an older generation is re-grouped first.
    ///
    /// The peer is `(peer_id, IP)` ([`PeerKey`]): a known one updates its entry (a new port
    /// included), `stopped` removes only that entry. A new peer takes a unit of each cap: a
    /// full swarm answers [`Outcome::SwarmFull`]; the other caps refuse the announce, which
    /// then changes nothing.
    pub fn announce(
        &mut self,
        u: &PeerUpdate,
        now: u64,
        pid_of: &dyn Fn(IpAddr) -> Option<PidIdx>,
        generation: u64,
    ) -> Result<Outcome, StoreError> {
        let key = PeerKey::new(u.peer_id, u.addr);
        let stopped = u.event == Event::Stopped;
        let known = match self.swarms.get_mut(&u.info_hash) {
            Some(swarm) => {
                if swarm.generation != generation {
                    swarm.regroup(pid_of, generation);
                }
                if swarm.slots.contains_key(&key) {
                    true
                } else if stopped {
                    return Ok(Outcome::Removed);
                } else if swarm.len() >= self.config.max_peers_per_swarm {
                    return Ok(Outcome::SwarmFull);
                } else {
                    self.budget.take_peer(key.ip)?;
                    false
                }
            }
            None => {
                if stopped {
                    return Ok(Outcome::Removed);
                }
                if self.config.max_peers_per_swarm == 0 {
                    return Ok(Outcome::SwarmFull);
                }
                self.budget.take_swarm()?;
                if let Err(e) = self.budget.take_peer(key.ip) {
                    self.budget.give_swarms(1);
                    return Err(e);
                }
                false
            }
        };
        let swarm = self.swarms.entry(u.info_hash).or_insert_with(|| Swarm {
            generation,
            ..Swarm::default()
        });
        let old = if known { swarm.remove(&key) } else { None };
        if stopped {
            if old.is_some() {
                self.budget.give_peer(key.ip);
                self.peers -= 1;
            }
            if swarm.len() == 0 && swarm.downloaded == 0 {
                self.swarms.remove(&u.info_hash);
                self.budget.give_swarms(1);
            }
            return Ok(Outcome::Removed);
        }
        if u.event == Event::Completed && !old.is_some_and(|o| o.seeder) {
            swarm.downloaded = swarm.downloaded.saturating_add(1);
        }
        let mut progress = old.map(|o| o.progress).unwrap_or_default();
        progress.record(u.sample);
        let expires = now.saturating_add(self.config.peer_timeout_secs);
        let p = StoredPeer {
            addr: u.addr,
            peer_id: u.peer_id,
            seeder: u.seeder,
            expires,
            progress,
        };
        swarm.insert(p, pid_of(u.addr.ip()));
        swarm.expires = expires;
        if old.is_none() {
            self.peers += 1;
        }
        Ok(Outcome::Kept)
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
        // The announcer is left out by its key: a peer with the same peer id at another
        // address is another peer (see [`PeerKey`]), and is handed out like any.
        let me_key = PeerKey::new(*me, me_addr);
        let eligible =
            |p: &StoredPeer| p.key() != me_key && p.expires > now && !(me_seeder && p.seeder);
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
    pub fn progress(&self, h: &InfoHash, key: &PeerKey) -> Option<Progress> {
        let s = self.swarms.get(h)?;
        let &(b, i) = s.slots.get(key)?;
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
    ) -> Option<PidSummary<PeerKey>> {
        let swarm = self.swarms.get_mut(h)?;
        let bucket = swarm
            .buckets
            .iter_mut()
            .find(|b| b.pid == pid && b.v6 == v6)?;
        match bucket.summary.as_deref() {
            Some((at, s)) if now_ms < at + SUMMARY_EVERY_MS => Some(s.clone()),
            _ => {
                let now = now_ms / 1000;
                let live = bucket
                    .peers
                    .iter()
                    .filter(|p| p.expires > now)
                    .map(|p| (p.key(), &p.progress));
                let s = pid_summary(cfg, live, now_ms);
                bucket.summary = Some(Box::new((now_ms, s.clone())));
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

    /// Drops expired peers, and swarms left without peers (one with a completion count once
    /// its last announce is a peer timeout old); returns how many peers went.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut gone = 0;
        let mut swarms_gone = 0;
        let budget = &self.budget;
        self.swarms.retain(|_, s| {
            let dead: Vec<PeerKey> = s
                .buckets
                .iter()
                .flat_map(|b| b.peers.iter())
                .filter(|p| p.expires <= now)
                .map(StoredPeer::key)
                .collect();
            for key in &dead {
                if s.remove(key).is_some() {
                    budget.give_peer(key.ip);
                    gone += 1;
                }
            }
            let keep = s.len() > 0 || (s.downloaded > 0 && s.expires > now);
            if !keep {
                swarms_gone += 1;
            }
            keep
        });
        self.peers -= gone;
        self.budget.give_swarms(swarms_gone);
        gone
    }

    /// Number of swarms in this store.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Number of peers over the swarms of this store.
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
        max_peers: 100,
        max_peers_per_swarm: 3,
        max_peers_per_source: 100,
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
            s.announce(&up(1, 3, "127.1.0.1", true, Event::None), 0, &pid_of, 0),
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

    /// Up to 10 peers of torrent 1 for a leecher `me` at `me_addr` in PID 1, ranked with
    /// no costs and the default policy, at `now`.
    fn pick(s: &Store, me: PeerId, me_addr: &str, now: u64) -> Vec<StoredPeer> {
        let mut out = Vec::new();
        s.select(
            &SelectRequest {
                info_hash: &InfoHash([1; 20]),
                me: &me,
                me_addr: me_addr.parse().unwrap(),
                me_seeder: false,
                own: Some(1),
                cost: &|_| None,
                ranked: true,
                want: 10,
                policy: &Policy::default(),
                now,
            },
            &mut SplitMix64(1),
            &mut out,
        );
        out
    }

    #[test]
    fn peers_expire() {
        let mut s = Store::new(CFG);
        s.announce(&up(1, 1, "127.1.0.1", false, Event::None), 0, &pid_of, 0)
            .unwrap();
        s.announce(&up(1, 2, "127.1.0.2", false, Event::None), 50, &pid_of, 0)
            .unwrap();
        let out = pick(&s, PeerId([9; 20]), "127.1.0.9:1", 120);
        assert_eq!(out.len(), 1, "the peer past its timeout is not handed out");
        assert_eq!(s.expire(120), 1);
        assert_eq!(s.expire(200), 1);
        assert_eq!(s.swarm_count(), 0);
        assert_eq!(s.peer_count(), 0);
    }

    /// Peers with one peer id at different addresses are different peers (as aquatic's load
    /// testers announce them, all with a zero id): each is handed the others, never itself.
    #[test]
    fn the_announcer_is_left_out_by_its_key_not_by_its_peer_id() {
        let mut s = Store::new(CFG);
        for ip in ["127.1.0.1", "127.1.0.2", "127.1.0.3"] {
            s.announce(&up(1, 0, ip, false, Event::None), 0, &pid_of, 0)
                .unwrap();
        }
        let out = pick(&s, PeerId([0; 20]), "127.1.0.2:6881", 1);
        let mut got: Vec<String> = out.iter().map(|p| p.addr.to_string()).collect();
        got.sort();
        assert_eq!(got, ["127.1.0.1:6881", "127.1.0.3:6881"]);
    }

    fn at(h: u8, p: u8, addr: &str, event: Event) -> PeerUpdate {
        PeerUpdate {
            addr: addr.parse().unwrap(),
            ..up(h, p, "127.0.0.1", false, event)
        }
    }

    fn addrs(s: &Store, h: u8) -> Vec<String> {
        let mut a: Vec<String> = s
            .members(&InfoHash([h; 20]), 0)
            .iter()
            .map(|p| p.addr.to_string())
            .collect();
        a.sort();
        a
    }

    #[test]
    fn should_not_let_another_address_move_or_remove_a_peer() {
        let mut s = Store::new(CFG);
        let ann = |s: &mut Store, u: PeerUpdate| s.announce(&u, 0, &pid_of, 0).unwrap();
        ann(&mut s, at(1, 1, "127.1.0.1:6881", Event::Started));
        // The same client from a new port: its entry is updated.
        ann(&mut s, at(1, 1, "127.1.0.1:7000", Event::None));
        assert_eq!(addrs(&s, 1), ["127.1.0.1:7000"]);
        // Its peer id from another address is another peer: the first stays where it is.
        assert_eq!(
            ann(&mut s, at(1, 1, "127.2.0.9:6881", Event::Started)),
            Outcome::Kept
        );
        assert_eq!(addrs(&s, 1), ["127.1.0.1:7000", "127.2.0.9:6881"]);
        // A forged `stopped` removes at most the forger's own entry.
        assert_eq!(
            ann(&mut s, at(1, 1, "127.3.0.1:7000", Event::Stopped)),
            Outcome::Removed
        );
        ann(&mut s, at(1, 1, "127.2.0.9:6881", Event::Stopped));
        assert_eq!(addrs(&s, 1), ["127.1.0.1:7000"]);
        assert_eq!(
            (s.peer_count(), s.counts(&InfoHash([1; 20])).incomplete),
            (1, 1)
        );
        // The client itself may still leave.
        ann(&mut s, at(1, 1, "127.1.0.1:7000", Event::Stopped));
        assert_eq!((s.peer_count(), s.swarm_count()), (0, 0));
    }

    #[test]
    fn caps_are_exact_over_shards_and_per_source() {
        let cfg = StoreConfig {
            max_swarms: 3,
            max_peers: 5,
            max_peers_per_swarm: 10,
            max_peers_per_source: 2,
            peer_timeout_secs: 100,
        };
        let budget = Arc::new(Budget::new(&cfg, 4));
        let mut a = Store::sharing(cfg, budget.clone());
        let mut b = Store::sharing(cfg, budget.clone());
        let ann = |s: &mut Store, u: PeerUpdate| s.announce(&u, 0, &pid_of, 0);
        // Per source: two peers from 127.1.0.1 over two shards, then no more.
        assert_eq!(
            ann(&mut a, up(1, 1, "127.1.0.1", false, Event::None)),
            Ok(Outcome::Kept)
        );
        assert_eq!(
            ann(&mut b, up(2, 1, "127.1.0.1", false, Event::None)),
            Ok(Outcome::Kept)
        );
        assert_eq!(
            ann(&mut a, up(1, 2, "127.1.0.1", false, Event::None)),
            Err(StoreError::TooManyFromSource(2))
        );
        assert_eq!(
            ann(&mut b, up(3, 1, "127.1.0.1", false, Event::None)),
            Err(StoreError::TooManyFromSource(2)),
            "a refused peer creates no swarm"
        );
        assert_eq!((budget.swarms(), budget.peers()), (2, 2));
        // A known peer still re-announces, from a new port too.
        assert_eq!(
            ann(&mut a, at(1, 1, "127.1.0.1:9", Event::None)),
            Ok(Outcome::Kept)
        );
        // IPv6 counts per /64: other interface ids are the same source, another /64 is not.
        ann(&mut a, at(1, 3, "[2001:db8:0:1::1]:1", Event::None)).unwrap();
        ann(&mut a, at(1, 4, "[2001:db8:0:1::2]:1", Event::None)).unwrap();
        assert_eq!(
            ann(&mut a, at(1, 5, "[2001:db8:0:1:ffff::3]:1", Event::None)),
            Err(StoreError::TooManyFromSource(2))
        );
        assert_eq!(budget.peers_from("2001:db8:0:1::9".parse().unwrap()), 2);
        // Swarms: exactly three over both shards.
        assert_eq!(
            ann(&mut b, up(3, 6, "127.6.0.1", false, Event::None)),
            Ok(Outcome::Kept)
        );
        assert_eq!(
            ann(&mut a, up(4, 7, "127.7.0.1", false, Event::None)),
            Err(StoreError::TooManySwarms(3))
        );
        // Peers: five in all.
        assert_eq!(
            ann(&mut b, up(3, 8, "127.8.0.1", false, Event::None)),
            Err(StoreError::TooManyPeers(5))
        );
        assert_eq!((budget.swarms(), budget.peers()), (3, 5));
        assert_eq!(a.peer_count() + b.peer_count(), 5);
        // Leaving and expiring give the units back.
        ann(&mut b, up(2, 1, "127.1.0.1", false, Event::Stopped)).unwrap();
        assert_eq!((budget.swarms(), budget.peers()), (2, 4));
        assert_eq!(
            ann(&mut a, up(4, 2, "127.1.0.1", false, Event::None)),
            Ok(Outcome::Kept)
        );
        assert_eq!(a.expire(100) + b.expire(100), 5);
        assert_eq!((budget.swarms(), budget.peers()), (0, 0));
        assert_eq!(budget.peers_from("127.1.0.1".parse().unwrap()), 0);
    }

    #[test]
    fn a_swarm_kept_for_its_completions_goes_a_peer_timeout_later() {
        let mut s = Store::new(CFG);
        s.announce(
            &up(1, 1, "127.1.0.1", true, Event::Completed),
            0,
            &pid_of,
            0,
        )
        .unwrap();
        s.announce(&up(1, 1, "127.1.0.1", true, Event::Stopped), 10, &pid_of, 0)
            .unwrap();
        assert_eq!(s.swarm_count(), 1, "kept for its completion count");
        assert_eq!(s.expire(50), 0);
        assert_eq!(s.swarm_count(), 1);
        s.expire(100);
        assert_eq!(s.swarm_count(), 0, "not for ever: it would fill max_swarms");
        assert_eq!(s.budget().swarms(), 0);
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
