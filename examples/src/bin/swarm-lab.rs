//! `swarm-lab`: a local multi-PID swarm of librqbit clients with the ALTO plugin, measured
//! against the identical swarm without ALTO. The README's main command.
//!
//! On its embedded default (no root, no setup): the ALTO server on the loopback topology,
//! one seeder in PID1 and 4 PIDs × 6 clients, a 16 MiB file, 4 MiB/s upload per client.

use alto_examples::lab::{self, LabConfig, Scenario};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "A local multi-PID swarm with the ALTO virtual tracker, against the same swarm without it"
)]
struct Args {
    /// PIDs with clients (1 to 4).
    #[arg(long, default_value_t = 4)]
    pids: usize,
    /// Clients per PID.
    #[arg(long, default_value_t = 6)]
    clients_per_pid: usize,
    /// File size, MiB.
    #[arg(long, default_value_t = 16)]
    file_mib: usize,
    /// Seed of the file's content.
    #[arg(long, default_value_t = 7285)]
    seed: u64,
    /// Upload limit per client, KiB/s (0: none).
    #[arg(long, default_value_t = 4096)]
    upload_kib: u32,
    /// Download limit per client, KiB/s (0: none): an access link's downlink. Without one, a
    /// client fetches as fast as every peer it knows can send.
    #[arg(long, default_value_t = 0)]
    download_kib: u32,
    /// Milliseconds of their rate the clients' limits let through at once after a pause
    /// (0: librqbit's whole second, which lets an idle peer send a second of its uplink at
    /// once; an access link's queue holds about 100).
    #[arg(long, default_value_t = 0)]
    burst_ms: u32,
    /// Head election policy: `first` or `scored`.
    #[arg(long, default_value = "first")]
    policy: String,
    /// Milliseconds between two clients' arrivals (round-robin over the PIDs).
    #[arg(long, default_value_t = 1000)]
    arrival_ms: u64,
    /// Peers of other PIDs a PID's gateway gets per announce: its head takes its parent in
    /// the heads' tree and peers of the parent's PID up to this many; the other ALTO
    /// clients of the PID get none while the head is in the swarm.
    #[arg(long, default_value_t = 4)]
    foreign_peers: usize,
    /// When the head is not in the swarm: with this many peers in its own PID, an ALTO
    /// client gets none from other PIDs.
    #[arg(long, default_value_t = 1)]
    local_enough: usize,
    /// Seconds a client may take before it counts as failed.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw the PID-to-PID traffic of both runs as SVG into this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Run the ALTO path over HTTPS: the ALTO server with a certificate of a CA the lab
    /// makes, every client verifying against it (the heads' trackers stay plain HTTP).
    #[arg(long)]
    tls: bool,
    /// ALTO server replicas sharing the election through etcd (needs `--etcd`): the first in
    /// the lab's process, the others processes of their own; clients are spread over them
    /// and fail over when one does not answer.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Keep the PID Head election in a 3-member etcd cluster started on loopback ports
    /// (Debian's `etcd-server`), removed after the run.
    #[arg(long)]
    etcd: bool,
    /// With `--replicas` 2 or more: SIGKILL a replica once half of the clients have arrived.
    #[arg(long)]
    kill_replica: bool,
    /// Serve as one ALTO server replica with this configuration (what the lab runs its extra
    /// replicas as), printing its directory URL.
    #[arg(long, hide = true)]
    alto_replica: Option<PathBuf>,
    /// With `--alto-replica`: serve HTTPS with the certificate, key and CA in this folder
    /// (the lab's `--tls`).
    #[arg(long, hide = true, requires = "alto_replica")]
    replica_tls: Option<PathBuf>,
    /// With `--alto-replica`: the address to serve on (the lab's service address).
    #[arg(
        long,
        hide = true,
        requires = "alto_replica",
        default_value = "127.0.0.1"
    )]
    replica_listen: std::net::IpAddr,
    /// Keep the data and logs in this folder (a temporary one otherwise).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run every PID in a network namespace of its own, inter-PID links shaped with tbf
    /// (needs root); clients are `rqbit-alto` processes.
    #[arg(long)]
    netns: bool,
    /// With `--netns`: each PID's link to the others, Mbit/s each way (0: unshaped).
    #[arg(long, default_value_t = 40.0)]
    link_mbit: f64,
    /// With `--netns`: aria2 clients per PID, ordinary members announcing through the
    /// announce front, which sends them to their PID's head (baseline: to the plain
    /// tracker).
    #[arg(long, default_value_t = 0)]
    aria2_per_pid: usize,
    /// With `--netns`: transmission clients per PID, likewise.
    #[arg(long, default_value_t = 0)]
    transmission_per_pid: usize,
    /// With `--netns`: qBittorrent (qbittorrent-nox) clients per PID, likewise.
    #[arg(long, default_value_t = 0)]
    qbittorrent_per_pid: usize,
    /// With `--netns`: rtorrent clients per PID, likewise.
    #[arg(long, default_value_t = 0)]
    rtorrent_per_pid: usize,
    /// With `--netns`: ctorrent clients per PID, likewise.
    #[arg(long, default_value_t = 0)]
    ctorrent_per_pid: usize,
    /// With `--netns`: libtorrent (python3-libtorrent) clients per PID, likewise.
    #[arg(long, default_value_t = 0)]
    libtorrent_per_pid: usize,
    /// A hard case to run, each as ALTO against the same swarm on the plain tracker
    /// (repeatable; `all` for every one): homogeneous, slow-head, mixed-uplinks, slow-pid,
    /// head-leaves, junk-head, churn (docs/locality.md). With `--netns`: homogeneous,
    /// slow-head, mixed-uplinks and slow-pid.
    #[arg(long, default_value = "homogeneous")]
    scenario: Vec<String>,
}

