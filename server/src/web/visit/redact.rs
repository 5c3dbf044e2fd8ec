//! Removing a passage from a visit (`crate::redaction`), or the whole visit, and deciding on the edits a device
//! typed offline inside a passage removed meanwhile: put back, or discard. The passage is named
//! exactly, so what is removed is never a guess; the audit records who, when and why, never the
//! text.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use maud::{Markup, html};
use outpost_core::forget::Step;
use outpost_core::{Author, DocId, Section, Visit};

use super::section_label;
use crate::AppState;
use crate::auth::blocking;
use crate::redaction;
use crate::storage::Storage;
use crate::web::layout::csrf_field;
use crate::web::records::Names;
use crate::web::{Lead, PageError, show_time};

/// An edit held back from this visit, as the page shows it.
#[derive(Debug)]
pub struct HeldEdit {
    id: i64,
    /// Who typed it, when the device is still known.
    by: Option<Author>,
    device: String,
    received_at: i64,
    /// Where it was typed: a section's name, or the last key of its path.
    place: String,
    text: String,
}

pub fn load_held(storage: &dyn Storage, visit: &DocId) -> Result<Vec<HeldEdit>, PageError> {
    let held = redaction::held_edits(storage, visit)?;
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let devices = storage.devices()?;
    Ok(held
        .into_iter()
        .map(|(row, held)| HeldEdit {
            id: row.id,
            by: devices
                .iter()
                .find(|d| d.device == row.device)
                .map(|d| Author::new(d.worker.clone(), d.device.clone())),
            device: row.device.to_string(),
            received_at: row.received_at,
            place: place(&held.path),
            text: held.text,
        })
        .collect())
}

fn place(path: &[Step]) -> String {
    match path {
        [Step::Key(sections), Step::Key(code)] if sections == "sections" => {
            Section::from_code(code).map_or_else(|| code.clone(), |s| section_label(s).to_string())
        }
        _ => match path.last() {
            Some(Step::Key(key)) => key.clone(),
            _ => "the visit".to_string(),
        },
    }
}

/// The confirmation after a redirect from one of these forms.
pub fn confirmation(query: &HashMap<String, String>) -> Option<&'static str> {
    if query.contains_key("redacted") {
        return Some(
            "The passage was removed. Every device holding this visit replaces its copy at its next sync. \
             The audit log records who removed it, when and why.",
        );
    }
    match query.get("settled").map(String::as_str) {
        Some("put-back") => Some("The held text was put back. Read the section to check it sits where it should."),
        Some("discard") => Some("The held text was discarded."),
        _ => None,
    }
}

