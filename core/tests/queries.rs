//! Queries read the index, and the index can be rebuilt from the documents alone.
#![allow(clippy::unwrap_used)]

mod support;

use chrono::NaiveDate;
use outpost_core::{NewAction, ReviewAction, ReviewState, Section, TeamId, WorkerId};
use support::{new_person, new_visit, open};

#[test]
fn caseload_visits_review_state_overdue_search_and_changed_since() {
    let mut t = open("w1");
    let s = &mut t.store;
    let ann = s.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let bob = s.create_person(&new_person("Bob Hale", &["w1", "w2"])).unwrap();
    let cy = s.create_person(&new_person("Cy Dunn", &["w2"])).unwrap();

    let early = s.create_visit(&new_visit(&ann, "w1", 2)).unwrap();
    let late = s.create_visit(&new_visit(&ann, "w1", 20)).unwrap();
    let middle = s.create_visit(&new_visit(&ann, "w1", 9)).unwrap();
    let bobs = s.create_visit(&new_visit(&bob, "w1", 3)).unwrap();
    let checkpoint = s.revision().unwrap();

    s.edit_visit(&late, |v| {
        v.splice(
            Section::CommunityConnections,
            0,
            0,
            "Suggested the allotment society on Fridays",
        )?;
        v.add_action(&NewAction {
            what: "Phone the allotment secretary".into(),
            who: "w1".into(),
            due: NaiveDate::from_ymd_opt(2026, 3, 10),
        })?;
        v.add_action(&NewAction {
            what: "Check bus pass".into(),
            who: "Ann".into(),
            due: NaiveDate::from_ymd_opt(2026, 4, 30),
        })?;
        Ok(())
    })
    .unwrap();
    s.edit_visit(&bobs, |v| {
        v.splice(Section::Strengths, 0, 0, "Plays the fiddle at the hub")
    })
    .unwrap();
    s.review_visit(&middle, ReviewAction::Submit, None).unwrap();

    let w1 = WorkerId::new("w1").unwrap();
    let names: Vec<_> = s.caseload(&w1).unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, vec!["Ann Lee", "Bob Hale"]);
    let ann_row = &s.caseload(&w1).unwrap()[0];
    assert_eq!(ann_row.open_actions, 2);
    assert_eq!(
        ann_row.last_visit.unwrap().date_naive(),
        NaiveDate::from_ymd_opt(2026, 3, 20).unwrap()
    );
    assert_eq!(s.team_caseload(&TeamId::new("north").unwrap()).unwrap().len(), 3);

    let ann_visits: Vec<_> = s
        .visits_for_person(&ann)
        .unwrap()
        .into_iter()
        .map(|r| r.visit)
        .collect();
    assert_eq!(
        ann_visits,
        vec![late.clone(), middle.clone(), early.clone()],
        "newest first"
    );

    let submitted: Vec<_> = s
        .visits_in_review_state(ReviewState::Submitted)
        .unwrap()
        .into_iter()
        .map(|r| r.visit)
        .collect();
    assert_eq!(submitted, vec![middle.clone()]);
    assert_eq!(s.visits_in_review_state(ReviewState::Draft).unwrap().len(), 3);

    let overdue = s.overdue_actions(NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()).unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].what, "Phone the allotment secretary");

    let hits = s.search("allotment", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].visit, late);
    assert!(hits[0].snippet.contains("[allotment]"), "{}", hits[0].snippet);
    assert_eq!(
        s.search("fiddl", 10).unwrap()[0].visit,
        bobs,
        "prefix search while typing"
    );
    assert!(s.search("wheelchair", 10).unwrap().is_empty());

    let mut changed: Vec<_> = s
        .changed_since(checkpoint)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    changed.sort();
    let mut expected = vec![late.clone(), bobs.clone(), outpost_core::DocId::review_of(&middle)];
    expected.sort();
    assert_eq!(changed, expected);
    assert!(s.changed_since(s.revision().unwrap()).unwrap().is_empty());
    let w2_caseload: Vec<_> = s
        .caseload(&WorkerId::new("w2").unwrap())
        .unwrap()
        .into_iter()
        .map(|r| r.person)
        .collect();
    assert_eq!(
        w2_caseload,
        vec![bob.clone(), cy.clone()],
        "Cy is in w2's caseload, not w1's"
    );
}

#[test]
fn a_rebuilt_index_equals_the_live_one() {
    let mut t = open("w1");
    let s = &mut t.store;
    for (i, name) in ["Ann Lee", "Bob Hale", "Cy Dunn"].iter().enumerate() {
        let person = s.create_person(&new_person(name, &["w1"])).unwrap();
        let visit = s.create_visit(&new_visit(&person, "w1", 1 + i as u32)).unwrap();
        s.edit_visit(&visit, |v| {
            v.splice(Section::WhatMatters, 0, 0, "Seeing the sea again")?;
            v.add_action(&NewAction {
                what: "Find a coach trip".into(),
                who: "w1".into(),
                due: NaiveDate::from_ymd_opt(2026, 5, 1),
            })?;
            Ok(())
        })
        .unwrap();
        if i == 1 {
            s.review_visit(&visit, ReviewAction::Submit, None).unwrap();
        }
    }
    let live = s.index_dump().unwrap();
    assert!(live.len() > 12, "the index holds rows to compare");
    assert!(s.rebuild_index().unwrap().is_empty());
    assert_eq!(s.index_dump().unwrap(), live);
}
