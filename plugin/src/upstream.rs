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
    pub async fn announce(&self, url: &str, a: &Announce) -> Result<Vec<SocketAddr>, String> {
        let work = async {
            if url.starts_with("http://") {
                self.http_announce(url, a).await
            } else if let Some(rest) = url.strip_prefix("udp://") {
                self.udp_announce(rest, a).await
            } else {
                Err(format!(
                    "unsupported tracker URL `{url}` (http:// and udp:// are)"
                ))
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
    }

    async fn http_announce(&self, url: &str, a: &Announce) -> Result<Vec<SocketAddr>, String> {
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
            .map_err(|e| format!("{url}: {e}"))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}"));
        }
        let d = decode::announce(&body).map_err(|e| format!("{url}: {e}"))?;
        if let Some(f) = d.failure {
            return Err(format!("{url}: {f}"));
        }
        Ok(d.peers.into_iter().map(|p| p.0).collect())
    }

    async fn udp_announce(&self, host_port: &str, a: &Announce) -> Result<Vec<SocketAddr>, String> {
        let authority = host_port.split('/').next().unwrap_or(host_port);
        let target = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| format!("udp://{authority}: {e}"))?
            .find(|t| t.is_ipv4() == self.local.is_ipv4())
            .ok_or_else(|| format!("udp://{authority}: no address of our family"))?;
        let sock = tokio::net::UdpSocket::bind(SocketAddr::new(self.local, 0))
            .await
            .map_err(|e| e.to_string())?;
        sock.connect(target).await.map_err(|e| e.to_string())?;
        let tid = (a.port as u32) << 16 | (a.info_hash.0[0] as u32) << 8 | a.info_hash.0[1] as u32;
        let mut buf = vec![0u8; 4096];
        sock.send(&udp::connect(tid))
            .await
            .map_err(|e| e.to_string())?;
        let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
        let cid = udp::connected(&buf[..n], tid)?;
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
        sock.send(&udp::announce(cid, tid, &req))
            .await
            .map_err(|e| e.to_string())?;
        let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
        udp::announced(&buf[..n], tid, target.is_ipv6())
    }
}
