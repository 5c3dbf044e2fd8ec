//! Reading saved documents outside any store, as the server's review pages do: loading, history,
//! concurrent typing, contested fields and the index listing.
#![allow(clippy::unwrap_used)]

mod support;

use outpost_core::sync::{ActionListing, Listing};
use outpost_core::{
    Author, ConcurrentEdit, DocId, Document, Error, NewAction, Record, ReviewAction, ReviewState, Section, Setting,
};
use support::{author, new_person, new_visit, open};

const S: Section = Section::WhatMatters;

fn w1() -> Author {
    author("w1", "w1-phone")
}

/// A visit written by w1, and the review document beside it.
fn visit_by_w1() -> (Document, Document) {
    let person = Document::new_person(&w1(), &new_person("Ann Lee", &["w1", "w2"])).unwrap();
    Document::new_visit(&w1(), &new_visit(person.id(), "w1", 3)).unwrap()
}

fn type_into(doc: &mut Document, section: Section, text: &str) {
    doc.edit_visit(|v| v.splice(section, 0, 0, text)).unwrap();
}

fn record(doc: &mut Document) -> Record {
    Record::load(doc.id().clone(), &doc.save()).unwrap()
}

/// `a` and a fork of it written by `other`, each edited by its closure without seeing the
/// other's edit, then merged: the record of the result.
fn concurrently(other: &Author, a_edit: impl FnOnce(&mut Document), b_edit: impl FnOnce(&mut Document)) -> Record {
    let (mut a, _) = visit_by_w1();
    let mut b = a.fork(other);
    a_edit(&mut a);
    b_edit(&mut b);
    a.merge(&mut b).unwrap();
    record(&mut a)
}

#[test]
fn bytes_that_are_not_a_document_are_refused_naming_it() {
    let id = DocId::new("visit-42").unwrap();
    for bytes in [&b"not automerge at all"[..], &[]] {
        let err = Record::load(id.clone(), bytes).unwrap_err();
        assert!(
            matches!(&err, Error::CorruptDocument { id: named, .. } if *named == id),
            "{err:?}"
        );
        assert!(err.to_string().contains("visit-42"), "{err}");
    }
    let (mut visit, _) = visit_by_w1();
    let saved = visit.save();
    assert!(Record::load(id, &saved[..saved.len() - 3]).is_err());
}

#[test]
fn two_workers_typing_into_one_section_at_once_is_a_concurrent_edit() {
    let w2 = author("w2", "w2-phone");
    let record = concurrently(&w2, |a| type_into(a, S, "Gardening"), |b| type_into(b, S, "Family"));
    assert_eq!(
        record.concurrent_edits().unwrap(),
        vec![ConcurrentEdit {
            section: S,
            authors: vec![w1(), w2],
        }]
    );
}

#[test]
fn two_workers_typing_into_different_sections_at_once_is_not() {
    let w2 = author("w2", "w2-phone");
    let record = concurrently(
        &w2,
        |a| type_into(a, S, "Gardening"),
        |b| type_into(b, Section::Goals, "Walk to the shop"),
    );
    assert_eq!(record.concurrent_edits().unwrap(), vec![]);
    assert_eq!(record.visit().unwrap().section(Section::Goals), "Walk to the shop");
}

#[test]
fn a_worker_typing_after_seeing_a_colleagues_edit_is_not() {
    let (mut a, _) = visit_by_w1();
    let mut b = a.fork(&author("w2", "w2-phone"));
    type_into(&mut a, S, "Gardening. ");
    b.merge(&mut a).unwrap();
    type_into(&mut b, S, "Family. ");
    a.merge(&mut b).unwrap();
    let record = record(&mut a);
    assert_eq!(record.visit().unwrap().section(S), "Family. Gardening. ");
    assert_eq!(record.concurrent_edits().unwrap(), vec![]);
}

#[test]
fn one_worker_typing_on_two_devices_at_once_is_not() {
    let tablet = author("w1", "w1-tablet");
    let record = concurrently(&tablet, |a| type_into(a, S, "Gardening"), |b| type_into(b, S, "Family"));
    assert_eq!(record.concurrent_edits().unwrap(), vec![]);
    // The edits did merge: both devices' typing is there, each with its own author.
    let spans = record.authorship(S).unwrap();
    assert_eq!(spans.len(), 2, "{spans:?}");
}

#[test]
fn one_worker_typing_at_an_older_version_through_a_derived_actor_is_not() {
    let mut a = open("w1");
    let person = a.store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let visit = a.store.create_visit(&new_visit(&person, "w1", 3)).unwrap();
    let shown = a.store.section_text(&visit, S).unwrap();
    a.store
        .edit_section_text(&visit, S, &shown.version, "", "Gardening")
        .unwrap();
    // The same field, still showing the old version, saves again: the helper writes at the old
    // heads, with an actor derived from the device's.
    a.store
        .edit_section_text(&visit, S, &shown.version, "", "Family")
        .unwrap();
    let bytes = a.store.export_changes(&visit, &[]).unwrap();
    let record = Record::load(visit, &bytes).unwrap();
    assert_eq!(record.visit().unwrap().section(S).len(), "GardeningFamily".len());
    assert_eq!(record.concurrent_edits().unwrap(), vec![]);
}

