//! A lead's subject access export of a person: the readable document (which prints to PDF) and
//! the same as a JSON download. Authorised as the person's own page is (another team's person
//! is answered exactly as a missing one), and every export is written to the audit log.

mod html;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::Markup;

use super::{Lead, PageError, audit, layout, records};
use crate::AppState;
use crate::auth::blocking;
use crate::subject_access::{self, Export};

pub use html::document;

/// The audit action both forms of the export are recorded under; the detail says which.
pub const AUDIT_ACTION: &str = "subject-access-export";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/review/people/{person}/subject-access", get(show))
        .route("/review/people/{person}/subject-access.json", get(download))
}

/// The person's export, if the lead may see the person.
async fn load(state: &AppState, lead: &Lead, id: String) -> Result<Export, PageError> {
    let (state, lead) = (state.clone(), lead.clone());
    blocking(move || Ok(gather(&state, &lead, &id))).await?
}

fn gather(state: &AppState, lead: &Lead, id: &str) -> Result<Export, PageError> {
    let storage = state.storage.as_ref();
    // The same check as the person's page: missing, not a person, or another team's are alike.
    let (record, _) = records::load(storage, lead, id, "person")?;
    Ok(subject_access::gather(storage, record.id())?)
}

async fn exported(state: &AppState, lead: &Lead, export: &Export, form: &str) -> Result<(), PageError> {
    audit(
        state,
        &lead.audit_name(),
        &lead.from,
        AUDIT_ACTION,
        export.person_id.as_str(),
        form,
    )
    .await
}

async fn show(State(state): State<AppState>, lead: Lead, Path(id): Path<String>) -> Result<Markup, PageError> {
    let export = load(&state, &lead, id).await?;
    exported(&state, &lead, &export, "html").await?;
    Ok(layout::page(
        &html::title(&export),
        Some(&lead),
        html::body(&export, true),
    ))
}

async fn download(State(state): State<AppState>, lead: Lead, Path(id): Path<String>) -> Result<Response, PageError> {
    let export = load(&state, &lead, id).await?;
    exported(&state, &lead, &export, "json").await?;
    let body = serde_json::to_string_pretty(&subject_access::to_json(&export))
        .map_err(|e| PageError::Internal(crate::Error::Internal(format!("writing the export as JSON: {e}"))))?;
    // Person ids hold only letters, digits and `-_.@:`, so the file name needs no quoting.
    let disposition = format!("attachment; filename=\"subject-access-{}.json\"", export.person_id);
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
