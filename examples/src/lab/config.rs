//! What a lab run is asked to do: the swarm's shape, the file, the limits and the knobs of
//! the peer selection; the same for the in-process lab and `--netns`.

use crate::third_party::Kind;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Download limit per client (not the seeder), bytes per second (0: none): an access
    /// link's downlink.
    pub download_bps: u32,
    /// Milliseconds of their rate the clients' limits let through at once (0: librqbit's
    /// second).
    pub burst_ms: u32,
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
    /// `--netns` only: qBittorrent clients per PID, likewise.
    pub qbittorrent_per_pid: usize,
    /// `--netns` only: rtorrent clients per PID, likewise.
    pub rtorrent_per_pid: usize,
    /// `--netns` only: ctorrent clients per PID, likewise.
    pub ctorrent_per_pid: usize,
    /// `--netns` only: libtorrent (python3-libtorrent) clients per PID, likewise.
    pub libtorrent_per_pid: usize,
    /// The hard case to run.
    pub scenario: Scenario,
    /// Run the ALTO path over HTTPS: the server with a certificate of a CA the lab makes,
    /// every client verifying against that CA.
    pub tls: bool,
    /// ALTO server replicas (1: one, in the lab's process); more than one share the
    /// election through etcd ([`LabConfig::etcd`]), the others running as processes of
    /// their own, and each client is given every replica, starting with its own share.
    pub replicas: usize,
    /// Keep the election in a 3-member etcd cluster the lab starts on loopback.
    pub etcd: bool,
    /// With replicas: SIGKILL one (not the lab's own) once half of the clients have arrived.
    pub kill_replica: bool,
    /// The program the extra replicas run as (`PROGRAM --alto-replica CONFIG`): `swarm-lab`;
    /// `None`, this process's own executable.
    pub replica_program: Option<PathBuf>,
}

impl LabConfig {
    /// The third-party clients per PID, by kind.
    pub fn third_party(&self) -> [(Kind, usize); 6] {
        [
            (Kind::Aria2, self.aria2_per_pid),
            (Kind::Transmission, self.transmission_per_pid),
            (Kind::Qbittorrent, self.qbittorrent_per_pid),
            (Kind::Rtorrent, self.rtorrent_per_pid),
            (Kind::Ctorrent, self.ctorrent_per_pid),
            (Kind::Libtorrent, self.libtorrent_per_pid),
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
            download_bps: 0,
            burst_ms: 0,
            policy: "first".into(),
            timeout: Duration::from_secs(300),
            dir: None,
            arrival_gap: Duration::from_millis(1000),
            foreign_peers: 4,
            local_enough: 1,
            progress: true,
            aria2_per_pid: 0,
            transmission_per_pid: 0,
            qbittorrent_per_pid: 0,
            rtorrent_per_pid: 0,
            ctorrent_per_pid: 0,
            libtorrent_per_pid: 0,
            scenario: Scenario::Homogeneous,
            tls: false,
            replicas: 1,
            etcd: false,
            kill_replica: false,
            replica_program: None,
        }
    }
}

/// A hard case the lab runs, ALTO against the same swarm on the plain tracker
/// (`docs/locality.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Every client alike: the default run.
    Homogeneous,
    /// The first client of every PID (its head under `first`) has 1/32 of the others'
    /// upload limit.
    SlowHead,
    /// A quarter of the clients upload at 256 KiB/s, the rest at the default: in every PID,
    /// at other places in the order of arrival (PID4's head among them).
    MixedUplinks,
    /// Every client of the last PID uploads at 256 KiB/s: a PID that cannot keep up with
    /// itself, its peers outside being 16 times faster.
    SlowPid,
    /// The first client of every PID with clients quits abruptly (no `stopped`, no
    /// resignation) once it has half of the file (or as it completes, where it got past half
    /// between two looks); it is not counted as a client.
    HeadLeaves,
    /// A hostile client joins every PID first and, elected, renews its lease and answers
    /// every announce with no peers (odd PIDs) or with unreachable addresses of its PID
    /// (even PIDs); it never shares data.
    JunkHead,
    /// Clients leave as soon as they complete while new ones keep arriving.
    Churn,
}

impl Scenario {
    /// Every scenario, in the order the lab runs them.
    pub const ALL: [Scenario; 7] = [
        Scenario::Homogeneous,
        Scenario::SlowHead,
        Scenario::MixedUplinks,
        Scenario::SlowPid,
        Scenario::HeadLeaves,
        Scenario::JunkHead,
        Scenario::Churn,
    ];

    /// Its name on the command line and in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Homogeneous => "homogeneous",
            Scenario::SlowHead => "slow-head",
            Scenario::MixedUplinks => "mixed-uplinks",
            Scenario::SlowPid => "slow-pid",
            Scenario::HeadLeaves => "head-leaves",
            Scenario::JunkHead => "junk-head",
            Scenario::Churn => "churn",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the `--netns` lab runs it (the others need the in-process lab's hooks).
    pub fn in_netns(self) -> bool {
        matches!(
            self,
            Scenario::Homogeneous | Scenario::SlowHead | Scenario::MixedUplinks | Scenario::SlowPid
        )
    }

    /// The upload limit of the client arriving `k`-th in the `pid`-th of `pids` PIDs (from
    /// 0), with `default` the lab's limit (0: none).
    pub fn upload_bps(self, k: usize, pid: usize, pids: usize, default: u32) -> u32 {
        let base = if default == 0 { 4 << 20 } else { default };
        match self {
            Scenario::SlowHead if k == 0 => base / 32,
            Scenario::MixedUplinks if (k + pid) % 4 == 3 => 256 << 10,
            Scenario::SlowPid if pid + 1 == pids => 256 << 10,
            _ => default,
        }
    }
}
