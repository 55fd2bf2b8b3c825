//! The network map (RFC 7285 §5, §11.2.1) compiled for serving: PIDs (§10.1) with their
//! IPv4 and IPv6 prefixes, the longest-prefix lookup of §11.2.2, the completeness and
//! non-overlapping checks of §11.2.2, filtering (§11.3.1) and a content-derived vtag (§10.3).

use crate::addr::{AddressType, Prefix, PrefixError};
use crate::ident;
use crate::lpm::{self, PrefixTable};
use crate::messages::{EndpointAddrGroup, NetworkMapData, VersionTag};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

/// Index of a PID in its network map (PIDs are sorted by name).
pub type PidIdx = u32;

/// A map file that cannot be served, with the position of the defect in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapError {
    /// 1-based line of the defect (0 when unknown).
    pub line: usize,
    /// 1-based column of the defect (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for MapError {}

impl MapError {
    /// An error at the first place `needle` (quoted as a JSON string) stands in `text`.
    pub(crate) fn at(text: &str, needle: &str, message: String) -> Self {
        let quoted = format!("\"{needle}\"");
        let (line, column) = match text.find(&quoted) {
            Some(off) => {
                let before = &text[..off];
                let line = before.matches('\n').count() + 1;
                let column = off - before.rfind('\n').map_or(0, |n| n + 1) + 1;
                (line, column)
            }
            None => (0, 0),
        };
        MapError {
            line,
            column,
            message,
        }
    }

    pub(crate) fn json(e: serde_json::Error) -> Self {
        let text = e.to_string();
        // serde_json appends " at line L column C"; the position is reported separately.
        let message = match text.rfind(" at line ") {
            Some(i) => text[..i].to_owned(),
            None => text,
        };
        MapError {
            line: e.line(),
            column: e.column(),
            message,
        }
    }
}

/// Address type → prefixes, borrowed from the file's text where it has no escapes.
type FileGroup<'a> = HashMap<Cow<'a, str>, Vec<Cow<'a, str>>>;

#[derive(Deserialize)]
struct NetworkMapFile<'a> {
    #[serde(rename = "network-map", borrow)]
    network_map: HashMap<Cow<'a, str>, FileGroup<'a>>,
}

/// A network map ready for lookups and answers.
#[derive(Clone, Debug)]
pub struct NetworkMap {
    resource_id: String,
    tag: String,
    pids: Vec<String>,
    by_name: HashMap<String, PidIdx>,
    prefixes: Vec<Vec<Prefix>>,
    v4: PrefixTable<u32>,
    v6: PrefixTable<u128>,
    types: Vec<AddressType>,
    prefix_count: usize,
}

impl NetworkMap {
    /// Reads a network map file (the §11.2.1.6 response format; `meta` is optional and
    /// ignored) as a server does: every address type must be known, every prefix valid,
    /// the map complete and non-overlapping.
    pub fn from_json(resource_id: &str, text: &str) -> Result<Self, MapError> {
        let file: NetworkMapFile = serde_json::from_str(text).map_err(MapError::json)?;
        let mut entries: Vec<(&str, Vec<(AddressType, &str)>)> =
            Vec::with_capacity(file.network_map.len());
        for (pid, group) in &file.network_map {
            let mut list = Vec::new();
            for (ty, prefixes) in group {
                let t = AddressType::parse(ty).ok_or_else(|| {
                    MapError::at(
                        text,
                        ty,
                        format!("PID `{pid}`: unknown address type `{ty}`"),
                    )
                })?;
                list.extend(prefixes.iter().map(|p| (t, p.as_ref())));
            }
            entries.push((pid.as_ref(), list));
        }
        Self::compile(resource_id, entries, true)
            .map_err(|(needle, msg)| MapError::at(text, &needle, msg))
    }

