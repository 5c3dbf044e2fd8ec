//! The fuzz targets' seed corpora and every crasher the fuzzers kept, replayed through the same
//! target functions the libFuzzer binaries call (tests/fuzz/src, included here by path), so each
//! is an ordinary test: handled without a panic and as the target's properties require.
//!
//! The seeds are real messages from an in-process server and devices, written by
//! `cargo test -p outpost-tests --test fuzz_corpus -- --ignored write_seed_corpus`.
#![allow(clippy::unwrap_used)]

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::path::{Path, PathBuf};

use automerge::AutoCommit;
use chrono::{TimeZone, Utc};
use outpost_core::sync::SyncClient;
use outpost_core::sync::wire::{self, AutomergeSync, DocHeads, End, Frame, Head, Refusal, Request};
use outpost_core::{
    DocId, NewAction, NewPerson, NewVisit, ReviewAction, RiskTier, Section, Setting, Store, TeamId, WorkerId,
};
use outpost_server::storage::{Documents, Role, ScopePolicy};
use outpost_tests::world::{PEER, Phone, World};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Files in `dir`, sorted; none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Whether a kept input made libFuzzer run out of memory or time rather than crash: replayed
/// only by `slow_crashers_are_handled` (tests/fuzz/KNOWN.md), since each costs gigabytes or
/// tens of seconds until Automerge bounds what it decodes.
fn is_slow(file: &Path) -> bool {
    let name = file.file_name().unwrap().to_string_lossy();
    name.starts_with("oom-") || name.starts_with("timeout-")
}

/// Every seed and crasher of `target` through its function; each must pass.
fn replay(target: &str) {
    let seeds = files_in(&fuzz_dir().join("corpus").join(target));
    assert!(
        seeds.len() >= 20,
        "{target}: only {} seeds; write them again",
        seeds.len()
    );
    let crashers: Vec<PathBuf> = files_in(&fuzz_dir().join("artifacts").join(target))
        .into_iter()
        .filter(|f| !is_slow(f))
        .collect();
    run_all(target, seeds.iter().chain(&crashers));
    eprintln!(
        "{target}: {} seeds and {} crashers replayed",
        seeds.len(),
        crashers.len()
    );
}

fn run_all<'a>(target: &str, files: impl Iterator<Item = &'a PathBuf>) {
    let (_, run) = targets::TARGETS.iter().find(|(name, _)| *name == target).unwrap();
    let mut failed = Vec::new();
    for file in files {
        let data = std::fs::read(file).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: failed on {failed:#?}");
}

#[test]
#[ignore = "allocates gigabytes or runs for tens of seconds per input; see tests/fuzz/KNOWN.md"]
fn slow_crashers_are_handled() {
    for (target, _) in targets::TARGETS {
        let slow: Vec<PathBuf> = files_in(&fuzz_dir().join("artifacts").join(target))
            .into_iter()
            .filter(|f| is_slow(f))
            .collect();
        run_all(target, slow.iter());
    }
}

#[test]
fn sync_request_corpus() {
    replay("sync_request");
}

#[test]
fn sync_response_corpus() {
    replay("sync_response");
}

#[test]
fn sync_apply_corpus() {
    replay("sync_apply");
}

#[test]
fn document_load_corpus() {
    replay("document_load");
}

#[test]
fn document_import_corpus() {
    replay("document_import");
}

#[test]
fn enrolment_corpus() {
    replay("enrolment");
}

#[test]
fn sign_in_corpus() {
    replay("sign_in");
}

#[test]
fn every_target_is_a_fuzz_binary_and_replayed() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let this = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus.rs")).unwrap();
    for (name, _) in targets::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} is not a fuzz binary"
        );
        assert!(this.contains(&format!("replay(\"{name}\")")), "{name} is not replayed");
        assert!(fuzz_dir().join("fuzz_targets").join(format!("{name}.rs")).is_file());
    }
}

#[test]
fn repaired_checksums_load_and_damaged_ones_do_not() {
    let mut doc = AutoCommit::new();
    automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "type", "visit").unwrap();
    let saved = doc.save();
    let mut damaged = saved.clone();
    damaged[4] ^= 0xff;
    assert!(AutoCommit::load(&damaged).is_err());
    assert_eq!(targets::repair_checksums(&damaged), saved);
}

