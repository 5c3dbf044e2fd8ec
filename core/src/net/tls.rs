//! The rustls client configuration: whom the device trusts. One per `Client`, shared by every
//! connection it opens, so rustls's in-memory session store lets a reconnect resume instead of
//! repeating the full handshake (a round trip and the certificate chain saved on a poor mobile
//! link).
//!
//! Trust comes from one of two places: a deployment's own CA (PEM), or else the platform's
//! certificate store through `rustls-platform-verifier` (the system bundle on Linux, honouring
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`; Security.framework on iOS; the Android trust manager,
//! which needs the app's JNI initialisation first). Either may be narrowed by SPKI pins: the
//! chain must verify, and then the server's key must be one of the pinned keys.

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const WHAT: &str = "CA certificate";

/// A client configuration trusting the certificates in `ca_pem`, or with none the platform's
/// certificate store; when `pins` is not empty, the server's key must also be one of them.
pub(crate) fn client_config(ca_pem: Option<&[u8]>, pins: &[[u8; 32]]) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match ca_pem {
        Some(pem) => WebPkiServerVerifier::builder_with_provider(Arc::new(roots(pem)?), provider.clone())
            .build()
            .map_err(|e| Error::invalid(WHAT, e.to_string()))?,
        None => Arc::new(platform_verifier(provider.clone())?),
    };
    let verifier = if pins.is_empty() {
        verifier
    } else {
        Arc::new(PinnedVerifier {
            inner: verifier,
            pins: pins.to_vec(),
        })
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid("TLS configuration", e.to_string()))?
        // "Dangerous" only in name: the verifier is WebPKI or the platform's, at most wrapped
        // by the pin check, which can refuse a certificate but never accept one they refused.
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // `config.resumption` keeps its default: an in-memory store of recent sessions.
    Ok(Arc::new(config))
}

fn roots(pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| Error::invalid(WHAT, format!("not a readable PEM certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| Error::invalid(WHAT, format!("not a usable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::invalid(WHAT, "the PEM holds no certificate"));
    }
    Ok(roots)
}

/// The platform's verifier. On Linux this reads the certificate store now (failing if it holds
/// none), so a `Client` made after the store changes sees the change.
fn platform_verifier(provider: Arc<CryptoProvider>) -> Result<rustls_platform_verifier::Verifier> {
    rustls_platform_verifier::Verifier::new(provider)
        .map_err(|e| Error::invalid("platform certificate store", e.to_string()))
}

/// The SHA-256 of a DER certificate's SubjectPublicKeyInfo: the pin for `ClientConfig::pins`.
/// It names the key, not the certificate, so it survives a renewal that keeps the key.
pub fn spki_sha256(cert_der: &[u8]) -> Result<[u8; 32]> {
    spki_digest(&CertificateDer::from(cert_der))
        .map_err(|e| Error::invalid("certificate", format!("not a readable X.509 certificate: {e}")))
}

fn spki_digest(cert: &CertificateDer<'_>) -> std::result::Result<[u8; 32], webpki::Error> {
    let cert = webpki::EndEntityCert::try_from(cert)?;
    Ok(Sha256::digest(cert.subject_public_key_info().as_ref()).into())
}

/// Verifies with `inner` first, then requires the end-entity key to be one of `pins`.
#[derive(Debug)]
struct PinnedVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let pin = spki_digest(end_entity).map_err(|_| CertificateError::BadEncoding)?;
        if self.pins.contains(&pin) {
            Ok(verified)
        } else {
            Err(CertificateError::Other(OtherError(Arc::new(PinMismatch))).into())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// The certificate verified but its key is not pinned.
struct PinMismatch;

const PIN_MISMATCH: &str = "the server certificate did not match the pinned key (its public key is none of the pins)";

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PIN_MISMATCH)
    }
}

// rustls prints `CertificateError::Other` with `{:?}`, so Debug carries the sentence too.
impl fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PIN_MISMATCH)
    }
}

impl std::error::Error for PinMismatch {}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair, PublicKeyData};

    use super::*;

    fn reason(pem: &[u8]) -> String {
        client_config(Some(pem), &[]).unwrap_err().to_string()
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

    /// With no CA the platform's store is read; it may legitimately be empty on a bare build
    /// machine, and then the refusal must name it rather than build a config trusting nothing.
    #[test]
    fn no_ca_trusts_the_platform_store_or_says_it_is_empty() {
        match client_config(None, &[]) {
            Ok(_) => {}
            Err(e) => assert!(e.to_string().contains("platform certificate store"), "{e}"),
        }
    }

    #[test]
    fn pins_wrap_the_ca_verifier() {
        let key = KeyPair::generate().unwrap();
        let ca = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(client_config(Some(ca.pem().as_bytes()), &[[7; 32]]).is_ok());
    }

    fn cert(name: &str, key: &KeyPair) -> Vec<u8> {
        CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(key)
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn the_pin_names_the_key_not_the_certificate() {
        let key = KeyPair::generate().unwrap();
        let first = cert("a.example", &key);
        let renewed = cert("b.example", &key);
        assert_ne!(first, renewed);
        assert_eq!(spki_sha256(&first).unwrap(), spki_sha256(&renewed).unwrap());

        let other = cert("a.example", &KeyPair::generate().unwrap());
        assert_ne!(spki_sha256(&first).unwrap(), spki_sha256(&other).unwrap());
    }

    #[test]
    fn the_pin_is_the_sha256_of_the_der_spki() {
        let key = KeyPair::generate().unwrap();
        let expected: [u8; 32] = Sha256::digest(key.subject_public_key_info()).into();
        assert_eq!(spki_sha256(&cert("a.example", &key)).unwrap(), expected);
    }

    #[test]
    fn a_pin_of_something_not_a_certificate_is_refused() {
        let err = spki_sha256(b"hello world").unwrap_err().to_string();
        assert!(err.contains("certificate"), "{err}");
    }
}
