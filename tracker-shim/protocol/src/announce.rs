//! HTTP announce (BEP 3): the request with every parameter real clients send, and the
//! response in compact form (BEP 23, with `peers6` of BEP 7) or as a list of dictionaries
//! when the client asks for `compact=0`.

use crate::bencode::Writer;
use crate::query::{pairs, percent_encode, BadEscape};
use crate::{Event, InfoHash, PeerId};
use std::net::{IpAddr, SocketAddr};

/// An announce as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's peer id.
    pub peer_id: PeerId,
    /// The port the client accepts peer connections on.
    pub port: u16,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still missing; 0 for a seeder.
    pub left: u64,
    /// The event.
    pub event: Event,
    /// Whether the client takes the compact peer list (BEP 23); the default when absent.
    pub compact: bool,
    /// Whether peer ids may be left out of a dictionary peer list.
    pub no_peer_id: bool,
    /// Peers wanted; `None` for the tracker's default.
    pub numwant: Option<u32>,
    /// The client's key, an opaque string.
    pub key: Option<Vec<u8>>,
    /// The tracker id of an earlier response.
    pub trackerid: Option<Vec<u8>>,
    /// An address the client claims (used only from trusted sources).
    pub ip: Option<IpAddr>,
}

/// Why an announce is refused; the text goes out as the `failure reason`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    /// A parameter is not percent-encoded properly.
    #[error(transparent)]
    Escape(#[from] BadEscape),
    /// A required parameter is missing.
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// `info_hash` or `peer_id` is not 20 bytes.
    #[error("`{0}` must be 20 bytes, not {1}")]
    Length(&'static str, usize),
    /// `port` is not a port.
    #[error("invalid `port`: must be 1 to 65535")]
    Port,
    /// A counter is not a non-negative integer.
    #[error("invalid `{0}`: must be a non-negative integer")]
    Counter(&'static str),
    /// `event` is not one of the known events.
    #[error("unknown `event` `{0}`")]
    Event(String),
}

fn twenty(name: &'static str, v: &[u8]) -> Result<[u8; 20], AnnounceError> {
    v.try_into()
        .map_err(|_| AnnounceError::Length(name, v.len()))
}

fn number(name: &'static str, v: &[u8]) -> Result<u64, AnnounceError> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return Err(AnnounceError::Counter(name));
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(AnnounceError::Counter(name))
}

impl AnnounceRequest {
    /// Parses the query string of `/announce` (the part after `?`).
    pub fn parse(query: &[u8]) -> Result<Self, AnnounceError> {
        let mut info_hash = None;
        let mut peer_id = None;
        let mut port = None;
        let (mut uploaded, mut downloaded, mut left) = (None, None, None);
        let mut event = Event::None;
        let mut compact = true;
        let mut no_peer_id = false;
        let mut numwant = None;
        let mut key = None;
        let mut trackerid = None;
        let mut ip = None;
        for (k, v) in pairs(query)? {
            match k.as_slice() {
                b"info_hash" => info_hash = Some(InfoHash(twenty("info_hash", &v)?)),
                b"peer_id" => peer_id = Some(PeerId(twenty("peer_id", &v)?)),
                b"port" => {
                    let p = number("port", &v).map_err(|_| AnnounceError::Port)?;
                    port = Some(
                        u16::try_from(p)
                            .ok()
                            .filter(|&p| p != 0)
                            .ok_or(AnnounceError::Port)?,
                    );
                }
                b"uploaded" => uploaded = Some(number("uploaded", &v)?),
                b"downloaded" => downloaded = Some(number("downloaded", &v)?),
                b"left" => left = Some(number("left", &v)?),
                b"event" => {
                    event = match v.as_slice() {
                        b"" | b"empty" => Event::None,
                        b"started" => Event::Started,
                        b"completed" => Event::Completed,
                        b"stopped" => Event::Stopped,
                        b"paused" => Event::Paused,
                        other => {
                            return Err(AnnounceError::Event(
                                String::from_utf8_lossy(other).into_owned(),
                            ))
                        }
                    }
                }
                b"compact" => compact = v.as_slice() != b"0",
                b"no_peer_id" => no_peer_id = v.as_slice() != b"0",
                b"numwant" => numwant = Some(number("numwant", &v)?.min(u32::MAX as u64) as u32),
                b"key" => key = Some(v),
                b"trackerid" => trackerid = Some(v),
                // `ip` may also be a DNS name (BEP 3); only literal addresses are kept.
                b"ip" => ip = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()),
                _ => {}
            }
        }
        Ok(AnnounceRequest {
            info_hash: info_hash.ok_or(AnnounceError::Missing("info_hash"))?,
            peer_id: peer_id.ok_or(AnnounceError::Missing("peer_id"))?,
            port: port.ok_or(AnnounceError::Missing("port"))?,
            uploaded: uploaded.unwrap_or(0),
            downloaded: downloaded.unwrap_or(0),
            left: left.ok_or(AnnounceError::Missing("left"))?,
            event,
            compact,
            no_peer_id,
            numwant,
            key,
            trackerid,
            ip,
        })
    }
}

/// The `event` value of an HTTP announce (`paused` from BEP 21); `None` for a regular
/// announce, which sends no `event` at all.
fn event_value(e: Event) -> Option<&'static str> {
    match e {
        Event::None => None,
        Event::Started => Some("started"),
        Event::Completed => Some("completed"),
        Event::Stopped => Some("stopped"),
        Event::Paused => Some("paused"),
    }
}

