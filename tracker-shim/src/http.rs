//! The tracker's HTTP resources: `/announce` (BEP 3) and `/scrape` (BEP 48) answered in
//! bencode by [`Tracker`], `/metrics`, and while the tracker is a head with maps, the head's
//! ALTO resources (`docs/tracker-shim.md`): the endpoint cost service (RFC 7285 §11.5.1) and
//! the filtered cost map (§11.3.2) for its PID, its network map (§11.2.1), a small directory
//! (§9) and the member list for other heads.
//!
//! The head's maps are read once per request and the snapshot is handed to the resource, so
//! that a step-down in the middle of a request cannot pull them away.

use crate::front::{Front, NoHead, Resource, Route};
use crate::protocol::announce::AnnounceRequest;
use crate::protocol::query::pairs;
use crate::protocol::InfoHash;
use crate::rng::with_rng;
use crate::tracker::{HeadMaps, Tracker};
use alto_model::ird::{self, InfoResourceDirectory, IrdMeta, IrdResourceEntry};
use alto_model::members::{Member, MembersError, MembersResponse, SwarmMembers};
use alto_model::messages::{ReqEndpointCostMap, ReqFilteredCostMap};
use alto_model::{addr, media, AltoError, AnswerError, CostMode, CostType, QueryLimits};
use alto_web::clock::{now, now_millis};
use alto_web::prometheus::{Kind, Text, CONTENT_TYPE as METRICS_TYPE};
use alto_web::{self as web, HttpResponse};
use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use hyper::body::Body;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// What one of the head's ALTO queries may cost: the ALTO server's defaults.
const QUERY_LIMITS: QueryLimits = QueryLimits::DEFAULT;
/// Most peers per swarm in a member list.
const MAX_MEMBERS: usize = 200;
/// The media type of the member list and its errors.
const MEMBERS_TYPE: &str = "application/json";

fn bencoded(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut r = web::simple(status, "text/plain", body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn not_found(path: &str) -> HttpResponse {
    web::simple(
        StatusCode::NOT_FOUND,
        "text/plain",
        format!("no tracker resource at {path}\n"),
    )
}

/// What a client gets when an answer cannot be written; the cause is logged, not sent.
fn internal(what: &str, e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!("cannot write {what}: {e}");
    web::simple(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain",
        "internal error\n",
    )
}

/// `value` as a JSON response.
fn json(status: StatusCode, media_type: &'static str, value: &impl Serialize) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => web::simple(status, media_type, body),
        Err(e) => internal(media_type, e),
    }
}

/// Answers one HTTP request from `remote` at the announce front: an announce or a scrape
/// goes to the announcer's head (`302 Found`, the query unchanged) as [`Front::route`]
/// says, anything else, and what the front does not redirect, is answered by `tracker` as
/// a plain tracker; `/metrics` has the front's counters too.
pub async fn handle_front<B>(
    front: &Front,
    tracker: &Tracker,
    req: Request<B>,
    remote: SocketAddr,
) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let resource = match req.uri().path() {
        "/announce" => Resource::Announce,
        "/scrape" => Resource::Scrape,
        "/metrics" => {
            let mut text = metrics(tracker);
            text.push_str(&front_metrics(front));
            return web::simple(StatusCode::OK, METRICS_TYPE, text);
        }
        _ => return handle(tracker, req, remote).await,
    };
    let query = req.uri().query().unwrap_or("");
    if query.len() > tracker.config().max_query_bytes {
        return handle(tracker, req, remote).await;
    }
    let source = web::client_addr(
        &tracker.config().trusted_proxies,
        remote.ip(),
        req.headers(),
    )
    .ip;
    // Only a source trusted to name another address (`--trust-ip-from`) pays for reading
    // the query.
    let trusted = |p: &alto_model::addr::Prefix| p.contains(source);
    let claimed = if tracker.config().trusted_ip_sources.iter().any(trusted) {
        AnnounceRequest::parse(query.as_bytes())
            .ok()
            .and_then(|a| a.ip)
    } else {
        None
    };
    let announcer = addr::canonical(tracker.client_ip(claimed, source));
    match front.route(resource, announcer, query) {
        Route::Redirect { location, .. } => match HeaderValue::from_str(&location) {
            Ok(v) => {
                let mut r = web::simple(StatusCode::FOUND, "text/plain", Vec::new());
                r.headers_mut().insert(header::LOCATION, v);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(e) => internal("a redirect", e),
        },
        Route::Serve(_) => handle(tracker, req, remote).await,
    }
}

/// The front's counters in the Prometheus text format.
fn front_metrics(front: &Front) -> String {
    let s = &front.stats;
    let mut t = Text::new();
    t.single(
        "front_redirects_to_head_total",
        Kind::Counter,
        "Announces and scrapes redirected to the announcer's PID Head.",
        s.to_head.load(Relaxed),
    )
    .single(
        "front_redirects_to_fallback_total",
        Kind::Counter,
        "Announces and scrapes redirected to the fallback tracker.",
        s.to_fallback.load(Relaxed),
    );
    for (why, name, help) in [
        (NoHead::NoMap, "no_map", "the front has no network map yet"),
        (NoHead::NoPid, "no_pid", "the announcer is in no PID"),
        (NoHead::Headless, "headless", "the PID has no live head"),
        (
            NoHead::Suspect,
            "suspect",
            "the PID's head did not accept a connection",
        ),
    ] {
        t.single(
            &format!("front_served_{name}_total"),
            Kind::Counter,
            &format!("Announces and scrapes served here because {help}."),
            s.served[why as usize].load(Relaxed),
        );
    }
    t.single(
        "front_follow_failures_total",
        Kind::Counter,
        "Rounds of following the ALTO server that failed.",
        s.follow_failures.load(Relaxed),
    )
    .single(
        "front_live_heads",
        Kind::Gauge,
        "PIDs whose head accepted a connection at the last check.",
        front.view().live_heads() as u64,
    );
    t.finish()
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
                Ok(a) => with_rng(|rng| tracker.announce(&a, source, now_millis(), rng, &mut out)),
                Err(e) => tracker.failure(&e.to_string(), &mut out),
            }
            bencoded(StatusCode::OK, out)
        }
        "/scrape" => {
            tracker.scrape(&query, &mut out);
            bencoded(StatusCode::OK, out)
        }
        "/metrics" => web::simple(StatusCode::OK, METRICS_TYPE, metrics(tracker)),
        _ => match tracker.maps() {
            Some(maps) => head_resource(tracker, &maps, req, &path, &query, source).await,
            None => not_found(&path),
        },
    }
}

