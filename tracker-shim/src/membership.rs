//! Joining the ALTO server as a candidate PID Head (the draft, section 2.3; wire format in
//! `docs/pid-head.md`): join, and when elected serve as head (follow the maps, answer for the
//! PID), renew the lease well before it lapses, step down by itself when renewals fail or the
//! server revokes the lease, and resign on shutdown. A member re-joins when its client finds
//! the head failing (an announce to it failed: [`HeadFailures`]) and otherwise only rarely
//! (`rejoin`), so that the ALTO server's load follows the number of PIDs, not of clients; a
//! re-join also tells a standby that it has been promoted.

use crate::head;
use crate::tracker::Tracker;
use alto_client::{AltoClient, ClientError};
use alto_model::pidhead::{
    CandidateClaims, HeadInfo, JoinRequest, LeaseAction, LeaseRequest, Role,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
// tokio's instant, not std's: under `tokio::time::pause` the lease deadlines stand still
// and `advance` moves them, with the renewal timers and the server's lease clock.
use tokio::time::Instant;

/// How a tracker joins.
#[derive(Clone, Debug)]
pub struct JoinSettings {
    /// The ALTO server's directory URLs (one per replica, tried in turn).
    pub alto: Vec<String>,
    /// The endpoint to join as (the tracker's own address).
    pub endpoint: IpAddr,
    /// What it says of itself.
    pub capabilities: CandidateClaims,
    /// Time between a member's joins when its head does not fail, at most: sooner where the
    /// server's join answer advises it (`rejoin-secs`).
    pub rejoin: Duration,
    /// Seconds between map refreshes as head.
    pub refresh: Duration,
}

/// What the tracker knows of its place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Its PID, once a join succeeded.
    pub pid: Option<String>,
    /// Its role.
    pub role: Option<Role>,
    /// The PID's head as last heard.
    pub head: Option<HeadInfo>,
    /// Times this tracker became head or stopped being head.
    pub role_changes: u64,
}

/// Reports of a failing head, from the client using this tracker's membership (its announce
/// to the head failed or was refused): the member re-joins at once, at most once a second.
#[derive(Clone, Debug, Default)]
pub struct HeadFailures(Arc<tokio::sync::Notify>);

impl HeadFailures {
    /// Tells the membership that the head failed.
    pub fn report(&self) {
        self.0.notify_one();
    }
}

/// Most time between two tries of a join that failed.
const JOIN_RETRY: Duration = Duration::from_secs(10);

/// Least time between two joins prompted by head failures.
const MIN_REJOIN: Duration = Duration::from_secs(1);

/// The reason given when a head resigns because it stops.
const SHUTDOWN: &str = "shutting down";

/// This tracker's own headship while it is the elected head: the lease it renews and the
/// task following the ALTO server for it.
struct OwnHeadship {
    token: String,
    deadline: Instant,
    ttl: Duration,
    follower: Follower,
}

