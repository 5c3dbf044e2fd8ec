//! Two devices edit the same person's records offline, then exchange changes in either order.
//! Property: they converge to identical documents and query results, and nothing either side
//! typed (and did not itself delete) is lost or reordered.
#![allow(clippy::unwrap_used)]

use chrono::{NaiveDate, TimeZone, Utc};
use outpost_core::{
    Author, DeviceId, DocId, ItemId, NewAction, NewPerson, NewVisit, RiskTier, Section, Setting, Store, TeamId,
    WorkerId,
};
use proptest::prelude::*;

const SECTIONS: [Section; 2] = [Section::WhatMatters, Section::Strengths];

#[derive(Debug, Clone)]
enum Op {
    /// Insert `len` characters at a fraction of the section's length.
    Insert {
        section: usize,
        at: f64,
        len: usize,
    },
    Delete {
        section: usize,
        at: f64,
        len: usize,
    },
    AddAction,
    EditAction {
        which: usize,
    },
    CancelAction {
        which: usize,
    },
    SetSetting(usize),
    SetRisk(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0.0..=1.0f64, 1..8usize).prop_map(|(section, at, len)| Op::Insert { section, at, len }),
        2 => (0..2usize, 0.0..=1.0f64, 1..5usize).prop_map(|(section, at, len)| Op::Delete { section, at, len }),
        1 => Just(Op::AddAction),
        1 => (0..4usize).prop_map(|which| Op::EditAction { which }),
        1 => (0..4usize).prop_map(|which| Op::CancelAction { which }),
        1 => (0..4usize).prop_map(Op::SetSetting),
        1 => (0..3usize).prop_map(Op::SetRisk),
    ]
}

struct Side {
    store: Store,
    /// Characters this side types come from its own alphabet, so they can be traced after a merge.
    alphabet: &'static [u8],
    typed: usize,
    last_setting: Option<Setting>,
    last_risk: Option<RiskTier>,
    added_actions: Vec<ItemId>,
    cancelled: Vec<ItemId>,
    last_what: Vec<(ItemId, String)>,
    _dir: tempfile::TempDir,
}

impl Side {
    fn open(worker: &str, alphabet: &'static [u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let author = Author::new(
            WorkerId::new(worker).unwrap(),
            DeviceId::new(format!("{worker}-phone")).unwrap(),
        );
        Self {
            store: Store::open(dir.path().join("s.sqlite3"), author).unwrap(),
            alphabet,
            typed: 0,
            last_setting: None,
            last_risk: None,
            added_actions: Vec::new(),
            cancelled: Vec::new(),
            last_what: Vec::new(),
            _dir: dir,
        }
    }

    fn next_text(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| {
                self.typed += 1;
                char::from(self.alphabet[self.typed % self.alphabet.len()])
            })
            .collect()
    }

    fn apply(&mut self, person: &DocId, visit: &DocId, op: &Op) {
        let current = self.store.visit(visit).unwrap();
        let actions: Vec<ItemId> = current.actions.iter().map(|a| a.id.clone()).collect();
        match op {
            Op::Insert { section, at, len } => {
                let section = SECTIONS[*section];
                let pos = (current.section(section).chars().count() as f64 * at) as usize;
                let text = self.next_text(*len);
                self.store
                    .edit_visit(visit, |v| v.splice(section, pos, 0, &text))
                    .unwrap();
            }
            Op::Delete { section, at, len } => {
                let section = SECTIONS[*section];
                let count = current.section(section).chars().count();
                let pos = ((count as f64 * at) as usize).min(count);
                let len = (*len).min(count - pos);
                self.store
                    .edit_visit(visit, |v| v.splice(section, pos, len, ""))
                    .unwrap();
            }
            Op::AddAction => {
                let what = self.next_text(6);
                let mut id = None;
                self.store
                    .edit_visit(visit, |v| {
                        id = Some(v.add_action(&NewAction {
                            what: what.clone(),
                            who: "w".into(),
                            due: NaiveDate::from_ymd_opt(2026, 1, 1),
                        })?);
                        Ok(())
                    })
                    .unwrap();
                let id = id.unwrap();
                self.last_what.push((id.clone(), what));
                self.added_actions.push(id);
            }
            Op::EditAction { which } if !actions.is_empty() => {
                let id = actions[which % actions.len()].clone();
                let what = self.next_text(5);
                self.store
                    .edit_visit(visit, |v| v.edit_action(&id, Some(&what), None, None))
                    .unwrap();
                self.last_what.retain(|(i, _)| *i != id);
                self.last_what.push((id, what));
            }
            Op::CancelAction { which } if !actions.is_empty() => {
                let id = actions[which % actions.len()].clone();
                self.store.edit_visit(visit, |v| v.cancel_action(&id)).unwrap();
                self.cancelled.push(id);
            }
            Op::SetSetting(i) => {
                let setting = [
                    Setting::HomeVisit,
                    Setting::Clinic,
                    Setting::Phone,
                    Setting::CommunityHub,
                ][*i];
                self.store.edit_visit(visit, |v| v.set_setting(setting)).unwrap();
                // Writing the value a field already holds is no change at all, so not a write
                // that could compete with the other side's.
                if current.setting.value != setting || current.setting.is_contested() {
                    self.last_setting = Some(setting);
                }
            }
            Op::SetRisk(i) => {
                let risk = [RiskTier::High, RiskTier::Medium, RiskTier::Low][*i];
                let before = self.store.person(person).unwrap().risk;
                self.store.edit_person(person, |p| p.set_risk(risk)).unwrap();
                if before.value != risk || before.is_contested() {
                    self.last_risk = Some(risk);
                }
            }
            Op::EditAction { .. } | Op::CancelAction { .. } => {}
        }
    }
}

