//! A person's record for a lead: who they are, consent, risk tier, visits over time, open
//! actions, assessments and observations. Each view is written to the audit log.

mod merge;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use maud::{Markup, html};
use outpost_core::{Person, Record};

use super::queue::state_tags;
use super::records::{self, field, opt_field};
use super::{Lead, PageError, audit, layout, show_time};
use crate::AppState;
use crate::auth::blocking;
use crate::storage::{ActionListing, CaseloadEntry, RecordListing, VisitListing};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/review/people/{person}", get(show))
        .route("/review/people/{person}/merge", post(merge::merge))
}

struct Loaded {
    lead: Lead,
    person: Person,
    /// Records of the same team that could be duplicates of this one.
    duplicates: Vec<CaseloadEntry>,
    visits: Vec<VisitListing>,
    actions: Vec<ActionListing>,
    records: Vec<Record>,
}

fn load(state: &AppState, lead: &Lead, id: &str) -> Result<Loaded, PageError> {
    let storage = state.storage.as_ref();
    let (record, stored) = records::load(storage, lead, id, "person")?;
    let person = record.person().map_err(|e| PageError::Internal(e.into()))?;
    let mut others = Vec::new();
    for RecordListing { doc, .. } in storage.person_records(&stored.person)? {
        if let Some(stored) = storage.doc(&doc)? {
            others.push(Record::load(doc, &stored.snapshot).map_err(|e| PageError::Internal(e.into()))?);
        }
    }
    Ok(Loaded {
        lead: lead.clone(),
        duplicates: merge::candidates(storage, lead, &stored.person)?,
        visits: storage.person_visits(&stored.person)?,
        actions: storage.person_actions(&stored.person)?,
        person,
        records: others,
    })
}

async fn show(State(state): State<AppState>, lead: Lead, Path(id): Path<String>) -> Result<Markup, PageError> {
    let loaded = {
        let (state, lead, id) = (state.clone(), lead.clone(), id.clone());
        blocking(move || Ok(load(&state, &lead, &id))).await??
    };
    audit(
        &state,
        &lead.audit_name(),
        &lead.from,
        "view-person",
        loaded.person.id.as_str(),
        "",
    )
    .await?;
    let title = loaded.person.display_name().to_string();
    Ok(layout::page(&title, Some(&lead), page(&title, &loaded)))
}

fn page(title: &str, loaded: &Loaded) -> Markup {
    let Loaded {
        lead,
        person,
        duplicates,
        visits,
        actions,
        records,
    } = loaded;
    let today = chrono::Utc::now().date_naive();
    let text = String::clone;
    let open: Vec<&ActionListing> = actions.iter().filter(|a| !a.done && !a.cancelled).collect();
    html! {
        h1 { (title) }
        p { a href=(format!("/review/people/{}/subject-access", person.id)) { "Subject access export (everything held about them)" } }
        dl.facts {
            dt { "Name" } dd dir="auto" { (field(&person.name, text)) }
            @if let Some(preferred) = &person.preferred_name {
                dt { "Preferred name" } dd dir="auto" { (field(preferred, text)) }
            }
            dt { "Date of birth" } dd { (opt_field(&person.date_of_birth, |d| d.format("%d %b %Y").to_string())) }
            dt { "NHS number" } dd { (opt_field(&person.nhs_number, text)) }
            dt { "Address" } dd dir="auto" { (opt_field(&person.address, text)) }
            dt { "Risk tier" } dd { (field(&person.risk, |r| r.code().to_string())) }
        }
        h2 { "Consent" }
        @if person.consents.is_empty() {
            p.empty { "No consent recorded." }
        } @else {
            ul {
                @for consent in &person.consents {
                    li class=[consent.withdrawn.then_some("cancelled")] {
                        "To share with " (opt_field(&consent.with_whom, text))
                        ", given " (opt_field(&consent.given_on, |d| d.format("%d %b %Y").to_string()))
                        @if consent.withdrawn { " (withdrawn)" }
                    }
                }
            }
        }
        h2 { "Visits over time" }
        @if visits.is_empty() {
            p.empty { "No visits yet." }
        } @else {
            table {
                caption { (visits.len()) " visits, newest first" }
                thead { tr { th scope="col" { "Visit" } th scope="col" { "Worker" } th scope="col" { "State" } } }
                tbody {
                    @for visit in visits {
                        tr {
                            td { a href=(format!("/review/visits/{}", visit.visit)) { "Visit on " (show_time(visit.visit_at)) } }
                            td { (visit.worker_name) }
                            td { (state_tags(visit)) }
                        }
                    }
                }
            }
        }
        h2 { "Open actions" }
        @if open.is_empty() {
            p.empty { "No open actions." }
        } @else {
            ul {
                @for action in &open {
                    li dir="auto" {
                        (action.what)
                        @if let Some(due) = action.due {
                            " – due " (due.format("%d %b %Y").to_string())
                            @if due < today { " " span.tag.flag { "Overdue" } }
                        }
                        " (" a href=(format!("/review/visits/{}", action.visit)) { "from the visit" } ")"
                    }
                }
            }
        }
        h2 { "Assessments and observations" }
        @if records.is_empty() { p.empty { "None recorded." } }
        @for record in records {
            @if let Ok(a) = record.assessment() { (records::assessment(&a)) }
            @if let Ok(o) = record.observations() { (records::observations(&o)) }
        }
        (merge::section(lead, person, duplicates))
    }
}
