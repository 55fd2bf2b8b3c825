//! The information base a server answers from: one network map and its cost maps, the
//! resources they make (RFC 7285 §9 directory entries) and the services over them: filtered
//! network map (§11.3.1), filtered cost map (§11.3.2), endpoint property `pid` (§11.4.1) and
//! endpoint cost (§11.5.1; in ordinal mode the P2P ranking of §12.3).

use crate::addr::{self, AddressType};
use crate::cost::{self, Cost, CostMode, CostType};
use crate::cost_map::CostMap;
use crate::error::AltoError;
use crate::ird::{Capabilities, InfoResourceDirectory, IrdMeta, IrdResourceEntry};
use crate::limits::QueryLimits;
use crate::media;
use crate::messages::*;
use crate::network_map::{NetworkMap, PidIdx};
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

/// What a resource of the base serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// The directory itself (§9).
    Directory,
    /// The full network map (§11.2.1).
    NetworkMap,
    /// The filtered network map (§11.3.1).
    FilteredNetworkMap,
    /// A full cost map: the base's cost map number `metric`, in `mode` (§11.2.3).
    CostMap {
        /// Index into [`InformationBase::cost_maps`].
        metric: usize,
        /// The mode of the values.
        mode: CostMode,
    },
    /// The filtered cost map (§11.3.2).
    FilteredCostMap,
    /// The endpoint property service (§11.4.1).
    EndpointProp,
    /// The endpoint cost service (§11.5.1).
    EndpointCost,
    /// Joining as a PID Head candidate (this project's extension, `docs/pid-head.md`).
    HeadJoin,
    /// Renewing or resigning a head's lease (extension).
    HeadLease,
    /// The head directory, an RFC 9240 property map (extension).
    HeadDirectory,
}

/// A resource of the base: its ID, path on the server, and media types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// Resource ID (§10.2).
    pub id: String,
    /// Path, relative to the server root.
    pub path: String,
    /// What it serves.
    pub kind: ResourceKind,
    /// Media type of the response.
    pub media_type: &'static str,
    /// Media type of the POST body, `None` for GET resources.
    pub accepts: Option<&'static str>,
}

/// Resource ID of the directory.
pub const DIRECTORY_ID: &str = "directory";

/// Why a network map and cost maps cannot make an information base (RFC 7285 §6.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BaseError {
    /// A cost map's dependent vtag is not the network map's.
    #[error("cost map `{metric}` was built for another network map")]
    ForeignCostMap {
        /// The cost map's metric.
        metric: String,
    },
    /// Two cost maps share a metric: one cost map per cost type and network map (§6.1).
    #[error("two cost maps for metric `{metric}`")]
    DuplicateMetric {
        /// The metric named twice.
        metric: String,
    },
    /// No `routingcost` map, which every ALTO server must offer (§6.1.1.1).
    #[error("a `routingcost` cost map is required (RFC 7285 §6.1.1.1)")]
    NoRoutingCost,
}

/// One network map and the cost maps over it.
#[derive(Clone, Debug)]
pub struct InformationBase {
    network_map: NetworkMap,
    cost_maps: Vec<CostMap>,
}

fn mode_short(mode: CostMode) -> &'static str {
    match mode {
        CostMode::Numerical => "num",
        CostMode::Ordinal => "ord",
    }
}

fn cost_type_name(ct: &CostType) -> String {
    format!("{}-{}", mode_short(ct.cost_mode), ct.cost_metric)
}

impl InformationBase {
    /// A base over `network_map`. Cost maps must be for that network map, one per metric
    /// (RFC 7285 §6.1: one cost map per cost type and network map), and `routingcost` must
    /// be among them (§6.1.1.1).
    pub fn new(network_map: NetworkMap, cost_maps: Vec<CostMap>) -> Result<Self, BaseError> {
        for (i, c) in cost_maps.iter().enumerate() {
            if c.network_map_vtag() != &network_map.vtag() {
                return Err(BaseError::ForeignCostMap {
                    metric: c.metric().to_owned(),
                });
            }
            if cost_maps[..i].iter().any(|o| o.metric() == c.metric()) {
                return Err(BaseError::DuplicateMetric {
                    metric: c.metric().to_owned(),
                });
            }
        }
        if !cost_maps.iter().any(|c| c.metric() == cost::ROUTINGCOST) {
            return Err(BaseError::NoRoutingCost);
        }
        Ok(InformationBase {
            network_map,
            cost_maps,
        })
    }

    /// The network map.
    pub fn network_map(&self) -> &NetworkMap {
        &self.network_map
    }