    /// Builds a map from decoded network map data as a client does: unknown address types
    /// are ignored (§11.2.1.7) and completeness is not required (the server vouches for it).
    pub fn from_data(resource_id: &str, data: &NetworkMapData) -> Result<Self, MapError> {
        let entries = data
            .iter()
            .map(|(pid, group)| {
                let list = group
                    .iter()
                    .filter_map(|(ty, ps)| AddressType::parse(ty).map(|t| (t, ps)))
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (t, p.as_str())))
                    .collect();
                (pid.as_str(), list)
            })
            .collect();
        Self::compile(resource_id, entries, false).map_err(|(_, message)| MapError {
            line: 0,
            column: 0,
            message,
        })
    }

    /// Errors carry the text to point at and the message.
    fn compile(
        resource_id: &str,
        mut entries: Vec<(&str, Vec<(AddressType, &str)>)>,
        strict: bool,
    ) -> Result<Self, (String, String)> {
        if !ident::is_resource_id(resource_id) {
            return Err((
                resource_id.into(),
                format!("`{resource_id}` is not a valid resource ID (RFC 7285 §10.2)"),
            ));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut pids = Vec::with_capacity(entries.len());
        let mut prefixes = Vec::with_capacity(entries.len());
        let mut v4_in = Vec::new();
        let mut v6_in = Vec::new();
        let mut origin: Vec<(usize, usize)> = Vec::new(); // table input -> (pid, prefix) for errors
        let mut origin6: Vec<(usize, usize)> = Vec::new();
        for (i, (pid, list)) in entries.iter().enumerate() {
            if !ident::is_pid_name(pid) {
                return Err((
                    pid.to_string(),
                    format!("`{pid}` is not a valid PID name (RFC 7285 §10.1)"),
                ));
            }
            let mut parsed = Vec::with_capacity(list.len());
            for &(ty, s) in list {
                let p = Prefix::parse(ty, s)
                    .map_err(|e: PrefixError| (s.to_owned(), format!("PID `{pid}`: {e}")))?;
                parsed.push(p);
            }
            parsed.sort_unstable();
            parsed.dedup();
            for (k, p) in parsed.iter().enumerate() {
                match p.ty {
                    AddressType::Ipv4 => {
                        v4_in.push((p.addr, p.len, i as u32));
                        origin.push((i, k));
                    }
                    AddressType::Ipv6 => {
                        v6_in.push((p.addr, p.len, i as u32));
                        origin6.push((i, k));
                    }
                }
            }
            pids.push(pid.to_string());
            prefixes.push(parsed);
        }
        let conflict = |c: lpm::Conflict, origin: &[(usize, usize)]| {
            let (pa, ka) = origin[c.first];
            let (pb, _) = origin[c.second];
            let p = prefixes[pa][ka];
            (
                p.to_string(),
                format!(
                    "prefix {p} is in both PID `{}` and PID `{}`: a network map must not overlap (RFC 7285 §11.2.2)",
                    pids[pa], pids[pb]
                ),
            )
        };
        let v4 = PrefixTable::<u32>::build(&v4_in).map_err(|c| conflict(c, &origin))?;
        let v6 = PrefixTable::<u128>::build(&v6_in).map_err(|c| conflict(c, &origin6))?;
        let mut types = Vec::new();
        if !v4_in.is_empty() {
            types.push(AddressType::Ipv4);
        }
        if !v6_in.is_empty() {
            types.push(AddressType::Ipv6);
        }
        if strict {
            if types.is_empty() {
                return Err((
                    "network-map".into(),
                    "the network map defines no prefixes".into(),
                ));
            }
            let gap4 = (!v4_in.is_empty())
                .then(|| {
                    v4.ranges()
                        .find(|r| r.1 == lpm::NONE)
                        .map(|r| IpAddr::from(std::net::Ipv4Addr::from(r.0)))
                })
                .flatten();
            let gap6 = (!v6_in.is_empty())
                .then(|| {
                    v6.ranges()
                        .find(|r| r.1 == lpm::NONE)
                        .map(|r| IpAddr::from(std::net::Ipv6Addr::from(r.0)))
                })
                .flatten();
            if let Some(gap) = gap4.or(gap6) {
                return Err((
                    "network-map".into(),
                    format!(
                        "the network map is not complete: {gap} is in no PID (RFC 7285 §11.2.2; add {} to a default PID)",
                        if gap.is_ipv4() { "0.0.0.0/0" } else { "::/0" }
                    ),
                ));
            }
        }
        let prefix_count = prefixes.iter().map(Vec::len).sum();
        let tag = content_tag(&pids, &prefixes);
        let by_name = pids
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i as PidIdx))
            .collect();
        Ok(NetworkMap {
            resource_id: resource_id.to_owned(),
            tag,
            pids,
            by_name,
            prefixes,
            v4,
            v6,
            types,
            prefix_count,
        })
    }

    /// The resource ID.
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    /// The version tag (§10.3): a SHA-256 of the map's content, so equal content gives an
    /// equal tag and any change a new one.
    pub fn vtag(&self) -> VersionTag {
        VersionTag {
            resource_id: self.resource_id.clone(),
            tag: self.tag.clone(),
        }
    }

    /// The tag string alone.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// PID names, sorted; a [`PidIdx`] indexes this slice.
    pub fn pids(&self) -> &[String] {
        &self.pids
    }

    /// Index of a PID by name.
    pub fn pid_index(&self, name: &str) -> Option<PidIdx> {
        self.by_name.get(name).copied()
    }

    /// Name of a PID by index.
    pub fn pid_name(&self, idx: PidIdx) -> &str {
        &self.pids[idx as usize]
    }

    /// The prefixes of a PID, sorted.
    pub fn prefixes(&self, idx: PidIdx) -> &[Prefix] {
        &self.prefixes[idx as usize]
    }

    /// Number of prefixes over all PIDs.
    pub fn prefix_count(&self) -> usize {
        self.prefix_count
    }

    /// Address types the map defines.
    pub fn address_types(&self) -> &[AddressType] {
        &self.types
    }

    /// The PID of an address by longest-prefix match (§11.2.2); `None` where the map has no
    /// prefix for it (only possible in maps read with [`NetworkMap::from_data`]).
    #[inline]
    pub fn pid_of(&self, ip: IpAddr) -> Option<PidIdx> {
        let v = match ip {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        };
        (v != lpm::NONE).then_some(v)
    }

    /// The PID of an IPv4 address given as a `u32`, the benchmark's hot path.
    #[inline]
    pub fn pid_of_v4(&self, addr: u32) -> u32 {
        self.v4.lookup(addr)
    }

    /// The map's data for the given PIDs (all when `None`) and address types (all when
    /// `None`), as in §11.3.1.6.
    pub fn data(&self, pids: Option<&[PidIdx]>, types: Option<&[AddressType]>) -> NetworkMapData {
        let all: Vec<PidIdx>;
        let pids = match pids {
            Some(p) => p,
            None => {
                all = (0..self.pids.len() as PidIdx).collect();
                &all
            }
        };
        let mut out = BTreeMap::new();
        for &i in pids {
            let mut group = EndpointAddrGroup::new();
            for p in &self.prefixes[i as usize] {
                if types.is_none_or(|t| t.contains(&p.ty)) {
                    group
                        .entry(p.ty.as_str().to_owned())
                        .or_default()
                        .push(p.to_string());
                }
            }
            out.insert(self.pids[i as usize].clone(), group);
        }
        out
    }

    /// Bytes held by the lookup tables.
    pub fn table_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }
}

