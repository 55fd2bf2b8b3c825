//! Real BitTorrent clients from Debian seed and download through the tracker shim running as
//! PID Head on the embedded loopback topology: aria2 and libtorrent (python3-libtorrent) on
//! 127.x addresses in different PIDs. Every client has DHT, local discovery, PEX, UPnP and
//! NAT-PMP off and talks only to loopback. The test checks that the data arrives intact and
//! that each peer list the shim handed out put same-PID peers first.
//!
//! transmission ignores tracker peers in 127.0.0.0/8 and cannot turn every discovery
//! mechanism off, so its test runs the clients in network namespaces the test creates,
//! joined by a bridge and with no route out; they are deleted at the end. The namespaces and
//! the client launchers are `test_support`'s, the same the `--netns` lab uses.

mod common;

use alto_locality::rank::Policy;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use test_support::clients::{free_port, Kind, Launch, Reaped};
use test_support::netns::Namespaces;
use test_support::wait;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// Fails the test when `kind` is not installed (scripts/test installs every client).
fn need(kind: Kind) {
    if let Err(why) = kind.require() {
        panic!("{why}");
    }
}

/// Starts a client as `launch` says; it is killed when the test ends, passing or not.
fn start(kind: Kind, launch: Launch<'_>) -> Reaped {
    kind.spawn(&launch)
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.program()))
}