/// The head's resources, answered from one snapshot of its maps.
async fn head_resource<B>(
    tracker: &Tracker,
    maps: &HeadMaps,
    req: Request<B>,
    path: &str,
    query: &[u8],
    source: IpAddr,
) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match path {
        "/members" => members(tracker, maps, query),
        "/endpointcost/lookup" => endpoint_cost(maps, req, source).await,
        "/costmap/filtered" => filtered_cost_map(maps, req).await,
        "/directory" => json(StatusCode::OK, media::DIRECTORY, &directory(maps)),
        "/networkmap" => network_map(maps, req.headers()),
        _ => not_found(path),
    }
}

/// A POST to one of the head's ALTO resources: admitted like `alto-server` does, decoded
/// and answered by `answer` within [`QUERY_LIMITS`] (`field` names the request's list when
/// the answer is too large), errors in the RFC 7285 format.
async fn alto_post<B, T: Serialize>(
    req: Request<B>,
    path: &str,
    (media_type, accepts): (&'static str, &'static str),
    field: &str,
    answer: impl FnOnce(&[u8]) -> Result<T, AltoError>,
) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let limit = web::BodyLimit::default();
    match web::admit(&parts, body, path, media_type, Some(accepts), limit).await {
        Ok(bytes) => match answer(&bytes).map_err(AnswerError::from) {
            Ok(v) => match QUERY_LIMITS.encode(field, &v) {
                Ok(body) => web::post_answer(media_type, body),
                Err(AnswerError::Alto(e)) => web::alto_error(StatusCode::BAD_REQUEST, &e),
                Err(AnswerError::Encode(e)) => internal(media_type, e),
            },
            Err(AnswerError::Alto(e)) => web::alto_error(StatusCode::BAD_REQUEST, &e),
            Err(AnswerError::Encode(e)) => internal(media_type, e),
        },
        Err(reject) => reject.into_response().0,
    }
}

/// The head's ALTO endpoint cost service (RFC 7285 §11.5.1), for sources in its PID only.
async fn endpoint_cost<B>(maps: &HeadMaps, req: Request<B>, source: IpAddr) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    alto_post(
        req,
        "/endpointcost/lookup",
        (media::ENDPOINT_COST, media::ENDPOINT_COST_PARAMS),
        "endpoints",
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
            maps.base.endpoint_cost(&r, Some(source), &QUERY_LIMITS)
        },
    )
    .await
}

