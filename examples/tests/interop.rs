//! Real BitTorrent clients from Debian seed and download through the tracker shim running as
//! PID Head on the embedded loopback topology: aria2 and libtorrent (python3-libtorrent) on
//! 127.x addresses in different PIDs. Every client has DHT, local discovery, PEX, UPnP and
//! NAT-PMP off and talks only to loopback. The test checks that the data arrives intact and
//! that each peer list the shim handed out put same-PID peers first.
//!
//! transmission ignores tracker peers in 127.0.0.0/8 and cannot turn every discovery
//! mechanism off, so its test runs the clients in network namespaces the test creates,
//! joined by a bridge and with no route out; they are deleted at the end.

use alto_model::rank::Policy;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

/// Kills the child when dropped, so a failing test leaves no client behind.
struct Reaped(Child, &'static str);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is missing: apt-get install {package} (.ci/run installs it)"
    );
}

fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A python-libtorrent client, inside namespace `netns` when given.
fn lt_client(
    netns: Option<&str>,
    torrent: &Path,
    save: &Path,
    listen: SocketAddr,
    seed: bool,
    log: &Path,
) -> Reaped {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/clients/lt_client.py");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "/usr/bin/python3"]);
            c
        }
        None => Command::new("/usr/bin/python3"),
    };
    cmd.arg(script)
        .arg("--torrent")
        .arg(torrent)
        .arg("--save")
        .arg(save)
        .arg("--listen")
        .arg(listen.to_string());
    if seed {
        cmd.arg("--seed");
    }
    let out = std::fs::File::create(log).unwrap();
    Reaped(
        cmd.stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
        if seed {
            "libtorrent seeder"
        } else {
            "libtorrent"
        },
    )
}

fn aria2(torrent: &Path, dir: &Path, ip: IpAddr, port: u16, log: &Path) -> Reaped {
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new("aria2c")
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--seed-time=0",
            "--summary-interval=0",
            "--console-log-level=warn",
            "--bt-tracker-interval=2",
        ])
        .arg(format!("--interface={ip}"))
        .arg(format!("--listen-port={port}"))
        .arg(format!("--dir={}", dir.display()))
        .arg(torrent)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Reaped(child, "aria2")
}

