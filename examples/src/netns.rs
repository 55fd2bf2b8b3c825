//! The lab in network namespaces (`swarm-lab --netns`, root): every PID is a namespace of its
//! own, joined to the others by a veth to one bridge, and the inter-PID links are shaped with
//! `tbf` (this kernel has no `netem`), so that locality shows in completion times too. The
//! ALTO server and the plain tracker listen on the bridge in the host namespace; each client is
//! an `rqbit-alto` process inside its PID's namespace. The namespaces have no route out, and
//! every one of them is deleted on exit, after a failure or Ctrl-C too.

use crate::lab::{LabConfig, LabReport, RunFigures};
use alto_model::NetworkMap;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Namespaces, veths and the bridge of a run, deleted when dropped.
pub struct Namespaces {
    /// One namespace per PID, in PID order.
    pub names: Vec<String>,
    veths: Vec<String>,
    bridge: String,
}

fn sh(cmd: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Whether this machine lets the lab make namespaces (root and a working `ip netns`).
pub fn available() -> Result<(), String> {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return Err("not root".into());
    }
    let probe = format!("alprobe{}", std::process::id());
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &probe])
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &probe])
        .status();
    let tc = std::process::Command::new("tc").arg("-V").output().is_ok();
    match (ok, tc) {
        (true, true) => Ok(()),
        (false, _) => Err("`ip netns add` failed".into()),
        (_, false) => Err("`tc` is missing (iproute2)".into()),
    }
}

/// The address of client `i` of PID `k` (1-based); the seeder is 250 in PID 1.
pub fn addr(k: usize, i: usize) -> IpAddr {
    IpAddr::from([10, 77, k as u8, i as u8])
}

