//! The virtual tracker a PID Head runs (draft-ikpark-alto-virtual-p2ptracker, section 2.2):
//! the BitTorrent tracker protocol, answered with peer lists ranked by the ISP's ALTO maps.
//!
//! # Layout
//! Modules import only downwards in this list: the cores (no I/O) know no shell, the ALTO
//! side knows no handler, and only the runner knows them all.
//! - [`protocol`]: the tracker protocol with no I/O, its own crate (`tracker-protocol`):
//!   HTTP announce (BEP 3, BEP 23, BEP 7), scrape (BEP 48), UDP (BEP 15), bencode output and
//!   response decoding.
//! - Cores, no I/O: [`store`] (swarms, peers grouped by PID, running counts, expiry,
//!   caps, the members' progress) and [`tracker`] (requests in, answers out, over the store
//!   and the head's ALTO maps).
//! - The ALTO side: [`head`] (following the ALTO server for the network map and the PID's
//!   cost row, and asking other heads for members) and [`membership`] (joining the ALTO
//!   server, headship, lease renewal, stepping down).
//! - [`front`]: the announce front, one tracker URL that redirects each announcer to its
//!   PID's head (a core with no I/O, and the shell that follows the ALTO server for it).
//! - Handlers: [`http`] (announce, scrape, metrics, and the head's ALTO resources and member
//!   list) and [`udp`] (the BEP 15 serving loop).
//! - [`runner`]: [`Mode`] and [`RunningTracker`], which bind the sockets and start the tasks.
//! - `rng`: the shells' per-thread random source.
//!
//! The locality policy itself (ranking, who reaches out to other PIDs, gateways, the heads'
//! tree) lives in `alto-locality`, shared with the plugin; the member list's wire format in
//! `alto_model::members`.

/// The tracker protocol, its own crate with no runtime.
pub use tracker_protocol as protocol;

pub mod front;
pub mod head;
pub mod http;
pub mod membership;
mod rng;
pub mod runner;
pub mod store;
pub mod tracker;
pub mod udp;

pub use runner::{Mode, RunningTracker};
pub use tracker::{Tracker, TrackerConfig};
