//! The figures `--json` writes: the headline numbers under the names the lab promises
//! (README, CI), then both runs in full.

use crate::lab::{LabReport, RunFigures};
use serde::{Deserialize, Serialize};

/// The document `--json` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabSummary {
    /// Share of the ALTO run's bytes that stayed inside PIDs.
    pub localization: f64,
    /// The same for the baseline.
    pub baseline_localization: f64,
    /// Bytes that crossed PIDs in the ALTO run.
    pub cross_pid_bytes: u64,
    /// The same for the baseline.
    pub baseline_cross_pid_bytes: u64,
    /// One copy of the file into every PID that starts without one.
    pub lower_bound_bytes: u64,
    /// Median completion time of the ALTO run, seconds (`null`: nobody completed).
    pub completion_p50_s: Option<f64>,
    /// The same for the baseline.
    pub baseline_completion_p50_s: Option<f64>,
    /// Requests the ALTO server handled in the ALTO run.
    pub alto_server_requests: u64,
    /// Of those, arriving clients' directory reads and joins.
    pub alto_server_arrival_requests: u64,
    /// The rest, per second of the run.
    pub alto_server_steady_requests_per_s: f64,
    /// Requests the heads handled in the ALTO run.
    pub head_requests: u64,
    /// Clients that completed in the ALTO run.
    pub completed: usize,
    /// Clients of each run.
    pub clients: usize,
    /// Clients that completed in the baseline.
    pub baseline_completed: usize,
    /// File size.
    pub file_bytes: u64,
    /// The ALTO run in full.
    pub alto: RunFigures,
    /// The baseline in full.
    pub baseline: RunFigures,
}

impl LabSummary {
    /// The summary of `r`.
    pub fn new(r: &LabReport) -> Self {
        // NaN has no JSON form: a run where nobody completed has no median.
        let p50 = |f: &RunFigures| Some(f.completion(0.5)).filter(|v| !v.is_nan());
        LabSummary {
            localization: r.alto.localization,
            baseline_localization: r.baseline.localization,
            cross_pid_bytes: r.alto.cross_pid_bytes,
            baseline_cross_pid_bytes: r.baseline.cross_pid_bytes,
            lower_bound_bytes: r.lower_bound_bytes,
            completion_p50_s: p50(&r.alto),
            baseline_completion_p50_s: p50(&r.baseline),
            alto_server_requests: r.alto.alto_server_requests,
            alto_server_arrival_requests: r.alto.alto_server_arrival_requests,
            alto_server_steady_requests_per_s: r.alto.steady_requests_per_s(),
            head_requests: r.alto.tracker_requests,
            completed: r.alto.completed,
            clients: r.alto.clients,
            baseline_completed: r.baseline.completed,
            file_bytes: r.file_bytes,
            alto: r.alto.clone(),
            baseline: r.baseline.clone(),
        }
    }
}

/// The figures under the names the lab promises (`--json`), as a JSON value.
pub fn json(r: &LabReport) -> serde_json::Value {
    serde_json::to_value(LabSummary::new(r)).expect("plain figures serialize")
}
