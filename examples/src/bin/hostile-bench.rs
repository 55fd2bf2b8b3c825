//! `hostile-bench`: what hostile clients cost the servers (issue 12's figures), each against a
//! normal request measured in the same run. The servers run as child processes (the release
//! `alto-server` and `tracker-shim` next to this binary), so their memory is theirs alone,
//! read from `/proc/PID/status` (`VmHWM`: peak, `VmRSS`: now).
//!
//! - `ecs`: one endpoint cost query of 1,850 sources x 1,850 destinations (about 61 KB, the
//!   review's amplification probe): status, answer bytes, time, the server's memory; six at
//!   once with `/directory` timed meanwhile; twelve clients that send it and never read.
//! - `slowloris`: 2,000 connections that trickle a request head a byte every 2 s plus 400 idle
//!   ones, from one address and then from 100, against `alto-server` and `tracker-shim`: the
//!   connections the server still holds after 5 and 15 s (its open sockets), and
//!   `/directory` or `/metrics` latency meanwhile, from another address, against the same
//!   request on a quiet server.
//! - `tracker`: announces of new info hashes from one address: memory per announce, and
//!   swarms kept under `--max-swarms 1000`.
//!
//! `hostile-bench [--only ecs|slowloris|tracker]`. Build with `cargo build --release -p
//! alto-server -p tracker-shim -p alto-examples`; run as root or with `ulimit -n` of at least
//! 8192 (the slowloris probe opens 2,400 sockets).

use alto_locality::rank::{Random, SplitMix64};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(clap::Parser)]
#[command(about = "What hostile clients cost alto-server and tracker-shim")]
struct Args {
    /// Run one probe only: `ecs`, `slowloris` or `tracker`.
    #[arg(long)]
    only: Option<String>,
    /// Announces of new info hashes in the tracker probe.
    #[arg(long, default_value_t = 100_000)]
    announces: usize,
    /// Sources and destinations of the endpoint cost probe.
    #[arg(long, default_value_t = 1850)]
    endpoints: usize,
}

/// A server under test, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `bin` with `args`, its listen address given as `--listen ADDR`, and waits until
    /// it accepts connections.
    async fn start(bin: &Path, args: &[&str]) -> anyhow::Result<Server> {
        let addr = free_port()?;
        let child = Command::new(bin)
            .arg("--listen")
            .arg(addr.to_string())
            .args(args)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
        let server = Server { child, addr };
        for _ in 0..200 {
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("{} did not start", bin.display())
    }

    /// `(VmHWM, VmRSS)` in MB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kb("VmHWM:") / 1024.0, kb("VmRSS:") / 1024.0)
    }

    /// Sockets the server holds open (its listening socket included).
    fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| {
                d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|l| l.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    }
}

fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// A binary next to this one.
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let p = me.with_file_name(name);
    anyhow::ensure!(
        p.exists(),
        "{} not found: build it with cargo build --release",
        p.display()
    );
    Ok(p)
}

/// A connection to `addr` from `127.0.0.{from}`.
async fn connect_from(from: u8, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::from(([127, 0, 0, from], 0)))?;
    s.connect(addr).await
}

/// The address normal requests come from (hostile ones come from others).
const NORMAL: u8 = 200;

/// One request on a fresh connection from the normal client's address: status, body
/// bytes, time to the whole answer.
async fn exchange(addr: SocketAddr, request: &[u8]) -> anyhow::Result<(u16, usize, Duration)> {
    let t = Instant::now();
    let mut s = connect_from(NORMAL, addr).await?;
    s.write_all(request).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no answer head"))?;
    let status = std::str::from_utf8(&buf[9..12])?.parse()?;
    Ok((status, buf.len() - head_end - 4, t.elapsed()))
}

