//! Bytes received from another replica are untrusted. Mutated, truncated or spliced bytes are
//! either imported whole or refused with `InvalidChanges`, and a refusal leaves the store as it
//! was. (A longer run of the same property: scripts/fuzz-import.sh.)
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::OnceLock;

use outpost_core::{DocId, Error, NewAction, Section};
use proptest::prelude::*;
use support::{exchange, new_person, new_visit, open};

/// A visit with a person and a run of changes, exported twice: whole, and as changes since a base.
struct Sample {
    whole: Vec<u8>,
    since_base: Vec<u8>,
}

fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let mut t = open("w1");
        let person = t.store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
        let visit = t.store.create_visit(&new_visit(&person, "w1", 14)).unwrap();
        let base = t.store.heads(&visit).unwrap();
        t.store
            .edit_visit(&visit, |v| {
                v.splice(Section::WhatMatters, 0, 0, "Church on Sunday, and the choir")?;
                v.add_action(&NewAction {
                    what: "Lift to church".into(),
                    who: "son".into(),
                    due: None,
                })?;
                Ok(())
            })
            .unwrap();
        t.store
            .edit_visit(&visit, |v| v.splice(Section::WhatMatters, 6, 3, ""))
            .unwrap();
        Sample {
            whole: t.store.export_changes(&visit, &[]).unwrap(),
            since_base: t.store.export_changes(&visit, &base).unwrap(),
        }
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        match *m {
            Mutation::Flip { at, mask } => bytes[at % n] ^= mask,
            Mutation::Truncate { at } => bytes.truncate(at % n),
            Mutation::Insert { at, byte } => bytes.insert(at % (n + 1), byte),
            Mutation::Remove { at } => {
                bytes.remove(at % n);
            }
        }
    }
    bytes
}

/// 256 in the test suite; `PROPTEST_CASES` asks for a longer run (scripts/fuzz-import.sh).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn damaged_bytes_are_refused_or_imported_whole(
        use_whole in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let sample = sample();
        // The receiving store holds the person and an older copy of the visit, so both a new
        // document and changes to an existing one are exercised.
        let mut sender = open("w2");
        let mut receiver = open("w3");
        let person = sender.store.create_person(&new_person("Bo Hay", &["w2"])).unwrap();
        let existing = sender.store.create_visit(&new_visit(&person, "w2", 15)).unwrap();
        exchange(&mut sender.store, &mut receiver.store);
        let before = (receiver.store.all_heads().unwrap(), receiver.store.index_dump().unwrap());

        let source = if use_whole { &sample.whole } else { &sample.since_base };
        let damaged = mutate(source.clone(), &mutations);
        for target in [DocId::new("fresh-doc").unwrap(), existing.clone()] {
            match receiver.store.import_changes(&target, &damaged) {
                Ok(_) => {}
                Err(Error::InvalidChanges { id, reason }) => {
                    prop_assert_eq!(&id, &target);
                    prop_assert!(!reason.is_empty());
                    prop_assert_eq!(
                        &(receiver.store.all_heads().unwrap(), receiver.store.index_dump().unwrap()),
                        &before
                    );
                }
                Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
            }
        }
        // Whatever happened, every record the receiver held still reads.
        prop_assert!(receiver.store.visit(&existing).is_ok());
        prop_assert!(receiver.store.person(&person).is_ok());
    }
}
