//! Scrape (BEP 48): several `info_hash` parameters in one request, answered with the
//! `files` dictionary of per-torrent counts.

use crate::bencode::Writer;
use crate::query::{pairs, BadEscape};
use crate::InfoHash;

/// Why a scrape is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    /// Bad percent-encoding.
    #[error(transparent)]
    Escape(#[from] BadEscape),
    /// An `info_hash` that is not 20 bytes.
    #[error("`info_hash` must be 20 bytes, not {0}")]
    Length(usize),
    /// More hashes than the tracker answers in one scrape.
    #[error("too many `info_hash` in one scrape: {0}, at most {1}")]
    TooMany(usize, usize),
}

/// Parses the query of `/scrape`: every `info_hash`, duplicates once, at most `cap`. No
/// `info_hash` at all asks for every torrent, which this tracker answers with none.
pub fn parse(query: &[u8], cap: usize) -> Result<Vec<InfoHash>, ScrapeError> {
    let mut out: Vec<InfoHash> = Vec::new();
    for (k, v) in pairs(query)? {
        if k == b"info_hash" {
            let h = InfoHash(
                v.as_slice()
                    .try_into()
                    .map_err(|_| ScrapeError::Length(v.len()))?,
            );
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    if out.len() > cap {
        return Err(ScrapeError::TooMany(out.len(), cap));
    }
    Ok(out)
}

/// Counts of one torrent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads seen.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// Writes `d5:filesd<hash>d8:complete…e…ee`, hashes in byte order as bencode requires.
pub fn encode(files: &mut [(InfoHash, ScrapeCounts)], out: &mut Vec<u8>) {
    files.sort_unstable_by_key(|f| f.0);
    let mut w = Writer(out);
    w.dict().raw(b"5:files").dict();
    for (h, c) in files.iter() {
        w.bytes(&h.0).dict();
        w.raw(b"8:complete").int(c.complete as i64);
        w.raw(b"10:downloaded").int(c.downloaded as i64);
        w.raw(b"10:incomplete").int(c.incomplete as i64);
        w.end();
    }
    w.end().end();
}
