//! The review pages request by request: who gets in, what a lead of another team gets, forms
//! without the session's token, expired sessions, hostile text, the audit of page views, and a
//! decision reaching the worker's device. The browser tests (`review_browser.rs`) walk the
//! same pages in Chromium.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use outpost_core::{Device, DocId, NewVisit, ReviewAction, ReviewState, RiskTier, Section, Setting, WorkerId};
use outpost_server::storage::{Accounts, Role, ScopePolicy};
use outpost_tests::pages::{Browser, hidden};
use outpost_tests::team::{self, ServedTeam};

/// Text a worker might paste: markup, a script, a very long line, and right-to-left words.
const HOSTILE: &str = "<script>alert('x')</script><b>bold?</b> &amp; \"quoted\" שלום עולם ";

fn submitted_visit(device: &Device, name: &str) -> (DocId, DocId) {
    let long_line = "x".repeat(5_000);
    let (person, visit) = device
        .write(|s| {
            let person = s.create_person(&team::person(name, RiskTier::High))?;
            let visit = s.create_visit(&NewVisit {
                person: person.clone(),
                worker: WorkerId::new("w1")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })?;
            s.edit_visit(&visit, |v| {
                v.set_section(Section::WhatMatters, &format!("{HOSTILE}{long_line}"))?;
                v.set_section(Section::Goals, "Walk to the shop again")
            })?;
            Ok((person, visit))
        })
        .unwrap();
    device.review_visit(&visit, ReviewAction::Submit, None).unwrap();
    assert!(device.sync_now(Duration::from_secs(30)).unwrap().complete);
    (person, visit)
}

fn other_team_lead(rig: &ServedTeam) -> String {
    let team = rig.world.team("t2", ScopePolicy::Team);
    rig.world.worker("lead2", &team, Role::Lead);
    rig.password("lead2")
}

#[test]
fn pages_refuse_anyone_without_a_live_session() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        for path in [
            "/review",
            "/review/caseload",
            "/review/visits/abc",
            "/review/people/abc",
        ] {
            let page = browser.get(path).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
            let location = page.location.unwrap();
            assert_eq!(location, format!("/login?next={path}"));
        }
        // A POST without a session is refused outright.
        let page = browser.post("/logout", &[("csrf", "x")]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);

        let wrong = browser.sign_in("lead1", "not the password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.body.contains("username or password is wrong"), "{}", wrong.body);
        // A password typed into the username box never reaches the audit log.
        browser.sign_in("Hunter2-Secret", "x").await;
        let audit = format!("{:?}", rig.world.storage.audit_log(10).unwrap());
        assert!(!audit.contains("Hunter2"), "{audit}");
        assert!(
            audit.contains("sign-in-failed") && audit.contains("\"lead1\""),
            "{audit}"
        );
        // A worker with a password is not a lead: refused with the same words.
        let worker = rig.password("w1");
        let refused = browser.sign_in("w1", &worker).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.body.contains("username or password is wrong"));
        let page = browser.sign_in("lead1", &password).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location.as_deref(), Some("/review"));
        let cookie = page
            .set_cookies
            .iter()
            .find(|c| c.starts_with("__Host-outpost-session="))
            .unwrap();
        for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert_eq!(browser.get("/review").await.status, StatusCode::OK);

        // The session ages past its idle limit: the same cookie now gets the sign-in page.
        let db = rusqlite::Connection::open(rig.world.dir.path().join("server.sqlite3")).unwrap();
        db.execute("UPDATE web_sessions SET seen_at = seen_at - 3600", [])
            .unwrap();
        assert_eq!(browser.get("/review").await.status, StatusCode::SEE_OTHER);
        let gone: i64 = db
            .query_row("SELECT count(*) FROM web_sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(gone, 0, "an expired session is deleted when it is next presented");
    });
}

#[test]
fn a_password_set_again_ends_the_old_sessions_and_the_old_password() {
    let rig = ServedTeam::start();
    let first = rig.password("lead1");
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert_eq!(browser.sign_in("lead1", &first).await.status, StatusCode::SEE_OTHER);
        assert_eq!(browser.get("/review").await.status, StatusCode::OK);
        // Setting it again (the admin's `set-password`) ends the session.
        let second = rig.password("lead1");
        assert_eq!(first, second, "the rig sets the same password each time");
        assert_eq!(browser.get("/review").await.status, StatusCode::SEE_OTHER);
    });
}

#[test]
fn forms_without_the_session_token_change_nothing() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let (_, visit) = submitted_visit(&w1, "Iris Kemp");
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        // The sign-in form itself needs its token.
        let page = browser
            .post(
                "/login",
                &[("username", "lead1"), ("password", &password), ("csrf", "guess")],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        let page = browser.get(&format!("/review/visits/{visit}")).await;
        let heads = hidden(&page.body, "heads").unwrap();
        let decide = format!("/review/visits/{visit}/decision");
        for csrf in ["", "forged"] {
            let page = browser
                .post(&decide, &[("csrf", csrf), ("heads", &heads), ("decision", "approve")])
                .await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{csrf:?}");
            assert!(page.body.contains("security token"), "{}", page.body);
        }
        let logout = browser.post("/logout", &[("csrf", "forged")]).await;
        assert_eq!(logout.status, StatusCode::FORBIDDEN);
        assert_eq!(browser.get("/review").await.status, StatusCode::OK, "still signed in");
    });
    assert!(w1.sync_now(Duration::from_secs(30)).unwrap().complete);
    let review = w1.read(|s| s.review(&visit)).unwrap();
    assert_eq!(review.state.value, ReviewState::Submitted, "no forged decision landed");
}

