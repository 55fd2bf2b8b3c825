//! The `alto-server` configuration: a TOML file naming the network map and cost map files
//! (RFC 7285 §11.2.1.6 and §11.2.3.6 formats), the listen address and the HTTP limits; or
//! the embedded loopback topology when no file is given.

use alto_model::addr::{Prefix, PrefixError};
use alto_model::{CostMap, InformationBase, NetworkMap, QueryLimits};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The configuration file, every field documented; unknown fields are refused.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Address to listen on (the `--listen` flag overrides it).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest POST body accepted; larger ones get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Freshness of GET responses, sent as `Cache-Control: max-age` (RFC 7285 §8.3.3).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// Time a client has to send a whole request head, also the idle keep-alive timeout,
    /// in milliseconds (read at start only).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_ms: u64,
    /// Connections open at once; at this many the server stops accepting (read at start
    /// only).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections one source may hold at once (an IPv4 address, an IPv6 /64); past this
    /// many its new connections are closed at once (read at start only).
    #[serde(default = "default_max_connections_per_source")]
    pub max_connections_per_source: usize,
    /// Time an answer may wait on a client that does not read it before the connection is
    /// closed, in milliseconds (read at start only).
    #[serde(default = "default_write_timeout")]
    pub write_timeout_ms: u64,
    /// Source-destination pairs one query may ask for (endpoint cost, filtered cost map);
    /// more are refused with `E_INVALID_FIELD_VALUE`.
    #[serde(default = "default_max_pairs")]
    pub max_pairs: usize,
    /// Bytes of one query's answer; a larger answer is refused with `E_INVALID_FIELD_VALUE`.
    #[serde(default = "default_max_answer_bytes")]
    pub max_answer_bytes: usize,
    /// The network map.
    pub network_map: NetworkMapSource,
    /// The cost maps, one per metric; `routingcost` is required.
    #[serde(rename = "cost-map")]
    pub cost_maps: Vec<CostMapSource>,
    /// This server's name in `ALTO-Via` when it forwards (default: `alto-` and 8 random hex
    /// digits, new at every start).
    #[serde(default)]
    pub server_id: Option<String>,
    /// Forwarding stops after this many hops (`ALTO-Hops`).
    #[serde(default = "default_max_hops")]
    pub max_hops: u32,
    /// PID Head election, leases and forwarding to heads (read at start only).
    #[serde(default)]
    pub pid_heads: HeadSettings,
    /// Other ALTO servers and the prefixes they are authoritative for.
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerServer>,
    /// HTTPS on `listen` (RFC 7285 §8.3.5; read at start, the files again on every reload).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// HTTP Digest authentication (RFC 7616) of chosen resources (read at start).
    #[serde(default)]
    pub auth: Option<AuthSettings>,
}

/// HTTP Digest authentication (RFC 7616, SHA-256), RFC 7285 §8.3.5's mandatory mechanism.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthSettings {
    /// The users file: `user:realm:HA1` lines, `HA1` the hex SHA-256 of
    /// `user:realm:password`; relative to the config file's folder.
    pub digest_users: PathBuf,
    /// The realm.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// The resources (by resource id) that need a user of the file; others get 401 with
    /// the challenge.
    pub digest_for: Vec<String>,
}

fn default_realm() -> String {
    "alto".into()
}

/// The server's certificate, and a plain-HTTP listener beside HTTPS if the operator wants
/// one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsSettings {
    /// The certificate chain (PEM, the server's certificate first), relative to the config
    /// file's folder.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Also serve plain HTTP on this address (none by default).
    #[serde(default)]
    pub plain_listen: Option<SocketAddr>,
    /// Ask clients for a certificate and verify it against these CA certificates (PEM),
    /// relative to the config file's folder (TLS client authentication, RFC 7285 §8.3.5).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// The resources (by resource id: `pid-head-join`, `pid-head-lease`, …) that only a
    /// client with such a certificate may use; others get 403. Needs `client-ca`.
    #[serde(default)]
    pub client_cert_for: Vec<String>,
}

