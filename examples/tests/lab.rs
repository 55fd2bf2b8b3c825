//! A small lab run: 2 PIDs × 6 clients and a 4 MiB file, the ALTO run and the baseline.
//! Every client completes with identical data (the lab checks each file against the
//! payload), and the ALTO run keeps a larger share of the bytes inside PIDs. The `--netns`
//! lab, where the machine allows it, with the six Debian clients as members too, and on
//! three ALTO server replicas of which one is killed. The hard
//! cases that threaten users most, small: a hostile head per PID and heads that quit at half
//! of the file; every member still completes with identical data.

use alto_examples::lab::{self, LabConfig, Scenario};
use alto_examples::third_party::Kind;
use std::time::Duration;

/// One lab at a time: a lab measures how clients race for pieces, and labs run side by side
/// on two cores would measure each other (`cargo test` runs a file's tests in parallel).
static ONE_LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_lab_localizes_traffic_and_everyone_completes() {
    let _one = ONE_LAB.lock().await;
    // Six clients per PID, arriving faster than they download: a PID has peers of its own
    // to trade with. (With three per PID, done in a second each, a member is through before
    // a neighbour has anything, its random share of other PIDs' peers serves it whole, and
    // ALTO and the baseline are both a coin toss around one half.)
    let config = LabConfig {
        clients_per_pid: 6,
        file_bytes: 4 << 20,
        arrival_gap: Duration::from_millis(300),
        ..small(Scenario::Homogeneous)
    };
    let r = lab::run(&config).await.unwrap();
    for (name, f) in [("ALTO", &r.alto), ("baseline", &r.baseline)] {
        assert_eq!(f.clients, 12);
        assert_eq!(f.completed, 12, "{name}: failed clients {:?}", f.failed);
        assert_eq!(f.completion_s.len(), 12);
    }
    assert!(
        r.alto.localization > r.baseline.localization,
        "ALTO {:.2} vs baseline {:.2}",
        r.alto.localization,
        r.baseline.localization
    );
    assert!(r.alto.alto_server_requests > 0 && r.baseline.alto_server_requests == 0);
    let j = lab::json(&r);
    for key in [
        "localization",
        "baseline_localization",
        "cross_pid_bytes",
        "baseline_cross_pid_bytes",
        "lower_bound_bytes",
        "completion_p50_s",
        "baseline_completion_p50_s",
        "alto_server_requests",
        "head_requests",
        "completed",
        "clients",
    ] {
        assert!(j.get(key).is_some(), "missing `{key}`");
    }
    assert_eq!(j["lower_bound_bytes"], 4 << 20);
    let svg = lab::svg(&r);
    assert!(svg.starts_with("<svg") && svg.contains("PID2"));
    eprintln!("{}", lab::table(&r));
}

/// The small lab on three replicas over HTTPS sharing a 3-member etcd, one of them killed
/// at half of the arrivals (`--replicas 3 --etcd --tls --kill-replica`); `None` (skipped)
/// without etcd.
fn three_replicas_one_killed() -> Option<LabConfig> {
    if !test_support::etcd::available() {
        test_support::skip("etcd is not installed (Debian: etcd-server etcd-client)");
        return None;
    }
    Some(LabConfig {
        replicas: 3,
        etcd: true,
        kill_replica: true,
        tls: true,
        replica_program: Some(env!("CARGO_BIN_EXE_swarm-lab").into()),
        ..small(Scenario::Homogeneous)
    })
}

/// Whether the `--netns` lab can run here; says why not (a failure where every test must run).
fn netns_available() -> bool {
    let why = alto_examples::netns::available().err();
    if let Some(why) = &why {
        test_support::skip(&format!(
            "the --netns lab needs root and `ip netns` ({why})"
        ));
    }
    why.is_none()
}

/// The `--netns` lab of `config` on links of 20 Mbit/s; `None` (skipped) when `rqbit-alto`
/// is not built.
async fn netns_run(config: &LabConfig) -> Option<lab::LabReport> {
    match alto_examples::netns::run(config, 20_000).await {
        Ok(r) => Some(r),
        Err(e) if e.to_string().contains("rqbit-alto is not built") => {
            test_support::skip(&e.to_string());
            None
        }
        Err(e) => panic!("{e:#}"),
    }
}

