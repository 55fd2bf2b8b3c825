//! The swarm lab: real librqbit clients with the plugin, spread over the PIDs of the
//! embedded loopback topology, move a real file from one seeder; then the identical swarm
//! runs as the baseline, announcing to the tracker shim in plain mode (random peers); the
//! figures of both are measured the same way.
//!
//! Bytes are attributed on the side that opened each connection (on loopback the accepting
//! side only sees 127.0.0.1): every client reports, for the connections it opened, what it
//! received and sent, by the PID of the address it connected to; summed over the swarm each
//! byte counts once. The ALTO server's requests are split into arrivals (a directory read and
//! a join per client) and the heads' steady load, which follows the number of PIDs.

use alto_model::NetworkMap;
use alto_plugin::{AltoSession, Config};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// What to run.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// PIDs with clients (at most 4 on the loopback topology).
    pub pids: usize,
    /// Clients per PID.
    pub clients_per_pid: usize,
    /// File size, bytes.
    pub file_bytes: usize,
    /// Seed of the file's content.
    pub seed: u64,
    /// Upload limit per client, bytes per second (0: none).
    pub upload_bps: u32,
    /// Election policy: `first` or `scored`.
    pub policy: String,
    /// Seconds a client may take before it is reported as failed.
    pub timeout: Duration,
    /// Folder for the data and the logs (a temporary one when `None`).
    pub dir: Option<PathBuf>,
    /// Time between two clients' arrivals (they join round-robin over the PIDs), as in a
    /// real swarm where nobody starts at the same instant.
    pub arrival_gap: Duration,
    /// Peers of other PIDs a gateway is given per announce: a head, its parent in the
    /// heads' tree and peers of the parent's PID up to this many; a member, when its head is
    /// not in the swarm, this many (docs/plugin.md).
    pub foreign_peers: usize,
    /// When the head is not in the swarm: with this many peers in its own PID, an ALTO
    /// client is given none from other PIDs.
    pub local_enough: usize,
    /// Print progress to stderr.
    pub progress: bool,
    /// `--netns` only: aria2 clients per PID, ordinary members besides the librqbit ones.
    pub aria2_per_pid: usize,
    /// `--netns` only: transmission clients per PID, likewise.
    pub transmission_per_pid: usize,
}

impl LabConfig {
    /// The third-party clients per PID, by kind.
    pub fn third_party(&self) -> [(crate::third_party::Kind, usize); 2] {
        use crate::third_party::Kind;
        [
            (Kind::Aria2, self.aria2_per_pid),
            (Kind::Transmission, self.transmission_per_pid),
        ]
    }
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            pids: 4,
            clients_per_pid: 6,
            file_bytes: 16 << 20,
            seed: 7285,
            upload_bps: 4 << 20,
            policy: "first".into(),
            timeout: Duration::from_secs(300),
            dir: None,
            arrival_gap: Duration::from_millis(1000),
            foreign_peers: 4,
            local_enough: 1,
            progress: true,
            aria2_per_pid: 0,
            transmission_per_pid: 0,
        }
    }
}

/// The figures of one run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunFigures {
    /// Clients (the seeder not counted).
    pub clients: usize,
    /// Of those, third-party clients (aria2, transmission).
    pub third_party: usize,
    /// Clients that completed with identical data.
    pub completed: usize,
    /// Clients that failed, with the reason.
    pub failed: Vec<String>,
    /// Bytes from PID to PID: `matrix[from][to]`.
    pub matrix: BTreeMap<String, BTreeMap<String, u64>>,
    /// Bytes that stayed inside a PID.
    pub inside_bytes: u64,
    /// Bytes that crossed PIDs.
    pub cross_pid_bytes: u64,
    /// `inside / (inside + cross)`.
    pub localization: f64,
    /// Completion time of each client, seconds, sorted.
    pub completion_s: Vec<f64>,
    /// Completion time by client address, in arrival order.
    pub completion_by_client: Vec<(String, f64)>,
    /// Requests the ALTO server handled.
    pub alto_server_requests: u64,
    /// Of those, the directory reads and joins of arriving clients (two per client); the
    /// rest is the heads' steady load (lease renewals, map revalidation).
    pub alto_server_arrival_requests: u64,
    /// Seconds from the first client's arrival to the end of the run.
    pub run_s: f64,
    /// Requests the heads (or the plain tracker) handled.
    pub tracker_requests: u64,
    /// Heads elected during the run.
    pub elections: u64,
    /// Every connection between two PIDs that moved bytes.
    pub cross_connections: Vec<CrossConnection>,
}

