//! The tracker's identity and memory rules (issue 12, findings 6 and 7): a peer is its peer
//! id and its address, so another address can neither move nor remove it; swarms, peers and
//! peers per source address are capped exactly over all store shards, and an announce
//! beyond a cap gets a bencoded `failure reason` (BEP 3) and changes nothing.

mod common;
use common::start;

use alto_locality::rank::SplitMix64;
use std::net::IpAddr;
use test_support::http::*;
use tracker_shim::protocol::announce::AnnounceRequest;
use tracker_shim::protocol::{decode, Event, InfoHash, PeerId};
use tracker_shim::{Tracker, TrackerConfig};

/// An announce of torrent `h` by peer `[p; 20]`, port 6881.
fn request(h: InfoHash, p: u8) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: h,
        peer_id: PeerId([p; 20]),
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 10,
        event: Event::Started,
        compact: true,
        no_peer_id: false,
        numwant: None,
        key: None,
        trackerid: None,
        ip: None,
    }
}

/// Announces with the core (no I/O) from `from`; the failure reason, if any.
fn announce(t: &Tracker, a: &AnnounceRequest, from: &str) -> Option<String> {
    let mut out = Vec::new();
    let from: IpAddr = from.parse().unwrap();
    t.announce(a, from, 1_000_000, &mut SplitMix64(1), &mut out);
    decode::announce(&out).unwrap().failure
}

