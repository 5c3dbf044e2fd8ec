//! The one error apps see: a few kinds a UI can branch on, each with a reason to show.

use outpost_core::Error as Core;

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum OutpostError {
    /// The record (or document) does not exist on this device.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// A value the app passed was refused; `field` names it. Nothing was stored.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// The store on this device could not be read or written.
    #[error("storage: {reason}")]
    Storage { reason: String },
    /// The store is encrypted and the key given (or no key) does not open it. Nothing was
    /// changed; opening with the store's key works.
    #[error("wrong key: {reason}")]
    WrongKey { reason: String },
    /// The server could not be reached, or the exchange failed; syncing later may work.
    #[error("network: {reason}")]
    Network { reason: String },
    /// The device is not enrolled, its credential was revoked, or the server refused access.
    #[error("not authorised: {reason}")]
    NotAuthorised { reason: String },
    /// Records are locked: the device has not reached the server for longer than its offline
    /// lease allows, or its clock was set back (or, for edits, it is being retired). Syncing
    /// still works, and a sync that succeeds unlocks them.
    #[error("locked: {reason}")]
    Locked { reason: String },
    /// The administrator revoked or retired this device, and its records were wiped from it.
    /// Show the enrolment screen: the device must be enrolled again to be used.
    #[error("wiped: {reason}")]
    Wiped { reason: String },
    /// A fault in Outpost itself; the data on disk is intact.
    #[error("internal: {reason}")]
    Internal { reason: String },
}

impl From<Core> for OutpostError {
    fn from(error: Core) -> Self {
        // The kind says what the variant's prefix said; keep only the detail.
        let reason = match &error {
            Core::Network(detail)
            | Core::Unauthenticated(detail)
            | Core::Internal(detail)
            | Core::WrongKey(detail)
            | Core::Locked(detail)
            | Core::Revoked(detail)
            | Core::Retired(detail) => detail.clone(),
            Core::Storage(e) => e.to_string(),
            _ => error.to_string(),
        };
        match error {
            Core::InvalidInput { field, reason } => Self::InvalidInput { field, reason },
            Core::NotFound(id) => Self::NotFound { what: id.to_string() },
            Core::WrongType { .. } => Self::InvalidInput {
                field: "document id".into(),
                reason,
            },
            Core::InvalidTransition { .. } => Self::InvalidInput {
                field: "review action".into(),
                reason,
            },
            Core::CorruptDocument { .. }
            | Core::SchemaTooNew { .. }
            | Core::Storage(_)
            | Core::File { .. }
            | Core::Automerge(_) => Self::Storage { reason },
            Core::WrongKey(_) => Self::WrongKey { reason },
            Core::InvalidChanges { .. } | Core::Network(_) | Core::DeadlineReached => Self::Network { reason },
            Core::Unauthenticated(_) => Self::NotAuthorised { reason },
            Core::Locked(_) => Self::Locked { reason },
            Core::Revoked(_) | Core::Retired(_) => Self::Wiped { reason },
            // A device meets `conflict` only when enrolling with a code already spent.
            Core::Refused { code, .. } if matches!(code.as_str(), "unauthenticated" | "conflict") => {
                Self::NotAuthorised { reason }
            }
            Core::Refused { .. } => Self::Network { reason },
            Core::Internal(_) => Self::Internal { reason },
        }
    }
}

pub type Result<T, E = OutpostError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_store_and_a_device_out_of_service_are_kinds_of_their_own() {
        let locked = OutpostError::from(Core::Locked("the offline lease ran out".into()));
        assert!(matches!(&locked, OutpostError::Locked { reason } if reason == "the offline lease ran out"));
        for wiped in [Core::Revoked("lost".into()), Core::Retired("handed in".into())] {
            assert!(matches!(OutpostError::from(wiped), OutpostError::Wiped { .. }));
        }
        let unknown = OutpostError::from(Core::Unauthenticated("not enrolled".into()));
        assert!(matches!(unknown, OutpostError::NotAuthorised { .. }));
    }
}
