//! Creating, reading and editing each kind of record, and refusing bad input without changing
//! anything stored.
#![allow(clippy::unwrap_used)]

mod support;

use chrono::NaiveDate;
use outpost_core::{
    CARE_ACT_OUTCOMES, ClinicalRisk, Consciousness, Error, Helped, NewAction, NewAssessment, NewConsent,
    NewObservations, Outcome, Parameter, ReviewAction, ReviewState, Section, SpO2Scale, Store, WorkerId,
};
use support::{new_person, new_visit, open};

/// Everything a failed call could have touched: every document's heads and every index row.
fn fingerprint(store: &Store) -> (Vec<(outpost_core::DocId, Vec<outpost_core::ChangeHash>)>, Vec<String>) {
    (store.all_heads().unwrap(), store.index_dump().unwrap())
}

#[test]
fn a_person_record_round_trips_with_every_field() {
    let mut t = open("w1");
    let mut new = new_person("Margaret Okafor", &["w1", "w2"]);
    new.preferred_name = Some("Maggie".into());
    new.date_of_birth = NaiveDate::from_ymd_opt(1941, 5, 2);
    new.nhs_number = Some("943 476 5919".into());
    let id = t.store.create_person(&new).unwrap();
    t.store
        .edit_person(&id, |p| {
            p.add_contact(&outpost_core::NewContact {
                name: "Ade Okafor".into(),
                relationship: "son".into(),
                phone: Some("07700 900123".into()),
            })?;
            p.record_consent(&NewConsent {
                with_whom: "District nursing team".into(),
                given_on: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            })?;
            p.set_risk(outpost_core::RiskTier::High)
        })
        .unwrap();

    let person = t.store.person(&id).unwrap();
    assert_eq!(person.name.value, "Margaret Okafor");
    assert_eq!(person.display_name(), "Maggie");
    assert_eq!(person.nhs_number.unwrap().value, "9434765919");
    assert_eq!(person.risk.value, outpost_core::RiskTier::High);
    assert_eq!(person.allocated_workers.len(), 2);
    assert_eq!(person.contacts[0].relationship.as_ref().unwrap().value, "son");
    let consent = &person.consents[0];
    assert_eq!(consent.with_whom.as_ref().unwrap().value, "District nursing team");
    assert_eq!(
        consent.recorded_by.as_deref(),
        Some("w1"),
        "consent records who recorded it"
    );
    assert!(consent.recorded_at.is_some());
}

#[test]
fn a_visit_keeps_sections_actions_feedback_and_safeguarding() {
    let mut t = open("w1");
    let person = t.store.create_person(&new_person("Tom Reilly", &["w1"])).unwrap();
    let visit = t.store.create_visit(&new_visit(&person, "w1", 4)).unwrap();
    let mut action = None;
    t.store
        .edit_visit(&visit, |v| {
            v.splice(Section::WhatMatters, 0, 0, "Getting back to the allotment.")?;
            v.splice(Section::WhatMatters, 16, 0, "his ")?;
            v.set_section(Section::Strengths, "Knows every neighbour by name.")?;
            action = Some(v.add_action(&NewAction {
                what: "Ask about a raised bed".into(),
                who: "w1".into(),
                due: NaiveDate::from_ymd_opt(2026, 3, 20),
            })?);
            v.set_feedback(Some(Helped::Yes), "It was good to talk about the garden.")?;
            v.raise_safeguarding("Unexplained bruising on forearm")
        })
        .unwrap();
    t.store
        .edit_visit(&visit, |v| v.set_action_done(action.as_ref().unwrap(), true))
        .unwrap();

    let read = t.store.visit(&visit).unwrap();
    assert_eq!(read.section(Section::WhatMatters), "Getting back to his the allotment.");
    assert_eq!(read.section(Section::Strengths), "Knows every neighbour by name.");
    assert_eq!(read.actions.len(), 1);
    assert!(read.actions[0].done);
    assert_eq!(read.helped.unwrap().value, Helped::Yes);
    assert!(read.safeguarding_concern);
    assert_eq!(
        read.safeguarding_reason.unwrap().value,
        "Unexplained bruising on forearm"
    );
    assert_eq!(t.store.review(&visit).unwrap().state.value, ReviewState::Draft);
}

