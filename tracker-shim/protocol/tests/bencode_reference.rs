//! The hand-written bencode of the tracker's answers against `bendy`, the reference: every
//! answer decodes with bendy, re-encodes with bendy to the same bytes (so keys are sorted
//! and the encoding canonical), and reads back to what was encoded.

use alto_locality::rank::{Random, SplitMix64};
use bendy::decoding::FromBencode;
use bendy::encoding::ToBencode;
use bendy::value::Value;
use tracker_protocol::announce::{AnnounceResponse, ResponsePeer};
use tracker_protocol::scrape::{self, ScrapeCounts};
use tracker_protocol::{bencode, decode, InfoHash, PeerId};

fn canonical(bytes: &[u8]) {
    let v = Value::from_bencode(bytes)
        .unwrap_or_else(|e| panic!("bendy refuses {:?}: {e}", String::from_utf8_lossy(bytes)));
    assert_eq!(v.to_bencode().unwrap(), bytes, "not canonical bencode");
}

fn random_peer(rng: &mut SplitMix64) -> ResponsePeer {
    let port = 1 + rng.below(65535) as u16;
    let addr = if rng.below(3) == 0 {
        std::net::SocketAddr::new(
            std::net::Ipv6Addr::from((rng.next_u64() as u128) << 64 | rng.next_u64() as u128)
                .into(),
            port,
        )
    } else {
        std::net::SocketAddr::new(std::net::Ipv4Addr::from(rng.next_u64() as u32).into(), port)
    };
    let mut id = [0u8; 20];
    id.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
    ResponsePeer {
        addr,
        peer_id: Some(PeerId(id)),
    }
}

#[test]
fn announce_answers_match_the_reference() {
    let mut rng = SplitMix64(5);
    for round in 0..500 {
        let peers: Vec<ResponsePeer> = (0..rng.below(30)).map(|_| random_peer(&mut rng)).collect();
        let resp = AnnounceResponse {
            interval: rng.below(10_000) as u32,
            min_interval: rng.below(100) as u32,
            complete: rng.below(1000) as u32,
            incomplete: rng.below(1000) as u32,
            tracker_id: (round % 2 == 0).then(|| b"abc:\xff".to_vec()),
            warning: (round % 3 == 0).then(|| "swarm full é".to_string()),
            peers,
        };
        for (compact, no_peer_id) in [(true, false), (false, false), (false, true)] {
            let mut out = Vec::new();
            resp.encode(compact, no_peer_id, &mut out);
            canonical(&out);
            let d = decode::announce(&out).unwrap();
            assert_eq!(d.interval, Some(resp.interval));
            assert_eq!(d.min_interval, Some(resp.min_interval));
            assert_eq!(
                (d.complete, d.incomplete),
                (Some(resp.complete), Some(resp.incomplete))
            );
            assert_eq!(d.tracker_id, resp.tracker_id);
            assert_eq!(d.warning, resp.warning);
            let mut want: Vec<_> = resp.peers.iter().map(|p| p.addr).collect();
            let mut got: Vec<_> = d.peers.iter().map(|p| p.0).collect();
            if compact {
                // Compact answers put IPv4 in `peers` and IPv6 in `peers6`.
                want.sort_by_key(|a| a.is_ipv6());
                got.sort_by_key(|a| a.is_ipv6());
            }
            assert_eq!(got, want);
            if !compact {
                let ids: Vec<_> = d.peers.iter().map(|p| p.1).collect();
                let expect: Vec<_> = resp
                    .peers
                    .iter()
                    .map(|p| p.peer_id.filter(|_| !no_peer_id))
                    .collect();
                assert_eq!(ids, expect);
            }
        }
    }
}

#[test]
fn scrape_and_failure_answers_match_the_reference() {
    let mut rng = SplitMix64(6);
    for _ in 0..200 {
        let mut files: Vec<(InfoHash, ScrapeCounts)> = (0..rng.below(10))
            .map(|_| {
                let mut h = [0u8; 20];
                h.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
                let c = ScrapeCounts {
                    complete: rng.below(99) as u32,
                    downloaded: rng.below(99) as u32,
                    incomplete: rng.below(99) as u32,
                };
                (InfoHash(h), c)
            })
            .collect();
        let mut out = Vec::new();
        scrape::encode(&mut files, &mut out);
        canonical(&out);
        let mut back = decode::scrape(&out).unwrap();
        back.sort_by_key(|f| f.0);
        assert_eq!(back, files);
    }
    let mut out = Vec::new();
    bencode::failure("missing `info_hash`", &mut out);
    canonical(&out);
    assert_eq!(
        decode::announce(&out).unwrap().failure.as_deref(),
        Some("missing `info_hash`")
    );
}