/// The task following the ALTO server while head; it stops when the headship ends, also
/// when the membership task itself is dropped.
struct Follower(tokio::task::JoinHandle<()>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn step_down(
    tracker: &Tracker,
    headship: Option<OwnHeadship>,
    state: &watch::Sender<Membership>,
    why: &str,
) {
    if let Some(h) = headship {
        drop(h.follower);
        tracker.clear_maps();
        tracker.set_member(true);
        if why == SHUTDOWN {
            tracing::info!("stepping down as PID Head: {why}");
        } else {
            tracing::warn!("stepping down as PID Head: {why}");
        }
        state.send_modify(|m| {
            m.role = Some(Role::Member);
            m.head = None;
            m.role_changes += 1;
        });
    }
}

/// Runs the membership until `stop` turns true; then resigns a headship.
pub async fn run(
    tracker: Arc<Tracker>,
    tracker_url: String,
    s: JoinSettings,
    state: watch::Sender<Membership>,
    failures: HeadFailures,
    mut stop: watch::Receiver<bool>,
) {
    let client = match AltoClient::replicas(&s.alto) {
        Ok(c) => c
            .with_timeout(Duration::from_secs(5))
            .with_local_address(s.endpoint),
        Err(e) => {
            tracing::error!("cannot join: {e}");
            return;
        }
    };
    let join = JoinRequest {
        endpoint: alto_model::addr::typed_addr(s.endpoint),
        tracker: tracker_url,
        ecs_url: None,
        capabilities: s.capabilities.clone(),
    };
    tracker.set_own_client(s.endpoint);
    let mut headship: Option<OwnHeadship> = None;
    let mut last_join = Instant::now() - MIN_REJOIN;
    loop {
        let wait = match &mut headship {
            Some(h) => {
                // Renew at a third of the lease: two more tries before it lapses.
                let renew = LeaseRequest {
                    token: h.token.clone(),
                    action: LeaseAction::Renew,
                };
                match client.lease(&renew).await {
                    Ok(a) => {
                        h.ttl =
                            Duration::from_secs(a.lease.as_ref().map_or(1, |l| l.ttl_secs.max(1)));
                        h.deadline = Instant::now() + h.ttl;
                        state.send_modify(|m| m.head = HeadInfo::prefer(m.head.as_ref(), a.head));
                        h.ttl / 3
                    }
                    Err(ClientError::Alto { error, .. }) => {
                        step_down(
                            &tracker,
                            headship.take(),
                            &state,
                            &format!("the server refused the renewal ({error})"),
                        );
                        Duration::ZERO
                    }
                    Err(e) if Instant::now() >= h.deadline => {
                        step_down(
                            &tracker,
                            headship.take(),
                            &state,
                            &format!("renewals failed until the lease lapsed ({e})"),
                        );
                        Duration::ZERO
                    }
                    Err(e) => {
                        tracing::warn!("lease renewal failed, retrying: {e}");
                        (h.ttl / 6).max(Duration::from_millis(100))
                    }
                }
            }
            None => {
                last_join = Instant::now();
                match client.join(&join).await {
                    Ok(a) => {
                        tracker.set_member(a.lease.is_none());
                        let pid = a.pid.clone();
                        state.send_modify(|m| {
                            m.head = match m.pid.as_deref() == Some(a.pid.as_str()) {
                                true => HeadInfo::prefer(m.head.as_ref(), a.head.clone()),
                                false => a.head.clone(),
                            };
                            m.pid = Some(a.pid.clone());
                            if m.role != Some(a.role) {
                                m.role_changes +=
                                    u64::from(m.role.is_some() || a.role == Role::Head);
                            }
                            m.role = Some(a.role);
                        });
                        match a.lease {
                            Some(lease) => {
                                tracing::info!(pid, "elected PID Head");
                                let ttl = Duration::from_secs(lease.ttl_secs.max(1));
                                let follower = Follower(tokio::spawn(head::follow(
                                    tracker.clone(),
                                    s.alto.clone(),
                                    pid,
                                    s.refresh,
                                    Some(s.endpoint),
                                )));
                                headship = Some(OwnHeadship {
                                    token: lease.token,
                                    deadline: Instant::now() + ttl,
                                    ttl,
                                    follower,
                                });
                                ttl / 3
                            }
                            // The server's advice, where it is sooner: a kept standby stays one.
                            None => a
                                .rejoin_secs
                                .map_or(s.rejoin, |r| s.rejoin.min(Duration::from_secs(r.max(1)))),
                        }
                    }
                    Err(e) => {
                        tracing::warn!("join failed, retrying: {e}");
                        s.rejoin.min(JOIN_RETRY)
                    }
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = failures.0.notified(), if headship.is_none() => {
                tracing::info!("the head failed: joining again");
                tokio::time::sleep(MIN_REJOIN.saturating_sub(last_join.elapsed())).await;
            }
            _ = stop.changed() => break,
        }
    }
    if let Some(h) = headship.take() {
        let resign = LeaseRequest {
            token: h.token.clone(),
            action: LeaseAction::Resign,
        };
        if let Err(e) = client.lease(&resign).await {
            tracing::warn!("resigning failed: {e}");
        }
        step_down(&tracker, Some(h), &state, SHUTDOWN);
    }
}

/// This machine's CPU clock and memory (from `/proc`), for the join (the draft's election
/// conditions; the server measures lifetime and distance itself).
pub fn own_capabilities() -> CandidateClaims {
    let read = |path: &str, key: &str| -> Option<f64> {
        let text = std::fs::read_to_string(path).ok()?;
        let line = text.lines().find(|l| l.starts_with(key))?;
        line.split(':')
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    CandidateClaims {
        cpu_hz: read("/proc/cpuinfo", "cpu MHz").map(|mhz| mhz * 1e6),
        memory_bytes: read("/proc/meminfo", "MemTotal").map(|kib| kib * 1024.0),
        ..CandidateClaims::default()
    }
}
