//! The `mtls-prober` binary.

fn main() {}
