//! All six Debian BitTorrent clients through the announce front: aria2, libtorrent
//! (python3-libtorrent), qBittorrent, transmission, rtorrent and ctorrent, unmodified, each
//! in a network namespace of its own that the test makes (no route out; deleted at the end),
//! with DHT, local peer discovery, PEX, UPnP and NAT-PMP off. Every torrent announces to the
//! front's one URL; the front redirects each client to the head of its PID, elected through
//! a real `alto-server`. Three torrents, seeder and downloader of different kinds: aria2 ->
//! qBittorrent, libtorrent -> rtorrent, transmission -> ctorrent. Each download completes
//! with identical data, and the head of each client's PID saw that client's announces.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use test_support::clients::{Kind, Launch, Reaped};
use test_support::netns::{addr, Namespaces, BRIDGE};
use test_support::wait;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// One client of the test: what it runs, where, and which torrent it seeds or fetches.
struct Peer {
    kind: Kind,
    ip: IpAddr,
    torrent: usize,
    seeds: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_six_debian_clients_download_through_the_front() {
    if let Err(why) = test_support::netns::available() {
        test_support::skip(&format!(
            "transmission and qBittorrent need network namespaces ({why})"
        ));
        return;
    }
    let kinds = [
        Kind::Aria2,
        Kind::Qbittorrent,
        Kind::Libtorrent,
        Kind::Rtorrent,
        Kind::Transmission,
        Kind::Ctorrent,
    ];
    for k in kinds {
        if let Err(why) = k.require() {
            panic!("{why}");
        }
    }
    // Pairs in both PIDs: aria2 -> qBittorrent and transmission -> ctorrent in lanA,
    // libtorrent -> rtorrent in lanB.
    let peers = [
        Peer {
            kind: Kind::Aria2,
            ip: addr(1, 10),
            torrent: 0,
            seeds: true,
        },
        Peer {
            kind: Kind::Qbittorrent,
            ip: addr(1, 11),
            torrent: 0,
            seeds: false,
        },
        Peer {
            kind: Kind::Libtorrent,
            ip: addr(2, 10),
            torrent: 1,
            seeds: true,
        },
        Peer {
            kind: Kind::Rtorrent,
            ip: addr(2, 11),
            torrent: 1,
            seeds: false,
        },
        Peer {
            kind: Kind::Transmission,
            ip: addr(1, 12),
            torrent: 2,
            seeds: true,
        },
        Peer {
            kind: Kind::Ctorrent,
            ip: addr(1, 13),
            torrent: 2,
            seeds: false,
        },
    ];

    let groups: Vec<Vec<IpAddr>> = peers.iter().map(|p| vec![p.ip]).collect();
    let lab = Namespaces::create("alfr", &groups, None).unwrap();
    // Servers listen on the bridge, which the namespaces reach.
    let (_maps, alto) = common::lan_alto().await;
    let dir = tempfile::tempdir().unwrap();
    // The heads stand in their PIDs: addresses of this namespace on the bridge.
    let (head_a, head_b) = (addr(1, 250), addr(2, 250));
    lab.add_host_address(head_a).unwrap();
    lab.add_host_address(head_b).unwrap();
    let heads = [
        common::lan_head(&alto, head_a).await,
        common::lan_head(&alto, head_b).await,
    ];
    let front = RunningTracker::start(
        Tracker::new(TrackerConfig {
            interval: 5,
            min_interval: 1,
            ..TrackerConfig::default()
        }),
        SocketAddr::new(BRIDGE, 0),
        None,
        Mode::Front {
            alto: vec![alto.directory_url()],
            refresh: Duration::from_millis(200),
            fallback: None,
        },
    )
    .await
    .unwrap();
    let view = front.front.clone().unwrap();
    wait::until(
        "both heads, seen by the front",
        Duration::from_secs(15),
        &[],
        || view.view().live_heads() == 2,
    )
    .await;

    // Three torrents, each announcing to the front only.
    let payloads: Vec<Vec<u8>> = (0..3)
        .map(|k| testdata::torrent::payload(2 << 20, 70 + k))
        .collect();
    let torrents: Vec<_> = payloads
        .iter()
        .enumerate()
        .map(|(k, data)| {
            let t = testdata::torrent::single_file(
                &format!("payload{k}.bin"),
                data,
                1 << 16,
                &front.announce_url(),
                &[],
            );
            let path = dir.path().join(format!("payload{k}.torrent"));
            std::fs::write(&path, &t.metainfo).unwrap();
            (path, tracker_shim::protocol::InfoHash(t.info_hash))
        })
        .collect();
    let folder = |p: &Peer| dir.path().join(format!("{:?}", p.kind).to_lowercase());
    let log = |p: &Peer| dir.path().join(format!("{:?}.log", p.kind).to_lowercase());
    let logs: Vec<_> = peers.iter().map(log).collect();
    // lanB is 10.77.2.0/24, lanA 10.77.1.0/24.
    let head_of = |p: &Peer| match p.ip {
        IpAddr::V4(v) if v.octets()[2] == 2 => &heads[1],
        _ => &heads[0],
    };

    let launch = |k: usize, p: &Peer| -> Reaped {
        let out = folder(p);
        std::fs::create_dir_all(&out).unwrap();
        if p.seeds {
            std::fs::write(
                out.join(format!("payload{}.bin", p.torrent)),
                &payloads[p.torrent],
            )
            .unwrap();
        }
        let (log, listen) = (log(p), SocketAddr::new(p.ip, 6881));
        let l = Launch {
            netns: Some(&lab.names[k]),
            seed_on: true,
            tracker_interval_s: 2,
            ..Launch::new(listen, &torrents[p.torrent].0, &out, &log)
        };
        p.kind
            .spawn(&l)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", p.kind.program()))
    };
    let mut running = Vec::new();
    for (k, p) in peers.iter().enumerate().filter(|(_, p)| p.seeds) {
        running.push(launch(k, p));
    }
    wait::until(
        "the seeders to announce to their heads",
        Duration::from_secs(60),
        &logs,
        || {
            peers
                .iter()
                .filter(|p| p.seeds)
                .all(|p| head_of(p).tracker.counts(&torrents[p.torrent].1).complete == 1)
        },
    )
    .await;
    for (k, p) in peers.iter().enumerate().filter(|(_, p)| !p.seeds) {
        running.push(launch(k, p));
    }
    wait::until("every download", Duration::from_secs(180), &logs, || {
        peers.iter().filter(|p| !p.seeds).all(|p| {
            std::fs::read(folder(p).join(format!("payload{}.bin", p.torrent)))
                .is_ok_and(|b| b == payloads[p.torrent])
        })
    })
    .await;

    // Every client's announces reached the head of its PID, through the front.
    for p in &peers {
        let journal = head_of(p).tracker.journal();
        assert!(
            journal
                .iter()
                .any(|e| e.announcer.ip() == p.ip && e.info_hash == torrents[p.torrent].1),
            "the head of {}'s PID never saw {:?} announce",
            p.ip,
            p.kind
        );
    }
    let metrics = test_support::http::get_from(
        BRIDGE,
        &front.announce_url().replace("announce", "metrics"),
        &[],
    )
    .await
    .1;
    let metrics = String::from_utf8_lossy(&metrics).into_owned();
    let redirected = metrics
        .lines()
        .find_map(|l| l.strip_prefix("front_redirects_to_head_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        redirected >= 6,
        "the front redirected {redirected} requests:\n{metrics}"
    );
    drop(running);
    front.stop().await;
    for h in heads {
        h.stop().await;
    }
    alto.stop().await.unwrap();
    drop(lab);
}
