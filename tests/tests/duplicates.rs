//! Two workers offline each create a record for the same person; a lead merges them while a
//! third device is offline with edits to the losing record and a visit it created for them.
//! After everyone syncs, every visit (old and new) is on the surviving record on every device
//! and the server, the merged-away record is off every caseload, and every string anyone typed
//! is found on the surviving record.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use outpost_core::{
    Device, DocId, NewContact, NewVisit, Person, PersonId, Record, RiskTier, Section, Setting, TeamId, Visit, WorkerId,
};
use outpost_server::storage::{Accounts, Documents, Duplicates, ReviewIndex};
use outpost_tests::team::{self, ServedTeam};

/// Everything typed, by whoever typed it; each must end on the surviving record.
const TYPED: &[&str] = &[
    // A, creating the survivor.
    "4 Mill Lane",
    "Iris loves her allotment.",
    // B, creating the duplicate.
    "Dot Kemp",
    "07700 900111",
    "Iris worries about the stairs.",
    // C, offline during the merge.
    "Rissy",
    "Sam Kemp",
    "07700 900222",
    "Offline note from C. ",
    "A visit made while offline.",
];

fn sync(device: &Device) {
    let outcome = device.sync_now(Duration::from_secs(30)).unwrap();
    assert!(outcome.complete, "{outcome:?}");
}

fn visit_with(device: &Device, person: &PersonId, worker: &str, text: &str) -> DocId {
    device
        .write(|s| {
            let visit = s.create_visit(&NewVisit {
                person: person.clone(),
                worker: WorkerId::new(worker)?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })?;
            s.edit_visit(&visit, |v| v.splice(Section::WhatMatters, 0, 0, text))?;
            Ok(visit)
        })
        .unwrap()
}

fn person_text(p: &Person) -> Vec<String> {
    let mut out = vec![p.name.value.clone()];
    out.extend(p.preferred_name.iter().map(|f| f.value.clone()));
    out.extend(p.address.iter().map(|f| f.value.clone()));
    for c in &p.contacts {
        out.extend(
            [&c.name, &c.relationship, &c.phone]
                .into_iter()
                .flatten()
                .map(|f| f.value.clone()),
        );
    }
    out.extend(p.also_recorded.iter().map(|a| a.value.clone()));
    out
}

fn visit_text(v: &Visit) -> Vec<String> {
    v.sections.iter().map(|(_, text)| text.clone()).collect()
}

/// What a device holds on the surviving record, and which visits it lists there.
fn on_device(device: &Device, survivor: &PersonId) -> (Vec<String>, Vec<DocId>) {
    device
        .read(|s| {
            let mut text = person_text(&s.person(survivor)?);
            let mut visits = Vec::new();
            for row in s.visits_for_person(survivor)? {
                let visit = s.visit(&row.visit)?;
                assert_eq!(&visit.person, survivor, "the visit itself names the survivor");
                text.extend(visit_text(&visit));
                visits.push(row.visit);
            }
            visits.sort();
            Ok((text, visits))
        })
        .unwrap()
}

/// The same, from the server's stored documents.
fn on_server(rig: &ServedTeam, survivor: &PersonId) -> (Vec<String>, Vec<DocId>) {
    let mut text = Vec::new();
    let mut visits = Vec::new();
    for (id, stored) in rig.world.storage.people_docs(std::slice::from_ref(survivor)).unwrap() {
        let record = Record::load(id.clone(), &stored.snapshot).unwrap();
        match stored.doc_type.as_str() {
            "person" => text.extend(person_text(&record.person().unwrap())),
            "visit" => {
                let visit = record.visit().unwrap();
                assert_eq!(&visit.person, survivor);
                text.extend(visit_text(&visit));
                visits.push(id);
            }
            _ => {}
        }
    }
    visits.sort();
    (text, visits)
}

