//! Bad input over HTTP: every RFC 7285 error code with its field and value, wrong media
//! types, oversized bodies, wrong methods and paths. None of it changes what is served.

mod common;

use common::*;

/// A request body, the expected code, field and value.
type Case = (
    &'static str,
    String,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

const ORD: &str = r#""cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"}"#;

#[tokio::test]
async fn each_error_code_names_the_field() {
    let maps = MapDir::new("");
    let server = maps.start().await;
    let base = format!("http://{}", server.addr);
    let before = get(&format!("{base}/networkmap"), &[]).await.body;
    let ecs = format!("{base}/endpointcost/lookup");
    let cases: Vec<Case> = vec![
        (ECS, "{\"cost-type\": ".into(), "E_SYNTAX", None, None),
        (ECS, "[1,2]".into(), "E_SYNTAX", None, None),
        (ECS, "\u{0}garbage".into(), "E_SYNTAX", None, None),
        (ECS, r#"{"endpoints":{"dsts":["ipv4:127.1.0.1"]}}"#.into(), "E_MISSING_FIELD", Some("cost-type"), None),
        (ECS, format!("{{{ORD}}}"), "E_MISSING_FIELD", Some("endpoints"), None),
        (ECS, r#"{"cost-type":{"cost-mode":"ordinal"},"endpoints":{}}"#.into(), "E_MISSING_FIELD", Some("cost-type/cost-metric"), None),
        (ECS, format!("{{{ORD},\"endpoints\":\"ipv4:127.1.0.1\"}}"), "E_INVALID_FIELD_TYPE", Some("endpoints"), None),
        (ECS, format!("{{{ORD},\"endpoints\":{{\"dsts\":\"ipv4:127.1.0.1\"}}}}"), "E_INVALID_FIELD_TYPE", Some("endpoints/dsts"), None),
        (ECS, r#"{"cost-type":"ordinal","endpoints":{}}"#.into(), "E_INVALID_FIELD_TYPE", Some("cost-type"), None),
        (ECS, r#"{"cost-type":{"cost-mode":"best","cost-metric":"routingcost"},"endpoints":{"dsts":["ipv4:127.1.0.1"]}}"#.into(), "E_INVALID_FIELD_VALUE", Some("cost-type/cost-mode"), Some("best")),
        (ECS, r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"latency"},"endpoints":{"dsts":["ipv4:127.1.0.1"]}}"#.into(), "E_INVALID_FIELD_VALUE", Some("cost-type/cost-metric"), Some("latency")),
        (ECS, format!("{{{ORD},\"endpoints\":{{\"dsts\":[\"ipv4:300.1.0.1\"]}}}}"), "E_INVALID_FIELD_VALUE", Some("endpoints/dsts"), Some("ipv4:300.1.0.1")),
        (ECS, format!("{{{ORD},\"endpoints\":{{\"srcs\":[\"127.1.0.1\"],\"dsts\":[\"ipv4:127.1.0.1\"]}}}}"), "E_INVALID_FIELD_VALUE", Some("endpoints/srcs"), Some("127.1.0.1")),
        (ECS, format!("{{{ORD},\"endpoints\":{{\"dsts\":[42]}}}}"), "E_INVALID_FIELD_VALUE", Some("endpoints/dsts"), Some("42")),
        (ECS, format!("{{{ORD},\"constraints\":[\"about 5\"],\"endpoints\":{{\"dsts\":[\"ipv4:127.1.0.1\"]}}}}"), "E_INVALID_FIELD_VALUE", Some("constraints"), Some("about 5")),
    ];
    for (ctype, body, code, field, value) in &cases {
        let a = post(&ecs, ctype, body).await;
        assert_eq!(a.status, 400, "{body}");
        let (c, f, v) = a.alto_error();
        assert_eq!(
            (c.as_str(), f.as_deref(), v.as_deref()),
            (*code, *field, *value),
            "{body}"
        );
    }
    let a = post(&ecs, ECS, "{\"cost-type\": ").await;
    let syntax = a.json()["meta"]["syntax-error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(syntax.contains("line 1 column"), "{syntax}");

    let cm = format!("{base}/costmap/filtered");
    let a = post(
        &cm,
        CMF,
        &format!("{{{ORD},\"pids\":{{\"srcs\":[\"PID 1\"],\"dsts\":[]}}}}"),
    )
    .await;
    assert_eq!(
        a.alto_error(),
        (
            "E_INVALID_FIELD_VALUE".into(),
            Some("pids/srcs".into()),
            Some("PID 1".into())
        )
    );
    let a = post(&cm, CMF, &format!("{{{ORD},\"pids\":{{\"srcs\":[]}}}}")).await;
    assert_eq!(
        a.alto_error(),
        ("E_MISSING_FIELD".into(), Some("pids/dsts".into()), None)
    );
    let a = post(
        &format!("{base}/networkmap/filtered"),
        NMF,
        r#"{"pids":"PID1"}"#,
    )
    .await;
    assert_eq!(
        a.alto_error(),
        ("E_INVALID_FIELD_TYPE".into(), Some("pids".into()), None)
    );
    let a = post(
        &format!("{base}/endpointprop/lookup"),
        EPP,
        r#"{"properties":["priv:color"],"endpoints":["ipv4:127.1.0.1"]}"#,
    )
    .await;
    assert_eq!(
        a.alto_error(),
        (
            "E_INVALID_FIELD_VALUE".into(),
            Some("properties".into()),
            Some("priv:color".into())
        )
    );

    // Unknown fields are ignored (RFC 7285 §8.3.7).
    let a = post(
        &ecs,
        ECS,
        &format!(
            "{{{ORD},\"x-new\":[1],\"endpoints\":{{\"dsts\":[\"ipv4:127.1.0.1\"],\"x\":{{}}}}}}"
        ),
    )
    .await;
    assert_eq!(a.status, 200);

    assert_eq!(
        get(&format!("{base}/networkmap"), &[]).await.body,
        before,
        "bad input changed the map"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn media_types_methods_and_sizes_are_enforced() {
    let maps = MapDir::new("max-body-bytes = 256");
    let server = maps.start().await;
    let base = format!("http://{}", server.addr);
    let ecs = format!("{base}/endpointcost/lookup");
    let body = format!("{{{ORD},\"endpoints\":{{\"dsts\":[\"ipv4:127.1.0.1\"]}}}}");

    let a = post(&ecs, "application/json", &body).await;
    assert_eq!(a.status, 415);
    assert_eq!(a.alto_error().0, "E_SYNTAX");
    let a = request("POST", &ecs, &[], body.clone()).await;
    assert_eq!(a.status, 415);
    let a = post(
        &ecs,
        "Application/ALTO-EndpointCostParams+JSON; charset=utf-8",
        &body,
    )
    .await;
    assert_eq!(
        a.status, 200,
        "media types are case-insensitive and take parameters"
    );

    let big = format!(
        "{{{ORD},\"endpoints\":{{\"dsts\":[{}]}}}}",
        vec!["\"ipv4:127.1.0.1\""; 40].join(",")
    );
    assert!(big.len() > 256);
    let a = post(&ecs, ECS, &big).await;
    assert_eq!(a.status, 413);
    assert!(a.json()["meta"]["syntax-error"]
        .as_str()
        .unwrap()
        .contains("256 bytes"));

    let a = request(
        "POST",
        &format!("{base}/networkmap"),
        &[("content-type", NMF)],
        "{}",
    )
    .await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("GET"));
    let a = get(&ecs, &[]).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));

    let a = get(&format!("{base}/networkmap"), &[("accept", "text/html")]).await;
    assert_eq!(a.status, 406);
    let a = get(
        &format!("{base}/networkmap"),
        &[("accept", "application/*;q=0.5")],
    )
    .await;
    assert_eq!(a.status, 200);
    let a = get(&format!("{base}/no/such/thing"), &[]).await;
    assert_eq!(a.status, 404);
    // The server still answers after all of it.
    assert_eq!(post(&ecs, ECS, &body).await.status, 200);
    server.stop().await.unwrap();
}
