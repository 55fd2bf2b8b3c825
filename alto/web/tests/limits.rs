//! The accept loop's bounds on real sockets: slow and idle clients are disconnected after
//! the header-read timeout, and past the connection cap new clients wait until one closes.

use alto_web::{serve, simple, Limits};
use http::StatusCode;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves `200 ok` to every request within `limits`; the server stops when the sender drops.
async fn server(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = |_req, _remote| async { simple(StatusCode::OK, "text/plain", "ok") };
    tokio::spawn(serve(
        listener,
        handle,
        async {
            let _ = stopped.await;
        },
        limits,
    ));
    (addr, stop)
}

/// Reads until the server closes the connection; what it sent. Bounded so a hang fails.
async fn read_to_close(conn: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&out).into_owned()
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn should_disconnect_a_client_that_trickles_its_request_head() {
    let (addr, _stop) = server(Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = read_to_close(&mut conn).await;
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn should_disconnect_idle_connections_before_and_after_a_request() {
    let (addr, _stop) = server(Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "");
    let mut kept_alive = TcpStream::connect(addr).await.unwrap();
    kept_alive.write_all(GET).await.unwrap();
    let answer = read_to_close(&mut kept_alive).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[tokio::test]
async fn should_stop_accepting_at_the_connection_cap_until_one_closes() {
    let (addr, _stop) = server(Limits {
        header_read_timeout: Duration::from_secs(60),
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        // Answered: the connection is accepted and now holds a slot, kept alive.
        c.write_all(GET).await.unwrap();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
        holders.push(c);
    }
    // The third connects (the kernel's backlog) but is not served while both slots are held.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(GET).await.unwrap();
    let mut buf = [0u8; 256];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "served past the cap");
    // One holder leaves: the third is served.
    drop(holders.pop());
    let n = tokio::time::timeout(Duration::from_secs(20), third.read(&mut buf))
        .await
        .expect("not served after a slot freed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
}
