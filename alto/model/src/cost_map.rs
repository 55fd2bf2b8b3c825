//! The cost map (RFC 7285 §6, §11.2.3) compiled for serving: numerical costs between the PIDs
//! of one network map, for one cost metric; the ordinal mode (§6.1.2.2) is derived from them.

use crate::cost::{Cost, CostMode, CostType};
use crate::messages::{CostMapData, CostMapMeta, InfoResourceCostMap, VersionTag};
use crate::network_map::{hex, MapError, NetworkMap, PidIdx};
use crate::{cost, ident};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

#[derive(Deserialize)]
struct CostMapFile<'a> {
    #[serde(default)]
    meta: Option<FileMeta>,
    #[serde(rename = "cost-map", borrow)]
    cost_map: HashMap<Cow<'a, str>, HashMap<Cow<'a, str>, f64>>,
}

#[derive(Deserialize)]
struct FileMeta {
    #[serde(rename = "cost-type")]
    cost_type: Option<CostType>,
}

/// Numerical costs of one metric between the PIDs of a network map.
#[derive(Clone, Debug)]
pub struct CostMap {
    metric: String,
    network_map: VersionTag,
    tag: String,
    /// Per source PID: (destination PID, cost), sorted by destination.
    rows: Vec<Vec<(PidIdx, f64)>>,
    /// Every distinct cost, sorted: the ordinal rank of a cost is its position + 1.
    distinct: Vec<f64>,
    pairs: usize,
}

