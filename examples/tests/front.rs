//! The announce front (`tracker-shim --front`) against a real `alto-server` and heads
//! elected through it, on the embedded loopback topology: an announce from a PID with a
//! head is redirected there with its query unchanged, also for an HTTP/1.0 client without a
//! `Host` header; a PID without a head is served by the front itself; a head that stops
//! accepting connections is routed around (the front checks every 100 ms here), also while
//! the ALTO server is down; the counters say so.

mod common;

use common::{alto, alto_ttl, member};
use std::time::Duration;
use test_support::http::*;
use test_support::wait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracker_shim::protocol::decode;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// The front on 127.0.0.1, following `alto` every 100 ms.
async fn front(alto: &alto_server::Running, fallback: Option<String>) -> RunningTracker {
    let config = TrackerConfig {
        interval: 5,
        min_interval: 1,
        ..TrackerConfig::default()
    };
    let mode = Mode::Front {
        alto: vec![alto.directory_url()],
        refresh: Duration::from_millis(100),
        fallback,
    };
    RunningTracker::start(
        Tracker::new(config),
        "127.0.0.1:0".parse().unwrap(),
        None,
        mode,
    )
    .await
    .unwrap()
}

/// Waits until the front sees `n` reachable heads.
async fn until_live_heads(f: &RunningTracker, n: usize) {
    let front = f.front.clone().expect("front mode");
    wait::until("the front's heads", Duration::from_secs(10), &[], || {
        front.view().live_heads() == n
    })
    .await;
}