/// Settings of the PID Head extension.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HeadSettings {
    /// `first` (the draft's: the first joiner is head) or `scored`.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// Weights of the `scored` policy.
    #[serde(default)]
    pub weights: WeightSettings,
    /// Seconds a lease lasts unless renewed.
    #[serde(default = "default_ttl")]
    pub lease_ttl_secs: u64,
    /// Candidates seen within this many seconds are standbys.
    #[serde(default = "default_standby")]
    pub standby_window_secs: u64,
    /// Candidates remembered per PID. Each one that stays a standby re-joins once a window
    /// (`rejoin-secs`), one store write each time: with etcd, the write load is this many
    /// times the PIDs, per window.
    #[serde(default = "default_max_candidates")]
    pub max_candidates: usize,
    /// Joins a source may make at once…
    #[serde(default = "default_join_burst")]
    pub join_burst: f64,
    /// …and per second after that.
    #[serde(default = "default_join_rate")]
    pub join_per_sec: f64,
    /// Joins one source prefix may make at once (all its addresses together)…
    #[serde(default = "default_prefix_burst")]
    pub join_prefix_burst: f64,
    /// …and per second after that.
    #[serde(default = "default_prefix_rate")]
    pub join_prefix_per_sec: f64,
    /// The prefix length of an IPv4 source prefix.
    #[serde(default = "default_prefix_v4")]
    pub join_prefix_v4: u8,
    /// The prefix length of an IPv6 source prefix.
    #[serde(default = "default_prefix_v6")]
    pub join_prefix_v6: u8,
    /// PIDs that never have a head (their joiners are answered as members): by default the
    /// catch-all `default` PID, whose members share nothing.
    #[serde(default = "default_no_heads")]
    pub no_heads: Vec<String>,
    /// A head whose answers fail the server's checks this many times in a row loses its
    /// lease, and the PID elects another.
    #[serde(default = "default_max_head_failures")]
    pub max_head_failures: u32,
    /// A head that lost its lease so is not elected again for this many seconds.
    #[serde(default = "default_revoked_secs")]
    pub revoked_secs: u64,
    /// Whether queries for PIDs with a head are forwarded to it.
    #[serde(default = "default_true")]
    pub forward: bool,
    /// A head slower than this is skipped and the server answers itself.
    #[serde(default = "default_forward_timeout")]
    pub forward_timeout_ms: u64,
    /// A head that failed is not asked again for this many seconds.
    #[serde(default = "default_suspect")]
    pub suspect_secs: u64,
    /// Proxies whose joins may name another endpoint, and whose `X-Forwarded-For`
    /// (right-most entry) is the client's address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Where the election's state is kept: `memory` (this process; one server) or `etcd`
    /// (shared by replicas; `docs/pid-head.md`, "Replicas").
    #[serde(default = "default_store")]
    pub store: String,
    /// The etcd cluster's client URLs (`http://host:port` or `https://…`), for `store = "etcd"`.
    #[serde(default)]
    pub etcd_endpoints: Vec<String>,
    /// The prefix of the store's keys in etcd.
    #[serde(default = "default_etcd_prefix")]
    pub etcd_prefix: String,
    /// Time allowed to each etcd request, per endpoint tried.
    #[serde(default = "default_etcd_timeout")]
    pub etcd_timeout_ms: u64,
    /// Verify `https://` etcd endpoints against the CA certificates in this PEM file
    /// (relative to the configuration's folder) instead of the system's roots.
    #[serde(default)]
    pub etcd_ca: Option<PathBuf>,
    /// Present this client certificate chain (PEM) to etcd (its `--client-cert-auth`).
    #[serde(default)]
    pub etcd_cert: Option<PathBuf>,
    /// The key of `etcd-cert` (PEM).
    #[serde(default)]
    pub etcd_key: Option<PathBuf>,
}

fn default_store() -> String {
    "memory".into()
}

fn default_etcd_prefix() -> String {
    "alto/pidheads/".into()
}

fn default_etcd_timeout() -> u64 {
    2000
}

impl Default for HeadSettings {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

/// Weights of the `scored` policy (see `election::Weights`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WeightSettings {
    /// CPU clock.
    #[serde(default = "one")]
    pub cpu: f64,
    /// Memory.
    #[serde(default = "one")]
    pub memory: f64,
    /// Continuous lifetime measured by the server.
    #[serde(default = "two")]
    pub lifetime: f64,
    /// Closeness measured by the server.
    #[serde(default = "one")]
    pub distance: f64,
    /// Margin a newcomer needs over a working head.
    #[serde(default = "quarter")]
    pub hysteresis: f64,
}

