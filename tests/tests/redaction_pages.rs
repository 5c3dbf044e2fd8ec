//! Redaction from the lead's pages, request by request: a lead removes a passage through the
//! visit page's form (gone from the stored visit and the worker's phone, audited without the
//! text); a passage not found, found twice, or given without a reason is refused naming the
//! field; a lead of another team finds nothing to remove; and edits held back after a redaction
//! are shown (as text) for the lead to put back or discard.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use outpost_core::forget::{Held, Step};
use outpost_core::{Device, DocId, NewVisit, Record, RiskTier, Section, Setting, WorkerId};
use outpost_server::storage::{Accounts, Documents, HeldRow, Role, ScopePolicy, SyncWrite};
use outpost_tests::pages::{Browser, Page, hidden};
use outpost_tests::team::{self, ServedTeam};

const BEFORE: &str = "Iris wants to keep gardening. ";
/// Recorded on the wrong person's visit; it runs over two lines, as a pasted note might.
const PASSAGE: &str = "Mr Quentin Zebedee,\nof 9 Larkspur Row, was also discussed. ";
const AFTER: &str = "She enjoys the library on Fridays.";
const REASON: &str = "recorded on the wrong person's record";

fn sync(device: &Device) {
    assert!(device.sync_now(Duration::from_secs(30)).unwrap().complete);
}

/// A visit by w1 whose "what matters" holds the passage between two sentences, synced.
fn visit_with_passage(w1: &Device) -> DocId {
    let visit = w1
        .write(|s| {
            let person = s.create_person(&team::person("Iris Kemp", RiskTier::Low))?;
            let visit = s.create_visit(&NewVisit {
                person,
                worker: WorkerId::new("w1")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })?;
            s.edit_visit(&visit, |v| {
                v.set_section(Section::WhatMatters, &format!("{BEFORE}{PASSAGE}{AFTER}"))?;
                v.set_section(Section::Goals, "Walk to the shop.")
            })?;
            Ok(visit)
        })
        .unwrap();
    sync(w1);
    visit
}

fn stored_section(rig: &ServedTeam, visit: &DocId, section: Section) -> String {
    let stored = rig.world.storage.doc(visit).unwrap().unwrap();
    let record = Record::load(visit.clone(), &stored.snapshot).unwrap();
    record.visit().unwrap().section(section).to_string()
}

fn on_phone(device: &Device, visit: &DocId, section: Section) -> String {
    device
        .read(|s| Ok(s.visit(visit)?.section(section).to_string()))
        .unwrap()
}

/// Sends the visit page's "Remove a passage" form, with the token the page carried. A browser
/// sends a text box's line breaks as CRLF, so this does too.
async fn remove(browser: &mut Browser, visit: &DocId, section: &str, passage: &str, reason: &str) -> Page {
    let path = format!("/review/visits/{visit}");
    let csrf = hidden(&browser.get(&path).await.body, "csrf").unwrap();
    let passage = passage.replace('\n', "\r\n");
    browser
        .post(
            &format!("{path}/redact"),
            &[
                ("csrf", &csrf),
                ("section", section),
                ("passage", &passage),
                ("reason", reason),
            ],
        )
        .await
}