#[test]
fn the_record_at_older_heads_shows_the_old_text_and_unknown_heads_are_refused() {
    let (mut visit, _) = visit_by_w1();
    type_into(&mut visit, S, "Gardening");
    let then = record(&mut visit).heads();
    visit.edit_visit(|v| v.splice(S, 9, 0, " and birds")).unwrap();
    let now = record(&mut visit);
    assert_eq!(now.visit().unwrap().section(S), "Gardening and birds");
    assert!(now.has_heads(&then));

    let old = now.at(&then).unwrap();
    assert_eq!(old.visit().unwrap().section(S), "Gardening");
    assert_eq!(old.heads(), then);

    let elsewhere = record(&mut visit_by_w1().0).heads();
    assert!(!now.has_heads(&elsewhere));
    let err = now.at(&elsewhere).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "heads"),
        "{err:?}"
    );
}

#[test]
fn a_setting_and_an_action_due_written_at_once_are_contested() {
    let (mut a, _) = visit_by_w1();
    let mut id = None;
    a.edit_visit(|v| {
        id = Some(v.add_action(&NewAction {
            what: "Call the lunch club".into(),
            who: "w1".into(),
            due: None,
        })?);
        Ok(())
    })
    .unwrap();
    let id = id.unwrap();
    let mut b = a.fork(&author("w2", "w2-phone"));
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 4, d);
    a.edit_visit(|v| {
        v.set_setting(Setting::Clinic)?;
        v.edit_action(&id, None, None, Some(day(1)))
    })
    .unwrap();
    b.edit_visit(|v| {
        v.set_setting(Setting::Phone)?;
        v.edit_action(&id, None, None, Some(day(2)))
    })
    .unwrap();
    assert_eq!(record(&mut a).contested_fields().unwrap(), Vec::<String>::new());
    a.merge(&mut b).unwrap();
    assert_eq!(record(&mut a).contested_fields().unwrap(), ["setting", "action 1: due"]);
}

#[test]
fn an_approved_reviews_listing_names_the_heads_the_lead_approved() {
    let (mut visit, mut review) = visit_by_w1();
    type_into(&mut visit, S, "Gardening");
    let submitted = record(&mut visit).heads();
    review.review(ReviewAction::Submit, None, &submitted).unwrap();
    let mut lead = review.fork(&author("lead1", "lead-laptop"));
    type_into(&mut visit, S, "Birds. ");
    let read = record(&mut visit).heads();
    assert_ne!(read, submitted);
    assert_eq!(
        lead.review(ReviewAction::Approve, None, &read).unwrap(),
        ReviewState::Approved
    );

    let Listing::Review {
        visit: of,
        state,
        submitted_at,
        approved_heads,
    } = record(&mut lead).listing().unwrap()
    else {
        panic!("a review lists as a review");
    };
    assert_eq!((&of, state), (visit.id(), ReviewState::Approved));
    assert!(submitted_at.is_some());
    assert_eq!(approved_heads, Some(read));

    // Before the lead decides, there is nothing approved to name.
    let Listing::Review { approved_heads, .. } = record(&mut review).listing().unwrap() else {
        panic!("a review lists as a review");
    };
    assert_eq!(approved_heads, None);
}

#[test]
fn a_visits_listing_keeps_a_cancelled_action_marked_cancelled() {
    let (mut visit, _) = visit_by_w1();
    let new = |what: &str| NewAction {
        what: what.into(),
        who: "w1".into(),
        due: None,
    };
    let mut ids = Vec::new();
    visit
        .edit_visit(|v| {
            ids.push(v.add_action(&new("Call the lunch club"))?);
            ids.push(v.add_action(&new("Book the GP"))?);
            // A NUL nobody types (a crafted push) is listed as U+FFFD: PostgreSQL cannot hold it.
            ids.push(v.add_action(&new("Ring\0back"))?);
            v.cancel_action(&ids[1])
        })
        .unwrap();
    let Listing::Visit { worker, actions, .. } = record(&mut visit).listing().unwrap() else {
        panic!("a visit lists as a visit");
    };
    assert_eq!(worker, "w1");
    let listed = |id: &outpost_core::ItemId, what: &str, cancelled| ActionListing {
        id: id.0.clone(),
        what: what.into(),
        due: None,
        done: false,
        cancelled,
    };
    assert_eq!(
        actions,
        [
            listed(&ids[0], "Call the lunch club", false),
            listed(&ids[1], "Book the GP", true),
            listed(&ids[2], "Ring\u{FFFD}back", false)
        ]
    );
}