// ---- the seed generator ----------------------------------------------------------------------

/// Writes every target's seeds (replacing the previous ones) and the import target's base.
#[test]
#[ignore = "writes the committed seed corpus; run by hand"]
fn write_seed_corpus() {
    let mut seeds = Seeds::default();
    sync_seeds(&mut seeds);
    enrolment_seeds(&mut seeds);
    sign_in_seeds(&mut seeds);
    for (target, inputs) in &seeds.by_target {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for old in files_in(&dir) {
            if old.file_name().unwrap().to_string_lossy().starts_with("seed-") {
                std::fs::remove_file(old).unwrap();
            }
        }
        for input in inputs {
            let name: String = Sha256::digest(input)[..8].iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(dir.join(format!("seed-{name}")), input).unwrap();
        }
        eprintln!("{target}: {} seeds", inputs.len());
    }
}

#[derive(Default)]
struct Seeds {
    by_target: std::collections::BTreeMap<&'static str, std::collections::BTreeSet<Vec<u8>>>,
}

impl Seeds {
    fn add(&mut self, target: &'static str, input: Vec<u8>) {
        self.by_target.entry(target).or_default().insert(input);
    }

    /// A document for both document targets, raw and with checksums repaired.
    fn document(&mut self, bytes: &[u8]) {
        for mode in [0u8, 1] {
            self.add("document_load", [&[mode][..], bytes].concat());
            self.add("document_import", [&[mode][..], bytes].concat());
        }
    }
}

/// One whole sync of `phone`, keeping every request and answer as seeds.
fn sync_keeping(world: &World, phone: &Phone, seeds: &mut Seeds) {
    let mut client = SyncClient::new(PEER);
    let mut store = phone.store();
    while let Some(request) = client.next_request(&mut store).unwrap() {
        let decoded: Request = wire::decode_one(&request, "sync request").unwrap();
        let answer = world.state.sync.round(&phone.device, decoded).unwrap();
        client.receive(&mut store, &answer).unwrap();
        client.end_response(&mut store).unwrap();
        seeds.add("sync_request", request);
        seeds.add("sync_apply", answer.clone());
        seeds.add("sync_response", answer);
    }
}

fn type_words(store: &mut Store, visit: &DocId, section: Section, words: &str) {
    for word in words.split_inclusive(' ') {
        let at = store.visit(visit).unwrap().section(section).chars().count();
        store.edit_visit(visit, |v| v.splice(section, at, 0, word)).unwrap();
    }
}

