//! Replays the example messages of RFC 7285 (`testdata/rfc7285/`) both ways through the
//! model: every file decodes into the spec's types and encodes back to the same JSON, and
//! the example requests are answered from the example maps.

use alto_model::ird::InfoResourceDirectory;
use alto_model::messages::*;
use alto_model::{Cost, CostMap, CostMode, InformationBase, NetworkMap};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use testdata::rfc7285::read;

/// Decodes `name` as `T`, encodes it again, and checks the JSON values are equal.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let text = read(name);
    let original: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let decoded: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        serde_json::to_value(&decoded).unwrap(),
        original,
        "{name} changed in a round trip"
    );
    decoded
}

/// Decodes a request with the server's decoder, encodes it, and compares.
fn request_round_trip<T: Serialize>(
    name: &str,
    parse: fn(&[u8]) -> Result<T, alto_model::AltoError>,
) -> T {
    let text = read(name);
    let req = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let original: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        original,
        "{name} changed in a round trip"
    );
    req
}

/// The example deployment: the network map of §11.2.1.7 and the cost map of §11.2.3.7.
fn example_base() -> InformationBase {
    let net =
        NetworkMap::from_json("my-default-network-map", &read("11.2.1.7-response.json")).unwrap();
    let costs = CostMap::from_json("routingcost", &read("11.2.3.7-response.json"), &net).unwrap();
    InformationBase::new(net, vec![costs]).unwrap()
}

#[test]
fn section_5_3_figure_3_maps_its_endpoints() {
    let net = NetworkMap::from_json("fig3", &read("5.3-network-map.json")).unwrap();
    for (ip, pid) in [
        ("192.0.2.34", "PID-1"),
        ("198.51.100.100", "PID-1"),
        ("198.51.100.200", "PID-2"),
        ("203.0.113.1", "PID-3"),
    ] {
        assert_eq!(
            net.pid_name(net.pid_of(ip.parse().unwrap()).unwrap()),
            pid,
            "{ip}"
        );
    }
}

#[test]
fn section_9_2_3_directory_round_trips() {
    let ird: InfoResourceDirectory = round_trip("9.2.3-response.json");
    let ecs = &ird.resources["endpoint-cost"];
    assert_eq!(ird.cost_types_of(ecs).len(), 4);
    assert_eq!(
        ird.meta.default_alto_network_map.as_deref(),
        Some("my-default-network-map")
    );
}

#[test]
fn section_11_2_1_7_network_map_round_trips_and_compiles() {
    let resp: InfoResourceNetworkMap = round_trip("11.2.1.7-response.json");
    let net = NetworkMap::from_data("my-default-network-map", &resp.network_map).unwrap();
    assert_eq!(net.prefix_count(), 5);
    // The model's own encoding of the same map carries the same data.
    let base = example_base();
    assert_eq!(base.full_network_map().network_map, resp.network_map);
}

#[test]
fn section_11_2_2_overlap_is_refused_and_lpm_holds() {
    let net = NetworkMap::from_json("m", &read("11.2.2-network-map.json")).unwrap();
    assert_eq!(
        net.pid_name(net.pid_of("192.0.2.1".parse().unwrap()).unwrap()),
        "PID3"
    );
    let err = NetworkMap::from_json("m", &read("11.2.2-overlapping-network-map.json")).unwrap_err();
    assert!(
        err.message
            .contains("192.0.2.0/24 is in both PID `PID2` and PID `PID3`"),
        "{err}"
    );
    assert_eq!(err.line, 5, "{err}");
}

#[test]
fn section_11_2_3_7_cost_map_round_trips_and_is_reproduced() {
    let resp: InfoResourceCostMap = round_trip("11.2.3.7-response.json");
    let base = example_base();
    let ours = base.cost_maps()[0].full(base.network_map(), CostMode::Numerical);
    assert_eq!(ours.cost_map, resp.cost_map);
    assert_eq!(ours.meta.cost_type, resp.meta.cost_type);
}

#[test]
fn section_11_3_1_7_filtered_network_map() {
    let req = request_round_trip("11.3.1.7-request.json", ReqFilteredNetworkMap::parse);
    let resp: InfoResourceNetworkMap = round_trip("11.3.1.7-response.json");
    let ours = example_base().filtered_network_map(&req);
    assert_eq!(ours.network_map, resp.network_map);
}

#[test]
fn section_11_3_2_7_filtered_cost_map() {
    let req = request_round_trip("11.3.2.7-request.json", ReqFilteredCostMap::parse);
    let resp: InfoResourceCostMap = round_trip("11.3.2.7-response.json");
    let ours = example_base()
        .filtered_cost_map(&req, &Default::default())
        .unwrap();
    // The RFC's example answers from a different cost map; the shape must agree, and the
    // values are those of the §11.2.3.7 map.
    assert_eq!(
        ours.cost_map.keys().collect::<Vec<_>>(),
        resp.cost_map.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        ours.cost_map["PID1"].keys().collect::<Vec<_>>(),
        resp.cost_map["PID1"].keys().collect::<Vec<_>>()
    );
    assert_eq!(ours.cost_map["PID1"]["PID3"], Cost(10.0));
    assert_eq!(ours.meta.cost_type, resp.meta.cost_type);
}

#[test]
fn section_11_4_1_7_endpoint_property() {
    let mut req = request_round_trip("11.4.1.7-request.json", ReqEndpointProp::parse);
    let resp: InfoResourceEndpointProperties = round_trip("11.4.1.7-response.json");
    let base = example_base();
    // The private property of the example is not served here: asking for it is an error.
    let err = base.endpoint_properties(&req).unwrap_err();
    assert_eq!(err.meta.value.as_deref(), Some("priv:ietf-example-prop"));
    req.properties.retain(|p| p.ends_with(".pid"));
    let ours = base.endpoint_properties(&req).unwrap();
    for (ep, props) in &resp.endpoint_properties {
        assert_eq!(
            ours.endpoint_properties[ep]["my-default-network-map.pid"],
            props["my-default-network-map.pid"]
        );
    }
}

#[test]
fn section_11_5_1_7_endpoint_cost_ranks_like_the_rfc() {
    let req = request_round_trip("11.5.1.7-request.json", ReqEndpointCostMap::parse);
    let resp: InfoResourceEndpointCostMap = round_trip("11.5.1.7-response.json");
    let ours = example_base()
        .endpoint_cost(&req, None, &Default::default())
        .unwrap();
    assert_eq!(ours.meta, resp.meta);
    // The RFC ranks with endpoint-level knowledge; this server ranks by PID (allowed by
    // §11.5.1), so 192.0.2.89 and 198.51.100.34, both in PID1, share rank 1. The order must
    // never contradict the RFC's.
    let (o, r) = (
        &ours.endpoint_cost_map["ipv4:192.0.2.2"],
        &resp.endpoint_cost_map["ipv4:192.0.2.2"],
    );
    assert_eq!(o.keys().collect::<Vec<_>>(), r.keys().collect::<Vec<_>>());
    for a in r.keys() {
        for b in r.keys() {
            if r[a].0 < r[b].0 {
                assert!(o[a].0 <= o[b].0, "{a} ranks after {b}");
            }
        }
    }
    assert_eq!(o["ipv4:192.0.2.89"], Cost(1.0));
    assert_eq!(o["ipv4:203.0.113.45"], Cost(2.0));
}
