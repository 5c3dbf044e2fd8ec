//! Merging a duplicate record into the one on screen: the lead picks, from the same team's
//! caseload, the record made for the same person; `duplicates::merge_people` does the rest.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use maud::{Markup, html};
use outpost_core::{DocId, Person, PersonId};

use crate::AppState;
use crate::auth::blocking;
use crate::storage::{CaseloadEntry, Storage};
use crate::web::layout::csrf_field;
use crate::web::{Lead, PageError};

/// Other people of the same team, who could be a duplicate of `person`.
pub fn candidates(storage: &dyn Storage, lead: &Lead, person: &PersonId) -> crate::Result<Vec<CaseloadEntry>> {
    let Some(team) = storage.person_team(person)? else {
        return Ok(Vec::new());
    };
    let today = chrono::Utc::now().date_naive();
    Ok(storage
        .caseload(&lead.teams, today)?
        .into_iter()
        .filter(|e| e.team == team && e.person != *person)
        .collect())
}

/// What the person page shows of merges: where a merged-away record went, what the survivor
/// keeps from its duplicates, and the form to merge another in.
pub fn section(lead: &Lead, person: &Person, candidates: &[CaseloadEntry]) -> Markup {
    html! {
        @if let Some(survivor) = &person.merged_into {
            p.notice {
                "This record was a duplicate, merged into "
                a href=(format!("/review/people/{survivor}")) { "the person's record" } "."
            }
        }
        @if !person.also_recorded.is_empty() {
            h2 { "Also recorded on duplicates" }
            ul {
                @for kept in &person.also_recorded {
                    li dir="auto" { (kept.field) ": " (kept.value) }
                }
            }
        }
        @if person.merged_into.is_none() && !candidates.is_empty() {
            form.merge method="post" action=(format!("/review/people/{}/merge", person.id)) {
                h2 { "Merge a duplicate record into this one" }
                (csrf_field(lead))
                div.field {
                    label for="duplicate" { "The duplicate (its records move here; nothing on it is lost)" }
                    select id="duplicate" name="duplicate" {
                        @for entry in candidates {
                            option value=(entry.person) { (entry.name) " (" (entry.person) ")" }
                        }
                    }
                }
                div.buttons { button.warning type="submit" { "Merge into this record" } }
            }
        }
    }
}

pub async fn merge(
    State(state): State<AppState>,
    lead: Lead,
    Path(id): Path<String>,
    Form(fields): Form<HashMap<String, String>>,
) -> Result<Redirect, PageError> {
    lead.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let survivor = DocId::new(id).map_err(|_| PageError::NotFound)?;
    let duplicate = fields
        .get("duplicate")
        .and_then(|d| DocId::new(d.as_str()).ok())
        .ok_or_else(|| PageError::BadRequest("duplicate: choose the record to merge".into()))?;
    let moved = {
        let (state, lead, survivor) = (state.clone(), lead.clone(), survivor.clone());
        blocking(move || {
            Ok(
                crate::duplicates::merge_people(&state.sync, &lead.worker, &survivor, &duplicate, &lead.from).map_err(
                    |e| match e {
                        crate::Error::Conflict(reason) => PageError::BadRequest(reason),
                        other => other.into(),
                    },
                ),
            )
        })
        .await??
        .moved
        .len()
    };
    Ok(Redirect::to(&format!("/review/people/{survivor}?merged={moved}")))
}
