//! Announcing upstream: to the PID Head and to a torrent's original trackers, over HTTP
//! (BEP 3, BEP 23, BEP 7) and UDP (BEP 15), from the client's own address.

use alto_web::client::{http_client, ClientOptions, HttpClient};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tracker_shim::protocol::query::percent_encode;
use tracker_shim::protocol::udp::client as udp;
use tracker_shim::protocol::{decode, Event, InfoHash, PeerId};

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

/// What is announced.
#[derive(Clone, Copy, Debug)]
pub struct Announce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's peer id.
    pub peer_id: PeerId,
    /// The client's peer port.
    pub port: u16,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Bytes left.
    pub left: u64,
    /// The event.
    pub event: Event,
    /// Peers wanted.
    pub numwant: u32,
}

/// Announces over HTTP and UDP from one local address.
#[derive(Clone)]
pub struct Upstream {
    http: HttpClient,
    local: IpAddr,
    timeout: Duration,
}

fn event_name(e: Event) -> &'static str {
    match e {
        Event::None => "",
        Event::Started => "started",
        Event::Completed => "completed",
        Event::Stopped => "stopped",
        Event::Paused => "paused",
    }
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
        a: &Announce,
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
        a: &Announce,
    ) -> Result<Vec<SocketAddr>, UpstreamError> {
        let http = |cause: Cause| UpstreamError::Http {
            url: url.to_owned(),
            cause,
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut target = format!(
            "{url}{sep}info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact=1&numwant={}",
            percent_encode(&a.info_hash.0),
            percent_encode(&a.peer_id.0),
            a.port,
            a.uploaded,
            a.downloaded,
            a.left,
            a.numwant
        );
        if a.event != Event::None {
            target.push_str("&event=");
            target.push_str(event_name(a.event));
        }
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
        a: &Announce,
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
        let req = udp::Announce {
            info_hash: a.info_hash,
            peer_id: a.peer_id,
            downloaded: a.downloaded,
            left: a.left,
            uploaded: a.uploaded,
            event: a.event,
            key: tid,
            num_want: a.numwant as i32,
            port: a.port,
        };
        sock.send(&udp::announce(cid, tid, &req)).await?;
        let n = sock.recv(&mut buf).await?;
        udp::announced(&buf[..n], tid, target.is_ipv6()).map_err(|e| UpstreamError::Udp(e.into()))
    }
}
