//! The HTTP path shared by the ALTO server, the virtual tracker a PID Head runs, and the
//! librqbit plugin's proxy: one accept loop, one admission of ALTO requests (RFC 7285 §8.3),
//! one rule for the client's address behind trusted proxies, one HTTP client, one clock.
//!
//! # Layout
//! - [`serve`]: the accept loop with keep-alive and graceful shutdown.
//! - [`resource`]: method, media type and body checks, ALTO error answers, conditional GET.
//! - [`client_addr`]: the client's address (IPv4-mapped canonicalised, `X-Forwarded-For` from
//!   trusted proxies only).
//! - [`client`]: the hyper client every outgoing request of the workspace goes through.
//! - [`tls`]: server certificates (reloadable) and what clients verify servers against.
//! - [`digest`]: HTTP Digest authentication (RFC 7616, SHA-256), both sides, no I/O.
//! - [`clock`]: wall-clock seconds that follow tokio's clock, so tests can drive time.
//! - [`prometheus`]: the Prometheus text format of every `/metrics`.

pub mod client;
pub mod client_addr;
pub mod clock;
pub mod digest;
pub mod prometheus;
pub mod resource;
pub mod serve;
pub mod tls;

pub use client_addr::{canonical, client_addr, ClientAddr};
pub use resource::{
    admit, alto_error, conditional, post_answer, simple, BodyLimit, HttpResponse, Reject,
};
pub use serve::{serve, serve_tls, Limits};
