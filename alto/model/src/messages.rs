//! Wire types of RFC 7285, named after the spec: the responses of §9.2 and §11 (encoded and
//! decoded with serde; unknown fields are ignored, §8.3.7) and the request bodies of §11.3
//! to §11.5, whose decoders map every defect to the error code of §8.5.2 with the full path
//! of the field.

use crate::cost::{Constraint, Cost, CostMode, CostType};
use crate::error::AltoError;
use crate::ident;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A version tag (§10.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionTag {
    /// The resource the tag belongs to.
    #[serde(rename = "resource-id")]
    pub resource_id: String,
    /// The opaque tag.
    pub tag: String,
}

/// Endpoint address group (§10.4.5): address type → prefixes.
pub type EndpointAddrGroup = BTreeMap<String, Vec<String>>;
/// Network map data (§11.2.1.6): PID → endpoint address group.
pub type NetworkMapData = BTreeMap<String, EndpointAddrGroup>;
/// Cost map data (§11.2.3.6): source PID → destination PID → cost.
pub type CostMapData = BTreeMap<String, BTreeMap<String, Cost>>;
/// Endpoint property data (§11.4.1.6): typed address → property → value.
pub type EndpointPropertyMapData = BTreeMap<String, BTreeMap<String, String>>;
/// Endpoint cost data (§11.5.1.6): source address → destination address → cost.
pub type EndpointCostMapData = BTreeMap<String, BTreeMap<String, Cost>>;

/// `meta` with the resource's own version tag (network maps, §11.2.1.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VtagMeta {
    /// Version of the network map.
    pub vtag: VersionTag,
}

/// A network map or filtered network map (§11.2.1.6, §11.3.1.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoResourceNetworkMap {
    /// Meta information with the vtag.
    pub meta: VtagMeta,
    /// The PIDs and their prefixes.
    #[serde(rename = "network-map")]
    pub network_map: NetworkMapData,
}

/// `meta` of a cost map (§11.2.3.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostMapMeta {
    /// The version of the network map the PIDs come from (one element).
    #[serde(rename = "dependent-vtags")]
    pub dependent_vtags: Vec<VersionTag>,
    /// The cost type of the values.
    #[serde(rename = "cost-type")]
    pub cost_type: CostType,
}

/// A cost map or filtered cost map (§11.2.3.6, §11.3.2.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoResourceCostMap {
    /// Meta information.
    pub meta: CostMapMeta,
    /// The costs.
    #[serde(rename = "cost-map")]
    pub cost_map: CostMapData,
}

/// `meta` with the versions of the maps used (§11.4.1.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DependentVtagsMeta {
    /// The versions of every network map whose `pid` was asked for.
    #[serde(rename = "dependent-vtags")]
    pub dependent_vtags: Vec<VersionTag>,
}

/// An endpoint property response (§11.4.1.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoResourceEndpointProperties {
    /// Meta information.
    pub meta: DependentVtagsMeta,
    /// Properties per endpoint.
    #[serde(rename = "endpoint-properties")]
    pub endpoint_properties: EndpointPropertyMapData,
}

/// `meta` of an endpoint cost response (§11.5.1.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostTypeMeta {
    /// The cost type of the values.
    #[serde(rename = "cost-type")]
    pub cost_type: CostType,
}

/// An endpoint cost response (§11.5.1.6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoResourceEndpointCostMap {
    /// Meta information.
    pub meta: CostTypeMeta,
    /// Costs per source and destination endpoint.
    #[serde(rename = "endpoint-cost-map")]
    pub endpoint_cost_map: EndpointCostMapData,
}

// ---------------------------------------------------------------------------------------
// Requests.

/// Reads a request body as a JSON object; anything else is `E_SYNTAX` with the position.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, AltoError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(AltoError::syntax("the request body must be a JSON object")),
        Err(e) => Err(AltoError::syntax(format!(
            "line {} column {}: {}",
            e.line(),
            e.column(),
            e
        ))),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

pub(crate) fn required<'a>(
    obj: &'a Map<String, Value>,
    parent: &str,
    name: &str,
) -> Result<&'a Value, AltoError> {
    obj.get(name)
        .ok_or_else(|| AltoError::missing_field(join(parent, name)))
}

pub(crate) fn as_object<'a>(
    v: &'a Value,
    field: &str,
) -> Result<&'a Map<String, Value>, AltoError> {
    v.as_object().ok_or_else(|| AltoError::invalid_type(field))
}

pub(crate) fn as_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, AltoError> {
    v.as_str().ok_or_else(|| AltoError::invalid_type(field))
}

