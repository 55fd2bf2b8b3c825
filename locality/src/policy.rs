//! Speed-aware, soft locality: who is handed peers of other PIDs, and how many. The rules
//! and their reasons are in `docs/locality.md`; in short:
//!
//! 1. A client with the whole torrent gets no peers of other PIDs (it serves those that
//!    connect).
//! 2. A downloading client is **lagging** when its measured download rate is below
//!    [`LocalityConfig::stall_bps`] or below [`LocalityConfig::served_fraction`] of the
//!    fastest download in its PID, and **underserved** once that holds over at least
//!    [`LocalityConfig::confirm_ms`]. A lagging client waits for its PID's gateways (rule
//!    3), which grow in number; an underserved one **reaches out**, with
//!    [`LocalityConfig::foreign_peers`] peers of the cheapest other PIDs. The PID's own
//!    peers are kept too, so it goes back by itself once local service recovers (a served
//!    client is handed no more peers of other PIDs). A client that knows its own links (its
//!    limits) is also slow below [`LocalityConfig::downlink_fraction`] of its downlink, or
//!    below [`LocalityConfig::reciprocity`] times its uplink: a client that gets less than
//!    it may give is not served, even when its whole PID is as slow
//!    ([`LocalityConfig::client_service`]).
//! 3. A PID's **gateways** fetch from other PIDs for the PID: its best deliverers by
//!    measured upload rate, one, plus one for each lagging or underserved member, at most
//!    [`LocalityConfig::max_gateways`]. Before anything is measured, the PID Head's own
//!    client is the gateway; a PID Head's own client always fetches from its parent in the
//!    heads' tree, and never reaches out for want of a working head (it is the head).
//! 4. A client whose service is not measured yet gets a **random share**
//!    ([`LocalityConfig::random_share`] of its answer) of peers of other PIDs, unless its PID
//!    is measurably well served (a member is measured served and none underserved).
//! 5. Everyone else gets peers of its own PID only.
//!
//! The head's tracker applies the rules for every member of its PID, third-party clients
//! included ([`pid_summary`], [`head_quota`]); a plugin client's announce proxy applies them
//! again to itself, from its own figures, without trusting the head ([`client_peers`]). No
//! I/O, no clock: times are passed in.

use crate::progress::{Progress, Rates, SAMPLES};
use alto_model::{NetworkMap, PidIdx};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// The knobs of the policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalityConfig {
    /// Peers of other PIDs a client that reaches out, or a gateway, is handed per answer.
    pub foreign_peers: usize,
    /// A download below this many bytes per second is a stall (rule 2).
    pub stall_bps: f64,
    /// A download below this share of the PID's fastest is underserved (rule 2).
    pub served_fraction: f64,
    /// Rates are measured over this many milliseconds.
    pub window_ms: u64,
    /// A client slow over at least this many milliseconds, or over every announce interval
    /// its samples keep, is underserved, not only lagging (rule 2): one slow measurement (a
    /// newcomer's first seconds) makes no client reach out.
    pub confirm_ms: u64,
    /// Share of an answer drawn from other PIDs for a client not yet measured (rule 4).
    pub random_share: f64,
    /// Most gateways of one PID (rule 3).
    pub max_gateways: usize,
    /// A client that knows its downlink is slow below this share of it (rule 2).
    pub downlink_fraction: f64,
    /// A client that knows its uplink is slow below this many times it (rule 2).
    pub reciprocity: f64,
    /// Peers of its parent's PID a PID Head's own client fetches from besides its parent in
    /// the heads' tree: a second source over the same link, in case the parent is slow.
    /// More make the head a source for the parent's PID too (traffic back up the tree).
    pub tree_extra: usize,
    /// A client reaching out by its own links is on trial this long (`crate::outreach`).
    pub trial_ms: u64,
    /// The trial pays when the download rate over it exceeds the rate before by this share.
    pub trial_gain: f64,
    /// After a trial that did not pay, no reaching out by its links for this long, doubled
    /// after each further one that did not pay.
    pub rest_ms: u64,
    /// The longest rest.
    pub max_rest_ms: u64,
}

