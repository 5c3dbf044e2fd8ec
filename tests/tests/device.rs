//! The device façade against the real server over TLS: enrolment kept across a relaunch, and a
//! sync stopped by its deadline that loses nothing and resumes.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use outpost_core::{
    Device, Error, NewPerson, NewVisit, ReviewAction, ReviewState, RiskTier, Section, Setting, TeamId, WorkerId,
};
use outpost_tests::team::{self, ServedTeam};

fn person_and_visit(device: &Device) -> outpost_core::DocId {
    device
        .write(|s| {
            let person = s.create_person(&team::person("Iris Kemp", RiskTier::Low))?;
            s.create_visit(&NewVisit {
                person,
                worker: WorkerId::new("w1")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })
        })
        .unwrap()
}

#[test]
fn an_enrolment_survives_a_relaunch_and_is_not_repeated() {
    let rig = ServedTeam::start();
    let path = rig.world.dir.path().join("a.sqlite3");
    let device = Device::open(&path, None).unwrap();
    assert!(device.enrolment().is_none());
    assert!(matches!(device.read(|s| s.revision()), Err(Error::Unauthenticated(_))));
    let enrolled = device.enrol(rig.server(), &rig.code("w1"), "ann's phone").unwrap();
    assert_eq!(enrolled.author.worker.as_str(), "w1");
    drop(device);

    let relaunched = Device::open(&path, None).unwrap();
    assert_eq!(relaunched.enrolment(), Some(enrolled.clone()));
    let err = relaunched.enrol(rig.server(), &rig.code("w1"), "again").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "enrolment code"),
        "{err}"
    );
    // The relaunched device syncs with what it stored: its credential and the server's CA.
    assert!(relaunched.sync_now(Duration::from_secs(30)).unwrap().complete);
}

#[test]
fn a_sync_stopped_at_its_deadline_keeps_everything_and_the_next_one_resumes() {
    let rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    let b = rig.enrolled("w2", "b.sqlite3");
    let visit = person_and_visit(&a);
    let pending = a.pending().unwrap();
    assert_eq!(pending.len(), 3, "person, visit and review wait: {pending:?}");

    let stopped = a.sync_now(Duration::ZERO).unwrap();
    assert!(!stopped.complete);
    assert_eq!(a.pending().unwrap(), pending, "nothing is lost or marked sent");

    let finished = a.sync_now(Duration::from_secs(30)).unwrap();
    assert!(finished.complete);
    assert_eq!(finished.progress.docs_pushed, 3);
    assert!(a.pending().unwrap().is_empty());
    let status = a.status().unwrap();
    assert!(status.sync.last_success.is_some() && !status.syncing);

    assert!(b.sync_now(Duration::from_secs(30)).unwrap().complete);
    assert_eq!(b.read(|s| s.visit(&visit)).unwrap().id, visit);
}

#[test]
fn typing_into_a_field_read_before_this_devices_own_later_edit_still_syncs() {
    let rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    let b = rig.enrolled("w2", "b.sqlite3");
    let visit = person_and_visit(&a);
    // A form shows two sections, each read once; the worker types into one, then the other.
    let (goals, strengths) = a
        .read(|s| {
            Ok((
                s.section_text(&visit, Section::Goals)?,
                s.section_text(&visit, Section::Strengths)?,
            ))
        })
        .unwrap();
    a.write(|s| s.edit_section_text(&visit, Section::Goals, &goals.version, "", "Walk to the shop"))
        .unwrap();
    // This edit is made at a version older than the device's own last change.
    a.write(|s| {
        s.edit_section_text(
            &visit,
            Section::Strengths,
            &strengths.version,
            "",
            "Knows her neighbours",
        )
    })
    .unwrap();

    let outcome = a.sync_now(Duration::from_secs(30)).unwrap();
    assert!(outcome.progress.refused.is_empty(), "{:?}", outcome.progress.refused);
    assert!(a.pending().unwrap().is_empty());
    b.sync_now(Duration::from_secs(30)).unwrap();
    let received = b.read(|s| s.visit(&visit)).unwrap();
    assert_eq!(received.section(Section::Goals), "Walk to the shop");
    assert_eq!(received.section(Section::Strengths), "Knows her neighbours");
}

