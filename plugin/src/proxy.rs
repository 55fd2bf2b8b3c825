//! The local announce proxy: librqbit's only tracker, on loopback. For every announce it
//! asks the PID Head (with the client's real address and port), the torrent's original HTTP
//! and UDP trackers and, when enabled, the plugin's DHT node; it has the head rank what the
//! head did not hand out itself (through the head's endpoint cost service, RFC 7285 §11.5.1,
//! ordinal), and answers librqbit with the ranked, trimmed list and a short `min interval`,
//! so that order decides who gets librqbit's first peer slots. Which peers of other PIDs
//! librqbit gets is the locality policy's ([`alto_locality::policy::client_peers`]), from
//! the client's own progress as librqbit's announces report it: a client the head serves
//! badly reaches out by itself. `completed` and `stopped`, which librqbit never sends, go
//! upstream from here.

use crate::mapfollow::NetworkMapWatch;
use crate::rqbit::DhtNode;
use crate::upstream::Upstream;
use alto_client::AltoClient;
use alto_locality::policy::{client_peers, ClientView, LocalityConfig};
use alto_locality::tree::ElectedHead;
use alto_locality::{Links, Outreach, Progress, Sample, Service, Step};
use alto_model::messages::{EndpointFilter, InfoResourceEndpointCostMap, ReqEndpointCostMap};
use alto_model::pidhead::{HeadInfo, Role};
use alto_model::{media, CostMode, CostType};
use alto_web::{self as web, HttpResponse};
use http::StatusCode;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracker_shim::membership::{HeadFailures, Membership};
use tracker_shim::protocol::announce::{AnnounceRequest, AnnounceResponse, ResponsePeer};
use tracker_shim::protocol::{bencode, Event, InfoHash};
use tracker_shim::{RunningTracker, Tracker};

/// Settings of the proxy.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// The client's own address (it announces from there).
    pub client_ip: IpAddr,
    /// Peers handed to librqbit per announce.
    pub numwant: u32,
    /// `min interval` sent to librqbit (it re-announces that often).
    pub min_interval: u32,
    /// Time allowed to each upstream.
    pub timeout: Duration,
    /// How long to gather DHT peers per announce.
    pub dht_wait: Duration,
    /// The locality policy: peers of other PIDs for a gateway or a client that reaches out,
    /// the stall rate, the random share (`docs/locality.md`).
    pub locality: LocalityConfig,
    /// When the head does not answer or is not in the swarm: with at least this many peers
    /// in the own PID from other sources, a client not yet measured gets only the random
    /// share from other PIDs.
    pub local_enough: usize,
    /// The client's links where it knows them (its limits): a download slow for them
    /// reaches out (`docs/locality.md`, rule 2).
    pub links: Links,
}

/// Counters of the proxy.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Announces from librqbit.
    pub announces: AtomicU64,
    /// Answers from the head.
    pub head_ok: AtomicU64,
    /// Failed head announces.
    pub head_failed: AtomicU64,
    /// Answers from original trackers.
    pub originals_ok: AtomicU64,
    /// Failed original tracker announces.
    pub originals_failed: AtomicU64,
    /// Peers from the DHT.
    pub dht_peers: AtomicU64,
    /// Rankings by the head's endpoint cost service.
    pub ranked: AtomicU64,
    /// Peers of other PIDs left after a trial of reaching out that did not pay
    /// ([`alto_locality::outreach`]).
    pub left_peers: AtomicU64,
    /// Trials of reaching out begun.
    pub trials: AtomicU64,
}

/// What the proxy may do to a torrent's connections: the session hands it librqbit's.
pub trait Connections: Send + Sync {
    /// Disconnects the peers at `peers` and keeps them from coming back; how many were live.
    fn leave(&self, peers: &[SocketAddr]) -> usize;
    /// Connects again the peers at `peers` that were left; how many.
    fn requeue(&self, peers: &[SocketAddr]) -> usize;
}

