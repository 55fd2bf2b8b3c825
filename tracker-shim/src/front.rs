//! The announce front (`docs/tracker-shim.md`, "One tracker URL for every client"): one
//! stable `/announce` for every BitTorrent client of the ISP, which answers each announce
//! (BEP 3) and scrape (BEP 48) with an HTTP `302 Found` to the announcer's PID Head (the
//! draft, section 2.2), the query string unchanged. Every client follows a 302 on announce,
//! and all but ctorrent come back to the front for every later announce, so the front sees
//! nearly every announce: it holds no swarm state for redirected clients and does no
//! ranking, only a longest-prefix match and a copy of the query.
//!
//! - Core, no I/O: [`FrontView`], the network map and each PID's head as last followed, and
//!   [`FrontView::route`], the decision for one request.
//! - Shell: [`follow`] keeps the view current from the ALTO server: the network map
//!   (RFC 7285 §11.2.1) and the head directory (an RFC 9240 property map, `docs/pid-head.md`),
//!   both revalidated by ETag (RFC 7285 §8.3.3), and a connect check of each head's tracker;
//!   a head that does not accept a connection is suspect until the next round.
//!
//! A request whose PID has no live head, whose head is suspect, or whose address is in no
//! PID, is not redirected: the front serves it itself as a plain tracker (the caller's
//! [`crate::Tracker`]), or redirects it to the configured fallback tracker.

use alto_client::AltoClient;
use alto_model::pidhead::url_ip;
use alto_model::{NetworkMap, VersionTag};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The two tracker resources the front routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// `/announce` (BEP 3).
    Announce,
    /// `/scrape` (BEP 48).
    Scrape,
}

/// Where a PID's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The head's announce URL.
    pub announce: String,
    /// Its scrape URL (BEP 48: the last path segment `announce` becomes `scrape`), if it
    /// has one.
    pub scrape: Option<String>,
}

impl Target {
    /// The target of a tracker whose announce URL is `announce`.
    pub fn new(announce: &str) -> Self {
        Target {
            announce: announce.to_owned(),
            scrape: scrape_url(announce),
        }
    }

    /// The target of the tracker at `announce`, an `http(s)://` URL, written as `url` parses
    /// it (so that a `Location` made of it is well-formed) and without a fragment (the query
    /// goes after the path); `None` for anything else.
    pub fn parse(announce: &str) -> Option<Self> {
        let mut u = url::Url::parse(announce).ok()?;
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            return None;
        }
        u.set_fragment(None);
        Some(Target::new(u.as_str()))
    }

    /// Whether the announce URL `announce` is the front listening on `listen` itself (by
    /// address: a host name is not resolved here), so that its redirects would loop.
    pub fn loops_back(announce: &str, listen: SocketAddr) -> bool {
        let Ok(u) = url::Url::parse(announce) else {
            return false;
        };
        let ip = match u.host() {
            Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
            Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
                IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            }
            _ => return false,
        };
        let same_ip = ip == listen.ip()
            || (listen.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified()));
        same_ip && u.port_or_known_default() == Some(listen.port())
    }

    fn url(&self, r: Resource) -> Option<&str> {
        match r {
            Resource::Announce => Some(&self.announce),
            Resource::Scrape => self.scrape.as_deref(),
        }
    }
}

/// BEP 48's convention: the scrape URL of an announce URL whose last path segment starts
/// with `announce` is the same URL with that `announce` replaced by `scrape`.
pub fn scrape_url(announce: &str) -> Option<String> {
    let (head, query) = match announce.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (announce, None),
    };
    let slash = head.rfind('/')?;
    let last = &head[slash + 1..];
    let rest = last.strip_prefix("announce")?;
    let mut url = format!("{}/scrape{rest}", &head[..slash]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Some(url)
}

/// Why a request is not redirected to a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoHead {
    /// The front has no network map yet (the ALTO server has not answered).
    NoMap,
    /// The announcer's address is in no PID of the map.
    NoPid,
    /// Its PID has no live head.
    Headless,
    /// Its PID's head did not accept a connection at the last check.
    Suspect,
}

/// What to do with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Answer `302 Found` with this `Location`.
    Redirect {
        /// The URL with the request's query.
        location: String,
        /// To the PID's head (`true`) or to the fallback tracker.
        head: bool,
    },
    /// Serve it here as a plain tracker.
    Serve(NoHead),
}

/// One PID's head as the front last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadState {
    /// Where its members announce.
    pub target: Target,
    /// Whether it accepted a connection at the last check.
    pub reachable: bool,
}

