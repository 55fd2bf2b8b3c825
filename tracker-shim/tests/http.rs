//! The tracker over HTTP in plain mode: announces in both answer forms, scrapes, events,
//! `numwant`, IPv6, trusted addresses, and every kind of bad request, which gets a bencoded
//! `failure reason` and changes nothing.

mod common;
use common::start;

use test_support::http::*;
use tracker_shim::protocol::decode;
use tracker_shim::protocol::query::percent_encode;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

fn scrape_url(t: &RunningTracker, hashes: &[u8]) -> String {
    let q: Vec<String> = hashes
        .iter()
        .map(|h| format!("info_hash={}", percent_encode(&[*h; 20])))
        .collect();
    format!("http://{}/scrape?{}", t.addr, q.join("&"))
}

#[tokio::test]
async fn announces_and_scrapes_in_plain_mode() {
    let t = start(TrackerConfig::default()).await;
    let url = |q: String| format!("{}?{q}", t.announce_url());
    let (s, body) = get_from(ip("127.1.0.1"), &url(query(1, 1, 6881, 0, "started")), &[]).await;
    assert_eq!(s, 200);
    let a = decode::announce(&body).unwrap();
    assert_eq!(
        (a.complete, a.incomplete, a.interval, a.min_interval),
        (Some(1), Some(0), Some(1800), Some(60))
    );
    assert!(a.peers.is_empty());
    assert!(a.tracker_id.is_some());

    get_from(
        ip("127.2.0.1"),
        &url(query(1, 2, 6882, 100, "started")),
        &[],
    )
    .await;
    let (_, body) = get_from(
        ip("127.3.0.1"),
        &url(query(1, 3, 6883, 100, "started")),
        &[],
    )
    .await;
    let a = decode::announce(&body).unwrap();
    assert_eq!((a.complete, a.incomplete), (Some(1), Some(2)));
    let mut got: Vec<String> = a.peers.iter().map(|p| p.0.to_string()).collect();
    got.sort();
    assert_eq!(
        got,
        ["127.1.0.1:6881", "127.2.0.1:6882"],
        "the peer's own address from the connection"
    );

    // The dictionary form, with and without peer ids.
    let (_, body) = get_from(
        ip("127.3.0.1"),
        &url(query(1, 3, 6883, 100, "") + "&compact=0"),
        &[],
    )
    .await;
    let a = decode::announce(&body).unwrap();
    assert!(a.peers.iter().all(|p| p.1.is_some()));
    assert!(a
        .peers
        .iter()
        .any(|p| p.1 == Some(tracker_shim::protocol::PeerId([1; 20]))));
    let (_, body) = get_from(
        ip("127.3.0.1"),
        &url(query(1, 3, 6883, 100, "") + "&compact=0&no_peer_id=1"),
        &[],
    )
    .await;
    assert!(decode::announce(&body)
        .unwrap()
        .peers
        .iter()
        .all(|p| p.1.is_none()));

    // A seeder gets no seeders.
    let (_, body) = get_from(ip("127.1.0.1"), &url(query(1, 1, 6881, 0, "")), &[]).await;
    assert_eq!(decode::announce(&body).unwrap().peers.len(), 2);
    get_from(ip("127.4.0.1"), &url(query(1, 4, 6884, 0, "started")), &[]).await;
    let (_, body) = get_from(ip("127.1.0.1"), &url(query(1, 1, 6881, 0, "")), &[]).await;
    assert!(decode::announce(&body)
        .unwrap()
        .peers
        .iter()
        .all(|p| p.0.port() != 6884));

    // completed, stopped, and scrape of several torrents.
    get_from(
        ip("127.2.0.1"),
        &url(query(1, 2, 6882, 0, "completed")),
        &[],
    )
    .await;
    get_from(
        ip("127.3.0.1"),
        &url(query(1, 3, 6883, 100, "stopped")),
        &[],
    )
    .await;
    get_from(
        ip("127.3.0.1"),
        &url(query(2, 3, 6883, 100, "started")),
        &[],
    )
    .await;
    let (s, body) = get_from(ip("127.0.0.1"), &scrape_url(&t, &[1, 2, 3]), &[]).await;
    assert_eq!(s, 200);
    let mut files = decode::scrape(&body).unwrap();
    files.sort_by_key(|f| f.0);
    let counts: Vec<(u32, u32, u32)> = files
        .iter()
        .map(|f| (f.1.complete, f.1.downloaded, f.1.incomplete))
        .collect();
    assert_eq!(counts, [(3, 1, 0), (0, 0, 1), (0, 0, 0)]);
    t.stop().await;
}

