//! Head mode (the draft, section 2.2): the shim follows its ALTO server for the network map
//! and its own PID's cost row, revalidating the map by ETag (RFC 7285 §8.3.3) and fetching
//! the row with a filtered cost map (§11.3.2); while the server is unreachable it keeps
//! serving the last good maps. It also reads the server's head directory, and asks the heads
//! of the cheapest other PIDs for members of swarms that are too small here (their
//! `GET /members`, typed in `alto_model::members`).

use crate::protocol::query::percent_encode;
use crate::protocol::InfoHash;
use crate::tracker::{ForeignPeer, HeadMaps, KnownHead, Tracker};
use alto_client::{AltoClient, ClientError};
use alto_model::members::MembersResponse;
use alto_model::pidhead::sibling;
use alto_model::{MapError, NetworkMap, PidIdx, VersionTag};
use alto_web::client::{http_client, ClientOptions, HttpClient};
use alto_web::clock::now;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use std::time::Duration;

/// Why following the ALTO server failed this time (the last good maps stay installed).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A request to the ALTO server failed or was refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server's network map cannot be compiled.
    #[error(transparent)]
    Map(#[from] MapError),
    /// The server's network map does not have the PID this head serves.
    #[error("PID `{0}` is not in the ALTO server's network map")]
    UnknownPid(String),
}

/// What the follower last installed.
#[derive(Default)]
pub struct Followed {
    vtag: Option<VersionTag>,
    row: Vec<(PidIdx, f64)>,
    generation: u64,
}

/// Fetches the maps once and installs them in `tracker` if they changed. Returns whether
/// they changed.
pub async fn refresh(
    client: &AltoClient,
    pid: &str,
    tracker: &Tracker,
    last: &mut Followed,
) -> Result<bool, FollowError> {
    let nm = client.network_map().await?;
    let net = NetworkMap::from_data(&nm.meta.vtag.resource_id, &nm.network_map)?;
    let own = net
        .pid_index(pid)
        .ok_or_else(|| FollowError::UnknownPid(pid.to_owned()))?;
    let costs = client.cost_row(pid).await?;
    let mut row: Vec<(PidIdx, f64)> = costs
        .iter()
        .filter_map(|(dst, c)| net.pid_index(dst).map(|d| (d, c.0)))
        .collect();
    row.sort_by_key(|e| e.0);
    let map_changed = last.vtag.as_ref() != Some(&nm.meta.vtag);
    if !map_changed && row == last.row {
        return Ok(false);
    }
    if map_changed {
        last.generation += 1;
    }
    last.vtag = Some(nm.meta.vtag.clone());
    last.row = row.clone();
    tracker.set_maps(HeadMaps::new(last.generation, net, own, row));
    Ok(true)
}

/// Reads the head directory and tells `tracker` every PID's head: where it lists its
/// members and since when it is head, cheapest PIDs first (by the head's own cost row).
pub async fn refresh_heads(client: &AltoClient, tracker: &Tracker) -> Result<(), FollowError> {
    let Some(maps) = tracker.maps() else {
        return Ok(());
    };
    let dir = client.head_directory().await?;
    let net = maps.network();
    let since = dir.since();
    let mut heads: Vec<KnownHead> = dir
        .heads()
        .into_iter()
        .filter_map(|(p, (tracker_url, _))| {
            Some(KnownHead {
                pid: net.pid_index(&p)?,
                addr: alto_model::pidhead::url_ip(&tracker_url)?,
                members: sibling(&tracker_url, "/members"),
                since: since.get(&p).cloned(),
            })
        })
        .collect();
    heads.sort_by(|a, b| {
        let (ca, cb) = (
            maps.cost(a.pid).unwrap_or(f64::INFINITY),
            maps.cost(b.pid).unwrap_or(f64::INFINITY),
        );
        ca.total_cmp(&cb).then(a.pid.cmp(&b.pid))
    });
    tracker.set_heads(heads);
    Ok(())
}

/// Most other heads asked about one torrent.
pub const FAN_OUT: usize = 3;
/// Time allowed to each of them.
pub const MEMBERS_TIMEOUT: Duration = Duration::from_millis(500);
/// Members asked of each head for one torrent, and most taken from its answer.
const MEMBERS_ASKED: usize = 50;
/// Largest member list read: another head is not trusted to keep its answer short.
const MAX_MEMBERS_BODY: usize = 256 * 1024;

