//! `tracker-load`: a load generator for HTTP trackers (BEP 3 announces and BEP 48 scrapes
//! over keep-alive connections), usable against any tracker URL, and a comparison of the
//! shim in plain mode and in head mode (ALTO-ranked) under the same load in one run.
//!
//! Torrents are drawn from a Zipf popularity distribution and peers at random from a pool;
//! connections are spread over source addresses in the PIDs of the embedded loopback
//! topology (127.1.x … 127.4.x), so a head ranks them as it would real peers.
//!
//! - `tracker-load --url http://127.0.0.1:6969/announce [--connections 32] [--seconds 10]`
//! - `tracker-load --compare [--seconds 10]`: starts `alto-server` and the shim (plain, then
//!   head of PID1, then the announce front with a head elected in every PID) on one core,
//!   loads each from another core, and prints them with the ratios: of responses per second,
//!   and of responses per second of the server thread's CPU time (from `/proc`), which is
//!   what one core would answer where the load generator is the limit.

use alto_locality::rank::{Random, SplitMix64};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tracker_shim::protocol::decode;
use tracker_shim::protocol::query::percent_encode;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

#[derive(Parser, Clone)]
#[command(about = "Load generator for HTTP BitTorrent trackers")]
struct Args {
    /// Announce URL of the tracker to load (`/scrape` is derived from it).
    #[arg(long, required_unless_present = "compare")]
    url: Option<String>,
    /// Compare the shim in plain and in head mode under the same load.
    #[arg(long)]
    compare: bool,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Distinct torrents.
    #[arg(long, default_value_t = 10_000)]
    torrents: usize,
    /// Distinct peers.
    #[arg(long, default_value_t = 100_000)]
    peers: usize,
    /// Zipf exponent of torrent popularity.
    #[arg(long, default_value_t = 1.0)]
    zipf: f64,
    /// Share of requests that are scrapes (of 1 to 10 torrents).
    #[arg(long, default_value_t = 0.05)]
    scrape_share: f64,
    /// Bind connections to 127.1-4.x source addresses (the loopback PIDs).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    spread_sources: bool,
}

/// The outcome of one run.
#[derive(Default)]
struct Run {
    /// CPU seconds the server's thread spent in the run (`--compare` only).
    server_cpu_s: Option<f64>,
    responses: u64,
    errors: u64,
    elapsed: f64,
    latencies_us: Vec<u32>,
    peers_sampled: u64,
    same_pid_sampled: u64,
    answers_sampled: u64,
}

impl Run {
    fn merge(&mut self, o: Run) {
        self.responses += o.responses;
        self.errors += o.errors;
        self.latencies_us.extend(o.latencies_us);
        self.peers_sampled += o.peers_sampled;
        self.same_pid_sampled += o.same_pid_sampled;
        self.answers_sampled += o.answers_sampled;
    }

    fn percentile(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Cumulative Zipf weights for drawing torrent ranks.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|k| {
            acc += 1.0 / (k as f64).powf(s);
            acc
        })
        .collect();
    let total = acc;
    cdf.iter_mut().for_each(|c| *c /= total);
    cdf
}

fn torrent_hash(k: usize) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&(k as u64).to_be_bytes());
    h[8..16].copy_from_slice(&(k as u64 ^ 0x5eed_5eed_5eed_5eed).to_le_bytes());
    h
}