/// The head's filtered cost map (RFC 7285 §11.3.2), for its own PID as the only source.
async fn filtered_cost_map<B>(maps: &HeadMaps, req: Request<B>) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    alto_post(
        req,
        "/costmap/filtered",
        (media::COST_MAP, media::COST_MAP_FILTER),
        "pids",
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
            maps.base.filtered_cost_map(&r, &QUERY_LIMITS)
        },
    )
    .await
}

/// The head's directory (RFC 7285 §9): its network map (under the ALTO server's resource
/// id), the endpoint cost service, the filtered cost map and the member list.
fn directory(maps: &HeadMaps) -> InfoResourceDirectory {
    let names = ["num-routingcost", "ord-routingcost"];
    let routingcost = |mode| CostType::new(alto_model::cost::ROUTINGCOST, mode);
    let costs = || ird::Capabilities {
        cost_type_names: Some(names.map(String::from).to_vec()),
        cost_constraints: Some(true),
        ..ird::Capabilities::default()
    };
    let entry =
        |uri: &str, media_type: &str, accepts: Option<&str>, capabilities| IrdResourceEntry {
            uri: uri.to_owned(),
            media_type: media_type.to_owned(),
            accepts: accepts.map(str::to_owned),
            capabilities,
            uses: None,
        };
    let net_id = maps.network().resource_id().to_owned();
    let members = ird::Capabilities {
        other: BTreeMap::from([("pid".to_owned(), maps.network().pid_name(maps.own).into())]),
        ..ird::Capabilities::default()
    };
    let mut resources = BTreeMap::from([
        (
            "endpoint-cost".to_owned(),
            entry(
                "/endpointcost/lookup",
                media::ENDPOINT_COST,
                Some(media::ENDPOINT_COST_PARAMS),
                Some(costs()),
            ),
        ),
        (
            "filtered-cost-map".to_owned(),
            entry(
                "/costmap/filtered",
                media::COST_MAP,
                Some(media::COST_MAP_FILTER),
                Some(costs()),
            ),
        ),
        (
            "pid-head-members".to_owned(),
            entry("/members", MEMBERS_TYPE, None, Some(members)),
        ),
    ]);
    // Inserted last: the network map keeps the ALTO server's resource id, whatever it is.
    resources.insert(
        net_id.clone(),
        entry("/networkmap", media::NETWORK_MAP, None, None),
    );
    InfoResourceDirectory {
        meta: IrdMeta {
            cost_types: BTreeMap::from([
                (names[0].to_owned(), routingcost(CostMode::Numerical)),
                (names[1].to_owned(), routingcost(CostMode::Ordinal)),
            ]),
            default_alto_network_map: Some(net_id),
        },
        resources,
    }
}

/// The network map as the head holds it (RFC 7285 §11.2.1), with the ALTO server's version
/// tag as its entity tag: the PID's clients revalidate it here, not at the ALTO server.
fn network_map(maps: &HeadMaps, headers: &http::HeaderMap) -> HttpResponse {
    let etag = match HeaderValue::from_str(&format!("\"{}\"", maps.network().tag())) {
        Ok(v) => v,
        Err(e) => return internal("the network map's entity tag", e),
    };
    web::conditional(
        headers,
        etag,
        HeaderValue::from_static("no-cache"),
        media::NETWORK_MAP,
        || {
            // Written only when not revalidated; a map of string-keyed PIDs and prefixes
            // has nothing serde_json can refuse.
            serde_json::to_vec(&maps.base.full_network_map())
                .expect("a network map serializes")
                .into()
        },
    )
}

