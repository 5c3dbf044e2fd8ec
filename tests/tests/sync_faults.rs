//! A day's work synced through a fault-injecting TCP proxy over real TLS: the connection is cut
//! after N bytes for every N (in CI every N near the ends and a stride between; the full sweep
//! is `scripts/fault-sweep.sh`), in each direction, and delayed and stalled. Every sync
//! completes on retry, nothing is lost, the retry resends only what was not acknowledged, and
//! every side effect happens once.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use outpost_core::net::SyncOptions;
use outpost_core::{DocId, NewPerson, NewVisit, ReviewAction, ReviewState, RiskTier, Section, Setting};
use outpost_server::storage::{Accounts, Documents, Role, ScopePolicy};
use outpost_tests::proxy::{Fault, FaultProxy};
use outpost_tests::world::{PEER, Phone, World};

/// Eight visits written offline, each typed as many small edits and submitted for review.
struct DayOfWork {
    world: World,
    ann: Phone,
    visits: Vec<DocId>,
}

fn day_of_work() -> DayOfWork {
    let world = World::new();
    let team = world.team("north", ScopePolicy::Team);
    let worker = world.worker("sw-ann", &team, Role::Worker);
    let mut ann = world.enrol(&worker, "ann-phone");
    let person = ann
        .store()
        .create_person(&NewPerson {
            name: "Kath Ruddock".into(),
            preferred_name: None,
            date_of_birth: None,
            nhs_number: None,
            address: None,
            team: team.clone(),
            allocated_workers: vec![worker.clone()],
            risk: RiskTier::Low,
        })
        .unwrap();
    world.sync(&mut ann).unwrap();
    let mut visits = Vec::new();
    for hour in 0..8 {
        let mut store = ann.store();
        let visit = store
            .create_visit(&NewVisit {
                person: person.clone(),
                worker: worker.clone(),
                at: Utc.with_ymd_and_hms(2026, 11, 20, 9 + hour, 0, 0).unwrap(),
                setting: Setting::HomeVisit,
            })
            .unwrap();
        let mut typed = 0;
        for word in "Talked about the allotment and her grandson's wedding; she wants to walk to the shop again. "
            .split_inclusive(' ')
        {
            store
                .edit_visit(&visit, |v| v.splice(Section::WhatMatters, typed, 0, word))
                .unwrap();
            typed += word.chars().count();
        }
        store.review_visit(&visit, ReviewAction::Submit, None).unwrap();
        visits.push(visit);
    }
    DayOfWork { world, ann, visits }
}

/// What one cut-then-retry run showed.
struct Run {
    first_failed: bool,
    retry_request_bytes: u64,
    /// Request bytes of a clean sync of the same work: the most a retry may resend.
    pending_after_cut: usize,
}

/// Syncs a fresh copy of the day's work with `fault` in the way, then retries without it,
/// and checks that everything arrived exactly once.
async fn cut_then_retry(day: &DayOfWork, fault: Fault) -> Run {
    let world = day.world.fork();
    let ann = day.ann.fork(&world);
    let served = world.serve();
    let proxy = FaultProxy::start(served.addr).await.unwrap();
    proxy.set_fault(fault);
    let mut client = ann.client(proxy.addr(), &served.ca_pem);
    let once = SyncOptions {
        max_attempts: 1,
        ..SyncOptions::default()
    };
    let first = tokio::time::timeout(Duration::from_secs(20), client.sync(ann.shared.clone(), once))
        .await
        .expect("a cut sync ends");
    let pending_after_cut = ann.store().sync_status(PEER).unwrap().pending_docs;
    proxy.set_fault(Fault::none());
    client.disconnect();
    let retry = client
        .sync(ann.shared.clone(), SyncOptions::default())
        .await
        .expect("the retry completes");

    // Nothing lost: the server holds every visit and review at the phone's heads.
    let mut store = ann.store();
    for visit in &day.visits {
        for doc in [visit.clone(), DocId::review_of(visit)] {
            assert_eq!(
                world.storage.doc(&doc).unwrap().unwrap().heads,
                store.heads(&doc).unwrap(),
                "{fault:?}: {doc} differs"
            );
        }
        let review = store.review(visit).unwrap();
        assert_eq!(review.state.value, ReviewState::Submitted);
        assert_eq!(review.history.len(), 1, "{fault:?}: the submission happened once");
    }
    assert_eq!(store.sync_status(PEER).unwrap().pending_docs, 0);
    // Side effects once: one audit entry and one stored-document count per document.
    let today: Vec<String> = day
        .visits
        .iter()
        .flat_map(|v| [v.to_string(), DocId::review_of(v).to_string()])
        .collect();
    let pushes = world
        .storage
        .audit_log(10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "push" && today.contains(&e.subject))
        .count();
    assert_eq!(pushes, 16, "{fault:?}: audit entries");
    assert_eq!(
        world.state.metrics.stored_total(),
        16,
        "{fault:?}: stored-document metric"
    );
    Run {
        first_failed: first.is_err(),
        retry_request_bytes: retry.request_body_bytes,
        pending_after_cut,
    }
}

