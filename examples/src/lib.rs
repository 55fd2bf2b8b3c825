//! Runnable scenarios for the ALTO virtual tracker.
//!
//! - [`lab`]: the swarm lab (`swarm-lab`), the README's main command.
//! - [`netns`]: the lab in network namespaces with shaped inter-PID links (`--netns`).
//! - [`third_party`]: aria2 and transmission as ordinary members in the `--netns` lab.
//! - `examples/librqbit_with_alto.rs`: how a librqbit application adopts the plugin.

pub mod lab;
pub mod netns;
pub mod third_party;
