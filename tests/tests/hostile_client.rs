//! An authenticated but malicious client: it holds a real device credential and speaks the
//! protocol, but forges changes under other devices' actors and authors, pushes enormous
//! documents and endless bodies, nests values a hundred thousand levels deep, and floods the
//! server with tiny syncs. Each is bounded and refused with a clear error, nothing stored
//! changes, and other devices go on syncing. (Malformed bytes are `sync_bad_input`'s.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request as HttpRequest, StatusCode, header};
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use outpost_core::net::SyncOptions;
use outpost_core::sync::wire::{self, Frame, Head, Problem, Push, Request};
use outpost_core::{
    Author, DocId, Document, NewPerson, NewVisit, PersonId, RiskTier, Section, Setting, TeamId, WorkerId,
};
use outpost_server::limits::{Rate, RateLimits};
use outpost_server::storage::{Accounts, ActorOwner, Documents, Role, ScopePolicy, StoredDoc};
use outpost_server::sync::{MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_REQUEST_BYTES};
use outpost_server::{AppState, auth};
use outpost_tests::world::{Phone, World};
use rand::{RngCore, SeedableRng};
use serde_bytes::ByteBuf;
use tower::ServiceExt;

/// Ann's phone (the hostile one) and Ben's (an honest colleague in the same team) share a
/// person and a visit both have written to, so each one's actor is registered and named in it.
struct Scene {
    world: World,
    ann: Phone,
    ben: Phone,
    team: TeamId,
    person: PersonId,
    visit: DocId,
}

impl Scene {
    fn new() -> Self {
        Self::with_limits(RateLimits::default())
    }

    fn with_limits(limits: RateLimits) -> Self {
        let mut world = World::new();
        world.state.limits = Arc::new(limits);
        let team = world.team("north", ScopePolicy::Team);
        let ann_worker = world.worker("sw-ann", &team, Role::Worker);
        let ben_worker = world.worker("sw-ben", &team, Role::Worker);
        let mut ann = world.enrol(&ann_worker, "ann-phone");
        let mut ben = world.enrol(&ben_worker, "ben-phone");
        let person = ann
            .store()
            .create_person(&NewPerson {
                name: "Ida Blake".into(),
                preferred_name: None,
                date_of_birth: None,
                nhs_number: None,
                address: None,
                team: team.clone(),
                allocated_workers: vec![ann_worker.clone()],
                risk: RiskTier::Medium,
            })
            .unwrap();
        let visit = ann
            .store()
            .create_visit(&NewVisit {
                person: person.clone(),
                worker: ann_worker,
                at: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap(),
                setting: Setting::HomeVisit,
            })
            .unwrap();
        append(&ann, &visit, "Likes the garden. ");
        world.sync(&mut ann).unwrap();
        world.sync(&mut ben).unwrap();
        append(&ben, &visit, "Ben called in too. ");
        world.sync(&mut ben).unwrap();
        world.sync(&mut ann).unwrap();
        Self {
            world,
            ann,
            ben,
            team,
            person,
            visit,
        }
    }

    /// Everything the server holds for the person, byte for byte, and its log head.
    fn stored(&self) -> (u64, Vec<(DocId, StoredDoc)>) {
        (
            self.world.storage.log_head().unwrap(),
            self.world
                .storage
                .people_docs(std::slice::from_ref(&self.person))
                .unwrap(),
        )
    }

    /// The server's copy of a document, to forge changes on.
    fn server_doc(&self, doc: &DocId) -> AutoCommit {
        AutoCommit::load(&self.world.storage.doc(doc).unwrap().unwrap().snapshot).unwrap()
    }

    /// The actor `phone` wrote `doc` with, read from the server's copy.
    fn actor_of(&self, phone: &Phone, doc: &DocId) -> ActorId {
        let author = phone.store().author().clone();
        let mut stored = self.server_doc(doc);
        stored
            .get_changes(&[])
            .iter()
            .map(|c| c.actor_id().clone())
            .find(|a| outpost_core::sync::actor_author(&stored, a).as_ref() == Some(&author))
            .expect("the phone wrote the document")
    }