/// What the front routes by: the network map, each PID's head, the fallback tracker.
#[derive(Clone, Debug, Default)]
pub struct FrontView {
    /// Shared with the follower, which installs a new view every round.
    net: Option<Arc<NetworkMap>>,
    /// By PID index of `net`.
    heads: Vec<Option<HeadState>>,
    fallback: Option<Target>,
}

impl FrontView {
    /// A view with no map yet; requests go to `fallback` or are served here.
    pub fn new(fallback: Option<Target>) -> Self {
        FrontView {
            fallback,
            ..FrontView::default()
        }
    }

    /// The view over `net` with `heads` (PID name to head; names not in `net` are dropped).
    pub fn with_heads(&self, net: Arc<NetworkMap>, heads: &BTreeMap<String, HeadState>) -> Self {
        let mut by_pid = vec![None; net.pids().len()];
        for (pid, h) in heads {
            if let Some(i) = net.pid_index(pid) {
                by_pid[i as usize] = Some(h.clone());
            }
        }
        FrontView {
            net: Some(net),
            heads: by_pid,
            fallback: self.fallback.clone(),
        }
    }

    /// The network map, if one was followed.
    pub fn network(&self) -> Option<&NetworkMap> {
        self.net.as_deref()
    }

    /// Its heads' announce URLs, by PID name.
    fn head_urls(&self) -> Vec<(String, String)> {
        let Some(net) = &self.net else {
            return Vec::new();
        };
        (0..)
            .zip(&self.heads)
            .filter_map(|(i, h)| {
                Some((
                    net.pid_name(i).to_owned(),
                    h.as_ref()?.target.announce.clone(),
                ))
            })
            .collect()
    }

    /// PIDs with a reachable head.
    pub fn live_heads(&self) -> usize {
        self.heads
            .iter()
            .filter(|h| h.as_ref().is_some_and(|h| h.reachable))
            .count()
    }

    /// Where a request for `resource` from `announcer` with `query` (the raw query string,
    /// without `?`) goes: to its PID's reachable head, else to the fallback tracker, else
    /// here.
    pub fn route(&self, resource: Resource, announcer: IpAddr, query: &str) -> Route {
        let head = match &self.net {
            None => Err(NoHead::NoMap),
            Some(net) => match net.pid_of(announcer) {
                None => Err(NoHead::NoPid),
                Some(pid) => match self.heads.get(pid as usize).and_then(Option::as_ref) {
                    None => Err(NoHead::Headless),
                    Some(h) if !h.reachable => Err(NoHead::Suspect),
                    Some(h) => Ok(&h.target),
                },
            },
        };
        let redirect = |t: &Target, head| {
            t.url(resource).map(|url| Route::Redirect {
                location: with_query(url, query),
                head,
            })
        };
        // A head without a scrape URL is, for scrapes, no head: the fallback or here.
        let (head, why) = match head {
            Ok(t) => (redirect(t, true), NoHead::Headless),
            Err(why) => (None, why),
        };
        head.or_else(|| self.fallback.as_ref().and_then(|f| redirect(f, false)))
            .unwrap_or(Route::Serve(why))
    }
}

