//! Trackers in join mode against a real `alto-server`: one head per PID, a head killed
//! mid-run replaced within two lease periods with the directory and forwarding following,
//! forwarded answers equal to the server's own, a head stepping down when its renewals
//! fail, and heads finding other PIDs' swarm members through the head directory.

mod common;

use alto_model::pidhead::Role;
use common::{advance, alto, member, TTL};
use std::time::Duration;
use test_support::http::*;
use test_support::wait;
use tokio::time::Instant;
use tracker_shim::membership::JoinSettings;
use tracker_shim::membership::Membership;
use tracker_shim::protocol::decode;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// Waits until `t` is head with its maps installed: the role is an event (the membership
/// channel); the maps have none, so they are looked at with a deadline.
async fn until_head(what: &str, t: &RunningTracker) {
    let timeout = Duration::from_secs(10);
    until_role(what, timeout, t, Role::Head).await;
    wait::until(what, timeout, &[], || t.tracker.maps().is_some()).await;
}

/// Waits for `t`'s membership to reach `role`, at most `timeout`.
async fn until_role(what: &str, timeout: Duration, t: &RunningTracker, role: Role) {
    let mut m = t.membership.clone();
    tokio::time::timeout(timeout, m.wait_for(|m| m.role == Some(role)))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("the membership task ended");
}

fn is_head(t: &RunningTracker) -> bool {
    t.membership.borrow().role == Some(Role::Head) && t.tracker.maps().is_some()
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

// On one thread: `tokio::time::pause` needs the current-thread runtime.
#[tokio::test]
async fn a_killed_head_is_replaced_and_forwarding_follows() {
    let (_dir, alto) = alto("server-id = \"alto-test\"", true).await;
    let (_dir2, local_only) = self::alto("", false).await;
    let s1 = member(&alto, "127.1.0.11").await;
    until_head("the first joiner to be head", &s1).await;
    let s2 = member(&alto, "127.1.0.12").await;
    let s3 = member(&alto, "127.1.0.13").await;
    let joined = Duration::from_secs(10);
    until_role("the others to join as members", joined, &s2, Role::Member).await;
    until_role("the others to join as members", joined, &s3, Role::Member).await;
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
    // Its lease (renewed at most a third of a lease ago) lapses within one lease period of
    // the kill: drive the clocks past it, then the standbys' next joins elect one of them.
    let start = Instant::now();
    advance(Duration::from_secs(TTL)).await;
    let (mut m2, mut m3) = (s2.membership.clone(), s3.membership.clone());
    let head = |m: &Membership| m.role == Some(Role::Head);
    tokio::time::timeout(Duration::from_secs(TTL + 2), async {
        tokio::select! {
            r = m2.wait_for(head) => r.map(drop),
            r = m3.wait_for(head) => r.map(drop),
        }
    })
    .await
    .expect("timed out waiting for a new head")
    .expect("the membership tasks ended");
    // The maps have no event: looked at with a deadline.
    wait::until("a new head's maps", Duration::from_secs(2), &[], || {
        is_head(&s2) || is_head(&s3)
    })
    .await;
    let took = start.elapsed();
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

// On one thread: `tokio::time::pause` needs the current-thread runtime.
#[tokio::test]
async fn a_head_steps_down_when_its_renewals_fail() {
    let (_dir, alto) = alto("", true).await;
    let s1 = member(&alto, "127.2.0.11").await;
    until_head("head", &s1).await;
    alto.stop().await.unwrap();
    // Past its lease deadline the next failed renewal makes it step down.
    advance(Duration::from_secs(TTL)).await;
    let timeout = Duration::from_secs(3);
    until_role("the head to step down", timeout, &s1, Role::Member).await;
    // It clears its maps before it says so; looked at with a deadline all the same.
    wait::until("the head to step down", timeout, &[], || {
        s1.membership.borrow().role == Some(Role::Member) && s1.tracker.maps().is_none()
    })
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
    until_head("two heads", &h1).await;
    until_head("two heads", &h3).await;
    // The head directory is read by the follower; nothing tells when: looked at.
    wait::until(
        "PID1's head to know PID3's",
        Duration::from_secs(10),
        &[],
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
    // That announce made the torrent wanted; PID1's head asks PID3's and stores the answer.
    let start = Instant::now();
    loop {
        tokio::time::timeout(Duration::from_secs(5), h1.tracker.foreign_stored())
            .await
            .expect("PID1's head never stored members of other heads");
        let a = decode::announce(&ask().await.1).unwrap();
        if a.peers.iter().any(|p| p.0.to_string() == "127.3.0.5:6001") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "PID1's head never learnt PID3's seeder"
        );
    }
    h1.stop().await;
    h3.stop().await;
    alto.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_https_is_elected_and_the_server_forwards_to_it_verified() {
    // One CA for the head's certificate, trusted by every client of this process (the
    // ALTO server's forwarding among them).
    let certs = tempfile::tempdir().unwrap();
    let ca = test_support::tls::TestCa::new("heads", certs.path());
    alto_web::tls::set_default_ca(&ca.cert()).unwrap();
    let issued = ca.issue("head", &["127.1.0.5"]);
    let tls =
        std::sync::Arc::new(alto_web::tls::ServerTls::load(&issued.cert, &issued.key).unwrap());
    let (_dir, alto) = alto("", true).await;
    let settings = JoinSettings {
        alto: vec![alto.directory_url()],
        endpoint: "127.1.0.5".parse().unwrap(),
        capabilities: Default::default(),
        rejoin: Duration::from_millis(300),
        refresh: Duration::from_millis(200),
    };
    let head = RunningTracker::start_tls(
        Tracker::new(TrackerConfig::default()),
        "127.1.0.5:0".parse().unwrap(),
        None,
        Mode::Join(settings),
        Some(tls),
    )
    .await
    .unwrap();
    assert!(head.announce_url().starts_with("https://127.1.0.5:"));
    until_head("the HTTPS head", &head).await;
    assert_eq!(
        directory_head(&alto, "PID1").await,
        Some(head.announce_url())
    );
    // A query from PID1 goes to the head over HTTPS and its answer is relayed.
    let body = r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":{"dsts":["ipv4:127.1.0.2","ipv4:127.3.0.2"]}}"#;
    let (status, _) = post_from(
        ip("127.1.0.20"),
        &alto
            .directory_url()
            .replace("/directory", "/endpointcost/lookup"),
        ECS,
        body,
    )
    .await;
    assert_eq!(status, 200);
    let metrics = server_metrics(&alto).await;
    assert_eq!(metric(&metrics, "alto_relayed_total"), 1, "{metrics}");
    head.stop().await;
    alto.stop().await.unwrap();
}
