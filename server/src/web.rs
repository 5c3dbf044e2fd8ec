//! The team leads' review pages: server-rendered HTML (maud escapes every value it prints),
//! no JavaScript, behind sign-in. Every record page checks the record's team against the
//! lead's teams and answers a record of another team exactly as a missing one.

mod caseload;
mod layout;
mod login;
mod person;
mod queue;
mod records;
pub mod session;
pub mod sign_in;
pub(crate) mod subject_access;
mod visit;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::html;

use crate::AppState;
use crate::error::Error;
use crate::storage::AuditEntry;
pub use login::{SignInForm, read_sign_in};
pub use session::{Lead, SessionPolicy};
pub use sign_in::{IdentityProvider, LoginThrottle, PasswordSignIn, SignInMethod};

/// The review pages' settings, shared by every request.
pub struct WebSettings {
    pub identity: Box<dyn IdentityProvider>,
    pub sessions: SessionPolicy,
    pub throttle: LoginThrottle,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            identity: Box::new(PasswordSignIn),
            sessions: SessionPolicy::default(),
            throttle: LoginThrottle,
        }
    }
}

impl std::fmt::Debug for WebSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSettings")
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/review") }))
        .route("/assets/outpost.css", get(stylesheet))
        .merge(login::router())
        .merge(queue::router())
        .merge(visit::router())
        .merge(person::router())
        .merge(caseload::router())
        .merge(subject_access::router())
        .layer(axum::middleware::from_fn(security_headers))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("web/outpost.css"),
    )
}

/// No script runs, nothing is framed, forms post only here, and pages holding records are
/// never cached or sent as a referrer.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// How a page request fails, as a page.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: a page request goes to the sign-in page, and comes back after.
    SignIn {
        next: Option<String>,
    },
    Forbidden(String),
    /// Missing, or another team's: the two look the same.
    NotFound,
    BadRequest(String),
    Internal(Error),
}

impl From<Error> for PageError {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound(_) => Self::NotFound,
            Error::BadRequest { .. } => Self::BadRequest(error.to_string()),
            Error::Core(outpost_core::Error::InvalidInput { .. })
            | Error::Core(outpost_core::Error::InvalidTransition { .. }) => Self::BadRequest(error.to_string()),
            other => Self::Internal(other),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            Self::SignIn { next } => {
                let target = match next.filter(|n| login::safe_next(n)) {
                    Some(next) => format!("/login?next={}", url_encode(&next)),
                    None => "/login".to_string(),
                };
                return Redirect::to(&target).into_response();
            }
            Self::Forbidden(message) => (StatusCode::FORBIDDEN, "Request refused", message),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no record at this address that you can see.".to_string(),
            ),
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, "Something in the request was wrong", message),
            Self::Internal(error) => {
                tracing::error!(error = %error, "page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not show this page. Try again; if it keeps happening, tell IT.".to_string(),
                )
            }
        };
        let body = layout::page(
            heading,
            None,
            html! {
                h1 { (heading) }
                p { (message) }
                p { a href="/review" { "Go to the review queue" } }
            },
        );
        (status, body).into_response()
    }
}

/// Writes an audit entry: who (a lead, as `worker/web`) from which address, what, which record,
/// and a detail that never holds record content.
pub(crate) async fn audit(
    state: &AppState,
    who: &str,
    from: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<(), PageError> {
    let storage = state.storage.clone();
    let entry = AuditEntry {
        at: chrono::Utc::now().timestamp(),
        who: who.to_string(),
        action: action.to_string(),
        subject: subject.to_string(),
        detail: detail.to_string(),
        from: from.to_string(),
    };
    crate::auth::blocking(move || storage.audit(&entry)).await?;
    Ok(())
}

/// Percent-encodes a value for a URL's query.
pub(crate) fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A unix time as the pages show it (UTC).
pub(crate) fn show_time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(|| at.to_string(), |t| t.format("%d %b %Y %H:%M").to_string())
}

pub(crate) fn show_day(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(|| at.to_string(), |t| t.format("%d %b %Y").to_string())
}
