//! The review pages end to end in headless Chromium against the real server over TLS: a lead
//! signs in by keyboard, finds a visit two workers typed into at once, reads who wrote what,
//! returns it with a comment that reaches the worker's phone; the worker edits and resubmits,
//! the lead approves, the worker edits again and the visit shows "changed since approval"; the
//! lead signs out and the pages refuse the session. The visit page carries the form to remove
//! a passage throughout, and in the last phase an edit held back after a redaction with its put
//! back and discard buttons. Every page passes axe-core (WCAG 2.2 AA)
//! and the keyboard check, and is saved as a screenshot (`target/browser-screenshots`).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use outpost_core::forget::{Held, Step};
use outpost_core::{
    Consciousness, Device, DocId, NewObservations, NewVisit, PersonId, ReviewAction, ReviewState, RiskTier, Section,
    Setting, SpO2Scale, WorkerId,
};
use outpost_server::storage::{Documents, HeldRow, SyncWrite};
use outpost_tests::browser;
use outpost_tests::team::{self, ServedTeam};
use serde_json::{Value, json};

const COMMENT: &str = "Please add what Iris said about her sister.";

fn sync(device: &Device) {
    assert!(device.sync_now(Duration::from_secs(30)).unwrap().complete);
}

/// A visit w1 starts and both workers type into while apart, with observations the same day;
/// submitted by w1 and synced everywhere.
fn visit_typed_by_two(w1: &Device, w2: &Device) -> (PersonId, DocId) {
    let (person, visit) = w1
        .write(|s| {
            let person = s.create_person(&team::person("Iris Kemp", RiskTier::High))?;
            let visit = s.create_visit(&NewVisit {
                person: person.clone(),
                worker: WorkerId::new("w1")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })?;
            s.edit_visit(&visit, |v| v.set_section(Section::WhatMatters, "Her garden. "))?;
            let obs = s.create_observations(&NewObservations {
                person: person.clone(),
                nurse: WorkerId::new("w1")?,
                taken_at: Utc::now(),
            })?;
            s.edit_observations(&obs, |o| {
                o.set_respiration_rate(18)?;
                o.set_oxygen_saturation(96, SpO2Scale::Scale1)?;
                o.set_supplemental_oxygen(false)?;
                o.set_systolic_blood_pressure(128)?;
                o.set_pulse(76)?;
                o.set_consciousness(Consciousness::Alert)?;
                o.set_temperature(36.8)
            })?;
            Ok((person, visit))
        })
        .unwrap();
    sync(w1);
    sync(w2);
    // Typed at the same time, neither seeing the other's words.
    w1.write(|s| s.edit_visit(&visit, |v| v.splice(Section::WhatMatters, 12, 0, "Her cat, Miso. ")))
        .unwrap();
    w2.write(|s| {
        s.edit_visit(&visit, |v| {
            v.splice(Section::WhatMatters, 0, 0, "Sunday calls with her son. ")
        })
    })
    .unwrap();
    sync(w2);
    sync(w1);
    w1.review_visit(&visit, ReviewAction::Submit, None).unwrap();
    sync(w1);
    (person, visit)
}

#[test]
fn a_lead_reviews_in_the_browser_and_the_worker_sees_the_decision() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let w2 = rig.enrolled("w2", "w2.sqlite3");
    let (person, visit) = visit_typed_by_two(&w1, &w2);
    let state = rig.world.dir.path().join("browser-state.json");
    let input = |phase: &str| {
        json!({
            "base": format!("https://127.0.0.1:{}", rig.served.addr.port()),
            "username": "lead1",
            "password": password,
            "visit": visit.as_str(),
            "person": person.as_str(),
            "personName": "Iris Kemp",
            "comment": COMMENT,
            "phase": phase,
            "state": state,
        })
    };

    let returned = browser::run("review.mjs", &input("return"));
    let read = &returned["results"]["read its authorship"];
    let authors: Vec<&str> = read["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(authors.contains(&"w1 (w1), on w1.sqlite3"), "{authors:?}");
    assert!(authors.contains(&"w2 (w2), on w2.sqlite3"), "{authors:?}");
    assert_eq!(read["marks"].as_array().unwrap().len(), 2, "{read}");
    let attention = read["attention"].as_str().unwrap();
    assert!(
        attention.contains("What matters to the person was edited at the same time by"),
        "{attention}"
    );
    let pages = screenshots(&returned);
    for name in [
        "sign-in",
        "queue-signed-in",
        "visit-return",
        "visit-after-return",
        "person",
        "caseload",
        "not-found",
    ] {
        assert!(
            pages.iter().any(|p| p.ends_with(&format!("/{name}.png"))),
            "{name}: {pages:?}"
        );
    }

    sync(&w1);
    let review = w1.read(|s| s.review(&visit)).unwrap();
    assert_eq!(review.state.value, ReviewState::Returned);
    assert_eq!(review.history.last().unwrap().comment.as_deref(), Some(COMMENT));
    w1.write(|s| {
        s.edit_visit(&visit, |v| {
            v.splice(Section::SupportNetwork, 0, 0, "Her sister, weekly.")
        })
    })
    .unwrap();
    w1.review_visit(&visit, ReviewAction::Submit, None).unwrap();
    sync(&w1);

    let approved = browser::run("review.mjs", &input("approve"));
    assert!(
        screenshots(&approved)
            .iter()
            .any(|p| p.ends_with("/visit-after-approve.png"))
    );
    sync(&w1);
    assert_eq!(
        w1.read(|s| s.review(&visit)).unwrap().state.value,
        ReviewState::Approved
    );
    w1.write(|s| s.edit_visit(&visit, |v| v.splice(Section::Goals, 0, 0, "Join the lunch club.")))
        .unwrap();
    sync(&w1);
    // An edit held back after a redaction, so the visit page checked next lists one.
    let held = Held {
        path: vec![Step::Key("sections".into()), Step::Key("what_matters".into())],
        at: 0,
        text: "Typed offline inside a removed passage.".into(),
    };
    let held_row = HeldRow {
        id: 0,
        doc: visit.clone(),
        device: w2.enrolment().unwrap().author.device,
        // A frame is its length (4 bytes), then the CBOR a held row keeps.
        held: outpost_core::sync::wire::encode(&held)[4..].to_vec(),
        received_at: Utc::now().timestamp(),
    };
    let write = SyncWrite {
        held: vec![held_row],
        ..SyncWrite::default()
    };
    rig.world.storage.write(None, &write).unwrap();

    let changed = browser::run("review.mjs", &input("changed"));
    let banner = changed["results"]["changed since approval"]["banner"].as_str().unwrap();
    assert!(banner.contains("What they want to achieve"), "{banner}");
    assert!(banner.contains("Join the lunch club."), "{banner}");
    assert!(
        !banner.contains("Support network"),
        "only what changed after approval: {banner}"
    );
    assert_eq!(changed["results"]["sign out"]["refused"], true);
    let pages = screenshots(&changed);
    assert!(pages.iter().any(|p| p.ends_with("/signed-out.png")));
    assert!(
        pages.iter().any(|p| p.ends_with("/visit-changed.png")),
        "the visit page with a held edit and the form to remove a passage: {pages:?}"
    );
}

/// The screenshot files a run's page checks wrote, each checked to be a PNG of a page with no
/// axe violations.
fn screenshots(run: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    for page in run["results"]["pages checked"].as_array().unwrap() {
        assert_eq!(page["violations"], 0, "{page}");
        let path = page["screenshot"].as_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{path}");
        paths.push(path.to_string());
    }
    paths
}
