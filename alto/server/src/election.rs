//! PID Head election and leases (the draft, section 2.3), with no I/O: the clock (`now`, in
//! seconds), lease tokens and the distances the server measured come in as arguments.
//!
//! A client joins for the PID of its address. A PID with no live head gets one at once:
//! the joiner under the `first` policy (the draft's), or under `scored` the best candidate
//! by weighted capabilities, where continuous lifetime and distance are measured by the
//! server and a newcomer must beat a working head by a hysteresis margin. Heads hold leases
//! renewed with a secret token; a lease that lapses ends the headship and the best recent
//! standby candidate is made head at once (it learns of it, and gets its token, on its next
//! join).
//!
//! Every decision is made on one PID's [`PidState`], so that a store can keep the states
//! where it likes: [`Registry`] keeps them in memory (one server), `crate::store`'s etcd
//! store in etcd (replicas), reading a PID's state, deciding here and writing it back in a
//! transaction. Each headship has an **epoch** that only grows: the store gives it when the
//! headship is written (a counter in memory, the head key's create revision in etcd), and a
//! higher epoch is the newer head.

use alto_model::pidhead::{rfc3339, CandidateClaims, HeadInfo, JoinRequest, Lease};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// How heads are chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum ElectionPolicy {
    /// The first client to join a PID without a head becomes its head (the draft's).
    First,
    /// Capabilities weighted; see [`Weights`].
    Scored(Weights),
}

/// Weights of the `scored` policy. A candidate's score is
/// `cpu·ln(1+GHz) + memory·ln(1+GiB) + lifetime·ln(1+hours present) + distance/(1+ms)`,
/// with presence and distance as the server measured them.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// Weight of the CPU clock.
    pub cpu: f64,
    /// Weight of the memory.
    pub memory: f64,
    /// Weight of the continuous lifetime the server has seen.
    pub lifetime: f64,
    /// Weight of closeness to the server (measured round trip).
    pub distance: f64,
    /// A newcomer unseats a live head only with a score above `head · (1 + hysteresis)`.
    pub hysteresis: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            cpu: 1.0,
            memory: 1.0,
            lifetime: 2.0,
            distance: 1.0,
            hysteresis: 0.25,
        }
    }
}

/// Settings of the election.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// The policy.
    pub policy: ElectionPolicy,
    /// Seconds a lease lasts unless renewed.
    pub lease_ttl_secs: u64,
    /// A candidate seen within this many seconds is a standby; presence is continuous while
    /// the gaps between its joins stay under it.
    pub standby_window_secs: u64,
    /// Candidates remembered per PID (the oldest are forgotten first).
    pub max_candidates: usize,
}

impl ElectionConfig {
    /// How stale a candidate's recorded presence may grow before a join records it again (a
    /// sixth of the standby window): a re-join within it changes nothing, so a store has
    /// nothing to write (etcd: no write at all). Presence is then known to within this step.
    pub fn presence_step_secs(&self) -> u64 {
        (self.standby_window_secs / 6).max(1)
    }

    /// When a member should join again, the server's advice in its join answer
    /// (`rejoin-secs`, `docs/pid-head.md`). A `kept` candidate, one step before its standby
    /// window closes: so it stays a standby, its presence continuous, and each of its joins
    /// is one store write. One not kept (every slot held) is no standby: four windows, and
    /// its head's failure brings it back sooner.
    pub fn rejoin_secs(&self, kept: bool) -> u64 {
        let window = self.standby_window_secs.max(1);
        match kept {
            true => window.saturating_sub(self.presence_step_secs()).max(1),
            false => 4 * window,
        }
    }
}

/// A measured distance that moved by less than this share is not recorded again: round trips
/// jitter, and each change is a store write.
const DISTANCE_TOLERANCE: f64 = 0.25;

/// Whether presence last recorded at `last_seen` is due to be recorded again at `now`.
fn presence_due(config: &ElectionConfig, last_seen: u64, now: u64) -> bool {
    now.saturating_sub(last_seen) >= config.presence_step_secs()
}

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig {
            policy: ElectionPolicy::First,
            lease_ttl_secs: 30,
            standby_window_secs: 90,
            max_candidates: 64,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Candidate {
    endpoint: IpAddr,
    tracker: String,
    ecs_url: String,
    caps: CandidateClaims,
    distance_ms: Option<f64>,
    first_seen: u64,
    last_seen: u64,
}

/// A PID's head and its lease.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadLease {
    endpoint: IpAddr,
    tracker: String,
    ecs_url: String,
    token: String,
    expires: u64,
    since: u64,
    /// Whether the head has been told (a promoted standby is told on its next join).
    told: bool,
    /// The headship's epoch; 0 until the store has written it.
    #[serde(default)]
    epoch: u64,
}

