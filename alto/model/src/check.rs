//! The checks an answer from a PID Head must pass before the ALTO server relays it (the
//! draft, section 2.2, forwards PID-scoped queries to heads; a head is an untrusted end
//! host, `docs/pid-head.md`). An endpoint cost answer (RFC 7285 §11.5.1.6) or filtered
//! cost map (§11.3.2.6) is relayed only if it
//!
//! - has the resource's media type and fits the answer bound ([`QueryLimits`]);
//! - is JSON of the answer's shape, with the cost type asked for;
//! - names only the sources and destinations asked for (endpoints or PIDs);
//! - agrees with the server's own maps on a sample of the pairs asked for: the same value
//!   in numerical mode, the same order in ordinal mode, and no pair left out that the maps
//!   cost (unless constraints were given, which may leave pairs out).
//!
//! The sample's size is [`SAMPLE`]; which pairs are drawn is the caller's randomness
//! (`pick(n)` returns an index below `n`), so a head cannot tell which pairs are checked.
//! The work is that of decoding the answer plus [`SAMPLE`] lookups, never that of making it.

use crate::addr;
use crate::base::InformationBase;
use crate::cost::CostMode;
use crate::limits::QueryLimits;
use crate::media;
use crate::messages::{
    InfoResourceCostMap, InfoResourceEndpointCostMap, ReqEndpointCostMap, ReqFilteredCostMap,
};
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

/// Pairs checked against the server's own maps in each answer.
pub const SAMPLE: usize = 16;

/// Why a head's answer is not relayed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refused {
    /// Not the resource's media type.
    #[error("media type `{0}`, not the resource's")]
    MediaType(String),
    /// Larger than the answer bound.
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    /// Not JSON of the answer's shape.
    #[error("not an answer of the resource: {0}")]
    Shape(String),
    /// Another cost type than asked for.
    #[error("cost type {0}, not the one asked for")]
    CostType(String),
    /// A source or destination nobody asked for.
    #[error("`{0}` was not asked for")]
    NotAsked(String),
    /// A cost that disagrees with the server's maps.
    #[error("the cost of {0} disagrees with the server's maps")]
    Cost(String),
    /// A pair the maps cost, left out.
    #[error("the pair {0} is missing")]
    Missing(String),
}

/// One sampled pair: its name for errors, the server's cost, and the head's.
type Sampled = (String, Option<f64>, Option<f64>);

/// Checks a head's answer `body` of type `content_type` to the endpoint cost query `req`
/// (with `client` standing in for sources or destinations left out, §11.5.1.3).
pub fn endpoint_cost(
    base: &InformationBase,
    req: &ReqEndpointCostMap,
    client: IpAddr,
    content_type: Option<&str>,
    body: &[u8],
    limits: &QueryLimits,
    pick: &mut impl FnMut(usize) -> usize,
) -> Result<InfoResourceEndpointCostMap, Refused> {
    admit(content_type, media::ENDPOINT_COST, body, limits)?;
    let answer: InfoResourceEndpointCostMap =
        serde_json::from_slice(body).map_err(|e| Refused::Shape(e.to_string()))?;
    let asked = req.cost_type.clone();
    if answer.meta.cost_type != asked {
        return Err(Refused::CostType(format!("{:?}", answer.meta.cost_type)));
    }
    let side = |list: &Option<Vec<String>>| -> Vec<IpAddr> {
        match list.as_ref().filter(|l| !l.is_empty()) {
            Some(l) => l.iter().filter_map(|s| addr::parse_typed_addr(s)).collect(),
            None => vec![client],
        }
    };
    let (srcs, dsts) = (side(&req.endpoints.srcs), side(&req.endpoints.dsts));
    let (src_set, dst_set): (HashSet<IpAddr>, HashSet<IpAddr>) = (
        srcs.iter().copied().collect(),
        dsts.iter().copied().collect(),
    );
    // The answer by address, every key one that was asked for.
    let mut rows: BTreeMap<IpAddr, BTreeMap<IpAddr, f64>> = BTreeMap::new();
    for (s, row) in &answer.endpoint_cost_map {
        let sip = addr::parse_typed_addr(s)
            .filter(|ip| src_set.contains(ip))
            .ok_or_else(|| Refused::NotAsked(s.clone()))?;
        let out = rows.entry(sip).or_default();
        for (d, c) in row {
            let dip = addr::parse_typed_addr(d)
                .filter(|ip| dst_set.contains(ip))
                .ok_or_else(|| Refused::NotAsked(d.clone()))?;
            out.insert(dip, c.0);
        }
    }
    let Some(cm) = base.cost_map(&asked.cost_metric) else {
        return Ok(answer); // a metric the server does not have: nothing to compare with
    };
    let net = base.network_map();
    let mut sample: Vec<Sampled> = Vec::with_capacity(SAMPLE);
    if !srcs.is_empty() && !dsts.is_empty() {
        for _ in 0..SAMPLE {
            let (s, d) = (srcs[pick(srcs.len())], dsts[pick(dsts.len())]);
            let own = net
                .pid_of(s)
                .zip(net.pid_of(d))
                .and_then(|(sp, dp)| cm.cost(sp, dp));
            let theirs = rows.get(&s).and_then(|r| r.get(&d)).copied();
            sample.push((format!("{s} -> {d}"), own, theirs));
        }
    }
    agree(asked.cost_mode, req.constraints.is_some(), &sample)?;
    Ok(answer)
}

