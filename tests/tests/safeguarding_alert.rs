//! A visit flagged for safeguarding syncs from a worker's phone, and the team's leads are told
//! at once, by email (a real aiosmtpd server) and by the webhook, with a link and no content;
//! once per concern, and not for a visit without one.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // the alert tests' real SMTP and webhook servers; this test uses a few
#[path = "../../server/tests/alerts/support.rs"]
mod support;

use std::time::Duration;

use chrono::Utc;
use outpost_core::{NewVisit, RiskTier, Section, Setting, WorkerId};
use outpost_server::storage::{Accounts, WebAccounts};
use outpost_tests::team::{self, ServedTeam};
use outpost_tests::world::World;
use support::{BASE_URL, SmtpSink, WebhookReceiver, eventually};

const PROBE: &str = "PROBE-unexplained-bruising";

#[test]
fn a_flagged_visit_alerts_the_leads_once_with_a_link_and_no_content() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sink, hook) = runtime.block_on(async { (SmtpSink::start(&[]).await, WebhookReceiver::start(&[]).await) });
    let alerts = support::alerts(
        Some(support::smtp(sink.port)),
        Some(support::webhook(hook.port, Some(support::SECRET))),
    );
    let rig = ServedTeam::start_with(World::with_alerts(alerts));
    let lead = WorkerId::new("lead1").unwrap();
    rig.world.storage.set_email(&lead, Some("lead1@example.org")).unwrap();
    let phone = rig.enrolled("w1", "w1.sqlite3");

    let (quiet, flagged) = phone
        .write(|s| {
            let person = s.create_person(&team::person("Iris Kemp", RiskTier::High))?;
            let new = NewVisit {
                person,
                worker: WorkerId::new("w1")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            };
            let quiet = s.create_visit(&new)?;
            let flagged = s.create_visit(&new)?;
            s.edit_visit(&flagged, |v| {
                v.set_section(Section::RisksAndConcerns, PROBE)?;
                v.raise_safeguarding(PROBE)
            })?;
            Ok((quiet, flagged))
        })
        .unwrap();
    assert!(phone.sync_now(Duration::from_secs(30)).unwrap().complete);

    let link = format!("{BASE_URL}/review/visits/{flagged}");
    runtime.block_on(async {
        let mail = sink.only_message().await;
        let text = mail.to_string();
        assert!(text.contains(&link), "{text}");
        assert!(text.contains("lead1@example.org"), "{text}");
        assert!(
            !text.contains(PROBE) && !text.contains("Iris"),
            "no content in the alert: {text}"
        );
        assert!(!text.contains(quiet.as_str()));
        let received = eventually("the webhook", Duration::from_secs(10), || {
            let received = hook.received();
            (!received.is_empty()).then_some(received)
        })
        .await;
        assert_eq!(received.len(), 1);
        let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
        assert_eq!(body["visit"], flagged.as_str());
        assert_eq!(body["link"], link.as_str());
        assert_eq!(body["team"], "t1");
        assert!(!String::from_utf8_lossy(&received[0].body).contains(PROBE));
    });

    // Edited again, still flagged: no second alert for the same concern.
    phone
        .write(|s| s.edit_visit(&flagged, |v| v.splice(Section::Goals, 0, 0, "Stay at home.")))
        .unwrap();
    assert!(phone.sync_now(Duration::from_secs(30)).unwrap().complete);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(hook.received().len(), 1);
    let audit = rig.world.storage.audit_log(100).unwrap();
    let alerted: Vec<_> = audit.iter().filter(|e| e.action == "safeguarding-alert").collect();
    assert_eq!(alerted.len(), 1, "{audit:?}");
    assert_eq!(alerted[0].subject, flagged.as_str());
}
