//! Helpers of the tracker's integration tests: announces from chosen loopback addresses.

// Each test binary uses a part of these helpers; they are not an API.
#![allow(dead_code, missing_docs)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::net::IpAddr;
use tracker_shim::protocol::query::percent_encode;

/// A query for torrent `[h; 20]` from peer `[p; 20]`.
pub fn query(h: u8, p: u8, port: u16, left: u64, event: &str) -> String {
    format!(
        "info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}&event={event}",
        percent_encode(&[h; 20]),
        percent_encode(&[p; 20])
    )
}

/// GETs `url` from the local address `local`, with extra headers.
pub async fn get_from(local: IpAddr, url: &str, headers: &[(&str, &str)]) -> (u16, Bytes) {
    send(local, http::Request::get(url), headers, Bytes::new()).await
}

/// POSTs `body` to `url` from `local`.
pub async fn post_from(local: IpAddr, url: &str, ctype: &str, body: &str) -> (u16, Bytes) {
    send(
        local,
        http::Request::post(url),
        &[("content-type", ctype)],
        Bytes::from(body.to_owned()),
    )
    .await
}

async fn send(
    local: IpAddr,
    mut req: http::request::Builder,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (u16, Bytes) {
    let mut conn = HttpConnector::new();
    conn.set_local_address(Some(local));
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(conn);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
