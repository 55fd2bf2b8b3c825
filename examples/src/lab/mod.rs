//! The swarm lab: real librqbit clients with the plugin, spread over the PIDs of the
//! embedded loopback topology, move a real file from one seeder; then the identical swarm
//! runs as the baseline, announcing to the tracker shim in plain mode (random peers); the
//! figures of both are measured the same way.
//!
//! Bytes are attributed on the side that opened each connection (on loopback the accepting
//! side only sees 127.0.0.1): every client reports, for the connections it opened, what it
//! received and sent, by the PID of the address it connected to; summed over the swarm each
//! byte counts once. The ALTO server's requests are split into arrivals (a directory read and
//! a join per client) and the heads' steady load, which follows the number of PIDs.
//!
//! # Layout
//! - [`config`]: [`LabConfig`], what to run (shared with [`crate::netns`]).
//! - [`run`](mod@run): the in-process lab and the services both modes start
//!   ([`services`], [`torrent`]).
//! - [`junk`]: the hostile head of `--scenario junk-head`.
//! - [`metrics`]: the ALTO server's counters and the heads' `/metrics`, scraped.
//! - [`report`]: the typed figures, [`RunFigures`] per run and [`LabReport`] for both.
//! - [`render`]: the table, the `--json` document ([`LabSummary`]) and the SVG heat maps.

pub mod config;
pub mod junk;
pub mod metrics;
pub mod render;
pub mod replicas;
pub mod report;
pub mod run;

pub use config::{LabConfig, Scenario};
pub use metrics::{alto_metrics, alto_requests, head_requests, metric_sum};
pub use render::{json, json_scenarios, scenario_table, svg, table, LabSummary};
pub use replicas::{serve_replica, spread, ReplicaTls, Replicas};
pub use report::{ClientCompletion, CrossConnection, LabReport, RunFigures, TrafficMatrix};
pub use run::{note, run, services, torrent, Services};
