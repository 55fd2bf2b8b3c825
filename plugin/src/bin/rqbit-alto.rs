//! `rqbit-alto`: download or seed a torrent with librqbit, finding peers through the local
//! PID Head (the virtual tracker) of the ALTO server.
//!
//! ```text
//! rqbit-alto download TORRENT|MAGNET --alto URL [--listen ADDR] [--output DIR] [--json]
//! rqbit-alto seed PATH --alto URL [--listen ADDR] [--json]
//! ```
//!
//! Exit codes: 0 done, 1 other failure, 2 bad torrent or arguments, 3 I/O error.

use alto_plugin::{AltoSession, Config, Report};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "librqbit with ALTO-guided peer discovery through the PID Head"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// The ALTO server's directory URL. For a replicated server, repeat it (or separate the
    /// URLs by commas): requests go to the next replica when one does not answer.
    #[arg(long, env = "ALTO_URL", value_delimiter = ',')]
    alto: Vec<String>,
    /// Verify an `https://` ALTO server against the CA certificates in this PEM file
    /// instead of the system's roots.
    #[arg(long, env = "ALTO_CA")]
    alto_ca: Option<PathBuf>,
    /// Present this client certificate chain (PEM) to an ALTO server that asks for one
    /// (TLS client authentication for joins and leases).
    #[arg(long, requires = "alto_client_key", env = "ALTO_CLIENT_CERT")]
    alto_client_cert: Option<PathBuf>,
    /// Answer the ALTO server's HTTP Digest challenges (RFC 7616) as this user…
    #[arg(long, requires = "alto_password_file", env = "ALTO_USER")]
    alto_user: Option<String>,
    /// …with the password in this file (its first line).
    #[arg(long, requires = "alto_user", env = "ALTO_PASSWORD_FILE")]
    alto_password_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "alto_client_cert", env = "ALTO_CLIENT_KEY")]
    alto_client_key: Option<PathBuf>,
    /// Address to listen on for peers (its IP is the client's endpoint); port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Print machine-readable progress and a final summary (JSON lines).
    #[arg(long)]
    json: bool,
    /// Enable the DHT, bootstrapping only from these nodes (host:port, repeatable).
    #[arg(long = "dht", value_name = "NODE")]
    dht: Vec<SocketAddr>,
    /// Strict locality: connect only to peers in the own and the cheapest PIDs.
    #[arg(long)]
    strict: bool,
    /// Port of the tracker shim that serves as PID Head when this client is elected.
    #[arg(long, default_value_t = 0)]
    tracker_port: u16,
    /// Serve that tracker over HTTPS with this certificate chain (PEM, for the listen
    /// address): as head, its URLs are `https://` and members verify them.
    #[arg(long, requires = "tracker_tls_key")]
    tracker_tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tracker_tls_cert")]
    tracker_tls_key: Option<PathBuf>,
    /// Upload limit, KiB/s. A download slower than it is not served: after a few seconds
    /// it reaches peers of other PIDs (docs/locality.md, rule 2).
    #[arg(long)]
    upload_kib: Option<u32>,
    /// Peers of other PIDs per announce for a gateway or a client that reaches out (as
    /// head: its parent in the heads' tree and peers of the parent's PID up to this many).
    #[arg(long, default_value_t = 4)]
    foreign_peers: usize,
    /// A download slower than this (KiB/s) over the last seconds is a stall: the client
    /// reaches out to other PIDs (docs/locality.md).
    #[arg(long, default_value_t = 32)]
    stall_kib: u32,
    /// When the head does not answer or is not in the swarm: with this many peers of the
    /// own PID from other sources, only the random share comes from other PIDs.
    #[arg(long, default_value_t = 3)]
    local_enough: usize,
    /// Seconds between librqbit's announces (the proxy's `min interval`).
    #[arg(long, default_value_t = 5)]
    min_interval: u32,
    /// Download limit, KiB/s: the access link's downlink, if known. A download below half
    /// of it is not served: after a few seconds it reaches peers of other PIDs
    /// (docs/locality.md, rule 2).
    #[arg(long)]
    download_kib: Option<u32>,
    /// Milliseconds of their rate the limits let through at once after a pause (librqbit:
    /// a whole second; an access link's queue holds about 100).
    #[arg(long)]
    burst_ms: Option<u32>,
}

