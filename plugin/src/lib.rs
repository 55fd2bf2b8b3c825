//! The librqbit integration: ALTO-guided peer discovery through the local PID Head.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use alto_plugin::{AltoSession, Config};
//! let config = Config::new("127.1.0.5".parse()?, "downloads".into())
//!     .alto("http://127.0.0.1:7285/directory");
//! let session = AltoSession::start(config).await?;
//! let torrent = session.add(&std::fs::read("file.torrent")?).await?;
//! torrent.wait_completed().await?;
//! session.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`session`]: [`AltoSession`] and its [`Config`], which tie the others together with
//!   the join to the ALTO server (through the tracker shim, which serves as head when this
//!   client is elected).
//! - [`proxy`]: the local announce proxy librqbit announces to: head, original trackers,
//!   DHT, ranking, `completed`/`stopped` upstream.
//! - [`upstream`]: HTTP and UDP tracker announces from the client's address.
//! - [`mapfollow`]: following the head's network map, published on a watch channel.
//! - [`accounting`]: the [`Report`] of a torrent, bytes attributed to PIDs.
//! - [`allowlist`]: strict mode's allowlist of the own and the cheapest PIDs.
//! - [`metainfo`]: taking trackers out of `.torrent` files and magnet links (from
//!   `tracker_shim::protocol`, re-exported).
//! - [`rqbit`]: the only module that imports librqbit (session, torrents, per-peer bytes,
//!   torrent creation, the opt-in DHT node).
//! - `bin/rqbit-alto.rs`: the command line client.

pub mod accounting;
pub mod allowlist;
pub mod mapfollow;
pub use tracker_shim::protocol::metainfo;
pub mod proxy;
pub mod rqbit;
pub mod session;
pub mod upstream;

pub use accounting::{PeerTraffic, Report};
pub use session::{AltoSession, Config, SessionError, Torrent};
