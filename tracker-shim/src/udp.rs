//! The UDP tracker's serving loop (BEP 15): datagrams in, one answer out per datagram. The
//! packets themselves are read and written by [`crate::protocol::udp`] and answered by
//! [`Tracker::udp`].

use crate::rng::with_rng;
use crate::tracker::Tracker;
use alto_web::clock::now_millis;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// The receive buffer: room for the largest UDP payload (65,507 bytes over IPv4, 65,527
/// over IPv6), so that no datagram is cut short. A cut one would be misread: a scrape of
/// 1,000 hashes, cut at 2 KB, looked like one with a broken hash instead of one with too
/// many (BEP 15 requests are at most a scrape of 74 hashes, 1,496 bytes; longer ones get an
/// error saying so, from [`crate::protocol::udp::parse`]).
const MAX_DATAGRAM: usize = 65_536;

/// Serves UDP (BEP 15) on `socket` for ever; stops only when receiving fails.
pub async fn run_udp(socket: UdpSocket, tracker: Arc<Tracker>) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(1500);
    loop {
        let (n, src) = socket.recv_from(&mut buf).await?;
        out.clear();
        with_rng(|rng| tracker.udp(&buf[..n], src, now_millis(), rng, &mut out));
        if let Err(e) = socket.send_to(&out, src).await {
            tracing::debug!("UDP answer to {src} failed: {e}");
        }
    }
}
