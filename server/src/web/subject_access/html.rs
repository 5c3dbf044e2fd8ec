//! A subject access export as a readable document: the person's record, each visit with its
//! review history, assessments, observations and who accessed the record, laid out to print to
//! PDF (the stylesheet's print rules drop the navigation and keep headings with what follows).

use maud::{DOCTYPE, Markup, PreEscaped, html};
use outpost_core::{DocId, Person, Review};

use super::super::queue::state_label;
use super::super::records::{self, field, opt_field};
use super::super::visit::section_label;
use super::super::{show_time, url_encode};
use crate::subject_access::{Export, HeldVisit};

/// The export as a file of its own (the admin CLI's), with the stylesheet inside it: it is
/// opened from disk, away from the server's `/assets`.
pub fn document(export: &Export) -> String {
    let title = title(export);
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(include_str!("../outpost.css"))) }
            }
            body { main id="main" { (body(export, false)) } }
        }
    }
    .into_string()
}

pub fn title(export: &Export) -> String {
    format!("Subject access export: {}", export.person.name.value)
}

/// The export's content; `links` adds the ways back to the record and to the JSON copy, which
/// only make sense on the review pages.
pub fn body(export: &Export, links: bool) -> Markup {
    html! {
        h1 { (title(export)) }
        p {
            "Everything Outpost's server held about this person at " (show_time(export.produced_at.timestamp()))
            " UTC: their record; visits, each with its review history: " (export.visits.len())
            "; assessments: " (export.assessments.len()) "; sets of observations: " (export.observations.len())
            "; and who accessed their records (audit entries: " (export.access.len()) ")."
        }
        p.notice {
            "Before releasing this, check it for information about other people (contacts, or people "
            "named in notes) that the law may require you to withhold."
        }
        @if links {
            ul.no-print {
                li { a href=(format!("/review/people/{}/subject-access.json", url_encode(export.person_id.as_str()))) download {
                    "Download the same as JSON" } }
                li { a href=(format!("/review/people/{}", url_encode(export.person_id.as_str()))) {
                    "Back to " (export.person.display_name()) "'s record" } }
                li { "To keep a PDF, print this page and choose to save it as PDF." }
            }
        }
        h2 { "The person" }
        (person(export, &export.person))
        @for other in &export.other_person_records {
            h3 { "Another person record filed under them" }
            (person(export, other))
        }
        h2 { "Visits" }
        @if export.visits.is_empty() { p.empty { "No visits recorded." } }
        @for held in &export.visits { (visit(export, held)) }
        h2 { "Assessments" }
        @if export.assessments.is_empty() { p.empty { "No assessments recorded." } }
        @for a in &export.assessments {
            section.held {
                (records::assessment(a))
                p.record-id { "Record " (a.id) }
            }
        }
        h2 { "Observations" }
        @if export.observations.is_empty() { p.empty { "No observations recorded." } }
        @for o in &export.observations {
            section.held {
                (records::observations(o))
                @if let Some(due) = &o.next_visit_due {
                    p { "Next visit due: " (field(due, |d| d.format("%d %b %Y").to_string())) }
                }
                p.record-id { "Record " (o.id) }
            }
        }
        @if !export.unmatched_reviews.is_empty() {
            h2 { "Reviews of visits not held" }
            @for review in &export.unmatched_reviews {
                p.record-id { "Review " (review.id) " of visit " (review.visit) }
                (history(export, review))
            }
        }
        @if !export.unreadable.is_empty() {
            h2 { "Records that could not be read" }
            p { "These are held but could not be shown; IT can extract them from the database." }
            ul {
                @for u in &export.unreadable {
                    li { (u.doc_type) " record " (u.doc) ": " (u.reason) }
                }
            }
        }
        h2 { "Who accessed the record" }
        (access(export))
        p.empty { "Where two people recorded a value at the same time, both are shown." }
    }
}

fn person(export: &Export, p: &Person) -> Markup {
    let text = String::clone;
    let day = |d: &chrono::NaiveDate| d.format("%d %b %Y").to_string();
    html! {
        dl.facts {
            dt { "Name" } dd dir="auto" { (field(&p.name, text)) }
            dt { "Preferred name" } dd dir="auto" { (opt_field(&p.preferred_name, text)) }
            dt { "Date of birth" } dd { (opt_field(&p.date_of_birth, day)) }
            dt { "NHS number" } dd { (opt_field(&p.nhs_number, text)) }
            dt { "Address" } dd dir="auto" { (opt_field(&p.address, text)) }
            dt { "Team" } dd { (field(&p.team, text)) }
            dt { "Allocated workers" } dd {
                @if p.allocated_workers.is_empty() { span.empty { "None" } }
                (p.allocated_workers.iter().map(|w| export.worker(w.as_str())).collect::<Vec<_>>().join("; "))
            }
            dt { "Risk tier" } dd { (field(&p.risk, |r| r.code().to_string())) }
            dt { "Record" } dd { (p.id) }
        }
        h3 { "Contacts" }
        @if p.contacts.is_empty() {
            p.empty { "No contacts recorded." }
        } @else {
            ul {
                @for c in &p.contacts {
                    li dir="auto" class=[c.cancelled.then_some("cancelled")] {
                        (opt_field(&c.name, text)) " – " (opt_field(&c.relationship, text))
                        @if let Some(phone) = &c.phone { ", " (field(phone, text)) }
                        @if c.cancelled { " (removed)" }
                    }
                }
            }
        }
        h3 { "Consent" }
        @if p.consents.is_empty() {
            p.empty { "No consent recorded." }
        } @else {
            ul {
                @for c in &p.consents {
                    li class=[c.withdrawn.then_some("cancelled")] {
                        "To share with " (opt_field(&c.with_whom, text))
                        ", given " (opt_field(&c.given_on, day))
                        @if let Some(by) = &c.recorded_by { ", recorded by " (export.worker(by)) }
                        @if c.withdrawn { " (withdrawn)" }
                    }
                }
            }
        }
    }
}

