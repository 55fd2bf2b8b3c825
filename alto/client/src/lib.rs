//! A typed client for every resource of an ALTO server (RFC 7285 §9 to §11): it discovers
//! resources through the directory (§9.2), resolves their URIs against it (RFC 3986 §5),
//! sends the right `Accept` and `Content-Type`, decodes `application/alto-error+json`
//! into [`AltoError`] (§8.5), and keeps each GET resource with its `ETag` so that
//! refetching an unchanged map costs one `304 Not Modified` (§8.3.3).

use alto_model::ird::InfoResourceDirectory;
use alto_model::messages::*;
use alto_model::{media, pidhead, AltoError, CostType};
use alto_web::client::{http_client, ClientOptions, HttpClient};
use alto_web::digest;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// What can go wrong talking to an ALTO server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an ALTO error (§8.5).
    #[error("{url} answered {status} with {error}")]
    Alto {
        /// The resource.
        url: String,
        /// HTTP status.
        status: u16,
        /// The decoded error.
        error: AltoError,
    },
    /// The server answered with an HTTP error and no ALTO error body.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The resource.
        url: String,
        /// HTTP status.
        status: u16,
    },
    /// The request could not be sent or the answer not read.
    #[error("request to {url} failed: {message}")]
    Transport {
        /// The resource.
        url: String,
        /// The cause.
        message: String,
    },
    /// No answer within the client's timeout.
    #[error("request to {url} timed out after {after:?}")]
    Timeout {
        /// The resource.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The answer was not what the resource promises.
    #[error("bad answer from {url}: {message}")]
    Decode {
        /// The resource.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The directory lists no resource for the request.
    #[error("the directory lists no resource for {0}")]
    NoResource(String),
    /// A URL the client cannot use (`http://` and `https://` are spoken; a directory read
    /// over `https://` may list `https://` resources only).
    #[error("unusable URL `{0}`")]
    Url(String),
}

static DEFAULT_CREDENTIALS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Makes `user` and `password` what every client of this process answers HTTP Digest
/// challenges with (a binary's `--alto-user` and `--alto-password-file`). `false` if they
/// were set already.
pub fn set_default_credentials(user: &str, password: &str) -> bool {
    DEFAULT_CREDENTIALS
        .set((user.to_owned(), password.to_owned()))
        .is_ok()
}

impl ClientError {
    /// Whether the error says the server is not serving (no connection, no answer in time, a
    /// 5xx status such as a replica's 503 without etcd) rather than refusing the request: a
    /// client that knows other replicas tries the next one.
    pub fn server_down(&self) -> bool {
        match self {
            ClientError::Transport { .. } | ClientError::Timeout { .. } => true,
            ClientError::Status { status, .. } | ClientError::Alto { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A client bound to one server's directory, or to the directories of several replicas of
/// one server, tried in turn.
pub struct AltoClient {
    http: HttpClient,
    options: ClientOptions,
    credentials: Option<(String, String)>,
    /// The replicas' directories; `current` is the one in use.
    replicas: Vec<Uri>,
    current: AtomicUsize,
    timeout: Duration,
    cache: Mutex<HashMap<String, (HeaderValue, Bytes)>>,
    directory: Mutex<Option<InfoResourceDirectory>>,
    not_modified: AtomicU64,
}

impl AltoClient {
    /// A client for the server whose directory is at `directory_url` (`http://…` or
    /// `https://…`; the server's certificate is verified as [`alto_web::tls`] says, or
    /// against [`AltoClient::with_tls`]'s CA).
    pub fn new(directory_url: &str) -> Result<Self, ClientError> {
        Self::replicas(&[directory_url])
    }

    /// A client for a server run as replicas, whose directories are `directory_urls`
    /// (`docs/pid-head.md`, "Replicas"): requests go to one replica until it stops serving
    /// ([`ClientError::server_down`]), then to the next, each request trying every replica
    /// once at most. The first URL is used first.
    pub fn replicas(directory_urls: &[impl AsRef<str>]) -> Result<Self, ClientError> {
        let mut replicas = Vec::with_capacity(directory_urls.len());
        for url in directory_urls {
            let url = url.as_ref();
            let uri: Uri = url.parse().map_err(|_| ClientError::Url(url.into()))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
                return Err(ClientError::Url(url.into()));
            }
            replicas.push(uri);
        }
        if replicas.is_empty() {
            return Err(ClientError::Url(String::new()));
        }
        Ok(AltoClient {
            http: http_client(ClientOptions::default()),
            options: ClientOptions::default(),
            credentials: None,
            replicas,
            current: AtomicUsize::new(0),
            timeout: Duration::from_secs(10),
            cache: Mutex::new(HashMap::new()),
            directory: Mutex::new(None),
            not_modified: AtomicU64::new(0),
        })
    }

    /// Sends every request from `ip`: a client joining as a PID Head candidate must speak
    /// from the endpoint it names.
    pub fn with_local_address(mut self, ip: std::net::IpAddr) -> Self {
        self.options.local = Some(ip);
        self.http = http_client(self.options.clone());
        self
    }

    /// Answers HTTP Digest challenges (RFC 7616) as `user` with `password` instead of the
    /// process's default credentials ([`set_default_credentials`]).
    pub fn with_credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    fn credentials(&self) -> Option<(String, String)> {
        self.credentials
            .clone()
            .or_else(|| DEFAULT_CREDENTIALS.get().cloned())
    }

    /// Verifies `https://` servers against `tls` instead of the process's default.
    pub fn with_tls(mut self, tls: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.options.tls = Some(tls);
        self.http = http_client(self.options.clone());
        self
    }

    /// Sets the time allowed for each request (10 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many GETs were answered `304 Not Modified` and served from the kept copy.
    pub fn not_modified_count(&self) -> u64 {
        self.not_modified.load(Relaxed)
    }

    /// The directory URL of the replica in use.
    pub fn directory_url(&self) -> String {
        self.current_replica().1.to_string()
    }

    fn current_replica(&self) -> (usize, &Uri) {
        let i = self.current.load(Relaxed) % self.replicas.len();
        (i, &self.replicas[i])
    }

    /// Runs `op` against the replica in use and, while it fails with
    /// [`ClientError::server_down`], against the next ones, each once. Moving on forgets the
    /// kept directory: resource URIs are the new replica's.
    async fn failover<T, F: Future<Output = Result<T, ClientError>>>(
        &self,
        op: impl Fn() -> F,
    ) -> Result<T, ClientError> {
        let mut left = self.replicas.len();
        loop {
            let (at, _) = self.current_replica();
            match op().await {
                Err(e) if e.server_down() && left > 1 => {
                    left -= 1;
                    let next = (at + 1) % self.replicas.len();
                    // Concurrent requests that failed on the same replica move on once.
                    if self
                        .current
                        .compare_exchange(at, next, Relaxed, Relaxed)
                        .is_ok()
                    {
                        *self.directory.lock().expect("directory lock") = None;
                        tracing::warn!(
                            "ALTO replica {} failed ({e}); trying {}",
                            self.replicas[at],
                            self.replicas[next]
                        );
                    }
                }
                r => return r,
            }
        }
    }

    /// Resolves a directory `uri` (absolute, or relative to the directory, RFC 3986 §5).
    pub fn resolve(&self, uri: &str) -> Result<String, ClientError> {
        let base = self.current_replica().1;
        let secure = base.scheme_str() == Some("https");
        // No downgrade: a directory read over TLS lists resources over TLS.
        if uri.starts_with("https://") || (uri.starts_with("http://") && !secure) {
            return Ok(uri.to_owned());
        }
        if uri.contains("://") {
            return Err(ClientError::Url(uri.into()));
        }
        let scheme = if secure { "https" } else { "http" };
        let origin = format!("{scheme}://{}", base.authority().expect("checked in new"));
        if uri.starts_with('/') {
            return Ok(format!("{origin}{uri}"));
        }
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        Ok(format!(
            "{origin}{}{uri}",
            if dir.is_empty() { "/" } else { dir }
        ))
    }

    /// Fetches the directory (§9.2) and keeps it for resource lookups.
    pub async fn directory(&self) -> Result<InfoResourceDirectory, ClientError> {
        self.failover(|| self.fetch_directory()).await
    }

    async fn fetch_directory(&self) -> Result<InfoResourceDirectory, ClientError> {
        let url = self.directory_url();
        let ird: InfoResourceDirectory = self.get(&url, media::DIRECTORY).await?;
        *self.directory.lock().expect("directory lock") = Some(ird.clone());
        Ok(ird)
    }

    async fn known_directory(&self) -> Result<InfoResourceDirectory, ClientError> {
        let kept = self.directory.lock().expect("directory lock").clone();
        match kept {
            Some(d) => Ok(d),
            None => self.fetch_directory().await,
        }
    }

    /// URL of the resource with the media type and accepts, chosen by `pick` among them.
    async fn find(
        &self,
        what: &str,
        media_type: &str,
        accepts: Option<&str>,
        pick: impl Fn(&InfoResourceDirectory, &str, &alto_model::ird::IrdResourceEntry) -> bool,
    ) -> Result<String, ClientError> {
        let ird = self.known_directory().await?;
        let found = ird
            .resources
            .iter()
            .find(|(id, e)| {
                e.media_type == media_type && e.accepts.as_deref() == accepts && pick(&ird, id, e)
            })
            .map(|(_, e)| e.uri.clone());
        match found {
            Some(uri) => self.resolve(&uri),
            None => Err(ClientError::NoResource(what.into())),
        }
    }

    /// The default network map (§11.2.1), revalidated by ETag.
    pub async fn network_map(&self) -> Result<InfoResourceNetworkMap, ClientError> {
        self.failover(|| async {
            let url = self
                .find(
                    "the default network map",
                    media::NETWORK_MAP,
                    None,
                    |ird, id, _| {
                        ird.meta
                            .default_alto_network_map
                            .as_deref()
                            .is_none_or(|d| d == id)
                    },
                )
                .await?;
            self.get(&url, media::NETWORK_MAP).await
        })
        .await
    }

    /// The full cost map of a cost type (§11.2.3), revalidated by ETag.
    pub async fn cost_map(&self, cost_type: &CostType) -> Result<InfoResourceCostMap, ClientError> {
        let what = format!(
            "a {} {} cost map",
            cost_type.cost_mode.as_str(),
            cost_type.cost_metric
        );
        self.failover(|| async {
            let url = self
                .find(&what, media::COST_MAP, None, |ird, _, e| {
                    ird.cost_types_of(e).iter().any(|t| t.same(cost_type))
                })
                .await?;
            self.get(&url, media::COST_MAP).await
        })
        .await
    }

    /// A filtered network map (§11.3.1).
    pub async fn filtered_network_map(
        &self,
        req: &ReqFilteredNetworkMap,
    ) -> Result<InfoResourceNetworkMap, ClientError> {
        let what = "a filtered network map";
        self.find_and_post(
            what,
            media::NETWORK_MAP,
            media::NETWORK_MAP_FILTER,
            None,
            req,
        )
        .await
    }

    /// A filtered cost map (§11.3.2).
    pub async fn filtered_cost_map(
        &self,
        req: &ReqFilteredCostMap,
    ) -> Result<InfoResourceCostMap, ClientError> {
        let ct = Some(&req.cost_type);
        self.find_and_post(
            "a filtered cost map",
            media::COST_MAP,
            media::COST_MAP_FILTER,
            ct,
            req,
        )
        .await
    }

    /// The costs from `pid` to every PID: a filtered cost map (§11.3.2) with `pid` as its one
    /// source, in the cost type [`InfoResourceDirectory::ranking_cost_type`] picks from the
    /// kept directory (fetched once if there is none). What a PID Head ranks with and what
    /// the plugin's allowlist is made of.
    pub async fn cost_row(
        &self,
        pid: &str,
    ) -> Result<std::collections::BTreeMap<String, alto_model::Cost>, ClientError> {
        let cost_type = self
            .failover(|| self.known_directory())
            .await?
            .ranking_cost_type()
            .ok_or_else(|| ClientError::NoResource("a numerical filtered cost map".into()))?;
        let req = ReqFilteredCostMap {
            cost_type,
            constraints: None,
            pids: Some(PidFilter {
                srcs: vec![pid.to_owned()],
                dsts: vec![],
            }),
        };
        let mut answer = self.filtered_cost_map(&req).await?;
        Ok(answer.cost_map.remove(pid).unwrap_or_default())
    }

    /// Endpoint properties (§11.4.1).
    pub async fn endpoint_properties(
        &self,
        req: &ReqEndpointProp,
    ) -> Result<InfoResourceEndpointProperties, ClientError> {
        let what = "endpoint properties";
        self.find_and_post(
            what,
            media::ENDPOINT_PROP,
            media::ENDPOINT_PROP_PARAMS,
            None,
            req,
        )
        .await
    }

    /// Endpoint costs (§11.5.1); in ordinal mode, the ranking of §12.3.
    pub async fn endpoint_cost(
        &self,
        req: &ReqEndpointCostMap,
    ) -> Result<InfoResourceEndpointCostMap, ClientError> {
        let ct = Some(&req.cost_type);
        self.find_and_post(
            "endpoint costs",
            media::ENDPOINT_COST,
            media::ENDPOINT_COST_PARAMS,
            ct,
            req,
        )
        .await
    }

    /// Joins the server as a PID Head candidate (this project's extension, see
    /// `docs/pid-head.md`): the answer gives the PID, the role, the head and, for a head,
    /// its lease.
    pub async fn join(
        &self,
        req: &pidhead::JoinRequest,
    ) -> Result<pidhead::HeadAnswer, ClientError> {
        self.find_and_post("PID Head joins", pidhead::HEAD, pidhead::JOIN, None, req)
            .await
    }

    /// Renews or resigns a head's lease.
    pub async fn lease(
        &self,
        req: &pidhead::LeaseRequest,
    ) -> Result<pidhead::HeadAnswer, ClientError> {
        self.find_and_post("PID Head leases", pidhead::HEAD, pidhead::LEASE, None, req)
            .await
    }

    /// The head directory (an RFC 9240 property map), revalidated by ETag.
    pub async fn head_directory(&self) -> Result<pidhead::PropertyMap, ClientError> {
        self.failover(|| async {
            let url = self
                .find(
                    "the PID Head directory",
                    pidhead::PROPMAP,
                    None,
                    |_, _, _| true,
                )
                .await?;
            self.get(&url, pidhead::PROPMAP).await
        })
        .await
    }

    /// POSTs `req` to the directory's resource of `media_type` that accepts `accepts` and,
    /// when `cost_type` is given, supports it.
    async fn find_and_post<Q: Serialize, T: DeserializeOwned>(
        &self,
        what: &str,
        media_type: &str,
        accepts: &str,
        cost_type: Option<&CostType>,
        req: &Q,
    ) -> Result<T, ClientError> {
        self.failover(|| async {
            let url = self
                .find(what, media_type, Some(accepts), |ird, _, e| {
                    cost_type.is_none_or(|ct| ird.cost_types_of(e).iter().any(|t| t.same(ct)))
                })
                .await?;
            self.post(&url, accepts, media_type, req).await
        })
        .await
    }

    /// GETs a resource, sending the kept ETag; a 304 answers from the kept copy.
    pub async fn get<T: DeserializeOwned>(
        &self,
        url: &str,
        media_type: &str,
    ) -> Result<T, ClientError> {
        let kept = self.cache.lock().expect("cache lock").get(url).cloned();
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(url)
            .header(header::ACCEPT, format!("{media_type},{}", media::ERROR));
        if let Some((etag, _)) = &kept {
            req = req.header(header::IF_NONE_MATCH, etag.clone());
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|_| ClientError::Url(url.into()))?;
        let (status, headers, body) = self.send(url, req).await?;
        if status == StatusCode::NOT_MODIFIED {
            if let Some((_, body)) = kept {
                self.not_modified.fetch_add(1, Relaxed);
                return decode(url, &body);
            }
            return Err(ClientError::Decode {
                url: url.into(),
                message: "304 for a resource never fetched".into(),
            });
        }
        let value = check(url, status, &headers, &body, media_type)?;
        if let Some(etag) = headers.get(header::ETAG) {
            self.cache
                .lock()
                .expect("cache lock")
                .insert(url.to_owned(), (etag.clone(), body));
        }
        Ok(value)
    }

    /// POSTs a request body of type `accepts` and decodes the answer of type `media_type`.
    pub async fn post<Q: Serialize, T: DeserializeOwned>(
        &self,
        url: &str,
        accepts: &str,
        media_type: &str,
        body: &Q,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Decode {
            url: url.into(),
            message: e.to_string(),
        })?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::ACCEPT, format!("{media_type},{}", media::ERROR))
            .header(header::CONTENT_TYPE, accepts)
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|_| ClientError::Url(url.into()))?;
        let (status, headers, body) = self.send(url, req).await?;
        check(url, status, &headers, &body, media_type)
    }

    async fn send(
        &self,
        url: &str,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), ClientError> {
        // The whole chain of causes: "client error (Connect)" alone hides a refused
        // certificate or a refused connection.
        let transport = |e: &dyn std::error::Error| {
            let mut message = e.to_string();
            let mut cause = e.source();
            while let Some(c) = cause {
                message.push_str(&format!(": {c}"));
                cause = c.source();
            }
            ClientError::Transport {
                url: url.into(),
                message,
            }
        };
        let (head, body) = req.into_parts();
        let make = |authorization: Option<HeaderValue>| {
            let mut r = Request::new(body.clone());
            *r.method_mut() = head.method.clone();
            *r.uri_mut() = head.uri.clone();
            *r.headers_mut() = head.headers.clone();
            if let Some(a) = authorization {
                r.headers_mut().insert(header::AUTHORIZATION, a);
            }
            r
        };
        let once = |req: Request<Full<Bytes>>| async {
            let resp = self.http.request(req).await.map_err(|e| transport(&e))?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| transport(&e))?.to_bytes();
            Ok::<_, ClientError>((parts.status, parts.headers, body))
        };
        let exchange = async {
            let first = once(make(None)).await?;
            // A Digest challenge (RFC 7616) answered once with the client's credentials.
            let challenge = first
                .1
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok());
            let answer = match (first.0, challenge, self.credentials()) {
                (StatusCode::UNAUTHORIZED, Some(c), Some((user, password))) => {
                    let uri = head.uri.path_and_query().map_or("/", |p| p.as_str());
                    let mut cnonce = [0u8; 12];
                    let _ = getrandom::fill(&mut cnonce);
                    let cnonce = alto_model::hex(&cnonce);
                    digest::respond(c, head.method.as_str(), uri, &user, &password, &cnonce)
                        .and_then(|a| HeaderValue::from_str(&a).ok())
                }
                _ => None,
            };
            match answer {
                Some(a) => once(make(Some(a))).await,
                None => Ok(first),
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.into(),
                after: self.timeout,
            })?
    }
}

