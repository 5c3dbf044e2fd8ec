//! How a team lead proves who they are. Sessions, CSRF and authorisation sit above this one
//! interface, so a council's own identity provider (OIDC) replaces only what is here.

use std::collections::HashMap;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use outpost_core::WorkerId;

use crate::error::{Error, Result};
use crate::storage::Storage;

/// Shortest password the admin may set.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Failed sign-ins allowed for one username within `THROTTLE_WINDOW` seconds.
const MAX_FAILURES: u32 = 5;
const THROTTLE_WINDOW: i64 = 15 * 60;

/// What the sign-in page offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInMethod {
    /// A username and password form, posted back to the sign-in endpoint.
    Password,
    /// Send the browser to a provider, which sends it back with parameters to verify.
    Redirect { url: String },
}

/// A way of signing in.
pub trait IdentityProvider: Send + Sync {
    fn method(&self) -> SignInMethod;
    /// Checks what came back to the sign-in endpoint (the form's fields, or a provider's callback
    /// parameters). `Ok(None)` when they prove nobody; errors only for failures of our own.
    fn verify(&self, storage: &dyn Storage, fields: &HashMap<String, String>) -> Result<Option<WorkerId>>;
}

/// Passwords the admin set, hashed with Argon2id.
#[derive(Debug, Default)]
pub struct PasswordSignIn;

impl IdentityProvider for PasswordSignIn {
    fn method(&self) -> SignInMethod {
        SignInMethod::Password
    }

    fn verify(&self, storage: &dyn Storage, fields: &HashMap<String, String>) -> Result<Option<WorkerId>> {
        let (Some(username), Some(password)) = (fields.get("username"), fields.get("password")) else {
            return Ok(None);
        };
        let worker = WorkerId::new(username.trim()).ok();
        let stored = match &worker {
            Some(worker) => storage.password(worker)?,
            None => None,
        };
        // An unknown user costs the same hash as a known one, so timing does not tell them apart.
        let matches = verify_password(stored.as_deref().unwrap_or(DECOY_HASH), password);
        Ok(worker.filter(|_| matches && stored.is_some()))
    }
}

/// The hash of a password nobody has, verified when the username is unknown.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Yp8dnUnWSbUd5PYRVHKLMmEWcbq6dPHRYxg4YyEXv0Q";

/// A PHC string for `password` (Argon2id, the crate's recommended cost, a random salt).
pub fn hash_password(password: &str) -> Result<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::bad(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters, got {chars}"),
        ));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Slows guessing: after `MAX_FAILURES` failed sign-ins for one username, further attempts
/// are refused until the window that holds them has passed. Counted in the database, so a
/// restart does not reset it and every server process over one database counts together.
#[derive(Debug, Default)]
pub struct LoginThrottle;

impl LoginThrottle {
    /// Seconds until `username` may try again, if it is locked out now.
    pub fn locked_for(&self, storage: &dyn Storage, username: &str, now: i64) -> Result<Option<i64>> {
        Ok(storage.sign_in_failures(&key(username))?.and_then(|(count, since)| {
            let left = since + THROTTLE_WINDOW - now;
            (count >= MAX_FAILURES && left > 0).then_some(left)
        }))
    }

    pub fn failed(&self, storage: &dyn Storage, username: &str, now: i64) -> Result<()> {
        storage.record_sign_in_failure(&key(username), now, THROTTLE_WINDOW)
    }

    pub fn succeeded(&self, storage: &dyn Storage, username: &str) -> Result<()> {
        storage.clear_sign_in_failures(&key(username))
    }
}

fn key(username: &str) -> String {
    username.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_salt_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password(&a, "correct horse battery"));
        assert!(!verify_password(&a, "correct horse battery "));
        assert!(!verify_password("not a hash", "correct horse battery"));
        let short = hash_password("short").unwrap_err().to_string();
        assert!(short.contains("password") && short.contains("12"), "{short}");
    }

    #[test]
    fn the_decoy_hash_parses_so_unknown_users_cost_a_full_verify() {
        assert!(PasswordHash::new(DECOY_HASH).is_ok());
        assert!(!verify_password(DECOY_HASH, ""));
    }

    #[test]
    fn five_failures_lock_a_username_for_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::sqlite::SqliteStorage::open(dir.path().join("server.db")).unwrap();
        let throttle = LoginThrottle;
        for _ in 0..4 {
            throttle.failed(&storage, "Lead1", 1000).unwrap();
        }
        assert_eq!(throttle.locked_for(&storage, "lead1", 1001).unwrap(), None);
        throttle.failed(&storage, " lead1", 1002).unwrap();
        assert_eq!(
            throttle.locked_for(&storage, "LEAD1", 1003).unwrap(),
            Some(THROTTLE_WINDOW - 3)
        );
        assert_eq!(
            throttle.locked_for(&storage, "lead1", 1000 + THROTTLE_WINDOW).unwrap(),
            None
        );
        assert_eq!(throttle.locked_for(&storage, "lead2", 1003).unwrap(), None);
        throttle.succeeded(&storage, "lead1").unwrap();
        assert_eq!(throttle.locked_for(&storage, "lead1", 1003).unwrap(), None);
        // A failure after the window starts a new one.
        for _ in 0..5 {
            throttle.failed(&storage, "lead3", 1000).unwrap();
        }
        throttle.failed(&storage, "lead3", 1000 + THROTTLE_WINDOW).unwrap();
        assert_eq!(
            throttle.locked_for(&storage, "lead3", 1001 + THROTTLE_WINDOW).unwrap(),
            None
        );
    }
}