/// The defaults, documented in `docs/locality.md`.
const DEFAULT: LocalityConfig = LocalityConfig {
    foreign_peers: 4,
    stall_bps: 32.0 * 1024.0,
    served_fraction: 0.1,
    window_ms: 10_000,
    confirm_ms: 4_000,
    random_share: 0.1,
    max_gateways: 3,
    downlink_fraction: 0.5,
    reciprocity: 1.0,
    tree_extra: 1,
    trial_ms: 6_000,
    trial_gain: 0.25,
    rest_ms: 15_000,
    max_rest_ms: 120_000,
};

impl Default for LocalityConfig {
    fn default() -> Self {
        DEFAULT
    }
}

/// What a client knows of its own access links: its limits, bytes per second (`None` or 0:
/// not known).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Links {
    /// The download limit.
    pub down_bps: Option<u32>,
    /// The upload limit.
    pub up_bps: Option<u32>,
}

/// How well a client is served, by its own figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// It has the whole torrent.
    Seeding,
    /// Not measured yet (fewer than two samples in the window).
    Unknown,
    /// Downloading fast enough.
    Served,
    /// Downloading too slowly, measured over less than [`LocalityConfig::confirm_ms`]: it
    /// waits for its PID's gateways (rule 2).
    Lagging,
    /// Downloading too slowly over at least [`LocalityConfig::confirm_ms`]: it reaches out
    /// (rule 2).
    Underserved,
}

impl LocalityConfig {
    /// The defaults, documented in `docs/locality.md`.
    pub const DEFAULT: LocalityConfig = DEFAULT;

    /// How a client with `progress` is served at `now_ms`, against `peak_bps`, the fastest
    /// download in its PID (0 when unknown: then only the stall rule applies).
    pub fn service(&self, progress: &Progress, now_ms: u64, peak_bps: f64) -> Service {
        self.classify(
            progress.seeding(),
            progress.rates(now_ms, self.window_ms),
            self.served_fraction * peak_bps,
        )
    }

    /// How a client with `progress` is served at `now_ms` by its own figures, as its proxy
    /// sees it: the stall rule, and against its own `links` where it knows them (rule 2).
    /// The PID Head's own client also knows `pid_peak_bps`, the fastest download of its PID's
    /// members (0 for any other client): like a member, it is slow below
    /// [`LocalityConfig::served_fraction`] of it, so a head fed by a slow parent in the heads'
    /// tree reaches out while its members, served by other PIDs, are fast.
    pub fn client_service(
        &self,
        progress: &Progress,
        now_ms: u64,
        links: Links,
        pid_peak_bps: f64,
    ) -> Service {
        let known = |b: Option<u32>| f64::from(b.unwrap_or(0));
        let floor = (self.downlink_fraction * known(links.down_bps))
            .max(self.reciprocity * known(links.up_bps))
            .max(self.served_fraction * pid_peak_bps);
        self.classify(
            progress.seeding(),
            progress.rates(now_ms, self.window_ms),
            floor,
        )
    }

    /// [`LocalityConfig::service`] from the client's measured `rates`, slow below the stall
    /// rate or `floor_bps`.
    fn classify(&self, seeding: bool, rates: Option<Rates>, floor_bps: f64) -> Service {
        match rates {
            _ if seeding => Service::Seeding,
            None => Service::Unknown,
            Some(r) if r.down_bps < self.stall_bps.max(floor_bps) => {
                if r.span_ms >= self.confirm_ms || r.intervals + 1 >= SAMPLES {
                    Service::Underserved
                } else {
                    Service::Lagging
                }
            }
            Some(_) => Service::Served,
        }
    }

    /// Peers of other PIDs in an answer of `want` peers for a client not yet measured
    /// (rule 4): at least one when the share is not zero.
    pub fn random_quota(&self, want: usize) -> usize {
        if self.random_share <= 0.0 || want == 0 {
            return 0;
        }
        ((want as f64 * self.random_share.min(1.0)).ceil() as usize).max(1)
    }
}

