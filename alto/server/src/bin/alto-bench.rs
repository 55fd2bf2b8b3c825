//! `alto-bench`: the figures of the ALTO core on a production-sized deployment (1,701 PIDs,
//! 250,002 prefixes, about 1.3 million cost pairs), each against a baseline measured in the
//! same run:
//!
//! - longest-prefix lookups per second on one core, against a hash table per prefix length
//!   (the textbook software LPM);
//! - load time and peak memory of the maps, measured in a fresh child process;
//! - endpoint-cost rankings of 100 candidates per second (RFC 7285 §12.3), the model alone
//!   and with JSON decoding and encoding;
//! - network-map GETs per second over loopback keep-alive, revalidated with `If-None-Match`
//!   (304) against full 200 answers.
//!
//! `alto-bench [--seconds S] [--connections C]`. Build with `--release`.

use alto_model::messages::{EndpointFilter, ReqEndpointCostMap};
use alto_model::{CostMap, CostMode, CostType, InformationBase, NetworkMap};
use alto_server::{Running, Source};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testdata::production::{generate, Params, SplitMix};

/// The figures of the ALTO core on a production-sized deployment, each against a baseline
/// measured in the same run. Build with `--release`.
#[derive(clap::Parser, Debug)]
#[command(version)]
struct Args {
    /// Seconds each throughput figure is measured for.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Keep-alive connections of the network-map GET load.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Internal: load the maps in DIR and print load time and peak memory (the child
    /// process that measures memory with nothing else in it).
    #[arg(long, value_name = "DIR", hide = true)]
    load_only: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    if let Some(dir) = &args.load_only {
        return load_only(dir);
    }
    let seconds = args.seconds;
    let connections = args.connections;
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for real figures");
    }

    let t = Instant::now();
    let g = generate(&Params::default());
    eprintln!(
        "generated {} PIDs, {} prefixes, {} cost pairs in {:.1} s",
        g.pids,
        g.prefixes,
        g.pairs,
        t.elapsed().as_secs_f64()
    );
    let dir = tempdir()?;
    std::fs::write(dir.join("network-map.json"), &g.network_map)?;
    std::fs::write(dir.join("routingcost.json"), &g.routingcost)?;
    std::fs::write(
        dir.join("alto.toml"),
        "[network-map]\nresource-id = \"production-network-map\"\nfile = \"network-map.json\"\n\n[[cost-map]]\nmetric = \"routingcost\"\nfile = \"routingcost.json\"\n",
    )?;

    let mut rows: Vec<[String; 4]> = Vec::new();

    // Load time and peak memory, in a child so that nothing else counts.
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--load-only")
        .arg(&dir)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "load-only child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let field = |k: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    let (load_s, base_kib, peak_kib) = (
        field("load_s="),
        field("hwm_before_kib="),
        field("hwm_after_kib="),
    );
    rows.push([
        "map load (network + routingcost)".into(),
        format!("{load_s:.2} s"),
        format!(
            "{:.1} MB of JSON",
            (g.network_map.len() + g.routingcost.len()) as f64 / 1e6
        ),
        format!(
            "{:.0} MB/s",
            (g.network_map.len() + g.routingcost.len()) as f64 / 1e6 / load_s
        ),
    ]);
    rows.push([
        "peak memory of the loaded maps".into(),
        format!("{:.0} MiB", (peak_kib - base_kib) / 1024.0),
        format!("{:.0} MiB process total", peak_kib / 1024.0),
        String::new(),
    ]);

    let net = NetworkMap::from_json("production-network-map", &g.network_map)?;
    let costs = CostMap::from_json("routingcost", &g.routingcost, &net)?;
    let base = InformationBase::new(net, vec![costs])?;
    let net = base.network_map();

    // Longest-prefix match: addresses inside generated prefixes, shuffled, plus uniform ones.
    let mut rng = SplitMix::new(42);
    let mut addrs: Vec<u32> = Vec::with_capacity(1 << 20);
    while addrs.len() < (1 << 20) {
        let a = if rng.below(4) == 0 {
            rng.next_u64() as u32
        } else {
            g.sample_v4[rng.below(g.sample_v4.len() as u64) as usize]
        };
        addrs.push(a);
    }
    let naive = NaiveLpm::build(net);
    for &a in addrs.iter().take(100_000) {
        assert_eq!(
            net.pid_of_v4(a),
            naive.lookup(a),
            "the baseline disagrees at {a:#x}"
        );
    }
    let ours = rate(seconds, |n| {
        let mut acc = 0u32;
        for i in 0..n {
            acc = acc.wrapping_add(net.pid_of_v4(addrs[i & (addrs.len() - 1)]));
        }
        black_box(acc);
    });
    let theirs = rate(seconds, |n| {
        let mut acc = 0u32;
        for i in 0..n {
            acc = acc.wrapping_add(naive.lookup(addrs[i & (addrs.len() - 1)]));
        }
        black_box(acc);
    });
    rows.push([
        "longest-prefix lookups, 1 core".into(),
        format!("{:.1} M/s", ours / 1e6),
        format!("{:.1} M/s hash per length", theirs / 1e6),
        format!("{:.1}x", ours / theirs),
    ]);

    // Endpoint cost ranking: one source, 100 candidate peers, ordinal (RFC 7285 §12.3).
    let reqs: Vec<ReqEndpointCostMap> = (0..256)
        .map(|_| {
            let pick = |rng: &mut SplitMix| {
                format!(
                    "ipv4:{}",
                    std::net::Ipv4Addr::from(addrs[rng.below(addrs.len() as u64) as usize])
                )
            };
            ReqEndpointCostMap {
                cost_type: CostType::new("routingcost", CostMode::Ordinal),
                constraints: None,
                endpoints: EndpointFilter {
                    srcs: Some(vec![pick(&mut rng)]),
                    dsts: Some((0..100).map(|_| pick(&mut rng)).collect()),
                },
            }
        })
        .collect();
    let bodies: Vec<Vec<u8>> = reqs
        .iter()
        .map(|r| serde_json::to_vec(r).expect("encodes"))
        .collect();
    let model = rate(seconds, |n| {
        for i in 0..n {
            black_box(
                base.endpoint_cost(&reqs[i % reqs.len()], None, &Default::default())
                    .expect("valid"),
            );
        }
    });
    let wire = rate(seconds, |n| {
        for i in 0..n {
            let req = ReqEndpointCostMap::parse(&bodies[i % bodies.len()]).expect("valid");
            let resp = base
                .endpoint_cost(&req, None, &Default::default())
                .expect("valid");
            black_box(serde_json::to_vec(&resp).expect("encodes"));
        }
    });
    rows.push([
        "ECS ranking of 100 candidates, 1 core".into(),
        format!("{:.0} k/s", model / 1e3),
        format!("{:.0} k/s with JSON in and out", wire / 1e3),
        format!("{:.2}x", model / wire),
    ]);

    // Network map GETs over loopback keep-alive: revalidation (304) against full answers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (revalidated, full) = rt.block_on(async {
        let server =
            Running::start(Source::File(dir.join("alto.toml")), "127.0.0.1:0".parse()?).await?;
        let etag = fetch_etag(server.addr).await?;
        let revalidated = http_rate(server.addr, Some(etag.clone()), connections, seconds).await?;
        let full = http_rate(server.addr, None, connections.min(4), seconds).await?;
        server.stop().await?;
        anyhow::Ok((revalidated, full))
    })?;
    rows.push([
        format!("GET /networkmap If-None-Match, {connections} conns"),
        format!("{:.0} k/s (304)", revalidated.0 / 1e3),
        format!(
            "{:.1} /s full 200 ({:.1} MB each)",
            full.0,
            full.1 as f64 / 1e6
        ),
        format!("{:.0}x", revalidated.0 / full.0),
    ]);

    // TLS (RFC 7285 §8.3.5): one server, HTTPS on `listen` and plain HTTP on `plain-listen`,
    // the same ECS queries over keep-alive on each; then full handshakes per second.
    let tls = rt.block_on(tls_figures(&dir, &bodies, connections.min(8), seconds))?;
    rows.push([
        format!("ECS over HTTPS keep-alive, {} conns", connections.min(8)),
        format!("{:.1} k/s", tls.over_tls / 1e3),
        format!("{:.1} k/s plain HTTP", tls.plain / 1e3),
        format!("{:.2}x", tls.over_tls / tls.plain),
    ]);
    rows.push([
        "full TLS 1.3 handshakes (ECDSA P-256)".into(),
        format!("{:.0} /s", tls.handshakes),
        format!("{:.0} /s plain TCP connects", tls.tcp),
        format!("{:.2}x", tls.handshakes / tls.tcp),
    ]);

    println!("\nALTO core on a production-sized map: {} PIDs, {} prefixes, {} cost pairs ({}s per figure)\n", g.pids, g.prefixes, g.pairs, seconds);
    println!(
        "{:<44} {:>16}   {:<36} {:>8}",
        "figure", "value", "baseline (same run)", "ratio"
    );
    println!("{}", "-".repeat(110));
    for r in rows {
        println!("{:<44} {:>16}   {:<36} {:>8}", r[0], r[1], r[2], r[3]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Loads the maps named in DIR and prints the time and the peak resident memory before and
/// after, for the parent to read.
fn load_only(dir: &std::path::Path) -> anyhow::Result<()> {
    let before = vm_hwm_kib();
    let t = Instant::now();
    let loaded = Source::File(dir.join("alto.toml")).load()?;
    let load_s = t.elapsed().as_secs_f64();
    let after = vm_hwm_kib();
    black_box(&loaded);
    println!("load_s={load_s}\nhwm_before_kib={before}\nhwm_after_kib={after}");
    Ok(())
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| {
                    l.strip_prefix("VmHWM:")
                        .map(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                })
                .flatten()
        })
        .unwrap_or(0)
}