#[derive(Subcommand)]
enum Command {
    /// Download a torrent (a .torrent file or a magnet link).
    Download {
        /// `.torrent` file or magnet link.
        torrent: String,
        /// Folder to save into.
        #[arg(short, long, default_value = ".")]
        output: PathBuf,
        /// Keep seeding this many seconds after the download completes.
        #[arg(long, default_value_t = 0)]
        seed_after: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Make a torrent of a file or folder, write it next to it, and seed it.
    Seed {
        /// File or folder to seed.
        path: PathBuf,
        /// Tracker URL to write into the torrent (repeatable); peers are found through the
        /// PID Head either way.
        #[arg(long = "tracker")]
        trackers: Vec<String>,
        /// Stop after this many seconds (0: until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        seed_for: u64,
        #[command(flatten)]
        common: Common,
    },
}

/// An error with its exit code.
struct Failure(i32, String);

fn fail<E: std::fmt::Display>(code: i32) -> impl FnOnce(E) -> Failure {
    move |e| Failure(code, e.to_string())
}

/// The status line: progress while downloading; once the data is complete (seeding, or a
/// download that finished), what is true then: the upload rate, bytes uploaded and the ratio,
/// not the last download rate. While seeding it is shown only on a terminal (or as `--json`
/// lines), so a log of a long seed does not grow by a line a second.
fn bar(r: &Report) -> String {
    let peers: Vec<String> = r
        .peers_by_pid
        .iter()
        .map(|(p, n)| format!("{p}:{n}"))
        .collect();
    let peers = if peers.is_empty() {
        "-".into()
    } else {
        peers.join(" ")
    };
    let place = format!(
        "{} {}",
        r.pid.as_deref().unwrap_or("no PID"),
        r.role.as_deref().unwrap_or("(no ALTO)")
    );
    if r.finished {
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        let ratio = if r.total_bytes > 0 {
            r.uploaded_bytes as f64 / r.total_bytes as f64
        } else {
            0.0
        };
        return format!(
            "[complete {:.1} MiB] ↑{:.2} MiB/s | uploaded {:.1} MiB, ratio {ratio:.2} | peers {peers} | {place}",
            mib(r.total_bytes),
            r.up_mib_s,
            mib(r.uploaded_bytes),
        );
    }
    let pct = if r.total_bytes > 0 {
        r.have_bytes as f64 / r.total_bytes as f64
    } else {
        0.0
    };
    let filled = (pct * 20.0).round() as usize;
    format!(
        "[{}{}] {:5.1}% ↓{:.2} ↑{:.2} MiB/s | peers {peers} | own PID {:.0}% | {place}",
        "#".repeat(filled),
        ".".repeat(20 - filled),
        pct * 100.0,
        r.down_mib_s,
        r.up_mib_s,
        r.own_pid_share * 100.0,
    )
}

fn show(r: &Report, json: bool, kind: &str) {
    let mut out = std::io::stdout();
    if json {
        let mut v = serde_json::to_value(r).expect("serializes");
        v["type"] = serde_json::Value::from(kind);
        let _ = writeln!(out, "{v}");
    } else if out.is_terminal() {
        let _ = write!(out, "\r{}\x1b[K", bar(r));
        let _ = out.flush();
    } else {
        let _ = writeln!(out, "{}", bar(r));
    }
}

/// Says where peers come from when the ALTO server is not in the picture: no `--alto`, or
/// no answer to the join (the session waited for it while starting).
fn check_alto(common: &Common, session: &AltoSession) {
    match common.alto.as_slice() {
        [] => eprintln!(
            "rqbit-alto: no --alto given: peers come from the torrent's own trackers only"
        ),
        urls if session.membership().pid.is_none() => eprintln!(
            "rqbit-alto: the ALTO server is unreachable ({} did not answer the join); going on without it and retrying in the background",
            urls.join(", ")
        ),
        _ => {}
    }
}

async fn session(common: &Common, output: PathBuf) -> Result<AltoSession, Failure> {
    if let Some(ca) = &common.alto_ca {
        alto_web::tls::set_default_ca(ca).map_err(|e| Failure(2, format!("--alto-ca: {e}")))?;
    }
    if let (Some(cert), Some(key)) = (&common.alto_client_cert, &common.alto_client_key) {
        alto_web::tls::set_default_identity(cert, key)
            .map_err(|e| Failure(2, format!("--alto-client-cert: {e}")))?;
    }
    if let (Some(user), Some(file)) = (&common.alto_user, &common.alto_password_file) {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure(2, format!("--alto-password-file {}: {e}", file.display())))?;
        alto_client::set_default_credentials(user, text.lines().next().unwrap_or_default());
    }
    let mut config = Config::new(common.listen.ip(), output);
    config.port = common.listen.port();
    config.alto = common.alto.clone();
    config.tracker_port = common.tracker_port;
    if let (Some(cert), Some(key)) = (&common.tracker_tls_cert, &common.tracker_tls_key) {
        let tls = alto_web::tls::ServerTls::load(cert, key)
            .map_err(|e| Failure(2, format!("--tracker-tls-cert: {e}")))?;
        config.tracker_tls = Some(std::sync::Arc::new(tls));
    }
    config.dht_bootstrap = (!common.dht.is_empty()).then(|| common.dht.clone());
    config.strict = common.strict;
    config.locality.foreign_peers = common.foreign_peers;
    config.locality.stall_bps = common.stall_kib as f64 * 1024.0;
    config.local_enough = common.local_enough;
    config.min_interval = common.min_interval.max(1);
    config.upload_bps = common.upload_kib.map(|k| k.saturating_mul(1024));
    config.download_bps = common.download_kib.map(|k| k.saturating_mul(1024));
    config.burst_ms = common.burst_ms;
    AltoSession::start(config).await.map_err(fail(1))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Download {
            torrent,
            output,
            seed_after,
            common,
        } => {
            let bytes = if torrent.starts_with("magnet:") {
                torrent.clone().into_bytes()
            } else {
                std::fs::read(&torrent)
                    .map_err(|e| Failure(3, format!("cannot read {torrent}: {e}")))?
            };
            if !torrent.starts_with("magnet:") {
                alto_plugin::metainfo::strip_torrent(&bytes)
                    .map_err(|e| Failure(2, format!("{torrent}: {e}")))?;
            } else {
                alto_plugin::metainfo::strip_magnet(&torrent)
                    .map_err(|e| Failure(2, e.to_string()))?;
            }
            std::fs::create_dir_all(&output)
                .map_err(|e| Failure(3, format!("cannot create {}: {e}", output.display())))?;
            let s = session(&common, output).await?;
            check_alto(&common, &s);
            let t = s.add(&bytes).await.map_err(fail(2))?;
            let done = t.wait_completed();
            tokio::pin!(done);
            let mut tick =
                tokio::time::interval(Duration::from_millis(if common.json { 1000 } else { 500 }));
            loop {
                tokio::select! {
                    r = &mut done => {
                        r.map_err(fail(3))?;
                        break;
                    }
                    _ = tick.tick() => {
                        let r = s.report(&t);
                        if let Some(e) = &r.error {
                            return Err(Failure(3, format!("the download failed: {e}")));
                        }
                        show(&r, common.json, "progress");
                    }
                    _ = tokio::signal::ctrl_c() => {
                        s.shutdown().await;
                        return Err(Failure(1, "interrupted".into()));
                    }
                }
            }
            // The moment of completion, then progress while seeding on.
            show(&s.report(&t), common.json, "completed");
            if seed_after > 0 {
                let stop = tokio::time::sleep(Duration::from_secs(seed_after));
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::signal::ctrl_c() => break,
                        _ = tick.tick() => {
                            if common.json || std::io::stdout().is_terminal() {
                                show(&s.report(&t), common.json, "progress");
                            }
                        }
                    }
                }
            }
            let r = s.report(&t);
            if !common.json && std::io::stdout().is_terminal() {
                println!();
            }
            show(&r, common.json, "summary");
            s.shutdown().await;
            Ok(())
        }
        Command::Seed {
            path,
            trackers,
            seed_for,
            common,
        } => {
            if !path.exists() {
                return Err(Failure(3, format!("{} does not exist", path.display())));
            }
            let output = path
                .parent()
                .map_or_else(|| PathBuf::from("."), |p| p.to_owned());
            let s = session(&common, output).await?;
            check_alto(&common, &s);
            let (torrent_path, t) = s.seed(&path, trackers).await.map_err(fail(3))?;
            println!("{}", torrent_path.display());
            let stop = async {
                if seed_for > 0 {
                    tokio::time::sleep(Duration::from_secs(seed_for)).await
                } else {
                    std::future::pending::<()>().await
                }
            };
            tokio::pin!(stop);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::signal::ctrl_c() => break,
                    _ = tick.tick() => {
                            if common.json || std::io::stdout().is_terminal() {
                                show(&s.report(&t), common.json, "progress");
                            }
                        }
                }
            }
            show(&s.report(&t), common.json, "summary");
            s.shutdown().await;
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(Failure(code, message)) = run(cli).await {
        eprintln!("rqbit-alto: {message}");
        std::process::exit(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_shows_uploads_once_the_data_is_complete() {
        let mut r = Report {
            total_bytes: 8 << 20,
            have_bytes: 4 << 20,
            down_mib_s: 3.5,
            up_mib_s: 1.25,
            pid: Some("PID1".into()),
            role: Some("head".into()),
            peers_by_pid: [("PID1".to_owned(), 2), ("PID2".to_owned(), 1)].into(),
            ..Report::default()
        };
        let line = bar(&r);
        assert!(line.contains(" 50.0% ↓3.50 ↑1.25 MiB/s"), "{line}");
        assert!(
            line.contains("peers PID1:2 PID2:1") && line.ends_with("PID1 head"),
            "{line}"
        );
        r.have_bytes = r.total_bytes;
        r.finished = true;
        r.uploaded_bytes = 12 << 20;
        let line = bar(&r);
        assert!(line.starts_with("[complete 8.0 MiB] ↑1.25 MiB/s"), "{line}");
        assert!(line.contains("uploaded 12.0 MiB, ratio 1.50"), "{line}");
        assert!(!line.contains('↓'), "no stale download rate: {line}");
    }
}
