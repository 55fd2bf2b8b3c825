//! The figures of a lab run, typed as they are written by `--json`: bytes from PID to PID,
//! the connections that crossed PIDs, each client's completion, the servers' request
//! counts. Both lab modes fill the same [`RunFigures`] from the plugin's [`PeerTraffic`].
//!
//! Bytes are attributed on the side that opened each connection (on loopback the accepting
//! side only sees 127.0.0.1): every client reports, for the connections it opened, what it
//! received and sent; summed over the swarm each byte counts once.

use alto_model::NetworkMap;
use alto_plugin::PeerTraffic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Bytes sent from PID to PID, by PID name: `{from: {to: bytes}}` in JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrafficMatrix(BTreeMap<String, BTreeMap<String, u64>>);

impl TrafficMatrix {
    /// Counts `bytes` sent from PID `from` to PID `to` (a pair seen with 0 bytes is kept:
    /// it shows the PIDs met).
    pub fn add(&mut self, from: &str, to: &str, bytes: u64) {
        *self
            .0
            .entry(from.to_owned())
            .or_default()
            .entry(to.to_owned())
            .or_default() += bytes;
    }

    /// Bytes sent from PID `from` to PID `to`.
    pub fn bytes(&self, from: &str, to: &str) -> u64 {
        self.0
            .get(from)
            .and_then(|m| m.get(to))
            .copied()
            .unwrap_or(0)
    }

    /// Every pair seen: `(from, to, bytes)`.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.0.iter().flat_map(|(from, row)| {
            row.iter()
                .map(move |(to, b)| (from.as_str(), to.as_str(), *b))
        })
    }
}

/// A connection between two PIDs, as its opener reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// When one client completed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientCompletion {
    /// The client's address.
    pub client: String,
    /// Seconds from its arrival to its last byte.
    pub seconds: f64,
}

/// The figures of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    /// Clients (the seeder not counted).
    pub clients: usize,
    /// Of those, third-party clients (aria2, transmission).
    pub third_party: usize,
    /// Clients that completed with identical data.
    pub completed: usize,
    /// Clients that failed, with the reason.
    pub failed: Vec<String>,
    /// Clients that quit before completing, as their scenario says (not in `clients`).
    #[serde(default)]
    pub left: usize,
    /// Bytes from PID to PID.
    pub matrix: TrafficMatrix,
    /// Bytes that stayed inside a PID.
    pub inside_bytes: u64,
    /// Bytes that crossed PIDs.
    pub cross_pid_bytes: u64,
    /// `inside / (inside + cross)`.
    pub localization: f64,
    /// Completion time of each client, seconds, sorted.
    pub completion_s: Vec<f64>,
    /// Completion time by client, in arrival order.
    pub completion_by_client: Vec<ClientCompletion>,
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
    /// Clients' trackers (their heads when elected) that served HTTPS (`--tls`).
    #[serde(default)]
    pub https_trackers: usize,
    /// Announces the clients' trackers answered as heads, with peers.
    #[serde(default)]
    pub head_announces: u64,
    /// Trials of reaching out by the link rule that the clients' proxies began
    /// (`docs/locality.md`, rule 2), of the clients still running at the end.
    #[serde(default)]
    pub outreach_trials: u64,
    /// Peers of other PIDs those proxies left after trials that did not pay.
    #[serde(default)]
    pub outreach_left_peers: u64,
    /// Every connection between two PIDs that moved bytes.
    pub cross_connections: Vec<CrossConnection>,
}

impl RunFigures {
    /// Counts a connection the client at `me` opened, by the PIDs of both ends in `net`.
    pub fn add_connection(&mut self, net: &NetworkMap, me: IpAddr, conn: &PeerTraffic) {
        let pid = |ip| {
            net.pid_of(ip)
                .map_or("unknown".to_owned(), |i| net.pid_name(i).to_owned())
        };
        let (mine, other) = (pid(me), pid(conn.addr.ip()));
        if mine != other && conn.received + conn.sent > 0 {
            self.cross_connections.push(CrossConnection {
                from: me.to_string(),
                to: conn.addr.to_string(),
                got: conn.received,
                sent: conn.sent,
            });
        }
        self.matrix.add(&other, &mine, conn.received);
        self.matrix.add(&mine, &other, conn.sent);
    }