/// Runs `f(n)` with growing `n` until it takes about `seconds`, and returns calls per second.
fn rate(seconds: u64, mut f: impl FnMut(usize)) -> f64 {
    f(10_000); // warm up
    let mut n = 10_000usize;
    loop {
        let t = Instant::now();
        f(n);
        let dt = t.elapsed().as_secs_f64();
        if dt >= seconds as f64 || n > (1 << 34) {
            return n as f64 / dt;
        }
        n = ((n as f64) * (seconds as f64 / dt.max(1e-3)).min(16.0) * 1.05) as usize + 1;
    }
}

async fn fetch_etag(addr: SocketAddr) -> anyhow::Result<String> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::get("/networkmap")
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let resp = send.send_request(req).await?;
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    resp.into_body().collect().await?;
    Ok(etag)
}

/// GETs `/networkmap` on `connections` keep-alive connections for `seconds`; returns
/// responses per second and the size of the last body.
async fn http_rate(
    addr: SocketAddr,
    etag: Option<String>,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<(f64, usize)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let etag = etag.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let (mut count, mut size) = (0u64, 0usize);
            while Instant::now() < deadline {
                let mut req = http::Request::get("/networkmap").header("host", addr.to_string());
                if let Some(e) = &etag {
                    req = req.header("if-none-match", e.as_str());
                }
                let resp = send.send_request(req.body(Empty::<Bytes>::new())?).await?;
                let want = if etag.is_some() { 304 } else { 200 };
                anyhow::ensure!(resp.status().as_u16() == want, "status {}", resp.status());
                size = resp.into_body().collect().await?.to_bytes().len();
                count += 1;
            }
            anyhow::Ok((count, size))
        }));
    }
    let start = Instant::now();
    let (mut total, mut size) = (0u64, 0usize);
    for t in tasks {
        let (c, s) = t.await??;
        total += c;
        size = size.max(s);
    }
    Ok((
        total as f64 / start.elapsed().as_secs_f64().max(seconds as f64),
        size,
    ))
}

