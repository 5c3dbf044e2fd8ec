//! `Documents` on every backend: what a sync stores (all or nothing), who holds what, each
//! device's scope, reassignment; what devices pull is in `pull`. The fixtures at the top (teams,
//! enrolled devices, document writes) serve the pull and review tests too.

// These run under #[test] wrappers that clippy's allow-unwrap-in-tests does not see through.
#![allow(clippy::unwrap_used)]

#[path = "documents/pull.rs"]
mod pull;

use std::collections::HashSet;

use outpost_core::{ChangeHash, DocId, PersonId, TeamId, WorkerId};
use outpost_server::Error;
use outpost_server::storage::{
    ActorOwner, AuditEntry, Device, DocWrite, Outgoing, PersonScope, Pull, Role, ScopePolicy, StoredDoc, SyncWrite,
};

use crate::Backend;

pub const NOW: i64 = 1_700_000_000;

pub fn id(doc: &str) -> DocId {
    DocId::new(doc).unwrap()
}

pub fn team(team: &str) -> TeamId {
    TeamId::new(team).unwrap()
}

pub fn hash(n: u8) -> ChangeHash {
    ChangeHash([n; 32])
}

pub fn add_team(s: &Backend, name: &str, scope: ScopePolicy) {
    s.create_team(&team(name), name, scope).unwrap();
}

pub fn add_worker(s: &Backend, worker: &str, name: &str, role: Role, team_name: &str) {
    s.add_worker(&WorkerId::new(worker).unwrap(), name, role, &team(team_name))
        .unwrap();
}

/// Enrols a device `<worker>-phone` for a worker already added.
pub fn enrol(s: &Backend, worker: &str) -> Device {
    let code = format!("code-{worker}");
    s.add_enrolment_code(&WorkerId::new(worker).unwrap(), code.as_bytes(), NOW + 3600)
        .unwrap();
    let device = outpost_core::DeviceId::new(format!("{worker}-phone")).unwrap();
    s.enrol(
        code.as_bytes(),
        &device,
        "phone",
        format!("cred-{worker}").as_bytes(),
        NOW,
    )
    .unwrap()
}

/// A person's document, naming their team and allocated workers; its snapshot is longer than
/// its changes, as a document with history is.
pub fn person_write(person: &str, team_name: &str, allocated: &[&str]) -> DocWrite {
    DocWrite {
        person_scope: Some(PersonScope {
            team: team(team_name),
            allocated: allocated.iter().map(|w| WorkerId::new(*w).unwrap()).collect(),
        }),
        ..doc_write(person, person, "person")
    }
}

/// Another document of a person.
pub fn doc_write(doc: &str, person: &str, doc_type: &str) -> DocWrite {
    DocWrite {
        doc: id(doc),
        person: id(person),
        doc_type: doc_type.into(),
        heads: vec![hash(1)],
        snapshot: format!("the whole of {doc}, every change it ever had").into_bytes(),
        index_rows: Vec::new(),
        changes: format!("{doc} change").into_bytes(),
        person_scope: None,
        listing: None,
    }
}

pub fn docs(docs: Vec<DocWrite>) -> SyncWrite {
    SyncWrite {
        docs,
        ..SyncWrite::default()
    }
}

fn snapshot(doc: &str) -> Vec<u8> {
    doc_write(doc, doc, "any").snapshot
}

fn ids(entries: &[Outgoing]) -> Vec<&str> {
    entries.iter().map(|e| e.doc.as_str()).collect()
}

fn people(names: &[&str]) -> HashSet<PersonId> {
    names.iter().map(|p| id(p)).collect()
}

fn all(s: &Backend, device: &Device, cursor: u64) -> Pull {
    s.pull(device, cursor, &[], usize::MAX, false).unwrap()
}

/// An empty storage of the same kind as `s`.
fn another_like(s: &Backend) -> Backend {
    match s {
        Backend::Sqlite { .. } => Backend::sqlite(),
        Backend::Postgres { .. } => Backend::postgres(),
    }
}

