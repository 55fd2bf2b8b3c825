//! Third-party BitTorrent clients from Debian as peers in tests and in the `--netns` lab:
//! aria2, transmission and libtorrent (python3-libtorrent, through
//! `testdata/clients/lt_client.py`). They know nothing of ALTO; every one of them is started
//! with DHT, local peer discovery, peer exchange and port mapping off, so it talks only to
//! the tracker and the peers the tracker names.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A third-party client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `aria2c` (Debian `aria2`).
    Aria2,
    /// `transmission-cli` (Debian `transmission-cli`). It ignores tracker peers in
    /// 127.0.0.0/8, so it runs only inside namespaces.
    Transmission,
    /// libtorrent's Python binding (Debian `python3-libtorrent`) under Debian's interpreter.
    Libtorrent,
}

/// Debian's interpreter, the one `python3-libtorrent` is built for.
const PYTHON: &str = "/usr/bin/python3";

/// The libtorrent peer script.
fn lt_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/lt_client.py")
}

/// Whether `sh` finds `program`.
fn on_path(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Kind {
    /// The program.
    pub fn program(self) -> &'static str {
        match self {
            Kind::Aria2 => "aria2c",
            Kind::Transmission => "transmission-cli",
            Kind::Libtorrent => PYTHON,
        }
    }

    /// The Debian package that has it.
    pub fn package(self) -> &'static str {
        match self {
            Kind::Aria2 => "aria2",
            Kind::Transmission => "transmission-cli",
            Kind::Libtorrent => "python3-libtorrent",
        }
    }

    /// Whether the client is installed (for libtorrent: the interpreter imports it).
    pub fn installed(self) -> bool {
        match self {
            Kind::Libtorrent => Command::new(PYTHON)
                .args(["-c", "import libtorrent"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            k => on_path(k.program()),
        }
    }

    /// Fails with the package to install when the client is missing.
    pub fn require(self) -> Result<(), String> {
        if self.installed() {
            Ok(())
        } else {
            Err(format!(
                "{} is not installed: apt-get install {} (scripts/test installs it)",
                self.program(),
                self.package()
            ))
        }
    }

    /// The command that runs the client as `launch` says, its output into `launch.log`.
    /// Not started: the caller spawns it (through tokio's `Command::from` where async).
    pub fn command(self, launch: &Launch<'_>) -> std::io::Result<Command> {
        std::fs::create_dir_all(launch.dir)?;
        let mut cmd = match launch.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, self.program()]);
                c
            }
            None => Command::new(self.program()),
        };
        let ip = launch.listen.ip();
        match self {
            Kind::Aria2 => {
                cmd.args([
                    "--enable-dht=false",
                    "--enable-dht6=false",
                    "--bt-enable-lpd=false",
                    "--enable-peer-exchange=false",
                    // 0.0: seed regardless of the share ratio, until killed.
                    if launch.seed_on {
                        "--seed-ratio=0.0"
                    } else {
                        "--seed-time=0"
                    },
                    "--summary-interval=0",
                    "--console-log-level=warn",
                ])
                .arg(format!(
                    "--bt-tracker-interval={}",
                    launch.tracker_interval_s
                ))
                .arg(format!("--listen-port={}", launch.listen.port()))
                .arg(format!("--interface={ip}"))
                .arg(format!("--dir={}", launch.dir.display()))
                .arg(launch.torrent);
            }
            Kind::Transmission => {
                // transmission-cli seeds on until killed; it has no flag to stop.
                let cfg = launch.dir.join("transmission-config");
                std::fs::create_dir_all(&cfg)?;
                std::fs::write(
                    cfg.join("settings.json"),
                    format!(
                        r#"{{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "port-forwarding-enabled": false, "utp-enabled": false, "rename-partial-files": false, "bind-address-ipv4": "{ip}"}}"#
                    ),
                )?;
                cmd.args(["-M", "-p", &launch.listen.port().to_string(), "-g"])
                    .arg(&cfg)
                    .arg("-w")
                    .arg(launch.dir)
                    .arg(launch.torrent);
            }
            Kind::Libtorrent => {
                cmd.arg(lt_script())
                    .arg("--torrent")
                    .arg(launch.torrent)
                    .arg("--save")
                    .arg(launch.dir)
                    .arg("--listen")
                    .arg(launch.listen.to_string());
                // The script seeds only as a seeder; a downloader exits once done.
                if launch.seed_on {
                    cmd.arg("--seed");
                }
            }
        }
        let log = std::fs::File::create(launch.log)?;
        cmd.stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null());
        Ok(cmd)
    }

    /// Starts the client as `launch` says; it is killed when the returned guard drops.
    pub fn spawn(self, launch: &Launch<'_>) -> std::io::Result<Reaped> {
        Ok(Reaped {
            child: self.command(launch)?.spawn()?,
            kind: self,
        })
    }
}

