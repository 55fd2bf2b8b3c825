//! The only module that imports librqbit: a session whose peer discovery goes through the
//! local announce proxy, torrents added with their trackers already taken out, progress and
//! per-peer byte counts, torrent creation, and an opt-in DHT node of the plugin's own.
//!
//! Settings that keep traffic where it belongs: librqbit's DHT off (`dht: None`), local
//! service discovery off, no UPnP port forwarding, the proxy as the only tracker, and the
//! announced port set explicitly (librqbit would announce 4240 on loopback otherwise).

use futures::StreamExt;
use librqbit::dht::{Dht, DhtConfig, DhtState, Id20};
use librqbit::{
    AddTorrent, AddTorrentOptions, AddTorrentResponse, CreateTorrentOptions, ListenerMode,
    ListenerOptions, ManagedTorrent, Session, SessionOptions,
};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// librqbit's own error (it speaks `anyhow`), kept as the cause without naming `anyhow` in
/// this library's API.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What librqbit refused.
#[derive(Debug, thiserror::Error)]
pub enum RqbitError {
    /// The announce proxy's URL does not parse.
    #[error("the announce proxy URL: {0}")]
    ProxyUrl(#[from] url::ParseError),
    /// The session did not start.
    #[error("starting the BitTorrent session: {0}")]
    Start(Cause),
    /// The torrent could not be added.
    #[error("{0}")]
    Add(Cause),
    /// The session only listed the torrent instead of adding it.
    #[error("the session only listed the torrent")]
    ListOnly,
    /// The torrent stopped with an error before completing.
    #[error("{0}")]
    Download(Cause),
    /// A torrent could not be made of a path.
    #[error("making a torrent of {path}: {cause}")]
    Create {
        /// The file or folder.
        path: PathBuf,
        /// librqbit's error.
        cause: Cause,
    },
    /// The DHT node did not start.
    #[error("starting the DHT node: {0}")]
    Dht(Cause),
}

/// A librqbit session set up for the plugin.
pub struct Rqbit {
    session: Arc<Session>,
    proxy: String,
}

/// Settings of the session.
pub struct SessionSettings<'a> {
    /// Default folder for downloads.
    pub output: &'a Path,
    /// Where to accept peer connections (a concrete port).
    pub listen: SocketAddr,
    /// The announce proxy's URL, the session's only tracker.
    pub proxy: &'a str,
    /// A P2P-format allowlist (strict mode), as a file.
    pub allowlist: Option<&'a Path>,
    /// Most peers per torrent.
    pub peer_limit: Option<usize>,
    /// Upload limit, bytes per second.
    pub upload_bps: Option<u32>,
    /// Download limit, bytes per second.
    pub download_bps: Option<u32>,
}

/// A torrent in the session.
#[derive(Clone)]
pub struct Torrent(Arc<ManagedTorrent>);

/// Progress of a torrent.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Size of the torrent (of the selected files).
    pub total_bytes: u64,
    /// Bytes downloaded and checked.
    pub have_bytes: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Whether every piece is there.
    pub finished: bool,
    /// Download speed, MiB/s.
    pub down_mib_s: f64,
    /// Upload speed, MiB/s.
    pub up_mib_s: f64,
    /// The session's error for the torrent, if any.
    pub error: Option<String>,
}

/// Bytes exchanged with one peer.
#[derive(Clone, Debug)]
pub struct PeerBytes {
    /// The peer's address as the session knows it (for an incoming connection on loopback,
    /// the source address the kernel chose).
    pub addr: SocketAddr,
    /// Bytes received from it.
    pub fetched: u64,
    /// Bytes sent to it.
    pub uploaded: u64,
    /// Whether this side opened a connection to it (then `addr` is where the peer listens).
    pub outgoing: bool,
    /// Whether it is connected now.
    pub live: bool,
}

