//! The UDP tracker protocol (BEP 15): connect, announce, scrape and error packets, and
//! connection ids that cannot be forged or replayed after their lifetime.

use crate::{Event, InfoHash, PeerId};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};

/// The magic `protocol_id` of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const SCRAPE: u32 = 2;
const ERROR: u32 = 3;

/// A request packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Asks for a connection id.
    Connect {
        /// Echoed in the response.
        transaction_id: u32,
    },
    /// An announce (98 bytes or more: BEP 41 options may follow).
    Announce(UdpAnnounce),
    /// A scrape of up to about 74 hashes.
    Scrape {
        /// The connection id from a connect.
        connection_id: u64,
        /// Echoed in the response.
        transaction_id: u32,
        /// The torrents.
        info_hashes: Vec<InfoHash>,
    },
}

/// A UDP announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpAnnounce {
    /// The connection id from a connect.
    pub connection_id: u64,
    /// Echoed in the response.
    pub transaction_id: u32,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's peer id.
    pub peer_id: PeerId,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Bytes left; 0 for a seeder.
    pub left: u64,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// The event.
    pub event: Event,
    /// A claimed IPv4 address (0 for the packet's source).
    pub ip: u32,
    /// The client's key.
    pub key: u32,
    /// Peers wanted; negative for the default.
    pub num_want: i32,
    /// The client's peer port.
    pub port: u16,
}

/// Most info hashes one UDP scrape may carry, whatever the tracker allows over HTTP: BEP 15
/// says "up to about 74 torrents can be scraped at once", so that the request (16 + 74 x 20
/// = 1,496 bytes) fits a 1,500-byte MTU. A longer scrape gets an error saying so rather
/// than an answer for some of its hashes, which a client could not tell from a whole one.
pub const MAX_SCRAPE: usize = 74;

/// A packet that cannot be served, with the transaction id to answer to when it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpError {
    /// The transaction id, if the packet was long enough to hold one.
    pub transaction_id: Option<u32>,
    /// The message for the error packet.
    pub message: String,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("length checked"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("length checked"))
}

/// Parses a request packet; `max_scrape` caps the hashes of a scrape, and never above
/// [`MAX_SCRAPE`].
pub fn parse(packet: &[u8], max_scrape: usize) -> Result<Request, UdpError> {
    let max_scrape = max_scrape.min(MAX_SCRAPE);
    if packet.len() < 16 {
        return Err(UdpError {
            transaction_id: None,
            message: "packet too short".into(),
        });
    }
    let connection_id = u64_at(packet, 0);
    let action = u32_at(packet, 8);
    let transaction_id = u32_at(packet, 12);
    let err = |m: &str| UdpError {
        transaction_id: Some(transaction_id),
        message: m.into(),
    };
    match action {
        CONNECT => {
            if connection_id != PROTOCOL_ID {
                return Err(err("connect without the protocol id"));
            }
            Ok(Request::Connect { transaction_id })
        }
        ANNOUNCE => {
            if packet.len() < 98 {
                return Err(err("announce shorter than 98 bytes"));
            }
            let event = match u32_at(packet, 80) {
                0 => Event::None,
                1 => Event::Completed,
                2 => Event::Started,
                3 => Event::Stopped,
                _ => return Err(err("unknown event")),
            };
            let port = u16::from_be_bytes([packet[96], packet[97]]);
            if port == 0 {
                return Err(err("invalid port"));
            }
            Ok(Request::Announce(UdpAnnounce {
                connection_id,
                transaction_id,
                info_hash: InfoHash(packet[16..36].try_into().expect("length checked")),
                peer_id: PeerId(packet[36..56].try_into().expect("length checked")),
                downloaded: u64_at(packet, 56),
                left: u64_at(packet, 64),
                uploaded: u64_at(packet, 72),
                event,
                ip: u32_at(packet, 84),
                key: u32_at(packet, 88),
                num_want: u32_at(packet, 92) as i32,
                port,
            }))
        }
        SCRAPE => {
            let body = &packet[16..];
            if body.is_empty() || !body.len().is_multiple_of(20) {
                return Err(err("scrape must carry whole 20-byte info hashes"));
            }
            let n = body.len() / 20;
            if n > max_scrape {
                return Err(err(&format!(
                    "too many info hashes in one scrape: {n}, at most {max_scrape} (BEP 15)"
                )));
            }
            let info_hashes = body
                .chunks_exact(20)
                .map(|c| InfoHash(c.try_into().expect("20 bytes")))
                .collect();
            Ok(Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            })
        }
        _ => Err(err("unknown action")),
    }
}