impl HeadLease {
    fn of(c: &Candidate, token: String, now: u64, expires: u64) -> Self {
        HeadLease {
            endpoint: c.endpoint,
            tracker: c.tracker.clone(),
            ecs_url: c.ecs_url.clone(),
            token,
            expires,
            since: now,
            told: false,
            epoch: 0,
        }
    }

    /// The head's endpoint.
    pub fn endpoint(&self) -> IpAddr {
        self.endpoint
    }

    /// The lease token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// When the lease lapses unless renewed.
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// The headship's epoch (0: not written yet).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Ends the lease now (its key is gone from the store).
    pub fn lapse(&mut self) {
        self.expires = 0;
    }

    /// Gives the headship its epoch, once the store has written it.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }
}

/// One PID's election: its head, its candidates and the endpoints barred from headship.
/// What a store keeps per PID.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PidState {
    /// The head, live or lapsed.
    pub head: Option<HeadLease>,
    candidates: Vec<Candidate>,
    /// Endpoints whose headship was revoked, and until when they are no candidates.
    revoked: Vec<(IpAddr, u64)>,
}

/// Most revoked endpoints remembered per PID (the oldest ban goes first).
const MAX_REVOKED: usize = 64;

/// What happened, for counters and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionEvent {
    /// A head was elected for the PID.
    Elected {
        /// The PID.
        pid: String,
        /// The new head.
        endpoint: IpAddr,
    },
    /// A lease lapsed.
    Lapsed {
        /// The PID.
        pid: String,
        /// The head whose lease lapsed.
        endpoint: IpAddr,
    },
}

/// The outcome of a join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    /// The joiner's lease if it is (now) head.
    pub lease: Option<Lease>,
    /// The PID's live head, if any (the joiner itself when it is head).
    pub head: Option<HeadInfo>,
    /// Elections and lapses the join caused.
    pub events: Vec<ElectionEvent>,
    /// The joiner is remembered as a candidate: it stays a standby while it joins again
    /// within the standby window ([`ElectionConfig::rejoin_secs`]).
    pub kept: bool,
}

/// Why a lease request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// No live lease has this token (never issued, lapsed, resigned or revoked).
    #[error("no live lease has this token: it lapsed, was resigned or revoked, or never existed")]
    Unknown,
    /// The token belongs to another endpoint's lease.
    #[error("this lease belongs to another endpoint")]
    WrongEndpoint,
}

fn score(w: &Weights, c: &Candidate, now: u64) -> f64 {
    let ghz = c.caps.cpu_hz.unwrap_or(0.0) / 1e9;
    let gib = c.caps.memory_bytes.unwrap_or(0.0) / (1u64 << 30) as f64;
    let hours = now.saturating_sub(c.first_seen) as f64 / 3600.0;
    let closeness = c.distance_ms.map_or(0.0, |d| 1.0 / (1.0 + d.max(0.0)));
    w.cpu * (1.0 + ghz).ln()
        + w.memory * (1.0 + gib).ln()
        + w.lifetime * (1.0 + hours).ln()
        + w.distance * closeness
}

impl PidState {
    /// The head as the wire shows it, live or not.
    pub fn info(&self) -> Option<HeadInfo> {
        let h = self.head.as_ref()?;
        Some(HeadInfo {
            endpoint: alto_model::addr::typed_addr(h.endpoint),
            tracker: h.tracker.clone(),
            ecs_url: h.ecs_url.clone(),
            lease_expires: rfc3339(h.expires),
            since: Some(rfc3339(h.since)),
            epoch: (h.epoch > 0).then_some(h.epoch),
        })
    }

    /// The live head, if any.
    pub fn live_head(&self, now: u64) -> Option<HeadInfo> {
        self.head.as_ref().filter(|h| h.expires > now)?;
        self.info()
    }

    /// Whether a candidate seen within the standby window could be made head now.
    pub fn has_standby(&self, config: &ElectionConfig, now: u64) -> bool {
        self.best(config, now, None).is_some()
    }

