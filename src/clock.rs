//! Wall-clock time behind a trait, so certificate validity and identity expiry can be
//! tested with an injected clock instead of changing the system's.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::time_provider::TimeProvider;
use rustls_pki_types::UnixTime;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Adapts a [`Clock`] to rustls' `TimeProvider`, so the verifier checks validity
/// windows against the same clock as everything else.
#[derive(Debug)]
pub struct RustlsTime(pub Arc<dyn Clock>);

impl TimeProvider for RustlsTime {
    fn current_time(&self) -> Option<UnixTime> {
        self.0
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(UnixTime::since_unix_epoch)
    }
}

/// A clock that stays where it is set (tests).
#[derive(Debug)]
pub struct FixedClock(std::sync::Mutex<SystemTime>);

impl FixedClock {
    /// A clock reading `t`.
    pub fn new(t: SystemTime) -> Self {
        Self(std::sync::Mutex::new(t))
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: SystemTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = t;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