impl Default for WeightSettings {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

/// Another ALTO server, authoritative for some prefixes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PeerServer {
    /// A name for logs.
    pub name: String,
    /// Its directory URL (`http://`).
    pub directory: String,
    /// The prefixes it answers for, e.g. `198.51.100.0/24`.
    pub prefixes: Vec<String>,
}

fn default_max_hops() -> u32 {
    4
}
fn default_policy() -> String {
    "first".into()
}
fn default_ttl() -> u64 {
    30
}
fn default_standby() -> u64 {
    90
}
fn default_max_candidates() -> usize {
    64
}
fn default_join_burst() -> f64 {
    10.0
}
fn default_join_rate() -> f64 {
    1.0
}
fn default_prefix_burst() -> f64 {
    64.0
}
fn default_prefix_rate() -> f64 {
    16.0
}
fn default_prefix_v4() -> u8 {
    24
}
fn default_prefix_v6() -> u8 {
    64
}
fn default_no_heads() -> Vec<String> {
    vec!["default".into()]
}
fn default_max_head_failures() -> u32 {
    3
}
fn default_revoked_secs() -> u64 {
    600
}
fn default_true() -> bool {
    true
}
fn default_forward_timeout() -> u64 {
    1000
}
fn default_suspect() -> u64 {
    30
}
fn one() -> f64 {
    1.0
}
fn two() -> f64 {
    2.0
}
fn quarter() -> f64 {
    0.25
}

/// Where the network map comes from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetworkMapSource {
    /// Resource ID of the map in the directory (RFC 7285 §10.2).
    pub resource_id: String,
    /// The map file, relative to the config file's folder.
    pub file: PathBuf,
}

/// Where a cost map comes from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CostMapSource {
    /// The cost metric, e.g. `routingcost` or `hopcount`.
    pub metric: String,
    /// The numerical cost map file, relative to the config file's folder.
    pub file: PathBuf,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7285))
}
fn default_max_body() -> usize {
    64 * 1024
}
fn default_max_age() -> u64 {
    60
}
fn default_header_read_timeout() -> u64 {
    alto_web::Limits::default().header_read_timeout.as_millis() as u64
}
fn default_max_connections() -> usize {
    alto_web::Limits::default().max_connections
}
fn default_max_connections_per_source() -> usize {
    alto_web::Limits::default().max_connections_per_source
}
fn default_write_timeout() -> u64 {
    alto_web::Limits::default().write_timeout.as_millis() as u64
}
fn default_max_pairs() -> usize {
    QueryLimits::DEFAULT.max_pairs
}
fn default_max_answer_bytes() -> usize {
    QueryLimits::DEFAULT.max_answer_bytes
}

/// Where the configuration is read from, at start and at every reload.
#[derive(Clone, Debug)]
pub enum Source {
    /// A TOML file; map paths are relative to its folder.
    File(PathBuf),
    /// The embedded loopback topology of `testdata` (its files are compiled in).
    Embedded,
}

/// A configuration or map that cannot be served, naming the file and, for maps, the line.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct LoadError {
    /// The file at fault.
    pub file: String,
    /// What is wrong, with the line where known.
    pub message: String,
}

/// The limits the HTTP layer applies, taken from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest POST body.
    pub max_body_bytes: usize,
    /// What one query may cost.
    pub query: QueryLimits,
    /// `Cache-Control: max-age` of GET responses.
    pub max_age_secs: u64,
    /// What connections may hold (read at start only).
    pub connections: alto_web::Limits,
}

/// Parses a prefix such as `10.0.0.0/8` or `2001:db8::/32` (a bare address is a host).
pub fn parse_prefix(s: &str) -> Result<Prefix, PrefixError> {
    Prefix::parse_any(s)
}

/// A setting serde accepts but the server cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `pid-heads.policy` names no policy.
    #[error("pid-heads.policy must be `first` or `scored`, not `{0}`")]
    Policy(String),
    /// `pid-heads.store` or its etcd settings are wrong.
    #[error("pid-heads: {0}")]
    Store(String),
    /// `pid-heads.lease-ttl-secs` is 0.
    #[error("pid-heads.lease-ttl-secs must be at least 1")]
    LeaseTtl,
    /// `pid-heads.max-candidates` is 0.
    #[error("pid-heads.max-candidates must be at least 1")]
    MaxCandidates,
    /// A trusted proxy is no prefix.
    #[error("pid-heads.trusted-proxies: {0}")]
    TrustedProxy(#[source] PrefixError),
    /// Resources require a client certificate but no `client-ca` verifies them.
    #[error("tls.client-cert-for needs tls.client-ca")]
    ClientCertWithoutCa,
    /// A peer's directory is no `http://` or `https://` URL.
    #[error("peer `{0}`: directory must be an http:// or https:// URL")]
    PeerDirectory(String),
    /// A peer's prefix is no prefix.
    #[error("peer `{name}`: {source}")]
    PeerPrefix {
        /// The peer.
        name: String,
        /// Why.
        #[source]
        source: PrefixError,
    },
}