fn assert_everything_on_survivor(place: &str, (text, visits): (Vec<String>, Vec<DocId>), expected: &[DocId]) {
    assert_eq!(visits, expected, "{place}: the survivor's visits");
    let all = text.join("\n");
    for typed in TYPED {
        assert!(
            all.contains(typed),
            "{place}: {typed:?} is not on the survivor's record:\n{all}"
        );
    }
}

#[test]
fn a_merge_made_while_a_device_is_offline_ends_with_every_edit_on_the_survivor() {
    let rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    let b = rig.enrolled("w2", "b.sqlite3");
    let c = rig.enrolled("w2", "c.sqlite3");
    let team_id = TeamId::new("t1").unwrap();

    // A and B, each offline, create a record for the same person, with a visit each.
    let survivor = a
        .write(|s| {
            let mut new = team::person("Iris Kemp", RiskTier::Low);
            new.address = Some("4 Mill Lane".into());
            s.create_person(&new)
        })
        .unwrap();
    let visit_a = visit_with(&a, &survivor, "w1", "Iris loves her allotment.");
    let duplicate = b
        .write(|s| {
            let person = s.create_person(&team::person("Iris Kemp", RiskTier::Medium))?;
            s.edit_person(&person, |p| {
                p.add_contact(&NewContact {
                    name: "Dot Kemp".into(),
                    relationship: "daughter".into(),
                    phone: Some("07700 900111".into()),
                })
                .map(|_| ())
            })?;
            Ok(person)
        })
        .unwrap();
    let visit_b = visit_with(&b, &duplicate, "w2", "Iris worries about the stairs.");
    sync(&a);
    sync(&b);
    sync(&c);
    sync(&a);
    let caseload = |device: &Device| -> Vec<PersonId> {
        device
            .read(|s| Ok(s.team_caseload(&team_id)?.into_iter().map(|r| r.person).collect()))
            .unwrap()
    };
    assert_eq!(caseload(&c).len(), 2, "both records reached C");

    // C goes offline: it edits the duplicate's record and its visit, and makes a new visit.
    c.write(|s| {
        s.edit_person(&duplicate, |p| {
            p.set_preferred_name(Some("Rissy"))?;
            p.add_contact(&NewContact {
                name: "Sam Kemp".into(),
                relationship: "son".into(),
                phone: Some("07700 900222".into()),
            })
            .map(|_| ())
        })?;
        s.edit_visit(&visit_b, |v| {
            v.splice(Section::WhatMatters, 0, 0, "Offline note from C. ")
        })
    })
    .unwrap();
    let visit_c = visit_with(&c, &duplicate, "w2", "A visit made while offline.");

    // Meanwhile the lead merges the duplicate into the survivor.
    let merged = outpost_server::duplicates::merge_people(
        &rig.world.state.sync,
        &WorkerId::new("lead1").unwrap(),
        &survivor,
        &duplicate,
        "",
    )
    .unwrap();
    assert_eq!(merged.moved.len(), 2, "visit B and its review: {:?}", merged.moved);
    let again = outpost_server::duplicates::merge_people(
        &rig.world.state.sync,
        &WorkerId::new("lead1").unwrap(),
        &survivor,
        &duplicate,
        "",
    )
    .unwrap();
    assert!(
        again.moved.is_empty() && !again.folded,
        "merging again finds nothing left to do"
    );

    // C comes back, then everyone syncs.
    sync(&c);
    for device in [&a, &b, &c, &a, &b, &c] {
        sync(device);
    }

    let mut visits = vec![visit_a.clone(), visit_b.clone(), visit_c.clone()];
    visits.sort();
    for (place, device) in [("device A", &a), ("device B", &b), ("device C", &c)] {
        assert_everything_on_survivor(place, on_device(device, &survivor), &visits);
        assert_eq!(
            caseload(device),
            vec![survivor.clone()],
            "{place}: the duplicate is off the caseload"
        );
        let (gone, left) = device
            .read(|s| Ok((s.visits_for_person(&duplicate)?, s.person(&duplicate)?.merged_into)))
            .unwrap();
        assert!(gone.is_empty(), "{place}: {gone:?}");
        assert_eq!(left, Some(survivor.clone()), "{place}: the duplicate is kept, marked");
        let person = device.read(|s| s.person(&survivor)).unwrap();
        assert_eq!(
            person.preferred_name.map(|f| f.value).as_deref(),
            Some("Rissy"),
            "{place}: C's edit of the duplicate's record is on the survivor's"
        );
        assert_eq!(person.risk.value, RiskTier::Medium, "{place}: the higher risk stands");
        let text = device
            .read(|s| Ok(s.visit(&visit_b)?.section(Section::WhatMatters).to_string()))
            .unwrap();
        assert_eq!(text, "Offline note from C. Iris worries about the stairs.", "{place}");
    }

    assert_everything_on_survivor("server", on_server(&rig, &survivor), &visits);
    let only_the_record: Vec<String> = rig
        .world
        .storage
        .people_docs(std::slice::from_ref(&duplicate))
        .unwrap()
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect();
    assert_eq!(
        only_the_record,
        vec![duplicate.to_string()],
        "nothing else names the duplicate"
    );
    let listed: Vec<PersonId> = rig
        .world
        .storage
        .caseload(std::slice::from_ref(&team_id), Utc::now().date_naive())
        .unwrap()
        .into_iter()
        .map(|e| e.person)
        .collect();
    assert_eq!(listed, vec![survivor.clone()], "the lead's caseload page");
    let merge = rig.world.storage.merged_into(&duplicate).unwrap().unwrap();
    assert_eq!((merge.survivor, merge.by.as_str()), (survivor.clone(), "lead1"));
    let audit = rig.world.storage.audit_log(200).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "merge-people" && e.subject == duplicate.as_str())
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "merge-repoint" && e.subject == visit_c.as_str()),
        "C's new visit was re-pointed after it arrived"
    );
}