#[test]
fn a_lead_of_another_team_finds_nothing_even_by_guessing() {
    let rig = ServedTeam::start();
    let other = other_team_lead(&rig);
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let (person, visit) = submitted_visit(&w1, "Iris Kemp");
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert!(browser.sign_in("lead2", &other).await.status.is_redirection());
        let queue = browser.get("/review").await;
        assert_eq!(queue.status, StatusCode::OK);
        assert!(!queue.body.contains(visit.as_str()) && queue.body.contains("No visits match"));
        let missing = browser.get(&format!("/review/visits/{}", DocId::random())).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for path in [
            format!("/review/visits/{visit}"),
            format!("/review/people/{person}"),
            format!("/review/visits/{person}"),
            format!("/review/people/{visit}"),
            format!("/review/visits/{}", DocId::review_of(&visit)),
        ] {
            let page = browser.get(&path).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(page.body, missing.body, "{path} answers exactly as a missing record");
        }
        let page = browser.get("/review/visits/abc").await;
        let heads = hidden(&page.body, "heads");
        assert!(heads.is_none());
        let csrf = hidden(&browser.get("/review").await.body, "csrf").unwrap();
        let decide = browser
            .post(
                &format!("/review/visits/{visit}/decision"),
                &[("csrf", &csrf), ("heads", "00"), ("decision", "approve")],
            )
            .await;
        assert!(
            matches!(decide.status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST),
            "{}",
            decide.status
        );
    });
    assert!(w1.sync_now(Duration::from_secs(30)).unwrap().complete);
    assert_eq!(
        w1.read(|s| s.review(&visit)).unwrap().state.value,
        ReviewState::Submitted
    );
}

#[test]
fn hostile_text_is_shown_as_text_and_every_view_is_audited() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let (person, visit) = submitted_visit(&w1, "<img src=x onerror=alert(1)> Kemp");
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        let queue = browser.get("/review").await;
        assert!(
            queue.body.contains(&format!("/review/visits/{visit}")),
            "{}",
            queue.body
        );
        assert!(queue.body.contains("&lt;img src=x onerror=alert(1)&gt; Kemp"));
        let page = browser.get(&format!("/review/visits/{visit}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            !page.body.contains("<script>alert"),
            "markup from a note must never reach the page"
        );
        assert!(!page.body.contains("<img src=x"));
        assert!(
            page.body
                .contains("&lt;script&gt;alert('x')&lt;/script&gt;&lt;b&gt;bold?&lt;/b&gt;")
        );
        assert!(page.body.contains("&amp;amp; &quot;quoted&quot; שלום עולם"));
        assert!(page.body.contains(&"x".repeat(5_000)), "long lines are kept whole");
        let person_page = browser.get(&format!("/review/people/{person}")).await;
        assert_eq!(person_page.status, StatusCode::OK);
    });
    let audit = rig.world.storage.audit_log(50).unwrap();
    let viewed: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|e| e.action.starts_with("view-"))
        .map(|e| (e.who.as_str(), e.action.as_str(), e.subject.as_str()))
        .collect();
    assert!(
        viewed.contains(&("lead1/web", "view-visit", visit.as_str())),
        "{viewed:?}"
    );
    assert!(
        viewed.contains(&("lead1/web", "view-person", person.as_str())),
        "{viewed:?}"
    );
    let logged = format!("{audit:?}");
    assert!(
        !logged.contains("Kemp") && !logged.contains("script"),
        "no content in the audit"
    );
}

/// Approves or returns the visit at `path` through its form, with the heads the page showed.
async fn decide(browser: &mut Browser, path: &str, decision: &str, comment: &str) -> outpost_tests::pages::Page {
    let page = browser.get(path).await;
    let csrf = hidden(&page.body, "csrf").unwrap();
    let heads = hidden(&page.body, "heads").unwrap();
    browser
        .post(
            &format!("{path}/decision"),
            &[
                ("csrf", &csrf),
                ("heads", &heads),
                ("decision", decision),
                ("comment", comment),
            ],
        )
        .await
}

