//! Head mode (the draft, section 2.2): the shim follows its ALTO server for the network map
//! and its own PID's cost row, revalidating the map by ETag (RFC 7285 §8.3.3) and fetching
//! the row with a filtered cost map (§11.3.2); while the server is unreachable it keeps
//! serving the last good maps.

use crate::tracker::{HeadMaps, Tracker};
use alto_client::AltoClient;
use alto_model::messages::{PidFilter, ReqFilteredCostMap};
use alto_model::{CostMode, CostType, NetworkMap, PidIdx, VersionTag};
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

/// Follows the ALTO server at `directory_url` every `period`, for ever.
pub async fn follow(tracker: Arc<Tracker>, directory_url: String, pid: String, period: Duration) {
    let client = match AltoClient::new(&directory_url) {
        Ok(c) => c.with_timeout(Duration::from_secs(5)),
        Err(e) => {
            tracing::error!("cannot follow the ALTO server: {e}");
            return;
        }
    };
    let mut last = Followed::default();
    let mut failing = false;
    loop {
        match refresh(&client, &pid, &tracker, &mut last).await {
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
