//! Every ALTO request body the servers read (RFC 7285 §11.3.1.3, §11.3.2.3, §11.4.1.3,
//! §11.5.1.3; the PID Head join and lease of docs/pid-head.md), each one that parses then
//! answered from the loopback maps within the query bounds, as the server would.
#![no_main]

use alto_model::messages::{
    ReqEndpointCostMap, ReqEndpointProp, ReqFilteredCostMap, ReqFilteredNetworkMap,
};
use alto_model::pidhead::{JoinRequest, LeaseRequest};
use alto_model::{InformationBase, QueryLimits};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

fn base() -> &'static InformationBase {
    static BASE: OnceLock<InformationBase> = OnceLock::new();
    BASE.get_or_init(common::base)
}

fuzz_target!(|data: &[u8]| {
    let b = base();
    let limits = QueryLimits {
        max_pairs: 10_000,
        max_answer_bytes: 1 << 20,
    };
    let client = "127.1.0.9".parse().expect("address");
    if let Ok(r) = ReqEndpointCostMap::parse(data) {
        if let Ok(a) = b.endpoint_cost(&r, Some(client), &limits) {
            let _ = limits.encode("endpoints", &a);
        }
    }
    if let Ok(r) = ReqFilteredCostMap::parse(data) {
        if let Ok(a) = b.filtered_cost_map(&r, &limits) {
            let _ = limits.encode("pids", &a);
        }
    }
    if let Ok(r) = ReqFilteredNetworkMap::parse(data) {
        let _ = limits.encode("pids", &b.filtered_network_map(&r));
    }
    if let Ok(r) = ReqEndpointProp::parse(data) {
        let _ = b.endpoint_properties(&r);
    }
    let _ = JoinRequest::parse(data);
    let _ = LeaseRequest::parse(data);
});