fn post(path: &str, ctype: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The endpoint cost query of `n` sources by `n` destinations.
fn ecs_body(n: usize) -> Vec<u8> {
    let addrs = |base: u8| -> Vec<String> {
        (0..n)
            .map(|i| format!("ipv4:{base}.0.{}.{}", i / 250, i % 250 + 1))
            .collect()
    };
    serde_json::to_vec(&serde_json::json!({
        "cost-type": {"cost-mode": "numerical", "cost-metric": "routingcost"},
        "endpoints": {"srcs": addrs(1), "dsts": addrs(2)},
    }))
    .expect("json")
}

/// Median and largest of `times`, ms.
fn spread(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    match times.as_slice() {
        [] => (f64::NAN, f64::NAN),
        t => (ms(t[t.len() / 2]), ms(t[t.len() - 1])),
    }
}

/// `/directory` (or `path`) timed every 100 ms until `stop`.
async fn probe_latency(
    addr: SocketAddr,
    path: &'static str,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Duration> {
    let mut times = Vec::new();
    while !*stop.borrow() {
        if let Ok(Ok((_, _, t))) =
            tokio::time::timeout(Duration::from_secs(30), exchange(addr, &get(path))).await
        {
            times.push(t);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    times
}

async fn quiet_latency(addr: SocketAddr, path: &str) -> (f64, f64) {
    let mut times = Vec::new();
    for _ in 0..20 {
        if let Ok((_, _, t)) = exchange(addr, &get(path)).await {
            times.push(t);
        }
    }
    spread(times)
}

async fn ecs(alto: &Path, n: usize) -> anyhow::Result<()> {
    let body = ecs_body(n);
    let req = post(
        "/endpointcost/lookup",
        "application/alto-endpointcostparams+json",
        &body,
        true,
    );
    println!(
        "## ecs: {n} x {n} endpoints ({} pairs), query {} bytes",
        n * n,
        body.len()
    );
    let s = Server::start(alto, &[]).await?;
    let (_, rss0) = s.memory();
    let (status, len, t) = exchange(s.addr, &req).await?;
    let (hwm, _) = s.memory();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, rss) = s.memory();
    println!(
        "one query: HTTP {status}, answer {len} bytes ({:.0}x the query), {:.0} ms; \
         server memory {rss0:.1} MB before, peak {hwm:.1} MB, {rss:.1} MB after",
        len as f64 / body.len() as f64,
        t.as_secs_f64() * 1000.0
    );

    let quiet = quiet_latency(s.addr, "/directory").await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(probe_latency(s.addr, "/directory", rx));
    let t = Instant::now();
    let six: Vec<_> = (0..6)
        .map(|_| {
            let req = req.clone();
            tokio::spawn(async move { exchange(s.addr, &req).await })
        })
        .collect();
    for q in six {
        q.await??;
    }
    let six_time = t.elapsed();
    let _ = tx.send(true);
    let busy = spread(probe.await?);
    let (hwm, _) = s.memory();
    println!(
        "six at once: {:.0} ms, server peak {hwm:.1} MB; /directory p50/max {:.1}/{:.1} ms \
         (quiet: {:.1}/{:.1} ms)",
        six_time.as_secs_f64() * 1000.0,
        busy.0,
        busy.1,
        quiet.0,
        quiet.1
    );
    drop(s);

    // Twelve clients send a query within the default bound (316 x 316, 99,856 pairs) and
    // never read the answer.
    let s = Server::start(alto, &[]).await?;
    let within = ecs_body(316);
    let (status, len, t) = exchange(
        s.addr,
        &post(
            "/endpointcost/lookup",
            "application/alto-endpointcostparams+json",
            &within,
            true,
        ),
    )
    .await?;
    println!(
        "316 x 316 (within the default bound): HTTP {status}, answer {len} bytes, {:.0} ms",
        t.as_secs_f64() * 1000.0
    );
    let keep = post(
        "/endpointcost/lookup",
        "application/alto-endpointcostparams+json",
        &within,
        false,
    );
    let mut held = Vec::new();
    for _ in 0..12 {
        let mut c = TcpStream::connect(s.addr).await?;
        c.write_all(&keep).await?;
        held.push(c);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, rss3) = s.memory();
    tokio::time::sleep(Duration::from_secs(27)).await;
    let (hwm, rss30) = s.memory();
    let mut closed = 0;
    for mut c in held {
        let mut sink = vec![0u8; 1 << 16];
        let ended = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match c.read(&mut sink).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false);
        closed += usize::from(ended);
    }
    println!(
        "twelve that never read: server memory {rss3:.1} MB after 3 s, {rss30:.1} MB after \
         30 s (peak {hwm:.1} MB); {closed} of 12 connections closed by the server by then"
    );
    Ok(())
}

/// 2,000 connections trickling a request head and 400 idle ones against `s`, from
/// `sources` addresses (127.0.0.1 and up).
async fn slowloris(
    name: &str,
    s: &Server,
    path: &'static str,
    sources: usize,
) -> anyhow::Result<()> {
    let quiet = quiet_latency(s.addr, path).await;
    let sockets0 = s.sockets();
    let mut tasks = Vec::new();
    for i in 0..2400 {
        let addr = s.addr;
        let from = 1 + (i % sources) as u8;
        tasks.push(tokio::spawn(async move {
            let Ok(mut c) = connect_from(from, addr).await else {
                return;
            };
            if i >= 2000 {
                // Idle: holds the connection and sends nothing.
                let mut b = [0u8; 64];
                let _ = tokio::time::timeout(Duration::from_secs(20), c.read(&mut b)).await;
                return;
            }
            let head = b"GET /directory HTTP/1.1\r\nHost: bench\r\nX-Slow: ";
            if c.write_all(head).await.is_err() {
                return;
            }
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if c.write_all(b"a").await.is_err() {
                    return;
                }
            }
        }));
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(probe_latency(s.addr, path, rx));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let at5 = s.sockets().saturating_sub(sockets0);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let at15 = s.sockets().saturating_sub(sockets0);
    let _ = tx.send(true);
    let busy = spread(probe.await?);
    for t in tasks {
        t.abort();
    }
    println!(
        "{name}: 2,000 slowloris + 400 idle connections from {sources} addresses: server holds \
         {at5} after 5 s, {at15} after 15 s; {path} p50/max {:.1}/{:.1} ms meanwhile (quiet: \
         {:.1}/{:.1} ms)",
        busy.0, busy.1, quiet.0, quiet.1
    );
    Ok(())
}

fn announce(h: u64, port: u16) -> Vec<u8> {
    // Info hashes spread as real ones are (SplitMix64 of the counter).
    let z = SplitMix64(h).next_u64();
    let mut hash = String::new();
    for b in z
        .to_be_bytes()
        .iter()
        .chain(&h.to_be_bytes())
        .chain(&[0u8; 4])
    {
        hash.push_str(&format!("%{b:02X}"));
    }
    format!(
        "GET /announce?info_hash={hash}&peer_id=-HB0001-{h:012}&port={port}&uploaded=0\
         &downloaded=0&left=1000&compact=1 HTTP/1.1\r\nHost: bench\r\n\r\n"
    )
    .into_bytes()
}

/// Announces `n` new info hashes over one keep-alive connection; failures in the answers.
async fn announce_many(addr: SocketAddr, n: usize) -> anyhow::Result<usize> {
    let mut c = TcpStream::connect(addr).await?;
    let mut failures = 0;
    let mut buf = vec![0u8; 4096];
    for h in 0..n as u64 {
        c.write_all(&announce(h, 6881)).await?;
        // One small answer per request: read until its body is in.
        let mut got = Vec::new();
        loop {
            let k = c.read(&mut buf).await?;
            anyhow::ensure!(k > 0, "tracker closed the connection");
            got.extend_from_slice(&buf[..k]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    if got[end + 4..].windows(7).any(|w| w == b"failure") {
                        failures += 1;
                    }
                    break;
                }
            }
        }
    }
    Ok(failures)
}