    /// The best recent candidate under `config`, other than `except`.
    fn best(&self, config: &ElectionConfig, now: u64, except: Option<IpAddr>) -> Option<usize> {
        let recent = |c: &&Candidate| {
            now.saturating_sub(c.last_seen) <= config.standby_window_secs
                && Some(c.endpoint) != except
        };
        let indexed = self
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| recent(c));
        match &config.policy {
            // The longest present candidate: the first of the draft's joiners still around.
            ElectionPolicy::First => indexed
                .min_by_key(|(_, c)| (c.first_seen, c.last_seen))
                .map(|(i, _)| i),
            ElectionPolicy::Scored(w) => indexed
                .max_by(|a, b| score(w, a.1, now).total_cmp(&score(w, b.1, now)))
                .map(|(i, _)| i),
        }
    }

    /// Ends the headship if its lease lapsed and promotes the best standby. With no token
    /// to give (`new_token` failed) the PID stays without a head until the next join.
    pub fn expire(
        &mut self,
        config: &ElectionConfig,
        pid: &str,
        now: u64,
        new_token: &mut impl FnMut() -> Option<String>,
    ) -> Vec<ElectionEvent> {
        let mut events = Vec::new();
        self.expire_into(config, pid, now, new_token, &mut events);
        events
    }

    fn expire_into(
        &mut self,
        config: &ElectionConfig,
        pid: &str,
        now: u64,
        new_token: &mut impl FnMut() -> Option<String>,
        events: &mut Vec<ElectionEvent>,
    ) {
        let lapsed = match &self.head {
            Some(h) if h.expires > now => return,
            Some(h) => {
                events.push(ElectionEvent::Lapsed {
                    pid: pid.to_owned(),
                    endpoint: h.endpoint,
                });
                h.endpoint
            }
            None => return,
        };
        self.head = None;
        let Some(c) = self
            .best(config, now, Some(lapsed))
            .map(|i| &self.candidates[i])
        else {
            return;
        };
        let Some(token) = new_token() else { return };
        let endpoint = c.endpoint;
        self.head = Some(HeadLease::of(c, token, now, now + config.lease_ttl_secs));
        events.push(ElectionEvent::Elected {
            pid: pid.to_owned(),
            endpoint,
        });
    }

    /// A join from `endpoint` (already checked to be the request's source and inside the
    /// PID), with the round trip the server measured to it. When `new_token` yields `None`
    /// nobody is elected and the joiner gets no lease; the caller tells it the server failed.
    /// The answer's `head` is the head as it is before the store gives a new headship its
    /// epoch: take it from [`PidState::info`] after writing.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &mut self,
        config: &ElectionConfig,
        pid: &str,
        req: &JoinRequest,
        endpoint: IpAddr,
        distance_ms: Option<f64>,
        now: u64,
        mut new_token: impl FnMut() -> Option<String>,
    ) -> Joined {
        let mut events = Vec::new();
        let window = config.standby_window_secs;
        let ttl = config.lease_ttl_secs;
        self.expire_into(config, pid, now, &mut new_token, &mut events);
        match self.candidates.iter_mut().find(|c| c.endpoint == endpoint) {
            Some(c) => {
                if now.saturating_sub(c.last_seen) > window {
                    c.first_seen = now; // presence was broken
                }
                if presence_due(config, c.last_seen, now) {
                    c.last_seen = now;
                }
                c.tracker = req.tracker.clone();
                c.ecs_url = req.effective_ecs_url();
                c.caps = req.capabilities.clone();
                if let Some(d) = distance_ms {
                    let moved = c.distance_ms.is_none_or(|old| {
                        (d - old).abs() > DISTANCE_TOLERANCE * old.abs().max(1.0)
                    });
                    if moved {
                        c.distance_ms = Some(d);
                    }
                }
            }
            None => {
                if self
                    .revoked
                    .iter()
                    .any(|&(e, until)| e == endpoint && until > now)
                {
                    // Its answers failed the server's checks: a member only, for a while.
                    return Joined {
                        lease: None,
                        head: self.info(),
                        events,
                        kept: false,
                    };
                }
                let mut record = true;
                if self.candidates.len() >= config.max_candidates {
                    // Make room, never at the head's or a long-present standby's cost: a
                    // candidate gone quiet first, else (`scored`) the newest arrival. So a
                    // flood of joins churns among itself and cannot push a standby out.
                    // Under `first` a newcomer would rank last and be the next to go: it
                    // stays a member, and the store has nothing to write.
                    let head = self.head.as_ref().map(|h| h.endpoint);
                    let others = || {
                        self.candidates
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| Some(c.endpoint) != head)
                    };
                    let quiet = others()
                        .filter(|(_, c)| now.saturating_sub(c.last_seen) > window)
                        .min_by_key(|(_, c)| c.last_seen)
                        .map(|(i, _)| i);
                    let newest = || others().max_by_key(|(_, c)| c.first_seen).map(|(i, _)| i);
                    let room = quiet.or_else(|| match config.policy {
                        ElectionPolicy::Scored(_) => newest(),
                        ElectionPolicy::First => None,
                    });
                    match room {
                        Some(i) => drop(self.candidates.swap_remove(i)),
                        None => record = false,
                    }
                }
                if record {
                    self.candidates.push(Candidate {
                        endpoint,
                        tracker: req.tracker.clone(),
                        ecs_url: req.effective_ecs_url(),
                        caps: req.capabilities.clone(),
                        distance_ms,
                        first_seen: now,
                        last_seen: now,
                    });
                }
            }
        }
        let elect = match (&self.head, &config.policy) {
            (None, _) => true,
            (Some(h), ElectionPolicy::Scored(w)) if h.endpoint != endpoint => {
                let of = |e: IpAddr| {
                    self.candidates
                        .iter()
                        .find(|c| c.endpoint == e)
                        .map_or(0.0, |c| score(w, c, now))
                };
                of(endpoint) > of(h.endpoint) * (1.0 + w.hysteresis) + 1e-9
            }
            _ => false,
        };
        if elect {
            if let Some(c) = self.candidates.iter().find(|c| c.endpoint == endpoint) {
                if let Some(token) = new_token() {
                    self.head = Some(HeadLease::of(c, token, now, now + ttl));
                    events.push(ElectionEvent::Elected {
                        pid: pid.to_owned(),
                        endpoint,
                    });
                }
            }
        }
        let lease = match &mut self.head {
            Some(h) if h.endpoint == endpoint => {
                // The head's URLs follow its latest join.
                h.tracker = req.tracker.clone();
                h.ecs_url = req.effective_ecs_url();
                // A head that joins again lost its token, or restarted: a fresh one. Without
                // one it keeps the old lease, but is not given it again.
                let fresh = if h.told { new_token() } else { None };
                match fresh {
                    Some(token) => {
                        h.token = token;
                        h.expires = now + ttl;
                    }
                    None if h.told => {
                        return Joined {
                            lease: None,
                            head: self.info(),
                            events,
                            kept: true,
                        }
                    }
                    None => {}
                }
                h.told = true;
                Some(Lease {
                    token: h.token.clone(),
                    ttl_secs: h.expires.saturating_sub(now),
                })
            }
            _ => None,
        };
        Joined {
            lease,
            head: self.info(),
            events,
            kept: self.candidates.iter().any(|c| c.endpoint == endpoint),
        }
    }

    /// Whether the live lease has `token`.
    pub fn has_token(&self, token: &str, now: u64) -> bool {
        self.head
            .as_ref()
            .is_some_and(|h| h.token == token && h.expires > now)
    }

    /// Checks that the live lease has `token` and that `source` holds it.
    fn holder(
        &mut self,
        token: &str,
        source: IpAddr,
        now: u64,
    ) -> Result<&mut HeadLease, LeaseError> {
        match self.head.as_mut() {
            Some(h) if h.token == token && h.expires > now => {
                if h.endpoint == source {
                    Ok(h)
                } else {
                    Err(LeaseError::WrongEndpoint)
                }
            }
            _ => Err(LeaseError::Unknown),
        }
    }

    /// Renews the lease of `token`, presented from `source`.
    pub fn renew(
        &mut self,
        config: &ElectionConfig,
        token: &str,
        source: IpAddr,
        now: u64,
    ) -> Result<(Lease, HeadInfo), LeaseError> {
        let ttl = config.lease_ttl_secs;
        let h = self.holder(token, source, now)?;
        h.expires = now + ttl;
        let lease = Lease {
            token: h.token.clone(),
            ttl_secs: ttl,
        };
        let me = h.endpoint;
        if let Some(c) = self
            .candidates
            .iter_mut()
            .find(|c| c.endpoint == me && presence_due(config, c.last_seen, now))
        {
            c.last_seen = now;
        }
        let head = self.info().ok_or(LeaseError::Unknown)?;
        Ok((lease, head))
    }

    /// Gives up the lease of `token`; the best standby, if any, is made head at once (unless
    /// `new_token` yields `None`: then the PID waits for its next join).
    pub fn resign(
        &mut self,
        config: &ElectionConfig,
        pid: &str,
        token: &str,
        source: IpAddr,
        now: u64,
        mut new_token: impl FnMut() -> Option<String>,
    ) -> Result<Vec<ElectionEvent>, LeaseError> {
        let h = self.holder(token, source, now)?;
        h.expires = now; // lapse now
        let me = h.endpoint;
        // A resigning head is no standby for its own PID.
        self.candidates.retain(|c| c.endpoint != me);
        let mut events = self.expire(config, pid, now, &mut new_token);
        events.retain(|e| !matches!(e, ElectionEvent::Lapsed { .. }));
        Ok(events)
    }

    /// Revokes the headship if `endpoint` holds it (its answers failed the server's checks):
    /// its lease ends now, it is no candidate until `until`, and the best standby is made
    /// head at once (unless `new_token` yields `None`).
    pub fn revoke(
        &mut self,
        config: &ElectionConfig,
        pid: &str,
        endpoint: IpAddr,
        now: u64,
        until: u64,
        mut new_token: impl FnMut() -> Option<String>,
    ) -> Vec<ElectionEvent> {
        let Some(h) = self.head.as_mut().filter(|h| h.endpoint == endpoint) else {
            return Vec::new();
        };
        h.expires = now;
        self.candidates.retain(|c| c.endpoint != endpoint);
        self.revoked
            .retain(|&(e, until)| e != endpoint && until > now);
        if self.revoked.len() >= MAX_REVOKED {
            self.revoked.remove(0);
        }
        self.revoked.push((endpoint, until));
        self.expire(config, pid, now, &mut new_token)
    }
}

