//! The tracker's servers: HTTP (`/announce`, `/scrape`, and in head mode the ALTO endpoint
//! cost service and the member list), UDP (BEP 15), and the expiry sweep. They turn
//! sockets into calls on [`Tracker`].

use crate::protocol::announce::AnnounceRequest;
use crate::protocol::query::pairs;
use crate::protocol::InfoHash;
use crate::tracker::Tracker;
use alto_model::messages::{ReqEndpointCostMap, ReqFilteredCostMap};
use alto_model::rank::SplitMix64;
use alto_model::{addr, media, AltoError};
use alto_web::{self as web, HttpResponse};
use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use hyper::body::Body;
use std::cell::RefCell;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// Largest request body the head's ALTO resources take.
const MAX_ALTO_BODY: usize = 64 * 1024;
/// Most peers per swarm in a member list.
const MAX_MEMBERS: usize = 200;

thread_local! {
    static RNG: RefCell<SplitMix64> = RefCell::new(SplitMix64(
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), std::thread::current().id()),
    ));
}

/// Seconds since the epoch: the tracker's clock (tokio's, so tests can drive it).
pub use alto_web::clock::now;

fn bencoded(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut r = web::simple(status, "text/plain", body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Answers one HTTP request from `remote`.
pub async fn handle<B>(tracker: &Tracker, req: Request<B>, remote: SocketAddr) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let source = web::client_addr(
        &tracker.config().trusted_proxies,
        remote.ip(),
        req.headers(),
    )
    .ip;
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").as_bytes().to_vec();
    let mut out = Vec::with_capacity(512);
    match path.as_str() {
        "/announce" | "/scrape" if query.len() > tracker.config().max_query_bytes => {
            let limit = tracker.config().max_query_bytes;
            tracker.failure(&format!("the query is longer than {limit} bytes"), &mut out);
            bencoded(StatusCode::URI_TOO_LONG, out)
        }
        "/announce" => {
            match AnnounceRequest::parse(&query) {
                Ok(a) => {
                    RNG.with_borrow_mut(|rng| tracker.announce(&a, source, now(), rng, &mut out))
                }
                Err(e) => tracker.failure(&e.to_string(), &mut out),
            }
            bencoded(StatusCode::OK, out)
        }
        "/scrape" => {
            tracker.scrape(&query, &mut out);
            bencoded(StatusCode::OK, out)
        }
        "/metrics" => web::simple(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics(tracker),
        ),
        "/members" if tracker.maps().is_some() => members(tracker, &query),
        "/endpointcost/lookup" if tracker.maps().is_some() => {
            endpoint_cost(tracker, req, source).await
        }
        "/costmap/filtered" if tracker.maps().is_some() => filtered_cost_map(tracker, req).await,
        "/directory" if tracker.maps().is_some() => directory(tracker),
        "/networkmap" if tracker.maps().is_some() => network_map(tracker, req.headers()),
        _ => web::simple(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!("no tracker resource at {path}\n"),
        ),
    }
}

/// A POST to one of the head's ALTO resources: admitted like `alto-server` does, decoded
/// and answered by `answer`, errors in the RFC 7285 format.
async fn alto_post<B>(
    req: Request<B>,
    path: &str,
    media_type: &'static str,
    accepts: &'static str,
    answer: impl FnOnce(&[u8]) -> Result<Vec<u8>, AltoError>,
) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    match web::admit(&parts, body, path, media_type, Some(accepts), MAX_ALTO_BODY).await {
        Ok(bytes) => match answer(&bytes) {
            Ok(body) => web::post_answer(media_type, body),
            Err(e) => web::alto_error(StatusCode::BAD_REQUEST, &e),
        },
        Err(reject) => reject.into_response().0,
    }
}

