//! The lab in network namespaces (`swarm-lab --netns`, root): every PID is a namespace of its
//! own, joined to the others by a veth to one bridge, and the inter-PID links are shaped with
//! `tbf` (this kernel has no `netem`), so that locality shows in completion times too. The
//! ALTO server, the plain tracker and the announce front listen on the bridge in the host
//! namespace; each client is an `rqbit-alto` process inside its PID's namespace, and the
//! third-party clients (aria2, transmission, qBittorrent, rtorrent, ctorrent, libtorrent)
//! announce through the front. The namespaces have no route out, and
//! every one of them is deleted on exit, after a failure or Ctrl-C too (the harness is
//! `test_support::netns`, shared with the interop tests).
//!
//! An `rqbit-alto` client tells the lab how it is doing on its standard output, one
//! [`ProgressLine`] a second (`--json`); the lab follows that stream (and keeps it in
//! `stdout.jsonl`), so completion is an event it awaits. Third-party clients say nothing
//! the lab can read: their file is looked at.

use crate::lab::{LabConfig, LabReport, RunFigures, Services};
use crate::third_party::{self, Kind};
use alto_model::NetworkMap;
use alto_plugin::PeerTraffic;
use serde::Deserialize;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

pub use test_support::netns::{addr, Namespaces};

/// The seeder's host part in PID 1.
const SEEDER: usize = 250;
/// Time the seeder has to check its data and say so.
const SEEDER_READY: Duration = Duration::from_secs(30);
/// Most time the announce front has to see every PID's head.
const FRONT_READY: Duration = Duration::from_secs(10);
/// How often a third-party client's file is looked at.
const LOOK_EVERY: Duration = Duration::from_millis(300);
/// Time each client has, at the end, for one more progress line (a second apart).
const LAST_LINE: Duration = Duration::from_secs(3);

/// Whether this machine lets the lab make namespaces (root, a working `ip netns`, `tc`).
pub fn available() -> Result<(), String> {
    test_support::netns::available()?;
    test_support::netns::shaping_available()
}

/// One line of `rqbit-alto --json` (the plugin's report), the fields the lab reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ProgressLine {
    /// The download is complete.
    #[serde(default)]
    pub finished: bool,
    /// Seconds since the torrent was added.
    #[serde(default)]
    pub elapsed_s: Option<f64>,
    /// Per peer the client connected to: what it received and sent.
    #[serde(default)]
    pub peers_out: Vec<PeerTraffic>,
    /// The same per peer that connected to the client (its address as seen there).
    #[serde(default)]
    pub peers_in: Vec<PeerTraffic>,
    /// Trials of reaching out by the link rule it began.
    #[serde(default)]
    pub outreach_trials: u64,
    /// Peers of other PIDs it left after trials that did not pay.
    #[serde(default)]
    pub outreach_left_peers: u64,
}

/// What the lab knows of an `rqbit-alto` client from its output so far.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Lines read.
    pub lines: usize,
    /// Seconds it took, from the first line that said it finished (NaN: that line had no
    /// time).
    pub finished_after: Option<f64>,
    /// The newest line: its bytes are the client's totals.
    pub last: Option<ProgressLine>,
}

impl Progress {
    fn add(&mut self, line: ProgressLine) {
        self.lines += 1;
        if line.finished && self.finished_after.is_none() {
            self.finished_after = Some(line.elapsed_s.unwrap_or(f64::NAN));
        }
        self.last = Some(line);
    }
}

/// Follows a client's standard output: every line is appended to `log`, and those that
/// parse update the [`Progress`] returned. The sender goes when the output ends (the client
/// exited), which closes the channel.
fn follow(
    stdout: tokio::process::ChildStdout,
    log: &Path,
) -> std::io::Result<watch::Receiver<Progress>> {
    let mut file = std::fs::File::create(log)?;
    let (tx, rx) = watch::channel(Progress::default());
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = writeln!(file, "{line}");
            if let Ok(p) = serde_json::from_str::<ProgressLine>(&line) {
                tx.send_modify(|s| s.add(p));
            }
        }
    });
    Ok(rx)
}

/// The `rqbit-alto` binary next to this one (built with the workspace).
pub fn rqbit_alto() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join("rqbit-alto");
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "rqbit-alto is not built next to {}: run `cargo build --release -p alto-plugin` first",
        exe.display()
    )
}

