//! The HTTP side of PID Head election (the draft, sections 2.2 and 2.3; wire format in
//! `docs/pid-head.md`): `POST /pidhead/join`, `POST /pidhead/lease`, the head directory
//! `GET /pidheads` as an RFC 9240 property map, lease tokens and the lease clock. The
//! decisions are [`crate::election`]'s; this shell checks the requests, measures distance
//! ([`crate::probe`]), reads the time and counts.

use crate::answer::{self, server_fault};
use crate::config::{parse_prefix, Config};
use crate::election::{ElectionConfig, ElectionEvent, ElectionPolicy, Registry, Weights};
use crate::metrics::HeadCounters;
use crate::probe;
use crate::ratelimit::RateLimit;
use alto_model::addr::{self, Prefix};
use alto_model::pidhead::{
    self, HeadAnswer, HeadInfo, HeadMeta, JoinRequest, LeaseAction, LeaseRequest, PropertyMap, Role,
};
use alto_model::{AltoError, InformationBase};
use alto_web::prometheus::Text;
use alto_web::{self as web, HttpResponse};
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The lease clock: wall-clock seconds that follow tokio's time, so tests drive leases
/// with `tokio::time::pause`/`advance`.
pub use alto_web::clock::now;

/// The operating system's random source failed: no lease token can be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct TokenError(getrandom::Error);

/// A fresh lease token: 128 bits from the operating system's random source, in hex. There
/// is no fallback: a server that cannot read it must not hand out guessable headships.
pub fn lease_token() -> Result<String, TokenError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(TokenError)?;
    Ok(alto_model::hex(&b))
}

/// A token source for the election that remembers its first failure.
struct Tokens(Option<TokenError>);

impl Tokens {
    fn new() -> Self {
        Tokens(None)
    }

    fn draw(&mut self) -> Option<String> {
        lease_token().map_err(|e| self.0 = Some(e)).ok()
    }
}

/// State of the election's HTTP side: it lives across map reloads.
pub struct Heads {
    registry: Mutex<Registry>,
    limiter: Mutex<RateLimit>,
    trusted: Vec<Prefix>,
    scored: bool,
    probe_timeout: Duration,
    started: Instant,
    counters: Arc<HeadCounters>,
}

fn bad(e: AltoError) -> HttpResponse {
    web::alto_error(StatusCode::BAD_REQUEST, &e)
}

fn meta(base: &InformationBase) -> HeadMeta {
    HeadMeta {
        dependent_vtags: vec![base.network_map().vtag()],
    }
}

impl Heads {
    /// The election as configured, counting into `counters`.
    pub fn new(config: &Config, counters: Arc<HeadCounters>) -> Self {
        let s = &config.pid_heads;
        let policy = if s.policy == "scored" {
            let w = &s.weights;
            ElectionPolicy::Scored(Weights {
                cpu: w.cpu,
                memory: w.memory,
                lifetime: w.lifetime,
                distance: w.distance,
                hysteresis: w.hysteresis,
            })
        } else {
            ElectionPolicy::First
        };
        let scored = matches!(policy, ElectionPolicy::Scored(_));
        let election = ElectionConfig {
            policy,
            lease_ttl_secs: s.lease_ttl_secs,
            standby_window_secs: s.standby_window_secs,
            ..ElectionConfig::default()
        };
        Heads {
            registry: Mutex::new(Registry::new(election)),
            limiter: Mutex::new(RateLimit::new(
                s.join_burst.max(1.0),
                s.join_per_sec.max(0.0),
            )),
            trusted: s
                .trusted_proxies
                .iter()
                .filter_map(|x| parse_prefix(x).ok())
                .collect(),
            scored,
            probe_timeout: Duration::from_millis(s.forward_timeout_ms.max(1)),
            started: Instant::now(),
            counters,
        }
    }

    /// The counters of the extension.
    pub fn counters(&self) -> &HeadCounters {
        &self.counters
    }

    fn count(&self, events: &[ElectionEvent]) {
        for e in events {
            match e {
                ElectionEvent::Elected { pid, endpoint } => {
                    self.counters.elections.fetch_add(1, Relaxed);
                    tracing::info!(pid, %endpoint, "PID Head elected");
                }
                ElectionEvent::Lapsed { pid, endpoint } => {
                    self.counters.lapses.fetch_add(1, Relaxed);
                    tracing::info!(pid, %endpoint, "PID Head lease lapsed");
                }
            }
        }
    }

    /// Ends lapsed leases and promotes standbys. [`crate::server::run`] calls it every
    /// 250 ms, so a lease lapses within a quarter second of its expiry even when nobody asks;
    /// a join also ends the lapsed lease of its PID first, and a lapsed token never renews.
    pub fn tick(&self) {
        let mut tokens = Tokens::new();
        let events = self
            .registry
            .lock()
            .expect("registry lock")
            .tick(now(), || tokens.draw());
        self.count(&events);
        if let Some(e) = tokens.0 {
            tracing::error!("a standby was not promoted: {e}");
        }
    }