#[test]
fn a_lead_merges_from_the_person_page_and_the_device_follows() {
    use axum::http::StatusCode;
    use outpost_tests::pages::{Browser, hidden};

    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let a = rig.enrolled("w1", "a.sqlite3");
    let (survivor, duplicate) = a
        .write(|s| {
            let survivor = s.create_person(&team::person("Iris Kemp", RiskTier::Low))?;
            let duplicate = s.create_person(&team::person("Iris Kempe", RiskTier::Low))?;
            Ok((survivor, duplicate))
        })
        .unwrap();
    let visit = visit_with(&a, &duplicate, "w1", "Iris worries about the stairs.");
    sync(&a);
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        let page = browser.get(&format!("/review/people/{survivor}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains(&format!("<option value=\"{duplicate}\">")),
            "{}",
            page.body
        );
        let path = format!("/review/people/{survivor}/merge");
        let forged = browser.post(&path, &[("duplicate", duplicate.as_str())]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "no session token: nothing merged");
        assert!(rig.world.storage.merged_into(&duplicate).unwrap().is_none());

        let csrf = hidden(&page.body, "csrf").unwrap();
        let done = browser
            .post(&path, &[("csrf", &csrf), ("duplicate", duplicate.as_str())])
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let merged_page = browser.get(&format!("/review/people/{duplicate}")).await;
        assert!(merged_page.body.contains("This record was a duplicate, merged into"));
        let survivor_page = browser.get(&format!("/review/people/{survivor}")).await;
        assert!(
            survivor_page.body.contains("Iris Kempe"),
            "the duplicate's name is kept"
        );
        assert!(survivor_page.body.contains(&format!("/review/visits/{visit}")));
        let caseload = browser.get("/review/caseload").await;
        assert!(!caseload.body.contains(&format!("/review/people/{duplicate}")));
    });
    sync(&a);
    let rows = a.read(|s| s.visits_for_person(&survivor)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].visit, visit);
    let team_id = TeamId::new("t1").unwrap();
    let listed = a.read(|s| s.team_caseload(&team_id)).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].person, survivor);
}
