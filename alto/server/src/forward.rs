//! Forwarding of ALTO queries (the draft, section 2.2; `docs/pid-head.md`): what goes where,
//! decided here once. An endpoint cost query about endpoints another ALTO server is
//! authoritative for is cascaded to it (its URL found through its directory, then kept); an
//! endpoint cost or filtered cost map query whose sources are all in one PID with a live,
//! unsuspected head goes to that head; an endpoint property query is cascaded. Answers are
//! relayed. A head that fails is suspect for a while and the query is answered locally, as
//! is one a peer fails. Forwarded requests carry `ALTO-Hops` and `ALTO-Via`; a loop or an
//! exhausted hop count is an error (508), never a hang.

use crate::config::{parse_prefix, Config, PeerServer};
use crate::metrics::HeadCounters;
use crate::pidhead::{lease_token, now, Heads, TokenError};
use crate::query::AltoQuery;
use alto_model::addr::{self, Prefix};
use alto_model::{check, media, pidhead, AltoError, InformationBase, QueryLimits};
use alto_web::client::{http_client, ClientOptions, HttpClient};
use alto_web::{self as web, HttpResponse};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use http_body_util::{BodyExt, Full, Limited};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// A query as it is sent on: its body and media types.
#[derive(Clone, Debug)]
struct Outgoing {
    /// The answer's media type.
    media_type: &'static str,
    /// The body's media type.
    accepts: &'static str,
    /// The body.
    body: Bytes,
}

/// State of forwarding: suspects and peer URLs live across map reloads.
pub struct Forwarder {
    suspects: Mutex<HashMap<String, u64>>,
    peer_urls: tokio::sync::Mutex<HashMap<String, String>>,
    peers: Vec<(PeerServer, Vec<Prefix>)>,
    to_heads: bool,
    timeout: Duration,
    suspect_secs: u64,
    server_id: String,
    max_hops: u32,
    client: HttpClient,
    counters: Arc<HeadCounters>,
    /// The state of the generator that draws which pairs of a head's answer are checked.
    sampler: Mutex<u64>,
}

fn loop_detected(e: &AltoError) -> HttpResponse {
    web::alto_error(StatusCode::LOOP_DETECTED, e)
}

impl Forwarder {
    /// Forwarding as configured, counting into `counters`. Without a configured
    /// `server-id` the server names itself `alto-` and 8 random hex digits, which needs the
    /// operating system's random source.
    pub fn new(config: &Config, counters: Arc<HeadCounters>) -> Result<Self, TokenError> {
        let s = &config.pid_heads;
        let server_id = match &config.server_id {
            Some(id) => id.clone(),
            None => format!("alto-{}", &lease_token()?[..8]),
        };
        let seed = u64::from_str_radix(&lease_token()?[..16], 16).unwrap_or(0);
        let client = http_client(ClientOptions {
            connect_timeout: Some(Duration::from_millis(s.forward_timeout_ms)),
            ..ClientOptions::default()
        });
        Ok(Forwarder {
            suspects: Mutex::new(HashMap::new()),
            peer_urls: tokio::sync::Mutex::new(HashMap::new()),
            peers: config
                .peers
                .iter()
                .map(|p| {
                    let prefixes = p
                        .prefixes
                        .iter()
                        .filter_map(|x| parse_prefix(x).ok())
                        .collect();
                    (p.clone(), prefixes)
                })
                .collect(),
            to_heads: s.forward,
            timeout: Duration::from_millis(s.forward_timeout_ms.max(1)),
            suspect_secs: s.suspect_secs,
            server_id,
            max_hops: config.max_hops,
            client,
            counters,
            sampler: Mutex::new(seed),
        })
    }

    /// A draw below `n` (SplitMix64), for the pairs a head's answer is checked on.
    fn pick(&self, n: usize) -> usize {
        let mut state = self.sampler.lock().expect("sampler lock");
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }

