//! `vt-bench`: what the draft promises, measured. N clients in P PIDs each rank 100
//! candidate peers per round (the ordinal endpoint cost service, RFC 7285 §12.3), in two
//! modes:
//!
//! - **ALTO server**: every ranking is a query to the ALTO server;
//! - **virtual tracker**: each PID has a head (the tracker shim, elected through the join
//!   resource); clients ask their head, and the ALTO server only sees the heads refreshing
//!   the network map (a 304), fetching their PID's cost row and renewing their leases.
//!
//! The ALTO server runs on a thread of its own; its CPU time is read from
//! `/proc/self/task/TID/stat` and its request count from its `/metrics`. The one-time joins
//! of the clients are measured and shown apart.
//!
//! `vt-bench [--clients 1000,10000] [--pids 10,100] [--rounds 5]` (build with `--release`).

use alto_client::AltoClient;
use alto_locality::rank::{Random, SplitMix64};
use alto_model::pidhead::{JoinRequest, LeaseAction, LeaseRequest};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tracker_shim::head::{refresh, Followed};
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

#[derive(Parser)]
#[command(about = "ALTO server load: every ranking at the server, or heads answering their PIDs")]
struct Args {
    /// Client counts to try.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    clients: Vec<usize>,
    /// PID counts to try (at most 250).
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    pids: Vec<usize>,
    /// Ranking rounds per run (every client ranks once per round).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Candidates per ranking.
    #[arg(long, default_value_t = 100)]
    candidates: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

/// The address of client `i` of PID `k`: PID k is 127.(k+1).0.0/16.
fn client_ip(k: usize, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, (k + 1) as u8, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// The head of PID k listens here.
fn head_ip(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, (k + 1) as u8, 255, 254)
}

fn write_maps(dir: &std::path::Path, pids: usize) -> anyhow::Result<()> {
    let mut net = String::from(
        "{\"network-map\":{\"default\":{\"ipv4\":[\"0.0.0.0/0\"],\"ipv6\":[\"::/0\"]}",
    );
    for k in 0..pids {
        write!(net, ",\"p{k:03}\":{{\"ipv4\":[\"127.{}.0.0/16\"]}}", k + 1)?;
    }
    net.push_str("}}");
    let mut costs = String::from("{\"cost-map\":{");
    for s in 0..pids {
        if s > 0 {
            costs.push(',');
        }
        write!(costs, "\"p{s:03}\":{{\"default\":100")?;
        for d in 0..pids {
            let c = if s == d {
                1
            } else {
                5 + (s / 10).abs_diff(d / 10) * 10 + (s ^ d) % 5
            };
            write!(costs, ",\"p{d:03}\":{c}")?;
        }
        costs.push('}');
    }
    costs.push_str("}}");
    std::fs::write(dir.join("network-map.json"), net)?;
    std::fs::write(dir.join("routingcost.json"), costs)?;
    std::fs::write(
        dir.join("alto.toml"),
        "[network-map]\nresource-id = \"bench-map\"\nfile = \"network-map.json\"\n[[cost-map]]\nmetric = \"routingcost\"\nfile = \"routingcost.json\"\n[pid-heads]\nlease-ttl-secs = 600\nforward = false\n",
    )?;
    Ok(())
}

/// The ALTO server on its own thread; its CPU time and request count can be read.
struct Server {
    addr: SocketAddr,
    tid: u32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(config: std::path::PathBuf) -> anyhow::Result<Server> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let tid: u32 = std::fs::read_link("/proc/thread-self")
                .ok()
                .and_then(|p| p.file_name()?.to_str()?.parse().ok())
                .unwrap_or(0);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let running = alto_server::Running::start(
                    alto_server::Source::File(config),
                    "127.0.0.1:0".parse().expect("addr"),
                )
                .await
                .expect("server starts");
                tx.send((running.addr, tid)).expect("bench waits");
                let _ = stop_rx.await;
                let _ = running.stop().await;
            });
        });
        let (addr, tid) = rx.recv()?;
        Ok(Server {
            addr,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// CPU seconds the server thread has used.
    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{}/stat", self.tid))
            .unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks: f64 = fields
            .get(11)
            .and_then(|u| u.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
        ticks / 100.0 // USER_HZ
    }

    /// Requests the server has handled (the sum of `alto_requests_total`).
    async fn requests(&self, http: &Client<HttpConnector, Full<Bytes>>) -> u64 {
        let url = format!("http://{}/metrics", self.addr);
        let Ok(resp) = http.get(url.parse().expect("url")).await else {
            return 0;
        };
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| l.starts_with("alto_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ecs_body(src: Ipv4Addr, dsts: &[Ipv4Addr]) -> String {
    let d: Vec<String> = dsts.iter().map(|a| format!("\"ipv4:{a}\"")).collect();
    format!(
        r#"{{"cost-type":{{"cost-mode":"ordinal","cost-metric":"routingcost"}},"endpoints":{{"srcs":["ipv4:{src}"],"dsts":[{}]}}}}"#,
        d.join(",")
    )
}

/// Sends every (url, body) with at most `concurrency` in flight; returns failures.
async fn post_all(
    http: &Client<HttpConnector, Full<Bytes>>,
    jobs: Vec<(String, String)>,
    concurrency: usize,
) -> usize {
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let jobs = jobs.clone();
        let http = http.clone();
        workers.push(tokio::spawn(async move {
            let mut failed = 0;
            loop {
                let Some((url, body)) = jobs.lock().expect("jobs").pop() else {
                    break;
                };
                let req = http::Request::post(url)
                    .header("content-type", "application/alto-endpointcostparams+json")
                    .body(Full::new(Bytes::from(body)))
                    .expect("request");
                match http.request(req).await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.into_body().collect().await;
                    }
                    _ => failed += 1,
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for w in workers {
        failed += w.await.unwrap_or(1);
    }
    failed
}

struct Figures {
    requests: u64,
    cpu: f64,
    rankings: usize,
    setup_requests: u64,
    setup_cpu: f64,
    failed: usize,
}

async fn run(args: &Args, n: usize, p: usize, virtual_tracker: bool) -> anyhow::Result<Figures> {
    let dir = std::env::temp_dir().join(format!(
        "vt-bench-{}-{n}-{p}-{virtual_tracker}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    write_maps(&dir, p)?;
    let server = Server::start(dir.join("alto.toml"))?;
    let directory = format!("http://{}/directory", server.addr);
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    let http: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build(conn);
    let clients: Vec<(usize, Ipv4Addr)> =
        (0..n).map(|i| (i % p, client_ip(i % p, i / p))).collect();
    let mut rng = SplitMix64(n as u64 * 31 + p as u64);

    // Setup: heads and members join (virtual tracker only).
    let (r0, c0) = (server.requests(&http).await, server.cpu());
    let mut heads = Vec::new();
    if virtual_tracker {
        for k in 0..p {
            let ip = IpAddr::V4(head_ip(k));
            let t = RunningTracker::start(
                Tracker::new(TrackerConfig::default()),
                SocketAddr::new(ip, 0),
                None,
                Mode::Plain,
            )
            .await?;
            let client = AltoClient::new(&directory)?.with_local_address(ip);
            let join = JoinRequest {
                endpoint: format!("ipv4:{ip}"),
                tracker: t.announce_url(),
                ecs_url: None,
                capabilities: Default::default(),
            };
            let a = client.join(&join).await?;
            let token = a
                .lease
                .map(|l| l.token)
                .ok_or_else(|| anyhow::anyhow!("head of p{k:03} not elected"))?;
            let mut followed = Followed::default();
            refresh(&client, &a.pid, &t.tracker, &mut followed).await?;
            heads.push((t, client, token, followed, a.pid));
        }
        let mut joins = Vec::new();
        for chunk in clients.chunks(args.concurrency.max(1)) {
            for &(_, ip) in chunk {
                let directory = directory.clone();
                joins.push(tokio::spawn(async move {
                    let c = AltoClient::new(&directory)
                        .ok()?
                        .with_local_address(IpAddr::V4(ip));
                    let req = JoinRequest {
                        endpoint: format!("ipv4:{ip}"),
                        tracker: format!("http://{ip}:6881/announce"),
                        ecs_url: None,
                        capabilities: Default::default(),
                    };
                    c.join(&req).await.ok()
                }));
            }
            for j in joins.drain(..) {
                j.await?
                    .ok_or_else(|| anyhow::anyhow!("a member join failed"))?;
            }
        }
    }
    let (r1, c1) = (server.requests(&http).await, server.cpu());

    // Rounds of rankings.
    let mut failed = 0;
    for _ in 0..args.rounds {
        if virtual_tracker {
            for (t, client, token, followed, pid) in heads.iter_mut() {
                refresh(client, pid, &t.tracker, followed).await?;
                client
                    .lease(&LeaseRequest {
                        token: token.clone(),
                        action: LeaseAction::Renew,
                    })
                    .await?;
            }
        }
        let jobs: Vec<(String, String)> = clients
            .iter()
            .map(|&(k, src)| {
                let dsts: Vec<Ipv4Addr> = (0..args.candidates)
                    .map(|_| clients[rng.below(clients.len())].1)
                    .collect();
                let url = if virtual_tracker {
                    format!("http://{}/endpointcost/lookup", heads[k].0.addr)
                } else {
                    format!("http://{}/endpointcost/lookup", server.addr)
                };
                (url, ecs_body(src, &dsts))
            })
            .collect();
        failed += post_all(&http, jobs, args.concurrency).await;
    }
    let (r2, c2) = (server.requests(&http).await, server.cpu());
    for (t, ..) in heads {
        t.stop().await;
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Figures {
        requests: r2 - r1,
        cpu: c2 - c1,
        rankings: n * args.rounds,
        setup_requests: r1 - r0,
        setup_cpu: c1 - c0,
        failed,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.pids.iter().all(|&p| (1..=250).contains(&p)),
        "--pids must be 1 to 250 (PIDs are 127.1/16 … 127.250/16)"
    );
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for real figures");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    println!(
        "ALTO server load per 1,000 client rankings ({} candidates each, {} rounds)\n",
        args.candidates, args.rounds
    );
    println!(
        "{:>7} {:>5}  {:<16} {:>14} {:>14} {:>12}   {:<28}",
        "clients",
        "PIDs",
        "mode",
        "requests/1k",
        "CPU ms/1k",
        "server req",
        "one-time joins (req, CPU ms)"
    );
    println!("{}", "-".repeat(108));
    let mut summary = Vec::new();
    for &n in &args.clients {
        for &p in &args.pids {
            let a = rt.block_on(run(&args, n, p, false))?;
            let b = rt.block_on(run(&args, n, p, true))?;
            for (name, f) in [("ALTO server", &a), ("virtual tracker", &b)] {
                let per = 1000.0 / f.rankings as f64;
                println!(
                    "{n:>7} {p:>5}  {name:<16} {:>14.1} {:>14.2} {:>12}   {:<28}{}",
                    f.requests as f64 * per,
                    f.cpu * 1000.0 * per,
                    f.requests,
                    if name == "ALTO server" {
                        "-".to_owned()
                    } else {
                        format!("{}, {:.0}", f.setup_requests, f.setup_cpu * 1000.0)
                    },
                    if f.failed > 0 {
                        format!("  ({} failed)", f.failed)
                    } else {
                        String::new()
                    }
                );
            }
            summary.push((
                n,
                p,
                a.requests as f64 / b.requests.max(1) as f64,
                a.cpu / b.cpu.max(0.01),
            ));
        }
    }
    println!("\nserver load, ALTO server / virtual tracker:");
    for (n, p, req, cpu) in summary {
        println!("  N={n:>6} P={p:>4}: {req:>7.1}x fewer requests, {cpu:>6.1}x less CPU");
    }
    Ok(())
}
