//! The UDP tracker protocol (BEP 15) over a real socket: connect, announce, scrape, and
//! errors for forged connection ids, broken packets, scrapes of too many hashes and
//! announces beyond the tracker's caps.

use std::time::Duration;
use tokio::net::UdpSocket;
use tracker_shim::protocol::udp::PROTOCOL_ID;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

async fn ask(sock: &UdpSocket, to: std::net::SocketAddr, packet: &[u8]) -> Vec<u8> {
    sock.send_to(packet, to).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("no UDP answer")
        .unwrap();
    buf.truncate(n);
    buf
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

async fn connect(sock: &UdpSocket, to: std::net::SocketAddr) -> u64 {
    let mut p = PROTOCOL_ID.to_be_bytes().to_vec();
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&0x1234u32.to_be_bytes());
    let r = ask(sock, to, &p).await;
    assert_eq!((r.len(), be32(&r, 0), be32(&r, 4)), (16, 0, 0x1234));
    u64::from_be_bytes(r[8..16].try_into().unwrap())
}

fn announce(cid: u64, peer: u8, left: u64, port: u16) -> Vec<u8> {
    announce_of(cid, 7, peer, left, port)
}

/// An announce of torrent `[h; 20]`; the transaction id is the peer's number.
fn announce_of(cid: u64, h: u8, peer: u8, left: u64, port: u16) -> Vec<u8> {
    let mut p = cid.to_be_bytes().to_vec();
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&(peer as u32).to_be_bytes());
    p.extend_from_slice(&[h; 20]);
    p.extend_from_slice(&[peer; 20]);
    p.extend_from_slice(&0u64.to_be_bytes());
    p.extend_from_slice(&left.to_be_bytes());
    p.extend_from_slice(&0u64.to_be_bytes());
    p.extend_from_slice(&2u32.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&(-1i32).to_be_bytes());
    p.extend_from_slice(&port.to_be_bytes());
    p
}

#[tokio::test]
async fn connect_announce_scrape_and_errors() {
    let t = RunningTracker::start(
        Tracker::new(TrackerConfig::default()),
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.1:0".parse().unwrap()),
        Mode::Plain,
    )
    .await
    .unwrap();
    let to = t.udp.unwrap();
    let a = UdpSocket::bind("127.1.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.2.0.1:0").await.unwrap();
    let ca = connect(&a, to).await;
    let cb = connect(&b, to).await;

    let r = ask(&a, to, &announce(ca, 1, 0, 6881)).await;
    assert_eq!(
        (
            be32(&r, 0),
            be32(&r, 4),
            be32(&r, 8),
            be32(&r, 12),
            be32(&r, 16)
        ),
        (1, 1, 1800, 0, 1)
    );
    assert_eq!(r.len(), 20, "no peers yet");
    let r = ask(&b, to, &announce(cb, 2, 50, 6882)).await;
    assert_eq!(
        (be32(&r, 12), be32(&r, 16)),
        (1, 1),
        "one leecher, one seeder"
    );
    assert_eq!(
        &r[20..],
        [127, 1, 0, 1, 0x1a, 0xe1],
        "the seeder at 127.1.0.1:6881"
    );

    let mut s = cb.to_be_bytes().to_vec();
    s.extend_from_slice(&2u32.to_be_bytes());
    s.extend_from_slice(&9u32.to_be_bytes());
    s.extend_from_slice(&[7; 20]);
    s.extend_from_slice(&[8; 20]);
    let r = ask(&b, to, &s).await;
    assert_eq!((be32(&r, 0), be32(&r, 4)), (2, 9));
    assert_eq!((be32(&r, 8), be32(&r, 12), be32(&r, 16)), (1, 0, 1));
    assert_eq!((be32(&r, 20), be32(&r, 24), be32(&r, 28)), (0, 0, 0));

    // A connection id given to another address, a made-up one, and broken packets.
    for packet in [announce(ca, 3, 5, 6883), announce(0xdead_beef, 3, 5, 6883)] {
        let r = ask(&b, to, &packet).await;
        assert_eq!((be32(&r, 0), be32(&r, 4)), (3, 3));
        assert_eq!(
            String::from_utf8_lossy(&r[8..]),
            "unknown or expired connection id"
        );
    }
    let r = ask(&b, to, &announce(cb, 3, 5, 0)).await;
    assert_eq!(String::from_utf8_lossy(&r[8..]), "invalid port");
    let r = ask(&b, to, b"garbage").await;
    assert_eq!(be32(&r, 0), 3);
    let mut unknown = cb.to_be_bytes().to_vec();
    unknown.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 4]);
    let r = ask(&b, to, &unknown).await;
    assert_eq!(
        (
            be32(&r, 0),
            be32(&r, 4),
            String::from_utf8_lossy(&r[8..]).into_owned()
        ),
        (3, 4, "unknown action".to_string())
    );
    assert_eq!(t.tracker.size(), (1, 2), "errors changed nothing");
    t.stop().await;
}