    /// This server's name in `ALTO-Via`.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The hop count and `ALTO-Via` of a request; a loop (this server already in
    /// `ALTO-Via`) is the 508 answer.
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
            return Err(Box::new(loop_detected(&e)));
        }
        Ok(Hop { hops, via })
    }

    /// Forwards `query` (whose encoded body is `body`) to a PID's head or cascades it to the
    /// ALTO server authoritative for its endpoints, and relays the answer. `None`: answer it
    /// here (nobody to forward to, or they failed).
    pub async fn forward(&self, ask: &Ask<'_>, body: &Bytes) -> Option<HttpResponse> {
        let Ask {
            base,
            query,
            hop,
            client,
            limits,
            ..
        } = *ask;
        let net = base.network_map();
        let same_pid = |ips: &[IpAddr]| {
            let first = net.pid_of(*ips.first()?)?;
            ips.iter()
                .all(|ip| net.pid_of(*ip) == Some(first))
                .then(|| net.pid_name(first).to_owned())
        };
        match query {
            AltoQuery::EndpointCost(req) => {
                let sources = ecs_sources(req, client)?;
                let mut req = req.clone();
                if req.endpoints.srcs.as_ref().is_none_or(|s| s.is_empty()) {
                    // The head or peer would see the server's address: name the client.
                    req.endpoints.srcs = Some(vec![addr::typed_addr(client)]);
                }
                let q = Outgoing {
                    media_type: media::ENDPOINT_COST,
                    accepts: media::ENDPOINT_COST_PARAMS,
                    body: serde_json::to_vec(&req).ok()?.into(),
                };
                if let Some(r) = self.cascade(&sources, &q, hop, limits).await {
                    return Some(r);
                }
                let pid = same_pid(&sources)?;
                self.to_head(ask, &pid, "/endpointcost/lookup", &q).await
            }
            AltoQuery::FilteredCostMap(req) => {
                let srcs = req
                    .pids
                    .as_ref()
                    .map(|p| p.srcs.clone())
                    .unwrap_or_default();
                let pid = srcs.first()?.clone();
                if srcs.iter().any(|s| *s != pid) || net.pid_index(&pid).is_none() {
                    return None;
                }
                let q = Outgoing {
                    media_type: media::COST_MAP,
                    accepts: media::COST_MAP_FILTER,
                    body: body.clone(),
                };
                self.to_head(ask, &pid, "/costmap/filtered", &q).await
            }
            AltoQuery::EndpointProp(req) => {
                let ips: Option<Vec<IpAddr>> = req
                    .endpoints
                    .iter()
                    .map(|e| addr::parse_typed_addr(e))
                    .collect();
                let q = Outgoing {
                    media_type: media::ENDPOINT_PROP,
                    accepts: media::ENDPOINT_PROP_PARAMS,
                    body: body.clone(),
                };
                self.cascade(&ips?, &q, hop, limits).await
            }
            AltoQuery::FilteredNetworkMap(_) => None,
        }
    }

    /// The live head of a PID, unless forwarding to heads is off or it is suspect.
    fn usable_head(&self, heads: &Heads, pid: &str) -> Option<pidhead::HeadInfo> {
        if !self.to_heads {
            return None;
        }
        if self
            .suspects
            .lock()
            .expect("suspects lock")
            .get(pid)
            .is_some_and(|&until| until > now())
        {
            return None;
        }
        heads.head(pid)
    }

    fn suspect(&self, pid: &str) {
        self.suspects
            .lock()
            .expect("suspects lock")
            .insert(pid.to_owned(), now() + self.suspect_secs);
    }

    fn exhausted(&self, hops: u32) -> HttpResponse {
        self.counters.loops.fetch_add(1, Relaxed);
        loop_detected(&AltoError::invalid_value(HOPS, hops.to_string()))
    }

    /// POSTs the query to `url` with the hop headers; the answer if it came in time and
    /// within `max_bytes` (more is not read).
    async fn post(
        &self,
        url: &str,
        q: &Outgoing,
        hop: &Hop,
        max_bytes: usize,
    ) -> Option<(StatusCode, HeaderMap, Bytes)> {
        let mut chain = hop.via.clone();
        chain.push(self.server_id.clone());
        let req = http::Request::post(url)
            .header(header::CONTENT_TYPE, q.accepts)
            .header(header::ACCEPT, format!("{},{}", q.media_type, media::ERROR))
            .header(HOPS, (hop.hops + 1).to_string())
            .header(VIA, chain.join(","))
            .body(Full::new(q.body.clone()))
            .ok()?;
        let exchange = async {
            let resp = self.client.request(req).await.ok()?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, max_bytes)
                .collect()
                .await
                .ok()?
                .to_bytes();
            Some((parts.status, parts.headers, body))
        };
        tokio::time::timeout(self.timeout, exchange)
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
            .with_timeout(self.timeout);
        let ird = client.directory().await.ok()?;
        let (_, entry) = ird.find(media_type, Some(accepts))?;
        let url = client.resolve(&entry.uri).ok()?;
        self.peer_urls.lock().await.insert(key, url.clone());
        Some(url)
    }

    /// Cascades a query about `ips` to the peer authoritative for them, relaying whatever it
    /// answers. `None`: no peer is, or it failed (the caller answers itself).
    async fn cascade(
        &self,
        ips: &[IpAddr],
        q: &Outgoing,
        hop: &Hop,
        limits: &QueryLimits,
    ) -> Option<HttpResponse> {
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
        match self.post(&url, q, hop, limits.max_answer_bytes).await {
            Some((status, headers, body)) => Some(relay(status, &headers, body)),
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
    /// server, and relays the answer once it passed [`alto_model::check`]. `None`: no usable
    /// head, or it failed (no answer in time, an error, or an answer that fails the checks:
    /// then it is suspect, its failure counts toward revoking its lease, and the caller
    /// answers itself).
    async fn to_head(
        &self,
        ask: &Ask<'_>,
        pid: &str,
        path: &str,
        q: &Outgoing,
    ) -> Option<HttpResponse> {
        let head = self.usable_head(ask.heads, pid)?;
        let head_ip = addr::parse_typed_addr(&head.endpoint)?;
        if ask.hop.hops >= self.max_hops || head_ip == ask.client {
            return None; // out of hops, or the head asking about itself: answer here
        }
        let url = pidhead::sibling(&head.ecs_url, path);
        self.counters.forwarded.fetch_add(1, Relaxed);
        let limits = ask.limits;
        let why = match self.post(&url, q, ask.hop, limits.max_answer_bytes).await {
            Some((StatusCode::OK, headers, body)) => {
                let ctype = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                let mut pick = |n| self.pick(n);
                let checked = match ask.query {
                    AltoQuery::EndpointCost(req) => check::endpoint_cost(
                        ask.base, req, ask.client, ctype, &body, limits, &mut pick,
                    )
                    .map(|_| ()),
                    AltoQuery::FilteredCostMap(req) => {
                        check::filtered_cost_map(ask.base, req, ctype, &body, limits, &mut pick)
                            .map(|_| ())
                    }
                    _ => Err(check::Refused::Shape("not a query heads answer".into())),
                };
                match checked {
                    Ok(()) => {
                        ask.heads.answer_passed(pid, head_ip);
                        self.counters.relayed.fetch_add(1, Relaxed);
                        return Some(relay_as(q.media_type, body));
                    }
                    Err(refused) => format!("its answer was refused: {refused}"),
                }
            }
            Some((status, _, _)) => format!("HTTP {status}"),
            None => "no answer in time, or one too large".to_owned(),
        };
        tracing::warn!(
            pid,
            head = head.endpoint,
            "head failed ({why}); answering locally and marking it suspect"
        );
        self.suspect(pid);
        ask.heads.answer_failed(pid, head_ip).await;
        self.counters.fallback.fetch_add(1, Relaxed);
        None
    }
}

/// A query to forward, with what its answer is checked against.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    /// The election, for the PID's head and its failures.
    pub heads: &'a Heads,
    /// The server's maps.
    pub base: &'a InformationBase,
    /// The decoded query.
    pub query: &'a AltoQuery,
    /// Where the request has been.
    pub hop: &'a Hop,
    /// The client's address.
    pub client: IpAddr,
    /// What one query may cost.
    pub limits: &'a QueryLimits,
}

/// A head's checked answer as this server sends it on: its own media type, not the head's.
fn relay_as(media_type: &'static str, body: Bytes) -> HttpResponse {
    let mut r = web::simple(StatusCode::OK, media_type, body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A head's or peer's answer as this server sends it on.
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

/// The sources of an endpoint cost request as addresses, with the client's address where
/// the request names none; `None` if one does not parse (the local answer says why).
pub fn ecs_sources(
    req: &alto_model::messages::ReqEndpointCostMap,
    client: IpAddr,
) -> Option<Vec<IpAddr>> {
    match req.endpoints.srcs.as_ref().filter(|s| !s.is_empty()) {
        Some(srcs) => srcs.iter().map(|s| addr::parse_typed_addr(s)).collect(),
        None => Some(vec![client]),
    }
}
