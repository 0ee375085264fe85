//! The self-contained demo mesh: a throwaway PKI and one loopback server per failure class.

mod catalog;
pub mod dns;
pub mod mesh;
pub mod peers;
pub mod pki;
