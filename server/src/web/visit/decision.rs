//! Approve, or return with a comment. The form carries the heads of the visit the lead read,
//! and the decision records those, not whatever arrived while they were reading: a change the
//! lead did not see then shows as "changed since approval".

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use maud::{Markup, html};
use outpost_core::{ChangeHash, DocId, Record, ReviewAction};

use super::decidable;
use crate::AppState;
use crate::auth::blocking;
use crate::storage::VisitListing;
use crate::web::layout::csrf_field;
use crate::web::records;
use crate::web::{Lead, PageError};

pub fn form(lead: &Lead, record: &Record, listing: &VisitListing) -> Markup {
    let heads: Vec<String> = record.heads().iter().map(ChangeHash::to_string).collect();
    html! {
        @if decidable(listing) {
            form.decision method="post" action=(format!("/review/visits/{}/decision", record.id())) {
                h2 { "Your decision" }
                (csrf_field(lead))
                input type="hidden" name="heads" value=(heads.join(","));
                div.field {
                    label for="comment" { "Comment for the worker (needed to return the visit)" }
                    textarea id="comment" name="comment" rows="4" cols="60" {}
                }
                div.buttons {
                    button type="submit" name="decision" value="approve" { "Approve" }
                    button.warning type="submit" name="decision" value="return" { "Return to worker" }
                }
            }
        }
    }
}

pub async fn decide(
    State(state): State<AppState>,
    lead: Lead,
    Path(id): Path<String>,
    Form(fields): Form<HashMap<String, String>>,
) -> Result<Redirect, PageError> {
    lead.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let action = match fields.get("decision").map(String::as_str) {
        Some("approve") => ReviewAction::Approve,
        Some("return") => ReviewAction::Return,
        other => {
            return Err(PageError::BadRequest(format!(
                "decision: {:?} is neither approve nor return",
                other.unwrap_or("")
            )));
        }
    };
    let heads: Vec<ChangeHash> = fields
        .get("heads")
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| {
            h.parse()
                .map_err(|_| PageError::BadRequest(format!("heads: {h:?} is not a change hash")))
        })
        .collect::<Result<_, _>>()?;
    let comment = fields
        .get("comment")
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let visit = {
        let (state, lead) = (state.clone(), lead.clone());
        blocking(move || {
            Ok((|| {
                let (record, _) = records::load(state.storage.as_ref(), &lead, &id, "visit")?;
                if heads.is_empty() || !record.has_heads(&heads) {
                    return Err(PageError::BadRequest(
                        "heads: the version you read is not a version of this visit; reload it and decide again".into(),
                    ));
                }
                let visit: DocId = record.id().clone();
                crate::review::decide(
                    &state.sync,
                    &lead.worker,
                    &visit,
                    action,
                    comment.as_deref(),
                    Some(&heads),
                    &lead.from,
                )?;
                Ok(visit)
            })())
        })
        .await??
    };
    let code = if action == ReviewAction::Approve {
        "approve"
    } else {
        "return"
    };
    Ok(Redirect::to(&format!("/review/visits/{visit}?decided={code}")))
}
