//! Bad input to sync. Over real HTTP and TLS, with a valid device credential: malformed,
//! oversized, truncated and out-of-order requests each get a clear answer, nothing the server
//! stores changes, and another device goes on syncing. Then the device side: a garbled or cut
//! response is refused by name and leaves the device's store as it was.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use outpost_core::net::SyncOptions;
use outpost_core::sync::SyncClient;
use outpost_core::sync::wire::{self, End, Frame, Head, Problem, Push, Request};
use outpost_core::{
    ChangeHash, DocId, Document, Error, NewPerson, NewVisit, PersonId, RiskTier, Section, Setting, TeamId, WorkerId,
};
use outpost_server::storage::{Documents, Role, ScopePolicy, StoredDoc};
use outpost_server::sync::MAX_REQUEST_BYTES;
use outpost_tests::world::{PEER, Phone, Served, World};
use rand::{RngCore, SeedableRng};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_bytes::ByteBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Ann's phone has put a person and a visit on the server; Ben, in the same team, is the other
/// device that must go on syncing whatever Ann's phone sends.
struct Scene {
    world: World,
    ann: Phone,
    ben: Phone,
    ann_worker: WorkerId,
    person: PersonId,
    visit: DocId,
}

impl Scene {
    fn new() -> Self {
        let world = World::new();
        let team = world.team("north", ScopePolicy::Team);
        let ann_worker = world.worker("sw-ann", &team, Role::Worker);
        let ben_worker = world.worker("sw-ben", &team, Role::Worker);
        let mut ann = world.enrol(&ann_worker, "ann-phone");
        let ben = world.enrol(&ben_worker, "ben-phone");
        let person = ann.store().create_person(&new_person(&team, &ann_worker)).unwrap();
        let visit = ann.store().create_visit(&new_visit(&person, &ann_worker)).unwrap();
        append(&ann, &visit, "Likes the garden. ");
        world.sync(&mut ann).unwrap();
        Self {
            world,
            ann,
            ben,
            ann_worker,
            person,
            visit,
        }
    }

    /// Every document the server holds for the person, byte for byte, and its log head.
    fn stored(&self) -> Stored {
        Stored {
            log_head: self.world.storage.log_head().unwrap(),
            docs: self
                .world
                .storage
                .people_docs(std::slice::from_ref(&self.person))
                .unwrap(),
        }
    }

    fn server_heads(&self, doc: &DocId) -> Vec<ChangeHash> {
        self.world.storage.doc(doc).unwrap().unwrap().heads
    }

    /// Ann writes `text` (synced in process); Ben's phone then syncs over TLS with a real client
    /// and must receive it.
    async fn others_still_sync(&mut self, served: &Served, text: &str) {
        append(&self.ann, &self.visit, text);
        self.world.sync(&mut self.ann).unwrap();
        let mut client = self.ben.client(served.addr, &served.ca_pem);
        let report = client.sync(self.ben.shared.clone(), once()).await.unwrap();
        assert!(report.progress.docs_received >= 1, "{report:?}");
        assert_eq!(
            self.ben.store().heads(&self.visit).unwrap(),
            self.server_heads(&self.visit)
        );
        let got = self
            .ben
            .store()
            .visit(&self.visit)
            .unwrap()
            .section(Section::WhatMatters)
            .to_string();
        assert!(got.contains(text), "Ben's copy lacks {text:?}: {got:?}");
    }
}

#[derive(Debug, PartialEq)]
struct Stored {
    log_head: u64,
    docs: Vec<(DocId, StoredDoc)>,
}

fn new_person(team: &TeamId, worker: &WorkerId) -> NewPerson {
    NewPerson {
        name: "Ida Blake".into(),
        preferred_name: None,
        date_of_birth: None,
        nhs_number: None,
        address: Some("4 Well Lane, Alston".into()),
        team: team.clone(),
        allocated_workers: vec![worker.clone()],
        risk: RiskTier::Medium,
    }
}

fn new_visit(person: &PersonId, worker: &WorkerId) -> NewVisit {
    NewVisit {
        person: person.clone(),
        worker: worker.clone(),
        at: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap(),
        setting: Setting::HomeVisit,
    }
}

fn append(phone: &Phone, visit: &DocId, text: &str) {
    let mut store = phone.store();
    let len = store
        .visit(visit)
        .unwrap()
        .section(Section::WhatMatters)
        .chars()
        .count();
    store
        .edit_visit(visit, |v| v.splice(Section::WhatMatters, len, 0, text))
        .unwrap();
}