/// Per second: ECS answers over plain HTTP and over HTTPS, full TLS handshakes, plain TCP
/// connections.
struct TlsFigures {
    plain: f64,
    over_tls: f64,
    handshakes: f64,
    tcp: f64,
}

/// The TLS figures against one server on the maps in `dir`: ECS answers per second over
/// plain HTTP and over HTTPS keep-alive (`connections` each), and full TLS handshakes per
/// second (a new connection each, `connections` at once). Server and load share the
/// runtime's two threads.
async fn tls_figures(
    dir: &std::path::Path,
    bodies: &[Vec<u8>],
    connections: usize,
    seconds: u64,
) -> anyhow::Result<TlsFigures> {
    // A CA and a certificate for 127.0.0.1, made here.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &ca)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("server.pem"), cert.pem())?;
    std::fs::write(dir.join("server-key.pem"), key.serialize_pem())?;
    let plain_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = std::fs::read_to_string(dir.join("alto.toml"))?;
    std::fs::write(
        dir.join("alto-tls.toml"),
        format!("{config}\n[tls]\ncert = \"server.pem\"\nkey = \"server-key.pem\"\nplain-listen = \"{plain_addr}\"\n"),
    )?;
    let server = Running::start(
        Source::File(dir.join("alto-tls.toml")),
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let tls =
        tokio_rustls::TlsConnector::from(alto_web::tls::client_config(Some(&dir.join("ca.pem")))?);
    let plain = ecs_rate(plain_addr, None, bodies, connections, seconds).await?;
    let over_tls = ecs_rate(server.addr, Some(&tls), bodies, connections, seconds).await?;
    // Full handshakes: no session resumption.
    let mut full = (*alto_web::tls::client_config(Some(&dir.join("ca.pem")))?).clone();
    full.resumption = tokio_rustls::rustls::client::Resumption::disabled();
    let full = tokio_rustls::TlsConnector::from(std::sync::Arc::new(full));
    let handshakes = connect_rate(server.addr, Some(&full), connections, seconds).await?;
    let tcp = connect_rate(plain_addr, None, connections, seconds).await?;
    server.stop().await?;
    Ok(TlsFigures {
        plain,
        over_tls,
        handshakes,
        tcp,
    })
}

/// A TCP connection to `addr`, through TLS when `tls` is given.
async fn connect(
    addr: SocketAddr,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> anyhow::Result<Box<dyn Io>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(match tls {
        Some(c) => {
            let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
            Box::new(c.connect(name, stream).await?)
        }
        None => Box::new(stream),
    })
}

/// What a connection is: plain TCP or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// POSTs the ECS `bodies` in turn on `connections` keep-alive connections for `seconds`;
/// answers per second.
async fn ecs_rate(
    addr: SocketAddr,
    tls: Option<&tokio_rustls::TlsConnector>,
    bodies: &[Vec<u8>],
    connections: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let bodies: std::sync::Arc<Vec<Bytes>> =
        std::sync::Arc::new(bodies.iter().map(|b| Bytes::from(b.clone())).collect());
    let mut tasks = Vec::new();
    for c in 0..connections {
        let io = connect(addr, tls).await?;
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
            tokio::spawn(conn);
            let mut count = 0u64;
            while Instant::now() < deadline {
                let body = bodies[(c + count as usize) % bodies.len()].clone();
                let req = http::Request::post("/endpointcost/lookup")
                    .header("host", addr.to_string())
                    .header("content-type", "application/alto-endpointcostparams+json")
                    .header("accept", "application/alto-endpointcost+json")
                    .body(http_body_util::Full::new(body))?;
                let resp = send.send_request(req).await?;
                anyhow::ensure!(resp.status() == 200, "status {}", resp.status());
                resp.into_body().collect().await?;
                count += 1;
            }
            anyhow::Ok(count)
        }));
    }
    per_second(tasks, seconds).await
}

