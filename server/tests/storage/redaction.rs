//! Redaction in storage on every backend: a redacted document replaces its history (older log
//! entries go; a device holding the old version is sent the new one whole, with what it needs
//! to carry its edits), and edits held back after one are kept until a lead settles them, once.

// These run under #[test] wrappers that clippy's allow-unwrap-in-tests does not see through.
#![allow(clippy::unwrap_used)]

use outpost_server::storage::{DocWrite, HeldRow, Role, ScopePolicy, SyncWrite};

use crate::Backend;
use crate::documents::{NOW, add_team, add_worker, doc_write, docs, enrol, hash, id, person_write};

fn a_redaction_replaces_the_history_and_devices_holding_it_get_the_new_document(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    add_worker(s, "bob", "Bob", Role::Worker, "north");
    let ann = enrol(s, "ann");
    s.write(
        None,
        &docs(vec![person_write("p1", "north", &[]), doc_write("v1", "p1", "visit")]),
    )
    .unwrap();
    let held_from = s.pull(&ann, 0, &[], usize::MAX, false).unwrap().cursor;
    let typed = DocWrite {
        changes: b"the passage typed".to_vec(),
        ..doc_write("v1", "p1", "visit")
    };
    s.write(None, &docs(vec![typed])).unwrap();

    let recreated = DocWrite {
        heads: vec![hash(9)],
        snapshot: b"v1 re-created without the passage".to_vec(),
        changes: Vec::new(),
        ..doc_write("v1", "p1", "visit")
    };
    let redacted = SyncWrite {
        redactions: vec![(id("v1"), b"what devices need".to_vec())],
        ..docs(vec![recreated])
    };
    let seq = s.write(None, &redacted).unwrap()[0];
    assert_eq!(s.doc(&id("v1")).unwrap().unwrap().heads, vec![hash(9)]);

    // Ann held the old version: she gets the new one whole, marked as a replacement.
    let pull = s.pull(&ann, held_from, &[], usize::MAX, false).unwrap();
    assert_eq!(pull.entries.len(), 1, "{pull:?}");
    let entry = &pull.entries[0];
    assert_eq!((entry.doc.as_str(), entry.seq), ("v1", seq));
    assert_eq!(entry.bytes, b"v1 re-created without the passage");
    assert_eq!(entry.replaced.as_deref(), Some(&b"what devices need"[..]));
    assert_eq!(
        entry.index.as_ref().map(|(heads, _)| heads.clone()),
        Some(vec![hash(9)])
    );
    let again = s.pull(&ann, pull.cursor, &[], usize::MAX, false).unwrap();
    assert!(again.entries.is_empty(), "sent once: {again:?}");

    // Bob never held it: from the start of the log, only the redaction's entry is left of v1,
    // and it is a new document to him, not a replacement.
    let bob = enrol(s, "bob");
    let pull = s.pull(&bob, 0, &[], usize::MAX, false).unwrap();
    let v1: Vec<_> = pull.entries.iter().filter(|e| e.doc == id("v1")).collect();
    assert_eq!(v1.len(), 1, "{pull:?}");
    assert_eq!(v1[0].seq, seq, "the older log entries were deleted");
    assert_eq!(v1[0].bytes, b"v1 re-created without the passage");
    assert_eq!(v1[0].replaced, None);
}

fn held_edits_are_kept_until_a_lead_settles_each_once(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let ann = enrol(s, "ann");
    s.write(
        None,
        &docs(vec![
            person_write("p1", "north", &[]),
            doc_write("v1", "p1", "visit"),
            doc_write("v2", "p1", "visit"),
        ]),
    )
    .unwrap();
    let row = |doc: &str, held: &[u8], at: i64| HeldRow {
        id: 0,
        doc: id(doc),
        device: ann.device.clone(),
        held: held.to_vec(),
        received_at: at,
    };
    let write = SyncWrite {
        held: vec![
            row("v1", b"first", NOW),
            row("v2", b"other", NOW),
            row("v1", b"second", NOW + 1),
        ],
        ..SyncWrite::default()
    };
    s.write(Some(&ann.device), &write).unwrap();

    let held = s.held_edits(&id("v1")).unwrap();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held[0].id > 0 && held[0].id < held[1].id, "ids given, oldest first");
    for (got, want) in held
        .iter()
        .zip([row("v1", b"first", NOW), row("v1", b"second", NOW + 1)])
    {
        assert_eq!(HeldRow { id: 0, ..got.clone() }, want);
    }
    assert!(s.held_edits(&id("p1")).unwrap().is_empty());
    let other = s.held_edits(&id("v2")).unwrap()[0].id;

    // Only as the document it belongs to.
    assert!(!s.settle_held(other, &id("v1")).unwrap());
    assert!(s.settle_held(held[0].id, &id("v1")).unwrap());
    assert!(
        !s.reopen().settle_held(held[0].id, &id("v1")).unwrap(),
        "a second settle, from any process, finds it gone"
    );
    assert_eq!(s.held_edits(&id("v1")).unwrap(), vec![held[1].clone()]);
    assert_eq!(s.held_edits(&id("v2")).unwrap().len(), 1);
}

on_every_backend!(
    a_redaction_replaces_the_history_and_devices_holding_it_get_the_new_document,
    held_edits_are_kept_until_a_lead_settles_each_once,
);
