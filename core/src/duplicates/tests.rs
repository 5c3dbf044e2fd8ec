#![allow(clippy::unwrap_used)]

use automerge::{ActorId, AutoCommit, ChangeHash};
use chrono::{TimeZone, Utc};

use super::*;
use crate::ids::{DeviceId, TeamId, WorkerId};
use crate::model::person::{NewContact, NewPerson, RiskTier};
use crate::model::visit::{NewVisit, Setting};
use crate::store::Store;

fn author(worker: &str, device: &str) -> Author {
    Author::new(WorkerId::new(worker).unwrap(), DeviceId::new(device).unwrap())
}

fn lead() -> Author {
    author("lead1", "server")
}

fn new_person(name: &str, address: Option<&str>, risk: RiskTier) -> NewPerson {
    NewPerson {
        name: name.into(),
        preferred_name: None,
        date_of_birth: None,
        nhs_number: None,
        address: address.map(str::to_string),
        team: TeamId::new("north").unwrap(),
        allocated_workers: vec![WorkerId::new("w1").unwrap()],
        risk,
    }
}

fn new_visit(person: &PersonId, day: u32) -> NewVisit {
    NewVisit {
        person: person.clone(),
        worker: WorkerId::new("w1").unwrap(),
        at: Utc.with_ymd_and_hms(2026, 3, day, 10, 0, 0).unwrap(),
        setting: Setting::HomeVisit,
    }
}

/// A replica that is not a device store (the server), holding a copy of one document.
struct Replica {
    id: DocId,
    doc: AutoCommit,
    before: Vec<ChangeHash>,
}

impl Replica {
    fn of(store: &mut Store, id: &DocId) -> Self {
        let mut doc = AutoCommit::load(&store.export_changes(id, &[]).unwrap())
            .unwrap()
            .with_actor(ActorId::random());
        let before = doc.get_heads();
        Self {
            id: id.clone(),
            doc,
            before,
        }
    }

    /// Its changes since it was copied, imported into `store` as sync would.
    fn send(&mut self, store: &mut Store) {
        let bytes: Vec<u8> = self
            .doc
            .get_changes(&self.before)
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        store.import_changes(&self.id, &bytes).unwrap();
        self.before = self.doc.get_heads();
    }
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("s.sqlite3"), author("w1", "phone-1")).unwrap()
}

#[test]
fn a_merge_lists_the_duplicates_records_under_the_survivor_and_hides_the_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let survivor = store
        .create_person(&new_person("Iris Kemp", Some("4 Mill Lane"), RiskTier::Low))
        .unwrap();
    let duplicate = store
        .create_person(&new_person("Iris Kemp", None, RiskTier::High))
        .unwrap();
    let kept = store.create_visit(&new_visit(&survivor, 1)).unwrap();
    let moved = store.create_visit(&new_visit(&duplicate, 2)).unwrap();
    store
        .edit_person(&duplicate, |p| {
            p.add_contact(&NewContact {
                name: "Dot Kemp".into(),
                relationship: "daughter".into(),
                phone: Some("07700 900123".into()),
            })
            .map(|_| ())
        })
        .unwrap();
    let team = TeamId::new("north").unwrap();
    assert_eq!(store.team_caseload(&team).unwrap().len(), 2);

    // The server marks the duplicate, folds it onto the survivor and re-points its visit.
    let mut d = Replica::of(&mut store, &duplicate);
    let mut s = Replica::of(&mut store, &survivor);
    let mut v = Replica::of(&mut store, &moved);
    mark_merged(&mut d.doc, &duplicate, &survivor, &lead()).unwrap();
    assert!(fold(&mut s.doc, &survivor, &mut d.doc, &duplicate, &lead()).unwrap());
    assert!(repoint(&mut v.doc, &moved, &survivor, &lead()).unwrap());
    assert!(!repoint(&mut v.doc, &moved, &survivor, &lead()).unwrap(), "once");
    d.send(&mut store);
    s.send(&mut store);
    v.send(&mut store);

    let caseload = store.team_caseload(&team).unwrap();
    assert_eq!(
        caseload.iter().map(|r| &r.person).collect::<Vec<_>>(),
        vec![&survivor],
        "the duplicate is hidden"
    );
    assert_eq!(caseload[0].risk, Some(RiskTier::High), "the higher risk is kept");
    let worker_caseload = store.caseload(&WorkerId::new("w1").unwrap()).unwrap();
    assert_eq!(worker_caseload.len(), 1);
    let visits: Vec<DocId> = store
        .visits_for_person(&survivor)
        .unwrap()
        .into_iter()
        .map(|v| v.visit)
        .collect();
    assert_eq!(visits, vec![moved.clone(), kept.clone()]);
    assert!(store.visits_for_person(&duplicate).unwrap().is_empty());
    assert_eq!(store.visit(&moved).unwrap().person, survivor);

    let merged = store.person(&duplicate).unwrap();
    assert_eq!(
        merged.merged_into.as_ref(),
        Some(&survivor),
        "the duplicate is kept, marked"
    );
    let person = store.person(&survivor).unwrap();
    assert_eq!(person.address.unwrap().value, "4 Mill Lane");
    assert_eq!(person.contacts.len(), 1);
    assert_eq!(person.contacts[0].phone.as_ref().unwrap().value, "07700 900123");
    assert_eq!(
        person.also_recorded,
        vec![AlsoRecorded {
            field: "risk_tier".into(),
            value: "low".into(),
            from: duplicate.to_string(),
        }],
        "the survivor's own lower tier is kept beside"
    );

    // The index rebuilt from the documents is the one kept as they arrived.
    let live = store.index_dump().unwrap();
    assert!(store.rebuild_index().unwrap().is_empty());
    assert_eq!(store.index_dump().unwrap(), live);
}