/// `url` with `query` appended (after `&` if it has a query of its own).
fn with_query(url: &str, query: &str) -> String {
    if query.is_empty() {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut s = String::with_capacity(url.len() + 1 + query.len());
    s.push_str(url);
    s.push(sep);
    s.push_str(query);
    s
}

/// The front's counters, in `/metrics`.
#[derive(Debug, Default)]
pub struct FrontStats {
    /// Requests redirected to a head.
    pub to_head: AtomicU64,
    /// Requests redirected to the fallback tracker.
    pub to_fallback: AtomicU64,
    /// Requests served here, by reason: no map, no PID, no head, head suspect.
    pub served: [AtomicU64; 4],
    /// Rounds of following the ALTO server that failed.
    pub follow_failures: AtomicU64,
}

impl FrontStats {
    /// Counts one routed request.
    pub fn count(&self, route: &Route) {
        let c = match route {
            Route::Redirect { head: true, .. } => &self.to_head,
            Route::Redirect { head: false, .. } => &self.to_fallback,
            Route::Serve(why) => &self.served[*why as usize],
        };
        c.fetch_add(1, Relaxed);
    }
}

/// The front: its current view, swapped whole by [`follow`], and its counters.
#[derive(Debug)]
pub struct Front {
    view: RwLock<Arc<FrontView>>,
    /// The counters.
    pub stats: FrontStats,
}

impl Front {
    /// A front with no map yet.
    pub fn new(fallback: Option<Target>) -> Self {
        Front {
            view: RwLock::new(Arc::new(FrontView::new(fallback))),
            stats: FrontStats::default(),
        }
    }

    /// The current view.
    pub fn view(&self) -> Arc<FrontView> {
        self.view.read().expect("front view lock").clone()
    }

    /// Installs a new view.
    pub fn set_view(&self, v: FrontView) {
        *self.view.write().expect("front view lock") = Arc::new(v);
    }

    /// Routes one request and counts it.
    pub fn route(&self, resource: Resource, announcer: IpAddr, query: &str) -> Route {
        let r = self.view().route(resource, announcer, query);
        self.stats.count(&r);
        r
    }
}

/// Why one round of following failed (the last view stays).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A request to the ALTO server failed or was refused.
    #[error(transparent)]
    Client(#[from] alto_client::ClientError),
    /// The network map cannot be compiled.
    #[error(transparent)]
    Map(#[from] alto_model::MapError),
}

/// Time a head's tracker has to accept a connection at each check.
pub const HEAD_CHECK_TIMEOUT: Duration = Duration::from_millis(500);
/// Connect checks in flight at once: many PIDs must not exhaust the front's descriptors.
const MAX_CHECKS: usize = 64;

/// Whether something accepts TCP connections at `addr` within `timeout`.
async fn accepts(addr: SocketAddr, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// The TCP address of an `http(s)://IP:PORT/...` URL, and the URL as `url` writes it (so
/// that what goes into a `Location` header is a well-formed URL, whatever a directory said).
fn url_addr(url: &str) -> Option<(SocketAddr, String)> {
    let ip = url_ip(url)?;
    let target = Target::parse(url)?;
    let port = url::Url::parse(&target.announce)
        .ok()?
        .port_or_known_default()?;
    Some((SocketAddr::new(ip, port), target.announce))
}

/// Follows the ALTO server at `directory_url` (its replicas' directories) every `period`, for ever, and keeps `front`'s
/// view current; while the server does not answer, the last view stays.
pub async fn follow(front: Arc<Front>, directory_url: Vec<String>, period: Duration) {
    let client = match AltoClient::replicas(&directory_url) {
        Ok(c) => c.with_timeout(Duration::from_secs(5)),
        Err(e) => {
            tracing::error!("the front cannot follow the ALTO server: {e}");
            return;
        }
    };
    let mut net: Option<(VersionTag, Arc<NetworkMap>)> = None;
    let mut failing = false;
    loop {
        match follow_once(&front, &client, &mut net).await {
            Ok(()) => {
                if failing {
                    tracing::info!("the ALTO server answers the front again");
                }
                failing = false;
            }
            Err(e) => {
                front.stats.follow_failures.fetch_add(1, Relaxed);
                if !failing {
                    tracing::warn!(
                        "the front cannot follow the ALTO server (keeping its last heads, checked each round): {e}"
                    );
                }
                failing = true;
                // The heads it knows still get checked: one that stops meanwhile is suspect.
                let v = front.view();
                if let Some(net) = v.net.clone() {
                    let heads = check_heads(v.head_urls()).await;
                    front.set_view(v.with_heads(net, &heads));
                }
            }
        }
        tokio::time::sleep(period).await;
    }
}

/// One round: the network map (compiled again only when its version tag changed), the head
/// directory, a connect check of every head.
async fn follow_once(
    front: &Front,
    client: &AltoClient,
    net: &mut Option<(VersionTag, Arc<NetworkMap>)>,
) -> Result<(), FollowError> {
    let nm = client.network_map().await?;
    let map = match net {
        Some((vtag, map)) if *vtag == nm.meta.vtag => map.clone(),
        _ => {
            let compiled = NetworkMap::from_data(&nm.meta.vtag.resource_id, &nm.network_map)?;
            let map = Arc::new(compiled);
            *net = Some((nm.meta.vtag.clone(), map.clone()));
            map
        }
    };
    let dir = client.head_directory().await?;
    let heads = check_heads(dir.heads().into_iter().map(|(p, (t, _))| (p, t)).collect()).await;
    let view = front.view().with_heads(map, &heads);
    front.set_view(view);
    Ok(())
}

/// Connect-checks the trackers of `heads` (PID name, announce URL), [`MAX_CHECKS`] at once:
/// each PID's head and whether it accepted a connection. URLs that are not
/// `http(s)://IP:PORT/…` are left out.
async fn check_heads(heads: Vec<(String, String)>) -> BTreeMap<String, HeadState> {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CHECKS));
    let mut checks = Vec::new();
    for (pid, tracker_url) in heads {
        let Some((addr, tracker_url)) = url_addr(&tracker_url) else {
            tracing::warn!(
                pid,
                tracker_url,
                "a head's tracker URL is not http(s)://IP:PORT: not redirected to"
            );
            continue;
        };
        let permits = permits.clone();
        checks.push(tokio::spawn(async move {
            let reachable = match permits.acquire().await {
                Ok(_held) => accepts(addr, HEAD_CHECK_TIMEOUT).await,
                Err(_) => false,
            };
            let target = Target::new(&tracker_url);
            (pid, HeadState { target, reachable })
        }));
    }
    let mut heads = BTreeMap::new();
    for c in checks {
        if let Ok((pid, h)) = c.await {
            if !h.reachable {
                tracing::warn!(
                    pid,
                    url = h.target.announce,
                    "the PID's head does not accept connections: serving its members here"
                );
            }
            heads.insert(pid, h);
        }
    }
    heads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_that_is_the_front_itself_is_told_apart() {
        let listen: std::net::SocketAddr = "127.0.0.1:6969".parse().unwrap();
        let any: std::net::SocketAddr = "0.0.0.0:6969".parse().unwrap();
        for (url, at, loops) in [
            ("http://127.0.0.1:6969/announce", listen, true),
            ("http://localhost:6969/announce", listen, true),
            ("http://127.0.0.2:6969/announce", any, true),
            ("http://127.0.0.1:6970/announce", listen, false),
            ("http://127.0.0.2:6969/announce", listen, false),
            ("http://10.0.0.1:6969/announce", any, false),
            ("http://tracker.example:6969/announce", listen, false),
            (
                "http://127.0.0.1/announce",
                "127.0.0.1:80".parse().unwrap(),
                true,
            ),
        ] {
            assert_eq!(Target::loops_back(url, at), loops, "{url} against {at}");
        }
    }

    fn net() -> NetworkMap {
        let data: alto_model::messages::NetworkMapData = serde_json::from_str(
            r#"{"PID1": {"ipv4": ["127.1.0.0/16"]}, "PID2": {"ipv4": ["127.2.0.0/16"]},
                "PID3": {"ipv4": ["127.3.0.0/16"], "ipv6": ["fd00:3::/32"]}}"#,
        )
        .unwrap();
        NetworkMap::from_data("net", &data).unwrap()
    }

    fn view(fallback: Option<&str>) -> FrontView {
        let heads = BTreeMap::from([
            (
                "PID1".to_owned(),
                HeadState {
                    target: Target::new("http://127.1.0.5:6969/announce"),
                    reachable: true,
                },
            ),
            (
                "PID3".to_owned(),
                HeadState {
                    target: Target::new("https://127.3.0.9:7000/announce"),
                    reachable: false,
                },
            ),
            (
                "NOPE".to_owned(),
                HeadState {
                    target: Target::new("http://10.0.0.1/announce"),
                    reachable: true,
                },
            ),
        ]);
        FrontView::new(fallback.map(Target::new)).with_heads(Arc::new(net()), &heads)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_member_of_a_pid_with_a_live_head_goes_there_with_its_query_unchanged() {
        let q = "info_hash=%01%02&peer_id=-qB4520-abc&port=6881&uploaded=0&downloaded=0&left=9&compact=1";
        assert_eq!(
            view(None).route(Resource::Announce, ip("127.1.2.3"), q),
            Route::Redirect {
                location: format!("http://127.1.0.5:6969/announce?{q}"),
                head: true
            }
        );
        assert_eq!(
            view(None).route(Resource::Scrape, ip("127.1.2.3"), "info_hash=%01"),
            Route::Redirect {
                location: "http://127.1.0.5:6969/scrape?info_hash=%01".into(),
                head: true
            }
        );
        // No query: the bare URL.
        assert_eq!(
            view(None).route(Resource::Announce, ip("127.1.0.9"), ""),
            Route::Redirect {
                location: "http://127.1.0.5:6969/announce".into(),
                head: true
            }
        );
    }

    #[test]
    fn without_a_usable_head_the_front_serves_or_sends_to_the_fallback() {
        let v = view(None);
        assert_eq!(
            v.route(Resource::Announce, ip("127.2.0.1"), "x=1"),
            Route::Serve(NoHead::Headless)
        );
        assert_eq!(
            v.route(Resource::Announce, ip("127.3.0.1"), "x=1"),
            Route::Serve(NoHead::Suspect)
        );
        assert_eq!(
            v.route(Resource::Announce, ip("fd00:3::1"), "x=1"),
            Route::Serve(NoHead::Suspect)
        );
        assert_eq!(
            v.route(Resource::Announce, ip("10.0.0.1"), "x=1"),
            Route::Serve(NoHead::NoPid)
        );
        assert_eq!(
            FrontView::new(None).route(Resource::Announce, ip("127.1.0.1"), "x=1"),
            Route::Serve(NoHead::NoMap)
        );
        let f = view(Some("http://127.0.0.1:6970/announce"));
        for who in ["127.2.0.1", "127.3.0.1", "10.0.0.1"] {
            assert_eq!(
                f.route(Resource::Announce, ip(who), "x=1"),
                Route::Redirect {
                    location: "http://127.0.0.1:6970/announce?x=1".into(),
                    head: false
                },
                "{who}"
            );
        }
        // A head still wins over the fallback.
        assert!(matches!(
            f.route(Resource::Announce, ip("127.1.0.1"), ""),
            Route::Redirect { head: true, .. }
        ));
        assert_eq!(f.live_heads(), 1);
    }

    #[test]
    fn a_tracker_without_a_scrape_url_gets_its_scrapes_served_here() {
        let heads = BTreeMap::from([(
            "PID1".to_owned(),
            HeadState {
                target: Target::new("http://127.1.0.5:6969/tracker"),
                reachable: true,
            },
        )]);
        let v = FrontView::new(None).with_heads(Arc::new(net()), &heads);
        assert_eq!(
            v.route(Resource::Scrape, ip("127.1.0.1"), "info_hash=%01"),
            Route::Serve(NoHead::Headless)
        );
        let f = FrontView::new(Target::parse("http://127.0.0.1:6970/announce"))
            .with_heads(Arc::new(net()), &heads);
        assert_eq!(
            f.route(Resource::Scrape, ip("127.1.0.1"), "info_hash=%01"),
            Route::Redirect {
                location: "http://127.0.0.1:6970/scrape?info_hash=%01".into(),
                head: false
            }
        );
        assert!(matches!(
            v.route(Resource::Announce, ip("127.1.0.1"), ""),
            Route::Redirect { head: true, .. }
        ));
    }

    #[test]
    fn scrape_urls_follow_bep_48() {
        for (a, s) in [
            ("http://h:1/announce", Some("http://h:1/scrape")),
            ("http://h:1/x/announce.php", Some("http://h:1/x/scrape.php")),
            ("http://h:1/announce?k=v", Some("http://h:1/scrape?k=v")),
            ("http://h:1/a", None),
            ("http://h:1/announce/x", None),
        ] {
            assert_eq!(scrape_url(a).as_deref(), s, "{a}");
        }
        assert_eq!(with_query("http://h/a?k=v", "q=1"), "http://h/a?k=v&q=1");
    }

    #[test]
    fn only_http_urls_on_an_ip_address_are_redirected_to() {
        let (addr, url) = url_addr("http://127.1.0.5:6969/announce").unwrap();
        assert_eq!(addr, "127.1.0.5:6969".parse().unwrap());
        assert_eq!(url, "http://127.1.0.5:6969/announce");
        let (addr, _) = url_addr("https://[::1]/announce").unwrap();
        assert_eq!(addr, "[::1]:443".parse().unwrap());
        // Written as a URL: nothing a `Location` header cannot hold.
        let (_, url) = url_addr("http://127.1.0.5:1/an nounce").unwrap();
        assert_eq!(url, "http://127.1.0.5:1/an%20nounce");
        for bad in [
            "udp://127.1.0.5:1/announce",
            "http://tracker.example/announce",
            "junk",
        ] {
            assert!(url_addr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn counters_count_each_route_once() {
        let s = FrontStats::default();
        for r in [
            Route::Redirect {
                location: String::new(),
                head: true,
            },
            Route::Serve(NoHead::Suspect),
            Route::Serve(NoHead::Suspect),
        ] {
            s.count(&r);
        }
        assert_eq!(s.to_head.load(Relaxed), 1);
        assert_eq!(s.served[NoHead::Suspect as usize].load(Relaxed), 2);
        assert_eq!(s.to_fallback.load(Relaxed), 0);
    }
}
