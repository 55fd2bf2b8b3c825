//! The virtual tracker a PID Head runs (draft-ikpark-alto-virtual-p2ptracker, section 2.2):
//! the BitTorrent tracker protocol, answered with peer lists ranked by the ISP's ALTO maps.
//!
//! # Layout
//! - [`protocol`]: the tracker protocol with no I/O: HTTP announce (BEP 3, BEP 23, BEP 7),
//!   scrape (BEP 48), UDP (BEP 15), bencode output.
pub mod protocol;
pub mod store;
pub mod tracker;