/// The head's ALTO endpoint cost service (RFC 7285 §11.5.1), for sources in its PID only.
async fn endpoint_cost<B>(tracker: &Tracker, req: Request<B>, source: IpAddr) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let maps = tracker.maps().expect("checked by the caller");
    alto_post(
        req,
        "/endpointcost/lookup",
        media::ENDPOINT_COST,
        media::ENDPOINT_COST_PARAMS,
        |bytes| {
            let r = ReqEndpointCostMap::parse(bytes)?;
            let net = maps.network();
            let outside = |ip: IpAddr| net.pid_of(ip) != Some(maps.own);
            match r.endpoints.srcs.as_ref().filter(|s| !s.is_empty()) {
                Some(srcs) => {
                    for s in srcs {
                        let ip = addr::parse_typed_addr(s)
                            .ok_or_else(|| AltoError::invalid_value("endpoints/srcs", s.clone()))?;
                        if outside(ip) {
                            return Err(AltoError::invalid_value("endpoints/srcs", s.clone()));
                        }
                    }
                }
                None if outside(source) => {
                    return Err(AltoError::invalid_value(
                        "endpoints/srcs",
                        addr::typed_addr(source),
                    ))
                }
                None => {}
            }
            Ok(
                serde_json::to_vec(&maps.base.endpoint_cost(&r, Some(source))?)
                    .expect("serializes"),
            )
        },
    )
    .await
}

/// The head's filtered cost map (RFC 7285 §11.3.2), for its own PID as the only source.
async fn filtered_cost_map<B>(tracker: &Tracker, req: Request<B>) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let maps = tracker.maps().expect("checked by the caller");
    alto_post(
        req,
        "/costmap/filtered",
        media::COST_MAP,
        media::COST_MAP_FILTER,
        |bytes| {
            let r = ReqFilteredCostMap::parse(bytes)?;
            let own = maps.network().pid_name(maps.own);
            let srcs = r
                .pids
                .as_ref()
                .map(|p| p.srcs.as_slice())
                .unwrap_or_default();
            if srcs.is_empty() {
                return Err(AltoError::invalid_value("pids/srcs", "[]"));
            }
            if let Some(other) = srcs.iter().find(|s| *s != own) {
                return Err(AltoError::invalid_value("pids/srcs", other.clone()));
            }
            Ok(serde_json::to_vec(&maps.base.filtered_cost_map(&r)?).expect("serializes"))
        },
    )
    .await
}

/// The head's directory: its network map, the endpoint cost service, the filtered cost map
/// and the member list.
fn directory(tracker: &Tracker) -> HttpResponse {
    let maps = tracker.maps().expect("checked by the caller");
    let names = ["num-routingcost", "ord-routingcost"];
    let net_id = maps.network().resource_id();
    let mut body = serde_json::json!({
        "meta": {
            "default-alto-network-map": net_id,
            "cost-types": {
                "num-routingcost": {"cost-mode": "numerical", "cost-metric": "routingcost"},
                "ord-routingcost": {"cost-mode": "ordinal", "cost-metric": "routingcost"}
            }
        },
        "resources": {
            "endpoint-cost": {
                "uri": "/endpointcost/lookup",
                "media-type": media::ENDPOINT_COST,
                "accepts": media::ENDPOINT_COST_PARAMS,
                "capabilities": {"cost-type-names": names, "cost-constraints": true}
            },
            "filtered-cost-map": {
                "uri": "/costmap/filtered",
                "media-type": media::COST_MAP,
                "accepts": media::COST_MAP_FILTER,
                "capabilities": {"cost-type-names": names, "cost-constraints": true}
            },
            "pid-head-members": {
                "uri": "/members",
                "media-type": "application/json",
                "capabilities": {"pid": maps.network().pid_name(maps.own)}
            }
        }
    });
    body["resources"][net_id] = serde_json::json!({
        "uri": "/networkmap",
        "media-type": media::NETWORK_MAP
    });
    web::simple(
        StatusCode::OK,
        media::DIRECTORY,
        serde_json::to_vec(&body).expect("serializes"),
    )
}

/// The network map as the head holds it (RFC 7285 §11.2.1), with the ALTO server's version
/// tag as its entity tag: the PID's clients revalidate it here, not at the ALTO server.
fn network_map(tracker: &Tracker, headers: &http::HeaderMap) -> HttpResponse {
    let maps = tracker.maps().expect("checked by the caller");
    let etag = HeaderValue::from_str(&format!("\"{}\"", maps.network().tag())).expect("hex");
    web::conditional(
        headers,
        etag,
        HeaderValue::from_static("no-cache"),
        media::NETWORK_MAP,
        || {
            serde_json::to_vec(&maps.base.full_network_map())
                .expect("serializes")
                .into()
        },
    )
}