/// The memory store: every PID's head and candidates in this process (one server).
#[derive(Debug)]
pub struct Registry {
    config: ElectionConfig,
    pids: HashMap<String, PidState>,
    /// The last epoch given.
    epoch: u64,
}

impl Registry {
    /// An empty registry.
    pub fn new(config: ElectionConfig) -> Self {
        Registry {
            config,
            pids: HashMap::new(),
            epoch: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// Gives a new headship of `st` the next epoch.
    fn stamp(epoch: &mut u64, st: &mut PidState) {
        if let Some(h) = st.head.as_mut().filter(|h| h.epoch == 0) {
            *epoch += 1;
            h.epoch = *epoch;
        }
    }

    /// Ends lapsed leases and promotes standbys; call it often (the server does four times
    /// a second). `new_token` gives the promoted standby's token; `None` (no randomness at
    /// hand) leaves that PID without a head.
    pub fn tick(
        &mut self,
        now: u64,
        mut new_token: impl FnMut() -> Option<String>,
    ) -> Vec<ElectionEvent> {
        let mut events = Vec::new();
        for (pid, st) in &mut self.pids {
            st.expire_into(&self.config, pid, now, &mut new_token, &mut events);
            Self::stamp(&mut self.epoch, st);
        }
        events
    }

    /// A join; see [`PidState::join`].
    pub fn join(
        &mut self,
        pid: &str,
        req: &JoinRequest,
        endpoint: IpAddr,
        distance_ms: Option<f64>,
        now: u64,
        new_token: impl FnMut() -> Option<String>,
    ) -> Joined {
        let st = self.pids.entry(pid.to_owned()).or_default();
        let mut joined = st.join(
            &self.config,
            pid,
            req,
            endpoint,
            distance_ms,
            now,
            new_token,
        );
        Self::stamp(&mut self.epoch, st);
        joined.head = st.info();
        joined
    }

    /// Renews the lease of `token`, presented from `source`.
    pub fn renew(
        &mut self,
        token: &str,
        source: IpAddr,
        now: u64,
    ) -> Result<(String, Lease, HeadInfo), LeaseError> {
        let (pid, st) = Self::find_in(&mut self.pids, token, now)?;
        let (lease, head) = st.renew(&self.config, token, source, now)?;
        Ok((pid, lease, head))
    }

    /// Gives up the lease of `token`; see [`PidState::resign`].
    pub fn resign(
        &mut self,
        token: &str,
        source: IpAddr,
        now: u64,
        new_token: impl FnMut() -> Option<String>,
    ) -> Result<(String, Vec<ElectionEvent>), LeaseError> {
        let (pid, st) = Self::find_in(&mut self.pids, token, now)?;
        let events = st.resign(&self.config, &pid, token, source, now, new_token)?;
        Self::stamp(&mut self.epoch, st);
        Ok((pid, events))
    }

    /// Revokes the headship of `pid` if `endpoint` holds it; see [`PidState::revoke`].
    pub fn revoke(
        &mut self,
        pid: &str,
        endpoint: IpAddr,
        now: u64,
        until: u64,
        new_token: impl FnMut() -> Option<String>,
    ) -> Vec<ElectionEvent> {
        let Some(st) = self.pids.get_mut(pid) else {
            return Vec::new();
        };
        let events = st.revoke(&self.config, pid, endpoint, now, until, new_token);
        Self::stamp(&mut self.epoch, st);
        events
    }

    /// The PID and state whose live lease has `token`.
    fn find_in<'a>(
        pids: &'a mut HashMap<String, PidState>,
        token: &str,
        now: u64,
    ) -> Result<(String, &'a mut PidState), LeaseError> {
        pids.iter_mut()
            .find(|(_, st)| st.has_token(token, now))
            .map(|(pid, st)| (pid.clone(), st))
            .ok_or(LeaseError::Unknown)
    }

    /// The live head of a PID.
    pub fn head(&self, pid: &str, now: u64) -> Option<HeadInfo> {
        self.pids.get(pid)?.live_head(now)
    }

    /// Every PID with a live head, sorted by PID.
    pub fn heads(&self, now: u64) -> Vec<(String, HeadInfo)> {
        let mut v: Vec<(String, HeadInfo)> = self
            .pids
            .iter()
            .filter_map(|(p, st)| st.live_head(now).map(|h| (p.clone(), h)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Forgets PIDs that the network map no longer has.
    pub fn retain_pids(&mut self, keep: impl Fn(&str) -> bool) {
        self.pids.retain(|p, _| keep(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ip: &str, cpu: f64) -> (JoinRequest, IpAddr) {
        let r = JoinRequest {
            endpoint: format!("ipv4:{ip}"),
            tracker: format!("http://{ip}:6969/announce"),
            ecs_url: None,
            capabilities: CandidateClaims {
                cpu_hz: Some(cpu),
                memory_bytes: Some(4e9),
                ..Default::default()
            },
        };
        (r, ip.parse().unwrap())
    }

    fn tokens() -> impl FnMut() -> Option<String> {
        let mut n = 0;
        move || {
            n += 1;
            Some(format!("t{n}"))
        }
    }

    #[test]
    fn first_joiner_is_head_and_keeps_it() {
        let mut r = Registry::new(ElectionConfig::default());
        let mut t = tokens();
        let (a, ia) = req("127.1.0.1", 1e9);
        let (b, ib) = req("127.1.0.2", 9e9);
        let j = r.join("PID1", &a, ia, None, 100, &mut t);
        assert_eq!(
            j.lease,
            Some(Lease {
                token: "t1".into(),
                ttl_secs: 30
            })
        );
        assert_eq!(
            j.events,
            [ElectionEvent::Elected {
                pid: "PID1".into(),
                endpoint: ia
            }]
        );
        let j = r.join("PID1", &b, ib, None, 101, &mut t);
        assert_eq!(
            j.lease, None,
            "a better newcomer does not unseat under `first`"
        );
        assert_eq!(j.head.unwrap().endpoint, "ipv4:127.1.0.1");
        // Renewals keep it; another endpoint cannot use the token.
        assert_eq!(r.renew("t1", ia, 120).unwrap().1.ttl_secs, 30);
        assert_eq!(r.renew("t1", ib, 121), Err(LeaseError::WrongEndpoint));
        assert_eq!(r.renew("nope", ia, 121), Err(LeaseError::Unknown));
        assert_eq!(r.head("PID1", 149).unwrap().endpoint, "ipv4:127.1.0.1");
    }

    #[test]
    fn a_lapsed_lease_promotes_the_best_standby_at_once() {
        let mut r = Registry::new(ElectionConfig::default());
        let mut t = tokens();
        let (a, ia) = req("127.1.0.1", 1e9);
        let (b, ib) = req("127.1.0.2", 1e9);
        let (c, ic) = req("127.1.0.3", 1e9);
        r.join("PID1", &a, ia, None, 0, &mut t);
        r.join("PID1", &b, ib, None, 5, &mut t);
        r.join("PID1", &c, ic, None, 6, &mut t);
        assert!(r.tick(29, &mut t).is_empty());
        let ev = r.tick(30, &mut t);
        assert_eq!(
            ev,
            [
                ElectionEvent::Lapsed {
                    pid: "PID1".into(),
                    endpoint: ia
                },
                ElectionEvent::Elected {
                    pid: "PID1".into(),
                    endpoint: ib
                }
            ]
        );
        assert_eq!(
            r.head("PID1", 30).unwrap().endpoint,
            "ipv4:127.1.0.2",
            "the directory shows it at once"
        );
        assert_eq!(
            r.renew("t1", ia, 31),
            Err(LeaseError::Unknown),
            "the old token is dead"
        );
        // The promoted standby learns of it, and gets its token, on its next join.
        let j = r.join("PID1", &b, ib, None, 40, &mut t);
        assert_eq!(
            j.lease,
            Some(Lease {
                token: "t2".into(),
                ttl_secs: 20
            })
        );
        // Standbys not seen within the window are not promoted.
        let ev = r.tick(200, &mut t);
        assert_eq!(
            ev,
            [ElectionEvent::Lapsed {
                pid: "PID1".into(),
                endpoint: ib
            }]
        );
        assert!(r.head("PID1", 200).is_none());
        // Then the next joiner is head.
        assert!(r.join("PID1", &c, ic, None, 201, &mut t).lease.is_some());
    }

    #[test]
    fn resign_hands_over_and_a_rejoining_head_gets_a_new_token() {
        let mut r = Registry::new(ElectionConfig::default());
        let mut t = tokens();
        let (a, ia) = req("127.1.0.1", 1e9);
        let (b, ib) = req("127.1.0.2", 1e9);
        r.join("PID1", &a, ia, None, 0, &mut t);
        let j = r.join("PID1", &a, ia, None, 1, &mut t);
        assert_eq!(j.lease.unwrap().token, "t2");
        assert_eq!(r.renew("t1", ia, 2), Err(LeaseError::Unknown));
        r.join("PID1", &b, ib, None, 2, &mut t);
        let (pid, ev) = r.resign("t2", ia, 3, &mut t).unwrap();
        assert_eq!(
            (pid.as_str(), ev),
            (
                "PID1",
                vec![ElectionEvent::Elected {
                    pid: "PID1".into(),
                    endpoint: ib
                }]
            )
        );
        assert_eq!(r.head("PID1", 3).unwrap().endpoint, "ipv4:127.1.0.2");
    }

    #[test]
    fn scored_policy_weighs_capabilities_with_hysteresis() {
        let cfg = ElectionConfig {
            policy: ElectionPolicy::Scored(Weights::default()),
            ..ElectionConfig::default()
        };
        let mut r = Registry::new(cfg);
        let mut t = tokens();
        let (a, ia) = req("127.1.0.1", 2.0e9);
        let (b, ib) = req("127.1.0.2", 2.2e9);
        let (c, ic) = req("127.1.0.3", 16e9);
        r.join("PID1", &a, ia, Some(1.0), 0, &mut t);
        assert!(
            r.join("PID1", &b, ib, Some(1.0), 1, &mut t).lease.is_none(),
            "slightly better: no flapping"
        );
        let j = r.join("PID1", &c, ic, Some(1.0), 2, &mut t);
        assert!(j.lease.is_some(), "much better: takes over");
        assert_eq!(
            r.renew("t1", ia, 3),
            Err(LeaseError::Unknown),
            "the unseated head's renewals fail"
        );
        // Measured presence counts: after hours, the long-present head is hard to unseat.
        let mut r = Registry::new(ElectionConfig {
            policy: ElectionPolicy::Scored(Weights::default()),
            standby_window_secs: 1_000_000,
            ..ElectionConfig::default()
        });
        r.join("PID1", &a, ia, Some(1.0), 0, &mut t);
        for k in 1..100 {
            r.renew(
                &r.pids["PID1"].head.as_ref().unwrap().token.clone(),
                ia,
                k * 20,
            )
            .unwrap();
        }
        assert!(r
            .join("PID1", &c, ic, Some(1.0), 2000, &mut t)
            .lease
            .is_none());
        // Distance is the server's measure: a far candidate loses against a near one.
        let mut r = Registry::new(ElectionConfig {
            policy: ElectionPolicy::Scored(Weights {
                hysteresis: 0.0,
                ..Weights::default()
            }),
            ..ElectionConfig::default()
        });
        r.join(
            "PID2",
            &req("127.2.0.1", 2e9).0,
            "127.2.0.1".parse().unwrap(),
            Some(0.1),
            0,
            &mut t,
        );
        let far = r.join(
            "PID2",
            &req("127.2.0.2", 2e9).0,
            "127.2.0.2".parse().unwrap(),
            Some(500.0),
            1,
            &mut t,
        );
        assert!(far.lease.is_none());
    }

    #[test]
    fn kept_candidates_are_advised_to_rejoin_within_the_window_and_others_rarely() {
        let config = ElectionConfig {
            max_candidates: 2,
            ..ElectionConfig::default()
        };
        // 90 s window, 15 s step: a standby joins again after 75 s, one not kept after 360 s.
        assert_eq!(
            (config.rejoin_secs(true), config.rejoin_secs(false)),
            (75, 360)
        );
        let mut st = PidState::default();
        let mut t = tokens();
        let (a, ia) = req("127.1.0.1", 1e9);
        let (b, ib) = req("127.1.0.2", 1e9);
        let (c, ic) = req("127.1.0.3", 1e9);
        assert!(
            st.join(&config, "PID1", &a, ia, None, 0, &mut t).kept,
            "the head"
        );
        assert!(
            st.join(&config, "PID1", &b, ib, None, 1, &mut t).kept,
            "a standby"
        );
        // Under `first`, with both slots held by candidates still present: not recorded.
        assert!(!st.join(&config, "PID1", &c, ic, None, 2, &mut t).kept);
        // Once the others have gone quiet past the window, the newcomer takes a slot.
        assert!(st.join(&config, "PID1", &c, ic, None, 100, &mut t).kept);
    }

    #[test]
    fn a_crowd_of_members_never_pushes_the_head_out() {
        let mut r = Registry::new(ElectionConfig {
            max_candidates: 4,
            ..ElectionConfig::default()
        });
        let mut t = tokens();
        let (a, ia) = req("127.1.0.1", 1e9);
        r.join("PID1", &a, ia, None, 0, &mut t);
        for k in 2..50 {
            let (m, im) = req(&format!("127.1.0.{k}"), 1e9);
            r.join("PID1", &m, im, None, k / 4, &mut t);
        }
        assert_eq!(r.pids["PID1"].candidates.len(), 4);
        assert!(r.renew("t1", ia, 20).is_ok());
        assert_eq!(r.head("PID1", 20).unwrap().endpoint, "ipv4:127.1.0.1");
    }

    #[test]
    fn a_flood_of_joins_never_pushes_out_a_long_present_standby() {
        let mut r = Registry::new(ElectionConfig {
            max_candidates: 8,
            ..ElectionConfig::default()
        });
        let mut t = tokens();
        let (a, ia) = req("127.1.0.1", 1e9);
        let (b, ib) = req("127.1.0.2", 1e9);
        r.join("PID1", &a, ia, None, 0, &mut t);
        r.join("PID1", &b, ib, None, 1, &mut t);
        // 5,000 newcomers in a few seconds; the standby keeps rejoining as it does.
        for k in 0..5000u32 {
            let ip = format!("127.1.{}.{}", 1 + k / 250, 1 + k % 250);
            let (m, im) = req(&ip, 1e9);
            r.join("PID1", &m, im, None, 10 + u64::from(k) / 2000, &mut t);
        }
        r.join("PID1", &b, ib, None, 12, &mut t);
        assert_eq!(r.pids["PID1"].candidates.len(), 8);
        assert!(r.pids["PID1"].candidates.iter().any(|c| c.endpoint == ib));
        // The head resigns: the long-present standby is promoted, not a newcomer.
        let token = r.pids["PID1"].head.as_ref().unwrap().token.clone();
        r.resign(&token, ia, 13, &mut t).unwrap();
        assert_eq!(r.head("PID1", 13).unwrap().endpoint, "ipv4:127.1.0.2");
    }

    #[test]
    fn a_rejoin_within_the_presence_step_leaves_nothing_to_write() {
        let config = ElectionConfig::default();
        let step = config.presence_step_secs();
        let mut st = PidState::default();
        let mut t = tokens();
        let (a, ia) = req("127.1.0.1", 1e9);
        let (b, ib) = req("127.1.0.2", 1e9);
        st.join(&config, "PID1", &a, ia, Some(10.0), 0, &mut t);
        st.join(&config, "PID1", &b, ib, Some(10.0), 1, &mut t);
        let before = st.clone();
        // The standby joins again within the step, its round trip jittering: no change.
        st.join(&config, "PID1", &b, ib, Some(12.0), step, &mut t);
        assert_eq!(st, before);
        // Past the step its presence is recorded, and a round trip that moved by half.
        st.join(&config, "PID1", &b, ib, Some(15.0), step + 1, &mut t);
        let c = st.candidates.iter().find(|c| c.endpoint == ib).unwrap();
        assert_eq!((c.first_seen, c.last_seen), (1, step + 1));
        assert_eq!(c.distance_ms, Some(15.0));
        // The head's renewals record its presence by the same step.
        let token = st.head.as_ref().unwrap().token.clone();
        st.renew(&config, &token, ia, 2).unwrap();
        let head = |st: &PidState| {
            st.candidates
                .iter()
                .find(|c| c.endpoint == ia)
                .unwrap()
                .last_seen
        };
        assert_eq!(head(&st), 0);
        st.renew(&config, &token, ia, step).unwrap();
        assert_eq!(head(&st), step);
    }

    #[test]
    fn a_revoked_head_is_replaced_and_barred_until_its_ban_ends() {
        let mut r = Registry::new(ElectionConfig::default());
        let mut t = tokens();
        let (a, ia) = req("127.1.0.1", 1e9);
        let (b, ib) = req("127.1.0.2", 1e9);
        r.join("PID1", &a, ia, None, 0, &mut t);
        r.join("PID1", &b, ib, None, 1, &mut t);
        // Another endpoint's revocation is no revocation.
        assert!(r.revoke("PID1", ib, 2, 100, &mut t).is_empty());
        let token = r.pids["PID1"].head.as_ref().unwrap().token.clone();
        let events = r.revoke("PID1", ia, 2, 100, &mut t);
        assert!(events.contains(&ElectionEvent::Elected {
            pid: "PID1".into(),
            endpoint: ib
        }));
        assert_eq!(r.renew(&token, ia, 3), Err(LeaseError::Unknown));
        // Rejoining while barred: a member, no candidate, even once the PID has no head.
        let tb = r.pids["PID1"].head.as_ref().unwrap().token.clone();
        r.resign(&tb, ib, 4, &mut t).unwrap();
        let j = r.join("PID1", &a, ia, None, 5, &mut t);
        assert!(j.lease.is_none() && r.head("PID1", 5).is_none());
        // After the ban it can be elected again.
        assert!(r.join("PID1", &a, ia, None, 101, &mut t).lease.is_some());
    }

    #[test]
    fn without_tokens_nobody_is_elected_and_no_lease_is_handed_out() {
        let mut r = Registry::new(ElectionConfig::default());
        let none = || None::<String>;
        let (a, ia) = req("127.1.0.1", 1e9);
        let j = r.join("PID1", &a, ia, None, 0, none);
        assert_eq!((j.lease, j.head, j.events), (None, None, vec![]));
        // With tokens again, the next join elects; a later failure keeps the lease unrevealed.
        let j = r.join("PID1", &a, ia, None, 1, tokens());
        assert!(j.lease.is_some());
        assert_eq!(r.join("PID1", &a, ia, None, 2, none).lease, None);
        assert_eq!(r.head("PID1", 2).unwrap().endpoint, "ipv4:127.1.0.1");
        // A lapse with no token for the standby leaves the PID headless.
        let (b, ib) = req("127.1.0.2", 1e9);
        r.join("PID1", &b, ib, None, 3, none);
        let ev = r.tick(31, none);
        assert_eq!(
            ev,
            [ElectionEvent::Lapsed {
                pid: "PID1".into(),
                endpoint: ia
            }]
        );
        assert!(r.head("PID1", 31).is_none());
    }
}