impl Namespaces {
    /// Makes `pids` namespaces, each with the addresses `hosts(k)`, links shaped to
    /// `rate_kbit` each way between a namespace and the bridge.
    pub fn create(
        pids: usize,
        hosts: impl Fn(usize) -> Vec<IpAddr>,
        rate_kbit: u64,
    ) -> anyhow::Result<Namespaces> {
        let tag = std::process::id() % 100_000;
        let mut n = Namespaces {
            names: Vec::new(),
            veths: Vec::new(),
            bridge: format!("albr{tag}"),
        };
        sh(&format!(
            "ip link add {0} type bridge && ip addr add 10.77.0.1/16 dev {0} && ip link set {0} up",
            n.bridge
        ))?;
        for k in 1..=pids {
            let ns = format!("alab{tag}-{k}");
            sh(&format!("ip netns add {ns}"))?;
            n.names.push(ns.clone());
            let (host, inner) = (format!("alb{tag}h{k}"), format!("alb{tag}n{k}"));
            n.veths.push(host.clone());
            sh(&format!("ip link add {host} type veth peer name {inner} && ip link set {inner} netns {ns} && ip link set {host} master {} && ip link set {host} up && ip -n {ns} link set lo up && ip -n {ns} link set {inner} up", n.bridge))?;
            for a in hosts(k) {
                sh(&format!("ip -n {ns} addr add {a}/16 dev {inner}"))?;
            }
            if rate_kbit > 0 {
                let burst = (rate_kbit / 8).max(16); // bytes of 1 ms, at least 16 KiB
                sh(&format!("tc qdisc add dev {host} root tbf rate {rate_kbit}kbit burst {burst}kb latency 200ms"))?;
                sh(&format!("ip netns exec {ns} tc qdisc add dev {inner} root tbf rate {rate_kbit}kbit burst {burst}kb latency 200ms"))?;
            }
        }
        Ok(n)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for v in &self.veths {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", v])
                .status();
        }
        for ns in &self.names {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .status();
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// The `rqbit-alto` binary next to this one (built with the workspace).
fn rqbit_alto() -> anyhow::Result<PathBuf> {
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
            v.push(addr(1, 250));
        }
        for (kind, n) in c.third_party() {
            v.extend((0..n).map(|j| addr(k, kind.host(j))));
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
    let ns = Namespaces::create(c.pids, hosts, rate_kbit)?;
    let data = testdata::torrent::payload(c.file_bytes, c.seed);
    let alto = run_one(c, &ns, &bin, &dir.join("alto"), &data, true).await?;
    let baseline = run_one(c, &ns, &bin, &dir.join("baseline"), &data, false).await?;
    drop(ns);
    Ok(LabReport::new(c, alto, baseline))
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
    let (alto, plain, torrent) =
        crate::lab::services(c, dir, &map_text, "10.77.0.1".parse()?, data).await?;
    let tpath = dir.join("payload.torrent");
    std::fs::write(&tpath, &torrent.metainfo)?;
    let spawn =
        |k: usize, ip: IpAddr, out: PathBuf, seed: bool| -> anyhow::Result<tokio::process::Child> {
            std::fs::create_dir_all(&out)?;
            let mut cmd = tokio::process::Command::new("ip");
            cmd.args(["netns", "exec", &ns.names[k - 1]])
                .arg(bin)
                .arg("download")
                .arg(&tpath);
            cmd.args(["--json", "--listen", &format!("{ip}:0"), "--output"])
                .arg(&out);
            cmd.args([
                "--foreign-peers",
                &c.foreign_peers.to_string(),
                "--local-enough",
                &c.local_enough.to_string(),
            ]);
            if c.upload_bps > 0 {
                cmd.args(["--upload-kib", &(c.upload_bps / 1024).to_string()]);
            }
            if with_alto {
                cmd.args(["--alto", &alto.directory_url()]);
            }
            // Everyone keeps seeding until the lab ends the run.
            let _ = seed;
            cmd.args(["--seed-after", "100000"]);
            cmd.stdout(std::fs::File::create(out.join("stdout.jsonl"))?)
                .stderr(std::fs::File::create(out.join("stderr.log"))?)
                .stdin(Stdio::null())
                .kill_on_drop(true);
            Ok(cmd.spawn()?)
        };
    let seed_dir = dir.join("seeder");
    std::fs::create_dir_all(&seed_dir)?;
    std::fs::write(seed_dir.join("payload.bin"), data)?;
    let mut seeder = spawn(1, addr(1, 250), seed_dir.clone(), true)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
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
                tokio::time::sleep(c.arrival_gap).await;
            }
            let ip = addr(k, 10 + i);
            let out = dir.join(ip.to_string());
            let child = spawn(k, ip, out.clone(), false)?;
            clients.push((ip, out, child, Instant::now(), None));
        }
    }
    // Third-party clients arrive last, once every PID has a head.
    let heads = match with_alto {
        true => alto_client::AltoClient::new(&alto.directory_url())?
            .head_directory()
            .await
            .map(|d| d.heads())
            .unwrap_or_default(),
        false => Default::default(),
    };
    for (kind, n) in c.third_party() {
        for j in 0..n {
            for k in 1..=c.pids {
                tokio::time::sleep(c.arrival_gap).await;
                let ip = addr(k, kind.host(j));
                let out = dir.join(ip.to_string());
                let announce = heads
                    .get(&format!("PID{k}"))
                    .map_or_else(|| plain.announce_url(), |(tracker, _)| tracker.clone());
                std::fs::create_dir_all(&out)?;
                let t = out.join("payload.torrent");
                std::fs::write(&t, crate::lab::torrent(data, &announce).metainfo)?;
                let child = kind.command(&ns.names[k - 1], ip, &t, &out)?.spawn()?;
                clients.push((ip, out, child, Instant::now(), Some(kind)));
            }
        }
    }
    let third: Vec<IpAddr> = clients
        .iter()
        .filter(|c| c.4.is_some())
        .map(|c| c.0)
        .collect();
    // Clients keep seeding after they complete, as in the in-process lab: a client's
    // completion is the first progress line that says so; its bytes, the last line.
    let mut f = RunFigures {
        clients: clients.len(),
        ..RunFigures::default()
    };
    let deadline = Instant::now() + c.timeout;
    let lines = |out: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(out.join("stdout.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let mut done: Vec<Option<f64>> = vec![None; clients.len()];
    while done.iter().any(Option::is_none) && Instant::now() < deadline {
        for (k, (_, out, child, started, kind)) in clients.iter_mut().enumerate() {
            if done[k].is_none() && kind.is_some() {
                // A third-party client is done when its file is.
                if std::fs::read(out.join("payload.bin")).is_ok_and(|b| b == data) {
                    done[k] = Some(started.elapsed().as_secs_f64());
                } else if let Ok(Some(_)) = child.try_wait() {
                    done[k] = Some(f64::NAN);
                }
            } else if done[k].is_none() {
                if let Some(l) = lines(out).iter().find(|l| l["finished"] == true) {
                    done[k] = Some(l["elapsed_s"].as_f64().unwrap_or(f64::NAN));
                } else if let Ok(Some(_)) = child.try_wait() {
                    done[k] = Some(f64::NAN); // exited before completing
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // one more progress line each
    f.run_s = clients.first().map_or(0.0, |c| c.3.elapsed().as_secs_f64());
    f.third_party = third.len();
    let heads = if with_alto {
        crate::lab::head_requests(&alto.directory_url()).await
    } else {
        0
    };
    for (k, (ip, out, child, _, kind)) in clients.iter_mut().enumerate() {
        let ok = done[k].is_some_and(|t| !t.is_nan())
            && std::fs::read(out.join("payload.bin")).is_ok_and(|b| b == data);
        let last = lines(out).into_iter().last();
        let _ = child.start_kill();
        if !ok {
            let (what, file) = match kind {
                Some(k) => (k.program(), out.join("client.log")),
                None => ("rqbit-alto", out.join("stderr.log")),
            };
            let log = std::fs::read_to_string(&file).unwrap_or_default();
            f.failed
                .push(format!("{ip} ({what}); log {}:\n{log}", file.display()));
            continue;
        }
        f.completed += 1;
        f.completion_s.push(done[k].expect("checked"));
        f.completion_by_client
            .push((ip.to_string(), done[k].expect("checked")));
        if let Some(s) = last {
            count_connections(&mut f, &net, *ip, &s, &third);
        }
    }
    if let Some(s) = lines(&seed_dir).into_iter().last() {
        count_connections(&mut f, &net, addr(1, 250), &s, &third);
    }
    let _ = seeder.start_kill();
    f.finish();
    let text = crate::lab::alto_metrics(&alto).await;
    (f.alto_server_requests, f.alto_server_arrival_requests) = crate::lab::alto_requests(&text);
    f.elections = crate::lab::metric_sum(&text, "alto_pidhead_elections_total");
    f.tracker_requests = plain.tracker.stats.requests() + heads;
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
    Ok(f)
}

/// Counts the connections a client opened, from its last `--json` progress line, and those
/// that the third-party clients at `third` opened to it (they report no bytes themselves;
/// connections between two of them are not counted).
fn count_connections(
    f: &mut RunFigures,
    net: &NetworkMap,
    me: IpAddr,
    line: &serde_json::Value,
    third: &[IpAddr],
) {
    let peers = |key: &str| -> Vec<(std::net::SocketAddr, u64, u64)> {
        line[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let addr = p[0].as_str()?.parse().ok()?;
                Some((addr, p[1].as_u64()?, p[2].as_u64()?))
            })
            .collect()
    };
    for (peer, got, sent) in peers("peers_out") {
        f.add_connection(net, me, peer, got, sent);
    }
    for (peer, got, sent) in peers("peers_in") {
        if third.contains(&peer.ip()) {
            f.add_connection(net, peer.ip(), std::net::SocketAddr::new(me, 0), sent, got);
        }
    }
}
