//! The PID Head extension of `alto-server` over HTTP: joins and roles, the head directory
//! (RFC 9240 property map) with ETags, leases (renew, resign, expiry, stolen tokens),
//! spoofed and malformed joins, the per-source join limit, falling back when a head fails,
//! and cascading between two `alto-server` processes, loops included.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test]
async fn joins_elect_one_head_per_pid_and_the_directory_lists_them() {
    let server = start_embedded().await;
    let base = format!("http://{}", server.addr);
    let ird = get(&format!("{base}/directory"), &[]).await.json();
    assert_eq!(ird["resources"]["pid-head-join"]["accepts"], JOIN);
    assert_eq!(
        ird["resources"]["pid-head-join"]["capabilities"]["election-policy"],
        "first"
    );
    assert_eq!(
        ird["resources"]["pid-heads"]["media-type"],
        "application/alto-propmap+json"
    );
    assert_eq!(
        ird["resources"]["pid-heads"]["capabilities"]["mappings"]["loopback-network-map.pid"][0],
        "head-tracker"
    );

    let a = join_as(&base, "127.1.0.5", 6969).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(
        a.header("content-type"),
        Some("application/alto-pidhead+json")
    );
    let v = a.json();
    assert_eq!(
        (v["pid"].as_str(), v["role"].as_str()),
        (Some("PID1"), Some("head"))
    );
    assert_eq!(v["lease"]["ttl-secs"], 30);
    assert_eq!(v["lease"]["token"].as_str().unwrap().len(), 32);
    assert_eq!(v["head"]["tracker"], "http://127.1.0.5:6969/announce");
    assert_eq!(
        v["head"]["alto"],
        "http://127.1.0.5:6969/endpointcost/lookup"
    );

    let b = join_as(&base, "127.1.0.6", 6969).await.json();
    assert_eq!(
        (b["role"].as_str(), b["head"]["endpoint"].as_str()),
        (Some("member"), Some("ipv4:127.1.0.5"))
    );
    assert!(b.get("lease").is_none());
    // A kept standby is advised to join again before its standby window (90 s) closes.
    assert_eq!(b["rejoin-secs"], 75);
    assert_eq!(
        join_as(&base, "127.2.0.5", 7000).await.json()["role"],
        "head"
    );

    let dir = get(&format!("{base}/pidheads"), &[]).await;
    assert_eq!(dir.status, 200);
    let map = dir.json();
    assert_eq!(
        map["property-map"]["loopback-network-map.pid:PID1"]["head-tracker"],
        "http://127.1.0.5:6969/announce"
    );
    assert_eq!(
        map["property-map"]["loopback-network-map.pid:PID2"]["head-alto"],
        "http://127.2.0.5:7000/endpointcost/lookup"
    );
    for prop in ["head-lease-expires", "head-since"] {
        assert!(
            map["property-map"]["loopback-network-map.pid:PID1"][prop]
                .as_str()
                .unwrap()
                .ends_with('Z'),
            "{prop}"
        );
    }
    assert_eq!(
        map["meta"]["dependent-vtags"][0]["resource-id"],
        "loopback-network-map"
    );
    let etag = dir.header("etag").unwrap().to_owned();
    assert_eq!(
        get(&format!("{base}/pidheads"), &[("if-none-match", &etag)])
            .await
            .status,
        304
    );
    join_as(&base, "127.3.0.5", 7000).await;
    assert_eq!(
        get(&format!("{base}/pidheads"), &[("if-none-match", &etag)])
            .await
            .status,
        200,
        "a new head changes the ETag"
    );

    let metrics =
        String::from_utf8(get(&format!("{base}/metrics"), &[]).await.body.to_vec()).unwrap();
    for line in [
        "alto_pidhead_joins_total 4",
        "alto_pidhead_elections_total 3",
        "alto_pidheads 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing `{line}`");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn spoofed_and_malformed_joins_get_rfc7285_errors() {
    let server = start_embedded().await;
    let url = format!("http://{}/pidhead/join", server.addr);
    let from = "127.1.0.5".parse().unwrap();
    let cases = [
        (
            r#"{"endpoint":"ipv4:127.1.0.9","tracker":"http://127.1.0.9:1/announce"}"#,
            "E_INVALID_FIELD_VALUE",
            Some("endpoint"),
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.2.0.5:1/announce"}"#,
            "E_INVALID_FIELD_VALUE",
            Some("tracker"),
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.1.0.5:1/announce","alto":"http://127.3.0.1:1/x"}"#,
            "E_INVALID_FIELD_VALUE",
            Some("alto"),
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://tracker.example/announce"}"#,
            "E_INVALID_FIELD_VALUE",
            Some("tracker"),
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5"}"#,
            "E_MISSING_FIELD",
            Some("tracker"),
        ),
        (
            r#"{"endpoint":["ipv4:127.1.0.5"],"tracker":"x"}"#,
            "E_INVALID_FIELD_TYPE",
            Some("endpoint"),
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.1.0.5:1/a","capabilities":[]}"#,
            "E_INVALID_FIELD_TYPE",
            Some("capabilities"),
        ),
        ("{endpoint:", "E_SYNTAX", None),
    ];
    for (body, code, field) in cases {
        let a = request_from(from, "POST", &url, &[("content-type", JOIN)], body).await;
        assert_eq!(a.status, 400, "{body}");
        let (c, f, _) = a.alto_error();
        assert_eq!((c.as_str(), f.as_deref()), (code, field), "{body}");
    }
    let a = request_from(
        from,
        "POST",
        &url,
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(a.status, 415);
    assert!(
        get(&format!("http://{}/pidheads", server.addr), &[])
            .await
            .json()["property-map"]
            .as_object()
            .unwrap()
            .is_empty(),
        "no head came of it"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn leases_renew_resign_and_refuse_stolen_or_dead_tokens() {
    let maps = MapDir::new("[pid-heads]\nlease-ttl-secs = 2");
    let server = maps.start().await;
    let base = format!("http://{}", server.addr);
    let lease = |ip: &str, body: String| {
        let base = base.clone();
        let ip = ip.to_owned();
        async move {
            request_from(
                ip.parse().unwrap(),
                "POST",
                &format!("{base}/pidhead/lease"),
                &[("content-type", LEASE)],
                body,
            )
            .await
        }
    };
    let token = join_as(&base, "127.1.0.5", 1).await.json()["lease"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    join_as(&base, "127.1.0.6", 1).await;
    let renew = |t: &str| format!(r#"{{"token":"{t}","action":"renew"}}"#);

    let a = lease("127.1.0.5", renew(&token)).await;
    assert_eq!((a.status, a.json()["role"].as_str()), (200, Some("head")));
    let stolen = lease("127.1.0.6", renew(&token)).await;
    assert_eq!(stolen.status, 400);
    assert_eq!(
        stolen.alto_error(),
        (
            "E_INVALID_FIELD_VALUE".into(),
            Some("token".into()),
            Some(token.clone())
        )
    );
    assert_eq!(
        lease("127.1.0.5", renew("00ff"))
            .await
            .alto_error()
            .1
            .as_deref(),
        Some("token")
    );
    assert_eq!(
        lease("127.1.0.5", r#"{"token":"x","action":"extend"}"#.into())
            .await
            .alto_error()
            .1
            .as_deref(),
        Some("action")
    );
    assert_eq!(
        lease("127.1.0.5", r#"{"action":"renew"}"#.into())
            .await
            .alto_error()
            .0,
        "E_MISSING_FIELD"
    );

    // Resign: the standby takes over at once, and the token is dead.
    let r = lease(
        "127.1.0.5",
        format!(r#"{{"token":"{token}","action":"resign"}}"#),
    )
    .await
    .json();
    assert_eq!(
        (r["role"].as_str(), r["head"]["endpoint"].as_str()),
        (Some("member"), Some("ipv4:127.1.0.6"))
    );
    assert_eq!(lease("127.1.0.5", renew(&token)).await.status, 400);

    // An expired token: the promoted standby never came back, its lease lapsed.
    let t6 = join_as(&base, "127.1.0.6", 1).await.json()["lease"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Drive the lease clock (`alto_web::clock` follows tokio's time) past the 2 s lease
    // instead of sleeping; real time resumes for the requests, which use real sockets.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(3200)).await;
    tokio::time::resume();
    assert_eq!(lease("127.1.0.6", renew(&t6)).await.status, 400, "expired");
    let metrics =
        String::from_utf8(get(&format!("{base}/metrics"), &[]).await.body.to_vec()).unwrap();
    assert!(metrics.contains("alto_pidhead_lapses_total 1"), "{metrics}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn joins_are_rate_limited_per_source() {
    let maps = MapDir::new("[pid-heads]\njoin-burst = 3\njoin-per-sec = 0.01");
    let server = maps.start().await;
    let base = format!("http://{}", server.addr);
    for _ in 0..3 {
        assert_eq!(join_as(&base, "127.1.0.5", 1).await.status, 200);
    }
    let a = join_as(&base, "127.1.0.5", 1).await;
    assert_eq!((a.status, a.header("retry-after")), (429, Some("1")));
    assert_eq!(
        join_as(&base, "127.1.0.6", 1).await.status,
        200,
        "other sources are not limited"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_failing_head_gets_the_query_answered_locally_and_is_suspect() {
    let server = start_embedded().await;
    let base = format!("http://{}", server.addr);
    // A head whose tracker accepts connections but never answers: forwarding to it times out.
    let silent = listen_on("127.1.0.7", 0);
    join_as(&base, "127.1.0.7", silent).await;
    let body = r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":{"srcs":["ipv4:127.1.0.9"],"dsts":["ipv4:127.2.0.1","ipv4:127.1.0.3"]}}"#;
    let a = post(&format!("{base}/endpointcost/lookup"), ECS, body).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json()["endpoint-cost-map"]["ipv4:127.1.0.9"]["ipv4:127.1.0.3"],
        1
    );
    post(&format!("{base}/endpointcost/lookup"), ECS, body).await;
    let metrics =
        String::from_utf8(get(&format!("{base}/metrics"), &[]).await.body.to_vec()).unwrap();
    for line in [
        "alto_forwarded_total 1",
        "alto_fallback_total 1",
        "alto_relayed_total 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` (the suspect head is not asked twice):\n{metrics}"
        );
    }
    server.stop().await.unwrap();
}

/// An `alto-server` process on a config of its own, killed when dropped.
struct Process(std::process::Child, String);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server(config: &std::path::Path) -> Process {
    let (child, line) = test_support::spawn_with_first_line(
        Command::new(env!("CARGO_BIN_EXE_alto-server")).args([
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]),
    );
    let url = line.strip_prefix("ALTO directory: ").unwrap().to_owned();
    Process(child, url)
}

const FAR_MAP: &str =
    r#"{"network-map": {"far1": {"ipv4": ["127.9.0.0/16"]}, "farx": {"ipv4": ["0.0.0.0/0"]}}}"#;
const FAR_COSTS: &str =
    r#"{"cost-map": {"far1": {"far1": 3, "farx": 70}, "farx": {"far1": 70, "farx": 9}}}"#;

#[tokio::test]
async fn queries_cascade_to_the_authoritative_server_process() {
    // Server B: authoritative for 127.9.0.0/16, a process of its own.
    let b = MapDir::new("server-id = \"alto-b\"");
    b.write("network-map.json", FAR_MAP);
    b.write("routingcost.json", FAR_COSTS);
    b.write(
        "alto.toml",
        &b.read("alto.toml").replace(
            "[[cost-map]]\nmetric = \"hopcount\"\nfile = \"hopcount.json\"\n",
            "",
        ),
    );
    let b_proc = spawn_server(&b.config());
    // Server A: the loopback topology, with B as peer for 127.9.0.0/16.
    let a = MapDir::new(&format!("server-id = \"alto-a\"\n[[peer]]\nname = \"b\"\ndirectory = \"{}\"\nprefixes = [\"127.9.0.0/16\"]\n", b_proc.1));
    let server = a.start().await;
    let base = format!("http://{}", server.addr);
    let body = r#"{"cost-type":{"cost-mode":"numerical","cost-metric":"routingcost"},"endpoints":{"srcs":["ipv4:127.9.0.1"],"dsts":["ipv4:127.9.0.2","ipv4:127.1.0.1"]}}"#;
    let r = post(&format!("{base}/endpointcost/lookup"), ECS, body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let row = &r.json()["endpoint-cost-map"]["ipv4:127.9.0.1"];
    assert_eq!(
        (
            row["ipv4:127.9.0.2"].as_u64(),
            row["ipv4:127.1.0.1"].as_u64()
        ),
        (Some(3), Some(70)),
        "B's costs, not A's"
    );
    let props = post(
        &format!("{base}/endpointprop/lookup"),
        EPP,
        r#"{"properties":["loopback-network-map.pid"],"endpoints":["ipv4:127.9.0.4"]}"#,
    )
    .await;
    assert_eq!(props.status, 200);
    assert_eq!(
        props.json()["endpoint-properties"]["ipv4:127.9.0.4"]["loopback-network-map.pid"],
        "far1",
        "B's PID"
    );
    // Endpoints of A's own are answered by A.
    let own = post(
        &format!("{base}/endpointcost/lookup"),
        ECS,
        &body.replace("127.9.0.1", "127.1.0.9"),
    )
    .await;
    assert_eq!(
        own.json()["endpoint-cost-map"]["ipv4:127.1.0.9"]["ipv4:127.1.0.1"],
        1
    );
    let metrics =
        String::from_utf8(get(&format!("{base}/metrics"), &[]).await.body.to_vec()).unwrap();
    assert!(
        metrics.lines().any(|l| l == "alto_cascaded_total 2"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_loop_of_two_misconfigured_servers_ends_in_an_error() {
    // B cascades 127.9.0.0/16 to A, A cascades it to B: a loop.
    let a_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = MapDir::new(&format!("server-id = \"alto-b\"\n[[peer]]\nname = \"a\"\ndirectory = \"http://127.0.0.1:{a_port}/directory\"\nprefixes = [\"127.9.0.0/16\"]\n"));
    let b_proc = spawn_server(&b.config());
    let a = MapDir::new(&format!("server-id = \"alto-a\"\n[[peer]]\nname = \"b\"\ndirectory = \"{}\"\nprefixes = [\"127.9.0.0/16\"]\n", b_proc.1));
    let server = alto_server::Running::start(
        alto_server::Source::File(a.config()),
        format!("127.0.0.1:{a_port}").parse().unwrap(),
    )
    .await
    .unwrap();
    let body = r#"{"cost-type":{"cost-mode":"numerical","cost-metric":"routingcost"},"endpoints":{"srcs":["ipv4:127.9.0.1"],"dsts":["ipv4:127.1.0.1"]}}"#;
    let start = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        post(
            &format!("http://127.0.0.1:{a_port}/endpointcost/lookup"),
            ECS,
            body,
        ),
    )
    .await
    .expect("the loop hung");
    assert_eq!(r.status, 508);
    let (code, field, value) = r.alto_error();
    assert_eq!(
        (code.as_str(), field.as_deref(), value.as_deref()),
        (
            "E_INVALID_FIELD_VALUE",
            Some("alto-via"),
            Some("alto-a,alto-b")
        )
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // A hop count already spent is refused too.
    let r = request(
        "POST",
        &format!("http://127.0.0.1:{a_port}/endpointcost/lookup"),
        &[("content-type", ECS), ("alto-hops", "4")],
        body,
    )
    .await;
    assert_eq!(
        (r.status, r.alto_error().1.as_deref()),
        (508, Some("alto-hops"))
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_join_must_name_its_own_address_a_valid_port_and_a_pid_that_has_heads() {
    let server = start_embedded().await;
    let base = format!("http://{}", server.addr);
    let url = format!("{base}/pidhead/join");
    let from = "127.1.0.5".parse().unwrap();
    listen_on("127.1.0.5", 6969);
    for (body, field) in [
        // Another host of the same PID.
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.1.0.99:22/announce"}"#,
            "tracker",
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.1.0.5:6969/announce","alto":"http://127.1.0.99:6969/x"}"#,
            "alto",
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.1.0.5:70000/announce"}"#,
            "tracker",
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.1.0.5:0/announce"}"#,
            "tracker",
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://user:pw@127.1.0.5:6969/announce"}"#,
            "tracker",
        ),
        (
            r#"{"endpoint":"ipv4:127.1.0.5","tracker":"ftp://127.1.0.5:6969/announce"}"#,
            "tracker",
        ),
    ] {
        let a = request_from(from, "POST", &url, &[("content-type", JOIN)], body).await;
        assert_eq!(a.status, 400, "{body}");
        let (code, f, _) = a.alto_error();
        assert_eq!(
            (code.as_str(), f.as_deref()),
            ("E_INVALID_FIELD_VALUE", Some(field)),
            "{body}"
        );
    }
    // The catch-all `default` PID has no heads: its joiner is told it is a member.
    let a = join_as(&base, "127.0.0.1", 0).await;
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(
        (v["pid"].as_str(), v["role"].as_str()),
        (Some("default"), Some("member"))
    );
    assert!(v.get("lease").is_none());
    let dir = get(&format!("{base}/pidheads"), &[]).await.json();
    assert!(dir["property-map"].as_object().unwrap().is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_head_its_members_cannot_reach_is_unseated_within_a_few_of_their_joins() {
    let server = start_embedded().await;
    let base = format!("http://{}", server.addr);
    let (port, head) = listener("127.1.0.5", 0);
    let accepting = tokio::spawn(async move { while head.accept().await.is_ok() {} });
    let a = join_unreachable(&base, "127.1.0.5", port).await.json();
    assert_eq!(a["role"], "head");
    // The probe clock follows tokio's time: driven past the once-a-second bound between
    // joins instead of sleeping; real time resumes for the requests' real sockets.
    let next_probe = || async {
        tokio::time::pause();
        tokio::time::advance(Duration::from_millis(1100)).await;
        tokio::time::resume();
    };
    // While the head's tracker answers, members' joins leave it head.
    for _ in 0..2 {
        let m = join_as(&base, "127.1.0.6", 6970).await.json();
        assert_eq!(m["head"]["endpoint"], "ipv4:127.1.0.5");
        next_probe().await;
    }
    // It leaves without resigning, its lease 30 s from lapsing. Its member joins again (as
    // its client does when an announce to the head fails), at most once a second: the
    // third probe that finds nothing revokes the lease, and the standby is elected.
    accepting.abort();
    let _ = accepting.await; // the listener is closed with the task
    let started = tokio::time::Instant::now();
    let mut joins = 0;
    let m = loop {
        let m = join_as(&base, "127.1.0.6", 6970).await.json();
        joins += 1;
        if m["role"] == "head" || joins == 10 {
            break m;
        }
        next_probe().await;
    };
    assert_eq!(m["role"], "head", "after {joins} joins: {m}");
    assert_eq!(joins, 3, "max-head-failures is 3");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "before the lease lapsed"
    );
    let metrics =
        String::from_utf8(get(&format!("{base}/metrics"), &[]).await.body.to_vec()).unwrap();
    for line in [
        "alto_pidhead_heads_unreachable_total 3",
        "alto_pidhead_revoked_total 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn only_a_candidate_whose_tracker_the_server_reached_is_elected() {
    let server = start_embedded().await;
    let base = format!("http://{}", server.addr);
    // Nothing listens: registered as no candidate, told it is a member.
    let closed = std::net::TcpListener::bind("127.1.0.5:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = join_unreachable(&base, "127.1.0.5", closed).await.json();
    assert_eq!(a["role"], "member");
    assert!(a.get("head").is_none());
    let metrics =
        String::from_utf8(get(&format!("{base}/metrics"), &[]).await.body.to_vec()).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "alto_pidhead_joins_unreachable_total 1"),
        "{metrics}"
    );
    // Once its tracker listens, the same client is elected.
    let a = join_as(&base, "127.1.0.5", closed).await.json();
    assert_eq!(a["role"], "head");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn joins_are_limited_per_source_prefix_too() {
    let maps = MapDir::new("[pid-heads]\njoin-prefix-burst = 4\njoin-prefix-per-sec = 0.01");
    let server = maps.start().await;
    let base = format!("http://{}", server.addr);
    // Four addresses of one /24 join; the fifth is over the prefix's allowance.
    for k in 1..=4 {
        assert_eq!(join_as(&base, &format!("127.1.0.{k}"), 0).await.status, 200);
    }
    let a = join_as(&base, "127.1.0.5", 0).await;
    assert_eq!((a.status, a.header("retry-after")), (429, Some("1")));
    // Another /24 of the same PID is another source.
    assert_eq!(join_as(&base, "127.1.1.1", 0).await.status, 200);
    server.stop().await.unwrap();
}

/// A head's tracker and ALTO service on `ip` answering every query with `answers[i]` (media
/// type, body) in turn, the last one for ever; its port.
async fn lying_head(ip: &str, answers: Vec<(&'static str, String)>) -> u16 {
    let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let answers = std::sync::Arc::new(answers);
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handle = move |_req, _remote| {
        let (answers, served) = (answers.clone(), served.clone());
        async move {
            let i = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (ctype, body) = answers[i.min(answers.len() - 1)].clone();
            alto_web::simple(http::StatusCode::OK, ctype, body)
        }
    };
    tokio::spawn(alto_web::serve(
        listener,
        handle,
        std::future::pending(),
        alto_web::Limits::default(),
    ));
    port
}

#[tokio::test]
async fn a_head_whose_answers_fail_the_checks_is_answered_for_and_then_unseated() {
    let maps = MapDir::new("[pid-heads]\nsuspect-secs = 0\nmax-head-failures = 3");
    let server = maps.start().await;
    let base = format!("http://{}", server.addr);
    let ecs_type = "application/alto-endpointcost+json";
    let reversed = r#"{"meta":{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"}},"endpoint-cost-map":{"ipv4:127.1.0.20":{"ipv4:127.1.0.2":2,"ipv4:127.3.0.2":1}}}"#;
    let port = lying_head(
        "127.1.0.8",
        vec![
            ("text/html", "<html>hello</html>".into()),
            (ecs_type, "not json at all".into()),
            (ecs_type, reversed.into()),
        ],
    )
    .await;
    assert_eq!(
        join_unreachable(&base, "127.1.0.8", port).await.json()["role"],
        "head"
    );
    let standby = listen_on("127.1.0.9", 0);
    assert_eq!(
        join_as(&base, "127.1.0.9", standby).await.json()["role"],
        "member"
    );
    let body = r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":{"dsts":["ipv4:127.1.0.2","ipv4:127.3.0.2"]}}"#;
    for _ in 0..3 {
        let a = request_from(
            "127.1.0.20".parse().unwrap(),
            "POST",
            &format!("{base}/endpointcost/lookup"),
            &[("content-type", ECS)],
            body,
        )
        .await;
        // Answered locally: the server's own ranks, in the ALTO media type.
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some(ecs_type));
        let row = &a.json()["endpoint-cost-map"]["ipv4:127.1.0.20"];
        assert_eq!(
            (
                row["ipv4:127.1.0.2"].as_u64(),
                row["ipv4:127.3.0.2"].as_u64()
            ),
            (Some(1), Some(2))
        );
    }
    let metrics =
        String::from_utf8(get(&format!("{base}/metrics"), &[]).await.body.to_vec()).unwrap();
    for line in [
        "alto_forwarded_total 3",
        "alto_relayed_total 0",
        "alto_pidhead_answers_refused_total 3",
        "alto_pidhead_revoked_total 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}`:\n{metrics}"
        );
    }
    // The standby is head now; the liar rejoining is a member.
    let dir = get(&format!("{base}/pidheads"), &[]).await.json();
    assert_eq!(
        dir["property-map"]["loopback-network-map.pid:PID1"]["head-tracker"],
        format!("http://127.1.0.9:{standby}/announce")
    );
    let again = join_unreachable(&base, "127.1.0.8", port).await.json();
    assert_eq!(
        (again["role"].as_str(), again["head"]["endpoint"].as_str()),
        (Some("member"), Some("ipv4:127.1.0.9"))
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn joins_need_digest_credentials_when_configured() {
    let maps = MapDir::new("");
    let ha1 = alto_web::digest::ha1("member-1", "isp", "s3cret");
    maps.write(
        "users.txt",
        &format!("# ALTO members\nmember-1:isp:{ha1}\n"),
    );
    let config = maps.read("alto.toml").replace(
        "[network-map]",
        "[auth]\ndigest-users = \"users.txt\"\nrealm = \"isp\"\ndigest-for = [\"pid-head-join\"]\n\n[network-map]",
    );
    maps.write("alto.toml", &config);
    let server = maps.start().await;
    let base = format!("http://{}", server.addr);
    let port = listen_on("127.1.0.5", 0);
    // Without credentials: 401 with a SHA-256 Digest challenge, no head.
    let a = join_unreachable(&base, "127.1.0.5", port).await;
    assert_eq!(a.status, 401);
    let challenge = a.header("www-authenticate").unwrap().to_owned();
    assert!(
        challenge.starts_with("Digest realm=\"isp\"") && challenge.contains("algorithm=SHA-256"),
        "{challenge}"
    );
    // alto-client answers the challenge: with a wrong password still 401, with the right one
    // elected. The maps need no credentials.
    let join = alto_model::pidhead::JoinRequest {
        endpoint: "ipv4:127.1.0.5".into(),
        tracker: format!("http://127.1.0.5:{port}/announce"),
        ecs_url: None,
        capabilities: Default::default(),
    };
    let client = |password: &str| {
        alto_client::AltoClient::new(&server.directory_url())
            .unwrap()
            .with_local_address("127.1.0.5".parse().unwrap())
            .with_credentials("member-1", password)
    };
    let e = client("guess").join(&join).await.unwrap_err().to_string();
    assert!(e.contains("401"), "{e}");
    assert!(client("guess").network_map().await.is_ok());
    let a = client("s3cret").join(&join).await.unwrap();
    assert_eq!(a.role, alto_model::pidhead::Role::Head);
    // The same request sent twice: the second is a replay and gets a new challenge.
    let auth = alto_web::digest::respond(
        &challenge,
        "POST",
        "/pidhead/join",
        "member-1",
        "s3cret",
        "c",
    )
    .unwrap();
    let body =
        format!(r#"{{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.1.0.5:{port}/announce"}}"#);
    let url = format!("{base}/pidhead/join");
    let headers = [("content-type", JOIN), ("authorization", auth.as_str())];
    let send = || {
        request_from(
            "127.1.0.5".parse().unwrap(),
            "POST",
            &url,
            &headers,
            body.clone(),
        )
    };
    let first = send().await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let replayed = send().await;
    assert_eq!(replayed.status, 401);
    assert!(String::from_utf8_lossy(&replayed.body).contains("replayed"));
    server.stop().await.unwrap();
}
