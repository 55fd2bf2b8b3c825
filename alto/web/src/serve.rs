//! The accept loop of every HTTP server in the workspace: HTTP/1.1 (RFC 9112) with
//! keep-alive, one task per connection, and a graceful shutdown.
//!
//! What a connection may hold is bounded ([`Limits`]): a client that does not send a whole
//! request head within the header-read timeout is disconnected, whether it trickles bytes
//! (slowloris) or sits idle on a kept-alive connection; an answer the client does not read
//! for the write timeout ends the connection, so a client that sends and never reads pins
//! its answer's memory for that long only; one source (an IPv4 address, an IPv6 /64) holds
//! at most `max_connections_per_source`, and its connections past that are closed at once,
//! so one host cannot take every slot; at most `max_connections` are open at once, and a
//! newcomer past that takes the slot of the connection idle longest (a slowloris connection,
//! which never completes a request, is idle from its start), or, when every connection is
//! in a request, waits in the kernel's backlog until one ends. Accept errors (the file-descriptor limit, say) are logged at most once a
//! second, with the count of those not logged.

use crate::resource::HttpResponse;
use crate::tls::{ClientCertificate, ServerTls};
use alto_model::addr::SourceKey;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

/// What the connections of one server may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a whole request head, counted from the connection's start
    /// or from the end of the previous answer (so it is also the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// Time a write may make no progress (the client does not read) before the connection
    /// is closed.
    pub write_timeout: Duration,
    /// Connections open at once; past this many a newcomer takes the slot of the
    /// connection idle longest.
    pub max_connections: usize,
    /// Connections one source (an IPv4 address, an IPv6 /64) may hold at once; past this
    /// many its new connections are closed as soon as they are accepted.
    pub max_connections_per_source: usize,
    /// After shutdown, time left to requests in flight before they are cut.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_source: 64,
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
    serve_tls(listener, None, handle, shutdown, limits).await
}

/// [`serve`], over TLS when `tls` is given (HTTPS, RFC 2818): each connection's handshake
/// must end within the header-read timeout, with the certificate current when it began.
pub async fn serve_tls<H, F>(
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
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
    let sources = Sources::new(limits.max_connections_per_source.max(1));
    let mut errors = ErrorLog::default();
    let conns = Conns::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    errors.failed(&e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(held) = sources.admit(remote.ip()) else {
            tracing::debug!("{remote} holds too many connections; closing a new one");
            continue;
        };
        // A free slot, or the one of the connection idle longest, closed for the newcomer;
        // with every connection in a request, the newcomer waits for one to end.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                conns.evict_idlest();
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = WriteTimeout::new(stream, limits.write_timeout);
        let state = conns.add();
        let handle = handle.clone();
        let svc = {
            let state = state.clone();
            service_fn(move |req: http::Request<Incoming>| {
                let busy = Busy::new(state.clone());
                let answer = match without_host(&req) {
                    Some(refused) => Err(refused),
                    None => Ok(handle(req, remote)),
                };
                async move {
                    let answer = match answer {
                        Ok(answer) => answer.await,
                        Err(refused) => refused,
                    };
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(answer)
                }
            })
        };
        let conns = conns.clone();
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let tls = tls.as_ref().map(|t| t.current());
        let handshake = limits.header_read_timeout;
        tokio::spawn(async move {
            let served = async {
                let ended = match tls {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), svc);
                        watcher.watch(conn).await
                    }
                    Some(config) => {
                        // Plain HTTP on the TLS port gets a plain 400 saying so (as nginx
                        // does), not a TLS alert: a handshake starts with byte 22.
                        let mut first = [0u8; 1];
                        let peeked =
                            tokio::time::timeout(handshake, stream.inner.peek(&mut first)).await;
                        if matches!(peeked, Ok(Ok(1))) && first[0] != 22 {
                            let mut stream = stream;
                            let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, PLAIN_ON_TLS)
                                .await;
                            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
                            return;
                        }
                        let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                        match tokio::time::timeout(handshake, accept).await {
                            Ok(Ok(stream)) => {
                                // rustls keeps a client's certificate only once verified.
                                let cert = stream
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|c| c.first())
                                    .map(|c| ClientCertificate(c.clone().into_owned()));
                                let svc = service_fn(move |mut req: http::Request<Incoming>| {
                                    if let Some(c) = &cert {
                                        req.extensions_mut().insert(c.clone());
                                    }
                                    svc.call(req)
                                });
                                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                                watcher.watch(conn).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!("TLS handshake with {remote} failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake with {remote} timed out");
                                return;
                            }
                        }
                    }
                };
                if let Err(e) = ended {
                    tracing::debug!("connection from {remote} ended: {e}");
                }
            };
            tokio::select! {
                () = served => {}
                () = state.evict.notified() => {
                    tracing::debug!("connection from {remote} closed for a newcomer");
                }
            }
            conns.remove(&state);
            drop(slot);
            drop(held);
        });
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

