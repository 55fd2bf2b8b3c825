//! Head mode against a real `alto-server` on the embedded loopback topology: peer lists put
//! the announcer's PID first and then PIDs by cost, a client not yet measured gets a share
//! of other PIDs, a member of a well-served PID stays inside it and one that stalls reaches
//! out (the locality policy, `docs/locality.md`), the head answers the endpoint cost
//! service for its PID and lists swarm members, and keeps its maps while the ALTO server is
//! down.

mod common;

use alto_locality::rank::Policy;
use alto_locality::LocalityConfig;
use common::advance;
use std::time::Duration;
use test_support::http::*;
use test_support::wait;
use tracker_shim::protocol::decode;
use tracker_shim::protocol::query::percent_encode;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

async fn head(random_share: f64) -> (alto_server::Running, RunningTracker) {
    head_with(random_share, LocalityConfig::default()).await
}

async fn head_with(
    random_share: f64,
    locality: LocalityConfig,
) -> (alto_server::Running, RunningTracker) {
    let alto = alto_server::Running::start(
        alto_server::Source::Embedded,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let config = TrackerConfig {
        policy: Policy { random_share },
        locality,
        ..TrackerConfig::default()
    };
    let follow = Mode::Head {
        alto: vec![alto.directory_url()],
        pid: "PID1".into(),
        refresh: Duration::from_millis(200),
    };
    let t = RunningTracker::start(
        Tracker::new(config),
        "127.1.0.1:0".parse().unwrap(),
        None,
        follow,
    )
    .await
    .unwrap();
    // Nothing tells when the follower installed the maps: looked at with a deadline.
    wait::until("the head's maps", Duration::from_secs(10), &[], || {
        t.tracker.maps().is_some()
    })
    .await;
    (alto, t)
}

/// Announces `query` from `from` and returns the answer's body.
async fn announce(t: &RunningTracker, from: &str, query: &str) -> bytes::Bytes {
    get_from(ip(from), &format!("{}?{query}", t.announce_url()), &[])
        .await
        .1
}

/// Peers in PIDs 1 to 4 (three each) and one in `default` (127.0.0.2).
async fn populate(t: &RunningTracker) {
    for pid in 1..=4u8 {
        for k in 1..=3u8 {
            let q = query(
                1,
                pid * 10 + k,
                6000 + (pid * 10 + k) as u16,
                100,
                "started",
            );
            announce(t, &format!("127.{pid}.0.{k}"), &q).await;
        }
    }
    announce(t, "127.0.0.2", &query(1, 99, 6099, 100, "started")).await;
}

fn second_octet(a: &std::net::SocketAddr) -> u8 {
    match a.ip() {
        std::net::IpAddr::V4(v) => v.octets()[1],
        _ => 255,
    }
}

/// Announces of `query` with the figures `downloaded` and `uploaded`.
fn with_figures(query: &str, downloaded: u64, uploaded: u64) -> String {
    query.replace(
        "uploaded=0&downloaded=0",
        &format!("uploaded={uploaded}&downloaded={downloaded}"),
    )
}

#[tokio::test]
async fn peer_lists_follow_the_cost_map() {
    // Every peer of other PIDs for a client not yet measured: the whole ranked list.
    let everything = LocalityConfig {
        random_share: 1.0,
        ..LocalityConfig::default()
    };
    let (alto, t) = head_with(0.0, everything).await;
    populate(&t).await;
    let body = announce(
        &t,
        "127.1.0.9",
        &format!("{}&numwant=50", query(1, 9, 6009, 100, "started")),
    )
    .await;
    let a = decode::announce(&body).unwrap();
    let pids: Vec<u8> = a.peers.iter().map(|p| second_octet(&p.0)).collect();
    // Own PID (cost 1), its metro partner PID2 (5), the other metro (40, ties in random
    // order), and `default` (100) last.
    assert_eq!(&pids[..6], [1, 1, 1, 2, 2, 2], "{pids:?}");
    assert!(pids[6..12].iter().all(|&p| p == 3 || p == 4), "{pids:?}");
    assert_eq!(pids[12], 0, "{pids:?}");
    let metrics = get_from(ip("127.0.0.1"), &format!("http://{}/metrics", t.addr), &[])
        .await
        .1;
    let text = String::from_utf8_lossy(&metrics).into_owned();
    assert!(text.contains("tracker_head_mode 1"), "{text}");
    t.stop().await;
    alto.stop().await.unwrap();
}

#[tokio::test]
async fn a_member_of_a_served_pid_stays_inside_and_one_that_stalls_reaches_out() {
    let (alto, t) = head(0.1).await;
    populate(&t).await;
    let member = |q: String| {
        let t = &t;
        async move {
            let body = announce(t, "127.1.0.9", &format!("{q}&numwant=50")).await;
            decode::announce(&body).unwrap().peers
        }
    };
    let foreign = |peers: &[(std::net::SocketAddr, Option<tracker_shim::protocol::PeerId>)]| {
        peers.iter().filter(|p| second_octet(&p.0) != 1).count()
    };
    let started = query(1, 9, 6009, 1 << 30, "started");
    // Not measured yet, in a PID with nothing measured: the random share, 10% of 50.
    assert_eq!(foreign(&member(started.clone()).await), 5);
    // Rates need samples half a second apart and the PID's summary is remade once a
    // second (`tracker_shim::store::SUMMARY_EVERY_MS`): the tracker's clock is tokio's.
    advance(Duration::from_millis(
        tracker_shim::store::SUMMARY_EVERY_MS + 100,
    ))
    .await;
    // The head's own PID is served: peer 11 (127.1.0.1) reports 64 MiB down, 16 MiB up.
    let busy = with_figures(&query(1, 11, 6011, 1 << 30, ""), 64 << 20, 16 << 20);
    announce(&t, "127.1.0.1", &busy).await;
    let newcomer = query(1, 8, 6008, 1 << 30, "started");
    let body = announce(&t, "127.1.0.8", &format!("{newcomer}&numwant=50")).await;
    let peers = decode::announce(&body).unwrap().peers;
    assert!(
        !peers.is_empty() && foreign(&peers) == 0,
        "a newcomer to a measurably well-served PID gets its own PID only: {peers:?}"
    );
    // Peer 9 has moved nothing since its first announce: a stall, lagging at first, and
    // underserved once it has lasted `confirm_ms`; then it reaches out.
    advance(Duration::from_millis(LocalityConfig::default().confirm_ms)).await;
    announce(
        &t,
        "127.1.0.1",
        &with_figures(&query(1, 11, 6011, 1 << 30, ""), 96 << 20, 24 << 20),
    )
    .await;
    let peers = member(query(1, 9, 6009, 1 << 30, "")).await;
    assert_eq!(
        foreign(&peers),
        LocalityConfig::default().foreign_peers,
        "a stalled member gets peers of other PIDs: {peers:?}"
    );
    assert!(
        peers.iter().take(3).all(|p| second_octet(&p.0) == 1),
        "its own PID's peers stay first: {peers:?}"
    );
    t.stop().await;
    alto.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_not_yet_measured_gets_a_tenth_from_several_other_pids() {
    let (alto, t) = head(0.1).await;
    populate(&t).await;
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..20u8 {
        let q = query(1, 100 + round, 7000, 100, "");
        let (_, body) = get_from(
            ip("127.1.0.9"),
            &format!("{}?{q}&numwant=30", t.announce_url()),
            &[],
        )
        .await;
        let pids: Vec<u8> = decode::announce(&body)
            .unwrap()
            .peers
            .iter()
            .map(|p| second_octet(&p.0))
            .collect();
        assert_eq!(&pids[..3], [1, 1, 1], "its own PID first: {pids:?}");
        assert_eq!(pids.len(), 6, "and 10% of 30 from other PIDs: {pids:?}");
        assert!(
            pids[3..]
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= 2,
            "at most half of them from one PID: {pids:?}"
        );
        seen.extend(pids[3..].iter().copied());
        get_from(
            ip("127.1.0.9"),
            &format!(
                "{}?{}",
                t.announce_url(),
                query(1, 100 + round, 7000, 100, "stopped")
            ),
            &[],
        )
        .await;
    }
    assert!(
        seen.len() >= 3,
        "the share reaches several PIDs over the rounds: {seen:?}"
    );
    t.stop().await;
    alto.stop().await.unwrap();
}

#[tokio::test]
async fn the_head_answers_ecs_for_its_pid_and_lists_members() {
    let (alto, t) = head(0.1).await;
    populate(&t).await;
    let ecs = format!("http://{}/endpointcost/lookup", t.addr);
    let ctype = "application/alto-endpointcostparams+json";
    let body = r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":{"dsts":["ipv4:127.3.0.1","ipv4:127.1.0.2","ipv4:127.2.0.2"]}}"#;
    let (s, resp) = post_from(ip("127.1.0.50"), &ecs, ctype, body).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&resp));
    let v: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    let row = &v["endpoint-cost-map"]["ipv4:127.1.0.50"];
    assert_eq!(
        (
            row["ipv4:127.1.0.2"].as_u64(),
            row["ipv4:127.2.0.2"].as_u64(),
            row["ipv4:127.3.0.1"].as_u64()
        ),
        (Some(1), Some(2), Some(3))
    );
    // The same answer as the ALTO server's for the same maps.
    let (_, server) = post_from(
        ip("127.1.0.50"),
        &alto
            .directory_url()
            .replace("/directory", "/endpointcost/lookup"),
        ctype,
        body,
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&server).unwrap(),
        v
    );

    // Sources outside the head's PID are refused in the ALTO error format.
    let (s, resp) = post_from(ip("127.3.0.50"), &ecs, ctype, body).await;
    assert_eq!(s, 400);
    let e: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(e["meta"]["code"], "E_INVALID_FIELD_VALUE");
    assert_eq!(e["meta"]["value"], "ipv4:127.3.0.50");
    let (s, _) = post_from(ip("127.1.0.50"), &ecs, "application/json", body).await;
    assert_eq!(s, 415);
    let (s, resp) = post_from(ip("127.1.0.50"), &ecs, ctype, "{not json").await;
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&resp).contains("E_SYNTAX"));
    // 400 x 300 endpoints (120,000 pairs) in 14 KB: over the bound, refused uncomputed.
    let list = |net: u8, n: usize| {
        let v: Vec<String> = (0..n)
            .map(|i| format!("\"ipv4:127.{net}.{}.{}\"", i / 250, i % 250 + 1))
            .collect();
        v.join(",")
    };
    let big = format!(
        r#"{{"cost-type":{{"cost-mode":"ordinal","cost-metric":"routingcost"}},"endpoints":{{"srcs":[{}],"dsts":[{}]}}}}"#,
        list(1, 400),
        list(2, 300)
    );
    let (s, resp) = post_from(ip("127.1.0.50"), &ecs, ctype, &big).await;
    assert_eq!(s, 400);
    let e: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(
        (&e["meta"]["code"], &e["meta"]["field"]),
        (&"E_INVALID_FIELD_VALUE".into(), &"endpoints".into())
    );

    let (s, resp) = get_from(
        ip("127.2.0.1"),
        &format!(
            "http://{}/members?info_hash={}",
            t.addr,
            percent_encode(&[1; 20])
        ),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    let m: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(m["pid"], "PID1");
    let swarm = &m["swarms"][alto_model::hex(&[1u8; 20])];
    assert_eq!(swarm["incomplete"], 13);
    assert_eq!(swarm["peers"].as_array().unwrap().len(), 13);
    assert!(swarm["peers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["addr"] == "127.4.0.2:6042" && p["pid"] == "PID4"));
    let (s, _) = get_from(
        ip("127.2.0.1"),
        &format!("http://{}/members?info_hash=short", t.addr),
        &[],
    )
    .await;
    assert_eq!(s, 400);
    let (s, dir) = get_from(
        ip("127.2.0.1"),
        &format!("http://{}/directory", t.addr),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&dir).contains("pid-head-members"));
    t.stop().await;
    alto.stop().await.unwrap();
}

#[tokio::test]
async fn the_head_keeps_its_maps_while_the_alto_server_is_down() {
    let (alto, t) = head(0.0).await;
    populate(&t).await;
    let addr = alto.addr;
    alto.stop().await.unwrap();
    // The server's address now takes connections and closes them unanswered, so that each
    // refresh (every 200 ms) is seen to fail: wait for several instead of sleeping.
    let down = tokio::net::TcpListener::bind(addr).await.unwrap();
    for _ in 0..4 {
        let (refresh, _) = tokio::time::timeout(Duration::from_secs(10), down.accept())
            .await
            .expect("the head stopped refreshing")
            .unwrap();
        drop(refresh);
    }
    assert!(t.tracker.maps().is_some());
    let (_, body) = get_from(
        ip("127.1.0.9"),
        &format!("{}?{}", t.announce_url(), query(1, 9, 6009, 100, "started")),
        &[],
    )
    .await;
    let pids: Vec<u8> = decode::announce(&body)
        .unwrap()
        .peers
        .iter()
        .map(|p| second_octet(&p.0))
        .collect();
    assert_eq!(&pids[..6], [1, 1, 1, 2, 2, 2], "{pids:?}");
    t.stop().await;
}
