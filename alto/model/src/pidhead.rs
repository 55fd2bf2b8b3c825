//! The virtual-tracker extension of this project (draft-ikpark-alto-virtual-p2ptracker,
//! sections 2.2 and 2.3), in the style of RFC 7285: joining the ALTO server as a candidate
//! PID Head, leases, and the head directory as an RFC 9240 property map. The wire format is
//! documented in `docs/pid-head.md`.

use crate::addr;
use crate::error::AltoError;
use crate::messages::{as_object, as_str, parse_object, required, VersionTag};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Media type of a join request.
pub const JOIN: &str = "application/alto-pidheadjoin+json";
/// Media type of a lease request (renew or resign).
pub const LEASE: &str = "application/alto-pidheadlease+json";
/// Media type of the answer to a join or lease request.
pub const HEAD: &str = "application/alto-pidhead+json";
/// Media type of an RFC 9240 property map (the head directory).
pub const PROPMAP: &str = "application/alto-propmap+json";

/// Property names of the head directory.
pub const PROP_TRACKER: &str = "head-tracker";
/// The head's endpoint cost service.
pub const PROP_ALTO: &str = "head-alto";
/// When the head's lease lapses unless renewed (RFC 3339, UTC).
pub const PROP_EXPIRES: &str = "head-lease-expires";
/// Property: the headship's epoch (see [`HeadInfo::epoch`]).
pub const PROP_EPOCH: &str = "head-epoch";
/// Property: since when the head has been head (RFC 3339; UTC timestamps of this form sort
/// in time order).
pub const PROP_SINCE: &str = "head-since";

/// What a client says of itself (the draft's election conditions, section 2.3). The server
/// measures continuous lifetime and distance itself; the client's figures are kept only as
/// claims and never outweigh the server's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CandidateClaims {
    /// CPU clock, Hz.
    #[serde(rename = "cpu-hz", default, skip_serializing_if = "Option::is_none")]
    pub cpu_hz: Option<f64>,
    /// Memory, bytes.
    #[serde(
        rename = "memory-bytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_bytes: Option<f64>,
    /// Claimed continuous lifetime, seconds (informational).
    #[serde(
        rename = "lifetime-secs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lifetime_secs: Option<f64>,
    /// Claimed distance to the ALTO server, milliseconds (informational).
    #[serde(
        rename = "distance-ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub distance_ms: Option<f64>,
}

/// A join request: a client offers itself as its PID's head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The client's typed endpoint address (RFC 7285 §10.4.1); must be the request's source.
    pub endpoint: String,
    /// The announce URL it would serve as head.
    pub tracker: String,
    /// Its endpoint cost service URL as head (wire name `alto`); derived from `tracker`
    /// when absent.
    #[serde(rename = "alto", default, skip_serializing_if = "Option::is_none")]
    pub ecs_url: Option<String>,
    /// What it says of itself.
    #[serde(default)]
    pub capabilities: CandidateClaims,
}

fn number(obj: &Map<String, Value>, name: &str) -> Result<Option<f64>, AltoError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if v.is_finite() && v >= 0.0 {
                Ok(Some(v))
            } else {
                Err(AltoError::invalid_value(
                    format!("capabilities/{name}"),
                    n.to_string(),
                ))
            }
        }
        Some(_) => Err(AltoError::invalid_type(format!("capabilities/{name}"))),
    }
}

/// The socket address of an `http://` or `https://` URL with an IP-literal host, no user
/// information and a port from 1 to 65535 (80 or 443 when none is given): what a head's
/// URLs must be, so that the server can check whose they are and connect back.
pub fn url_socket(url: &str) -> Option<std::net::SocketAddr> {
    let u = url::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") || !u.username().is_empty() || u.password().is_some()
    {
        return None;
    }
    let ip = url_ip(url)?;
    let port = u.port_or_known_default().filter(|&p| p != 0)?;
    Some(std::net::SocketAddr::new(ip, port))
}