/// One attempt: a server that fails is a failed test, not something to retry past.
fn once() -> SyncOptions {
    SyncOptions {
        max_attempts: 1,
        ..SyncOptions::default()
    }
}

/// The request the phone's sync engine would send now, with its pending pushes.
fn pending_request(phone: &Phone) -> Request {
    let body = SyncClient::new(PEER)
        .next_request(&mut phone.store())
        .unwrap()
        .expect("a request");
    wire::decode_one(&body, "sync request").unwrap()
}

fn request(pushes: Vec<Push>) -> Request {
    Request {
        protocol: wire::PROTOCOL,
        min_protocol: wire::MIN_PROTOCOL,
        capabilities: wire::CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        pushes,
        ..Request::default()
    }
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// A frame holding `body` as its CBOR, whatever it is.
fn frame(body: &[u8]) -> Vec<u8> {
    [&(body.len() as u32).to_be_bytes()[..], body].concat()
}

/// What the server answered a hand-made request.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn problem(&self) -> Problem {
        assert!(self.head.contains("application/json"), "not a JSON problem: {self:?}");
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not a problem ({e}): {self:?}"))
    }

    /// Asserts a 400 whose problem names the sync request and `reason`.
    fn assert_bad_request(&self, case: &str, reason: &str) {
        assert_eq!(self.status, 400, "{case}: {self:?}");
        let problem = self.problem();
        assert_eq!(problem.code, "bad-request", "{case}");
        assert!(
            problem.message.contains("sync request") && problem.message.contains(reason),
            "{case}: {problem:?} should name the sync request and {reason:?}"
        );
    }

    /// The head of a whole 200 answer (which must end with an end frame).
    fn sync_head(&self) -> Head {
        assert_eq!(self.status, 200, "{self:?}");
        let mut reader = wire::FrameReader::default();
        reader.push(&self.body);
        let mut frames = Vec::new();
        while let Some(frame) = reader.next::<Frame>("sync response").unwrap() {
            frames.push(frame);
        }
        assert!(!reader.has_partial());
        assert!(matches!(frames.last(), Some(Frame::End(_))), "{frames:?}");
        match frames.swap_remove(0) {
            Frame::Head(head) => head,
            other => panic!("expected a head first, got {other:?}"),
        }
    }
}

/// POSTs `body` to the sync path over a fresh TLS connection, as `phone`.
async fn post(served: &Served, phone: &Phone, body: &[u8]) -> Answer {
    tokio::time::timeout(Duration::from_secs(60), exchange(served, &phone.credential, body))
        .await
        .expect("the server answered within a minute")
        .expect("the exchange")
}