/// Checks a head's answer `body` of type `content_type` to the filtered cost map query `req`.
pub fn filtered_cost_map(
    base: &InformationBase,
    req: &ReqFilteredCostMap,
    content_type: Option<&str>,
    body: &[u8],
    limits: &QueryLimits,
    pick: &mut impl FnMut(usize) -> usize,
) -> Result<InfoResourceCostMap, Refused> {
    admit(content_type, media::COST_MAP, body, limits)?;
    let answer: InfoResourceCostMap =
        serde_json::from_slice(body).map_err(|e| Refused::Shape(e.to_string()))?;
    let asked = req.cost_type.clone();
    if answer.meta.cost_type != asked {
        return Err(Refused::CostType(format!("{:?}", answer.meta.cost_type)));
    }
    let net = base.network_map();
    let all: Vec<String> = net.pids().iter().map(|p| p.to_string()).collect();
    let side = |names: Option<&Vec<String>>| -> Vec<String> {
        match names.filter(|n| !n.is_empty()) {
            Some(n) => n.clone(),
            None => all.clone(),
        }
    };
    let srcs = side(req.pids.as_ref().map(|p| &p.srcs));
    let dsts = side(req.pids.as_ref().map(|p| &p.dsts));
    let (src_set, dst_set): (HashSet<&str>, HashSet<&str>) = (
        srcs.iter().map(String::as_str).collect(),
        dsts.iter().map(String::as_str).collect(),
    );
    for (s, row) in &answer.cost_map {
        if !src_set.contains(s.as_str()) {
            return Err(Refused::NotAsked(s.clone()));
        }
        if let Some(d) = row.keys().find(|d| !dst_set.contains(d.as_str())) {
            return Err(Refused::NotAsked(d.clone()));
        }
    }
    let Some(cm) = base.cost_map(&asked.cost_metric) else {
        return Ok(answer);
    };
    let mut sample: Vec<Sampled> = Vec::with_capacity(SAMPLE);
    if !srcs.is_empty() && !dsts.is_empty() {
        for _ in 0..SAMPLE {
            let (s, d) = (&srcs[pick(srcs.len())], &dsts[pick(dsts.len())]);
            let own = net
                .pid_index(s)
                .zip(net.pid_index(d))
                .and_then(|(sp, dp)| cm.cost(sp, dp));
            let theirs = answer.cost_map.get(s).and_then(|r| r.get(d)).map(|c| c.0);
            sample.push((format!("{s} -> {d}"), own, theirs));
        }
    }
    agree(asked.cost_mode, req.constraints.is_some(), &sample)?;
    Ok(answer)
}

/// Media type and size.
fn admit(
    content_type: Option<&str>,
    want: &str,
    body: &[u8],
    limits: &QueryLimits,
) -> Result<(), Refused> {
    let got = content_type.map(media::essence).unwrap_or_default();
    if got != want {
        return Err(Refused::MediaType(got));
    }
    if body.len() > limits.max_answer_bytes {
        return Err(Refused::TooLarge(limits.max_answer_bytes));
    }
    Ok(())
}

