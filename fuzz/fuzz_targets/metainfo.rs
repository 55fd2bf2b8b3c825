//! A `.torrent` (BEP 3, BEP 12) or magnet link (BEP 9) as the plugin strips its trackers:
//! whatever the input, the `info` dictionary, and so the info hash, never changes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use tracker_protocol::metainfo;

fuzz_target!(|data: &[u8]| {
    if let Ok((stripped, _)) = metainfo::strip_torrent(data) {
        let before = metainfo::info(data).expect("a torrent that strips has info");
        let after = metainfo::info(&stripped).expect("a stripped torrent has info");
        assert_eq!(Sha1::digest(before), Sha1::digest(after), "the info hash changed");
    }
    if let Ok(link) = std::str::from_utf8(data) {
        let _ = metainfo::strip_magnet(link);
    }
});
