//! The ALTO server of RFC 7285: the information base of `alto-model` served over HTTP, with
//! the PID Head extension (`docs/pid-head.md`).
//!
//! # Layout
//! - [`config`]: the TOML configuration and the loading of map files (or the embedded
//!   loopback topology of `testdata`), with errors naming the file and line.
//! - [`server`]: the HTTP service ([`server::App::handle`]): routing, GET resources with
//!   ETags, the accept loop ([`server::run`]) with the lease ticker, reloads, and
//!   [`server::Running`] for tests and embedding.
//! - [`query`]: the POST services (filtered maps, endpoint properties, endpoint cost), each
//!   request decoded once and answered from the information base.
//! - [`forward`]: what is forwarded where: to a PID's head or cascaded to a peer ALTO
//!   server, with suspects, `ALTO-Hops`/`ALTO-Via` and loop checks; `None` means answer here.
//! - [`pidhead`]: the HTTP side of the election: join, lease, the head directory, lease
//!   tokens and the lease clock.
//! - [`election`]: the election and leases themselves, with no I/O.
//! - [`ratelimit`]: the per-source join limit, with no I/O.
//! - [`probe`]: the TCP connect round trip the `scored` policy weighs.
//! - [`metrics`]: every counter behind `GET /metrics` (RFC 7971 §3.4.3) and its renderer.
//! - `answer` (private): JSON bodies, entity tags and the 500 answer for the server's own
//!   faults.
//!
//! # Panics
//! No request path panics on a bad request or a failed peer: what cannot be made is a 500
//! in the ALTO error format. The one `expect` kept on request paths is on locking a std
//! `Mutex`/`RwLock` (`"… lock"`): a lock is poisoned only when a thread panicked while
//! holding it, and the state it guards may then be half-changed, so failing loudly is the
//! safer answer. The other `expect`s run at start or load time on values that cannot fail
//! (hex tags as headers, the directory's JSON).

pub mod config;
pub mod election;
pub mod etcd;
pub mod forward;
pub mod metrics;
pub mod pidhead;
pub mod probe;
pub mod query;
pub mod ratelimit;
pub mod server;
pub mod store;

mod answer;

pub use config::Source;
pub use server::{run, run_with_plain, App, Running, StartError};