/// Whether the head's costs of the sampled pairs agree with the server's: equal values in
/// numerical mode; in ordinal mode, ranks in the order of the server's costs (ties tied).
/// Without constraints a pair the server costs must be there; a pair it does not cost must
/// not be.
fn agree(mode: CostMode, constrained: bool, sample: &[Sampled]) -> Result<(), Refused> {
    for (name, own, theirs) in sample {
        match (own, theirs) {
            (None, Some(_)) => return Err(Refused::Cost(name.clone())),
            (Some(_), None) if !constrained => return Err(Refused::Missing(name.clone())),
            (Some(o), Some(t)) if mode == CostMode::Numerical && o != t => {
                return Err(Refused::Cost(name.clone()))
            }
            _ => {}
        }
    }
    if mode == CostMode::Ordinal {
        let present: Vec<(&String, f64, f64)> = sample
            .iter()
            .filter_map(|(n, o, t)| Some((n, (*o)?, (*t)?)))
            .collect();
        for (i, a) in present.iter().enumerate() {
            for b in &present[i + 1..] {
                let consistent = match a.1.total_cmp(&b.1) {
                    std::cmp::Ordering::Less => a.2 < b.2,
                    std::cmp::Ordering::Greater => a.2 > b.2,
                    std::cmp::Ordering::Equal => a.2 == b.2,
                };
                if !consistent {
                    return Err(Refused::Cost(format!("{} against {}", a.0, b.0)));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ReqEndpointCostMap;

    fn base() -> InformationBase {
        use crate::{CostMap, NetworkMap};
        let net =
            NetworkMap::from_json("loopback-network-map", testdata::loopback::NETWORK_MAP).unwrap();
        let cm = CostMap::from_json("routingcost", testdata::loopback::ROUTINGCOST, &net).unwrap();
        InformationBase::new(net, vec![cm]).unwrap()
    }

    fn ecs(mode: &str, srcs: &[&str], dsts: &[&str]) -> ReqEndpointCostMap {
        let list = |v: &[&str]| serde_json::to_string(v).unwrap();
        let body = format!(
            r#"{{"cost-type":{{"cost-mode":"{mode}","cost-metric":"routingcost"}},"endpoints":{{"srcs":{},"dsts":{}}}}}"#,
            list(srcs),
            list(dsts)
        );
        ReqEndpointCostMap::parse(body.as_bytes()).unwrap()
    }

    fn counter() -> impl FnMut(usize) -> usize {
        let mut i = 0usize;
        move |n| {
            i = i.wrapping_mul(31).wrapping_add(7);
            i % n
        }
    }

    fn check(req: &ReqEndpointCostMap, ctype: &str, body: &[u8]) -> Result<(), Refused> {
        let client = "127.1.0.9".parse().unwrap();
        endpoint_cost(
            &base(),
            req,
            client,
            Some(ctype),
            body,
            &QueryLimits::DEFAULT,
            &mut counter(),
        )
        .map(|_| ())
    }

    const ECS: &str = "application/alto-endpointcost+json";

    #[test]
    fn the_servers_own_answer_passes_in_both_modes() {
        let b = base();
        for mode in ["numerical", "ordinal"] {
            let req = ecs(
                mode,
                &["ipv4:127.1.0.9"],
                &["ipv4:127.1.0.2", "ipv4:127.2.0.2", "ipv4:127.3.0.2"],
            );
            let own = b.endpoint_cost(&req, None, &QueryLimits::DEFAULT).unwrap();
            let body = serde_json::to_vec(&own).unwrap();
            assert_eq!(check(&req, ECS, &body), Ok(()), "{mode}");
            assert_eq!(
                check(
                    &req,
                    "application/alto-endpointcost+json; charset=utf-8",
                    &body
                ),
                Ok(())
            );
        }
    }

    #[test]
    fn junk_wrong_types_strangers_and_lies_are_refused() {
        let req = ecs(
            "numerical",
            &["ipv4:127.1.0.9"],
            &["ipv4:127.1.0.2", "ipv4:127.3.0.2"],
        );
        let ok = |row: &str| {
            format!(
                r#"{{"meta":{{"cost-type":{{"cost-mode":"numerical","cost-metric":"routingcost"}}}},"endpoint-cost-map":{{"ipv4:127.1.0.9":{{{row}}}}}}}"#
            )
        };
        let right = ok(r#""ipv4:127.1.0.2":1,"ipv4:127.3.0.2":40"#);
        assert_eq!(check(&req, ECS, right.as_bytes()), Ok(()));
        assert!(matches!(
            check(&req, "text/html", right.as_bytes()),
            Err(Refused::MediaType(_))
        ));
        assert!(matches!(
            check(&req, ECS, b"<html>junk</html>"),
            Err(Refused::Shape(_))
        ));
        assert!(matches!(check(&req, ECS, b"{}"), Err(Refused::Shape(_))));
        let lie = ok(r#""ipv4:127.1.0.2":40,"ipv4:127.3.0.2":1"#);
        assert!(matches!(
            check(&req, ECS, lie.as_bytes()),
            Err(Refused::Cost(_))
        ));
        let stranger = ok(r#""ipv4:127.1.0.2":1,"ipv4:127.3.0.2":40,"ipv4:127.4.0.66":1"#);
        assert_eq!(
            check(&req, ECS, stranger.as_bytes()),
            Err(Refused::NotAsked("ipv4:127.4.0.66".into()))
        );
        let empty = ok("");
        assert!(matches!(
            check(&req, ECS, empty.as_bytes()),
            Err(Refused::Missing(_))
        ));
        let ordinal = right.replace("numerical", "ordinal");
        assert!(matches!(
            check(&req, ECS, ordinal.as_bytes()),
            Err(Refused::CostType(_))
        ));
        let small = QueryLimits {
            max_pairs: 10,
            max_answer_bytes: 20,
        };
        let client = "127.1.0.9".parse().unwrap();
        let big = endpoint_cost(
            &base(),
            &req,
            client,
            Some(ECS),
            right.as_bytes(),
            &small,
            &mut counter(),
        );
        assert_eq!(big.unwrap_err(), Refused::TooLarge(20));
    }

    #[test]
    fn ordinal_ranks_must_follow_the_maps_order() {
        let req = ecs(
            "ordinal",
            &["ipv4:127.1.0.9"],
            &["ipv4:127.1.0.2", "ipv4:127.2.0.2", "ipv4:127.3.0.2"],
        );
        let ranks = |a: u32, b: u32, c: u32| {
            format!(
                r#"{{"meta":{{"cost-type":{{"cost-mode":"ordinal","cost-metric":"routingcost"}}}},"endpoint-cost-map":{{"ipv4:127.1.0.9":{{"ipv4:127.1.0.2":{a},"ipv4:127.2.0.2":{b},"ipv4:127.3.0.2":{c}}}}}}}"#
            )
        };
        assert_eq!(check(&req, ECS, ranks(1, 2, 3).as_bytes()), Ok(()));
        // Ranks need not be dense, only ordered.
        assert_eq!(check(&req, ECS, ranks(1, 5, 9).as_bytes()), Ok(()));
        // The far PID ranked first: an eclipse attempt.
        assert!(matches!(
            check(&req, ECS, ranks(3, 2, 1).as_bytes()),
            Err(Refused::Cost(_))
        ));
    }

    #[test]
    fn a_filtered_cost_map_names_only_asked_pids_and_true_costs() {
        let b = base();
        let req = ReqFilteredCostMap::parse(
            br#"{"cost-type":{"cost-mode":"numerical","cost-metric":"routingcost"},"pids":{"srcs":["PID1"],"dsts":[]}}"#,
        )
        .unwrap();
        let own = b.filtered_cost_map(&req, &QueryLimits::DEFAULT).unwrap();
        let body = serde_json::to_vec(&own).unwrap();
        let run = |body: &[u8]| {
            filtered_cost_map(
                &b,
                &req,
                Some(media::COST_MAP),
                body,
                &QueryLimits::DEFAULT,
                &mut counter(),
            )
            .map(|_| ())
        };
        assert_eq!(run(&body), Ok(()));
        let lie = String::from_utf8(body.clone())
            .unwrap()
            .replace("\"PID3\":40", "\"PID3\":1");
        assert!(
            matches!(run(lie.as_bytes()), Err(Refused::Cost(_))),
            "{lie}"
        );
        let stranger = String::from_utf8(body)
            .unwrap()
            .replace("\"PID1\":{", "\"PID2\":{");
        assert!(matches!(
            run(stranger.as_bytes()),
            Err(Refused::NotAsked(_))
        ));
    }
}
