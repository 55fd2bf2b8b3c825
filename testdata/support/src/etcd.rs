//! A real etcd cluster for tests (Debian's `etcd-server`): members on loopback ports of
//! their own, each with a data folder in one temporary folder, killed and removed on drop;
//! optionally serving clients over TLS with client certificates required.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member of a [`Cluster`].
struct Member {
    name: String,
    client: String,
    peer: String,
    child: Option<Child>,
}

/// An etcd cluster on loopback.
pub struct Cluster {
    members: Vec<Member>,
    dir: tempfile::TempDir,
    tls: Option<ClusterTls>,
}

/// What a TLS cluster's clients verify against and present.
#[derive(Clone, Debug)]
pub struct ClusterTls {
    /// The CA the members' certificates are issued by (PEM).
    pub ca: PathBuf,
    /// A client certificate of the same CA (PEM), which the members require.
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
}

/// Whether the `etcd` binary is installed.
pub fn available() -> bool {
    Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A free loopback port (bound and released: etcd binds it right after).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Cluster {
    /// Starts an `n`-member cluster and waits until every member is healthy.
    pub fn start(n: usize) -> anyhow::Result<Cluster> {
        Self::start_with(n, false)
    }

    /// [`Cluster::start`], the members serving clients over HTTPS with certificates of a CA
    /// made here and requiring a client certificate of it ([`Cluster::tls`]).
    pub fn start_tls(n: usize) -> anyhow::Result<Cluster> {
        Self::start_with(n, true)
    }

    fn start_with(n: usize, tls: bool) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let ca = tls.then(|| crate::tls::TestCa::new("etcd", dir.path()));
        let scheme = if ca.is_some() { "https" } else { "http" };
        let tls = ca.as_ref().map(|ca| {
            let client = ca.issue("etcd-client", &["127.0.0.1"]);
            ClusterTls {
                ca: ca.cert(),
                cert: client.cert,
                key: client.key,
            }
        });
        let mut members = Vec::new();
        for i in 0..n {
            members.push(Member {
                name: format!("m{i}"),
                client: format!("{scheme}://127.0.0.1:{}", free_port()?),
                peer: format!("http://127.0.0.1:{}", free_port()?),
                child: None,
            });
        }
        let mut cluster = Cluster { members, dir, tls };
        for i in 0..n {
            let server = ca
                .as_ref()
                .map(|ca| ca.issue(&format!("etcd-m{i}"), &["127.0.0.1"]));
            cluster.spawn(i, server)?;
        }
        cluster.wait_healthy(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// With [`Cluster::start_tls`]: the CA and the client certificate to connect with.
    pub fn tls(&self) -> Option<&ClusterTls> {
        self.tls.as_ref()
    }

    /// `etcdctl` with the cluster's TLS flags.
    fn etcdctl(&self) -> Command {
        let mut c = Command::new("etcdctl");
        c.env("ETCDCTL_API", "3");
        if let Some(t) = &self.tls {
            c.arg("--cacert").arg(&t.ca);
            c.arg("--cert").arg(&t.cert);
            c.arg("--key").arg(&t.key);
        }
        c
    }

    fn spawn(&mut self, i: usize, server: Option<crate::tls::Issued>) -> anyhow::Result<()> {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer))
            .collect();
        let m = &self.members[i];
        let data: PathBuf = self.dir.path().join(&m.name);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", m.name)))?;
        let mut etcd = Command::new("etcd");
        if let (Some(server), Some(tls)) = (server, &self.tls) {
            etcd.arg("--cert-file").arg(server.cert);
            etcd.arg("--key-file").arg(server.key);
            etcd.arg("--trusted-ca-file").arg(&tls.ca);
            etcd.arg("--client-cert-auth");
        }
        let child = etcd
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &m.client])
            .args(["--advertise-client-urls", &m.client])
            .args(["--listen-peer-urls", &m.peer])
            .args(["--initial-advertise-peer-urls", &m.peer])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "alto-test"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// The client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client.clone()).collect()
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> &str {
        &self.members[i].client
    }

    /// Waits until every running member says it is healthy.
    pub fn wait_healthy(&self, within: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            loop {
                let out = self
                    .etcdctl()
                    .args(["--endpoints", &m.client, "endpoint", "health"])
                    .output();
                if out.is_ok_and(|o| o.status.success()) {
                    break;
                }
                anyhow::ensure!(
                    start.elapsed() < within,
                    "etcd member {} not healthy within {within:?}",
                    m.name
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// The index of the current leader, as the running members see it.
    pub fn leader(&self) -> Option<usize> {
        let out = self
            .etcdctl()
            .args(["--endpoints", &self.endpoints().join(",")])
            .args(["endpoint", "status", "-w", "fields"])
            .output()
            .ok()?;
        // One block per member: `"MemberID" : N`, `"Leader" : N`, …, `"Endpoint" : "URL"`.
        let text = String::from_utf8_lossy(&out.stdout);
        for block in text.split("\n\n") {
            let field = |name: &str| {
                block.lines().find_map(|l| {
                    let v = l.strip_prefix(&format!("\"{name}\" : "))?;
                    Some(v.trim().trim_matches('"').to_owned())
                })
            };
            if let (Some(id), Some(leader), Some(e)) =
                (field("MemberID"), field("Leader"), field("Endpoint"))
            {
                if id == leader {
                    return self.members.iter().position(|m| m.client == e);
                }
            }
        }
        None
    }

    /// Stops member `i` (SIGSTOP): its connections stay open and it answers nothing, as a
    /// member that hangs. [`Cluster::resume`] continues it.
    pub fn pause(&self, i: usize) {
        self.signal(i, "-STOP");
    }

    /// Continues member `i` after [`Cluster::pause`].
    pub fn resume(&self, i: usize) {
        self.signal(i, "-CONT");
    }

    fn signal(&self, i: usize, sig: &str) {
        if let Some(c) = &self.members[i].child {
            crate::signal(c, sig);
        }
    }

    /// Kills member `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