fn the_epoch_is_kept_by_every_process_and_differs_between_databases(s: &Backend) {
    let epoch = s.epoch().unwrap();
    assert!(!epoch.is_empty());
    assert_eq!(s.reopen().epoch().unwrap(), epoch);
    assert_eq!(s.epoch().unwrap(), epoch, "asking again changes nothing");
    assert_ne!(another_like(s).epoch().unwrap(), epoch);
}

fn a_write_stores_each_document_and_returns_its_log_seq(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    assert_eq!(s.log_head().unwrap(), 0);
    assert_eq!(s.doc(&id("p1")).unwrap(), None);
    assert_eq!(s.person_team(&id("p1")).unwrap(), None);

    let seqs = s
        .write(
            None,
            &docs(vec![person_write("p1", "north", &[]), doc_write("v1", "p1", "visit")]),
        )
        .unwrap();
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1], "{seqs:?}");
    assert_eq!(s.log_head().unwrap(), seqs[1]);
    assert_eq!(s.person_team(&id("p1")).unwrap(), Some(team("north")));
    assert_eq!(
        s.doc(&id("v1")).unwrap(),
        Some(StoredDoc {
            person: id("p1"),
            doc_type: "visit".into(),
            heads: vec![hash(1)],
            snapshot: snapshot("v1"),
        })
    );

    // A later write replaces the heads and snapshot and appends to the log; the person and type
    // stay as first stored.
    let later = DocWrite {
        heads: vec![hash(3), hash(2)],
        snapshot: b"v1 again".to_vec(),
        ..doc_write("v1", "p1", "changed")
    };
    let again = s.write(None, &docs(vec![later])).unwrap();
    assert!(again[0] > seqs[1]);
    assert_eq!(s.log_head().unwrap(), again[0]);
    let stored = s.doc(&id("v1")).unwrap().unwrap();
    assert_eq!(stored.heads, [hash(2), hash(3)], "kept in order");
    assert_eq!(stored.snapshot, b"v1 again");
    assert_eq!(stored.doc_type, "visit");
    assert_eq!(s.reopen().doc(&id("v1")).unwrap(), Some(stored));
}

fn a_failed_write_stores_nothing(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    // The second document names a person the server does not know.
    let write = docs(vec![
        person_write("p1", "north", &[]),
        doc_write("v1", "ghost", "visit"),
    ]);
    assert!(s.write(None, &write).is_err());
    assert_eq!(s.doc(&id("p1")).unwrap(), None);
    assert_eq!(s.person_team(&id("p1")).unwrap(), None);
    assert_eq!(s.log_head().unwrap(), 0);
    // And the storage still writes.
    assert_eq!(
        s.write(None, &docs(vec![person_write("p1", "north", &[])]))
            .unwrap()
            .len(),
        1
    );
}

