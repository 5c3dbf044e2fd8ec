//! Devices whose clocks are days wrong, end to end over the real server: a worker's phone three
//! days fast, a colleague's five days slow, a lead's phone three days slow, and the server (the
//! review pages) on time. Each review step records `at` from its writer's clock, so later steps
//! carry earlier times; the history must still read in the order the steps were taken (the
//! order of the document's list), and "changed since approval" must follow the visit's heads,
//! not anyone's clock.
//!
//! Where timestamps still order things: the review queue sorts by the latest submission's `at`
//! (the worker's clock), so a fast phone's submission sorts above later ones; a person's notes
//! carry `recorded_at` from the device; and a device counts an action overdue by its own clock.
//! None of these decides what a record says or which step came first.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use outpost_core::{Device, DocId, NewVisit, ReviewAction, ReviewState, RiskTier, Section, Setting, WorkerId};
use outpost_server::storage::ReviewIndex;
use outpost_tests::pages::{Browser, hidden};
use outpost_tests::team::{self, ServedTeam};

const SYNC: Duration = Duration::from_secs(30);

fn skewed(device: &Device, skew: TimeDelta) {
    device
        .write(|s| {
            s.set_clock_skew(skew);
            Ok(())
        })
        .unwrap();
}

fn sync(device: &Device) {
    assert!(device.sync_now(SYNC).unwrap().complete);
}

/// The review history's steps as the visit page lists them, in page order.
fn page_history(body: &str) -> Vec<String> {
    let start = body.find("<ol class=\"history\">").expect("a review history");
    let end = start + body[start..].find("</ol>").unwrap();
    body[start..end]
        .split("<strong>")
        .skip(1)
        .map(|step| step[..step.find("</strong>").unwrap()].to_string())
        .collect()
}

