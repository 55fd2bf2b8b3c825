//! The Information Resource Directory, RFC 7285 §9: resource entries with `uri`,
//! `media-type`, `accepts`, `capabilities` (§9.1.3) and `uses` (§9.1.5), and the named cost
//! types of `meta` (§9.2.2).

use crate::cost::CostType;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `meta` of a directory (§9.2.2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IrdMeta {
    /// Names for the cost types used by the entries.
    #[serde(
        rename = "cost-types",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub cost_types: BTreeMap<String, CostType>,
    /// The network map simple clients use (required in a root directory).
    #[serde(
        rename = "default-alto-network-map",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_alto_network_map: Option<String>,
}

/// Capabilities of a resource (§9.1.3, §11.2.3.4, §11.3.2.4, §11.4.1.4). Extension
/// capabilities are kept in `other`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Cost type names (defined in the directory's `meta`).
    #[serde(
        rename = "cost-type-names",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cost_type_names: Option<Vec<String>>,
    /// Whether requests may carry constraints.
    #[serde(
        rename = "cost-constraints",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cost_constraints: Option<bool>,
    /// Endpoint property types served.
    #[serde(
        rename = "prop-types",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prop_types: Option<Vec<String>>,
    /// Capabilities defined by extensions.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One resource of the directory (§9.2.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IrdResourceEntry {
    /// Where the resource is; may be relative to the directory's URI (RFC 3986 §5).
    pub uri: String,
    /// Media type of the response.
    #[serde(rename = "media-type")]
    pub media_type: String,
    /// Media type of the POST body; absent for GET resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts: Option<String>,
    /// Capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Resources this one depends on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<Vec<String>>,
}

/// The directory (§9.2.2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InfoResourceDirectory {
    /// Meta information.
    pub meta: IrdMeta,
    /// Resources by resource ID.
    pub resources: BTreeMap<String, IrdResourceEntry>,
}

impl InfoResourceDirectory {
    /// The numerical cost type offered for filtered cost maps (§11.3.2) that a client ranks
    /// PIDs with: `routingcost` if offered, else the first numerical one.
    pub fn ranking_cost_type(&self) -> Option<CostType> {
        let offered: Vec<CostType> = self
            .resources
            .values()
            .filter(|e| {
                e.media_type == crate::media::COST_MAP
                    && e.accepts.as_deref() == Some(crate::media::COST_MAP_FILTER)
            })
            .flat_map(|e| self.cost_types_of(e))
            .filter(|t| t.cost_mode == crate::CostMode::Numerical)
            .collect();
        offered
            .iter()
            .find(|t| t.cost_metric == crate::cost::ROUTINGCOST)
            .or(offered.first())
            .cloned()
    }

    /// The cost types an entry supports, resolved through `meta.cost-types`.
    pub fn cost_types_of(&self, entry: &IrdResourceEntry) -> Vec<CostType> {
        entry
            .capabilities
            .as_ref()
            .and_then(|c| c.cost_type_names.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|n| self.meta.cost_types.get(n).cloned())
            .collect()
    }

    /// The first entry with the media type and accepts (`None` for GET resources).
    pub fn find(
        &self,
        media_type: &str,
        accepts: Option<&str>,
    ) -> Option<(&String, &IrdResourceEntry)> {
        self.resources
            .iter()
            .find(|(_, e)| e.media_type == media_type && e.accepts.as_deref() == accepts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_prefer_routingcost_among_the_numerical_cost_types_offered() {
        let ird = |types: &str| -> InfoResourceDirectory {
            serde_json::from_str(&format!(
                r#"{{"meta":{{"cost-types":{{
                    "num-hop":{{"cost-mode":"numerical","cost-metric":"hopcount"}},
                    "num-rc":{{"cost-mode":"numerical","cost-metric":"routingcost"}},
                    "ord-rc":{{"cost-mode":"ordinal","cost-metric":"routingcost"}}}}}},
                  "resources":{{"filtered":{{"uri":"/costmap/filtered",
                    "media-type":"application/alto-costmap+json",
                    "accepts":"application/alto-costmapfilter+json",
                    "capabilities":{{"cost-type-names":{types}}}}}}}}}"#
            ))
            .unwrap()
        };
        let pick = |types| ird(types).ranking_cost_type().map(|t| t.cost_metric);
        assert_eq!(
            pick(r#"["num-hop","num-rc"]"#).as_deref(),
            Some("routingcost")
        );
        assert_eq!(pick(r#"["ord-rc","num-hop"]"#).as_deref(), Some("hopcount"));
        assert_eq!(pick(r#"["ord-rc"]"#), None);
    }
}