#[tokio::test]
async fn numwant_is_honoured_up_to_the_cap() {
    let t = start(TrackerConfig {
        max_numwant: 5,
        ..TrackerConfig::default()
    })
    .await;
    for p in 1..=12u8 {
        get_from(
            ip(&format!("127.1.0.{p}")),
            &format!("{}?{}", t.announce_url(), query(7, p, 7000, 5, "started")),
            &[],
        )
        .await;
    }
    let ask = |n: &str| {
        format!(
            "{}?{}&numwant={n}",
            t.announce_url(),
            query(7, 99, 7000, 5, "")
        )
    };
    let (_, body) = get_from(ip("127.1.0.99"), &ask("3"), &[]).await;
    assert_eq!(decode::announce(&body).unwrap().peers.len(), 3);
    let (_, body) = get_from(ip("127.1.0.99"), &ask("500"), &[]).await;
    assert_eq!(decode::announce(&body).unwrap().peers.len(), 5);
    let (_, body) = get_from(ip("127.1.0.99"), &ask("0"), &[]).await;
    assert_eq!(decode::announce(&body).unwrap().peers.len(), 0);
    t.stop().await;
}

#[tokio::test]
async fn bad_requests_get_failure_reasons_and_change_nothing() {
    let t = start(TrackerConfig {
        max_scrape: 2,
        max_query_bytes: 600,
        ..TrackerConfig::default()
    })
    .await;
    let good = query(1, 1, 6881, 10, "started");
    get_from(
        ip("127.1.0.1"),
        &format!("{}?{good}", t.announce_url()),
        &[],
    )
    .await;
    let before = get_from(ip("127.0.0.1"), &scrape_url(&t, &[1]), &[])
        .await
        .1;
    let ih = format!("info_hash={}", percent_encode(&[1; 20]));
    let cases: Vec<(String, &str)> = vec![
        (good.replace(&ih, ""), "missing `info_hash`"),
        (
            good.replace(&ih, &format!("info_hash={}", percent_encode(&[1; 19]))),
            "`info_hash` must be 20 bytes, not 19",
        ),
        (
            good.replace(&ih, &format!("info_hash={}", percent_encode(&[1; 21]))),
            "`info_hash` must be 20 bytes, not 21",
        ),
        (
            good.replace("peer_id=", "peer_id=x"),
            "`peer_id` must be 20 bytes, not 21",
        ),
        (
            good.replace("port=6881", "port=65536"),
            "invalid `port`: must be 1 to 65535",
        ),
        (
            good.replace("port=6881", "port=http"),
            "invalid `port`: must be 1 to 65535",
        ),
        (
            good.replace("left=10", "left=-10"),
            "invalid `left`: must be a non-negative integer",
        ),
        (
            good.replace("uploaded=0", "uploaded=1e3"),
            "invalid `uploaded`: must be a non-negative integer",
        ),
        (
            good.replace("event=started", "event=finished"),
            "unknown `event` `finished`",
        ),
        (
            good.replace("info_hash=%01", "info_hash=%0"),
            "invalid percent-encoding in `info_hash`",
        ),
        (
            good.clone() + "&numwant=lots",
            "invalid `numwant`: must be a non-negative integer",
        ),
        ("%ff%fe%00garbage&&==".to_string(), "missing `info_hash`"),
    ];
    for (q, reason) in &cases {
        let (s, body) = get_from(ip("127.2.0.1"), &format!("{}?{q}", t.announce_url()), &[]).await;
        assert_eq!(s, 200, "{q}");
        assert_eq!(
            decode::announce(&body).unwrap().failure.as_deref(),
            Some(*reason),
            "{q}"
        );
    }
    let (s, body) = get_from(
        ip("127.2.0.1"),
        &format!("{}?{good}&pad={}", t.announce_url(), "x".repeat(700)),
        &[],
    )
    .await;
    assert_eq!(s, 414);
    assert!(decode::announce(&body)
        .unwrap()
        .failure
        .unwrap()
        .contains("longer than 600 bytes"));
    let (_, body) = get_from(ip("127.2.0.1"), &scrape_url(&t, &[1, 2, 3]), &[]).await;
    assert_eq!(
        decode::scrape(&body).unwrap_err().to_string(),
        "too many `info_hash` in one scrape: 3, at most 2"
    );
    let (_, body) = get_from(
        ip("127.2.0.1"),
        &format!("http://{}/scrape?info_hash=abc", t.addr),
        &[],
    )
    .await;
    assert_eq!(
        decode::scrape(&body).unwrap_err().to_string(),
        "`info_hash` must be 20 bytes, not 3"
    );
    let (s, _) = get_from(ip("127.2.0.1"), &format!("http://{}/nothing", t.addr), &[]).await;
    assert_eq!(s, 404);

    assert_eq!(
        get_from(ip("127.0.0.1"), &scrape_url(&t, &[1]), &[])
            .await
            .1,
        before,
        "bad requests changed the swarm"
    );
    assert_eq!(t.tracker.size(), (1, 1));
    // And it still serves.
    let (_, body) = get_from(
        ip("127.2.0.1"),
        &format!("{}?{}", t.announce_url(), query(1, 2, 6882, 10, "started")),
        &[],
    )
    .await;
    assert_eq!(decode::announce(&body).unwrap().peers.len(), 1);
    t.stop().await;
}