#[test]
fn a_returned_visit_reaches_the_device_and_an_edit_after_approval_shows_what_changed() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let (_, visit) = submitted_visit(&w1, "Iris Kemp");
    let path = format!("/review/visits/{visit}");
    let mut browser = Browser::new(rig.world.state.clone());
    rig.runtime.block_on(async {
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        // Returning needs a comment.
        let refused = decide(&mut browser, &path, "return", "  ").await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(refused.body.contains("comment"), "{}", refused.body);
        let returned = decide(
            &mut browser,
            &path,
            "return",
            "Please add what Iris said about her sister.",
        )
        .await;
        assert_eq!(returned.status, StatusCode::SEE_OTHER, "{}", returned.body);
        let page = browser.get(&returned.location.unwrap()).await;
        assert!(page.body.contains("Returned with your comment"));
        assert!(page.body.contains("Please add what Iris said about her sister."));
    });

    assert!(w1.sync_now(Duration::from_secs(30)).unwrap().complete);
    let review = w1.read(|s| s.review(&visit)).unwrap();
    assert_eq!(review.state.value, ReviewState::Returned);
    let step = review.history.last().unwrap();
    assert_eq!(
        step.comment.as_deref(),
        Some("Please add what Iris said about her sister.")
    );
    assert_eq!(step.by.as_ref().unwrap().worker.as_str(), "lead1");

    w1.write(|s| {
        s.edit_visit(&visit, |v| {
            v.splice(Section::SupportNetwork, 0, 0, "Her sister visits on Sundays.")
        })
    })
    .unwrap();
    w1.review_visit(&visit, ReviewAction::Submit, None).unwrap();
    assert!(w1.sync_now(Duration::from_secs(30)).unwrap().complete);

    rig.runtime.block_on(async {
        let approved = decide(&mut browser, &path, "approve", "").await;
        assert_eq!(approved.status, StatusCode::SEE_OTHER);
        let page = browser.get(&path).await;
        assert!(!page.body.contains("Changed since approval"));
        let queue = browser.get("/review").await;
        assert!(
            !queue.body.contains(visit.as_str()),
            "an approved visit leaves the queue"
        );
    });

    assert!(w1.sync_now(Duration::from_secs(30)).unwrap().complete);
    assert_eq!(
        w1.read(|s| s.review(&visit)).unwrap().state.value,
        ReviewState::Approved
    );
    w1.write(|s| s.edit_visit(&visit, |v| v.splice(Section::Goals, 0, 0, "Join the lunch club. ")))
        .unwrap();
    assert!(w1.sync_now(Duration::from_secs(30)).unwrap().complete);

    rig.runtime.block_on(async {
        let queue = browser.get("/review").await;
        assert!(
            queue.body.contains(visit.as_str()),
            "a visit changed since approval returns to the queue"
        );
        assert!(queue.body.contains("Changed since approval"));
        let page = browser.get(&path).await;
        assert!(page.body.contains("Changed since approval"));
        let as_approved = page.body.find("As approved").unwrap();
        let now = page.body.find("Join the lunch club. Walk to the shop again").unwrap();
        assert!(as_approved < now, "the section shows as approved, then as it is now");
        assert!(page.body[as_approved..now].contains("Walk to the shop again"));
        // The lead can decide again.
        assert!(hidden(&page.body, "heads").is_some());
    });
}

#[test]
fn the_caseload_counts_open_and_overdue_actions_by_risk_tier() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let w1 = rig.enrolled("w1", "w1.sqlite3");
    let yesterday = Utc::now().date_naive().pred_opt().unwrap();
    let next_week = Utc::now().date_naive() + chrono::Days::new(7);
    let person = w1
        .write(|s| {
            s.create_person(&team::person("Low Risk Lou", RiskTier::Low))?;
            let person = s.create_person(&team::person("High Risk Hal", RiskTier::High))?;
            let visit = s.create_visit(&NewVisit {
                person: person.clone(),
                worker: WorkerId::new("w1")?,
                at: Utc::now() - chrono::Duration::days(3),
                setting: Setting::Phone,
            })?;
            s.edit_visit(&visit, |v| {
                for (what, due) in [
                    ("Book the OT", yesterday),
                    ("Call the GP", next_week),
                    ("Old task", yesterday),
                ] {
                    let id = v.add_action(&outpost_core::NewAction {
                        what: what.into(),
                        who: "w1".into(),
                        due: Some(due),
                    })?;
                    if what == "Old task" {
                        v.cancel_action(&id)?;
                    }
                }
                Ok(())
            })?;
            Ok(person)
        })
        .unwrap();
    assert!(w1.sync_now(Duration::from_secs(30)).unwrap().complete);
    rig.runtime.block_on(async {
        let mut browser = Browser::new(rig.world.state.clone());
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        let page = browser.get("/review/caseload").await;
        assert_eq!(page.status, StatusCode::OK);
        let hal = page.body.find("High Risk Hal").unwrap();
        let lou = page.body.find("Low Risk Lou").unwrap();
        assert!(hal < lou, "highest risk first");
        let row = &page.body[hal..lou];
        // Three days since the visit; two open actions (the cancelled one is not), one overdue.
        assert!(row.contains("<td>3</td><td>2</td><td>1 "), "{row}");
        assert!(page.body.contains("2 people; 1 overdue action in all."));
        assert!(
            page.body
                .contains("<title id=\"chart-summary\">High: 1, Medium: 0, Low: 1, Not yet known: 0</title>")
        );
        let person_page = browser.get(&format!("/review/people/{person}")).await;
        assert!(person_page.body.contains("Book the OT"));
        assert!(!person_page.body.contains("Old task"), "cancelled actions are not open");
    });
}