/// An `http://` URL with an IP-literal host: the only kind a head may announce, so that its
/// PID can be checked.
pub fn url_ip(url: &str) -> Option<IpAddr> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

impl JoinRequest {
    /// Decodes a request body; errors carry the RFC 7285 code and field.
    pub fn parse(body: &[u8]) -> Result<Self, AltoError> {
        let obj = parse_object(body)?;
        let endpoint = as_str(required(&obj, "", "endpoint")?, "endpoint")?;
        if addr::parse_typed_addr(endpoint).is_none() {
            return Err(AltoError::invalid_value("endpoint", endpoint));
        }
        let tracker = as_str(required(&obj, "", "tracker")?, "tracker")?;
        if url_ip(tracker).is_none() {
            return Err(AltoError::invalid_value("tracker", tracker));
        }
        let alto = match obj.get("alto") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let s = as_str(v, "alto")?;
                if url_ip(s).is_none() {
                    return Err(AltoError::invalid_value("alto", s));
                }
                Some(s.to_owned())
            }
        };
        let capabilities = match obj.get("capabilities") {
            None | Some(Value::Null) => CandidateClaims::default(),
            Some(v) => {
                let c = as_object(v, "capabilities")?;
                CandidateClaims {
                    cpu_hz: number(c, "cpu-hz")?,
                    memory_bytes: number(c, "memory-bytes")?,
                    lifetime_secs: number(c, "lifetime-secs")?,
                    distance_ms: number(c, "distance-ms")?,
                }
            }
        };
        Ok(JoinRequest {
            endpoint: endpoint.to_owned(),
            tracker: tracker.to_owned(),
            ecs_url: alto,
            capabilities,
        })
    }

    /// The endpoint cost service URL: `alto`, or `tracker` with its path replaced by
    /// `/endpointcost/lookup`.
    pub fn effective_ecs_url(&self) -> String {
        self.ecs_url
            .clone()
            .unwrap_or_else(|| sibling(&self.tracker, "/endpointcost/lookup"))
    }
}

/// `url` with its path replaced by `path`.
pub fn sibling(url: &str, path: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.cannot_be_a_base() => {
            u.set_path(path);
            u.set_query(None);
            u.set_fragment(None);
            u.into()
        }
        _ => format!("{}{path}", url.trim_end_matches('/')),
    }
}

/// What a lease request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseAction {
    /// Extends the lease by its TTL.
    Renew,
    /// Gives the headship up now.
    Resign,
}

/// A lease request: renew or resign, with the lease token only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// The lease's secret token.
    pub token: String,
    /// What to do.
    pub action: LeaseAction,
}

impl LeaseRequest {
    /// Decodes a request body.
    pub fn parse(body: &[u8]) -> Result<Self, AltoError> {
        let obj = parse_object(body)?;
        let token = as_str(required(&obj, "", "token")?, "token")?;
        let action = match as_str(required(&obj, "", "action")?, "action")? {
            "renew" => LeaseAction::Renew,
            "resign" => LeaseAction::Resign,
            other => return Err(AltoError::invalid_value("action", other)),
        };
        Ok(LeaseRequest {
            token: token.to_owned(),
            action,
        })
    }
}

/// The role the server gives a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The client is its PID's head.
    Head,
    /// Another client is head (or none yet); this one is a member and standby candidate.
    Member,
}

/// A PID's head as announced to members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadInfo {
    /// The head's typed endpoint address.
    pub endpoint: String,
    /// Its announce URL.
    pub tracker: String,
    /// Its endpoint cost service URL (wire name `alto`).
    #[serde(rename = "alto")]
    pub ecs_url: String,
    /// When its lease lapses unless renewed (RFC 3339, UTC).
    #[serde(rename = "lease-expires")]
    pub lease_expires: String,
    /// Since when it has been head (RFC 3339, UTC): heads order themselves by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The headship's epoch: it only grows, so of two heads named for one PID (by two
    /// replicas, or before and after a failover) the one with the higher epoch is the newer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

