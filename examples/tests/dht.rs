//! The plugin's DHT path end to end (`rqbit-alto --dht`, BEP 5), in network namespaces the
//! test makes (no route out; deleted at the end): a private DHT of nodes the test starts
//! itself (a first node on the bridge, and each client's own node bootstrapping from it), a
//! seeder in each PID that knows no tracker and announces only into the DHT, and a client
//! of `lanB` whose torrent's one tracker is a closed port. That client learns its peers from
//! the DHT alone, its PID's head (a tracker in `lanB` elected through a real `alto-server`)
//! ranks them, and it downloads from its own PID's seeder.

mod common;

use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use test_support::netns::{addr, Namespaces, BRIDGE};
use test_support::wait;
use tokio::io::AsyncBufReadExt;

/// Runs `rqbit-alto download` in namespace `k` at `ip` with `args`; its `--json` lines.
fn download(
    lab: &Namespaces,
    k: usize,
    ip: std::net::IpAddr,
    torrent: &std::path::Path,
    out: &std::path::Path,
    args: &[String],
) -> (
    tokio::process::Child,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) {
    let bin = alto_examples::netns::rqbit_alto().unwrap();
    std::fs::create_dir_all(out).unwrap();
    let mut cmd = tokio::process::Command::from(lab.command(k, bin));
    cmd.arg("download").arg(torrent).arg("--output").arg(out);
    cmd.args(["--json", "--listen", &format!("{ip}:0")])
        .args(args);
    cmd.stdout(Stdio::piped())
        .stderr(std::fs::File::create(out.join("stderr.log")).unwrap())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// The first `--json` line of type `kind` (`completed`, `summary`) within `limit`.
async fn line_of(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    kind: &str,
    limit: Duration,
    log: &std::path::Path,
) -> Value {
    let found = tokio::time::timeout(limit, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["type"] == kind {
                    return Some(v);
                }
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(v)) => v,
        _ => panic!(
            "no `{kind}` line within {limit:?}; stderr: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_learns_its_peers_from_the_dht_alone_gets_them_ranked_by_its_head() {
    if let Err(why) = alto_examples::netns::available() {
        test_support::skip(&format!("namespaces are not available here ({why})"));
        return;
    }
    if let Err(e) = alto_examples::netns::rqbit_alto() {
        test_support::skip(&e.to_string());
        return;
    }
    let (seeder_a, seeder_b, client) = (addr(1, 250), addr(2, 250), addr(2, 10));
    // The link between the PIDs is slow (4 Mbit/s), as between ISPs' networks.
    let lab = Namespaces::create(
        "aldh",
        &[vec![seeder_a], vec![seeder_b, client]],
        Some(4_000),
    )
    .unwrap();
    let (_maps, alto) = common::lan_alto().await;
    let head_ip = addr(2, 200);
    lab.add_host_address(head_ip).unwrap();
    let head = common::lan_head(&alto, head_ip).await;
    let m = head.membership.clone();
    wait::until("lanB's head elected", Duration::from_secs(15), &[], || {
        m.borrow().role == Some(alto_model::pidhead::Role::Head)
    })
    .await;
    // The DHT's first node, the test's own, on the bridge.
    let first = alto_plugin::rqbit::DhtNode::start(SocketAddr::new(BRIDGE, 0), &[])
        .await
        .unwrap();
    let dht = first.addr().to_string();

    // A public torrent (BEP 27 keeps private ones off the DHT) whose one tracker is a port
    // of the bridge where nothing listens.
    let data = testdata::torrent::payload(8 << 20, 61);
    let dir = tempfile::tempdir().unwrap();
    let t = testdata::torrent::single_file(
        "payload.bin",
        &data,
        1 << 16,
        &format!("http://{BRIDGE}:9/announce"),
        &[],
    );
    let (torrent, info_hash) = (dir.path().join("payload.torrent"), t.info_hash);
    std::fs::write(&torrent, &t.metainfo).unwrap();

    // Two seeders, no ALTO server, no tracker: the DHT is all they announce to.
    let mut seeders = Vec::new();
    for (k, ip) in [(1, seeder_a), (2, seeder_b)] {
        let out = dir.path().join(ip.to_string());
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("payload.bin"), &data).unwrap();
        let args = ["--dht", &dht, "--seed-after", "600"].map(String::from);
        let (child, mut lines) = download(&lab, k, ip, &torrent, &out, &args);
        line_of(
            &mut lines,
            "completed",
            Duration::from_secs(30),
            &out.join("stderr.log"),
        )
        .await;
        seeders.push((child, lines));
    }
    // Both announced into the DHT (looked up without announcing the test's node).
    let both = |found: &[SocketAddr]| {
        [seeder_a, seeder_b]
            .iter()
            .all(|s| found.iter().any(|p| p.ip() == *s))
    };
    let mut found = Vec::new();
    for _ in 0..60 {
        found = first.look_up(info_hash, Duration::from_millis(500)).await;
        if both(&found) {
            break;
        }
    }
    assert!(both(&found), "the seeders are not in the DHT: {found:?}");

    let out = dir.path().join(client.to_string());
    let args = ["--dht", &dht, "--alto", &alto.directory_url()].map(String::from);
    let (mut child, mut lines) = download(&lab, 2, client, &torrent, &out, &args);
    let log = out.join("stderr.log");
    let summary = line_of(&mut lines, "summary", Duration::from_secs(120), &log).await;
    let status = child.wait().await.unwrap();
    assert!(status.success(), "rqbit-alto exited with {status}");
    assert!(
        std::fs::read(out.join("payload.bin")).unwrap() == data,
        "different bytes"
    );
    // Its peers came from the DHT and were ranked by the head's endpoint cost service; most
    // bytes came from its own PID's seeder (the cheap PID, and the fast link: the slow link
    // to lanA would favour it without ranking too, so the ranking is what `head_rankings`
    // counts).
    assert_eq!(summary["pid"], "lanB", "{summary}");
    assert!(summary["dht_peers"].as_u64() > Some(0), "{summary}");
    assert!(summary["head_rankings"].as_u64() > Some(0), "{summary}");
    eprintln!("{summary}");
    let from = |pid: &str| summary["bytes_by_pid"][pid].as_u64().unwrap_or(0);
    assert!(from("lanB") > from("lanA"), "{summary}");
    // The head saw it announce: the head is the client's tracker, not only its ranker.
    assert!(
        head.tracker
            .journal()
            .iter()
            .any(|e| e.announcer.ip() == client && e.info_hash.0 == info_hash),
        "lanB's head saw no announce of {client}"
    );
    drop(seeders);
    drop(lab);
}
