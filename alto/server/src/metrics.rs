//! Counters for `GET /metrics` in the Prometheus text format, covering what RFC 7971 §3.4.3
//! asks an ALTO operator to monitor: requests, responses and bytes per resource, errors by
//! code, map versions and reloads, and the size of the maps (PIDs, prefixes, cost pairs).

use alto_model::{ErrorCode, InformationBase};
use std::collections::HashMap;
use std::fmt::Write;
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
        let i = ErrorCode::ALL
            .iter()
            .position(|&c| c == code)
            .expect("listed");
        self.errors[i].fetch_add(1, Relaxed);
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
        let mut out = String::with_capacity(4096);
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
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (id, r) in &resources {
                let _ = writeln!(
                    out,
                    "{name}{{resource=\"{id}\"}} {}",
                    field(r).load(Relaxed)
                );
            }
        }
        out.push_str("# HELP alto_responses_total Responses sent, by resource ID and HTTP status.\n# TYPE alto_responses_total counter\n");
        for (id, r) in &resources {
            for (k, s) in STATUSES.iter().enumerate() {
                let n = r.by_status[k].load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "alto_responses_total{{resource=\"{id}\",status=\"{s}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP alto_errors_total ALTO error responses, by RFC 7285 error code.\n# TYPE alto_errors_total counter\n");
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "alto_errors_total{{code=\"{}\"}} {}",
                code.as_str(),
                self.errors[i].load(Relaxed)
            );
        }
        out.push_str("# HELP alto_reloads_total Map reloads, by result.\n# TYPE alto_reloads_total counter\n");
        let _ = writeln!(
            out,
            "alto_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "alto_reloads_total{{result=\"failed\"}} {}",
            self.reloads_failed.load(Relaxed)
        );
        out.push_str("# HELP alto_map_generation Maps served: 0 at start, +1 per successful reload.\n# TYPE alto_map_generation gauge\n");
        let _ = writeln!(out, "alto_map_generation {}", self.generation());
        out.push_str("# HELP alto_map_info Version tag of each map served (value is always 1).\n# TYPE alto_map_info gauge\n");
        let net = base.network_map();
        let _ = writeln!(
            out,
            "alto_map_info{{resource=\"{}\",vtag=\"{}\"}} 1",
            net.resource_id(),
            net.tag()
        );
        for c in base.cost_maps() {
            let _ = writeln!(
                out,
                "alto_map_info{{resource=\"cost-map-{}\",vtag=\"{}\"}} 1",
                c.metric(),
                c.tag()
            );
        }
        out.push_str("# HELP alto_pids PIDs in the network map.\n# TYPE alto_pids gauge\n");
        let _ = writeln!(out, "alto_pids {}", net.pids().len());
        out.push_str(
            "# HELP alto_prefixes Prefixes in the network map.\n# TYPE alto_prefixes gauge\n",
        );
        let _ = writeln!(out, "alto_prefixes {}", net.prefix_count());
        out.push_str("# HELP alto_cost_pairs PID pairs with a cost, by metric.\n# TYPE alto_cost_pairs gauge\n");
        for c in base.cost_maps() {
            let _ = writeln!(
                out,
                "alto_cost_pairs{{metric=\"{}\"}} {}",
                c.metric(),
                c.pair_count()
            );
        }
        out.push_str("# HELP alto_requests_in_flight Requests being answered.\n# TYPE alto_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "alto_requests_in_flight {}",
            self.in_flight.load(Relaxed)
        );
        out
    }
}

/// Marks a request in flight until dropped.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}