fn a_write_merged_onto_heads_since_replaced_is_refused_whole(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    s.write(None, &docs(vec![person_write("p1", "north", &[])])).unwrap();
    let v1 = DocWrite {
        heads: vec![hash(2), hash(3)],
        ..doc_write("v1", "p1", "visit")
    };
    // A document new to the server is expected to be absent.
    let created = SyncWrite {
        expected: vec![(id("v1"), vec![])],
        ..docs(vec![v1])
    };
    s.write(None, &created).unwrap();
    let head = s.log_head().unwrap();

    // Another process wrote v1 since this write read it: nothing of it is stored.
    let stale = SyncWrite {
        expected: vec![(id("p1"), vec![hash(1)]), (id("v1"), vec![hash(2)])],
        ..docs(vec![
            person_write("p2", "north", &[]),
            DocWrite {
                snapshot: b"merged onto old heads".to_vec(),
                ..doc_write("v1", "p1", "visit")
            },
        ])
    };
    let err = s.reopen().write(None, &stale).unwrap_err();
    assert!(matches!(&err, Error::Stale(doc) if doc == "v1"), "{err}");
    assert_eq!(s.log_head().unwrap(), head);
    assert_eq!(s.doc(&id("v1")).unwrap().unwrap().snapshot, snapshot("v1"));
    assert_eq!(s.person_team(&id("p2")).unwrap(), None);

    for (doc, heads) in [("p1", vec![]), ("ghost", vec![hash(1)])] {
        let write = SyncWrite {
            expected: vec![(id(doc), heads)],
            ..SyncWrite::default()
        };
        let err = s.write(None, &write).unwrap_err();
        assert!(matches!(&err, Error::Stale(stale) if stale == doc), "{err}");
    }
    // The same heads in another order are the same heads.
    let fresh = SyncWrite {
        expected: vec![(id("v1"), vec![hash(3), hash(2)])],
        ..docs(vec![doc_write("v1", "p1", "visit")])
    };
    assert_eq!(s.write(None, &fresh).unwrap(), [head + 1]);
}

fn a_write_registers_actors_and_appends_its_audit_entries(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    let entry = AuditEntry {
        at: NOW,
        who: "ann".into(),
        action: "sync".into(),
        subject: "p1".into(),
        detail: "1 document".into(),
        from: "127.0.0.1".into(),
    };
    let write = SyncWrite {
        docs: vec![person_write("p1", "north", &[])],
        actors: vec![b"actor-1".to_vec()],
        audit: vec![entry.clone()],
        ..SyncWrite::default()
    };
    s.write(Some(&phone.device), &write).unwrap();
    assert_eq!(
        s.actor_owner(b"actor-1").unwrap(),
        Some(ActorOwner::Device(phone.device.clone()))
    );
    assert_eq!(s.audit_log(10).unwrap(), [entry]);

    // An actor keeps its first owner; one first seen in a write without a device is the server's.
    let server = SyncWrite {
        actors: vec![b"actor-1".to_vec(), b"actor-2".to_vec()],
        ..SyncWrite::default()
    };
    assert!(s.write(None, &server).unwrap().is_empty());
    assert_eq!(
        s.actor_owner(b"actor-1").unwrap(),
        Some(ActorOwner::Device(phone.device.clone()))
    );
    assert_eq!(s.actor_owner(b"actor-2").unwrap(), Some(ActorOwner::Server));
}

fn a_device_holds_what_it_sent_until_it_drops_the_person(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    assert!(s.held(&phone.device).unwrap().is_empty());

    let sent = docs(vec![
        person_write("p1", "north", &[]),
        person_write("p2", "north", &[]),
        doc_write("v1", "p1", "visit"),
    ]);
    s.write(Some(&phone.device), &sent).unwrap();
    assert_eq!(s.held(&phone.device).unwrap(), people(&["p1", "p2"]));

    let dropped = SyncWrite {
        dropped: vec![id("p1")],
        ..SyncWrite::default()
    };
    s.write(Some(&phone.device), &dropped).unwrap();
    assert_eq!(s.held(&phone.device).unwrap(), people(&["p2"]));
    // What the server writes itself is held by no device.
    s.write(None, &docs(vec![person_write("p3", "north", &[])])).unwrap();
    assert_eq!(s.reopen().held(&phone.device).unwrap(), people(&["p2"]));
}

