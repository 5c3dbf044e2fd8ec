//! A store written by every earlier schema version opens with this build and keeps every document.
#![allow(clippy::unwrap_used)]

mod support;

use automerge::AutoCommit;
use outpost_core::{Document, Error, ReviewState, Section, Store, WorkerId, schema};
use rusqlite::{Connection, params};
use support::{author, new_person, new_visit};

/// Writes documents the way version 1 stored them: a snapshot or a run of changes, and heads.
fn write_v1(conn: &Connection, doc: &mut Document, as_changes: bool) {
    let saved = doc.save();
    let mut loaded = AutoCommit::load(&saved).unwrap();
    let mut heads: Vec<_> = loaded.get_heads();
    heads.sort();
    let heads: Vec<u8> = heads.iter().flat_map(|h| h.0).collect();
    if as_changes {
        conn.execute(
            "INSERT INTO documents (doc_id, snapshot, heads) VALUES (?1, NULL, ?2)",
            params![doc.id().as_str(), heads],
        )
        .unwrap();
        for change in loaded.get_changes(&[]) {
            conn.execute(
                "INSERT INTO changes (doc_id, hash, data) VALUES (?1, ?2, ?3)",
                params![doc.id().as_str(), change.hash().0.as_slice(), change.raw_bytes()],
            )
            .unwrap();
        }
    } else {
        conn.execute(
            "INSERT INTO documents (doc_id, snapshot, heads) VALUES (?1, ?2, ?3)",
            params![doc.id().as_str(), saved, heads],
        )
        .unwrap();
    }
}

#[test]
fn a_version_1_store_upgrades_keeps_every_document_and_builds_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite3");
    let writer = author("w1", "w1-phone");
    let mut person = Document::new_person(&writer, &new_person("Ann Lee", &["w1"])).unwrap();
    let (mut visit, mut review) = Document::new_visit(&writer, &new_visit(person.id(), "w1", 11)).unwrap();
    visit
        .edit_visit(|v| v.splice(Section::WhatMatters, 0, 0, "Her grandson's wedding"))
        .unwrap();
    {
        let mut conn = Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, 1).unwrap();
        write_v1(&conn, &mut person, false);
        write_v1(&conn, &mut visit, true);
        write_v1(&conn, &mut review, false);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, 1);
    }

    let mut store = Store::open(&path, writer).unwrap();
    assert_eq!(
        store.visit(visit.id()).unwrap().section(Section::WhatMatters),
        "Her grandson's wedding"
    );
    assert_eq!(store.person(person.id()).unwrap().name.value, "Ann Lee");
    // The index the upgrade added was built from the documents already there.
    let caseload = store.caseload(&WorkerId::new("w1").unwrap()).unwrap();
    assert_eq!(caseload.len(), 1);
    assert_eq!(&caseload[0].person, person.id());
    assert_eq!(store.visits_in_review_state(ReviewState::Draft).unwrap().len(), 1);
    assert_eq!(store.search("wedding", 10).unwrap().len(), 1);
    // And the upgraded store takes new writes.
    store
        .edit_visit(visit.id(), |v| v.splice(Section::Goals, 0, 0, "Dance"))
        .unwrap();
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, schema::CURRENT_VERSION);
}

#[test]
fn every_version_upgrades_to_current_and_reopening_is_idempotent() {
    for from in 0..=schema::CURRENT_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        {
            let mut conn = Connection::open(&path).unwrap();
            schema::migrate_to(&mut conn, from).unwrap();
        }
        let mut store = Store::open(&path, author("w1", "p")).unwrap();
        let id = store.create_person(&new_person("Bea", &["w1"])).unwrap();
        drop(store);
        let mut store = Store::open(&path, author("w1", "p")).unwrap();
        assert_eq!(
            store.person(&id).unwrap().name.value,
            "Bea",
            "upgraded from version {from}"
        );
    }
}

#[test]
fn a_store_from_a_newer_app_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.sqlite3");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = Store::open(&path, author("w1", "p")).unwrap_err();
    assert!(matches!(err, Error::SchemaTooNew { found: 99, .. }), "{err}");
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 99);
}
