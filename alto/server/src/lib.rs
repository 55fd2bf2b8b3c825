//! The ALTO server of RFC 7285: the information base of `alto-model` served over HTTP.
//!
//! # Layout
//! - [`config`]: the TOML configuration and the loading of map files (or the embedded
//!   loopback topology), with errors naming the file and line.
//! - [`server`]: the HTTP service ([`server::App::handle`]), the accept loop
//!   ([`server::run`]), reloads and [`server::Running`] for tests and embedding.
//! - [`metrics`]: the counters behind `GET /metrics` (RFC 7971 §3.4.3).

pub mod config;
pub mod election;
pub mod heads;
pub mod metrics;
pub mod server;

pub use config::Source;
pub use server::{run, App, Running};
