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
    /// The server could not be reached, or the exchange failed; syncing later may work.
    #[error("network: {reason}")]
    Network { reason: String },
    /// The device is not enrolled, its credential was revoked, or the server refused access.
    #[error("not authorised: {reason}")]
    NotAuthorised { reason: String },
    /// A fault in Outpost itself; the data on disk is intact.
    #[error("internal: {reason}")]
    Internal { reason: String },
}

impl From<Core> for OutpostError {
    fn from(error: Core) -> Self {
        // The kind says what the variant's prefix said; keep only the detail.
        let reason = match &error {
            Core::Network(detail) | Core::Unauthenticated(detail) | Core::Internal(detail) => detail.clone(),
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
            Core::CorruptDocument { .. } | Core::SchemaTooNew { .. } | Core::Storage(_) | Core::Automerge(_) => {
                Self::Storage { reason }
            }
            Core::InvalidChanges { .. } | Core::Network(_) | Core::DeadlineReached => Self::Network { reason },
            Core::Unauthenticated(_) => Self::NotAuthorised { reason },
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