impl Rqbit {
    /// Starts a session.
    pub async fn start(s: SessionSettings<'_>) -> Result<Rqbit, RqbitError> {
        let proxy: url::Url = s.proxy.parse()?;
        let opts = SessionOptions {
            dht: None,
            disable_local_service_discovery: true,
            persistence: None,
            fastresume: false,
            listen: Some(ListenerOptions {
                mode: ListenerMode::TcpOnly,
                listen_addr: s.listen,
                enable_upnp_port_forwarding: false,
                announce_port: Some(s.listen.port()),
                ipv4_only: s.listen.is_ipv4(),
                ..ListenerOptions::default()
            }),
            trackers: HashSet::from([proxy]),
            allowlist_url: s.allowlist.map(|p| format!("file://{}", p.display())),
            peer_limit: s.peer_limit,
            ipv4_only: s.listen.is_ipv4(),
            ratelimits: librqbit::limits::LimitsConfig {
                upload_bps: s.upload_bps.and_then(std::num::NonZeroU32::new),
                download_bps: s.download_bps.and_then(std::num::NonZeroU32::new),
            },
            ..SessionOptions::default()
        };
        let session = Session::new_with_opts(s.output.to_owned(), opts)
            .await
            .map_err(|e| RqbitError::Start(e.into()))?;
        Ok(Rqbit {
            session,
            proxy: s.proxy.to_owned(),
        })
    }

    /// Adds a torrent (`.torrent` bytes without trackers, or a magnet link without `tr=`),
    /// saving into `output` (existing data is checked and kept: a seeder adds its file so).
    pub async fn add(&self, torrent: TorrentInput, output: &Path) -> Result<Torrent, RqbitError> {
        let add = match torrent {
            TorrentInput::File(bytes) => AddTorrent::from_bytes(bytes),
            TorrentInput::Magnet(link) => AddTorrent::from_url(link),
        };
        // The proxy is also the torrent's own tracker: librqbit gives private torrents
        // (BEP 27) no session-level trackers.
        let opts = AddTorrentOptions {
            output_folder: Some(output.display().to_string()),
            overwrite: true,
            trackers: Some(vec![self.proxy.clone()]),
            ..AddTorrentOptions::default()
        };
        let added = self
            .session
            .add_torrent(add, Some(opts))
            .await
            .map_err(|e| RqbitError::Add(e.into()))?;
        match added {
            AddTorrentResponse::Added(_, h) | AddTorrentResponse::AlreadyManaged(_, h) => {
                Ok(Torrent(h))
            }
            AddTorrentResponse::ListOnly(_) => Err(RqbitError::ListOnly),
        }
    }

    /// Stops the session.
    pub async fn stop(&self) {
        self.session.stop().await;
    }
}

/// What to add.
pub enum TorrentInput {
    /// `.torrent` bytes.
    File(Vec<u8>),
    /// A magnet link.
    Magnet(String),
}

impl Torrent {
    /// The info hash.
    pub fn info_hash(&self) -> [u8; 20] {
        self.0.info_hash().0
    }

    /// The torrent's name, when known.
    pub fn name(&self) -> Option<String> {
        self.0.name()
    }

    /// Progress now.
    pub fn progress(&self) -> Progress {
        let s = self.0.stats();
        let (down, up) = s
            .live
            .as_ref()
            .map_or((0.0, 0.0), |l| (l.download_speed.mbps, l.upload_speed.mbps));
        Progress {
            total_bytes: s.total_bytes,
            have_bytes: s.progress_bytes,
            uploaded_bytes: s.uploaded_bytes,
            finished: s.finished,
            down_mib_s: down,
            up_mib_s: up,
            error: s.error,
        }
    }

