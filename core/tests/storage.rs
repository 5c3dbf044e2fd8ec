//! Compaction and the bytes a store keeps on disk.
#![allow(clippy::unwrap_used)]

mod support;

use outpost_core::{Section, Store};
use support::{author, new_person, new_visit, open};

#[test]
fn compaction_replaces_changes_with_one_snapshot_and_keeps_the_document() {
    let mut t = open("w1");
    let person = t.store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let visit = t.store.create_visit(&new_visit(&person, "w1", 12)).unwrap();
    for (i, word) in "she would like to go back to the choir on Tuesdays"
        .split(' ')
        .enumerate()
    {
        let text = if i == 0 { word.to_string() } else { format!(" {word}") };
        let at = t
            .store
            .visit(&visit)
            .unwrap()
            .section(Section::WhatMatters)
            .chars()
            .count();
        t.store
            .edit_visit(&visit, |v| v.splice(Section::WhatMatters, at, 0, &text))
            .unwrap();
    }
    let before = t.store.storage_stats().unwrap();
    assert!(
        before.stored_changes >= 11,
        "each edit was stored as a change: {before:?}"
    );
    let heads = t.store.heads(&visit).unwrap();

    t.store.compact_all().unwrap();
    let after = t.store.storage_stats().unwrap();
    assert_eq!(after.stored_changes, 0);
    assert!(after.document_bytes < before.document_bytes, "{before:?} -> {after:?}");
    assert_eq!(t.store.heads(&visit).unwrap(), heads);

    // A fresh process reads the compacted document exactly as it was.
    let path = t.dir.path().join("outpost.sqlite3");
    drop(t.store);
    let mut store = Store::open(&path, author("w1", "w1-phone")).unwrap();
    assert_eq!(
        store.visit(&visit).unwrap().section(Section::WhatMatters),
        "she would like to go back to the choir on Tuesdays"
    );
    assert!(store.index_dump().unwrap().iter().any(|row| row.contains("choir")));
}

#[test]
fn a_long_typing_session_is_compacted_automatically() {
    let mut t = open("w1");
    let person = t.store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let visit = t.store.create_visit(&new_visit(&person, "w1", 13)).unwrap();
    for i in 0..300 {
        t.store
            .edit_visit(&visit, |v| v.splice(Section::Goals, i, 0, "x"))
            .unwrap();
    }
    let stats = t.store.storage_stats().unwrap();
    assert!(
        stats.stored_changes < 300,
        "changes were folded into a snapshot: {stats:?}"
    );
    assert_eq!(t.store.visit(&visit).unwrap().section(Section::Goals), "x".repeat(300));
}

#[test]
fn the_store_runs_with_wal_and_synchronous_full() {
    let t = open("w1");
    assert_eq!(t.store.synchronous_mode().unwrap(), 2, "2 is FULL");
    assert!(t.dir.path().join("outpost.sqlite3-wal").exists(), "journal_mode is WAL");
}
