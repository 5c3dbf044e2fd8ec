//! Safeguarding alerts against real servers on loopback ports: aiosmtpd for mail, an axum
//! receiver for the webhook, and rustls with a CA made at test time for STARTTLS, SMTP over TLS
//! and an HTTPS webhook. What a lead receives is checked whole: the subject, the recipients,
//! the link, and a body with nothing in it but the expected fields.

#[path = "alerts/config.rs"]
mod config;
#[path = "alerts/support.rs"]
mod support;
#[path = "alerts/tls.rs"]
mod tls;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use hmac::{Hmac, KeyInit, Mac};
use outpost_server::alerts::{AlertConfig, Alerts, Delivery, SIGNATURE_HEADER};
use serde_json::{Value, json};
use sha2::Sha256;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn email_reaches_every_lead_with_the_link_and_nothing_else() {
    let sink = SmtpSink::start(&[]).await;
    let alerts = alerts(Some(smtp(sink.port)), None);

    let delivery = alerts.deliver(&alert(&LEADS)).await;
    assert_eq!(
        delivery,
        Delivery {
            email: Some(Ok(())),
            webhook: None
        }
    );

    let message = sink.only_message().await;
    assert_eq!(message["mail_from"], "outpost@example.org");
    assert_eq!(message["rcpt_tos"], json!(LEADS), "one message, to every lead");
    assert_eq!(message["to"], json!(LEADS));
    assert_eq!(
        text(&message, "subject"),
        "Safeguarding concern raised: visit needs review (team t1)"
    );
    assert_eq!(message["content_type"], "text/plain");
    // The whole body, so nothing can have crept in beside the link, team, worker and time.
    assert_eq!(text(&message, "body"), expected_body());
    // And no header beyond what any plain message has.
    let headers: BTreeSet<String> = message["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| h[0].as_str().expect("name").to_ascii_lowercase())
        .collect();
    let allowed: BTreeSet<String> = [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    ]
    .map(String::from)
    .into();
    assert!(headers.is_subset(&allowed), "unexpected headers: {headers:?}");
    assert_eq!(message["encrypted"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lead_address_that_is_not_an_email_is_reported_and_the_others_are_told() {
    let sink = SmtpSink::start(&[]).await;
    let alerts = alerts(Some(smtp(sink.port)), None);

    let delivery = alerts.deliver(&alert(&[LEADS[0], "not an address"])).await;
    let error = delivery
        .email
        .expect("email tried")
        .expect_err("a bad address is reported");
    assert!(error.contains("lead address 2 of 2"), "{error}");
    assert!(
        !error.contains("not an address"),
        "addresses stay out of errors and logs: {error}"
    );
    assert_eq!(sink.only_message().await["rcpt_tos"], json!([LEADS[0]]));

    let error = alerts.deliver(&alert(&[])).await.email.expect("email tried");
    assert_eq!(error, Err("team t1 has no lead with an email address".into()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.messages().len(), 1, "nothing is sent to nobody");
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_posts_the_event_signed_with_the_secret() {
    let receiver = WebhookReceiver::start(&[]).await;
    let alerts = alerts(None, Some(webhook(receiver.port, Some(SECRET))));

    let delivery = alerts.deliver(&alert(&LEADS)).await;
    assert_eq!(
        delivery,
        Delivery {
            email: None,
            webhook: Some(Ok(()))
        }
    );

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
    assert_eq!(
        body,
        json!({
            "event": "safeguarding_concern",
            "team": TEAM,
            "visit": VISIT,
            "raised_by": WORKER,
            "at": AT,
            "link": LINK,
        }),
        "exactly these fields: no lead addresses, nothing from the record"
    );

    let signature = request.headers[SIGNATURE_HEADER].to_str().expect("ASCII signature");
    let hex = signature.strip_prefix("sha256=").expect("sha256= prefix");
    let tag = decode_hex(hex);
    let verify = |secret: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(&request.body);
        mac.verify_slice(&tag).is_ok()
    };
    assert!(verify(SECRET), "the signature verifies with the shared secret");
    assert!(!verify("another secret"), "and with no other");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_without_a_secret_is_not_signed() {
    let receiver = WebhookReceiver::start(&[]).await;
    let alerts = alerts(None, Some(webhook(receiver.port, None)));
    assert_eq!(alerts.deliver(&alert(&LEADS)).await.webhook, Some(Ok(())));
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert!(!received[0].headers.contains_key(SIGNATURE_HEADER));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_smtp_server_not_listening_is_an_error_naming_it() {
    let port = closed_port();
    let alerts = alerts(Some(smtp(port)), None);
    let delivery = alerts.deliver(&alert(&LEADS)).await;
    let error = delivery.email.expect("email tried").expect_err("nothing listens");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert_eq!(delivery.webhook, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_smtp_server_that_never_answers_times_out() {
    // Accepts connections (the kernel does, from the backlog) but never says hello.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let alerts = alerts(Some(smtp(port)), None).with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let error = alerts.deliver(&alert(&LEADS)).await.email.expect("email tried");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let error = error.expect_err("no greeting");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_answering_500_is_an_error_naming_the_status_not_the_url_path() {
    let receiver = WebhookReceiver::start(&[StatusCode::INTERNAL_SERVER_ERROR]).await;
    let alerts = alerts(None, Some(webhook(receiver.port, Some(SECRET))));
    let error = alerts
        .deliver(&alert(&LEADS))
        .await
        .webhook
        .expect("webhook tried")
        .expect_err("500 is a failure");
    assert!(error.contains("500 Internal Server Error"), "{error}");
    assert!(error.contains(&format!("127.0.0.1:{}", receiver.port)), "{error}");
    // The path of a webhook URL is often its credential.
    assert!(!error.contains(TOKEN), "{error}");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn send_returns_at_once_and_retries_until_the_webhook_accepts() {
    // The mail server never answers, and the webhook fails twice before it accepts.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let smtp_port = silent.local_addr().expect("addr").port();
    let receiver = WebhookReceiver::start(&[StatusCode::INTERNAL_SERVER_ERROR, StatusCode::BAD_GATEWAY]).await;
    let alerts = alerts(Some(smtp(smtp_port)), Some(webhook(receiver.port, Some(SECRET))))
        .with_retry_delays([Duration::from_millis(50); 4])
        .with_timeout(Duration::from_secs(2));

    let started = Instant::now();
    alerts.send(alert(&LEADS));
    let returned = started.elapsed();
    assert!(returned < Duration::from_millis(100), "send waited {returned:?}");

    let received = eventually("three webhook attempts", Duration::from_secs(10), || {
        let received = receiver.received();
        (received.len() >= 3).then_some(received)
    })
    .await;
    assert!(
        received.iter().all(|r| r.body == received[0].body),
        "each retry sends the same alert"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 3, "no attempt after the webhook accepted");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_refusing_the_request_is_not_retried() {
    let receiver = WebhookReceiver::start(&[StatusCode::UNAUTHORIZED; 5]).await;
    let alerts =
        alerts(None, Some(webhook(receiver.port, Some(SECRET)))).with_retry_delays([Duration::from_millis(30); 4]);
    alerts.send(alert(&LEADS));
    eventually("the first attempt", Duration::from_secs(5), || {
        (!receiver.received().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 1, "a 401 will not change by trying again");
}

#[tokio::test]
async fn disabled_alerts_go_nowhere() {
    let alerts = Alerts::new(AlertConfig::from_lookup(|_| None).expect("no variables is valid"));
    assert!(!alerts.is_enabled());
    assert_eq!(alerts.deliver(&alert(&LEADS)).await, Delivery::default());
    assert_eq!(Alerts::disabled().deliver(&alert(&LEADS)).await, Delivery::default());
    alerts.send(alert(&LEADS));
}

fn decode_hex(hex: &str) -> Vec<u8> {
    assert_eq!(hex.len(), 64, "a SHA-256 tag in hex: {hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}
