//! Runnable scenarios for the ALTO virtual tracker.
//!
//! # Layout
//! - [`lab`]: the swarm lab (`swarm-lab`), the README's main command.
//!   - `lab/config.rs`: what to run; `lab/run.rs`: the in-process lab and the services both
//!     modes start; `lab/metrics.rs`: the servers' counters; `lab/report.rs`: the typed
//!     figures; `lab/render/`: the table, the `--json` document and the SVG heat maps.
//! - [`netns`]: the lab in network namespaces with shaped inter-PID links (`--netns`),
//!   following each `rqbit-alto` client's `--json` progress.
//! - [`third_party`]: aria2 and transmission as ordinary members in the `--netns` lab.
//! - `src/bin/`: `swarm-lab`, and the system benchmarks `tracker-load` and `vt-bench`.
//! - `examples/librqbit_with_alto.rs`: how a librqbit application adopts the plugin.
//! - `tests/`: the end-to-end tests (the lab, third-party clients, heads, elections, swarms).
//!
//! The namespace harness and the third-party client launchers live in `test-support`
//! (`testdata/support`), shared with the interop tests.

pub mod lab;
pub mod netns;
pub mod third_party;