/// Asks the cheapest other heads for the members of torrents whose swarms here are too
/// small, for ever: woken when a torrent becomes wanted, at most once every `period`
/// (wanted torrents gather meanwhile), with bounded fan-out, a timeout per head, and results
/// kept for `FOREIGN_TTL_SECS`.
pub async fn fetch_foreign(tracker: Arc<Tracker>, period: Duration) {
    let client = http_client(ClientOptions {
        connect_timeout: Some(MEMBERS_TIMEOUT),
        ..ClientOptions::default()
    });
    let mut next = tokio::time::Instant::now();
    loop {
        tracker.wanted_added().await;
        tokio::time::sleep_until(next).await;
        next = tokio::time::Instant::now() + period;
        let wanted = tracker.take_wanted();
        if wanted.is_empty() {
            continue;
        }
        let heads: Vec<(PidIdx, String)> =
            tracker.other_heads().into_iter().take(FAN_OUT).collect();
        for h in wanted.into_iter().take(64) {
            let mut asks = Vec::new();
            for (pid, url) in &heads {
                let url = format!(
                    "{url}?info_hash={}&max={MEMBERS_ASKED}",
                    percent_encode(&h.0)
                );
                let client = client.clone();
                let pid = *pid;
                asks.push(tokio::spawn(async move {
                    (pid, members(&client, &url, &h).await)
                }));
            }
            let mut all = Vec::new();
            for a in asks {
                if let Ok((_, Some(list))) = a.await {
                    all.extend(list);
                }
            }
            tracker.set_foreign(h, all, now());
        }
    }
}

/// One head's members of torrent `h`, in its order; `None` if it does not answer in time or
/// answers anything but a member list of that torrent.
async fn members(client: &HttpClient, url: &str, h: &InfoHash) -> Option<Vec<ForeignPeer>> {
    let req = http::Request::get(url).body(Full::new(Bytes::new())).ok()?;
    let exchange = async {
        let resp = client.request(req).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        Limited::new(resp.into_body(), MAX_MEMBERS_BODY)
            .collect()
            .await
            .ok()
            .map(|b| b.to_bytes())
    };
    let body = tokio::time::timeout(MEMBERS_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()?;
    let mut list: MembersResponse = serde_json::from_slice(&body).ok()?;
    let swarm = list.swarms.remove(&h.to_string())?;
    Some(
        swarm
            .peers
            .into_iter()
            .take(MEMBERS_ASKED)
            .map(|m| ForeignPeer {
                addr: m.addr,
                pid: None,
                seeder: m.seeder,
            })
            .collect(),
    )
}

/// Follows the ALTO server at `directory_url` (its replicas' directories) every `period`, for ever. An elected head
/// speaks from its own address (`local`), so that the server answers its questions itself
/// instead of forwarding them to the head.
pub async fn follow(
    tracker: Arc<Tracker>,
    directory_url: Vec<String>,
    pid: String,
    period: Duration,
    local: Option<std::net::IpAddr>,
) {
    let client = match AltoClient::replicas(&directory_url) {
        Ok(c) => {
            let c = c.with_timeout(Duration::from_secs(5));
            match local {
                Some(ip) => c.with_local_address(ip),
                None => c,
            }
        }
        Err(e) => {
            tracing::error!("cannot follow the ALTO server: {e}");
            return;
        }
    };
    let mut last = Followed::default();
    let mut failing = false;
    loop {
        let outcome = match refresh(&client, &pid, &tracker, &mut last).await {
            Ok(changed) => refresh_heads(&client, &tracker).await.map(|()| changed),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(changed) => {
                if changed {
                    tracing::info!(pid, vtag = ?last.vtag.as_ref().map(|v| &v.tag), "ALTO maps installed");
                }
                if failing {
                    tracing::info!("the ALTO server answers again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    let keeping = if tracker.maps().is_some() {
                        "keeping the last good maps"
                    } else {
                        "no maps yet: peer lists are random"
                    };
                    tracing::warn!("ALTO refresh failed ({keeping}): {e}");
                }
                failing = true;
            }
        }
        tokio::time::sleep(period).await;
    }
}
