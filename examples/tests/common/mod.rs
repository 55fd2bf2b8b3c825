//! What several of these tests share. Each test file compiles this module and uses part of
//! it.
#![allow(dead_code)]

use std::time::Duration;
use tracker_shim::membership::JoinSettings;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// Moves tokio's clock, which the lease clocks of the server and the trackers and the heads'
/// rate windows follow, by `d` at once; real time resumes before anything else runs, because
/// the requests use real sockets and paused time would fire their timeouts whenever the
/// runtime is idle. Needs the current-thread runtime.
pub async fn advance(d: Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

/// The lease TTL of [`alto`]'s server, seconds.
pub const TTL: u64 = 2;

/// An ALTO server on the loopback topology with short leases; `extra` goes into the config;
/// `forward` false makes a server that answers everything itself.
pub async fn alto(extra: &str, forward: bool) -> (tempfile::TempDir, alto_server::Running) {
    alto_ttl(extra, forward, TTL).await
}

/// [`alto`] with leases of `ttl` seconds.
pub async fn alto_ttl(
    extra: &str,
    forward: bool,
    ttl: u64,
) -> (tempfile::TempDir, alto_server::Running) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["network-map.json", "routingcost.json", "hopcount.json"] {
        std::fs::copy(testdata::loopback::dir().join(f), dir.path().join(f)).unwrap();
    }
    let config = format!("{extra}\n{}\n[pid-heads]\nlease-ttl-secs = {ttl}\nstandby-window-secs = 10\nforward-timeout-ms = 500\nforward = {forward}\n", testdata::loopback::CONFIG);
    std::fs::write(dir.path().join("alto.toml"), config).unwrap();
    let server = alto_server::Running::start(
        alto_server::Source::File(dir.path().join("alto.toml")),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    (dir, server)
}

/// A tracker on `ip` that joins `alto` and serves as head when elected.
pub async fn member(alto: &alto_server::Running, ip: &str) -> RunningTracker {
    let timing = (Duration::from_millis(300), Duration::from_millis(200));
    joining(alto, ip.parse().unwrap(), timing, 0).await
}

/// A tracker on `ip` that joins `alto`, re-joining and refreshing at `(rejoin, refresh)`,
/// with a journal of its last `journal` announces.
async fn joining(
    alto: &alto_server::Running,
    ip: std::net::IpAddr,
    (rejoin, refresh): (Duration, Duration),
    journal: usize,
) -> RunningTracker {
    let settings = JoinSettings {
        alto: vec![alto.directory_url()],
        endpoint: ip,
        capabilities: Default::default(),
        rejoin,
        refresh,
    };
    let config = TrackerConfig {
        interval: 5,
        min_interval: 1,
        journal,
        ..TrackerConfig::default()
    };
    RunningTracker::start(
        Tracker::new(config),
        std::net::SocketAddr::new(ip, 0),
        None,
        Mode::Join(settings),
    )
    .await
    .unwrap()
}

/// The network map of the namespace tests: two PIDs, `lanA` (10.77.1.0/24) and `lanB`
/// (10.77.2.0/24), each five times cheaper to itself than to the other.
pub const LAN_MAP: &str = r#"{"network-map": {
  "lanA": {"ipv4": ["10.77.1.0/24"]},
  "lanB": {"ipv4": ["10.77.2.0/24"]},
  "default": {"ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]}
}}"#;
/// Its routing costs.
pub const LAN_COSTS: &str = r#"{"cost-map": {
  "lanA": {"lanA": 1, "lanB": 5, "default": 100},
  "lanB": {"lanA": 5, "lanB": 1, "default": 100}
}}"#;

/// An ALTO server of [`LAN_MAP`] on the namespaces' bridge (`test_support::netns::BRIDGE`),
/// which every namespace reaches; the folder of its files goes with it.
pub async fn lan_alto() -> (tempfile::TempDir, alto_server::Running) {
    let listen = std::net::SocketAddr::new(test_support::netns::BRIDGE, 0);
    alto_of(LAN_MAP, LAN_COSTS, listen).await
}

/// An ALTO server on `listen` of the network map `map` and the routing costs `costs`.
pub async fn alto_of(
    map: &str,
    costs: &str,
    listen: std::net::SocketAddr,
) -> (tempfile::TempDir, alto_server::Running) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("network-map.json"), map).unwrap();
    std::fs::write(dir.path().join("routingcost.json"), costs).unwrap();
    std::fs::write(
        dir.path().join("alto.toml"),
        "[network-map]\nresource-id = \"lan\"\nfile = \"network-map.json\"\n[[cost-map]]\nmetric = \"routingcost\"\nfile = \"routingcost.json\"\n",
    )
    .unwrap();
    let alto = alto_server::Running::start(
        alto_server::Source::File(dir.path().join("alto.toml")),
        listen,
    )
    .await
    .unwrap();
    (dir, alto)
}

/// A tracker on `ip` (an address of the host on the bridge) that joins `alto` and keeps a
/// journal of the announces it answers.
pub async fn lan_head(alto: &alto_server::Running, ip: std::net::IpAddr) -> RunningTracker {
    let timing = (Duration::from_secs(1), Duration::from_millis(500));
    joining(alto, ip, timing, 1000).await
}
