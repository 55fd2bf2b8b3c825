//! The locality policy in one place, with no I/O: which peers a BitTorrent client is handed,
//! ranked by ALTO costs (RFC 7285 §12.1, §12.3), and how much of it may come from other
//! PIDs. The PID Head's virtual tracker (the draft "Virtual P2P Tracker for
//! Full-Distributed P2P Applications", section 2), the plugin's announce proxy and so every
//! third-party member go through it.
//!
//! - [`rank`]: the ranked selection (same PID, then by cost, a random share; RFC 5632).
//! - [`progress`]: a client's progress from its announces (BEP 3 `uploaded`, `downloaded`,
//!   `left`), and its rates.
//! - [`policy`]: speed-aware, soft locality: who reaches out to other PIDs, who is a
//!   gateway, how many gateways a PID has (`docs/locality.md`).
//! - [`outreach`]: whether reaching out pays: a client that its own links call underserved
//!   reaches out on trial, and leaves the peers it brought when it did not pay.
//! - [`tree`]: the PID Heads' distribution tree: which peer of another PID a head fetches
//!   from.
//!
//! Clock and randomness come in: times as milliseconds, random numbers through
//! [`rank::Random`].

pub mod outreach;
pub mod policy;
pub mod progress;
pub mod rank;
pub mod tree;

pub use outreach::{Outreach, Step};
pub use policy::{Links, LocalityConfig, Service};
pub use progress::{Progress, Sample};
