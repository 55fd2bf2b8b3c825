//! The HTTP client every outgoing request of the workspace goes through: to the ALTO
//! server, between heads, and from the plugin to trackers. It speaks `http://` and
//! `https://` (RFC 7285 §8.3.5), verifying servers as [`crate::tls`] says.

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// A pooled HTTP/1.1 client over TCP or TLS, sending whole bodies.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How a client connects.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// The local address to send from (a client speaks from the endpoint it names).
    pub local: Option<IpAddr>,
    /// Time allowed to open a connection; none: the system's.
    pub connect_timeout: Option<Duration>,
    /// Whom `https://` servers are verified against; none: the process's default
    /// ([`crate::tls::default_client_config`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// How long a pooled connection may sit idle: below the servers' idle timeout
/// ([`crate::Limits::header_read_timeout`], 10 s by default), so the client lets a connection
/// go before the server closes it under a request in flight.
pub const POOL_IDLE: Duration = Duration::from_secs(5);

/// A client with `TCP_NODELAY` (requests are small and latency matters) and `options`.
pub fn http_client(options: ClientOptions) -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c.set_local_address(options.local);
    c.set_connect_timeout(options.connect_timeout);
    c.enforce_http(false);
    let tls = options
        .tls
        .unwrap_or_else(crate::tls::default_client_config);
    let c = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(c);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(c)
}