/// Checks status and media type; returns the decoded body, or the error the server sent.
fn check<T: DeserializeOwned>(
    url: &str,
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &Bytes,
    media_type: &str,
) -> Result<T, ClientError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(media::essence)
        .unwrap_or_default();
    if ctype == media::ERROR {
        let error: AltoError = serde_json::from_slice(body).map_err(|e| ClientError::Decode {
            url: url.into(),
            message: format!("unreadable ALTO error: {e}"),
        })?;
        return Err(ClientError::Alto {
            url: url.into(),
            status: status.as_u16(),
            error,
        });
    }
    if !status.is_success() {
        return Err(ClientError::Status {
            url: url.into(),
            status: status.as_u16(),
        });
    }
    if ctype != media_type {
        return Err(ClientError::Decode {
            url: url.into(),
            message: format!("expected {media_type}, got `{ctype}`"),
        });
    }
    decode(url, body)
}

fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Decode {
        url: url.into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_uris_resolve_per_rfc_3986() {
        let c = AltoClient::new("http://127.0.0.1:7285/alto/directory").unwrap();
        assert_eq!(
            c.resolve("/networkmap").unwrap(),
            "http://127.0.0.1:7285/networkmap"
        );
        assert_eq!(
            c.resolve("costmap/num").unwrap(),
            "http://127.0.0.1:7285/alto/costmap/num"
        );
        assert_eq!(c.resolve("http://other:1/x").unwrap(), "http://other:1/x");
        assert_eq!(c.resolve("https://other/x").unwrap(), "https://other/x");
        assert!(c.resolve("ftp://other/x").is_err());
        let tls = AltoClient::new("https://127.0.0.1:7285/directory").unwrap();
        assert_eq!(
            tls.resolve("/networkmap").unwrap(),
            "https://127.0.0.1:7285/networkmap"
        );
        assert!(
            tls.resolve("http://127.0.0.1:7285/networkmap").is_err(),
            "no downgrade"
        );
        assert!(AltoClient::new("ftp://x/directory").is_err());
        assert!(AltoClient::new("not a url").is_err());
    }
}
