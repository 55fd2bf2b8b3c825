//! Every counter behind `GET /metrics` and every renderer of it, in the Prometheus text
//! format (written with [`alto_web::prometheus::Text`]), covering what RFC 7971 §3.4.3 asks
//! an ALTO operator to monitor: requests, responses and bytes per resource, errors by code,
//! map versions and reloads, the size of the maps (PIDs, prefixes, cost pairs), and the PID
//! Head extension's joins, elections, lapses and forwarding.

use alto_model::{ErrorCode, InformationBase};
use alto_web::prometheus::{Kind, Text};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// HTTP statuses counted per resource; others count under the last slot.
const STATUSES: [u16; 10] = [200, 304, 400, 404, 405, 406, 413, 415, 500, 503];

/// Counters of one resource. They outlive reloads: a resource keeps its counters by ID.
#[derive(Debug, Default)]
pub struct ResourceCounters {
    requests: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    by_status: [AtomicU64; STATUSES.len()],
}

impl ResourceCounters {
    /// Counts a request and its body size.
    pub fn request(&self, body_bytes: usize) {
        self.requests.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(body_bytes as u64, Relaxed);
    }

    /// Counts a response by status and body size.
    pub fn response(&self, status: u16, body_bytes: usize) {
        let slot = STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(STATUSES.len() - 1);
        self.by_status[slot].fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(body_bytes as u64, Relaxed);
    }
}

/// Every counter of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    resources: Mutex<HashMap<String, Arc<ResourceCounters>>>,
    /// Requests for paths that are no resource.
    pub unknown_path: ResourceCounters,
    errors: [AtomicU64; 4],
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    generation: AtomicU64,
    in_flight: AtomicU64,
}

impl Metrics {
    /// The counters of a resource, created on first use.
    pub fn resource(&self, id: &str) -> Arc<ResourceCounters> {
        self.resources
            .lock()
            .expect("metrics lock")
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// Counts an ALTO error response by its code.
    pub fn error(&self, code: ErrorCode) {
        // `ALL` lists every code; a code added later without a slot is not counted.
        if let Some(slot) = ErrorCode::ALL
            .iter()
            .position(|&c| c == code)
            .and_then(|i| self.errors.get(i))
        {
            slot.fetch_add(1, Relaxed);
        }
    }

    /// Counts a reload attempt; a successful one starts a new map generation.
    pub fn reload(&self, ok: bool) {
        if ok {
            self.reloads_ok.fetch_add(1, Relaxed);
            self.generation.fetch_add(1, Relaxed);
        } else {
            self.reloads_failed.fetch_add(1, Relaxed);
        }
    }

    /// The map generation: 0 for the maps loaded at start, +1 per successful reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Marks a request as started; the guard marks it finished when dropped.
    pub fn in_flight(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self.clone())
    }

    /// Renders every counter and the gauges of `base` in the Prometheus text format.
    pub fn render(&self, base: &InformationBase) -> String {
        let mut text = Text::new();
        self.write(&mut text, base);
        text.finish()
    }

    /// Writes every counter and the gauges of `base` to `text`.
    pub fn write(&self, text: &mut Text, base: &InformationBase) {
        let mut owned: Vec<(String, Arc<ResourceCounters>)> = self
            .resources
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        owned.sort_by(|a, b| a.0.cmp(&b.0));
        let mut resources: Vec<(&str, &ResourceCounters)> =
            owned.iter().map(|(k, v)| (k.as_str(), &**v)).collect();
        resources.push(("(unknown)", &self.unknown_path));

        type Field = fn(&ResourceCounters) -> &AtomicU64;
        let per_resource: [(&str, &str, Field); 3] = [
            (
                "alto_requests_total",
                "Requests received, by resource ID.",
                |r| &r.requests,
            ),
            (
                "alto_request_bytes_total",
                "Request body bytes received, by resource ID.",
                |r| &r.bytes_in,
            ),
            (
                "alto_response_bytes_total",
                "Response body bytes sent, by resource ID.",
                |r| &r.bytes_out,
            ),
        ];
        for (name, help, field) in per_resource {
            text.family(name, Kind::Counter, help);
            for (id, r) in &resources {
                text.sample(name, &[("resource", id)], field(r).load(Relaxed));
            }
        }
        let name = "alto_responses_total";
        text.family(
            name,
            Kind::Counter,
            "Responses sent, by resource ID and HTTP status.",
        );
        for (id, r) in &resources {
            for (k, s) in STATUSES.iter().enumerate() {
                let n = r.by_status[k].load(Relaxed);
                if n > 0 {
                    let status = s.to_string();
                    text.sample(name, &[("resource", id), ("status", &status)], n);
                }
            }
        }
        let name = "alto_errors_total";
        text.family(
            name,
            Kind::Counter,
            "ALTO error responses, by RFC 7285 error code.",
        );
        for (code, n) in ErrorCode::ALL.iter().zip(&self.errors) {
            text.sample(name, &[("code", code.as_str())], n.load(Relaxed));
        }
        let name = "alto_reloads_total";
        text.family(name, Kind::Counter, "Map reloads, by result.")
            .sample(name, &[("result", "ok")], self.reloads_ok.load(Relaxed))
            .sample(
                name,
                &[("result", "failed")],
                self.reloads_failed.load(Relaxed),
            );
        text.single(
            "alto_map_generation",
            Kind::Gauge,
            "Maps served: 0 at start, +1 per successful reload.",
            self.generation(),
        );
        let name = "alto_map_info";
        let net = base.network_map();
        text.family(
            name,
            Kind::Gauge,
            "Version tag of each map served (value is always 1).",
        )
        .sample(
            name,
            &[("resource", net.resource_id()), ("vtag", net.tag())],
            1,
        );
        for c in base.cost_maps() {
            let id = format!("cost-map-{}", c.metric());
            text.sample(name, &[("resource", &id), ("vtag", c.tag())], 1);
        }
        text.single(
            "alto_pids",
            Kind::Gauge,
            "PIDs in the network map.",
            net.pids().len(),
        );
        text.single(
            "alto_prefixes",
            Kind::Gauge,
            "Prefixes in the network map.",
            net.prefix_count(),
        );
        let name = "alto_cost_pairs";
        text.family(name, Kind::Gauge, "PID pairs with a cost, by metric.");
        for c in base.cost_maps() {
            text.sample(name, &[("metric", c.metric())], c.pair_count());
        }
        text.single(
            "alto_requests_in_flight",
            Kind::Gauge,
            "Requests being answered.",
            self.in_flight.load(Relaxed),
        );
    }
}