/// What a head knows of one PID's members in one swarm, made from their progress by
/// [`pid_summary`].
#[derive(Clone, Debug, PartialEq)]
pub struct PidSummary<K> {
    /// The fastest download rate measured, bytes per second (0: none measured).
    pub peak_bps: f64,
    /// Members measured served (or seeding).
    pub served: usize,
    /// Members measured lagging or underserved.
    pub underserved: usize,
    /// The gateways (rule 3), best deliverer first; empty before any upload is measured.
    pub gateways: Vec<K>,
}

impl<K: PartialEq> PidSummary<K> {
    /// Whether the PID is measurably well served (rule 4).
    pub fn well_served(&self) -> bool {
        self.served > 0 && self.underserved == 0
    }
}

/// The summary of a PID's members, given as (key, progress), at `now_ms`.
pub fn pid_summary<'a, K: Copy + PartialEq + 'a>(
    cfg: &LocalityConfig,
    members: impl Iterator<Item = (K, &'a Progress)>,
    now_ms: u64,
) -> PidSummary<K> {
    // Each member's rates, measured once, and the bytes it has.
    let measured: Vec<(K, bool, Option<Rates>, u64)> = members
        .map(|(k, p)| {
            let got = p.last().map_or(0, |s| s.downloaded);
            (k, p.seeding(), p.rates(now_ms, cfg.window_ms), got)
        })
        .collect();
    let downloading = || {
        measured
            .iter()
            .filter(|m| !m.1)
            .filter_map(|&(k, _, r, got)| Some((k, r?, got)))
    };
    let peak_bps = downloading()
        .map(|(_, r, _)| r.down_bps)
        .fold(0.0, f64::max);
    let mut s = PidSummary {
        peak_bps,
        served: 0,
        underserved: 0,
        gateways: Vec::new(),
    };
    for &(_, seeding, rates, _) in &measured {
        match cfg.classify(seeding, rates, cfg.served_fraction * peak_bps) {
            Service::Seeding | Service::Served => s.served += 1,
            Service::Lagging | Service::Underserved => s.underserved += 1,
            Service::Unknown => {}
        }
    }
    // By upload; where nobody uploads yet (a stalled PID), the member farthest along.
    let mut deliverers: Vec<(f64, u64, K)> = downloading()
        .map(|(k, r, got)| (r.up_bps, got, k))
        .collect();
    deliverers.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    let n = (1 + s.underserved).min(cfg.max_gateways.max(1));
    s.gateways = deliverers.into_iter().take(n).map(|d| d.2).collect();
    s
}

/// Peers of other PIDs the head hands a member `key` of its own PID with `progress`, in an
/// answer of `want` (rules 1 to 5); `own_client` says the member is the head's own client.
pub fn head_quota<K: PartialEq>(
    cfg: &LocalityConfig,
    summary: &PidSummary<K>,
    key: &K,
    progress: &Progress,
    own_client: bool,
    want: usize,
    now_ms: u64,
) -> usize {
    let gateway = summary.gateways.contains(key) || (summary.gateways.is_empty() && own_client);
    match cfg.service(progress, now_ms, summary.peak_bps) {
        Service::Seeding => 0,
        Service::Underserved => cfg.foreign_peers,
        _ if gateway => cfg.foreign_peers,
        Service::Unknown if !summary.well_served() => cfg.random_quota(want),
        _ => 0,
    }
}

/// What a plugin client's announce proxy knows when it answers its client.
#[derive(Clone, Copy, Debug)]
pub struct ClientView<'a> {
    /// The network map.
    pub net: &'a NetworkMap,
    /// The client's PID.
    pub own: PidIdx,
    /// How the client is served, by its own figures (stall rule only: `peak_bps` 0).
    pub service: Service,
    /// The client is its PID's head.
    pub head: bool,
    /// As head: its parent in the heads' tree ([`crate::tree`]).
    pub parent: Option<SocketAddr>,
    /// The head answered this announce.
    pub head_answered: bool,
    /// The head's own client has been seen in the swarm.
    pub head_in_swarm: bool,
    /// Without a working head: with this many peers of its own PID from other sources, a
    /// client not yet measured gets the random share only.
    pub local_enough: usize,
    /// The client's address: without a working head, the member of the PID with the lowest
    /// address it knows of stands in as the PID's gateway.
    pub me: IpAddr,
}

