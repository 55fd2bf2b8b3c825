//! Head mode (the draft, section 2.2): the shim follows its ALTO server for the network map
//! and its own PID's cost row, revalidating the map by ETag (RFC 7285 §8.3.3) and fetching
//! the row with a filtered cost map (§11.3.2); while the server is unreachable it keeps
//! serving the last good maps. It also reads the server's head directory, and asks the heads
//! of the cheapest other PIDs for members of swarms that are too small here.

use crate::protocol::query::percent_encode;
use crate::tracker::{ForeignPeer, HeadMaps, KnownHead, Tracker};
use alto_client::AltoClient;
use alto_model::messages::{PidFilter, ReqFilteredCostMap};
use alto_model::pidhead::sibling;
use alto_model::{CostMode, CostType, NetworkMap, PidIdx, VersionTag};
use alto_web::client::{http_client, ClientOptions, HttpClient};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::Duration;

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
) -> anyhow::Result<bool> {
    let nm = client.network_map().await?;
    let net = NetworkMap::from_data(&nm.meta.vtag.resource_id, &nm.network_map)?;
    let own = net
        .pid_index(pid)
        .ok_or_else(|| anyhow::anyhow!("PID `{pid}` is not in the ALTO server's network map"))?;
    let req = ReqFilteredCostMap {
        cost_type: CostType::new(alto_model::cost::ROUTINGCOST, CostMode::Numerical),
        constraints: None,
        pids: Some(PidFilter {
            srcs: vec![pid.to_owned()],
            dsts: vec![],
        }),
    };
    let fc = client.filtered_cost_map(&req).await?;
    let mut row: Vec<(PidIdx, f64)> = fc
        .cost_map
        .get(pid)
        .into_iter()
        .flatten()
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
pub async fn refresh_heads(client: &AltoClient, tracker: &Tracker) -> anyhow::Result<()> {
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

/// Asks the cheapest other heads for the members of torrents whose swarms here are too
/// small, every `period`, for ever: bounded fan-out, a timeout per head, and results kept
/// for `FOREIGN_TTL_SECS`.
pub async fn fetch_foreign(tracker: Arc<Tracker>, period: Duration) {
    let client = http_client(ClientOptions {
        connect_timeout: Some(MEMBERS_TIMEOUT),
        ..ClientOptions::default()
    });
    loop {
        tokio::time::sleep(period).await;
        let wanted = tracker.take_wanted();
        if wanted.is_empty() {
            continue;
        }
        let heads: Vec<(PidIdx, String)> =
            tracker.other_heads().into_iter().take(FAN_OUT).collect();
        for h in wanted.into_iter().take(64) {
            let mut asks = Vec::new();
            for (pid, url) in &heads {
                let url = format!("{url}?info_hash={}&max=50", percent_encode(&h.0));
                let client = client.clone();
                let pid = *pid;
                asks.push(tokio::spawn(
                    async move { (pid, members(&client, &url).await) },
                ));
            }
            let mut all = Vec::new();
            for a in asks {
                if let Ok((_, Some(list))) = a.await {
                    all.extend(list);
                }
            }
            tracker.set_foreign(h, all, crate::server::now());
        }
    }
}

/// One head's members of one torrent, in its order.
async fn members(client: &HttpClient, url: &str) -> Option<Vec<ForeignPeer>> {
    let req = http::Request::get(url).body(Full::new(Bytes::new())).ok()?;
    let exchange = async {
        let resp = client.request(req).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.into_body().collect().await.ok().map(|b| b.to_bytes())
    };
    let body = tokio::time::timeout(MEMBERS_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let swarm = v["swarms"].as_object()?.values().next()?;
    Some(
        swarm["peers"]
            .as_array()?
            .iter()
            .filter_map(|p| {
                let addr = p["addr"].as_str()?.parse().ok()?;
                Some(ForeignPeer {
                    addr,
                    pid: None,
                    seeder: p["seeder"].as_bool().unwrap_or(false),
                })
            })
            .collect(),
    )
}

/// Follows the ALTO server at `directory_url` every `period`, for ever. An elected head
/// speaks from its own address (`local`), so that the server answers its questions itself
/// instead of forwarding them to the head.
pub async fn follow(
    tracker: Arc<Tracker>,
    directory_url: String,
    pid: String,
    period: Duration,
    local: Option<std::net::IpAddr>,
) {
    let client = match AltoClient::new(&directory_url) {
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