/// Counters of the PID Head extension: joins and elections (`pidhead`), forwarding and
/// cascading (`forward`). They live across map reloads.
#[derive(Debug, Default)]
pub struct HeadCounters {
    /// Joins accepted.
    pub joins: AtomicU64,
    /// Joins refused by the per-source limit.
    pub joins_limited: AtomicU64,
    /// Joins whose tracker the server could not connect to (registered as no candidate).
    pub joins_unreachable: AtomicU64,
    /// Head answers that failed the server's checks.
    pub answers_refused: AtomicU64,
    /// Probes of a PID's head, on its members' joins, that could not reach its tracker.
    pub heads_unreachable: AtomicU64,
    /// Leases revoked after repeated failed answers or probes.
    pub revoked: AtomicU64,
    /// Heads elected.
    pub elections: AtomicU64,
    /// Leases that lapsed.
    pub lapses: AtomicU64,
    /// Queries forwarded to heads.
    pub forwarded: AtomicU64,
    /// Head answers relayed to clients.
    pub relayed: AtomicU64,
    /// Forwarded queries the server answered itself because the head failed.
    pub fallback: AtomicU64,
    /// Queries cascaded to other ALTO servers.
    pub cascaded: AtomicU64,
    /// Forwarding refused: a loop, or no hops left.
    pub loops: AtomicU64,
}

impl HeadCounters {
    /// Writes the counters, and `live_heads` (PIDs with a live head), to `text`.
    pub fn write(&self, text: &mut Text, live_heads: usize) {
        for (name, help, v) in [
            ("alto_pidhead_joins_total", "Joins accepted.", &self.joins),
            (
                "alto_pidhead_joins_limited_total",
                "Joins refused by the per-source limit.",
                &self.joins_limited,
            ),
            (
                "alto_pidhead_joins_unreachable_total",
                "Joins whose tracker the server could not connect to (no candidate).",
                &self.joins_unreachable,
            ),
            (
                "alto_pidhead_answers_refused_total",
                "Head answers that failed the server's checks (answered locally).",
                &self.answers_refused,
            ),
            (
                "alto_pidhead_heads_unreachable_total",
                "Probes of a PID's head, on its members' joins, that could not reach its tracker.",
                &self.heads_unreachable,
            ),
            (
                "alto_pidhead_revoked_total",
                "Head leases revoked after repeated failed answers or unreachable trackers.",
                &self.revoked,
            ),
            (
                "alto_pidhead_elections_total",
                "PID Heads elected.",
                &self.elections,
            ),
            (
                "alto_pidhead_lapses_total",
                "Head leases that lapsed.",
                &self.lapses,
            ),
            (
                "alto_forwarded_total",
                "Queries forwarded to PID Heads.",
                &self.forwarded,
            ),
            (
                "alto_relayed_total",
                "Head answers relayed to clients (head-answered queries).",
                &self.relayed,
            ),
            (
                "alto_fallback_total",
                "Forwarded or cascaded queries answered locally after a failure.",
                &self.fallback,
            ),
            (
                "alto_cascaded_total",
                "Queries cascaded to other ALTO servers.",
                &self.cascaded,
            ),
            (
                "alto_forward_refused_total",
                "Forwarding refused: a loop or no hops left.",
                &self.loops,
            ),
        ] {
            text.single(name, Kind::Counter, help, v.load(Relaxed));
        }
        text.single(
            "alto_pidheads",
            Kind::Gauge,
            "PIDs with a live head.",
            live_heads,
        );
    }
}

/// The whole `GET /metrics` page: the server's counters and the gauges of `base`, then the
/// PID Head extension's counters and `live_heads`.
pub fn page(
    metrics: &Metrics,
    base: &InformationBase,
    heads: &HeadCounters,
    live_heads: usize,
) -> String {
    let mut text = Text::new();
    metrics.write(&mut text, base);
    heads.write(&mut text, live_heads);
    text.finish()
}

/// Marks a request in flight until dropped.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}