#[test]
fn a_replica_accepts_a_change_of_person_only_when_the_record_says_it_was_moved() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let first = store.create_person(&new_person("A", None, RiskTier::Low)).unwrap();
    let second = store.create_person(&new_person("B", None, RiskTier::Low)).unwrap();
    let visit = store.create_visit(&new_visit(&first, 1)).unwrap();

    let mut sneaky = Replica::of(&mut store, &visit);
    fields::put(&mut sneaky.doc, &ROOT, "person", &second.as_str().to_string()).unwrap();
    let bytes: Vec<u8> = sneaky
        .doc
        .get_changes(&sneaky.before)
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    let refused = store.import_changes(&visit, &bytes).unwrap_err().to_string();
    assert!(refused.contains("another person"), "{refused}");

    let mut merged = Replica::of(&mut store, &visit);
    repoint(&mut merged.doc, &visit, &second, &lead()).unwrap();
    assert!(was_moved(&merged.doc, &first, &second));
    assert!(!was_moved(&merged.doc, &second, &first));
    merged.send(&mut store);
    assert_eq!(store.visit(&visit).unwrap().person, second);
}

#[test]
fn folding_fills_gaps_keeps_both_values_and_later_carries_only_new_edits() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let survivor = store
        .create_person(&new_person("Iris Kemp", Some("4 Mill Lane"), RiskTier::Medium))
        .unwrap();
    let duplicate = store
        .create_person(&new_person("Iris Kempe", Some("4 Mill Ln"), RiskTier::Low))
        .unwrap();
    store
        .edit_person(&duplicate, |p| p.set_preferred_name(Some("Iri")))
        .unwrap();
    let mut d = Replica::of(&mut store, &duplicate);
    let mut s = Replica::of(&mut store, &survivor);
    mark_merged(&mut d.doc, &duplicate, &survivor, &lead()).unwrap();
    assert!(fold(&mut s.doc, &survivor, &mut d.doc, &duplicate, &lead()).unwrap());
    assert!(
        !fold(&mut s.doc, &survivor, &mut d.doc, &duplicate, &lead()).unwrap(),
        "nothing new on the duplicate: nothing to do"
    );
    let read = crate::model::person::read(&s.doc, &survivor).unwrap();
    assert_eq!(read.name.value, "Iris Kemp", "never overwritten");
    assert_eq!(read.preferred_name.unwrap().value, "Iri", "a gap filled");
    assert_eq!(read.risk.value, RiskTier::Medium);
    let kept: Vec<(String, String)> = read
        .also_recorded
        .iter()
        .map(|a| (a.field.clone(), a.value.clone()))
        .collect();
    for expected in [("name", "Iris Kempe"), ("address", "4 Mill Ln"), ("risk_tier", "low")] {
        assert!(
            kept.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} in {kept:?}"
        );
    }
    assert_eq!(kept.len(), 3, "{kept:?}");

    // A device that had not heard of the merge edits the duplicate's address: that edit is
    // carried onto the survivor, the address it replaces kept beside.
    let mut offline = Replica::of(&mut store, &duplicate);
    fields::put(&mut offline.doc, &ROOT, "address", &"12 Church Street".to_string()).unwrap();
    let edit: Vec<u8> = offline
        .doc
        .get_changes(&offline.before)
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    crate::sync::apply_untrusted(&mut d.doc, &edit).unwrap();
    assert!(fold(&mut s.doc, &survivor, &mut d.doc, &duplicate, &lead()).unwrap());
    let read = crate::model::person::read(&s.doc, &survivor).unwrap();
    assert_eq!(read.address.unwrap().value, "12 Church Street");
    assert!(
        read.also_recorded
            .iter()
            .any(|a| a.field == "address" && a.value == "4 Mill Lane")
    );
    assert!(!fold(&mut s.doc, &survivor, &mut d.doc, &duplicate, &lead()).unwrap());
    // The survivor's address is changed afterwards; folding the unchanged duplicate again does
    // not bring the old edit back.
    fields::put(&mut s.doc, &ROOT, "address", &"1 New Road".to_string()).unwrap();
    fields::put(&mut d.doc, &ROOT, "merged_by", &"lead1/server".to_string()).unwrap();
    fold(&mut s.doc, &survivor, &mut d.doc, &duplicate, &lead()).unwrap();
    let read = crate::model::person::read(&s.doc, &survivor).unwrap();
    assert_eq!(read.address.unwrap().value, "1 New Road");
    s.send(&mut store);
    d.send(&mut store);
}
