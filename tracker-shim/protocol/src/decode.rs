//! Reading tracker answers (BEP 3, BEP 23, BEP 7, BEP 48) with `bendy`: what a client, a
//! proxy or a load generator does with a tracker's response. Both peer list forms are read.

use crate::scrape::ScrapeCounts;
use crate::{InfoHash, PeerId};
use bendy::decoding::{Decoder, FromBencode};
use bendy::value::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An announce answer as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodedAnnounce {
    /// `failure reason`, if the announce was refused.
    pub failure: Option<String>,
    /// `warning message`.
    pub warning: Option<String>,
    /// `interval`.
    pub interval: Option<u32>,
    /// `min interval`.
    pub min_interval: Option<u32>,
    /// `complete` (seeders).
    pub complete: Option<u32>,
    /// `incomplete` (leechers).
    pub incomplete: Option<u32>,
    /// `tracker id`.
    pub tracker_id: Option<Vec<u8>>,
    /// Peers from `peers` and `peers6`, in order, with ids where the dictionary form had them.
    pub peers: Vec<(SocketAddr, Option<PeerId>)>,
}

/// Why a tracker answer could not be read; for a scrape, also the tracker's refusal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not bencode (bendy's message, as its error is not a `std` error).
    #[error("not bencode: {0}")]
    NotBencode(String),
    /// The body is bencode but not a dictionary.
    #[error("not a bencoded dictionary")]
    NotDictionary,
    /// The compact `peers` string (BEP 23) has a length that is not a multiple of 6.
    #[error("compact `peers` of {0} bytes is not a multiple of 6")]
    CompactPeers(usize),
    /// An entry of the dictionary form of `peers` is not a dictionary.
    #[error("a peer is not a dictionary")]
    PeerNotDictionary,
    /// An entry of `peers` has no `ip` that parses as an address.
    #[error("a peer without a usable `ip`")]
    PeerIp,
    /// An entry of `peers` has no `port` that fits 16 bits.
    #[error("a peer without a usable `port`")]
    PeerPort,
    /// `peers` is neither the compact string nor the list of dictionaries.
    #[error("`peers` is neither a string nor a list")]
    PeersType,
    /// An answer with neither `peers` nor `failure reason`.
    #[error("no `peers` in the answer")]
    NoPeers,
    /// The `peers6` string (BEP 7) has a length that is not a multiple of 18.
    #[error("`peers6` of {0} bytes is not a multiple of 18")]
    Peers6(usize),
    /// The tracker refused the scrape: its `failure reason`.
    #[error("{0}")]
    Failure(String),
    /// A scrape answer without `files` (BEP 48).
    #[error("no `files` in the answer")]
    NoFiles,
    /// A key of `files` is not a 20-byte info hash.
    #[error("an info hash is not 20 bytes")]
    InfoHashLength,
    /// A value of `files` is not a dictionary of counts.
    #[error("counts are not a dictionary")]
    CountsNotDictionary,
}

type Dict<'a> = BTreeMap<Cow<'a, [u8]>, Value<'a>>;

/// Most lists and dictionaries inside one another that an answer may have. A real one has
/// three (the answer, `peers` or `files`, a peer or its counts). `bendy`'s `Value` decodes
/// recursively with no bound of its own, so 256 KiB of `l` from a hostile tracker or head
/// would overflow the stack and abort the client.
const MAX_DEPTH: usize = 16;

fn dict<'a>(bytes: &'a [u8]) -> Result<Dict<'a>, DecodeError> {
    let not = |e: bendy::decoding::Error| DecodeError::NotBencode(e.to_string());
    let mut decoder = Decoder::new(bytes).with_max_depth(MAX_DEPTH);
    let object = decoder
        .next_object()
        .map_err(not)?
        .ok_or_else(|| DecodeError::NotBencode("empty".into()))?;
    match Value::decode_bencode_object(object).map_err(not)? {
        Value::Dict(d) => Ok(d),
        _ => Err(DecodeError::NotDictionary),
    }
}

fn int(d: &Dict<'_>, k: &[u8]) -> Option<u32> {
    match d.get(k) {
        Some(Value::Integer(i)) => u32::try_from(*i).ok(),
        _ => None,
    }
}

