//! The accept loop of every HTTP server in the workspace: HTTP/1.1 (RFC 9112) with
//! keep-alive, one task per connection, and a graceful shutdown.
//!
//! What a connection may hold is bounded ([`Limits`]): a client that does not send a whole
//! request head within the header-read timeout is disconnected, whether it trickles bytes
//! (slowloris) or sits idle on a kept-alive connection; at most `max_connections` are open
//! at once, and beyond that the server stops accepting (new clients wait in the kernel's
//! backlog) until one closes. Accept errors (the file-descriptor limit, say) are logged at
//! most once a second, with the count of those not logged.

use crate::resource::HttpResponse;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What the connections of one server may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a whole request head, counted from the connection's start
    /// or from the end of the previous answer (so it is also the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// Connections open at once; the server stops accepting at this many.
    pub max_connections: usize,
    /// After shutdown, time left to requests in flight before they are cut.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            grace: Duration::from_secs(10),
        }
    }
}

/// Serves HTTP/1.1 with keep-alive on `listener`, each request answered by `handle` with the
/// client's address, within `limits`, until `shutdown` resolves; then stops accepting and
/// lets requests in flight finish for up to `limits.grace`.
pub async fn serve<H, F>(
    listener: TcpListener,
    handle: H,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) -> std::io::Result<()>
where
    H: Fn(http::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut errors = ErrorLog::default();
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the cap, new connections wait in the backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        errors.failed(&e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handle = handle.clone();
                let svc = service_fn(move |req| {
                    let answer = handle(req, remote);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection from {remote} ended: {e}");
                    }
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still running after {:?}; closing them",
            limits.grace
        );
    }
    Ok(())
}

/// Accept errors, logged at most once a second.
#[derive(Default)]
struct ErrorLog {
    last: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn failed(&mut self, e: &std::io::Error) {
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!("accept failed: {e} (and {} more times)", self.suppressed);
        } else {
            tracing::warn!("accept failed: {e}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}