    /// The cost maps, one per metric.
    pub fn cost_maps(&self) -> &[CostMap] {
        &self.cost_maps
    }

    /// The cost map of a metric.
    pub fn cost_map(&self, metric: &str) -> Option<&CostMap> {
        self.cost_maps.iter().find(|c| c.metric() == metric)
    }

    /// Every cost type served: each metric in both modes.
    pub fn cost_types(&self) -> Vec<CostType> {
        self.cost_maps
            .iter()
            .flat_map(|c| {
                [
                    CostType::new(c.metric(), CostMode::Numerical),
                    CostType::new(c.metric(), CostMode::Ordinal),
                ]
            })
            .collect()
    }

    /// The resources, the directory first. Paths follow the examples of RFC 7285.
    pub fn resources(&self) -> Vec<Resource> {
        let net = self.network_map.resource_id();
        let mut r = vec![
            Resource {
                id: DIRECTORY_ID.into(),
                path: "/directory".into(),
                kind: ResourceKind::Directory,
                media_type: media::DIRECTORY,
                accepts: None,
            },
            Resource {
                id: net.into(),
                path: "/networkmap".into(),
                kind: ResourceKind::NetworkMap,
                media_type: media::NETWORK_MAP,
                accepts: None,
            },
            Resource {
                id: "filtered-network-map".into(),
                path: "/networkmap/filtered".into(),
                kind: ResourceKind::FilteredNetworkMap,
                media_type: media::NETWORK_MAP,
                accepts: Some(media::NETWORK_MAP_FILTER),
            },
        ];
        for (metric, c) in self.cost_maps.iter().enumerate() {
            for mode in [CostMode::Numerical, CostMode::Ordinal] {
                let short = mode_short(mode);
                r.push(Resource {
                    id: format!("costmap-{short}-{}", c.metric()),
                    path: format!("/costmap/{short}/{}", c.metric()),
                    kind: ResourceKind::CostMap { metric, mode },
                    media_type: media::COST_MAP,
                    accepts: None,
                });
            }
        }
        r.extend([
            Resource {
                id: "filtered-cost-map".into(),
                path: "/costmap/filtered".into(),
                kind: ResourceKind::FilteredCostMap,
                media_type: media::COST_MAP,
                accepts: Some(media::COST_MAP_FILTER),
            },
            Resource {
                id: "endpoint-property".into(),
                path: "/endpointprop/lookup".into(),
                kind: ResourceKind::EndpointProp,
                media_type: media::ENDPOINT_PROP,
                accepts: Some(media::ENDPOINT_PROP_PARAMS),
            },
            Resource {
                id: "endpoint-cost".into(),
                path: "/endpointcost/lookup".into(),
                kind: ResourceKind::EndpointCost,
                media_type: media::ENDPOINT_COST,
                accepts: Some(media::ENDPOINT_COST_PARAMS),
            },
        ]);
        r
    }

    /// The property type of the `pid` endpoint property (§10.8.1), e.g. `my-map.pid`.
    pub fn pid_property(&self) -> String {
        format!("{}.pid", self.network_map.resource_id())
    }

    /// The directory of the base (§9.2) with URIs relative to the server root.
    pub fn directory(&self) -> InfoResourceDirectory {
        let net = self.network_map.resource_id().to_owned();
        let all_names: Vec<String> = self.cost_types().iter().map(cost_type_name).collect();
        let cost_types = self
            .cost_types()
            .into_iter()
            .map(|ct| (cost_type_name(&ct), ct))
            .collect();
        let mut resources = BTreeMap::new();
        for r in self.resources() {
            let (capabilities, uses) = match r.kind {
                ResourceKind::Directory
                | ResourceKind::HeadJoin
                | ResourceKind::HeadLease
                | ResourceKind::HeadDirectory => continue,
                ResourceKind::NetworkMap => (None, None),
                ResourceKind::FilteredNetworkMap => (None, Some(vec![net.clone()])),
                ResourceKind::CostMap { metric, mode } => {
                    let ct = CostType::new(self.cost_maps[metric].metric(), mode);
                    (
                        Some(Capabilities {
                            cost_type_names: Some(vec![cost_type_name(&ct)]),
                            ..Default::default()
                        }),
                        Some(vec![net.clone()]),
                    )
                }
                ResourceKind::FilteredCostMap => (
                    Some(Capabilities {
                        cost_type_names: Some(all_names.clone()),
                        cost_constraints: Some(true),
                        ..Default::default()
                    }),
                    Some(vec![net.clone()]),
                ),
                ResourceKind::EndpointProp => (
                    Some(Capabilities {
                        prop_types: Some(vec![self.pid_property()]),
                        ..Default::default()
                    }),
                    None,
                ),
                ResourceKind::EndpointCost => (
                    Some(Capabilities {
                        cost_type_names: Some(all_names.clone()),
                        cost_constraints: Some(true),
                        ..Default::default()
                    }),
                    None,
                ),
            };
            resources.insert(
                r.id,
                IrdResourceEntry {
                    uri: r.path,
                    media_type: r.media_type.into(),
                    accepts: r.accepts.map(Into::into),
                    capabilities,
                    uses,
                },
            );
        }
        InfoResourceDirectory {
            meta: IrdMeta {
                cost_types,
                default_alto_network_map: Some(net),
            },
            resources,
        }
    }

