//! librqbit clients with the plugin on the embedded loopback topology: two PIDs with a seeder
//! and several clients each; every client completes with identical data and most bytes come
//! from the own PID; the head killed mid-download and the ALTO server killed mid-download
//! leave every download to complete; a member of a head that serves no network map reads it
//! from the ALTO server. Nothing leaves loopback: librqbit's DHT, local service
//! discovery and UPnP are off, and the only tracker is the plugin's proxy.

use alto_model::pidhead::Role;
use alto_plugin::{AltoSession, Config};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use test_support::wait;
use tokio::sync::watch;
use tracker_shim::membership::Membership;

const TTL: u64 = 2;

/// An ALTO server on the loopback topology with short leases.
async fn alto() -> (tempfile::TempDir, alto_server::Running) {
    alto_with("").await
}

/// [`alto`] with `more` lines in `[pid-heads]`.
async fn alto_with(more: &str) -> (tempfile::TempDir, alto_server::Running) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["network-map.json", "routingcost.json", "hopcount.json"] {
        std::fs::copy(testdata::loopback::dir().join(f), dir.path().join(f)).unwrap();
    }
    let config = format!(
        "{}\n[pid-heads]\nlease-ttl-secs = {TTL}\nstandby-window-secs = 30\n{more}",
        testdata::loopback::CONFIG
    );
    std::fs::write(dir.path().join("alto.toml"), config).unwrap();
    let s = alto_server::Running::start(
        alto_server::Source::File(dir.path().join("alto.toml")),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    (dir, s)
}

async fn client(alto: &str, ip: &str, dir: &Path, upload_bps: Option<u32>) -> AltoSession {
    let mut c = Config::new(ip.parse::<IpAddr>().unwrap(), dir.join(ip));
    c.alto = vec![alto.to_owned()];
    c.rejoin = Duration::from_millis(500);
    c.min_interval = 1;
    c.upload_bps = upload_bps;
    AltoSession::start(c).await.unwrap()
}

/// The payload and a torrent whose only original tracker is a closed port.
fn torrent(len: usize) -> (Vec<u8>, Vec<u8>) {
    let data = testdata::torrent::payload(len, 99);
    let t = testdata::torrent::single_file(
        "payload.bin",
        &data,
        1 << 16,
        "http://127.0.0.1:9/announce",
        &[],
    );
    (data, t.metainfo)
}

async fn seeder(
    alto: &str,
    ip: &str,
    dir: &Path,
    data: &[u8],
    meta: &[u8],
    upload_bps: Option<u32>,
) -> AltoSession {
    let s = client(alto, ip, dir, upload_bps).await;
    let folder = dir.join(ip);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("payload.bin"), data).unwrap();
    let t = s.add(meta).await.unwrap();
    t.wait_completed().await.unwrap();
    s
}

