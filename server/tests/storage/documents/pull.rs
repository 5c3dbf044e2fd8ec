//! What each device pulls from the log: whole documents it lacks, changes to those it holds,
//! within its scope and its byte budget, and never an entry skipped while other processes write.

use std::collections::HashSet;
use std::thread;

use outpost_core::DocId;
use outpost_server::storage::{AuditEntry, DocWrite, Outgoing, Pull, Role, ScopePolicy, SyncWrite};

use super::{NOW, add_team, add_worker, all, doc_write, docs, enrol, hash, id, ids, people, person_write, snapshot};
use crate::Backend;

fn a_pull_sends_a_new_document_whole_then_only_its_changes(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    let indexed = DocWrite {
        index_rows: b"rows".to_vec(),
        ..person_write("p1", "north", &[])
    };
    let first = s.write(None, &docs(vec![indexed])).unwrap()[0];

    let pull = s.pull(&phone, 0, &[], usize::MAX, true).unwrap();
    let whole = Outgoing {
        seq: first,
        doc: id("p1"),
        person: id("p1"),
        bytes: snapshot("p1"),
        index: Some((vec![hash(1)], b"rows".to_vec())),
        replaced: None,
    };
    assert_eq!(
        pull,
        Pull {
            entries: vec![whole.clone()],
            cursor: first,
            more: false,
        }
    );
    assert_eq!(s.held(&phone.device).unwrap(), people(&["p1"]));

    let edit = DocWrite {
        changes: b"edit".to_vec(),
        ..doc_write("p1", "p1", "person")
    };
    let second = s.write(None, &docs(vec![edit])).unwrap()[0];
    let pull = s.pull(&phone, first, &[], usize::MAX, true).unwrap();
    assert_eq!(pull.cursor, second);
    assert_eq!(pull.entries.len(), 1);
    assert_eq!(
        (pull.entries[0].seq, &pull.entries[0].bytes),
        (second, &b"edit".to_vec())
    );
    assert_eq!(pull.entries[0].index, None, "changes carry no index");

    let nothing = all(s, &phone, second);
    assert_eq!(
        (nothing.entries.len(), nothing.cursor, nothing.more),
        (0, second, false)
    );
    // A device asking from the start again, having been sent the document since, gets it whole
    // (without index rows unless asked for them).
    let again = all(s, &phone, 0);
    assert_eq!(again.entries, [Outgoing { index: None, ..whole }]);
    assert_eq!(again.cursor, second);
}

fn a_pull_leaves_out_the_entries_of_the_same_sync(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    let mine = DocWrite {
        changes: b"mine".to_vec(),
        ..person_write("p1", "north", &[])
    };
    let own = s.write(Some(&phone.device), &docs(vec![mine])).unwrap()[0];
    let theirs = DocWrite {
        changes: b"theirs".to_vec(),
        ..doc_write("p1", "p1", "person")
    };
    let other = s.write(None, &docs(vec![theirs])).unwrap()[0];

    let pull = s.pull(&phone, 0, &[own], usize::MAX, false).unwrap();
    assert_eq!(ids(&pull.entries), ["p1"]);
    assert_eq!(
        (pull.entries[0].seq, pull.entries[0].bytes.as_slice()),
        (own, &b"theirs"[..])
    );
    assert_eq!(all(s, &phone, 0).entries[0].bytes, b"minetheirs");
    // Nothing left to send is no entry at all, and the cursor still moves on.
    let none = s.pull(&phone, 0, &[own, other], usize::MAX, false).unwrap();
    assert_eq!((none.entries.len(), none.cursor), (0, other));
}

fn a_pull_sends_the_snapshot_when_the_changes_outgrow_it(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    let write = DocWrite {
        snapshot: b"small".to_vec(),
        changes: b"a long run of small changes".to_vec(),
        ..person_write("p1", "north", &[])
    };
    s.write(Some(&phone.device), &docs(vec![write])).unwrap();
    assert_eq!(all(s, &phone, 0).entries[0].bytes, b"small");
}

fn a_pull_stops_at_its_byte_budget_and_resumes_there(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    let write = docs(vec![
        person_write("p1", "north", &[]),
        doc_write("v1", "p1", "visit"),
        doc_write("v2", "p1", "visit"),
    ]);
    let seqs = s.write(None, &write).unwrap();

    let nothing = s.pull(&phone, 0, &[], 0, false).unwrap();
    assert_eq!((nothing.entries.len(), nothing.cursor, nothing.more), (0, 0, true));
    let mut cursor = 0;
    for (doc, seq) in ["p1", "v1"].into_iter().zip(&seqs) {
        let pull = s.pull(&phone, cursor, &[], 1, false).unwrap();
        assert_eq!(ids(&pull.entries), [doc]);
        assert_eq!((pull.cursor, pull.more), (*seq, true));
        cursor = pull.cursor;
    }
    let last = s.pull(&phone, cursor, &[], 1, false).unwrap();
    assert_eq!(ids(&last.entries), ["v2"]);
    assert_eq!((last.cursor, last.more), (seqs[2], false));
    // A budget the first document does not reach sends the second too.
    let budget = snapshot("p1").len() + 1;
    assert_eq!(
        ids(&s.pull(&phone, 0, &[], budget, false).unwrap().entries),
        ["p1", "v1"]
    );
}