#[derive(Default)]
struct Entry {
    originals: Vec<String>,
    /// The last announce sent upstream, for the events librqbit does not send.
    last: Option<AnnounceRequest>,
    /// The PID Head has been seen in this swarm (seeders are not handed to seeders, so
    /// the head's answers stop naming it once this client completes).
    head_in_swarm: bool,
    /// The client's progress, from librqbit's announces.
    progress: Progress,
    /// Whether reaching out by its links pays ([`alto_locality::outreach`]).
    outreach: Outreach,
    /// The torrent's connections, to leave peers that did not pay.
    connections: Option<Arc<dyn Connections>>,
    /// Whether the torrent is private (BEP 27: its peers come from its trackers only, never
    /// the DHT); `None` until it is registered, and librqbit may announce before that.
    private: Option<bool>,
}

/// The proxy's state, shared with the session.
pub struct Proxy {
    settings: ProxySettings,
    torrents: Mutex<HashMap<InfoHash, Entry>>,
    membership: watch::Receiver<Membership>,
    head_failures: HeadFailures,
    shim: Option<Arc<Tracker>>,
    /// Announces to the head and the original trackers.
    upstream: Upstream,
    /// A client for the head's endpoint cost service, kept while the head's URL stays.
    ecs: Mutex<Option<(String, Arc<AltoClient>)>>,
    dht: Option<DhtNode>,
    netmap: NetworkMapWatch,
    /// The counters.
    pub stats: ProxyStats,
}

impl Proxy {
    /// A proxy for the client whose tracker shim (join mode) is `shim`: it learns the head
    /// from the shim's membership, reports a failing head to it (the member then asks the
    /// ALTO server again) and, while head, reads the other PIDs' heads from it. Without a
    /// shim it asks the original trackers only.
    pub fn new(
        settings: ProxySettings,
        shim: Option<&RunningTracker>,
        dht: Option<DhtNode>,
        netmap: NetworkMapWatch,
    ) -> Self {
        Proxy {
            upstream: Upstream::new(settings.client_ip, settings.timeout),
            ecs: Mutex::new(None),
            settings,
            torrents: Mutex::new(HashMap::new()),
            membership: shim.map_or_else(
                || watch::channel(Membership::default()).1,
                |t| t.membership.clone(),
            ),
            head_failures: shim.map(|t| t.head_failures.clone()).unwrap_or_default(),
            shim: shim.map(|t| t.tracker.clone()),
            dht,
            netmap,
            stats: ProxyStats::default(),
        }
    }

    /// Remembers a torrent's original trackers, whether it is private (BEP 27: no DHT; a
    /// torrent not registered yet is treated as private), and
    /// its connections (without them, a trial of reaching out that does not pay only stops
    /// handing peers of other PIDs).
    pub fn register(
        &self,
        info_hash: InfoHash,
        originals: Vec<String>,
        private: bool,
        connections: Option<Arc<dyn Connections>>,
    ) {
        let mut t = self.torrents.lock().expect("proxy lock");
        let e = t.entry(info_hash).or_default();
        e.originals = originals;
        e.private = Some(private);
        e.connections = connections;
    }

    /// The PID's head, if known and not this client's own address being down.
    fn head(&self) -> Option<HeadInfo> {
        self.membership.borrow().head.clone()
    }