fn visit(export: &Export, held: &HeldVisit) -> Markup {
    let v = &held.visit;
    let text = String::clone;
    html! {
        section.held {
            h3 { "Visit on " (field(&v.at, |t| show_time(t.timestamp()))) }
            dl.facts {
                dt { "Worker" } dd { (field(&v.worker, |w| export.worker(w))) }
                dt { "Setting" } dd { (field(&v.setting, |s| s.code().replace('_', " "))) }
                @if v.safeguarding_concern {
                    dt { "Safeguarding concern" } dd dir="auto" { (opt_field(&v.safeguarding_reason, text)) }
                }
                dt { "Record" } dd { (v.id) }
            }
            @for (section, authors) in &held.authors {
                @let written = v.section(*section);
                @if !written.is_empty() {
                    h4 { (section_label(*section)) }
                    p.text dir="auto" { (written) }
                    @if !authors.is_empty() {
                        p { "Written by " (authors.iter().map(|a| export.author(a)).collect::<Vec<_>>().join("; ")) "." }
                    }
                }
            }
            @if !v.actions.is_empty() {
                table {
                    caption { "Actions agreed" }
                    thead { tr { th scope="col" { "What" } th scope="col" { "Who" } th scope="col" { "Due" } th scope="col" { "Status" } } }
                    tbody {
                        @for a in &v.actions {
                            tr {
                                td dir="auto" { (opt_field(&a.what, text)) }
                                td dir="auto" { (opt_field(&a.who, text)) }
                                td { (opt_field(&a.due, |d| d.format("%d %b %Y").to_string())) }
                                td { (if a.cancelled { "Cancelled" } else if a.done { "Done" } else { "Open" }) }
                            }
                        }
                    }
                }
            }
            @if v.helped.is_some() || !v.feedback.is_empty() {
                h4 { "How it went, in the person's view" }
                p { "Did it help? " (opt_field(&v.helped, |h| h.code().to_string())) }
                @if !v.feedback.is_empty() { p.text dir="auto" { (v.feedback) } }
            }
            h4 { "Review history" }
            @match &held.review {
                Some(review) => (history(export, review)),
                None => p.empty { "No review record." },
            }
        }
    }
}

fn history(export: &Export, review: &Review) -> Markup {
    html! {
        p { "State: " (field(&review.state, |s| state_label(s.code()).to_string())) }
        @if review.history.is_empty() {
            p.empty { "Not submitted for review." }
        } @else {
            (crate::web::visit::review_steps(review, |a| export.author(a)))
        }
    }
}

/// What an audit entry's record is, as a reader knows it; the id stays beside it.
fn record_label(export: &Export, subject: &str) -> String {
    let day = |t: &chrono::DateTime<chrono::Utc>| show_time(t.timestamp());
    if subject == export.person_id.as_str() {
        return "Their record".into();
    }
    for held in &export.visits {
        let v = &held.visit;
        if subject == v.id.as_str() {
            return format!("Visit on {}", day(&v.at.value));
        }
        if subject == DocId::review_of(&v.id).as_str() {
            return format!("Review of the visit on {}", day(&v.at.value));
        }
    }
    if let Some(a) = export.assessments.iter().find(|a| a.id.as_str() == subject) {
        return format!("Assessment on {}", day(&a.at.value));
    }
    if let Some(o) = export.observations.iter().find(|o| o.id.as_str() == subject) {
        return format!("Observations on {}", day(&o.taken_at.value));
    }
    "Another of their records".into()
}

fn access(export: &Export) -> Markup {
    html! {
        @if export.access.is_empty() {
            p.empty { "No access recorded." }
        } @else {
            table {
                caption { "Every view, sync and change of their records in the audit trail, oldest first (times UTC)" }
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Record" } } }
                tbody {
                    @for a in &export.access {
                        tr {
                            td { (show_time(a.at)) }
                            td { (export.who(&a.who)) }
                            td { (a.action) }
                            td { (record_label(export, &a.subject)) br; span.record-id { (a.subject) } }
                        }
                    }
                }
            }
        }
    }
}
