//! The server's own check and measure of a PID Head candidate (docs/pid-head.md): a TCP
//! connect to the tracker it announced, whose round trip is the `scored` policy's distance.

use alto_model::pidhead;
use std::time::Duration;
use tokio::time::Instant;

/// Round trip of a TCP connect to the tracker's address, in milliseconds; `None` if the
/// URL names no address or nothing answered within `timeout`. Under every policy a candidate
/// is registered only when this succeeds (the connect-back check, `docs/pid-head.md`): a
/// head its members cannot reach, behind NAT say, is no head.
pub async fn tcp_round_trip(tracker: &str, timeout: Duration) -> Option<f64> {
    let to = pidhead::url_socket(tracker)?;
    let start = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(to)).await {
        Ok(Ok(_)) => Some(start.elapsed().as_secs_f64() * 1000.0),
        _ => None,
    }
}