/// A team's day: people, visits typed word by word, actions, submissions, a lead's decisions,
/// a second worker's concurrent edits; every sync's bytes and every document kept.
fn sync_seeds(seeds: &mut Seeds) {
    let world = World::new();
    let team = world.team("north", ScopePolicy::Team);
    let ann_id = world.worker("sw-ann", &team, Role::Worker);
    let ben_id = world.worker("sw-ben", &team, Role::Worker);
    let lead = world.worker("lead-bea", &team, Role::Lead);
    let ann = world.enrol(&ann_id, "ann-phone");
    let ben = world.enrol(&ben_id, "ben-phone");
    sync_keeping(&world, &ann, seeds);

    let mut visits = Vec::new();
    let mut people = Vec::new();
    for (i, name) in ["Kath Ruddock", "Mo Farrah-Hill"].into_iter().enumerate() {
        let mut store = ann.store();
        let person = store
            .create_person(&NewPerson {
                name: name.into(),
                preferred_name: Some("Kath".into()),
                date_of_birth: chrono::NaiveDate::from_ymd_opt(1941, 5, 2),
                nhs_number: Some("943 476 5919".into()),
                address: Some(format!("{} Mill Lane, Hexham", i + 3)),
                team: TeamId::new("north").unwrap(),
                allocated_workers: vec![ann_id.clone()],
                risk: RiskTier::Medium,
            })
            .unwrap();
        for hour in 0..2 {
            let visit = store
                .create_visit(&NewVisit {
                    person: person.clone(),
                    worker: ann_id.clone(),
                    at: Utc.with_ymd_and_hms(2026, 3, 2, 9 + hour, 0, 0).unwrap(),
                    setting: Setting::HomeVisit,
                })
                .unwrap();
            type_words(
                &mut store,
                &visit,
                Section::WhatMatters,
                "Her garden, and the choir on Sundays. ",
            );
            type_words(
                &mut store,
                &visit,
                Section::Strengths,
                "Cooks for her neighbour; café friends. ",
            );
            store
                .edit_visit(&visit, |v| {
                    v.add_action(&NewAction {
                        what: "Ask about a lift to choir".into(),
                        who: "son".into(),
                        due: chrono::NaiveDate::from_ymd_opt(2026, 3, 9),
                    })?;
                    Ok(())
                })
                .unwrap();
            visits.push(visit);
        }
        people.push(person);
    }
    // The import target's base: a visit as saved, and changes a colleague made on top of it.
    let base = ann.store().export_changes(&visits[0], &[]).unwrap();
    std::fs::write(fuzz_dir().join("fixtures").join("import_base.automerge"), &base).unwrap();
    import_seeds(&base, seeds);

    let before = ann.store().heads(&visits[0]).unwrap();
    sync_keeping(&world, &ann, seeds);
    sync_keeping(&world, &ann, seeds);
    sync_keeping(&world, &ben, seeds);
    for round in 0..6 {
        let visit = &visits[round % visits.len()];
        let decide = round % 2 == 0 && round < visits.len();
        type_words(&mut ann.store(), visit, Section::Goals, "Walk to the shop again. ");
        type_words(&mut ben.store(), visit, Section::Goals, "Physio on Tuesdays. ");
        ben.store()
            .edit_visit(visit, |v| v.set_setting(Setting::Clinic))
            .unwrap();
        if decide {
            ann.store().review_visit(visit, ReviewAction::Submit, None).unwrap();
        }
        sync_keeping(&world, &ann, seeds);
        sync_keeping(&world, &ben, seeds);
        if decide {
            let action = if round == 2 {
                ReviewAction::Return
            } else {
                ReviewAction::Approve
            };
            let comment = (action == ReviewAction::Return).then_some("Add what the GP said.");
            outpost_server::review::decide(&world.state.sync, &lead, visit, action, comment, None, "").unwrap();
        }
    }
    sync_keeping(&world, &ann, seeds);

    let mut store = ann.store();
    for (doc, _) in store.all_heads().unwrap() {
        seeds.document(&store.export_changes(&doc, &[]).unwrap());
        if let Some(stored) = world.storage.doc(&doc).unwrap() {
            seeds.document(&stored.snapshot);
        }
    }
    seeds.document(&store.export_changes(&visits[0], &before).unwrap());
    crafted_messages(&mut store, &visits, seeds);
}

/// Changes on top of the import base, for the import target's "onto the visit held" mode.
fn import_seeds(base: &[u8], seeds: &mut Seeds) {
    let dir = tempfile::tempdir().unwrap();
    let author = outpost_core::Author::new(
        WorkerId::new("sw-cat").unwrap(),
        outpost_core::DeviceId::new("cat-phone").unwrap(),
    );
    let mut store = Store::open(dir.path().join("s.sqlite3"), author).unwrap();
    let visit = DocId::new(targets::IMPORT_BASE_ID).unwrap();
    store.import_changes(&visit, base).unwrap();
    let base_heads = store.heads(&visit).unwrap();
    for (i, words) in [
        "Sleeps badly. ",
        "Pain in her hip when walking. ",
        "Daughter visits on Fridays. ",
    ]
    .into_iter()
    .enumerate()
    {
        let before = store.heads(&visit).unwrap();
        type_words(&mut store, &visit, Section::RisksAndConcerns, words);
        if i == 1 {
            store
                .edit_visit(&visit, |v| {
                    v.add_action(&NewAction {
                        what: "GP review of pain relief".into(),
                        who: "cat".into(),
                        due: None,
                    })?;
                    v.set_setting(Setting::Phone)
                })
                .unwrap();
        }
        for since in [&before, &base_heads] {
            let changes = store.export_changes(&visit, since).unwrap();
            for mode in [2u8, 3] {
                seeds.add("document_import", [&[mode][..], &changes].concat());
            }
        }
    }
}