pub fn held_box(lead: &Lead, visit: &DocId, held: &[HeldEdit], names: &Names) -> Markup {
    html! {
        @if !held.is_empty() {
            section.notice aria-labelledby="held" {
                h2 id="held" { "Held after a redaction" }
                p {
                    "A device was offline when a passage was removed from this visit, and its worker had typed inside it. "
                    "That text was not applied. Put it back (where the passage was, or at the end of the section if it is now shorter), or discard it."
                }
                ul.held-edits {
                    @for edit in held {
                        li {
                            p {
                                "Typed in " strong { (edit.place) } " by "
                                (edit.by.as_ref().map_or_else(|| format!("device {}", edit.device), |a| names.author(a)))
                                ", received " (show_time(edit.received_at))
                            }
                            p.text dir="auto" id=(format!("held-{}", edit.id)) { (edit.text) }
                            form method="post" action=(format!("/review/visits/{visit}/held/{}", edit.id)) {
                                (csrf_field(lead))
                                div.buttons {
                                    button type="submit" name="settle" value="put-back"
                                        aria-describedby=(format!("held-{}", edit.id)) { "Put it back" }
                                    button.warning type="submit" name="settle" value="discard"
                                        aria-describedby=(format!("held-{}", edit.id)) { "Discard" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn form(lead: &Lead, visit_id: &DocId, visit: &Visit) -> Markup {
    let sections: Vec<Section> = Section::ALL
        .iter()
        .copied()
        .filter(|s| !visit.section(*s).is_empty())
        .collect();
    html! {
        @if !sections.is_empty() {
            section.redact aria-labelledby="redact" {
                h2 id="redact" { "Remove a passage" }
                p {
                    "For text recorded on the wrong person's record, or that must not be kept. "
                    strong { "The passage is removed from every copy of this visit, its history included: on the server, and on every device at its next sync. It cannot be restored." }
                }
                form method="post" action=(format!("/review/visits/{visit_id}/redact")) {
                    (csrf_field(lead))
                    div.field {
                        label for="redact-section" { "Section" }
                        select id="redact-section" name="section" required {
                            @for section in &sections {
                                option value=(section.code()) { (section_label(*section)) }
                            }
                        }
                    }
                    div.field {
                        label for="redact-passage" { "The exact passage to remove" }
                        p.hint id="redact-passage-hint" {
                            "Copy it exactly as it reads above. It must occur once in that section; if it occurs more than once, include some of the text around it."
                        }
                        textarea id="redact-passage" name="passage" rows="4" cols="60" required
                            aria-describedby="redact-passage-hint" {}
                    }
                    div.field {
                        label for="redact-reason" { "Reason" }
                        p.hint id="redact-reason-hint" { "Recorded in the audit log with your name and the time; the removed text never is." }
                        input type="text" id="redact-reason" name="reason" size="60" required
                            aria-describedby="redact-reason-hint";
                    }
                    button.warning type="submit" { "Remove it from every copy" }
                }
            }
        }
        section.redact aria-labelledby="remove-visit" {
            h2 id="remove-visit" { "Remove this whole visit" }
            p {
                "For a visit recorded on the wrong person. "
                strong { "The visit and its review are erased from the server now and from every device at its next sync. It cannot be restored." }
            }
            form method="post" action=(format!("/review/visits/{visit_id}/remove")) {
                (csrf_field(lead))
                div.field {
                    label for="remove-reason" { "Reason" }
                    p.hint id="remove-reason-hint" { "Recorded in the audit log with your name and the time." }
                    input type="text" id="remove-reason" name="reason" size="60" required
                        aria-describedby="remove-reason-hint";
                }
                button.warning type="submit" { "Erase this visit" }
            }
        }
    }
}

pub async fn remove(
    State(state): State<AppState>,
    lead: Lead,
    Path(id): Path<String>,
    Form(fields): Form<HashMap<String, String>>,
) -> Result<Redirect, PageError> {
    lead.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let visit = DocId::new(id.as_str()).map_err(|_| PageError::NotFound)?;
    let reason = fields.get("reason").cloned().unwrap_or_default();
    let person =
        blocking(move || redaction::remove_visit(&state.sync, &lead.worker, &visit, &reason, &lead.from)).await?;
    Ok(Redirect::to(&format!("/review/people/{person}")))
}

pub async fn redact(
    State(state): State<AppState>,
    lead: Lead,
    Path(id): Path<String>,
    Form(fields): Form<HashMap<String, String>>,
) -> Result<Redirect, PageError> {
    lead.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let visit = DocId::new(id.as_str()).map_err(|_| PageError::NotFound)?;
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let section = field("section");
    // Browsers send a text box's line breaks as CRLF; the record holds LF.
    let passage = field("passage").replace("\r\n", "\n");
    let reason = field("reason");
    {
        let visit = visit.clone();
        blocking(move || {
            redaction::redact_passage(
                &state.sync,
                &lead.worker,
                &visit,
                &section,
                &passage,
                &reason,
                &lead.from,
            )
        })
        .await?;
    }
    Ok(Redirect::to(&format!("/review/visits/{visit}?redacted=1")))
}

pub async fn settle(
    State(state): State<AppState>,
    lead: Lead,
    Path((id, held)): Path<(String, String)>,
    Form(fields): Form<HashMap<String, String>>,
) -> Result<Redirect, PageError> {
    lead.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let visit = DocId::new(id.as_str()).map_err(|_| PageError::NotFound)?;
    let held: i64 = held.parse().map_err(|_| PageError::NotFound)?;
    let (put_back, code) = match fields.get("settle").map(String::as_str) {
        Some("put-back") => (true, "put-back"),
        Some("discard") => (false, "discard"),
        other => {
            return Err(PageError::BadRequest(format!(
                "settle: {:?} is neither put-back nor discard",
                other.unwrap_or("")
            )));
        }
    };
    {
        let visit = visit.clone();
        blocking(move || redaction::settle_held(&state.sync, &lead.worker, &visit, held, put_back, &lead.from)).await?;
    }
    Ok(Redirect::to(&format!("/review/visits/{visit}?settled={code}")))
}
