//! The HTTP side of the ALTO server (RFC 7285 §8 over HTTP/1.1 with hyper): routing by the
//! directory's paths, media types and `Accept`/`Content-Type` handling (§8.3), `ETag` and
//! `If-None-Match` with explicit freshness (§8.3.3), body limits, error responses (§8.5),
//! atomic map reloads and graceful shutdown.

use crate::config::{Limits, LoadError, Source};
use crate::heads::{Heads, Query};
use crate::metrics::{Metrics, ResourceCounters};
use alto_model::ird::{Capabilities, IrdResourceEntry};
use alto_model::messages::{
    ReqEndpointCostMap, ReqEndpointProp, ReqFilteredCostMap, ReqFilteredNetworkMap,
};
use alto_model::{media, pidhead, AltoError, CostMode, InformationBase, Resource, ResourceKind};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode};
use hyper::body::Body;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

pub use alto_web::HttpResponse;
use alto_web::{self as web, simple};

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
        let mut snap = Snapshot {
            base,
            limits,
            routes,
            served,
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

    fn get_body(&self, i: usize) -> Bytes {
        let s = &self.served[i];
        s.body
            .get_or_init(|| {
                let mut out = Vec::new();
                match s.res.kind {
                    ResourceKind::NetworkMap => {
                        serde_json::to_writer(&mut out, &self.base.full_network_map())
                            .expect("serializes")
                    }
                    ResourceKind::CostMap { metric, mode } => self.base.cost_maps()[metric]
                        .write_full_json(self.base.network_map(), mode, &mut out),
                    _ => unreachable!("only GET resources have a stored body"),
                }
                Bytes::from(out)
            })
            .clone()
    }
}

struct Inner {
    source: Source,
    current: RwLock<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    heads: Heads,
}

/// The ALTO server: shared state behind a cheap handle.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

impl App {
    /// Loads the configuration and maps from `source`.
    pub fn new(source: Source) -> Result<Self, LoadError> {
        let loaded = source.load()?;
        let metrics = Arc::new(Metrics::default());
        let limits = loaded.limits();
        let heads = Heads::new(&loaded.config);
        let snap = Snapshot::new(loaded.base, limits, &metrics, &heads);
        Ok(App {
            inner: Arc::new(Inner {
                source,
                current: RwLock::new(Arc::new(snap)),
                metrics,
                heads,
            }),
        })
    }

