//! The ALTO data model of RFC 7285, with no I/O: what an ALTO server answers and what an
//! ALTO client reads, as plain functions over bytes and values.
//!
//! # Layout
//! - [`messages`]: the wire types of §9 to §11, named after the spec, and the request
//!   decoders that map each defect to its §8.5.2 error code.
//! - [`error`]: the error responses of §8.5.
//! - [`media`]: the `application/alto-*` media types (§14.1) and `Accept` matching.
//! - [`ident`], [`addr`]: identifiers (§10.1–§10.8) and endpoint addresses and prefixes (§10.4).
//! - [`lpm`]: the longest-prefix-match table behind every PID lookup (§11.2.2).
//! - [`network_map`], [`cost_map`]: maps compiled for serving, with content-derived vtags
//!   (§10.3) and the checks a map file must pass.
//! - [`cost`]: cost types, constraints and ordinal ranking (§6.1, §11.3.2.3).
//! - [`ird`]: the Information Resource Directory (§9).
//! - [`base`]: one network map and its cost maps, the resources they make, and the
//!   filtered-map, endpoint-property and endpoint-cost services.
//! - [`check`]: the checks a PID Head's answer passes before the server relays it.
//! - [`limits`]: the bounds on one query's pairs and answer bytes.
//! - [`pidhead`]: the PID Head extension's wire types (join, lease, head answers, the head
//!   directory as a property map; `docs/pid-head.md`).
//! - [`members`]: the member list a PID Head gives other heads (`GET /members`).
//!
//! Peer selection (ranking, locality) lives in the `alto-locality` crate, built on this one.

pub mod addr;
pub mod base;
pub mod check;
pub mod cost;
pub mod cost_map;
pub mod error;
pub mod ident;
pub mod ird;
pub mod limits;
pub mod lpm;
pub mod media;
pub mod members;
pub mod messages;
pub mod network_map;
pub mod pidhead;

pub use network_map::hex;

pub use base::{InformationBase, Resource, ResourceKind};
pub use cost::{Cost, CostMode, CostType};
pub use cost_map::CostMap;
pub use error::{AltoError, ErrorCode};
pub use limits::{AnswerError, QueryLimits};
pub use messages::VersionTag;
pub use network_map::{MapError, NetworkMap, PidIdx};

/// A hex SHA-256 of bytes (the first 32 hex digits), for ETags of resources that have no
/// vtag, such as the directory.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    let mut h = hex(&sha2::Sha256::digest(bytes));
    h.truncate(32);
    h
}
