//! One error type for the core. Every variant names what was wrong so a caller (and, through the
//! bindings, a worker) can act on it.

use crate::ids::DocId;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value typed or sent from outside was refused; nothing was stored.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },

    #[error("document {0} not found")]
    NotFound(DocId),

    /// The document exists but is of another kind than the caller asked for.
    #[error("document {id} is a {actual}, not a {expected}")]
    WrongType {
        id: DocId,
        expected: &'static str,
        actual: String,
    },

    /// A stored or received document could not be read; the rest of the store is unaffected.
    #[error("document {id} is corrupt: {reason}")]
    CorruptDocument { id: DocId, reason: String },

    /// Changes received from another replica could not be decoded.
    #[error("changes for document {id} are invalid: {reason}")]
    InvalidChanges { id: DocId, reason: String },

    /// A review step that the current review state does not allow (for example approving a draft).
    #[error("cannot {action} a visit whose review state is {from}")]
    InvalidTransition { action: &'static str, from: String },

    /// The store was written by a newer version of Outpost than this one.
    #[error("store schema version {found} is newer than this app supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },

    /// The server could not be reached or the connection failed part-way; retrying may work.
    /// Anything already received and committed is kept.
    #[error("network: {0}")]
    Network(String),

    /// The server does not accept this device's credential (never enrolled, or revoked).
    #[error("not authenticated: {0}")]
    Unauthenticated(String),

    /// The server refused a request and said why; retrying the same request will not help.
    #[error("server refused the request ({code}): {message}")]
    Refused { code: String, message: String },

    /// A sync stopped at its deadline; what was done is kept and the next sync resumes.
    #[error("sync stopped at its deadline; it resumes next time")]
    DeadlineReached,

    /// A fault in Outpost itself (a bug); the store on disk is intact.
    #[error("internal error: {0}")]
    Internal(String),

    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),

    #[error("document engine: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