/// The small lab of this file in `scenario`.
fn small(scenario: Scenario) -> LabConfig {
    LabConfig {
        pids: 2,
        clients_per_pid: 3,
        file_bytes: 2 << 20,
        upload_bps: 2 << 20,
        arrival_gap: Duration::from_millis(400),
        timeout: Duration::from_secs(120),
        progress: false,
        scenario,
        ..LabConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_junk_heads_still_complete_with_identical_data() {
    let _one = ONE_LAB.lock().await;
    let r = lab::run(&small(Scenario::JunkHead)).await.unwrap();
    for (name, f) in [("ALTO", &r.alto), ("baseline", &r.baseline)] {
        // The lab counts a client complete only when its file equals the payload.
        assert_eq!(f.completed, 6, "{name}: failed clients {:?}", f.failed);
    }
    assert!(
        r.alto.elections >= 2,
        "a hostile head was elected in each PID"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_heads_quit_at_half_of_the_file_everyone_else_completes() {
    let _one = ONE_LAB.lock().await;
    // Uplinks slow enough that nobody has half of the file before the lab looks.
    let config = LabConfig {
        upload_bps: 512 << 10,
        ..small(Scenario::HeadLeaves)
    };
    let r = lab::run(&config).await.unwrap();
    for (name, f) in [("ALTO", &r.alto), ("baseline", &r.baseline)] {
        assert_eq!(f.left, 2, "{name}: the first client of each PID quit");
        assert_eq!(f.clients, 4);
        assert_eq!(f.completed, 4, "{name}: failed clients {:?}", f.failed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_netns_lab_runs_where_the_machine_allows_it() {
    let _one = ONE_LAB.lock().await;
    if !netns_available() {
        return;
    }
    // The six Debian clients join as ordinary members where installed, announcing through
    // the announce front (scripts/test installs them; in CI a missing one fails the test).
    let installed = |k: Kind| {
        if !k.installed() {
            test_support::skip(&format!("{} is not installed: left out", k.program()));
        }
        usize::from(k.installed())
    };
    let config = LabConfig {
        pids: 2,
        clients_per_pid: 2,
        file_bytes: 2 << 20,
        upload_bps: 2 << 20,
        arrival_gap: Duration::from_millis(500),
        timeout: Duration::from_secs(120),
        progress: false,
        aria2_per_pid: installed(Kind::Aria2),
        transmission_per_pid: installed(Kind::Transmission),
        qbittorrent_per_pid: installed(Kind::Qbittorrent),
        rtorrent_per_pid: installed(Kind::Rtorrent),
        ctorrent_per_pid: installed(Kind::Ctorrent),
        libtorrent_per_pid: installed(Kind::Libtorrent),
        ..LabConfig::default()
    };
    let third: usize = 2 * config.third_party().iter().map(|(_, n)| n).sum::<usize>();
    let Some(r) = netns_run(&config).await else {
        return;
    };
    for (name, f) in [("ALTO", &r.alto), ("baseline", &r.baseline)] {
        assert_eq!(f.clients, 4 + third, "{name}");
        assert_eq!(f.third_party, third, "{name}");
        assert_eq!(
            f.completed,
            4 + third,
            "{name}: failed clients {:?}",
            f.failed
        );
    }
    assert!(
        r.alto.cross_pid_bytes > 0 || r.alto.inside_bytes > 0,
        "no bytes attributed"
    );
    eprintln!("{}", lab::table(&r));
    // Every namespace the lab made is gone.
    let left = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let tag = format!("alab{}-", std::process::id() % 100_000);
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&tag),
        "namespaces left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_three_replicas_on_etcd_over_https_and_one_killed_every_download_completes() {
    let Some(config) = three_replicas_one_killed() else {
        return;
    };
    let _one = ONE_LAB.lock().await;
    let r = lab::run(&config).await.unwrap();
    // The replica is killed as the fourth client arrives, which (like every third one, the
    // seeder counted) has it first in its list: it fails over to the next one, joins there
    // and downloads; the others that used it fail over at their next request.
    assert_eq!(r.alto.completed, 6, "failed clients {:?}", r.alto.failed);
    assert!(r.alto.head_announces > 0, "no announce reached a head");
    assert_eq!(
        r.alto.https_trackers, 7,
        "the seeder's and the six clients'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_namespaces_three_replicas_over_https_lose_one_and_every_download_completes() {
    let Some(config) = three_replicas_one_killed() else {
        return;
    };
    let _one = ONE_LAB.lock().await;
    if !netns_available() {
        return;
    }
    // The replicas listen on the bridge, where the namespaces reach them (etcd stays on the
    // host's loopback, the replicas' own); `--netns --replicas 3 --etcd --tls --kill-replica`.
    let dir = tempfile::tempdir().unwrap();
    let config = LabConfig {
        dir: Some(dir.path().to_owned()),
        ..config
    };
    let Some(r) = netns_run(&config).await else {
        return;
    };
    for (name, f) in [("ALTO", &r.alto), ("baseline", &r.baseline)] {
        assert_eq!(f.completed, 6, "{name}: failed clients {:?}", f.failed);
    }
    // The replica dies as the fourth client arrives, which has it first in its list: that
    // client fails over (its log says so) and joins through the next. No client started
    // before its join was answered.
    let logs: Vec<(String, String)> = ["10.77.1.10", "10.77.2.10", "10.77.1.11", "10.77.2.11"]
        .into_iter()
        .chain(["10.77.1.12", "10.77.2.12", "seeder"])
        .map(|c| {
            let log = dir.path().join("alto").join(c).join("stderr.log");
            (
                c.to_owned(),
                std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display())),
            )
        })
        .collect();
    let failed_over = logs.iter().find(|(c, _)| c == "10.77.2.11").unwrap();
    assert!(
        failed_over.1.contains("failed") && failed_over.1.contains("trying https://"),
        "the fourth client did not fail over: {}",
        failed_over.1
    );
    for (c, log) in &logs {
        assert!(!log.contains("unreachable"), "{c}: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alto_path_runs_over_https_with_the_labs_ca() {
    let _one = ONE_LAB.lock().await;
    let config = LabConfig {
        tls: true,
        ..small(Scenario::Homogeneous)
    };
    let r = lab::run(&config).await.unwrap();
    assert_eq!(r.alto.completed, 6, "failed clients {:?}", r.alto.failed);
    // The clients reached the server over HTTPS: they joined, and heads were elected.
    assert!(r.alto.alto_server_requests > 0);
    assert!(r.alto.elections >= 2, "elections: {}", r.alto.elections);
    // Every client's tracker, its PID's head when elected, served HTTPS, and the heads
    // answered announces through it: librqbit swarms through HTTPS heads.
    assert_eq!(
        r.alto.https_trackers, 7,
        "the seeder's and the six clients'"
    );
    assert!(r.alto.head_announces > 0, "no announce reached a head");
}
