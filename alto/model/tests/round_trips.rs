//! Randomized round trips (seeded, so every run checks the same cases): maps encoded by the
//! model decode to the same maps, and mangled request bodies never panic a decoder but get
//! an RFC 7285 error.

use alto_model::messages::*;
use alto_model::{CostMap, CostMode, NetworkMap};
use std::fmt::Write;
use testdata::production::SplitMix;

/// A random complete map: `default` holds both default routes; other PIDs get random,
/// possibly nested, IPv4 and IPv6 prefixes (identical prefixes are not repeated).
fn random_map(rng: &mut SplitMix) -> String {
    let pids = 1 + rng.below(12) as usize;
    let mut seen = std::collections::HashSet::new();
    let mut text = String::from(
        "{\"network-map\":{\"default\":{\"ipv4\":[\"0.0.0.0/0\"],\"ipv6\":[\"::/0\"]}",
    );
    for p in 0..pids {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for _ in 0..rng.below(20) {
            let len = 1 + rng.below(32) as u32;
            let addr = (rng.next_u64() as u32) & (u32::MAX << (32 - len));
            if seen.insert((4, addr as u128, len)) {
                v4.push(format!("\"{}/{len}\"", std::net::Ipv4Addr::from(addr)));
            }
        }
        for _ in 0..rng.below(5) {
            let len = 1 + rng.below(128) as u32;
            let addr = ((rng.next_u64() as u128) << 64 | rng.next_u64() as u128)
                & (u128::MAX << (128 - len));
            if seen.insert((6, addr, len)) {
                v6.push(format!("\"{}/{len}\"", std::net::Ipv6Addr::from(addr)));
            }
        }
        write!(
            text,
            ",\"p{p}\":{{\"ipv4\":[{}],\"ipv6\":[{}]}}",
            v4.join(","),
            v6.join(",")
        )
        .unwrap();
    }
    text.push_str("}}");
    text
}

#[test]
fn network_maps_survive_encode_and_decode() {
    let mut rng = SplitMix::new(11);
    for round in 0..200 {
        let text = random_map(&mut rng);
        let net = NetworkMap::from_json("m", &text)
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{text}"));
        let wire = serde_json::to_string(
            &alto_model::InformationBase::new(net.clone(), vec![unit_costs(&net)])
                .unwrap()
                .full_network_map(),
        )
        .unwrap();
        let decoded: InfoResourceNetworkMap = serde_json::from_str(&wire).unwrap();
        let back = NetworkMap::from_data("m", &decoded.network_map).unwrap();
        assert_eq!(back.vtag(), net.vtag(), "round {round}");
        assert_eq!(decoded.meta.vtag, net.vtag());
        for _ in 0..200 {
            let ip = if rng.below(2) == 0 {
                std::net::IpAddr::from(std::net::Ipv4Addr::from(rng.next_u64() as u32))
            } else {
                std::net::IpAddr::from(std::net::Ipv6Addr::from(
                    (rng.next_u64() as u128) << 64 | rng.next_u64() as u128,
                ))
            };
            assert_eq!(back.pid_of(ip), net.pid_of(ip), "round {round}, {ip}");
        }
        // Re-reading the model's own encoding as a map file gives the same map.
        let again = NetworkMap::from_json("m", &wire).unwrap();
        assert_eq!(again.vtag(), net.vtag());
    }
}

fn unit_costs(net: &NetworkMap) -> CostMap {
    let n = net.pids().len() as u32;
    let rows = (0..n)
        .map(|s| {
            (0..n)
                .map(|d| (d, if s == d { 1.0 } else { 2.5 + (s ^ d) as f64 }))
                .collect()
        })
        .collect();
    CostMap::from_rows("routingcost", net, rows)
}

#[test]
fn cost_maps_survive_encode_and_decode() {
    let mut rng = SplitMix::new(12);
    for _ in 0..50 {
        let net = NetworkMap::from_json("m", &random_map(&mut rng)).unwrap();
        let costs = unit_costs(&net);
        for mode in [CostMode::Numerical, CostMode::Ordinal] {
            let mut fast = Vec::new();
            costs.write_full_json(&net, mode, &mut fast);
            let decoded: InfoResourceCostMap = serde_json::from_slice(&fast).unwrap();
            assert_eq!(decoded, costs.full(&net, mode));
            // As a map file (numerical only), it loads to the same costs.
            if mode == CostMode::Numerical {
                let back =
                    CostMap::from_json("routingcost", std::str::from_utf8(&fast).unwrap(), &net)
                        .unwrap();
                assert_eq!(back.tag(), costs.tag());
            }
        }
    }
}

#[test]
fn mangled_requests_get_errors_not_panics() {
    let valid = [
        testdata::rfc7285::read("11.3.1.7-request.json"),
        testdata::rfc7285::read("11.3.2.7-request.json"),
        testdata::rfc7285::read("11.4.1.7-request.json"),
        testdata::rfc7285::read("11.5.1.7-request.json"),
    ];
    let mut rng = SplitMix::new(13);
    let mut errors = 0;
    for round in 0..20_000 {
        let mut body = valid[round % valid.len()].clone().into_bytes();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(body.len() as u64) as usize;
            match rng.below(3) {
                0 => body[i] = rng.next_u64() as u8,
                1 => {
                    body.remove(i);
                }
                _ => body.insert(i, b"{}[]\",:0-ae\\"[rng.below(12) as usize]),
            }
        }
        // Every decoder must answer, Ok or an error with a code; none may panic.
        let results = [
            ReqFilteredNetworkMap::parse(&body).err(),
            ReqFilteredCostMap::parse(&body).err(),
            ReqEndpointProp::parse(&body).err(),
            ReqEndpointCostMap::parse(&body).err(),
        ];
        errors += results.iter().flatten().count();
        for e in results.into_iter().flatten() {
            assert!(!e.to_json().is_empty());
        }
    }
    assert!(
        errors > 40_000,
        "only {errors} errors: the mangling is too gentle to test anything"
    );
}
