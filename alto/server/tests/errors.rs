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

/// `n` typed IPv4 endpoints in `127.{net}.0.0/16`.
fn endpoints(net: u8, n: usize) -> String {
    let v: Vec<String> = (0..n)
        .map(|i| format!("\"ipv4:127.{net}.{}.{}\"", i / 250, i % 250 + 1))
        .collect();
    v.join(",")
}

#[tokio::test]
async fn a_query_over_the_pair_or_answer_bound_is_refused_before_it_is_computed() {
    let maps = MapDir::new("max-pairs = 200\nmax-answer-bytes = 3000");
    let server = maps.start().await;
    let ecs = format!("http://{}/endpointcost/lookup", server.addr);
    let body = |srcs: usize, dsts: usize| {
        format!(
            "{{{ORD},\"endpoints\":{{\"srcs\":[{}],\"dsts\":[{}]}}}}",
            endpoints(1, srcs),
            endpoints(2, dsts)
        )
    };
    // 10 x 10 is within both bounds.
    let a = post(&ecs, ECS, &body(10, 10)).await;
    assert_eq!(a.status, 200);
    // 21 x 10 pairs: refused, naming the counts and the bound.
    let a = post(&ecs, ECS, &body(21, 10)).await;
    assert_eq!(a.status, 400);
    let (code, field, value) = a.alto_error();
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("E_INVALID_FIELD_VALUE", Some("endpoints"))
    );
    let value = value.unwrap();
    assert!(
        value.contains("210 pairs") && value.contains("at most 200"),
        "{value}"
    );
    // A source listed many times counts once.
    let twice = format!(
        "{{{ORD},\"endpoints\":{{\"srcs\":[{}],\"dsts\":[{}]}}}}",
        vec!["\"ipv4:127.1.0.1\""; 500].join(","),
        endpoints(2, 10)
    );
    assert_eq!(post(&ecs, ECS, &twice).await.status, 200);
    // 1 x 200 pairs, but their answer is over 3,000 bytes.
    let a = post(&ecs, ECS, &body(1, 200)).await;
    assert_eq!(a.status, 400);
    let (code, _, value) = a.alto_error();
    assert_eq!(code, "E_INVALID_FIELD_VALUE");
    assert!(value.unwrap().contains("exceeds 3000 bytes"));
    // The filtered cost map counts PID pairs: all 5 x 5 are within 200.
    let cm = format!("http://{}/costmap/filtered", server.addr);
    let a = post(&cm, CMF, &all_pids()).await;
    assert_eq!(a.status, 200);
}

/// A filtered cost map query for every PID to every PID.
fn all_pids() -> String {
    format!("{{{ORD},\"pids\":{{\"srcs\":[],\"dsts\":[]}}}}")
}

#[tokio::test]
async fn a_filtered_cost_map_over_the_pair_bound_is_refused() {
    let maps = MapDir::new("max-pairs = 20");
    let server = maps.start().await;
    let cm = format!("http://{}/costmap/filtered", server.addr);
    // All 5 x 5 PIDs.
    let a = post(&cm, CMF, &all_pids()).await;
    assert_eq!(a.status, 400);
    let (code, field, value) = a.alto_error();
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("E_INVALID_FIELD_VALUE", Some("pids"))
    );
    assert!(value.unwrap().contains("25 pairs"));
    // A PID named a thousand times is one PID.
    let many = vec!["\"PID1\""; 1000].join(",");
    let a = post(
        &cm,
        CMF,
        &format!("{{{ORD},\"pids\":{{\"srcs\":[{many}],\"dsts\":[]}}}}"),
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn a_body_trickled_slower_than_the_timeout_is_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let maps = MapDir::new("header-read-timeout-ms = 300");
    let server = maps.start().await;
    let mut c = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /endpointcost/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: {ECS}\r\n\
         Content-Length: 100\r\n\r\n{{\"cost-type\""
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(20), c.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server waited for the body without end");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive within"), "{text}");
}

#[tokio::test]
async fn a_client_that_sends_a_large_body_unasked_still_reads_its_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let maps = MapDir::new("");
    let server = maps.start().await;
    let mut c = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // As Python's http.client does: the whole 20 MB body first, no Expect: 100-continue,
    // and only then the answer.
    let body = vec![b' '; 20 << 20];
    let head = format!(
        "POST /endpointcost/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: {ECS}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    // A reset here is the broken pipe such a client reports instead of the answer.
    c.write_all(&body).await.expect("the body was cut off");
    let mut out = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), c.read_to_end(&mut out))
        .await
        .expect("no end");
    assert!(read.is_ok(), "reset instead of the answer: {read:?}");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}
