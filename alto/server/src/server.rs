//! The HTTP side of the ALTO server (RFC 7285 §8 over HTTP/1.1 with hyper): routing by the
//! directory's paths, media types and `Accept`/`Content-Type` handling (§8.3), `ETag` and
//! `If-None-Match` with explicit freshness (§8.3.3), body limits, error responses (§8.5),
//! atomic map reloads and graceful shutdown. A query is decoded once ([`crate::query`]),
//! offered to [`crate::forward`], and otherwise answered here.

use crate::answer::{server_fault, Fault};
use crate::config::{Limits, LoadError, Source};
use crate::forward::{Ask, Forwarder};
use crate::metrics::{self, HeadCounters, Metrics, ResourceCounters};
use crate::pidhead::{Heads, TokenError};
use crate::query::{AltoQuery, AnswerError};
use alto_model::ird::{Capabilities, IrdResourceEntry};
use alto_model::{pidhead, AltoError, CostMode, InformationBase, Resource, ResourceKind};
use alto_web::prometheus;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use http::{Request, StatusCode};
use hyper::body::Body;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

use alto_web::digest::{self, Users};
use alto_web::tls::{ClientCertificate, ServerTls};
pub use alto_web::HttpResponse;
use alto_web::{self as web, simple};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration or a map cannot be served.
    #[error("cannot load the maps: {0}")]
    Load(#[from] LoadError),
    /// No `server-id` is configured and no random one could be made.
    #[error("cannot name the server for ALTO-Via: {0}")]
    ServerId(#[from] TokenError),
    /// The certificate or key cannot be used.
    #[error("cannot serve HTTPS: {0}")]
    Tls(#[from] alto_web::tls::TlsError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One resource as served: its counters, its ETag and, for GET resources, its body, made
/// on first request and kept for the life of the maps.
struct Served {
    res: Resource,
    counters: Arc<ResourceCounters>,
    etag: Option<HeaderValue>,
    body: OnceLock<Bytes>,
}

/// The maps and everything derived from them, swapped whole on reload. A request holds the
/// snapshot it started with, so a reload never changes an answer half-way.
pub struct Snapshot {
    base: InformationBase,
    limits: Limits,
    routes: HashMap<String, usize>,
    served: Vec<Served>,
    /// `Cache-Control` of GET answers, made once per load.
    cache_control: HeaderValue,
}

impl Snapshot {
    fn new(base: InformationBase, limits: Limits, metrics: &Metrics, heads: &Heads) -> Self {
        let mut resources = base.resources();
        let net_id = base.network_map().resource_id().to_owned();
        resources.extend([
            Resource {
                id: "pid-head-join".into(),
                path: "/pidhead/join".into(),
                kind: ResourceKind::HeadJoin,
                media_type: pidhead::HEAD,
                accepts: Some(pidhead::JOIN),
            },
            Resource {
                id: "pid-head-lease".into(),
                path: "/pidhead/lease".into(),
                kind: ResourceKind::HeadLease,
                media_type: pidhead::HEAD,
                accepts: Some(pidhead::LEASE),
            },
            Resource {
                id: "pid-heads".into(),
                path: "/pidheads".into(),
                kind: ResourceKind::HeadDirectory,
                media_type: pidhead::PROPMAP,
                accepts: None,
            },
        ]);
        let mut routes = HashMap::new();
        let mut served = Vec::with_capacity(resources.len());
        for (i, res) in resources.into_iter().enumerate() {
            routes.insert(res.path.clone(), i);
            let tag = match res.kind {
                ResourceKind::NetworkMap => Some(base.network_map().tag().to_owned()),
                ResourceKind::CostMap { metric, mode } => Some(format!(
                    "{}-{}",
                    base.cost_maps()[metric].tag(),
                    if mode == CostMode::Numerical {
                        "num"
                    } else {
                        "ord"
                    }
                )),
                _ => None,
            };
            served.push(Served {
                counters: metrics.resource(&res.id),
                etag: tag.map(|t| {
                    HeaderValue::from_str(&format!("\"{t}\"")).expect("hex tag is a valid header")
                }),
                res,
                body: OnceLock::new(),
            });
        }
        let cache_control =
            HeaderValue::from_str(&format!("max-age={}", limits.max_age_secs)).expect("digits");
        let mut snap = Snapshot {
            base,
            limits,
            routes,
            served,
            cache_control,
        };
        // The directory is small and its ETag is a hash of its body: make it now.
        if let Some(i) = snap
            .served
            .iter()
            .position(|s| s.res.kind == ResourceKind::Directory)
        {
            let mut ird = snap.base.directory();
            let join_caps = Capabilities {
                other: heads.join_capabilities(),
                ..Capabilities::default()
            };
            let mut map_caps = Capabilities::default();
            let props = [
                pidhead::PROP_TRACKER,
                pidhead::PROP_ALTO,
                pidhead::PROP_EXPIRES,
                pidhead::PROP_SINCE,
            ];
            map_caps.other.insert(
                "mappings".into(),
                serde_json::json!({ format!("{net_id}.pid"): props }),
            );
            for s in &snap.served {
                let (caps, uses) = match s.res.kind {
                    ResourceKind::HeadJoin => (Some(join_caps.clone()), Some(vec![net_id.clone()])),
                    ResourceKind::HeadLease => (None, None),
                    ResourceKind::HeadDirectory => {
                        (Some(map_caps.clone()), Some(vec![net_id.clone()]))
                    }
                    _ => continue,
                };
                let entry = IrdResourceEntry {
                    uri: s.res.path.clone(),
                    media_type: s.res.media_type.into(),
                    accepts: s.res.accepts.map(Into::into),
                    capabilities: caps,
                    uses,
                };
                ird.resources.insert(s.res.id.clone(), entry);
            }
            let body = Bytes::from(serde_json::to_vec(&ird).expect("directory serializes"));
            let tag = alto_model::content_hash(&body);
            snap.served[i].etag = Some(HeaderValue::from_str(&format!("\"{tag}\"")).expect("hex"));
            let _ = snap.served[i].body.set(body);
        }
        snap
    }

    /// The information base being served.
    pub fn base(&self) -> &InformationBase {
        &self.base
    }

    /// The body of GET resource `i`, made on its first request and kept.
    fn get_body(&self, i: usize) -> Result<Bytes, Fault> {
        let s = &self.served[i];
        if let Some(body) = s.body.get() {
            return Ok(body.clone());
        }
        let mut out = Vec::new();
        match s.res.kind {
            ResourceKind::NetworkMap => {
                serde_json::to_writer(&mut out, &self.base.full_network_map())
                    .map_err(Fault::new)?
            }
            ResourceKind::CostMap { metric, mode } => self.base.cost_maps()[metric]
                .write_full_json(self.base.network_map(), mode, &mut out),
            _ => return Err(Fault::new(format!("{} has no stored body", s.res.id))),
        }
        // Two first requests may race: both bodies are equal, either is kept.
        Ok(s.body.get_or_init(|| Bytes::from(out)).clone())
    }
}

struct Inner {
    source: Source,
    current: RwLock<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    heads: Heads,
    forwarder: Forwarder,
    tls: Option<Arc<ServerTls>>,
    plain_listen: Option<SocketAddr>,
    /// Resource ids only a client with a verified certificate may use.
    client_cert_for: Vec<String>,
    /// Digest authentication: the users, the nonces' secret, the resource ids it guards.
    digest: Option<(Users, [u8; 32], Vec<String>)>,
    /// The nonce counts of Digest requests, against replays.
    nonce_counts: std::sync::Mutex<digest::NonceCounts>,
    /// The number of the next Digest challenge's nonce.
    nonce_serial: std::sync::atomic::AtomicU64,
}

/// The ALTO server: shared state behind a cheap handle.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

impl App {
    /// Loads the configuration and maps from `source`.
    pub fn new(source: Source) -> Result<Self, StartError> {
        Self::with_tls(source, None)
    }

    /// Loads the configuration and maps from `source`, serving HTTPS with the certificate
    /// and key `tls` (PEM files) if given, else as the configuration's `[tls]` says.
    pub fn with_tls(source: Source, tls: Option<(PathBuf, PathBuf)>) -> Result<Self, StartError> {
        let loaded = source.load()?;
        let configured = loaded.config.tls.as_ref();
        let plain_listen = configured.and_then(|t| t.plain_listen);
        let files =
            tls.or_else(|| configured.map(|t| (source.resolve(&t.cert), source.resolve(&t.key))));
        let client_ca = configured
            .and_then(|t| t.client_ca.as_ref())
            .map(|p| source.resolve(p));
        let client_cert_for = configured.map_or(Vec::new(), |t| t.client_cert_for.clone());
        let digest = match &loaded.config.auth {
            Some(a) => {
                let path = source.resolve(&a.digest_users);
                let text = std::fs::read_to_string(&path).map_err(|e| LoadError {
                    file: path.display().to_string(),
                    message: e.to_string(),
                })?;
                let users = Users::parse(&text, &a.realm).map_err(|e| LoadError {
                    file: path.display().to_string(),
                    message: e.to_string(),
                })?;
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| LoadError {
                    file: "the random source".into(),
                    message: e.to_string(),
                })?;
                Some((users, secret, a.digest_for.clone()))
            }
            None => None,
        };
        let tls = match files {
            Some((cert, key)) => Some(Arc::new(ServerTls::with_client_ca(
                &cert,
                &key,
                client_ca.as_deref(),
            )?)),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let limits = loaded.limits();
        let counters = Arc::new(HeadCounters::default());
        let s = &loaded.config.pid_heads;
        let etcd_tls = match (&s.etcd_ca, &s.etcd_cert, &s.etcd_key) {
            (None, None, _) => None,
            (ca, cert, key) => {
                let ca = ca.as_ref().map(|p| source.resolve(p));
                let identity = cert.as_ref().zip(key.as_ref());
                let identity = identity.map(|(c, k)| (source.resolve(c), source.resolve(k)));
                let identity = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
                Some(alto_web::tls::client_config_as(ca.as_deref(), identity)?)
            }
        };
        let heads = Heads::new(&loaded.config, counters.clone(), etcd_tls);
        let forwarder = Forwarder::new(&loaded.config, counters)?;
        let snap = Snapshot::new(loaded.base, limits, &metrics, &heads);
        Ok(App {
            inner: Arc::new(Inner {
                source,
                current: RwLock::new(Arc::new(snap)),
                metrics,
                heads,
                forwarder,
                tls,
                plain_listen,
                client_cert_for,
                digest,
                nonce_counts: std::sync::Mutex::default(),
                nonce_serial: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// The server's certificate, when it serves HTTPS.
    pub fn tls(&self) -> Option<Arc<ServerTls>> {
        self.inner.tls.clone()
    }

    /// The plain-HTTP address served beside HTTPS, if configured.
    pub fn plain_listen(&self) -> Option<SocketAddr> {
        self.inner.plain_listen
    }

    /// `https` or `http`, as the main listener speaks.
    pub fn scheme(&self) -> &'static str {
        if self.inner.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The snapshot being served now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.read().expect("snapshot lock").clone()
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The page of `GET /metrics`: every counter and gauge of the server and the PID Head
    /// extension in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let snap = self.snapshot();
        metrics::page(
            &self.inner.metrics,
            &snap.base,
            self.inner.heads.counters(),
            self.inner.heads.live(),
        )
    }

    /// Reads the configuration and maps again and swaps them in at once, then the
    /// certificate and key when the server speaks HTTPS. On any defect the old maps (or the
    /// old certificate) stay served and the error names the file and line. Version tags
    /// change exactly when content changes.
    pub fn reload(&self) -> Result<(), LoadError> {
        let result = self.inner.source.load();
        self.inner.metrics.reload(result.is_ok());
        let loaded = result?;
        let limits = loaded.limits();
        let snap = Arc::new(Snapshot::new(
            loaded.base,
            limits,
            &self.inner.metrics,
            &self.inner.heads,
        ));
        self.inner.heads.retain_pids(&snap.base);
        *self.inner.current.write().expect("snapshot lock") = snap;
        if let Some(tls) = &self.inner.tls {
            tls.reload().map_err(|e| LoadError {
                file: "the TLS certificate (the old one stays)".into(),
                message: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// The PID Head election's state.
    pub fn heads(&self) -> &Heads {
        &self.inner.heads
    }

    /// Forwarding to heads and peer servers.
    pub fn forwarder(&self) -> &Forwarder {
        &self.inner.forwarder
    }

    /// Answers one request. `remote` is the client's address, used by the endpoint cost
    /// service when a request leaves its sources or destinations out (§11.5.1.3).
    pub async fn handle<B>(&self, req: Request<B>, remote: SocketAddr) -> HttpResponse
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let _guard = self.inner.metrics.in_flight();
        let snap = self.snapshot();
        let path = req.uri().path();
        if path == "/metrics" {
            return simple(
                StatusCode::OK,
                prometheus::CONTENT_TYPE,
                self.metrics_text(),
            );
        }
        let Some(&i) = snap.routes.get(path) else {
            self.inner.metrics.unknown_path.request(0);
            self.inner.metrics.unknown_path.response(404, 0);
            return simple(
                StatusCode::NOT_FOUND,
                "text/plain",
                format!("no ALTO resource at {path}; the directory is at /directory\n"),
            );
        };
        let served = &snap.served[i];
        let (parts, body) = req.into_parts();
        let (resp, bytes_in) = self.answer(&snap, i, &parts, body, remote).await;
        served.counters.request(bytes_in);
        let len = resp.body().size_hint().exact().unwrap_or(0) as usize;
        served.counters.response(resp.status().as_u16(), len);
        resp
    }

    async fn answer<B>(
        &self,
        snap: &Snapshot,
        i: usize,
        parts: &http::request::Parts,
        body: B,
        remote: SocketAddr,
    ) -> (HttpResponse, usize)
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let res = &snap.served[i].res;
        if self.inner.client_cert_for.contains(&res.id)
            && parts.extensions.get::<ClientCertificate>().is_none()
        {
            let text = format!(
                "{} requires a client certificate from the operator's CA (TLS client \
                 authentication, RFC 7285 section 8.3.5)\n",
                res.path
            );
            return (simple(StatusCode::FORBIDDEN, "text/plain", text), 0);
        }
        if let Some((users, secret, guarded)) = &self.inner.digest {
            if guarded.contains(&res.id) {
                let uri = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let auth = parts
                    .headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                let now = crate::pidhead::now();
                let counts = &mut self.inner.nonce_counts.lock().expect("nonce lock");
                let checked =
                    digest::verify(users, secret, counts, parts.method.as_str(), uri, auth, now);
                if let Err(why) = checked {
                    let stale = why == digest::Refused::Stale;
                    let mut r = simple(
                        StatusCode::UNAUTHORIZED,
                        "text/plain",
                        format!("{} needs Digest credentials: {why}\n", res.path),
                    );
                    let serial = self.inner.nonce_serial.fetch_add(1, Ordering::Relaxed);
                    let challenge = digest::challenge(secret, users.realm(), now, serial, stale);
                    if let Ok(v) = HeaderValue::from_str(&challenge) {
                        r.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
                    }
                    return (r, 0);
                }
            }
        }
        let limit = web::BodyLimit {
            max_bytes: snap.limits.max_body_bytes,
            timeout: snap.limits.connections.header_read_timeout,
        };
        let bytes =
            match web::admit(parts, body, &res.path, res.media_type, res.accepts, limit).await {
                Ok(b) => b,
                Err(reject) => {
                    let (resp, code) = reject.into_response();
                    if let Some(code) = code {
                        self.inner.metrics.error(code);
                    }
                    return (resp, 0);
                }
            };
        let base = &snap.base;
        let heads = &self.inner.heads;
        let client = remote.ip();
        match res.kind {
            ResourceKind::HeadDirectory => return (heads.directory(base, &parts.headers), 0),
            _ if res.accepts.is_none() => return (self.get(snap, i, &parts.headers), 0),
            _ => {}
        }
        let n = bytes.len();
        match res.kind {
            ResourceKind::HeadJoin => {
                return (heads.join(base, &bytes, client, &parts.headers).await, n)
            }
            ResourceKind::HeadLease => {
                return (heads.lease(base, &bytes, client, &parts.headers).await, n)
            }
            _ => {}
        }
        // A loop is refused before the body is read as a query.
        let forwarder = &self.inner.forwarder;
        let hop = match forwarder.hops(&parts.headers) {
            Ok(h) => h,
            Err(loop_error) => return (*loop_error, n),
        };
        let query = match AltoQuery::parse(res.kind, &bytes) {
            Some(Ok(q)) => q,
            Some(Err(e)) => return (self.alto_error(StatusCode::BAD_REQUEST, e), n),
            None => {
                let why = format!("{} is no query resource", res.id);
                return (server_fault(why), n);
            }
        };
        let ask = Ask {
            heads,
            base,
            query: &query,
            hop: &hop,
            client,
            limits: &snap.limits.query,
        };
        if let Some(resp) = forwarder.forward(&ask, &bytes).await {
            return (resp, n);
        }
        let resp = match query.answer(base, client, &snap.limits.query) {
            Ok(body) => web::post_answer(res.media_type, body),
            Err(AnswerError::Alto(e)) => self.alto_error(StatusCode::BAD_REQUEST, e),
            Err(e @ AnswerError::Encode(_)) => server_fault(e),
        };
        (resp, n)
    }

    fn get(&self, snap: &Snapshot, i: usize, headers: &HeaderMap) -> HttpResponse {
        let served = &snap.served[i];
        let Some(etag) = served.etag.clone() else {
            return server_fault(format!("{} has no entity tag", served.res.id));
        };
        let body = match snap.get_body(i) {
            Ok(b) => b,
            Err(fault) => return fault.into_response(),
        };
        let cache = snap.cache_control.clone();
        web::conditional(headers, etag, cache, served.res.media_type, || body)
    }

    fn alto_error(&self, status: StatusCode, e: AltoError) -> HttpResponse {
        self.inner.metrics.error(e.code());
        web::alto_error(status, &e)
    }
}

/// Serves `app` on `listener` (HTTPS when the app has a certificate) until `shutdown`
/// resolves, then stops accepting, lets requests in flight finish (up to 10 s) and returns.
pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    run_with_plain(listener, None, app, shutdown).await
}

/// [`run`], and plain HTTP on `plain` as well when given (`[tls] plain-listen`).
pub async fn run_with_plain(
    listener: TcpListener,
    plain: Option<TcpListener>,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Leases lapse on time even when nobody asks.
    let ticker = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(250));
            loop {
                every.tick().await;
                app.heads().tick().await;
            }
        })
    };
    let _stop_ticker = AbortOnDrop(ticker);
    // An etcd store follows etcd (a watch) for as long as the server runs.
    let _stop_follower = app.heads().follower().map(|f| AbortOnDrop(tokio::spawn(f)));
    let limits = app.snapshot().limits.connections;
    let tls = app.tls();
    let handle = move |req, remote| {
        let app = app.clone();
        async move { app.handle(req, remote).await }
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let plain = plain.map(|l| {
        tokio::spawn(web::serve(
            l,
            handle.clone(),
            until(stopped.clone()),
            limits,
        ))
    });
    let main = web::serve_tls(listener, tls, handle, until(stopped), limits);
    tokio::pin!(main, shutdown);
    let served = tokio::select! {
        r = &mut main => r,
        () = &mut shutdown => {
            let _ = stop.send(true);
            main.await
        }
    };
    let _ = stop.send(true);
    if let Some(p) = plain {
        p.await.map_err(std::io::Error::other)??;
    }
    served
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A server running in the background of the current runtime, for tests, benchmarks and
/// embedding: [`Running::stop`] shuts it down gracefully.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The application, for reloads and metrics.
    pub app: App,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Loads `source` and serves it on `listen` (port 0 picks a free port).
    pub async fn start(source: Source, listen: SocketAddr) -> Result<Self, StartError> {
        Self::start_app(App::new(source)?, listen).await
    }

    /// Serves `app` on `listen` (port 0 picks a free port), and plain HTTP on its
    /// `plain-listen` if configured.
    pub async fn start_app(app: App, listen: SocketAddr) -> Result<Self, StartError> {
        let bind = |addr: SocketAddr| async move {
            let listen_error = |source| StartError::Listen { addr, source };
            let l = TcpListener::bind(addr).await.map_err(listen_error)?;
            let at = l.local_addr().map_err(listen_error)?;
            Ok::<_, StartError>((l, at))
        };
        let (listener, addr) = bind(listen).await?;
        let plain = match app.plain_listen() {
            Some(p) => Some(bind(p).await?.0),
            None => None,
        };
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_with_plain(listener, plain, app.clone(), async move {
            let _ = rx.await;
        }));
        Ok(Running {
            addr,
            app,
            stop,
            task,
        })
    }

    /// The URL of the directory (`https://` when the server speaks HTTPS).
    pub fn directory_url(&self) -> String {
        format!("{}://{}/directory", self.app.scheme(), self.addr)
    }

    /// Stops accepting, waits for requests in flight, and returns.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}
