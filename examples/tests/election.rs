//! Trackers in join mode against a real `alto-server`: one head per PID, a head killed
//! mid-run replaced within two lease periods with the directory and forwarding following,
//! forwarded answers equal to the server's own, a head stepping down when its renewals
//! fail, and heads finding other PIDs' swarm members through the head directory.

use alto_model::pidhead::Role;
use std::time::{Duration, Instant};
use test_support::http::*;
use tracker_shim::membership::JoinSettings;
use tracker_shim::protocol::decode;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

const TTL: u64 = 2;

/// An ALTO server on the loopback topology with short leases; `extra` goes into the config;
/// `forward` false makes a server that answers everything itself.
async fn alto(extra: &str, forward: bool) -> (tempfile::TempDir, alto_server::Running) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["network-map.json", "routingcost.json", "hopcount.json"] {
        std::fs::copy(testdata::loopback::dir().join(f), dir.path().join(f)).unwrap();
    }
    let config = format!("{extra}\n{}\n[pid-heads]\nlease-ttl-secs = {TTL}\nstandby-window-secs = 10\nforward-timeout-ms = 500\nforward = {forward}\n", testdata::loopback::CONFIG);
    std::fs::write(dir.path().join("alto.toml"), config).unwrap();
    let server = alto_server::Running::start(
        alto_server::Source::File(dir.path().join("alto.toml")),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    (dir, server)
}

async fn member(alto: &alto_server::Running, ip: &str) -> RunningTracker {
    let settings = JoinSettings {
        alto: alto.directory_url(),
        endpoint: ip.parse().unwrap(),
        capabilities: Default::default(),
        rejoin: Duration::from_millis(300),
        refresh: Duration::from_millis(200),
    };
    let config = TrackerConfig {
        interval: 5,
        min_interval: 1,
        ..TrackerConfig::default()
    };
    RunningTracker::start(
        Tracker::new(config),
        format!("{ip}:0").parse().unwrap(),
        None,
        Mode::Join(settings),
    )
    .await
    .unwrap()
}

fn is_head(t: &RunningTracker) -> bool {
    t.membership.borrow().role == Some(Role::Head) && t.tracker.maps().is_some()
}

async fn until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