/// The member list for other heads (see `docs/tracker-shim.md`).
fn members(tracker: &Tracker, query: &[u8]) -> HttpResponse {
    let maps = tracker.maps().expect("checked by the caller");
    let net = maps.network();
    let mut hashes = Vec::new();
    let mut max = MAX_MEMBERS;
    let bad = |m: String| {
        web::simple(
            StatusCode::BAD_REQUEST,
            "application/json",
            serde_json::json!({"error": m}).to_string(),
        )
    };
    let Ok(params) = pairs(query) else {
        return bad("invalid percent-encoding".into());
    };
    for (k, v) in params {
        match k.as_slice() {
            b"info_hash" => match <[u8; 20]>::try_from(v.as_slice()) {
                Ok(h) => hashes.push(InfoHash(h)),
                Err(_) => return bad(format!("`info_hash` must be 20 bytes, not {}", v.len())),
            },
            b"max" => match std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            {
                Some(n) => max = n.min(MAX_MEMBERS),
                None => return bad("`max` must be a number".into()),
            },
            _ => {}
        }
    }
    if hashes.is_empty() || hashes.len() > tracker.config().max_scrape {
        return bad(format!(
            "give 1 to {} `info_hash`",
            tracker.config().max_scrape
        ));
    }
    let now = now();
    let swarms: serde_json::Map<String, serde_json::Value> = hashes
        .iter()
        .map(|h| {
            let counts = tracker.counts(h);
            let peers: Vec<serde_json::Value> = tracker
                .members(h, now)
                .into_iter()
                .take(max)
                .map(|p| {
                    serde_json::json!({
                        "addr": p.addr.to_string(),
                        "pid": net.pid_of(p.addr.ip()).map(|i| net.pid_name(i)),
                        "seeder": p.seeder,
                    })
                })
                .collect();
            (h.to_string(), serde_json::json!({"complete": counts.complete, "incomplete": counts.incomplete, "peers": peers}))
        })
        .collect();
    let body = serde_json::json!({"pid": net.pid_name(maps.own), "swarms": swarms});
    web::simple(StatusCode::OK, "application/json", body.to_string())
}

fn metrics(tracker: &Tracker) -> String {
    let s = &tracker.stats;
    let (swarms, peers) = tracker.size();
    let head = tracker.maps().map_or(0, |_| 1);
    format!(
        "# TYPE tracker_announces_total counter\ntracker_announces_total {}\n\
         # TYPE tracker_scrapes_total counter\ntracker_scrapes_total {}\n\
         # TYPE tracker_failures_total counter\ntracker_failures_total {}\n\
         # TYPE tracker_peers_sent_total counter\ntracker_peers_sent_total {}\n\
         # TYPE tracker_peers_sent_same_pid_total counter\ntracker_peers_sent_same_pid_total {}\n\
         # TYPE tracker_udp_connects_total counter\ntracker_udp_connects_total {}\n\
         # TYPE tracker_swarms gauge\ntracker_swarms {swarms}\n\
         # TYPE tracker_peers gauge\ntracker_peers {peers}\n\
         # TYPE tracker_head_mode gauge\ntracker_head_mode {head}\n",
        s.announces.load(Relaxed),
        s.scrapes.load(Relaxed),
        s.failures.load(Relaxed),
        s.peers_sent.load(Relaxed),
        s.peers_sent_same_pid.load(Relaxed),
        s.udp_connects.load(Relaxed),
    )
}

/// Serves HTTP on `listener` until `shutdown`, then lets requests in flight finish (≤ 5 s).
pub async fn run_http(
    listener: TcpListener,
    tracker: Arc<Tracker>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let handle = move |req, remote| {
        let tracker = tracker.clone();
        async move { handle(&tracker, req, remote).await }
    };
    web::serve(listener, handle, shutdown, Duration::from_secs(5)).await
}

/// Serves UDP (BEP 15) on `socket` for ever.
pub async fn run_udp(socket: UdpSocket, tracker: Arc<Tracker>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::with_capacity(1500);
    loop {
        let (n, src) = socket.recv_from(&mut buf).await?;
        out.clear();
        RNG.with_borrow_mut(|rng| tracker.udp(&buf[..n], src, now(), rng, &mut out));
        if let Err(e) = socket.send_to(&out, src).await {
            tracing::debug!("UDP answer to {src} failed: {e}");
        }
    }
}