/// The member list for other heads (see `docs/tracker-shim.md`).
fn members(tracker: &Tracker, maps: &HeadMaps, query: &[u8]) -> HttpResponse {
    let net = maps.network();
    let mut hashes = Vec::new();
    let mut max = MAX_MEMBERS;
    let bad = |error: String| {
        json(
            StatusCode::BAD_REQUEST,
            MEMBERS_TYPE,
            &MembersError { error },
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
    let swarms = hashes
        .iter()
        .map(|h| {
            let counts = tracker.counts(h);
            let peers = tracker
                .members(h, now)
                .into_iter()
                .take(max)
                .map(|p| Member {
                    addr: p.addr,
                    pid: net.pid_of(p.addr.ip()).map(|i| net.pid_name(i).to_owned()),
                    seeder: p.seeder,
                })
                .collect();
            let swarm = SwarmMembers {
                complete: counts.complete,
                incomplete: counts.incomplete,
                peers,
            };
            (h.to_string(), swarm)
        })
        .collect();
    let list = MembersResponse {
        pid: net.pid_name(maps.own).to_owned(),
        swarms,
    };
    json(StatusCode::OK, MEMBERS_TYPE, &list)
}

/// The tracker's counters in the Prometheus text format.
fn metrics(tracker: &Tracker) -> String {
    let s = &tracker.stats;
    let (swarms, peers) = tracker.size();
    let head = u8::from(tracker.maps().is_some());
    let mut t = Text::new();
    for (name, help, counter) in [
        (
            "tracker_announces_total",
            "Announces answered with peers.",
            &s.announces,
        ),
        ("tracker_scrapes_total", "Scrapes answered.", &s.scrapes),
        (
            "tracker_failures_total",
            "Requests answered with a failure reason or a BEP 15 error.",
            &s.failures,
        ),
        (
            "tracker_peers_sent_total",
            "Peers handed out.",
            &s.peers_sent,
        ),
        (
            "tracker_peers_sent_same_pid_total",
            "Peers handed out in the announcer's PID.",
            &s.peers_sent_same_pid,
        ),
        (
            "tracker_udp_connects_total",
            "UDP connects answered (BEP 15).",
            &s.udp_connects,
        ),
    ] {
        t.single(name, Kind::Counter, help, counter.load(Relaxed));
    }
    t.single("tracker_swarms", Kind::Gauge, "Torrents tracked.", swarms)
        .single("tracker_peers", Kind::Gauge, "Peers tracked.", peers)
        .single(
            "tracker_head_mode",
            Kind::Gauge,
            "Whether the tracker has ALTO maps (1) or hands out random peers (0).",
            head,
        );
    t.finish()
}

/// Serves HTTP on `listener` until `shutdown`, then lets requests in flight finish (≤ 5 s);
/// as the announce front when `front` is given.
pub async fn run_http(
    listener: TcpListener,
    tls: Option<Arc<alto_web::tls::ServerTls>>,
    tracker: Arc<Tracker>,
    front: Option<Arc<Front>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = web::Limits {
        header_read_timeout: Duration::from_millis(tracker.config().header_read_timeout_ms.max(1)),
        max_connections: tracker.config().max_connections,
        grace: Duration::from_secs(5),
        ..web::Limits::default()
    };
    let handle = move |req, remote| {
        let (tracker, front) = (tracker.clone(), front.clone());
        async move {
            match &front {
                Some(f) => handle_front(f, &tracker, req, remote).await,
                None => handle(&tracker, req, remote).await,
            }
        }
    };
    web::serve_tls(listener, tls, handle, shutdown, limits).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use alto_model::NetworkMap;

    fn maps() -> HeadMaps {
        let data: alto_model::messages::NetworkMapData = serde_json::from_str(
            r#"{"PID1": {"ipv4": ["127.1.0.0/16"]}, "PID2": {"ipv4": ["127.2.0.0/16"]}}"#,
        )
        .unwrap();
        let net = NetworkMap::from_data("my-network-map", &data).unwrap();
        let own = net.pid_index("PID1").unwrap();
        HeadMaps::new(1, net, own, vec![(own, 1.0)])
    }

    #[test]
    fn the_directory_is_the_json_it_always_was() {
        let names = ["num-routingcost", "ord-routingcost"];
        let expected = serde_json::json!({
            "meta": {
                "default-alto-network-map": "my-network-map",
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
                    "capabilities": {"pid": "PID1"}
                },
                "my-network-map": {"uri": "/networkmap", "media-type": media::NETWORK_MAP}
            }
        });
        assert_eq!(serde_json::to_value(directory(&maps())).unwrap(), expected);
    }

    #[test]
    fn metrics_keep_their_names_and_values() {
        let t = Tracker::new(crate::tracker::TrackerConfig::default());
        t.stats.announces.fetch_add(3, Relaxed);
        t.set_maps(maps());
        let text = metrics(&t);
        for line in [
            "# TYPE tracker_announces_total counter\ntracker_announces_total 3\n",
            "# TYPE tracker_udp_connects_total counter\ntracker_udp_connects_total 0\n",
            "# TYPE tracker_swarms gauge\ntracker_swarms 0\n",
            "# TYPE tracker_head_mode gauge\ntracker_head_mode 1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
