//! The agent's own identity: certificate chain, private key and trust bundle.

pub mod spiffe;