async fn directory_head(alto: &alto_server::Running, pid: &str) -> Option<String> {
    let (_, body) = get_from(
        ip("127.0.0.1"),
        &alto.directory_url().replace("/directory", "/pidheads"),
        &[],
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["property-map"][format!("loopback-network-map.pid:{pid}")]["head-tracker"]
        .as_str()
        .map(str::to_owned)
}

/// The ALTO server's `/metrics` text.
async fn server_metrics(alto: &alto_server::Running) -> String {
    let url = alto.directory_url().replace("/directory", "/metrics");
    String::from_utf8(get_from(ip("127.0.0.1"), &url, &[]).await.1.to_vec()).unwrap()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

const ECS_BODY: &str = r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":{"srcs":["ipv4:127.1.0.50"],"dsts":["ipv4:127.4.0.1","ipv4:127.1.0.2","ipv4:127.2.0.9","ipv4:10.0.0.1"]}}"#;
const ECS: &str = "application/alto-endpointcostparams+json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_head_is_replaced_and_forwarding_follows() {
    let (_dir, alto) = alto("server-id = \"alto-test\"", true).await;
    let (_dir2, local_only) = self::alto("", false).await;
    let s1 = member(&alto, "127.1.0.11").await;
    until(
        "the first joiner to be head",
        Duration::from_secs(10),
        || is_head(&s1),
    )
    .await;
    let s2 = member(&alto, "127.1.0.12").await;
    let s3 = member(&alto, "127.1.0.13").await;
    until(
        "the others to join as members",
        Duration::from_secs(10),
        || {
            s2.membership.borrow().role == Some(Role::Member)
                && s3.membership.borrow().role == Some(Role::Member)
        },
    )
    .await;
    assert_eq!(directory_head(&alto, "PID1").await, Some(s1.announce_url()));

    // A forwarded query is answered by the head and equals the server's own answer.
    let ecs_url = alto
        .directory_url()
        .replace("/directory", "/endpointcost/lookup");
    let (s, forwarded) = post_from(ip("127.1.0.50"), &ecs_url, ECS, ECS_BODY).await;
    assert_eq!(s, 200);
    let (_, local) = post_from(
        ip("127.1.0.50"),
        &local_only
            .directory_url()
            .replace("/directory", "/endpointcost/lookup"),
        ECS,
        ECS_BODY,
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&forwarded).unwrap(),
        serde_json::from_slice::<serde_json::Value>(&local).unwrap()
    );
    let m = server_metrics(&alto).await;
    assert_eq!(
        (
            metric(&m, "alto_forwarded_total"),
            metric(&m, "alto_relayed_total"),
            metric(&m, "alto_fallback_total")
        ),
        (1, 1, 0),
        "{m}"
    );

    // Kill the head: no resignation, it just stops.
    let old = s1.announce_url();
    s1.kill();
    let took = until("a new head", Duration::from_secs(2 * TTL + 2), || {
        is_head(&s2) || is_head(&s3)
    })
    .await;
    assert!(
        took <= Duration::from_secs(2 * TTL),
        "replaced after {took:?}, more than two lease periods"
    );
    let new = if is_head(&s2) {
        s2.announce_url()
    } else {
        s3.announce_url()
    };
    let shown = directory_head(&alto, "PID1").await;
    assert_eq!(
        shown,
        Some(new.clone()),
        "the directory follows (was {old})"
    );

    // Forwarding follows the new head.
    let before = server_metrics(&alto).await;
    let (s, again) = post_from(ip("127.1.0.50"), &ecs_url, ECS, ECS_BODY).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&again).unwrap(),
        serde_json::from_slice::<serde_json::Value>(&local).unwrap()
    );
    let m = server_metrics(&alto).await;
    assert_eq!(
        metric(&m, "alto_relayed_total"),
        metric(&before, "alto_relayed_total") + 1,
        "{m}"
    );
    assert_eq!(
        (
            metric(&m, "alto_fallback_total"),
            metric(&m, "alto_pidhead_lapses_total")
        ),
        (0, 1),
        "{m}"
    );
    s2.stop().await;
    s3.stop().await;
    alto.stop().await.unwrap();
    local_only.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_steps_down_when_its_renewals_fail() {
    let (_dir, alto) = alto("", true).await;
    let s1 = member(&alto, "127.2.0.11").await;
    until("head", Duration::from_secs(10), || is_head(&s1)).await;
    alto.stop().await.unwrap();
    until(
        "the head to step down",
        Duration::from_secs(TTL + 3),
        || s1.membership.borrow().role == Some(Role::Member) && s1.tracker.maps().is_none(),
    )
    .await;
    assert_eq!(
        s1.membership.borrow().role_changes,
        2,
        "became head, then stepped down"
    );
    s1.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_find_members_of_other_pids() {
    let (_dir, alto) = alto("", true).await;
    let h1 = member(&alto, "127.1.0.11").await;
    let h3 = member(&alto, "127.3.0.11").await;
    until("two heads", Duration::from_secs(10), || {
        is_head(&h1) && is_head(&h3)
    })
    .await;
    until(
        "PID1's head to know PID3's",
        Duration::from_secs(10),
        || !h1.tracker.other_heads().is_empty(),
    )
    .await;
    // A seeder in PID3 announces to its head; a leecher in PID1 to its own.
    get_from(
        ip("127.3.0.5"),
        &format!("{}?{}", h3.announce_url(), query(4, 1, 6001, 0, "started")),
        &[],
    )
    .await;
    let url = format!("{}?{}", h1.announce_url(), query(4, 2, 6002, 100, ""));
    let ask = || get_from(ip("127.1.0.5"), &url, &[]);
    let first = decode::announce(&ask().await.1).unwrap();
    assert!(
        first.peers.is_empty(),
        "nobody in PID1 yet: {:?}",
        first.peers
    );
    let start = Instant::now();
    loop {
        let a = decode::announce(&ask().await.1).unwrap();
        if a.peers.iter().any(|p| p.0.to_string() == "127.3.0.5:6001") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "PID1's head never learnt PID3's seeder"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h1.stop().await;
    h3.stop().await;
    alto.stop().await.unwrap();
}
