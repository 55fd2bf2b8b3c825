//! The loopback topology the ALTO targets answer from (testdata/loopback).

use alto_model::{CostMap, InformationBase, NetworkMap};

pub const NETWORK_MAP: &str = include_str!("../../testdata/loopback/network-map.json");
pub const ROUTINGCOST: &str = include_str!("../../testdata/loopback/routingcost.json");

pub fn base() -> InformationBase {
    let net = NetworkMap::from_json("loopback-network-map", NETWORK_MAP).expect("map");
    let cm = CostMap::from_json("routingcost", ROUTINGCOST, &net).expect("costs");
    InformationBase::new(net, vec![cm]).expect("base")
}