/// Waits for `done` to hold, failing with the logs of the clients if it does not in time.
async fn wait_for(what: &str, timeout: Duration, logs: &[PathBuf], mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > timeout {
            let text: Vec<String> = logs
                .iter()
                .map(|l| {
                    format!(
                        "--- {}\n{}",
                        l.display(),
                        std::fs::read_to_string(l).unwrap_or_default()
                    )
                })
                .collect();
            panic!("timed out waiting for {what}\n{}", text.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shim as head of `pid` on `listen`, ranking without a random share and keeping a
/// journal of its answers, once it has its maps.
async fn journaling_head(alto: &alto_server::Running, pid: &str, listen: &str) -> RunningTracker {
    let config = TrackerConfig {
        interval: 5,
        min_interval: 1,
        policy: Policy { random_share: 0.0 },
        journal: 1000,
        ..TrackerConfig::default()
    };
    let follow = Mode::Head {
        alto: alto.directory_url(),
        pid: pid.into(),
        refresh: Duration::from_millis(200),
    };
    let t = RunningTracker::start(Tracker::new(config), listen.parse().unwrap(), None, follow)
        .await
        .unwrap();
    wait_for("the head's maps", Duration::from_secs(10), &[], || {
        t.tracker.maps().is_some()
    })
    .await;
    t
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aria2_and_libtorrent_share_a_file_through_the_head() {
    need("aria2c", "aria2");
    need("/usr/bin/python3", "python3");
    assert!(
        Command::new("/usr/bin/python3")
            .args(["-c", "import libtorrent"])
            .status()
            .unwrap()
            .success(),
        "apt-get install python3-libtorrent"
    );

    let alto = alto_server::Running::start(
        alto_server::Source::Embedded,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let t = journaling_head(&alto, "PID1", "127.1.0.1:0").await;

    let dir = tempfile::tempdir().unwrap();
    let data = testdata::torrent::payload(3 << 20, 42);
    let torrent =
        testdata::torrent::single_file("payload.bin", &data, 1 << 16, &t.announce_url(), &[]);
    let tpath = dir.path().join("payload.torrent");
    std::fs::write(&tpath, &torrent.metainfo).unwrap();
    let folder = |name: &str| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    for seeder in ["seed1", "seed3"] {
        std::fs::write(folder(seeder).join("payload.bin"), &data).unwrap();
    }

    // Seeders in PID1 and PID3; they announce first.
    let s1 = SocketAddr::new(ip("127.1.0.10"), free_port(ip("127.1.0.10")));
    let s3 = SocketAddr::new(ip("127.3.0.10"), free_port(ip("127.3.0.10")));
    let _seed1 = lt_client(None, &tpath, &folder("seed1"), s1, true, &log("seed1"));
    let _seed3 = lt_client(None, &tpath, &folder("seed3"), s3, true, &log("seed3"));
    let logs = [log("seed1"), log("seed3"), log("aria2"), log("lt3")];
    let h = tracker_shim::protocol::InfoHash(torrent.info_hash);
    wait_for(
        "both seeders to announce",
        Duration::from_secs(30),
        &logs,
        || t.tracker.counts(&h).complete == 2,
    )
    .await;

    // Downloaders: aria2 in PID1, libtorrent in PID3.
    let a1 = ip("127.1.0.20");
    let mut aria = aria2(&tpath, &folder("aria2"), a1, free_port(a1), &log("aria2"));
    let d3 = SocketAddr::new(ip("127.3.0.20"), free_port(ip("127.3.0.20")));
    let mut lt3 = lt_client(None, &tpath, &folder("lt3"), d3, false, &log("lt3"));
    let mut finished = [false, false];
    wait_for("both downloads", Duration::from_secs(120), &logs, || {
        for (k, child) in [&mut aria, &mut lt3].into_iter().enumerate() {
            if let Some(status) = child.0.try_wait().unwrap() {
                assert!(status.success(), "{} failed: {status}", child.1);
                finished[k] = true;
            }
        }
        finished == [true, true]
    })
    .await;
    for name in ["aria2", "lt3"] {
        let got = std::fs::read(dir.path().join(name).join("payload.bin")).unwrap();
        assert!(got == data, "{name} got different bytes");
    }

    // What the shim told each downloader: its own PID's seeder first.
    let journal = t.tracker.journal();
    let first_list = |who: IpAddr| {
        journal
            .iter()
            .find(|e| e.announcer.ip() == who && e.peers.len() >= 2)
            .unwrap_or_else(|| panic!("no answer with two peers for {who}: {journal:#?}"))
            .peers
            .clone()
    };
    let to_aria = first_list(a1);
    assert_eq!(to_aria[0], s1, "aria2 in PID1 got {to_aria:?}");
    let to_lt3 = first_list(d3.ip());
    assert_eq!(to_lt3[0], s3, "libtorrent in PID3 got {to_lt3:?}");
    for e in journal.iter().filter(|e| e.peers.len() >= 2) {
        let own = |a: &SocketAddr| {
            a.ip().to_string().split('.').nth(1) == e.announcer.ip().to_string().split('.').nth(1)
        };
        let first_foreign = e
            .peers
            .iter()
            .position(|p| !own(p))
            .unwrap_or(e.peers.len());
        assert!(
            e.peers[first_foreign..].iter().all(|p| !own(p)),
            "same-PID peers not first for {}: {:?}",
            e.announcer,
            e.peers
        );
    }
    t.stop().await;
    alto.stop().await.unwrap();
}

/// Network namespaces and a bridge made by a test, deleted when dropped (also on panic).
struct Lab {
    namespaces: Vec<String>,
    veths: Vec<String>,
    bridge: String,
}

fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    /// A bridge with `10.77.0.1/16` on the host side and one namespace per address, each
    /// with only `lo` and a veth on the bridge: no default route, nothing can leave.
    fn new(addrs: &[&str]) -> Lab {
        let tag = std::process::id() % 100_000;
        let mut lab = Lab {
            namespaces: Vec::new(),
            veths: Vec::new(),
            bridge: format!("altobr{tag}"),
        };
        sh(&format!(
            "ip link add {0} type bridge && ip addr add 10.77.0.1/16 dev {0} && ip link set {0} up",
            lab.bridge
        ));
        for (i, a) in addrs.iter().enumerate() {
            let ns = format!("altotr{tag}-{i}");
            sh(&format!("ip netns add {ns}"));
            lab.namespaces.push(ns.clone());
            let (host, inner) = (format!("alv{tag}h{i}"), format!("alv{tag}n{i}"));
            lab.veths.push(host.clone());
            sh(&format!(
                "ip link add {host} type veth peer name {inner} && ip link set {inner} netns {ns} && \
                 ip link set {host} master {br} && ip link set {host} up && \
                 ip -n {ns} link set lo up && ip -n {ns} addr add {a}/16 dev {inner} && ip -n {ns} link set {inner} up",
                br = lab.bridge
            ));
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting the host end of a veth deletes both ends, even if the namespace lingers.
        for v in &self.veths {
            let _ = Command::new("ip").args(["link", "del", v]).status();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

fn can_make_namespaces() -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return Err("not root".into());
    }
    let probe = format!("altoprobe{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &probe])
        .status()
        .is_ok_and(|s| s.success());
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    if ok {
        Ok(())
    } else {
        Err("`ip netns add` failed".into())
    }
}

const LAN_MAP: &str = r#"{"network-map": {
  "lanA": {"ipv4": ["10.77.1.0/24"]},
  "lanB": {"ipv4": ["10.77.2.0/24"]},
  "lanC": {"ipv4": ["10.77.3.0/24"]},
  "default": {"ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]}
}}"#;
const LAN_COSTS: &str = r#"{"cost-map": {
  "lanA": {"lanA": 1, "lanB": 5, "lanC": 40, "default": 100},
  "lanB": {"lanA": 5, "lanB": 1, "lanC": 40, "default": 100},
  "lanC": {"lanA": 40, "lanB": 40, "lanC": 1, "default": 100}
}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transmission_downloads_through_the_head_inside_namespaces() {
    if let Err(why) = can_make_namespaces() {
        test_support::skip(&format!(
            "transmission needs network namespaces and this machine does not allow them ({why})"
        ));
        return;
    }
    need("transmission-cli", "transmission-cli");
    need("/usr/bin/python3", "python3");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("network-map.json"), LAN_MAP).unwrap();
    std::fs::write(dir.path().join("routingcost.json"), LAN_COSTS).unwrap();
    std::fs::write(
        dir.path().join("alto.toml"),
        "[network-map]\nresource-id = \"lan\"\nfile = \"network-map.json\"\n[[cost-map]]\nmetric = \"routingcost\"\nfile = \"routingcost.json\"\n",
    )
    .unwrap();
    let alto = alto_server::Running::start(
        alto_server::Source::File(dir.path().join("alto.toml")),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();

    // Seeders in lanA and lanC, transmission downloading in lanA.
    let lab = Lab::new(&["10.77.1.2", "10.77.3.2", "10.77.1.3"]);
    let t = journaling_head(&alto, "lanA", "10.77.0.1:0").await;

    let data = testdata::torrent::payload(2 << 20, 7);
    let torrent =
        testdata::torrent::single_file("payload.bin", &data, 1 << 16, &t.announce_url(), &[]);
    let tpath = dir.path().join("payload.torrent");
    std::fs::write(&tpath, &torrent.metainfo).unwrap();
    let folder = |name: &str| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let mut seeders = Vec::new();
    for (k, addr) in [(0, "10.77.1.2:51001"), (1, "10.77.3.2:51003")] {
        let save = folder(&format!("seed{k}"));
        std::fs::write(save.join("payload.bin"), &data).unwrap();
        let listen = addr.parse().unwrap();
        seeders.push(lt_client(
            Some(&lab.namespaces[k]),
            &tpath,
            &save,
            listen,
            true,
            &log(&format!("seed{k}")),
        ));
    }
    let h = tracker_shim::protocol::InfoHash(torrent.info_hash);
    let logs = [log("seed0"), log("seed1"), log("transmission")];
    wait_for(
        "both seeders to announce",
        Duration::from_secs(30),
        &logs,
        || t.tracker.counts(&h).complete == 2,
    )
    .await;

    let cfg = folder("transmission-config");
    std::fs::write(
        cfg.join("settings.json"),
        r#"{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "port-forwarding-enabled": false, "utp-enabled": false}"#,
    )
    .unwrap();
    let out_dir = folder("transmission");
    let out = std::fs::File::create(log("transmission")).unwrap();
    let transmission = Reaped(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.namespaces[2],
                "transmission-cli",
                "-M",
                "-p",
                "51005",
                "-g",
            ])
            .arg(&cfg)
            .arg("-w")
            .arg(&out_dir)
            .arg(&tpath)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
        "transmission",
    );
    let target = out_dir.join("payload.bin");
    wait_for(
        "transmission's download",
        Duration::from_secs(120),
        &logs,
        || std::fs::read(&target).is_ok_and(|b| b == data),
    )
    .await;

    let journal = t.tracker.journal();
    let to_tr = journal
        .iter()
        .find(|e| e.announcer.ip() == ip("10.77.1.3") && e.peers.len() >= 2)
        .unwrap_or_else(|| panic!("no answer with two peers for transmission: {journal:#?}"));
    assert_eq!(
        to_tr.peers[0].ip(),
        ip("10.77.1.2"),
        "transmission in lanA got {:?}",
        to_tr.peers
    );
    drop(transmission);
    drop(seeders);
    t.stop().await;
    alto.stop().await.unwrap();
    drop(lab);
}