#[test]
fn records_the_server_refuses_stay_pending_and_the_status_says_why() {
    let rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    // A person recorded under a team this worker does not belong to is outside its scope.
    let stray = a
        .write(|s| {
            s.create_person(&NewPerson {
                name: "Not Ours".into(),
                preferred_name: None,
                date_of_birth: None,
                nhs_number: None,
                address: None,
                team: TeamId::new("elsewhere")?,
                allocated_workers: vec![WorkerId::new("w1")?],
                risk: RiskTier::Low,
            })
        })
        .unwrap();
    let outcome = a.sync_now(Duration::from_secs(30)).unwrap();
    assert!(outcome.complete);
    assert_eq!(outcome.progress.refused.len(), 1, "{:?}", outcome.progress.refused);
    assert_eq!(a.pending().unwrap(), vec![stray]);
    let status = a.status().unwrap();
    let error = status.sync.last_error.unwrap_or_default();
    assert!(error.contains("refused 1 record"), "{error}");
    assert!(status.sync.last_success.is_some(), "the sync itself completed");
}

#[test]
fn a_device_the_server_does_not_know_is_told_it_is_not_authenticated_and_keeps_its_work() {
    // (A revoked device is told to wipe instead: tests/device_lifecycle.rs.)
    let rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    let visit = person_and_visit(&a);
    let device = a.enrolment().unwrap().author.device;
    // Gone from the server's database, as after a restore from a backup older than it.
    rusqlite::Connection::open(rig.world.dir.path().join("server.sqlite3"))
        .unwrap()
        .execute("DELETE FROM devices WHERE device_id = ?1", [device.as_str()])
        .unwrap();

    let err = a.sync_now(Duration::from_secs(30)).unwrap_err();
    assert!(matches!(err, Error::Unauthenticated(_)), "{err}");
    assert!(a.pending().unwrap().contains(&visit), "unsent work stays on the phone");
    let status = a.status().unwrap();
    assert!(status.sync.last_error.is_some());
    assert!(status.enrolled && status.wiped.is_none());
}

#[test]
fn only_a_leads_device_can_approve_or_return_a_visit() {
    let rig = ServedTeam::start();
    let worker = rig.enrolled("w1", "a.sqlite3");
    let lead = rig.enrolled("lead1", "lead.sqlite3");
    let visit = person_and_visit(&worker);
    worker
        .write(|s| s.review_visit(&visit, ReviewAction::Submit, None))
        .unwrap();
    assert!(
        worker
            .sync_now(Duration::from_secs(30))
            .unwrap()
            .progress
            .refused
            .is_empty()
    );

    // A worker's device approving its own visit is refused, and the approval is not shared.
    let own = rig.enrolled("w1", "own.sqlite3");
    own.sync_now(Duration::from_secs(30)).unwrap();
    own.write(|s| s.review_visit(&visit, ReviewAction::Approve, None))
        .unwrap();
    let refused = own.sync_now(Duration::from_secs(30)).unwrap().progress.refused;
    assert!(
        refused.iter().any(|(_, why)| why.contains("only a team lead")),
        "{refused:?}"
    );
    lead.sync_now(Duration::from_secs(30)).unwrap();
    assert_eq!(
        lead.read(|s| s.review(&visit)).unwrap().state.value,
        ReviewState::Submitted
    );

    // The lead's device returns it, and the worker receives that.
    lead.write(|s| s.review_visit(&visit, ReviewAction::Return, Some("Say more about the stairs")))
        .unwrap();
    assert!(
        lead.sync_now(Duration::from_secs(30))
            .unwrap()
            .progress
            .refused
            .is_empty()
    );
    worker.sync_now(Duration::from_secs(30)).unwrap();
    assert_eq!(
        worker.read(|s| s.review(&visit)).unwrap().state.value,
        ReviewState::Returned
    );
}