impl Config {
    /// Checks what serde cannot: policy names, prefixes, URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !["first", "scored"].contains(&self.pid_heads.policy.as_str()) {
            return Err(ConfigError::Policy(self.pid_heads.policy.clone()));
        }
        if let Some(t) = &self.tls {
            if !t.client_cert_for.is_empty() && t.client_ca.is_none() {
                return Err(ConfigError::ClientCertWithoutCa);
            }
        }
        match self.pid_heads.store.as_str() {
            "memory" => {}
            "etcd" if self.pid_heads.etcd_endpoints.is_empty() => {
                return Err(ConfigError::Store(
                    "store = \"etcd\" needs etcd-endpoints".into(),
                ))
            }
            "etcd" if self.pid_heads.etcd_cert.is_some() != self.pid_heads.etcd_key.is_some() => {
                return Err(ConfigError::Store(
                    "etcd-cert and etcd-key go together".into(),
                ))
            }
            "etcd" => {
                for e in &self.pid_heads.etcd_endpoints {
                    let ok = url::Url::parse(e)
                        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
                    if !ok {
                        return Err(ConfigError::Store(format!(
                            "etcd-endpoints: `{e}` is no http:// or https:// URL"
                        )));
                    }
                }
            }
            other => {
                return Err(ConfigError::Store(format!(
                    "store must be `memory` or `etcd`, not `{other}`"
                )))
            }
        }
        if self.pid_heads.lease_ttl_secs == 0 {
            return Err(ConfigError::LeaseTtl);
        }
        if self.pid_heads.max_candidates == 0 {
            return Err(ConfigError::MaxCandidates);
        }
        for p in &self.pid_heads.trusted_proxies {
            parse_prefix(p).map_err(ConfigError::TrustedProxy)?;
        }
        for peer in &self.peers {
            if !(peer.directory.starts_with("http://") || peer.directory.starts_with("https://")) {
                return Err(ConfigError::PeerDirectory(peer.name.clone()));
            }
            for p in &peer.prefixes {
                parse_prefix(p).map_err(|source| ConfigError::PeerPrefix {
                    name: peer.name.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }
}

/// A loaded configuration: the settings and the information base.
#[derive(Debug)]
pub struct Loaded {
    /// The settings.
    pub config: Config,
    /// The maps.
    pub base: InformationBase,
}

impl Loaded {
    /// The HTTP limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: self.config.max_body_bytes,
            query: QueryLimits {
                max_pairs: self.config.max_pairs,
                max_answer_bytes: self.config.max_answer_bytes,
            },
            max_age_secs: self.config.max_age_secs,
            connections: alto_web::Limits {
                header_read_timeout: Duration::from_millis(
                    self.config.header_read_timeout_ms.max(1),
                ),
                write_timeout: Duration::from_millis(self.config.write_timeout_ms.max(1)),
                max_connections: self.config.max_connections,
                max_connections_per_source: self.config.max_connections_per_source,
                grace: Duration::from_secs(10),
            },
        }
    }
}

impl Source {
    /// A path named in the configuration, relative to its folder (the embedded topology's:
    /// the current one).
    pub fn resolve(&self, name: &Path) -> PathBuf {
        match self {
            Source::File(path) => path.parent().unwrap_or(Path::new(".")).join(name),
            Source::Embedded => name.to_owned(),
        }
    }

