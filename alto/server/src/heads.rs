//! The PID Head extension over HTTP (the draft, sections 2.2 and 2.3; wire format in
//! `docs/pid-head.md`): joins, leases, the head directory as an RFC 9240 property map, and
//! forwarding: endpoint cost and filtered cost map queries for a PID with a live head go to
//! that head and its answer is relayed, queries about endpoints another ALTO server is
//! authoritative for are cascaded to it. Forwarded requests carry `ALTO-Hops` and
//! `ALTO-Via`; a loop or an exhausted hop count is an error, never a hang.

use crate::config::{parse_prefix, Config, PeerServer};
use crate::election::{ElectionConfig, Event, Policy, RateLimit, Registry, Weights};
use alto_model::addr::{self, Prefix};
use alto_model::messages::ReqEndpointCostMap;
use alto_model::pidhead::{
    self, HeadAnswer, HeadMeta, JoinRequest, LeaseAction, LeaseRequest, PropertyMap, Role,
};
use alto_model::{media, AltoError, InformationBase};
use alto_web::client::{http_client, ClientOptions, HttpClient};
use alto_web::{self as web, HttpResponse};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Header counting the forwarding hops a request has made.
pub const HOPS: &str = "alto-hops";
/// Header listing the servers a request passed, comma-separated.
pub const VIA: &str = "alto-via";

/// Where a request has been: its hop count and the servers it passed (`ALTO-Hops`,
/// `ALTO-Via`).
#[derive(Clone, Debug, Default)]
pub struct Hop {
    /// Hops made so far.
    pub hops: u32,
    /// Servers passed, in order.
    pub via: Vec<String>,
}

/// A query to forward: its body and media types.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    /// The answer's media type.
    pub media_type: &'a str,
    /// The body's media type.
    pub accepts: &'a str,
    /// The body.
    pub body: Vec<u8>,
}

/// Counters of the extension, for `/metrics`.
#[derive(Debug, Default)]
pub struct HeadCounters {
    /// Joins accepted.
    pub joins: AtomicU64,
    /// Joins refused by the per-source limit.
    pub joins_limited: AtomicU64,
    /// Heads elected.
    pub elections: AtomicU64,
    /// Leases that lapsed.
    pub lapses: AtomicU64,
    /// Queries forwarded to heads.
    pub forwarded: AtomicU64,
    /// Head answers relayed to clients.
    pub relayed: AtomicU64,
    /// Forwarded queries the server answered itself because the head failed.
    pub fallback: AtomicU64,
    /// Queries cascaded to other ALTO servers.
    pub cascaded: AtomicU64,
    /// Forwarding refused: a loop, or no hops left.
    pub loops: AtomicU64,
}

pub use alto_web::clock::now;

/// A fresh lease token: 128 bits from the operating system's random source. A server that
/// cannot read it must not hand out guessable headships, so this fails loudly instead.
fn token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// State of the extension: it lives across map reloads.
pub struct Heads {
    registry: Mutex<Registry>,
    limiter: Mutex<RateLimit>,
    suspects: Mutex<HashMap<String, u64>>,
    peer_urls: tokio::sync::Mutex<HashMap<String, String>>,
    peers: Vec<(PeerServer, Vec<Prefix>)>,
    trusted: Vec<Prefix>,
    forward: bool,
    forward_timeout: Duration,
    suspect_secs: u64,
    scored: bool,
    server_id: String,
    max_hops: u32,
    client: HttpClient,
    started: Instant,
    /// The counters.
    pub counters: HeadCounters,
}

fn alto_error(status: StatusCode, e: &AltoError) -> HttpResponse {
    web::alto_error(status, e)
}

fn bad(e: AltoError) -> HttpResponse {
    alto_error(StatusCode::BAD_REQUEST, &e)
}