/// Writes a connect response.
pub fn encode_connect(transaction_id: u32, connection_id: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&connection_id.to_be_bytes());
}

/// Writes an announce response; peers of the packet's address family (6 bytes each for
/// IPv4, 18 for IPv6).
pub fn encode_announce(
    transaction_id: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
    peers: &[SocketAddr],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&interval.to_be_bytes());
    out.extend_from_slice(&leechers.to_be_bytes());
    out.extend_from_slice(&seeders.to_be_bytes());
    for p in peers {
        match p.ip() {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
        out.extend_from_slice(&p.port().to_be_bytes());
    }
}

/// Writes a scrape response: seeders, completed, leechers per hash, in request order.
pub fn encode_scrape(transaction_id: u32, counts: &[(u32, u32, u32)], out: &mut Vec<u8>) {
    out.extend_from_slice(&SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    for &(seeders, completed, leechers) in counts {
        out.extend_from_slice(&seeders.to_be_bytes());
        out.extend_from_slice(&completed.to_be_bytes());
        out.extend_from_slice(&leechers.to_be_bytes());
    }
}

/// Writes an error packet.
pub fn encode_error(transaction_id: u32, message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&ERROR.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(message.as_bytes());
}

/// Issues and checks connection ids (BEP 15): a keyed hash of the client's address and the
/// time window, so an id cannot be guessed without the tracker's secret key, is bound to the
/// address it was given to, and expires: it is valid in the window it was issued and the
/// next, so for one to two windows.
pub struct ConnectionIds<S: BuildHasher> {
    keys: S,
    window_secs: u64,
}

impl<S: BuildHasher> ConnectionIds<S> {
    /// `keys` must be seeded with a secret (`std::collections::hash_map::RandomState` is).
    pub fn new(keys: S, window_secs: u64) -> Self {
        ConnectionIds {
            keys,
            window_secs: window_secs.max(1),
        }
    }

    fn id(&self, addr: SocketAddr, window: u64) -> u64 {
        let mut h = self.keys.build_hasher();
        match addr.ip() {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        h.write_u16(addr.port());
        h.write_u64(window);
        h.finish()
    }

    /// The id for `addr` at `now` (seconds).
    pub fn issue(&self, addr: SocketAddr, now: u64) -> u64 {
        self.id(addr, now / self.window_secs)
    }

    /// Whether `id` was issued to `addr` in this window or the previous one.
    pub fn check(&self, id: u64, addr: SocketAddr, now: u64) -> bool {
        let w = now / self.window_secs;
        id == self.id(addr, w) || (w > 0 && id == self.id(addr, w - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;

    fn announce_packet(cid: u64) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&cid.to_be_bytes());
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&77u32.to_be_bytes());
        p.extend_from_slice(&[0xaa; 20]);
        p.extend_from_slice(b"-TR3000-abcdefghijkl");
        p.extend_from_slice(&5u64.to_be_bytes());
        p.extend_from_slice(&100u64.to_be_bytes());
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&2u32.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&9u32.to_be_bytes());
        p.extend_from_slice(&(-1i32).to_be_bytes());
        p.extend_from_slice(&6881u16.to_be_bytes());
        p
    }

    #[test]
    fn parses_connect_announce_and_scrape() {
        let mut c = PROTOCOL_ID.to_be_bytes().to_vec();
        c.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(
            parse(&c, 10).unwrap(),
            Request::Connect { transaction_id: 5 }
        );
        let Request::Announce(a) = parse(&announce_packet(42), 10).unwrap() else {
            panic!()
        };
        assert_eq!(
            (
                a.connection_id,
                a.transaction_id,
                a.left,
                a.event,
                a.num_want,
                a.port
            ),
            (42, 77, 100, Event::Started, -1, 6881)
        );
        let mut s = 42u64.to_be_bytes().to_vec();
        s.extend_from_slice(&2u32.to_be_bytes());
        s.extend_from_slice(&8u32.to_be_bytes());
        s.extend_from_slice(&[1; 40]);
        let Request::Scrape { info_hashes, .. } = parse(&s, 10).unwrap() else {
            panic!()
        };
        assert_eq!(info_hashes.len(), 2);
        assert!(parse(&s, 1).unwrap_err().message.contains("too many"));
    }

    fn scrape_of(n: usize) -> Vec<u8> {
        let mut s = 42u64.to_be_bytes().to_vec();
        s.extend_from_slice(&2u32.to_be_bytes());
        s.extend_from_slice(&8u32.to_be_bytes());
        s.extend(std::iter::repeat_n(1, 20 * n));
        s
    }

    #[test]
    fn should_refuse_a_scrape_longer_than_bep_15_allows_whatever_the_http_cap() {
        let Request::Scrape { info_hashes, .. } = parse(&scrape_of(MAX_SCRAPE), 1000).unwrap()
        else {
            panic!()
        };
        assert_eq!(info_hashes.len(), 74);
        assert_eq!(
            parse(&scrape_of(1000), 1000).err(),
            Some(UdpError {
                transaction_id: Some(8),
                message: "too many info hashes in one scrape: 1000, at most 74 (BEP 15)".into()
            })
        );
    }

    #[test]
    fn refuses_bad_packets_with_the_transaction_id() {
        assert_eq!(parse(&[0; 10], 10).unwrap_err().transaction_id, None);
        let mut c = 1u64.to_be_bytes().to_vec();
        c.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(
            parse(&c, 10).unwrap_err(),
            UdpError {
                transaction_id: Some(5),
                message: "connect without the protocol id".into()
            }
        );
        let short = &announce_packet(1)[..97];
        assert!(parse(short, 10).unwrap_err().message.contains("98 bytes"));
        let mut bad_event = announce_packet(1);
        bad_event[83] = 9;
        assert_eq!(parse(&bad_event, 10).unwrap_err().message, "unknown event");
    }

    #[test]
    fn connection_ids_bind_to_address_and_expire() {
        let ids = ConnectionIds::new(RandomState::new(), 60);
        let a: SocketAddr = "127.1.0.1:6881".parse().unwrap();
        let b: SocketAddr = "127.1.0.2:6881".parse().unwrap();
        let id = ids.issue(a, 1000);
        assert!(ids.check(id, a, 1000));
        assert!(ids.check(id, a, 1079), "still valid in the next window");
        assert!(!ids.check(id, a, 1140), "replayed after its lifetime");
        assert!(!ids.check(id, b, 1000), "used from another address");
        let other = ConnectionIds::new(RandomState::new(), 60);
        assert!(!other.check(id, a, 1000), "forged without the key");
    }
}

/// The client side of BEP 15, for announcing to UDP trackers.
pub mod client {
    use super::{ANNOUNCE, CONNECT, ERROR, PROTOCOL_ID};
    use crate::announce::AnnounceRequest;
    use crate::Event;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    /// A connect request.
    pub fn connect(transaction_id: u32) -> Vec<u8> {
        let mut p = PROTOCOL_ID.to_be_bytes().to_vec();
        p.extend_from_slice(&CONNECT.to_be_bytes());
        p.extend_from_slice(&transaction_id.to_be_bytes());
        p
    }

    /// An announce request for `a` (an HTTP announce's fields, BEP 3, carried in the
    /// BEP 15 layout) with the values only UDP has: the connection id of a connect answer,
    /// the transaction id and the client's 32-bit `key` (`a.key`, an opaque string, has no
    /// place in the packet). `compact`, `no_peer_id` and `trackerid` have none either;
    /// `paused` goes as a regular announce, and `ip` only when it is IPv4 (0 otherwise:
    /// the tracker takes the packet's source).
    pub fn announce(
        connection_id: u64,
        transaction_id: u32,
        key: u32,
        a: &AnnounceRequest,
    ) -> Vec<u8> {
        let mut p = Vec::with_capacity(98);
        p.extend_from_slice(&connection_id.to_be_bytes());
        p.extend_from_slice(&ANNOUNCE.to_be_bytes());
        p.extend_from_slice(&transaction_id.to_be_bytes());
        p.extend_from_slice(&a.info_hash.0);
        p.extend_from_slice(&a.peer_id.0);
        p.extend_from_slice(&a.downloaded.to_be_bytes());
        p.extend_from_slice(&a.left.to_be_bytes());
        p.extend_from_slice(&a.uploaded.to_be_bytes());
        let event: u32 = match a.event {
            Event::None | Event::Paused => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        };
        p.extend_from_slice(&event.to_be_bytes());
        let ip = match a.ip {
            Some(IpAddr::V4(v4)) => v4.octets(),
            _ => [0; 4],
        };
        p.extend_from_slice(&ip);
        p.extend_from_slice(&key.to_be_bytes());
        // -1 asks for the tracker's default.
        let num_want = a
            .numwant
            .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
        p.extend_from_slice(&num_want.to_be_bytes());
        p.extend_from_slice(&a.port.to_be_bytes());
        p
    }

    /// Why a UDP tracker's answer was not the one expected.
    #[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
    pub enum AnswerError {
        /// Shorter than the 8-byte header.
        #[error("UDP tracker answer too short")]
        TooShort,
        /// The transaction id is not the request's.
        #[error("UDP tracker answer for another transaction")]
        OtherTransaction,
        /// The tracker answered with an error packet: its message.
        #[error("UDP tracker error: {0}")]
        Tracker(String),
        /// Another action than the request's, or too short for it.
        #[error("unexpected UDP tracker answer")]
        Unexpected,
    }

    fn check(
        packet: &[u8],
        action: u32,
        transaction_id: u32,
        min: usize,
    ) -> Result<(), AnswerError> {
        if packet.len() < 8 {
            return Err(AnswerError::TooShort);
        }
        let got_action = u32::from_be_bytes(packet[0..4].try_into().expect("4 bytes"));
        let got_tid = u32::from_be_bytes(packet[4..8].try_into().expect("4 bytes"));
        if got_tid != transaction_id {
            return Err(AnswerError::OtherTransaction);
        }
        if got_action == ERROR {
            return Err(AnswerError::Tracker(
                String::from_utf8_lossy(&packet[8..]).into_owned(),
            ));
        }
        if got_action != action || packet.len() < min {
            return Err(AnswerError::Unexpected);
        }
        Ok(())
    }

    /// The connection id of a connect answer.
    pub fn connected(packet: &[u8], transaction_id: u32) -> Result<u64, AnswerError> {
        check(packet, CONNECT, transaction_id, 16)?;
        Ok(u64::from_be_bytes(
            packet[8..16].try_into().expect("8 bytes"),
        ))
    }

    /// The peers of an announce answer (6-byte entries over IPv4, 18 over IPv6).
    pub fn announced(
        packet: &[u8],
        transaction_id: u32,
        v6: bool,
    ) -> Result<Vec<SocketAddr>, AnswerError> {
        check(packet, ANNOUNCE, transaction_id, 20)?;
        let body = &packet[20..];
        let size = if v6 { 18 } else { 6 };
        Ok(body
            .chunks_exact(size)
            .map(|c| {
                let ip: IpAddr = if v6 {
                    Ipv6Addr::from(<[u8; 16]>::try_from(&c[..16]).expect("16 bytes")).into()
                } else {
                    Ipv4Addr::new(c[0], c[1], c[2], c[3]).into()
                };
                SocketAddr::new(ip, u16::from_be_bytes([c[size - 2], c[size - 1]]))
            })
            .collect())
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::udp::{parse, Request};
        use crate::{InfoHash, PeerId};

        fn request() -> AnnounceRequest {
            AnnounceRequest {
                info_hash: InfoHash([0xaa; 20]),
                peer_id: PeerId(*b"-AR1360-abcdefghijkl"),
                port: 6881,
                uploaded: 7,
                downloaded: 5,
                left: 100,
                event: Event::Started,
                compact: true,
                no_peer_id: false,
                numwant: Some(50),
                key: None,
                trackerid: None,
                ip: None,
            }
        }

        #[test]
        fn announce_is_laid_out_as_bep_15_says() {
            let mut want = 42u64.to_be_bytes().to_vec();
            want.extend_from_slice(&1u32.to_be_bytes());
            want.extend_from_slice(&77u32.to_be_bytes());
            want.extend_from_slice(&[0xaa; 20]);
            want.extend_from_slice(b"-AR1360-abcdefghijkl");
            want.extend_from_slice(&5u64.to_be_bytes());
            want.extend_from_slice(&100u64.to_be_bytes());
            want.extend_from_slice(&7u64.to_be_bytes());
            want.extend_from_slice(&2u32.to_be_bytes());
            want.extend_from_slice(&0u32.to_be_bytes());
            want.extend_from_slice(&9u32.to_be_bytes());
            want.extend_from_slice(&50i32.to_be_bytes());
            want.extend_from_slice(&6881u16.to_be_bytes());
            assert_eq!(announce(42, 77, 9, &request()), want);
        }

        #[test]
        fn announce_is_read_back_by_the_tracker_side() {
            let a = AnnounceRequest {
                event: Event::Paused,
                numwant: None,
                ip: Some("127.1.0.5".parse().unwrap()),
                ..request()
            };
            let Ok(Request::Announce(u)) = parse(&announce(42, 77, 9, &a), 10) else {
                panic!("not an announce")
            };
            assert_eq!(
                (u.info_hash, u.peer_id, u.uploaded, u.downloaded, u.left),
                (a.info_hash, a.peer_id, a.uploaded, a.downloaded, a.left)
            );
            assert_eq!(
                (u.connection_id, u.transaction_id, u.key, u.port),
                (42, 77, 9, 6881)
            );
            assert_eq!((u.event, u.num_want), (Event::None, -1));
            assert_eq!(u.ip, u32::from_be_bytes([127, 1, 0, 5]));
        }
    }
}
