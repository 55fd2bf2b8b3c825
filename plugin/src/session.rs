//! The session: [`AltoSession`] ties the join with the ALTO server (through the tracker shim,
//! which serves as PID Head when this client is elected), the map follower, the announce
//! proxy and the librqbit session together, and [`Config`] says how.

use crate::accounting::{self, Report};
use crate::allowlist;
use crate::mapfollow::{self, NetworkMapWatch};
use crate::metainfo::{self, MetainfoError};
use crate::proxy::{self, Connections, Proxy, ProxySettings};
use crate::rqbit::{self, DhtNode, Rqbit, RqbitError, SessionSettings, TorrentInput};
use alto_locality::LocalityConfig;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracker_shim::membership::{JoinSettings, Membership};
use tracker_shim::protocol::{Event, InfoHash};
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// How long a starting session waits for its join answer and the network map.
const MAP_WAIT: Duration = Duration::from_secs(3);

/// A cause from a lower layer whose type is not this crate's to name.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong starting a session or adding a torrent.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The tracker shim (join mode) did not start.
    #[error("starting the tracker shim: {0}")]
    Tracker(Cause),
    /// librqbit refused (starting, adding, creating, the DHT node, the download itself).
    #[error(transparent)]
    Rqbit(#[from] RqbitError),
    /// The torrent or magnet link is not usable.
    #[error(transparent)]
    Metainfo(#[from] MetainfoError),
    /// A magnet link that is not UTF-8.
    #[error("the magnet link is not UTF-8: {0}")]
    MagnetText(#[from] std::str::Utf8Error),
    /// A socket, folder or file could not be opened or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Settings of an [`AltoSession`].
#[derive(Clone, Debug)]
pub struct Config {
    /// The client's address: it listens, announces and joins from there.
    pub ip: IpAddr,
    /// Peer port; 0 picks a free one.
    pub port: u16,
    /// Default download folder.
    pub output: PathBuf,
    /// The ALTO server's directory URL, one per replica of a replicated server (tried in
    /// turn); none: original trackers only.
    pub alto: Vec<String>,
    /// Port of the tracker shim this client runs (serving as head when elected); 0 picks.
    pub tracker_port: u16,
    /// Serve that tracker over HTTPS with this certificate (for the client's address): as
    /// head, its tracker and ALTO URLs are `https://` and members verify them
    /// (`docs/security.md`).
    pub tracker_tls: Option<Arc<alto_web::tls::ServerTls>>,
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
    /// The locality policy, for the proxy and for the head's tracker when this client is
    /// elected (`docs/locality.md`).
    pub locality: LocalityConfig,
    /// When the head does not answer or is not in the swarm: with this many peers of the
    /// own PID from other sources, only the random share comes from other PIDs.
    pub local_enough: usize,
    /// Upload limit, bytes per second.
    pub upload_bps: Option<u32>,
    /// Download limit, bytes per second.
    pub download_bps: Option<u32>,
    /// Milliseconds of their rate the limits let through at once after a pause (`None`:
    /// librqbit's whole second; a link's queue holds about a tenth).
    pub burst_ms: Option<u32>,
}

impl Config {
    /// Defaults for a client on `ip` saving into `output`.
    pub fn new(ip: IpAddr, output: PathBuf) -> Self {
        Config {
            ip,
            port: 0,
            output,
            alto: Vec::new(),
            tracker_port: 0,
            tracker_tls: None,
            dht_bootstrap: None,
            strict: false,
            numwant: 50,
            min_interval: 5,
            rejoin: Duration::from_secs(120),
            peer_limit: None,
            locality: LocalityConfig::default(),
            local_enough: 3,
            upload_bps: None,
            download_bps: None,
            burst_ms: None,
        }
    }

    /// Uses the ALTO server at `directory_url`; called again, adds a replica of it.
    pub fn alto(mut self, directory_url: &str) -> Self {
        self.alto.push(directory_url.to_owned());
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
    netmap: NetworkMapWatch,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    listen: SocketAddr,
}

/// A torrent of the session.
#[derive(Clone)]
pub struct Torrent {
    inner: rqbit::Torrent,
    started: Instant,
}

/// Any free port on `ip`.
fn free_port(ip: IpAddr) -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

/// Starts the tracker shim in join mode on the client's address, when there is an ALTO
/// server; its membership (a default one without).
async fn join(
    config: &Config,
) -> Result<(Option<RunningTracker>, watch::Receiver<Membership>), SessionError> {
    if config.alto.is_empty() {
        return Ok((None, watch::channel(Membership::default()).1));
    }
    let settings = JoinSettings {
        alto: config.alto.clone(),
        endpoint: config.ip,
        capabilities: tracker_shim::membership::own_capabilities(),
        rejoin: config.rejoin,
        refresh: Duration::from_secs(5),
    };
    let tracker = Tracker::new(TrackerConfig {
        interval: 60,
        min_interval: config.min_interval,
        locality: config.locality,
        ..TrackerConfig::default()
    });
    let t = RunningTracker::start_tls(
        tracker,
        SocketAddr::new(config.ip, config.tracker_port),
        None,
        Mode::Join(settings),
        config.tracker_tls.clone(),
    )
    .await
    .map_err(|e| SessionError::Tracker(e.into()))?;
    let m = t.membership.clone();
    Ok((Some(t), m))
}

impl AltoSession {
    /// Starts the session: joins the ALTO server (when given) through a tracker shim on the
    /// client's address, starts the announce proxy on loopback and the librqbit session.
    pub async fn start(config: Config) -> Result<AltoSession, SessionError> {
        let (shim, membership) = join(&config).await?;
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
            locality: config.locality,
            local_enough: config.local_enough,
            links: alto_locality::Links {
                down_bps: config.download_bps,
                up_bps: config.upload_bps,
            },
        };
        let (netmap_tx, netmap) = mapfollow::channel();
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

        if !config.alto.is_empty() {
            tasks.push(tokio::spawn(mapfollow::follow(
                membership.clone(),
                config.ip,
                config.alto.clone(),
                netmap_tx,
            )));
            // librqbit's first announce decides whom it connects to: give the server a moment
            // to answer the join and the head (or the server) the map, so that the first
            // announce already goes to the head and keeps the peers local. The map can come
            // first: on etcd a join is a transaction, slower than a map read.
            let until = tokio::time::Instant::now() + MAP_WAIT;
            let (mut map, mut joined) = (netmap.clone(), membership.clone());
            let _ = tokio::time::timeout_at(until, map.wait_for(Option::is_some)).await;
            let _ = tokio::time::timeout_at(until, joined.wait_for(|m| m.pid.is_some())).await;
        }
        let allowlist = match (config.alto.is_empty(), config.strict) {
            (false, true) => {
                match allowlist::write(&config.alto, config.ip, &config.output, &membership).await {
                    Ok(path) => Some(path),
                    Err(e) => {
                        tracing::warn!("strict mode without an allowlist: {e}");
                        None
                    }
                }
            }
            _ => None,
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
            burst_ms: config.burst_ms,
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
    pub async fn add(&self, torrent: &[u8]) -> Result<Torrent, SessionError> {
        self.add_into(torrent, &self.config.output.clone()).await
    }

    /// Adds a torrent saving into `folder`.
    pub async fn add_into(&self, torrent: &[u8], folder: &Path) -> Result<Torrent, SessionError> {
        let (input, originals) = if torrent.starts_with(b"magnet:") {
            let (m, tr) = metainfo::strip_magnet(std::str::from_utf8(torrent)?)?;
            (TorrentInput::Magnet(m), tr)
        } else {
            let (t, tr) = metainfo::strip_torrent(torrent)?;
            (TorrentInput::File(t), tr)
        };
        let t = self.rqbit.add(input, folder).await?;
        let h = InfoHash(t.info_hash());
        self.proxy.register(
            h,
            originals,
            t.is_private(),
            Some(Arc::new(t.clone()) as Arc<dyn Connections>),
        );
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
    ) -> Result<(PathBuf, Torrent), SessionError> {
        let (bytes, _) = rqbit::create_torrent(path, trackers).await?;
        let mut out = path.as_os_str().to_owned();
        out.push(".torrent");
        let out = PathBuf::from(out);
        std::fs::write(&out, &bytes)?;
        let t = self.add_into(&bytes, &rqbit::seed_folder(path)).await?;
        Ok((out, t))
    }

    /// The report of a torrent: its progress and the bytes attributed to PIDs.
    pub fn report(&self, t: &Torrent) -> Report {
        // The map is taken out of the channel first: no lock is held while librqbit counts.
        let net = self.netmap.borrow().clone();
        let mut r = accounting::report(
            t.inner.progress(),
            &self.membership(),
            net.as_deref(),
            t.inner.peers(),
            t.started.elapsed().as_secs_f64(),
        );
        let stats = &self.proxy.stats;
        r.outreach_trials = stats.trials.load(std::sync::atomic::Ordering::Relaxed);
        r.outreach_left_peers = stats.left_peers.load(std::sync::atomic::Ordering::Relaxed);
        r.dht_peers = stats.dht_peers.load(std::sync::atomic::Ordering::Relaxed);
        r.head_rankings = stats.ranked.load(std::sync::atomic::Ordering::Relaxed);
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

    /// Stops at once, as a crashed or killed client would: no `stopped` to any tracker, no
    /// resignation of a headship (the lab's `head-leaves`).
    pub async fn crash(mut self) {
        self.crash_tracker();
        self.rqbit.stop().await;
        if let Some(s) = self.proxy_stop.take() {
            let _ = s.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
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
    pub async fn wait_completed(&self) -> Result<(), SessionError> {
        Ok(self.inner.wait_completed().await?)
    }

    /// The session's torrent, for progress without the PID view.
    pub fn progress(&self) -> rqbit::Progress {
        self.inner.progress()
    }
}

/// librqbit's connections, for the proxy's trials of reaching out.
impl Connections for rqbit::Torrent {
    fn leave(&self, peers: &[SocketAddr]) -> usize {
        self.leave_peers(peers)
    }

    fn requeue(&self, peers: &[SocketAddr]) -> usize {
        self.requeue_peers(peers)
    }
}
