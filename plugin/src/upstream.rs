//! Announcing upstream: to the PID Head and to a torrent's original trackers, over HTTP or
//! HTTPS (BEP 3, BEP 23, BEP 7; certificates verified as `alto_web::tls` says) and UDP
//! (BEP 15), from the client's own address. A tracker's answer is read up to
//! [`MAX_ANSWER`]. UDP requests
//! carry random transaction ids and are sent again on a schedule that fits in the
//! announce's timeout ([`retransmit_waits`]).

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
    /// Neither `http://`, `https://` nor `udp://`.
    #[error("unsupported tracker URL `{0}` (http://, https:// and udp:// are)")]
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
    /// The operating system's random source failed: no transaction id can be made.
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
}

/// How long to wait for a UDP tracker's answer after each send but the last, for an announce
/// allowed `timeout` in all: BEP 15's schedule (wait 15 x 2^n seconds, resend) compressed
/// into it, so sends go at 0, 1/8, 3/8 and 7/8 of the timeout and the last waits for the
/// rest. The schedule restarts for the announce after the connect; the timeout bounds both.
pub fn retransmit_waits(timeout: Duration) -> [Duration; 3] {
    [timeout / 8, timeout / 4, timeout / 2]
}

/// A random transaction id (BEP 15: "choose a random transaction ID").
fn transaction_id() -> Result<u32, UpstreamError> {
    getrandom::u32().map_err(UpstreamError::Random)
}

/// Sends `packet` on `sock` until an answer that `read` accepts comes, on the schedule of
/// [`retransmit_waits`] for `timeout`, and then waits for ever (the caller's timeout ends
/// it). Answers for another transaction (late ones to an earlier request) are skipped.
async fn exchange<T>(
    sock: &tokio::net::UdpSocket,
    packet: &[u8],
    timeout: Duration,
    read: impl Fn(&[u8]) -> Result<T, udp::AnswerError>,
) -> Result<T, UpstreamError> {
    // Room for any datagram, so that none is cut short and misread.
    let mut buf = vec![0u8; 65_536];
    let mut waits = retransmit_waits(timeout).into_iter();
    loop {
        sock.send(packet).await?;
        let until = waits.next().map(|w| tokio::time::Instant::now() + w);
        loop {
            let n = match until {
                Some(t) => match tokio::time::timeout_at(t, sock.recv(&mut buf)).await {
                    Ok(n) => n?,
                    Err(_) => break,
                },
                None => sock.recv(&mut buf).await?,
            };
            match read(&buf[..n]) {
                Err(udp::AnswerError::OtherTransaction) => continue,
                r => return r.map_err(|e| UpstreamError::Udp(e.into())),
            }
        }
    }
}

/// Largest tracker answer read: 200 peers are 1.2 KB compact, 3.6 KB over IPv6; a tracker
/// is not trusted to keep its answer short.
pub const MAX_ANSWER: usize = 256 * 1024;

