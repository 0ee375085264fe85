//! TLS client side of a probe: per-target `ClientConfig`s, the peer verifier, and the
//! per-probe capture of what happened during the handshake.

pub mod capture;
pub mod chain_cache;
pub mod client;
pub mod kx_hint;
pub mod peer;
pub mod summary_cache;
pub mod trust;
pub mod verifier;
pub mod words;
