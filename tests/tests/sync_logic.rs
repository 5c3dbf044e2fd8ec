//! The sync protocol between device stores and the server's sync service, run in process so
//! every interleaving is deterministic: convergence in every order, scope, forged authorship,
//! reassignment with unsynced edits, and a device restored from an old copy of its store.
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use outpost_core::sync::wire::{self, Push, Request};
use outpost_core::{DocId, NewPerson, NewVisit, PersonId, RiskTier, Section, Setting, TeamId, WorkerId};
use outpost_server::storage::{Accounts, Documents, Role, ScopePolicy};
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
        .store()
        .edit_visit(visit, |v| v.splice(Section::WhatMatters, len, 0, text))
        .unwrap();
}

fn what_matters(phone: &mut Phone, visit: &DocId) -> String {
    phone
        .store()
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
            .store()
            .create_person(&person("Edith Marsh", &team, &[&workers[0]]))
            .unwrap();
        let vid = phones[0].store().create_visit(&visit(&pid, &workers[0])).unwrap();
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
            assert_eq!(phone.store().heads(&vid).unwrap(), server.heads, "order {order:?}");
            assert_eq!(
                phone
                    .store()
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
        .store()
        .create_person(&person("Frank Dodd", &team, &[&workers[0]]))
        .unwrap();
    phones[0].store().create_visit(&visit(&pid, &workers[0])).unwrap();
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
        .store()
        .create_person(&person("Grace Pike", &team, &[&workers[0]]))
        .unwrap();
    let vid = phones[0].store().create_visit(&visit(&pid, &workers[0])).unwrap();
    world.sync(&mut phones[0]).unwrap();

    let south = world.team("south", ScopePolicy::Team);
    let outsider = world.worker("sw-zed", &south, Role::Worker);
    let mut zed = world.enrol(&outsider, "zed-phone");
    let pulled = world.sync(&mut zed).unwrap();
    assert_eq!(pulled.docs_received, 0);
    assert!(zed.store().visit(&vid).is_err());

    // Pushing a visit for the person (a guessed id) is refused exactly as for a made-up one.
    let mut answers = Vec::new();
    for target in [pid.clone(), DocId::new("no-such-person").unwrap()] {
        let (mut doc, _review) =
            outpost_core::Document::new_visit(zed.store().author(), &visit(&target, &outsider)).unwrap();
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

    // Asking for the person by id through Automerge's sync protocol, or listing it in an
    // inventory, yields nothing either.
    let mut state = automerge::sync::State::new();
    let probe = automerge::sync::SyncDoc::generate_sync_message(&automerge::Automerge::new(), &mut state)
        .unwrap()
        .encode();
    let request = Request {
        protocol: wire::PROTOCOL,
        min_protocol: wire::MIN_PROTOCOL,
        automerge_sync: vec![wire::AutomergeSync {
            doc: pid.to_string(),
            message: ByteBuf::from(probe),
        }],
        inventory: Some(vec![wire::DocHeads {
            doc: vid.to_string(),
            heads: vec![],
        }]),
        ..Request::default()
    };
    // A made-up id and the real one, each asked for the first time, get the same answer.
    let made_up = DocId::new("made-up-id").unwrap();
    let mut probe_missing = request.clone();
    probe_missing.automerge_sync[0].doc = made_up.to_string();
    probe_missing.inventory = None;
    let mut probe_real = request.clone();
    probe_real.inventory = None;
    let answers: Vec<wire::Head> = [probe_real, probe_missing]
        .into_iter()
        .map(|r| {
            let mut head = first_head(&world.state.sync.round(&zed.device, r).unwrap());
            head.automerge_sync.iter_mut().for_each(|m| m.doc.clear());
            head
        })
        .collect();
    let body = world.state.sync.round(&zed.device, request).unwrap();
    assert!(
        !body.windows(8).any(|w| w == b"Grace Pi"),
        "no record content in the answer"
    );
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

fn raw_push(doc: &DocId, bytes: Vec<u8>, actors: Vec<Vec<u8>>) -> Request {
    Request {
        protocol: wire::PROTOCOL,
        min_protocol: wire::MIN_PROTOCOL,
        actors: actors.into_iter().map(ByteBuf::from).collect(),
        pushes: vec![Push {
            doc: doc.to_string(),
            base: vec![],
            heads: vec![],
            bytes: ByteBuf::from(bytes),
        }],
        ..Request::default()
    }
}

#[test]
fn authorship_cannot_be_forged_by_author_or_by_actor() {
    use automerge::transaction::Transactable;
    let Team {
        world,
        team,
        mut phones,
        workers,
    } = north_team();
    let pid = phones[0]
        .store()
        .create_person(&person("Hilda Yare", &team, &[&workers[0]]))
        .unwrap();
    world.sync(&mut phones[0]).unwrap();
    world.sync(&mut phones[1]).unwrap();
    let ann_actor = {
        let bytes = phones[0].store().export_changes(&pid, &[]).unwrap();
        let doc = automerge::AutoCommit::load(&bytes).unwrap();
        let actors = doc.get_actors_for_author(&automerge::Author::from(b"sw-ann/sw-ann-phone".to_vec()));
        assert_eq!(actors.len(), 1);
        actors[0].clone()
    };
    let before = world.storage.doc(&pid).unwrap().unwrap().heads;

    // Ben's phone writes a change in Ann's name, with a fresh actor of its own.
    let base = phones[1].store().export_changes(&pid, &[]).unwrap();
    let mut forged = automerge::AutoCommit::load(&base)
        .unwrap()
        .with_author(Some(automerge::Author::from(b"sw-ann/sw-ann-phone".to_vec())));
    forged.put(automerge::ROOT, "risk", "low").unwrap();
    let fresh = forged.get_actor().clone();
    let head = first_head(
        &world
            .state
            .sync
            .round(
                &phones[1].device,
                raw_push(&pid, forged.save(), vec![fresh.to_bytes().to_vec()]),
            )
            .unwrap(),
    );
    assert!(head.refused[0].reason.contains("another author"), "{:?}", head.refused);

    // Ben's phone writes in its own name but under Ann's registered actor.
    let mut stolen = automerge::AutoCommit::load(&base)
        .unwrap()
        .with_actor(ann_actor.clone())
        .with_author(Some(automerge::Author::from(b"sw-ben/sw-ben-phone".to_vec())));
    stolen.put(automerge::ROOT, "risk", "low").unwrap();
    let head = first_head(
        &world
            .state
            .sync
            .round(
                &phones[1].device,
                raw_push(&pid, stolen.save(), vec![ann_actor.to_bytes().to_vec()]),
            )
            .unwrap(),
    );
    assert_eq!(head.refused.len(), 1, "{head:?}");
    assert!(head.acks.is_empty());
    assert_eq!(
        world.storage.doc(&pid).unwrap().unwrap().heads,
        before,
        "nothing forged was stored"
    );
}

#[test]
fn a_reassigned_person_leaves_devices_but_unsynced_edits_reach_the_server_first() {
    let Team {
        world,
        team,
        mut phones,
        workers,
    } = north_team();
    let pid = phones[0]
        .store()
        .create_person(&person("Ivy Lunn", &team, &[&workers[0]]))
        .unwrap();
    let vid = phones[0].store().create_visit(&visit(&pid, &workers[0])).unwrap();
    world.sync(&mut phones[0]).unwrap();
    world.sync(&mut phones[1]).unwrap();
    // Ben writes offline; then the person moves to the south team.
    append(&mut phones[1], &vid, "moved to her sister's ");
    let south = world.team("south", ScopePolicy::Team);
    let sam = world.worker("sw-sam", &south, Role::Worker);
    let mut sam_phone = world.enrol(&sam, "sam-phone");
    world.storage.reassign(&pid, &south).unwrap();

    let ann = world.sync(&mut phones[0]).unwrap();
    assert_eq!(ann.dropped, 1);
    assert!(matches!(
        phones[0].store().visit(&vid),
        Err(outpost_core::Error::NotFound(_))
    ));
    assert!(phones[0].store().documents_of_person(&pid).unwrap().is_empty());

    let ben = world.sync(&mut phones[1]).unwrap();
    assert_eq!((ben.docs_pushed, ben.dropped), (1, 1), "{ben:?}");
    assert!(phones[1].store().documents_of_person(&pid).unwrap().is_empty());

    world.sync(&mut sam_phone).unwrap();
    assert!(what_matters(&mut sam_phone, &vid).contains("moved to her sister's"));
    // Once they reported the drop, the server stops telling them.
    world.sync(&mut phones[0]).unwrap();
    assert_eq!(world.sync(&mut phones[0]).unwrap().dropped, 0);
}

#[test]
fn a_device_restored_from_an_old_copy_gets_its_offline_edits_to_the_server() {
    let Team {
        world,
        team,
        mut phones,
        workers,
    } = north_team();
    let pid = phones[0]
        .store()
        .create_person(&person("Jack Orme", &team, &[&workers[0]]))
        .unwrap();
    let vid = phones[0].store().create_visit(&visit(&pid, &workers[0])).unwrap();
    append(&mut phones[0], &vid, "first visit. ");
    world.sync(&mut phones[0]).unwrap();
    let backup = phones[0].path.with_extension("backup");
    phones[0].store().backup_to(&backup).unwrap();

    append(&mut phones[0], &vid, "after the backup. ");
    world.sync(&mut phones[0]).unwrap();

    // The phone is restored from the old copy, and the worker writes before any signal.
    phones[0].restore_from(&backup);
    assert!(!what_matters(&mut phones[0], &vid).contains("after the backup"));
    append(&mut phones[0], &vid, "written on the restored phone. ");
    world.sync(&mut phones[0]).unwrap();
    world.sync(&mut phones[1]).unwrap();

    let text = what_matters(&mut phones[1], &vid);
    for part in ["first visit.", "after the backup.", "written on the restored phone."] {
        assert!(text.contains(part), "{part:?} missing from {text:?}");
    }
    assert_eq!(what_matters(&mut phones[0], &vid), text);
}

#[test]
fn after_a_restore_from_an_older_backup_devices_bring_the_server_back_to_convergence() {
    let Team {
        mut world,
        team,
        mut phones,
        workers,
    } = north_team();
    let pid = phones[0]
        .store()
        .create_person(&person("Lena Crook", &team, &[&workers[0]]))
        .unwrap();
    let vid = phones[0].store().create_visit(&visit(&pid, &workers[0])).unwrap();
    append(&mut phones[0], &vid, "before the backup. ");
    world.sync(&mut phones[0]).unwrap();
    world.sync(&mut phones[1]).unwrap();
    let backup = world.dir.path().join("nightly.sqlite3");
    world.storage.backup(&backup).unwrap();

    // After the backup: a new device is enrolled, Ann relaunches (a new actor), both write.
    let cat = workers[2].clone();
    let mut cat_phone = world.enrol(&cat, "cat-new-phone");
    world.sync(&mut cat_phone).unwrap();
    append(&mut cat_phone, &vid, "cat after the backup. ");
    let v2 = cat_phone.store().create_visit(&visit(&pid, &cat)).unwrap();
    world.sync(&mut cat_phone).unwrap();
    phones[0].relaunch();
    append(&mut phones[0], &vid, "ann after the backup. ");
    world.sync(&mut phones[0]).unwrap();
    world.sync(&mut phones[1]).unwrap();

    world.restore(&backup);
    assert!(
        world.storage.doc(&v2).unwrap().is_none(),
        "the restore lost the later work"
    );

    world.sync(&mut phones[0]).unwrap();
    let lost = world.sync(&mut cat_phone).unwrap_err();
    assert!(matches!(lost, outpost_server::Error::Unauthenticated(_)), "{lost}");
    world.reenrol(&mut cat_phone);
    world.sync(&mut cat_phone).unwrap();
    for phone in phones.iter_mut() {
        world.sync(phone).unwrap();
    }
    world.sync(&mut cat_phone).unwrap();

    let text = what_matters(&mut phones[1], &vid);
    for part in ["before the backup.", "cat after the backup.", "ann after the backup."] {
        assert!(text.contains(part), "{part:?} missing from {text:?}");
    }
    for phone in phones.iter_mut().chain([&mut cat_phone]) {
        assert_eq!(what_matters(phone, &vid), text);
        for doc in [&vid, &v2, &pid] {
            assert_eq!(
                phone.store().heads(doc).unwrap(),
                world.storage.doc(doc).unwrap().unwrap().heads
            );
        }
    }
}

/// The north team, where Ann's phone has recorded three people with a visit each, whose notes
/// say `repeat` times that they grow tomatoes, and synced them.
fn tomato_growers(repeat: usize) -> Team {
    let mut team = north_team();
    for name in ["Nora Bell", "Olive Hart", "Percy Dunn"] {
        let pid = team.phones[0]
            .store()
            .create_person(&person(name, &team.team, &[&team.workers[0]]))
            .unwrap();
        let vid = team.phones[0]
            .store()
            .create_visit(&visit(&pid, &team.workers[0]))
            .unwrap();
        let notes = format!("{name} grows tomatoes on the allotment. ").repeat(repeat);
        append(&mut team.phones[0], &vid, &notes);
    }
    team.world.sync(&mut team.phones[0]).unwrap();
    team
}

/// Syncs `phone` offering only `capabilities`; returns the sizes of the index rows that came with
/// whole documents, and whether each was compressed (did not start as a CBOR array).
fn sync_offering(world: &World, phone: &mut Phone, capabilities: &[&str]) -> Vec<(usize, bool)> {
    let device = world
        .storage
        .authenticate(&outpost_server::auth::hash_secret(&phone.credential))
        .unwrap()
        .unwrap();
    let mut client = outpost_core::sync::SyncClient::new(outpost_tests::world::PEER);
    let mut store = phone.store();
    let mut rows = Vec::new();
    while let Some(request) = client.next_request(&mut store).unwrap() {
        let mut request: Request = wire::decode_one(&request, "sync request").unwrap();
        request.capabilities = capabilities.iter().map(|c| c.to_string()).collect();
        let response = world.state.sync.round(&device, request).unwrap();
        let mut reader = wire::FrameReader::default();
        reader.push(&response);
        while let Some(frame) = reader.next::<wire::Frame>("sync response").unwrap() {
            if let wire::Frame::Indexed(_, _, _, _, shipped) = frame {
                rows.push((shipped.len(), !matches!(shipped.first(), Some(0x80..=0x9f))));
            }
        }
        client.receive(&mut store, &response).unwrap();
        client.end_response(&mut store).unwrap();
    }
    rows
}

#[test]
fn index_rows_travel_compressed_and_a_device_offering_only_the_older_format_reads_them_too() {
    let Team {
        world,
        team,
        mut phones,
        ..
    } = tomato_growers(20);

    let older = sync_offering(&world, &mut phones[1], &[wire::CAP_INDEX]);
    let newer = sync_offering(&world, &mut phones[2], &[wire::CAP_INDEX, wire::CAP_INDEX_DEFLATE]);
    assert_eq!(older.len(), 9, "every document came whole with its rows: {older:?}");
    assert_eq!(newer.len(), 9, "{newer:?}");
    assert!(older.iter().all(|(_, compressed)| !compressed), "{older:?}");
    assert!(newer.iter().all(|(_, compressed)| *compressed), "{newer:?}");
    let total = |rows: &[(usize, bool)]| rows.iter().map(|(len, _)| len).sum::<usize>();
    assert!(
        total(&newer) * 2 < total(&older),
        "compressed rows {} bytes against {} uncompressed",
        total(&newer),
        total(&older)
    );
    // Both devices can list and search at once, and hold the rows their own index would.
    for phone in [&phones[1], &phones[2]] {
        assert_eq!(phone.store().team_caseload(&team).unwrap().len(), 3);
        assert_eq!(phone.store().search("tomatoes", 10).unwrap().len(), 3);
        assert_eq!(
            phone.store().index_dump().unwrap(),
            phones[0].store().index_dump().unwrap()
        );
    }
}

#[test]
fn a_fresh_device_can_use_its_caseload_before_verifying_it_and_verification_changes_nothing() {
    let Team {
        world,
        team,
        mut phones,
        ..
    } = tomato_growers(1);

    // Ben's new phone: listed and searchable straight from the rows the server sent.
    world.sync(&mut phones[1]).unwrap();
    let (caseload, hits, shipped) = {
        let store = phones[1].store();
        (
            store.team_caseload(&team).unwrap(),
            store.search("tomatoes", 10).unwrap(),
            store.index_dump().unwrap(),
        )
    };
    assert_eq!(caseload.len(), 3);
    assert_eq!(hits.len(), 3);
    let verified = phones[1].store().verify_received(1_000).unwrap();
    assert_eq!((verified.verified, verified.remaining), (9, 0), "{verified:?}");
    assert!(verified.removed.is_empty());
    assert_eq!(
        phones[1].store().index_dump().unwrap(),
        shipped,
        "the shipped rows are the device's own"
    );
    assert_eq!(
        phones[1].store().index_dump().unwrap(),
        phones[0].store().index_dump().unwrap()
    );

    // A document damaged on disk before it was verified is removed, then fetched again.
    world.sync(&mut phones[2]).unwrap();
    let damaged = phones[2].store().search("Olive", 1).unwrap()[0].visit.clone();
    {
        let conn = rusqlite::Connection::open(&phones[2].path).unwrap();
        conn.execute(
            "UPDATE documents SET snapshot = substr(snapshot, 1, length(snapshot) - 9) WHERE doc_id = ?1",
            [damaged.as_str()],
        )
        .unwrap();
    }
    let verified = phones[2].store().verify_received(1_000).unwrap();
    assert_eq!(verified.removed.len(), 1, "{verified:?}");
    assert_eq!(verified.removed[0].0, damaged);
    assert!(phones[2].store().visit(&damaged).is_err());
    world.sync(&mut phones[2]).unwrap();
    assert!(what_matters(&mut phones[2], &damaged).contains("Olive Hart grows tomatoes"));
}
