//! The in-process lab: the services of a run (ALTO server, plain tracker, the torrent), then
//! the ALTO run and the baseline, each with one seeder in PID1 and clients arriving
//! round-robin over the PIDs, all librqbit sessions with the plugin in this process.

use super::metrics::{alto_metrics, alto_requests, metric_sum};
use super::{LabConfig, LabReport, RunFigures};
use alto_model::NetworkMap;
use alto_plugin::PeerTraffic;
use alto_plugin::{AltoSession, Config};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// How often a run in progress says how far it is.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Prints a progress line when the run asks for progress.
pub fn note(c: &LabConfig, msg: impl AsRef<str>) {
    if c.progress {
        eprintln!("[lab] {}", msg.as_ref());
    }
}

/// Runs the lab: the ALTO run, then the baseline.
pub async fn run(c: &LabConfig) -> anyhow::Result<LabReport> {
    anyhow::ensure!(
        (1..=4).contains(&c.pids),
        "the loopback topology has 4 PIDs with clients"
    );
    anyhow::ensure!(c.clients_per_pid >= 1, "at least one client per PID");
    let tmp;
    let dir = match &c.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    let data = testdata::torrent::payload(c.file_bytes, c.seed);
    let alto = run_one(c, &dir.join("alto"), &data, true).await?;
    let baseline = run_one(c, &dir.join("baseline"), &data, false).await?;
    Ok(LabReport::new(c, alto, baseline))
}

/// A downloading client of the in-process lab.
struct Client {
    /// Its address.
    ip: String,
    /// Where its data goes.
    folder: PathBuf,
    session: AltoSession,
    torrent: alto_plugin::Torrent,
    /// Seconds from its arrival to completion, once it completed.
    done: Option<f64>,
}

/// Adds every connection `session` opened for `torrent` to `f`.
fn count_connections(
    f: &mut RunFigures,
    net: &NetworkMap,
    ip: &str,
    session: &AltoSession,
    torrent: &alto_plugin::Torrent,
) -> anyhow::Result<()> {
    let me = ip.parse()?;
    for peer in session.peer_bytes(torrent).iter().filter(|p| p.outgoing) {
        let conn = PeerTraffic {
            addr: peer.addr,
            received: peer.fetched,
            sent: peer.uploaded,
        };
        f.add_connection(net, me, &conn);
    }
    Ok(())
}