/// GETs `url` from `local`: the status, the `Location` header, the body.
async fn get(local: &str, url: &str) -> (u16, Option<String>, Vec<u8>) {
    let (parts, body) = exchange(
        Some(ip(local)),
        http::Request::get(url),
        &[],
        Default::default(),
    )
    .await;
    let location = parts
        .headers
        .get(http::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (parts.status.as_u16(), location, body.to_vec())
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announces_go_to_the_announcers_head_and_headless_pids_are_served_here() {
    // Leases outlast the test: when the head is killed, its PID still has a head, and the
    // front sees it unreachable (suspect), not gone.
    let (_dir, alto) = alto_ttl("", false, 60).await;
    let head = member(&alto, "127.1.0.5").await;
    let f = front(&alto, None).await;
    until_live_heads(&f, 1).await;
    let front_url = f.announce_url();

    // PID1 has a head: redirected, the query byte for byte.
    let q = query(1, 9, 6881, 100, "started");
    let (status, location, _) = get("127.1.0.9", &format!("{front_url}?{q}")).await;
    assert_eq!(status, 302);
    let location = location.expect("a Location");
    assert_eq!(location, format!("{}?{q}", head.announce_url()));
    // The head answers the redirected announce and counts it.
    let (status, _, body) = get("127.1.0.9", &location).await;
    assert_eq!(status, 200);
    decode::announce(&body).expect("a bencoded announce answer");
    assert_eq!(
        head.tracker
            .counts(&tracker_shim::protocol::InfoHash([1; 20]))
            .incomplete,
        1
    );
    // Scrapes too (BEP 48's URL).
    let (status, location, _) = get(
        "127.1.0.9",
        &format!("{}?info_hash=%01", front_url.replace("announce", "scrape")),
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(
        location.unwrap(),
        head.announce_url().replace("announce", "scrape") + "?info_hash=%01"
    );

    // An HTTP/1.0 client without `Host` (ctorrent) is redirected the same way.
    let raw = {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.1.0.9:0".parse().unwrap()).unwrap();
        let mut s = socket.connect(f.addr).await.unwrap();
        s.write_all(format!("GET /announce?{q} HTTP/1.0\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(
        raw.starts_with("HTTP/1.0 302") || raw.starts_with("HTTP/1.1 302"),
        "{raw}"
    );
    assert!(
        raw.to_ascii_lowercase()
            .contains(&format!("location: {}?{}", head.announce_url(), q).to_ascii_lowercase()),
        "{raw}"
    );

    // PID2 has no head: the front answers as a plain tracker, with peers of the torrent.
    let (status, location, body) = get(
        "127.2.0.9",
        &format!("{front_url}?{}", query(1, 10, 6881, 100, "started")),
    )
    .await;
    assert_eq!((status, location), (200, None));
    decode::announce(&body).expect("a bencoded announce answer");
    // Bad input from a headless PID gets the tracker's failure reason, a too long query its 414.
    let (status, _, body) = get("127.2.0.9", &format!("{front_url}?port=1")).await;
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("failure reason"),
        "{body:?}"
    );
    let long = "x".repeat(5000);
    let (status, location, _) = get("127.1.0.9", &format!("{front_url}?{long}")).await;
    assert_eq!((status, location), (414, None));

    // The head stops accepting connections: within a round its members are served here.
    head.kill();
    until_live_heads(&f, 0).await;
    let (status, location, body) = get("127.1.0.9", &format!("{front_url}?{q}")).await;
    assert_eq!((status, location), (200, None));
    decode::announce(&body).expect("a bencoded announce answer");

    let (_, _, text) = get("127.0.0.1", &front_url.replace("announce", "metrics")).await;
    let text = String::from_utf8(text).unwrap();
    assert_eq!(metric(&text, "front_redirects_to_head_total"), 3);
    assert_eq!(metric(&text, "front_served_headless_total"), 2);
    assert_eq!(metric(&text, "front_served_suspect_total"), 1);
    assert_eq!(metric(&text, "front_live_heads"), 0);
    assert_eq!(metric(&text, "tracker_announces_total"), 2);
    f.stop().await;
    alto.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_head_the_front_can_send_announces_to_a_fallback_tracker() {
    let (_dir, alto) = alto("", false).await;
    let fallback = "http://127.0.0.1:6970/announce".to_owned();
    let f = front(&alto, Some(fallback.clone())).await;
    // Before the first look at the server, and after it (no PID has a head), the same.
    let q = query(2, 9, 6881, 0, "completed");
    for _ in 0..2 {
        let (status, location, _) = get("127.3.0.9", &format!("{}?{q}", f.announce_url())).await;
        assert_eq!((status, location), (302, Some(format!("{fallback}?{q}"))));
        let front = f.front.clone().unwrap();
        wait::until("the front's map", Duration::from_secs(10), &[], || {
            front.view().network().is_some()
        })
        .await;
    }
    let head = member(&alto, "127.3.0.5").await;
    until_live_heads(&f, 1).await;
    let (status, location, _) = get("127.3.0.9", &format!("{}?{q}", f.announce_url())).await;
    assert_eq!(
        (status, location),
        (302, Some(format!("{}?{q}", head.announce_url())))
    );
    head.stop().await;
    f.stop().await;
    alto.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_alto_server_is_down_a_head_that_stops_is_still_routed_around() {
    let (_dir, alto) = alto_ttl("", false, 60).await;
    let head = member(&alto, "127.4.0.5").await;
    let f = front(&alto, None).await;
    until_live_heads(&f, 1).await;
    let q = query(4, 9, 6881, 100, "started");
    let (status, _, _) = get("127.4.0.9", &format!("{}?{q}", f.announce_url())).await;
    assert_eq!(status, 302);
    // The server goes away, then the head: the front keeps its last heads and checks them.
    alto.stop().await.unwrap();
    head.kill();
    until_live_heads(&f, 0).await;
    let (status, location, body) = get("127.4.0.9", &format!("{}?{q}", f.announce_url())).await;
    assert_eq!((status, location), (200, None));
    decode::announce(&body).expect("a bencoded announce answer");
    let stats = &f.front.as_ref().unwrap().stats;
    assert!(
        stats
            .follow_failures
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    f.stop().await;
}
