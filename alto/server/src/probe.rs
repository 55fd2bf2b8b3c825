//! The server's own measure of a PID Head candidate's distance (docs/pid-head.md, the
//! `scored` policy): the round trip of a TCP connect to the tracker it announced.

use alto_model::pidhead;
use std::time::Duration;
use tokio::time::Instant;

/// Round trip of a TCP connect to the tracker's address, in milliseconds; `None` if the
/// URL names no address or nothing answered within `timeout`.
pub async fn tcp_round_trip(tracker: &str, timeout: Duration) -> Option<f64> {
    let ip = pidhead::url_ip(tracker)?;
    let port = tracker
        .strip_prefix("http://")?
        .split('/')
        .next()?
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(80);
    let start = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port))).await {
        Ok(Ok(_)) => Some(start.elapsed().as_secs_f64() * 1000.0),
        _ => None,
    }
}
