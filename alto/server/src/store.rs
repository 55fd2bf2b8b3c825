//! Where the election's state lives (`[pid-heads] store`): in this process
//! ([`crate::election::Registry`], one server), or in etcd, shared by replicas
//! ([`EtcdStore`]; `docs/pid-head.md`, "Replicas").
//!
//! In etcd every PID has two keys under the store's prefix:
//! - `head/PID`: the head and its lease token (JSON), attached to an etcd lease whose TTL is
//!   the headship's: if no replica keeps it alive, etcd deletes the key and the headship ends.
//!   The key's create revision is the headship's **epoch**; a new headship is a new key, so
//!   epochs only grow and no two headships share one.
//! - `state/PID`: its candidates and barred endpoints (JSON), without a lease.
//!
//! A change reads both keys (from the replica's cache, which a watch keeps current, or from
//! etcd after a conflict), decides on the PID's [`PidState`] as the memory store does, and
//! writes back in one transaction that holds only if neither key changed since it was read
//! (optimistic concurrency, as etcd's own STM). A new headship is created only where no head
//! key exists, so two replicas that elect at once cannot both win. A replica that cannot
//! reach etcd answers joins and renewals with an error and keeps what it last saw only until
//! those leases' expiry, so within one TTL it stops naming heads that others may have
//! replaced.

use crate::election::{ElectionConfig, ElectionEvent, HeadLease, Joined, LeaseError, PidState};
use crate::etcd::{prefix_end, Compare, Etcd, EtcdError, Event, Kv, Op, Watched};
use alto_model::pidhead::{HeadInfo, JoinRequest, Lease};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Why the etcd store could not carry out a change.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// etcd failed or could not be reached.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// Other replicas changed the PID every time this one tried.
    #[error("the PID's election changed under every attempt; try again")]
    Contended,
    /// A stored value could not be read.
    #[error("a stored election state could not be read: {0}")]
    Corrupt(String),
}

/// Attempts of one change before it is given up as contended.
const ATTEMPTS: usize = 8;

/// Locks that put a replica's own changes of one PID in turn (by the PID's hash), so that
/// concurrent joins through one replica queue instead of failing each other's transactions.
const STRIPES: usize = 64;

/// How often the member the watch streams from must answer a read ([`Etcd::probe`]).
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// What the store knows of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct KeyRev {
    /// The key's mod revision, 0 when it does not exist.
    modified: i64,
    /// The revision of the last change applied (a delete's too): older news is ignored.
    seen: i64,
    /// The lease the key is attached to.
    lease: i64,
}

impl KeyRev {
    fn of(kv: &Kv) -> Self {
        KeyRev {
            modified: kv.mod_revision,
            seen: kv.mod_revision,
            lease: kv.lease,
        }
    }
}

/// One PID as last read or written.
#[derive(Clone, Debug, Default)]
struct Cached {
    state: PidState,
    head: KeyRev,
    rest: KeyRev,
}

#[derive(Default)]
struct Cache {
    pids: HashMap<String, Cached>,
    /// Live tokens → PID.
    tokens: HashMap<String, String>,
}

impl Cache {
    fn set(&mut self, pid: &str, c: Cached) {
        if let Some(old) = self.pids.get(pid).and_then(|o| o.state.head.as_ref()) {
            self.tokens.remove(old.token());
        }
        if let Some(h) = &c.state.head {
            self.tokens.insert(h.token().to_owned(), pid.to_owned());
        }
        self.pids.insert(pid.to_owned(), c);
    }
}

/// The state of `st` without its head: what `state/PID` holds.
fn rest_of(st: &PidState) -> PidState {
    let mut rest = st.clone();
    rest.head = None;
    rest
}