/// Info hash number `i`, with its first byte (which picks the store shard) `first`.
fn hash(first: u8, i: u32) -> InfoHash {
    let mut h = [0u8; 20];
    h[0] = first;
    h[1..5].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

#[test]
fn should_keep_max_swarms_exactly_however_the_hashes_fall_into_shards() {
    for spread in [true, false] {
        let t = Tracker::new(TrackerConfig {
            max_swarms: 10,
            shards: 16,
            ..TrackerConfig::default()
        });
        let mut refused = Vec::new();
        for i in 0..40u32 {
            // Spread over all 16 shards, or all in one.
            let h = hash(if spread { i as u8 } else { 0 }, i);
            let from = format!("127.1.{}.{}", i / 200, 1 + i % 200);
            refused.extend(announce(&t, &request(h, 1), &from));
        }
        assert_eq!(t.size(), (10, 10), "spread over shards: {spread}");
        assert_eq!(refused.len(), 30);
        assert!(refused
            .iter()
            .all(|r| r == "the tracker is full: it holds 10 torrents"));
    }
}

#[test]
fn should_refuse_a_new_peer_beyond_max_peers_and_keep_serving_known_ones() {
    let t = Tracker::new(TrackerConfig {
        max_peers: 5,
        ..TrackerConfig::default()
    });
    for p in 1..=5u8 {
        assert_eq!(
            announce(&t, &request(hash(p, 0), p), &format!("127.1.0.{p}")),
            None
        );
    }
    assert_eq!(
        announce(&t, &request(hash(1, 0), 6), "127.1.0.6").as_deref(),
        Some("the tracker is full: it holds 5 peers")
    );
    assert_eq!(announce(&t, &request(hash(1, 0), 1), "127.1.0.1"), None);
    assert_eq!(t.size(), (5, 5));
    assert_eq!(
        t.stats.failures.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn should_cap_peers_per_ipv6_64_not_per_address() {
    let t = Tracker::new(TrackerConfig {
        max_peers_per_source: 2,
        ..TrackerConfig::default()
    });
    let reason = "too many peers from one address: at most 2 over all torrents (IPv6: per /64)";
    assert_eq!(
        announce(&t, &request(hash(1, 0), 1), "2001:db8:1:2::1"),
        None
    );
    assert_eq!(
        announce(&t, &request(hash(2, 0), 1), "2001:db8:1:2::2"),
        None
    );
    assert_eq!(
        announce(&t, &request(hash(3, 0), 1), "2001:db8:1:2:abcd::3").as_deref(),
        Some(reason)
    );
    assert_eq!(
        announce(&t, &request(hash(3, 0), 1), "2001:db8:1:3::1"),
        None
    );
    assert_eq!(t.peers_from("2001:db8:1:2::ffff".parse().unwrap()), 2);
    assert_eq!(t.size(), (3, 3));
}

#[tokio::test]
async fn should_refuse_peers_beyond_the_per_source_cap_with_a_failure_reason() {
    let t = start(TrackerConfig {
        max_peers_per_source: 3,
        ..TrackerConfig::default()
    })
    .await;
    let url = |q: String| format!("{}?{q}", t.announce_url());
    for h in 1..=3 {
        let (s, body) = get_from(ip("127.1.0.1"), &url(query(h, 1, 6881, 5, "started")), &[]).await;
        assert_eq!(s, 200);
        assert_eq!(decode::announce(&body).unwrap().failure, None);
    }
    let (s, body) = get_from(ip("127.1.0.1"), &url(query(4, 1, 6881, 5, "started")), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(
        decode::announce(&body).unwrap().failure.as_deref(),
        Some("too many peers from one address: at most 3 over all torrents (IPv6: per /64)")
    );
    // Another address is not held back; the capped one keeps its peers announcing.
    let (_, body) = get_from(ip("127.2.0.1"), &url(query(4, 2, 6882, 5, "started")), &[]).await;
    assert_eq!(decode::announce(&body).unwrap().failure, None);
    let (_, body) = get_from(ip("127.1.0.1"), &url(query(1, 1, 6881, 0, "")), &[]).await;
    assert_eq!(decode::announce(&body).unwrap().failure, None);
    assert_eq!(t.tracker.size(), (4, 4));
    // A peer that leaves makes room.
    get_from(ip("127.1.0.1"), &url(query(2, 1, 6881, 5, "stopped")), &[]).await;
    let (_, body) = get_from(ip("127.1.0.1"), &url(query(4, 1, 6881, 5, "started")), &[]).await;
    assert_eq!(decode::announce(&body).unwrap().failure, None);
    assert_eq!(t.tracker.peers_from(ip("127.1.0.1")), 3);
    t.stop().await;
}

#[tokio::test]
async fn should_not_let_another_address_move_or_stop_a_peer() {
    let t = start(TrackerConfig::default()).await;
    let url = |q: String| format!("{}?{q}", t.announce_url());
    let members = || {
        let mut m: Vec<String> = t
            .tracker
            .members(&InfoHash([1; 20]), alto_web::clock::now())
            .iter()
            .map(|p| p.addr.to_string())
            .collect();
        m.sort();
        m
    };
    get_from(ip("127.1.0.1"), &url(query(1, 1, 6881, 5, "started")), &[]).await;
    // The victim's peer id from another address: a forged `stopped`, then a `started`.
    get_from(ip("127.2.0.9"), &url(query(1, 1, 7000, 5, "stopped")), &[]).await;
    assert_eq!(
        members(),
        ["127.1.0.1:6881"],
        "a forged stopped removed the peer"
    );
    get_from(ip("127.2.0.9"), &url(query(1, 1, 7000, 5, "started")), &[]).await;
    assert_eq!(
        members(),
        ["127.1.0.1:6881", "127.2.0.9:7000"],
        "the peer was moved"
    );
    // The victim's own new port updates its entry.
    get_from(ip("127.1.0.1"), &url(query(1, 1, 6999, 5, "")), &[]).await;
    assert_eq!(members(), ["127.1.0.1:6999", "127.2.0.9:7000"]);
    // A third address, asking, is handed both (they are distinct peers to it).
    let (_, body) = get_from(ip("127.3.0.1"), &url(query(1, 3, 6883, 5, "started")), &[]).await;
    assert_eq!(decode::announce(&body).unwrap().peers.len(), 2);
    t.stop().await;
}
