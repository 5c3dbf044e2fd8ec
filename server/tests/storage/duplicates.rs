//! Merges of duplicate people on every backend: recorded once, found from either side, the
//! merged-away person off the lead's caseload, and a record re-pointed at the survivor taking its
//! listing and what devices hold of it along.

// These run under #[test] wrappers that clippy's allow-unwrap-in-tests does not see through.
#![allow(clippy::unwrap_used)]

use chrono::{NaiveDate, TimeZone, Utc};
use outpost_core::WorkerId;
use outpost_core::sync::Listing;
use outpost_server::Error;
use outpost_server::storage::{AuditEntry, DocWrite, Merge, Role, ScopePolicy};

use crate::Backend;
use crate::documents::{NOW, add_team, add_worker, doc_write, docs, enrol, id, person_write, team};

fn merge(duplicate: &str, survivor: &str) -> Merge {
    Merge {
        duplicate: id(duplicate),
        survivor: id(survivor),
        by: WorkerId::new("lead").unwrap(),
        at: NOW,
    }
}

fn audit(subject: &str) -> AuditEntry {
    AuditEntry {
        at: NOW,
        who: "lead/server".into(),
        action: "merge-people".into(),
        subject: subject.into(),
        detail: "merged into p1".into(),
        from: String::new(),
    }
}

fn visit(doc: &str, person: &str) -> DocWrite {
    DocWrite {
        listing: Some(Listing::Visit {
            worker: "ann".into(),
            at: Utc.timestamp_opt(NOW, 0).unwrap(),
            safeguarding: false,
            actions: Vec::new(),
        }),
        ..doc_write(doc, person, "visit")
    }
}

fn today() -> NaiveDate {
    Utc.timestamp_opt(NOW, 0).unwrap().date_naive()
}

fn a_merge_is_recorded_once_and_found_from_either_side(s: &Backend) {
    s.record_merge(&merge("p2", "p1"), &audit("p2")).unwrap();
    s.record_merge(&merge("p3", "p1"), &audit("p3")).unwrap();
    assert_eq!(s.merged_into(&id("p2")).unwrap(), Some(merge("p2", "p1")));
    assert_eq!(s.merged_into(&id("p1")).unwrap(), None);
    assert_eq!(
        s.merged_from(&id("p1")).unwrap(),
        vec![merge("p2", "p1"), merge("p3", "p1")]
    );
    let again = s.record_merge(&merge("p2", "p3"), &audit("p2")).unwrap_err();
    assert!(matches!(again, Error::Conflict(_)), "{again}");
    assert_eq!(s.merged_into(&id("p2")).unwrap(), Some(merge("p2", "p1")), "unchanged");
    let log = s.audit_log(10).unwrap();
    assert_eq!(log.iter().filter(|e| e.action == "merge-people").count(), 2);
}

fn a_record_re_pointed_takes_its_listing_and_holders_along(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let ann = enrol(s, "ann");
    s.write(
        None,
        &docs(vec![
            person_write("p1", "north", &[]),
            person_write("p2", "north", &[]),
            visit("v2", "p2"),
        ]),
    )
    .unwrap();
    assert_eq!(s.pull(&ann, 0, &[], usize::MAX, false).unwrap().entries.len(), 3);
    let mut caseload: Vec<String> = s
        .caseload(&[team("north")], today())
        .unwrap()
        .into_iter()
        .map(|e| e.person.to_string())
        .collect();
    caseload.sort();
    assert_eq!(caseload, ["p1", "p2"]);

    s.record_merge(&merge("p2", "p1"), &audit("p2")).unwrap();
    s.write(None, &docs(vec![visit("v2", "p1")])).unwrap();
    assert_eq!(s.doc(&id("v2")).unwrap().unwrap().person, id("p1"));
    let of = |person: &str| -> Vec<String> {
        s.people_docs(&[id(person)])
            .unwrap()
            .into_iter()
            .map(|(doc, _)| doc.to_string())
            .collect()
    };
    assert_eq!(of("p1"), ["p1", "v2"]);
    assert_eq!(of("p2"), ["p2"]);
    let listed: Vec<String> = s
        .person_visits(&id("p1"))
        .unwrap()
        .into_iter()
        .map(|v| v.visit.to_string())
        .collect();
    assert_eq!(listed, ["v2"]);
    assert!(s.person_visits(&id("p2")).unwrap().is_empty());
    assert!(s.held(&ann.device).unwrap().contains(&id("p1")));
    let caseload: Vec<String> = s
        .caseload(&[team("north")], today())
        .unwrap()
        .into_iter()
        .map(|e| e.person.to_string())
        .collect();
    assert_eq!(caseload, ["p1"], "the merged-away person is off the caseload");
    // The device that held v2 gets the change, under the survivor.
    let pulled = s.pull(&ann, 3, &[], usize::MAX, false).unwrap();
    assert!(
        pulled.entries.iter().any(|e| e.doc == id("v2") && e.person == id("p1")),
        "{pulled:?}"
    );
}

on_every_backend!(
    a_merge_is_recorded_once_and_found_from_either_side,
    a_record_re_pointed_takes_its_listing_and_holders_along,
);