/// The held edits' ids, in the order the page lists their forms.
fn held_ids(body: &str, visit: &DocId) -> Vec<i64> {
    let marker = format!("/review/visits/{visit}/held/");
    body.match_indices(&marker)
        .map(|(at, _)| {
            let digits: String = body[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().unwrap()
        })
        .collect()
}

async fn settle(browser: &mut Browser, visit: &DocId, id: i64, choice: &str) -> Page {
    let path = format!("/review/visits/{visit}");
    let csrf = hidden(&browser.get(&path).await.body, "csrf").unwrap();
    browser
        .post(&format!("{path}/held/{id}"), &[("csrf", &csrf), ("settle", choice)])
        .await
}

#[test]
fn a_lead_removes_a_passage_through_the_visit_page() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let visit = visit_with_passage(&w1);
    let path = format!("/review/visits/{visit}");
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Remove a passage"), "{}", page.body);
        assert!(page.body.contains("removed from every copy"));
        assert!(page.body.contains("It cannot be restored."));
        assert!(page.body.contains(&format!("action=\"{path}/redact\"")));
        assert!(
            page.body
                .contains("<option value=\"what_matters\">What matters to the person</option>")
        );
        assert!(
            !page.body.contains("<option value=\"strengths\">"),
            "only sections with text are offered"
        );

        let done = remove(&mut browser, &visit, "what_matters", PASSAGE, REASON).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let location = done.location.unwrap();
        assert_eq!(location, format!("{path}?redacted=1"));
        let page = browser.get(&location).await;
        assert!(page.body.contains("The passage was removed."), "{}", page.body);
        assert!(!page.body.contains("Zebedee"));
    });
    assert_eq!(
        stored_section(&rig, &visit, Section::WhatMatters),
        format!("{BEFORE}{AFTER}")
    );
    assert_eq!(stored_section(&rig, &visit, Section::Goals), "Walk to the shop.");
    sync(&w1);
    assert_eq!(on_phone(&w1, &visit, Section::WhatMatters), format!("{BEFORE}{AFTER}"));

    let log = rig.world.storage.audit_log(100).unwrap();
    let redaction = log.iter().find(|e| e.action == "redact").unwrap();
    assert_eq!(
        (redaction.who.as_str(), redaction.subject.as_str()),
        ("lead1/server", visit.as_str())
    );
    assert_eq!(redaction.from, "127.0.0.1");
    assert!(redaction.detail.contains(REASON), "{}", redaction.detail);
    assert!(!format!("{log:?}").contains("Zebedee"), "never the text");
}

#[test]
fn a_passage_not_found_once_or_without_a_reason_is_refused_naming_the_field() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let visit = visit_with_passage(&w1);
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        for (section, passage, reason, field, says) in [
            (
                "what_matters",
                "Mr Quentin Zebedee of 9",
                REASON,
                "passage",
                "does not occur",
            ),
            ("goals", "Zebedee", REASON, "passage", "does not occur"),
            ("what_matters", "e", REASON, "passage", "times in that section"),
            ("what_matters", "", REASON, "passage", "empty"),
            ("what_matters", PASSAGE, "   ", "reason", "needs a reason"),
            ("hobbies", PASSAGE, REASON, "section", "not a section"),
        ] {
            let page = remove(&mut browser, &visit, section, passage, reason).await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{passage:?}: {}", page.body);
            assert!(
                page.body.contains(&format!("invalid {field}")) && page.body.contains(says),
                "{passage:?}: {}",
                page.body
            );
        }
        // A form without the session's token changes nothing either.
        let page = browser
            .post(
                &format!("/review/visits/{visit}/redact"),
                &[
                    ("csrf", "forged"),
                    ("section", "what_matters"),
                    ("passage", PASSAGE),
                    ("reason", REASON),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    });
    assert_eq!(
        stored_section(&rig, &visit, Section::WhatMatters),
        format!("{BEFORE}{PASSAGE}{AFTER}")
    );
    let log = rig.world.storage.audit_log(100).unwrap();
    assert!(!log.iter().any(|e| e.action == "redact"));
}

#[test]
fn a_lead_of_another_team_finds_nothing_to_remove_or_settle() {
    let rig = ServedTeam::start();
    let team = rig.world.team("t2", ScopePolicy::Team);
    rig.world.worker("lead2", &team, Role::Lead);
    let other = rig.password("lead2");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let visit = visit_with_passage(&w1);
    let held = hold(&rig, &w1, &visit, 0, "typed offline");
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert!(browser.sign_in("lead2", &other).await.status.is_redirection());
        let missing = browser.get(&format!("/review/visits/{}", DocId::random())).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let page = browser.get(&format!("/review/visits/{visit}")).await;
        assert_eq!(page.body, missing.body);
        let csrf = hidden(&browser.get("/review").await.body, "csrf").unwrap();
        let removed = browser
            .post(
                &format!("/review/visits/{visit}/redact"),
                &[
                    ("csrf", &csrf),
                    ("section", "what_matters"),
                    ("passage", PASSAGE),
                    ("reason", REASON),
                ],
            )
            .await;
        assert_eq!(removed.status, StatusCode::NOT_FOUND);
        assert_eq!(removed.body, missing.body, "answered exactly as a missing visit");
        for choice in ["put-back", "discard"] {
            let settled = browser
                .post(
                    &format!("/review/visits/{visit}/held/{held}"),
                    &[("csrf", &csrf), ("settle", choice)],
                )
                .await;
            assert_eq!(settled.status, StatusCode::NOT_FOUND, "{choice}");
            assert_eq!(settled.body, missing.body);
        }
    });
    assert_eq!(
        stored_section(&rig, &visit, Section::WhatMatters),
        format!("{BEFORE}{PASSAGE}{AFTER}")
    );
    assert_eq!(rig.world.storage.held_edits(&visit).unwrap().len(), 1);
}

