//! The network-map and cost-map loaders (RFC 7285 §11.2.1.6, §11.2.3.6; the checks of
//! §11.2.2): the first line of the input names nothing, the rest is a network map; the same
//! text is also read as a cost map over the loopback network map.
#![no_main]

use alto_model::{CostMap, NetworkMap};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(net) = NetworkMap::from_json("fuzz", text) {
        // A map that loads answers lookups for every address family.
        let _ = net.pid_of("127.1.0.1".parse().expect("v4"));
        let _ = net.pid_of("2001:db8::1".parse().expect("v6"));
    }
    static NET: OnceLock<NetworkMap> = OnceLock::new();
    let net = NET.get_or_init(|| {
        NetworkMap::from_json("loopback-network-map", common::NETWORK_MAP).expect("map")
    });
    let _ = CostMap::from_json("routingcost", text, net);
});