/// The election state in etcd; see the module's documentation.
pub struct EtcdStore {
    etcd: Etcd,
    config: ElectionConfig,
    prefix: String,
    cache: RwLock<Cache>,
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl EtcdStore {
    /// A store under `prefix` of the cluster at `endpoints`.
    pub fn new(
        config: ElectionConfig,
        endpoints: Vec<String>,
        prefix: String,
        timeout: Duration,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        EtcdStore {
            etcd: Etcd::new(endpoints, timeout, tls),
            config,
            prefix,
            cache: RwLock::new(Cache::default()),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// The lock that puts this replica's changes of `pid` in turn.
    fn stripe(&self, pid: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(pid);
        &self.stripes[(h % STRIPES as u64) as usize]
    }

    /// The settings of the election.
    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    fn head_key(&self, pid: &str) -> Vec<u8> {
        format!("{}head/{pid}", self.prefix).into_bytes()
    }

    fn rest_key(&self, pid: &str) -> Vec<u8> {
        format!("{}state/{pid}", self.prefix).into_bytes()
    }

    /// Applies a key read or watched to `cached`.
    fn apply(
        &self,
        kind: &str,
        kv: &Kv,
        deleted: bool,
        cached: &mut Cached,
    ) -> Result<(), StoreError> {
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("{kind}: {e}"));
        if kind == "head" {
            if kv.mod_revision <= cached.head.seen && cached.head.seen > 0 {
                return Ok(());
            }
            if deleted {
                // The headship ended (resigned, revoked, or its etcd lease ran out): it stays
                // as lapsed, so that the next tick promotes a standby as in memory.
                if let Some(h) = cached.state.head.as_mut() {
                    h.lapse();
                }
                cached.head = KeyRev {
                    modified: 0,
                    seen: kv.mod_revision,
                    lease: 0,
                };
            } else {
                let mut h: HeadLease = serde_json::from_slice(&kv.value).map_err(corrupt)?;
                h.set_epoch(kv.create_revision as u64);
                cached.state.head = Some(h);
                cached.head = KeyRev::of(kv);
            }
        } else {
            if kv.mod_revision <= cached.rest.seen && cached.rest.seen > 0 {
                return Ok(());
            }
            let head = cached.state.head.take();
            if deleted {
                cached.state = PidState::default();
                cached.rest = KeyRev {
                    modified: 0,
                    seen: kv.mod_revision,
                    lease: 0,
                };
            } else {
                cached.state = serde_json::from_slice(&kv.value).map_err(corrupt)?;
                cached.rest = KeyRev::of(kv);
            }
            cached.state.head = head;
        }
        Ok(())
    }

    /// The PID and kind (`head` or `state`) of a key under the prefix.
    fn split<'a>(&self, key: &'a [u8]) -> Option<(&'a str, &'a str)> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(self.prefix.as_str())?;
        let (kind, pid) = rest.split_once('/')?;
        matches!(kind, "head" | "state").then_some((pid, kind))
    }

    /// Applies watched changes to the cache.
    fn apply_events(&self, events: &[Event]) {
        let mut cache = self.cache.write().expect("etcd cache lock");
        for e in events {
            let (kv, deleted) = match e {
                Event::Put(kv) => (kv, false),
                Event::Delete(kv) => (kv, true),
            };
            let Some((pid, kind)) = self.split(&kv.key) else {
                continue;
            };
            let mut c = cache.pids.get(pid).cloned().unwrap_or_default();
            match self.apply(kind, kv, deleted, &mut c) {
                Ok(()) => cache.set(pid, c),
                Err(e) => tracing::warn!(pid, "etcd store: {e}"),
            }
        }
    }

    /// Reads everything under the prefix into a fresh cache; the revision read at.
    async fn sync(&self) -> Result<i64, StoreError> {
        let prefix = self.prefix.as_bytes();
        let (rev, kvs) = self.etcd.range(prefix, Some(&prefix_end(prefix))).await?;
        let mut fresh = Cache::default();
        for kv in &kvs {
            let Some((pid, kind)) = self.split(&kv.key) else {
                continue;
            };
            let mut c = fresh.pids.get(pid).cloned().unwrap_or_default();
            match self.apply(kind, kv, false, &mut c) {
                Ok(()) => fresh.set(pid, c),
                Err(e) => tracing::warn!(pid, "etcd store: {e}"),
            }
        }
        *self.cache.write().expect("etcd cache lock") = fresh;
        Ok(rev)
    }

