//! Every resource of the server through the typed client, on port 0 with the embedded
//! loopback topology: the directory, the maps in every cost type, the filtered maps, the
//! endpoint property and endpoint cost services, and ETag revalidation.

mod common;

use alto_client::AltoClient;
use alto_model::messages::*;
use alto_model::{Cost, CostMode, CostType};
use common::*;

fn routing(mode: CostMode) -> CostType {
    CostType::new("routingcost", mode)
}

#[tokio::test]
async fn directory_lists_every_resource_and_the_client_reaches_each() {
    let server = start_embedded().await;
    let client = AltoClient::new(&server.directory_url()).unwrap();
    let ird = client.directory().await.unwrap();
    assert_eq!(
        ird.meta.default_alto_network_map.as_deref(),
        Some("loopback-network-map")
    );
    assert_eq!(ird.meta.cost_types.len(), 4);
    assert_eq!(ird.resources.len(), 12, "{:?}", ird.resources.keys());
    for (id, e) in &ird.resources {
        let url = client.resolve(&e.uri).unwrap();
        let a = match &e.accepts {
            None => get(&url, &[]).await,
            Some(_) => request("OPTIONS", &url, &[], "").await,
        };
        if e.accepts.is_none() {
            assert_eq!(a.status, 200, "{id}");
            assert_eq!(
                a.header("content-type"),
                Some(e.media_type.as_str()),
                "{id}"
            );
        } else {
            assert_eq!(a.status, 405, "{id}");
            assert_eq!(a.header("allow"), Some("POST"), "{id}");
        }
    }

    let net = client.network_map().await.unwrap();
    assert_eq!(net.network_map["PID3"]["ipv4"], ["127.3.0.0/16"]);
    assert_eq!(net.meta.vtag.resource_id, "loopback-network-map");

    for metric in ["routingcost", "hopcount"] {
        for mode in [CostMode::Numerical, CostMode::Ordinal] {
            let cm = client.cost_map(&CostType::new(metric, mode)).await.unwrap();
            assert_eq!(cm.meta.cost_type, CostType::new(metric, mode));
            assert_eq!(
                cm.meta.dependent_vtags,
                std::slice::from_ref(&net.meta.vtag)
            );
            let row = &cm.cost_map["PID1"];
            assert!(
                row["PID1"].0 < row["PID2"].0 && row["PID2"].0 < row["PID3"].0,
                "{metric} {mode:?}: {row:?}"
            );
        }
    }
    let ord = client.cost_map(&routing(CostMode::Ordinal)).await.unwrap();
    assert_eq!(ord.cost_map["PID1"]["PID2"], Cost(2.0));
    assert!(client
        .cost_map(&CostType::new("priv:x", CostMode::Numerical))
        .await
        .is_err());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn filtered_maps_and_endpoint_services_answer_from_the_topology() {
    let server = start_embedded().await;
    let client = AltoClient::new(&server.directory_url()).unwrap();

    let f = client
        .filtered_network_map(&ReqFilteredNetworkMap {
            pids: vec!["PID2".into(), "nope".into()],
            address_types: Some(vec!["ipv4".into()]),
        })
        .await
        .unwrap();
    assert_eq!(f.network_map.keys().collect::<Vec<_>>(), ["PID2"]);
    let f = client
        .filtered_network_map(&ReqFilteredNetworkMap {
            pids: vec!["default".into()],
            address_types: Some(vec!["ipv6".into()]),
        })
        .await
        .unwrap();
    assert_eq!(
        f.network_map["default"].keys().collect::<Vec<_>>(),
        ["ipv6"]
    );

    let fc = client
        .filtered_cost_map(&ReqFilteredCostMap {
            cost_type: routing(CostMode::Numerical),
            constraints: Some(vec!["le 5".into()]),
            pids: Some(PidFilter {
                srcs: vec!["PID1".into()],
                dsts: vec![],
            }),
        })
        .await
        .unwrap();
    assert_eq!(fc.cost_map["PID1"].len(), 2, "{:?}", fc.cost_map);
    assert_eq!(fc.cost_map["PID1"]["PID2"], Cost(5.0));

    let props = client
        .endpoint_properties(&ReqEndpointProp {
            properties: vec!["loopback-network-map.pid".into()],
            endpoints: vec!["ipv4:127.4.9.9".into(), "ipv6:::1".into()],
        })
        .await
        .unwrap();
    assert_eq!(
        props.endpoint_properties["ipv4:127.4.9.9"]["loopback-network-map.pid"],
        "PID4"
    );
    assert_eq!(
        props.endpoint_properties["ipv6:::1"]["loopback-network-map.pid"],
        "default"
    );

    // The P2P ranking of RFC 7285 §12.3: a client in PID1 ranks candidate peers.
    let ranked = client
        .endpoint_cost(&ReqEndpointCostMap {
            cost_type: routing(CostMode::Ordinal),
            constraints: None,
            endpoints: EndpointFilter {
                srcs: Some(vec!["ipv4:127.1.0.10".into()]),
                dsts: Some(
                    ["127.3.0.1", "127.1.0.2", "127.2.0.7", "10.0.0.1"]
                        .iter()
                        .map(|a| format!("ipv4:{a}"))
                        .collect(),
                ),
            },
        })
        .await
        .unwrap();
    let row = &ranked.endpoint_cost_map["ipv4:127.1.0.10"];
    assert_eq!(row["ipv4:127.1.0.2"], Cost(1.0));
    assert_eq!(row["ipv4:127.2.0.7"], Cost(2.0));
    assert_eq!(row["ipv4:127.3.0.1"], Cost(3.0));
    assert_eq!(row["ipv4:10.0.0.1"], Cost(4.0));

    // No sources: the client's own address (127.0.0.1, PID `default`) is the source.
    let own = client
        .endpoint_cost(&ReqEndpointCostMap {
            cost_type: routing(CostMode::Numerical),
            constraints: None,
            endpoints: EndpointFilter {
                srcs: None,
                dsts: Some(vec!["ipv4:127.2.0.1".into()]),
            },
        })
        .await
        .unwrap();
    assert_eq!(
        own.endpoint_cost_map["ipv4:127.0.0.1"]["ipv4:127.2.0.1"],
        Cost(100.0)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unchanged_maps_are_revalidated_with_304() {
    let server = start_embedded().await;
    let client = AltoClient::new(&server.directory_url()).unwrap();
    let first = client.network_map().await.unwrap();
    let again = client.network_map().await.unwrap();
    assert_eq!(first, again);
    assert_eq!(client.not_modified_count(), 1);
    client
        .cost_map(&routing(CostMode::Numerical))
        .await
        .unwrap();
    client
        .cost_map(&routing(CostMode::Numerical))
        .await
        .unwrap();
    assert_eq!(client.not_modified_count(), 2);

    let url = format!("http://{}/networkmap", server.addr);
    let full = get(&url, &[]).await;
    let etag = full.header("etag").unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", first.meta.vtag.tag));
    assert_eq!(full.header("cache-control"), Some("max-age=60"));
    for inm in [etag.as_str(), "*", &format!("\"x\", W/{etag}")] {
        let a = get(&url, &[("if-none-match", inm)]).await;
        assert_eq!(a.status, 304, "{inm}");
        assert!(a.body.is_empty());
        assert_eq!(a.header("etag"), Some(etag.as_str()));
    }
    assert_eq!(
        get(&url, &[("if-none-match", "\"other\"")]).await.status,
        200
    );
    let dir = get(&server.directory_url(), &[]).await;
    let a = get(
        &server.directory_url(),
        &[("if-none-match", dir.header("etag").unwrap())],
    )
    .await;
    assert_eq!(a.status, 304);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_errors_and_maps() {
    let server = start_embedded().await;
    let base = format!("http://{}", server.addr);
    get(&format!("{base}/networkmap"), &[]).await;
    get(&format!("{base}/networkmap"), &[]).await;
    post(&format!("{base}/endpointcost/lookup"), ECS, "{").await;
    get(&format!("{base}/nothing-here"), &[]).await;
    let m = get(&format!("{base}/metrics"), &[]).await;
    assert_eq!(m.status, 200);
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    for line in [
        "alto_requests_total{resource=\"loopback-network-map\"} 2",
        "alto_responses_total{resource=\"loopback-network-map\",status=\"200\"} 2",
        "alto_responses_total{resource=\"endpoint-cost\",status=\"400\"} 1",
        "alto_request_bytes_total{resource=\"endpoint-cost\"} 1",
        "alto_errors_total{code=\"E_SYNTAX\"} 1",
        "alto_errors_total{code=\"E_MISSING_FIELD\"} 0",
        "alto_responses_total{resource=\"(unknown)\",status=\"404\"} 1",
        "alto_pids 5",
        "alto_prefixes 6",
        "alto_cost_pairs{metric=\"routingcost\"} 25",
        "alto_map_generation 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    let nm_bytes: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("alto_response_bytes_total{resource=\"loopback-network-map\"} ")
        })
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        nm_bytes,
        2 * get(&format!("{base}/networkmap"), &[]).await.body.len() as u64
    );
    server.stop().await.unwrap();
}
