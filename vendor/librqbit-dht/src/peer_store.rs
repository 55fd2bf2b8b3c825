use std::{collections::VecDeque, net::SocketAddr, str::FromStr, sync::atomic::AtomicU32};

use bencode::ByteBufOwned;
use chrono::{DateTime, Utc};
use librqbit_core::{compact_ip::CompactSocketAddr, hash_id::Id20};
use parking_lot::RwLock;
use rand::Rng;
use serde::{
    Deserialize, Serialize,
    ser::{SerializeMap, SerializeStruct},
};
use tracing::trace;

use crate::bprotocol::{AnnouncePeer, Want};

/// Patched (vendor/README.md): how long a stored peer lasts without announcing again (BEP 5
/// leaves it to the node; libtorrent keeps peers 30 minutes).
const PEER_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

/// Patched (vendor/README.md): the most peers one `get_peers` answer holds.
const MAX_VALUES: usize = 100;

#[derive(Serialize, Deserialize)]
struct StoredToken {
    token: [u8; 4],
    #[serde(serialize_with = "crate::utils::serialize_id20")]
    node_id: Id20,
    addr: SocketAddr,
}

#[derive(Serialize, Deserialize)]
struct StoredPeer {
    addr: SocketAddr,
    time: DateTime<Utc>,
}

pub struct PeerStore {
    self_id: Id20,
    max_remembered_tokens: u32,
    max_remembered_peers: u32,
    max_distance: Id20,
    tokens: RwLock<VecDeque<StoredToken>>,
    peers: dashmap::DashMap<Id20, Vec<StoredPeer>>,
    peers_len: AtomicU32,
}

impl Serialize for PeerStore {
    fn serialize<S>(&self, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        struct SerializePeers<'a> {
            peers: &'a dashmap::DashMap<Id20, Vec<StoredPeer>>,
        }

        impl Serialize for SerializePeers<'_> {
            fn serialize<S>(&self, serializer: S) -> Result<S::Ok, S::Error>
            where
                S: serde::Serializer,
            {
                let mut m = serializer.serialize_map(None)?;
                for entry in self.peers.iter() {
                    m.serialize_entry(&entry.key().as_string(), &entry.value())?;
                }
                m.end()
            }
        }

        let mut s = serializer.serialize_struct("PeerStore", 7)?;
        s.serialize_field("self_id", &self.self_id.as_string())?;
        s.serialize_field("max_remembered_tokens", &self.max_remembered_tokens)?;
        s.serialize_field("max_remembered_peers", &self.max_remembered_peers)?;
        s.serialize_field("max_distance", &self.max_distance.as_string())?;
        s.serialize_field("tokens", &*self.tokens.read())?;
        s.serialize_field("peers", &SerializePeers { peers: &self.peers })?;
        s.serialize_field(
            "peers_len",
            &self.peers_len.load(std::sync::atomic::Ordering::SeqCst),
        )?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for PeerStore {
    fn deserialize<D>(deserializer: D) -> Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        #[derive(Deserialize)]
        struct Tmp {
            self_id: Id20,
            max_remembered_tokens: u32,
            max_remembered_peers: u32,
            max_distance: Id20,
            tokens: VecDeque<StoredToken>,
            peers: dashmap::DashMap<Id20, Vec<StoredPeer>>,
        }

        Tmp::deserialize(deserializer).map(|tmp| Self {
            self_id: tmp.self_id,
            max_remembered_tokens: tmp.max_remembered_tokens,
            max_remembered_peers: tmp.max_remembered_peers,
            max_distance: tmp.max_distance,
            tokens: RwLock::new(tmp.tokens),
            peers_len: AtomicU32::new(tmp.peers.iter().map(|e| e.value().len() as u32).sum()),
            peers: tmp.peers,
        })
    }
}

impl PeerStore {
    pub fn new(self_id: Id20) -> Self {
        Self {
            self_id,
            max_remembered_tokens: 1000,
            max_remembered_peers: 1000,
            max_distance: Id20::from_str("00000fffffffffffffffffffffffffffffffffff").unwrap(),
            tokens: RwLock::new(VecDeque::new()),
            peers: dashmap::DashMap::new(),
            peers_len: AtomicU32::new(0),
        }
    }

    pub fn gen_token_for(&self, node_id: Id20, addr: SocketAddr) -> [u8; 4] {
        let mut token = [0u8; 4];
        rand::rng().fill_bytes(&mut token);
        let mut tokens = self.tokens.write();
        tokens.push_back(StoredToken {
            token,
            addr,
            node_id,
        });
        if tokens.len() > self.max_remembered_tokens as usize {
            tokens.pop_front();
        }
        token
    }

