//! Taking a torrent's trackers out before librqbit sees it (BEP 3 metainfo, BEP 12
//! `announce-list`, BEP 9 magnet `tr=`), so that every announce goes through the local
//! proxy, and remembering them for the proxy to announce to.
//!
//! The outer dictionary of a `.torrent` is edited byte for byte: the `info` dictionary is
//! never re-encoded, so the info hash cannot change even for a torrent whose bencode is not
//! canonical. That is why this scanner is written by hand: a bencode library decodes into
//! values and encodes them back canonically.

use crate::query::percent_decode;

/// Why a torrent cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MetainfoError {
    /// Not bencode, or not a dictionary with `info`.
    #[error("not a .torrent file: {0}")]
    Torrent(String),
    /// Not a usable magnet link.
    #[error("not a magnet link with a BitTorrent info hash: {0}")]
    Magnet(String),
}

/// Most lists and dictionaries inside one another that a `.torrent` may have: real ones
/// have a handful (the outer dictionary, `info`, `files`, a file, its `path`); the bound
/// keeps a hostile file from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// Length of the bencoded value starting at `at`.
fn value_len(b: &[u8], at: usize) -> Result<usize, MetainfoError> {
    nested_len(b, at, 0)
}

/// [`value_len`] for a value `depth` lists or dictionaries deep.
fn nested_len(b: &[u8], at: usize, depth: usize) -> Result<usize, MetainfoError> {
    let bad = || MetainfoError::Torrent(format!("broken bencode at byte {at}"));
    match b.get(at).copied().ok_or_else(bad)? {
        b'i' => Ok(b[at..].iter().position(|&c| c == b'e').ok_or_else(bad)? + 1),
        b'l' | b'd' if depth >= MAX_DEPTH => Err(MetainfoError::Torrent(format!(
            "lists and dictionaries nested deeper than {MAX_DEPTH} at byte {at}"
        ))),
        b'l' | b'd' => {
            let mut i = at + 1;
            while *b.get(i).ok_or_else(bad)? != b'e' {
                i += nested_len(b, i, depth + 1)?;
            }
            Ok(i + 1 - at)
        }
        b'0'..=b'9' => {
            let colon = at + b[at..].iter().position(|&c| c == b':').ok_or_else(bad)?;
            let n: usize = std::str::from_utf8(&b[at..colon])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)?;
            // A length near usize::MAX must not wrap around (found by the `metainfo` fuzz
            // target: `d000018446744073709551615:`).
            let end = (colon + 1).checked_add(n).ok_or_else(bad)?;
            if end > b.len() {
                return Err(bad());
            }
            Ok(end - at)
        }
        _ => Err(bad()),
    }
}

/// The string at `at` (a dictionary key); an error for any other value.
fn string_at(b: &[u8], at: usize) -> Result<&[u8], MetainfoError> {
    if !b.get(at).is_some_and(u8::is_ascii_digit) {
        return Err(MetainfoError::Torrent(format!(
            "a dictionary key that is not a string at byte {at}"
        )));
    }
    let len = value_len(b, at)?;
    let colon = at
        + b[at..]
            .iter()
            .position(|&c| c == b':')
            .expect("value_len found the colon of a string");
    Ok(&b[colon + 1..at + len])
}

/// Every string inside the value at `at` (the URLs of `announce` or `announce-list`).
fn strings_in(b: &[u8], at: usize, out: &mut Vec<String>) -> Result<(), MetainfoError> {
    match b[at] {
        b'l' | b'd' => {
            let mut i = at + 1;
            while b[i] != b'e' {
                strings_in(b, i, out)?;
                i += value_len(b, i)?;
            }
        }
        b'0'..=b'9' => out.push(String::from_utf8_lossy(string_at(b, at)?).into_owned()),
        _ => {}
    }
    Ok(())
}