    /// Bytes per peer, every peer the session has known.
    pub fn peers(&self) -> Vec<PeerBytes> {
        let Some(live) = self.0.live() else {
            return Vec::new();
        };
        // The filter's state enum is not exported; it deserializes from its wire name.
        let filter: librqbit::http_api_types::PeerStatsFilter =
            serde_json::from_str(r#"{"state":"all"}"#).expect("a valid filter");
        live.per_peer_stats_snapshot(filter)
            .peers
            .into_iter()
            .filter_map(|(addr, p)| {
                Some(PeerBytes {
                    addr: addr.parse().ok()?,
                    fetched: p.counters.fetched_bytes,
                    uploaded: p.counters.uploaded_bytes,
                    outgoing: p.counters.connections > 0,
                    live: p.state == "live",
                })
            })
            .collect()
    }

    /// Waits until every piece is there.
    pub async fn wait_completed(&self) -> Result<(), RqbitError> {
        self.0
            .wait_until_completed()
            .await
            .map_err(|e| RqbitError::Download(e.into()))
    }
}

/// Makes a single-file or folder torrent of `path`, announcing to `trackers`.
pub async fn create_torrent(
    path: &Path,
    trackers: Vec<String>,
) -> Result<(Vec<u8>, [u8; 20]), RqbitError> {
    let spawner = librqbit::spawn_utils::BlockingSpawner::new(2);
    let opts = CreateTorrentOptions {
        name: None,
        trackers,
        piece_length: None,
    };
    let create = |cause: Cause| RqbitError::Create {
        path: path.to_owned(),
        cause,
    };
    let t = librqbit::create_torrent(path, opts, &spawner)
        .await
        .map_err(|e| create(e.into()))?;
    let bytes = t.as_bytes().map_err(|e| create(e.into()))?;
    Ok((bytes.to_vec(), t.info_hash().0))
}

/// A DHT node of the plugin's own (opt-in), bootstrapping only from the given nodes.
#[derive(Clone)]
pub struct DhtNode(Dht);

impl DhtNode {
    /// Starts a node on `listen` that bootstraps from `bootstrap` (an empty list: from
    /// itself, waiting to be found as a bootstrap node does).
    pub async fn start(
        listen: SocketAddr,
        bootstrap: &[SocketAddr],
    ) -> Result<DhtNode, RqbitError> {
        // librqbit's node stops when no bootstrap node ever answers, and at once when it has
        // none: a first node bootstraps from itself, on a port picked before it starts.
        let (listen, bootstrap) = if bootstrap.is_empty() {
            let own = match listen.port() {
                0 => std::net::UdpSocket::bind(listen)
                    .and_then(|s| s.local_addr())
                    .map_err(|e| RqbitError::Dht(e.into()))?,
                _ => listen,
            };
            (own, vec![own])
        } else {
            (listen, bootstrap.to_vec())
        };
        let config = DhtConfig {
            bootstrap_addrs: Some(bootstrap.iter().map(|a| a.to_string()).collect()),
            listen_addr: Some(listen),
            ..DhtConfig::default()
        };
        let dht = DhtState::with_config(config)
            .await
            .map_err(|e| RqbitError::Dht(e.into()))?;
        Ok(DhtNode(dht))
    }

    /// Where the node listens.
    pub fn addr(&self) -> SocketAddr {
        self.0.listen_addr()
    }

    /// Peers of `info_hash` found within `wait`; announces `port` for it as well.
    pub async fn peers(&self, info_hash: [u8; 20], port: u16, wait: Duration) -> Vec<SocketAddr> {
        let mut stream = self.0.get_peers(Id20::new(info_hash), Some(port));
        let mut out = Vec::new();
        let _ = tokio::time::timeout(wait, async {
            while let Some(p) = stream.next().await {
                if !out.contains(&p) {
                    out.push(p);
                }
                if out.len() >= 200 {
                    break;
                }
            }
        })
        .await;
        out
    }
}

/// Folder a file should be added from to seed it.
pub fn seed_folder(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

#[cfg(test)]
mod tests {
    use super::DhtNode;
    use std::time::Duration;

    /// A node started with no bootstrap node (as a private DHT's first node is) keeps
    /// answering: librqbit's own node stops when its bootstrap fails, at once with none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_node_with_no_bootstrap_node_keeps_answering() {
        let first = DhtNode::start("127.0.0.1:0".parse().unwrap(), &[])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // BEP 5's ping query.
        let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        client.send_to(ping, first.addr()).await.unwrap();
        let mut buf = [0u8; 512];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("the node stopped answering")
            .unwrap();
        assert_eq!(from, first.addr());
        // A response (`y` is `r`) to our transaction `aa`.
        let answer = &buf[..n];
        assert!(answer.windows(7).any(|w| w == b"1:y1:re"), "{answer:?}");
        assert!(answer.windows(7).any(|w| w == b"1:t2:aa"), "{answer:?}");
    }
}