/// The network map of the namespaces: PID k is 10.77.k.0/24 (costs as on loopback).
fn network_map(pids: usize) -> String {
    let mut m = String::from(
        "{\"network-map\":{\"default\":{\"ipv4\":[\"0.0.0.0/0\"],\"ipv6\":[\"::/0\"]}",
    );
    for k in 1..=4 {
        let prefix = if k <= pids {
            format!("10.77.{k}.0/24")
        } else {
            format!("10.78.{k}.0/24")
        };
        m.push_str(&format!(",\"PID{k}\":{{\"ipv4\":[\"{prefix}\"]}}"));
    }
    m.push_str("}}");
    m
}

/// Runs the lab in namespaces, links shaped to `rate_kbit`.
pub async fn run(c: &LabConfig, rate_kbit: u64) -> anyhow::Result<LabReport> {
    available().map_err(anyhow::Error::msg)?;
    let bin = rqbit_alto()?;
    let tmp = tempfile::tempdir()?;
    let dir = c.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let hosts = |k: usize| {
        let mut v: Vec<IpAddr> = (0..c.clients_per_pid).map(|i| addr(k, 10 + i)).collect();
        if k == 1 {
            v.push(addr(1, SEEDER));
        }
        for (kind, n) in c.third_party() {
            v.extend((0..n).map(|j| addr(k, third_party::host(kind, j))));
        }
        v
    };
    for (kind, n) in c.third_party() {
        anyhow::ensure!(
            n == 0 || kind.installed(),
            "{} is not installed (Debian package `{}`)",
            kind.program(),
            kind.package()
        );
    }
    let groups: Vec<Vec<IpAddr>> = (1..=c.pids).map(hosts).collect();
    let ns = Namespaces::create("alab", &groups, Some(rate_kbit))?;
    let data = testdata::torrent::payload(c.file_bytes, c.seed);
    let alto = run_one(c, &ns, &bin, &dir.join("alto"), &data, true).await?;
    let baseline = run_one(c, &ns, &bin, &dir.join("baseline"), &data, false).await?;
    drop(ns);
    Ok(LabReport::new(c, alto, baseline))
}

/// Which client a member of the `--netns` lab runs.
enum Runs {
    /// `rqbit-alto`, followed through its output.
    Ours(watch::Receiver<Progress>),
    /// A third-party client.
    Theirs(Kind),
}

/// A client of the `--netns` lab.
struct Member {
    ip: IpAddr,
    /// Its folder: data, logs.
    out: PathBuf,
    child: tokio::process::Child,
    arrived: Instant,
    runs: Runs,
    /// Seconds it took (NaN: it exited without completing), once known.
    done: Option<f64>,
}

