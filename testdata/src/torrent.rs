//! Test payloads and single-file `.torrent` files for them (BEP 3 metainfo), so that tests
//! can point a torrent at a tracker whose port is only known at run time.

use sha1::{Digest, Sha1};

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

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

fn int(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b'e');
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
    let mut info = Vec::new();
    info.push(b'd');
    bytes(&mut info, b"length");
    int(&mut info, data.len() as u64);
    bytes(&mut info, b"name");
    bytes(&mut info, name.as_bytes());
    bytes(&mut info, b"piece length");
    int(&mut info, piece_len as u64);
    bytes(&mut info, b"pieces");
    bytes(&mut info, &pieces);
    if private {
        bytes(&mut info, b"private");
        int(&mut info, 1);
    }
    info.push(b'e');
    let info_hash: [u8; 20] = Sha1::digest(&info).into();
    let mut t = Vec::new();
    t.push(b'd');
    bytes(&mut t, b"announce");
    bytes(&mut t, announce.as_bytes());
    if !backups.is_empty() {
        bytes(&mut t, b"announce-list");
        t.push(b'l');
        t.push(b'l');
        bytes(&mut t, announce.as_bytes());
        for b in backups {
            bytes(&mut t, b.as_bytes());
        }
        t.push(b'e');
        t.push(b'e');
    }
    bytes(&mut t, b"info");
    t.extend_from_slice(&info);
    t.push(b'e');
    Torrent {
        metainfo: t,
        info_hash,
    }
}
