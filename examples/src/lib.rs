//! Runnable scenarios for the ALTO virtual tracker. `examples/librqbit_with_alto.rs` shows
//! how a librqbit application adopts the plugin in a few lines.