    /// One sync round as `phone`, in process, authenticated as over the network: the head.
    fn round(&self, phone: &Phone, request: &Request) -> Head {
        let device = self
            .world
            .storage
            .authenticate(&auth::hash_secret(&phone.credential))
            .unwrap()
            .unwrap();
        let body = self.world.state.sync.round(&device, request.clone()).unwrap();
        head_of(&body)
    }

    /// Ben still syncs, over TLS with his real client, and gets what Ann wrote honestly.
    async fn ben_still_syncs(&mut self, served: &outpost_tests::world::Served, text: &str) {
        append(&self.ann, &self.visit, text);
        self.world.sync(&mut self.ann).unwrap();
        let mut client = self.ben.client(served.addr, &served.ca_pem);
        let report = client.sync(self.ben.shared.clone(), once()).await.unwrap();
        assert_eq!(report.attempts, report.rounds, "Ben was not held back: {report:?}");
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

fn once() -> SyncOptions {
    SyncOptions {
        max_attempts: 1,
        ..SyncOptions::default()
    }
}

fn request(pushes: Vec<Push>, actors: &[&ActorId]) -> Request {
    Request {
        protocol: wire::PROTOCOL,
        min_protocol: wire::MIN_PROTOCOL,
        capabilities: wire::CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        actors: actors.iter().map(|a| ByteBuf::from(a.to_bytes().to_vec())).collect(),
        pushes,
        ..Request::default()
    }
}

/// A push of everything `doc` holds beyond `base`.
fn push(id: &DocId, doc: &mut AutoCommit, base: &[automerge::ChangeHash]) -> Push {
    let bytes: Vec<u8> = doc
        .get_changes(base)
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    Push {
        doc: id.to_string(),
        base: wire::hashes_to_wire(base),
        heads: wire::hashes_to_wire(&doc.get_heads()),
        bytes: ByteBuf::from(bytes),
    }
}

fn head_of(body: &[u8]) -> Head {
    let mut reader = wire::FrameReader::default();
    reader.push(body);
    match reader.next::<Frame>("sync response").unwrap() {
        Some(Frame::Head(head)) => head,
        other => panic!("expected a head, got {other:?}"),
    }
}

/// The one refusal a head holds, for `doc`.
fn refusal(head: &Head, doc: &DocId) -> String {
    assert!(head.acks.is_empty() && head.diverged.is_empty(), "{head:?}");
    assert_eq!(head.refused.len(), 1, "{head:?}");
    assert_eq!(head.refused[0].doc, doc.to_string());
    head.refused[0].reason.clone()
}

fn automerge_author(author: &Author) -> automerge::Author<'static> {
    automerge::Author::from(format!("{}/{}", author.worker, author.device).into_bytes())
}

/// A copy of the server's `doc` that writes as `actor`, naming `author`.
fn forger(scene: &Scene, doc: &DocId, actor: &ActorId, author: &Author) -> AutoCommit {
    scene
        .server_doc(doc)
        // In this order: setting an author takes a fresh actor.
        .with_author(Some(automerge_author(author)))
        .with_actor(actor.clone())
}

/// A change written as `actor`, naming `author`, pushed by Ann's phone claiming `claims`; the
/// refusal must say `reason`.
struct Forgery<'a> {
    case: &'static str,
    doc: &'a DocId,
    actor: &'a ActorId,
    author: &'a Author,
    claims: Vec<&'a ActorId>,
    reason: &'static str,
}

