//! The server's Ed25519 signing key: it signs the offline leases devices carry and the audit
//! trail's checkpoints. It lives in a file of its own, outside the database, so a copy of the
//! database (a backup, a stolen disk image) cannot forge either.

use std::io::Write;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::error::{Error, Result};

/// Ed25519 over the message; 64-byte signatures, 32-byte public keys.
pub struct ServerKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The public half only: the private key never reaches a log.
        f.debug_struct("ServerKey")
            .field("public", &hex(self.public_key()))
            .finish()
    }
}

impl ServerKey {
    /// A new random key, held in memory only (tests).
    pub fn generate() -> Result<Self> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| Error::Internal("could not generate a signing key".into()))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// The key in `path` (PKCS#8 DER), made there (readable by its owner only) if absent.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_pkcs8(&bytes)
                .map_err(|_| Error::Internal(format!("{} is not an Ed25519 key (PKCS#8)", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| Error::Internal("could not generate a signing key".into()))?;
                write_private(path, pkcs8.as_ref())?;
                Self::from_pkcs8(pkcs8.as_ref())
            }
            Err(e) => Err(Error::Internal(format!("reading {}: {e}", path.display()))),
        }
    }

    fn from_pkcs8(bytes: &[u8]) -> Result<Self> {
        Ed25519KeyPair::from_pkcs8(bytes)
            .map(|pair| Self { pair })
            .map_err(|_| Error::Internal("not an Ed25519 PKCS#8 key".into()))
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }

    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }
}

/// Whether `signature` is `public_key`'s Ed25519 signature of `message`.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::Internal(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_kept_and_signs_what_it_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.key");
        let key = ServerKey::load_or_create(&path).unwrap();
        let again = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let signature = key.sign(b"lease");
        assert!(verify(key.public_key(), b"lease", &signature));
        assert!(!verify(key.public_key(), b"lease!", &signature));
        let other = ServerKey::generate().unwrap();
        assert!(!verify(other.public_key(), b"lease", &signature));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("bad.key"), b"nope").unwrap();
        let err = ServerKey::load_or_create(&dir.path().join("bad.key"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.key"), "{err}");
        assert!(!format!("{key:?}").is_empty());
    }
}
