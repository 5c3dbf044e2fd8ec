//! The text-field helper: a native field's whole-text edits become minimal splices made at the
//! version the field showed, and a caret maps through a colleague's edit that synced in.
#![allow(clippy::unwrap_used)]

mod support;

use outpost_core::{Error, Section, Selection, Store};
use support::{exchange, new_person, new_visit, open};

const S: Section = Section::WhatMatters;

/// Two workers' stores holding one visit whose section reads `text`.
fn shared_visit(text: &str) -> (support::TestStore, support::TestStore, outpost_core::DocId) {
    let mut a = open("w1");
    let mut b = open("w2");
    let person = a.store.create_person(&new_person("Ann Lee", &["w1", "w2"])).unwrap();
    let visit = a.store.create_visit(&new_visit(&person, "w1", 3)).unwrap();
    let shown = a.store.section_text(&visit, S).unwrap();
    a.store
        .edit_section_text(&visit, S, &shown.version, &shown.text, text)
        .unwrap();
    exchange(&mut a.store, &mut b.store);
    (a, b, visit)
}

fn type_at_current(store: &mut Store, visit: &outpost_core::DocId, new_text: &str) {
    let shown = store.section_text(visit, S).unwrap();
    store
        .edit_section_text(visit, S, &shown.version, &shown.text, new_text)
        .unwrap();
}

#[test]
fn typing_is_saved_as_the_minimal_edit_and_keeps_authorship_of_untouched_text() {
    let (mut a, mut b, visit) = shared_visit("Likes gardening");
    // w2 changes one word; w1's other characters stay w1's.
    type_at_current(&mut b.store, &visit, "Loves gardening");
    let spans = b.store.authorship(&visit, S).unwrap();
    let by = |worker: &str| -> String {
        spans
            .iter()
            .filter(|s| s.author.as_ref().is_some_and(|a| a.worker.as_str() == worker))
            .map(|s| s.text.as_str())
            .collect()
    };
    assert_eq!(by("w2"), "ov", "only the changed letters are w2's: {spans:?}");
    assert_eq!(by("w1"), "Les gardening");
    exchange(&mut b.store, &mut a.store);
    assert_eq!(a.store.visit(&visit).unwrap().section(S), "Loves gardening");
}

#[test]
fn a_caret_and_a_selection_stay_by_their_words_when_a_colleagues_edit_arrives() {
    let (mut a, mut b, visit) = shared_visit("Likes gardening");
    let shown = a.store.section_text(&visit, S).unwrap();
    // w2 inserts before the caret (with a character that is two UTF-16 units), retypes the
    // character just before it, and appends after it.
    type_at_current(&mut b.store, &visit, "🍵 Likes gardening");
    type_at_current(&mut b.store, &visit, "🍵 LikeS gardening");
    type_at_current(&mut b.store, &visit, "🍵 LikeS gardening daily");
    exchange(&mut b.store, &mut a.store);

    let caret = Selection { start: 5, end: 5 }; // after "Likes"
    let (now, mapped) = a.store.map_selection(&visit, S, &shown.version, caret).unwrap();
    assert_eq!(now.text, "🍵 LikeS gardening daily");
    let inserted_before = "🍵 ".encode_utf16().count();
    assert_eq!(
        mapped,
        Selection {
            start: 5 + inserted_before,
            end: 5 + inserted_before
        }
    );

    let word = Selection { start: 6, end: 15 }; // "gardening"
    let (now, mapped) = a.store.map_selection(&visit, S, &shown.version, word).unwrap();
    let utf16: Vec<u16> = now.text.encode_utf16().collect();
    assert_eq!(
        String::from_utf16(&utf16[mapped.start..mapped.end]).unwrap(),
        "gardening"
    );
}

#[test]
fn a_caret_at_the_end_stays_before_text_appended_elsewhere() {
    let (mut a, mut b, visit) = shared_visit("Ring Sam");
    let shown = a.store.section_text(&visit, S).unwrap();
    type_at_current(&mut b.store, &visit, "Ring Sam on Friday");
    exchange(&mut b.store, &mut a.store);
    let (_, mapped) = a
        .store
        .map_selection(&visit, S, &shown.version, Selection { start: 8, end: 8 })
        .unwrap();
    assert_eq!(mapped, Selection { start: 8, end: 8 });
}

#[test]
fn typing_into_a_stale_field_merges_with_what_arrived_meanwhile() {
    let (mut a, mut b, visit) = shared_visit("Walks to the shop");
    let stale = a.store.section_text(&visit, S).unwrap();
    type_at_current(&mut b.store, &visit, "Walks slowly to the shop");
    exchange(&mut b.store, &mut a.store);

    // w1's field still shows the old text; w1 types at its end.
    let (_, merged) = a
        .store
        .edit_section_text(&visit, S, &stale.version, &stale.text, "Walks to the shop each day")
        .unwrap();
    assert_eq!(merged.text, "Walks slowly to the shop each day");
    assert_eq!(merged.version, a.store.section_text(&visit, S).unwrap().version);
    exchange(&mut a.store, &mut b.store);
    assert_eq!(b.store.visit(&visit).unwrap().section(S), merged.text);
}

#[test]
fn a_field_text_that_was_never_the_section_is_refused_and_nothing_changes() {
    let (mut a, _b, visit) = shared_visit("Likes gardening");
    let shown = a.store.section_text(&visit, S).unwrap();
    let err = a
        .store
        .edit_section_text(&visit, S, &shown.version, "Something else", "Something else!")
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "old text"),
        "{err}"
    );

    let unknown = vec![outpost_core::ChangeHash([3; 32])];
    let err = a
        .store
        .map_selection(&visit, S, &unknown, Selection { start: 0, end: 0 })
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "version"),
        "{err}"
    );

    let err = a
        .store
        .map_selection(&visit, S, &shown.version, Selection { start: 99, end: 99 })
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "selection start"),
        "{err}"
    );
    assert_eq!(a.store.section_text(&visit, S).unwrap(), shown);
}