async fn start(config: TrackerConfig) -> RunningTracker {
    RunningTracker::start(
        Tracker::new(config),
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.1:0".parse().unwrap()),
        Mode::Plain,
    )
    .await
    .unwrap()
}

fn scrape(cid: u64, hashes: usize) -> Vec<u8> {
    let mut s = cid.to_be_bytes().to_vec();
    s.extend_from_slice(&2u32.to_be_bytes());
    s.extend_from_slice(&5u32.to_be_bytes());
    for i in 0..hashes {
        s.extend_from_slice(&[i as u8; 20]);
    }
    s
}

#[tokio::test]
async fn should_answer_a_scrape_of_too_many_hashes_with_an_error_saying_so() {
    let t = start(TrackerConfig {
        max_scrape: 100,
        ..TrackerConfig::default()
    })
    .await;
    let to = t.udp.unwrap();
    let a = UdpSocket::bind("127.1.0.1:0").await.unwrap();
    let cid = connect(&a, to).await;
    // 1,000 hashes: 20,016 bytes, read whole.
    let r = ask(&a, to, &scrape(cid, 1000)).await;
    assert_eq!((be32(&r, 0), be32(&r, 4)), (3, 5));
    assert_eq!(
        String::from_utf8_lossy(&r[8..]),
        "too many info hashes in one scrape: 1000, at most 74 (BEP 15)"
    );
    // BEP 15's 74 are answered, above a lower `max_scrape` too.
    let r = ask(&a, to, &scrape(cid, 74)).await;
    assert_eq!((be32(&r, 0), r.len()), (2, 8 + 74 * 12));
    t.stop().await;
}

#[tokio::test]
async fn should_answer_an_announce_beyond_a_cap_with_a_bep_15_error() {
    let t = start(TrackerConfig {
        max_peers_per_source: 2,
        ..TrackerConfig::default()
    })
    .await;
    let to = t.udp.unwrap();
    let a = UdpSocket::bind("127.1.0.1:0").await.unwrap();
    let cid = connect(&a, to).await;
    for h in 1..=2 {
        let r = ask(&a, to, &announce_of(cid, h, 1, 5, 6881)).await;
        assert_eq!(be32(&r, 0), 1, "an announce answer");
    }
    let r = ask(&a, to, &announce_of(cid, 3, 9, 5, 6881)).await;
    assert_eq!((be32(&r, 0), be32(&r, 4)), (3, 9));
    assert_eq!(
        String::from_utf8_lossy(&r[8..]),
        "too many peers from one address: at most 2 over all torrents (IPv6: per /64)"
    );
    // A known peer still announces.
    let r = ask(&a, to, &announce_of(cid, 1, 1, 0, 6881)).await;
    assert_eq!(be32(&r, 0), 1);
    assert_eq!(t.tracker.size(), (2, 2));
    t.stop().await;
}
