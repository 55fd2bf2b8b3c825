//! The side-by-side table `swarm-lab` prints: the ALTO run against the baseline, then each
//! run's PID-to-PID matrix in MiB.

use super::mib;
use crate::lab::LabReport;

/// The side-by-side table.
pub fn table(r: &LabReport) -> String {
    let (a, b) = (&r.alto, &r.baseline);
    let row = |name: &str, x: String, y: String| format!("{name:<34} {x:>24} {y:>24}\n");
    let mut s = String::new();
    s += &row(
        "",
        "ALTO (virtual tracker)".into(),
        "baseline (random peers)".into(),
    );
    s += &"-".repeat(84);
    s.push('\n');
    s += &row(
        "clients completed",
        format!("{}/{}", a.completed, a.clients),
        format!("{}/{}", b.completed, b.clients),
    );
    if a.third_party > 0 {
        s += &row(
            "  of them third-party clients",
            a.third_party.to_string(),
            b.third_party.to_string(),
        );
    }
    s += &row(
        "bytes inside PIDs (localization)",
        format!("{:.1}%", a.localization * 100.0),
        format!("{:.1}%", b.localization * 100.0),
    );
    let bound = r.lower_bound_bytes.max(1) as f64;
    s += &row(
        "cross-PID bytes",
        format!(
            "{} ({:.2}x bound)",
            mib(a.cross_pid_bytes),
            a.cross_pid_bytes as f64 / bound
        ),
        format!(
            "{} ({:.2}x bound)",
            mib(b.cross_pid_bytes),
            b.cross_pid_bytes as f64 / bound
        ),
    );
    s += &row(
        "lower bound (a copy per PID)",
        mib(r.lower_bound_bytes),
        mib(r.lower_bound_bytes),
    );
    s += &row(
        "completion p50 / p95 / max (s)",
        format!(
            "{:.1} / {:.1} / {:.1}",
            a.completion(0.5),
            a.completion(0.95),
            a.completion(1.0)
        ),
        format!(
            "{:.1} / {:.1} / {:.1}",
            b.completion(0.5),
            b.completion(0.95),
            b.completion(1.0)
        ),
    );
    s += &row(
        "ALTO server requests",
        a.alto_server_requests.to_string(),
        b.alto_server_requests.to_string(),
    );
    s += &row(
        "  of arriving clients (dir., join)",
        a.alto_server_arrival_requests.to_string(),
        "-".into(),
    );
    s += &row(
        "  of heads, per second of the run",
        format!("{:.1}", a.steady_requests_per_s()),
        "-".into(),
    );
    s += &row(
        "head (tracker) requests",
        a.tracker_requests.to_string(),
        b.tracker_requests.to_string(),
    );
    s += &row("heads elected", a.elections.to_string(), "-".into());
    s += &row(
        "outreach trials / peers left",
        format!("{} / {}", a.outreach_trials, a.outreach_left_peers),
        "-".into(),
    );
    for (title, f) in [("ALTO run", a), ("baseline", b)] {
        s += &format!("\n{title}: MiB from PID (row) to PID (column)\n{:>10}", "");
        for p in &r.pids {
            s += &format!("{p:>10}");
        }
        s.push('\n');
        for from in &r.pids {
            s += &format!("{from:>10}");
            for to in &r.pids {
                let v = f.matrix.bytes(from, to);
                s += &format!("{:>10.1}", v as f64 / (1 << 20) as f64);
            }
            s.push('\n');
        }
    }
    s
}
