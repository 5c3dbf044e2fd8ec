//! Three devices of one team and the server, over real TLS on a loopback port: concurrent,
//! different edits to one person's records converge everywhere, identical to the server's.
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use outpost_core::net::SyncOptions;
use outpost_core::{NewPerson, NewVisit, RiskTier, Section, Setting};
use outpost_server::storage::{Documents, Role, ScopePolicy};
use outpost_tests::world::{PEER, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_over_tls_converge_with_the_server() {
    let world = World::new();
    let team = world.team("north", ScopePolicy::Team);
    let workers: Vec<_> = ["sw-ann", "sw-ben", "rn-cat"]
        .iter()
        .map(|w| world.worker(w, &team, Role::Worker))
        .collect();
    let phones: Vec<_> = workers.iter().map(|w| world.enrol(w, &format!("{w}-phone"))).collect();
    let served = world.serve();
    let mut clients: Vec<_> = phones.iter().map(|p| p.client(served.addr, &served.ca_pem)).collect();

    let (person, visit) = {
        let mut store = phones[0].store();
        let person = store
            .create_person(&NewPerson {
                name: "Mabel Troy".into(),
                preferred_name: None,
                date_of_birth: None,
                nhs_number: None,
                address: None,
                team: team.clone(),
                allocated_workers: vec![workers[0].clone()],
                risk: RiskTier::High,
            })
            .unwrap();
        let visit = store
            .create_visit(&NewVisit {
                person: person.clone(),
                worker: workers[0].clone(),
                at: Utc.with_ymd_and_hms(2026, 11, 19, 14, 0, 0).unwrap(),
                setting: Setting::HomeVisit,
            })
            .unwrap();
        (person, visit)
    };
    for (phone, client) in phones.iter().zip(&mut clients) {
        client.sync(phone.shared.clone(), SyncOptions::default()).await.unwrap();
    }
    // Each writes offline, into the visit and the person record.
    let words = [
        "kitchen is safer now ",
        "wants the day centre ",
        "wound dressed, healing ",
    ];
    for (phone, word) in phones.iter().zip(words) {
        let mut store = phone.store();
        let len = store.visit(&visit).unwrap().section(Section::Goals).chars().count();
        store
            .edit_visit(&visit, |v| v.splice(Section::Goals, len, 0, word))
            .unwrap();
        store
            .edit_person(&person, |p| p.set_preferred_name(Some(word.trim())))
            .unwrap();
    }
    for _ in 0..2 {
        for i in [2, 0, 1] {
            clients[i]
                .sync(phones[i].shared.clone(), SyncOptions::default())
                .await
                .unwrap();
        }
    }
    let server_visit = world.storage.doc(&visit).unwrap().unwrap();
    let server_person = world.storage.doc(&person).unwrap().unwrap();
    let mut texts = Vec::new();
    for phone in &phones {
        let mut store = phone.store();
        assert_eq!(store.heads(&visit).unwrap(), server_visit.heads);
        assert_eq!(store.heads(&person).unwrap(), server_person.heads);
        assert_eq!(store.sync_status(PEER).unwrap().pending_docs, 0);
        texts.push(store.visit(&visit).unwrap().section(Section::Goals).to_string());
        // Three people set the preferred name at once: all three values are kept to choose from.
        let preferred = store.person(&person).unwrap().preferred_name.unwrap();
        assert_eq!(preferred.concurrent.len() + 1, 3, "{preferred:?}");
    }
    assert!(texts.iter().all(|t| *t == texts[0]));
    // Nothing new: a cursor up and an empty answer down, one round trip.
    let noop = clients[0]
        .sync(phones[0].shared.clone(), SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(noop.rounds, 1);
    assert!(
        noop.request_body_bytes < 1024 && noop.response_body_bytes < 1024,
        "{noop:?}"
    );
    for word in words {
        assert!(texts[0].contains(word), "{word:?} lost from {:?}", texts[0]);
    }
}
