//! The librqbit integration: joins the ALTO server, runs the tracker shim when elected PID
//! Head, and routes librqbit's peer discovery through the local head.
//!
//! This crate is a placeholder in the workspace; the plugin issue fills it.
