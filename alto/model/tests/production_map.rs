//! The generated production-sized deployment is a valid map for the model (complete,
//! non-overlapping, every cost PID known), of the promised size, and its lookups agree with a
//! brute-force longest-prefix match.

use alto_model::addr::AddressType;
use alto_model::{CostMap, NetworkMap};
use testdata::production::{generate, Params, SplitMix};

/// Longest match by scanning every prefix: the reference.
fn brute_force(net: &NetworkMap, addr: u32) -> Option<u32> {
    let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(addr));
    let mut best: Option<(u8, u32)> = None;
    for i in 0..net.pids().len() as u32 {
        for p in net.prefixes(i) {
            if p.contains(ip) && best.is_none_or(|(l, _)| p.len > l) {
                best = Some((p.len, i));
            }
        }
    }
    best.map(|b| b.1)
}

#[test]
fn a_small_generated_map_loads_and_matches_brute_force() {
    let g = generate(&Params::small());
    let net = NetworkMap::from_json("gen", &g.network_map).unwrap();
    let costs = CostMap::from_json("routingcost", &g.routingcost, &net).unwrap();
    assert_eq!(net.pids().len(), g.pids);
    assert_eq!(net.prefix_count(), g.prefixes);
    assert_eq!(costs.pair_count(), g.pairs);
    let mut rng = SplitMix::new(9);
    let probes = g
        .sample_v4
        .iter()
        .copied()
        .chain((0..2000).map(|_| rng.next_u64() as u32));
    for a in probes {
        assert_eq!(
            Some(net.pid_of_v4(a)),
            brute_force(&net, a),
            "address {a:#x}"
        );
    }
    // Prefix edges, where nested prefixes begin and end.
    for i in 0..net.pids().len() as u32 {
        for p in net.prefixes(i).iter().filter(|p| p.ty == AddressType::Ipv4) {
            for a in [
                p.addr as u32,
                p.last() as u32,
                (p.last() as u32).wrapping_add(1),
            ] {
                assert_eq!(
                    Some(net.pid_of_v4(a)),
                    brute_force(&net, a),
                    "{p} at {a:#x}"
                );
            }
        }
    }
}

#[test]
fn the_production_size_is_that_of_a_large_isp() {
    let g = generate(&Params::default());
    assert_eq!(g.pids, 1701);
    assert_eq!(g.prefixes, 250_002);
    assert!(
        (1_250_000..=1_350_000).contains(&g.pairs),
        "{} pairs",
        g.pairs
    );
    let net = NetworkMap::from_json("production", &g.network_map).unwrap();
    assert_eq!(net.prefix_count(), g.prefixes);
    let costs = CostMap::from_json("routingcost", &g.routingcost, &net).unwrap();
    assert_eq!(costs.pair_count(), g.pairs);
    // A re-generated map with the same seed is the same map.
    let again =
        NetworkMap::from_json("production", &generate(&Params::default()).network_map).unwrap();
    assert_eq!(again.vtag(), net.vtag());
}
