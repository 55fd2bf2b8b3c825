//! The `rqbit-alto` binary: seed and download with `--json`, going on without an
//! unreachable ALTO server (through the torrent's original tracker), and exit codes for bad
//! torrents and I/O errors.

use std::process::Command;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_rqbit-alto");

/// Starts `rqbit-alto seed` and returns it with the path of the torrent it wrote.
fn seed(file: &std::path::Path, listen: &str, extra: &[&str]) -> (std::process::Child, String) {
    test_support::spawn_with_first_line(
        Command::new(BIN)
            .arg("seed")
            .arg(file)
            .args(["--listen", listen, "--seed-for", "60"])
            .args(extra),
    )
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn download(
    torrent: &str,
    listen: &str,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    Command::new(BIN)
        .args([
            "download", torrent, "--json", "--listen", listen, "--output",
        ])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_alto_the_original_tracker_is_used() {
    let tracker = RunningTracker::start(
        Tracker::new(TrackerConfig::default()),
        "127.0.0.1:0".parse().unwrap(),
        None,
        Mode::Plain,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    let data = testdata::torrent::payload(1 << 20, 5);
    std::fs::write(&file, &data).unwrap();
    let dead_alto = "http://127.0.0.1:9/directory";
    let (child, torrent) = seed(
        &file,
        "127.1.0.40:0",
        &["--alto", dead_alto, "--tracker", &tracker.announce_url()],
    );
    let _seed = Killed(child);
    assert!(torrent.ends_with("data.bin.torrent"), "{torrent}");
    let out_dir = dir.path().join("out");
    let out = tokio::task::spawn_blocking({
        let (t, o) = (torrent.clone(), out_dir.clone());
        move || download(&t, "127.2.0.40:0", &o, &["--alto", dead_alto])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the ALTO server is unreachable"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out_dir.join("data.bin")).unwrap(), data);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (summary["type"].as_str(), summary["finished"].as_bool()),
        (Some("summary"), Some(true))
    );
    assert_eq!(summary["have_bytes"], 1 << 20);
    tracker.stop().await;
}

#[test]
fn bad_input_gets_clear_messages_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Command::new(BIN)
        .args(["download", "/nonexistent/x.torrent"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/x.torrent"));
    let bad = dir.path().join("bad.torrent");
    std::fs::write(&bad, "not a torrent").unwrap();
    let out = Command::new(BIN)
        .arg("download")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a .torrent file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["download", "magnet:?dn=nothing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["seed", "/nonexistent/file"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = Command::new(BIN).args(["download"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
}
