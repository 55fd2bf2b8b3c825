//! The in-process lab: the services of a run (ALTO server, plain tracker, the torrent), then
//! the ALTO run and the baseline, each with one seeder in PID1 and clients arriving
//! round-robin over the PIDs, all librqbit sessions with the plugin in this process.

use super::junk::{Junk, JunkHead};
use super::metrics::{alto_metrics, alto_requests, metric_sum};
use super::{LabConfig, LabReport, RunFigures, Scenario};
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
    /// `None` once it left (churn, head-leaves).
    session: Option<AltoSession>,
    torrent: alto_plugin::Torrent,
    /// Seconds from its arrival to completion, once it completed.
    done: Option<f64>,
    /// Quits once it has half of the file (head-leaves).
    leaves_at_half: bool,
    /// It quit before completing.
    left: bool,
    /// Its connections and completion are in the figures.
    counted: bool,
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

/// Puts a client's connections and, unless it left, its completion into `f`.
fn count_client(
    f: &mut RunFigures,
    net: &NetworkMap,
    cl: &mut Client,
    data: &[u8],
) -> anyhow::Result<()> {
    if cl.counted {
        return Ok(());
    }
    cl.counted = true;
    let Some(session) = &cl.session else {
        return Ok(());
    };
    count_connections(f, net, &cl.ip, session, &cl.torrent)?;
    if cl.left {
        f.left += 1;
        return Ok(());
    }
    match cl.done {
        Some(seconds) if std::fs::read(cl.folder.join("payload.bin")).is_ok_and(|b| b == data) => {
            f.add_completion(cl.ip.clone(), seconds);
        }
        _ => f
            .failed
            .push(format!("{}: {:?}", cl.ip, session.report(&cl.torrent))),
    }
    Ok(())
}

/// How often a head-leaves run looks whether a leaver has half of the file.
const LEAVE_CHECK: Duration = Duration::from_millis(50);

