//! The tracker's logic with no I/O: announces and scrapes in, bencoded answers out, over a
//! sharded swarm store and, in head mode, the ALTO maps of the head's PID. The handlers
//! (`http`, `udp`) feed it bytes and addresses; the clock (milliseconds) and randomness
//! come in. In head mode, how many peers of other PIDs a member of the head's PID is
//! handed is the locality policy's (`alto_locality::policy`, `docs/locality.md`), from
//! the progress the members' announces report.

use crate::protocol::announce::{AnnounceRequest, AnnounceResponse, ResponsePeer};
use crate::protocol::bencode;
use crate::protocol::scrape::{self, ScrapeCounts};
use crate::protocol::udp;
use crate::protocol::{Event, InfoHash, PeerId};
use crate::store::{
    Budget, Outcome, PeerKey, PeerUpdate, SelectRequest, Store, StoreConfig, StoreError, StoredPeer,
};
use alto_locality::policy::{head_quota, spread, LocalityConfig};
use alto_locality::rank::{Policy, Random};
use alto_locality::Sample;
use alto_model::addr::{canonical, Prefix};
use alto_model::{InformationBase, NetworkMap, PidIdx};
use std::collections::hash_map::RandomState;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

/// Settings of a tracker; every field has a default suited to a PID Head.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// `interval` sent to clients, seconds.
    pub interval: u32,
    /// `min interval` sent to clients, seconds.
    pub min_interval: u32,
    /// A peer is dropped after this many intervals without an announce.
    pub peer_timeout_intervals: u32,
    /// Peers sent when the client gives no `numwant`.
    pub default_numwant: usize,
    /// Most peers sent, whatever `numwant` says.
    pub max_numwant: usize,
    /// Most torrents tracked; an announce for a new one beyond it gets a failure reason.
    pub max_swarms: usize,
    /// Most peers kept over all torrents; an announce of a new peer beyond it gets a
    /// failure reason.
    pub max_peers: usize,
    /// Most peers kept per torrent; a new peer beyond it gets peers and a warning, but is
    /// not kept.
    pub max_peers_per_swarm: usize,
    /// Most peers one source address (an IPv6 /64 counts as one) holds over all torrents;
    /// an announce of a new peer beyond it gets a failure reason. The address is the peer's
    /// as recorded, so that of `ip` from a trusted source.
    pub max_peers_per_source: usize,
    /// Most info hashes in one scrape (over UDP never more than
    /// [`udp::MAX_SCRAPE`], 74, as BEP 15 says).
    pub max_scrape: usize,
    /// Longest query string accepted (longer gets HTTP 414).
    pub max_query_bytes: usize,
    /// Time an HTTP client has to send a whole request head, also the idle keep-alive
    /// timeout, milliseconds.
    pub header_read_timeout_ms: u64,
    /// HTTP connections open at once; at this many the tracker stops accepting.
    pub max_connections: usize,
    /// The ranking policy.
    pub policy: Policy,
    /// The locality policy for members of the head's PID.
    pub locality: LocalityConfig,
    /// Sources whose `ip` parameter is believed.
    pub trusted_ip_sources: Vec<Prefix>,
    /// Proxies whose `X-Forwarded-For` (right-most entry) is believed.
    pub trusted_proxies: Vec<Prefix>,
    /// Store shards (locks), to spread announces over cores.
    pub shards: usize,
    /// Announce answers kept for inspection (0: none), newest last.
    pub journal: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval: 1800,
            min_interval: 60,
            peer_timeout_intervals: 2,
            default_numwant: 50,
            max_numwant: 200,
            max_swarms: 1_000_000,
            max_peers: 1_000_000,
            max_peers_per_swarm: 10_000,
            max_peers_per_source: 1_000,
            max_scrape: 64,
            max_query_bytes: 4096,
            header_read_timeout_ms: 10_000,
            max_connections: 1024,
            policy: Policy::default(),
            locality: LocalityConfig::default(),
            trusted_ip_sources: Vec::new(),
            trusted_proxies: Vec::new(),
            shards: 16,
            journal: 0,
        }
    }
}