/// Stores an edit held back from `visit`, as a sync from w1's phone would after a redaction;
/// returns its id.
fn hold(rig: &ServedTeam, w1: &Device, visit: &DocId, at: usize, text: &str) -> i64 {
    let held = Held {
        path: vec![Step::Key("sections".into()), Step::Key("what_matters".into())],
        at,
        text: text.into(),
    };
    // A frame is its length (4 bytes), then the CBOR a held row keeps.
    let cbor = outpost_core::sync::wire::encode(&held)[4..].to_vec();
    let row = HeldRow {
        id: 0,
        doc: visit.clone(),
        device: w1.enrolment().unwrap().author.device,
        held: cbor,
        received_at: Utc::now().timestamp(),
    };
    let write = SyncWrite {
        held: vec![row],
        ..SyncWrite::default()
    };
    rig.world.storage.write(None, &write).unwrap();
    let rows = rig.world.storage.held_edits(visit).unwrap();
    rows.last().unwrap().id
}

#[test]
fn held_edits_are_listed_as_text_and_put_back_or_discarded() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let visit = visit_with_passage(&w1);
    let whole = format!("{BEFORE}{PASSAGE}{AFTER}");
    // Past the end of the text as it is now: it goes at the end.
    let back = hold(&rig, &w1, &visit, 10_000, " <b>Typed offline</b> & kept.");
    let dropped = hold(&rig, &w1, &visit, 3, "Not wanted.");
    let path = format!("/review/visits/{visit}");
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        let page = browser.get(&path).await;
        assert!(page.body.contains("Held after a redaction"), "{}", page.body);
        assert_eq!(held_ids(&page.body, &visit), [back, dropped]);
        assert!(page.body.contains("&lt;b&gt;Typed offline&lt;/b&gt; &amp; kept."));
        assert!(!page.body.contains("<b>Typed offline"), "held text is shown as text");
        assert!(
            page.body
                .contains("Typed in <strong>What matters to the person</strong> by w1")
        );
        assert!(page.body.contains("on w1.sqlite3"), "the device by its label");

        let put = settle(&mut browser, &visit, back, "put-back").await;
        assert_eq!(put.status, StatusCode::SEE_OTHER, "{}", put.body);
        let page = browser.get(&put.location.unwrap()).await;
        assert!(page.body.contains("The held text was put back."));
        assert_eq!(held_ids(&page.body, &visit), [dropped]);
        assert!(
            page.body.contains("on the review pages"),
            "the text put back is the lead's, through the server"
        );
        let again = settle(&mut browser, &visit, back, "put-back").await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        assert!(again.body.contains("no longer held"), "{}", again.body);

        let discarded = settle(&mut browser, &visit, dropped, "discard").await;
        assert_eq!(discarded.status, StatusCode::SEE_OTHER, "{}", discarded.body);
        let page = browser.get(&discarded.location.unwrap()).await;
        assert!(page.body.contains("The held text was discarded."));
        assert!(!page.body.contains("Held after a redaction"));
        assert!(!page.body.contains("Not wanted."));
        let odd = settle(&mut browser, &visit, dropped, "keep").await;
        assert_eq!(odd.status, StatusCode::BAD_REQUEST);
        assert!(odd.body.contains("settle"));
    });
    let expected = format!("{whole} <b>Typed offline</b> & kept.");
    assert_eq!(stored_section(&rig, &visit, Section::WhatMatters), expected);
    sync(&w1);
    assert_eq!(on_phone(&w1, &visit, Section::WhatMatters), expected);
    assert!(rig.world.storage.held_edits(&visit).unwrap().is_empty());

    let log = rig.world.storage.audit_log(100).unwrap();
    for action in ["held-put-back", "held-discard"] {
        let entry = log.iter().find(|e| e.action == action).unwrap();
        assert_eq!(
            (entry.who.as_str(), entry.subject.as_str()),
            ("lead1/server", visit.as_str()),
            "{action}"
        );
    }
    let logged = format!("{log:?}");
    assert!(!logged.contains("Typed offline") && !logged.contains("Not wanted"));
}