/// A client of the head-leaves scenario quits without a goodbye: its traffic so far is
/// counted, and its session stops as if it crashed.
async fn quit_abruptly(
    f: &mut RunFigures,
    net: &NetworkMap,
    cl: &mut Client,
    data: &[u8],
) -> anyhow::Result<()> {
    cl.left = true;
    count_client(f, net, cl, data)?;
    if let Some(s) = cl.session.take() {
        s.crash().await;
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
    let scenario = c.scenario;
    std::fs::create_dir_all(dir)?;
    let net = NetworkMap::from_json(
        testdata::loopback::NETWORK_MAP_ID,
        testdata::loopback::NETWORK_MAP,
    )?;
    let Services {
        alto,
        plain,
        torrent,
        mut replicas,
        ..
    } = services(
        c,
        dir,
        testdata::loopback::NETWORK_MAP,
        "127.0.0.1".parse()?,
        data,
    )
    .await?;
    // junk-head: a hostile client joins every PID before anyone else.
    let mut junk_heads = Vec::new();
    if with_alto && scenario == Scenario::JunkHead {
        for p in 1..=c.pids {
            let junk = if p % 2 == 1 {
                Junk::NoPeers
            } else {
                Junk::Unreachable
            };
            let ip = format!("127.{p}.0.9").parse()?;
            junk_heads.push(JunkHead::start(&alto.directory_url(), ip, junk).await?);
        }
        note(
            c,
            format!("{name}: a hostile head elected in each of {} PIDs", c.pids),
        );
    }
    let (directories, share) = (replicas.directories().to_vec(), std::cell::Cell::new(0));
    let client = |ip: String,
                  folder: PathBuf,
                  upload_bps: u32,
                  download_bps: u32|
     -> anyhow::Result<Config> {
        let mut cfg = Config::new(ip.parse().expect("an address"), folder.clone());
        if c.tls {
            // Its tracker, which serves as head when elected, over HTTPS too.
            std::fs::create_dir_all(&folder)?;
            let issued = lab_ca()?.issue(&folder, "tracker", &ip);
            let tls = alto_web::tls::ServerTls::load(&issued.cert, &issued.key)?;
            cfg.tracker_tls = Some(std::sync::Arc::new(tls));
        }
        if with_alto {
            // Clients spread over the replicas: each starts with its own share.
            cfg.alto = super::replicas::spread(&directories, share.get());
            share.set(share.get() + 1);
        }
        cfg.min_interval = 2;
        cfg.upload_bps = (upload_bps > 0).then_some(upload_bps);
        cfg.download_bps = (download_bps > 0).then_some(download_bps);
        cfg.burst_ms = (c.burst_ms > 0).then_some(c.burst_ms);
        cfg.locality.foreign_peers = c.foreign_peers;
        cfg.local_enough = c.local_enough;
        Ok(cfg)
    };
    // One seeder, in the first PID.
    let seed_dir = dir.join("seeder");
    std::fs::create_dir_all(&seed_dir)?;
    std::fs::write(seed_dir.join("payload.bin"), data)?;
    let seeder_ip = "127.1.0.250";
    let seeder =
        AltoSession::start(client(seeder_ip.into(), seed_dir.clone(), c.upload_bps, 0)?).await?;
    let st = seeder.add(&torrent.metainfo).await?;
    st.wait_completed().await?;
    let before = alto_metrics(&alto).await;
    let total = c.pids * c.clients_per_pid;
    note(
        c,
        format!(
            "{name} ({}): seeder ready in PID1; starting {total} clients",
            scenario.name()
        ),
    );

    // Each client's completion is timed as it happens and sent here, not found by looking.
    let (completed_tx, mut completed) = tokio::sync::mpsc::unbounded_channel();
    let mut clients: Vec<Client> = Vec::new();
    let mut f = RunFigures::default();
    let first_arrival = Instant::now();
    let deadline = tokio::time::Instant::now() + c.timeout;
    let mut arrivals = tokio::time::interval(c.arrival_gap.max(Duration::from_millis(1)));
    let mut progress =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let mut leave_check = tokio::time::interval(LEAVE_CHECK);
    let mut pending = 0;
    loop {
        if clients.len() == total && pending == 0 {
            break;
        }
        tokio::select! {
            // Arrivals are spread on purpose: this is the swarm's shape, not a wait.
            _ = arrivals.tick(), if clients.len() < total => {
                let index = clients.len();
                if with_alto {
                    replicas.kill_at_half(c, name, index);
                }
                let (k, p) = (index / c.pids, index % c.pids);
                let ip = format!("127.{}.0.{}", p + 1, k + 10);
                let folder = dir.join(&ip);
                let upload = scenario.upload_bps(k, p, c.pids, c.upload_bps);
                let session = AltoSession::start(client(ip.clone(), folder.clone(), upload, c.download_bps)?).await?;
                let added = Instant::now();
                let t = session.add(&torrent.metainfo).await?;
                let (watched, tx) = (t.clone(), completed_tx.clone());
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
                    session: Some(session),
                    torrent: t,
                    done: None,
                    leaves_at_half: scenario == Scenario::HeadLeaves && k == 0,
                    left: false,
                    counted: false,
                });
                pending += 1;
            }
            Some((i, done)) = completed.recv() => {
                let cl = &mut clients[i];
                if cl.left || cl.done.is_some() {
                    continue;
                }
                pending -= 1;
                if cl.leaves_at_half {
                    // It passed half of the file between two looks: it quits now, at the
                    // end, so that the PID still loses its head.
                    quit_abruptly(&mut f, &net, cl, data).await?;
                    note(c, format!("{name}: {} quit abruptly as it completed", cl.ip));
                    continue;
                }
                cl.done = done;
                if scenario == Scenario::Churn {
                    // It leaves as soon as it completes.
                    count_client(&mut f, &net, cl, data)?;
                    if let Some(s) = cl.session.take() {
                        s.shutdown().await;
                    }
                }
            }
            _ = leave_check.tick(), if scenario == Scenario::HeadLeaves => {
                for cl in clients.iter_mut().filter(|cl| cl.leaves_at_half && !cl.left && cl.done.is_none()) {
                    let Some(session) = &cl.session else { continue };
                    if session.report(&cl.torrent).have_bytes * 2 >= data.len() as u64 {
                        pending -= 1;
                        quit_abruptly(&mut f, &net, cl, data).await?;
                        note(c, format!("{name}: {} quit abruptly at half of the file", cl.ip));
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => break,
            _ = progress.tick() => {
                let have: u64 = clients
                    .iter()
                    .filter_map(|cl| Some(cl.session.as_ref()?.report(&cl.torrent).have_bytes))
                    .sum();
                let all = (clients.len() * data.len()).max(1) as f64;
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
    drop(completed_tx);

    for cl in clients.iter_mut() {
        count_client(&mut f, &net, cl, data)?;
    }
    f.clients = clients.len() - f.left;
    count_connections(&mut f, &net, seeder_ip, &seeder, &st)?;
    f.finish();
    let after = alto_metrics(&alto).await;
    let ((all, arrivals), (all0, arrivals0)) = (alto_requests(&after), alto_requests(&before));
    f.alto_server_requests = all - all0;
    f.alto_server_arrival_requests = arrivals - arrivals0;
    f.run_s = first_arrival.elapsed().as_secs_f64();
    f.elections = metric_sum(&after, "alto_pidhead_elections_total");
    f.tracker_requests = plain.tracker.stats.requests()
        + clients
            .iter()
            .filter_map(|cl| cl.session.as_ref()?.shim())
            .map(|sh| sh.tracker.stats.requests())
            .sum::<u64>()
        + seeder.shim().map_or(0, |sh| sh.tracker.stats.requests());
    let shims: Vec<&tracker_shim::RunningTracker> = clients
        .iter()
        .filter_map(|cl| cl.session.as_ref()?.shim())
        .chain(seeder.shim())
        .collect();
    f.https_trackers = shims
        .iter()
        .filter(|sh| sh.announce_url().starts_with("https://"))
        .count();
    f.head_announces = shims
        .iter()
        .map(|sh| {
            sh.tracker
                .stats
                .announces
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    for cl in &clients {
        if let Some(s) = &cl.session {
            let r = s.report(&cl.torrent);
            f.outreach_trials += r.outreach_trials;
            f.outreach_left_peers += r.outreach_left_peers;
        }
    }
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
        if let Some(s) = cl.session {
            s.shutdown().await;
        }
    }
    drop(junk_heads);
    seeder.shutdown().await;
    plain.stop().await;
    alto.stop().await?;
    drop(replicas);
    Ok(f)
}

/// The services of one run.
pub struct Services {
    /// The ALTO server.
    pub alto: alto_server::Running,
    /// With `tls`: the CA certificate the clients verify the server against.
    pub ca: Option<std::path::PathBuf>,
    /// The plain tracker (the baseline's, and the torrent's announce URL).
    pub plain: RunningTracker,
    /// The lab's torrent, announcing to `plain`.
    pub torrent: testdata::torrent::Torrent,
    /// With `--replicas` or `--etcd`: the other replicas and the etcd cluster.
    pub replicas: super::Replicas,
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
    let etcd = match c.etcd {
        true => Some(test_support::etcd::Cluster::start(3)?),
        false => None,
    };
    let config = format!(
        "{}\n[pid-heads]\npolicy = \"{}\"\n{}",
        testdata::loopback::CONFIG,
        c.policy,
        etcd.as_ref()
            .map(|e| super::replicas::etcd_config(e, "lab/"))
            .unwrap_or_default()
    );
    std::fs::write(cfg_dir.join("alto.toml"), config)?;
    let source = alto_server::Source::File(cfg_dir.join("alto.toml"));
    // The other replicas (processes on the same address) serve the same certificate.
    let replica_tls = c.tls.then(|| super::ReplicaTls {
        dir: cfg_dir.clone(),
    });
    let (app, ca) = match &replica_tls {
        Some(replica) => {
            let ca = lab_ca()?;
            let issued = ca.issue(&cfg_dir, super::ReplicaTls::CERT, &ip.to_string());
            std::fs::copy(ca.cert(), replica.ca())?;
            let app = alto_server::App::with_tls(source, Some((issued.cert, issued.key)))?;
            (app, Some(ca.cert()))
        }
        None => (alto_server::App::new(source)?, None),
    };
    let alto = alto_server::Running::start_app(app, std::net::SocketAddr::new(ip, 0)).await?;
    let replicas = super::Replicas::start(
        alto.directory_url(),
        c.replicas,
        &cfg_dir.join("alto.toml"),
        ip,
        etcd,
        c.replica_program.as_deref(),
        replica_tls.as_ref(),
    )?;
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
        ca,
        plain,
        torrent,
        replicas,
    })
}

/// The lab's CA, one per process, in a folder of its own: the in-process clients of every
/// run verify against it (it is the process's default CA), `rqbit-alto` processes are given
/// it with `--alto-ca`.
struct LabCa {
    ca: test_support::tls::TestCa,
    _dir: tempfile::TempDir,
}

impl LabCa {
    fn cert(&self) -> std::path::PathBuf {
        self.ca.cert()
    }

    /// A certificate for `ip`, written into `dir` as `FILE.pem` and `FILE-key.pem`.
    fn issue(&self, dir: &Path, file: &str, ip: &str) -> test_support::tls::Issued {
        let issued = self.ca.issue(file, &[ip]);
        let (cert, key) = (
            dir.join(format!("{file}.pem")),
            dir.join(format!("{file}-key.pem")),
        );
        let moved = std::fs::rename(&issued.cert, &cert).and(std::fs::rename(&issued.key, &key));
        match moved {
            Ok(()) => test_support::tls::Issued { cert, key },
            Err(_) => issued,
        }
    }
}

fn lab_ca() -> anyhow::Result<&'static LabCa> {
    static CA: std::sync::OnceLock<LabCa> = std::sync::OnceLock::new();
    if let Some(ca) = CA.get() {
        return Ok(ca);
    }
    let dir = tempfile::tempdir()?;
    let ca = test_support::tls::TestCa::new("swarm-lab", dir.path());
    alto_web::tls::set_default_ca(&ca.cert())?;
    Ok(CA.get_or_init(|| LabCa { ca, _dir: dir }))
}

/// The lab's torrent of `data` announcing to `announce`; the info hash does not depend on
/// the announce URL.
pub fn torrent(data: &[u8], announce: &str) -> testdata::torrent::Torrent {
    testdata::torrent::single_file_private("payload.bin", data, 1 << 18, announce)
}
