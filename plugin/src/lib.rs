//! The librqbit integration: ALTO-guided peer discovery through the local PID Head.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use alto_plugin::{AltoSession, Config};
//! let config = Config::new("127.1.0.5".parse()?, "downloads".into())
//!     .alto("http://127.0.0.1:7285/directory");
//! let session = AltoSession::start(config).await?;
//! let torrent = session.add(&std::fs::read("file.torrent")?).await?;
//! torrent.wait_completed().await?;
//! session.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`rqbit`]: the only module that imports librqbit (session, torrents, per-peer bytes,
//!   torrent creation, the opt-in DHT node).
//! - [`proxy`]: the local announce proxy librqbit announces to: head, original trackers,
//!   DHT, ranking, `completed`/`stopped` upstream.
//! - [`upstream`]: HTTP and UDP tracker announces from the client's address.
//! - [`metainfo`]: taking trackers out of `.torrent` files and magnet links.
//! - This file: [`AltoSession`], which ties them to the join with the ALTO server (through
//!   the tracker shim, which serves as head when this client is elected).

pub mod metainfo;
pub mod proxy;
pub mod rqbit;
pub mod upstream;

use alto_model::pidhead::Role;
use alto_model::NetworkMap;
use proxy::{Proxy, ProxySettings};
use rqbit::{DhtNode, Rqbit, SessionSettings, TorrentInput};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracker_shim::membership::{JoinSettings, Membership};
use tracker_shim::protocol::{Event, InfoHash};
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// How long a starting session waits for the network map from its head.
const MAP_WAIT: Duration = Duration::from_secs(3);

/// Settings of an [`AltoSession`].
#[derive(Clone, Debug)]
pub struct Config {
    /// The client's address: it listens, announces and joins from there.
    pub ip: IpAddr,
    /// Peer port; 0 picks a free one.
    pub port: u16,
    /// Default download folder.
    pub output: PathBuf,
    /// The ALTO server's directory URL; `None`: original trackers only.
    pub alto: Option<String>,
    /// Port of the tracker shim this client runs (serving as head when elected); 0 picks.
    pub tracker_port: u16,
    /// DHT (opt-in): bootstrap only from these nodes.
    pub dht_bootstrap: Option<Vec<SocketAddr>>,
    /// Strict mode: librqbit connects only to peers in the cheapest PIDs (own PID and PIDs
    /// whose cost is at most this much more than the cheapest other).
    pub strict: bool,
    /// Peers handed to librqbit per announce.
    pub numwant: u32,
    /// How often librqbit re-announces (the proxy's `min interval`), seconds.
    pub min_interval: u32,
    /// Time between a member's joins while its head works (it re-joins at once when an
    /// announce to the head fails).
    pub rejoin: Duration,
    /// Most peers per torrent.
    pub peer_limit: Option<usize>,
    /// Peers of other PIDs per announce for a gateway, besides every peer of the own PID
    /// (see `docs/plugin.md`, keeping traffic local).
    pub foreign_peers: usize,
    /// With this many peers in the own PID, no peers of other PIDs are handed out.
    pub local_enough: usize,
    /// Upload limit, bytes per second.
    pub upload_bps: Option<u32>,
    /// Download limit, bytes per second.
    pub download_bps: Option<u32>,
}

impl Config {
    /// Defaults for a client on `ip` saving into `output`.
    pub fn new(ip: IpAddr, output: PathBuf) -> Self {
        Config {
            ip,
            port: 0,
            output,
            alto: None,
            tracker_port: 0,
            dht_bootstrap: None,
            strict: false,
            numwant: 50,
            min_interval: 5,
            rejoin: Duration::from_secs(120),
            peer_limit: None,
            foreign_peers: 4,
            local_enough: 3,
            upload_bps: None,
            download_bps: None,
        }
    }

    /// Uses the ALTO server at `directory_url`.
    pub fn alto(mut self, directory_url: &str) -> Self {
        self.alto = Some(directory_url.to_owned());
        self
    }
}

/// A librqbit session whose peer discovery goes through the PID Head.
pub struct AltoSession {
    config: Config,
    rqbit: Rqbit,
    proxy: Arc<Proxy>,
    proxy_stop: Option<tokio::sync::oneshot::Sender<()>>,
    shim: Option<RunningTracker>,
    membership: watch::Receiver<Membership>,
    netmap: Arc<RwLock<Option<Arc<NetworkMap>>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    listen: SocketAddr,
}

/// A torrent of the session.
#[derive(Clone)]
pub struct Torrent {
    inner: rqbit::Torrent,
    started: Instant,
}

