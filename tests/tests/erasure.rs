//! A person erased on request: afterwards nothing of theirs is anywhere, on the server or any
//! device (decrypted; WAL included), in the full-text index, in any Automerge history, or in
//! backups. A device that was offline with changes for them uploads those changes, the server
//! erases them on arrival and counts them, and another person's records are untouched.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use outpost_core::{DocId, NewVisit, PersonId, RiskTier, Section, Setting, WorkerId};
use outpost_server::erasure::{self, Grounds};
use outpost_server::storage::{Accounts, Documents, Erasures};
use outpost_tests::forensics::{assert_gone, scan_sqlite};
use outpost_tests::team::{self, KeyedPhone, ServedTeam};

/// The erased person's name and what was written about them.
const PROBES: &[&str] = &["Zephyrine", "Marigold", "Quillon"];
/// Typed offline, after the erasure, on a device that had not heard of it.
const LATE: &str = "Brackenfold";
/// Another person's record, which must survive.
const KEPT: &str = "Thistlewood";

fn sync(phone: &KeyedPhone) -> outpost_core::SyncOutcome {
    let outcome = phone.device.sync_now(Duration::from_secs(30)).unwrap();
    assert!(outcome.complete, "{outcome:?}");
    outcome
}

fn person_with_visit(phone: &KeyedPhone, name: &str, address: &str, note: &str) -> (PersonId, DocId) {
    phone
        .device
        .write(|s| {
            let mut new = team::person(name, RiskTier::Low);
            new.address = Some(address.into());
            let person = s.create_person(&new)?;
            let visit = s.create_visit(&NewVisit {
                person: person.clone(),
                worker: WorkerId::new("w1")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })?;
            s.edit_visit(&visit, |v| v.splice(Section::WhatMatters, 0, 0, note))?;
            Ok((person, visit))
        })
        .unwrap()
}

#[test]
fn an_erased_person_is_gone_everywhere_and_what_arrives_late_is_erased_and_counted() {
    let rig = ServedTeam::start();
    let a = rig.enrolled_with_key("w1", "a.sqlite3", 3);
    let b = rig.enrolled_with_key("w2", "b.sqlite3", 5);
    let (person, visit) = person_with_visit(
        &a,
        "Iris Zephyrine Kemp",
        "4 Marigold Lane",
        "Quillon the cat is company.",
    );
    let (kept_person, kept_visit) =
        person_with_visit(&a, "Tom Baker", "1 High St", "Thistlewood allotment on Sundays.");
    sync(&a);
    sync(&b);

    // B goes offline and writes more about the person: an edit to the visit and a new visit.
    let late_visit = b
        .device
        .write(|s| {
            s.edit_visit(&visit, |v| v.splice(Section::Goals, 0, 0, "Visit Brackenfold farm."))?;
            let late = s.create_visit(&NewVisit {
                person: person.clone(),
                worker: WorkerId::new("w2")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })?;
            s.edit_visit(&late, |v| v.splice(Section::WhatMatters, 0, 0, "Brackenfold again."))?;
            Ok(late)
        })
        .unwrap();

    // Just before the erasure, the same search finds every probe in every place.
    for (what, found) in rig.scan_everywhere(&[&a, &b], PROBES, "before") {
        for probe in PROBES {
            let places: Vec<&String> = found.iter().filter(|(_, p)| p == probe).map(|(p, _)| p).collect();
            assert!(
                places.iter().any(|p| *p == "automerge history"),
                "{what}: {probe} not in any Automerge history: {places:?}"
            );
            assert!(
                places.iter().any(|p| *p == "file" || *p == "rows"),
                "{what}: {probe} not in the file: {places:?}"
            );
            // Visit text is in the full-text index; names and addresses are not indexed.
            if what.starts_with("phone") && *probe == "Quillon" {
                assert!(
                    places.iter().any(|p| *p == "fts5vocab"),
                    "{what}: {probe} not indexed: {places:?}"
                );
            }
        }
    }
    let on_b = scan_sqlite(&b.path, Some(&b.key), &[LATE]);
    assert!(on_b.iter().any(|(place, _)| place == "fts5vocab"), "{on_b:?}");
    for phone in [&a, &b] {
        assert_eq!(phone.device.read(|s| s.search("Quillon", 10)).unwrap().len(), 1);
    }

    let count = erasure::erase_person(
        rig.world.storage.as_ref(),
        &person,
        &Grounds::Request("the person asked, decided by the data protection officer".into()),
        "admin",
        "",
    )
    .unwrap();
    assert_eq!(count, 3, "the person, the visit and its review");
    assert!(rig.world.storage.doc(&visit).unwrap().is_none());

    let erased_a = sync(&a);
    assert_eq!(erased_a.progress.erased, 3);
    // B syncs: its changes go up, are erased on arrival, and B erases the person.
    let erased_b = sync(&b);
    assert_eq!(erased_b.progress.erased, 5, "the person, two visits and their reviews");
    sync(&b);
    sync(&a);
    assert!(b.device.read(|s| s.visit(&late_visit)).is_err());
    assert!(
        rig.world.storage.doc(&late_visit).unwrap().is_none(),
        "the late visit was not stored"
    );

    // The other person is untouched everywhere.
    for phone in [&a, &b] {
        let note = phone
            .device
            .read(|s| Ok(s.visit(&kept_visit)?.section(Section::WhatMatters).to_string()))
            .unwrap();
        assert!(note.contains(KEPT));
        assert!(phone.device.read(|s| s.person(&kept_person)).is_ok());
    }

    let mut all = PROBES.to_vec();
    all.push(LATE);
    for (what, found) in rig.scan_everywhere(&[&a, &b], &all, "after") {
        assert_gone(&found, &what);
    }
    for (phone, word) in [(&a, "Zephyrine"), (&b, "Brackenfold"), (&b, "Quillon")] {
        assert!(phone.device.read(|s| s.search(word, 10)).unwrap().is_empty(), "{word}");
    }

    // The audit: who erased whom, on what grounds, and how much arrived afterwards; no content.
    let log = rig.world.storage.audit_log(200).unwrap();
    let erase = log.iter().find(|e| e.action == "erase-person").unwrap();
    assert_eq!(erase.subject, person.to_string());
    assert!(erase.detail.contains("erasure on request"), "{}", erase.detail);
    let arrived = log.iter().find(|e| e.action == "erased-on-arrival").unwrap_or_else(|| {
        panic!(
            "no erased-on-arrival in {:#?}",
            log.iter().map(|e| (&e.action, &e.subject, &e.who)).collect::<Vec<_>>()
        )
    });
    assert_eq!(arrived.subject, person.to_string());
    assert!(
        arrived.detail.starts_with("3 document(s) arrived"),
        "{}",
        arrived.detail
    );
    for entry in &log {
        for probe in &all {
            assert!(!entry.detail.contains(probe), "{entry:?}");
        }
    }
    // Devices are no longer told to erase what they erased.
    let b_id = b.device.enrolment().unwrap().author.device;
    assert_eq!(rig.world.storage.erasures_for(&b_id).unwrap(), (vec![], vec![]));
}
