//! Test payloads and single-file `.torrent` files for them (BEP 3 metainfo), so that tests
//! can point a torrent at a tracker whose port is only known at run time.

use sha1::{Digest, Sha1};
use tracker_protocol::bencode::Writer;

/// A payload for testers (`alto-gen-torrents`).
#[derive(Clone, Copy, Debug)]
pub struct TesterTorrent {
    /// The file's name (and the torrent's).
    pub name: &'static str,
    /// Its length.
    pub bytes: usize,
    /// The seed of its bytes ([`payload`]).
    pub seed: u64,
    /// The piece length.
    pub piece_bytes: usize,
}

/// The testers' torrents: small enough to generate in a moment, large enough that locality
/// shows (a piece is 256 KiB, as most clients would choose).
pub const TESTERS: [TesterTorrent; 3] = [
    TesterTorrent {
        name: "alto-test-4MiB.bin",
        bytes: 4 << 20,
        seed: 4,
        piece_bytes: 256 << 10,
    },
    TesterTorrent {
        name: "alto-test-16MiB.bin",
        bytes: 16 << 20,
        seed: 16,
        piece_bytes: 256 << 10,
    },
    TesterTorrent {
        name: "alto-test-64MiB.bin",
        bytes: 64 << 20,
        seed: 64,
        piece_bytes: 256 << 10,
    },
];

/// `len` deterministic pseudo-random bytes: the same `seed` gives the same file.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = crate::production::SplitMix::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// SHA-1 of `data` (info hashes, piece hashes).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// A metainfo file and the torrent's info hash.
pub struct Torrent {
    /// The bencoded `.torrent`.
    pub metainfo: Vec<u8>,
    /// SHA-1 of the bencoded `info` dictionary.
    pub info_hash: [u8; 20],
}

/// A single-file torrent of `data` named `name`, announcing to `announce` (and to
/// `backups`, as an `announce-list` tier, when given).
pub fn single_file(
    name: &str,
    data: &[u8],
    piece_len: usize,
    announce: &str,
    backups: &[&str],
) -> Torrent {
    build(name, data, piece_len, announce, backups, false)
}

/// The same, with `private` set (BEP 27): clients use no DHT, no local discovery and no
/// peer exchange for it, only its tracker.
pub fn single_file_private(name: &str, data: &[u8], piece_len: usize, announce: &str) -> Torrent {
    build(name, data, piece_len, announce, &[], true)
}

fn build(
    name: &str,
    data: &[u8],
    piece_len: usize,
    announce: &str,
    backups: &[&str],
    private: bool,
) -> Torrent {
    let mut pieces = Vec::with_capacity(data.len() / piece_len * 20 + 20);
    for chunk in data.chunks(piece_len) {
        pieces.extend_from_slice(&Sha1::digest(chunk));
    }
    // Keys in sorted order, as bencode requires (BEP 3).
    let mut info = Vec::new();
    let mut w = Writer(&mut info);
    w.dict().bytes(b"length").int(data.len() as i64);
    w.bytes(b"name").bytes(name.as_bytes());
    w.bytes(b"piece length").int(piece_len as i64);
    w.bytes(b"pieces").bytes(&pieces);
    if private {
        w.bytes(b"private").int(1);
    }
    w.end();
    let info_hash: [u8; 20] = Sha1::digest(&info).into();
    let mut t = Vec::new();
    let mut w = Writer(&mut t);
    w.dict().bytes(b"announce").bytes(announce.as_bytes());
    if !backups.is_empty() {
        w.bytes(b"announce-list").list().list();
        w.bytes(announce.as_bytes());
        for b in backups {
            w.bytes(b.as_bytes());
        }
        w.end().end();
    }
    w.bytes(b"info").raw(&info).end();
    Torrent {
        metainfo: t,
        info_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_testers_torrents_are_the_same_on_every_machine() {
        // A tester's copy seeds another's only if both generated the same bytes: the info
        // hash of the first payload, as `transmission-show` printed it on 2026-12-02.
        let t = TESTERS[0];
        let torrent = single_file(
            t.name,
            &payload(t.bytes, t.seed),
            t.piece_bytes,
            "http://127.0.0.1:6969/announce",
            &[],
        );
        let hex: String = torrent
            .info_hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "f3e60000293a4d606c2a9ca5c7784d78b17b4a59");
        let names: std::collections::BTreeSet<_> = TESTERS.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), TESTERS.len());
    }
}