/// Messages a normal day does not produce: an inventory after a restore, Automerge sync
/// messages, drops, refusals, a paged answer, and the smallest of each.
fn crafted_messages(store: &mut Store, visits: &[DocId], seeds: &mut Seeds) {
    let inventory: Vec<DocHeads> = store
        .all_heads()
        .unwrap()
        .into_iter()
        .map(|(doc, heads)| DocHeads {
            doc: doc.to_string(),
            heads: wire::hashes_to_wire(&heads),
        })
        .collect();
    let doc = AutoCommit::load(&store.export_changes(&visits[1], &[]).unwrap()).unwrap();
    let message = {
        use automerge::sync::SyncDoc;
        let mut doc = doc.clone();
        let mut state = automerge::sync::State::new();
        doc.sync().generate_sync_message(&mut state).unwrap().encode()
    };
    let sync = vec![AutomergeSync {
        doc: visits[1].to_string(),
        message: ByteBuf::from(message),
    }];
    let base = Request {
        protocol: wire::PROTOCOL,
        min_protocol: wire::MIN_PROTOCOL,
        capabilities: wire::CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        epoch: Some("epoch-1".into()),
        cursor: 42,
        ..Request::default()
    };
    for request in [
        Request::default(),
        base.clone(),
        Request {
            inventory: Some(inventory.clone()),
            ..base.clone()
        },
        Request {
            automerge_sync: sync.clone(),
            actors: vec![ByteBuf::from(vec![7; 16])],
            ..base.clone()
        },
        Request {
            dropped: vec![visits[0].to_string()],
            protocol: 9,
            min_protocol: 7,
            capabilities: vec!["teleport".into()],
            ..base.clone()
        },
    ] {
        seeds.add("sync_request", wire::encode(&request));
    }
    let head = Head {
        protocol: wire::PROTOCOL,
        epoch: "epoch-1".into(),
        ..Head::default()
    };
    let bytes = ByteBuf::from(store.export_changes(&visits[1], &[]).unwrap());
    for (head, frames) in [
        (
            Head {
                epoch_changed: true,
                ..head.clone()
            },
            vec![],
        ),
        (
            Head {
                diverged: vec![visits[1].to_string()],
                automerge_sync: sync.clone(),
                drop: vec![visits[0].to_string()],
                refused: vec![Refusal {
                    doc: visits[0].to_string(),
                    reason: "the document is pushed more than once in one request".into(),
                }],
                acks: inventory.clone(),
                ..head.clone()
            },
            vec![Frame::Doc(3, visits[1].to_string(), bytes.clone())],
        ),
        (
            head.clone(),
            vec![Frame::Indexed(
                9,
                visits[1].to_string(),
                bytes,
                inventory[0].heads.clone(),
                ByteBuf::from(outpost_core::sync::index_rows(&doc, &visits[1]).unwrap()),
            )],
        ),
    ] {
        let mut body = wire::encode(&Frame::Head(head));
        for frame in frames {
            body.extend(wire::encode(&frame));
        }
        body.extend(wire::encode(&Frame::End(End { cursor: 9, more: true })));
        seeds.add("sync_apply", body.clone());
        seeds.add("sync_response", body);
    }
}