#[test]
fn an_edit_typed_offline_inside_a_removed_passage_is_held_and_put_back_where_it_was() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let w2 = rig.enrolled("w2", "w2.sqlite3");
    let visit = visit_with_passage(&w1);
    sync(&w2);
    // W2, offline, types inside the passage while the lead removes it.
    let inside = BEFORE.chars().count() + "Mr Quentin ".chars().count();
    w2.write(|s| s.edit_visit(&visit, |v| v.splice(Section::WhatMatters, inside, 0, "typed-inside ")))
        .unwrap();
    let path = format!("/review/visits/{visit}");
    let mut browser = Browser::new(rig.world.state.clone());
    rig.runtime.block_on(async {
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        let done = remove(&mut browser, &visit, "what_matters", PASSAGE, REASON).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    });
    let outcome = w2.sync_now(Duration::from_secs(30)).unwrap();
    assert!(outcome.complete, "{outcome:?}");
    assert_eq!(outcome.progress.held, 1);
    assert_eq!(on_phone(&w2, &visit, Section::WhatMatters), format!("{BEFORE}{AFTER}"));

    rig.runtime.block_on(async {
        let page = browser.get(&path).await;
        assert!(page.body.contains("Held after a redaction"));
        assert!(page.body.contains("typed-inside"));
        assert!(page.body.contains("on w2.sqlite3"), "{}", page.body);
        let ids = held_ids(&page.body, &visit);
        assert_eq!(ids.len(), 1);
        let put = settle(&mut browser, &visit, ids[0], "put-back").await;
        assert_eq!(put.status, StatusCode::SEE_OTHER, "{}", put.body);
    });
    let expected = format!("{BEFORE}typed-inside {AFTER}");
    assert_eq!(stored_section(&rig, &visit, Section::WhatMatters), expected);
    for phone in [&w2, &w1] {
        sync(phone);
        assert_eq!(on_phone(phone, &visit, Section::WhatMatters), expected);
    }
}

#[test]
fn a_lead_removes_a_whole_visit_and_the_device_erases_it() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let visit = visit_with_passage(&w1);
    let path = format!("/review/visits/{visit}");
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        let page = browser.get(&path).await;
        assert!(page.body.contains("Remove this whole visit"), "{}", page.body);
        assert!(page.body.contains(&format!("action=\"{path}/remove\"")));
        let csrf = hidden(&page.body, "csrf").unwrap();
        let blank = browser
            .post(&format!("{path}/remove"), &[("csrf", &csrf), ("reason", " ")])
            .await;
        assert_eq!(blank.status, StatusCode::BAD_REQUEST);
        assert!(blank.body.contains("reason"), "{}", blank.body);
        assert_eq!(
            browser.get(&path).await.status,
            StatusCode::OK,
            "nothing removed without a reason"
        );
        let removed = browser
            .post(&format!("{path}/remove"), &[("csrf", &csrf), ("reason", REASON)])
            .await;
        assert!(removed.status.is_redirection(), "{}", removed.status);
        assert_eq!(browser.get(&path).await.status, StatusCode::NOT_FOUND);
    });
    assert!(rig.world.storage.doc(&visit).unwrap().is_none());
    assert!(rig.world.storage.doc(&DocId::review_of(&visit)).unwrap().is_none());
    sync(&w1);
    assert!(w1.read(|s| s.visit(&visit)).is_err(), "the phone erased it");
    let log = rig.world.storage.audit_log(50).unwrap();
    let entry = log.iter().find(|e| e.action == "remove-document").unwrap();
    assert_eq!(entry.who, "lead1/server");
    assert_eq!(entry.subject, visit.to_string());
    assert!(entry.detail.contains(REASON), "{}", entry.detail);
}