#[test]
fn changes_forged_under_another_devices_actor_or_author_are_refused_and_nothing_changes() {
    let mut scene = Scene::new();
    let ann = scene.ann.store().author().clone();
    let ben = scene.ben.store().author().clone();
    let ben_actor = scene.actor_of(&scene.ben, &scene.visit);
    let fresh = ActorId::random();
    let before = scene.stored();
    let visit_heads = scene.world.storage.doc(&scene.visit).unwrap().unwrap().heads;
    let person_heads = scene.world.storage.doc(&scene.person).unwrap().unwrap().heads;

    let cases = [
        Forgery {
            case: "Ben's actor, where it already names Ben",
            doc: &scene.visit,
            actor: &ben_actor,
            author: &ann,
            claims: vec![&ben_actor],
            reason: "names another author",
        },
        Forgery {
            case: "Ben's actor, new to this document, naming Ann",
            doc: &scene.person,
            actor: &ben_actor,
            author: &ann,
            claims: vec![&ben_actor],
            reason: "registered to someone else",
        },
        Forgery {
            case: "a fresh actor naming Ben",
            doc: &scene.visit,
            actor: &fresh,
            author: &ben,
            claims: vec![&fresh],
            reason: "names another author",
        },
        Forgery {
            case: "a fresh actor Ann never claimed",
            doc: &scene.visit,
            actor: &fresh,
            author: &ann,
            claims: vec![],
            reason: "has not registered",
        },
    ];
    for Forgery {
        case,
        doc,
        actor,
        author,
        claims,
        reason,
    } in cases
    {
        let base = if *doc == scene.visit {
            &visit_heads
        } else {
            &person_heads
        };
        let mut forged = forger(&scene, doc, actor, author);
        forged.put(ROOT, "forged", case).unwrap();
        forged.commit();
        let head = scene.round(&scene.ann, &request(vec![push(doc, &mut forged, base)], &claims));
        let refused = refusal(&head, doc);
        assert!(refused.contains(reason), "{case}: {refused:?} should say {reason:?}");
        assert_eq!(scene.stored(), before, "{case}: the server's documents changed");
    }
    // A claim does not take an actor over: Ben's is still his, and Ben still syncs.
    assert_eq!(
        scene.world.storage.actor_owner(ben_actor.to_bytes()).unwrap(),
        Some(ActorOwner::Device(ben.device.clone()))
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let served = scene.world.serve();
        scene.ben_still_syncs(&served, "After the forgeries. ").await;
    });
}

/// A person of Ann's team, written as her phone would, and the actors it was written with.
fn new_person(scene: &Scene, actor: &ActorId) -> (DocId, AutoCommit) {
    let ann = scene.ann.store().author().clone();
    let mut person = Document::new_person(
        &ann,
        &NewPerson {
            name: "Big Record".into(),
            preferred_name: None,
            date_of_birth: None,
            nhs_number: None,
            address: None,
            team: scene.team.clone(),
            allocated_workers: vec![],
            risk: RiskTier::Low,
        },
    )
    .unwrap();
    let doc = AutoCommit::load(&person.save())
        .unwrap()
        .with_author(Some(automerge_author(&ann)))
        .with_actor(actor.clone());
    (person.id().clone(), doc)
}