#[tokio::test]
async fn addresses_come_from_the_connection_unless_trusted() {
    let trusted =
        alto_model::addr::Prefix::parse(alto_model::addr::AddressType::Ipv4, "127.9.0.0/16")
            .unwrap();
    let t = start(TrackerConfig {
        trusted_ip_sources: vec![trusted],
        trusted_proxies: vec![trusted],
        ..TrackerConfig::default()
    })
    .await;
    let url = |q: String| format!("{}?{q}", t.announce_url());
    // Untrusted: `ip` and X-Forwarded-For are ignored.
    get_from(
        ip("127.1.0.1"),
        &url(query(1, 1, 6881, 10, "started") + "&ip=127.5.5.5"),
        &[("x-forwarded-for", "127.6.6.6")],
    )
    .await;
    // Trusted for `ip`.
    get_from(
        ip("127.9.0.1"),
        &url(query(1, 2, 6882, 10, "started") + "&ip=127.4.0.7"),
        &[],
    )
    .await;
    // A trusted proxy: the right-most X-Forwarded-For entry.
    get_from(
        ip("127.9.0.2"),
        &url(query(1, 3, 6883, 10, "started")),
        &[("x-forwarded-for", "127.7.7.7, 127.3.0.9")],
    )
    .await;
    let members: Vec<String> = t
        .tracker
        .members(
            &tracker_shim::protocol::InfoHash([1; 20]),
            alto_web::clock::now(),
        )
        .iter()
        .map(|p| p.addr.to_string())
        .collect();
    let mut members = members;
    members.sort();
    assert_eq!(
        members,
        ["127.1.0.1:6881", "127.3.0.9:6883", "127.4.0.7:6882"]
    );
    t.stop().await;
}

#[tokio::test]
async fn ipv6_peers_come_in_peers6() {
    let t = RunningTracker::start(
        Tracker::new(TrackerConfig::default()),
        "[::1]:0".parse().unwrap(),
        None,
        Mode::Plain,
    )
    .await
    .unwrap();
    let url = |q: String| format!("http://{}/announce?{q}", t.addr);
    get_from(ip("::1"), &url(query(1, 1, 6881, 0, "started")), &[]).await;
    let (_, body) = get_from(ip("::1"), &url(query(1, 2, 6882, 10, "started")), &[]).await;
    let raw = String::from_utf8_lossy(&body).into_owned();
    assert!(raw.contains("6:peers6"), "{raw}");
    let a = decode::announce(&body).unwrap();
    assert_eq!(a.peers.len(), 1);
    assert_eq!(a.peers[0].0.to_string(), "[::1]:6881");
    t.stop().await;
}
