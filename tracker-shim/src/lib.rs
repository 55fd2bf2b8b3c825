//! The virtual tracker a PID Head runs (draft-ikpark-alto-virtual-p2ptracker, section 2.2):
//! the BitTorrent announce protocol (BEP 3, BEP 23, BEP 7, BEP 48, BEP 15) answered with
//! peer lists ranked by the ISP's ALTO maps.
//!
//! This crate is a placeholder in the workspace; the tracker shim issue fills it.