/// The peers a plugin client is given, at most `want`: its own PID's peers, those the head
/// handed (`from_head`) and those of other sources (`others`: the torrent's trackers, the
/// DHT) taken in turn so that a head cannot fill the answer alone, then peers of other PIDs
/// by the rules (the head's share kept, for a member, up to
/// [`LocalityConfig::foreign_peers`]). Both lists come in ranked order.
pub fn client_peers(
    cfg: &LocalityConfig,
    v: &ClientView<'_>,
    from_head: &[SocketAddr],
    others: &[SocketAddr],
    want: usize,
) -> Vec<SocketAddr> {
    let local = |p: &&SocketAddr| v.net.pid_of(p.ip()) == Some(v.own);
    let mut list: Vec<SocketAddr> = Vec::new();
    let (mut h, mut o) = (from_head.iter().filter(local), others.iter().filter(local));
    loop {
        let (a, b) = (h.next(), o.next());
        if a.is_none() && b.is_none() {
            break;
        }
        for p in a.into_iter().chain(b) {
            if !list.contains(p) {
                list.push(*p);
            }
        }
    }
    let corroborated = others.iter().filter(local).count();
    let foreign_of = |l: &[SocketAddr]| -> Vec<SocketAddr> {
        l.iter().filter(|p| !local(p)).copied().collect::<Vec<_>>()
    };
    let (head_foreign, other_foreign) = (foreign_of(from_head), foreign_of(others));
    let all_foreign: Vec<SocketAddr> =
        head_foreign
            .iter()
            .chain(other_foreign.iter())
            .fold(Vec::new(), |mut acc, p| {
                if !acc.contains(p) {
                    acc.push(*p);
                }
                acc
            });
    // A head's client is the head: it never reaches out for want of one. Without a working
    // head, the members agree on a stand-in gateway with no word between them: the lowest
    // address among the PID's members each knows of from other sources.
    let headless = !v.head && (!v.head_answered || !v.head_in_swarm);
    let stand_in = headless && others.iter().filter(local).all(|p| v.me <= p.ip());
    let reach_out = v.service == Service::Underserved
        || headless && (corroborated < v.local_enough || stand_in);
    let mut kept: Vec<SocketAddr> = if v.service == Service::Seeding {
        Vec::new()
    } else if v.head {
        // The parent, and `tree_extra` more peers of its PID. Before
        // the tree is known, the cheapest other PID stands for the parent's.
        let upstream = v.parent.or_else(|| all_foreign.first().copied());
        let mut kept: Vec<SocketAddr> = match upstream {
            Some(up) => {
                let pid = v.net.pid_of(up.ip());
                let more = all_foreign
                    .iter()
                    .filter(|p| **p != up && v.net.pid_of(p.ip()) == pid)
                    .take(cfg.tree_extra);
                std::iter::once(up).chain(more.copied()).collect()
            }
            None => Vec::new(),
        };
        if reach_out {
            for p in spread(v.net, &all_foreign, cfg.foreign_peers) {
                if !kept.contains(&p) {
                    kept.push(p);
                }
            }
        }
        kept
    } else if reach_out {
        spread(v.net, &all_foreign, cfg.foreign_peers)
    } else {
        let mut kept: Vec<SocketAddr> = head_foreign
            .iter()
            .take(cfg.foreign_peers)
            .copied()
            .collect();
        // The random share is of the answer, its own PID's peers.
        if v.service == Service::Unknown && headless {
            for p in spread(
                v.net,
                &other_foreign,
                cfg.random_quota(list.len().clamp(1, want.max(1))),
            ) {
                if !kept.contains(&p) && kept.len() < cfg.foreign_peers {
                    kept.push(p);
                }
            }
        }
        kept
    };
    // Peers of other PIDs first when reaching out: they are why the client asked.
    if reach_out && !kept.is_empty() {
        let room = want.saturating_sub(kept.len());
        list.truncate(room);
        kept.extend(list);
        kept.truncate(want);
        return kept;
    }
    list.truncate(want.saturating_sub(kept.len()));
    list.extend(kept);
    list.truncate(want);
    list
}

