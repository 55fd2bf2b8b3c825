//! Third-party BitTorrent clients from Debian (aria2, transmission) as ordinary members of a
//! PID in the `--netns` lab. They know nothing of ALTO: in the ALTO run they announce to
//! their PID's head, which the lab looks up in the ALTO server's head directory when the
//! client arrives (as a portal handing out the torrent would), and in the baseline to the
//! plain tracker. DHT, local peer discovery, peer exchange and port mapping are off, and they
//! run only inside the lab's namespaces, which have no route out.

use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;

/// A third-party client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `aria2c` (Debian `aria2`).
    Aria2,
    /// `transmission-cli` (Debian `transmission-cli`).
    Transmission,
}

impl Kind {
    /// The program.
    pub fn program(self) -> &'static str {
        match self {
            Kind::Aria2 => "aria2c",
            Kind::Transmission => "transmission-cli",
        }
    }

    /// The Debian package that has it.
    pub fn package(self) -> &'static str {
        match self {
            Kind::Aria2 => "aria2",
            Kind::Transmission => "transmission-cli",
        }
    }

    /// Whether the program is installed.
    pub fn installed(self) -> bool {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {}", self.program()))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The host part of the `j`-th client of this kind in a PID (the lab's librqbit clients
    /// use 10 and up, the seeder 250).
    pub fn host(self, j: usize) -> usize {
        match self {
            Kind::Aria2 => 100 + j,
            Kind::Transmission => 150 + j,
        }
    }

    /// The command that runs the client in namespace `ns` on `ip`, downloading `torrent` into
    /// `out` and seeding on until it is killed; its log goes to `out/client.log`.
    pub fn command(
        self,
        ns: &str,
        ip: IpAddr,
        torrent: &Path,
        out: &Path,
    ) -> std::io::Result<tokio::process::Command> {
        std::fs::create_dir_all(out)?;
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", ns, self.program()]);
        match self {
            Kind::Aria2 => {
                cmd.args([
                    "--enable-dht=false",
                    "--enable-dht6=false",
                    "--bt-enable-lpd=false",
                    "--enable-peer-exchange=false",
                    "--seed-ratio=0.0",
                    "--summary-interval=0",
                    "--console-log-level=warn",
                    "--bt-tracker-interval=5",
                    "--listen-port=6881",
                ])
                .arg(format!("--interface={ip}"))
                .arg(format!("--dir={}", out.display()))
                .arg(torrent);
            }
            Kind::Transmission => {
                let cfg = out.join("transmission-config");
                std::fs::create_dir_all(&cfg)?;
                std::fs::write(
                    cfg.join("settings.json"),
                    format!(
                        r#"{{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "port-forwarding-enabled": false, "utp-enabled": false, "rename-partial-files": false, "bind-address-ipv4": "{ip}"}}"#
                    ),
                )?;
                cmd.args(["-M", "-p", "51413", "-g"])
                    .arg(&cfg)
                    .arg("-w")
                    .arg(out)
                    .arg(torrent);
            }
        }
        let log = std::fs::File::create(out.join("client.log"))?;
        cmd.stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        Ok(cmd)
    }
}
