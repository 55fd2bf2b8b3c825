//! Announces captured from aria2, libtorrent, transmission, ctorrent and rtorrent
//! (`testdata/announces/`) replayed through the parser and, byte for byte over TCP, through a
//! running tracker.

use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracker_shim::protocol::announce::AnnounceRequest;
use tracker_shim::protocol::{decode, Event, InfoHash};
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

const INFO_HASH: &str = "e5e59a5f89d2151a21a3bf401b66c73a4ebbe15f";

/// (file, peer id prefix, port)
const CLIENTS: [(&str, &str, u16); 5] = [
    ("aria2", "A2-1-36-0-", 6891),
    ("libtorrent", "-LT2080-", 6892),
    ("transmission", "-TR3000-", 6893),
    ("ctorrent", "-CD0303-", 6894),
    ("rtorrent", "-lt0D80-", 6895),
];

/// The request targets of a capture file.
fn targets(client: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/announces")
        .join(format!("{client}.txt"));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("GET "))
        .map(|l| l.split(' ').nth(1).unwrap().to_owned())
        .collect();
    assert!(!lines.is_empty(), "{client}: no captures");
    lines
}

#[test]
fn every_captured_announce_parses_to_the_same_request() {
    for (client, prefix, port) in CLIENTS {
        for target in targets(client) {
            let query = target.split_once('?').unwrap().1;
            let r = AnnounceRequest::parse(query.as_bytes())
                .unwrap_or_else(|e| panic!("{client}: {e}: {target}"));
            assert_eq!(
                r.info_hash,
                InfoHash::from_hex(INFO_HASH).unwrap(),
                "{client}"
            );
            assert!(
                r.peer_id.0.starts_with(prefix.as_bytes()),
                "{client}: {:?}",
                r.peer_id
            );
            assert_eq!(
                (r.port, r.left, r.uploaded, r.downloaded),
                (port, 300_000, 0, 0),
                "{client}"
            );
            assert!(
                matches!(r.event, Event::Started | Event::Stopped),
                "{client}"
            );
            assert!(r.compact, "{client} asks for compact answers");
        }
    }
}

#[tokio::test]
async fn every_captured_announce_is_answered_over_the_wire() {
    let t = RunningTracker::start(
        Tracker::new(TrackerConfig::default()),
        "127.0.0.1:0".parse().unwrap(),
        None,
        Mode::Plain,
    )
    .await
    .unwrap();
    let mut started = 0;
    for (client, _, _) in CLIENTS {
        for target in targets(client) {
            let mut s = tokio::net::TcpStream::connect(t.addr).await.unwrap();
            let req = format!(
                "GET {target} HTTP/1.0\r\nHost: {}\r\nUser-Agent: replay\r\n\r\n",
                t.addr
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut resp = Vec::new();
            s.read_to_end(&mut resp).await.unwrap();
            let text = String::from_utf8_lossy(&resp);
            assert!(
                text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
                "{client}: {text}"
            );
            let body = &resp[resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
            let a = decode::announce(body).unwrap_or_else(|e| panic!("{client}: {e}"));
            assert_eq!(a.failure, None, "{client}");
            if target.contains("event=started") {
                started += 1;
            }
        }
    }
    assert!(started >= 5);
    // Every client also sent `stopped`, except transmission's two runs and aria2 (killed).
    let (_, peers) = t.tracker.size();
    assert_eq!(peers, 3, "aria2 and two transmission runs remain");
    t.stop().await;
}
