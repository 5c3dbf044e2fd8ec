//! A visit as a lead reviews it: each section's text marked with who wrote it (from the
//! document's history), what needs attention (sections typed into at the same time, fields
//! holding two values), actions, the person's assessments and observations that day, the review
//! history, what changed since an approval, the decision form, and removing a passage (with
//! the edits held back after one).

mod changes;
mod decision;
mod redact;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use maud::{Markup, html};
use outpost_core::{
    Author, AuthoredSpan, DocId, Record, Review, ReviewAction, ReviewState, Section, Setting, Visit, WorkerId,
};

use super::queue::state_tags;
use super::records::{self, Names, field, opt_field};
use super::{Lead, PageError, audit, layout, show_day, show_time};
use crate::AppState;
use crate::auth::blocking;
use crate::storage::{RecordListing, VisitListing};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/review/visits/{visit}", get(show))
        .route("/review/visits/{visit}/decision", post(decision::decide))
        .route("/review/visits/{visit}/redact", post(redact::redact))
        .route("/review/visits/{visit}/remove", post(redact::remove))
        .route("/review/visits/{visit}/held/{held}", post(redact::settle))
}

/// Everything the page shows, read in one blocking task.
struct Loaded {
    record: Record,
    visit: Visit,
    review: Option<Review>,
    listing: VisitListing,
    same_day: Vec<Record>,
    held: Vec<redact::HeldEdit>,
}

fn load(state: &AppState, lead: &Lead, id: &str) -> Result<Loaded, PageError> {
    let storage = state.storage.as_ref();
    let (record, stored) = records::load(storage, lead, id, "visit")?;
    let visit = record.visit().map_err(|e| PageError::Internal(e.into()))?;
    let review_id = DocId::review_of(record.id());
    let review = match storage.doc(&review_id)? {
        Some(doc) => Some(
            Record::load(review_id, &doc.snapshot)
                .and_then(|r| r.review())
                .map_err(|e| PageError::Internal(e.into()))?,
        ),
        None => None,
    };
    let listing = storage.visit_listing(record.id())?.ok_or(PageError::NotFound)?;
    let day = show_day(listing.visit_at);
    let mut same_day = Vec::new();
    for RecordListing { doc, at, .. } in storage.person_records(&stored.person)? {
        if show_day(at) == day
            && let Some(stored) = storage.doc(&doc)?
        {
            same_day.push(Record::load(doc, &stored.snapshot).map_err(|e| PageError::Internal(e.into()))?);
        }
    }
    let held = redact::load_held(storage, record.id())?;
    Ok(Loaded {
        record,
        visit,
        review,
        listing,
        same_day,
        held,
    })
}

