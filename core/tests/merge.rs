//! Two replicas editing the same records: nothing either wrote is silently lost, who wrote what
//! is answerable, and fields written by a newer app survive this one's edits.
#![allow(clippy::unwrap_used)]

mod support;

use automerge::{AutoCommit, ROOT, ReadDoc, transaction::Transactable};
use outpost_core::{NewAction, RiskTier, Section, Setting};
use support::{exchange, new_person, new_visit, open};

#[test]
fn concurrent_values_in_one_field_are_all_shown_until_someone_chooses() {
    let mut a = open("w1");
    let mut b = open("w2");
    let person = a.store.create_person(&new_person("Ann Lee", &["w1", "w2"])).unwrap();
    let visit = a.store.create_visit(&new_visit(&person, "w1", 7)).unwrap();
    exchange(&mut a.store, &mut b.store);

    a.store.edit_visit(&visit, |v| v.set_setting(Setting::Clinic)).unwrap();
    b.store.edit_visit(&visit, |v| v.set_setting(Setting::Phone)).unwrap();
    a.store.edit_person(&person, |p| p.set_risk(RiskTier::High)).unwrap();
    b.store.edit_person(&person, |p| p.set_risk(RiskTier::Low)).unwrap();
    exchange(&mut a.store, &mut b.store);
    exchange(&mut b.store, &mut a.store);

    for store in [&mut a.store, &mut b.store] {
        let setting = store.visit(&visit).unwrap().setting;
        let mut all = vec![setting.value];
        all.extend(setting.concurrent.iter().copied());
        all.sort_by_key(|s| s.code());
        assert_eq!(all, vec![Setting::Clinic, Setting::Phone]);
        assert!(store.person(&person).unwrap().risk.is_contested());
    }
    // Both replicas show the same value first.
    assert_eq!(
        a.store.visit(&visit).unwrap().setting,
        b.store.visit(&visit).unwrap().setting
    );

    // Someone who has seen both chooses; the field is settled everywhere.
    a.store.edit_visit(&visit, |v| v.set_setting(Setting::Phone)).unwrap();
    exchange(&mut a.store, &mut b.store);
    let settled = b.store.visit(&visit).unwrap().setting;
    assert_eq!((settled.value, settled.concurrent.len()), (Setting::Phone, 0));
}

#[test]
fn cancelling_an_action_while_someone_edits_it_keeps_both() {
    let mut a = open("w1");
    let mut b = open("w2");
    let person = a.store.create_person(&new_person("Ann Lee", &["w1", "w2"])).unwrap();
    let visit = a.store.create_visit(&new_visit(&person, "w1", 8)).unwrap();
    let mut id = None;
    a.store
        .edit_visit(&visit, |v| {
            id = Some(v.add_action(&NewAction {
                what: "Refer to falls clinic".into(),
                who: "w1".into(),
                due: None,
            })?);
            Ok(())
        })
        .unwrap();
    let id = id.unwrap();
    exchange(&mut a.store, &mut b.store);

    a.store.edit_visit(&visit, |v| v.cancel_action(&id)).unwrap();
    b.store
        .edit_visit(&visit, |v| {
            v.edit_action(&id, Some("Refer to falls clinic in Hexham"), None, None)
        })
        .unwrap();
    exchange(&mut b.store, &mut a.store);
    exchange(&mut a.store, &mut b.store);

    for store in [&mut a.store, &mut b.store] {
        let actions = store.visit(&visit).unwrap().actions;
        assert_eq!(actions.len(), 1, "the action is still there");
        assert!(actions[0].cancelled);
        assert_eq!(
            actions[0].what.as_ref().unwrap().value,
            "Refer to falls clinic in Hexham"
        );
    }
}

#[test]
fn who_wrote_which_part_of_a_section_comes_from_history() {
    let mut a = open("w1");
    let mut b = open("n7");
    let person = a.store.create_person(&new_person("Ann Lee", &["w1", "n7"])).unwrap();
    let visit = a.store.create_visit(&new_visit(&person, "w1", 9)).unwrap();
    a.store
        .edit_visit(&visit, |v| v.splice(Section::RisksAndConcerns, 0, 0, "Lives alone. "))
        .unwrap();
    exchange(&mut a.store, &mut b.store);
    b.store
        .edit_visit(&visit, |v| {
            v.splice(Section::RisksAndConcerns, 13, 0, "Leg ulcer slow to heal.")
        })
        .unwrap();
    exchange(&mut b.store, &mut a.store);

    let spans = a.store.authorship(&visit, Section::RisksAndConcerns).unwrap();
    let described: Vec<(String, String, String)> = spans
        .iter()
        .map(|s| {
            let author = s.author.as_ref().unwrap();
            (author.worker.to_string(), author.device.to_string(), s.text.clone())
        })
        .collect();
    assert_eq!(
        described,
        vec![
            ("w1".into(), "w1-phone".into(), "Lives alone. ".into()),
            ("n7".into(), "n7-phone".into(), "Leg ulcer slow to heal.".into()),
        ]
    );
}

