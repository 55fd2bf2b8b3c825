//! The virtual tracker a PID Head runs (draft-ikpark-alto-virtual-p2ptracker, section 2.2):
//! the BitTorrent tracker protocol, answered with peer lists ranked by the ISP's ALTO maps.
//!
//! # Layout
//! - [`protocol`]: the tracker protocol with no I/O: HTTP announce (BEP 3, BEP 23, BEP 7),
//!   scrape (BEP 48), UDP (BEP 15), bencode output and response decoding.
//! - [`store`]: swarms, peers grouped by PID, running counts, expiry and caps (no I/O).
//! - [`tracker`]: requests in, answers out, over the store and the head's ALTO maps (no I/O).
//! - [`head`]: following the ALTO server for the network map and the PID's cost row.
//! - [`membership`]: joining the ALTO server, headship, lease renewal, stepping down.
//! - [`server`]: the HTTP and UDP servers and [`server::RunningTracker`].
//! - [`tree`]: the heads' distribution tree for a swarm (no I/O).
//!
//! The ranking policy itself lives in `alto_model::rank`, shared with the plugin.

/// The tracker protocol, its own crate with no runtime.
pub use tracker_protocol as protocol;

pub mod head;
pub mod membership;
pub mod server;
pub mod store;
pub mod tracker;
pub mod tree;

pub use server::{Mode, RunningTracker};
pub use tracker::{Tracker, TrackerConfig};
