//! `tracker-shim`: a BitTorrent tracker (HTTP, and UDP when asked) that ranks peer lists with
//! ALTO when it runs as a PID Head.
//!
//! - Plain mode, an ordinary public tracker with random peer lists:
//!   `tracker-shim --listen 127.0.0.1:6969`
//! - Head mode, the draft's virtual tracker for one PID:
//!   `tracker-shim --alto http://127.0.0.1:7285/directory --pid PID1 --listen 127.1.0.1:6969`
//! - The announce front, one tracker URL for every client, which redirects each announce to
//!   the announcer's PID Head:
//!   `tracker-shim --front --alto http://127.0.0.1:7285/directory --listen 127.0.0.1:6969`

use alto_locality::rank::Policy;
use alto_model::addr::Prefix;
use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tracker_shim::membership::JoinSettings;
use tracker_shim::{Mode, RunningTracker, Tracker, TrackerConfig};

#[derive(Parser)]
#[command(
    version,
    about = "BitTorrent tracker with ALTO-ranked peer lists (the PID Head's virtual tracker)"
)]
struct Args {
    /// HTTP address to listen on.
    #[arg(short, long, default_value = "127.0.0.1:6969", env = "TRACKER_LISTEN")]
    listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM): the announce URL and, as a head, the
    /// URLs given to the ALTO server are `https://`; members and the server verify it.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Also serve the UDP tracker protocol (BEP 15) on this address.
    #[arg(long)]
    udp: Option<SocketAddr>,
    /// The ALTO server's directory URL: with `--pid`, run as that PID's Head; with `--join`,
    /// join the server and serve as head when elected. Repeat it for each replica of a
    /// replicated server (or separate the URLs by commas): requests go to the next one when
    /// one does not answer.
    #[arg(long, value_delimiter = ',')]
    alto: Vec<String>,
    /// Verify an `https://` ALTO server (and other heads) against the CA certificates in
    /// this PEM file instead of the system's roots.
    #[arg(long, env = "ALTO_CA")]
    alto_ca: Option<std::path::PathBuf>,
    /// Present this client certificate chain (PEM) to an ALTO server that asks for one
    /// (TLS client authentication for joins and leases).
    #[arg(long, requires = "alto_client_key", env = "ALTO_CLIENT_CERT")]
    alto_client_cert: Option<std::path::PathBuf>,
    /// Answer the ALTO server's HTTP Digest challenges (RFC 7616) as this user…
    #[arg(long, requires = "alto_password_file", env = "ALTO_USER")]
    alto_user: Option<String>,
    /// …with the password in this file (its first line).
    #[arg(long, requires = "alto_user", env = "ALTO_PASSWORD_FILE")]
    alto_password_file: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "alto_client_cert", env = "ALTO_CLIENT_KEY")]
    alto_client_key: Option<std::path::PathBuf>,
    /// The PID this head serves.
    #[arg(long, requires = "alto", conflicts_with = "join")]
    pid: Option<String>,
    /// Join the ALTO server as a candidate head for the PID of the listen address.
    #[arg(long, requires = "alto")]
    join: bool,
    /// Run as the announce front: answer every announce and scrape with a redirect
    /// (`302 Found`) to the announcer's PID Head, found in the ALTO server's network map and
    /// head directory; serve those whose PID has no reachable head as a plain tracker (or
    /// send them to `--fallback`). HTTP only: BEP 15 has no redirect.
    #[arg(long, requires = "alto", conflicts_with_all = ["pid", "join", "udp"])]
    front: bool,
    /// With `--front`: the announce URL of a tracker to redirect to when the announcer's PID
    /// has no reachable head, instead of serving the request here.
    #[arg(long, requires = "front")]
    fallback: Option<String>,
    /// With `--front`: milliseconds between two looks at the ALTO server's network map and
    /// head directory (both revalidated by ETag) and checks of the heads.
    #[arg(long, default_value_t = 2000)]
    front_refresh_ms: u64,
    /// Seconds between a member's joins (which keep it a standby candidate).
    #[arg(long, default_value_t = 10)]
    rejoin_secs: u64,
    /// Seconds between ALTO map refreshes.
    #[arg(long, default_value_t = 30)]
    refresh_secs: u64,
    /// `interval` sent to clients, seconds.
    #[arg(long, default_value_t = 1800)]
    interval: u32,
    /// `min interval` sent to clients, seconds.
    #[arg(long, default_value_t = 60)]
    min_interval: u32,
    /// Peers are dropped after this many intervals without an announce.
    #[arg(long, default_value_t = 2)]
    peer_timeout_intervals: u32,
    /// Peers sent when the client gives no `numwant`.
    #[arg(long, default_value_t = 50)]
    default_numwant: usize,
    /// Most peers sent in one answer.
    #[arg(long, default_value_t = 200)]
    max_numwant: usize,
    /// Most torrents tracked (exact); an announce for a new one beyond it is refused.
    #[arg(long, default_value_t = 1_000_000)]
    max_swarms: usize,
    /// Most peers kept over all torrents (exact); an announce of a new peer beyond it is
    /// refused.
    #[arg(long, default_value_t = 1_000_000)]
    max_peers: usize,
    /// Most peers kept per torrent; a new peer beyond it gets peers but is not kept.
    #[arg(long, default_value_t = 10_000)]
    max_peers_per_swarm: usize,
    /// Most peers one address (an IPv6 /64 counts as one) keeps over all torrents; an
    /// announce of a new peer beyond it is refused. Raise it for load generators that
    /// announce many peers from one address.
    #[arg(long, default_value_t = 1_000)]
    max_peers_per_source: usize,
    /// Most info hashes in one scrape (over UDP at most 74, as BEP 15 says).
    #[arg(long, default_value_t = 64)]
    max_scrape: usize,
    /// Longest query string accepted, bytes (longer: HTTP 414).
    #[arg(long, default_value_t = 4096)]
    max_query_bytes: usize,
    /// Time an HTTP client has to send a whole request head after connecting or after its
    /// last answer (slow or idle clients are disconnected), milliseconds.
    #[arg(long, default_value_t = 10_000)]
    header_read_timeout_ms: u64,
    /// HTTP connections open at once; at this many the tracker stops accepting.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Share of each peer list drawn at random from outside the announcer's PID.
    #[arg(long, default_value_t = 0.1)]
    random_share: f64,
    /// Prefix whose requests may set the peer address with `ip` (repeatable).
    #[arg(long = "trust-ip-from", value_parser = parse_prefix)]
    trust_ip_from: Vec<Prefix>,
    /// Prefix of proxies whose right-most `X-Forwarded-For` entry is believed (repeatable).
    #[arg(long = "trusted-proxy", value_parser = parse_prefix)]
    trusted_proxy: Vec<Prefix>,
}