async fn run_one(
    c: &LabConfig,
    dir: &Path,
    data: &[u8],
    with_alto: bool,
) -> anyhow::Result<RunFigures> {
    let name = if with_alto { "ALTO run" } else { "baseline" };
    std::fs::create_dir_all(dir)?;
    let net = NetworkMap::from_json(
        testdata::loopback::NETWORK_MAP_ID,
        testdata::loopback::NETWORK_MAP,
    )?;
    let Services {
        alto,
        plain,
        torrent,
    } = services(
        c,
        dir,
        testdata::loopback::NETWORK_MAP,
        "127.0.0.1".parse()?,
        data,
    )
    .await?;
    let client = |ip: String, folder: PathBuf| {
        let mut cfg = Config::new(ip.parse().expect("an address"), folder);
        cfg.alto = with_alto.then(|| alto.directory_url());
        cfg.min_interval = 2;
        cfg.upload_bps = (c.upload_bps > 0).then_some(c.upload_bps);
        cfg.locality.foreign_peers = c.foreign_peers;
        cfg.local_enough = c.local_enough;
        cfg
    };
    // One seeder, in the first PID.
    let seed_dir = dir.join("seeder");
    std::fs::create_dir_all(&seed_dir)?;
    std::fs::write(seed_dir.join("payload.bin"), data)?;
    let seeder_ip = "127.1.0.250";
    let seeder = AltoSession::start(client(seeder_ip.into(), seed_dir.clone())).await?;
    let st = seeder.add(&torrent.metainfo).await?;
    st.wait_completed().await?;
    let before = alto_metrics(&alto).await;
    note(
        c,
        format!(
            "{name}: seeder ready in PID1; starting {} clients",
            c.pids * c.clients_per_pid
        ),
    );

    // Each client's completion is timed as it happens and sent here, not found by looking.
    let (completed_tx, mut completed) = tokio::sync::mpsc::unbounded_channel();
    let mut clients = Vec::new();
    let first_arrival = Instant::now();
    for k in 0..c.clients_per_pid {
        for p in 0..c.pids {
            if !clients.is_empty() {
                // Arrivals are spread on purpose: this is the swarm's shape, not a wait.
                tokio::time::sleep(c.arrival_gap).await;
            }
            let ip = format!("127.{}.0.{}", p + 1, k + 10);
            let folder = dir.join(&ip);
            let session = AltoSession::start(client(ip.clone(), folder.clone())).await?;
            let added = Instant::now();
            let t = session.add(&torrent.metainfo).await?;
            let (watched, tx, index) = (t.clone(), completed_tx.clone(), clients.len());
            tokio::spawn(async move {
                let done = watched
                    .wait_completed()
                    .await
                    .map(|()| added.elapsed().as_secs_f64())
                    .ok();
                let _ = tx.send((index, done));
            });
            clients.push(Client {
                ip,
                folder,
                session,
                torrent: t,
                done: None,
            });
        }
    }
    drop(completed_tx);
    let deadline = tokio::time::Instant::now() + c.timeout;
    let mut progress =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let mut pending = clients.len();
    while pending > 0 {
        tokio::select! {
            Some((i, done)) = completed.recv() => {
                clients[i].done = done;
                pending -= 1;
            }
            _ = tokio::time::sleep_until(deadline) => break,
            _ = progress.tick() => {
                let have: u64 = clients
                    .iter()
                    .map(|cl| cl.session.report(&cl.torrent).have_bytes)
                    .sum();
                let all = (clients.len() * data.len()) as f64;
                note(
                    c,
                    format!(
                        "{name}: {:.0}% of the data in place, {pending} clients still downloading",
                        100.0 * have as f64 / all
                    ),
                );
            }
        }
    }

    let mut f = RunFigures {
        clients: clients.len(),
        ..RunFigures::default()
    };
    for cl in &clients {
        count_connections(&mut f, &net, &cl.ip, &cl.session, &cl.torrent)?;
    }
    count_connections(&mut f, &net, seeder_ip, &seeder, &st)?;
    for cl in &clients {
        match cl.done {
            Some(seconds)
                if std::fs::read(cl.folder.join("payload.bin")).is_ok_and(|b| b == data) =>
            {
                f.add_completion(cl.ip.clone(), seconds);
            }
            _ => f
                .failed
                .push(format!("{}: {:?}", cl.ip, cl.session.report(&cl.torrent))),
        }
    }
    f.finish();
    let after = alto_metrics(&alto).await;
    let ((total, arrivals), (total0, arrivals0)) = (alto_requests(&after), alto_requests(&before));
    f.alto_server_requests = total - total0;
    f.alto_server_arrival_requests = arrivals - arrivals0;
    f.run_s = first_arrival.elapsed().as_secs_f64();
    f.elections = metric_sum(&after, "alto_pidhead_elections_total");
    f.tracker_requests = plain.tracker.stats.requests()
        + clients
            .iter()
            .filter_map(|cl| cl.session.shim())
            .map(|sh| sh.tracker.stats.requests())
            .sum::<u64>()
        + seeder.shim().map_or(0, |sh| sh.tracker.stats.requests());
    note(
        c,
        format!(
            "{name}: {}/{} clients complete; {:.0}% of the bytes stayed inside PIDs",
            f.completed,
            f.clients,
            f.localization * 100.0
        ),
    );
    for cl in clients {
        cl.session.shutdown().await;
    }
    seeder.shutdown().await;
    plain.stop().await;
    alto.stop().await?;
    Ok(f)
}

/// The services of one run.
pub struct Services {
    /// The ALTO server.
    pub alto: alto_server::Running,
    /// The plain tracker (the baseline's, and the torrent's announce URL).
    pub plain: RunningTracker,
    /// The lab's torrent, announcing to `plain`.
    pub torrent: testdata::torrent::Torrent,
}

/// The ALTO server on `network_map` (with the loopback cost maps), the plain tracker, both on
/// `ip`, and the lab's torrent announcing to the plain tracker. Private (BEP 27): librqbit's
/// peer exchange, always on for public torrents, would hand every client every address and
/// hide what peer discovery does.
pub async fn services(
    c: &LabConfig,
    dir: &Path,
    network_map: &str,
    ip: std::net::IpAddr,
    data: &[u8],
) -> anyhow::Result<Services> {
    let cfg_dir = dir.join("alto");
    std::fs::create_dir_all(&cfg_dir)?;
    std::fs::write(cfg_dir.join("network-map.json"), network_map)?;
    for f in ["routingcost.json", "hopcount.json"] {
        std::fs::copy(testdata::loopback::dir().join(f), cfg_dir.join(f))?;
    }
    let config = format!(
        "{}\n[pid-heads]\npolicy = \"{}\"\n",
        testdata::loopback::CONFIG,
        c.policy
    );
    std::fs::write(cfg_dir.join("alto.toml"), config)?;
    let alto = alto_server::Running::start(
        alto_server::Source::File(cfg_dir.join("alto.toml")),
        std::net::SocketAddr::new(ip, 0),
    )
    .await?;
    let tracker = Tracker::new(TrackerConfig {
        interval: 60,
        min_interval: 5,
        ..TrackerConfig::default()
    });
    let plain =
        RunningTracker::start(tracker, std::net::SocketAddr::new(ip, 0), None, Mode::Plain).await?;
    let torrent = torrent(data, &plain.announce_url());
    Ok(Services {
        alto,
        plain,
        torrent,
    })
}

/// The lab's torrent of `data` announcing to `announce`; the info hash does not depend on
/// the announce URL.
pub fn torrent(data: &[u8], announce: &str) -> testdata::torrent::Torrent {
    testdata::torrent::single_file_private("payload.bin", data, 1 << 18, announce)
}