/// Waits until a membership among `watched` satisfies `done`: each is a channel, so this
/// wakes when one changes instead of looking.
async fn until_membership(
    what: &str,
    timeout: Duration,
    watched: Vec<watch::Receiver<Membership>>,
    done: fn(&Membership) -> bool,
) {
    let mut waits = tokio::task::JoinSet::new();
    for mut m in watched {
        waits.spawn(async move { m.wait_for(done).await.is_ok() });
    }
    let found = async {
        while let Some(r) = waits.join_next().await {
            if r.unwrap_or(false) {
                return;
            }
        }
        panic!("every membership ended while waiting for {what}");
    };
    tokio::time::timeout(timeout, found)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// The membership channel of `c`'s tracker shim.
fn membership(c: &AltoSession) -> watch::Receiver<Membership> {
    c.shim()
        .expect("a client with a tracker shim")
        .membership
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pids_complete_with_most_bytes_from_their_own_pid() {
    let (_d, alto) = alto().await;
    let url = alto.directory_url();
    let dir = tempfile::tempdir().unwrap();
    let (data, meta) = torrent(4 << 20);
    let s1 = seeder(&url, "127.1.0.10", dir.path(), &data, &meta, None).await;
    let s3 = seeder(&url, "127.3.0.10", dir.path(), &data, &meta, None).await;
    let ips = [
        "127.1.0.21",
        "127.1.0.22",
        "127.1.0.23",
        "127.3.0.21",
        "127.3.0.22",
        "127.3.0.23",
    ];
    let mut clients = Vec::new();
    for ip in ips {
        let c = client(&url, ip, dir.path(), None).await;
        let t = c.add(&meta).await.unwrap();
        clients.push((ip, c, t));
    }
    for (ip, c, t) in &clients {
        tokio::time::timeout(Duration::from_secs(60), t.wait_completed())
            .await
            .unwrap_or_else(|_| panic!("{ip} did not complete: {:?}", c.report(t)))
            .unwrap();
    }
    let (mut own, mut all) = (0u64, 0u64);
    for (ip, c, t) in &clients {
        let got = std::fs::read(dir.path().join(ip).join("payload.bin")).unwrap();
        assert!(got == data, "{ip} got different bytes");
        let r = c.report(t);
        let pid = r.pid.clone().unwrap();
        assert_eq!(
            pid,
            if ip.starts_with("127.1.") {
                "PID1"
            } else {
                "PID3"
            }
        );
        own += r.bytes_by_pid.get(&pid).copied().unwrap_or(0);
        all += r
            .bytes_by_pid
            .iter()
            .filter(|(k, _)| *k != "incoming")
            .map(|(_, v)| v)
            .sum::<u64>();
        assert!(
            c.proxy()
                .stats
                .head_ok
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0,
            "{ip} never heard from its head"
        );
    }
    eprintln!(
        "own-PID bytes: {own} of {all} attributed ({:.0}%)",
        100.0 * own as f64 / all.max(1) as f64
    );
    assert!(all > 0);
    assert!(
        own as f64 > 0.5 * all as f64,
        "only {own} of {all} attributed bytes came from the own PID"
    );
    for (_, c, _) in clients {
        c.shutdown().await;
    }
    s1.shutdown().await;
    s3.shutdown().await;
    alto.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_complete_when_the_head_and_then_the_alto_server_die() {
    let (_d, alto) = alto().await;
    let url = alto.directory_url();
    let dir = tempfile::tempdir().unwrap();
    // A client with no torrent joins first: PID1's head.
    let mut head = client(&url, "127.1.0.2", dir.path(), None).await;
    until_membership(
        "the head",
        Duration::from_secs(10),
        vec![membership(&head)],
        |m| m.role == Some(Role::Head),
    )
    .await;
    // Seeders limited to 1 MiB/s, so that the downloads take seconds.
    let (data, meta) = torrent(6 << 20);
    let s1 = seeder(&url, "127.1.0.10", dir.path(), &data, &meta, Some(1 << 20)).await;
    let s3 = seeder(&url, "127.3.0.10", dir.path(), &data, &meta, Some(1 << 20)).await;
    let mut clients = Vec::new();
    for ip in ["127.1.0.21", "127.1.0.22", "127.3.0.21"] {
        let c = client(&url, ip, dir.path(), None).await;
        let t = c.add(&meta).await.unwrap();
        clients.push((ip, c, t));
    }
    // The head dies mid-download: once every client has its first verified bytes (librqbit
    // gives no progress event, so this is looked at with a deadline).
    wait::until(
        "the downloads to be under way",
        Duration::from_secs(30),
        &[],
        || clients.iter().all(|(_, c, t)| c.report(t).have_bytes > 0),
    )
    .await;
    assert!(
        clients.iter().any(|(_, c, t)| !c.report(t).finished),
        "the downloads were over before the head died"
    );
    head.crash_tracker();
    // A new head for PID1 within two lease periods (and a bit for the next join).
    let start = Instant::now();
    let mut watched: Vec<_> = clients.iter().map(|(_, c, _)| membership(c)).collect();
    watched.push(membership(&s1));
    until_membership(
        "a new head for PID1",
        Duration::from_secs(3 * TTL + 3),
        watched,
        |m| m.role == Some(Role::Head) && m.pid.as_deref() == Some("PID1"),
    )
    .await;
    eprintln!("PID1 had a new head after {:?}", start.elapsed());
    alto.stop().await.unwrap();
    for (ip, c, t) in &clients {
        tokio::time::timeout(Duration::from_secs(60), t.wait_completed())
            .await
            .unwrap_or_else(|_| panic!("{ip} did not complete: {:?}", c.report(t)))
            .unwrap();
        let got = std::fs::read(dir.path().join(ip).join("payload.bin")).unwrap();
        assert!(got == data, "{ip} got different bytes");
    }
    for (_, c, _) in clients {
        c.shutdown().await;
    }
    s1.shutdown().await;
    s3.shutdown().await;
    head.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_head_serves_no_map_reads_it_from_the_alto_server() {
    use alto_examples::lab::junk::{Junk, JunkHead};
    let (_d, alto) = alto().await;
    let url = alto.directory_url();
    let dir = tempfile::tempdir().unwrap();
    // PID3's head joins first and serves announces only: its `/directory` is a 404.
    let _junk = JunkHead::start(&url, "127.3.0.2".parse().unwrap(), Junk::NoPeers)
        .await
        .unwrap();
    // The torrent's own tracker, a plain one: the source of peers besides the head.
    let plain = tracker_shim::RunningTracker::start(
        tracker_shim::Tracker::new(Default::default()),
        "127.0.0.1:0".parse().unwrap(),
        None,
        tracker_shim::Mode::Plain,
    )
    .await
    .unwrap();
    let data = testdata::torrent::payload(1 << 20, 98);
    let meta =
        testdata::torrent::single_file("payload.bin", &data, 1 << 16, &plain.announce_url(), &[])
            .metainfo;
    let s1 = seeder(&url, "127.1.0.10", dir.path(), &data, &meta, None).await;
    let c = client(&url, "127.3.0.21", dir.path(), None).await;
    until_membership(
        "the hostile head as the member's head",
        Duration::from_secs(10),
        vec![membership(&c)],
        |m| {
            m.head
                .as_ref()
                .is_some_and(|h| h.tracker.contains("127.3.0.2:"))
        },
    )
    .await;
    let t = c.add(&meta).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), t.wait_completed())
        .await
        .unwrap_or_else(|_| panic!("did not complete: {:?}", c.report(&t)))
        .unwrap();
    let got = std::fs::read(dir.path().join("127.3.0.21").join("payload.bin")).unwrap();
    assert!(got == data, "different bytes");
    // The client's PID and its bytes' PIDs come from the network map, which only the ALTO
    // server served.
    let r = c.report(&t);
    assert_eq!(r.pid.as_deref(), Some("PID3"), "{r:?}");
    assert!(r.bytes_by_pid.get("PID1").is_some_and(|b| *b > 0), "{r:?}");
    c.shutdown().await;
    s1.shutdown().await;
    alto.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_server_on_etcd_has_joined_when_its_session_has_started() {
    if !test_support::etcd::available() {
        test_support::skip("etcd is not installed (Debian: etcd-server etcd-client)");
        return;
    }
    // On etcd a join is a transaction, slower than the network map the session also waits
    // for (the server reads that from memory): the session must not start, and librqbit
    // announce, before the join is answered. etcd is held up for 400 ms while the client
    // starts, well within the store's timeout and the session's wait.
    let etcd = test_support::etcd::Cluster::start(1).unwrap();
    let (dir, alto) = alto_with(&format!(
        "{}etcd-timeout-ms = 2000\n",
        alto_examples::lab::replicas::etcd_config(&etcd, "swarm/")
    ))
    .await;
    let url = alto.directory_url();
    for ip in ["127.1.0.10", "127.2.0.10"] {
        etcd.pause(0);
        let start = tokio::spawn(client_of(url.clone(), ip, dir.path().to_owned()));
        tokio::time::sleep(Duration::from_millis(400)).await;
        etcd.resume(0);
        let c = start.await.unwrap();
        let m = c.membership();
        assert!(
            m.pid.is_some(),
            "{ip} started before its join was answered: {m:?}"
        );
        assert!(m.head.is_some(), "{ip} knows no head: {m:?}");
        c.shutdown().await;
    }
    alto.stop().await.unwrap();
}

/// [`client`] as a task of its own.
async fn client_of(alto: String, ip: &'static str, dir: std::path::PathBuf) -> AltoSession {
    client(&alto, ip, &dir, None).await
}