fn actors_in(doc: &mut AutoCommit) -> Vec<ActorId> {
    let mut actors: Vec<ActorId> = doc.get_changes(&[]).iter().map(|c| c.actor_id().clone()).collect();
    actors.dedup();
    actors
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

#[test]
fn an_enormous_document_is_refused_whole_or_grown_by_parts() {
    let scene = Scene::new();
    let actor = ActorId::random();

    // One push over the document limit (in a request under the request limit).
    let (id, mut doc) = new_person(&scene, &actor);
    doc.put(ROOT, "attachment", ScalarValue::Bytes(noise(MAX_DOCUMENT_BYTES + 1, 1)))
        .unwrap();
    doc.commit();
    let claims = actors_in(&mut doc);
    let whole = Push {
        doc: id.to_string(),
        base: vec![],
        heads: wire::hashes_to_wire(&doc.get_heads()),
        bytes: ByteBuf::from(doc.save()),
    };
    let body = wire::encode(&request(vec![whole], &claims.iter().collect::<Vec<_>>()));
    assert!(body.len() < MAX_REQUEST_BYTES);
    let before = scene.stored();
    let head = scene.round(&scene.ann, &wire::decode_one(&body, "sync request").unwrap());
    let refused = refusal(&head, &id);
    assert!(
        refused.contains(&format!("over the {MAX_DOCUMENT_BYTES}-byte document limit")),
        "{refused}"
    );
    assert_eq!(scene.world.storage.doc(&id).unwrap(), None);
    assert_eq!(scene.stored(), before);

    // The same size reached by pushes each under the limit: the one that would cross it is
    // refused, and the document stays as the ones before it left it.
    let (id, mut doc) = new_person(&scene, &actor);
    let mut claims = actors_in(&mut doc);
    claims.push(actor.clone());
    let claims: Vec<&ActorId> = claims.iter().collect();
    let third = MAX_DOCUMENT_BYTES / 3 + 1024;
    let mut base = Vec::new();
    for part in 0..3u64 {
        doc.put(ROOT, format!("part{part}"), ScalarValue::Bytes(noise(third, part)))
            .unwrap();
        doc.commit();
        let head = scene.round(&scene.ann, &request(vec![push(&id, &mut doc, &base)], &claims));
        if part < 2 {
            assert_eq!(head.acks.len(), 1, "part {part}: {head:?}");
            base = doc.get_heads();
        } else {
            let refused = refusal(&head, &id);
            assert!(
                refused.contains("the document would be") && refused.contains("document limit"),
                "{refused}"
            );
        }
    }
    let stored = scene.world.storage.doc(&id).unwrap().unwrap();
    assert_eq!(stored.heads, base, "the refused part was not stored");
    assert!(stored.snapshot.len() <= MAX_DOCUMENT_BYTES);
}

/// A chain of `levels` maps (or lists) under `key`, all in one change.
fn nest(doc: &mut AutoCommit, key: &str, levels: usize, kind: ObjType) {
    let mut obj = doc.put_object(ROOT, key, kind).unwrap();
    for _ in 1..levels {
        obj = match kind {
            ObjType::List => doc.insert_object(&obj, 0, ObjType::List).unwrap(),
            _ => doc.put_object(&obj, "deeper", ObjType::Map).unwrap(),
        };
    }
    doc.commit();
}

#[test]
fn values_nested_past_the_limit_are_refused_without_overflowing_the_stack() {
    let mut scene = Scene::new();
    let ann = scene.ann.store().author().clone();
    let actor = ActorId::random();
    let visit_heads = scene.world.storage.doc(&scene.visit).unwrap().unwrap().heads;
    let before = scene.stored();
    for kind in [ObjType::Map, ObjType::List] {
        let mut forged = forger(&scene, &scene.visit, &actor, &ann);
        let started = Instant::now();
        nest(&mut forged, "deep", 100_000, kind);
        let built = started.elapsed();
        let started = Instant::now();
        let head = scene.round(
            &scene.ann,
            &request(vec![push(&scene.visit, &mut forged, &visit_heads)], &[&actor]),
        );
        let refused = refusal(&head, &scene.visit);
        assert!(
            refused.contains(&format!("nests values more than {MAX_DEPTH} levels deep")),
            "{kind:?}: {refused}"
        );
        eprintln!(
            "{kind:?}: 100,000 levels built in {built:?}, refused in {:?}",
            started.elapsed()
        );
        assert_eq!(scene.stored(), before, "{kind:?}: the server's documents changed");
    }

    // Exactly at the limit is an honest (if odd) value, stored like any field a newer app
    // version might write.
    let mut honest = forger(&scene, &scene.visit, &actor, &ann);
    nest(&mut honest, "deep", MAX_DEPTH, ObjType::Map);
    let head = scene.round(
        &scene.ann,
        &request(vec![push(&scene.visit, &mut honest, &visit_heads)], &[&actor]),
    );
    assert_eq!(head.acks.len(), 1, "{head:?}");
    // One level more, made below what is now stored, is refused.
    let mut deeper = forger(&scene, &scene.visit, &actor, &ann);
    let mut obj = deeper.get(ROOT, "deep").unwrap().unwrap().1;
    while let Some((_, next)) = deeper.get(&obj, "deeper").unwrap() {
        obj = next;
    }
    let stored_heads = deeper.get_heads();
    deeper.put_object(&obj, "deeper", ObjType::Map).unwrap();
    deeper.commit();
    let head = scene.round(
        &scene.ann,
        &request(vec![push(&scene.visit, &mut deeper, &stored_heads)], &[&actor]),
    );
    assert!(refusal(&head, &scene.visit).contains("levels deep"));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let served = scene.world.serve();
        scene.ben_still_syncs(&served, "After the deep values. ").await;
    });
}