impl Heads {
    /// The extension as configured (validated by `Config::validate`).
    pub fn new(config: &Config) -> Self {
        let s = &config.pid_heads;
        let policy = if s.policy == "scored" {
            let w = &s.weights;
            Policy::Scored(Weights {
                cpu: w.cpu,
                memory: w.memory,
                lifetime: w.lifetime,
                distance: w.distance,
                hysteresis: w.hysteresis,
            })
        } else {
            Policy::First
        };
        let scored = matches!(policy, Policy::Scored(_));
        let election = ElectionConfig {
            policy,
            lease_ttl_secs: s.lease_ttl_secs,
            standby_window_secs: s.standby_window_secs,
            ..ElectionConfig::default()
        };
        let http = http_client(ClientOptions {
            connect_timeout: Some(Duration::from_millis(s.forward_timeout_ms)),
            ..ClientOptions::default()
        });
        Heads {
            registry: Mutex::new(Registry::new(election)),
            limiter: Mutex::new(RateLimit::new(
                s.join_burst.max(1.0),
                s.join_per_sec.max(0.0),
            )),
            suspects: Mutex::new(HashMap::new()),
            peer_urls: tokio::sync::Mutex::new(HashMap::new()),
            peers: config
                .peers
                .iter()
                .map(|p| {
                    (
                        p.clone(),
                        p.prefixes
                            .iter()
                            .filter_map(|x| parse_prefix(x).ok())
                            .collect(),
                    )
                })
                .collect(),
            trusted: s
                .trusted_proxies
                .iter()
                .filter_map(|x| parse_prefix(x).ok())
                .collect(),
            forward: s.forward,
            forward_timeout: Duration::from_millis(s.forward_timeout_ms.max(1)),
            suspect_secs: s.suspect_secs,
            scored,
            server_id: config
                .server_id
                .clone()
                .unwrap_or_else(|| format!("alto-{}", &token()[..8])),
            max_hops: config.max_hops,
            client: http,
            started: Instant::now(),
            counters: HeadCounters::default(),
        }
    }