/// A connection between two PIDs, as its opener reported it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CrossConnection {
    /// The client that opened it.
    pub from: String,
    /// The peer it connected to.
    pub to: String,
    /// Bytes `from` received.
    pub got: u64,
    /// Bytes `from` sent.
    pub sent: u64,
}

impl RunFigures {
    /// Counts a connection the client at `me` opened to `peer`: `got` bytes received,
    /// `sent` bytes sent, by the PIDs of both ends in `net`.
    pub fn add_connection(
        &mut self,
        net: &NetworkMap,
        me: std::net::IpAddr,
        peer: std::net::SocketAddr,
        got: u64,
        sent: u64,
    ) {
        let pid = |ip| {
            net.pid_of(ip)
                .map_or("unknown".to_owned(), |i| net.pid_name(i).to_owned())
        };
        let (mine, other) = (pid(me), pid(peer.ip()));
        if mine != other && got + sent > 0 {
            self.cross_connections.push(CrossConnection {
                from: me.to_string(),
                to: peer.to_string(),
                got,
                sent,
            });
        }
        *self
            .matrix
            .entry(other.clone())
            .or_default()
            .entry(mine.clone())
            .or_default() += got;
        *self
            .matrix
            .entry(mine)
            .or_default()
            .entry(other)
            .or_default() += sent;
    }

    /// Derives the totals from the matrix and sorts the completion times.
    pub fn finish(&mut self) {
        let (mut inside, mut cross) = (0, 0);
        for (from, row) in &self.matrix {
            for (to, b) in row {
                if from == to {
                    inside += b;
                } else {
                    cross += b;
                }
            }
        }
        self.inside_bytes = inside;
        self.cross_pid_bytes = cross;
        self.localization = inside as f64 / (inside + cross).max(1) as f64;
        self.completion_s.sort_by(f64::total_cmp);
    }

    /// The ALTO server's requests other than arrivals, per second of the run.
    pub fn steady_requests_per_s(&self) -> f64 {
        (self.alto_server_requests - self.alto_server_arrival_requests) as f64
            / self.run_s.max(1e-3)
    }

    /// A percentile of the completion times.
    pub fn completion(&self, p: f64) -> f64 {
        if self.completion_s.is_empty() {
            return f64::NAN;
        }
        let i = ((self.completion_s.len() - 1) as f64 * p).round() as usize;
        self.completion_s[i]
    }
}

/// Both runs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LabReport {
    /// The ALTO run (virtual tracker).
    pub alto: RunFigures,
    /// The baseline (plain tracker, random peers).
    pub baseline: RunFigures,
    /// One copy of the file into every PID that starts without one.
    pub lower_bound_bytes: u64,
    /// PIDs, in order.
    pub pids: Vec<String>,
    /// File size.
    pub file_bytes: u64,
}

impl LabReport {
    /// The report of both runs of `c`.
    pub fn new(c: &LabConfig, alto: RunFigures, baseline: RunFigures) -> Self {
        LabReport {
            alto,
            baseline,
            lower_bound_bytes: (c.pids as u64 - 1) * c.file_bytes as u64,
            pids: testdata::loopback::PIDS[..c.pids]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            file_bytes: c.file_bytes as u64,
        }
    }
}

/// Prints a progress line when the run asks for progress.
pub fn note(c: &LabConfig, msg: impl AsRef<str>) {
    if c.progress {
        eprintln!("[lab] {}", msg.as_ref());
    }
}

/// Requests the ALTO server handled by its counters (`/metrics` text): all, and those of
/// arriving clients (directory reads and joins).
pub fn alto_requests(metrics: &str) -> (u64, u64) {
    let arrivals = ["directory", "pid-head-join"]
        .iter()
        .map(|r| metric_sum(metrics, &format!("alto_requests_total{{resource=\"{r}\"}}")))
        .sum();
    (metric_sum(metrics, "alto_requests_total{"), arrivals)
}

