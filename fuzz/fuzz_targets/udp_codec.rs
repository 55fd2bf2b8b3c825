//! The UDP tracker protocol (BEP 15) in both directions: a datagram as the tracker reads a
//! request, and as the plugin's client reads an answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracker_protocol::udp;

fuzz_target!(|data: &[u8]| {
    let _ = udp::parse(data, udp::MAX_SCRAPE);
    let tid = data
        .get(4..8)
        .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")));
    let _ = udp::client::connected(data, tid);
    let _ = udp::client::announced(data, tid, false);
    let _ = udp::client::announced(data, tid, true);
});