#[test]
fn a_field_written_by_a_newer_app_survives_every_edit_this_version_makes() {
    let mut a = open("w1");
    let person = a.store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let visit = a.store.create_visit(&new_visit(&person, "w1", 10)).unwrap();

    // A newer app version adds fields this build has never heard of, at the root and nested.
    let mut newer = AutoCommit::load(&a.store.export_changes(&visit, &[]).unwrap()).unwrap();
    let base = newer.get_heads();
    newer.put(ROOT, "interpreter_language", "Polish").unwrap();
    let extra = newer
        .put_object(ROOT, "wellbeing_scale", automerge::ObjType::Map)
        .unwrap();
    newer.put(&extra, "score", 41_i64).unwrap();
    let (_, sections) = newer.get(ROOT, "sections").unwrap().unwrap();
    newer
        .put_object(&sections, "spiritual_needs", automerge::ObjType::Text)
        .unwrap();
    newer.put(ROOT, "schema", 2_i64).unwrap();
    newer.commit();
    let changes: Vec<u8> = newer
        .get_changes(&base)
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    a.store.import_changes(&visit, &changes).unwrap();

    // This version edits everything it knows about.
    a.store
        .edit_visit(&visit, |v| {
            v.splice(Section::WhatMatters, 0, 0, "Her cat, Biscuit.")?;
            v.set_setting(Setting::CommunityHub)?;
            v.add_action(&NewAction {
                what: "Find a Polish-speaking befriender".into(),
                who: "w1".into(),
                due: None,
            })?;
            v.set_feedback(Some(outpost_core::Helped::Partly), "Too many questions")?;
            v.raise_safeguarding("Financial abuse suspected")
        })
        .unwrap();
    let read = a.store.visit(&visit).unwrap();
    assert_eq!(read.schema, 2, "a newer schema version is read, not refused");
    a.store.compact(&visit).unwrap();

    let after = AutoCommit::load(&a.store.export_changes(&visit, &[]).unwrap()).unwrap();
    assert_eq!(
        after.get(ROOT, "interpreter_language").unwrap().unwrap().0.to_string(),
        "\"Polish\""
    );
    let (_, extra) = after.get(ROOT, "wellbeing_scale").unwrap().unwrap();
    assert_eq!(after.get(&extra, "score").unwrap().unwrap().0.as_i64(), Some(41));
    let (_, sections) = after.get(ROOT, "sections").unwrap().unwrap();
    assert!(after.get(&sections, "spiritual_needs").unwrap().is_some());
}

#[test]
fn exported_changes_since_heads_are_only_the_new_ones() {
    let mut a = open("w1");
    let mut b = open("w2");
    let person = a.store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    exchange(&mut a.store, &mut b.store);
    let shared = a.store.heads(&person).unwrap();
    a.store
        .edit_person(&person, |p| p.set_address(Some("3 Mill Lane")))
        .unwrap();
    let since = a.store.export_changes(&person, &shared).unwrap();
    let whole = a.store.export_changes(&person, &[]).unwrap();
    assert!(since.len() < whole.len());
    assert_eq!(
        b.store.missing(&person, &a.store.heads(&person).unwrap()).unwrap(),
        a.store.heads(&person).unwrap()
    );
    let imported = b.store.import_changes(&person, &since).unwrap();
    assert_eq!(imported.applied, 1);
    assert!(imported.missing.is_empty());
    assert_eq!(b.store.heads(&person).unwrap(), a.store.heads(&person).unwrap());
    assert!(
        b.store
            .missing(&person, &a.store.heads(&person).unwrap())
            .unwrap()
            .is_empty()
    );
    // Importing the same changes again changes nothing.
    assert_eq!(b.store.import_changes(&person, &since).unwrap().applied, 0);
}
