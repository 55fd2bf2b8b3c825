//! The lab's hostile PID Head (`--scenario junk-head`): a client that joins its PID first, so
//! that the `first` policy elects it, renews its lease, and answers every announce with no
//! peers or with unreachable addresses of its own PID. It never shares data. On the Internet
//! a head is an untrusted end host: its members must still complete.

use alto_client::AltoClient;
use alto_model::pidhead::{JoinRequest, LeaseAction, LeaseRequest, Role};
use alto_web as web;
use http::StatusCode;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tracker_shim::protocol::announce::{AnnounceResponse, ResponsePeer};

/// What the hostile head answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Junk {
    /// No peers at all.
    NoPeers,
    /// Fifty addresses of its PID where nobody listens.
    Unreachable,
}

/// A running hostile head; it stops when dropped.
pub struct JunkHead {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for JunkHead {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The announce answer of a hostile head on `ip`.
fn answer(ip: IpAddr, junk: Junk) -> Vec<u8> {
    let peers = match (junk, ip) {
        (Junk::Unreachable, IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            (200..250u8)
                .map(|h| ResponsePeer {
                    // Port 9 (discard): nothing listens there in the lab.
                    addr: SocketAddr::from((Ipv4Addr::new(a, b, c, h), 9)),
                    peer_id: None,
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    AnnounceResponse {
        interval: 60,
        min_interval: 2,
        complete: 0,
        incomplete: 0,
        tracker_id: None,
        warning: None,
        peers,
    }
    .encode(true, true, &mut out);
    out
}

impl JunkHead {
    /// Serves on `ip`, joins the ALTO server at `directory_url` and keeps the headship it
    /// is given; an error if the server does not make it head.
    pub async fn start(directory_url: &str, ip: IpAddr, junk: Junk) -> anyhow::Result<JunkHead> {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
        let url = format!("http://{}/announce", listener.local_addr()?);
        let handler = move |req: http::Request<hyper::body::Incoming>, _remote| async move {
            if req.uri().path() == "/announce" {
                web::simple(StatusCode::OK, "text/plain", answer(ip, junk))
            } else {
                web::simple(StatusCode::NOT_FOUND, "text/plain", "nothing here\n")
            }
        };
        let serve = tokio::spawn(async move {
            let _ = web::serve(
                listener,
                handler,
                std::future::pending(),
                web::Limits::default(),
            )
            .await;
        });
        let client = AltoClient::new(directory_url)?.with_local_address(ip);
        let joined = client
            .join(&JoinRequest {
                endpoint: alto_model::addr::typed_addr(ip),
                tracker: url,
                ecs_url: None,
                capabilities: Default::default(),
            })
            .await?;
        let lease = match (joined.role, joined.lease) {
            (Role::Head, Some(l)) => l,
            _ => anyhow::bail!("the hostile client on {ip} was not elected"),
        };
        let renew = tokio::spawn(async move {
            let every = Duration::from_secs((lease.ttl_secs / 3).max(1));
            loop {
                tokio::time::sleep(every).await;
                let req = LeaseRequest {
                    token: lease.token.clone(),
                    action: LeaseAction::Renew,
                };
                if let Err(e) = client.lease(&req).await {
                    tracing::warn!("hostile head on {ip}: renewal failed: {e}");
                }
            }
        });
        Ok(JunkHead {
            tasks: vec![serve, renew],
        })
    }
}