/// Up to `take` of `foreign` (in ranked order), at most half of them from one PID, so that
/// one slow or lying PID cannot be a client's whole outside.
pub fn spread(net: &NetworkMap, foreign: &[SocketAddr], take: usize) -> Vec<SocketAddr> {
    let per_pid = take.div_ceil(2).max(1);
    let mut taken: HashMap<Option<PidIdx>, usize> = HashMap::new();
    let (mut kept, mut rest) = (Vec::new(), Vec::new());
    for &p in foreign {
        let n = taken.entry(net.pid_of(p.ip())).or_default();
        if kept.len() < take && *n < per_pid {
            *n += 1;
            kept.push(p);
        } else {
            rest.push(p);
        }
    }
    let room = take.saturating_sub(kept.len());
    kept.extend(rest.into_iter().take(room));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Sample;

    const KIB: u64 = 1024;
    const FILE: u64 = 16 << 20;

    /// A client that downloads at `down` and uploads at `up` KiB/s from t=0, sampled every
    /// second until `until_ms`.
    fn client(down: u64, up: u64, until_ms: u64) -> Progress {
        let mut p = Progress::default();
        let mut t = 0;
        while t <= until_ms {
            let got = (down * KIB * t / 1000).min(FILE);
            p.record(Sample {
                at_ms: t,
                downloaded: got,
                uploaded: up * KIB * t / 1000,
                left: FILE - got,
            });
            t += 1000;
        }
        p
    }

    fn joined(at_ms: u64) -> Progress {
        let mut p = Progress::default();
        p.record(Sample {
            at_ms,
            downloaded: 0,
            uploaded: 0,
            left: FILE,
        });
        p
    }

    fn net() -> NetworkMap {
        NetworkMap::from_json(
            testdata::loopback::NETWORK_MAP_ID,
            testdata::loopback::NETWORK_MAP,
        )
        .unwrap()
    }

    fn peer(k: u8, host: u8) -> SocketAddr {
        SocketAddr::from(([127, k, 0, host], 6881))
    }

    const CFG: LocalityConfig = DEFAULT;

    /// The head's quota for each member `(key, progress, own client)` of one PID at
    /// `now_ms`, answers of 30.
    fn quotas(members: &[(u8, Progress, bool)], now_ms: u64) -> Vec<usize> {
        let s = pid_summary(&CFG, members.iter().map(|(k, p, _)| (*k, p)), now_ms);
        members
            .iter()
            .map(|(k, p, own)| head_quota(&CFG, &s, k, p, *own, 30, now_ms))
            .collect()
    }

    #[test]
    fn a_client_is_slow_below_half_of_its_downlink_or_below_its_uplink() {
        let down = Links {
            down_bps: Some(4096 * 1024), // 4 MiB/s
            up_bps: None,
        };
        let up = Links {
            down_bps: None,
            up_bps: Some(2048 * 1024), // 2 MiB/s
        };
        let none = Links::default();
        let now = 4000;
        assert_eq!(
            CFG.client_service(&client(1024, 0, now), now, none, 0.0),
            Service::Served,
            "1 MiB/s, nothing to compare with"
        );
        for (links, what) in [
            (down, "of a 4 MiB/s downlink"),
            (up, "for a 2 MiB/s uplink"),
        ] {
            assert_eq!(
                CFG.client_service(&client(1024, 0, now), now, links, 0.0),
                Service::Underserved,
                "1 MiB/s {what}, over every interval kept"
            );
            assert_eq!(
                CFG.client_service(&client(1024, 0, 1000), 1000, links, 0.0),
                Service::Lagging,
                "1 MiB/s {what}, over one second only"
            );
            assert_eq!(
                CFG.client_service(&client(3072, 0, now), now, links, 0.0),
                Service::Served,
                "3 MiB/s {what}"
            );
            assert_eq!(
                CFG.client_service(&joined(1000), 1000, links, 0.0),
                Service::Unknown
            );
            assert_eq!(
                CFG.client_service(&client(8192, 0, 3000), 3000, links, 0.0),
                Service::Seeding
            );
        }
        let both = Links {
            down_bps: Some(4096 * 1024),
            up_bps: Some(3072 * 1024),
        };
        assert_eq!(
            CFG.client_service(&client(2560, 0, now), now, both, 0.0),
            Service::Underserved,
            "2.5 MiB/s: over half the downlink, under the uplink"
        );
        let zero = Links {
            down_bps: Some(0),
            up_bps: Some(0),
        };
        assert_eq!(
            CFG.client_service(&client(1024, 0, now), now, zero, 0.0),
            Service::Served,
            "limits of 0 are no limits"
        );
    }

    #[test]
    fn a_head_far_below_its_members_is_underserved() {
        let now = 4000;
        let slow = client(512, 0, now);
        let none = Links::default();
        assert_eq!(CFG.client_service(&slow, now, none, 0.0), Service::Served);
        assert_eq!(
            CFG.client_service(&slow, now, none, 8192.0 * 1024.0),
            Service::Underserved,
            "512 KiB/s, members at 8 MiB/s"
        );
        assert_eq!(
            CFG.client_service(&slow, now, none, 2048.0 * 1024.0),
            Service::Served,
            "a quarter of its fastest member"
        );
    }

    #[test]
    fn service_by_stall_and_by_the_pids_fastest() {
        let now = 4000;
        assert_eq!(CFG.service(&joined(now), now, 0.0), Service::Unknown);
        assert_eq!(
            CFG.service(&client(16, 0, now), now, 0.0),
            Service::Underserved,
            "16 KiB/s is a stall, over every interval kept"
        );
        assert_eq!(
            CFG.service(&client(16, 0, 1000), 1000, 0.0),
            Service::Lagging,
            "over one second only: lagging"
        );
        let mut every_two_s = Progress::default();
        for t in [0, 2000, 4000] {
            every_two_s.record(Sample {
                at_ms: t,
                downloaded: 16 * KIB * t / 1000,
                uploaded: 0,
                left: FILE,
            });
        }
        assert_eq!(
            CFG.service(&every_two_s, 4000, 0.0),
            Service::Underserved,
            "over confirm_ms"
        );
        assert_eq!(CFG.service(&client(512, 0, now), now, 0.0), Service::Served);
        assert_eq!(
            CFG.service(&client(512, 0, now), now, 8192.0 * 1024.0),
            Service::Underserved,
            "under a tenth of the PID's fastest (8 MiB/s)"
        );
        assert_eq!(
            CFG.service(&client(8192, 0, now), now, 8192.0 * 1024.0),
            Service::Seeding,
            "done after two seconds"
        );
        assert_eq!(CFG.random_quota(30), 3);
        assert_eq!(CFG.random_quota(5), 1, "at least one");
    }

    #[test]
    fn homogeneous_members_of_a_served_pid_stay_local() {
        // The head's client fetches at 8 MiB/s; members at 2-4 MiB/s; one just arrived.
        let now = 1500;
        let q = quotas(
            &[
                (0, client(8192, 4096, now), true),
                (1, client(2048, 1024, now), false),
                (2, client(4096, 512, now), false),
                (3, joined(now), false),
            ],
            now,
        );
        assert_eq!(
            q,
            [4, 0, 0, 0],
            "only the gateway (the best deliverer) reaches out; the new member gets no random share in a well-served PID"
        );
    }

    #[test]
    fn slow_head_members_reach_out_and_become_gateways() {
        // slow-head: the head's client fetches fast but uploads at 128 KiB/s; the members
        // share that uplink, 40 KiB/s each.
        let now = 3000;
        let members = [
            (0, client(4096, 128, now), true),
            (1, client(40, 40, now), false),
            (2, client(40, 30, now), false),
            (3, client(40, 0, now), false),
            (4, joined(now), false),
        ];
        // First measured over one second: lagging, they wait for the gateways.
        let early = |now| {
            [
                (0, client(4096, 128, now), true),
                (1, client(40, 40, now), false),
                (2, client(40, 30, now), false),
                (3, client(40, 0, now), false),
            ]
        };
        assert_eq!(
            quotas(&early(1000), 1000),
            [4, 4, 4, 0],
            "three gateways by what they deliver; the lagging member waits"
        );
        let s = pid_summary(&CFG, members.iter().map(|(k, p, _)| (*k, p)), now);
        assert_eq!(s.underserved, 3);
        assert_eq!(s.gateways, [0, 1, 2], "three gateways by what they deliver");
        assert_eq!(
            quotas(&members, now),
            [4, 4, 4, 4, 3],
            "every underserved member reaches out; the newcomer gets the random share"
        );
        // Once a reaching member fetches from outside (4 MiB/s), it is served, and goes
        // back to local peers unless it is among the best deliverers.
        let recovered = [
            (0, client(4096, 128, now), true),
            (1, client(4096, 2048, now), false),
            (2, client(4096, 1024, now), false),
            (3, client(4096, 0, now), false),
        ];
        assert_eq!(quotas(&recovered, now), [0, 4, 0, 0]);
    }

    #[test]
    fn a_stalled_pid_reaches_out_and_mixed_uplinks_pick_the_fast_gateway() {
        // junk-head or head-leaves, as the head sees it: nobody moves.
        let now = 3000;
        let stalled = [(0, client(0, 0, now), false), (1, client(0, 0, now), false)];
        assert_eq!(quotas(&stalled, now), [4, 4]);
        // mixed-uplinks: the head's client uploads at 256 KiB/s, a member at 4 MiB/s: the
        // member is the gateway, the head's client is not.
        let mixed = [
            (0, client(4096, 256, now), true),
            (1, client(4096, 4096, now), false),
            (2, client(2048, 512, now), false),
        ];
        assert_eq!(quotas(&mixed, now), [0, 4, 0]);
    }

    #[test]
    fn churn_seeders_get_nothing_and_newcomers_follow_the_pid() {
        let now = 9000;
        let members = [
            (0, client(8192, 4096, now), true), // done: seeding
            (1, client(1024, 1024, now), false),
            (2, joined(now), false),
        ];
        assert_eq!(
            quotas(&members, now),
            [0, 4, 0],
            "the seeder gets none; the downloading deliverer is the gateway; the newcomer stays local"
        );
        // Before anything is measured, the head's own client is the gateway.
        assert_eq!(
            quotas(&[(0, joined(0), true), (1, joined(0), false)], 0),
            [4, 3]
        );
    }

    #[test]
    fn churn_a_pid_slow_together_looks_served_to_the_head_but_not_to_its_members() {
        // Three leechers of one PID at 1.3 MiB/s each, with 4 MiB/s uplinks: nobody is far
        // below the PID's fastest, so the head keeps them local (one gateway).
        let now = 6000;
        let members = [
            (0, client(1331, 1024, now), false),
            (1, client(1331, 512, now), false),
            (2, client(1300, 256, now), false),
        ];
        assert_eq!(quotas(&members, now), [4, 0, 0]);
        // Each member's proxy knows its uplink: getting a third of what it may give, it is
        // underserved, and reaches out whatever the head says.
        let links = Links {
            down_bps: None,
            up_bps: Some(4 << 20),
        };
        let service = CFG.client_service(&members[1].1, now, links, 0.0);
        assert_eq!(service, Service::Underserved);
        let net = net();
        let from_head = [peer(2, 10), peer(2, 11)];
        let others = [peer(2, 12), peer(1, 250), peer(3, 10), peer(4, 10)];
        let got = client_peers(&CFG, &view(&net, service), &from_head, &others, 30);
        assert_eq!(
            got,
            [
                peer(1, 250),
                peer(3, 10),
                peer(4, 10),
                peer(2, 10),
                peer(2, 12),
                peer(2, 11)
            ],
            "peers of other PIDs first, its own PID's kept"
        );
    }

    fn view(net: &NetworkMap, service: Service) -> ClientView<'_> {
        ClientView {
            net,
            own: net.pid_index("PID2").unwrap(),
            service,
            head: false,
            parent: None,
            head_answered: true,
            head_in_swarm: true,
            local_enough: 1,
            me: "127.2.0.50".parse().unwrap(),
        }
    }

    #[test]
    fn a_served_member_keeps_its_pid_and_what_the_head_handed() {
        let net = net();
        let from_head = [peer(2, 10), peer(2, 11), peer(1, 10)];
        let others = [peer(2, 12), peer(1, 11), peer(3, 10)];
        assert_eq!(
            client_peers(&CFG, &view(&net, Service::Served), &from_head, &others, 30),
            [peer(2, 10), peer(2, 12), peer(2, 11), peer(1, 10)],
            "local peers of both sources in turn, then the head's share of other PIDs"
        );
        assert_eq!(
            client_peers(&CFG, &view(&net, Service::Seeding), &from_head, &others, 30),
            [peer(2, 10), peer(2, 12), peer(2, 11)],
            "a seeder gets its own PID only"
        );
    }

    #[test]
    fn a_junk_head_cannot_fill_the_answer_or_hold_a_member_in() {
        let net = net();
        // fifty unreachable PID2 addresses from the head
        let junk: Vec<SocketAddr> = (100..150).map(|h| peer(2, h)).collect();
        let others = [
            peer(2, 12),
            peer(1, 10),
            peer(1, 11),
            peer(1, 12),
            peer(3, 10),
        ];
        let v = ClientView {
            head_in_swarm: false,
            ..view(&net, Service::Unknown)
        };
        let got = client_peers(&CFG, &v, &junk, &others, 30);
        assert_eq!(got.len(), 30);
        assert!(
            got.contains(&peer(2, 12)),
            "the corroborated local peer is kept"
        );
        assert_eq!(
            got.iter()
                .filter(|p| net.pid_of(p.ip()) != Some(v.own))
                .count(),
            3,
            "the random share, with the head not in the swarm"
        );
        // Stalled: it reaches out, other PIDs first, at most half from one PID.
        let got = client_peers(&CFG, &view(&net, Service::Underserved), &junk, &others, 30);
        assert_eq!(
            &got[..4],
            [peer(1, 10), peer(1, 11), peer(3, 10), peer(1, 12)]
        );
        assert!(got.contains(&peer(2, 12)));
        // The member with the lowest address stands in as the gateway.
        let v = ClientView {
            head_in_swarm: false,
            me: "127.2.0.5".parse().unwrap(),
            ..view(&net, Service::Unknown)
        };
        let got = client_peers(&CFG, &v, &junk, &others, 30);
        assert_eq!(
            &got[..4],
            [peer(1, 10), peer(1, 11), peer(3, 10), peer(1, 12)],
            "the stand-in gateway fetches from other PIDs"
        );
        // A head with no answer at all, no local peer elsewhere: reach out at once.
        let v = ClientView {
            head_answered: false,
            ..view(&net, Service::Unknown)
        };
        let got = client_peers(&CFG, &v, &[], &others[1..], 30);
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn the_head_fetches_from_its_parent_and_more_of_its_pid() {
        let net = net();
        let others = [peer(1, 10), peer(1, 11), peer(3, 10), peer(2, 12)];
        let v = ClientView {
            head: true,
            parent: Some(peer(1, 11)),
            ..view(&net, Service::Served)
        };
        assert_eq!(
            client_peers(&CFG, &v, &[], &others, 30),
            [peer(2, 12), peer(1, 11), peer(1, 10)]
        );
        let v = ClientView {
            service: Service::Underserved,
            ..v
        };
        assert_eq!(
            client_peers(&CFG, &v, &[], &others, 30),
            [peer(1, 11), peer(1, 10), peer(3, 10), peer(2, 12)],
            "a slow parent: the head reaches out too"
        );
        // Before the heads' tree is known, and with no answer from its own tracker (it is
        // the head): the cheapest other PID stands for the parent's; no reaching out.
        let v = ClientView {
            parent: None,
            head_answered: false,
            head_in_swarm: false,
            service: Service::Unknown,
            ..v
        };
        assert_eq!(
            client_peers(&CFG, &v, &[], &others, 30),
            [peer(2, 12), peer(1, 10), peer(1, 11)]
        );
    }

    #[test]
    fn spread_takes_at_most_half_from_one_pid() {
        let net = net();
        let f = [peer(1, 1), peer(1, 2), peer(1, 3), peer(3, 1)];
        assert_eq!(
            spread(&net, &f, 4),
            [peer(1, 1), peer(1, 2), peer(3, 1), peer(1, 3)]
        );
        assert_eq!(spread(&net, &f, 2), [peer(1, 1), peer(3, 1)]);
        assert_eq!(spread(&net, &f, 0), []);
    }
}
