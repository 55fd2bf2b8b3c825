//! Network namespaces for tests and the `--netns` lab (root): one namespace per group of
//! addresses, each joined by a veth to one bridge that holds [`BRIDGE`] on the host side,
//! optionally with the link shaped by `tbf` each way (this kernel has no `netem`). A
//! namespace has only `lo` and its veth: no default route, so nothing in it can leave the
//! machine. Everything made is deleted when the [`Namespaces`] are dropped, after a failure or
//! a panic too.

use std::net::IpAddr;
use std::process::Command;

/// The bridge's address on the host side (`10.77.0.1/16`): servers in the host namespace
/// listen here, and every namespace's addresses are in the same `/16`.
pub const BRIDGE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 77, 0, 1));

/// Address `i` of group `k`: `10.77.k.i` (in the lab, group `k` is PID `k`).
pub fn addr(k: usize, i: usize) -> IpAddr {
    IpAddr::from([10, 77, k as u8, i as u8])
}

/// Runs `cmd` with `sh -c`, failing with its standard error.
fn sh(cmd: &str) -> anyhow::Result<()> {
    let out = Command::new("sh").arg("-c").arg(cmd).output()?;
    anyhow::ensure!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Whether this machine lets a test make namespaces: root and a working `ip netns`.
pub fn available() -> Result<(), String> {
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

/// Whether links can be shaped: `tc` (iproute2) is installed.
pub fn shaping_available() -> Result<(), String> {
    match Command::new("tc").arg("-V").output() {
        Ok(_) => Ok(()),
        Err(_) => Err("`tc` is missing (iproute2)".into()),
    }
}

/// Namespaces, their veths and the bridge, deleted when dropped.
///
/// Names are `{prefix}{tag}-{k}` with `tag` this process's id modulo 100 000 and `k` from
/// 1, so a test can tell its own from another process's; one set per prefix per process at
/// a time.
pub struct Namespaces {
    /// One namespace per group, in the order given.
    pub names: Vec<String>,
    veths: Vec<String>,
    bridge: String,
}

impl Namespaces {
    /// Makes one namespace per entry of `groups`, holding those addresses (each in the
    /// bridge's `/16`). With `rate_kbit`, each namespace's link to the bridge is shaped to
    /// that rate each way. `prefix` is at most 4 characters (interface names have 15).
    pub fn create(
        prefix: &str,
        groups: &[Vec<IpAddr>],
        rate_kbit: Option<u64>,
    ) -> anyhow::Result<Namespaces> {
        anyhow::ensure!(prefix.len() <= 4, "prefix `{prefix}` is longer than 4");
        if rate_kbit.is_some() {
            shaping_available().map_err(anyhow::Error::msg)?;
        }
        let tag = std::process::id() % 100_000;
        // Built before anything exists, so a failure half way removes what was made.
        let mut n = Namespaces {
            names: Vec::new(),
            veths: Vec::new(),
            bridge: format!("{prefix}br{tag}"),
        };
        sh(&format!(
            "ip link add {0} type bridge && ip addr add {BRIDGE}/16 dev {0} && ip link set {0} up",
            n.bridge
        ))?;
        for (k, hosts) in (1..).zip(groups) {
            let ns = format!("{prefix}{tag}-{k}");
            sh(&format!("ip netns add {ns}"))?;
            n.names.push(ns.clone());
            let (host, inner) = (format!("{prefix}{tag}h{k}"), format!("{prefix}{tag}n{k}"));
            n.veths.push(host.clone());
            sh(&format!(
                "ip link add {host} type veth peer name {inner} && ip link set {inner} netns {ns} && \
                 ip link set {host} master {br} && ip link set {host} up && \
                 ip -n {ns} link set lo up && ip -n {ns} link set {inner} up",
                br = n.bridge
            ))?;
            for a in hosts {
                sh(&format!("ip -n {ns} addr add {a}/16 dev {inner}"))?;
            }
            if let Some(rate) = rate_kbit.filter(|r| *r > 0) {
                let burst = (rate / 8).max(16); // bytes of 1 ms, at least 16 KiB
                let tbf = format!("root tbf rate {rate}kbit burst {burst}kb latency 200ms");
                sh(&format!("tc qdisc add dev {host} {tbf}"))?;
                sh(&format!(
                    "ip netns exec {ns} tc qdisc add dev {inner} {tbf}"
                ))?;
            }
        }
        Ok(n)
    }

    /// Gives this (the host's) namespace the address `ip` too, on the bridge: servers of the
    /// test process can then listen on an address of a group's PID (a head must be in its
    /// PID) and the namespaces reach it over the bridge. Removed with the bridge.
    pub fn add_host_address(&self, ip: IpAddr) -> anyhow::Result<()> {
        sh(&format!("ip addr add {ip}/32 dev {}", self.bridge))
    }

    /// A command that runs `program` inside namespace `k` (1-based, as in the names).
    pub fn command(&self, k: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.names[k - 1]]).arg(program);
        cmd
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting the host end of a veth deletes both ends, even if the namespace lingers.
        for v in &self.veths {
            let _ = Command::new("ip").args(["link", "del", v]).status();
        }
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_group_and_host() {
        assert_eq!(addr(1, 250).to_string(), "10.77.1.250");
        assert_eq!(addr(3, 10).to_string(), "10.77.3.10");
    }

    #[test]
    fn namespaces_are_made_and_removed_where_the_machine_allows_it() {
        if let Err(why) = available() {
            crate::skip(&format!("needs root and `ip netns` ({why})"));
            return;
        }
        let ns = Namespaces::create("alts", &[vec![addr(9, 2)], vec![addr(9, 3)]], None).unwrap();
        let names = ns.names.clone();
        let ping = ns
            .command(1, "ip")
            .args(["-o", "addr", "show"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&ping.stdout).contains("10.77.9.2/16"));
        drop(ns);
        let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let left = String::from_utf8_lossy(&left.stdout);
        assert!(names.iter().all(|n| !left.contains(n.as_str())), "{left}");
    }
}