/// How to run one client.
#[derive(Clone, Copy, Debug)]
pub struct Launch<'a> {
    /// The namespace to run in (`None`: this one).
    pub netns: Option<&'a str>,
    /// The address and port to listen on and to connect from.
    pub listen: SocketAddr,
    /// The `.torrent` file.
    pub torrent: &'a Path,
    /// The folder the data is in or goes to.
    pub dir: &'a Path,
    /// The file for the client's output.
    pub log: &'a Path,
    /// Keep seeding once the data is complete (libtorrent: start as a seeder); otherwise
    /// aria2 and libtorrent exit when done.
    pub seed_on: bool,
    /// aria2's announce interval, seconds.
    pub tracker_interval_s: u32,
}

impl<'a> Launch<'a> {
    /// A client on `listen` downloading `torrent` into `dir`, writing `log`, exiting when
    /// done; aria2 announces every 5 s.
    pub fn new(listen: SocketAddr, torrent: &'a Path, dir: &'a Path, log: &'a Path) -> Self {
        Launch {
            netns: None,
            listen,
            torrent,
            dir,
            log,
            seed_on: false,
            tracker_interval_s: 5,
        }
    }
}

/// A running client, killed (and waited for) when dropped, so a failing test leaves no
/// client behind.
pub struct Reaped {
    /// The process.
    pub child: Child,
    /// What it runs.
    pub kind: Kind,
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on `ip` at the time of asking.
pub fn free_port(ip: IpAddr) -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &Command) -> Vec<String> {
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_client_runs_with_discovery_off_and_in_its_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let (t, log) = (dir.path().join("x.torrent"), dir.path().join("x.log"));
        let launch = Launch {
            netns: Some("ns1"),
            seed_on: true,
            ..Launch::new("10.77.1.2:6881".parse().unwrap(), &t, dir.path(), &log)
        };
        let aria = args(&Kind::Aria2.command(&launch).unwrap());
        assert_eq!(aria[..4], ["ip", "netns", "exec", "ns1"]);
        for a in [
            "aria2c",
            "--enable-dht=false",
            "--enable-peer-exchange=false",
            "--seed-ratio=0.0",
            "--interface=10.77.1.2",
            "--listen-port=6881",
        ] {
            assert!(aria.iter().any(|x| x == a), "{a} missing from {aria:?}");
        }
        let tr = args(&Kind::Transmission.command(&launch).unwrap());
        assert!(tr.iter().any(|x| x == "-M"), "{tr:?}");
        let settings =
            std::fs::read_to_string(dir.path().join("transmission-config/settings.json")).unwrap();
        for off in ["dht-enabled", "lpd-enabled", "pex-enabled", "utp-enabled"] {
            assert!(
                settings.contains(&format!("\"{off}\": false")),
                "{settings}"
            );
        }
        let lt = args(&Kind::Libtorrent.command(&launch).unwrap());
        assert!(lt.iter().any(|x| x.ends_with("lt_client.py")), "{lt:?}");
        assert!(lt.iter().any(|x| x == "--seed"), "{lt:?}");
    }

    #[test]
    fn a_downloader_of_aria2_exits_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let (t, log) = (dir.path().join("x.torrent"), dir.path().join("x.log"));
        let launch = Launch::new("127.1.0.2:7000".parse().unwrap(), &t, dir.path(), &log);
        let aria = args(&Kind::Aria2.command(&launch).unwrap());
        assert_eq!(aria[0], "aria2c");
        assert!(aria.iter().any(|x| x == "--seed-time=0"), "{aria:?}");
    }
}