fn content_tag(pids: &[String], prefixes: &[Vec<Prefix>]) -> String {
    let mut h = Sha256::new();
    for (pid, list) in pids.iter().zip(prefixes) {
        h.update(pid.as_bytes());
        h.update([0]);
        for p in list {
            h.update([p.ty.bits(), p.len]);
            h.update(p.addr.to_be_bytes());
        }
        h.update([0xff]);
    }
    hex(&h.finalize())
}

/// `bytes` in lower-case hex: vtags, entity tags, lease tokens.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = r#"{
  "network-map": {
    "PID1": { "ipv4": ["192.0.2.0/24", "198.51.100.0/25"] },
    "PID2": { "ipv4": ["198.51.100.128/25"] },
    "PID3": { "ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"] }
  }
}"#;

    #[test]
    fn looks_up_pids_by_longest_prefix() {
        let m = NetworkMap::from_json("net", MAP).unwrap();
        let pid = |s: &str| m.pid_name(m.pid_of(s.parse().unwrap()).unwrap()).to_owned();
        assert_eq!(pid("192.0.2.34"), "PID1");
        assert_eq!(pid("198.51.100.100"), "PID1");
        assert_eq!(pid("198.51.100.200"), "PID2");
        assert_eq!(pid("203.0.113.129"), "PID3");
        assert_eq!(pid("2001:db8::1"), "PID3");
        assert_eq!(m.prefix_count(), 5);
    }

    #[test]
    fn vtag_follows_content_not_formatting() {
        let a = NetworkMap::from_json("net", MAP).unwrap();
        let b = NetworkMap::from_json("net", &MAP.replace("  ", "")).unwrap();
        assert_eq!(a.vtag(), b.vtag());
        let c = NetworkMap::from_json(
            "net",
            &MAP.replace("198.51.100.128/25", "198.51.100.192/26"),
        )
        .unwrap();
        assert_ne!(a.tag(), c.tag());
        assert!(crate::ident::is_tag(a.tag()));
    }

    #[test]
    fn bad_maps_are_refused_with_the_line() {
        let e =
            NetworkMap::from_json("net", &MAP.replace("192.0.2.0/24", "192.0.2.1/24")).unwrap_err();
        assert_eq!((e.line, e.column), (3, 24), "{e}");
        assert!(e.message.contains("host bits"), "{e}");

        let e = NetworkMap::from_json("net", &MAP.replace("198.51.100.128/25", "198.51.100.0/25"))
            .unwrap_err();
        assert!(e.message.contains("must not overlap"), "{e}");
        assert_eq!(e.line, 3);

        let e = NetworkMap::from_json("net", &MAP.replace("0.0.0.0/0", "10.0.0.0/8")).unwrap_err();
        assert!(e.message.contains("not complete"), "{e}");
        assert!(e.message.contains("0.0.0.0 is in no PID"), "{e}");

        let e = NetworkMap::from_json("net", &MAP.replace("\"ipv6\"", "\"ipx\"")).unwrap_err();
        assert!(e.message.contains("unknown address type"), "{e}");
        assert_eq!(e.line, 5);

        let e = NetworkMap::from_json("net", &MAP.replace("PID2", "PID 2")).unwrap_err();
        assert!(e.message.contains("not a valid PID name"), "{e}");

        let e = NetworkMap::from_json("net", &MAP.replace("]", "")).unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn client_maps_ignore_unknown_address_types() {
        let mut data = NetworkMapData::new();
        data.insert(
            "A".into(),
            [
                ("ipv4".to_string(), vec!["10.0.0.0/8".to_string()]),
                ("mac".to_string(), vec!["x".to_string()]),
            ]
            .into(),
        );
        data.insert(
            "B".into(),
            [("mac".to_string(), vec!["y".to_string()])].into(),
        );
        let m = NetworkMap::from_data("net", &data).unwrap();
        assert_eq!(m.pids(), ["A", "B"]);
        assert_eq!(m.pid_of("10.1.1.1".parse().unwrap()), Some(0));
        assert_eq!(m.pid_of("11.1.1.1".parse().unwrap()), None);
    }
}
