//! Per-target trust anchors (`ca = "FILE"` or `ca = "system"`): for plain `tls`
//! targets outside the mesh, such as a Vault or an API with a public certificate,
//! which the mesh's own root can never verify.
//!
//! `"system"` is the platform's store, read with rustls-native-certs: the roots the
//! image's OS ships (distroless carries Debian's `ca-certificates`), `SSL_CERT_FILE`
//! or `SSL_CERT_DIR` when set. That is what an operator means by "the system's roots"
//! and what they can extend with a corporate CA without rebuilding the binary, unlike
//! a root list compiled in (webpki-roots). It is read once per process.
//!
//! A bundle file is re-read whenever the target is prepared again (config or identity
//! reload); an unchanged file keeps its parsed bundle, so edges that share it share
//! one `ClientConfig`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use crate::config::TrustSource;
use crate::identity::load::TrustBundle;
use crate::tls::peer::CertSummary;

/// How the platform's roots are named in messages.
pub const SYSTEM_ROOTS: &str = "the system's roots";

/// Loaded per-target bundles, shared by every target that names the same source.
#[derive(Debug, Default)]
pub struct AnchorCache {
    files: Mutex<HashMap<PathBuf, Arc<TrustBundle>>>,
    system: OnceLock<Result<Arc<TrustBundle>, String>>,
}

impl AnchorCache {
    /// The bundle of `source`, loaded (or re-read) now; the error names the file.
    pub fn bundle(&self, source: &TrustSource) -> Result<Arc<TrustBundle>, String> {
        match source {
            TrustSource::System => self.system.get_or_init(load_system).clone(),
            TrustSource::File(path) => self.file(path),
        }
    }

    fn file(&self, path: &Path) -> Result<Arc<TrustBundle>, String> {
        let bytes = crate::fsutil::read_small(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = files.get(path).filter(|b| b.content_sha256 == sha) {
            return Ok(b.clone());
        }
        let bundle = Arc::new(TrustBundle::from_pem(path, &bytes).map_err(|e| e.to_string())?);
        files.insert(path.to_owned(), bundle.clone());
        Ok(bundle)
    }
}

/// The platform's roots. Certificates the store holds but webpki cannot use as an
/// anchor (a few stores carry v1 or oddly encoded roots) are skipped, not fatal.
fn load_system() -> Result<Arc<TrustBundle>, String> {
    let found = rustls_native_certs::load_native_certs();
    let usable: Vec<CertificateDer<'static>> = found
        .certs
        .into_iter()
        .filter(|c| webpki::anchor_from_trusted_cert(c).is_ok() && CertSummary::parse(c).is_ok())
        .collect();
    if usable.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(format!(
            "ca = \"system\": no usable root certificates in the platform's store{why}; \
             install ca-certificates or set SSL_CERT_FILE"
        ));
    }
    let mut hasher = Sha256::new();
    for c in &usable {
        hasher.update(c.as_ref());
    }
    TrustBundle::from_certs(Path::new(SYSTEM_ROOTS), usable, hasher.finalize().into())
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_shared_until_it_changes() {
        use crate::demo::pki::Ca;
        let pki = Ca::root("one").expect("a CA");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, pki.cert_pem()).expect("write");
        let cache = AnchorCache::default();
        let src = TrustSource::File(path.clone());
        let a = cache.bundle(&src).expect("loads");
        let b = cache.bundle(&src).expect("loads");
        assert!(Arc::ptr_eq(&a, &b));
        let other = Ca::root("two").expect("a CA");
        std::fs::write(&path, other.cert_pem()).expect("write");
        let c = cache.bundle(&src).expect("loads");
        assert!(!Arc::ptr_eq(&a, &c));
        std::fs::remove_file(&path).expect("rm");
        let e = cache.bundle(&src).expect_err("gone");
        assert!(e.contains("ca.pem: cannot read"), "{e}");
    }
}
