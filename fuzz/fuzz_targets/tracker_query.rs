//! Announce (BEP 3, BEP 23) and scrape (BEP 48) query strings as the tracker reads them.
//! A query that parses is written again and must parse to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracker_protocol::announce::AnnounceRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = AnnounceRequest::parse(data) {
        let again = AnnounceRequest::parse(req.to_query().as_bytes())
            .expect("a request written by to_query parses");
        assert_eq!(again, req);
    }
    let _ = tracker_protocol::scrape::parse(data, 64);
    let _ = tracker_protocol::query::pairs(data);
});