    /// Patched (vendor/README.md): `anywhere` (the DHT is small) stores an announce whatever
    /// the distance of its info hash.
    pub fn store_peer(
        &self,
        announce: &AnnouncePeer<ByteBufOwned>,
        mut addr: SocketAddr,
        anywhere: bool,
    ) -> bool {
        // If the info_hash in announce is too far away from us, don't store it.
        // If the token doesn't match, don't store it.
        // If we are out of capacity, don't store it.
        // Otherwise, store it.
        if !anywhere && announce.info_hash.distance(&self.self_id) > self.max_distance {
            trace!("peer store: info_hash too far to store");
            return false;
        }
        if !self.tokens.read().iter().any(|t| {
            t.token[..] == announce.token.as_ref()[..] && t.addr == addr && t.node_id == announce.id
        }) {
            trace!("peer store: can't find this token / addr combination");
            return false;
        }

        if announce.implied_port == 0 {
            addr.set_port(announce.port);
        }
        if self.peers_len.load(std::sync::atomic::Ordering::SeqCst) >= self.max_remembered_peers {
            self.make_room(Utc::now());
        }

        use dashmap::mapref::entry::Entry;
        let peers_entry = self.peers.entry(announce.info_hash);
        let peers_len = self.peers_len.load(std::sync::atomic::Ordering::SeqCst);
        match peers_entry {
            Entry::Occupied(mut occ) => {
                if let Some(s) = occ.get_mut().iter_mut().find(|s| s.addr == addr) {
                    s.time = Utc::now();
                    return true;
                }
                if peers_len >= self.max_remembered_peers {
                    trace!("peer store: out of capacity");
                    return false;
                }
                occ.get_mut().push(StoredPeer {
                    addr,
                    time: Utc::now(),
                });
            }
            Entry::Vacant(vac) => {
                if peers_len >= self.max_remembered_peers {
                    trace!("peer store: out of capacity");
                    return false;
                }
                vac.insert(vec![StoredPeer {
                    addr,
                    time: Utc::now(),
                }]);
            }
        }

        self.peers_len
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        true
    }

    pub fn get_for_info_hash(&self, info_hash: Id20, want: Want) -> Vec<CompactSocketAddr> {
        // Patched (vendor/README.md): peers that have not announced for `PEER_TTL` are gone,
        // and an answer holds at most `MAX_VALUES` of them (the newest), so that it fits a
        // datagram.
        let stale = Utc::now() - PEER_TTL;
        if let Some(stored_peers) = self.peers.get(&info_hash) {
            return stored_peers
                .iter()
                .rev()
                .filter(|p| p.time > stale)
                .filter(|p| {
                    matches!(
                        (p.addr, want),
                        (SocketAddr::V6(..), Want::V6 | Want::Both)
                            | (SocketAddr::V4(..), Want::V4 | Want::Both)
                    )
                })
                .take(MAX_VALUES)
                .map(|p| p.addr.into())
                .collect();
        }
        Vec::new()
    }

    /// Patched (vendor/README.md): at capacity, forgets the peers that have not announced
    /// for `PEER_TTL` and, if none has, the one that announced longest ago. Upstream kept
    /// every peer for ever and, once full, stored nothing more, which a small DHT where every
    /// node stores every announce reaches after as many client sessions.
    fn make_room(&self, now: DateTime<Utc>) {
        if self.garbage_collect(now) > 0 {
            return;
        }
        let mut oldest: Option<(Id20, SocketAddr, DateTime<Utc>)> = None;
        for e in self.peers.iter() {
            for p in e.value() {
                if oldest.is_none_or(|(_, _, t)| p.time < t) {
                    oldest = Some((*e.key(), p.addr, p.time));
                }
            }
        }
        let Some((hash, addr, _)) = oldest else {
            return;
        };
        let mut removed = 0;
        if let Some(mut peers) = self.peers.get_mut(&hash) {
            let before = peers.len();
            peers.retain(|p| p.addr != addr);
            removed = (before - peers.len()) as u32;
        }
        self.peers.remove_if(&hash, |_, peers| peers.is_empty());
        self.peers_len
            .fetch_sub(removed, std::sync::atomic::Ordering::SeqCst);
    }

    /// Patched (vendor/README.md; upstream's was a `todo!()`): forgets the peers that have
    /// not announced for `PEER_TTL` by `now`; how many.
    pub fn garbage_collect(&self, now: DateTime<Utc>) -> u32 {
        let stale = now - PEER_TTL;
        let mut removed = 0u32;
        self.peers.retain(|_, peers| {
            let before = peers.len();
            peers.retain(|p| p.time > stale);
            removed += (before - peers.len()) as u32;
            !peers.is_empty()
        });
        self.peers_len
            .fetch_sub(removed, std::sync::atomic::Ordering::SeqCst);
        removed
    }
}

#[cfg(test)]
mod patched_tests {
    use super::*;

    fn announce(store: &PeerStore, info_hash: Id20, port: u16, from: SocketAddr) -> bool {
        let id = Id20::new([9; 20]);
        let token = store.gen_token_for(id, from);
        let ann = AnnouncePeer {
            id,
            implied_port: 0,
            info_hash,
            port,
            token: ByteBufOwned::from(&token[..]),
        };
        store.store_peer(&ann, from, true)
    }

    #[test]
    fn a_full_store_forgets_the_stale_then_the_oldest_and_answers_only_the_fresh() {
        let mut store = PeerStore::new(Id20::new([1; 20]));
        store.max_remembered_peers = 2;
        let (h, from) = (Id20::new([2; 20]), "127.0.0.1:7000".parse().unwrap());
        assert!(announce(&store, h, 1, from));
        assert!(announce(&store, h, 2, from));
        // Full: the third takes the oldest's place.
        assert!(announce(&store, h, 3, from));
        let ports: Vec<u16> = store
            .get_for_info_hash(h, Want::V4)
            .into_iter()
            .map(|a| a.0.port())
            .collect();
        assert_eq!(ports, [3, 2]);
        // A peer that has not announced for the TTL is not handed out, and goes first.
        store.peers.get_mut(&h).unwrap()[0].time = Utc::now() - PEER_TTL * 2;
        assert_eq!(store.get_for_info_hash(h, Want::V4).len(), 1);
        assert!(announce(&store, h, 4, from));
        assert_eq!(store.get_for_info_hash(h, Want::V4).len(), 2);
        assert_eq!(store.peers_len.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
