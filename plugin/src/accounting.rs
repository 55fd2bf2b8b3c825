//! Byte accounting: a torrent's progress with the bytes attributed to PIDs by the network map
//! (RFC 7285 §11.2.1), the figure that says whether traffic stayed local.
//!
//! On loopback every incoming connection appears to come from `127.0.0.1`, so bytes are
//! attributed on the side that opened the connection; summed over every client of a swarm,
//! each byte is counted exactly once (`docs/plugin.md`, byte accounting). No I/O here: the
//! session gathers progress, membership, map and per-peer bytes and [`report`] decides.

use crate::rqbit::{PeerBytes, Progress};
use alto_model::pidhead::Role;
use alto_model::NetworkMap;
use std::collections::BTreeMap;
use std::net::IpAddr;
use tracker_shim::membership::Membership;

/// The PID name for bytes over connections other clients opened.
pub const INCOMING: &str = "incoming";
/// The PID name for peers outside the network map (or before it is known).
pub const UNKNOWN: &str = "unknown";

/// The bytes over one peer connection, as a [`Report`] lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerTraffic {
    /// The peer's address: where it listens if this client opened the connection, the
    /// connection's source otherwise.
    pub addr: std::net::SocketAddr,
    /// Bytes received from the peer.
    pub received: u64,
    /// Bytes sent to the peer.
    pub sent: u64,
}

/// Where a torrent stands, with bytes attributed to PIDs.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// Torrent size.
    pub total_bytes: u64,
    /// Bytes downloaded and checked.
    pub have_bytes: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Complete.
    pub finished: bool,
    /// Download speed, MiB/s.
    pub down_mib_s: f64,
    /// Upload speed, MiB/s.
    pub up_mib_s: f64,
    /// This client's PID.
    pub pid: Option<String>,
    /// Its role.
    pub role: Option<String>,
    /// Times it became head or stopped being head.
    pub role_changes: u64,
    /// The PID's head tracker.
    pub head: Option<String>,
    /// Connected peers by PID.
    pub peers_by_pid: BTreeMap<String, usize>,
    /// Bytes received per PID, over connections this client opened (on loopback the
    /// accepting side cannot tell who connected); the rest under `incoming`.
    pub bytes_by_pid: BTreeMap<String, u64>,
    /// Bytes sent per PID, over connections this client opened.
    pub sent_by_pid: BTreeMap<String, u64>,
    /// Share of the attributed bytes received that came from the own PID.
    pub own_pid_share: f64,
    /// Per peer this client connected to: what it received and sent.
    pub peers_out: Vec<PeerTraffic>,
    /// The same per peer that connected to this client (its address as seen here).
    pub peers_in: Vec<PeerTraffic>,
    /// Seconds since the torrent was added.
    pub elapsed_s: f64,
    /// Trials of reaching out by the link rule begun, all torrents of the client
    /// (`docs/locality.md`, rule 2).
    pub outreach_trials: u64,
    /// Peers of other PIDs left after trials that did not pay, all torrents of the client.
    pub outreach_left_peers: u64,
    /// Peers the client's DHT node found (`--dht`), all torrents of the client.
    pub dht_peers: u64,
    /// Peer lists of the trackers and the DHT ranked by the head's endpoint cost service,
    /// all torrents of the client.
    pub head_rankings: u64,
    /// The session's error, if any.
    pub error: Option<String>,
}

/// The report of a torrent with progress `p` and per-peer bytes `peers`, for a client whose
/// membership is `m`, attributing addresses to PIDs by `net` (none yet: `unknown`).
pub fn report(
    p: Progress,
    m: &Membership,
    net: Option<&NetworkMap>,
    peers: Vec<PeerBytes>,
    elapsed_s: f64,
) -> Report {
    let pid_name = |ip: IpAddr| -> String {
        net.and_then(|n| n.pid_of(ip).map(|i| n.pid_name(i).to_owned()))
            .unwrap_or_else(|| UNKNOWN.into())
    };
    let mut r = Report {
        total_bytes: p.total_bytes,
        have_bytes: p.have_bytes,
        uploaded_bytes: p.uploaded_bytes,
        finished: p.finished,
        down_mib_s: p.down_mib_s,
        up_mib_s: p.up_mib_s,
        pid: m.pid.clone(),
        role: m.role.map(|r| {
            if r == Role::Head {
                "head".into()
            } else {
                "member".into()
            }
        }),
        role_changes: m.role_changes,
        head: m.head.as_ref().map(|h| h.tracker.clone()),
        elapsed_s,
        error: p.error,
        ..Report::default()
    };
    for peer in peers {
        let bytes = PeerTraffic {
            addr: peer.addr,
            received: peer.fetched,
            sent: peer.uploaded,
        };
        // Only the opening side knows where the other end listens (see the file's doc).
        let pid = if peer.outgoing {
            r.peers_out.push(bytes);
            pid_name(peer.addr.ip())
        } else {
            r.peers_in.push(bytes);
            INCOMING.into()
        };
        if peer.live {
            *r.peers_by_pid.entry(pid.clone()).or_default() += 1;
        }
        *r.bytes_by_pid.entry(pid.clone()).or_default() += peer.fetched;
        *r.sent_by_pid.entry(pid).or_default() += peer.uploaded;
    }
    let attributed: u64 = r
        .bytes_by_pid
        .iter()
        .filter(|(k, _)| *k != INCOMING && *k != UNKNOWN)
        .map(|(_, v)| v)
        .sum();
    let own = m
        .pid
        .as_ref()
        .and_then(|p| r.bytes_by_pid.get(p))
        .copied()
        .unwrap_or(0);
    r.own_pid_share = if attributed > 0 {
        own as f64 / attributed as f64
    } else {
        0.0
    };
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: &str, fetched: u64, outgoing: bool) -> PeerBytes {
        PeerBytes {
            addr: addr.parse().unwrap(),
            fetched,
            uploaded: 1,
            outgoing,
            live: true,
        }
    }

    fn loopback() -> NetworkMap {
        NetworkMap::from_json(
            testdata::loopback::NETWORK_MAP_ID,
            testdata::loopback::NETWORK_MAP,
        )
        .unwrap()
    }

    #[test]
    fn should_attribute_outgoing_bytes_by_pid_and_incoming_apart() {
        let m = Membership {
            pid: Some("PID1".into()),
            ..Membership::default()
        };
        let net = loopback();
        let peers = vec![
            peer("127.1.0.7:6881", 300, true),
            peer("127.3.0.7:6881", 100, true),
            peer("127.0.0.1:40000", 1000, false),
        ];
        let r = report(Progress::default(), &m, Some(&net), peers, 1.0);
        assert_eq!(r.bytes_by_pid.get("PID1"), Some(&300));
        assert_eq!(r.bytes_by_pid.get("PID3"), Some(&100));
        assert_eq!(r.bytes_by_pid.get(INCOMING), Some(&1000));
        assert_eq!(r.own_pid_share, 0.75, "incoming bytes are not attributed");
        assert_eq!((r.peers_out.len(), r.peers_in.len()), (2, 1));
        assert_eq!(r.peers_by_pid.values().sum::<usize>(), 3);
    }

    #[test]
    fn should_count_every_peer_as_unknown_before_the_map_arrives() {
        let r = report(
            Progress::default(),
            &Membership::default(),
            None,
            vec![peer("127.1.0.7:6881", 10, true)],
            0.0,
        );
        assert_eq!(r.bytes_by_pid.get(UNKNOWN), Some(&10));
        assert_eq!(r.own_pid_share, 0.0);
        assert_eq!((r.pid, r.role), (None, None));
    }
}
