//! The rustls client configuration. One per `Client`, shared by every connection it opens, so
//! rustls's in-memory session store lets a reconnect resume instead of repeating the full
//! handshake (a round trip and the certificate chain saved on a poor mobile link).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{Error, Result};

const WHAT: &str = "CA certificate";

/// A client configuration trusting only the certificates in `ca_pem`.
///
/// With no CA nothing is trusted and every handshake fails: Outpost does not ship the public
/// web roots yet, so a deployment hands its devices the CA that signed its server certificate.
pub(crate) fn client_config(ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| Error::invalid(WHAT, format!("not a readable PEM certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::invalid(WHAT, format!("not a usable certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Error::invalid(WHAT, "the PEM holds no certificate"));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid("TLS configuration", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // `config.resumption` keeps its default: an in-memory store of recent sessions.
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(pem: &[u8]) -> String {
        client_config(Some(pem)).unwrap_err().to_string()
    }

    #[test]
    fn garbage_pem_is_refused_naming_the_ca() {
        let err = reason(b"-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n");
        assert!(err.contains("CA certificate") && err.contains("PEM"), "{err}");
    }

    #[test]
    fn pem_without_a_certificate_is_refused() {
        let err = reason(b"just some text, no PEM sections at all\n");
        assert!(
            err.contains("CA certificate") && err.contains("no certificate"),
            "{err}"
        );
    }

    #[test]
    fn a_pem_certificate_that_is_not_der_is_refused() {
        // Valid base64 and PEM framing, but the bytes are not an X.509 certificate.
        let err = reason(b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n");
        assert!(err.contains("CA certificate"), "{err}");
    }

    #[test]
    fn no_ca_builds_a_config_that_trusts_nothing() {
        assert!(client_config(None).is_ok());
    }
}
