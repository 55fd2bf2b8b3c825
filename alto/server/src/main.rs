//! `alto-server`: serves an ALTO information base (RFC 7285) over HTTP.
//!
//! `alto-server [--config FILE] [--listen ADDR]`. Without `--config` it serves the embedded
//! loopback topology. SIGHUP reloads the maps; SIGINT or SIGTERM stops it gracefully.

use alto_server::{run, App, Source};
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
    let app = match App::new(source.clone()) {
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
                Err(e) => tracing::error!("reload refused, the old maps stay served: {e}"),
            }
        }
    });
    // A closed stdout must not stop the server: write errors are ignored.
    let _ = writeln!(
        std::io::stdout(),
        "ALTO directory: http://{addr}/directory\nmetrics:        http://{addr}/metrics"
    );
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    };
    run(listener, app, shutdown).await?;
    Ok(())
}