/// Requests the PID Heads now listed by the ALTO server at `directory_url` have answered
/// (announces, scrapes, failures), from their `/metrics`.
pub async fn head_requests(directory_url: &str) -> u64 {
    let Ok(client) = alto_client::AltoClient::new(directory_url) else {
        return 0;
    };
    let Ok(heads) = client.head_directory().await else {
        return 0;
    };
    let mut sum = 0;
    for (tracker, _) in heads.heads().values() {
        let Some(authority) = tracker
            .strip_prefix("http://")
            .and_then(|r| r.split('/').next())
        else {
            continue;
        };
        if let Ok(text) = http_get(authority, "/metrics").await {
            sum += [
                "tracker_announces_total",
                "tracker_scrapes_total",
                "tracker_failures_total",
            ]
            .iter()
            .map(|m| metric_sum(&text, &format!("{m} ")))
            .sum::<u64>();
        }
    }
    sum
}

/// A plain HTTP/1.0 GET, for reading counters.
async fn http_get(authority: &str, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(authority).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
            .await?;
        let mut text = String::new();
        s.read_to_string(&mut text).await?;
        Ok(text)
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// The sum of every metric line starting with `prefix`.
pub fn metric_sum(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
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
    let (alto, plain, torrent) = services(
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
        cfg.foreign_peers = c.foreign_peers;
        cfg.local_enough = c.local_enough;
        cfg
    };
    // One seeder, in the first PID.
    let seed_dir = dir.join("seeder");
    std::fs::create_dir_all(&seed_dir)?;
    std::fs::write(seed_dir.join("payload.bin"), data)?;
    let seeder = AltoSession::start(client("127.1.0.250".into(), seed_dir.clone())).await?;
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

    let mut clients = Vec::new();
    let first_arrival = Instant::now();
    for k in 0..c.clients_per_pid {
        for p in 0..c.pids {
            if !clients.is_empty() {
                tokio::time::sleep(c.arrival_gap).await;
            }
            let ip = format!("127.{}.0.{}", p + 1, k + 10);
            let folder = dir.join(&ip);
            let s = AltoSession::start(client(ip.clone(), folder.clone())).await?;
            let added = Instant::now();
            let t = s.add(&torrent.metainfo).await?;
            // Completion is timed as it happens, not when the lab looks.
            let watched = t.clone();
            let timer = tokio::spawn(async move {
                watched
                    .wait_completed()
                    .await
                    .map(|()| added.elapsed().as_secs_f64())
                    .ok()
            });
            clients.push((ip, folder, s, t, Some(timer), None::<f64>));
        }
    }
    let started = Instant::now();
    let mut last_note = Instant::now();
    loop {
        let mut pending = 0;
        for (_, _, _, _, timer, done) in clients.iter_mut() {
            match timer.take() {
                Some(t) if t.is_finished() => *done = t.await.ok().flatten(),
                Some(t) => {
                    *timer = Some(t);
                    pending += 1;
                }
                None => {}
            }
        }
        if pending == 0 || started.elapsed() > c.timeout {
            break;
        }
        if last_note.elapsed() > Duration::from_secs(2) {
            let have: u64 = clients
                .iter()
                .map(|(_, _, s, t, _, _)| s.report(t).have_bytes)
                .sum();
            let all = (clients.len() * data.len()) as f64;
            note(
                c,
                format!(
                    "{name}: {:.0}% of the data in place, {pending} clients still downloading",
                    100.0 * have as f64 / all
                ),
            );
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut f = RunFigures {
        clients: clients.len(),
        ..RunFigures::default()
    };
    let mut all_sessions: Vec<(&String, &AltoSession, &alto_plugin::Torrent)> = clients
        .iter()
        .map(|(ip, _, s, t, _, _)| (ip, s, t))
        .collect();
    let seeder_ip = "127.1.0.250".to_owned();
    all_sessions.push((&seeder_ip, &seeder, &st));
    for (ip, s, t) in &all_sessions {
        for peer in s.peer_bytes(t).iter().filter(|p| p.outgoing) {
            f.add_connection(&net, ip.parse()?, peer.addr, peer.fetched, peer.uploaded);
        }
    }
    for (ip, folder, s, t, _, done) in &clients {
        let ok =
            done.is_some() && std::fs::read(folder.join("payload.bin")).is_ok_and(|b| b == data);
        if ok {
            f.completed += 1;
            f.completion_s.push(done.expect("checked"));
            f.completion_by_client
                .push((ip.clone(), done.expect("checked")));
        } else {
            f.failed.push(format!("{ip}: {:?}", s.report(t)));
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
            .filter_map(|(_, _, s, _, _, _)| s.shim())
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
    for (_, _, s, _, _, _) in clients {
        s.shutdown().await;
    }
    seeder.shutdown().await;
    plain.stop().await;
    alto.stop().await?;
    Ok(f)
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
) -> anyhow::Result<(
    alto_server::Running,
    RunningTracker,
    testdata::torrent::Torrent,
)> {
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
    Ok((alto, plain, torrent))
}

/// The lab's torrent of `data` announcing to `announce`; the info hash does not depend on
/// the announce URL.
pub fn torrent(data: &[u8], announce: &str) -> testdata::torrent::Torrent {
    testdata::torrent::single_file_private("payload.bin", data, 1 << 18, announce)
}

/// The ALTO server's counters, as `/metrics` shows them.
pub async fn alto_metrics(alto: &alto_server::Running) -> String {
    let snap = alto.app.snapshot();
    let mut text = alto.app.metrics().render(snap.base());
    alto.app.heads().render(&mut text);
    text
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

/// The side-by-side table.
pub fn table(r: &LabReport) -> String {
    let (a, b) = (&r.alto, &r.baseline);
    let row = |name: &str, x: String, y: String| format!("{name:<34} {x:>24} {y:>24}\n");
    let mut s = String::new();
    s += &row(
        "",
        "ALTO (virtual tracker)".into(),
        "baseline (random peers)".into(),
    );
    s += &"-".repeat(84);
    s.push('\n');
    s += &row(
        "clients completed",
        format!("{}/{}", a.completed, a.clients),
        format!("{}/{}", b.completed, b.clients),
    );
    if a.third_party > 0 {
        s += &row(
            "  of them aria2/transmission",
            a.third_party.to_string(),
            b.third_party.to_string(),
        );
    }
    s += &row(
        "bytes inside PIDs (localization)",
        format!("{:.1}%", a.localization * 100.0),
        format!("{:.1}%", b.localization * 100.0),
    );
    let bound = r.lower_bound_bytes.max(1) as f64;
    s += &row(
        "cross-PID bytes",
        format!(
            "{} ({:.2}x bound)",
            mib(a.cross_pid_bytes),
            a.cross_pid_bytes as f64 / bound
        ),
        format!(
            "{} ({:.2}x bound)",
            mib(b.cross_pid_bytes),
            b.cross_pid_bytes as f64 / bound
        ),
    );
    s += &row(
        "lower bound (a copy per PID)",
        mib(r.lower_bound_bytes),
        mib(r.lower_bound_bytes),
    );
    s += &row(
        "completion p50 / p95 / max (s)",
        format!(
            "{:.1} / {:.1} / {:.1}",
            a.completion(0.5),
            a.completion(0.95),
            a.completion(1.0)
        ),
        format!(
            "{:.1} / {:.1} / {:.1}",
            b.completion(0.5),
            b.completion(0.95),
            b.completion(1.0)
        ),
    );
    s += &row(
        "ALTO server requests",
        a.alto_server_requests.to_string(),
        b.alto_server_requests.to_string(),
    );
    s += &row(
        "  of arriving clients (dir., join)",
        a.alto_server_arrival_requests.to_string(),
        "-".into(),
    );
    s += &row(
        "  of heads, per second of the run",
        format!("{:.1}", a.steady_requests_per_s()),
        "-".into(),
    );
    s += &row(
        "head (tracker) requests",
        a.tracker_requests.to_string(),
        b.tracker_requests.to_string(),
    );
    s += &row("heads elected", a.elections.to_string(), "-".into());
    for (title, f) in [("ALTO run", a), ("baseline", b)] {
        s += &format!("\n{title}: MiB from PID (row) to PID (column)\n{:>10}", "");
        for p in &r.pids {
            s += &format!("{p:>10}");
        }
        s.push('\n');
        for from in &r.pids {
            s += &format!("{from:>10}");
            for to in &r.pids {
                let v = f
                    .matrix
                    .get(from)
                    .and_then(|m| m.get(to))
                    .copied()
                    .unwrap_or(0);
                s += &format!("{:>10.1}", v as f64 / (1 << 20) as f64);
            }
            s.push('\n');
        }
    }
    s
}

/// The figures under the names the lab promises (`--json`).
pub fn json(r: &LabReport) -> serde_json::Value {
    serde_json::json!({
        "localization": r.alto.localization,
        "baseline_localization": r.baseline.localization,
        "cross_pid_bytes": r.alto.cross_pid_bytes,
        "baseline_cross_pid_bytes": r.baseline.cross_pid_bytes,
        "lower_bound_bytes": r.lower_bound_bytes,
        "completion_p50_s": r.alto.completion(0.5),
        "baseline_completion_p50_s": r.baseline.completion(0.5),
        "alto_server_requests": r.alto.alto_server_requests,
        "alto_server_arrival_requests": r.alto.alto_server_arrival_requests,
        "alto_server_steady_requests_per_s": r.alto.steady_requests_per_s(),
        "head_requests": r.alto.tracker_requests,
        "completed": r.alto.completed,
        "clients": r.alto.clients,
        "baseline_completed": r.baseline.completed,
        "file_bytes": r.file_bytes,
        "alto": r.alto,
        "baseline": r.baseline,
    })
}

/// PID-to-PID traffic of both runs as two heat maps side by side.
pub fn svg(r: &LabReport) -> String {
    let n = r.pids.len();
    let cell = 64.0;
    let margin = 80.0;
    let width = 2.0 * (margin + n as f64 * cell) + 60.0;
    let height = margin + n as f64 * cell + 70.0;
    let max = [&r.alto, &r.baseline]
        .iter()
        .flat_map(|f| f.matrix.values().flat_map(|m| m.values()))
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    s += r#"<rect width="100%" height="100%" fill="white"/>"#;
    for (k, (title, f)) in [
        ("ALTO (virtual tracker)", &r.alto),
        ("baseline (random peers)", &r.baseline),
    ]
    .iter()
    .enumerate()
    {
        let x0 = 20.0 + k as f64 * (margin + n as f64 * cell + 20.0) + margin - 20.0;
        let y0 = margin;
        s += &format!(
            r#"<text x="{}" y="24" font-size="15" font-weight="bold">{title}: {:.0}% of bytes inside PIDs</text>"#,
            x0 - margin + 20.0,
            f.localization * 100.0
        );
        s += &format!(
            r#"<text x="{}" y="46" fill="dimgray">MiB sent from PID (row) to PID (column)</text>"#,
            x0 - margin + 20.0
        );
        for (i, from) in r.pids.iter().enumerate() {
            s += &format!(
                r#"<text x="{}" y="{}" text-anchor="end">{from}</text>"#,
                x0 - 6.0,
                y0 + i as f64 * cell + cell / 2.0 + 4.0
            );
            s += &format!(
                r#"<text x="{}" y="{}" text-anchor="middle">{from}</text>"#,
                x0 + i as f64 * cell + cell / 2.0,
                y0 - 8.0
            );
            for (j, to) in r.pids.iter().enumerate() {
                let v = f
                    .matrix
                    .get(from)
                    .and_then(|m| m.get(to))
                    .copied()
                    .unwrap_or(0) as f64;
                let t = (v / max).sqrt();
                let (red, green, blue) = if i == j {
                    (255.0 - 200.0 * t, 255.0 - 80.0 * t, 255.0 - 200.0 * t)
                } else {
                    (255.0 - 30.0 * t, 255.0 - 200.0 * t, 255.0 - 200.0 * t)
                };
                s += &format!(
                    r#"<rect x="{}" y="{}" width="{cell}" height="{cell}" fill="rgb({:.0},{:.0},{:.0})" stroke="silver"/><text x="{}" y="{}" text-anchor="middle">{:.1}</text>"#,
                    x0 + j as f64 * cell,
                    y0 + i as f64 * cell,
                    red,
                    green,
                    blue,
                    x0 + j as f64 * cell + cell / 2.0,
                    y0 + i as f64 * cell + cell / 2.0 + 4.0,
                    v / (1 << 20) as f64
                );
            }
        }
    }
    s += &format!(
        r#"<text x="20" y="{}" fill="dimgray">green: bytes that stayed inside a PID; red: bytes that crossed PIDs. Lower bound of cross-PID bytes: {}.</text>"#,
        height - 16.0,
        mib(r.lower_bound_bytes)
    );
    s += "</svg>\n";
    s
}
