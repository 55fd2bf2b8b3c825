//! A tracker's bencoded answers (BEP 3 announce, compact BEP 23 and BEP 7 peers, BEP 48
//! scrape) as the plugin reads them from trackers upstream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tracker_protocol::decode::announce(data);
    let _ = tracker_protocol::decode::scrape(data);
});
