//! The member list a PID Head gives other heads, `GET /members` (`docs/tracker-shim.md`, an
//! extension of the virtual tracker of draft-ikpark-alto-virtual-p2ptracker, section 2.2):
//! the peers of some of its swarms with their PIDs, so that a head whose swarm is too small
//! can hand out members of the cheapest other PIDs. Unknown fields are ignored, as in RFC
//! 7285 §8.3.7, so that the format can grow.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The answer to `GET /members`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersResponse {
    /// The PID the head serves.
    pub pid: String,
    /// The swarms asked for, keyed by info hash in lower-case hex.
    pub swarms: BTreeMap<String, SwarmMembers>,
}

/// One swarm of a member list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmMembers {
    /// Seeders in the swarm (all of them, not only those listed).
    #[serde(default)]
    pub complete: u32,
    /// Leechers in the swarm (all of them, not only those listed).
    #[serde(default)]
    pub incomplete: u32,
    /// Live members, at most the `max` asked for.
    pub peers: Vec<Member>,
}

/// One member of a swarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Where to reach it (`127.1.0.2:6012`, `[2001:db8::7]:51413`).
    pub addr: SocketAddr,
    /// Its PID in the head's network map; `null` if none.
    #[serde(default)]
    pub pid: Option<String>,
    /// Whether it has the whole torrent.
    #[serde(default)]
    pub seeder: bool,
}

/// The body of a refused `GET /members` (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersError {
    /// What was wrong with the request.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of `docs/tracker-shim.md`, with an unknown field that is ignored.
    const DOC: &str = r#"{
      "pid": "PID1",
      "swarms": {
        "0101010101010101010101010101010101010101": {
          "complete": 1,
          "incomplete": 12,
          "peers": [
            {"addr": "127.1.0.2:6012", "pid": "PID1", "seeder": false},
            {"addr": "[2001:db8::7]:51413", "pid": null, "seeder": true, "later": 1}
          ]
        }
      }
    }"#;

    #[test]
    fn the_documented_example_reads_and_writes_back() {
        let m: MembersResponse = serde_json::from_str(DOC).unwrap();
        let swarm = &m.swarms["0101010101010101010101010101010101010101"];
        assert_eq!((swarm.complete, swarm.incomplete), (1, 12));
        assert_eq!(
            swarm.peers[1],
            Member {
                addr: "[2001:db8::7]:51413".parse().unwrap(),
                pid: None,
                seeder: true,
            }
        );
        let mut doc: serde_json::Value = serde_json::from_str(DOC).unwrap();
        doc["swarms"]["0101010101010101010101010101010101010101"]["peers"][1]
            .as_object_mut()
            .unwrap()
            .remove("later");
        assert_eq!(serde_json::to_value(&m).unwrap(), doc);
    }

    #[test]
    fn should_fail_when_an_address_is_not_a_socket_address() {
        let bad = DOC.replace("127.1.0.2:6012", "127.1.0.2");
        assert!(serde_json::from_str::<MembersResponse>(&bad).is_err());
    }
}