/// The ALTO view of a head: the network map, its PID, and that PID's cost row.
pub struct HeadMaps {
    /// Bumped whenever the network map changes; swarms re-group their peers by it.
    pub generation: u64,
    /// The head's PID.
    pub own: PidIdx,
    /// The network map and the head's cost row, as an information base for ECS answers.
    pub base: InformationBase,
    row: Vec<f64>,
}

impl HeadMaps {
    /// Maps for a head of PID `own`, with `row` the numerical `routingcost` from `own` to
    /// each PID (as in the cost map's row).
    pub fn new(generation: u64, network: NetworkMap, own: PidIdx, row: Vec<(PidIdx, f64)>) -> Self {
        let mut dense = vec![f64::NAN; network.pids().len()];
        for &(d, c) in &row {
            if let Some(slot) = dense.get_mut(d as usize) {
                *slot = c;
            }
        }
        let mut rows = vec![Vec::new(); network.pids().len()];
        rows[own as usize] = row;
        let costs = alto_model::CostMap::from_rows(alto_model::cost::ROUTINGCOST, &network, rows);
        let base = InformationBase::new(network, vec![costs])
            .expect("routingcost over its own network map");
        HeadMaps {
            generation,
            own,
            base,
            row: dense,
        }
    }

    /// The network map.
    pub fn network(&self) -> &NetworkMap {
        self.base.network_map()
    }

    /// The cost from the head's PID to `dst`.
    pub fn cost(&self, dst: PidIdx) -> Option<f64> {
        self.row.get(dst as usize).copied().filter(|c| !c.is_nan())
    }
}

/// Counters of the tracker.
#[derive(Debug, Default)]
pub struct Stats {
    /// Announces answered with peers.
    pub announces: AtomicU64,
    /// Scrapes answered.
    pub scrapes: AtomicU64,
    /// Requests answered with a failure reason or a BEP 15 error.
    pub failures: AtomicU64,
    /// Peers handed out.
    pub peers_sent: AtomicU64,
    /// Of those, peers in the announcer's PID.
    pub peers_sent_same_pid: AtomicU64,
    /// UDP connects answered.
    pub udp_connects: AtomicU64,
}

impl Stats {
    /// Requests answered: announces, scrapes and failures.
    pub fn requests(&self) -> u64 {
        [&self.announces, &self.scrapes, &self.failures]
            .iter()
            .map(|c| c.load(Relaxed))
            .sum()
    }
}

/// One announce answer, as kept in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer's address.
    pub announcer: SocketAddr,
    /// The peers handed out, in order.
    pub peers: Vec<SocketAddr>,
}

/// A swarm member learnt from another PID's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForeignPeer {
    /// Where to reach it.
    pub addr: SocketAddr,
    /// Its PID in the head's network map.
    pub pid: Option<PidIdx>,
    /// Whether it has the whole torrent.
    pub seeder: bool,
}

/// A PID's head as the head directory lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownHead {
    /// Its PID in the head's network map.
    pub pid: PidIdx,
    /// Its address.
    pub addr: IpAddr,
    /// Where it lists its swarms' members.
    pub members: String,
    /// Since when it has been head (RFC 3339 UTC: sorts in time order), if the directory
    /// says.
    pub since: Option<String>,
}

/// An announce, HTTP or UDP, as the tracker records it.
struct Announced {
    info_hash: InfoHash,
    peer_id: PeerId,
    addr: SocketAddr,
    event: Event,
    /// Its figures, with the time of the announce.
    sample: Sample,
    /// Peers wanted.
    want: usize,
}

/// What an announce gets: the peers handed out, the swarm's counts, and a warning.
struct Selected {
    peers: Vec<ResponsePeer>,
    counts: ScrapeCounts,
    warning: Option<String>,
}

/// The failure reason of a member's tracker (see [`Tracker::set_member`]).
pub const NOT_HEAD: &str = "this tracker is not its PID's head: ask the ALTO server's pid-heads";