    /// Forgets PIDs the network map no longer has (after a reload).
    pub fn retain_pids(&self, base: &InformationBase) {
        self.registry
            .lock()
            .expect("registry lock")
            .retain_pids(|p| base.network_map().pid_index(p).is_some());
    }

    /// The live head of `pid`, if any.
    pub fn head(&self, pid: &str) -> Option<HeadInfo> {
        self.registry
            .lock()
            .expect("registry lock")
            .head(pid, now())
    }

    /// How many PIDs have a live head.
    pub fn live(&self) -> usize {
        self.registry
            .lock()
            .expect("registry lock")
            .heads(now())
            .len()
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
        // The parser checked the address; a defect here is still the request's.
        let Some(endpoint) = addr::parse_typed_addr(&req.endpoint) else {
            return bad(AltoError::invalid_value("endpoint", req.endpoint.clone()));
        };
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
            ("alto", req.ecs_url.as_deref()),
        ] {
            if let Some(url) = url {
                if pidhead::url_ip(url).and_then(|ip| net.pid_of(ip)) != Some(pid) {
                    return bad(AltoError::invalid_value(field, url));
                }
            }
        }
        let distance = if self.scored {
            probe::tcp_round_trip(&req.tracker, self.probe_timeout).await
        } else {
            None
        };
        let pid_name = net.pid_name(pid).to_owned();
        let mut tokens = Tokens::new();
        let joined = self.registry.lock().expect("registry lock").join(
            &pid_name,
            &req,
            endpoint,
            distance,
            now(),
            || tokens.draw(),
        );
        self.count(&joined.events);
        if let Some(e) = tokens.0 {
            // Nobody was made head without a token, and no lease was handed out.
            return server_fault(e);
        }
        self.counters.joins.fetch_add(1, Relaxed);
        let role = if joined.lease.is_some() {
            Role::Head
        } else {
            Role::Member
        };
        let answer = HeadAnswer {
            meta: meta(base),
            pid: pid_name,
            role,
            head: joined.head,
            lease: joined.lease,
        };
        match answer::json(&answer) {
            Ok(body) => web::post_answer(pidhead::HEAD, body),
            Err(fault) => fault.into_response(),
        }
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
        let mut tokens = Tokens::new();
        let mut registry = self.registry.lock().expect("registry lock");
        let answer = match req.action {
            LeaseAction::Renew => {
                registry
                    .renew(&req.token, source, now())
                    .map(|(pid, lease, head)| HeadAnswer {
                        meta: meta(base),
                        pid,
                        role: Role::Head,
                        head: Some(head),
                        lease: Some(lease),
                    })
            }
            LeaseAction::Resign => registry
                .resign(&req.token, source, now(), || tokens.draw())
                .map(|(pid, events)| {
                    self.count(&events);
                    let head = registry.head(&pid, now());
                    HeadAnswer {
                        meta: meta(base),
                        pid,
                        role: Role::Member,
                        head,
                        lease: None,
                    }
                }),
        };
        drop(registry);
        if let Some(e) = tokens.0 {
            // The resignation stands; only the standby's promotion waits for its next join.
            tracing::error!("a standby was not promoted: {e}");
        }
        match answer {
            Ok(a) => match answer::json(&a) {
                Ok(body) => web::post_answer(pidhead::HEAD, body),
                Err(fault) => fault.into_response(),
            },
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
                    (pidhead::PROP_TRACKER.to_owned(), h.tracker.into()),
                    (pidhead::PROP_ALTO.to_owned(), h.ecs_url.into()),
                    (pidhead::PROP_EXPIRES.to_owned(), h.lease_expires.into()),
                    (pidhead::PROP_SINCE.to_owned(), h.since.into()),
                ]);
                (format!("{net_id}.pid:{pid}"), props)
            })
            .collect();
        let map = PropertyMap {
            meta: meta(base),
            property_map,
        };
        let tagged = answer::json(&map)
            .and_then(|body| Ok((answer::etag(&alto_model::content_hash(&body))?, body)));
        let (etag, body) = match tagged {
            Ok(t) => t,
            Err(fault) => return fault.into_response(),
        };
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
            ElectionPolicy::First => "first",
            ElectionPolicy::Scored(_) => "scored",
        };
        BTreeMap::from([
            ("election-policy".to_owned(), policy.into()),
            (
                "lease-ttl-secs".to_owned(),
                r.config().lease_ttl_secs.into(),
            ),
        ])
    }

    /// Appends the extension's counters to `out` in the Prometheus text format; kept for
    /// embedders that print the page themselves ([`crate::App::metrics_text`] is the whole
    /// page, rendered in [`crate::metrics`]).
    pub fn render(&self, out: &mut String) {
        let mut text = Text::new();
        self.counters.write(&mut text, self.live());
        out.push_str(&text.finish());
    }
}