impl AnnounceRequest {
    /// Writes the query string of `/announce` (without the `?`), the inverse of
    /// [`AnnounceRequest::parse`]: the required parameters and `compact` always, the
    /// others only when set, so that a tracker reads its own defaults for what is absent.
    pub fn to_query(&self) -> String {
        let mut q = format!(
            "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact={}",
            percent_encode(&self.info_hash.0),
            percent_encode(&self.peer_id.0),
            self.port,
            self.uploaded,
            self.downloaded,
            self.left,
            u8::from(self.compact),
        );
        let mut push = |k: &str, v: &str| {
            q.push('&');
            q.push_str(k);
            q.push('=');
            q.push_str(v);
        };
        if let Some(n) = self.numwant {
            push("numwant", &n.to_string());
        }
        if let Some(e) = event_value(self.event) {
            push("event", e);
        }
        if self.no_peer_id {
            push("no_peer_id", "1");
        }
        if let Some(k) = &self.key {
            push("key", &percent_encode(k));
        }
        if let Some(t) = &self.trackerid {
            push("trackerid", &percent_encode(t));
        }
        if let Some(ip) = self.ip {
            push("ip", &ip.to_string());
        }
        q
    }
}

/// A peer in a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponsePeer {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The peer's id (dictionary form only); unknown for peers learnt from other heads.
    pub peer_id: Option<PeerId>,
}

/// An announce response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds until the next regular announce.
    pub interval: u32,
    /// Seconds the client must wait at least between announces.
    pub min_interval: u32,
    /// Seeders in the swarm.
    pub complete: u32,
    /// Leechers in the swarm.
    pub incomplete: u32,
    /// The tracker's id, for the client to send back as `trackerid`.
    pub tracker_id: Option<Vec<u8>>,
    /// A warning shown to the user; the announce still counted.
    pub warning: Option<String>,
    /// The peers, best first.
    pub peers: Vec<ResponsePeer>,
}