/// Seconds a list of other heads' members is used before it is asked for again.
pub const FOREIGN_TTL_SECS: u64 = 10;

/// Seconds after its last announce that a peer is dropped.
fn peer_timeout_secs(config: &TrackerConfig) -> u64 {
    config.interval as u64 * config.peer_timeout_intervals.max(1) as u64
}

/// A tracker: store shards, optional head maps, settings.
pub struct Tracker {
    foreign: Mutex<std::collections::HashMap<InfoHash, (u64, Vec<ForeignPeer>)>>,
    wanted: Mutex<std::collections::HashSet<InfoHash>>,
    /// Told when a torrent becomes wanted, so the shell that asks other heads wakes only then.
    wanted_added: tokio::sync::Notify,
    /// Told when other heads' members of a torrent have been stored.
    foreign_stored: tokio::sync::Notify,
    heads: RwLock<Vec<KnownHead>>,
    journal: Mutex<std::collections::VecDeque<JournalEntry>>,
    config: TrackerConfig,
    shards: Vec<Mutex<Store>>,
    /// The totals every shard counts against.
    budget: Arc<Budget>,
    maps: RwLock<Option<Arc<HeadMaps>>>,
    member: std::sync::atomic::AtomicBool,
    own_client: RwLock<Option<IpAddr>>,
    tracker_id: Vec<u8>,
    connection_ids: udp::ConnectionIds<RandomState>,
    /// The counters.
    pub stats: Stats,
}

