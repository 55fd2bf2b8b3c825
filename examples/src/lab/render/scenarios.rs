//! Several scenarios at once (`--scenario`, repeatable): one table with a row per scenario,
//! and the `--json` document with every scenario's figures under `scenarios`, the top-level
//! fields being those of the first scenario.

use super::json::json;
use crate::lab::{LabReport, Scenario};

/// One row per scenario: completion, cross-PID bytes against the lower bound, clients.
pub fn scenario_table(reports: &[(Scenario, LabReport)]) -> String {
    let mut s = format!(
        "{:<15} {:>21} {:>21} {:>9} {:>15} {:>9}\n",
        "scenario",
        "ALTO p50/p95/max s",
        "base p50/p95/max s",
        "p50 ratio",
        "cross-PID xbound",
        "completed"
    );
    s += &"-".repeat(95);
    s.push('\n');
    for (scenario, r) in reports {
        let (a, b) = (&r.alto, &r.baseline);
        let times = |f: &crate::lab::RunFigures| {
            format!(
                "{:.1}/{:.1}/{:.1}",
                f.completion(0.5),
                f.completion(0.95),
                f.completion(1.0)
            )
        };
        let bound = r.lower_bound_bytes.max(1) as f64;
        s += &format!(
            "{:<15} {:>21} {:>21} {:>9.2} {:>7.2} / {:<6.2} {:>4}/{:<4}\n",
            scenario.name(),
            times(a),
            times(b),
            a.completion(0.5) / b.completion(0.5),
            a.cross_pid_bytes as f64 / bound,
            b.cross_pid_bytes as f64 / bound,
            a.completed + b.completed,
            a.clients + b.clients
        );
    }
    s
}

/// The `--json` document: the first scenario's fields at the top, every scenario's under
/// `scenarios`.
pub fn json_scenarios(reports: &[(Scenario, LabReport)]) -> serde_json::Value {
    let scenarios: serde_json::Map<String, serde_json::Value> = reports
        .iter()
        .map(|(s, r)| (s.name().to_owned(), json(r)))
        .collect();
    let mut doc = match reports.first() {
        Some((s, _)) => scenarios[s.name()].clone(),
        None => serde_json::json!({}),
    };
    doc["scenarios"] = serde_json::Value::Object(scenarios);
    doc
}
