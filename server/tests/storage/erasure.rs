//! Erasure in storage on every backend: a person's records go with everything listed from them,
//! tombstones stay so late arrivals are recognised, devices holding them are told until they
//! say they erased them, another person is untouched, and retention finds whose case closed
//! longer ago than their team keeps records.

// These run under #[test] wrappers that clippy's allow-unwrap-in-tests does not see through.
#![allow(clippy::unwrap_used)]

use outpost_server::storage::{AuditEntry, Role, ScopePolicy};

use crate::Backend;
use crate::documents::{NOW, add_team, add_worker, doc_write, docs, enrol, id, person_write, team};

fn audit(action: &str, subject: &str) -> AuditEntry {
    AuditEntry {
        at: NOW,
        who: "admin".into(),
        action: action.into(),
        subject: subject.into(),
        detail: "erasure on request".into(),
        from: String::new(),
    }
}

/// Team north with p1 (a visit and its review) and p2 (a visit), both pulled by Ann's device.
fn two_people(s: &Backend) -> outpost_server::storage::Device {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let ann = enrol(s, "ann");
    s.write(
        None,
        &docs(vec![
            person_write("p1", "north", &[]),
            doc_write("v1", "p1", "visit"),
            doc_write("v1.review", "p1", "review"),
            person_write("p2", "north", &[]),
            doc_write("v2", "p2", "visit"),
        ]),
    )
    .unwrap();
    assert_eq!(s.pull(&ann, 0, &[], usize::MAX, false).unwrap().entries.len(), 5);
    ann
}

fn erasing_a_person_removes_their_records_and_tells_each_device_until_it_has(s: &Backend) {
    let ann = two_people(s);
    let mut erased = s.erase(&id("p1"), &[], &audit("erase-person", "p1")).unwrap();
    erased.sort();
    assert_eq!(erased, [id("p1"), id("v1"), id("v1.review")]);
    for doc in ["p1", "v1", "v1.review"] {
        assert!(s.doc(&id(doc)).unwrap().is_none(), "{doc} is gone");
        assert_eq!(s.erased(doc).unwrap(), Some((id("p1"), true)), "{doc} has a tombstone");
    }
    assert!(s.person_team(&id("p1")).unwrap().is_none());
    assert!(s.doc(&id("v2")).unwrap().is_some(), "another person is untouched");
    assert_eq!(s.erased("v2").unwrap(), None);
    // Nothing of p1 is pulled again; the device is told to erase p1 until it says it has.
    let later = s.pull(&ann, 0, &[], usize::MAX, false).unwrap();
    assert!(later.entries.iter().all(|e| e.person == id("p2")), "{later:?}");
    assert_eq!(s.erasures_for(&ann.device).unwrap(), (vec![], vec![id("p1")]));
    s.erasures_done(&ann.device, &["p1".to_string()]).unwrap();
    assert_eq!(s.erasures_for(&ann.device).unwrap(), (vec![], vec![]));
    let log = s.audit_log(10).unwrap();
    assert!(log.iter().any(|e| e.action == "erase-person" && e.subject == "p1"));
}

fn removing_one_record_leaves_the_rest_of_the_person(s: &Backend) {
    let ann = two_people(s);
    let erased = s
        .erase(
            &id("p1"),
            &[id("v1"), id("v1.review"), id("v2")],
            &audit("remove-document", "v1"),
        )
        .unwrap();
    assert_eq!(erased.len(), 2, "v2 is not p1's, so it is not removed: {erased:?}");
    assert!(s.doc(&id("p1")).unwrap().is_some());
    assert!(s.doc(&id("v2")).unwrap().is_some());
    assert_eq!(s.erased("v1").unwrap(), Some((id("p1"), false)));
    assert_eq!(
        s.erasures_for(&ann.device).unwrap(),
        (vec![id("v1"), id("v1.review")], vec![])
    );
    s.erasures_done(&ann.device, &["v1".into(), "v1.review".into()])
        .unwrap();
    assert_eq!(s.erasures_for(&ann.device).unwrap(), (vec![], vec![]));
}

fn erasing_the_latest_entries_never_moves_the_log_head_back(s: &Backend) {
    let ann = two_people(s);
    let head = s.log_head().unwrap();
    let cursor = s.pull(&ann, 0, &[], usize::MAX, false).unwrap().cursor;
    // p2's entries are the log's latest: a device's cursor past what is left must still be
    // the log's own, not one from a restored server.
    s.erase(&id("p2"), &[], &audit("erase-person", "p2")).unwrap();
    assert_eq!(s.log_head().unwrap(), head);
    assert!(cursor <= s.log_head().unwrap());
    s.write(None, &docs(vec![doc_write("v3", "p1", "visit")])).unwrap();
    assert!(s.log_head().unwrap() > head, "new entries come after");
}

fn retention_finds_cases_closed_longer_ago_than_the_team_keeps(s: &Backend) {
    two_people(s);
    let year = 365 * 24 * 3600;
    s.close_case(&id("p1"), Some(NOW - 9 * year)).unwrap();
    s.close_case(&id("p2"), Some(NOW - 7 * year)).unwrap();
    assert!(s.past_retention(NOW).unwrap().is_empty(), "no policy, nothing is due");
    s.set_retention(&team("north"), Some(8)).unwrap();
    assert_eq!(s.past_retention(NOW).unwrap(), [(id("p1"), 8)]);
    s.close_case(&id("p1"), None).unwrap();
    assert!(s.past_retention(NOW).unwrap().is_empty(), "a reopened case is kept");
    assert!(s.set_retention(&team("nowhere"), Some(8)).is_err());
}

on_every_backend!(
    erasing_a_person_removes_their_records_and_tells_each_device_until_it_has,
    removing_one_record_leaves_the_rest_of_the_person,
    erasing_the_latest_entries_never_moves_the_log_head_back,
    retention_finds_cases_closed_longer_ago_than_the_team_keeps,
);