impl Tracker {
    /// A tracker in plain mode (random peer selection) until head maps are set.
    pub fn new(config: TrackerConfig) -> Self {
        let shards = config.shards.max(1);
        let store_config = StoreConfig {
            max_swarms: config.max_swarms,
            max_peers: config.max_peers,
            max_peers_per_swarm: config.max_peers_per_swarm,
            max_peers_per_source: config.max_peers_per_source,
            peer_timeout_secs: peer_timeout_secs(&config),
        };
        // One budget over all shards, so that the caps are exact however the info hashes
        // fall into shards.
        let budget = Arc::new(Budget::new(&store_config, shards));
        let id: u64 = std::hash::BuildHasher::hash_one(&RandomState::new(), 0u8);
        Tracker {
            foreign: Mutex::new(std::collections::HashMap::new()),
            wanted: Mutex::new(std::collections::HashSet::new()),
            wanted_added: tokio::sync::Notify::new(),
            foreign_stored: tokio::sync::Notify::new(),
            heads: RwLock::new(Vec::new()),
            journal: Mutex::new(std::collections::VecDeque::with_capacity(config.journal)),
            shards: (0..shards)
                .map(|_| Mutex::new(Store::sharing(store_config, budget.clone())))
                .collect(),
            budget,
            maps: RwLock::new(None),
            member: std::sync::atomic::AtomicBool::new(false),
            own_client: RwLock::new(None),
            tracker_id: format!("{id:016x}").into_bytes(),
            connection_ids: udp::ConnectionIds::new(RandomState::new(), 60),
            stats: Stats::default(),
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// In join mode: whether this tracker is a mere member of its PID. A member's tracker
    /// refuses announces, so that a client still announcing to a head that stepped down
    /// learns it and asks the ALTO server for the new one.
    pub fn set_member(&self, member: bool) {
        self.member.store(member, Relaxed);
    }

    /// In join mode: the address of the BitTorrent client this tracker belongs to. Before
    /// any member's upload is measured, that client is its PID's gateway (the locality
    /// policy's rule 3, `docs/locality.md`).
    pub fn set_own_client(&self, ip: IpAddr) {
        *self.own_client.write().expect("own client lock") = Some(ip);
    }

    /// Installs (or replaces) the head maps: from now on peer lists are ranked.
    pub fn set_maps(&self, maps: HeadMaps) {
        *self.maps.write().expect("maps lock") = Some(Arc::new(maps));
    }

    /// The head maps, if any.
    pub fn maps(&self) -> Option<Arc<HeadMaps>> {
        self.maps.read().expect("maps lock").clone()
    }

    /// As head: the fastest download measured among its PID's members in the swarm of `h`
    /// (of the family of `v6`) at `now_ms`, bytes per second; 0 when not known.
    pub fn own_pid_peak_bps(&self, h: &InfoHash, v6: bool, now_ms: u64) -> f64 {
        let Some(maps) = self.maps() else {
            return 0.0;
        };
        let mut shard = self.shard(h).lock().expect("shard lock");
        shard
            .summary(h, Some(maps.own), v6, now_ms, &self.config.locality)
            .map_or(0.0, |s| s.peak_bps)
    }

    /// Drops the head maps: the tracker steps down to plain mode.
    pub fn clear_maps(&self) {
        *self.maps.write().expect("maps lock") = None;
        self.heads.write().expect("heads lock").clear();
        self.foreign.lock().expect("foreign lock").clear();
    }

    /// Sets every PID's head as the head directory lists them, cheapest PIDs first (by the
    /// head's own cost row).
    pub fn set_heads(&self, heads: Vec<KnownHead>) {
        *self.heads.write().expect("heads lock") = heads;
    }

    /// Every PID's head, this one's included, as last read from the head directory.
    pub fn heads(&self) -> Vec<KnownHead> {
        self.heads.read().expect("heads lock").clone()
    }

    /// The other PIDs' heads (PID, member-list URL), cheapest first.
    pub fn other_heads(&self) -> Vec<(PidIdx, String)> {
        let own = self.maps().map(|m| m.own);
        self.heads
            .read()
            .expect("heads lock")
            .iter()
            .filter(|h| Some(h.pid) != own)
            .map(|h| (h.pid, h.members.clone()))
            .collect()
    }

    /// Torrents whose swarms here were too small to fill an answer, since the last call.
    pub fn take_wanted(&self) -> Vec<InfoHash> {
        self.wanted.lock().expect("wanted lock").drain().collect()
    }

    /// Resolves once a torrent has become wanted since the last wait (a wake-up is kept if
    /// nobody waits at the time).
    pub async fn wanted_added(&self) {
        self.wanted_added.notified().await
    }

    /// Stores the members other heads reported for a torrent, cheapest PIDs first.
    pub fn set_foreign(&self, h: InfoHash, peers: Vec<ForeignPeer>, now: u64) {
        self.foreign
            .lock()
            .expect("foreign lock")
            .insert(h, (now, peers));
        self.foreign_stored.notify_one();
    }

    /// Resolves once other heads' members have been stored since the last wait (a wake-up is
    /// kept if nobody waits at the time).
    pub async fn foreign_stored(&self) {
        self.foreign_stored.notified().await
    }

    fn shard(&self, h: &InfoHash) -> &Mutex<Store> {
        &self.shards[h.0[0] as usize % self.shards.len()]
    }

    /// The address a request speaks for: the `ip` parameter if `source` is trusted for it,
    /// else `source`.
    pub fn client_ip(&self, claimed: Option<IpAddr>, source: IpAddr) -> IpAddr {
        match claimed {
            Some(ip)
                if self
                    .config
                    .trusted_ip_sources
                    .iter()
                    .any(|p| p.contains(source)) =>
            {
                ip
            }
            _ => source,
        }
    }

    /// Answers an HTTP announce from `source` (already the trusted source address) at
    /// `now_ms` (milliseconds).
    pub fn announce(
        &self,
        req: &AnnounceRequest,
        source: IpAddr,
        now_ms: u64,
        rng: &mut impl Random,
        out: &mut Vec<u8>,
    ) {
        if self.member.load(Relaxed) {
            return self.failure(NOT_HEAD, out);
        }
        let ip = canonical(self.client_ip(req.ip, source));
        let announced = Announced {
            info_hash: req.info_hash,
            peer_id: req.peer_id,
            addr: SocketAddr::new(ip, req.port),
            event: req.event,
            sample: Sample {
                at_ms: now_ms,
                downloaded: req.downloaded,
                uploaded: req.uploaded,
                left: req.left,
            },
            want: req
                .numwant
                .map_or(self.config.default_numwant, |n| n as usize)
                .min(self.config.max_numwant),
        };
        match self.record_and_select(&announced, rng) {
            Ok(Selected {
                peers,
                counts,
                warning,
            }) => {
                let resp = AnnounceResponse {
                    interval: self.config.interval,
                    min_interval: self.config.min_interval,
                    complete: counts.complete,
                    incomplete: counts.incomplete,
                    tracker_id: Some(self.tracker_id.clone()),
                    warning,
                    peers,
                };
                resp.encode(req.compact, req.no_peer_id, out);
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Relaxed);
                bencode::failure(&e.to_string(), out);
            }
        }
    }

    /// Records an announce and picks peers; the error becomes the failure reason.
    ///
    /// In head mode, a member of the head's PID gets its PID's peers and as many peers of
    /// other PIDs as the locality policy gives it ([`head_quota`]): from this store's other
    /// PIDs first, then other heads' members, cheapest PIDs first, at most half from one PID.
    fn record_and_select(
        &self,
        a: &Announced,
        rng: &mut impl Random,
    ) -> Result<Selected, StoreError> {
        let now_ms = a.sample.at_ms;
        let now = now_ms / 1000;
        let maps = self.maps();
        let pid_of = |ip: IpAddr| maps.as_ref().and_then(|m| m.network().pid_of(ip));
        let generation = maps.as_ref().map_or(0, |m| m.generation);
        let own = pid_of(a.addr.ip());
        let same_head_pid = maps.as_ref().is_some_and(|m| own == Some(m.own));
        let cost = |p: PidIdx| {
            if same_head_pid {
                maps.as_ref().and_then(|m| m.cost(p))
            } else {
                None
            }
        };
        let seeder = a.sample.left == 0;
        let update = PeerUpdate {
            info_hash: a.info_hash,
            peer_id: a.peer_id,
            addr: a.addr,
            seeder,
            event: a.event,
            sample: a.sample,
        };
        let key = PeerKey::new(a.peer_id, a.addr);
        let mut shard = self.shard(&a.info_hash).lock().expect("store lock");
        let outcome = shard.announce(&update, now, &pid_of, generation)?;
        let mut peers = Vec::with_capacity(a.want.min(64));
        if outcome != Outcome::Removed {
            let req = SelectRequest {
                info_hash: &a.info_hash,
                me: &a.peer_id,
                me_addr: a.addr,
                me_seeder: seeder,
                own,
                cost: &cost,
                ranked: maps.is_some(),
                want: a.want,
                policy: &self.config.policy,
                now,
            };
            shard.select(&req, rng, &mut peers);
        }
        // How many peers of other PIDs this member gets: the locality policy's, for members
        // of the head's PID; as many as fit for anyone else.
        let quota = if same_head_pid && outcome != Outcome::Removed {
            let own_client = *self.own_client.read().expect("own client lock");
            let summary = shard.summary(
                &a.info_hash,
                own,
                a.addr.is_ipv6(),
                now_ms,
                &self.config.locality,
            );
            let progress = shard.progress(&a.info_hash, &key);
            match (summary, progress) {
                (Some(s), Some(p)) => head_quota(
                    &self.config.locality,
                    &s,
                    &key,
                    &p,
                    own_client == Some(a.addr.ip()),
                    a.want,
                    now_ms,
                ),
                // Not kept (the swarm is full): what a newcomer gets.
                _ => self.config.locality.random_quota(a.want),
            }
        } else {
            a.want
        };
        let counts = shard.counts(&a.info_hash);
        drop(shard);
        let (local, mut foreign): (Vec<StoredPeer>, Vec<StoredPeer>) = peers
            .into_iter()
            .partition(|p| own.is_some() && pid_of(p.addr.ip()) == own);
        // At most half from one PID (the list is in ranked order, so it is kept).
        let net = maps.as_ref().map(|m| m.network());
        if let Some(net) = net.filter(|_| foreign.len() > quota) {
            let addrs: Vec<SocketAddr> = foreign.iter().map(|p| p.addr).collect();
            let kept = spread(net, &addrs, quota);
            foreign.retain(|p| kept.contains(&p.addr));
        }
        foreign.truncate(quota);
        let mut peers: Vec<ResponsePeer> = local
            .iter()
            .chain(&foreign)
            .map(|p| ResponsePeer {
                addr: p.addr,
                peer_id: Some(p.peer_id),
            })
            .collect();
        if maps.is_some() && outcome != Outcome::Removed && foreign.len() < quota {
            let room = (quota - foreign.len()).min(a.want.saturating_sub(peers.len()));
            self.add_foreign(a, seeder, room, net, &mut peers);
        }
        self.stats.announces.fetch_add(1, Relaxed);
        self.stats.peers_sent.fetch_add(peers.len() as u64, Relaxed);
        if own.is_some() {
            let same = peers.iter().filter(|p| pid_of(p.addr.ip()) == own).count();
            self.stats
                .peers_sent_same_pid
                .fetch_add(same as u64, Relaxed);
        }
        if self.config.journal > 0 {
            let mut j = self.journal.lock().expect("journal lock");
            if j.len() == self.config.journal {
                j.pop_front();
            }
            j.push_back(JournalEntry {
                info_hash: a.info_hash,
                announcer: a.addr,
                peers: peers.iter().map(|p| p.addr).collect(),
            });
        }
        let warning = (outcome == Outcome::SwarmFull).then(|| {
            format!(
                "the swarm is full ({} peers): you were not added",
                self.config.max_peers_per_swarm
            )
        });
        Ok(Selected {
            peers,
            counts,
            warning,
        })
    }

    /// Adds up to `room` members other heads reported (cheapest PIDs first, at most half
    /// from one PID) to `peers`. A list older than [`FOREIGN_TTL_SECS`], or none, is asked
    /// for again; the old one serves meanwhile.
    fn add_foreign(
        &self,
        a: &Announced,
        seeder: bool,
        room: usize,
        net: Option<&NetworkMap>,
        peers: &mut Vec<ResponsePeer>,
    ) {
        let now = a.sample.at_ms / 1000;
        let (candidates, fresh): (Vec<SocketAddr>, bool) = {
            let cache = self.foreign.lock().expect("foreign lock");
            match cache.get(&a.info_hash) {
                Some((at, list)) => (
                    list.iter()
                        .filter(|f| f.addr != a.addr && !(seeder && f.seeder))
                        .filter(|f| !peers.iter().any(|p| p.addr == f.addr))
                        .map(|f| f.addr)
                        .collect(),
                    now < at + FOREIGN_TTL_SECS,
                ),
                None => (Vec::new(), false),
            }
        };
        if !fresh && self.wanted.lock().expect("wanted lock").insert(a.info_hash) {
            self.wanted_added.notify_one();
        }
        let picked = match net {
            Some(net) => spread(net, &candidates, room),
            None => candidates.into_iter().take(room).collect(),
        };
        peers.extend(picked.into_iter().map(|addr| ResponsePeer {
            addr,
            peer_id: None,
        }));
    }

    /// Answers an HTTP scrape (BEP 48).
    pub fn scrape(&self, query: &[u8], out: &mut Vec<u8>) {
        match scrape::parse(query, self.config.max_scrape) {
            Ok(hashes) => {
                let mut files: Vec<(InfoHash, ScrapeCounts)> =
                    hashes.iter().map(|h| (*h, self.counts(h))).collect();
                self.stats.scrapes.fetch_add(1, Relaxed);
                scrape::encode(&mut files, out);
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Relaxed);
                bencode::failure(&e.to_string(), out);
            }
        }
    }

