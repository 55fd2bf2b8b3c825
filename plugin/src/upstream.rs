//! Announcing upstream: to the PID Head and to a torrent's original trackers, over HTTP
//! (BEP 3, BEP 23, BEP 7) and UDP (BEP 15), from the client's own address.

use alto_web::client::{http_client, ClientOptions, HttpClient};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tracker_shim::protocol::announce::AnnounceRequest;
use tracker_shim::protocol::decode;
use tracker_shim::protocol::udp::client as udp;

/// A cause from a lower layer (hyper, the tracker protocol's decoders), kept as text in the
/// message because the tracker URL is what the log reader needs first.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why an announce upstream gave no peers.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Neither `http://` nor `udp://`.
    #[error("unsupported tracker URL `{0}` (http:// and udp:// are)")]
    UnsupportedUrl(String),
    /// The tracker did not answer in time.
    #[error("{url}: no answer within {after:?}")]
    Timeout {
        /// The tracker.
        url: String,
        /// The time allowed.
        after: Duration,
    },
    /// The HTTP request could not be made, sent or its answer read or decoded.
    #[error("{url}: {cause}")]
    Http {
        /// The tracker.
        url: String,
        /// What failed.
        cause: Cause,
    },
    /// The HTTP tracker answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The tracker.
        url: String,
        /// The status.
        status: http::StatusCode,
    },
    /// The tracker refused the announce (its `failure reason`, BEP 3).
    #[error("{url}: {reason}")]
    Refused {
        /// The tracker.
        url: String,
        /// The tracker's reason.
        reason: String,
    },
    /// The UDP tracker's host name did not resolve.
    #[error("udp://{authority}: {source}")]
    Resolve {
        /// `host:port`.
        authority: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The UDP tracker has no address of the client's family.
    #[error("udp://{0}: no address of our family")]
    NoAddress(String),
    /// The UDP socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The UDP tracker's answer was not a valid BEP 15 packet for this request.
    #[error("{0}")]
    Udp(Cause),
}

/// Announces over HTTP and UDP from one local address.
#[derive(Clone)]
pub struct Upstream {
    http: HttpClient,
    local: IpAddr,
    timeout: Duration,
}

/// The request line's target for announcing `a` to the HTTP tracker at `url`, whose own
/// query (a passkey, say) is kept.
fn http_target(url: &str, a: &AnnounceRequest) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", a.to_query())
}

impl Upstream {
    /// Announces from `local`, allowing `timeout` per tracker.
    pub fn new(local: IpAddr, timeout: Duration) -> Self {
        Upstream {
            http: http_client(ClientOptions {
                local: Some(local),
                connect_timeout: Some(timeout),
            }),
            local,
            timeout,
        }
    }

    /// Announces to `url` and returns the peers it gave.
    pub async fn announce(
        &self,
        url: &str,
        a: &AnnounceRequest,
    ) -> Result<Vec<SocketAddr>, UpstreamError> {
        let work = async {
            if url.starts_with("http://") {
                self.http_announce(url, a).await
            } else if let Some(rest) = url.strip_prefix("udp://") {
                self.udp_announce(rest, a).await
            } else {
                Err(UpstreamError::UnsupportedUrl(url.to_owned()))
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| UpstreamError::Timeout {
                url: url.to_owned(),
                after: self.timeout,
            })?
    }

    async fn http_announce(
        &self,
        url: &str,
        a: &AnnounceRequest,
    ) -> Result<Vec<SocketAddr>, UpstreamError> {
        let http = |cause: Cause| UpstreamError::Http {
            url: url.to_owned(),
            cause,
        };
        let target = http_target(url, a);
        let req = http::Request::get(&target)
            .body(Full::new(Bytes::new()))
            .map_err(|e| http(e.into()))?;
        let resp = self.http.request(req).await.map_err(|e| http(e.into()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| http(e.into()))?
            .to_bytes();
        if !status.is_success() {
            return Err(UpstreamError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let d = decode::announce(&body).map_err(|e| http(e.into()))?;
        if let Some(f) = d.failure {
            return Err(UpstreamError::Refused {
                url: url.to_owned(),
                reason: f,
            });
        }
        Ok(d.peers.into_iter().map(|p| p.0).collect())
    }

    async fn udp_announce(
        &self,
        host_port: &str,
        a: &AnnounceRequest,
    ) -> Result<Vec<SocketAddr>, UpstreamError> {
        let authority = host_port.split('/').next().unwrap_or(host_port);
        let target = tokio::net::lookup_host(authority)
            .await
            .map_err(|source| UpstreamError::Resolve {
                authority: authority.to_owned(),
                source,
            })?
            .find(|t| t.is_ipv4() == self.local.is_ipv4())
            .ok_or_else(|| UpstreamError::NoAddress(authority.to_owned()))?;
        let sock = tokio::net::UdpSocket::bind(SocketAddr::new(self.local, 0)).await?;
        sock.connect(target).await?;
        let tid = (a.port as u32) << 16 | (a.info_hash.0[0] as u32) << 8 | a.info_hash.0[1] as u32;
        let mut buf = vec![0u8; 4096];
        sock.send(&udp::connect(tid)).await?;
        let n = sock.recv(&mut buf).await?;
        let cid = udp::connected(&buf[..n], tid).map_err(|e| UpstreamError::Udp(e.into()))?;
        // The transaction id, fixed by the port and the torrent, doubles as the key: a key
        // only has to stay the same across one client's announces of a torrent.
        sock.send(&udp::announce(cid, tid, tid, a)).await?;
        let n = sock.recv(&mut buf).await?;
        udp::announced(&buf[..n], tid, target.is_ipv6()).map_err(|e| UpstreamError::Udp(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracker_shim::protocol::{Event, InfoHash, PeerId};

    #[test]
    fn http_target_keeps_the_trackers_query_and_the_parameters_sent_so_far() {
        let a = AnnounceRequest {
            info_hash: InfoHash([0x12; 20]),
            peer_id: PeerId(*b"-RB0001-abcdefghijkl"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Stopped,
            compact: true,
            no_peer_id: false,
            numwant: Some(0),
            key: None,
            trackerid: None,
            ip: None,
        };
        // What the plugin sent before the announce was one type.
        let params = format!(
            "info_hash={}&peer_id=-RB0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3\
             &compact=1&numwant=0",
            "%12".repeat(20)
        );
        assert_eq!(
            http_target("http://t.example/announce", &a),
            format!("http://t.example/announce?{params}&event=stopped")
        );
        let regular = AnnounceRequest {
            event: Event::None,
            ..a
        };
        assert_eq!(
            http_target("http://t.example/a?passkey=x", &regular),
            format!("http://t.example/a?passkey=x&{params}")
        );
    }
}
