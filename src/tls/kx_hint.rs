//! Which key-exchange group each server chose last: a "session store" that keeps only
//! that, never a session.
//!
//! A rustls client offers a key share for its first group (X25519MLKEM768 with
//! aws-lc-rs, plus the X25519 share beside it). A server that does not do ML-KEM picks
//! X25519, and the ML-KEM key pair — the costliest part of a ClientHello and 1,184 of
//! its bytes — was made for nothing, on every probe, every few seconds, on every node.
//! rustls remembers the server's choice ("kx hint") in its session store to offer the
//! right share first next time, but `Resumption::disabled()` drops the hint along with
//! the tickets. This store keeps the hint and refuses every ticket and session, so each
//! probe is still a full handshake (SPEC §4: a rotated peer certificate is seen at the
//! next probe) with every group still listed in `supported_groups`: a server whose
//! choice changed answers with a HelloRetryRequest and the next hint follows it.

use std::collections::HashMap;
use std::sync::Mutex;

use rustls::NamedGroup;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls_pki_types::ServerName;

use crate::sync::lock;

/// Server names remembered per store (one store per `ClientConfig`, which edges with
/// the same TLS parameters share). Past this the map starts over: a forgotten hint
/// costs one ClientHello with the default shares, nothing else.
const MAX_NAMES: usize = 1024;

/// A [`ClientSessionStore`] that remembers each server's key-exchange group and no
/// session: TLS 1.2 sessions and TLS 1.3 tickets are dropped as they arrive.
#[derive(Debug, Default)]
pub struct KxHintsOnly {
    hints: Mutex<HashMap<ServerName<'static>, NamedGroup>>,
}

impl KxHintsOnly {
    fn hints(&self) -> std::sync::MutexGuard<'_, HashMap<ServerName<'static>, NamedGroup>> {
        lock(&self.hints)
    }
}

impl ClientSessionStore for KxHintsOnly {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        let mut hints = self.hints();
        if hints.len() >= MAX_NAMES && !hints.contains_key(&server_name) {
            hints.clear();
        }
        hints.insert(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.hints().get(server_name).copied()
    }

    fn set_tls12_session(&self, _: ServerName<'static>, _: Tls12ClientSessionValue) {}

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _: ServerName<'static>, _: Tls13ClientSessionValue) {}

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ServerName<'static> {
        ServerName::try_from(s.to_owned()).unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn keeps_the_last_choice_per_name_and_is_bounded() {
        let store = KxHintsOnly::default();
        assert_eq!(store.kx_hint(&name("a.example")), None);
        store.set_kx_hint(name("a.example"), NamedGroup::X25519MLKEM768);
        store.set_kx_hint(name("a.example"), NamedGroup::X25519);
        assert_eq!(store.kx_hint(&name("a.example")), Some(NamedGroup::X25519));
        for i in 0..MAX_NAMES + 10 {
            store.set_kx_hint(name(&format!("n{i}.example")), NamedGroup::secp256r1);
        }
        assert!(store.hints().len() <= MAX_NAMES);
    }
}