    /// Counts of one torrent.
    pub fn counts(&self, h: &InfoHash) -> ScrapeCounts {
        self.shard(h).lock().expect("store lock").counts(h)
    }

    /// The live members of a torrent.
    pub fn members(&self, h: &InfoHash, now: u64) -> Vec<StoredPeer> {
        self.shard(h).lock().expect("store lock").members(h, now)
    }

    /// Answers a UDP packet (BEP 15) from `src` at `now_ms` (milliseconds); `out` gets the
    /// response (always one).
    pub fn udp(
        &self,
        packet: &[u8],
        src: SocketAddr,
        now_ms: u64,
        rng: &mut impl Random,
        out: &mut Vec<u8>,
    ) {
        let now = now_ms / 1000;
        let src = SocketAddr::new(canonical(src.ip()), src.port());
        let fail = |tid: u32, msg: &str, out: &mut Vec<u8>| {
            self.stats.failures.fetch_add(1, Relaxed);
            udp::encode_error(tid, msg, out);
        };
        match udp::parse(packet, self.config.max_scrape) {
            Err(e) => fail(e.transaction_id.unwrap_or(0), &e.message, out),
            Ok(udp::Request::Connect { transaction_id }) => {
                self.stats.udp_connects.fetch_add(1, Relaxed);
                udp::encode_connect(transaction_id, self.connection_ids.issue(src, now), out);
            }
            Ok(udp::Request::Announce(a)) => {
                if !self.connection_ids.check(a.connection_id, src, now) {
                    return fail(a.transaction_id, "unknown or expired connection id", out);
                }
                let claimed = (a.ip != 0).then(|| IpAddr::from(std::net::Ipv4Addr::from(a.ip)));
                let ip = canonical(self.client_ip(claimed, src.ip()));
                let want = if a.num_want < 0 {
                    self.config.default_numwant
                } else {
                    a.num_want as usize
                }
                .min(self.config.max_numwant);
                let announced = Announced {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    addr: SocketAddr::new(ip, a.port),
                    event: a.event,
                    sample: Sample {
                        at_ms: now_ms,
                        downloaded: a.downloaded,
                        uploaded: a.uploaded,
                        left: a.left,
                    },
                    want,
                };
                match self.record_and_select(&announced, rng) {
                    Ok(Selected { peers, counts, .. }) => {
                        let addrs: Vec<SocketAddr> = peers.iter().map(|p| p.addr).collect();
                        udp::encode_announce(
                            a.transaction_id,
                            self.config.interval,
                            counts.incomplete,
                            counts.complete,
                            &addrs,
                            out,
                        );
                    }
                    Err(e) => fail(a.transaction_id, &e.to_string(), out),
                }
            }
            Ok(udp::Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            }) => {
                if !self.connection_ids.check(connection_id, src, now) {
                    return fail(transaction_id, "unknown or expired connection id", out);
                }
                let counts: Vec<(u32, u32, u32)> = info_hashes
                    .iter()
                    .map(|h| {
                        let c = self.counts(h);
                        (c.complete, c.downloaded, c.incomplete)
                    })
                    .collect();
                self.stats.scrapes.fetch_add(1, Relaxed);
                udp::encode_scrape(transaction_id, &counts, out);
            }
        }
    }

    /// The journal of recent answers (empty unless `journal` is set), oldest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.journal
            .lock()
            .expect("journal lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Drops expired peers everywhere, and other heads' member lists a peer timeout old
    /// (their torrents are no longer asked for); returns how many peers went.
    pub fn expire(&self, now: u64) -> usize {
        let timeout = peer_timeout_secs(&self.config);
        self.foreign
            .lock()
            .expect("foreign lock")
            .retain(|_, (at, _)| now < at.saturating_add(timeout));
        self.shards
            .iter()
            .map(|s| s.lock().expect("store lock").expire(now))
            .sum()
    }

    /// Swarms and peers tracked (the caps' counters: no lock taken).
    pub fn size(&self) -> (usize, usize) {
        (self.budget.swarms(), self.budget.peers())
    }

    /// Peers kept from the source of `ip` (its /64 for IPv6), as the per-source cap counts.
    pub fn peers_from(&self, ip: IpAddr) -> usize {
        self.budget.peers_from(canonical(ip))
    }

    /// Answers a bad request with a failure reason, counting it.
    pub fn failure(&self, reason: &str, out: &mut Vec<u8>) {
        self.stats.failures.fetch_add(1, Relaxed);
        bencode::failure(reason, out);
    }
}
