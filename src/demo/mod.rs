//! The self-contained demo mesh: a throwaway PKI and one loopback server per failure class.

pub mod peers;
pub mod pki;