/// Approves or returns the visit at `path` through its form, as a lead's browser does.
async fn decide(browser: &mut Browser, path: &str, decision: &str, comment: &str) {
    let page = browser.get(path).await;
    let csrf = hidden(&page.body, "csrf").unwrap();
    let heads = hidden(&page.body, "heads").unwrap();
    let answer = browser
        .post(
            &format!("{path}/decision"),
            &[
                ("csrf", &csrf),
                ("heads", &heads),
                ("decision", decision),
                ("comment", comment),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
}

fn actions_and_times(device: &Device, visit: &DocId) -> (Vec<ReviewAction>, Vec<DateTime<Utc>>, ReviewState) {
    let review = device.read(|s| s.review(visit)).unwrap();
    (
        review.history.iter().map(|s| s.action).collect(),
        review.history.iter().map(|s| s.at).collect(),
        review.state.value,
    )
}

#[test]
fn review_history_and_changed_since_approval_follow_the_steps_not_the_clocks() {
    let rig = ServedTeam::start();
    let password = rig.password("lead1");
    let fast = rig.enrolled("w1", "w1.sqlite3");
    let slow = rig.enrolled("w2", "w2.sqlite3");
    let lead = rig.enrolled("lead1", "lead1.sqlite3");
    skewed(&fast, TimeDelta::days(3));
    skewed(&slow, TimeDelta::days(-5));
    skewed(&lead, TimeDelta::days(-3));
    let started = Utc::now();

    // The fast phone writes and submits a visit: its step is stamped three days ahead.
    let visit = fast
        .write(|s| {
            let person = s.create_person(&team::person("Mabel Hart", RiskTier::Medium))?;
            let visit = s.create_visit(&NewVisit {
                person,
                worker: WorkerId::new("w1")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })?;
            s.edit_visit(&visit, |v| v.set_section(Section::Goals, "Get back to the allotment"))?;
            Ok(visit)
        })
        .unwrap();
    fast.review_visit(&visit, ReviewAction::Submit, None).unwrap();
    sync(&fast);

    // The lead returns it from the review pages (the server's clock, on time): a later step
    // with an earlier time than the one before it.
    let path = format!("/review/visits/{visit}");
    let mut browser = Browser::new(rig.world.state.clone());
    rig.runtime.block_on(async {
        assert!(browser.sign_in("lead1", &password).await.status.is_redirection());
        decide(&mut browser, &path, "return", "Say who helps with the allotment.").await;
    });

    // The worker adds it and submits again; the lead's slow phone approves.
    sync(&fast);
    assert_eq!(actions_and_times(&fast, &visit).2, ReviewState::Returned);
    let last_own = fast
        .write(|s| {
            s.edit_visit(&visit, |v| {
                v.splice(Section::SupportNetwork, 0, 0, "Her neighbour Sam.")
            })
        })
        .unwrap()
        .revision;
    fast.review_visit(&visit, ReviewAction::Submit, None).unwrap();
    sync(&fast);
    sync(&lead);
    lead.review_visit(&visit, ReviewAction::Approve, None).unwrap();
    sync(&lead);

    use ReviewAction::{Approve, Return, Submit};
    let (actions, times, state) = actions_and_times(&lead, &visit);
    assert_eq!(actions, [Submit, Return, Submit, Approve]);
    assert_eq!(state, ReviewState::Approved);
    // The clocks really did disagree: by time, the approval would come first of all.
    assert!(times[0] > started + TimeDelta::days(2), "{times:?}");
    assert!(
        times[1] < times[0] && times[3] < times[1] && times[3] < times[2],
        "{times:?}"
    );
    let listing = rig.world.storage.visit_listing(&visit).unwrap().unwrap();
    assert!(!listing.changed_since_approval);

    rig.runtime.block_on(async {
        let page = browser.get(&path).await;
        assert_eq!(
            page_history(&page.body),
            ["Submitted", "Returned", "Submitted", "Approved"]
        );
        assert!(!page.body.contains("Changed since approval"));
        let queue = browser.get("/review").await;
        assert!(
            !queue.body.contains(visit.as_str()),
            "approved and unchanged: not waiting"
        );
    });

    // The slow colleague edits the approved visit. Their change is stamped five days back,
    // before the approval by any clock, yet it came after it: the visit changed since approval.
    sync(&slow);
    slow.write(|s| s.edit_visit(&visit, |v| v.splice(Section::Goals, 0, 0, "Grow beans again. ")))
        .unwrap();
    sync(&slow);
    let listing = rig.world.storage.visit_listing(&visit).unwrap().unwrap();
    assert!(listing.changed_since_approval, "{listing:?}");
    rig.runtime.block_on(async {
        let queue = browser.get("/review").await;
        assert!(
            queue.body.contains(visit.as_str()),
            "changed since approval: waiting again"
        );
        assert!(queue.body.contains("Changed since approval"));
        let page = browser.get(&path).await;
        assert!(page.body.contains("Changed since approval"));
        let as_approved = page.body.find("As approved").unwrap();
        let now = page.body.find("Grow beans again. Get back to the allotment").unwrap();
        assert!(as_approved < now);
        assert!(page.body[as_approved..now].contains("Get back to the allotment"));
        assert_eq!(
            page_history(&page.body),
            ["Submitted", "Returned", "Submitted", "Approved"]
        );

        // Approved again on the pages: the flag clears, and the step goes last.
        decide(&mut browser, &path, "approve", "").await;
        let page = browser.get(&path).await;
        assert!(!page.body.contains("Changed since approval"));
        assert_eq!(
            page_history(&page.body),
            ["Submitted", "Returned", "Submitted", "Approved", "Approved"]
        );
    });
    assert!(
        !rig.world
            .storage
            .visit_listing(&visit)
            .unwrap()
            .unwrap()
            .changed_since_approval
    );

    // Every device reads the same history in the same order, whatever its own clock.
    for device in [&fast, &slow, &lead] {
        sync(device);
        let (actions, _, state) = actions_and_times(device, &visit);
        assert_eq!(actions, [Submit, Return, Submit, Approve, Approve]);
        assert_eq!(state, ReviewState::Approved);
    }
    // "Changed since" on a device is by the store's revision, not by time: the fast phone finds
    // the slow colleague's edit and the approvals changed since its own last edit, though they
    // are stamped days before it.
    let changed: Vec<DocId> = fast
        .read(|s| s.changed_since(last_own))
        .unwrap()
        .into_iter()
        .map(|(doc, _)| doc)
        .collect();
    assert!(
        changed.contains(&visit) && changed.contains(&DocId::review_of(&visit)),
        "{changed:?}"
    );
}