impl CostMap {
    /// Reads a cost map file (the §11.2.3.6 response format) for `metric` over `net`. A
    /// `meta.cost-type` in the file, if any, must be numerical and name the same metric.
    /// Every PID must be in the network map; costs are finite and non-negative, and
    /// `hopcount` costs whole numbers.
    pub fn from_json(metric: &str, text: &str, net: &NetworkMap) -> Result<Self, MapError> {
        if !ident::is_cost_metric(metric) {
            return Err(MapError {
                line: 0,
                column: 0,
                message: format!("`{metric}` is not a valid cost metric (RFC 7285 §10.6)"),
            });
        }
        let file: CostMapFile = serde_json::from_str(text).map_err(MapError::json)?;
        if let Some(ct) = file.meta.and_then(|m| m.cost_type) {
            if ct.cost_mode != CostMode::Numerical || ct.cost_metric != metric {
                return Err(MapError::at(
                    text,
                    "cost-type",
                    format!(
                        "the file holds {} {} costs; the config expects numerical {metric}",
                        ct.cost_mode.as_str(),
                        ct.cost_metric
                    ),
                ));
            }
        }
        let pid = |name: &str| {
            net.pid_index(name).ok_or_else(|| {
                MapError::at(
                    text,
                    name,
                    format!("PID `{name}` is not in network map `{}`", net.resource_id()),
                )
            })
        };
        let mut rows: Vec<Vec<(PidIdx, f64)>> = vec![Vec::new(); net.pids().len()];
        for (src, dsts) in &file.cost_map {
            let s = pid(src)?;
            let row = &mut rows[s as usize];
            for (dst, &c) in dsts {
                let d = pid(dst)?;
                if !c.is_finite() || c < 0.0 || (metric == cost::HOPCOUNT && c.fract() != 0.0) {
                    return Err(MapError::at(
                        text,
                        src,
                        format!(
                            "cost {src} -> {dst} is {c}: costs must be finite, non-negative{}",
                            if metric == cost::HOPCOUNT {
                                " whole numbers"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                row.push((d, c));
            }
            row.sort_unstable_by_key(|e| e.0);
        }
        Ok(Self::from_rows(metric, net, rows))
    }

    /// Builds a cost map from rows indexed by source PID (entries in any order).
    pub fn from_rows(metric: &str, net: &NetworkMap, mut rows: Vec<Vec<(PidIdx, f64)>>) -> Self {
        rows.resize(net.pids().len(), Vec::new());
        let mut h = Sha256::new();
        h.update(metric.as_bytes());
        h.update([0]);
        h.update(net.tag().as_bytes());
        let mut distinct = Vec::new();
        let mut pairs = 0;
        for (s, row) in rows.iter_mut().enumerate() {
            row.sort_unstable_by_key(|e| e.0);
            row.dedup_by_key(|e| e.0);
            h.update((s as u32).to_be_bytes());
            for &(d, c) in row.iter() {
                h.update(d.to_be_bytes());
                h.update(c.to_bits().to_be_bytes());
                distinct.push(c);
            }
            pairs += row.len();
        }
        distinct.sort_unstable_by(f64::total_cmp);
        distinct.dedup();
        CostMap {
            metric: metric.to_owned(),
            network_map: net.vtag(),
            tag: hex(&h.finalize()),
            rows,
            distinct,
            pairs,
        }
    }

    /// The cost metric.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// Content tag of the costs and of the network map they use.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The version of the network map the costs are for.
    pub fn network_map_vtag(&self) -> &VersionTag {
        &self.network_map
    }

    /// Number of (source, destination) pairs with a cost.
    pub fn pair_count(&self) -> usize {
        self.pairs
    }

    /// The numerical cost from `src` to `dst`, if defined.
    #[inline]
    pub fn cost(&self, src: PidIdx, dst: PidIdx) -> Option<f64> {
        let row = self.rows.get(src as usize)?;
        row.binary_search_by_key(&dst, |e| e.0)
            .ok()
            .map(|i| row[i].1)
    }

    /// The defined costs from `src`, sorted by destination.
    pub fn row(&self, src: PidIdx) -> &[(PidIdx, f64)] {
        self.rows.get(src as usize).map_or(&[], Vec::as_slice)
    }

    fn full_rank(&self, c: f64) -> f64 {
        (self.distinct.partition_point(|d| d.total_cmp(&c).is_lt()) + 1) as f64
    }

    /// The whole map as a response (§11.2.3.6); ordinal costs rank all values of the map.
    pub fn full(&self, net: &NetworkMap, mode: CostMode) -> InfoResourceCostMap {
        let mut data = CostMapData::new();
        for (s, row) in self.rows.iter().enumerate() {
            if row.is_empty() {
                continue;
            }
            let dsts: BTreeMap<String, Cost> = row
                .iter()
                .map(|&(d, c)| {
                    let v = if mode == CostMode::Ordinal {
                        self.full_rank(c)
                    } else {
                        c
                    };
                    (net.pid_name(d).to_owned(), Cost(v))
                })
                .collect();
            data.insert(net.pid_name(s as PidIdx).to_owned(), dsts);
        }
        InfoResourceCostMap {
            meta: self.meta(mode),
            cost_map: data,
        }
    }

    /// The `meta` of a response in `mode`.
    pub fn meta(&self, mode: CostMode) -> CostMapMeta {
        CostMapMeta {
            dependent_vtags: vec![self.network_map.clone()],
            cost_type: CostType::new(&self.metric, mode),
        }
    }

    /// Writes the whole map as response JSON straight from the rows, without building the
    /// intermediate maps of [`CostMap::full`]: the server's path for maps of millions of
    /// pairs. PIDs come out in name order, as in [`CostMap::full`].
    pub fn write_full_json(&self, net: &NetworkMap, mode: CostMode, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"meta\":");
        serde_json::to_writer(&mut *out, &self.meta(mode)).expect("meta serializes");
        out.extend_from_slice(b",\"cost-map\":{");
        let mut first_row = true;
        for (s, row) in self.rows.iter().enumerate() {
            if row.is_empty() {
                continue;
            }
            if !first_row {
                out.push(b',');
            }
            first_row = false;
            write!(out, "\"{}\":{{", net.pid_name(s as PidIdx)).expect("vec write");
            for (k, &(d, c)) in row.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                let v = if mode == CostMode::Ordinal {
                    self.full_rank(c)
                } else {
                    c
                };
                write!(out, "\"{}\":", net.pid_name(d)).expect("vec write");
                serde_json::to_writer(&mut *out, &Cost(v)).expect("cost serializes");
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> NetworkMap {
        NetworkMap::from_json("net", testdata::loopback::NETWORK_MAP).unwrap()
    }

    #[test]
    fn loads_the_loopback_topology() {
        let n = net();
        let c = CostMap::from_json("routingcost", testdata::loopback::ROUTINGCOST, &n).unwrap();
        let p = |s| n.pid_index(s).unwrap();
        assert_eq!(c.cost(p("PID1"), p("PID1")), Some(1.0));
        assert_eq!(c.cost(p("PID1"), p("PID2")), Some(5.0));
        assert_eq!(c.cost(p("PID1"), p("PID4")), Some(40.0));
        assert_eq!(c.pair_count(), 25);
    }

    #[test]
    fn fast_writer_matches_the_serde_encoding() {
        let n = net();
        let c = CostMap::from_json("routingcost", testdata::loopback::ROUTINGCOST, &n).unwrap();
        for mode in [CostMode::Numerical, CostMode::Ordinal] {
            let mut out = Vec::new();
            c.write_full_json(&n, mode, &mut out);
            let fast: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(fast, serde_json::to_value(c.full(&n, mode)).unwrap());
        }
        let ord = c.full(&n, CostMode::Ordinal);
        assert_eq!(ord.cost_map["PID1"]["PID1"], Cost(1.0));
        assert_eq!(ord.cost_map["PID1"]["PID3"], Cost(3.0));
        assert_eq!(ord.cost_map["default"]["PID1"], Cost(4.0));
    }

    #[test]
    fn bad_cost_maps_name_the_line() {
        let n = net();
        let text = testdata::loopback::ROUTINGCOST.replace("\"PID4\":    {", "\"PID9\":    {");
        let e = CostMap::from_json("routingcost", &text, &n).unwrap_err();
        assert!(e.message.contains("PID `PID9`"), "{e}");
        assert_eq!(e.line, 10, "{e}");
        let e = CostMap::from_json("hopcount", testdata::loopback::ROUTINGCOST, &n).unwrap_err();
        assert!(
            e.message.contains("config expects numerical hopcount"),
            "{e}"
        );
        let e = CostMap::from_json(
            "routingcost",
            &testdata::loopback::ROUTINGCOST.replace("\"PID2\": 5,", "\"PID2\": \"5\","),
            &n,
        )
        .unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        let e = CostMap::from_json(
            "routingcost",
            &testdata::loopback::ROUTINGCOST.replace("\"PID2\": 5,", "\"PID2\": -5,"),
            &n,
        )
        .unwrap_err();
        assert!(e.message.contains("non-negative"), "{e}");
    }
}
