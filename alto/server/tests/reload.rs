//! Reloads: new maps are swapped in whole with new vtags, bad map files are refused with the
//! file and line while the old maps stay served, requests in flight never fail, and the
//! `alto-server` binary reloads on SIGHUP, refuses bad maps at start, and stops on SIGTERM.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn reload_swaps_maps_and_bumps_vtags() {
    let maps = MapDir::new("");
    let server = maps.start().await;
    let url = format!("http://{}/networkmap", server.addr);
    let cm_url = format!("http://{}/costmap/num/routingcost", server.addr);
    let first = get(&url, &[]).await;
    let first_cm = get(&cm_url, &[]).await;

    maps.write(
        "network-map.json",
        &maps
            .read("network-map.json")
            .replace("127.4.0.0/16", "127.4.0.0/15"),
    );
    server.app.reload().unwrap();
    let second = get(&url, &[]).await;
    assert_ne!(
        first.json()["meta"]["vtag"]["tag"],
        second.json()["meta"]["vtag"]["tag"]
    );
    assert_eq!(
        second.json()["network-map"]["PID4"]["ipv4"][0],
        "127.4.0.0/15"
    );
    assert_eq!(
        get(&url, &[("if-none-match", first.header("etag").unwrap())])
            .await
            .status,
        200
    );
    // The cost map depends on the network map: its dependent vtag and ETag follow.
    let second_cm = get(&cm_url, &[]).await;
    assert_ne!(first_cm.header("etag"), second_cm.header("etag"));
    assert_eq!(
        second_cm.json()["meta"]["dependent-vtags"][0],
        second.json()["meta"]["vtag"]
    );

    // The same content again keeps the vtag: it is derived from content (RFC 7285 §10.3).
    server.app.reload().unwrap();
    assert_eq!(get(&url, &[]).await.header("etag"), second.header("etag"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_bad_map_is_refused_and_the_old_maps_stay() {
    let maps = MapDir::new("");
    let server = maps.start().await;
    let url = format!("http://{}/networkmap", server.addr);
    let before = get(&url, &[]).await;

    let good = maps.read("network-map.json");
    maps.write(
        "network-map.json",
        &good.replace("127.2.0.0/16", "127.2.0.1/16"),
    );
    let err = server.app.reload().unwrap_err().to_string();
    assert!(
        err.contains("network-map.json: line 7, column 24: PID `PID2`"),
        "{err}"
    );
    assert!(err.contains("host bits"), "{err}");

    maps.write(
        "network-map.json",
        &good.replace("\"0.0.0.0/0\"", "\"10.0.0.0/8\""),
    );
    let err = server.app.reload().unwrap_err().to_string();
    assert!(err.contains("not complete"), "{err}");

    maps.write("network-map.json", &good);
    maps.write(
        "routingcost.json",
        &maps
            .read("routingcost.json")
            .replace("\"PID3\": 40,", "\"PID3\": forty,"),
    );
    let err = server.app.reload().unwrap_err().to_string();
    assert!(err.contains("routingcost.json: line 7,"), "{err}");

    maps.write("routingcost.json", testdata::loopback::ROUTINGCOST);
    std::fs::remove_file(maps.path("hopcount.json")).unwrap();
    let err = server.app.reload().unwrap_err().to_string();
    assert!(err.contains("hopcount.json"), "{err}");

    let after = get(&url, &[]).await;
    assert_eq!(after.body, before.body);
    let m = get(&format!("http://{}/metrics", server.addr), &[]).await;
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    assert!(
        text.contains("alto_reloads_total{result=\"failed\"} 4"),
        "{text}"
    );
    assert!(text.contains("alto_map_generation 0"), "{text}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_survive_reloads() {
    let maps = MapDir::new("");
    let server = maps.start().await;
    let base = format!("http://{}", server.addr);
    let a = maps.read("network-map.json");
    let b = a.replace("127.4.0.0/16", "127.4.0.0/15");
    let load = tokio::spawn(async move {
        let mut ok = 0;
        for i in 0..300 {
            let r = if i % 2 == 0 {
                get(&format!("{base}/networkmap"), &[]).await
            } else {
                post(&format!("{base}/endpointcost/lookup"), ECS, r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":{"srcs":["ipv4:127.1.0.1"],"dsts":["ipv4:127.2.0.1","ipv4:127.4.0.1"]}}"#).await
            };
            assert_eq!(r.status, 200, "request {i} failed during reloads");
            ok += 1;
        }
        ok
    });
    let mut reloads = 0;
    while !load.is_finished() && reloads < 200 {
        maps.write("network-map.json", if reloads % 2 == 0 { &b } else { &a });
        server.app.reload().unwrap();
        reloads += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(load.await.unwrap(), 300);
    assert!(
        reloads > 5,
        "only {reloads} reloads happened during the load"
    );
    assert_eq!(server.app.metrics().generation(), reloads);
    server.stop().await.unwrap();
}

fn wait_for_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    lines.next().unwrap().unwrap()
}

#[tokio::test]
async fn the_binary_reloads_on_sighup_and_stops_on_sigterm() {
    let maps = MapDir::new("");
    let mut child = Command::new(env!("CARGO_BIN_EXE_alto-server"))
        .args([
            "--config",
            maps.config().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = wait_for_line(&mut child);
    let dir_url = line
        .strip_prefix("ALTO directory: ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let url = dir_url.replace("/directory", "/networkmap");
    let before = get(&url, &[]).await.header("etag").unwrap().to_owned();

    maps.write(
        "network-map.json",
        &maps
            .read("network-map.json")
            .replace("127.4.0.0/16", "127.4.0.0/15"),
    );
    assert!(test_support::signal(&child, "-HUP"));
    let start = Instant::now();
    loop {
        let now = get(&url, &[]).await.header("etag").unwrap().to_owned();
        if now != before {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "SIGHUP did not reload the maps"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(test_support::signal(&child, "-TERM"));
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn the_binary_refuses_a_bad_map_at_start_naming_file_and_line() {
    let maps = MapDir::new("");
    maps.write(
        "routingcost.json",
        &maps
            .read("routingcost.json")
            .replace("\"PID4\":    {", "\"PIDX\":    {"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_alto-server"))
        .args([
            "--config",
            maps.config().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("routingcost.json: line 10, column 5: PID `PIDX` is not in network map"),
        "{err}"
    );
}