/// The open connections, so that at the cap the one idle longest can be closed for a
/// newcomer: a slowloris connection has sent no whole request, so it counts as idle from its
/// start, and a connection in a request is never chosen.
#[derive(Clone, Default)]
struct Conns {
    open: Arc<Mutex<HashMap<u64, Arc<ConnState>>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

/// One connection's state.
struct ConnState {
    id: u64,
    /// Requests being answered.
    busy: AtomicUsize,
    /// When it last became idle (its start, or its last answer).
    idle_since: Mutex<tokio::time::Instant>,
    /// Set when it is chosen to close.
    evicted: AtomicBool,
    evict: tokio::sync::Notify,
}

impl Conns {
    fn add(&self) -> Arc<ConnState> {
        let id = self.next.fetch_add(1, Relaxed);
        let state = Arc::new(ConnState {
            id,
            busy: AtomicUsize::new(0),
            idle_since: Mutex::new(tokio::time::Instant::now()),
            evicted: AtomicBool::new(false),
            evict: tokio::sync::Notify::new(),
        });
        self.open
            .lock()
            .expect("conns lock")
            .insert(id, state.clone());
        state
    }

    fn remove(&self, state: &ConnState) {
        self.open.lock().expect("conns lock").remove(&state.id);
    }

    /// Closes the connection idle longest, if one is idle. A scan of the open connections,
    /// made only at the cap.
    fn evict_idlest(&self) {
        let open = self.open.lock().expect("conns lock");
        let idlest = open
            .values()
            .filter(|c| c.busy.load(Relaxed) == 0 && !c.evicted.load(Relaxed))
            .min_by_key(|c| *c.idle_since.lock().expect("idle lock"));
        if let Some(c) = idlest {
            c.evicted.store(true, Relaxed);
            c.evict.notify_one();
        }
    }
}

/// A request being answered on a connection.
struct Busy(Arc<ConnState>);

impl Busy {
    fn new(state: Arc<ConnState>) -> Self {
        state.busy.fetch_add(1, Relaxed);
        Busy(state)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.idle_since.lock().expect("idle lock") = tokio::time::Instant::now();
        self.0.busy.fetch_sub(1, Relaxed);
    }
}

/// The 400 for an HTTP/1.1 request without `Host` (RFC 9112 §3.2: "A server MUST respond
/// with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a Host
/// header field"). HTTP/1.0 requests need none (ctorrent sends none).
fn without_host<B>(req: &http::Request<B>) -> Option<HttpResponse> {
    (req.version() == http::Version::HTTP_11 && !req.headers().contains_key(http::header::HOST))
        .then(|| {
            crate::simple(
                http::StatusCode::BAD_REQUEST,
                "text/plain",
                "an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)\n",
            )
        })
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

/// The connections each source holds: an IPv4 address, or an IPv6 /64 (one subscriber's
/// prefix, RFC 6177), IPv4-mapped addresses counted as IPv4.
struct Sources {
    held: Arc<Mutex<HashMap<SourceKey, usize>>>,
    max: usize,
}

/// One connection of a source, given back when dropped.
struct Held {
    held: Arc<Mutex<HashMap<SourceKey, usize>>>,
    key: SourceKey,
}

impl Sources {
    fn new(max: usize) -> Self {
        Sources {
            held: Arc::default(),
            max,
        }
    }

    /// A connection for `ip`, unless it holds its share already.
    fn admit(&self, ip: IpAddr) -> Option<Held> {
        let key = alto_model::addr::subscriber(ip);
        let mut held = self.held.lock().expect("sources lock");
        let n = held.entry(key).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Held {
            held: self.held.clone(),
            key,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("sources lock");
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The answer to plain HTTP sent to a TLS port.
const PLAIN_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Connection: close\r\nContent-Length: 52\r\n\r\nthis port speaks HTTPS: the URL must be https://...\n";

/// How long a closing connection keeps reading what its client still sends.
const LINGER: Duration = Duration::from_secs(2);

/// A client's stream as the server holds it: writes fail once they have made no progress
/// for `timeout` (the client stopped reading, and what is queued for it is let go), and
/// closing is lingering: the server half-closes, then reads and discards what the client
/// still sends, for at most [`LINGER`], before the socket goes. Closing a socket with unread
/// input makes the kernel answer with a reset, which destroys an answer still in flight:
/// a client that sends a large body without `Expect: 100-continue` would see a broken pipe
/// instead of its 413 (nginx's lingering close does the same).
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    /// Set once the write side is shut: the end of lingering.
    lingering: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        WriteTimeout {
            inner,
            timeout,
            stalled: None,
            lingering: None,
        }
    }

    /// After a write returned `Pending`: `Pending` until the timeout, then the error.
    fn stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the client read nothing for {timeout:?}"),
        )))
    }

    fn progressed<T>(
        &mut self,
        r: Poll<std::io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stall(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progressed(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.lingering.is_none() {
            let r = Pin::new(&mut this.inner).poll_shutdown(cx);
            ready!(this.progressed(r, cx))?;
            this.lingering = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        // Discard until the client closes, fails, or lingering ends; a few reads per poll,
        // so a client that floods does not hold the worker.
        let mut sink = [0u8; 8192];
        for _ in 0..16 {
            if this
                .lingering
                .as_mut()
                .is_some_and(|l| l.as_mut().poll(cx).is_ready())
            {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut sink);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => {}
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
