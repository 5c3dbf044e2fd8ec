//! The sync protocol between device stores and the server's sync service, run in process so
//! every interleaving is deterministic: convergence in every order, scope, forged authorship,
//! reassignment with unsynced edits, and a device restored from an old copy of its store.
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use outpost_core::sync::wire::{self, Push, Request};
use outpost_core::{DocId, NewPerson, NewVisit, PersonId, RiskTier, Section, Setting, TeamId, WorkerId};
use outpost_server::storage::{Documents, Role, ScopePolicy};
use outpost_tests::world::{Phone, World};
use serde_bytes::ByteBuf;

fn person(name: &str, team: &TeamId, workers: &[&WorkerId]) -> NewPerson {
    NewPerson {
        name: name.to_string(),
        preferred_name: None,
        date_of_birth: None,
        nhs_number: None,
        address: Some("2 Mill Lane, Alston".into()),
        team: team.clone(),
        allocated_workers: workers.iter().map(|w| (*w).clone()).collect(),
        risk: RiskTier::Medium,
    }
}

fn visit(person: &PersonId, worker: &WorkerId) -> NewVisit {
    NewVisit {
        person: person.clone(),
        worker: worker.clone(),
        at: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap(),
        setting: Setting::HomeVisit,
    }
}

fn append(phone: &mut Phone, visit: &DocId, text: &str) {
    let len = what_matters(phone, visit).chars().count();
    phone
        .store
        .edit_visit(visit, |v| v.splice(Section::WhatMatters, len, 0, text))
        .unwrap();
}

fn what_matters(phone: &mut Phone, visit: &DocId) -> String {
    phone
        .store
        .visit(visit)
        .unwrap()
        .section(Section::WhatMatters)
        .to_string()
}

struct Team {
    world: World,
    team: TeamId,
    phones: Vec<Phone>,
    workers: Vec<WorkerId>,
}

/// Two social workers and a nurse in one team that holds its whole caseload.
fn north_team() -> Team {
    let world = World::new();
    let team = world.team("north", ScopePolicy::Team);
    let workers: Vec<WorkerId> = ["sw-ann", "sw-ben", "rn-cat"]
        .iter()
        .map(|w| world.worker(w, &team, Role::Worker))
        .collect();
    let phones = workers.iter().map(|w| world.enrol(w, &format!("{w}-phone"))).collect();
    Team {
        world,
        team,
        phones,
        workers,
    }
}

#[test]
fn three_devices_converge_in_every_order_keeping_every_character() {
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for order in orders {
        let Team {
            world,
            team,
            mut phones,
            workers,
        } = north_team();
        let pid = phones[0]
            .store
            .create_person(&person("Edith Marsh", &team, &[&workers[0]]))
            .unwrap();
        let vid = phones[0].store.create_visit(&visit(&pid, &workers[0])).unwrap();
        append(&mut phones[0], &vid, "Base. ");
        for phone in phones.iter_mut() {
            let p = world.sync(phone).unwrap();
            eprintln!("{p:?}");
        }
        // Offline, each writes something of their own into the same section.
        let words = ["garden matters ", "daughter visits sundays ", "leg dressing healing "];
        for (phone, word) in phones.iter_mut().zip(words) {
            append(phone, &vid, word);
        }
        // Syncing in this order, twice round, brings everyone everything.
        for _ in 0..2 {
            for &i in &order {
                world.sync(&mut phones[i]).unwrap();
            }
        }
        let texts: Vec<String> = phones.iter_mut().map(|p| what_matters(p, &vid)).collect();
        assert!(texts.iter().all(|t| *t == texts[0]), "order {order:?}: {texts:?}");
        for word in words {
            assert!(
                texts[0].contains(word),
                "order {order:?}: {word:?} lost from {:?}",
                texts[0]
            );
        }
        let server = world.storage.doc(&vid).unwrap().unwrap();
        for phone in &phones {
            assert_eq!(phone.store.heads(&vid).unwrap(), server.heads, "order {order:?}");
            assert_eq!(
                phone
                    .store
                    .sync_status(outpost_tests::world::PEER)
                    .unwrap()
                    .pending_docs,
                0
            );
        }
    }
}

#[test]
fn a_second_sync_with_nothing_new_sends_and_receives_no_documents() {
    let Team {
        world,
        team,
        mut phones,
        workers,
    } = north_team();
    let pid = phones[0]
        .store
        .create_person(&person("Frank Dodd", &team, &[&workers[0]]))
        .unwrap();
    phones[0].store.create_visit(&visit(&pid, &workers[0])).unwrap();
    let first = world.sync(&mut phones[0]).unwrap();
    assert_eq!(first.docs_pushed, 3, "person, visit and review");
    assert_eq!(first.rounds, 1, "a push of any size is one round trip");
    let again = world.sync(&mut phones[0]).unwrap();
    assert_eq!((again.docs_pushed, again.docs_received, again.rounds), (0, 0, 1));
    let other = world.sync(&mut phones[1]).unwrap();
    assert_eq!(other.docs_received, 3);
}

#[test]
fn a_worker_outside_the_scope_gets_nothing_and_is_answered_as_for_a_missing_record() {
    let Team {
        world,
        team,
        mut phones,
        workers,
    } = north_team();
    let pid = phones[0]
        .store
        .create_person(&person("Grace Pike", &team, &[&workers[0]]))
        .unwrap();
    let vid = phones[0].store.create_visit(&visit(&pid, &workers[0])).unwrap();
    world.sync(&mut phones[0]).unwrap();

    let south = world.team("south", ScopePolicy::Team);
    let outsider = world.worker("sw-zed", &south, Role::Worker);
    let mut zed = world.enrol(&outsider, "zed-phone");
    let pulled = world.sync(&mut zed).unwrap();
    assert_eq!(pulled.docs_received, 0);
    assert!(zed.store.visit(&vid).is_err());

    // Pushing a visit for the person (a guessed id) is refused exactly as for a made-up one.
    let mut answers = Vec::new();
    for target in [pid.clone(), DocId::new("no-such-person").unwrap()] {
        let (mut doc, _review) =
            outpost_core::Document::new_visit(zed.store.author(), &visit(&target, &outsider)).unwrap();
        let request = Request {
            protocol: wire::PROTOCOL,
            min_protocol: wire::MIN_PROTOCOL,
            pushes: vec![Push {
                doc: doc.id().to_string(),
                base: vec![],
                heads: vec![],
                bytes: ByteBuf::from(doc.save()),
            }],
            ..Request::default()
        };
        let body = world.state.sync.round(&zed.device, request).unwrap();
        let head = first_head(&body);
        assert_eq!(head.refused.len(), 1);
        answers.push(head.refused[0].reason.replace(target.as_str(), "<id>"));
    }
    assert_eq!(answers[0], answers[1]);
}

fn first_head(body: &[u8]) -> wire::Head {
    let mut reader = wire::FrameReader::default();
    reader.push(body);
    match reader.next::<wire::Frame>("response").unwrap().unwrap() {
        wire::Frame::Head(head) => head,
        other => panic!("expected a head, got {other:?}"),
    }
}