/// What the server answered a request made through its router, in process.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn problem(&self) -> Problem {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not a problem ({e}): {self:?}"))
    }

    /// Asserts a 429 naming `what` and `rate`, with a Retry-After of at least a second.
    fn assert_limited(&self, what: &str, rate: &str) {
        assert_eq!(self.status, StatusCode::TOO_MANY_REQUESTS, "{self:?}");
        let problem = self.problem();
        assert_eq!(problem.code, "rate-limited");
        assert!(
            problem.message.contains(what) && problem.message.contains(rate),
            "{problem:?} should name {what:?} and {rate:?}"
        );
        let wait: u64 = self.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!(wait >= 1, "{self:?}");
        assert!(
            problem.message.contains(&format!("try again in {wait} s")),
            "{problem:?}"
        );
    }
}

/// Sends a request through the server's whole router, as from `from` (a client address).
async fn send(state: &AppState, request: HttpRequest<Body>, from: [u8; 4]) -> Answer {
    let mut request = request;
    request
        .extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((from, 40_000))));
    let response = outpost_server::app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

/// A no-op sync as `phone`: the smallest request a device makes.
async fn tiny_sync(state: &AppState, phone: &Phone) -> Answer {
    let request = HttpRequest::post(wire::SYNC_PATH)
        .header(header::AUTHORIZATION, format!("Bearer {}", phone.credential))
        .header(header::CONTENT_TYPE, "application/x-outpost-sync")
        .body(Body::from(wire::encode(&request(vec![], &[]))))
        .unwrap();
    send(state, request, [10, 0, 0, 1]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_tiny_syncs_is_limited_per_device_and_others_go_on() {
    let mut scene = Scene::new();
    let state = scene.world.state.clone();
    let served = scene.world.serve();
    let stored = scene.stored();
    let sync = RateLimits::SYNC;
    // Far more than the burst, as fast as the server answers.
    let mut answered = 0;
    let mut limited = Vec::new();
    let started = Instant::now();
    for _ in 0..(3 * sync.burst) {
        let answer = tiny_sync(&state, &scene.ann).await;
        if answer.status == StatusCode::OK {
            answered += 1;
        } else {
            limited.push(answer);
        }
    }
    // Every token the device had, plus what it earned during the flood, and not one more.
    let earned = (started.elapsed().as_secs_f64() * sync.per_second).ceil() as u32;
    assert!(
        (sync.burst..=sync.burst + earned).contains(&answered),
        "{answered} answered in {:?}",
        started.elapsed()
    );
    assert!(!limited.is_empty());
    for answer in &limited {
        answer.assert_limited("too many syncs from this device", "60 at once, then 2 a second");
    }
    assert_eq!(scene.stored(), stored, "the flood stored nothing");

    // Ben's device, in the same team, is not held back at all.
    scene.ben_still_syncs(&served, "During Ann's flood. ").await;
    assert_eq!(tiny_sync(&state, &scene.ben).await.status, StatusCode::OK);
    // And the flooding device is still limited.
    tiny_sync(&state, &scene.ann)
        .await
        .assert_limited("syncs from this device", "2 a second");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limited_device_waits_as_told_and_then_syncs() {
    // A small allowance, so the wait is short and certain: 3 at once, one back every 2 s.
    let rate = Rate {
        burst: 3,
        per_second: 0.5,
    };
    let mut scene = Scene::with_limits(RateLimits::new(Some(rate), None));
    let state = scene.world.state.clone();
    let served = scene.world.serve();
    for _ in 0..rate.burst {
        assert_eq!(tiny_sync(&state, &scene.ann).await.status, StatusCode::OK);
    }
    let refused = tiny_sync(&state, &scene.ann).await;
    refused.assert_limited("syncs from this device", "3 at once, then one every 2 s");

    // Ann's real client meets the 429, waits the Retry-After, and syncs what she wrote.
    append(&scene.ann, &scene.visit, "Written while limited. ");
    let mut client = scene.ann.client(served.addr, &served.ca_pem);
    let started = Instant::now();
    let report = client
        .sync(scene.ann.shared.clone(), SyncOptions::default())
        .await
        .unwrap();
    assert!(
        report.attempts > report.rounds,
        "the first attempt was refused: {report:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the client waited as told: {:?}",
        started.elapsed()
    );
    let pending = scene.ann.store().sync_status(outpost_tests::world::PEER).unwrap();
    assert_eq!(pending.pending_docs, 0, "{pending:?}");
    let stored = scene.world.storage.doc(&scene.visit).unwrap().unwrap().heads;
    assert_eq!(scene.ann.store().heads(&scene.visit).unwrap(), stored);

    // One attempt only: the 429 comes back as "try later", a network error, not a refusal.
    for _ in 0..rate.burst {
        let _ = tiny_sync(&state, &scene.ann).await;
    }
    let error = client.sync(scene.ann.shared.clone(), once()).await.unwrap_err();
    assert!(
        matches!(&error, outpost_core::Error::Network(m) if m.contains("too many syncs from this device")),
        "{error:?}"
    );
    // Ben was never limited.
    scene.ben_still_syncs(&served, "Ben meanwhile. ").await;
}

fn enrolment(code: &str) -> HttpRequest<Body> {
    HttpRequest::post(wire::ENROL_PATH)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", "192.0.2.99")
        .body(Body::from(
            serde_json::json!({ "code": code, "label": "guess" }).to_string(),
        ))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn enrolment_attempts_are_limited_per_client_address() {
    let scene = Scene::new();
    let state = scene.world.state.clone();
    let enrol = RateLimits::ENROL;
    let guesser = [10, 0, 0, 66];
    // Guessing codes from one address: the burst are answered (wrongly guessed), then 429. The
    // X-Forwarded-For it sends is not believed (it is not a trusted proxy), so it cannot pose
    // as many addresses.
    for _ in 0..enrol.burst {
        let answer = send(&state, enrolment("AAAA-BBBB-CCCC-DDDD"), guesser).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    }
    send(&state, enrolment("AAAA-BBBB-CCCC-DDDD"), guesser)
        .await
        .assert_limited("enrolment attempts from this address", "20 at once");

    // Another address enrols with a real code.
    let code = auth::new_enrolment_code();
    let worker = WorkerId::new("sw-ben").unwrap();
    scene
        .world
        .storage
        .add_enrolment_code(&worker, &auth::hash_enrolment_code(&code), i64::MAX)
        .unwrap();
    let answer = send(&state, enrolment(&code), [10, 0, 0, 7]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    // The guessing address is still held to one attempt every 6 s (a slow machine may have
    // earned it one since).
    let mut answer = send(&state, enrolment("AAAA-BBBB-CCCC-DDDD"), guesser).await;
    if answer.status == StatusCode::UNAUTHORIZED {
        answer = send(&state, enrolment("AAAA-BBBB-CCCC-DDDD"), guesser).await;
    }
    answer.assert_limited("enrolment attempts", "20 at once, then one every 6 s");
}

/// A body that never ends is cut off at the request limit, not buffered without bound.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_sync_body_is_cut_off_at_the_request_limit() {
    let scene = Scene::new();
    let state = scene.world.state.clone();
    let (mut sender, body) = http_body_util::channel::Channel::<axum::body::Bytes, std::convert::Infallible>::new(4);
    let feeding = tokio::spawn(async move {
        let chunk = axum::body::Bytes::from(vec![0u8; 1 << 20]);
        let mut sent = 0usize;
        // Until the server stops reading (it drops the body).
        while sender.send_data(chunk.clone()).await.is_ok() {
            sent += chunk.len();
        }
        sent
    });
    let request = HttpRequest::post(wire::SYNC_PATH)
        .header(header::AUTHORIZATION, format!("Bearer {}", scene.ann.credential))
        .header(header::CONTENT_TYPE, "application/x-outpost-sync")
        .body(Body::new(body))
        .unwrap();
    let before = scene.stored();
    let answer = tokio::time::timeout(Duration::from_secs(60), send(&state, request, [10, 0, 0, 1]))
        .await
        .expect("answered, not read forever");
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{answer:?}");
    let problem = answer.problem();
    assert!(
        problem.message.contains("sync request") && problem.message.contains(&MAX_REQUEST_BYTES.to_string()),
        "{problem:?}"
    );
    let sent = feeding.await.unwrap();
    assert!(
        sent <= MAX_REQUEST_BYTES + 8 * (1 << 20),
        "the server stopped reading near the limit, after {sent} bytes"
    );
    assert_eq!(scene.stored(), before);
}