    /// The full network map (§11.2.1).
    pub fn full_network_map(&self) -> InfoResourceNetworkMap {
        InfoResourceNetworkMap {
            meta: VtagMeta {
                vtag: self.network_map.vtag(),
            },
            network_map: self.network_map.data(None, None),
        }
    }

    /// The filtered network map (§11.3.1.6): unknown PIDs and address types are ignored.
    pub fn filtered_network_map(&self, req: &ReqFilteredNetworkMap) -> InfoResourceNetworkMap {
        let pids = self.pid_set(&req.pids);
        let types: Option<Vec<AddressType>> = req
            .address_types
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| t.iter().filter_map(|s| AddressType::parse(s)).collect());
        InfoResourceNetworkMap {
            meta: VtagMeta {
                vtag: self.network_map.vtag(),
            },
            network_map: self.network_map.data(Some(&pids), types.as_deref()),
        }
    }

    /// PIDs named in a request, each once; empty means all, unknown names are ignored.
    fn pid_set(&self, names: &[String]) -> Vec<PidIdx> {
        if names.is_empty() {
            (0..self.network_map.pids().len() as PidIdx).collect()
        } else {
            let mut pids: Vec<PidIdx> = names
                .iter()
                .filter_map(|n| self.network_map.pid_index(n))
                .collect();
            pids.sort_unstable();
            pids.dedup();
            pids
        }
    }

    fn cost_map_for(&self, ct: &CostType) -> Result<&CostMap, AltoError> {
        self.cost_map(&ct.cost_metric).ok_or_else(|| {
            AltoError::invalid_value("cost-type/cost-metric", ct.cost_metric.clone())
        })
    }

    /// The filtered cost map (§11.3.2.6). Ordinal costs rank the returned pairs among
    /// themselves (§6.2); constraints apply to the values returned. More PID pairs than
    /// `limits` admits are refused before any is computed.
    pub fn filtered_cost_map(
        &self,
        req: &ReqFilteredCostMap,
        limits: &QueryLimits,
    ) -> Result<InfoResourceCostMap, AltoError> {
        let cm = self.cost_map_for(&req.cost_type)?;
        let (srcs, dsts) = match &req.pids {
            Some(f) => (self.pid_set(&f.srcs), self.pid_set(&f.dsts)),
            None => (self.pid_set(&[]), self.pid_set(&[])),
        };
        limits.admit_pairs("pids", srcs.len(), dsts.len())?;
        let mut pairs: Vec<(PidIdx, PidIdx)> = Vec::new();
        let mut costs: Vec<f64> = Vec::new();
        for &s in &srcs {
            for &d in &dsts {
                if let Some(c) = cm.cost(s, d) {
                    pairs.push((s, d));
                    costs.push(c);
                }
            }
        }
        self.finish_costs(req.cost_type.cost_mode, &req.constraints, &mut costs);
        let mut data = CostMapData::new();
        for (&(s, d), &c) in pairs.iter().zip(&costs) {
            if c.is_nan() {
                continue;
            }
            let net = &self.network_map;
            data.entry(net.pid_name(s).to_owned())
                .or_default()
                .insert(net.pid_name(d).to_owned(), Cost(c));
        }
        Ok(InfoResourceCostMap {
            meta: cm.meta(req.cost_type.cost_mode),
            cost_map: data,
        })
    }

    /// Ranks costs for the ordinal mode, then marks those failing a constraint as NaN.
    fn finish_costs(&self, mode: CostMode, constraints: &Option<Vec<String>>, costs: &mut [f64]) {
        if mode == CostMode::Ordinal {
            cost::rank_in_place(costs);
        }
        let constraints = constraints_of(constraints);
        if !constraints.is_empty() {
            for c in costs.iter_mut() {
                if !constraints.iter().all(|k| k.admits(*c)) {
                    *c = f64::NAN;
                }
            }
        }
    }

    /// The endpoint property service (§11.4.1.6); the `pid` property is the only one.
    pub fn endpoint_properties(
        &self,
        req: &ReqEndpointProp,
    ) -> Result<InfoResourceEndpointProperties, AltoError> {
        let pid_prop = self.pid_property();
        if let Some(bad) = req.properties.iter().find(|p| **p != pid_prop) {
            return Err(AltoError::invalid_value("properties", bad.clone()));
        }
        let mut data = EndpointPropertyMapData::new();
        for (text, ip) in parse_endpoints(&req.endpoints, "endpoints")? {
            let mut props = BTreeMap::new();
            if let Some(p) = self.network_map.pid_of(ip) {
                props.insert(pid_prop.clone(), self.network_map.pid_name(p).to_owned());
            }
            data.insert(text, props);
        }
        Ok(InfoResourceEndpointProperties {
            meta: DependentVtagsMeta {
                dependent_vtags: vec![self.network_map.vtag()],
            },
            endpoint_properties: data,
        })
    }

    /// The endpoint cost service (§11.5.1.6): PID-to-PID costs between the endpoints'
    /// PIDs. A missing or empty source or destination list stands for `client`, the
    /// address the request came from. In ordinal mode the costs are ranks over all pairs of
    /// the answer: with one source this is the peer ranking of §12.3. More endpoint pairs
    /// than `limits` admits are refused before any is computed.
    pub fn endpoint_cost(
        &self,
        req: &ReqEndpointCostMap,
        client: Option<IpAddr>,
        limits: &QueryLimits,
    ) -> Result<InfoResourceEndpointCostMap, AltoError> {
        let cm = self.cost_map_for(&req.cost_type)?;
        let side =
            |list: &Option<Vec<String>>, field: &str| -> Result<Vec<(String, IpAddr)>, AltoError> {
                match list.as_ref().filter(|l| !l.is_empty()) {
                    Some(l) => parse_endpoints(l, field),
                    None => client
                        .map(|ip| vec![(addr::typed_addr(ip), ip)])
                        .ok_or_else(|| AltoError::missing_field(field)),
                }
            };
        let srcs = side(&req.endpoints.srcs, "endpoints/srcs")?;
        let dsts = side(&req.endpoints.dsts, "endpoints/dsts")?;
        limits.admit_pairs("endpoints", srcs.len(), dsts.len())?;
        let net = &self.network_map;
        let dst_pids: Vec<Option<PidIdx>> = dsts.iter().map(|(_, ip)| net.pid_of(*ip)).collect();
        let mut pairs: Vec<(usize, usize)> = Vec::with_capacity(srcs.len() * dsts.len());
        let mut costs: Vec<f64> = Vec::with_capacity(srcs.len() * dsts.len());
        for (i, (_, sip)) in srcs.iter().enumerate() {
            let Some(sp) = net.pid_of(*sip) else { continue };
            for (j, dp) in dst_pids.iter().enumerate() {
                if let Some(c) = dp.and_then(|dp| cm.cost(sp, dp)) {
                    pairs.push((i, j));
                    costs.push(c);
                }
            }
        }
        self.finish_costs(req.cost_type.cost_mode, &req.constraints, &mut costs);
        let mut data = EndpointCostMapData::new();
        for (text, _) in &srcs {
            data.insert(text.clone(), BTreeMap::new());
        }
        for (&(i, j), &c) in pairs.iter().zip(&costs) {
            if !c.is_nan() {
                data.get_mut(&srcs[i].0)
                    .expect("inserted above")
                    .insert(dsts[j].0.clone(), Cost(c));
            }
        }
        Ok(InfoResourceEndpointCostMap {
            meta: CostTypeMeta {
                cost_type: CostType::new(cm.metric(), req.cost_type.cost_mode),
            },
            endpoint_cost_map: data,
        })
    }
}

/// Typed endpoint addresses of a request, each with the text the client used; an address
/// given twice (in any spelling) counts once (§11.4.1.3, §11.5.1.3).
fn parse_endpoints(list: &[String], field: &str) -> Result<Vec<(String, IpAddr)>, AltoError> {
    let mut out: Vec<(String, IpAddr)> = Vec::with_capacity(list.len());
    let mut seen = HashSet::with_capacity(list.len());
    for s in list {
        let ip =
            addr::parse_typed_addr(s).ok_or_else(|| AltoError::invalid_value(field, s.clone()))?;
        if seen.insert(ip) {
            out.push((s.clone(), ip));
        }
    }
    Ok(out)
}