/// The shim as head of `pid` on `listen`, ranking without a random share and keeping a
/// journal of its answers, once it has its maps.
async fn journaling_head(alto: &alto_server::Running, pid: &str, listen: &str) -> RunningTracker {
    let config = TrackerConfig {
        interval: 5,
        min_interval: 1,
        policy: Policy { random_share: 0.0 },
        journal: 1000,
        ..TrackerConfig::default()
    };
    let follow = Mode::Head {
        alto: vec![alto.directory_url()],
        pid: pid.into(),
        refresh: Duration::from_millis(200),
    };
    let t = RunningTracker::start(Tracker::new(config), listen.parse().unwrap(), None, follow)
        .await
        .unwrap();
    wait::until("the head's maps", Duration::from_secs(10), &[], || {
        t.tracker.maps().is_some()
    })
    .await;
    t
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `ip` with a port free on it.
fn listen_on(s: &str) -> SocketAddr {
    SocketAddr::new(ip(s), free_port(ip(s)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aria2_and_libtorrent_share_a_file_through_the_head() {
    need(Kind::Aria2);
    need(Kind::Libtorrent);

    let alto = alto_server::Running::start(
        alto_server::Source::Embedded,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let t = journaling_head(&alto, "PID1", "127.1.0.1:0").await;

    let dir = tempfile::tempdir().unwrap();
    let data = testdata::torrent::payload(3 << 20, 42);
    let torrent =
        testdata::torrent::single_file("payload.bin", &data, 1 << 16, &t.announce_url(), &[]);
    let tpath = dir.path().join("payload.torrent");
    std::fs::write(&tpath, &torrent.metainfo).unwrap();
    let folder = |name: &str| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    for seeder in ["seed1", "seed3"] {
        std::fs::write(folder(seeder).join("payload.bin"), &data).unwrap();
    }

    // Seeders in PID1 and PID3; they announce first.
    let s1 = listen_on("127.1.0.10");
    let s3 = listen_on("127.3.0.10");
    let (seed1_dir, seed1_log) = (folder("seed1"), log("seed1"));
    let _seed1 = start(
        Kind::Libtorrent,
        Launch {
            seed_on: true,
            ..Launch::new(s1, &tpath, &seed1_dir, &seed1_log)
        },
    );
    let (seed3_dir, seed3_log) = (folder("seed3"), log("seed3"));
    let _seed3 = start(
        Kind::Libtorrent,
        Launch {
            seed_on: true,
            ..Launch::new(s3, &tpath, &seed3_dir, &seed3_log)
        },
    );
    let logs = [log("seed1"), log("seed3"), log("aria2"), log("lt3")];
    let h = tracker_shim::protocol::InfoHash(torrent.info_hash);
    wait::until(
        "both seeders to announce",
        Duration::from_secs(30),
        &logs,
        || t.tracker.counts(&h).complete == 2,
    )
    .await;

    // Downloaders: aria2 in PID1, libtorrent in PID3.
    let a1 = listen_on("127.1.0.20");
    let (aria_dir, aria_log) = (folder("aria2"), log("aria2"));
    let mut aria = start(
        Kind::Aria2,
        Launch {
            tracker_interval_s: 2,
            ..Launch::new(a1, &tpath, &aria_dir, &aria_log)
        },
    );
    let d3 = listen_on("127.3.0.20");
    let (lt3_dir, lt3_log) = (folder("lt3"), log("lt3"));
    let mut lt3 = start(
        Kind::Libtorrent,
        Launch::new(d3, &tpath, &lt3_dir, &lt3_log),
    );
    let mut finished = [false, false];
    wait::until("both downloads", Duration::from_secs(120), &logs, || {
        for (k, client) in [&mut aria, &mut lt3].into_iter().enumerate() {
            if let Some(status) = client.child.try_wait().unwrap() {
                assert!(status.success(), "{:?} failed: {status}", client.kind);
                finished[k] = true;
            }
        }
        finished == [true, true]
    })
    .await;
    for name in ["aria2", "lt3"] {
        let got = std::fs::read(dir.path().join(name).join("payload.bin")).unwrap();
        assert!(got == data, "{name} got different bytes");
    }

    // What the shim told each downloader: its own PID's seeder first (aria2's PID, the
    // head's, has a seeder: it is well served and gets that seeder only, docs/locality.md).
    let journal = t.tracker.journal();
    let first_list = |who: IpAddr| {
        journal
            .iter()
            .find(|e| e.announcer.ip() == who && !e.peers.is_empty())
            .unwrap_or_else(|| panic!("no answer with peers for {who}: {journal:#?}"))
            .peers
            .clone()
    };
    let to_aria = first_list(a1.ip());
    assert_eq!(to_aria[0], s1, "aria2 in PID1 got {to_aria:?}");
    let to_lt3 = first_list(d3.ip());
    assert_eq!(to_lt3[0], s3, "libtorrent in PID3 got {to_lt3:?}");
    for e in journal.iter().filter(|e| e.peers.len() >= 2) {
        let own = |a: &SocketAddr| {
            a.ip().to_string().split('.').nth(1) == e.announcer.ip().to_string().split('.').nth(1)
        };
        let first_foreign = e
            .peers
            .iter()
            .position(|p| !own(p))
            .unwrap_or(e.peers.len());
        assert!(
            e.peers[first_foreign..].iter().all(|p| !own(p)),
            "same-PID peers not first for {}: {:?}",
            e.announcer,
            e.peers
        );
    }
    t.stop().await;
    alto.stop().await.unwrap();
}

const LAN_MAP: &str = r#"{"network-map": {
  "lanA": {"ipv4": ["10.77.1.0/24"]},
  "lanB": {"ipv4": ["10.77.2.0/24"]},
  "lanC": {"ipv4": ["10.77.3.0/24"]},
  "default": {"ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]}
}}"#;
const LAN_COSTS: &str = r#"{"cost-map": {
  "lanA": {"lanA": 1, "lanB": 5, "lanC": 40, "default": 100},
  "lanB": {"lanA": 5, "lanB": 1, "lanC": 40, "default": 100},
  "lanC": {"lanA": 40, "lanB": 40, "lanC": 1, "default": 100}
}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transmission_downloads_through_the_head_inside_namespaces() {
    if let Err(why) = test_support::netns::available() {
        test_support::skip(&format!(
            "transmission needs network namespaces and this machine does not allow them ({why})"
        ));
        return;
    }
    need(Kind::Transmission);
    need(Kind::Libtorrent);

    let (_maps, alto) = common::alto_of(LAN_MAP, LAN_COSTS, "127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();

    // Seeders in lanA and lanC, transmission downloading in lanA.
    let groups = ["10.77.1.2", "10.77.3.2", "10.77.1.3"].map(|a| vec![ip(a)]);
    let lab = Namespaces::create("altr", &groups, None).unwrap();
    let t = journaling_head(&alto, "lanA", "10.77.0.1:0").await;

    let data = testdata::torrent::payload(2 << 20, 7);
    let torrent =
        testdata::torrent::single_file("payload.bin", &data, 1 << 16, &t.announce_url(), &[]);
    let tpath = dir.path().join("payload.torrent");
    std::fs::write(&tpath, &torrent.metainfo).unwrap();
    let folder = |name: &str| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let mut seeders = Vec::new();
    for (k, addr) in [(0, "10.77.1.2:51001"), (1, "10.77.3.2:51003")] {
        let save = folder(&format!("seed{k}"));
        std::fs::write(save.join("payload.bin"), &data).unwrap();
        let seed_log = log(&format!("seed{k}"));
        seeders.push(start(
            Kind::Libtorrent,
            Launch {
                netns: Some(&lab.names[k]),
                seed_on: true,
                ..Launch::new(addr.parse().unwrap(), &tpath, &save, &seed_log)
            },
        ));
    }
    let h = tracker_shim::protocol::InfoHash(torrent.info_hash);
    let logs = [log("seed0"), log("seed1"), log("transmission")];
    wait::until(
        "both seeders to announce",
        Duration::from_secs(30),
        &logs,
        || t.tracker.counts(&h).complete == 2,
    )
    .await;

    let (out_dir, tr_log) = (folder("transmission"), log("transmission"));
    let transmission = start(
        Kind::Transmission,
        Launch {
            netns: Some(&lab.names[2]),
            seed_on: true,
            ..Launch::new(
                "10.77.1.3:51005".parse().unwrap(),
                &tpath,
                &out_dir,
                &tr_log,
            )
        },
    );
    let target = out_dir.join("payload.bin");
    wait::until(
        "transmission's download",
        Duration::from_secs(120),
        &logs,
        || std::fs::read(&target).is_ok_and(|b| b == data),
    )
    .await;

    let journal = t.tracker.journal();
    let to_tr = journal
        .iter()
        .find(|e| e.announcer.ip() == ip("10.77.1.3") && e.peers.len() >= 2)
        .unwrap_or_else(|| panic!("no answer with two peers for transmission: {journal:#?}"));
    assert_eq!(
        to_tr.peers[0].ip(),
        ip("10.77.1.2"),
        "transmission in lanA got {:?}",
        to_tr.peers
    );
    drop(transmission);
    drop(seeders);
    t.stop().await;
    alto.stop().await.unwrap();
    drop(lab);
}
