//! The HTTP client every outgoing request of the workspace goes through: to the ALTO
//! server, between heads, and from the plugin to trackers.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::IpAddr;
use std::time::Duration;

/// A pooled HTTP/1.1 client sending whole bodies.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// How a client connects.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientOptions {
    /// The local address to send from (a client speaks from the endpoint it names).
    pub local: Option<IpAddr>,
    /// Time allowed to open a connection; none: the system's.
    pub connect_timeout: Option<Duration>,
}

/// A client with `TCP_NODELAY` (requests are small and latency matters) and `options`.
pub fn http_client(options: ClientOptions) -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c.set_local_address(options.local);
    c.set_connect_timeout(options.connect_timeout);
    Client::builder(TokioExecutor::new()).build(c)
}