async fn show(
    State(state): State<AppState>,
    lead: Lead,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, PageError> {
    let loaded = {
        let (state, lead, id) = (state.clone(), lead.clone(), id.clone());
        blocking(move || Ok(load(&state, &lead, &id))).await??
    };
    audit(
        &state,
        &lead.audit_name(),
        &lead.from,
        "view-visit",
        loaded.record.id().as_str(),
        &format!("person {}", loaded.listing.person),
    )
    .await?;
    let names = Names::load(&state, &lead).await?;
    let title = format!("Visit to {}", loaded.listing.person_name);
    Ok(layout::page(
        &title,
        Some(&lead),
        page(&title, &lead, &loaded, &names, &query),
    ))
}

fn page(title: &str, lead: &Lead, loaded: &Loaded, names: &Names, query: &HashMap<String, String>) -> Markup {
    let Loaded {
        record,
        visit,
        review,
        listing,
        same_day,
        held,
    } = loaded;
    let worker = |id: &String| WorkerId::new(id.as_str()).map_or_else(|_| id.clone(), |w| names.worker(&w));
    let concurrent = record.concurrent_edits().unwrap_or_default();
    let contested = record.contested_fields().unwrap_or_default();
    html! {
        h1 { (title) }
        @match query.get("decided").map(String::as_str) {
            Some("approve") => p.ok role="status" { "Approved. The worker's device receives the decision at its next sync." },
            Some("return") => p.ok role="status" { "Returned with your comment. The worker's device receives it at its next sync." },
            _ => {}
        }
        @if let Some(done) = redact::confirmation(query) {
            p.ok role="status" { (done) }
        }
        dl.facts {
            dt { "Person" } dd { a href=(format!("/review/people/{}", listing.person)) { (listing.person_name) } }
            dt { "Worker" } dd { (field(&visit.worker, worker)) }
            dt { "When" } dd { (field(&visit.at, |t| show_time(t.timestamp()))) }
            dt { "Setting" } dd { (field(&visit.setting, |s| setting(*s).to_string())) }
            dt { "Review" } dd { (state_tags(listing)) }
            @if visit.safeguarding_concern {
                dt { "Safeguarding" } dd { (opt_field(&visit.safeguarding_reason, String::clone)) }
            }
        }
        @if listing.changed_since_approval && let Some(review) = review {
            (changes::since_approval(record, visit, review))
        }
        @if !concurrent.is_empty() || !contested.is_empty() {
            section.notice aria-labelledby="attention" {
                h2 id="attention" { "Needs your attention" }
                ul {
                    @for edit in &concurrent {
                        li {
                            (section_label(edit.section)) " was edited at the same time by "
                            (edit.authors.iter().map(|a| names.author(a)).collect::<Vec<_>>().join(" and "))
                            ". Check that it reads as intended."
                        }
                    }
                    @for name in &contested {
                        li { "Two values were recorded at the same time for " (name) "; both are shown." }
                    }
                }
            }
        }
        (redact::held_box(lead, record.id(), held, names))
        h2 { "Conversation" }
        (sections(record, visit, names))
        h2 { "Agreed actions" }
        (actions(visit))
        h2 { "How it went, in the person's view" }
        p { "Did it help? " (opt_field(&visit.helped, |h| format!("{h:?}"))) }
        @if !visit.feedback.is_empty() { p.text dir="auto" { (visit.feedback) } }
        h2 { "Assessments and observations that day" }
        @if same_day.is_empty() {
            p.empty { "None recorded that day." }
        }
        @for other in same_day {
            @if let Ok(a) = other.assessment() { (records::assessment(&a)) }
            @if let Ok(o) = other.observations() { (records::observations(&o)) }
        }
        h2 { "Review history" }
        (history(review.as_ref(), names))
        (decision::form(lead, record, listing))
        (redact::form(lead, record.id(), visit))
    }
}

fn sections(record: &Record, visit: &Visit, names: &Names) -> Markup {
    // Authors numbered in order of first appearance, the same number in every section.
    let mut authors: Vec<Option<Author>> = Vec::new();
    let spans: Vec<(Section, Vec<AuthoredSpan>)> = Section::ALL
        .iter()
        .map(|s| (*s, record.authorship(*s).unwrap_or_default()))
        .collect();
    for (_, section_spans) in &spans {
        for span in section_spans {
            if !authors.contains(&span.author) {
                authors.push(span.author.clone());
            }
        }
    }
    let number = |author: &Option<Author>| authors.iter().position(|a| a == author).map_or(0, |i| i + 1);
    html! {
        @if !authors.is_empty() {
            h3 { "Who wrote what" }
            p { "Each passage below is marked with the number of the person who wrote it." }
            ol.authors {
                @for author in &authors {
                    li { (author.as_ref().map_or_else(|| "Unknown author".to_string(), |a| names.author(a))) }
                }
            }
        }
        @for (section, section_spans) in &spans {
            h3 { (section_label(*section)) }
            @if visit.section(*section).is_empty() {
                p.empty { "Nothing recorded." }
            } @else {
                p.text dir="auto" {
                    @for span in section_spans {
                        @let n = number(&span.author);
                        span class=(format!("by by-{}", (n - 1) % 5 + 1)) { (span.text) }
                        span.who { span.visually-hidden { "written by " } (n) }
                    }
                }
            }
        }
    }
}

fn actions(visit: &Visit) -> Markup {
    html! {
        @if visit.actions.is_empty() {
            p.empty { "No actions agreed." }
        } @else {
            table {
                caption { "Actions agreed at this visit" }
                thead { tr { th scope="col" { "What" } th scope="col" { "Who" } th scope="col" { "Due" } th scope="col" { "Status" } } }
                tbody {
                    @for action in &visit.actions {
                        tr class=[action.cancelled.then_some("cancelled")] {
                            td dir="auto" { (opt_field(&action.what, String::clone)) }
                            td dir="auto" { (opt_field(&action.who, String::clone)) }
                            td { (opt_field(&action.due, |d| d.format("%d %b %Y").to_string())) }
                            td { (if action.cancelled { "Cancelled" } else if action.done { "Done" } else { "Open" }) }
                        }
                    }
                }
            }
        }
    }
}

fn history(review: Option<&Review>, names: &Names) -> Markup {
    html! {
        @match review.filter(|r| !r.history.is_empty()) {
            None => p.empty { "Not yet submitted for review." },
            Some(review) => (review_steps(review, |a| names.author(a))),
        }
    }
}

/// A review's steps, oldest first: what, by whom (`author` names them), when, and any comment.
pub fn review_steps(review: &Review, author: impl Fn(&outpost_core::Author) -> String) -> Markup {
    html! {
        ol.history {
            @for step in &review.history {
                li {
                    strong { (match step.action {
                        ReviewAction::Submit => "Submitted",
                        ReviewAction::Approve => "Approved",
                        ReviewAction::Return => "Returned",
                    }) }
                    " by " (step.by.as_ref().map_or_else(|| "unknown".to_string(), &author))
                    ", " (show_time(step.at.timestamp()))
                    @if let Some(comment) = &step.comment {
                        p.text dir="auto" { (comment) }
                    }
                }
            }
        }
    }
}

pub fn section_label(section: Section) -> &'static str {
    match section {
        Section::WhatMatters => "What matters to the person",
        Section::Strengths => "Strengths",
        Section::SupportNetwork => "Support network",
        Section::Goals => "What they want to achieve",
        Section::RisksAndConcerns => "Risks and concerns",
        Section::CommunityConnections => "Community connections",
    }
}

fn setting(setting: Setting) -> &'static str {
    match setting {
        Setting::HomeVisit => "Home visit",
        Setting::Clinic => "Clinic",
        Setting::Phone => "Phone",
        Setting::CommunityHub => "Community hub",
    }
}

/// Whether the lead may decide now: submitted, or approved and changed since.
fn decidable(listing: &VisitListing) -> bool {
    listing.state == ReviewState::Submitted.code() || listing.changed_since_approval
}
