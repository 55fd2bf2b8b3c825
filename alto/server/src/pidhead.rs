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
use crate::ratelimit::{prefix_key, RateLimit};
use crate::store::{EtcdStore, StoreError};
use alto_model::addr::{self, Prefix};
use alto_model::pidhead::{
    self, HeadAnswer, HeadInfo, HeadMeta, JoinRequest, Lease, LeaseAction, LeaseRequest,
    PropertyMap, Role,
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

/// Where the election's state is kept (`[pid-heads] store`).
enum Store {
    /// In this process.
    Memory(Mutex<Registry>),
    /// In etcd, shared with other replicas.
    Etcd(Arc<EtcdStore>),
}

/// The answer to a join or lease that the store could not carry out: etcd is out of reach
/// (or contended), so the server does not guess; the client tries again, here or at another
/// replica.
/// What a lease request did: a renewal (PID, lease, head) or a resignation (PID, what it
/// set off, the head that follows, if any).
enum Leased {
    Renewed(String, Lease, HeadInfo),
    Resigned(String, Vec<ElectionEvent>, Option<HeadInfo>),
}

impl Leased {
    fn renewed((pid, lease, head): (String, Lease, HeadInfo)) -> Self {
        Leased::Renewed(pid, lease, head)
    }
}

fn unavailable(e: &StoreError) -> HttpResponse {
    tracing::warn!("PID Head store: {e}");
    let mut r = web::simple(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain",
        format!("the PID Head election is unavailable ({e}); try again later\n"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// State of the election's HTTP side: it lives across map reloads.
pub struct Heads {
    store: Store,
    limiter: Mutex<RateLimit>,
    prefix_limiter: Mutex<RateLimit>,
    prefix_bits: (u8, u8),
    no_heads: Vec<String>,
    /// Failed answers in a row of each PID's head: its endpoint and the count.
    failures: Mutex<BTreeMap<String, (IpAddr, u32)>>,
    /// When each PID's head was last probed on a member's join ([`HEAD_PROBE_EVERY`]).
    head_probes: Mutex<BTreeMap<String, Instant>>,
    /// The `rejoin-secs` advice for a kept candidate and for any other joiner
    /// ([`ElectionConfig::rejoin_secs`]; the election's settings are read at start).
    rejoin_secs: (u64, u64),
    max_failures: u32,
    revoked_secs: u64,
    trusted: Vec<Prefix>,
    scored: bool,
    probe_timeout: Duration,
    started: Instant,
    counters: Arc<HeadCounters>,
}

/// A PID's head is probed on its members' joins at most this often. A member joins again at
/// once when its head fails it, so a head that left or cannot be reached is found within a
/// few of its members' joins, not at its lease's end; the bound keeps the probes following
/// the PIDs, not the members.
const HEAD_PROBE_EVERY: Duration = Duration::from_secs(1);

fn bad(e: AltoError) -> HttpResponse {
    web::alto_error(StatusCode::BAD_REQUEST, &e)
}

fn meta(base: &InformationBase) -> HeadMeta {
    HeadMeta {
        dependent_vtags: vec![base.network_map().vtag()],
    }
}

impl Heads {
    /// The election as configured, counting into `counters`; an etcd store speaks TLS with
    /// `etcd_tls` (else the process's default client configuration).
    pub fn new(
        config: &Config,
        counters: Arc<HeadCounters>,
        etcd_tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
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
            max_candidates: s.max_candidates,
        };
        let rejoin_secs = (election.rejoin_secs(true), election.rejoin_secs(false));
        let store = if s.store == "etcd" {
            Store::Etcd(Arc::new(EtcdStore::new(
                election,
                s.etcd_endpoints.clone(),
                s.etcd_prefix.clone(),
                Duration::from_millis(s.etcd_timeout_ms.max(1)),
                etcd_tls,
            )))
        } else {
            Store::Memory(Mutex::new(Registry::new(election)))
        };
        Heads {
            store,
            limiter: Mutex::new(RateLimit::new(
                s.join_burst.max(1.0),
                s.join_per_sec.max(0.0),
            )),
            prefix_limiter: Mutex::new(RateLimit::new(
                s.join_prefix_burst.max(1.0),
                s.join_prefix_per_sec.max(0.0),
            )),
            prefix_bits: (s.join_prefix_v4, s.join_prefix_v6),
            no_heads: s.no_heads.clone(),
            failures: Mutex::new(BTreeMap::new()),
            head_probes: Mutex::new(BTreeMap::new()),
            rejoin_secs,
            max_failures: s.max_head_failures.max(1),
            revoked_secs: s.revoked_secs,
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
    pub async fn tick(&self) {
        let mut tokens = Tokens::new();
        let events = match &self.store {
            Store::Memory(r) => r
                .lock()
                .expect("registry lock")
                .tick(now(), || tokens.draw()),
            Store::Etcd(e) => e.tick(now(), || tokens.draw()).await,
        };
        self.count(&events);
        if let Some(e) = tokens.0 {
            tracing::error!("a standby was not promoted: {e}");
        }
    }

    /// The task that keeps an etcd store's view current (a watch on etcd), to be run for as
    /// long as the server runs; none for the memory store.
    pub fn follower(&self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        match &self.store {
            Store::Memory(_) => None,
            Store::Etcd(e) => Some(e.clone().follow()),
        }
    }

    /// Forgets PIDs the network map no longer has (after a reload). The etcd store keeps
    /// them: other replicas may serve another version of the map.
    pub fn retain_pids(&self, base: &InformationBase) {
        if let Store::Memory(r) = &self.store {
            r.lock()
                .expect("registry lock")
                .retain_pids(|p| base.network_map().pid_index(p).is_some());
        }
    }

    /// The live head of `pid`, if any.
    pub fn head(&self, pid: &str) -> Option<HeadInfo> {
        match &self.store {
            Store::Memory(r) => r.lock().expect("registry lock").head(pid, now()),
            Store::Etcd(e) => e.head(pid, now()),
        }
    }

    /// Every PID with a live head, sorted by PID.
    fn heads(&self) -> Vec<(String, HeadInfo)> {
        match &self.store {
            Store::Memory(r) => r.lock().expect("registry lock").heads(now()),
            Store::Etcd(e) => e.heads(now()),
        }
    }

    /// How many PIDs have a live head.
    pub fn live(&self) -> usize {
        self.heads().len()
    }

    fn config(&self) -> ElectionConfig {
        match &self.store {
            Store::Memory(r) => r.lock().expect("registry lock").config().clone(),
            Store::Etcd(e) => e.config().clone(),
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
        if !self.admit_join(source) {
            self.counters.joins_limited.fetch_add(1, Relaxed);
            let mut r = web::simple(
                StatusCode::TOO_MANY_REQUESTS,
                "text/plain",
                format!("too many joins from {source} or its network; try again later\n"),
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
        // A head serves its PID from its own address: the URLs it hands out must name the
        // joining endpoint, with a valid port (a trusted proxy may name another host of the
        // PID), so that nobody points a PID's members at an address of its choosing.
        for (field, url) in [
            ("tracker", Some(req.tracker.as_str())),
            ("alto", req.ecs_url.as_deref()),
        ] {
            let Some(url) = url else { continue };
            let ok = pidhead::url_socket(url).is_some_and(|to| {
                let ip = addr::canonical(to.ip());
                if trusted {
                    net.pid_of(ip) == Some(pid)
                } else {
                    ip == endpoint
                }
            });
            if !ok {
                return bad(AltoError::invalid_value(field, url));
            }
        }
        let pid_name = net.pid_name(pid).to_owned();
        let (rejoin_kept, rejoin_other) = self.rejoin_secs;
        // Not a candidate: the advice of one not kept.
        let member = |head| {
            let answer = HeadAnswer {
                meta: meta(base),
                pid: pid_name.clone(),
                role: Role::Member,
                head,
                lease: None,
                rejoin_secs: Some(rejoin_other),
            };
            match answer::json(&answer) {
                Ok(body) => web::post_answer(pidhead::HEAD, body),
                Err(fault) => fault.into_response(),
            }
        };
        if self.no_heads.contains(&pid_name) {
            return member(None);
        }
        // The connect-back check, under every policy: only a candidate whose tracker the
        // server reached itself can be elected (its round trip is the scored policy's
        // distance).
        // The head is probed alongside: a member of a head it cannot reach joins again.
        let head_probe = self.head_probe_due(&pid_name, endpoint);
        let (own, head_reached) = tokio::join!(
            probe::tcp_round_trip(&req.tracker, self.probe_timeout),
            async {
                match &head_probe {
                    Some((_, tracker)) => Some(
                        probe::tcp_round_trip(tracker, self.probe_timeout)
                            .await
                            .is_some(),
                    ),
                    None => None,
                }
            }
        );
        if let (Some((head, _)), Some(false)) = (head_probe, head_reached) {
            self.counters.heads_unreachable.fetch_add(1, Relaxed);
            tracing::debug!(pid = pid_name, %head, "join: the PID's head is unreachable");
            self.head_failed(&pid_name, head, "its tracker could not be reached")
                .await;
        }
        let Some(distance) = own else {
            self.counters.joins_unreachable.fetch_add(1, Relaxed);
            tracing::debug!(%endpoint, tracker = req.tracker, "join: tracker unreachable");
            return member(self.head(&pid_name));
        };
        let distance = self.scored.then_some(distance);
        let mut tokens = Tokens::new();
        let joined = match &self.store {
            Store::Memory(r) => r.lock().expect("registry lock").join(
                &pid_name,
                &req,
                endpoint,
                distance,
                now(),
                || tokens.draw(),
            ),
            Store::Etcd(e) => {
                let joined = e
                    .join(&pid_name, &req, endpoint, distance, now(), || tokens.draw())
                    .await;
                match joined {
                    Ok(j) => j,
                    Err(e) => return unavailable(&e),
                }
            }
        };
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
            rejoin_secs: Some(if joined.kept {
                rejoin_kept
            } else {
                rejoin_other
            }),
        };
        match answer::json(&answer) {
            Ok(body) => web::post_answer(pidhead::HEAD, body),
            Err(fault) => fault.into_response(),
        }
    }

    /// Takes a join for `source` from both its address's and its prefix's allowance, or
    /// none when either is spent.
    fn admit_join(&self, source: IpAddr) -> bool {
        let at = self.started.elapsed().as_secs_f64();
        let (v4, v6) = self.prefix_bits;
        let own = prefix_key(source, 32, 128);
        let net = prefix_key(source, v4, v6);
        let mut limiter = self.limiter.lock().expect("limiter lock");
        let mut prefix = self.prefix_limiter.lock().expect("limiter lock");
        if !limiter.has(own, at) || !prefix.has(net, at) {
            return false;
        }
        limiter.allow(own, at) && prefix.allow(net, at)
    }

    /// The live head of `pid` (its endpoint and tracker) if it is due to be probed on a join
    /// from `joiner`, which is not the head; marks it probed.
    fn head_probe_due(&self, pid: &str, joiner: IpAddr) -> Option<(IpAddr, String)> {
        let at = Instant::now();
        let due =
            |last: Option<&Instant>| last.is_none_or(|&l| at.duration_since(l) >= HEAD_PROBE_EVERY);
        if !due(self.head_probes.lock().expect("probes lock").get(pid)) {
            return None; // most joins: no head lookup
        }
        let head = self.head(pid)?;
        let ip = alto_model::addr::parse_typed_addr(&head.endpoint)?;
        if ip == joiner {
            return None;
        }
        let mut probes = self.head_probes.lock().expect("probes lock");
        if !due(probes.get(pid)) {
            return None; // another join took this probe meanwhile
        }
        probes.insert(pid.to_owned(), at);
        Some((ip, head.tracker))
    }

    /// An answer of `pid`'s head at `endpoint` failed the server's checks; after
    /// `max-head-failures` in a row its lease is revoked and the PID elects another.
    /// Whether it was revoked.
    pub async fn answer_failed(&self, pid: &str, endpoint: IpAddr) -> bool {
        self.counters.answers_refused.fetch_add(1, Relaxed);
        self.head_failed(pid, endpoint, "its answers failed the checks")
            .await
    }

    /// `pid`'s head at `endpoint` failed (`why`); after `max-head-failures` in a row its
    /// lease is revoked and the PID elects another. Whether it was revoked.
    async fn head_failed(&self, pid: &str, endpoint: IpAddr, why: &str) -> bool {
        {
            let mut failures = self.failures.lock().expect("failures lock");
            let entry = failures.entry(pid.to_owned()).or_insert((endpoint, 0));
            if entry.0 != endpoint {
                *entry = (endpoint, 0);
            }
            entry.1 += 1;
            if entry.1 < self.max_failures {
                return false;
            }
            failures.remove(pid);
        }
        let mut tokens = Tokens::new();
        let now = now();
        let until = now + self.revoked_secs;
        let events = match &self.store {
            Store::Memory(r) => {
                r.lock()
                    .expect("registry lock")
                    .revoke(pid, endpoint, now, until, || tokens.draw())
            }
            Store::Etcd(e) => match e.revoke(pid, endpoint, now, until, || tokens.draw()).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(pid, %endpoint, "PID Head lease not revoked: {e}");
                    return false;
                }
            },
        };
        self.counters.revoked.fetch_add(1, Relaxed);
        tracing::warn!(pid, %endpoint, "PID Head lease revoked: {why}");
        self.count(&events);
        true
    }

    /// An answer of `pid`'s head at `endpoint` passed the checks: its failures start over.
    pub fn answer_passed(&self, pid: &str, endpoint: IpAddr) {
        let mut failures = self.failures.lock().expect("failures lock");
        if failures.get(pid).is_some_and(|f| f.0 == endpoint) {
            failures.remove(pid);
        }
    }

    /// `POST /pidhead/lease`.
    pub async fn lease(
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
        let done = match (&self.store, req.action) {
            (Store::Memory(r), LeaseAction::Renew) => Ok(r
                .lock()
                .expect("registry lock")
                .renew(&req.token, source, now())
                .map(Leased::renewed)),
            (Store::Memory(r), LeaseAction::Resign) => {
                let mut r = r.lock().expect("registry lock");
                Ok(r.resign(&req.token, source, now(), || tokens.draw())
                    .map(|(pid, events)| {
                        let head = r.head(&pid, now());
                        Leased::Resigned(pid, events, head)
                    }))
            }
            (Store::Etcd(e), LeaseAction::Renew) => e
                .renew(&req.token, source, now())
                .await
                .map(|r| r.map(Leased::renewed)),
            (Store::Etcd(e), LeaseAction::Resign) => e
                .resign(&req.token, source, now(), || tokens.draw())
                .await
                .map(|r| {
                    r.map(|(pid, events)| {
                        let head = e.head(&pid, now());
                        Leased::Resigned(pid, events, head)
                    })
                }),
        };
        if let Some(e) = tokens.0 {
            // The resignation stands; only the standby's promotion waits for its next join.
            tracing::error!("a standby was not promoted: {e}");
        }
        let done = match done {
            Ok(d) => d,
            Err(e) => return unavailable(&e),
        };
        let answer = done.map(|outcome| match outcome {
            Leased::Renewed(pid, lease, head) => HeadAnswer {
                meta: meta(base),
                pid,
                role: Role::Head,
                head: Some(head),
                lease: Some(lease),
                rejoin_secs: None,
            },
            Leased::Resigned(pid, events, head) => {
                self.count(&events);
                HeadAnswer {
                    meta: meta(base),
                    pid,
                    role: Role::Member,
                    head,
                    lease: None,
                    rejoin_secs: None,
                }
            }
        });
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
        let heads = self.heads();
        let property_map: BTreeMap<String, BTreeMap<String, serde_json::Value>> = heads
            .into_iter()
            .map(|(pid, h)| {
                let props = BTreeMap::from([
                    (pidhead::PROP_TRACKER.to_owned(), h.tracker.into()),
                    (pidhead::PROP_ALTO.to_owned(), h.ecs_url.into()),
                    (pidhead::PROP_EXPIRES.to_owned(), h.lease_expires.into()),
                    (pidhead::PROP_SINCE.to_owned(), h.since.into()),
                    (pidhead::PROP_EPOCH.to_owned(), h.epoch.into()),
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
        let config = self.config();
        let policy = match config.policy {
            ElectionPolicy::First => "first",
            ElectionPolicy::Scored(_) => "scored",
        };
        BTreeMap::from([
            ("election-policy".to_owned(), policy.into()),
            ("lease-ttl-secs".to_owned(), config.lease_ttl_secs.into()),
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