fn enrolment_seeds(seeds: &mut Seeds) {
    let code = "K7QM-3XPD-W9HT-RB2F";
    let long = "x".repeat(65);
    for body in [
        serde_json::json!({ "code": code, "label": "Ann's phone" }),
        serde_json::json!({ "code": "k7qm 3xpd w9ht rb2f", "label": "  Tablet (ward 3)  " }),
        serde_json::json!({ "code": code, "label": "Pixel 8", "device": "dev-3f2a9c" }),
        serde_json::json!({ "code": code, "label": "Pixel 8", "device": null }),
        serde_json::json!({ "code": code, "label": "Pixel 8", "device": "" }),
        serde_json::json!({ "code": code, "label": "Pixel 8", "device": "a/b" }),
        serde_json::json!({ "code": code, "label": "Pixel 8", "device": "d".repeat(129) }),
        serde_json::json!({ "code": code, "label": "   " }),
        serde_json::json!({ "code": code, "label": long }),
        serde_json::json!({ "code": code, "label": "tab\u{7}let" }),
        serde_json::json!({ "code": code, "label": "Téléphone de Zoë 📱" }),
        serde_json::json!({ "code": code, "label": "x".repeat(64) }),
        serde_json::json!({ "code": "", "label": "phone" }),
        serde_json::json!({ "code": code }),
        serde_json::json!({ "label": "phone" }),
        serde_json::json!({ "code": 5, "label": "phone" }),
        serde_json::json!({ "code": code, "label": ["phone"] }),
        serde_json::json!({ "code": code, "label": "phone", "future": { "attestation": "abc" } }),
        serde_json::json!([code, "phone"]),
        serde_json::json!(null),
    ] {
        seeds.add("enrolment", body.to_string().into_bytes());
    }
    for raw in [
        "",
        "{",
        "{\"code\":\"K7QM\",\"label\":\"a\\u0000b\"}",
        "{\"code\":\"K7QM\",\"label\":\"\\ud800\"}",
        "{\"code\":\"K7QM\",\"code\":\"X\",\"label\":\"a\"}",
        "{\"code\":\"K7QM\",\"label\":\"a\"} trailing",
        "\u{feff}{\"code\":\"K7QM\",\"label\":\"a\"}",
        "{\"code\":\"K7QM\",\"label\":\"\u{2028}\"}",
    ] {
        seeds.add("enrolment", raw.as_bytes().to_vec());
    }
}

fn sign_in_seeds(seeds: &mut Seeds) {
    let token = "q3Zk1yH0m9x_eW2rV4tB8nC6pL5sA7dF0gJ2hK4lM6o";
    let cookie = format!("__Host-outpost-sign-in={token}");
    let form = |fields: &[(&str, &str)]| serde_urlencoded::to_string(fields).unwrap();
    let bodies = [
        form(&[
            ("csrf", token),
            ("username", "lead-bea"),
            ("password", "correct horse battery"),
        ]),
        form(&[
            ("csrf", token),
            ("next", "/review/visit/3f2a?page=2"),
            ("username", "lead-bea"),
            ("password", "correct horse battery"),
        ]),
        form(&[
            ("csrf", token),
            ("next", "//evil.example/review"),
            ("username", "bea"),
            ("password", "p"),
        ]),
        form(&[
            ("csrf", token),
            ("next", "/review\\..\\x"),
            ("username", "bea"),
            ("password", "p"),
        ]),
        form(&[
            ("csrf", token),
            ("next", "https://evil.example/"),
            ("username", "bea"),
            ("password", "p"),
        ]),
        form(&[
            ("csrf", token),
            ("next", "/reviewer"),
            ("username", "bea"),
            ("password", "p"),
        ]),
        form(&[
            ("csrf", token),
            ("next", "/review/a b"),
            ("username", " Bea "),
            ("password", ""),
        ]),
        form(&[("csrf", "wrong"), ("username", "bea"), ("password", "p")]),
        form(&[("username", "bea"), ("password", "p")]),
        form(&[("csrf", ""), ("username", "bea")]),
        form(&[("csrf", token)]),
        format!("csrf={token}&csrf=other&username=bea"),
        format!("csrf={token}&username=b%C3%A9a&password=%F0%9F%94%91"),
        format!("csrf={token}&username=%FF%FE&password=x"),
        format!("csrf={token}&next=%2Freview%0D%0ASet-Cookie:%20x=1&username=bea"),
        format!("csrf={token}&username&password="),
        format!("csrf={token};username=bea"),
        String::new(),
    ];
    let cookies = [
        cookie.clone(),
        format!("theme=dark; {cookie}; other=1"),
        format!("{cookie}; __Host-outpost-sign-in=second"),
        "__Host-outpost-sign-in=".to_string(),
        "__Host-outpost-sign-in".to_string(),
        format!("__host-outpost-sign-in={token}"),
        String::new(),
    ];
    for (i, body) in bodies.iter().enumerate() {
        seeds.add("sign_in", targets::sign_in_input(&cookies[0], body));
        seeds.add("sign_in", targets::sign_in_input(&cookies[i % cookies.len()], body));
    }
    seeds.add("sign_in", b"no newline, so no cookie: csrf=x&username=bea".to_vec());
    seeds.add("sign_in", [&b"bad\xffcookie\n"[..], bodies[0].as_bytes()].concat());
}