async fn run_one(
    c: &LabConfig,
    ns: &Namespaces,
    bin: &Path,
    dir: &Path,
    data: &[u8],
    with_alto: bool,
) -> anyhow::Result<RunFigures> {
    let name = if with_alto { "ALTO run" } else { "baseline" };
    std::fs::create_dir_all(dir)?;
    let map_text = network_map(c.pids);
    let net = NetworkMap::from_json(testdata::loopback::NETWORK_MAP_ID, &map_text)?;
    let Services {
        alto,
        ca,
        plain,
        torrent,
        mut replicas,
    } = crate::lab::services(c, dir, &map_text, test_support::netns::BRIDGE, data).await?;
    let directories = replicas.directories().to_vec();
    let tpath = dir.join("payload.torrent");
    std::fs::write(&tpath, &torrent.metainfo)?;
    let spawn = |k: usize,
                 ip: IpAddr,
                 out: &Path,
                 upload_bps: u32,
                 download_bps: u32,
                 share: usize|
     -> anyhow::Result<(tokio::process::Child, watch::Receiver<Progress>)> {
        std::fs::create_dir_all(out)?;
        let mut cmd = tokio::process::Command::from(ns.command(k, bin));
        cmd.arg("download").arg(&tpath);
        cmd.args(["--json", "--listen", &format!("{ip}:0"), "--output"])
            .arg(out);
        cmd.args([
            "--foreign-peers",
            &c.foreign_peers.to_string(),
            "--local-enough",
            &c.local_enough.to_string(),
        ]);
        if upload_bps > 0 {
            cmd.args(["--upload-kib", &(upload_bps / 1024).max(1).to_string()]);
        }
        if download_bps > 0 {
            cmd.args(["--download-kib", &(download_bps / 1024).max(1).to_string()]);
        }
        if c.burst_ms > 0 {
            cmd.args(["--burst-ms", &c.burst_ms.to_string()]);
        }
        if with_alto {
            // Clients spread over the replicas: each starts with its own share.
            for d in crate::lab::spread(&directories, share) {
                cmd.args(["--alto", &d]);
            }
            if let Some(ca) = &ca {
                cmd.arg("--alto-ca").arg(ca);
            }
        }
        // Everyone keeps seeding until the lab ends the run.
        cmd.args(["--seed-after", "100000"]);
        cmd.stdout(Stdio::piped())
            .stderr(std::fs::File::create(out.join("stderr.log"))?)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let progress = follow(stdout, &out.join("stdout.jsonl"))?;
        Ok((child, progress))
    };
    let seed_dir = dir.join("seeder");
    std::fs::create_dir_all(&seed_dir)?;
    std::fs::write(seed_dir.join("payload.bin"), data)?;
    let (mut seeder, mut seeder_progress) =
        spawn(1, addr(1, SEEDER), &seed_dir, c.upload_bps, 0, 0)?;
    // The seeder says it has the whole file once it has checked it (and joined, with ALTO).
    let ready = tokio::time::timeout(
        SEEDER_READY,
        seeder_progress.wait_for(|p| p.finished_after.is_some()),
    )
    .await
    // Not holding the value: the follower cannot write while it is borrowed.
    .map(|r| r.map(drop));
    match ready {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => anyhow::bail!(
            "the seeder exited before it was ready; see {}",
            seed_dir.join("stderr.log").display()
        ),
        Err(_) => anyhow::bail!(
            "the seeder was not ready within {SEEDER_READY:?}; see {}",
            seed_dir.join("stderr.log").display()
        ),
    }
    crate::lab::note(
        c,
        format!(
            "{name}: seeder up in PID1's namespace; starting {} clients",
            c.pids * c.clients_per_pid
        ),
    );
    let mut clients = Vec::new();
    for i in 0..c.clients_per_pid {
        for k in 1..=c.pids {
            if !clients.is_empty() {
                // Arrivals are spread on purpose: this is the swarm's shape, not a wait.
                tokio::time::sleep(c.arrival_gap).await;
            }
            // As in the loopback lab: the seeder has share 0, the replica dies at half.
            let share = clients.len() + 1;
            if with_alto {
                replicas.kill_at_half(c, name, clients.len());
            }
            let ip = addr(k, 10 + i);
            let out = dir.join(ip.to_string());
            let upload = c.scenario.upload_bps(i, k - 1, c.pids, c.upload_bps);
            let (child, progress) = spawn(k, ip, &out, upload, c.download_bps, share)?;
            clients.push(Member {
                ip,
                out,
                child,
                arrived: Instant::now(),
                runs: Runs::Ours(progress),
                done: None,
            });
        }
    }
    // Third-party clients arrive last, once every PID has a head. In the ALTO run their
    // torrent announces to the announce front, which sends each to its PID's head (the one
    // URL an ISP gives every client, docs/tracker-shim.md); in the baseline to the plain
    // tracker.
    let front = match with_alto && c.third_party().iter().any(|(_, n)| *n > 0) {
        true => Some(
            RunningTracker::start(
                Tracker::new(TrackerConfig {
                    interval: 5,
                    min_interval: 1,
                    ..TrackerConfig::default()
                }),
                SocketAddr::new(test_support::netns::BRIDGE, 0),
                None,
                Mode::Front {
                    alto: directories.clone(),
                    refresh: Duration::from_millis(500),
                    fallback: None,
                },
            )
            .await?,
        ),
        false => None,
    };
    if let Some(front) = &front {
        let view = front.front.clone().expect("front mode");
        let until = tokio::time::Instant::now() + FRONT_READY;
        while view.view().live_heads() < c.pids && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let announce = front
        .as_ref()
        .map_or_else(|| plain.announce_url(), |f| f.announce_url());
    for (kind, n) in c.third_party() {
        for j in 0..n {
            for k in 1..=c.pids {
                tokio::time::sleep(c.arrival_gap).await;
                let ip = addr(k, third_party::host(kind, j));
                let out = dir.join(ip.to_string());
                std::fs::create_dir_all(&out)?;
                let t = out.join("payload.torrent");
                std::fs::write(&t, crate::lab::torrent(data, &announce).metainfo)?;
                let child = third_party::command(kind, &ns.names[k - 1], ip, &t, &out)?.spawn()?;
                clients.push(Member {
                    ip,
                    out,
                    child,
                    arrived: Instant::now(),
                    runs: Runs::Theirs(kind),
                    done: None,
                });
            }
        }
    }
    let third: Vec<IpAddr> = clients
        .iter()
        .filter(|m| matches!(m.runs, Runs::Theirs(_)))
        .map(|m| m.ip)
        .collect();
    let mut f = RunFigures {
        clients: clients.len(),
        ..RunFigures::default()
    };

    // Clients keep seeding after they complete, as in the in-process lab: an rqbit-alto
    // client's completion is the first progress line that says so (sent here as it comes);
    // its bytes, the last line.
    let (completed_tx, mut completed) = tokio::sync::mpsc::unbounded_channel();
    for (index, m) in clients.iter().enumerate() {
        if let Runs::Ours(progress) = &m.runs {
            let (mut progress, tx) = (progress.clone(), completed_tx.clone());
            tokio::spawn(async move {
                let done = match progress.wait_for(|p| p.finished_after.is_some()).await {
                    Ok(p) => p.finished_after,
                    Err(_) => Some(f64::NAN), // exited before completing
                };
                let _ = tx.send((index, done));
            });
        }
    }
    drop(completed_tx);
    let deadline = tokio::time::Instant::now() + c.timeout;
    let mut look = tokio::time::interval(LOOK_EVERY);
    while clients.iter().any(|m| m.done.is_none()) {
        tokio::select! {
            Some((i, done)) = completed.recv() => clients[i].done = done,
            _ = tokio::time::sleep_until(deadline) => break,
            // Third-party clients cannot tell: their file is done when it is the data.
            _ = look.tick(), if !third.is_empty() => {
                for m in clients.iter_mut().filter(|m| m.done.is_none()) {
                    if !matches!(m.runs, Runs::Theirs(_)) {
                        continue;
                    }
                    if std::fs::read(m.out.join("payload.bin")).is_ok_and(|b| b == data) {
                        m.done = Some(m.arrived.elapsed().as_secs_f64());
                    } else if let Ok(Some(_)) = m.child.try_wait() {
                        m.done = Some(f64::NAN);
                    }
                }
            }
        }
    }
    // One more progress line from each, so that the bytes counted are the final ones.
    let last_line = tokio::time::Instant::now() + LAST_LINE;
    let ours = clients
        .iter()
        .filter_map(|m| match &m.runs {
            Runs::Ours(p) => Some(p),
            Runs::Theirs(_) => None,
        })
        .chain([&seeder_progress]);
    for progress in ours {
        let mut progress = progress.clone();
        let seen = progress.borrow().lines;
        let _ = tokio::time::timeout_at(last_line, progress.wait_for(|p| p.lines > seen)).await;
    }
    f.run_s = clients
        .first()
        .map_or(0.0, |m| m.arrived.elapsed().as_secs_f64());
    f.third_party = third.len();
    let heads = if with_alto {
        crate::lab::head_requests(&alto.directory_url()).await
    } else {
        0
    };
    for m in clients.iter_mut() {
        let ok = m.done.is_some_and(|t| !t.is_nan())
            && std::fs::read(m.out.join("payload.bin")).is_ok_and(|b| b == data);
        let last = match &m.runs {
            Runs::Ours(p) => p.borrow().last.clone(),
            Runs::Theirs(_) => None,
        };
        let _ = m.child.start_kill();
        if !ok {
            let (what, file) = match m.runs {
                Runs::Theirs(k) => (k.program(), m.out.join("client.log")),
                Runs::Ours(_) => ("rqbit-alto", m.out.join("stderr.log")),
            };
            let log = std::fs::read_to_string(&file).unwrap_or_default();
            f.failed
                .push(format!("{} ({what}); log {}:\n{log}", m.ip, file.display()));
            continue;
        }
        f.add_completion(m.ip.to_string(), m.done.expect("checked"));
        if let Some(line) = last {
            f.outreach_trials += line.outreach_trials;
            f.outreach_left_peers += line.outreach_left_peers;
            count_connections(&mut f, &net, m.ip, &line, &third);
        }
    }
    let seeder_last = seeder_progress.borrow().last.clone();
    if let Some(line) = seeder_last {
        count_connections(&mut f, &net, addr(1, SEEDER), &line, &third);
    }
    let _ = seeder.start_kill();
    f.finish();
    let text = crate::lab::alto_metrics(&alto).await;
    (f.alto_server_requests, f.alto_server_arrival_requests) = crate::lab::alto_requests(&text);
    f.elections = crate::lab::metric_sum(&text, "alto_pidhead_elections_total");
    f.tracker_requests = plain.tracker.stats.requests() + heads;
    if let Some(front) = front {
        let stats = &front.front.as_ref().expect("front mode").stats;
        let redirected = stats.to_head.load(std::sync::atomic::Ordering::Relaxed);
        crate::lab::note(
            c,
            format!("{name}: the announce front sent {redirected} requests to PID Heads"),
        );
        front.stop().await;
    }
    crate::lab::note(
        c,
        format!(
            "{name}: {}/{} clients complete; {:.0}% of the bytes stayed inside PIDs",
            f.completed,
            f.clients,
            f.localization * 100.0
        ),
    );
    plain.stop().await;
    alto.stop().await?;
    drop(replicas);
    Ok(f)
}

/// Counts the connections a client opened, from its last `--json` progress line, and those
/// that the third-party clients at `third` opened to it (they report no bytes themselves;
/// connections between two of them are not counted).
fn count_connections(
    f: &mut RunFigures,
    net: &NetworkMap,
    me: IpAddr,
    line: &ProgressLine,
    third: &[IpAddr],
) {
    for conn in &line.peers_out {
        f.add_connection(net, me, conn);
    }
    for conn in &line.peers_in {
        if third.contains(&conn.addr.ip()) {
            // Seen from the third-party client that opened it: what it got is what we sent.
            let theirs = PeerTraffic {
                addr: SocketAddr::new(me, 0),
                received: conn.sent,
                sent: conn.received,
            };
            f.add_connection(net, conn.addr.ip(), &theirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_of_rqbit_alto_reads_as_typed() {
        let line = r#"{"type":"progress","finished":true,"elapsed_s":2.5,"have_bytes":9,
            "peers_out":[{"addr":"10.77.2.10:4000","received":100,"sent":20}],
            "peers_in":[{"addr":"10.77.1.100:6881","received":5,"sent":300}]}"#;
        let p: ProgressLine = serde_json::from_str(line).unwrap();
        assert!(p.finished);
        assert_eq!(p.elapsed_s, Some(2.5));
        let out = &p.peers_out;
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].received, out[0].sent), (100, 20));
        let mut progress = Progress::default();
        progress.add(p.clone());
        progress.add(ProgressLine {
            elapsed_s: Some(9.0),
            ..p
        });
        assert_eq!((progress.lines, progress.finished_after), (2, Some(2.5)));
    }

    #[test]
    fn bytes_to_a_third_party_client_count_from_its_side() {
        let net =
            NetworkMap::from_json(testdata::loopback::NETWORK_MAP_ID, &network_map(2)).unwrap();
        let line = ProgressLine {
            peers_in: vec![
                PeerTraffic {
                    addr: "10.77.2.100:6881".parse().unwrap(),
                    received: 5,
                    sent: 300,
                },
                PeerTraffic {
                    addr: "10.77.2.11:5000".parse().unwrap(),
                    received: 7,
                    sent: 7,
                },
            ],
            ..ProgressLine::default()
        };
        let mut f = RunFigures::default();
        count_connections(&mut f, &net, addr(1, 10), &line, &[addr(2, 100)]);
        f.finish();
        assert_eq!(f.matrix.bytes("PID1", "PID2"), 300);
        assert_eq!(f.matrix.bytes("PID2", "PID1"), 5);
        assert_eq!(f.cross_pid_bytes, 305);
    }
}
