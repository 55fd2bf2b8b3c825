//! Requests from chosen loopback addresses, and announce queries.

use alto_web::client::{http_client, ClientOptions};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::net::IpAddr;
use tracker_protocol::query::percent_encode;

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

/// Sends one request from `local`: the status and the whole body.
pub async fn send(
    local: IpAddr,
    req: http::request::Builder,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (u16, Bytes) {
    let (parts, body) = exchange(Some(local), req, headers, body).await;
    (parts.status.as_u16(), body)
}

/// Sends one request, from `local` when given: the answer's head and whole body.
pub async fn exchange(
    local: Option<IpAddr>,
    mut req: http::request::Builder,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (http::response::Parts, Bytes) {
    let client = http_client(ClientOptions {
        local,
        ..ClientOptions::default()
    });
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

/// `s` as an address (panics on a typo: test input).
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
