//! Third-party BitTorrent clients from Debian as peers in tests and in the `--netns` lab:
//! aria2, transmission, libtorrent (python3-libtorrent, through
//! `testdata/clients/lt_client.py`), qBittorrent (`qbittorrent-nox`), rtorrent and ctorrent.
//! They know nothing of ALTO; every one of them is started with DHT, local peer discovery,
//! peer exchange and port mapping off (those it has), so it talks only to the tracker and the
//! peers the tracker names.
//!
//! The files a client needs besides the data go into `launch.dir` next to it:
//! `transmission-config/`, `qbittorrent-profile/` (its own log is
//! `qbittorrent-profile/qBittorrent/data/logs/qbittorrent.log`; `launch.log` gets only its
//! stdout), `rtorrent-session/` (with the `rtorrent.rc` it imports) and `ctorrent.bf`.
//!
//! Quirks found by hand (Debian 12: qBittorrent 4.5.2, rtorrent 0.9.8, ctorrent dnh3.3.2):
//! - qbittorrent-nox always runs its Web UI (`WebUI\Enabled` is ignored without a GUI) and
//!   exits at once when it cannot bind it, so the Web UI gets the listen IP and port + 1.
//!   It stops cleanly on SIGTERM in about 1.5 s (announcing `stopped`), never exits by
//!   itself, and announces a seeder only after its hash check (about 2 s for 2 MiB).
//! - rtorrent runs headless with `system.daemon.set = true` (no TERM needed); it ignores
//!   the tracker's short interval (no re-announce within minutes), so a peer that comes
//!   later finds it rather than the other way round. It exits on SIGTERM in about 2 s.
//! - ctorrent prints a status line every second to stdout, reads stdin only to notice its
//!   end ("Input channel is now off"), takes 10 to 15 s to exit after the download or on
//!   SIGTERM (it announces `stopped` first), and binds only its listening socket and its
//!   tracker requests to `-i`: in a namespace with several addresses its outgoing peer
//!   connections leave from the namespace's first address.
//! - aria2 (1.36) sends a `bitfield` message instead of `have` once that is no longer, which
//!   on small torrents (32 pieces) is after every piece; rtorrent and ctorrent drop the
//!   connection then, so an aria2 leecher gets about a piece per reconnection (a 2 MiB
//!   download from them takes about 3.5 minutes instead of a second).

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
    /// `qbittorrent-nox` (Debian `qbittorrent-nox`), with a profile written into the data
    /// folder. It ignores tracker peers in 127.0.0.0/8 and refuses loopback trackers whose
    /// path is not `/announce`, so it runs only inside namespaces.
    Qbittorrent,
    /// `rtorrent` (Debian `rtorrent`), headless, with an `rtorrent.rc` written into the
    /// data folder.
    Rtorrent,
    /// `ctorrent` (Debian `ctorrent`, Enhanced CTorrent); it has no DHT, LPD, PEX or port
    /// mapping to turn off.
    Ctorrent,
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
            Kind::Qbittorrent => "qbittorrent-nox",
            Kind::Rtorrent => "rtorrent",
            Kind::Ctorrent => "ctorrent",
        }
    }

    /// The Debian package that has it.
    pub fn package(self) -> &'static str {
        match self {
            Kind::Aria2 => "aria2",
            Kind::Transmission => "transmission-cli",
            Kind::Libtorrent => "python3-libtorrent",
            Kind::Qbittorrent => "qbittorrent-nox",
            Kind::Rtorrent => "rtorrent",
            Kind::Ctorrent => "ctorrent",
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
                    // Data already in the folder (a seeder's) is checked and seeded; without
                    // it aria2 refuses a file that has no `.aria2` control file.
                    "--check-integrity=true",
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
            Kind::Qbittorrent => {
                // qbittorrent-nox seeds on until killed, whatever `seed_on` says.
                let profile = launch.dir.join("qbittorrent-profile");
                let cfg = profile.join("qBittorrent").join("config");
                std::fs::create_dir_all(&cfg)?;
                std::fs::write(cfg.join("qBittorrent.conf"), qbittorrent_conf(launch))?;
                cmd.arg(format!("--profile={}", profile.display()))
                    .arg(format!("--save-path={}", launch.dir.display()))
                    .arg("--add-paused=false")
                    .arg(launch.torrent);
            }
            Kind::Rtorrent => {
                let session = launch.dir.join("rtorrent-session");
                std::fs::create_dir_all(&session)?;
                let rc = session.join("rtorrent.rc");
                std::fs::write(&rc, rtorrent_rc(launch, &session))?;
                // -n: not ~/.rtorrent.rc; the torrent on the command line is loaded and
                // started.
                cmd.arg("-n")
                    .arg("-o")
                    .arg(format!("import={}", rc.display()))
                    .arg(launch.torrent);
            }
            Kind::Ctorrent => {
                // A single-file torrent's `-s` names the file, not a folder: ctorrent runs in
                // the folder instead, so the paths it is given must not be relative.
                let dir = std::path::absolute(launch.dir)?;
                cmd.current_dir(&dir)
                    .arg("-i")
                    .arg(ip.to_string())
                    .arg("-p")
                    .arg(launch.listen.port().to_string())
                    .arg("-b")
                    .arg(dir.join("ctorrent.bf"))
                    // Hours of seeding once complete: 0 exits when done, a year is "until
                    // killed".
                    .arg("-e")
                    .arg(if launch.seed_on { "8760" } else { "0" })
                    .arg(std::path::absolute(launch.torrent)?);
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

/// qBittorrent's `qBittorrent.conf` for `launch`: legal notice accepted, DHT, PeX, LSD and
/// port mapping off, listening on `launch.listen` only, saving into `launch.dir`, no peer
/// country lookup (it would download a geolocation database), and the Web UI (always on in
/// qbittorrent-nox) on the listen IP and the next port.
fn qbittorrent_conf(launch: &Launch<'_>) -> String {
    let ip = launch.listen.ip();
    let port = launch.listen.port();
    let web_port = port.checked_add(1).unwrap_or(port - 1);
    let dir = launch.dir.display();
    format!(
        "[LegalNotice]\n\
         Accepted=true\n\
         \n\
         [BitTorrent]\n\
         Session\\DHTEnabled=false\n\
         Session\\LSDEnabled=false\n\
         Session\\PeXEnabled=false\n\
         Session\\Port={port}\n\
         Session\\InterfaceAddress={ip}\n\
         Session\\DefaultSavePath={dir}\n\
         Session\\TempPathEnabled=false\n\
         Session\\QueueingSystemEnabled=false\n\
         Session\\AddTorrentPaused=false\n\
         Session\\GlobalMaxRatio=-1\n\
         \n\
         [Network]\n\
         PortForwardingEnabled=false\n\
         \n\
         [Preferences]\n\
         Connection\\UPnP=false\n\
         Connection\\ResolvePeerCountries=false\n\
         WebUI\\Address={ip}\n\
         WebUI\\Port={web_port}\n\
         WebUI\\UseUPnP=false\n"
    )
}

/// rtorrent's `rtorrent.rc` for `launch`: headless, DHT and PEX off, UDP trackers off,
/// listening on and connecting from `launch.listen` only, its session in `session`, its log
/// in `launch.log`; without `seed_on` it shuts down once the download is finished.
fn rtorrent_rc(launch: &Launch<'_>, session: &Path) -> String {
    let ip = launch.listen.ip();
    let port = launch.listen.port();
    let mut rc = format!(
        "system.daemon.set = true\n\
         directory.default.set = \"{}\"\n\
         session.path.set = \"{}\"\n\
         network.bind_address.set = {ip}\n\
         network.local_address.set = {ip}\n\
         network.port_range.set = {port}-{port}\n\
         network.port_random.set = no\n\
         dht.mode.set = disable\n\
         protocol.pex.set = no\n\
         trackers.use_udp.set = no\n\
         log.open_file = \"main\", \"{}\"\n\
         log.add_output = \"info\", \"main\"\n",
        launch.dir.display(),
        session.display(),
        launch.log.display(),
    );
    if !launch.seed_on {
        rc.push_str(
            "method.set_key = event.download.finished, exit_when_done, \
             \"system.shutdown.normal=\"\n",
        );
    }
    rc
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
    /// aria2, libtorrent, rtorrent and ctorrent exit when done (transmission and qBittorrent
    /// seed on regardless).
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

        let qb = args(&Kind::Qbittorrent.command(&launch).unwrap());
        assert_eq!(qb[..5], ["ip", "netns", "exec", "ns1", "qbittorrent-nox"]);
        let profile = dir.path().join("qbittorrent-profile");
        assert!(
            qb.contains(&format!("--profile={}", profile.display())),
            "{qb:?}"
        );
        let conf =
            std::fs::read_to_string(profile.join("qBittorrent/config/qBittorrent.conf")).unwrap();
        for line in [
            "Accepted=true",
            "Session\\DHTEnabled=false",
            "Session\\LSDEnabled=false",
            "Session\\PeXEnabled=false",
            "PortForwardingEnabled=false",
            "Connection\\UPnP=false",
            "Session\\Port=6881",
            "Session\\InterfaceAddress=10.77.1.2",
            "WebUI\\Address=10.77.1.2",
            "WebUI\\Port=6882",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "{line} missing from {conf}"
            );
        }

        let rt = args(&Kind::Rtorrent.command(&launch).unwrap());
        assert_eq!(rt[..6], ["ip", "netns", "exec", "ns1", "rtorrent", "-n"]);
        let rc = std::fs::read_to_string(dir.path().join("rtorrent-session/rtorrent.rc")).unwrap();
        for line in [
            "system.daemon.set = true",
            "dht.mode.set = disable",
            "protocol.pex.set = no",
            "network.bind_address.set = 10.77.1.2",
            "network.local_address.set = 10.77.1.2",
            "network.port_range.set = 6881-6881",
        ] {
            assert!(rc.lines().any(|l| l == line), "{line} missing from {rc}");
        }
        assert!(!rc.contains("system.shutdown"), "a seeder seeds on: {rc}");

        let ctc = Kind::Ctorrent.command(&launch).unwrap();
        assert_eq!(ctc.get_current_dir(), Some(dir.path()));
        let ct = args(&ctc);
        assert_eq!(ct[..5], ["ip", "netns", "exec", "ns1", "ctorrent"]);
        for pair in [["-i", "10.77.1.2"], ["-p", "6881"], ["-e", "8760"]] {
            assert!(
                ct.windows(2).any(|w| w == pair),
                "{pair:?} missing from {ct:?}"
            );
        }
    }

    #[test]
    fn a_downloader_of_aria2_exits_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let (t, log) = (dir.path().join("x.torrent"), dir.path().join("x.log"));
        let launch = Launch::new("127.1.0.2:7000".parse().unwrap(), &t, dir.path(), &log);
        let aria = args(&Kind::Aria2.command(&launch).unwrap());
        assert_eq!(aria[0], "aria2c");
        assert!(aria.iter().any(|x| x == "--seed-time=0"), "{aria:?}");
        let rt = args(&Kind::Rtorrent.command(&launch).unwrap());
        assert_eq!(rt[0], "rtorrent");
        let rc = std::fs::read_to_string(dir.path().join("rtorrent-session/rtorrent.rc")).unwrap();
        assert!(rc.contains("system.shutdown.normal="), "{rc}");
        let ct = args(&Kind::Ctorrent.command(&launch).unwrap());
        assert!(ct.windows(2).any(|w| w == ["-e", "0"]), "{ct:?}");
    }
}