/// Announces over HTTP and UDP from one local address.
#[derive(Clone)]
pub struct Upstream {
    http: HttpClient,
    local: IpAddr,
    timeout: Duration,
    /// Mixed into the UDP `key` so that others cannot derive it.
    key_salt: u32,
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
                ..ClientOptions::default()
            }),
            local,
            timeout,
            // Without the random source the key is merely guessable; transaction ids, which
            // must be random, fail the announce instead (`UpstreamError::Random`).
            key_salt: getrandom::u32().unwrap_or_default(),
        }
    }

    /// Verifies `https://` trackers against `tls` instead of the process's default.
    pub fn with_tls(mut self, tls: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.http = http_client(ClientOptions {
            local: Some(self.local),
            connect_timeout: Some(self.timeout),
            tls: Some(tls),
        });
        self
    }

    /// Announces to `url` and returns the peers it gave.
    pub async fn announce(
        &self,
        url: &str,
        a: &AnnounceRequest,
    ) -> Result<Vec<SocketAddr>, UpstreamError> {
        let work = async {
            if url.starts_with("http://") || url.starts_with("https://") {
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
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(http)?
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
        let tid = transaction_id()?;
        let cid = exchange(&sock, &udp::connect(tid), self.timeout, |p| {
            udp::connected(p, tid)
        })
        .await?;
        // A key only has to stay the same across one client's announces of a torrent:
        // the port and the torrent fix it, this upstream's random salt hides it.
        let key = self.key_salt
            ^ ((a.port as u32) << 16 | (a.info_hash.0[0] as u32) << 8 | a.info_hash.0[1] as u32);
        let tid = transaction_id()?;
        let v6 = target.is_ipv6();
        exchange(&sock, &udp::announce(cid, tid, key, a), self.timeout, |p| {
            udp::announced(p, tid, v6)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracker_shim::protocol::{Event, InfoHash, PeerId};

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([0x12; 20]),
            peer_id: PeerId(*b"-RB0001-abcdefghijkl"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Started,
            compact: true,
            no_peer_id: false,
            numwant: Some(10),
            key: None,
            trackerid: None,
            ip: None,
        }
    }

    #[test]
    fn retransmits_fit_in_the_timeout() {
        let t = Duration::from_secs(3);
        let waits = retransmit_waits(t);
        assert_eq!(waits.map(|w| w.as_millis()), [375, 750, 1500]);
        assert!(
            waits.iter().sum::<Duration>() < t,
            "the last send has time for an answer"
        );
    }

    /// A UDP tracker on 127.0.0.1 that drops the first connect and the first announce and
    /// answers the rest; it returns every request's (action, transaction id, connection id).
    async fn lossy_tracker(sock: tokio::net::UdpSocket) -> Vec<(u32, u32, u64)> {
        let be32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let p = &buf[..n];
            let (cid, action, tid) = (
                u64::from_be_bytes(p[0..8].try_into().unwrap()),
                be32(p, 8),
                be32(p, 12),
            );
            seen.push((action, tid, cid));
            if seen.iter().filter(|s| s.0 == action).count() == 1 {
                continue;
            }
            let mut answer = action.to_be_bytes().to_vec();
            answer.extend_from_slice(&tid.to_be_bytes());
            if action == 0 {
                answer.extend_from_slice(&0x5555u64.to_be_bytes());
            } else {
                // interval, leechers, seeders, then one peer: 127.9.0.1:6881.
                answer.extend_from_slice(&[0, 0, 0, 60, 0, 0, 0, 1, 0, 0, 0, 0]);
                answer.extend_from_slice(&[127, 9, 0, 1, 0x1a, 0xe1]);
            }
            sock.send_to(&answer, from).await.unwrap();
            if action == 1 {
                return seen;
            }
        }
    }

    #[tokio::test]
    async fn should_resend_unanswered_udp_requests_with_random_transaction_ids() {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let url = format!("udp://{}/announce", sock.local_addr().unwrap());
        let tracker = tokio::spawn(lossy_tracker(sock));
        let up = Upstream::new("127.0.0.1".parse().unwrap(), Duration::from_secs(2));
        let peers = up.announce(&url, &request()).await.unwrap();
        assert_eq!(peers, ["127.9.0.1:6881".parse::<SocketAddr>().unwrap()]);
        let seen = tracker.await.unwrap();
        let connects: Vec<_> = seen.iter().filter(|s| s.0 == 0).collect();
        let announces: Vec<_> = seen.iter().filter(|s| s.0 == 1).collect();
        assert!(connects.len() >= 2 && announces.len() >= 2, "{seen:?}");
        assert!(
            connects.iter().all(|c| c.1 == connects[0].1),
            "a resend is the same transaction"
        );
        assert!(announces
            .iter()
            .all(|a| a.1 == announces[0].1 && a.2 == 0x5555));
        assert_ne!(
            connects[0].1, announces[0].1,
            "a new transaction id per request"
        );
        let derived = 6881 << 16 | 0x12 << 8 | 0x12;
        assert!(connects[0].1 != derived && announces[0].1 != derived);
    }

    /// A tracker on 127.0.0.1 answering every announce with `body`, over TLS with a
    /// certificate of `ca` when given; its announce URL.
    async fn tracker(body: Vec<u8>, ca: Option<&test_support::tls::TestCa>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = ca.map(|ca| {
            let issued = ca.issue("tracker", &["127.0.0.1"]);
            std::sync::Arc::new(alto_web::tls::ServerTls::load(&issued.cert, &issued.key).unwrap())
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let body = Bytes::from(body);
        let handle = move |_req, _remote| {
            let body = body.clone();
            async move { alto_web::simple(http::StatusCode::OK, "text/plain", body) }
        };
        let limits = alto_web::Limits::default();
        tokio::spawn(alto_web::serve_tls(
            listener,
            tls,
            handle,
            std::future::pending(),
            limits,
        ));
        format!("{scheme}://{addr}/announce")
    }

    #[tokio::test]
    async fn should_announce_to_an_https_tracker_verified_against_its_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = test_support::tls::TestCa::new("trackers", dir.path());
        let answer = b"d8:intervali60e5:peers6:\x7f\x01\x00\x02\x1a\xe1e".to_vec();
        let url = tracker(answer, Some(&ca)).await;
        let up = Upstream::new("127.0.0.1".parse().unwrap(), Duration::from_secs(3));
        let verified = up
            .clone()
            .with_tls(alto_web::tls::client_config(Some(&ca.cert())).unwrap());
        let peers = verified.announce(&url, &request()).await.unwrap();
        assert_eq!(peers, ["127.1.0.2:6881".parse::<SocketAddr>().unwrap()]);
        // Another CA's client refuses the tracker.
        let other = test_support::tls::TestCa::new("other", dir.path());
        let refused = up
            .with_tls(alto_web::tls::client_config(Some(&other.cert())).unwrap())
            .announce(&url, &request())
            .await;
        assert!(
            matches!(refused, Err(UpstreamError::Http { .. })),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn should_not_read_more_of_an_answer_than_the_bound() {
        let mut huge = b"d8:intervali60e5:peers".to_vec();
        let n = MAX_ANSWER * 2;
        huge.extend_from_slice(format!("{n}:").as_bytes());
        huge.extend(std::iter::repeat_n(7u8, n));
        huge.push(b'e');
        let url = tracker(huge, None).await;
        let up = Upstream::new("127.0.0.1".parse().unwrap(), Duration::from_secs(3));
        let r = up.announce(&url, &request()).await;
        assert!(matches!(r, Err(UpstreamError::Http { .. })), "{r:?}");
    }

    #[test]
    fn http_target_keeps_the_trackers_query_and_the_parameters_sent_so_far() {
        let a = AnnounceRequest {
            event: Event::Stopped,
            numwant: Some(0),
            ..request()
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