/// Sends `to` everything `from` has that `to` lacks.
fn send(from: &mut Store, to: &mut Store) {
    for (id, _) in from.all_heads().unwrap() {
        let since = to.heads(&id).unwrap_or_default();
        let bytes = from.export_changes(&id, &since).unwrap();
        to.import_changes(&id, &bytes).unwrap();
    }
}

fn only(text: &str, alphabet: &[u8]) -> String {
    text.chars()
        .filter(|c| c.is_ascii() && alphabet.contains(&(*c as u8)))
        .collect()
}

fn all_values<T: Clone>(field: &outpost_core::Field<T>) -> Vec<T> {
    std::iter::once(field.value.clone())
        .chain(field.concurrent.iter().cloned())
        .collect()
}

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn run(ops_a: &[Op], ops_b: &[Op], a_sends_first: bool) {
    let mut a = Side::open("wa", LOWER);
    let mut b = Side::open("wb", UPPER);
    let mut new = NewPerson {
        name: "Ann Lee".into(),
        preferred_name: None,
        date_of_birth: None,
        nhs_number: None,
        address: None,
        team: TeamId::new("north").unwrap(),
        allocated_workers: vec![WorkerId::new("wa").unwrap(), WorkerId::new("wb").unwrap()],
        risk: RiskTier::Medium,
    };
    new.preferred_name = Some("Annie".into());
    let person = a.store.create_person(&new).unwrap();
    let visit = a
        .store
        .create_visit(&NewVisit {
            person: person.clone(),
            worker: WorkerId::new("wa").unwrap(),
            at: Utc.with_ymd_and_hms(2026, 2, 1, 9, 0, 0).unwrap(),
            setting: Setting::HomeVisit,
        })
        .unwrap();
    a.store
        .edit_visit(&visit, |v| {
            v.splice(Section::WhatMatters, 0, 0, "0123456789")?;
            v.splice(Section::Strengths, 0, 0, "0123")?;
            v.add_action(&NewAction {
                what: "base".into(),
                who: "w".into(),
                due: None,
            })?;
            Ok(())
        })
        .unwrap();
    send(&mut a.store, &mut b.store);

    for op in ops_a {
        a.apply(&person, &visit, op);
    }
    for op in ops_b {
        b.apply(&person, &visit, op);
    }
    let before_a = a.store.visit(&visit).unwrap();
    let before_b = b.store.visit(&visit).unwrap();

    if a_sends_first {
        send(&mut a.store, &mut b.store);
        send(&mut b.store, &mut a.store);
    } else {
        send(&mut b.store, &mut a.store);
        send(&mut a.store, &mut b.store);
    }

    // Identical documents and identical query results.
    assert_eq!(a.store.all_heads().unwrap(), b.store.all_heads().unwrap());
    let merged = a.store.visit(&visit).unwrap();
    assert_eq!(merged, b.store.visit(&visit).unwrap());
    assert_eq!(a.store.person(&person).unwrap(), b.store.person(&person).unwrap());
    assert_eq!(a.store.index_dump().unwrap(), b.store.index_dump().unwrap());
    let wa = WorkerId::new("wa").unwrap();
    assert_eq!(a.store.caseload(&wa).unwrap(), b.store.caseload(&wa).unwrap());
    assert_eq!(
        a.store.visits_for_person(&person).unwrap(),
        b.store.visits_for_person(&person).unwrap()
    );
    let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    assert_eq!(
        a.store.overdue_actions(today).unwrap(),
        b.store.overdue_actions(today).unwrap()
    );

    // Every character a side typed and did not itself delete survives, in that side's order.
    for section in SECTIONS {
        assert_eq!(
            only(merged.section(section), LOWER),
            only(before_a.section(section), LOWER)
        );
        assert_eq!(
            only(merged.section(section), UPPER),
            only(before_b.section(section), UPPER)
        );
    }

    // Actions: none disappears, a cancel on either side stands, each side's last wording survives.
    for side in [&a, &b] {
        for id in &side.added_actions {
            assert!(merged.actions.iter().any(|x| &x.id == id), "an added action vanished");
        }
        for id in &side.cancelled {
            assert!(merged.actions.iter().find(|x| &x.id == id).unwrap().cancelled);
        }
        for (id, what) in &side.last_what {
            let action = merged.actions.iter().find(|x| &x.id == id).unwrap();
            assert!(all_values(action.what.as_ref().unwrap()).contains(what), "{what} lost");
        }
    }
    assert_eq!(merged.actions.len(), 1 + a.added_actions.len() + b.added_actions.len());

    // A field both sides wrote keeps both values until someone chooses.
    let settings = all_values(&merged.setting);
    let risks = all_values(&a.store.person(&person).unwrap().risk);
    for side in [&a, &b] {
        if let Some(s) = side.last_setting {
            assert!(settings.contains(&s), "setting {s:?} lost");
        }
        if let Some(r) = side.last_risk {
            assert!(risks.contains(&r), "risk {r:?} lost");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn two_devices_converge_and_lose_nothing(
        ops_a in prop::collection::vec(op(), 0..20),
        ops_b in prop::collection::vec(op(), 0..20),
        a_sends_first in any::<bool>(),
    ) {
        run(&ops_a, &ops_b, a_sends_first);
    }
}

#[test]
fn typing_into_the_same_place_at_once_keeps_both_words() {
    run(
        &[Op::Insert {
            section: 0,
            at: 0.5,
            len: 7,
        }],
        &[Op::Insert {
            section: 0,
            at: 0.5,
            len: 7,
        }],
        true,
    );
}