async fn swarms(addr: SocketAddr) -> String {
    let mut c = match TcpStream::connect(addr).await {
        Ok(c) => c,
        Err(_) => return "?".into(),
    };
    let _ = c.write_all(&get("/metrics")).await;
    let mut page = String::new();
    let _ = c.read_to_string(&mut page).await;
    page.lines()
        .find_map(|l| l.strip_prefix("tracker_swarms "))
        .unwrap_or("?")
        .to_owned()
}

async fn tracker(shim: &Path, n: usize) -> anyhow::Result<()> {
    println!("## tracker: {n} announces of new info hashes from one address");
    tracker_run(shim, n, "defaults", &[]).await?;
    // What a swarm costs when no cap refuses it (a tracker without the per-source cap has
    // no such flag and ends here).
    let lifted = ["--max-peers-per-source", "100000000"];
    if let Err(e) = tracker_run(shim, n, "per-source cap lifted", &lifted).await {
        println!("per-source cap lifted: not run ({e})");
    }
    let s = Server::start(shim, &["--max-swarms", "1000"]).await?;
    let failures = announce_many(s.addr, 5000).await?;
    println!(
        "--max-swarms 1000: 5000 announces of new info hashes, {failures} refused, swarms kept {}",
        swarms(s.addr).await
    );
    Ok(())
}

async fn tracker_run(shim: &Path, n: usize, name: &str, args: &[&str]) -> anyhow::Result<()> {
    let s = Server::start(shim, args).await?;
    let (_, rss0) = s.memory();
    let t = Instant::now();
    let failures = announce_many(s.addr, n).await?;
    let secs = t.elapsed().as_secs_f64();
    let (hwm, rss) = s.memory();
    println!(
        "{name}: {n} announces in {secs:.1} s, {failures} refused; swarms kept {}; memory \
         {rss0:.1} -> {rss:.1} MB (peak {hwm:.1}), {:.0} bytes per announce, {:.1} MB/s of growth",
        swarms(s.addr).await,
        (rss - rss0) * 1024.0 * 1024.0 / n as f64,
        (rss - rss0) / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for real figures");
    }
    let want = |p: &str| args.only.as_deref().is_none_or(|o| o == p);
    let alto = sibling("alto-server")?;
    let shim = sibling("tracker-shim")?;
    if want("ecs") {
        ecs(&alto, args.endpoints).await?;
    }
    if want("slowloris") {
        println!("## slowloris");
        for sources in [1, 100] {
            let s = Server::start(&alto, &[]).await?;
            slowloris("alto-server", &s, "/directory", sources).await?;
            drop(s);
            let s = Server::start(&shim, &[]).await?;
            slowloris("tracker-shim", &s, "/metrics", sources).await?;
        }
    }
    if want("tracker") {
        tracker(&shim, args.announces).await?;
    }
    Ok(())
}
