//! The server's one error type. It is also the HTTP answer: each variant maps to a status and a
//! JSON `Problem` that names what was wrong, never echoing record content.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outpost_core::sync::wire::Problem;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credential, or an unknown one.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// A revoked device's credential: the device is told to wipe its store.
    #[error("this device was revoked: {0}")]
    Revoked(String),
    /// A retired device's credential: it handed everything in and wipes its store.
    #[error("this device was retired: {0}")]
    Retired(String),
    /// Missing, or outside the caller's scope: the two are answered the same.
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid {what}: {reason}")]
    BadRequest { what: String, reason: String },
    #[error("{what} is over the {limit}-byte limit")]
    TooLarge { what: String, limit: usize },
    #[error("no protocol version in common: the device speaks {min}..={max}, this server {ours_min}..={ours_max}")]
    UnsupportedProtocol {
        min: u32,
        max: u32,
        ours_min: u32,
        ours_max: u32,
    },
    /// A request that contradicts stored state (an enrolment code spent twice, a name taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Over a rate limit (`limits`): answered 429 with `Retry-After`; the same request later
    /// succeeds.
    #[error("too many {what}: the limit is {rate}; try again in {} s", whole_seconds(*.retry_after))]
    RateLimited {
        what: String,
        rate: crate::limits::Rate,
        retry_after: std::time::Duration,
    },
    /// Another server process wrote this document between our read and our write: merge again.
    /// Answered 503 with Retry-After if it keeps happening.
    #[error("the server is busy with {0} (another process changed it at the same moment); try again")]
    Stale(String),
    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("storage (PostgreSQL): {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Core(#[from] outpost_core::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::BadRequest {
            what: what.into(),
            reason: reason.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::Revoked(_) => (StatusCode::UNAUTHORIZED, "revoked"),
            Self::Retired(_) => (StatusCode::UNAUTHORIZED, "retired"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            Self::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad-request"),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            Self::UnsupportedProtocol { .. } => (StatusCode::UPGRADE_REQUIRED, "unsupported-protocol"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            Self::Stale(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Self::Core(outpost_core::Error::InvalidInput { .. })
            | Self::Core(outpost_core::Error::InvalidChanges { .. }) => (StatusCode::BAD_REQUEST, "bad-request"),
            Self::Storage(_) | Self::Postgres(_) | Self::Core(_) | Self::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            Self::RateLimited { retry_after, .. } => Some(whole_seconds(*retry_after)),
            Self::Stale(_) => Some(1),
            _ => None,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Details of internal failures go to the log, not to the client.
            tracing::error!(error = %self, "request failed");
            "the server could not complete the request".to_string()
        } else {
            self.to_string()
        };
        let mut response = (
            status,
            Json(Problem {
                code: code.into(),
                message,
            }),
        )
            .into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

/// A wait in whole seconds, rounded up and at least one: `Retry-After` counts whole seconds,
/// and a client told 0 would come straight back.
fn whole_seconds(wait: std::time::Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}
