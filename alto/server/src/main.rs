//! `alto-server`: serves an ALTO information base (RFC 7285) over HTTP.
//!
//! `alto-server [--config FILE] [--listen ADDR] [--tls-cert FILE --tls-key FILE]`. Without
//! `--config` it serves the embedded loopback topology. With a certificate it serves HTTPS
//! (RFC 7285 §8.3.5). SIGHUP reloads the maps and the certificate; SIGINT or SIGTERM stops
//! it gracefully.

use alto_server::{run_with_plain, App, Source};
use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(version, about = "RFC 7285 ALTO server")]
struct Args {
    /// TOML configuration naming the map files; without it the embedded loopback topology
    /// (4 PIDs on 127.1.0.0/16 … 127.4.0.0/16 plus `default`) is served.
    #[arg(short, long, env = "ALTO_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on; overrides the configuration's `listen`.
    #[arg(short, long, env = "ALTO_LISTEN")]
    listen: Option<SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM, the server's first); overrides the
    /// configuration's `[tls]`.
    #[arg(long, requires = "tls_key", env = "ALTO_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert", env = "ALTO_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Print the configuration of the embedded topology, every field documented, and exit.
    #[arg(long)]
    print_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_config {
        print!("{}", alto_server::config::DOCUMENTED_CONFIG);
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let source = match args.config {
        Some(path) => Source::File(path),
        None => Source::Embedded,
    };
    let tls = args.tls_cert.clone().zip(args.tls_key.clone());
    let app = match App::with_tls(source.clone(), tls) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("alto-server: {e}");
            std::process::exit(1);
        }
    };
    let configured = source
        .load()
        .map(|l| l.config.listen)
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7285)));
    let listen = args.listen.unwrap_or(configured);
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("alto-server: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr()?;
    let plain = match app.plain_listen() {
        Some(at) => match tokio::net::TcpListener::bind(at).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("alto-server: cannot listen on {at} (plain-listen): {e}");
                std::process::exit(1);
            }
        },
        None => None,
    };
    {
        let snap = app.snapshot();
        let net = snap.base().network_map();
        tracing::info!(
            pids = net.pids().len(),
            prefixes = net.prefix_count(),
            vtag = net.tag(),
            "maps loaded"
        );
    }
    // Signal handlers go in before the address is printed: whoever reads it may signal.
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let reloader = app.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match reloader.reload() {
                Ok(()) => tracing::info!(
                    vtag = reloader.snapshot().base().network_map().tag(),
                    "maps reloaded"
                ),
                Err(e) => tracing::error!("reload refused: {e}"),
            }
        }
    });
    // A closed stdout must not stop the server: write errors are ignored.
    let scheme = app.scheme();
    let _ = writeln!(
        std::io::stdout(),
        "ALTO directory: {scheme}://{addr}/directory\nmetrics:        {scheme}://{addr}/metrics"
    );
    if let Some(p) = plain.as_ref().and_then(|l| l.local_addr().ok()) {
        let _ = writeln!(std::io::stdout(), "plain HTTP:     http://{p}/directory");
    }
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    };
    run_with_plain(listener, plain, app, shutdown).await?;
    Ok(())
}