fn scope_follows_the_team_policy_the_allocations_and_the_role(s: &Backend) {
    add_team(s, "north", ScopePolicy::Allocated);
    add_team(s, "south", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    add_worker(s, "lee", "Lee", Role::Lead, "north");
    add_worker(s, "sam", "Sam", Role::Worker, "south");
    let (ann, lee, sam) = (enrol(s, "ann"), enrol(s, "lee"), enrol(s, "sam"));
    let write = docs(vec![
        person_write("p1", "north", &["ann"]),
        person_write("p2", "north", &[]),
        // Allocated to ann, but in another team: not hers.
        person_write("p3", "south", &["ann"]),
    ]);
    s.write(None, &write).unwrap();

    assert_eq!(s.scope(&ann).unwrap(), people(&["p1"]));
    assert_eq!(
        s.scope(&lee).unwrap(),
        people(&["p1", "p2"]),
        "a lead sees the whole team"
    );
    assert_eq!(s.scope(&sam).unwrap(), people(&["p3"]));

    s.write(None, &docs(vec![person_write("p2", "north", &["lee", "ann"])]))
        .unwrap();
    assert_eq!(s.scope(&ann).unwrap(), people(&["p1", "p2"]));
    s.write(None, &docs(vec![person_write("p1", "north", &[])])).unwrap();
    assert_eq!(s.scope(&ann).unwrap(), people(&["p2"]));
    let whole_team = Device {
        scope: ScopePolicy::Team,
        ..ann
    };
    assert_eq!(s.scope(&whole_team).unwrap(), people(&["p1", "p2"]));
}

fn reassigning_a_person_sends_their_documents_to_the_new_team(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_team(s, "south", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    add_worker(s, "sam", "Sam", Role::Worker, "south");
    let (ann, sam) = (enrol(s, "ann"), enrol(s, "sam"));
    s.write(
        None,
        &docs(vec![person_write("p1", "north", &[]), doc_write("v1", "p1", "visit")]),
    )
    .unwrap();
    let sam_before = all(s, &sam, 0);
    assert!(sam_before.entries.is_empty());

    s.reopen().reassign(&id("p1"), &team("south")).unwrap();
    assert_eq!(s.person_team(&id("p1")).unwrap(), Some(team("south")));
    assert!(s.scope(&ann).unwrap().is_empty());
    assert_eq!(s.scope(&sam).unwrap(), people(&["p1"]));
    let moved = all(s, &sam, sam_before.cursor);
    assert_eq!(ids(&moved.entries), ["p1", "v1"]);
    assert_eq!(moved.entries[0].bytes, snapshot("p1"));

    let head = s.log_head().unwrap();
    let err = s.reassign(&id("ghost"), &team("south")).unwrap_err();
    assert!(matches!(&err, Error::NotFound(m) if m.contains("ghost")), "{err}");
    assert_eq!(s.log_head().unwrap(), head);
}

fn people_docs_gives_each_persons_documents_by_id(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    let write = docs(vec![
        person_write("p1", "north", &[]),
        doc_write("v1", "p1", "visit"),
        doc_write("V1", "p1", "visit"),
        person_write("p2", "north", &[]),
        doc_write("a2", "p2", "assessment"),
    ]);
    s.write(None, &write).unwrap();

    let found = s.people_docs(&[id("p2"), id("p1")]).unwrap();
    let found_ids: Vec<&str> = found.iter().map(|(doc, _)| doc.as_str()).collect();
    assert_eq!(found_ids, ["a2", "p2", "V1", "p1", "v1"]);
    assert_eq!(found[0].1, s.doc(&id("a2")).unwrap().unwrap());
    assert_eq!(found[0].1.doc_type, "assessment");
    assert!(s.people_docs(&[]).unwrap().is_empty());
    assert!(s.people_docs(&[id("ghost")]).unwrap().is_empty());
}

on_every_backend!(
    the_epoch_is_kept_by_every_process_and_differs_between_databases,
    a_write_stores_each_document_and_returns_its_log_seq,
    a_failed_write_stores_nothing,
    a_write_merged_onto_heads_since_replaced_is_refused_whole,
    a_write_registers_actors_and_appends_its_audit_entries,
    a_device_holds_what_it_sent_until_it_drops_the_person,
    scope_follows_the_team_policy_the_allocations_and_the_role,
    reassigning_a_person_sends_their_documents_to_the_new_team,
    people_docs_gives_each_persons_documents_by_id,
);