#[test]
fn an_assessment_answers_only_the_sections_it_includes() {
    let mut t = open("w1");
    let person = t.store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let id = t
        .store
        .create_assessment(&NewAssessment {
            person: person.clone(),
            assessor: WorkerId::new("w1").unwrap(),
            at: chrono::Utc::now(),
            template_id: CARE_ACT_OUTCOMES.id.into(),
            template_version: CARE_ACT_OUTCOMES.version,
            sections: vec!["daily_living".into()],
        })
        .unwrap();
    t.store
        .edit_assessment(&id, |a| {
            a.answer("nutrition", Outcome::AchievesWithDifficulty, Some("Skips lunch"))
        })
        .unwrap();
    let read = t.store.assessment(&id).unwrap();
    assert_eq!(read.sections, vec!["daily_living".to_string()]);
    assert_eq!(read.answers[0].question, "nutrition");
    assert_eq!(read.answers[0].outcome.value, Outcome::AchievesWithDifficulty);
    assert_eq!(read.answers[0].note.as_ref().unwrap().value, "Skips lunch");

    // A question from a section the worker did not include is refused, naming it.
    let before = fingerprint(&t.store);
    let err = t
        .store
        .edit_assessment(&id, |a| a.answer("relationships", Outcome::Achieves, None))
        .unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { reason, .. } if reason.contains("relationships_and_community")));
    assert_eq!(fingerprint(&t.store), before);
}

#[test]
fn observations_score_news2_and_flag_extreme_values() {
    let mut t = open("n1");
    let person = t.store.create_person(&new_person("Edith Marsh", &["n1"])).unwrap();
    let id = t
        .store
        .create_observations(&NewObservations {
            person,
            nurse: WorkerId::new("n1").unwrap(),
            taken_at: chrono::Utc::now(),
        })
        .unwrap();
    t.store
        .edit_observations(&id, |o| {
            o.set_respiration_rate(22)?; // 2
            o.set_oxygen_saturation(95, SpO2Scale::Scale1)?; // 1
            o.set_supplemental_oxygen(false)?; // 0
            o.set_systolic_blood_pressure(105)?; // 1
            o.set_pulse(185)?; // 3, and extreme enough to confirm
            o.set_consciousness(Consciousness::Alert)?; // 0
            o.set_temperature(38.4)?; // 1
            o.set_wound_notes("Left heel: 2 cm, granulating, no odour.")
        })
        .unwrap();
    let read = t.store.observations(&id).unwrap();
    let news2 = read.news2.unwrap();
    assert_eq!(news2.total, 8);
    assert_eq!(news2.risk, ClinicalRisk::High);
    assert_eq!(read.needs_confirmation, vec![Parameter::Pulse]);
    assert_eq!(read.wound_notes, "Left heel: 2 cm, granulating, no odour.");

    t.store.edit_observations(&id, |o| o.confirm(Parameter::Pulse)).unwrap();
    assert!(t.store.observations(&id).unwrap().needs_confirmation.is_empty());
}

#[test]
fn bad_input_is_refused_by_name_and_changes_nothing() {
    let mut t = open("w1");
    let person = t.store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let visit = t.store.create_visit(&new_visit(&person, "w1", 5)).unwrap();
    let obs = t
        .store
        .create_observations(&NewObservations {
            person: person.clone(),
            nurse: WorkerId::new("w1").unwrap(),
            taken_at: chrono::Utc::now(),
        })
        .unwrap();
    t.store
        .edit_visit(&visit, |v| v.splice(Section::Goals, 0, 0, "Walk to the shop"))
        .unwrap();
    let before = fingerprint(&t.store);

    // An invalid NHS number: the valid edit made in the same call is not kept either.
    let err = t
        .store
        .edit_person(&person, |p| {
            p.set_name("Annie Lee")?;
            p.set_nhs_number(Some("943 476 5918"))
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "nhs_number"),
        "{err}"
    );
    assert_eq!(t.store.person(&person).unwrap().name.value, "Ann Lee");
    assert_eq!(fingerprint(&t.store), before);

    // An unknown template question.
    let mut assessment = NewAssessment {
        person: person.clone(),
        assessor: WorkerId::new("w1").unwrap(),
        at: chrono::Utc::now(),
        template_id: CARE_ACT_OUTCOMES.id.into(),
        template_version: 1,
        sections: vec!["home".into()],
    };
    let a = t.store.create_assessment(&assessment).unwrap();
    let before_assessment = fingerprint(&t.store);
    let err = t
        .store
        .edit_assessment(&a, |e| e.answer("favourite_colour", Outcome::Achieves, None))
        .unwrap_err();
    assert!(err.to_string().contains("favourite_colour"), "{err}");
    assert_eq!(fingerprint(&t.store), before_assessment);
    assessment.template_id = "no-such-template".into();
    assert!(
        matches!(t.store.create_assessment(&assessment), Err(Error::InvalidInput { field, .. }) if field == "template")
    );
    assert_eq!(fingerprint(&t.store), before_assessment);

    // Impossible observations: a negative pulse, saturation over 100, a temperature no one lives at.
    for (name, result) in [
        ("pulse", t.store.edit_observations(&obs, |o| o.set_pulse(-5))),
        (
            "oxygen_saturation",
            t.store
                .edit_observations(&obs, |o| o.set_oxygen_saturation(104, SpO2Scale::Scale1)),
        ),
        (
            "temperature",
            t.store.edit_observations(&obs, |o| o.set_temperature(3.7)),
        ),
    ] {
        assert!(
            matches!(&result, Err(Error::InvalidInput { field, .. }) if field == name),
            "{name}: {result:?}"
        );
    }
    assert_eq!(fingerprint(&t.store), before_assessment);

    // Approving a draft is not a transition the review allows.
    let err = t.store.review_visit(&visit, ReviewAction::Approve, None).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidTransition { action: "approve", from } if from == "draft"),
        "{err}"
    );
    // Nor is returning without saying why.
    t.store.review_visit(&visit, ReviewAction::Submit, None).unwrap();
    let after_submit = fingerprint(&t.store);
    assert!(t.store.review_visit(&visit, ReviewAction::Return, Some("  ")).is_err());
    assert_eq!(fingerprint(&t.store), after_submit);

    // Truncated and corrupt document bytes from outside.
    let mut bytes = t.store.export_changes(&visit, &[]).unwrap();
    let truncated = &bytes[..bytes.len() / 2];
    assert!(matches!(t.store.import_changes(&visit, truncated), Err(Error::InvalidChanges { id, .. }) if id == visit));
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    assert!(matches!(
        t.store.import_changes(&visit, &bytes),
        Err(Error::InvalidChanges { .. })
    ));
    let stranger = outpost_core::DocId::new("not-yet-here").unwrap();
    assert!(t.store.import_changes(&stranger, b"\x85\x6f\x4a\x83garbage").is_err());
    assert!(matches!(t.store.visit(&stranger), Err(Error::NotFound(_))));
    assert_eq!(fingerprint(&t.store), after_submit);

    assert_eq!(
        t.store.visit(&visit).unwrap().section(Section::Goals),
        "Walk to the shop"
    );
}

