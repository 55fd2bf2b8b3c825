//! Third-party BitTorrent clients from Debian (aria2, transmission, libtorrent, qBittorrent,
//! rtorrent, ctorrent) as ordinary members of a PID in the `--netns` lab. They know nothing
//! of ALTO: in the ALTO run they announce to their PID's head, which the lab looks up in the
//! ALTO server's head directory when the client arrives (as a portal handing out the torrent
//! would), and in the baseline to the plain tracker. The launchers are
//! `test_support::clients`, shared with the interop tests (DHT, local peer discovery, peer
//! exchange and port mapping off); they run only inside the lab's namespaces, which have no
//! route out.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use test_support::clients::Launch;

pub use test_support::clients::Kind;

/// The host part of the `j`-th client of `kind` in a PID (the lab's librqbit clients use 10
/// and up, the seeder 250).
pub fn host(kind: Kind, j: usize) -> usize {
    match kind {
        Kind::Aria2 => 100 + j,
        Kind::Transmission => 150 + j,
        Kind::Libtorrent => 200 + j,
        Kind::Qbittorrent => 160 + j,
        Kind::Rtorrent => 170 + j,
        Kind::Ctorrent => 180 + j,
    }
}

/// The command that runs a `kind` client in namespace `ns` on `ip`, downloading `torrent`
/// into `out` and seeding on until it is killed (or the lab drops it); its log goes to
/// `out/client.log`.
pub fn command(
    kind: Kind,
    ns: &str,
    ip: IpAddr,
    torrent: &Path,
    out: &Path,
) -> std::io::Result<tokio::process::Command> {
    // Each client has an address of its own, so every kind can keep its usual port.
    let port = match kind {
        Kind::Aria2 => 6881,
        Kind::Transmission => 51413,
        Kind::Libtorrent => 6891,
        // qBittorrent's Web UI takes the next port on the same address.
        Kind::Qbittorrent => 8999,
        Kind::Rtorrent => 6890,
        Kind::Ctorrent => 2706,
    };
    let log = out.join("client.log");
    let launch = Launch {
        netns: Some(ns),
        seed_on: true,
        ..Launch::new(SocketAddr::new(ip, port), torrent, out, &log)
    };
    let mut cmd = tokio::process::Command::from(kind.command(&launch)?);
    cmd.kill_on_drop(true);
    Ok(cmd)
}
