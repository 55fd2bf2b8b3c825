//! Strict mode: an allowlist, in the P2P format librqbit's `allowlist_url` reads, of the
//! prefixes of the own PID and of the PIDs cheapest to reach from it (within 2x the cheapest
//! other PID's cost), so that locality holds for every peer source, PEX and incoming
//! included.
//!
//! The own cost row comes from a filtered cost map (RFC 7285 §11.3.2) in a numerical cost
//! type the server's directory offers for it (§9.2): `routingcost` when it is there, as
//! every server must offer it (§6.1.1.1), else the first numerical one. Choosing the cost
//! type, the PIDs and the lines are plain functions; [`write`] asks the server and writes
//! the file.

use alto_client::{AltoClient, ClientError};
use alto_model::addr::{AddressType, Prefix};
use alto_model::messages::NetworkMapData;
use alto_model::Cost;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;
use tracker_shim::membership::Membership;

/// How long to wait for the join to name the own PID, and for each request.
const WAIT: Duration = Duration::from_secs(5);

/// A PID is allowed when its cost is at most this many times the cheapest other PID's.
const CHEAP_FACTOR: f64 = 2.0;

/// Why no allowlist was written.
#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    /// The ALTO server could not be asked.
    #[error(transparent)]
    Alto(#[from] ClientError),
    /// The join did not name the own PID in time.
    #[error("no PID from the ALTO server within {0:?}")]
    NoPid(Duration),
    /// The file could not be written.
    #[error("writing the allowlist: {0}")]
    Io(#[from] std::io::Error),
}

/// The PIDs of `row` (costs from `own`) that are allowed: `own`, and those whose cost is at
/// most [`CHEAP_FACTOR`] times the cheapest other PID's.
pub fn allowed_pids<'a>(own: &str, row: &'a BTreeMap<String, Cost>) -> Vec<&'a str> {
    let cheapest_other = row
        .iter()
        .filter(|(p, _)| *p != own)
        .map(|(_, c)| c.0)
        .fold(f64::INFINITY, f64::min);
    row.iter()
        .filter(|(p, c)| *p == own || c.0 <= cheapest_other * CHEAP_FACTOR)
        .map(|(p, _)| p.as_str())
        .collect()
}

/// P2P-format lines (`name:first-last`) for the IPv4 prefixes of `pids` in `map`.
pub fn lines(pids: &[&str], map: &NetworkMapData) -> Vec<String> {
    let mut out = Vec::new();
    for p in pids {
        let prefixes = map
            .get(*p)
            .and_then(|g| g.get("ipv4"))
            .into_iter()
            .flatten();
        for prefix in prefixes {
            if let Ok(px) = Prefix::parse(AddressType::Ipv4, prefix) {
                out.push(format!(
                    "{p}:{}-{}",
                    Ipv4Addr::from(px.addr as u32),
                    Ipv4Addr::from(px.last() as u32)
                ));
            }
        }
    }
    out
}

/// Asks the ALTO server at `alto` (from the client's address `ip`) for the network map and
/// the own PID's cost row, once `membership` names the PID, and writes the allowlist into
/// `output`. Returns the file's path.
pub async fn write(
    alto: &[String],
    ip: IpAddr,
    output: &Path,
    membership: &watch::Receiver<Membership>,
) -> Result<PathBuf, AllowlistError> {
    let client = AltoClient::replicas(alto)?
        .with_local_address(ip)
        .with_timeout(WAIT);
    let mut m = membership.clone();
    let _ = tokio::time::timeout(WAIT, m.wait_for(|m| m.pid.is_some())).await;
    let pid = m.borrow().pid.clone().ok_or(AllowlistError::NoPid(WAIT))?;
    // The cost row first: it fetches the directory, in which the network map is then found
    // without a second fetch.
    let row = client.cost_row(&pid).await?;
    let nm = client.network_map().await?;
    let lines = lines(&allowed_pids(&pid, &row), &nm.network_map);
    let path = output.join(".alto-allowlist.p2p");
    std::fs::create_dir_all(output)?;
    std::fs::write(&path, lines.join("\n") + "\n")?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(costs: &[(&str, f64)]) -> BTreeMap<String, Cost> {
        costs
            .iter()
            .map(|(p, c)| (p.to_string(), Cost(*c)))
            .collect()
    }

    #[test]
    fn should_allow_the_own_pid_and_those_within_twice_the_cheapest_other() {
        // (the costs from PID A, the PIDs allowed)
        type Case<'a> = (&'a [(&'a str, f64)], &'a [&'a str]);
        let cases: &[Case] = &[
            // own PID (cost 0), a metro neighbour, and one beyond the long-haul link
            (&[("A", 0.0), ("B", 5.0), ("C", 50.0)], &["A", "B"]),
            // exactly twice the cheapest other is still allowed
            (&[("A", 1.0), ("B", 5.0), ("C", 10.0)], &["A", "B", "C"]),
            // the own PID's cost does not count as the cheapest other
            (&[("A", 100.0), ("B", 5.0), ("C", 11.0)], &["A", "B"]),
            // only the own PID
            (&[("A", 0.0)], &["A"]),
        ];
        for (costs, allowed) in cases {
            assert_eq!(allowed_pids("A", &row(costs)), *allowed, "{costs:?}");
        }
    }

    #[test]
    fn should_write_one_line_per_ipv4_prefix() {
        let mut map = NetworkMapData::new();
        map.insert(
            "A".into(),
            BTreeMap::from([
                (
                    "ipv4".to_string(),
                    vec!["127.1.0.0/16".to_string(), "10.0.0.0/24".to_string()],
                ),
                ("ipv6".to_string(), vec!["::1/128".to_string()]),
            ]),
        );
        assert_eq!(
            lines(&["A", "missing"], &map),
            ["A:127.1.0.0-127.1.255.255", "A:10.0.0.0-10.0.0.255"]
        );
    }
}