    /// Answers one announce from librqbit at `now_ms` (milliseconds).
    pub async fn announce(&self, req: &AnnounceRequest, now_ms: u64) -> Vec<u8> {
        self.stats.announces.fetch_add(1, Relaxed);
        let a = forwarded(req, self.settings.numwant);
        let (originals, private) = {
            let mut t = self.torrents.lock().expect("proxy lock");
            let e = t.entry(req.info_hash).or_default();
            e.last = Some(AnnounceRequest {
                event: Event::None,
                ..a.clone()
            });
            e.progress.record(Sample {
                at_ms: now_ms,
                downloaded: req.downloaded,
                uploaded: req.uploaded,
                left: req.left,
            });
            (e.originals.clone(), e.private != Some(false))
        };
        let me = SocketAddr::new(self.settings.client_ip, req.port);
        let head = self.head();

        let head_fut = async {
            match &head {
                Some(h) => match self.upstream.announce(&h.tracker, &a).await {
                    Ok(p) => {
                        self.stats.head_ok.fetch_add(1, Relaxed);
                        Some(p)
                    }
                    Err(e) => {
                        self.stats.head_failed.fetch_add(1, Relaxed);
                        self.head_failures.report();
                        tracing::warn!("head announce failed: {e}");
                        None
                    }
                },
                None => None,
            }
        };
        let originals_fut = async {
            let mut tasks = Vec::new();
            for url in &originals {
                let up = self.upstream.clone();
                let url = url.clone();
                let a = a.clone();
                tasks.push(tokio::spawn(async move { up.announce(&url, &a).await }));
            }
            let mut peers = Vec::new();
            for t in tasks {
                match t.await {
                    Ok(Ok(p)) => {
                        self.stats.originals_ok.fetch_add(1, Relaxed);
                        peers.extend(p);
                    }
                    Ok(Err(e)) => {
                        self.stats.originals_failed.fetch_add(1, Relaxed);
                        tracing::debug!("original tracker: {e}");
                    }
                    Err(_) => {}
                }
            }
            peers
        };
        let dht_fut = async {
            match &self.dht {
                Some(d) if !private => {
                    let p = d
                        .peers(req.info_hash.0, req.port, self.settings.dht_wait)
                        .await;
                    self.stats.dht_peers.fetch_add(p.len() as u64, Relaxed);
                    p
                }
                _ => Vec::new(),
            }
        };
        let (from_head, from_originals, from_dht) = tokio::join!(head_fut, originals_fut, dht_fut);

        let head_answered = from_head.is_some();
        let mut list: Vec<SocketAddr> = Vec::new();
        for p in from_head.unwrap_or_default() {
            if p != me && !list.contains(&p) {
                list.push(p);
            }
        }
        let mut others: Vec<SocketAddr> = Vec::new();
        for p in from_originals.into_iter().chain(from_dht) {
            if p != me && !list.contains(&p) && !others.contains(&p) && p.is_ipv4() == me.is_ipv4()
            {
                others.push(p);
            }
        }
        if others.len() > 1 {
            if let Some(h) = &head {
                others = self.rank(&h.ecs_url, me.ip(), others).await;
            }
        }
        let list = self.choose(me.ip(), req, head_answered, list, others, now_ms);
        let resp = AnnounceResponse {
            interval: self.settings.min_interval.max(60),
            min_interval: self.settings.min_interval,
            complete: 0,
            incomplete: 0,
            tracker_id: None,
            warning: None,
            peers: list
                .into_iter()
                .map(|addr| ResponsePeer {
                    addr,
                    peer_id: None,
                })
                .collect(),
        };
        let mut out = Vec::new();
        resp.encode(true, true, &mut out);
        out
    }