/// Where a torrent stands, with bytes attributed to PIDs.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// Torrent size.
    pub total_bytes: u64,
    /// Bytes downloaded and checked.
    pub have_bytes: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Complete.
    pub finished: bool,
    /// Download speed, MiB/s.
    pub down_mib_s: f64,
    /// Upload speed, MiB/s.
    pub up_mib_s: f64,
    /// This client's PID.
    pub pid: Option<String>,
    /// Its role.
    pub role: Option<String>,
    /// Times it became head or stopped being head.
    pub role_changes: u64,
    /// The PID's head tracker.
    pub head: Option<String>,
    /// Connected peers by PID.
    pub peers_by_pid: BTreeMap<String, usize>,
    /// Bytes received per PID, over connections this client opened (on loopback the
    /// accepting side cannot tell who connected); the rest under `incoming`.
    pub bytes_by_pid: BTreeMap<String, u64>,
    /// Bytes sent per PID, over connections this client opened.
    pub sent_by_pid: BTreeMap<String, u64>,
    /// Share of the attributed bytes received that came from the own PID.
    pub own_pid_share: f64,
    /// Per peer this client connected to: (address, bytes received, bytes sent).
    pub peers_out: Vec<(String, u64, u64)>,
    /// The same per peer that connected to this client (its address as seen here).
    pub peers_in: Vec<(String, u64, u64)>,
    /// Seconds since the torrent was added.
    pub elapsed_s: f64,
    /// The session's error, if any.
    pub error: Option<String>,
}

/// Any free port on `ip`.
fn free_port(ip: IpAddr) -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

