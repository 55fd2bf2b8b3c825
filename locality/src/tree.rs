//! The PID Heads' distribution tree for a swarm (no I/O): which peer of another PID a head
//! connects to, so that the file crosses every PID's link about once.
//!
//! Only the head of a PID fetches from other PIDs (its members fetch from it and from each
//! other), and each head connects to one other head: the head, in the swarm, of the
//! cheapest PID (by the head's own `routingcost` row, RFC 7285 §6.1.1) among those whose
//! head was elected before it (`head-since` in the head directory, then PID name); of equally
//! cheap ones, the last elected, so that equal costs make a chain rather than a star around
//! the oldest head. Every head but the first thus has one older parent, so the connections
//! form a tree; BitTorrent moves data both ways over a connection, so the tree carries the
//! file wherever it starts. Peers of a PID whose head is not in the swarm count as elected
//! first: they are that PID's gateways.
//!
//! Every head computes its parent from the same head directory, so the heads agree without
//! talking to each other. The tree suits clients that download pieces in order (librqbit),
//! where two heads fetching from the same parent would fetch the same pieces at the same time.

use alto_model::{NetworkMap, PidIdx};
use std::cmp::Reverse;
use std::net::{IpAddr, SocketAddr};

/// A PID's head as the head directory lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectedHead {
    /// Its PID.
    pub pid: PidIdx,
    /// Its address.
    pub addr: IpAddr,
    /// Since when it has been head (RFC 3339 UTC: sorts in time order), if the directory
    /// says.
    pub since: Option<String>,
}

/// The parent of the head of PID `own` among `foreign` (peers of other PIDs in the swarm),
/// given the network map, the head's `cost` row and every PID's head in `heads`; `None` for
/// the first head of the swarm.
pub fn parent(
    net: &NetworkMap,
    own: PidIdx,
    cost: impl Fn(PidIdx) -> Option<f64>,
    heads: &[ElectedHead],
    foreign: &[SocketAddr],
) -> Option<SocketAddr> {
    // Heads the directory gives no election time are left out of the tree.
    let heads: Vec<&ElectedHead> = heads.iter().filter(|h| h.since.is_some()).collect();
    let order = |h: &ElectedHead| (h.since.clone(), net.pid_name(h.pid).to_owned());
    let mine = heads.iter().find(|h| h.pid == own).map(|h| order(h));
    let in_swarm: Vec<&ElectedHead> = heads
        .iter()
        .copied()
        .filter(|h| foreign.iter().any(|p| p.ip() == h.addr))
        .collect();
    type Rank = (f64, bool, Reverse<(Option<String>, String)>);
    let mut best: Option<(Rank, SocketAddr)> = None;
    for &p in foreign {
        let pid = net.pid_of(p.ip());
        let (headless, key) = match in_swarm.iter().find(|h| Some(h.pid) == pid) {
            Some(h) if h.addr == p.ip() && mine.as_ref().is_none_or(|m| order(h) < *m) => {
                (false, order(h))
            }
            Some(_) => continue, // a younger head, or a member of a PID whose head is here
            None => (true, Default::default()),
        };
        let cost = pid.and_then(&cost).unwrap_or(f64::INFINITY);
        let rank: Rank = (cost, headless, Reverse(key));
        let better = |b: &(Rank, SocketAddr)| {
            rank.0
                .total_cmp(&b.0 .0)
                .then(rank.1.cmp(&b.0 .1))
                .then(rank.2.cmp(&b.0 .2))
                .is_lt()
        };
        if best.as_ref().is_none_or(better) {
            best = Some((rank, p));
        }
    }
    best.map(|b| b.1)
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

    /// The parent of PID`k`'s head on the loopback topology (metros PID1-PID2 and PID3-PID4
    /// at 5, the long-haul link at 40).
    fn parent_of(k: u8, heads: &[ElectedHead], foreign: &[SocketAddr]) -> Option<SocketAddr> {
        let net = net();
        let pid = format!("PID{k}");
        let costs: serde_json::Value =
            serde_json::from_str(testdata::loopback::ROUTINGCOST).unwrap();
        let row = &costs["cost-map"][&pid];
        let cost = |p: PidIdx| row[net.pid_name(p)].as_f64();
        parent(&net, net.pid_index(&pid).unwrap(), cost, heads, foreign)
    }

    fn head(k: u8, since: &str) -> ElectedHead {
        ElectedHead {
            pid: net().pid_index(&format!("PID{k}")).unwrap(),
            addr: [127, k, 0, 10].into(),
            since: Some(format!("2026-11-26T13:00:{since}Z")),
        }
    }

    fn peer(k: u8, host: u8) -> SocketAddr {
        SocketAddr::from(([127, k, 0, host], 6881))
    }

    #[test]
    fn heads_elected_in_turn_form_a_chain_across_the_long_haul_link() {
        let heads = [head(1, "00"), head(2, "01"), head(3, "02"), head(4, "03")];
        let all = |me: u8| -> Vec<SocketAddr> {
            (1..=4)
                .filter(|&k| k != me)
                .flat_map(|k| [peer(k, 10), peer(k, 11)])
                .collect()
        };
        let parent_of = |k: u8| parent_of(k, &heads, &all(k));
        assert_eq!(parent_of(1), None, "the first head is the root");
        assert_eq!(parent_of(2), Some(peer(1, 10)), "the metro neighbour");
        assert_eq!(
            parent_of(3),
            Some(peer(2, 10)),
            "of two equally far older heads, the younger: a chain, not a star"
        );
        assert_eq!(parent_of(4), Some(peer(3, 10)), "the metro neighbour");
    }

    #[test]
    fn cheaper_older_heads_win_and_members_of_other_heads_are_never_chosen() {
        // PID3's head is older than PID4's; PID1's head is not in the swarm, so PID1's
        // peers are its gateways.
        let heads = [head(1, "00"), head(3, "01"), head(4, "02")];
        let foreign = [peer(1, 11), peer(3, 11), peer(3, 10)];
        assert_eq!(
            parent_of(4, &heads, &foreign),
            Some(peer(3, 10)),
            "PID3 is cheaper than PID1, and only its head is a gateway"
        );
        assert_eq!(
            parent_of(4, &heads, &[peer(1, 11), peer(3, 11)]),
            Some(peer(3, 11)),
            "with PID3's head out of the swarm, its members are PID3's gateways"
        );
        assert_eq!(
            parent_of(3, &heads, &[peer(4, 10)]),
            None,
            "a younger head is never a parent"
        );
    }
}