impl AnnounceResponse {
    /// Writes the response: compact (`peers` with 6-byte IPv4 entries, `peers6` with
    /// 18-byte IPv6 entries) or, with `compact` false, `peers` as a list of dictionaries
    /// (without `peer id` when `no_peer_id`).
    pub fn encode(&self, compact: bool, no_peer_id: bool, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.dict();
        w.raw(b"8:complete").int(self.complete as i64);
        w.raw(b"10:incomplete").int(self.incomplete as i64);
        w.raw(b"8:interval").int(self.interval as i64);
        w.raw(b"12:min interval").int(self.min_interval as i64);
        if compact {
            let v4: Vec<u8> = self
                .peers
                .iter()
                .filter_map(|p| match p.addr {
                    SocketAddr::V4(a) => {
                        Some([&a.ip().octets()[..], &a.port().to_be_bytes()].concat())
                    }
                    SocketAddr::V6(_) => None,
                })
                .flatten()
                .collect();
            w.raw(b"5:peers").bytes(&v4);
            let v6: Vec<u8> = self
                .peers
                .iter()
                .filter_map(|p| match p.addr {
                    SocketAddr::V6(a) => {
                        Some([&a.ip().octets()[..], &a.port().to_be_bytes()].concat())
                    }
                    SocketAddr::V4(_) => None,
                })
                .flatten()
                .collect();
            if !v6.is_empty() {
                w.raw(b"6:peers6").bytes(&v6);
            }
        } else {
            w.raw(b"5:peers").list();
            for p in &self.peers {
                w.dict();
                w.raw(b"2:ip").bytes(p.addr.ip().to_string().as_bytes());
                if let Some(id) = p.peer_id.filter(|_| !no_peer_id) {
                    w.raw(b"7:peer id").bytes(&id.0);
                }
                w.raw(b"4:port").int(p.addr.port() as i64);
                w.end();
            }
            w.end();
        }
        if let Some(id) = &self.tracker_id {
            w.raw(b"10:tracker id").bytes(id);
        }
        if let Some(warning) = &self.warning {
            w.raw(b"15:warning message").bytes(warning.as_bytes());
        }
        w.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &[u8] = b"info_hash=%12%34Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9a&peer_id=-AR1360-abcdefghijkl&port=6881&uploaded=0&downloaded=10&left=1234&event=started&compact=1&numwant=50&key=ab12&ip=127.1.0.5";

    #[test]
    fn parses_every_parameter() {
        let r = AnnounceRequest::parse(Q).unwrap();
        assert_eq!(r.info_hash.0[..4], [0x12, 0x34, b'V', b'x']);
        assert_eq!(&r.peer_id.0, b"-AR1360-abcdefghijkl");
        assert_eq!(
            (r.port, r.uploaded, r.downloaded, r.left),
            (6881, 0, 10, 1234)
        );
        assert_eq!(r.event, Event::Started);
        assert!(r.compact && !r.no_peer_id);
        assert_eq!(r.numwant, Some(50));
        assert_eq!(r.key.as_deref(), Some(&b"ab12"[..]));
        assert_eq!(r.ip, Some("127.1.0.5".parse().unwrap()));
    }

    #[test]
    fn refuses_bad_announces_with_a_reason() {
        let with = |from: &str, to: &str| {
            let q = String::from_utf8_lossy(Q).replace(from, to);
            AnnounceRequest::parse(q.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(with("info_hash=", "x="), "missing `info_hash`");
        assert_eq!(
            with("%12%34Vx", "%12%34V"),
            "`info_hash` must be 20 bytes, not 19"
        );
        assert_eq!(
            with("-AR1360-", "-AR1360"),
            "`peer_id` must be 20 bytes, not 19"
        );
        assert_eq!(
            with("port=6881", "port=70000"),
            "invalid `port`: must be 1 to 65535"
        );
        assert_eq!(
            with("port=6881", "port=0"),
            "invalid `port`: must be 1 to 65535"
        );
        assert_eq!(
            with("port=6881", "port=-1"),
            "invalid `port`: must be 1 to 65535"
        );
        assert_eq!(
            with("left=1234", "left=-5"),
            "invalid `left`: must be a non-negative integer"
        );
        assert_eq!(
            with("downloaded=10", "downloaded=ten"),
            "invalid `downloaded`: must be a non-negative integer"
        );
        assert_eq!(
            with("left=1234", "left=99999999999999999999999"),
            "invalid `left`: must be a non-negative integer"
        );
        assert_eq!(with("left=1234", "lft=1"), "missing `left`");
        assert_eq!(
            with("event=started", "event=begun"),
            "unknown `event` `begun`"
        );
        assert_eq!(
            with("%9a&peer", "%9&peer"),
            "invalid percent-encoding in `info_hash`"
        );
    }

    #[test]
    fn to_query_round_trips_through_parse() {
        let full = AnnounceRequest::parse(Q).unwrap();
        let sparse = AnnounceRequest {
            event: Event::None,
            numwant: None,
            key: None,
            ip: None,
            ..full.clone()
        };
        let every = AnnounceRequest {
            event: Event::Paused,
            compact: false,
            no_peer_id: true,
            key: Some(vec![0, b'&', b'=', 0xff]),
            trackerid: Some(b"t 1".to_vec()),
            ip: Some("::1".parse().unwrap()),
            ..full.clone()
        };
        for r in [full, sparse, every] {
            assert_eq!(AnnounceRequest::parse(r.to_query().as_bytes()), Ok(r));
        }
    }

    #[test]
    fn to_query_writes_what_trackers_are_sent_in_order() {
        let r = AnnounceRequest {
            info_hash: InfoHash([0xaa; 20]),
            peer_id: PeerId(*b"-AR1360-abcdefghijkl"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Completed,
            compact: true,
            no_peer_id: false,
            numwant: Some(50),
            key: None,
            trackerid: None,
            ip: None,
        };
        let ih = "%AA".repeat(20);
        assert_eq!(
            r.to_query(),
            format!(
                "info_hash={ih}&peer_id=-AR1360-abcdefghijkl&port=6881&uploaded=1&downloaded=2\
                 &left=3&compact=1&numwant=50&event=completed"
            )
        );
    }

    #[test]
    fn lenient_where_clients_differ() {
        let q = String::from_utf8_lossy(Q)
            .replace("&uploaded=0&downloaded=10", "")
            .replace("event=started", "event=")
            .replace("ip=127.1.0.5", "ip=peer.example");
        let r = AnnounceRequest::parse(q.as_bytes()).unwrap();
        assert_eq!(
            (r.uploaded, r.downloaded, r.event, r.ip),
            (0, 0, Event::None, None)
        );
    }
}
