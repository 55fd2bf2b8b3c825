//! The BitTorrent tracker protocol with no I/O: HTTP announce (BEP 3) with compact (BEP 23)
//! and IPv6 (BEP 7) peer lists, scrape (BEP 48), and the UDP tracker protocol (BEP 15).
//! Parsers take bytes and return a request or the reason to refuse it; encoders write into
//! a buffer. It depends on `bendy` and `thiserror` only: no runtime, no I/O.
//!
//! # Layout
//! - [`announce`]: the HTTP announce request (BEP 3) and its response, compact (BEP 23) or
//!   dictionaries, with `peers6` (BEP 7).
//! - [`scrape`]: the scrape request and the `files` dictionary (BEP 48).
//! - [`query`]: query strings and the strict percent-decoder (binary info hashes).
//! - [`bencode`]: the hand-written bencode writer, checked against `bendy` in the tests.
//! - [`decode`]: reading tracker answers with `bendy` (clients, proxies, load generators).
//! - [`metainfo`]: taking the trackers out of `.torrent` files (BEP 3, BEP 12) and magnet
//!   links (BEP 9) byte for byte, so the info hash never changes.
//! - [`udp`]: the UDP tracker protocol (BEP 15), connection ids, and [`udp::client`], the
//!   client side.
//! - This file: [`InfoHash`], [`PeerId`] and [`Event`], shared by all of them.

pub mod announce;
pub mod bencode;
pub mod decode;
pub mod metainfo;
pub mod query;
pub mod scrape;
pub mod udp;

use std::fmt;

/// A torrent's info hash (BEP 3): 20 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

/// A peer's id (BEP 3): 20 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

fn hex(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(&self.0, f)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(&self.0, f)
    }
}

impl InfoHash {
    /// Parses 40 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(InfoHash(out))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Peer ids usually start with a printable client tag (BEP 20), e.g. `-qB4520-`.
        let tag: String = self
            .0
            .iter()
            .take(8)
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        write!(f, "{tag}…")
    }
}

/// Announce events (BEP 3; `paused` from BEP 21).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A regular announce.
    None,
    /// The download started.
    Started,
    /// The download completed.
    Completed,
    /// The client leaves the swarm.
    Stopped,
    /// A partial seed that stopped downloading (BEP 21).
    Paused,
}
