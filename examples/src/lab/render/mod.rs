//! The lab's report for people and programs: the side-by-side table (stdout), the figures
//! as JSON (`--json`), the PID-to-PID heat maps as SVG (`--svg`). Pure functions of a
//! [`LabReport`](super::LabReport).

mod json;
mod scenarios;
mod svg;
mod table;

pub use json::{json, LabSummary};
pub use scenarios::{json_scenarios, scenario_table};
pub use svg::svg;
pub use table::table;

/// `b` bytes in MiB, one decimal.
fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}
