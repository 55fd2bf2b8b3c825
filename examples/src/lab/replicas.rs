//! The lab's ALTO server replicas (`--replicas N --etcd`; `docs/pid-head.md`, "Replicas"):
//! a 3-member etcd cluster on loopback ports, the first replica in the lab's process and the
//! others as processes of the lab's own binary (`--alto-replica CONFIG`), so that killing one
//! is a real SIGKILL; with `--tls` every replica serves HTTPS with the lab's CA. Every replica
//! listens on the lab's service address (loopback, or the bridge with `--netns`, where the
//! namespaces reach it; etcd is the replicas' alone and stays on loopback). Each client is
//! given every replica's directory, starting with its own share, and fails over to the next
//! when one does not answer.

use std::io::BufRead;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `[pid-heads]` lines that keep the election in `cluster`, under the key `prefix`.
pub fn etcd_config(cluster: &test_support::etcd::Cluster, prefix: &str) -> String {
    let endpoints: Vec<String> = cluster
        .endpoints()
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect();
    format!(
        "store = \"etcd\"\netcd-endpoints = [{}]\netcd-prefix = \"{prefix}\"\n",
        endpoints.join(", ")
    )
}

/// `directories` starting with the `share`-th: what a client is given, so that clients
/// spread over the replicas.
pub fn spread(directories: &[String], share: usize) -> Vec<String> {
    let mut d = directories.to_vec();
    let n = d.len().max(1);
    d.rotate_left(share % n);
    d
}

/// The replicas of one run besides the lab's own, and the etcd cluster they share.
#[derive(Default)]
pub struct Replicas {
    /// The in-process replica's directory, then the other replicas'.
    directories: Vec<String>,
    /// The other replicas' processes (index 0 is the second replica).
    children: Vec<Option<Child>>,
    /// Dropped last: the replicas stop before etcd does.
    _etcd: Option<test_support::etcd::Cluster>,
}

impl Replicas {
    /// Starts `n - 1` replicas serving `config` on `ip` beside the one at `first` (its
    /// directory), sharing `etcd`, each a `program --alto-replica CONFIG` process
    /// (`swarm-lab`; `None`: this process's executable); with `tls`, over HTTPS with the
    /// files of [`ReplicaTls`].
    pub fn start(
        first: String,
        n: usize,
        config: &Path,
        ip: IpAddr,
        etcd: Option<test_support::etcd::Cluster>,
        program: Option<&Path>,
        tls: Option<&ReplicaTls>,
    ) -> anyhow::Result<Replicas> {
        let program = match program {
            Some(p) => p.to_owned(),
            None => std::env::current_exe()?,
        };
        let mut r = Replicas {
            directories: vec![first],
            children: Vec::new(),
            _etcd: etcd,
        };
        for _ in 1..n {
            let mut command = Command::new(&program);
            command.arg("--alto-replica").arg(config);
            command.args(["--replica-listen", &ip.to_string()]);
            if let Some(t) = tls {
                command.arg("--replica-tls").arg(&t.dir);
            }
            let mut child = command
                // The replica leaves when the lab does: it reads its stdin until it closes.
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let line = std::io::BufReader::new(child.stdout.take().expect("piped"))
                .lines()
                .next()
                .transpose()?
                .unwrap_or_default();
            r.children.push(Some(child));
            let dir = line
                .strip_prefix("ALTO directory: ")
                .ok_or_else(|| anyhow::anyhow!("a replica did not start: `{line}`"))?;
            if tls.is_some() && !dir.starts_with("https://") {
                anyhow::bail!("a replica asked for HTTPS serves {dir}");
            }
            r.directories.push(dir.to_owned());
        }
        Ok(r)
    }

    /// Every replica's directory, the lab's own first.
    pub fn directories(&self) -> &[String] {
        &self.directories
    }

    /// `--kill-replica`: as the client of index `arriving` (from 0) arrives and half of the
    /// `c.pids * c.clients_per_pid` clients are there, kills the second replica and says so.
    pub fn kill_at_half(&mut self, c: &super::LabConfig, run: &str, arriving: usize) {
        if c.kill_replica && arriving == c.pids * c.clients_per_pid / 2 {
            if let Some(dir) = self.kill_one() {
                super::note(c, format!("{run}: replica {dir} killed (SIGKILL)"));
            }
        }
    }

    /// Kills the second replica (SIGKILL) and returns its directory; `None` without one.
    pub fn kill_one(&mut self) -> Option<String> {
        let mut child = self.children.first_mut()?.take()?;
        let _ = child.kill();
        let _ = child.wait();
        self.directories.get(1).cloned()
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for mut child in self.children.iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where a replica over HTTPS finds its certificate (`alto-server.pem`, issued by the lab's
/// CA for the service address: loopback, or the bridge with `--netns`), its key (`alto-server-key.pem`) and the lab's CA (`ca.pem`),
/// which it verifies the heads' HTTPS trackers against when it forwards or probes.
pub struct ReplicaTls {
    /// The folder of the three files.
    pub dir: PathBuf,
}

impl ReplicaTls {
    /// The certificate's name in the folder, without `.pem` (the lab's CA issues it so).
    pub const CERT: &'static str = "alto-server";

    /// The certificate chain.
    pub fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", Self::CERT))
    }

    /// Its private key.
    pub fn key(&self) -> PathBuf {
        self.dir.join(format!("{}-key.pem", Self::CERT))
    }

    /// The lab's CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

/// Serves one replica with `config` on a free port of `ip` (over HTTPS with the files in
/// `tls`, see [`ReplicaTls`]), prints its directory URL, and runs until its standard input
/// closes (the lab left) or it is killed.
pub async fn serve_replica(
    config: &Path,
    ip: IpAddr,
    tls: Option<&ReplicaTls>,
) -> anyhow::Result<()> {
    let source = alto_server::Source::File(config.to_path_buf());
    let listen = std::net::SocketAddr::new(ip, 0);
    let app = match tls {
        Some(t) => {
            alto_web::tls::set_default_ca(&t.ca())?;
            alto_server::App::with_tls(source, Some((t.cert(), t.key())))?
        }
        None => alto_server::App::new(source)?,
    };
    let running = alto_server::Running::start_app(app, listen).await?;
    println!("ALTO directory: {}", running.directory_url());
    let _ =
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await;
    running.stop().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_spread_over_the_replicas_and_know_them_all() {
        let d: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(super::spread(&d, 0), ["a", "b", "c"]);
        assert_eq!(super::spread(&d, 1), ["b", "c", "a"]);
        assert_eq!(super::spread(&d, 5), ["c", "a", "b"]);
        assert!(super::spread(&[], 3).is_empty());
    }
}