/// The value as a string for the `value` member of an error (§8.5.2).
pub(crate) fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An array of strings; an element of another type is an invalid value, not an invalid
/// type (§8.5.2). Entries appearing several times count once, in first-seen order.
pub(crate) fn string_array(v: &Value, field: &str) -> Result<Vec<String>, AltoError> {
    let arr = v.as_array().ok_or_else(|| AltoError::invalid_type(field))?;
    let mut out: Vec<String> = Vec::with_capacity(arr.len());
    for item in arr {
        let s = item
            .as_str()
            .ok_or_else(|| AltoError::invalid_value(field, value_string(item)))?;
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

fn pid_array(v: &Value, field: &str) -> Result<Vec<String>, AltoError> {
    let pids = string_array(v, field)?;
    if let Some(bad) = pids.iter().find(|p| !ident::is_pid_name(p)) {
        return Err(AltoError::invalid_value(field, bad.clone()));
    }
    Ok(pids)
}

fn parse_cost_type(obj: &Map<String, Value>) -> Result<CostType, AltoError> {
    let ct = as_object(required(obj, "", "cost-type")?, "cost-type")?;
    let mode_s = as_str(
        required(ct, "cost-type", "cost-mode")?,
        "cost-type/cost-mode",
    )?;
    let cost_mode = CostMode::parse(mode_s)
        .ok_or_else(|| AltoError::invalid_value("cost-type/cost-mode", mode_s))?;
    let metric = as_str(
        required(ct, "cost-type", "cost-metric")?,
        "cost-type/cost-metric",
    )?;
    if !ident::is_cost_metric(metric) {
        return Err(AltoError::invalid_value("cost-type/cost-metric", metric));
    }
    Ok(CostType {
        cost_mode,
        cost_metric: metric.to_owned(),
        description: None,
    })
}

fn parse_constraints(obj: &Map<String, Value>) -> Result<Option<Vec<String>>, AltoError> {
    let Some(v) = obj.get("constraints") else {
        return Ok(None);
    };
    let list = string_array(v, "constraints")?;
    if let Some(bad) = list.iter().find(|c| Constraint::parse(c).is_none()) {
        return Err(AltoError::invalid_value("constraints", bad.clone()));
    }
    Ok(Some(list))
}

/// The constraints of a request, parsed (they were validated when the request was read).
pub fn constraints_of(list: &Option<Vec<String>>) -> Vec<Constraint> {
    list.iter()
        .flatten()
        .filter_map(|c| Constraint::parse(c))
        .collect()
}

/// Filtered network map request (§11.3.1.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReqFilteredNetworkMap {
    /// PIDs to include; empty means all.
    pub pids: Vec<String>,
    /// Address types to include; absent or empty means all.
    #[serde(
        rename = "address-types",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub address_types: Option<Vec<String>>,
}

impl ReqFilteredNetworkMap {
    /// Decodes a request body.
    pub fn parse(body: &[u8]) -> Result<Self, AltoError> {
        let obj = parse_object(body)?;
        let pids = pid_array(required(&obj, "", "pids")?, "pids")?;
        let address_types = match obj.get("address-types") {
            None => None,
            Some(v) => {
                let types = string_array(v, "address-types")?;
                if let Some(bad) = types
                    .iter()
                    .find(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric()))
                {
                    return Err(AltoError::invalid_value("address-types", bad.clone()));
                }
                Some(types)
            }
        };
        Ok(ReqFilteredNetworkMap {
            pids,
            address_types,
        })
    }
}

/// Source and destination PIDs of a filtered cost map request (§11.3.2.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PidFilter {
    /// Source PIDs; empty means all.
    pub srcs: Vec<String>,
    /// Destination PIDs; empty means all.
    pub dsts: Vec<String>,
}

/// Filtered cost map request (§11.3.2.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReqFilteredCostMap {
    /// The cost type wanted.
    #[serde(rename = "cost-type")]
    pub cost_type: CostType,
    /// Constraints, all of which a returned cost meets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Vec<String>>,
    /// The PIDs; absent means all sources and destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<PidFilter>,
}

impl ReqFilteredCostMap {
    /// Decodes a request body.
    pub fn parse(body: &[u8]) -> Result<Self, AltoError> {
        let obj = parse_object(body)?;
        let cost_type = parse_cost_type(&obj)?;
        let constraints = parse_constraints(&obj)?;
        let pids = match obj.get("pids") {
            None => None,
            Some(v) => {
                let f = as_object(v, "pids")?;
                let srcs = pid_array(required(f, "pids", "srcs")?, "pids/srcs")?;
                let dsts = pid_array(required(f, "pids", "dsts")?, "pids/dsts")?;
                Some(PidFilter { srcs, dsts })
            }
        };
        Ok(ReqFilteredCostMap {
            cost_type,
            constraints,
            pids,
        })
    }
}

/// Endpoint property request (§11.4.1.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReqEndpointProp {
    /// Properties wanted (at least one).
    pub properties: Vec<String>,
    /// Typed endpoint addresses (at least one).
    pub endpoints: Vec<String>,
}