    /// Reads the configuration and every map it names. Nothing is half-loaded: any defect
    /// fails the whole load.
    pub fn load(&self) -> Result<Loaded, LoadError> {
        match self {
            Source::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| LoadError {
                    file: path.display().to_string(),
                    message: e.to_string(),
                })?;
                let dir = path.parent().unwrap_or(Path::new("."));
                load_from(&path.display().to_string(), &text, |name| {
                    let p = dir.join(name);
                    std::fs::read_to_string(&p)
                        .map(|t| (p.display().to_string(), t))
                        .map_err(|e| LoadError {
                            file: p.display().to_string(),
                            message: e.to_string(),
                        })
                })
            }
            Source::Embedded => load_from(
                "embedded loopback config",
                testdata::loopback::CONFIG,
                |name| {
                    let text = match name.to_str() {
                        Some("network-map.json") => testdata::loopback::NETWORK_MAP,
                        Some("routingcost.json") => testdata::loopback::ROUTINGCOST,
                        Some("hopcount.json") => testdata::loopback::HOPCOUNT,
                        _ => {
                            return Err(LoadError {
                                file: name.display().to_string(),
                                message: "not an embedded file".into(),
                            })
                        }
                    };
                    Ok((format!("embedded {}", name.display()), text.to_owned()))
                },
            ),
        }
    }
}