/// The index rows sent beside whole documents count against the budget as the documents do.
fn a_pulls_budget_counts_the_index_rows_sent(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    let indexed = |doc: DocWrite| DocWrite {
        index_rows: vec![7; 1000],
        ..doc
    };
    let write = docs(vec![
        indexed(person_write("p1", "north", &[])),
        indexed(doc_write("v1", "p1", "visit")),
    ]);
    s.write(None, &write).unwrap();
    // Past the person's snapshot, short of it with its rows: unindexed, both fit; indexed, one.
    let budget = snapshot("p1").len() + 1;
    assert_eq!(
        ids(&s.pull(&phone, 0, &[], budget, false).unwrap().entries),
        ["p1", "v1"]
    );
    let pull = s.pull(&phone, 0, &[], budget, true).unwrap();
    assert_eq!(ids(&pull.entries), ["p1"]);
    assert!(pull.more);
}

/// More documents than PostgreSQL reads in one chunk (128), cut by the budget part-way through a
/// chunk: each is sent once, in log order, whole until the device holds it and then as changes.
fn a_pull_of_hundreds_of_documents_sends_each_once_whole_then_as_changes(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    let visits: Vec<String> = (0..300).map(|i| format!("v{i:03}")).collect();
    s.write(None, &docs(vec![person_write("p1", "north", &[])])).unwrap();
    let written = docs(visits.iter().map(|v| doc_write(v, "p1", "visit")).collect());
    let seqs = s.write(None, &written).unwrap();
    assert_eq!(seqs.len(), 300);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "appended in order: {seqs:?}");

    // A budget the person and 199 visits fill: the first pull stops after them, in the second
    // chunk.
    let budget = snapshot("p1").len() + visits[..199].iter().map(|v| snapshot(v).len()).sum::<usize>();
    let first = s.pull(&phone, 0, &[], budget, false).unwrap();
    let mut expected = vec!["p1"];
    expected.extend(visits[..199].iter().map(String::as_str));
    assert_eq!(ids(&first.entries), expected);
    assert!(first.more);
    assert_eq!(first.cursor, seqs[198]);
    assert!(
        first.entries[1..]
            .iter()
            .zip(&visits)
            .all(|(e, v)| e.bytes == snapshot(v))
    );
    let rest = all(s, &phone, first.cursor);
    assert_eq!(
        ids(&rest.entries),
        visits[199..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(!rest.more);
    assert_eq!(rest.cursor, seqs[299]);

    // Edits to visits on either side of the cut reach it as changes.
    let edited = ["v001", "v150", "v299"];
    let edits = edited.iter().map(|v| DocWrite {
        changes: format!("{v} edited").into_bytes(),
        ..doc_write(v, "p1", "visit")
    });
    s.write(None, &docs(edits.collect())).unwrap();
    let changes = all(s, &phone, rest.cursor);
    assert_eq!(ids(&changes.entries), edited);
    for (entry, v) in changes.entries.iter().zip(edited) {
        assert_eq!(entry.bytes, format!("{v} edited").into_bytes());
    }
}

fn a_pull_sends_only_the_people_in_the_devices_scope(s: &Backend) {
    add_team(s, "north", ScopePolicy::Allocated);
    add_team(s, "south", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    add_worker(s, "sam", "Sam", Role::Worker, "south");
    let (ann, sam) = (enrol(s, "ann"), enrol(s, "sam"));
    let write = docs(vec![
        person_write("p1", "north", &["ann"]),
        person_write("p2", "north", &[]),
        person_write("p3", "south", &[]),
        doc_write("v1", "p1", "visit"),
        doc_write("v2", "p2", "visit"),
    ]);
    let head = *s.write(None, &write).unwrap().last().unwrap();

    let pull = all(s, &ann, 0);
    assert_eq!(ids(&pull.entries), ["p1", "v1"]);
    assert_eq!(pull.cursor, head, "the entries it may not have are passed over");
    assert_eq!(ids(&all(s, &sam, 0).entries), ["p3"]);
    assert_eq!(s.held(&ann.device).unwrap(), people(&["p1"]));
}

fn a_newly_allocated_person_reaches_the_worker_whole(s: &Backend) {
    add_team(s, "north", ScopePolicy::Allocated);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    add_worker(s, "bob", "Bob", Role::Worker, "north");
    let (ann, bob) = (enrol(s, "ann"), enrol(s, "bob"));
    let write = docs(vec![
        person_write("p1", "north", &["bob"]),
        doc_write("v1", "p1", "visit"),
        doc_write("V2", "p1", "visit"),
    ]);
    s.write(None, &write).unwrap();
    let ann_before = all(s, &ann, 0);
    assert!(ann_before.entries.is_empty());
    let bob_before = all(s, &bob, 0);
    assert_eq!(ids(&bob_before.entries), ["p1", "v1", "V2"]);

    s.write(None, &docs(vec![person_write("p1", "north", &["bob", "ann"])]))
        .unwrap();
    // The person's other documents come first, by id in byte order, then the person document.
    let gained = all(s, &ann, ann_before.cursor);
    assert_eq!(ids(&gained.entries), ["V2", "v1", "p1"]);
    for entry in &gained.entries {
        assert_eq!(entry.bytes, snapshot(entry.doc.as_str()), "{} whole", entry.doc);
    }
    // Bob already holds them: he only gets the person document's changes.
    let kept = all(s, &bob, bob_before.cursor);
    assert_eq!(ids(&kept.entries), ["p1"]);
    assert_eq!(kept.entries[0].bytes, b"p1 change");
    // The same allocation written again is no change of scope.
    let head = s.log_head().unwrap();
    let same = s
        .write(None, &docs(vec![person_write("p1", "north", &["ann", "bob"])]))
        .unwrap();
    assert_eq!(same, [head + 1]);
}

fn documents_marked_held_are_sent_as_changes(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    let first = s.write(None, &docs(vec![person_write("p1", "north", &[])])).unwrap()[0];
    assert_eq!(all(s, &phone, 0).entries[0].bytes, snapshot("p1"));
    let edit = DocWrite {
        changes: b"edit".to_vec(),
        ..doc_write("p1", "p1", "person")
    };
    s.write(None, &docs(vec![edit])).unwrap();

    // Restored from a backup to cursor 0, the device was sent the document after that: whole.
    assert_eq!(all(s, &phone, 0).entries[0].bytes, snapshot("p1"));
    // Until it lists what it holds.
    s.mark_held(&phone.device, &[]).unwrap();
    s.mark_held(&phone.device, &[(id("p1"), id("p1"))]).unwrap();
    assert_eq!(all(s, &phone, 0).entries[0].bytes, b"p1 changeedit");
    assert_eq!(all(s, &phone, first).entries[0].bytes, b"edit");
    assert_eq!(s.held(&phone.device).unwrap(), people(&["p1"]));
}

fn writers_in_two_processes_never_make_a_puller_skip_an_entry(s: &Backend) {
    const WRITES: usize = 40;
    add_team(s, "north", ScopePolicy::Team);
    add_worker(s, "ann", "Ann", Role::Worker, "north");
    let phone = enrol(s, "ann");
    s.write(None, &docs(vec![person_write("p1", "north", &[])])).unwrap();
    let writers = [s.reopen(), s.reopen()];

    let mut received = HashSet::new();
    let mut cursor = 0;
    thread::scope(|scope| {
        let running: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, storage)| {
                scope.spawn(move || {
                    for i in 0..WRITES {
                        // Two documents and an audit entry: time between taking a seq and committing.
                        let write = SyncWrite {
                            audit: vec![AuditEntry {
                                at: NOW,
                                who: format!("writer-{w}"),
                                action: "sync".into(),
                                subject: "p1".into(),
                                detail: String::new(),
                                from: String::new(),
                            }],
                            ..docs(vec![
                                doc_write(&format!("w{w}-a{i}"), "p1", "visit"),
                                doc_write(&format!("w{w}-b{i}"), "p1", "visit"),
                            ])
                        };
                        storage.write(None, &write).unwrap();
                    }
                })
            })
            .collect();
        // Pull between their commits, as a device syncing meanwhile would.
        while running.iter().any(|writer| !writer.is_finished()) {
            let pull = all(s, &phone, cursor);
            assert!(pull.cursor >= cursor);
            for entry in pull.entries {
                assert!(entry.seq > cursor);
                assert!(received.insert(entry.doc.clone()), "{} sent twice", entry.doc);
            }
            cursor = pull.cursor;
        }
        for writer in running {
            writer.join().unwrap();
        }
    });
    received.extend(all(s, &phone, cursor).entries.into_iter().map(|e| e.doc));

    let mut expected: HashSet<DocId> = HashSet::from([id("p1")]);
    for w in 0..2 {
        for i in 0..WRITES {
            expected.extend([id(&format!("w{w}-a{i}")), id(&format!("w{w}-b{i}"))]);
        }
    }
    let missing: Vec<_> = expected.difference(&received).collect();
    assert!(missing.is_empty(), "skipped: {missing:?}");
    assert_eq!(s.log_head().unwrap(), 1 + 2 * 2 * WRITES as u64);
}

on_every_backend!(
    a_pull_sends_a_new_document_whole_then_only_its_changes,
    a_pull_leaves_out_the_entries_of_the_same_sync,
    a_pull_sends_the_snapshot_when_the_changes_outgrow_it,
    a_pull_stops_at_its_byte_budget_and_resumes_there,
    a_pull_of_hundreds_of_documents_sends_each_once_whole_then_as_changes,
    a_pulls_budget_counts_the_index_rows_sent,
    a_pull_sends_only_the_people_in_the_devices_scope,
    a_newly_allocated_person_reaches_the_worker_whole,
    documents_marked_held_are_sent_as_changes,
    writers_in_two_processes_never_make_a_puller_skip_an_entry,
);