/// Drops expired peers every `period`, for ever.
pub async fn run_expiry(tracker: Arc<Tracker>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let gone = tracker.expire(now());
        if gone > 0 {
            tracing::debug!(gone, "expired peers");
        }
    }
}

/// How a tracker relates to ALTO.
#[derive(Clone, Debug)]
pub enum Mode {
    /// No ALTO: random peer lists.
    Plain,
    /// Head of a given PID: follows the ALTO server (directory URL, PID, refresh period).
    Head {
        /// The ALTO server's directory URL.
        alto: String,
        /// The PID served.
        pid: String,
        /// Seconds between map refreshes.
        refresh: Duration,
    },
    /// Joins the ALTO server and serves as head when elected.
    Join(crate::membership::JoinSettings),
}

/// A tracker running in the background, for tests and for the plugin: HTTP on `addr`,
/// UDP on `udp` when asked for.
pub struct RunningTracker {
    /// Where it stands with the ALTO server (join mode).
    pub membership: tokio::sync::watch::Receiver<crate::membership::Membership>,
    /// Where the client reports a failing head (join mode).
    pub head_failures: crate::membership::HeadFailures,
    leave: tokio::sync::watch::Sender<bool>,
    member_task: Option<tokio::task::JoinHandle<()>>,
    /// HTTP address.
    pub addr: SocketAddr,
    /// UDP address, if serving UDP.
    pub udp: Option<SocketAddr>,
    /// The tracker.
    pub tracker: Arc<Tracker>,
    stop: tokio::sync::oneshot::Sender<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningTracker {
    /// Starts serving `tracker` in `mode`.
    pub async fn start(
        tracker: Tracker,
        listen: SocketAddr,
        udp: Option<SocketAddr>,
        mode: Mode,
    ) -> std::io::Result<Self> {
        let tracker = Arc::new(tracker);
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let mut tasks = Vec::new();
        let udp = match udp {
            Some(u) => {
                let socket = UdpSocket::bind(u).await?;
                let local = socket.local_addr()?;
                let t = tracker.clone();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = run_udp(socket, t).await {
                        tracing::error!("UDP server stopped: {e}");
                    }
                }));
                Some(local)
            }
            None => None,
        };
        let period = Duration::from_secs((tracker.config().interval as u64 / 2).clamp(1, 300));
        tasks.push(tokio::spawn(run_expiry(tracker.clone(), period)));
        let (state_tx, membership) =
            tokio::sync::watch::channel(crate::membership::Membership::default());
        let (leave, leave_rx) = tokio::sync::watch::channel(false);
        let mut member_task = None;
        let head_failures = crate::membership::HeadFailures::default();
        match mode {
            Mode::Plain => {}
            Mode::Head { alto, pid, refresh } => {
                tasks.push(tokio::spawn(crate::head::follow(
                    tracker.clone(),
                    alto,
                    pid,
                    refresh,
                    None,
                )));
                tasks.push(tokio::spawn(crate::head::fetch_foreign(
                    tracker.clone(),
                    Duration::from_millis(250),
                )));
            }
            Mode::Join(settings) => {
                let url = format!("http://{addr}/announce");
                member_task = Some(tokio::spawn(crate::membership::run(
                    tracker.clone(),
                    url,
                    settings,
                    state_tx,
                    head_failures.clone(),
                    leave_rx,
                )));
                tasks.push(tokio::spawn(crate::head::fetch_foreign(
                    tracker.clone(),
                    Duration::from_millis(250),
                )));
            }
        }
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let http = tokio::spawn(run_http(listener, tracker.clone(), async move {
            let _ = rx.await;
        }));
        Ok(RunningTracker {
            membership,
            head_failures,
            leave,
            member_task,
            addr,
            udp,
            tracker,
            stop,
            tasks,
            http,
        })
    }

    /// Stops without resigning or answering anything more: a crash, for tests of failover.
    pub fn kill(self) {
        if let Some(t) = &self.member_task {
            t.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
        self.http.abort();
    }

    /// The announce URL.
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    /// Stops every task; a head resigns first.
    pub async fn stop(self) {
        let _ = self.leave.send(true);
        if let Some(t) = self.member_task {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let _ = self.stop.send(());
        let _ = self.http.await;
        for t in self.tasks {
            t.abort();
        }
    }
}