    /// The peers librqbit gets, by the locality policy ([`client_peers`]), from the head's
    /// answer and the other sources' peers, both in ranked order; without the network map,
    /// all of them, the head's first.
    fn choose(
        &self,
        me: IpAddr,
        req: &AnnounceRequest,
        head_answered: bool,
        from_head: Vec<SocketAddr>,
        others: Vec<SocketAddr>,
        now_ms: u64,
    ) -> Vec<SocketAddr> {
        let want = self.settings.numwant as usize;
        let net = self.netmap.borrow().clone();
        let Some((net, own)) = net.and_then(|n| n.pid_of(me).map(|own| (n, own))) else {
            let mut all = from_head;
            all.extend(others);
            all.truncate(want);
            return all;
        };
        let m = self.membership.borrow().clone();
        let head_ip = m
            .head
            .as_ref()
            .and_then(|h| alto_model::addr::parse_typed_addr(&h.endpoint));
        let cfg = &self.settings.locality;
        let is_head = m.role == Some(Role::Head);
        // As head, its own tracker knows how fast the PID's members download.
        let pid_peak = match (&self.shim, is_head) {
            (Some(t), true) => t.own_pid_peak_bps(&req.info_hash, me.is_ipv6(), now_ms),
            _ => 0.0,
        };
        let (head_in_swarm, service, step, connections) = {
            let mut t = self.torrents.lock().expect("proxy lock");
            let e = t.entry(req.info_hash).or_default();
            e.head_in_swarm |= head_ip.is_some_and(|ip| from_head.iter().any(|p| p.ip() == ip));
            let service = cfg.client_service(&e.progress, now_ms, self.settings.links, pid_peak);
            // Only a member's links' rule goes through the trial: a stall, or a head far
            // below its members, reaches out at once.
            let plain = cfg.client_service(&e.progress, now_ms, Links::default(), pid_peak);
            let by_links =
                !is_head && service == Service::Underserved && plain != Service::Underserved;
            let step = e.outreach.step(cfg, by_links, &e.progress, now_ms);
            let service = if by_links && !step.reach_out {
                Service::Lagging
            } else {
                service
            };
            (e.head_in_swarm, service, step, e.connections.clone())
        };
        self.carry_out(&step, connections.as_deref());
        let parent = if is_head {
            let foreign: Vec<SocketAddr> = from_head
                .iter()
                .chain(&others)
                .filter(|p| net.pid_of(p.ip()) != Some(own))
                .copied()
                .collect();
            self.tree_parent(&foreign)
        } else {
            None
        };
        let view = ClientView {
            net: &net,
            own,
            service,
            head: is_head,
            parent,
            head_answered,
            head_in_swarm,
            local_enough: self.settings.local_enough,
            me,
        };
        let list = client_peers(cfg, &view, &from_head, &others, want);
        if let Some(e) = self
            .torrents
            .lock()
            .expect("proxy lock")
            .get_mut(&req.info_hash)
        {
            e.outreach.handed(
                list.iter()
                    .filter(|p| net.pid_of(p.ip()) != Some(own))
                    .copied(),
            );
        }
        tracing::debug!(%me, ?m.role, ?head_ip, ?service, ?list, "peers for librqbit");
        list
    }

    /// Carries out a trial's step on the torrent's connections.
    fn carry_out(&self, step: &Step, connections: Option<&dyn Connections>) {
        if step.began_trial {
            self.stats.trials.fetch_add(1, Relaxed);
        }
        if let Some(c) = connections {
            if !step.leave.is_empty() {
                let n = c.leave(&step.leave);
                self.stats.left_peers.fetch_add(n as u64, Relaxed);
                tracing::debug!(left = n, peers = ?step.leave, "reaching out did not pay");
            }
            if !step.requeue.is_empty() {
                let n = c.requeue(&step.requeue);
                tracing::debug!(requeued = n, "reaching out again on trial");
            }
        }
    }

    /// The head's parent in the heads' distribution tree ([`alto_locality::tree`]).
    fn tree_parent(&self, foreign: &[SocketAddr]) -> Option<SocketAddr> {
        let t = self.shim.as_ref()?;
        let maps = t.maps()?;
        let heads: Vec<ElectedHead> = t
            .heads()
            .into_iter()
            .map(|h| ElectedHead {
                pid: h.pid,
                addr: h.addr,
                since: h.since,
            })
            .collect();
        alto_locality::tree::parent(maps.network(), maps.own, |p| maps.cost(p), &heads, foreign)
    }

    /// A client for the endpoint cost service at `url`, sending from the client's own
    /// address (the head ranks from the address it sees); `None` for a URL it cannot use.
    fn ecs_client(&self, url: &str) -> Option<Arc<AltoClient>> {
        let mut kept = self.ecs.lock().expect("ecs lock");
        if let Some((u, c)) = kept.as_ref() {
            if u == url {
                return Some(c.clone());
            }
        }
        let c = AltoClient::new(url).ok()?;
        let c = Arc::new(
            c.with_local_address(self.settings.client_ip)
                .with_timeout(self.settings.timeout),
        );
        *kept = Some((url.to_owned(), c.clone()));
        Some(c)
    }