impl HeadInfo {
    /// The head a member keeps when it hears `heard` for its PID and knows `known`: the
    /// heard one, unless both carry epochs and the heard one's is lower (a replica that lags
    /// behind, or an answer overtaken by a failover). A server that names no head is
    /// believed: the member joins again when the head it keeps fails it.
    pub fn prefer(known: Option<&HeadInfo>, heard: Option<HeadInfo>) -> Option<HeadInfo> {
        match (known, heard) {
            (Some(k), Some(h)) if matches!((k.epoch, h.epoch), (Some(ke), Some(he)) if he < ke) => {
                Some(k.clone())
            }
            (_, heard) => heard,
        }
    }
}

/// A lease granted to a head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The secret that renews or resigns the lease.
    pub token: String,
    /// Seconds the lease lasts unless renewed.
    #[serde(rename = "ttl-secs")]
    pub ttl_secs: u64,
}

/// `meta` of the answer: the network map version the PID comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadMeta {
    /// The network map version.
    #[serde(rename = "dependent-vtags")]
    pub dependent_vtags: Vec<VersionTag>,
}

/// The answer to a join or lease request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadAnswer {
    /// Meta information.
    pub meta: HeadMeta,
    /// The client's PID.
    pub pid: String,
    /// The client's role.
    pub role: Role,
    /// The PID's head, if it has a live one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadInfo>,
    /// The lease, for a head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// In a join's answer: seconds after which the server advises the member to join again
    /// (wire name `rejoin-secs`): shorter for a kept standby, so it stays one.
    #[serde(
        rename = "rejoin-secs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rejoin_secs: Option<u64>,
}

/// An RFC 9240 property map (§7.6 response): entity → property → value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropertyMap {
    /// Meta: `dependent-vtags` of the network map the `pid` entities belong to.
    pub meta: HeadMeta,
    /// Entities (`NETMAP.pid:PIDNAME`) and their properties.
    #[serde(rename = "property-map")]
    pub property_map: BTreeMap<String, BTreeMap<String, Value>>,
}

impl PropertyMap {
    /// Since when each listed head has been head: PID name → RFC 3339 time.
    pub fn since(&self) -> BTreeMap<String, String> {
        self.property_map
            .iter()
            .filter_map(|(entity, props)| {
                let pid = entity.split_once(".pid:")?.1.to_owned();
                Some((pid, props.get(PROP_SINCE)?.as_str()?.to_owned()))
            })
            .collect()
    }

    /// The epoch of each listed head that has one: PID name → epoch.
    pub fn epochs(&self) -> BTreeMap<String, u64> {
        self.property_map
            .iter()
            .filter_map(|(entity, props)| {
                let pid = entity.split_once(".pid:")?.1.to_owned();
                Some((pid, props.get(PROP_EPOCH)?.as_u64()?))
            })
            .collect()
    }

    /// The heads it lists: PID name → (tracker URL, ECS URL).
    pub fn heads(&self) -> BTreeMap<String, (String, String)> {
        self.property_map
            .iter()
            .filter_map(|(entity, props)| {
                let pid = entity.split_once(".pid:")?.1.to_owned();
                let tracker = props.get(PROP_TRACKER)?.as_str()?.to_owned();
                let alto = props.get(PROP_ALTO)?.as_str()?.to_owned();
                Some((pid, (tracker, alto)))
            })
            .collect()
    }
}