async fn connection(
    args: Args,
    url: String,
    index: usize,
    deadline: Instant,
    cdf: std::sync::Arc<Vec<f64>>,
) -> Run {
    let mut run = Run::default();
    let uri: http::Uri = url.parse().expect("a valid URL");
    let authority = uri.authority().expect("an absolute URL").to_string();
    let target: SocketAddr = match tokio::net::lookup_host(&authority)
        .await
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(a) => a,
        None => {
            run.errors += 1;
            return run;
        }
    };
    let pid = 1 + (index % 4) as u8;
    let source = if args.spread_sources && target.ip().is_loopback() {
        IpAddr::from([
            127,
            pid,
            (index / 4 / 250) as u8,
            1 + (index / 4 % 250) as u8,
        ])
    } else {
        IpAddr::from([0, 0, 0, 0])
    };
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Err(e) = socket.bind(SocketAddr::new(source, 0)) {
        eprintln!("cannot bind {source}: {e}");
        run.errors += 1;
        return run;
    }
    let stream = match socket.connect(target).await {
        Ok(s) => s,
        Err(_) => {
            run.errors += 1;
            return run;
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut send, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(x) => x,
        Err(_) => {
            run.errors += 1;
            return run;
        }
    };
    tokio::spawn(conn);
    let announce_path = uri.path().to_owned();
    let scrape_path = announce_path.replacen("announce", "scrape", 1);
    let mut rng = SplitMix64(0x1234_5678 ^ index as u64);
    let mut n = 0u64;
    while Instant::now() < deadline {
        let scrape = (rng.below(10_000) as f64) < args.scrape_share * 10_000.0;
        let draw = |rng: &mut SplitMix64| {
            cdf.partition_point(|&c| c < (rng.below(1 << 30) as f64) / (1u64 << 30) as f64)
                .min(cdf.len() - 1)
        };
        let path = if scrape {
            let q: Vec<String> = (0..1 + rng.below(10))
                .map(|_| {
                    format!(
                        "info_hash={}",
                        percent_encode(&torrent_hash(draw(&mut rng)))
                    )
                })
                .collect();
            format!("{scrape_path}?{}", q.join("&"))
        } else {
            let t = draw(&mut rng);
            let peer = rng.below(args.peers);
            let mut id = [0u8; 20];
            id[..8].copy_from_slice(b"-LD0001-");
            id[8..16].copy_from_slice(&(peer as u64).to_be_bytes());
            let left = if rng.below(4) == 0 {
                0
            } else {
                1 + rng.below(1 << 20)
            };
            format!(
                "{announce_path}?info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left={left}&compact=1&numwant=50",
                percent_encode(&torrent_hash(t)),
                percent_encode(&id),
                1024 + peer % 60_000
            )
        };
        let req = http::Request::get(path)
            .header("host", &authority)
            .body(Empty::<Bytes>::new())
            .expect("request");
        let t0 = Instant::now();
        let ok = match send.send_request(req).await {
            // The announce front answers with a redirect: a whole answer too.
            Ok(resp) if resp.status().is_success() || resp.status() == http::StatusCode::FOUND => {
                match resp.into_body().collect().await {
                    Ok(body) => {
                        let body = body.to_bytes();
                        n += 1;
                        if !scrape && n.is_multiple_of(16) {
                            if let Ok(a) = decode::announce(&body) {
                                run.answers_sampled += 1;
                                run.peers_sampled += a.peers.len() as u64;
                                run.same_pid_sampled += a.peers.iter().filter(|p| matches!(p.0.ip(), IpAddr::V4(v) if v.octets()[1] == pid)).count() as u64;
                            }
                        }
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => false,
        };
        if ok {
            run.responses += 1;
            run.latencies_us
                .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        } else {
            run.errors += 1;
            break;
        }
    }
    run
}

/// Loads `url` with every connection on the current (single-threaded) runtime.
async fn load(args: &Args, url: &str) -> Run {
    let cdf = std::sync::Arc::new(zipf_cdf(args.torrents, args.zipf));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| {
            tokio::spawn(connection(
                args.clone(),
                url.to_owned(),
                i,
                deadline,
                cdf.clone(),
            ))
        })
        .collect();
    let mut run = Run::default();
    for t in tasks {
        if let Ok(r) = t.await {
            run.merge(r);
        }
    }
    run.elapsed = start.elapsed().as_secs_f64();
    run
}

/// CPU seconds the thread `tid` of this process has run, from `/proc` (in the kernel's
/// `USER_HZ` ticks, 100 a second on Linux).
fn thread_cpu_s(tid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses: utime and stime are the
    // 14th and 15th of the line.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// [`load`], with the CPU time the server's thread `tid` spent meanwhile.
async fn load_measured(args: &Args, url: &str, tid: &str) -> Run {
    let before = thread_cpu_s(tid);
    let mut run = load(args, url).await;
    run.server_cpu_s = before.zip(thread_cpu_s(tid)).map(|(a, b)| b - a);
    run
}

/// Responses per second of the server's CPU time: what one core fully busy would answer.
fn per_core_s(r: &Run) -> Option<f64> {
    r.server_cpu_s
        .filter(|c| *c > 0.0)
        .map(|c| r.responses as f64 / c)
}

fn line(name: &str, r: &mut Run) -> String {
    let share = if r.peers_sampled > 0 {
        format!(
            "{:.0}%",
            100.0 * r.same_pid_sampled as f64 / r.peers_sampled as f64
        )
    } else {
        "-".into()
    };
    let per = if r.answers_sampled > 0 {
        format!("{:.1}", r.peers_sampled as f64 / r.answers_sampled as f64)
    } else {
        "-".into()
    };
    let core = match (r.server_cpu_s, per_core_s(r)) {
        (Some(c), Some(p)) => format!("{:>5.0}% {p:>10.0}", 100.0 * c / r.elapsed),
        _ => format!("{:>17}", "-"),
    };
    format!(
        "{name:<24} {:>12.0} {core} {:>9.2} {:>9.2} {:>8} {:>13} {:>15}",
        r.responses as f64 / r.elapsed,
        r.percentile(0.5),
        r.percentile(0.99),
        r.errors,
        per,
        share
    )
}

fn header(args: &Args) -> String {
    format!(
        "{} keep-alive connections, {} torrents (Zipf s={}), {} peers, {:.0}% scrapes, {} s per run\n\n{:<24} {:>12} {:>17} {:>9} {:>9} {:>8} {:>13} {:>15}\n{}",
        args.connections,
        args.torrents,
        args.zipf,
        args.peers,
        args.scrape_share * 100.0,
        args.seconds,
        "run",
        "responses/s",
        "server CPU, per core-s",
        "p50 ms",
        "p99 ms",
        "errors",
        "peers/answer",
        "same-PID peers",
        "-".repeat(114)
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    if !args.compare {
        let url = args.url.clone().expect("clap requires --url");
        let mut run = rt()?.block_on(load(&args, &url));
        println!("{}", header(&args));
        println!("{}", line(&url, &mut run));
        return Ok(());
    }

    // The servers run on one thread (one core), the load on this one.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || -> anyhow::Result<()> {
        // This thread's id, so that the load's side can read the CPU time it spends.
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        rt()?.block_on(async move {
            let alto =
                alto_server::Running::start(alto_server::Source::Embedded, "127.0.0.1:0".parse()?)
                    .await?;
            // The load's peers come from a few source addresses: no per-source cap.
            let config = TrackerConfig {
                max_peers_per_source: usize::MAX,
                ..TrackerConfig::default()
            };
            let plain = RunningTracker::start(
                Tracker::new(config.clone()),
                "127.0.0.1:0".parse()?,
                None,
                Mode::Plain,
            )
            .await?;
            let follow = Mode::Head {
                alto: vec![alto.directory_url()],
                pid: "PID1".into(),
                refresh: Duration::from_secs(30),
            };
            let head =
                RunningTracker::start(Tracker::new(config), "127.1.0.1:0".parse()?, None, follow)
                    .await?;
            // The announce front, with a head elected in every PID to redirect to.
            let mut joined = Vec::new();
            for k in 1..=4 {
                let ip: std::net::IpAddr = format!("127.{k}.0.2").parse()?;
                let join = Mode::Join(tracker_shim::membership::JoinSettings {
                    alto: vec![alto.directory_url()],
                    endpoint: ip,
                    capabilities: Default::default(),
                    rejoin: Duration::from_secs(10),
                    refresh: Duration::from_secs(30),
                });
                let t = Tracker::new(TrackerConfig::default());
                joined.push(RunningTracker::start(t, (ip, 0).into(), None, join).await?);
            }
            let front = RunningTracker::start(
                Tracker::new(TrackerConfig::default()),
                "127.0.0.1:0".parse()?,
                None,
                Mode::Front {
                    alto: vec![alto.directory_url()],
                    refresh: Duration::from_secs(2),
                    fallback: None,
                },
            )
            .await?;
            let view = front.front.clone().expect("front mode");
            while head.tracker.maps().is_none() || view.view().live_heads() < 4 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tx.send((
                plain.announce_url(),
                head.announce_url(),
                front.announce_url(),
                tid,
            ))?;
            let _ = stop_rx.await;
            plain.stop().await;
            head.stop().await;
            front.stop().await;
            for t in joined {
                t.stop().await;
            }
            alto.stop().await?;
            anyhow::Ok(())
        })
    });
    let (plain_url, head_url, front_url, tid) = rx.recv()?;
    let load_rt = rt()?;
    let mut plain = load_rt.block_on(load_measured(&args, &plain_url, &tid));
    let mut head = load_rt.block_on(load_measured(&args, &head_url, &tid));
    let mut front = load_rt.block_on(load_measured(&args, &front_url, &tid));
    let _ = stop_tx.send(());
    server.join().expect("server thread")?;
    println!(
        "tracker-shim, server on one thread (one core), load from another\n{}",
        header(&args)
    );
    let ratio = (head.responses as f64 / head.elapsed) / (plain.responses as f64 / plain.elapsed);
    println!("{}", line("plain (random peers)", &mut plain));
    println!("{}", line("head of PID1 (ALTO)", &mut head));
    println!("{}", line("announce front (302)", &mut front));
    let front_ratio =
        (front.responses as f64 / front.elapsed) / (head.responses as f64 / head.elapsed);
    println!(
        "\nhead / plain throughput: {ratio:.3} (ranking costs {:.1}%)\nfront / head throughput: {front_ratio:.3} (redirects per second against the head's announces)",
        (1.0 - ratio) * 100.0
    );
    // Where the load generator, not the server, is the limit (the server's thread below
    // 100%), the answers per second of server CPU say what one core would do.
    if let (Some(f), Some(h)) = (per_core_s(&front), per_core_s(&head)) {
        println!(
            "front / head per core-second of the server: {:.3} ({f:.0} redirects against {h:.0} announces)",
            f / h
        );
    }
    Ok(())
}