/// Cut points: every byte near both ends (handshakes, headers, the last frames) and a stride
/// between, or every byte when FAULT_STRIDE=1.
fn cut_points(total: u64) -> Vec<u64> {
    let stride: u64 = std::env::var("FAULT_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| (total / 60).max(1));
    let mut points: Vec<u64> = (0..total.min(48)).collect();
    points.extend((48..total.saturating_sub(48)).step_by(stride as usize));
    points.extend(total.saturating_sub(48)..=total);
    points.sort();
    points.dedup();
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_work_survives_a_cut_at_every_byte_in_both_directions() {
    let day = day_of_work();
    // A clean run measures the sync's length each way through the proxy, and what a full
    // resend costs.
    let (up, down, full_request) = {
        let world = day.world.fork();
        let ann = day.ann.fork(&world);
        let served = world.serve();
        let proxy = FaultProxy::start(served.addr).await.unwrap();
        let mut client = ann.client(proxy.addr(), &served.ca_pem);
        let report = client.sync(ann.shared.clone(), SyncOptions::default()).await.unwrap();
        let (up, down) = proxy.bytes();
        (up, down, report.request_body_bytes)
    };
    eprintln!("a day's work through the proxy: {up} bytes up, {down} down; request body {full_request}");
    let mut cut_runs = 0;
    for (direction, total) in [("upstream", up), ("downstream", down)] {
        for n in cut_points(total) {
            let fault = if direction == "upstream" {
                Fault::cut_upstream_after(n)
            } else {
                Fault::cut_downstream_after(n)
            };
            let run = cut_then_retry(&day, fault).await;
            cut_runs += usize::from(run.first_failed);
            // The retry resends what was not acknowledged, plus a small fixed overhead.
            let allowed = if run.pending_after_cut == 0 {
                512
            } else {
                full_request + 512
            };
            assert!(
                run.retry_request_bytes <= allowed,
                "{direction} cut at {n}: retry sent {} bytes with {} documents unacknowledged",
                run.retry_request_bytes,
                run.pending_after_cut
            );
        }
    }
    assert!(cut_runs > 100, "the cuts must actually break syncs ({cut_runs} did)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_and_a_stall_only_slow_a_sync_down() {
    let day = day_of_work();
    for fault in [
        Fault {
            delay: Duration::from_millis(30),
            ..Fault::none()
        },
        Fault {
            stall: Some((2_000, Duration::from_millis(1_500))),
            ..Fault::none()
        },
    ] {
        let run = cut_then_retry(&day, fault).await;
        assert!(!run.first_failed, "{fault:?} should only slow the sync");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_refused_at_once_and_keeps_its_work() {
    let day = day_of_work();
    let world = day.world.fork();
    let ann = day.ann.fork(&world);
    let served = world.serve();
    world.storage.revoke(&ann.device.device, 0).unwrap();
    let mut client = ann.client(served.addr, &served.ca_pem);
    let err = client
        .sync(ann.shared.clone(), SyncOptions::default())
        .await
        .unwrap_err();
    // The transport keeps the store as it is; the `Device` over it wipes on `Revoked`
    // (tests/device_lifecycle.rs).
    assert!(matches!(err, outpost_core::Error::Revoked(_)), "{err}");
    assert_eq!(ann.store().sync_status(PEER).unwrap().pending_docs, 16);
    assert!(world.storage.doc(&day.visits[0]).unwrap().is_none());
    // A made-up credential fares no better.
    let mut stranger = ann.client(served.addr, &served.ca_pem);
    stranger.set_credential(Some("not-a-credential".into()));
    assert!(matches!(
        stranger.sync(ann.shared.clone(), SyncOptions::default()).await,
        Err(outpost_core::Error::Unauthenticated(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_pull_cut_half_way_keeps_what_arrived_and_resumes_with_the_rest() {
    let world = World::new();
    let team = world.team("north", ScopePolicy::Team);
    let ann_id = world.worker("sw-ann", &team, Role::Worker);
    let ben_id = world.worker("sw-ben", &team, Role::Worker);
    let mut ann = world.enrol(&ann_id, "ann-phone");
    for i in 0..150 {
        ann.store()
            .create_person(&NewPerson {
                name: format!("Person {i}"),
                preferred_name: None,
                date_of_birth: None,
                nhs_number: None,
                address: Some(format!("{i} Long Row, Haltwhistle")),
                team: team.clone(),
                allocated_workers: vec![ann_id.clone()],
                risk: RiskTier::Low,
            })
            .unwrap();
    }
    world.sync(&mut ann).unwrap();
    let template = world.enrol(&ben_id, "ben-phone");

    let clean = {
        let fork = world.fork();
        let ben = template.fork(&fork);
        let served = fork.serve();
        let report = ben
            .client(served.addr, &served.ca_pem)
            .sync(ben.shared.clone(), SyncOptions::default())
            .await
            .unwrap();
        assert_eq!(report.progress.docs_received, 150);
        report.response_body_bytes
    };

    let fork = world.fork();
    let ben = template.fork(&fork);
    let served = fork.serve();
    let proxy = FaultProxy::start(served.addr).await.unwrap();
    // Past the handshake and about half the answer.
    proxy.set_fault(Fault::cut_downstream_after(4_000 + clean / 2));
    let mut client = ben.client(proxy.addr(), &served.ca_pem);
    let once = SyncOptions {
        max_attempts: 1,
        ..SyncOptions::default()
    };
    assert!(client.sync(ben.shared.clone(), once).await.is_err());
    let kept = ben.store().all_heads().unwrap().len();
    assert!(kept > 20 && kept < 150, "{kept} people kept from the cut answer");
    proxy.set_fault(Fault::none());
    client.disconnect();
    let resumed = client.sync(ben.shared.clone(), SyncOptions::default()).await.unwrap();
    assert_eq!(ben.store().all_heads().unwrap().len(), 150);
    assert_eq!(
        resumed.progress.docs_received,
        150 - kept,
        "only the rest is sent again"
    );
    assert!(resumed.response_body_bytes < clean * 3 / 4, "{resumed:?} vs {clean}");
}