fn load_from(
    config_name: &str,
    text: &str,
    read: impl Fn(&Path) -> Result<(String, String), LoadError>,
) -> Result<Loaded, LoadError> {
    let config: Config = toml::from_str(text).map_err(|e| LoadError {
        file: config_name.to_owned(),
        message: e.to_string(),
    })?;
    let (name, net_text) = read(&config.network_map.file)?;
    let net = NetworkMap::from_json(&config.network_map.resource_id, &net_text).map_err(|e| {
        LoadError {
            file: name,
            message: e.to_string(),
        }
    })?;
    let mut costs = Vec::with_capacity(config.cost_maps.len());
    for src in &config.cost_maps {
        let (name, text) = read(&src.file)?;
        costs.push(
            CostMap::from_json(&src.metric, &text, &net).map_err(|e| LoadError {
                file: name,
                message: e.to_string(),
            })?,
        );
    }
    let base = InformationBase::new(net, costs).map_err(|message| LoadError {
        file: config_name.to_owned(),
        message: message.to_string(),
    })?;
    Ok(Loaded { config, base })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_topology_loads() {
        let l = Source::Embedded.load().unwrap();
        assert_eq!(l.base.network_map().pids().len(), 5);
        assert_eq!(l.base.cost_maps().len(), 2);
        assert_eq!(l.config.listen, default_listen());
    }

    #[test]
    fn unknown_config_fields_are_refused() {
        let text = format!(
            "{}\nlisten-port = 1\n",
            testdata::loopback::CONFIG.replace("[network-map]", "bogus = 1\n[network-map]")
        );
        let e = load_from("c.toml", &text, |_| unreachable!()).unwrap_err();
        assert!(e.to_string().starts_with("c.toml: "), "{e}");
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn the_loopback_files_load_from_disk() {
        let l = Source::File(testdata::loopback::dir().join("alto.toml"))
            .load()
            .unwrap();
        assert_eq!(
            l.base.network_map().resource_id(),
            testdata::loopback::NETWORK_MAP_ID
        );
    }
}

/// The configuration of the embedded topology with every field explained, printed by
/// `alto-server --print-config` as a starting point.
pub const DOCUMENTED_CONFIG: &str = r#"# alto-server configuration (TOML). Unknown fields are refused.
# File paths are relative to the folder of this file.

# Address to listen on; `--listen` overrides it.
listen = "127.0.0.1:7285"

# Largest POST body accepted, in bytes; larger ones get 413 with an ALTO error.
max-body-bytes = 65536

# Freshness of GET responses (directory, network map, cost maps), sent as
# Cache-Control: max-age (RFC 7285 section 8.3.3).
max-age-secs = 60

# A client that has not sent a whole request head this long after connecting or after its
# last answer (slow or idle) is disconnected; at most max-connections are open at once, and
# beyond that the server stops accepting until one closes. Read at start only.
header-read-timeout-ms = 10000
max-connections = 1024
# Connections one source (an IPv4 address, an IPv6 /64) may hold; more are closed at once.
max-connections-per-source = 64
# An answer the client does not read for this long (no progress) ends its connection.
write-timeout-ms = 10000

# What one query may cost: source-destination pairs (endpoint cost service, filtered cost
# map) and bytes of the answer. More is refused with E_INVALID_FIELD_VALUE before any cost is
# computed; a full cost map is a GET resource. Read at every load.
max-pairs = 100000
max-answer-bytes = 4194304

# This server's name in ALTO-Via when it forwards (default: a random "alto-…" name), and the
# most hops a forwarded query may make (docs/pid-head.md). Read at start only.
# server-id = "alto-1"
max-hops = 4

# The network map, in the format of an RFC 7285 network map response (section 11.2.1.6);
# "meta" may be left out. It must be complete and non-overlapping (section 11.2.2).
[network-map]
resource-id = "loopback-network-map"
file = "network-map.json"

# Cost maps, one per metric, in the format of a cost map response (section 11.2.3.6) with
# numerical costs; the ordinal mode is derived. A "routingcost" map is required.
[[cost-map]]
metric = "routingcost"
file = "routingcost.json"

[[cost-map]]
metric = "hopcount"
file = "hopcount.json"

# The PID Head extension (docs/pid-head.md). Read at start only.
[pid-heads]
# `first`: the first client to join a PID without a head becomes its head (the draft's);
# `scored`: capabilities weighted, lifetime and distance measured by the server.
policy = "first"
lease-ttl-secs = 30
standby-window-secs = 90
# Joins per source address: a burst, then a rate; and per source prefix (an IPv4 /24, an
# IPv6 /64), all its addresses together.
join-burst = 10
join-per-sec = 1.0
join-prefix-burst = 64
join-prefix-per-sec = 16.0
join-prefix-v4 = 24
join-prefix-v6 = 64
# PIDs that never have a head; their joiners are answered as members.
no-heads = ["default"]
# Forward endpoint cost and filtered cost map queries to the PID's head. Its answers are
# checked (media type, size, JSON shape, the endpoints asked for, a sample of costs against
# the server's own maps); one that fails is answered locally and the head is suspect for
# suspect-secs; after max-head-failures failures in a row it loses its lease and is not
# elected again for revoked-secs.
forward = true
forward-timeout-ms = 1000
suspect-secs = 30
max-head-failures = 3
revoked-secs = 600
# Proxies allowed to join on behalf of others.
trusted-proxies = []
# Where the election lives: `memory` (this process) or `etcd`, shared by replicas of this
# server (docs/pid-head.md, "Replicas"). etcd must be private to the replicas: lease tokens
# are stored as they are. `https://` endpoints are verified against etcd-ca (or the system's
# roots), and etcd-cert and etcd-key are presented to an etcd that asks for a client
# certificate.
store = "memory"
# etcd-endpoints = ["http://127.0.0.1:2379", "http://127.0.0.1:22379", "http://127.0.0.1:32379"]
etcd-prefix = "alto/pidheads/"
etcd-timeout-ms = 2000
# etcd-ca = "etcd-ca.pem"
# etcd-cert = "etcd-client.pem"
# etcd-key = "etcd-client-key.pem"

[pid-heads.weights]
cpu = 1.0
memory = 1.0
lifetime = 2.0
distance = 1.0
hysteresis = 0.25

# HTTPS on `listen` (RFC 7285 section 8.3.5): the certificate chain and key as PEM files,
# read again on SIGHUP with the maps (on a defect the old certificate stays). A plain-HTTP
# listener beside it only if plain-listen is given. `--tls-cert` and `--tls-key` override.
# [tls]
# cert = "server.pem"
# key = "server-key.pem"
# plain-listen = "127.0.0.1:7286"
# TLS client authentication: clients' certificates verified against this CA, and the
# resources that require one (a client without gets 403; plain-listen never serves them).
# client-ca = "clients-ca.pem"
# client-cert-for = ["pid-head-join", "pid-head-lease"]

# HTTP Digest authentication (RFC 7616, SHA-256) of chosen resources: users file lines are
# user:realm:HA1 with HA1 = hex SHA-256 of "user:realm:password". Without credentials, or
# with wrong ones, a request gets 401 with the challenge. Read at start.
# [auth]
# digest-users = "users.txt"
# realm = "alto"
# digest-for = ["pid-head-join", "pid-head-lease"]

# Other ALTO servers: queries about endpoints in their prefixes are cascaded to them.
# [[peer]]
# name = "isp-b"
# directory = "http://192.0.2.10:7285/directory"
# prefixes = ["198.51.100.0/24"]
"#;

#[cfg(test)]
mod documented {
    #[test]
    fn the_documented_config_parses() {
        let c: super::Config = toml::from_str(super::DOCUMENTED_CONFIG).unwrap();
        assert_eq!(c.cost_maps.len(), 2);
    }
}