    /// Orders `peers` by the head's ordinal endpoint costs from `me` (RFC 7285 §11.5.1, the
    /// ranking of §12.3), asked at `alto`, the head's endpoint cost service; on any failure
    /// they keep their order.
    async fn rank(&self, alto: &str, me: IpAddr, peers: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let Some(client) = self.ecs_client(alto) else {
            return peers;
        };
        let src = alto_model::addr::typed_addr(me);
        let req = ReqEndpointCostMap {
            cost_type: CostType::new(alto_model::cost::ROUTINGCOST, CostMode::Ordinal),
            constraints: None,
            endpoints: EndpointFilter {
                srcs: Some(vec![src.clone()]),
                dsts: Some(
                    peers
                        .iter()
                        .map(|p| alto_model::addr::typed_addr(p.ip()))
                        .collect(),
                ),
            },
        };
        let answer: InfoResourceEndpointCostMap = match client
            .post(
                alto,
                media::ENDPOINT_COST_PARAMS,
                media::ENDPOINT_COST,
                &req,
            )
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("ranking by the head: {e}");
                return peers;
            }
        };
        self.stats.ranked.fetch_add(1, Relaxed);
        let row = answer
            .endpoint_cost_map
            .get(&src)
            .cloned()
            .unwrap_or_default();
        let mut ranked: Vec<(f64, usize, SocketAddr)> = peers
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    row.get(&alto_model::addr::typed_addr(p.ip()))
                        .map_or(f64::INFINITY, |c| c.0),
                    i,
                    p,
                )
            })
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        ranked.into_iter().map(|r| r.2).collect()
    }

    /// Sends an event librqbit does not send (`completed`, `stopped`) to the head and the
    /// original trackers, with the torrent's last announced figures.
    pub async fn send_event(&self, info_hash: InfoHash, event: Event, left: Option<u64>) {
        let (last, originals) = {
            let t = self.torrents.lock().expect("proxy lock");
            match t.get(&info_hash) {
                Some(e) => (e.last.clone(), e.originals.clone()),
                None => return,
            }
        };
        let Some(mut a) = last else { return };
        a.event = event;
        if let Some(l) = left {
            a.left = l;
        }
        if event == Event::Stopped {
            a.numwant = Some(0);
        }
        let mut urls = originals;
        if let Some(h) = self.head() {
            urls.insert(0, h.tracker);
        }
        for url in urls {
            if let Err(e) = self.upstream.announce(&url, &a).await {
                tracing::debug!("{event:?} to {url}: {e}");
            }
        }
    }

    /// The torrents announced so far.
    pub fn torrents(&self) -> Vec<InfoHash> {
        self.torrents
            .lock()
            .expect("proxy lock")
            .keys()
            .copied()
            .collect()
    }
}

/// Answers librqbit's HTTP requests.
pub async fn handle(proxy: &Proxy, req: http::Request<hyper::body::Incoming>) -> HttpResponse {
    if req.uri().path() != "/announce" {
        return web::simple(
            StatusCode::NOT_FOUND,
            "text/plain",
            "the proxy only takes announces\n",
        );
    }
    let query = req.uri().query().unwrap_or("").as_bytes().to_vec();
    let body = match AnnounceRequest::parse(&query) {
        Ok(a) => proxy.announce(&a, web::clock::now_millis()).await,
        Err(e) => {
            let mut out = Vec::new();
            bencode::failure(&e.to_string(), &mut out);
            out
        }
    };
    web::simple(StatusCode::OK, "text/plain", body)
}

/// Serves the proxy on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    proxy: Arc<Proxy>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let handler = move |req, _remote| {
        let proxy = proxy.clone();
        async move { handle(&proxy, req).await }
    };
    // Only librqbit on this host talks to the proxy: the defaults bound it.
    let limits = web::Limits {
        grace: Duration::from_secs(2),
        ..web::Limits::default()
    };
    web::serve(listener, handler, shutdown, limits).await
}

