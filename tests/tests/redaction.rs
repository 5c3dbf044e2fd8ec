//! A lead removes a passage recorded on the wrong person's visit: afterwards its text is nowhere,
//! not on the server, not on any device (decrypted; WAL included), not in the full-text index,
//! not in any Automerge history, not in backups; and a device that was offline with edits keeps
//! those outside the passage, while the one typed inside it is held for the lead.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use outpost_core::{DocId, NewVisit, RiskTier, Section, Setting, WorkerId};
use outpost_server::storage::Accounts;
use outpost_tests::forensics::{Found, assert_gone};
use outpost_tests::team::{self, KeyedPhone, ServedTeam};

/// Words of the passage that must disappear; each is searched for everywhere.
const PROBES: &[&str] = &["Zebedee", "Larkspur", "Quentin"];
const PASSAGE: &str = "Mr Quentin Zebedee, a neighbour at 9 Larkspur Row, was also discussed. ";
const BEFORE: &str = "Iris wants to keep gardening. ";
const AFTER: &str = "She enjoys the library on Fridays.";

fn sync(phone: &KeyedPhone) {
    let outcome = phone.device.sync_now(Duration::from_secs(30)).unwrap();
    assert!(outcome.complete, "{outcome:?}");
}

fn what_matters(phone: &KeyedPhone, visit: &DocId) -> String {
    phone
        .device
        .read(|s| Ok(s.visit(visit)?.section(Section::WhatMatters).to_string()))
        .unwrap()
}

fn places_with(found: &Found, probe: &str) -> Vec<String> {
    found
        .iter()
        .filter(|(_, p)| p == probe)
        .map(|(place, _)| place.clone())
        .collect()
}

fn searched(phone: &KeyedPhone, word: &str) -> usize {
    phone.device.read(|s| s.search(word, 10)).unwrap().len()
}

#[test]
fn a_redacted_passage_is_gone_from_every_copy_and_offline_edits_outside_it_survive() {
    let rig = ServedTeam::start();
    let a = rig.enrolled_with_key("w1", "a.sqlite3", 7);
    let b = rig.enrolled_with_key("w2", "b.sqlite3", 9);

    let visit = a
        .device
        .write(|s| {
            let person = s.create_person(&team::person("Iris Kemp", RiskTier::Low))?;
            let visit = s.create_visit(&NewVisit {
                person,
                worker: WorkerId::new("w1")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })?;
            s.edit_visit(&visit, |v| v.splice(Section::WhatMatters, 0, 0, BEFORE))?;
            Ok(visit)
        })
        .unwrap();
    sync(&a);
    // The rest is typed after the first sync, as a worker types (a few words at a time), so the
    // passage reaches the server as changes in its log as well as in the document.
    a.device
        .write(|s| {
            let mut end = BEFORE.chars().count();
            for words in format!("{PASSAGE}{AFTER}").split_inclusive(' ') {
                s.edit_visit(&visit, |v| v.splice(Section::WhatMatters, end, 0, words))?;
                end += words.chars().count();
            }
            s.edit_visit(&visit, |v| v.splice(Section::Goals, 0, 0, "Walk to the shop."))
        })
        .unwrap();
    sync(&a);
    sync(&b);
    assert_eq!(what_matters(&b, &visit), format!("{BEFORE}{PASSAGE}{AFTER}"));

    // B goes offline and edits: a sentence before the passage, a word inside it, and the goals.
    b.device
        .write(|s| {
            s.edit_visit(&visit, |v| v.splice(Section::WhatMatters, 0, 0, "Offline note. "))?;
            let inside = "Offline note. ".len() + BEFORE.len() + "Mr Quentin ".len();
            s.edit_visit(&visit, |v| v.splice(Section::WhatMatters, inside, 0, "typed-inside "))?;
            s.edit_visit(&visit, |v| v.splice(Section::Goals, 0, 0, "Daily: "))
        })
        .unwrap();

    // Just before the redaction, the same search finds every probe in every place.
    for (what, found) in rig.scan_everywhere(&[&a, &b], PROBES, "before") {
        for probe in PROBES {
            let places = places_with(&found, probe);
            assert!(
                places.contains(&"automerge history".to_string()),
                "{what}: {probe} not found in its documents' history: {places:?}"
            );
            assert!(
                places.iter().any(|p| p == "file" || p == "rows"),
                "{what}: {probe} not found in the file: {places:?}"
            );
            if what.starts_with("phone") {
                assert!(
                    places.contains(&"fts5vocab".to_string()),
                    "{what}: {probe} not in the full-text vocabulary: {places:?}"
                );
            }
        }
    }
    for probe in PROBES {
        assert_eq!(searched(&a, probe), 1, "search finds {probe} before");
    }

    // The lead removes the passage.
    outpost_server::redaction::redact_passage(
        &rig.world.state.sync,
        &WorkerId::new("lead1").unwrap(),
        &visit,
        "what_matters",
        PASSAGE,
        "recorded on the wrong person's record",
        "",
    )
    .unwrap();

    sync(&a);
    assert_eq!(what_matters(&a, &visit), format!("{BEFORE}{AFTER}"));
    // B comes back: its edits outside the passage are carried onto the new document, the
    // word typed inside it is held for the lead, and none of the passage comes back.
    let outcome = b.device.sync_now(Duration::from_secs(30)).unwrap();
    assert!(outcome.complete, "{outcome:?}");
    assert_eq!(outcome.progress.held, 1);
    sync(&b);
    sync(&a);
    let expected = format!("Offline note. {BEFORE}{AFTER}");
    assert_eq!(what_matters(&b, &visit), expected);
    assert_eq!(what_matters(&a, &visit), expected);
    let goals = a
        .device
        .read(|s| Ok(s.visit(&visit)?.section(Section::Goals).to_string()))
        .unwrap();
    assert_eq!(goals, "Daily: Walk to the shop.");
    let held = outpost_server::redaction::held_edits(rig.world.storage.as_ref(), &visit).unwrap();
    assert_eq!(held.len(), 1);
    let (row, held) = &held[0];
    assert_eq!(
        row.device.as_str(),
        b.device.enrolment().unwrap().author.device.as_str()
    );
    assert_eq!(held.text, "typed-inside ");
    assert_eq!(
        held.at,
        BEFORE.chars().count(),
        "where the passage was, in the new text"
    );

    // Nowhere now: not in any database, backup, index, or history.
    for (what, found) in rig.scan_everywhere(&[&a, &b], PROBES, "after") {
        assert_gone(&found, &what);
    }
    for probe in PROBES {
        assert_eq!(searched(&a, probe), 0, "search finds {probe} after");
        assert_eq!(searched(&b, probe), 0, "search finds {probe} after");
    }
    // The audit says who, when and why, never the text.
    let log = rig.world.storage.audit_log(100).unwrap();
    let redaction = log.iter().find(|e| e.action == "redact").unwrap();
    assert_eq!(redaction.who, "lead1/server");
    assert!(redaction.detail.contains("wrong person"), "{}", redaction.detail);
    assert!(!PROBES.iter().any(|p| redaction.detail.contains(p)));
}
