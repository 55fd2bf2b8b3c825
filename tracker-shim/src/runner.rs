//! Running a tracker: binding its sockets and starting its tasks (the HTTP and UDP servers,
//! the expiry sweep, and as the [`Mode`] says, the ALTO follower, the membership and the
//! fetching of other heads' members), and stopping them again. Handlers live in
//! [`crate::http`] and [`crate::udp`]; the ALTO side in [`crate::head`] and
//! [`crate::membership`], none of which knows this module.

use crate::front::{Front, Target};
use crate::head;
use crate::http::run_http;
use crate::membership::{self, HeadFailures, JoinSettings, Membership};
use crate::tracker::Tracker;
use crate::udp::run_udp;
use alto_web::clock::now;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// How often a tracker asks other heads for members of its too-small swarms.
const FOREIGN_PERIOD: Duration = Duration::from_millis(250);

/// Drops expired peers every `period`, for ever.
pub async fn run_expiry(tracker: Arc<Tracker>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let gone = tracker.expire(now());
        if gone > 0 {
            tracing::debug!(gone, "expired peers");
        }
    }
}

/// How a tracker relates to ALTO.
#[derive(Clone, Debug)]
pub enum Mode {
    /// No ALTO: random peer lists.
    Plain,
    /// Head of a given PID: follows the ALTO server (directory URL, PID, refresh period).
    Head {
        /// The ALTO server's directory URLs (one per replica).
        alto: Vec<String>,
        /// The PID served.
        pid: String,
        /// Seconds between map refreshes.
        refresh: Duration,
    },
    /// Joins the ALTO server and serves as head when elected.
    Join(JoinSettings),
    /// The announce front ([`crate::front`]): redirects each announcer to its PID's head,
    /// serving the others as a plain tracker.
    Front {
        /// The ALTO server's directory URLs (one per replica).
        alto: Vec<String>,
        /// Time between two rounds of following the ALTO server.
        refresh: Duration,
        /// The tracker to redirect to when a PID has no usable head, instead of serving
        /// the request here.
        fallback: Option<String>,
    },
}

/// A tracker running in the background, for tests and for the plugin: HTTP on `addr`,
/// UDP on `udp` when asked for.
pub struct RunningTracker {
    /// Where it stands with the ALTO server (join mode).
    pub membership: watch::Receiver<Membership>,
    /// Where the client reports a failing head (join mode).
    pub head_failures: HeadFailures,
    /// The front's view and counters (front mode).
    pub front: Option<Arc<Front>>,
    leave: watch::Sender<bool>,
    member_task: Option<JoinHandle<()>>,
    /// HTTP address.
    pub addr: SocketAddr,
    /// `https` or `http`.
    scheme: &'static str,
    /// UDP address, if serving UDP.
    pub udp: Option<SocketAddr>,
    /// The tracker.
    pub tracker: Arc<Tracker>,
    stop: oneshot::Sender<()>,
    tasks: Vec<JoinHandle<()>>,
    http: JoinHandle<std::io::Result<()>>,
}

impl RunningTracker {
    /// Starts serving `tracker` in `mode`.
    pub async fn start(
        tracker: Tracker,
        listen: SocketAddr,
        udp: Option<SocketAddr>,
        mode: Mode,
    ) -> std::io::Result<Self> {
        Self::start_tls(tracker, listen, udp, mode, None).await
    }

    /// [`RunningTracker::start`], serving HTTPS with `tls` when given: its announce URL
    /// and, as a head, its tracker and ALTO URLs in the join are `https://` (members and the
    /// ALTO server verify its certificate, `docs/security.md`).
    pub async fn start_tls(
        tracker: Tracker,
        listen: SocketAddr,
        udp: Option<SocketAddr>,
        mode: Mode,
        tls: Option<Arc<alto_web::tls::ServerTls>>,
    ) -> std::io::Result<Self> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let tracker = Arc::new(tracker);
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let mut tasks = Vec::new();
        let udp = match udp {
            Some(u) => {
                let socket = UdpSocket::bind(u).await?;
                let local = socket.local_addr()?;
                let t = tracker.clone();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = run_udp(socket, t).await {
                        tracing::error!("UDP server stopped: {e}");
                    }
                }));
                Some(local)
            }
            None => None,
        };
        let period = Duration::from_secs((tracker.config().interval as u64 / 2).clamp(1, 300));
        tasks.push(tokio::spawn(run_expiry(tracker.clone(), period)));
        let (state_tx, membership) = watch::channel(Membership::default());
        let (leave, leave_rx) = watch::channel(false);
        let mut member_task = None;
        let head_failures = HeadFailures::default();
        let mut front = None;
        match mode {
            Mode::Plain => {}
            Mode::Front {
                alto,
                refresh,
                fallback,
            } => {
                let fallback = match fallback.as_deref().map(|f| (f, Target::parse(f))) {
                    Some((f, None)) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            format!("the fallback `{f}` is not an http(s) URL"),
                        ))
                    }
                    Some((_, t)) => t,
                    None => None,
                };
                let f = Arc::new(Front::new(fallback));
                tasks.push(tokio::spawn(crate::front::follow(f.clone(), alto, refresh)));
                front = Some(f);
            }
            Mode::Head { alto, pid, refresh } => {
                tasks.push(tokio::spawn(head::follow(
                    tracker.clone(),
                    alto,
                    pid,
                    refresh,
                    None,
                )));
                tasks.push(tokio::spawn(head::fetch_foreign(
                    tracker.clone(),
                    FOREIGN_PERIOD,
                )));
            }
            Mode::Join(settings) => {
                let url = format!("{scheme}://{addr}/announce");
                member_task = Some(tokio::spawn(membership::run(
                    tracker.clone(),
                    url,
                    settings,
                    state_tx,
                    head_failures.clone(),
                    leave_rx,
                )));
                tasks.push(tokio::spawn(head::fetch_foreign(
                    tracker.clone(),
                    FOREIGN_PERIOD,
                )));
            }
        }
        let (stop, rx) = oneshot::channel::<()>();
        let http = tokio::spawn(run_http(
            listener,
            tls,
            tracker.clone(),
            front.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        Ok(RunningTracker {
            membership,
            head_failures,
            front,
            leave,
            member_task,
            addr,
            scheme,
            udp,
            tracker,
            stop,
            tasks,
            http,
        })
    }

    /// Stops without resigning or answering anything more: a crash, for tests of failover.
    pub fn kill(self) {
        if let Some(t) = &self.member_task {
            t.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
        self.http.abort();
    }

    /// The announce URL.
    pub fn announce_url(&self) -> String {
        format!("{}://{}/announce", self.scheme, self.addr)
    }

    /// Stops every task; a head resigns first.
    pub async fn stop(self) {
        let _ = self.leave.send(true);
        if let Some(t) = self.member_task {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let _ = self.stop.send(());
        let _ = self.http.await;
        for t in self.tasks {
            t.abort();
        }
    }
}
