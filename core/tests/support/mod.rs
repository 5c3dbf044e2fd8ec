//! Shared set-up for the core's integration tests: stores in temporary directories and a small
//! cast of people.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use outpost_core::{Author, DeviceId, DocId, NewPerson, NewVisit, RiskTier, Setting, Store, TeamId, WorkerId};

pub struct TestStore {
    pub store: Store,
    pub dir: tempfile::TempDir,
}

pub fn author(worker: &str, device: &str) -> Author {
    Author::new(WorkerId::new(worker).unwrap(), DeviceId::new(device).unwrap())
}

pub fn open(worker: &str) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path().join("outpost.sqlite3"),
        author(worker, &format!("{worker}-phone")),
    )
    .unwrap();
    TestStore { store, dir }
}

pub fn new_person(name: &str, workers: &[&str]) -> NewPerson {
    NewPerson {
        name: name.to_string(),
        preferred_name: None,
        date_of_birth: None,
        nhs_number: None,
        address: Some("1 Chapel Row, Hexham".into()),
        team: TeamId::new("north").unwrap(),
        allocated_workers: workers.iter().map(|w| WorkerId::new(*w).unwrap()).collect(),
        risk: RiskTier::Medium,
    }
}

pub fn new_visit(person: &DocId, worker: &str, day: u32) -> NewVisit {
    NewVisit {
        person: person.clone(),
        worker: WorkerId::new(worker).unwrap(),
        at: Utc.with_ymd_and_hms(2026, 3, day, 10, 30, 0).unwrap(),
        setting: Setting::HomeVisit,
    }
}

/// Sends every document of `from` that `to` lacks, as sync will.
pub fn exchange(from: &mut Store, to: &mut Store) {
    for (id, _) in from.all_heads().unwrap() {
        let since = to.heads(&id).unwrap_or_default();
        let bytes = from.export_changes(&id, &since).unwrap();
        to.import_changes(&id, &bytes).unwrap();
    }
}