    /// Counts a client at `client` that completed after `seconds`.
    pub fn add_completion(&mut self, client: String, seconds: f64) {
        self.completed += 1;
        self.completion_s.push(seconds);
        self.completion_by_client
            .push(ClientCompletion { client, seconds });
    }

    /// Derives the totals from the matrix and sorts the completion times.
    pub fn finish(&mut self) {
        let (mut inside, mut cross) = (0, 0);
        for (from, to, b) in self.matrix.pairs() {
            if from == to {
                inside += b;
            } else {
                cross += b;
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

    /// A percentile of the completion times (NaN when nobody completed).
    pub fn completion(&self, p: f64) -> f64 {
        if self.completion_s.is_empty() {
            return f64::NAN;
        }
        let i = ((self.completion_s.len() - 1) as f64 * p).round() as usize;
        self.completion_s[i]
    }
}

/// Both runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    pub fn new(c: &super::LabConfig, alto: RunFigures, baseline: RunFigures) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> NetworkMap {
        NetworkMap::from_json(
            testdata::loopback::NETWORK_MAP_ID,
            testdata::loopback::NETWORK_MAP,
        )
        .unwrap()
    }

    fn conn(addr: &str, got: u64, sent: u64) -> PeerTraffic {
        PeerTraffic {
            addr: addr.parse().unwrap(),
            received: got,
            sent,
        }
    }

    #[test]
    fn a_connection_counts_both_directions_by_the_pids_of_its_ends() {
        let mut f = RunFigures::default();
        let me = "127.1.0.10".parse().unwrap();
        f.add_connection(&net(), me, &conn("127.2.0.10:6881", 300, 100));
        f.add_connection(&net(), me, &conn("127.1.0.11:6881", 50, 0));
        f.finish();
        assert_eq!(f.matrix.bytes("PID2", "PID1"), 300);
        assert_eq!(f.matrix.bytes("PID1", "PID2"), 100);
        assert_eq!(f.matrix.bytes("PID1", "PID1"), 50);
        assert_eq!((f.inside_bytes, f.cross_pid_bytes), (50, 400));
        assert_eq!(f.cross_connections.len(), 1);
        assert_eq!(f.cross_connections[0].to, "127.2.0.10:6881");
    }

    #[test]
    fn completions_are_kept_in_arrival_order_and_sorted_for_percentiles() {
        let mut f = RunFigures::default();
        for (ip, s) in [
            ("127.1.0.10", 3.0),
            ("127.2.0.10", 1.0),
            ("127.1.0.11", 2.0),
        ] {
            f.add_completion(ip.into(), s);
        }
        f.finish();
        assert_eq!(f.completed, 3);
        assert_eq!(f.completion_by_client[0].client, "127.1.0.10");
        assert_eq!(
            (f.completion(0.0), f.completion(0.5), f.completion(1.0)),
            (1.0, 2.0, 3.0)
        );
        assert!(RunFigures::default().completion(0.5).is_nan());
    }

    #[test]
    fn the_figures_read_back_as_written() {
        let mut f = RunFigures::default();
        f.add_connection(
            &net(),
            "127.1.0.10".parse().unwrap(),
            &conn("127.3.0.2:1", 7, 9),
        );
        f.add_completion("127.1.0.10".into(), 1.5);
        f.finish();
        let text = serde_json::to_string(&f).unwrap();
        assert!(
            text.contains(r#""matrix":{"PID1":{"PID3":9},"PID3":{"PID1":7}}"#),
            "{text}"
        );
        assert!(text.contains(r#""completion_by_client":[{"client":"127.1.0.10","seconds":1.5}]"#));
        assert_eq!(serde_json::from_str::<RunFigures>(&text).unwrap(), f);
    }
}