/// A `.torrent` without `announce` and `announce-list`, and the tracker URLs they held
/// (tiers flattened, duplicates once).
pub fn strip_torrent(bytes: &[u8]) -> Result<(Vec<u8>, Vec<String>), MetainfoError> {
    if bytes.first() != Some(&b'd') {
        return Err(MetainfoError::Torrent("not a bencoded dictionary".into()));
    }
    let total = value_len(bytes, 0)?;
    let mut out = vec![b'd'];
    let mut trackers = Vec::new();
    let mut has_info = false;
    let mut i = 1;
    while bytes[i] != b'e' {
        let key_len = value_len(bytes, i)?;
        let key = string_at(bytes, i)?;
        let v = i + key_len;
        let v_len = value_len(bytes, v)?;
        match key {
            b"announce" | b"announce-list" => strings_in(bytes, v, &mut trackers)?,
            _ => {
                has_info |= key == b"info";
                out.extend_from_slice(&bytes[i..v + v_len]);
            }
        }
        i = v + v_len;
    }
    if !has_info {
        return Err(MetainfoError::Torrent("no `info` dictionary".into()));
    }
    out.push(b'e');
    out.extend_from_slice(&bytes[total..]);
    let mut seen = std::collections::HashSet::new();
    trackers.retain(|t| seen.insert(t.clone()));
    Ok((out, trackers))
}

/// The bytes of a `.torrent`'s `info` dictionary, exactly as they are in the file: their
/// SHA-1 is the info hash (BEP 3).
pub fn info(bytes: &[u8]) -> Result<&[u8], MetainfoError> {
    if bytes.first() != Some(&b'd') {
        return Err(MetainfoError::Torrent("not a bencoded dictionary".into()));
    }
    value_len(bytes, 0)?;
    let mut i = 1;
    while bytes[i] != b'e' {
        let v = i + value_len(bytes, i)?;
        let v_len = value_len(bytes, v)?;
        if string_at(bytes, i)? == b"info" {
            return Ok(&bytes[v..v + v_len]);
        }
        i = v + v_len;
    }
    Err(MetainfoError::Torrent("no `info` dictionary".into()))
}

/// A magnet link without its `tr=` parameters, and the trackers they named.
pub fn strip_magnet(link: &str) -> Result<(String, Vec<String>), MetainfoError> {
    let query = link
        .strip_prefix("magnet:?")
        .ok_or_else(|| MetainfoError::Magnet(link.into()))?;
    let mut kept = Vec::new();
    let mut trackers = Vec::new();
    let mut has_btih = false;
    for part in query.split('&') {
        match part.split_once('=') {
            Some(("tr", v)) => {
                let mut raw = Vec::new();
                if percent_decode(v.replace('+', " ").as_bytes(), &mut raw).is_ok() {
                    trackers.push(String::from_utf8_lossy(&raw).into_owned());
                }
            }
            Some(("xt", v)) => {
                has_btih |= v.starts_with("urn:btih:");
                kept.push(part);
            }
            _ => kept.push(part),
        }
    }
    if !has_btih {
        return Err(MetainfoError::Magnet(link.into()));
    }
    Ok((format!("magnet:?{}", kept.join("&")), trackers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trackers_go_and_the_info_hash_stays() {
        let data = testdata::torrent::payload(100_000, 3);
        let t = testdata::torrent::single_file(
            "f.bin",
            &data,
            16384,
            "http://a.example/announce",
            &["udp://b.example:80"],
        );
        let (stripped, trackers) = strip_torrent(&t.metainfo).unwrap();
        assert_eq!(
            trackers,
            ["http://a.example/announce", "udp://b.example:80"]
        );
        assert!(!String::from_utf8_lossy(&stripped).contains("announce"));
        assert_eq!(
            testdata::torrent::sha1(info(&stripped).unwrap()),
            t.info_hash
        );
        assert_eq!(info(&t.metainfo).unwrap(), info(&stripped).unwrap());
    }

    #[test]
    fn bad_torrents_and_magnets_are_refused() {
        assert!(strip_torrent(b"not bencode").is_err());
        assert!(strip_torrent(b"d3:fooi1ee").is_err(), "no info");
        assert!(strip_torrent(b"d4:infod6:lengthi1e").is_err(), "truncated");
        assert!(
            strip_torrent(b"di1ei2ee").is_err(),
            "a key that is not a string"
        );
        // A string length that would wrap around (found by fuzzing).
        assert!(strip_torrent(b"d000018446744073709551615:").is_err());
        assert!(info(b"d18446744073709551615:xe").is_err());
        let deep = [vec![b'd', b'4'], b":info".to_vec(), vec![b'l'; 100_000]].concat();
        assert!(strip_torrent(&deep).is_err(), "nested without end");
        let (m, tr) = strip_magnet("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x&tr=http%3A%2F%2Ft.example%2Fannounce").unwrap();
        assert_eq!(
            m,
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x"
        );
        assert_eq!(tr, ["http://t.example/announce"]);
        assert!(strip_magnet("magnet:?dn=x").is_err());
        assert!(strip_magnet("http://x").is_err());
    }
}