fn bytes<'a>(d: &'a Dict<'_>, k: &[u8]) -> Option<&'a [u8]> {
    match d.get(k) {
        Some(Value::Bytes(b)) => Some(b),
        _ => None,
    }
}

fn text(d: &Dict<'_>, k: &[u8]) -> Option<String> {
    bytes(d, k).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Reads an announce answer.
pub fn announce(body: &[u8]) -> Result<DecodedAnnounce, DecodeError> {
    let d = dict(body)?;
    let mut out = DecodedAnnounce {
        failure: text(&d, b"failure reason"),
        warning: text(&d, b"warning message"),
        interval: int(&d, b"interval"),
        min_interval: int(&d, b"min interval"),
        complete: int(&d, b"complete"),
        incomplete: int(&d, b"incomplete"),
        tracker_id: bytes(&d, b"tracker id").map(<[u8]>::to_vec),
        peers: Vec::new(),
    };
    match d.get(&b"peers"[..]) {
        Some(Value::Bytes(b)) => {
            if b.len() % 6 != 0 {
                return Err(DecodeError::CompactPeers(b.len()));
            }
            for c in b.chunks_exact(6) {
                let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
                out.peers.push((
                    SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([c[4], c[5]])),
                    None,
                ));
            }
        }
        Some(Value::List(list)) => {
            for item in list {
                let Value::Dict(p) = item else {
                    return Err(DecodeError::PeerNotDictionary);
                };
                let ip: IpAddr = text(p, b"ip")
                    .and_then(|s| s.parse().ok())
                    .ok_or(DecodeError::PeerIp)?;
                let port = int(p, b"port")
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or(DecodeError::PeerPort)?;
                let id = bytes(p, b"peer id")
                    .and_then(|b| <[u8; 20]>::try_from(b).ok())
                    .map(PeerId);
                out.peers.push((SocketAddr::new(ip, port), id));
            }
        }
        Some(_) => return Err(DecodeError::PeersType),
        None if out.failure.is_none() => return Err(DecodeError::NoPeers),
        None => {}
    }
    if let Some(b) = bytes(&d, b"peers6") {
        if b.len() % 18 != 0 {
            return Err(DecodeError::Peers6(b.len()));
        }
        for c in b.chunks_exact(18) {
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&c[..16]).expect("16 bytes"));
            out.peers.push((
                SocketAddr::new(IpAddr::V6(ip), u16::from_be_bytes([c[16], c[17]])),
                None,
            ));
        }
    }
    Ok(out)
}

/// Reads a scrape answer: the counts per info hash, or the failure reason as the error.
pub fn scrape(body: &[u8]) -> Result<Vec<(InfoHash, ScrapeCounts)>, DecodeError> {
    let d = dict(body)?;
    if let Some(f) = text(&d, b"failure reason") {
        return Err(DecodeError::Failure(f));
    }
    let Some(Value::Dict(files)) = d.get(&b"files"[..]) else {
        return Err(DecodeError::NoFiles);
    };
    files
        .iter()
        .map(|(h, v)| {
            let h = InfoHash(
                <[u8; 20]>::try_from(h.as_ref()).map_err(|_| DecodeError::InfoHashLength)?,
            );
            let Value::Dict(c) = v else {
                return Err(DecodeError::CountsNotDictionary);
            };
            let get = |k: &[u8]| int(c, k).unwrap_or(0);
            Ok((
                h,
                ScrapeCounts {
                    complete: get(b"complete"),
                    downloaded: get(b"downloaded"),
                    incomplete: get(b"incomplete"),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        // The plugin reads up to 256 KiB of answer; all of it nesting, on a thread with a
        // tokio worker's stack (2 MiB).
        let mut deep = b"d5:peers".to_vec();
        deep.resize(256 * 1024, b'l');
        let answer = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || (announce(&deep), scrape(&deep)))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(
            matches!(answer.0, Err(DecodeError::NotBencode(_))),
            "{answer:?}"
        );
        assert!(
            matches!(answer.1, Err(DecodeError::NotBencode(_))),
            "{answer:?}"
        );
        // The depth a real answer has is read.
        let ok = announce(b"d5:peersld2:ip9:127.0.0.14:porti6881eeee").unwrap();
        assert_eq!(ok.peers, vec![("127.0.0.1:6881".parse().unwrap(), None)]);
    }
}