/// What goes upstream for librqbit's announce `req`: its torrent, peer and figures, with
/// the proxy's `numwant` and the compact peer list the proxy reads. librqbit's `key`, a
/// tracker id and a claimed `ip` are meant for the proxy, its only tracker, and stay here
/// (the proxy announces from the client's own address).
fn forwarded(req: &AnnounceRequest, numwant: u32) -> AnnounceRequest {
    AnnounceRequest {
        compact: true,
        no_peer_id: false,
        numwant: Some(numwant),
        key: None,
        trackerid: None,
        ip: None,
        ..req.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// librqbit's announce of `info_hash` (one byte, twenty times) from port 6990.
    fn announce_of(byte: u8) -> AnnounceRequest {
        let q = format!(
            "info_hash={}&peer_id=-rQ8000-abcdefghijkl&port=6990&uploaded=0&downloaded=0\
             &left=100&event=started&compact=1",
            format!("%{byte:02X}").repeat(20)
        );
        AnnounceRequest::parse(q.as_bytes()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_private_or_unregistered_torrent_gets_no_peers_from_the_dht_nor_is_announced_there() {
        // A private DHT in which a seeder announced both torrents.
        let (_first, nodes) =
            crate::rqbit::testing::small_dht(&[[127, 1, 0, 31], [127, 1, 0, 32]]).await;
        let seeder = SocketAddr::from(([127, 1, 0, 32], 6881));
        let (public, private) = ([0x11u8; 20], [0x22u8; 20]);
        let found = crate::rqbit::testing::announce_until_found(
            &nodes[1],
            &nodes[0],
            &[public, private],
            seeder,
        )
        .await;
        assert!(found.contains(&seeder), "the DHT did not form: {found:?}");
        let held = nodes[0].look_up(private, Duration::from_millis(500)).await;
        assert!(
            held.contains(&seeder),
            "the DHT holds no peer of the private torrent: {held:?}"
        );
        let settings = ProxySettings {
            client_ip: "127.1.0.31".parse().unwrap(),
            numwant: 50,
            min_interval: 5,
            timeout: Duration::from_secs(1),
            dht_wait: Duration::from_millis(500),
            locality: LocalityConfig::default(),
            local_enough: 5,
            links: Links::default(),
        };
        let probe = nodes[1].clone();
        let proxy = Proxy::new(
            settings,
            None,
            Some(nodes[0].clone()),
            watch::channel(None).1,
        );
        let compact = [127, 1, 0, 32, 0x1a, 0xe1]; // 127.1.0.32:6881
        let has_seeder = |answer: &[u8]| answer.windows(6).any(|w| w == compact);
        // librqbit can announce a torrent before the session registers it: until then it
        // counts as private.
        let answer = proxy.announce(&announce_of(0x11), 0).await;
        assert!(
            !has_seeder(&answer),
            "an unregistered torrent got a DHT peer"
        );
        proxy.register(InfoHash(public), Vec::new(), false, None);
        proxy.register(InfoHash(private), Vec::new(), true, None);

        let answer = proxy.announce(&announce_of(0x22), 0).await;
        assert!(
            !has_seeder(&answer),
            "a private torrent's answer holds a DHT peer"
        );
        assert_eq!(proxy.stats.dht_peers.load(Relaxed), 0);
        // Nor did the proxy announce this client into the DHT for it.
        let listed = probe.peers(private, 6881, Duration::from_millis(500)).await;
        assert!(
            !listed.iter().any(|p| p.port() == 6990),
            "the private torrent was announced into the DHT: {listed:?}"
        );

        let answer = proxy.announce(&announce_of(0x11), 0).await;
        assert!(
            has_seeder(&answer),
            "the public torrent's answer lacks the DHT peer"
        );
        assert!(proxy.stats.dht_peers.load(Relaxed) > 0);
    }

    #[test]
    fn forwards_librqbits_figures_with_the_proxys_numwant_only() {
        let from_librqbit =
            b"info_hash=%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12\
            &peer_id=-rQ8000-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3\
            &event=started&compact=1&no_peer_id=1&numwant=200&key=k1&trackerid=t1&ip=10.0.0.9";
        let req = AnnounceRequest::parse(from_librqbit).unwrap();
        // The parameters the proxy sent upstream before it forwarded `AnnounceRequest`.
        assert_eq!(
            forwarded(&req, 30).to_query(),
            format!(
                "info_hash={}&peer_id=-rQ8000-abcdefghijkl&port=6881&uploaded=1&downloaded=2\
                 &left=3&compact=1&numwant=30&event=started",
                "%12".repeat(20)
            )
        );
    }
}