    /// Keeps the cache current: reads everything, then watches from there, asking the
    /// watched member for a read every second (a stopped or cut-off member's watch would go
    /// silent); after any failure, again from the next member. Runs until dropped.
    pub async fn follow(self: Arc<Self>) {
        loop {
            if let Err(e) = self.follow_once().await {
                tracing::warn!("etcd store: following etcd failed: {e}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn follow_once(&self) -> Result<(), StoreError> {
        let rev = self.sync().await?;
        let mut watch = self.etcd.watch(self.prefix.as_bytes(), rev + 1).await?;
        // A stalled member's watch goes quiet without an error: it must keep answering.
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        probe.tick().await;
        loop {
            tokio::select! {
                w = watch.next() => match w? {
                    Some(Watched::Events(_, events)) => self.apply_events(&events),
                    Some(Watched::Compacted) | None => return Ok(()),
                },
                _ = probe.tick() => self.etcd.probe(&watch, self.prefix.as_bytes()).await?,
            }
        }
    }

    /// One PID read from etcd (both keys at one revision).
    async fn read(&self, pid: &str) -> Result<Cached, StoreError> {
        let r = self
            .etcd
            .txn(
                &[],
                &[Op::Get(self.head_key(pid)), Op::Get(self.rest_key(pid))],
                &[],
            )
            .await?;
        let mut c = Cached::default();
        for (kind, kvs) in ["head", "state"].into_iter().zip(&r.reads) {
            for kv in kvs {
                self.apply(kind, kv, false, &mut c)?;
            }
        }
        // What is absent was seen absent at this revision.
        c.head.seen = c.head.seen.max(r.revision);
        c.rest.seen = c.rest.seen.max(r.revision);
        self.cache
            .write()
            .expect("etcd cache lock")
            .set(pid, c.clone());
        Ok(c)
    }

    fn cached(&self, pid: &str) -> Option<Cached> {
        self.cache
            .read()
            .expect("etcd cache lock")
            .pids
            .get(pid)
            .cloned()
    }

    /// Writes `after` over `before` if neither key changed meanwhile; the PID as written, or
    /// `None` when another replica came first.
    async fn commit(
        &self,
        pid: &str,
        before: &Cached,
        after: &PidState,
    ) -> Result<Option<Cached>, StoreError> {
        let (hk, rk) = (self.head_key(pid), self.rest_key(pid));
        let rest = rest_of(after);
        let mut rest_pending = rest != rest_of(&before.state);
        let old = before
            .state
            .head
            .as_ref()
            .filter(|_| before.head.modified > 0);
        let new = after.head.as_ref();
        let same = matches!((old, new),
            (Some(o), Some(n)) if n.epoch() != 0 && n.epoch() == o.epoch());
        let mut out = before.clone();
        out.state = after.clone();
        // Runs one transaction over both keys as `out` last knew them; the revision written.
        let run = |out: &Cached, mut ops: Vec<Op>, rest_pending: bool| {
            let compare = [
                Compare::Modified(hk.clone(), out.head.modified),
                Compare::Modified(rk.clone(), out.rest.modified),
            ];
            if rest_pending {
                ops.push(Op::Put {
                    key: rk.clone(),
                    value: encode(&rest),
                    lease: 0,
                });
            }
            async move {
                let r = self.etcd.txn(&compare, &ops, &[]).await?;
                Ok::<_, EtcdError>(r.succeeded.then_some(r.revision))
            }
        };
        let wrote = |out: &mut Cached, rev: i64, rest_pending: bool| {
            if rest_pending {
                out.rest = KeyRev {
                    modified: rev,
                    seen: rev,
                    lease: 0,
                };
            }
        };
        if old.is_some() && !same {
            // The headship ended; a new one, if any, is created next, as a new key.
            let Some(rev) = run(&out, vec![Op::Delete(hk.clone())], rest_pending).await? else {
                return Ok(None);
            };
            wrote(&mut out, rev, rest_pending);
            rest_pending = false;
            out.head = KeyRev {
                modified: 0,
                seen: rev,
                lease: 0,
            };
            if let Err(e) = self.etcd.revoke(before.head.lease).await {
                tracing::debug!("etcd store: revoking an ended headship's lease: {e}");
            }
        }
        match new {
            Some(n) if same => {
                // The same headship, changed (renewed, a new token, new URLs).
                let put = Op::Put {
                    key: hk.clone(),
                    value: encode(n),
                    lease: before.head.lease,
                };
                let Some(rev) = run(&out, vec![put], rest_pending).await? else {
                    return Ok(None);
                };
                wrote(&mut out, rev, rest_pending);
                out.head.modified = rev;
                out.head.seen = rev;
            }
            Some(n) => {
                // A new headship: a new key under a new etcd lease, only where there is none.
                let lease = self.etcd.grant(self.config.lease_ttl_secs).await?;
                let put = Op::Put {
                    key: hk.clone(),
                    value: encode(n),
                    lease,
                };
                let Some(rev) = run(&out, vec![put], rest_pending).await? else {
                    if let Err(e) = self.etcd.revoke(lease).await {
                        tracing::debug!("etcd store: revoking an unused lease: {e}");
                    }
                    return Ok(None);
                };
                wrote(&mut out, rev, rest_pending);
                out.head = KeyRev {
                    modified: rev,
                    seen: rev,
                    lease,
                };
                if let Some(h) = out.state.head.as_mut() {
                    h.set_epoch(rev as u64);
                }
            }
            None if rest_pending => {
                let Some(rev) = run(&out, Vec::new(), true).await? else {
                    return Ok(None);
                };
                wrote(&mut out, rev, true);
            }
            None => {}
        }
        self.cache
            .write()
            .expect("etcd cache lock")
            .set(pid, out.clone());
        Ok(Some(out))
    }

    /// Decides on `pid`'s state with `decide` and writes the outcome, again on a fresh read
    /// while other replicas come first, in turn with this replica's other changes of `pid`.
    /// What `decide` said, and the state written.
    async fn update<R>(
        &self,
        pid: &str,
        decide: impl FnMut(&mut PidState) -> R,
    ) -> Result<(R, PidState), StoreError> {
        let _turn = self.stripe(pid).lock().await;
        self.change(pid, decide).await
    }

    /// [`EtcdStore::update`] without waiting for this replica's other changes of `pid`: for
    /// renewals, which only the PID's head makes (measured: queueing them halved the
    /// renewals per second that one head's concurrent renewals reached).
    async fn change<R>(
        &self,
        pid: &str,
        mut decide: impl FnMut(&mut PidState) -> R,
    ) -> Result<(R, PidState), StoreError> {
        let mut cached = match self.cached(pid) {
            Some(c) => c,
            None => self.read(pid).await?,
        };
        for _ in 0..ATTEMPTS {
            let mut st = cached.state.clone();
            let r = decide(&mut st);
            if st == cached.state {
                return Ok((r, st));
            }
            match self.commit(pid, &cached, &st).await? {
                Some(written) => return Ok((r, written.state)),
                None => cached = self.read(pid).await?,
            }
        }
        Err(StoreError::Contended)
    }

    /// A join; see [`PidState::join`].
    pub async fn join(
        &self,
        pid: &str,
        req: &JoinRequest,
        endpoint: IpAddr,
        distance_ms: Option<f64>,
        now: u64,
        mut new_token: impl FnMut() -> Option<String>,
    ) -> Result<Joined, StoreError> {
        let config = &self.config;
        let (mut joined, st) = self
            .update(pid, |st| {
                st.join(config, pid, req, endpoint, distance_ms, now, &mut new_token)
            })
            .await?;
        joined.head = st.info();
        Ok(joined)
    }

    /// The PID whose live lease has `token`: from the cache, else from etcd (a lease just
    /// granted through another replica).
    async fn pid_of_token(&self, token: &str, now: u64) -> Result<Option<String>, StoreError> {
        let known = self
            .cache
            .read()
            .expect("etcd cache lock")
            .tokens
            .get(token)
            .cloned();
        if known.is_some() {
            return Ok(known);
        }
        let prefix = format!("{}head/", self.prefix).into_bytes();
        let (_, kvs) = self.etcd.range(&prefix, Some(&prefix_end(&prefix))).await?;
        for kv in kvs {
            let Some((pid, _)) = self.split(&kv.key) else {
                continue;
            };
            let Ok(h) = serde_json::from_slice::<HeadLease>(&kv.value) else {
                continue;
            };
            if h.token() == token && h.expires() > now {
                return Ok(Some(pid.to_owned()));
            }
        }
        Ok(None)
    }

    /// Renews the lease of `token`, presented from `source`: the etcd lease is kept alive
    /// and the head's expiry written.
    pub async fn renew(
        &self,
        token: &str,
        source: IpAddr,
        now: u64,
    ) -> Result<Result<(String, Lease, HeadInfo), LeaseError>, StoreError> {
        let Some(pid) = self.pid_of_token(token, now).await? else {
            return Ok(Err(LeaseError::Unknown));
        };
        let config = &self.config;
        let (renewed, st) = self
            .change(&pid, |st| st.renew(config, token, source, now))
            .await?;
        let Ok((lease, _)) = renewed else {
            return Ok(renewed.map(|(l, h)| (pid, l, h)));
        };
        let id = self.cached(&pid).map_or(0, |c| c.head.lease);
        if id == 0 || self.etcd.keep_alive(id).await? == 0 {
            // etcd ended the lease meanwhile: the headship is over.
            return Ok(Err(LeaseError::Unknown));
        }
        let head = st.info().ok_or(StoreError::Contended)?;
        Ok(Ok((pid, lease, head)))
    }

    /// Gives up the lease of `token`; see [`PidState::resign`].
    pub async fn resign(
        &self,
        token: &str,
        source: IpAddr,
        now: u64,
        mut new_token: impl FnMut() -> Option<String>,
    ) -> Result<Result<(String, Vec<ElectionEvent>), LeaseError>, StoreError> {
        let Some(pid) = self.pid_of_token(token, now).await? else {
            return Ok(Err(LeaseError::Unknown));
        };
        let config = &self.config;
        let (events, _) = self
            .update(&pid, |st| {
                st.resign(config, &pid, token, source, now, &mut new_token)
            })
            .await?;
        Ok(events.map(|e| (pid.clone(), e)))
    }

    /// Revokes `pid`'s headship if `endpoint` holds it; see [`PidState::revoke`].
    pub async fn revoke(
        &self,
        pid: &str,
        endpoint: IpAddr,
        now: u64,
        until: u64,
        mut new_token: impl FnMut() -> Option<String>,
    ) -> Result<Vec<ElectionEvent>, StoreError> {
        let config = &self.config;
        let (events, _) = self
            .update(pid, |st| {
                st.revoke(config, pid, endpoint, now, until, &mut new_token)
            })
            .await?;
        Ok(events)
    }

    /// Ends lapsed headships (by this replica's clock, or deleted in etcd) and promotes
    /// standbys, as [`crate::election::Registry::tick`] does.
    pub async fn tick(
        &self,
        now: u64,
        mut new_token: impl FnMut() -> Option<String>,
    ) -> Vec<ElectionEvent> {
        let lapsed: Vec<String> = self
            .cache
            .read()
            .expect("etcd cache lock")
            .pids
            .iter()
            .filter(|(_, c)| c.state.head.as_ref().is_some_and(|h| h.expires() <= now))
            .map(|(p, _)| p.clone())
            .collect();
        let mut events = Vec::new();
        let config = &self.config;
        for pid in lapsed {
            match self
                .update(&pid, |st| st.expire(config, &pid, now, &mut new_token))
                .await
            {
                Ok((e, _)) => events.extend(e),
                Err(e) => tracing::debug!(pid, "etcd store: a lapse was not written: {e}"),
            }
        }
        events
    }

    /// The live head of a PID, as this replica last saw it.
    pub fn head(&self, pid: &str, now: u64) -> Option<HeadInfo> {
        self.cached(pid)?.state.live_head(now)
    }

    /// Every PID with a live head, sorted by PID.
    pub fn heads(&self, now: u64) -> Vec<(String, HeadInfo)> {
        let cache = self.cache.read().expect("etcd cache lock");
        let mut v: Vec<(String, HeadInfo)> = cache
            .pids
            .iter()
            .filter_map(|(p, c)| c.state.live_head(now).map(|h| (p.clone(), h)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// A stored value's JSON (the election's own types, which always encode).
fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