impl ReqEndpointProp {
    /// Decodes a request body. Addresses are checked by the service, which knows the types.
    pub fn parse(body: &[u8]) -> Result<Self, AltoError> {
        let obj = parse_object(body)?;
        let properties = string_array(required(&obj, "", "properties")?, "properties")?;
        if properties.is_empty() {
            return Err(AltoError::invalid_value("properties", "[]"));
        }
        if let Some(bad) = properties.iter().find(|p| !ident::is_property_type(p)) {
            return Err(AltoError::invalid_value("properties", bad.clone()));
        }
        let endpoints = string_array(required(&obj, "", "endpoints")?, "endpoints")?;
        if endpoints.is_empty() {
            return Err(AltoError::invalid_value("endpoints", "[]"));
        }
        Ok(ReqEndpointProp {
            properties,
            endpoints,
        })
    }
}

/// Source and destination endpoints of an endpoint cost request (§11.5.1.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointFilter {
    /// Sources; absent or empty means the client's own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srcs: Option<Vec<String>>,
    /// Destinations; absent or empty means the client's own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsts: Option<Vec<String>>,
}

/// Endpoint cost request (§11.5.1.3); with one source and the `ordinal` mode it is the P2P
/// ranking of §12.3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReqEndpointCostMap {
    /// The cost type wanted.
    #[serde(rename = "cost-type")]
    pub cost_type: CostType,
    /// Constraints, all of which a returned cost meets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Vec<String>>,
    /// The endpoints.
    pub endpoints: EndpointFilter,
}

impl ReqEndpointCostMap {
    /// Decodes a request body. Addresses are checked by the service.
    pub fn parse(body: &[u8]) -> Result<Self, AltoError> {
        let obj = parse_object(body)?;
        let cost_type = parse_cost_type(&obj)?;
        let constraints = parse_constraints(&obj)?;
        let f = as_object(required(&obj, "", "endpoints")?, "endpoints")?;
        let srcs = f
            .get("srcs")
            .map(|v| string_array(v, "endpoints/srcs"))
            .transpose()?;
        let dsts = f
            .get("dsts")
            .map(|v| string_array(v, "endpoints/dsts"))
            .transpose()?;
        let empty = |l: &Option<Vec<String>>| l.as_ref().is_none_or(|l| l.is_empty());
        if empty(&srcs) && empty(&dsts) {
            return Err(AltoError::missing_field("endpoints/dsts"));
        }
        Ok(ReqEndpointCostMap {
            cost_type,
            constraints,
            endpoints: EndpointFilter { srcs, dsts },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn err(
        r: Result<ReqFilteredCostMap, AltoError>,
    ) -> (ErrorCode, Option<String>, Option<String>) {
        let e = r.unwrap_err();
        (e.meta.code, e.meta.field, e.meta.value)
    }

    #[test]
    fn filtered_cost_map_errors_name_the_field() {
        use ErrorCode::*;
        let p = |s: &str| ReqFilteredCostMap::parse(s.as_bytes());
        assert_eq!(err(p("{")).0, Syntax);
        assert_eq!(err(p("[]")).0, Syntax);
        assert_eq!(err(p("{}")), (MissingField, Some("cost-type".into()), None));
        assert_eq!(
            err(p(r#"{"cost-type":{"cost-mode":"numerical"}}"#)),
            (MissingField, Some("cost-type/cost-metric".into()), None)
        );
        assert_eq!(
            err(p(
                r#"{"cost-type":{"cost-mode":7,"cost-metric":"routingcost"}}"#
            )),
            (InvalidFieldType, Some("cost-type/cost-mode".into()), None)
        );
        assert_eq!(
            err(p(
                r#"{"cost-type":{"cost-mode":"foo","cost-metric":"routingcost"}}"#
            )),
            (
                InvalidFieldValue,
                Some("cost-type/cost-mode".into()),
                Some("foo".into())
            )
        );
        assert_eq!(
            err(p(
                r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"constraints":["lte 5"]}"#
            )),
            (
                InvalidFieldValue,
                Some("constraints".into()),
                Some("lte 5".into())
            )
        );
        assert_eq!(
            err(p(
                r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"pids":{"srcs":[1],"dsts":[]}}"#
            )),
            (
                InvalidFieldValue,
                Some("pids/srcs".into()),
                Some("1".into())
            )
        );
        assert_eq!(
            err(p(
                r#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"pids":{"srcs":"PID1","dsts":[]}}"#
            )),
            (InvalidFieldType, Some("pids/srcs".into()), None)
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_duplicates_count_once() {
        let r = ReqFilteredNetworkMap::parse(
            br#"{"pids":["PID1","PID1","PID2"],"x-extension":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(r.pids, ["PID1", "PID2"]);
    }

    #[test]
    fn endpoint_cost_needs_some_endpoints() {
        let e = ReqEndpointCostMap::parse(
            br#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":{}}"#,
        )
        .unwrap_err();
        assert_eq!(e.meta.code, ErrorCode::MissingField);
        let e = ReqEndpointCostMap::parse(
            br#"{"cost-type":{"cost-mode":"ordinal","cost-metric":"routingcost"},"endpoints":[]}"#,
        )
        .unwrap_err();
        assert_eq!(e.meta.code, ErrorCode::InvalidFieldType);
    }
}