#[test]
fn review_follows_submit_return_resubmit_approve_with_who_and_what_was_read() {
    let mut t = open("w1");
    let person = t.store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let visit = t.store.create_visit(&new_visit(&person, "w1", 6)).unwrap();
    t.store
        .edit_visit(&visit, |v| v.splice(Section::Goals, 0, 0, "Swim again"))
        .unwrap();
    let heads_read = t.store.heads(&visit).unwrap();
    assert_eq!(
        t.store.review_visit(&visit, ReviewAction::Submit, None).unwrap(),
        ReviewState::Submitted
    );
    assert_eq!(
        t.store
            .review_visit(&visit, ReviewAction::Return, Some("Add who is taking her"))
            .unwrap(),
        ReviewState::Returned
    );
    assert_eq!(
        t.store.review_visit(&visit, ReviewAction::Submit, None).unwrap(),
        ReviewState::Submitted
    );
    assert_eq!(
        t.store.review_visit(&visit, ReviewAction::Approve, None).unwrap(),
        ReviewState::Approved
    );

    let review = t.store.review(&visit).unwrap();
    let actions: Vec<_> = review.history.iter().map(|s| s.action).collect();
    use ReviewAction::*;
    assert_eq!(actions, vec![Submit, Return, Submit, Approve]);
    assert_eq!(review.history[1].comment.as_deref(), Some("Add who is taking her"));
    assert_eq!(review.history[0].visit_heads, heads_read);
    assert_eq!(review.history[3].by.as_ref().unwrap().worker.as_str(), "w1");
    // The review is a document of its own: reviewing never touched the visit.
    assert_eq!(t.store.heads(&visit).unwrap(), heads_read);
}

#[test]
fn a_corrupt_stored_document_is_named_and_the_rest_of_the_store_still_works() {
    let t = open("w1");
    let path = t.dir.path().join("outpost.sqlite3");
    let mut store = t.store;
    let ann = store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let bob = store.create_person(&new_person("Bob Hale", &["w1"])).unwrap();
    store.compact_all().unwrap();
    drop(store);

    // Damage Ann's snapshot on disk, as a bad sector or a bug would.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE documents SET snapshot = substr(snapshot, 1, length(snapshot) / 2) WHERE doc_id = ?1",
        [ann.as_str()],
    )
    .unwrap();
    drop(conn);

    let mut store = Store::open(&path, support::author("w1", "w1-phone")).unwrap();
    assert!(matches!(store.person(&ann), Err(Error::CorruptDocument { id, .. }) if id == ann));
    assert_eq!(store.person(&bob).unwrap().name.value, "Bob Hale");
    store
        .edit_person(&bob, |p| p.set_preferred_name(Some("Bobby")))
        .unwrap();
    let skipped = store.rebuild_index().unwrap();
    assert!(matches!(skipped.as_slice(), [Error::CorruptDocument { id, .. }] if *id == ann));
    assert_eq!(store.caseload(&WorkerId::new("w1").unwrap()).unwrap().len(), 1);
}
