//! What a single probe observed below the HTTP layer: the presented chain, the verifier's
//! verdict, whether a client certificate was asked for and sent, and the first bytes the
//! peer sent.
//!
//! `ClientConfig`s are built once per target and shared by all its probes (rebuilding
//! them per probe would cost allocations on the hot path), but the verifier and the
//! client-certificate resolver must record into *this* probe's slot. rustls calls them
//! synchronously while the handshake future is being polled, so a tokio task-local
//! scoped around that future gives each probe its own slot without any global state.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::peer::CertSummary;
use crate::classify::Failure;

/// How many leading bytes from the peer are kept for classification (`not_tls`, TLS
/// alert records answered to plaintext) and for details.
pub const SNIFF_LEN: usize = 24;

/// Observations of one probe.
#[derive(Debug, Default)]
pub struct Capture {
    /// The chain the peer presented, leaf first, as received (also when it failed).
    pub chain: Option<Vec<CertificateDer<'static>>>,
    /// The leaf as the verifier parsed it for the identity stage, so the report can
    /// reuse it instead of parsing the same DER again. `None` when the verifier did not
    /// get that far (chain failure, insecure mode); the report then parses the chain.
    pub leaf: Option<CertSummary>,
    /// Set by the verifier when the certificate or identity stage failed.
    pub verdict: Option<Failure>,
    /// SHA-256 of the bundle root the verified chain reached.
    pub verified_root: Option<String>,
    /// The server sent a CertificateRequest.
    pub cert_requested: bool,
    /// We answered it with a certificate (not an empty one).
    pub cert_sent: bool,
    /// The first bytes the peer sent on the wire.
    pub first_bytes: Vec<u8>,
    /// Bytes received on the wire so far.
    pub bytes_read: u64,
    /// The first read error the transport returned. Kept here because layers above
    /// (h2 in particular) turn I/O errors into strings and lose the rustls alert.
    pub read_error: Option<ReadError>,
}

/// A read error as the transport saw it.
#[derive(Clone, Debug)]
pub struct ReadError {
    /// The I/O error kind.
    pub kind: std::io::ErrorKind,
    /// The rustls error inside it, if any (e.g. a post-handshake alert).
    pub tls: Option<rustls::Error>,
}

/// A probe's capture, shared between the probe and the callbacks rustls makes.
#[derive(Clone, Debug, Default)]
pub struct CaptureSlot(Arc<Mutex<Capture>>);

impl CaptureSlot {
    /// Locks the capture. A poisoned lock only means a callback panicked mid-update;
    /// the data is still the best we have.
    pub fn lock(&self) -> MutexGuard<'_, Capture> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `fut` with this slot as the current probe's capture.
    pub async fn scope<F: Future>(&self, fut: F) -> F::Output {
        CURRENT.scope(self.clone(), fut).await
    }
}

tokio::task_local! {
    static CURRENT: CaptureSlot;
}

/// Records into the current probe's capture, if the caller is inside [`CaptureSlot::scope`].
pub(crate) fn record(f: impl FnOnce(&mut Capture)) {
    let _ = CURRENT.try_with(|slot| f(&mut slot.lock()));
}

/// A transport wrapper that records the first bytes and the byte count read from the
/// peer into a capture slot. It never buffers or alters data.
#[derive(Debug)]
pub struct Sniff<S> {
    inner: S,
    slot: CaptureSlot,
}

impl<S> Sniff<S> {
    /// Wraps `inner`, recording into `slot`.
    pub fn new(inner: S, slot: CaptureSlot) -> Self {
        Self { inner, slot }
    }

    /// The wrapped transport.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Err(e)) = &res {
            let mut c = self.slot.lock();
            if c.read_error.is_none() {
                c.read_error = Some(ReadError {
                    kind: e.kind(),
                    tls: e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                        .cloned(),
                });
            }
        }
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            let mut c = self.slot.lock();
            c.bytes_read += new.len() as u64;
            let room = SNIFF_LEN.saturating_sub(c.first_bytes.len());
            c.first_bytes.extend_from_slice(&new[..room.min(new.len())]);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniff<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