/// Connections per second: `connections` tasks, each connecting (and completing the TLS
/// handshake when `tls` is given) and closing, for `seconds`.
async fn connect_rate(
    addr: SocketAddr,
    tls: Option<&tokio_rustls::TlsConnector>,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let tls = tls.cloned();
        tasks.push(tokio::spawn(async move {
            let mut count = 0u64;
            while Instant::now() < deadline {
                drop(connect(addr, tls.as_ref()).await?);
                count += 1;
            }
            anyhow::Ok(count)
        }));
    }
    per_second(tasks, seconds).await
}

/// What the load `tasks` counted, per second over at least `seconds`.
async fn per_second(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<u64>>>,
    seconds: u64,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64().max(seconds as f64))
}

/// The baseline: one hash table per prefix length, probed from the longest length down.
struct NaiveLpm {
    by_len: Vec<(u32, HashMap<u32, u32>)>,
}

impl NaiveLpm {
    fn build(net: &NetworkMap) -> Self {
        let mut tables: Vec<HashMap<u32, u32>> = vec![HashMap::new(); 33];
        for (i, _) in net.pids().iter().enumerate() {
            for p in net.prefixes(i as u32) {
                if p.ty == alto_model::addr::AddressType::Ipv4 {
                    tables[p.len as usize].insert(p.addr as u32, i as u32);
                }
            }
        }
        let by_len = tables
            .into_iter()
            .enumerate()
            .rev()
            .filter(|(_, t)| !t.is_empty())
            .map(|(l, t)| (l as u32, t))
            .collect();
        NaiveLpm { by_len }
    }

    fn lookup(&self, addr: u32) -> u32 {
        for (len, t) in &self.by_len {
            let key = if *len == 0 {
                0
            } else {
                addr & (u32::MAX << (32 - len))
            };
            if let Some(&v) = t.get(&key) {
                return v;
            }
        }
        u32::MAX
    }
}

fn tempdir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("alto-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