/// The scenarios asked for, in the order given (`all`: every one), or why not.
fn scenarios(names: &[String], netns: bool) -> Result<Vec<Scenario>, String> {
    let mut out = Vec::new();
    for n in names {
        let more = if n == "all" {
            // Under --netns, `all` is every scenario the namespaces can run.
            Scenario::ALL
                .iter()
                .copied()
                .filter(|s| !netns || s.in_netns())
                .collect()
        } else {
            vec![Scenario::parse(n).ok_or_else(|| format!("unknown scenario `{n}`"))?]
        };
        for s in more {
            if netns && !s.in_netns() {
                return Err(format!(
                    "scenario `{}` runs in the in-process lab only",
                    s.name()
                ));
            }
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(config) = &args.alto_replica {
        let tls = args.replica_tls.clone().map(|dir| lab::ReplicaTls { dir });
        if let Err(e) = lab::serve_replica(config, args.replica_listen, tls.as_ref()).await {
            eprintln!("swarm-lab: replica: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    if args.replicas > 1 && !args.etcd {
        eprintln!("swarm-lab: replicas share the election through etcd: add --etcd");
        std::process::exit(2);
    }
    if args.kill_replica && args.replicas < 2 {
        eprintln!("swarm-lab: --kill-replica needs --replicas 2 or more");
        std::process::exit(2);
    }
    if !["first", "scored"].contains(&args.policy.as_str()) {
        eprintln!("swarm-lab: --policy must be `first` or `scored`");
        std::process::exit(2);
    }
    let third_party = args.aria2_per_pid
        + args.transmission_per_pid
        + args.qbittorrent_per_pid
        + args.rtorrent_per_pid
        + args.ctorrent_per_pid
        + args.libtorrent_per_pid;
    if !args.netns && third_party > 0 {
        eprintln!("swarm-lab: third-party clients join only the --netns lab");
        std::process::exit(2);
    }
    let scenarios = match scenarios(&args.scenario, args.netns) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("swarm-lab: {why}");
            std::process::exit(2);
        }
    };
    let config = LabConfig {
        pids: args.pids,
        clients_per_pid: args.clients_per_pid,
        file_bytes: args.file_mib.max(1) << 20,
        seed: args.seed,
        upload_bps: args.upload_kib.saturating_mul(1024),
        download_bps: args.download_kib.saturating_mul(1024),
        burst_ms: args.burst_ms,
        policy: args.policy.clone(),
        timeout: Duration::from_secs(args.timeout_secs),
        dir: args.dir.clone(),
        arrival_gap: Duration::from_millis(args.arrival_ms),
        foreign_peers: args.foreign_peers,
        local_enough: args.local_enough,
        progress: true,
        aria2_per_pid: args.aria2_per_pid,
        transmission_per_pid: args.transmission_per_pid,
        qbittorrent_per_pid: args.qbittorrent_per_pid,
        rtorrent_per_pid: args.rtorrent_per_pid,
        ctorrent_per_pid: args.ctorrent_per_pid,
        libtorrent_per_pid: args.libtorrent_per_pid,
        scenario: scenarios[0],
        tls: args.tls,
        replicas: args.replicas.max(1),
        etcd: args.etcd,
        kill_replica: args.kill_replica,
        replica_program: None,
    };
    eprintln!(
        "[lab] {} PIDs x {} clients, one seeder in PID1, {} MiB, upload {} KiB/s{} per client, policy `{}`{}",
        config.pids,
        config.clients_per_pid,
        args.file_mib,
        args.upload_kib,
        match (args.download_kib, args.burst_ms) {
            (0, 0) => String::new(),
            (0, b) => format!(", bursts of {b} ms"),
            (k, 0) => format!(", download {k} KiB/s"),
            (k, b) => format!(", download {k} KiB/s, bursts of {b} ms"),
        },
        config.policy,
        if config.tls { ", ALTO over HTTPS" } else { "" }
    );
    // Ctrl-C drops the run, and with it the namespaces and the client processes.
    let run = async {
        let mut reports = Vec::new();
        for &scenario in &scenarios {
            // Each scenario in a folder of its own: a second one would find the files of the
            // first complete.
            let dir = match &config.dir {
                Some(d) if scenarios.len() > 1 => Some(d.join(scenario.name())),
                d => d.clone(),
            };
            let config = LabConfig {
                scenario,
                dir,
                ..config.clone()
            };
            eprintln!("[lab] scenario `{}`", scenario.name());
            let report = if args.netns {
                if let Err(why) = alto_examples::netns::available() {
                    anyhow::bail!("--netns needs root and `ip netns`: {why}");
                }
                eprintln!(
                    "[lab] --netns: one namespace per PID, inter-PID links shaped to {} Mbit/s",
                    args.link_mbit
                );
                alto_examples::netns::run(&config, (args.link_mbit * 1000.0) as u64).await?
            } else {
                lab::run(&config).await?
            };
            reports.push((scenario, report));
        }
        Ok(reports)
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    // The select drops the run when a signal comes: the namespaces go with it.
    let outcome = tokio::select! {
        r = run => Some(r),
        _ = tokio::signal::ctrl_c() => None,
        _ = term.recv() => None,
    };
    let reports = match outcome {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            eprintln!("swarm-lab: {e:#}");
            std::process::exit(1);
        }
        None => {
            eprintln!("swarm-lab: interrupted; namespaces and clients removed");
            std::process::exit(130);
        }
    };
    let report = &reports[0].1;
    println!("\n{}", lab::table(report));
    if reports.len() > 1 {
        println!("\n{}", lab::scenario_table(&reports));
    }
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(
            path,
            serde_json::to_string_pretty(&lab::json_scenarios(&reports)).expect("serializes"),
        ) {
            eprintln!("swarm-lab: cannot write {}: {e}", path.display());
            std::process::exit(3);
        }
    }
    if let Some(path) = &args.svg {
        if let Err(e) = std::fs::write(path, lab::svg(report)) {
            eprintln!("swarm-lab: cannot write {}: {e}", path.display());
            std::process::exit(3);
        }
    }
    let failed: Vec<&String> = reports
        .iter()
        .flat_map(|(_, r)| r.alto.failed.iter().chain(&r.baseline.failed))
        .collect();
    if !failed.is_empty() {
        for f in failed {
            eprintln!("swarm-lab: client failed: {f}");
        }
        std::process::exit(1);
    }
}