/// Formats seconds since the epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    fn head(endpoint: &str, epoch: Option<u64>) -> HeadInfo {
        HeadInfo {
            endpoint: endpoint.into(),
            tracker: String::new(),
            ecs_url: String::new(),
            lease_expires: String::new(),
            since: None,
            epoch,
        }
    }

    #[test]
    fn members_keep_the_head_with_the_higher_epoch() {
        let old = head("ipv4:127.1.0.5", Some(3));
        let new = head("ipv4:127.1.0.6", Some(7));
        let prefer = |k: &HeadInfo, h: &HeadInfo| HeadInfo::prefer(Some(k), Some(h.clone()));
        assert_eq!(
            prefer(&old, &new),
            Some(new.clone()),
            "a newer headship wins"
        );
        assert_eq!(
            prefer(&new, &old),
            Some(new.clone()),
            "a lagging replica loses"
        );
        assert_eq!(prefer(&new, &new), Some(new.clone()));
        // Without epochs on both sides (a server without a store that numbers them) the
        // latest answer wins, as before.
        let plain = head("ipv4:127.1.0.7", None);
        assert_eq!(prefer(&new, &plain), Some(plain.clone()));
        assert_eq!(prefer(&plain, &old), Some(old.clone()));
        assert_eq!(HeadInfo::prefer(None, Some(old.clone())), Some(old.clone()));
        assert_eq!(
            HeadInfo::prefer(Some(&new), None),
            None,
            "no head named: believed"
        );
    }

    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn joins_parse_with_precise_errors() {
        let ok = br#"{"endpoint":"ipv4:127.1.0.5","tracker":"http://127.1.0.5:6969/announce","capabilities":{"cpu-hz":2.4e9,"memory-bytes":8e9},"x":1}"#;
        let j = JoinRequest::parse(ok).unwrap();
        assert_eq!(
            j.effective_ecs_url(),
            "http://127.1.0.5:6969/endpointcost/lookup"
        );
        assert_eq!(j.capabilities.cpu_hz, Some(2.4e9));
        let code = |b: &str| {
            let e = JoinRequest::parse(b.as_bytes()).unwrap_err();
            (e.meta.code, e.meta.field.unwrap_or_default())
        };
        assert_eq!(code("{"), (ErrorCode::Syntax, String::new()));
        assert_eq!(
            code(r#"{"tracker":"http://127.0.0.1:1/a"}"#),
            (ErrorCode::MissingField, "endpoint".into())
        );
        assert_eq!(
            code(r#"{"endpoint":5,"tracker":"x"}"#),
            (ErrorCode::InvalidFieldType, "endpoint".into())
        );
        assert_eq!(
            code(r#"{"endpoint":"ipv4:300.0.0.1","tracker":"x"}"#),
            (ErrorCode::InvalidFieldValue, "endpoint".into())
        );
        assert_eq!(
            code(r#"{"endpoint":"ipv4:127.0.0.1","tracker":"http://tracker.example/announce"}"#),
            (ErrorCode::InvalidFieldValue, "tracker".into())
        );
        assert_eq!(
            code(
                r#"{"endpoint":"ipv4:127.0.0.1","tracker":"http://127.0.0.1:1/a","capabilities":{"cpu-hz":"fast"}}"#
            ),
            (ErrorCode::InvalidFieldType, "capabilities/cpu-hz".into())
        );
        assert_eq!(
            code(
                r#"{"endpoint":"ipv4:127.0.0.1","tracker":"http://127.0.0.1:1/a","capabilities":{"memory-bytes":-1}}"#
            ),
            (
                ErrorCode::InvalidFieldValue,
                "capabilities/memory-bytes".into()
            )
        );
        let e = LeaseRequest::parse(br#"{"token":"abc","action":"extend"}"#).unwrap_err();
        assert_eq!(
            (e.meta.code, e.meta.value.as_deref()),
            (ErrorCode::InvalidFieldValue, Some("extend"))
        );
    }

    #[test]
    fn urls_and_times() {
        assert_eq!(
            url_ip("http://127.1.0.5:6969/announce"),
            Some("127.1.0.5".parse().unwrap())
        );
        assert_eq!(
            url_ip("http://[::1]:6969/announce"),
            Some("::1".parse().unwrap())
        );
        assert_eq!(
            url_ip("https://127.0.0.1/announce"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(url_ip("ftp://127.0.0.1/announce"), None);
        assert_eq!(
            sibling("http://127.1.0.5:6969/announce", "/members"),
            "http://127.1.0.5:6969/members"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