    /// The snapshot being served now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.read().expect("snapshot lock").clone()
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Reads the configuration and maps again and swaps them in at once. On any defect the
    /// old maps stay served and the error names the file and line. Version tags change
    /// exactly when content changes.
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
        Ok(())
    }

    /// The PID Head extension's state.
    pub fn heads(&self) -> &Heads {
        &self.inner.heads
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
            let mut text = self.inner.metrics.render(&snap.base);
            self.inner.heads.render(&mut text);
            return simple(StatusCode::OK, "text/plain; version=0.0.4", text);
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
        let limit = snap.limits.max_body_bytes;
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
        if res.kind == ResourceKind::HeadDirectory {
            return (self.inner.heads.directory(&snap.base, &parts.headers), 0);
        }
        if res.accepts.is_none() {
            return (self.get(snap, i, &parts.headers), 0);
        }
        let n = bytes.len();
        let client = remote.ip();
        let base = &snap.base;
        let heads = &self.inner.heads;
        match res.kind {
            ResourceKind::HeadJoin => {
                return (heads.join(base, &bytes, client, &parts.headers).await, n)
            }
            ResourceKind::HeadLease => {
                return (heads.lease(base, &bytes, client, &parts.headers), n)
            }
            _ => {}
        }
        if let Some(resp) = self
            .forward(snap, res, &bytes, client, &parts.headers)
            .await
        {
            return (resp, n);
        }
        let result = match res.kind {
            ResourceKind::FilteredNetworkMap => ReqFilteredNetworkMap::parse(&bytes)
                .map(|r| to_json(&base.filtered_network_map(&r))),
            ResourceKind::FilteredCostMap => ReqFilteredCostMap::parse(&bytes)
                .and_then(|r| base.filtered_cost_map(&r))
                .map(|r| to_json(&r)),
            ResourceKind::EndpointProp => ReqEndpointProp::parse(&bytes)
                .and_then(|r| base.endpoint_properties(&r))
                .map(|r| to_json(&r)),
            ResourceKind::EndpointCost => ReqEndpointCostMap::parse(&bytes)
                .and_then(|r| base.endpoint_cost(&r, Some(client)))
                .map(|r| to_json(&r)),
            _ => unreachable!("POST resources only"),
        };
        let resp = match result {
            Ok(body) => {
                let mut r = simple(StatusCode::OK, res.media_type, body);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(e) => self.alto_error(StatusCode::BAD_REQUEST, e),
        };
        (resp, n)
    }

    /// Forwards a query to a PID's head or cascades it to the ALTO server authoritative for
    /// its endpoints (the draft, section 2.2). `None`: answer it here.
    async fn forward(
        &self,
        snap: &Snapshot,
        res: &Resource,
        bytes: &[u8],
        client: IpAddr,
        headers: &HeaderMap,
    ) -> Option<HttpResponse> {
        let heads = &self.inner.heads;
        let hop = match heads.hops(headers) {
            Ok(h) => h,
            Err(loop_error) => return Some(*loop_error),
        };
        let net = snap.base.network_map();
        let same_pid = |ips: &[IpAddr]| {
            let first = net.pid_of(*ips.first()?)?;
            ips.iter()
                .all(|ip| net.pid_of(*ip) == Some(first))
                .then(|| net.pid_name(first).to_owned())
        };
        match res.kind {
            ResourceKind::EndpointCost => {
                let mut req = ReqEndpointCostMap::parse(bytes).ok()?;
                let sources = Heads::ecs_sources(&req, client)?;
                if req.endpoints.srcs.as_ref().is_none_or(|s| s.is_empty()) {
                    // The head or peer would see the server's address: name the client.
                    req.endpoints.srcs = Some(vec![alto_model::addr::typed_addr(client)]);
                }
                let q = Query {
                    media_type: media::ENDPOINT_COST,
                    accepts: media::ENDPOINT_COST_PARAMS,
                    body: to_json(&req),
                };
                if let Some(r) = heads.cascade(&sources, &q, &hop).await {
                    return Some(r);
                }
                let pid = same_pid(&sources)?;
                heads
                    .to_head(&pid, "/endpointcost/lookup", &q, &hop, client)
                    .await
            }
            ResourceKind::FilteredCostMap => {
                let req = ReqFilteredCostMap::parse(bytes).ok()?;
                let srcs = req
                    .pids
                    .as_ref()
                    .map(|p| p.srcs.clone())
                    .unwrap_or_default();
                let pid = srcs.first()?.clone();
                if srcs.iter().any(|s| *s != pid) || net.pid_index(&pid).is_none() {
                    return None;
                }
                let q = Query {
                    media_type: media::COST_MAP,
                    accepts: media::COST_MAP_FILTER,
                    body: bytes.to_vec(),
                };
                heads
                    .to_head(&pid, "/costmap/filtered", &q, &hop, client)
                    .await
            }
            ResourceKind::EndpointProp => {
                let req = ReqEndpointProp::parse(bytes).ok()?;
                let ips: Option<Vec<IpAddr>> = req
                    .endpoints
                    .iter()
                    .map(|e| alto_model::addr::parse_typed_addr(e))
                    .collect();
                let q = Query {
                    media_type: media::ENDPOINT_PROP,
                    accepts: media::ENDPOINT_PROP_PARAMS,
                    body: bytes.to_vec(),
                };
                heads.cascade(&ips?, &q, &hop).await
            }
            _ => None,
        }
    }

    fn get(&self, snap: &Snapshot, i: usize, headers: &HeaderMap) -> HttpResponse {
        let served = &snap.served[i];
        let etag = served.etag.as_ref().expect("GET resources have an ETag");
        let cache = HeaderValue::from_str(&format!("max-age={}", snap.limits.max_age_secs))
            .expect("digits");
        web::conditional(headers, etag.clone(), cache, served.res.media_type, || {
            snap.get_body(i)
        })
    }

    fn alto_error(&self, status: StatusCode, e: AltoError) -> HttpResponse {
        self.inner.metrics.error(e.code());
        web::alto_error(status, &e)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("responses serialize")
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets requests
/// in flight finish (up to 10 s) and returns.
pub async fn run(
    listener: TcpListener,
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
                app.heads().tick();
            }
        })
    };
    let _stop_ticker = AbortOnDrop(ticker);
    let handle = move |req, remote| {
        let app = app.clone();
        async move { app.handle(req, remote).await }
    };
    web::serve(listener, handle, shutdown, Duration::from_secs(10)).await
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
    pub async fn start(source: Source, listen: SocketAddr) -> anyhow::Result<Self> {
        let app = App::new(source)?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, app.clone(), async move {
            let _ = rx.await;
        }));
        Ok(Running {
            addr,
            app,
            stop,
            task,
        })
    }

    /// The URL of the directory.
    pub fn directory_url(&self) -> String {
        format!("http://{}/directory", self.addr)
    }

    /// Stops accepting, waits for requests in flight, and returns.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}