async fn exchange(served: &Served, credential: &str, body: &[u8]) -> std::io::Result<Answer> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&served.ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = TcpStream::connect(served.addr).await?;
    let tls = TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await?;
    let (mut reader, mut writer) = tokio::io::split(tls);
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {credential}\r\n\
         Content-Type: application/x-outpost-sync\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        wire::SYNC_PATH,
        served.addr,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    // Written while the answer is read: a server may answer, and close, before taking it all.
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        let _ = writer.flush().await;
        writer
    });
    let mut raw = Vec::new();
    match reader.read_to_end(&mut raw).await {
        Ok(_) => {}
        // A server that closes without TLS's close_notify after a whole answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    drop(sending.await);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .unwrap_or_else(|| panic!("no content-length in {head}"))
        .trim()
        .parse()
        .unwrap();
    let body = raw[end + 4..].to_vec();
    assert_eq!(body.len(), length, "the whole answer arrived: {head}");
    Ok(Answer { status, head, body })
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_are_answered_400_naming_the_sync_request() {
    let mut scene = Scene::new();
    let served = scene.world.serve();
    append(&scene.ann, &scene.visit, "Pending, never stored. ");
    let pending = wire::encode(&pending_request(&scene.ann));
    let wrong_types = std::collections::BTreeMap::from([("protocol", "one"), ("min_protocol", "one")]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("random bytes", noise(4096, 7), ""),
        (
            "a huge length prefix",
            [&u32::MAX.to_be_bytes()[..], &noise(64, 8)].concat(),
            "over the",
        ),
        ("a frame of non-CBOR", frame(&[0xff; 16]), "does not decode"),
        ("a frame of random bytes", frame(&noise(512, 9)), "does not decode"),
        ("CBOR text", wire::encode(&"sync please"), "does not decode"),
        (
            "a response frame",
            wire::encode(&Frame::End(End { cursor: 3, more: false })),
            "does not decode",
        ),
        (
            "fields of the wrong type",
            wire::encode(&wrong_types),
            "does not decode",
        ),
        (
            "a request then more",
            [&pending[..], &[0, 0][..]].concat(),
            "2 bytes after the frame",
        ),
    ];
    for (i, (case, body, reason)) in cases.into_iter().enumerate() {
        let before = scene.stored();
        post(&served, &scene.ann, &body).await.assert_bad_request(case, reason);
        assert_eq!(scene.stored(), before, "{case}: the server's documents changed");
        scene.others_still_sync(&served, &format!("after case {i}. ")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_limit_is_answered_413_and_one_at_it_is_read() {
    let mut scene = Scene::new();
    let served = scene.world.serve();
    let before = scene.stored();
    // One frame of zeros (CBOR for the integer 0, then padding) filling the body.
    let body = |len: usize| {
        let mut body = vec![0; len];
        body[..4].copy_from_slice(&((len - 4) as u32).to_be_bytes());
        body
    };

    let over = post(&served, &scene.ann, &body(MAX_REQUEST_BYTES + 1)).await;
    assert_eq!(over.status, 413, "{over:?}");
    let problem: Problem = serde_json::from_slice(&over.body).unwrap();
    assert_eq!(problem.code, "too-large");
    assert!(problem.message.contains("sync request"), "{problem:?}");
    assert_eq!(scene.stored(), before);
    scene.others_still_sync(&served, "After the flood. ").await;

    // Exactly at the limit the body is read and its frame decoded (and refused: it is not a
    // request), so the limit is the one documented.
    let before = scene.stored();
    post(&served, &scene.ann, &body(MAX_REQUEST_BYTES))
        .await
        .assert_bad_request("a body at the limit", "does not decode");
    assert_eq!(scene.stored(), before);
    scene.others_still_sync(&served, "At the limit. ").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_cut_short_is_answered_400_naming_part_way() {
    let mut scene = Scene::new();
    let served = scene.world.serve();
    append(&scene.ann, &scene.visit, "Cut off mid-sentence. ");
    let request = pending_request(&scene.ann);
    assert_eq!(request.pushes.len(), 1, "the pending edit is in the request");
    let whole = wire::encode(&request);
    for cut in [0, 1, 3, 4, 5, whole.len() / 2, whole.len() - 1] {
        let before = scene.stored();
        post(&served, &scene.ann, &whole[..cut])
            .await
            .assert_bad_request(&format!("cut at {cut} of {}", whole.len()), "part-way");
        assert_eq!(scene.stored(), before, "cut at {cut}: the server's documents changed");
        scene.others_still_sync(&served, &format!("After cut {cut}. ")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_on_changes_the_server_never_saw_is_diverged_and_not_stored() {
    let mut scene = Scene::new();
    let served = scene.world.serve();
    let acked = scene.server_heads(&scene.visit);
    append(&scene.ann, &scene.visit, "First, never sent. ");
    let first = scene.ann.store().heads(&scene.visit).unwrap();
    append(&scene.ann, &scene.visit, "Second, sent alone. ");
    let second = scene.ann.store().heads(&scene.visit).unwrap();
    let second_only = scene.ann.store().export_changes(&scene.visit, &first).unwrap();
    assert!(!second_only.is_empty());

    let before = scene.stored();
    let body = wire::encode(&request(vec![Push {
        doc: scene.visit.to_string(),
        base: wire::hashes_to_wire(&first),
        heads: wire::hashes_to_wire(&second),
        bytes: ByteBuf::from(second_only),
    }]));
    let head = post(&served, &scene.ann, &body).await.sync_head();
    assert_eq!(head.diverged, vec![scene.visit.to_string()]);
    assert!(head.acks.is_empty() && head.refused.is_empty(), "{head:?}");
    assert_eq!(scene.stored(), before);
    assert_eq!(scene.server_heads(&scene.visit), acked);

    // Ann's own engine then sends both changes, in order, and they are stored.
    let mut client = scene.ann.client(served.addr, &served.ca_pem);
    client.sync(scene.ann.shared.clone(), once()).await.unwrap();
    assert_eq!(scene.server_heads(&scene.visit), second);
    scene.others_still_sync(&served, "And then the rest. ").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_for_a_person_the_server_does_not_know_is_refused_as_not_found() {
    let mut scene = Scene::new();
    let served = scene.world.serve();
    let ghost = DocId::new("no-such-person").unwrap();
    let author = scene.ann.store().author().clone();
    let (mut visit, _review) = Document::new_visit(&author, &new_visit(&ghost, &scene.ann_worker)).unwrap();
    let before = scene.stored();
    let body = wire::encode(&request(vec![Push {
        doc: visit.id().to_string(),
        base: vec![],
        heads: vec![],
        bytes: ByteBuf::from(visit.save()),
    }]));
    let head = post(&served, &scene.ann, &body).await.sync_head();
    assert!(head.acks.is_empty() && head.diverged.is_empty(), "{head:?}");
    assert_eq!(head.refused.len(), 1, "{head:?}");
    assert_eq!(head.refused[0].doc, visit.id().to_string());
    assert!(head.refused[0].reason.contains("not found"), "{:?}", head.refused[0]);
    assert_eq!(scene.stored(), before);
    assert_eq!(scene.world.storage.doc(visit.id()).unwrap(), None);
    scene.others_still_sync(&served, "Meanwhile. ").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_ids_and_undecodable_changes_are_refused_by_name_and_the_rest_is_acked() {
    let mut scene = Scene::new();
    let served = scene.world.serve();
    append(&scene.ann, &scene.visit, "The good push. ");
    let ann_heads = scene.ann.store().heads(&scene.visit).unwrap();
    let visit_bytes = scene.ann.store().export_changes(&scene.visit, &[]).unwrap();
    let person_before = scene.world.storage.doc(&scene.person).unwrap();
    let fresh = DocId::random();
    let mut request = pending_request(&scene.ann);
    assert_eq!(request.pushes.len(), 1);
    let bad = |doc: &str, bytes: Vec<u8>| Push {
        doc: doc.to_string(),
        base: vec![],
        heads: vec![],
        bytes: ByteBuf::from(bytes),
    };
    let long_id = "x".repeat(200);
    request.pushes.extend([
        bad("../../etc/passwd", visit_bytes.clone()),
        bad("", visit_bytes.clone()),
        bad(&long_id, visit_bytes),
        bad(fresh.as_str(), b"not automerge at all".to_vec()),
        bad(fresh.as_str(), noise(300, 11)),
    ]);

    let head = post(&served, &scene.ann, &wire::encode(&request)).await.sync_head();
    assert_eq!(head.acks.len(), 1, "{head:?}");
    assert_eq!(head.acks[0].doc, scene.visit.to_string());
    assert_eq!(head.acks[0].heads, wire::hashes_to_wire(&ann_heads));
    let reasons: Vec<(&str, &str)> = head
        .refused
        .iter()
        .map(|r| (r.doc.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    for (doc, reason) in &reasons[..3] {
        assert!(
            reason.contains("document id") && reason.contains("not valid"),
            "{doc:?}: {reason}"
        );
    }
    assert_eq!(reasons[3].0, fresh.as_str());
    assert!(reasons[3].1.contains("do not decode"), "{reasons:?}");
    // A second push of the same document in one request is refused as such.
    assert_eq!(reasons[4].0, fresh.as_str());
    assert!(reasons[4].1.contains("more than once"), "{reasons:?}");
    // The good push is stored; nothing else changed.
    assert_eq!(scene.server_heads(&scene.visit), ann_heads);
    assert_eq!(scene.world.storage.doc(&scene.person).unwrap(), person_before);
    assert_eq!(scene.world.storage.doc(&fresh).unwrap(), None);
    scene.others_still_sync(&served, "Still fine. ").await;
}

/// Garbage pushed onto a document the server holds is refused like garbage for a new one.
#[tokio::test(flavor = "multi_thread")]
async fn undecodable_changes_to_a_stored_document_are_refused() {
    let mut scene = Scene::new();
    let served = scene.world.serve();
    let before = scene.stored();
    let server_heads = wire::hashes_to_wire(&scene.server_heads(&scene.person));
    let body = wire::encode(&request(vec![Push {
        doc: scene.person.to_string(),
        base: server_heads.clone(),
        heads: server_heads,
        bytes: ByteBuf::from(noise(300, 12)),
    }]));
    let head = post(&served, &scene.ann, &body).await.sync_head();
    assert!(head.acks.is_empty(), "garbage was acknowledged: {head:?}");
    assert_eq!(head.refused.len(), 1, "{head:?}");
    assert!(head.refused[0].reason.contains("do not decode"), "{head:?}");
    assert_eq!(scene.stored(), before);
    scene.others_still_sync(&served, "Unmoved. ").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protocol_range_the_server_does_not_speak_is_answered_426() {
    let mut scene = Scene::new();
    let served = scene.world.serve();
    append(&scene.ann, &scene.visit, "From the future. ");
    for (min, max) in [(99, 99), (99, 120), (0, 0)] {
        let mut request = pending_request(&scene.ann);
        request.min_protocol = min;
        request.protocol = max;
        let before = scene.stored();
        let answer = post(&served, &scene.ann, &wire::encode(&request)).await;
        assert_eq!(answer.status, 426, "{min}..={max}: {answer:?}");
        let problem = answer.problem();
        assert_eq!(problem.code, "unsupported-protocol");
        assert!(
            problem.message.contains("protocol") && problem.message.contains(&format!("{min}..={max}")),
            "{problem:?}"
        );
        assert_eq!(scene.stored(), before, "{min}..={max}: the pending push was stored");
        scene
            .others_still_sync(&served, &format!("Speaking {min}..={max}. "))
            .await;
    }
}

/// What a device holds, for before-and-after comparisons.
fn device_state(phone: &Phone) -> impl PartialEq + std::fmt::Debug + use<> {
    let store = phone.store();
    (
        store.all_heads().unwrap(),
        store.index_dump().unwrap(),
        store.sync_status(PEER).unwrap(),
    )
}

#[test]
fn a_garbled_response_is_refused_by_the_device_and_changes_nothing() {
    let mut scene = Scene::new();
    scene.world.sync(&mut scene.ben).unwrap();
    append(&scene.ann, &scene.visit, "News Ben has not had. ");
    scene.world.sync(&mut scene.ann).unwrap();
    // What a server would send Ben next: the changed visit, whole, at the log head.
    let stored = scene.world.storage.doc(&scene.visit).unwrap().unwrap();
    assert_ne!(scene.ben.store().heads(&scene.visit).unwrap(), stored.heads);
    let seq = scene.world.storage.log_head().unwrap();
    let head = wire::encode(&Frame::Head(Head {
        protocol: wire::PROTOCOL,
        epoch: scene.world.storage.epoch().unwrap(),
        ..Head::default()
    }));
    let doc =
        |seq: u64, id: &str| wire::encode(&Frame::Doc(seq, id.to_string(), ByteBuf::from(stored.snapshot.clone())));
    let visit = scene.visit.to_string();
    let end = wire::encode(&Frame::End(End {
        cursor: seq,
        more: false,
    }));
    let unknown_frame = wire::encode(&std::collections::BTreeMap::from([("Teleport", 1)]));

    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a frame of non-CBOR", frame(&[0xff; 8]), "does not decode"),
        (
            "a huge length prefix",
            [&u32::MAX.to_be_bytes()[..], &noise(16, 3)].concat(),
            "over the",
        ),
        ("a frame of another kind", unknown_frame, "does not decode"),
        (
            "a request instead of a response",
            wire::encode(&request(vec![])),
            "does not decode",
        ),
        (
            "a document before the head",
            [doc(seq, &visit), end.clone()].concat(),
            "before the head",
        ),
        ("an end before the head", end.clone(), "before the head"),
        ("two heads", [head.clone(), head.clone()].concat(), "second head"),
        (
            "documents out of log order",
            [head.clone(), doc(seq, &visit), doc(seq - 1, &visit), end.clone()].concat(),
            "out of log order",
        ),
        (
            "a bad document id",
            [head.clone(), doc(seq, "../../etc/passwd"), end.clone()].concat(),
            "document id",
        ),
        (
            "valid frames then garbage",
            [head.clone(), doc(seq, &visit), frame(&[0xff; 4])].concat(),
            "does not decode",
        ),
    ];
    let before = device_state(&scene.ben);
    for (case, bytes, reason) in refused {
        let mut store = scene.ben.store();
        let mut client = SyncClient::new(PEER);
        client.next_request(&mut store).unwrap().unwrap();
        match client.receive(&mut store, &bytes) {
            Err(Error::InvalidInput { field, reason: got }) => {
                assert_eq!(field, "sync response", "{case}");
                assert!(got.contains(reason), "{case}: {got:?} should say {reason:?}");
            }
            other => panic!("{case}: {other:?}"),
        }
        // What the transport does on any failed round.
        client.abandon_round();
        drop(store);
        assert_eq!(device_state(&scene.ben), before, "{case}: the device store changed");
    }

    // A response that stops part-way through a frame: every byte is accepted as it comes, and
    // the end of the body is the error.
    let whole = [head.clone(), doc(seq, &visit), end].concat();
    for cut in [3, head.len() - 1, head.len() + 10] {
        let mut store = scene.ben.store();
        let mut client = SyncClient::new(PEER);
        client.next_request(&mut store).unwrap().unwrap();
        client.receive(&mut store, &whole[..cut]).unwrap();
        match client.end_response(&mut store) {
            Err(Error::Network(message)) => assert!(message.contains("part-way"), "{message}"),
            other => panic!("cut at {cut}: {other:?}"),
        }
        drop(store);
        assert_eq!(
            device_state(&scene.ben),
            before,
            "cut at {cut}: the device store changed"
        );
    }
    // Bytes with no round outstanding are refused too.
    let mut idle = SyncClient::new(PEER);
    let err = idle.receive(&mut scene.ben.store(), &head).unwrap_err();
    assert!(err.to_string().contains("sync response"), "{err}");

    // None of that moved Ben's cursor: a real sync still brings the visit.
    let progress = scene.world.sync(&mut scene.ben).unwrap();
    assert!(progress.docs_received >= 1, "{progress:?}");
    assert_eq!(scene.ben.store().heads(&scene.visit).unwrap(), stored.heads);
}

#[test]
fn a_damaged_document_received_whole_is_fetched_again_rather_than_stopping_every_sync() {
    // Ben lacks the visit; a faulty server sends it whole with its index rows (stored unverified
    // by design), its bytes damaged, then acknowledges it at other heads, so it is pending.
    let mut scene = Scene::new();
    let stored = scene.world.storage.doc(&scene.visit).unwrap().unwrap();
    let loaded = automerge::AutoCommit::load(&stored.snapshot).unwrap();
    let rows = outpost_core::sync::index_rows(&loaded, &scene.visit).unwrap();
    let mut damaged = stored.snapshot.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x55;
    let head = |acks: Vec<wire::DocHeads>| {
        wire::encode(&Frame::Head(Head {
            protocol: wire::PROTOCOL,
            epoch: scene.world.storage.epoch().unwrap(),
            acks,
            ..Head::default()
        }))
    };
    let seq = scene.world.storage.log_head().unwrap();
    let end = wire::encode(&Frame::End(End {
        cursor: seq,
        more: false,
    }));
    let visit = scene.visit.to_string();
    let rounds = [
        [
            head(vec![]),
            wire::encode(&Frame::Indexed(
                seq,
                visit.clone(),
                ByteBuf::from(damaged),
                wire::hashes_to_wire(&stored.heads),
                ByteBuf::from(rows),
            )),
            end.clone(),
        ]
        .concat(),
        [
            head(vec![wire::DocHeads {
                doc: visit.clone(),
                heads: wire::hashes_to_wire(&[ChangeHash([7; 32])]),
            }]),
            end.clone(),
        ]
        .concat(),
    ];
    for body in rounds {
        let mut store = scene.ben.store();
        let mut client = SyncClient::new(PEER);
        client.next_request(&mut store).unwrap().unwrap();
        client.receive(&mut store, &body).unwrap();
        client.end_response(&mut store).unwrap();
    }
    assert!(
        scene.ben.store().heads(&scene.visit).is_ok(),
        "the damaged visit was stored"
    );

    // The next request leaves it out and drops it, rather than failing on it for ever.
    let mut client = SyncClient::new(PEER);
    let request = client.next_request(&mut scene.ben.store()).unwrap().unwrap();
    let request: Request = wire::decode_one(&request, "request").unwrap();
    assert!(request.pushes.iter().all(|p| p.doc != visit), "{:?}", request.pushes);
    assert!(matches!(scene.ben.store().heads(&scene.visit), Err(Error::NotFound(_))));
    // A real sync fetches it again, intact.
    scene.world.sync(&mut scene.ben).unwrap();
    assert_eq!(scene.ben.store().heads(&scene.visit).unwrap(), stored.heads);
    let text = scene
        .ben
        .store()
        .visit(&scene.visit)
        .unwrap()
        .section(Section::WhatMatters)
        .to_string();
    assert!(text.contains("Likes the garden."), "{text}");
}
