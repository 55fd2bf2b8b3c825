//! Following the PID Head's network map (RFC 7285 §11.2.1), for keeping peers local and
//! attributing bytes to PIDs: it is read from the head's `/directory`, so that clients do not
//! ask the ALTO server for it while their head serves it, revalidated by ETag (§8.3.3), and
//! fetched again from the new head when the head changes. From a head that serves none, it
//! is read from the ALTO server instead.
//!
//! The map is published on a [`tokio::sync::watch`] channel: the session waits on it for the
//! first map instead of polling, and the proxy and the byte accounting read its latest value.

use alto_client::AltoClient;
use alto_model::NetworkMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracker_shim::membership::Membership;

/// The latest network map from the head; `None` until the first one arrives.
pub type NetworkMapWatch = watch::Receiver<Option<Arc<NetworkMap>>>;

/// Time between revalidations of a map the head gave (a `304` when unchanged).
const REVALIDATE: Duration = Duration::from_secs(30);
/// Time between tries while there is no map: the head may not hold the maps yet, and it
/// cannot tell this client when it does (it is another host).
const RETRY: Duration = Duration::from_secs(1);
/// Time between tries of the head while the map comes from the ALTO server.
const HEAD_AGAIN: Duration = Duration::from_secs(10);
/// Time allowed to each request to the head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A channel for the map and the follower's end of it.
pub fn channel() -> (watch::Sender<Option<Arc<NetworkMap>>>, NetworkMapWatch) {
    watch::channel(None)
}

/// Follows the network map of the head that `membership` names, asking from the client's
/// address `ip`, and sends every map it gets into `into`. A head that does not serve one (it
/// may not hold the maps yet, or it is hostile: a head is an untrusted end host) does not
/// leave the client without: the map is then read from the ALTO server at `server` (its
/// replicas' directory URLs), revalidated by ETag as the head's, and the head is asked again
/// on every round. Without a map the proxy cannot tell local peers from others, and hands
/// librqbit every peer, the head's first. Runs until aborted.
pub async fn follow(
    mut membership: watch::Receiver<Membership>,
    ip: IpAddr,
    server: Vec<String>,
    into: watch::Sender<Option<Arc<NetworkMap>>>,
) {
    let server = AltoClient::replicas(&server)
        .ok()
        .map(|c| c.with_local_address(ip).with_timeout(REQUEST_TIMEOUT));
    let mut client: Option<(String, AltoClient)> = None;
    loop {
        let head = membership.borrow_and_update().head.clone();
        if let Some(h) = head {
            let directory = alto_model::pidhead::sibling(&h.tracker, "/directory");
            if client.as_ref().is_none_or(|(d, _)| *d != directory) {
                client = AltoClient::new(&directory).ok().map(|c| {
                    let c = c.with_local_address(ip).with_timeout(REQUEST_TIMEOUT);
                    (directory, c)
                });
            }
        }
        let from_head = match &client {
            Some((_, c)) => map_of(c).await.map(|net| (net, REVALIDATE)),
            None => None,
        };
        let fetched = match (from_head, &server) {
            (Some(got), _) => Some(got),
            (None, Some(c)) => map_of(c).await.map(|net| (net, HEAD_AGAIN)),
            (None, None) => None,
        };
        let wait = match fetched {
            Some((net, wait)) => {
                into.send_replace(Some(Arc::new(net)));
                wait
            }
            None => RETRY,
        };
        let changed = async {
            if membership.changed().await.is_err() {
                std::future::pending::<()>().await; // the membership ended: only the timer
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed => {}
        }
    }
}

/// The network map `c` serves, if it serves a valid one.
async fn map_of(c: &AltoClient) -> Option<NetworkMap> {
    let nm = c.network_map().await.ok()?;
    NetworkMap::from_data(&nm.meta.vtag.resource_id, &nm.network_map).ok()
}