fn parse_prefix(s: &str) -> Result<Prefix, String> {
    Prefix::parse_any(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.random_share),
        "--random-share must be between 0 and 1"
    );
    if let Some(ca) = &args.alto_ca {
        alto_web::tls::set_default_ca(ca)?;
    }
    if let (Some(cert), Some(key)) = (&args.alto_client_cert, &args.alto_client_key) {
        alto_web::tls::set_default_identity(cert, key)?;
    }
    if let (Some(user), Some(file)) = (&args.alto_user, &args.alto_password_file) {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("--alto-password-file {}: {e}", file.display()))?;
        alto_client::set_default_credentials(user, text.lines().next().unwrap_or_default());
    }
    let config = TrackerConfig {
        interval: args.interval,
        min_interval: args.min_interval.min(args.interval),
        peer_timeout_intervals: args.peer_timeout_intervals,
        default_numwant: args.default_numwant,
        max_numwant: args.max_numwant,
        max_swarms: args.max_swarms,
        max_peers: args.max_peers,
        max_peers_per_swarm: args.max_peers_per_swarm,
        max_peers_per_source: args.max_peers_per_source,
        max_scrape: args.max_scrape,
        max_query_bytes: args.max_query_bytes,
        header_read_timeout_ms: args.header_read_timeout_ms,
        max_connections: args.max_connections,
        policy: Policy {
            random_share: args.random_share,
        },
        trusted_ip_sources: args.trust_ip_from,
        trusted_proxies: args.trusted_proxy,
        ..TrackerConfig::default()
    };
    let refresh = Duration::from_secs(args.refresh_secs.max(1));
    if let Some(f) = &args.fallback {
        anyhow::ensure!(
            tracker_shim::front::Target::parse(f).is_some(),
            "--fallback must be an http:// or https:// announce URL, not `{f}`"
        );
        anyhow::ensure!(
            !tracker_shim::front::Target::loops_back(f, args.listen),
            "--fallback `{f}` is this front itself: its redirects would loop"
        );
    }
    let alto = (!args.alto.is_empty()).then_some(args.alto);
    let mode = match (alto, args.pid, args.join) {
        (Some(alto), None, false) if args.front => Mode::Front {
            alto,
            refresh: Duration::from_millis(args.front_refresh_ms.max(100)),
            fallback: args.fallback,
        },
        (Some(alto), Some(pid), _) => Mode::Head { alto, pid, refresh },
        (Some(alto), None, true) => {
            anyhow::ensure!(
                !args.listen.ip().is_unspecified(),
                "--join needs a listen address with a specific IP: it is the endpoint that joins"
            );
            let rejoin = Duration::from_secs(args.rejoin_secs.max(1));
            Mode::Join(JoinSettings {
                alto,
                endpoint: args.listen.ip(),
                capabilities: tracker_shim::membership::own_capabilities(),
                rejoin,
                refresh,
            })
        }
        (Some(_), None, false) => {
            anyhow::bail!(
                "--alto needs --pid (serve one PID), --join (be elected) or --front (redirect)"
            )
        }
        (None, _, _) => Mode::Plain,
    };
    let described = match &mode {
        Mode::Plain => "plain mode".to_owned(),
        Mode::Head { pid, .. } => format!("head of {pid}"),
        Mode::Join(_) => "joining the ALTO server".to_owned(),
        Mode::Front { .. } => "announce front: redirecting to PID Heads".to_owned(),
    };
    let mut hup_ignored = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(std::sync::Arc::new(alto_web::tls::ServerTls::load(
            cert, key,
        )?)),
        _ => None,
    };
    let running =
        match RunningTracker::start_tls(Tracker::new(config), args.listen, args.udp, mode, tls)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tracker-shim: cannot listen on {}: {e}", args.listen);
                std::process::exit(1);
            }
        };
    let mut line = format!("announce: {} ({described})", running.announce_url());
    if let Some(u) = running.udp {
        line.push_str(&format!("\nudp:      udp://{u}/announce"));
    }
    let _ = writeln!(std::io::stdout(), "{line}");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup_ignored.recv() => tracing::info!("SIGHUP: nothing to reload"),
        }
    }
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}