    /// This server's name in `ALTO-Via`.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    fn count(&self, events: &[Event]) {
        for e in events {
            match e {
                Event::Elected { pid, endpoint } => {
                    self.counters.elections.fetch_add(1, Relaxed);
                    tracing::info!(pid, %endpoint, "PID Head elected");
                }
                Event::Lapsed { pid, endpoint } => {
                    self.counters.lapses.fetch_add(1, Relaxed);
                    tracing::info!(pid, %endpoint, "PID Head lease lapsed");
                }
            }
        }
    }

    /// Ends lapsed leases; the server calls it four times a second.
    pub fn tick(&self) {
        let events = self
            .registry
            .lock()
            .expect("registry lock")
            .tick(now(), token);
        self.count(&events);
    }

    /// Forgets PIDs the network map no longer has (after a reload).
    pub fn retain_pids(&self, base: &InformationBase) {
        self.registry
            .lock()
            .expect("registry lock")
            .retain_pids(|p| base.network_map().pid_index(p).is_some());
    }

    fn meta(base: &InformationBase) -> HeadMeta {
        HeadMeta {
            dependent_vtags: vec![base.network_map().vtag()],
        }
    }

    /// `POST /pidhead/join`.
    pub async fn join(
        &self,
        base: &InformationBase,
        body: &[u8],
        conn: IpAddr,
        headers: &HeaderMap,
    ) -> HttpResponse {
        let web::ClientAddr {
            ip: source,
            via_trusted_proxy: trusted,
        } = web::client_addr(&self.trusted, conn, headers);
        let started = self.started.elapsed().as_secs_f64();
        if !self
            .limiter
            .lock()
            .expect("limiter lock")
            .allow(source, started)
        {
            self.counters.joins_limited.fetch_add(1, Relaxed);
            let mut r = web::simple(
                StatusCode::TOO_MANY_REQUESTS,
                "text/plain",
                format!("too many joins from {source}; try again later\n"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        let req = match JoinRequest::parse(body) {
            Ok(r) => r,
            Err(e) => return bad(e),
        };
        let endpoint = addr::parse_typed_addr(&req.endpoint).expect("checked by the parser");
        if endpoint != source && !trusted {
            return bad(AltoError::invalid_value("endpoint", req.endpoint.clone()));
        }
        let net = base.network_map();
        let Some(pid) = net.pid_of(endpoint) else {
            return bad(AltoError::invalid_value("endpoint", req.endpoint.clone()));
        };
        // A head serves its own PID only: the URLs it hands out must be inside it.
        for (field, url) in [
            ("tracker", Some(req.tracker.as_str())),
            ("alto", req.alto.as_deref()),
        ] {
            if let Some(url) = url {
                if pidhead::url_ip(url).and_then(|ip| net.pid_of(ip)) != Some(pid) {
                    return bad(AltoError::invalid_value(field, url));
                }
            }
        }
        let distance = if self.scored {
            probe(&req.tracker, self.forward_timeout).await
        } else {
            None
        };
        let pid_name = net.pid_name(pid).to_owned();
        let joined = self.registry.lock().expect("registry lock").join(
            &pid_name,
            &req,
            endpoint,
            distance,
            now(),
            token,
        );
        self.counters.joins.fetch_add(1, Relaxed);
        self.count(&joined.events);
        let role = if joined.lease.is_some() {
            Role::Head
        } else {
            Role::Member
        };
        let answer = HeadAnswer {
            meta: Self::meta(base),
            pid: pid_name,
            role,
            head: joined.head,
            lease: joined.lease,
        };
        web::post_answer(
            pidhead::HEAD,
            serde_json::to_vec(&answer).expect("serializes"),
        )
    }

    /// `POST /pidhead/lease`.
    pub fn lease(
        &self,
        base: &InformationBase,
        body: &[u8],
        conn: IpAddr,
        headers: &HeaderMap,
    ) -> HttpResponse {
        let source = web::client_addr(&self.trusted, conn, headers).ip;
        let req = match LeaseRequest::parse(body) {
            Ok(r) => r,
            Err(e) => return bad(e),
        };
        let mut registry = self.registry.lock().expect("registry lock");
        let answer = match req.action {
            LeaseAction::Renew => {
                registry
                    .renew(&req.token, source, now())
                    .map(|(pid, lease, head)| HeadAnswer {
                        meta: Self::meta(base),
                        pid,
                        role: Role::Head,
                        head: Some(head),
                        lease: Some(lease),
                    })
            }
            LeaseAction::Resign => {
                registry
                    .resign(&req.token, source, now(), token)
                    .map(|(pid, events)| {
                        self.count(&events);
                        let head = registry.head(&pid, now());
                        HeadAnswer {
                            meta: Self::meta(base),
                            pid,
                            role: Role::Member,
                            head,
                            lease: None,
                        }
                    })
            }
        };
        drop(registry);
        match answer {
            Ok(a) => web::post_answer(pidhead::HEAD, serde_json::to_vec(&a).expect("serializes")),
            Err(e) => {
                tracing::debug!("lease refused: {e}");
                bad(AltoError::invalid_value("token", req.token))
            }
        }
    }

    /// `GET /pidheads`: the head directory (RFC 9240 property map over the `pid` domain).
    pub fn directory(&self, base: &InformationBase, headers: &HeaderMap) -> HttpResponse {
        let net_id = base.network_map().resource_id();
        let heads = self.registry.lock().expect("registry lock").heads(now());
        let property_map: BTreeMap<String, BTreeMap<String, serde_json::Value>> = heads
            .into_iter()
            .map(|(pid, h)| {
                let props = BTreeMap::from([
                    (
                        pidhead::PROP_TRACKER.to_owned(),
                        serde_json::Value::from(h.tracker),
                    ),
                    (
                        pidhead::PROP_ALTO.to_owned(),
                        serde_json::Value::from(h.alto),
                    ),
                    (
                        pidhead::PROP_EXPIRES.to_owned(),
                        serde_json::Value::from(h.lease_expires),
                    ),
                    (
                        pidhead::PROP_SINCE.to_owned(),
                        serde_json::Value::from(h.since),
                    ),
                ]);
                (format!("{net_id}.pid:{pid}"), props)
            })
            .collect();
        let body = serde_json::to_vec(&PropertyMap {
            meta: Self::meta(base),
            property_map,
        })
        .expect("serializes");
        let etag = HeaderValue::from_str(&format!("\"{}\"", alto_model::content_hash(&body)))
            .expect("hex");
        web::conditional(
            headers,
            etag,
            HeaderValue::from_static("no-cache"),
            pidhead::PROPMAP,
            || body.into(),
        )
    }

    /// The IRD capabilities of the join resource.
    pub fn join_capabilities(&self) -> BTreeMap<String, serde_json::Value> {
        let r = self.registry.lock().expect("registry lock");
        let policy = match r.config().policy {
            Policy::First => "first",
            Policy::Scored(_) => "scored",
        };
        BTreeMap::from([
            (
                "election-policy".to_owned(),
                serde_json::Value::from(policy),
            ),
            (
                "lease-ttl-secs".to_owned(),
                serde_json::Value::from(r.config().lease_ttl_secs),
            ),
        ])
    }

    /// The live head of a PID, unless it is suspect.
    fn usable_head(&self, pid: &str) -> Option<pidhead::HeadInfo> {
        if !self.forward {
            return None;
        }
        let now = now();
        if self
            .suspects
            .lock()
            .expect("suspects lock")
            .get(pid)
            .is_some_and(|&until| until > now)
        {
            return None;
        }
        self.registry.lock().expect("registry lock").head(pid, now)
    }

    fn suspect(&self, pid: &str) {
        self.suspects
            .lock()
            .expect("suspects lock")
            .insert(pid.to_owned(), now() + self.suspect_secs);
    }

    /// The hop count and `ALTO-Via` of a request; a loop is an error answer.
    pub fn hops(&self, headers: &HeaderMap) -> Result<Hop, Box<HttpResponse>> {
        let hops = headers
            .get(HOPS)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok())
            .unwrap_or(0);
        let via: Vec<String> = headers
            .get(VIA)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if via.contains(&self.server_id) {
            self.counters.loops.fetch_add(1, Relaxed);
            let e = AltoError::invalid_value(VIA, via.join(","));
            return Err(Box::new(alto_error(StatusCode::LOOP_DETECTED, &e)));
        }
        Ok(Hop { hops, via })
    }

    fn exhausted(&self, hops: u32) -> HttpResponse {
        self.counters.loops.fetch_add(1, Relaxed);
        alto_error(
            StatusCode::LOOP_DETECTED,
            &AltoError::invalid_value(HOPS, hops.to_string()),
        )
    }

    /// POSTs the query to `url` with the hop headers; the answer if it came in time.
    async fn post(
        &self,
        url: &str,
        q: &Query<'_>,
        hop: &Hop,
    ) -> Option<(StatusCode, HeaderMap, Bytes)> {
        let mut chain = hop.via.clone();
        chain.push(self.server_id.clone());
        let req = http::Request::post(url)
            .header(header::CONTENT_TYPE, q.accepts)
            .header(header::ACCEPT, format!("{},{}", q.media_type, media::ERROR))
            .header(HOPS, (hop.hops + 1).to_string())
            .header(VIA, chain.join(","))
            .body(Full::new(Bytes::from(q.body.clone())))
            .ok()?;
        let exchange = async {
            let resp = self.client.request(req).await.ok()?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.ok()?.to_bytes();
            Some((parts.status, parts.headers, body))
        };
        tokio::time::timeout(self.forward_timeout, exchange)
            .await
            .ok()
            .flatten()
    }

    /// The peer authoritative for every address in `ips`, if one is.
    fn peer_for(&self, ips: &[IpAddr]) -> Option<&PeerServer> {
        self.peers
            .iter()
            .find(|(_, prefixes)| {
                !ips.is_empty()
                    && ips
                        .iter()
                        .all(|ip| prefixes.iter().any(|p| p.contains(*ip)))
            })
            .map(|(peer, _)| peer)
    }

    /// The URL of `media_type`/`accepts` on a peer, found through its directory (kept).
    async fn peer_url(&self, peer: &PeerServer, media_type: &str, accepts: &str) -> Option<String> {
        let key = format!("{}|{accepts}", peer.name);
        if let Some(u) = self.peer_urls.lock().await.get(&key) {
            return Some(u.clone());
        }
        let client = alto_client::AltoClient::new(&peer.directory)
            .ok()?
            .with_timeout(self.forward_timeout);
        let ird = client.directory().await.ok()?;
        let (_, entry) = ird.find(media_type, Some(accepts))?;
        let url = client.resolve(&entry.uri).ok()?;
        self.peer_urls.lock().await.insert(key, url.clone());
        Some(url)
    }

    fn relay(status: StatusCode, headers: &HeaderMap, body: Bytes) -> HttpResponse {
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let mut r = http::Response::new(Full::new(body));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, ctype);
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    /// Cascades a query about `ips` to the peer authoritative for them, relaying whatever it
    /// answers. `None`: no peer is, or it failed (the caller answers itself).
    pub async fn cascade(&self, ips: &[IpAddr], q: &Query<'_>, hop: &Hop) -> Option<HttpResponse> {
        let peer = self.peer_for(ips)?;
        if hop.hops >= self.max_hops {
            return Some(self.exhausted(hop.hops));
        }
        let Some(url) = self.peer_url(peer, q.media_type, q.accepts).await else {
            tracing::warn!(
                peer = peer.name,
                "peer ALTO server unreachable; answering locally"
            );
            self.counters.fallback.fetch_add(1, Relaxed);
            return None;
        };
        self.counters.cascaded.fetch_add(1, Relaxed);
        match self.post(&url, q, hop).await {
            Some((status, headers, body)) => Some(Self::relay(status, &headers, body)),
            None => {
                tracing::warn!(
                    peer = peer.name,
                    "peer ALTO server did not answer; answering locally"
                );
                self.counters.fallback.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// Forwards a query whose sources are all in `pid` to that PID's head at `path` on its
    /// server. `None`: no usable head, or it failed (then it is suspect, and the caller
    /// answers itself).
    pub async fn to_head(
        &self,
        pid: &str,
        path: &str,
        q: &Query<'_>,
        hop: &Hop,
        client: IpAddr,
    ) -> Option<HttpResponse> {
        let head = self.usable_head(pid)?;
        if hop.hops >= self.max_hops || addr::parse_typed_addr(&head.endpoint) == Some(client) {
            return None; // out of hops, or the head asking about itself: answer here
        }
        let url = pidhead::sibling(&head.alto, path);
        self.counters.forwarded.fetch_add(1, Relaxed);
        match self.post(&url, q, hop).await {
            Some((status, headers, body)) if status == StatusCode::OK => {
                self.counters.relayed.fetch_add(1, Relaxed);
                Some(Self::relay(status, &headers, body))
            }
            other => {
                let why = other.map_or("no answer in time".to_owned(), |(s, _, _)| {
                    format!("HTTP {s}")
                });
                tracing::warn!(
                    pid,
                    head = head.endpoint,
                    "head failed ({why}); answering locally and marking it suspect"
                );
                self.suspect(pid);
                self.counters.fallback.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// The sources of an endpoint cost request as addresses, with the client's address where
    /// the request names none; `None` if one does not parse (the local answer says why).
    pub fn ecs_sources(req: &ReqEndpointCostMap, client: IpAddr) -> Option<Vec<IpAddr>> {
        match req.endpoints.srcs.as_ref().filter(|s| !s.is_empty()) {
            Some(srcs) => srcs.iter().map(|s| addr::parse_typed_addr(s)).collect(),
            None => Some(vec![client]),
        }
    }

    /// Renders the counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let c = &self.counters;
        let heads = self
            .registry
            .lock()
            .expect("registry lock")
            .heads(now())
            .len();
        for (name, help, v) in [
            (
                "alto_pidhead_joins_total",
                "Joins accepted.",
                c.joins.load(Relaxed),
            ),
            (
                "alto_pidhead_joins_limited_total",
                "Joins refused by the per-source limit.",
                c.joins_limited.load(Relaxed),
            ),
            (
                "alto_pidhead_elections_total",
                "PID Heads elected.",
                c.elections.load(Relaxed),
            ),
            (
                "alto_pidhead_lapses_total",
                "Head leases that lapsed.",
                c.lapses.load(Relaxed),
            ),
            (
                "alto_forwarded_total",
                "Queries forwarded to PID Heads.",
                c.forwarded.load(Relaxed),
            ),
            (
                "alto_relayed_total",
                "Head answers relayed to clients (head-answered queries).",
                c.relayed.load(Relaxed),
            ),
            (
                "alto_fallback_total",
                "Forwarded or cascaded queries answered locally after a failure.",
                c.fallback.load(Relaxed),
            ),
            (
                "alto_cascaded_total",
                "Queries cascaded to other ALTO servers.",
                c.cascaded.load(Relaxed),
            ),
            (
                "alto_forward_refused_total",
                "Forwarding refused: a loop or no hops left.",
                c.loops.load(Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let _ = writeln!(out, "# HELP alto_pidheads PIDs with a live head.\n# TYPE alto_pidheads gauge\nalto_pidheads {heads}");
    }
}

/// Round trip of a TCP connect to the tracker's address, in milliseconds: the server's own
/// measure of a candidate's distance.
async fn probe(tracker: &str, timeout: Duration) -> Option<f64> {
    let ip = pidhead::url_ip(tracker)?;
    let port = tracker
        .strip_prefix("http://")?
        .split('/')
        .next()?
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(80);
    let start = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port))).await {
        Ok(Ok(_)) => Some(start.elapsed().as_secs_f64() * 1000.0),
        _ => None,
    }
}
