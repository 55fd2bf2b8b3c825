//! `election-bench`: the PID Head election's throughput with each store
//! (`docs/pid-head.md`, "Replicas"), in one run: joins and lease renewals per second against
//! one `alto-server` with the memory store, against one replica on etcd and against three
//! replicas sharing a 3-member etcd cluster (Debian's `etcd-server`, started on loopback
//! ports and removed after). Then the steady load of a million plugin clients over P PIDs,
//! by simulation of the server's own election core: ALTO server requests per second and the
//! etcd writes they cost.
//!
//! Every join comes from an address of its own in one of the loopback topology's four PIDs,
//! with a tracker listening there (the server's connect-back check); the first of a PID is
//! elected and the others are its standbys. Renewals renew those four heads' leases.
//!
//! `election-bench [--seconds 3] [--concurrency 16]` (build with `--release`).

use alto_model::pidhead::{JoinRequest, JOIN, LEASE};
use alto_server::election::{ElectionConfig, PidState};
use clap::Parser;
use std::net::{IpAddr, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::http::post_from;

#[derive(Parser)]
#[command(about = "PID Head joins and renewals per second: memory store, 1 and 3 replicas on etcd")]
struct Args {
    /// Seconds per figure.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// Joining addresses per PID, each with a listening tracker.
const PER_PID: usize = 64;

/// The lease TTL of the run, and the renewal period a head keeps (a third of it).
const TTL_SECS: u64 = 30;

struct Setup {
    name: &'static str,
    servers: Vec<alto_server::Running>,
    _dir: tempfile::TempDir,
}

async fn setup(
    name: &'static str,
    replicas: usize,
    etcd: Option<(&test_support::etcd::Cluster, &str)>,
) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    for f in ["network-map.json", "routingcost.json", "hopcount.json"] {
        std::fs::copy(testdata::loopback::dir().join(f), dir.path().join(f))?;
    }
    let store = etcd
        .map(|(cluster, prefix)| alto_examples::lab::replicas::etcd_config(cluster, prefix))
        .unwrap_or_default();
    // Rate limits out of the way: this measures the election, not the limiter.
    let config = format!(
        "{}\n[pid-heads]\nlease-ttl-secs = {TTL_SECS}\njoin-burst = 1e9\njoin-per-sec = 1e9\n\
         join-prefix-burst = 1e9\njoin-prefix-per-sec = 1e9\n{store}",
        testdata::loopback::CONFIG
    );
    std::fs::write(dir.path().join("alto.toml"), config)?;
    let mut servers = Vec::new();
    for _ in 0..replicas {
        let source = alto_server::Source::File(dir.path().join("alto.toml"));
        servers.push(alto_server::Running::start(source, ([127, 0, 0, 1], 0).into()).await?);
    }
    Ok(Setup {
        name,
        servers,
        _dir: dir,
    })
}

/// Runs `op(i)` from `concurrency` tasks for `secs`; successes per second.
async fn rate<F, Fut>(secs: u64, concurrency: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let (ok, next) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicUsize::new(0)));
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, ok, next) = (op.clone(), ok.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                if op(next.fetch_add(1, Relaxed)).await {
                    ok.fetch_add(1, Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    ok.load(Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Joins and renewals per second on `s`.
async fn measure(s: &Setup, addrs: &Arc<Vec<(IpAddr, u16)>>, args: &Args) -> (f64, f64) {
    let bases: Arc<Vec<String>> = Arc::new(
        s.servers
            .iter()
            .map(|r| format!("http://{}", r.addr))
            .collect(),
    );
    // The four heads, elected first.
    let mut heads = Vec::new();
    for p in 0..4 {
        let (ip, port) = addrs[p * PER_PID];
        let (status, body) = join(&bases[0], ip, port).await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match v["lease"]["token"].as_str() {
            Some(token) if status == 200 => heads.push((ip, token.to_owned())),
            _ => eprintln!("{}: PID{} elected no head: {status}", s.name, p + 1),
        }
    }
    let (b, a) = (bases.clone(), addrs.clone());
    let joins = rate(args.seconds, args.concurrency, move |i| {
        let (b, a) = (b.clone(), a.clone());
        async move {
            // Standbys: every address but the heads', round robin over PIDs and replicas.
            let (ip, port) = a[(i % (a.len() - 1)) + 1];
            join(&b[i % b.len()], ip, port).await.0 == 200
        }
    })
    .await;
    let heads = Arc::new(heads);
    let b = bases.clone();
    let renewals = rate(args.seconds, args.concurrency, move |i| {
        let (b, heads) = (b.clone(), heads.clone());
        async move {
            let Some((ip, token)) = heads.get(i % heads.len().max(1)) else {
                return false;
            };
            let body = format!(r#"{{"token":"{token}","action":"renew"}}"#);
            let url = format!("{}/pidhead/lease", b[i % b.len()]);
            post_from(*ip, &url, LEASE, &body).await.0 == 200
        }
    })
    .await;
    (joins, renewals)
}

/// Clients of the steady-load simulation.
const CLIENTS: u64 = 1_000_000;

/// Prints the steady load of [`CLIENTS`] plugin clients over P PIDs, by simulation of one
/// PID's election (the server's own [`PidState`]) multiplied by P: ALTO server requests per
/// second and the changes an etcd store writes (one transaction each; a lease keep-alive is
/// not a Raft write in etcd and is not counted), against the renewals per second one replica
/// on etcd reached above.
fn steady_load(etcd_renewals: f64) {
    let rejoin = alto_plugin::Config::new([127, 0, 0, 1].into(), ".".into())
        .rejoin
        .as_secs();
    let base = ElectionConfig {
        lease_ttl_secs: TTL_SECS,
        ..ElectionConfig::default()
    };
    println!(
        "\nsteady load of {CLIENTS} plugin clients (re-join every {rejoin} s at most, sooner where the \
         server advises: {} s for a kept standby; head renewal every {} s; standby window {} s, \
         presence step {} s), by simulation of {SIM_SECS} s",
        base.rejoin_secs(true),
        TTL_SECS / 3,
        base.standby_window_secs,
        base.presence_step_secs(),
    );
    println!(
        "{:>8} {:>12} {:>11} {:>16} {:>14} {:>26}",
        "PIDs",
        "clients/PID",
        "candidates",
        "ALTO requests/s",
        "etcd writes/s",
        "of 1 replica's renewals/s"
    );
    for pids in [100u64, 1_000, 1_700, 10_000] {
        for max_candidates in [64, 16, 8] {
            let config = ElectionConfig {
                max_candidates,
                ..base.clone()
            };
            let members = CLIENTS / pids;
            let (requests, writes) = simulate(&config, members as usize, rejoin);
            let (requests, writes) = (
                pids as f64 * requests as f64 / SIM_SECS as f64,
                pids as f64 * writes as f64 / SIM_SECS as f64,
            );
            println!(
                "{pids:>8} {members:>12} {max_candidates:>11} {requests:>16.0} {writes:>14.0} {:>25.1}x",
                writes / etcd_renewals.max(1e-9)
            );
        }
    }
}

/// Simulated seconds counted (after one re-join period of warm-up).
const SIM_SECS: u64 = 600;

/// One PID over [`SIM_SECS`]: `members` clients, first joining with phases spread evenly
/// over `rejoin` seconds and then again after `rejoin` or the server's advice, whichever is
/// sooner (as the plugin's tracker does), the first of them head and renewing every TTL/3,
/// the server's tick every second. The requests the server gets and the ones that change
/// the PID's state.
fn simulate(config: &ElectionConfig, members: usize, rejoin: u64) -> (u64, u64) {
    let clients: Vec<(JoinRequest, IpAddr)> = (0..members as u32)
        .map(|k| {
            let ip = IpAddr::from([10, (k >> 16) as u8, (k >> 8) as u8, k as u8]);
            let req = JoinRequest {
                endpoint: format!("ipv4:{ip}"),
                tracker: format!("http://{ip}:6881/announce"),
                ecs_url: None,
                capabilities: Default::default(),
            };
            (req, ip)
        })
        .collect();
    let rejoin = rejoin.max(1);
    let horizon = rejoin + SIM_SECS;
    let mut due = vec![Vec::new(); horizon as usize];
    for k in 0..members {
        due[k * rejoin as usize / members.max(1)].push(k);
    }
    let mut drawn = 0u64;
    let mut token = || {
        drawn += 1;
        Some(format!("token-{drawn}"))
    };
    let (mut st, mut head) = (PidState::default(), None::<(String, IpAddr)>);
    let (mut requests, mut writes) = (0, 0);
    for t in 0..horizon {
        let counting = t >= rejoin;
        let mut tally = |st: &PidState, before: &PidState| {
            if counting {
                requests += 1;
                writes += u64::from(st != before);
            }
        };
        if t % (TTL_SECS / 3) == 0 {
            if let Some((tok, ip)) = &head {
                let before = st.clone();
                let _ = st.renew(config, tok, *ip, t);
                tally(&st, &before);
            }
        }
        for k in std::mem::take(&mut due[t as usize]) {
            let (req, ip) = &clients[k];
            if head.as_ref().is_some_and(|(_, h)| h == ip) {
                // The head renews; it does not join.
                if let Some(slot) = due.get_mut((t + rejoin) as usize) {
                    slot.push(k);
                }
                continue;
            }
            let before = st.clone();
            let joined = st.join(config, "PID1", req, *ip, None, t, &mut token);
            if let Some(lease) = &joined.lease {
                head = Some((lease.token.clone(), *ip));
            }
            tally(&st, &before);
            let next = t + rejoin.min(config.rejoin_secs(joined.kept));
            if let Some(slot) = due.get_mut(next as usize) {
                slot.push(k);
            }
        }
        let before = st.clone();
        st.expire(config, "PID1", t, &mut token);
        if counting && st != before {
            writes += 1;
        }
    }
    (requests, writes)
}

async fn join(base: &str, ip: IpAddr, port: u16) -> (u16, bytes::Bytes) {
    let body = format!(r#"{{"endpoint":"ipv4:{ip}","tracker":"http://{ip}:{port}/announce"}}"#);
    post_from(ip, &format!("{base}/pidhead/join"), JOIN, &body).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        test_support::etcd::available(),
        "etcd is not installed (Debian: etcd-server etcd-client)"
    );
    // A listening tracker on every joining address (never accepted: the connect-back check
    // needs only the handshake, which the kernel completes).
    let mut listeners = Vec::new();
    let mut addrs = Vec::new();
    for p in 1..=4u8 {
        for k in 0..PER_PID {
            let ip: IpAddr = format!("127.{p}.1.{}", k + 10).parse()?;
            let l = TcpListener::bind((ip, 0))?;
            addrs.push((ip, l.local_addr()?.port()));
            listeners.push(l);
        }
    }
    let addrs = Arc::new(addrs);
    let cluster = test_support::etcd::Cluster::start(3)?;
    let setups = [
        setup("memory store, 1 server", 1, None).await?,
        setup("etcd, 1 replica", 1, Some((&cluster, "bench1/"))).await?,
        setup("etcd, 3 replicas", 3, Some((&cluster, "bench3/"))).await?,
    ];
    println!(
        "PID Head election, {} s per figure, {} requests in flight, server and load on the same cores",
        args.seconds, args.concurrency
    );
    println!(
        "{:<24} {:>10} {:>8} {:>12} {:>8}",
        "store", "joins/s", "ratio", "renewals/s", "ratio"
    );
    let mut base = None;
    let mut etcd_renewals = 0.0;
    for s in &setups {
        let (j, r) = measure(s, &addrs, &args).await;
        let (j0, r0) = *base.get_or_insert((j, r));
        println!(
            "{:<24} {j:>10.0} {:>7.2}x {r:>12.0} {:>7.2}x",
            s.name,
            j / j0,
            r / r0
        );
        if s.servers.len() == 1 && s.name.starts_with("etcd") {
            etcd_renewals = r;
        }
    }
    steady_load(etcd_renewals);
    for s in setups {
        for r in s.servers {
            let _ = r.stop().await;
        }
    }
    drop(listeners);
    Ok(())
}