impl AltoSession {
    /// Starts the session: joins the ALTO server (when given) through a tracker shim on the
    /// client's address, starts the announce proxy on loopback and the librqbit session.
    pub async fn start(config: Config) -> anyhow::Result<AltoSession> {
        let (shim, membership) = match &config.alto {
            Some(alto) => {
                let settings = JoinSettings {
                    alto: alto.clone(),
                    endpoint: config.ip,
                    capabilities: tracker_shim::membership::own_capabilities(),
                    rejoin: config.rejoin,
                    refresh: Duration::from_secs(5),
                };
                let tracker = Tracker::new(TrackerConfig {
                    interval: 60,
                    min_interval: config.min_interval,
                    ..TrackerConfig::default()
                });
                let t = RunningTracker::start(
                    tracker,
                    SocketAddr::new(config.ip, config.tracker_port),
                    None,
                    Mode::Join(settings),
                )
                .await?;
                let m = t.membership.clone();
                (Some(t), m)
            }
            None => (None, watch::channel(Membership::default()).1),
        };
        let dht = match &config.dht_bootstrap {
            Some(nodes) => Some(DhtNode::start(SocketAddr::new(config.ip, 0), nodes).await?),
            None => None,
        };
        let settings = ProxySettings {
            client_ip: config.ip,
            numwant: config.numwant,
            min_interval: config.min_interval,
            timeout: Duration::from_secs(3),
            dht_wait: Duration::from_millis(500),
            foreign_peers: config.foreign_peers,
            local_enough: config.local_enough,
        };
        let netmap = Arc::new(RwLock::new(None));
        let proxy = Arc::new(Proxy::new(settings, shim.as_ref(), dht, netmap.clone()));
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let proxy_url = format!("http://{}/announce", listener.local_addr()?);
        let (proxy_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let p = proxy.clone();
        let mut tasks = vec![tokio::spawn(async move {
            let _ = proxy::serve(listener, p, async move {
                let _ = stop_rx.await;
            })
            .await;
        })];

        if config.alto.is_some() {
            tasks.push(tokio::spawn(follow_network_map(
                membership.clone(),
                config.ip,
                netmap.clone(),
            )));
            // librqbit's first announce decides whom it connects to: give the head a moment
            // to answer with the map, so that it already keeps the peers local.
            let deadline = Instant::now() + MAP_WAIT;
            while netmap.read().expect("netmap lock").is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let allowlist = if config.strict {
            strict_allowlist(&config, &membership).await
        } else {
            None
        };
        let port = if config.port == 0 {
            free_port(config.ip)?
        } else {
            config.port
        };
        let listen = SocketAddr::new(config.ip, port);
        std::fs::create_dir_all(&config.output)?;
        let rqbit = Rqbit::start(SessionSettings {
            output: &config.output,
            listen,
            proxy: &proxy_url,
            allowlist: allowlist.as_deref(),
            peer_limit: config.peer_limit,
            upload_bps: config.upload_bps,
            download_bps: config.download_bps,
        })
        .await?;
        Ok(AltoSession {
            config,
            rqbit,
            proxy,
            proxy_stop: Some(proxy_stop),
            shim,
            membership,
            netmap,
            tasks,
            listen,
        })
    }

    /// Where librqbit accepts peers.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Where this client stands with the ALTO server.
    pub fn membership(&self) -> Membership {
        self.membership.borrow().clone()
    }

    /// The announce proxy (its counters, for progress and tests).
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The tracker shim this client runs (head when elected).
    pub fn shim(&self) -> Option<&RunningTracker> {
        self.shim.as_ref()
    }

    /// Adds a torrent from `.torrent` bytes or a magnet link (as text), into the default
    /// folder. Its trackers are taken out and announced to through the proxy.
    pub async fn add(&self, torrent: &[u8]) -> anyhow::Result<Torrent> {
        self.add_into(torrent, &self.config.output.clone()).await
    }

    /// Adds a torrent saving into `folder`.
    pub async fn add_into(&self, torrent: &[u8], folder: &Path) -> anyhow::Result<Torrent> {
        let (input, originals) = if torrent.starts_with(b"magnet:") {
            let (m, tr) = metainfo::strip_magnet(std::str::from_utf8(torrent)?)?;
            (TorrentInput::Magnet(m), tr)
        } else {
            let (t, tr) = metainfo::strip_torrent(torrent)?;
            (TorrentInput::File(t), tr)
        };
        let t = self.rqbit.add(input, folder).await?;
        let h = InfoHash(t.info_hash());
        self.proxy.register(h, originals);
        // librqbit never sends `completed`: the proxy does, when the data is all there.
        let (proxy, watched) = (self.proxy.clone(), t.clone());
        tokio::spawn(async move {
            if !watched.progress().finished && watched.wait_completed().await.is_ok() {
                proxy.send_event(h, Event::Completed, Some(0)).await;
            }
        });
        Ok(Torrent {
            inner: t,
            started: Instant::now(),
        })
    }

    /// Makes a torrent of `path`, writes it to `path` + `.torrent`, and seeds it.
    pub async fn seed(
        &self,
        path: &Path,
        trackers: Vec<String>,
    ) -> anyhow::Result<(PathBuf, Torrent)> {
        let (bytes, _) = rqbit::create_torrent(path, trackers).await?;
        let mut out = path.as_os_str().to_owned();
        out.push(".torrent");
        let out = PathBuf::from(out);
        std::fs::write(&out, &bytes)?;
        let t = self.add_into(&bytes, &rqbit::seed_folder(path)).await?;
        Ok((out, t))
    }

    /// The report of a torrent.
    pub fn report(&self, t: &Torrent) -> Report {
        let p = t.inner.progress();
        let m = self.membership();
        let net = self.netmap.read().expect("netmap lock").clone();
        let pid_name = |ip: IpAddr| -> String {
            net.as_ref()
                .and_then(|n| n.pid_of(ip).map(|i| n.pid_name(i).to_owned()))
                .unwrap_or_else(|| "unknown".into())
        };
        let mut r = Report {
            total_bytes: p.total_bytes,
            have_bytes: p.have_bytes,
            uploaded_bytes: p.uploaded_bytes,
            finished: p.finished,
            down_mib_s: p.down_mib_s,
            up_mib_s: p.up_mib_s,
            pid: m.pid.clone(),
            role: m.role.map(|r| {
                if r == Role::Head {
                    "head".into()
                } else {
                    "member".into()
                }
            }),
            role_changes: m.role_changes,
            head: m.head.map(|h| h.tracker),
            elapsed_s: t.started.elapsed().as_secs_f64(),
            error: p.error,
            ..Report::default()
        };
        for peer in t.inner.peers() {
            let bytes = (peer.addr.to_string(), peer.fetched, peer.uploaded);
            if peer.outgoing {
                r.peers_out.push(bytes);
            } else {
                r.peers_in.push(bytes);
            }
            let pid = if peer.outgoing {
                pid_name(peer.addr.ip())
            } else {
                "incoming".into()
            };
            if peer.live {
                *r.peers_by_pid.entry(pid.clone()).or_default() += 1;
            }
            *r.bytes_by_pid.entry(pid.clone()).or_default() += peer.fetched;
            *r.sent_by_pid.entry(pid).or_default() += peer.uploaded;
        }
        let attributed: u64 = r
            .bytes_by_pid
            .iter()
            .filter(|(k, _)| *k != "incoming" && *k != "unknown")
            .map(|(_, v)| v)
            .sum();
        let own = m
            .pid
            .as_ref()
            .and_then(|p| r.bytes_by_pid.get(p))
            .copied()
            .unwrap_or(0);
        r.own_pid_share = if attributed > 0 {
            own as f64 / attributed as f64
        } else {
            0.0
        };
        r
    }

    /// Stops this client's tracker shim without resigning, as a crash would: for failover
    /// tests and the lab. The BitTorrent session goes on.
    pub fn crash_tracker(&mut self) {
        if let Some(shim) = self.shim.take() {
            shim.kill();
        }
    }

    /// Bytes exchanged with each peer the torrent has known (see [`rqbit::PeerBytes`]).
    pub fn peer_bytes(&self, t: &Torrent) -> Vec<rqbit::PeerBytes> {
        t.inner.peers()
    }

    /// Sends `stopped` for every torrent, resigns a headship, and stops everything.
    pub async fn shutdown(mut self) {
        for h in self.proxy.torrents() {
            self.proxy.send_event(h, Event::Stopped, None).await;
        }
        self.rqbit.stop().await;
        if let Some(shim) = self.shim.take() {
            shim.stop().await;
        }
        if let Some(s) = self.proxy_stop.take() {
            let _ = s.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Torrent {
    /// The info hash.
    pub fn info_hash(&self) -> [u8; 20] {
        self.inner.info_hash()
    }

    /// Waits until the torrent is complete.
    pub async fn wait_completed(&self) -> anyhow::Result<()> {
        self.inner.wait_completed().await
    }

    /// The session's torrent, for progress without the PID view.
    pub fn progress(&self) -> rqbit::Progress {
        self.inner.progress()
    }
}

/// Keeps the network map for keeping peers local and attributing bytes to PIDs, from the
/// PID's head (its `/directory`), so that clients never poll the ALTO server for it; it is
/// revalidated by ETag and fetched again from a new head when the head changes.
async fn follow_network_map(
    mut membership: watch::Receiver<Membership>,
    ip: IpAddr,
    into: Arc<RwLock<Option<Arc<NetworkMap>>>>,
) {
    let mut client: Option<(String, alto_client::AltoClient)> = None;
    loop {
        let head = membership.borrow_and_update().head.clone();
        if let Some(h) = head {
            let directory = alto_model::pidhead::sibling(&h.tracker, "/directory");
            if client.as_ref().is_none_or(|(d, _)| *d != directory) {
                client = alto_client::AltoClient::new(&directory).ok().map(|c| {
                    let c = c
                        .with_local_address(ip)
                        .with_timeout(Duration::from_secs(5));
                    (directory, c)
                });
            }
        }
        let fetched = match &client {
            Some((_, c)) => match c.network_map().await {
                Ok(nm) => NetworkMap::from_data(&nm.meta.vtag.resource_id, &nm.network_map).ok(),
                Err(_) => None,
            },
            None => None,
        };
        let wait = match fetched {
            Some(net) => {
                *into.write().expect("netmap lock") = Some(Arc::new(net));
                Duration::from_secs(30)
            }
            // The head may not hold the maps yet.
            None => Duration::from_secs(1),
        };
        let changed = async {
            if membership.changed().await.is_err() {
                std::future::pending::<()>().await; // the membership ended: only the timer
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed => {}
        }
    }
}

/// Strict mode: an allowlist of the prefixes of the own PID and of the PIDs cheapest to
/// reach from it (within 2x the cheapest other PID's cost), for librqbit's `allowlist_url`.
async fn strict_allowlist(
    config: &Config,
    membership: &watch::Receiver<Membership>,
) -> Option<PathBuf> {
    let alto = config.alto.as_ref()?;
    let client = alto_client::AltoClient::new(alto)
        .ok()?
        .with_local_address(config.ip)
        .with_timeout(Duration::from_secs(5));
    let mut m = membership.clone();
    let _ = tokio::time::timeout(Duration::from_secs(5), m.wait_for(|m| m.pid.is_some())).await;
    let pid = m.borrow().pid.clone()?;
    let nm = client.network_map().await.ok()?;
    let req = alto_model::messages::ReqFilteredCostMap {
        cost_type: alto_model::CostType::new("routingcost", alto_model::CostMode::Numerical),
        constraints: None,
        pids: Some(alto_model::messages::PidFilter {
            srcs: vec![pid.clone()],
            dsts: vec![],
        }),
    };
    let row = client
        .filtered_cost_map(&req)
        .await
        .ok()?
        .cost_map
        .remove(&pid)
        .unwrap_or_default();
    let cheapest_other = row
        .iter()
        .filter(|(p, _)| **p != pid)
        .map(|(_, c)| c.0)
        .fold(f64::INFINITY, f64::min);
    let mut lines = Vec::new();
    for (p, c) in &row {
        if *p == pid || c.0 <= cheapest_other * 2.0 {
            for prefix in nm
                .network_map
                .get(p)
                .and_then(|g| g.get("ipv4"))
                .into_iter()
                .flatten()
            {
                if let Ok(px) =
                    alto_model::addr::Prefix::parse(alto_model::addr::AddressType::Ipv4, prefix)
                {
                    lines.push(format!(
                        "{p}:{}-{}",
                        std::net::Ipv4Addr::from(px.addr as u32),
                        std::net::Ipv4Addr::from(px.last() as u32)
                    ));
                }
            }
        }
    }
    let path = config.output.join(".alto-allowlist.p2p");
    std::fs::create_dir_all(&config.output).ok()?;
    std::fs::write(&path, lines.join("\n") + "\n").ok()?;
    Some(path)
}
