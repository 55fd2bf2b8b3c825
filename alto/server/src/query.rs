//! The POST services of the information base (RFC 7285 §11.3.1 filtered network map,
//! §11.3.2 filtered cost map, §11.4.1 endpoint properties, §11.5.1 endpoint cost): each
//! request decoded once into an [`AltoQuery`], which forwarding reads and the local answer
//! uses.

use alto_model::messages::{
    ReqEndpointCostMap, ReqEndpointProp, ReqFilteredCostMap, ReqFilteredNetworkMap,
};
pub use alto_model::AnswerError;
use alto_model::{AltoError, InformationBase, QueryLimits, ResourceKind};
use std::net::IpAddr;

/// A decoded POST query of the base.
#[derive(Clone, Debug, PartialEq)]
pub enum AltoQuery {
    /// A filtered network map request (§11.3.1.3).
    FilteredNetworkMap(ReqFilteredNetworkMap),
    /// A filtered cost map request (§11.3.2.3).
    FilteredCostMap(ReqFilteredCostMap),
    /// An endpoint property request (§11.4.1.3).
    EndpointProp(ReqEndpointProp),
    /// An endpoint cost request (§11.5.1.3).
    EndpointCost(ReqEndpointCostMap),
}

impl AltoQuery {
    /// Decodes the body of a request to a resource of `kind`. `None`: `kind` is no query
    /// service of the base.
    pub fn parse(kind: ResourceKind, body: &[u8]) -> Option<Result<Self, AltoError>> {
        Some(match kind {
            ResourceKind::FilteredNetworkMap => {
                ReqFilteredNetworkMap::parse(body).map(AltoQuery::FilteredNetworkMap)
            }
            ResourceKind::FilteredCostMap => {
                ReqFilteredCostMap::parse(body).map(AltoQuery::FilteredCostMap)
            }
            ResourceKind::EndpointProp => ReqEndpointProp::parse(body).map(AltoQuery::EndpointProp),
            ResourceKind::EndpointCost => {
                ReqEndpointCostMap::parse(body).map(AltoQuery::EndpointCost)
            }
            _ => return None,
        })
    }

    /// Answers the query from `base` with the response body, within `limits`. `client`
    /// stands in for the sources an endpoint cost request leaves out (§11.5.1.3).
    pub fn answer(
        &self,
        base: &InformationBase,
        client: IpAddr,
        limits: &QueryLimits,
    ) -> Result<Vec<u8>, AnswerError> {
        match self {
            AltoQuery::FilteredNetworkMap(r) => {
                limits.encode("pids", &base.filtered_network_map(r))
            }
            AltoQuery::FilteredCostMap(r) => {
                limits.encode("pids", &base.filtered_cost_map(r, limits)?)
            }
            AltoQuery::EndpointProp(r) => limits.encode("endpoints", &base.endpoint_properties(r)?),
            AltoQuery::EndpointCost(r) => {
                limits.encode("endpoints", &base.endpoint_cost(r, Some(client), limits)?)
            }
        }
    }
}
