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

    /// The server does not accept this device's credential (never enrolled, or unknown).
    #[error("not authenticated: {0}")]
    Unauthenticated(String),

    /// An administrator revoked this device (lost or stolen): the server refuses it and it
    /// wipes its store, unsent changes included.
    #[error("revoked: {0}")]
    Revoked(String),

    /// This device was retired (handed in): everything it held reached the server, and it
    /// wipes its store.
    #[error("retired: {0}")]
    Retired(String),

    /// Records cannot be shown or changed now: the offline lease ran out, the clock reads
    /// earlier than a time already seen, or (for edits) the device is being retired. A sync
    /// that succeeds unlocks a leased store; syncing still works while locked.
    #[error("locked: {0}")]
    Locked(String),

    /// The server refused a request and said why; retrying the same request will not help.
    #[error("server refused the request ({code}): {message}")]
    Refused { code: String, message: String },

    /// A sync stopped at its deadline; what was done is kept and the next sync resumes.
    #[error("sync stopped at its deadline; it resumes next time")]
    DeadlineReached,

    /// A fault in Outpost itself (a bug); the store on disk is intact.
    #[error("internal error: {0}")]
    Internal(String),

    /// The store is encrypted and the key given, or the lack of one, does not open it. Nothing
    /// on disk was changed; the right key opens it.
    #[error("wrong key: {0}")]
    WrongKey(String),

    /// A file of the store could not be read, written, synced or renamed; the store on disk is
    /// as it was before the call.
    #[error("could not {action} {}: {source}", path.display())]
    File {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    /// SQLite failed. A full or read-only disk is named as such (see `From<rusqlite::Error>`);
    /// the write that met it was not saved, and everything saved before it is kept.
    #[error("storage: {0}")]
    Storage(rusqlite::Error),

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

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::Storage(name_the_disk(error))
    }
}

/// SQLite's own words for a full or read-only disk ("database or disk is full", "attempt to
/// write a readonly database") do not say what happened to the worker's data; these do. The
/// code is kept, so a caller can still branch on it.
fn name_the_disk(error: rusqlite::Error) -> rusqlite::Error {
    let rusqlite::Error::SqliteFailure(code, message) = error else {
        return error;
    };
    let what = match code.code {
        rusqlite::ErrorCode::DiskFull => {
            "the disk is full: this change was not saved, and everything saved before it is kept; \
             free some space on the device and try again"
        }
        rusqlite::ErrorCode::ReadOnly => {
            "the disk is read-only: this change was not saved, and everything saved before it is \
             kept and can still be read"
        }
        _ => return rusqlite::Error::SqliteFailure(code, message),
    };
    let sqlite = message.unwrap_or_else(|| code.to_string());
    rusqlite::Error::SqliteFailure(code, Some(format!("{what} ({sqlite})")))
}
