//! STARTTLS, SMTP over TLS and an HTTPS webhook, against servers holding a certificate from a
//! CA made at test time. Trust comes from the platform's store, as in production, so the test
//! that the CA is trusted runs in a child process whose SSL_CERT_FILE names it.

use std::time::Duration;

use outpost_server::alerts::{Alerts, SmtpConfig, SmtpCredentials, SmtpTls, WebhookConfig};
use serde_json::Value;

use super::support::*;

/// Which ports the TLS child process delivers to, passed in its environment.
const TLS_CHILD: &str = "OUTPOST_ALERTS_TLS_CHILD";
const TLS_USER: &str = "alerts-user";
const TLS_PASSWORD: &str = "tls-only-password";

fn tls_alerts(starttls: u16, tls: u16, https: u16) -> [Alerts; 3] {
    let smtp = |port, tls| SmtpConfig {
        credentials: Some(SmtpCredentials {
            username: TLS_USER.into(),
            password: TLS_PASSWORD.into(),
        }),
        tls,
        ..smtp(port)
    };
    let https = WebhookConfig {
        url: format!("https://localhost:{https}/hooks/{TOKEN}"),
        secret: Some(SECRET.into()),
    };
    [
        alerts(Some(smtp(starttls, SmtpTls::StartTls)), None),
        alerts(Some(smtp(tls, SmtpTls::Tls)), None),
        alerts(None, Some(https)),
    ]
    .map(|a| a.with_timeout(Duration::from_secs(5)))
}

/// Servers with a test CA's certificate are refused while the platform store lacks the CA,
/// and trusted (STARTTLS with a login, TLS from the first byte, HTTPS) in a child process whose
/// SSL_CERT_FILE names it: the platform store is what decides, as in production.
#[tokio::test(flavor = "multi_thread")]
async fn modes_trust_the_platform_store_and_nothing_else() {
    tls_modes().await;
}

async fn tls_modes() {
    let ca = test_ca();
    let (cert, key) = (ca.cert.to_str().expect("path"), ca.key.to_str().expect("path"));
    let starttls = SmtpSink::start(&[
        "--tls",
        "starttls",
        "--cert",
        cert,
        "--key",
        key,
        "--user",
        TLS_USER,
        "--password",
        TLS_PASSWORD,
    ])
    .await;
    let tls = SmtpSink::start(&[
        "--tls",
        "tls",
        "--cert",
        cert,
        "--key",
        key,
        "--user",
        TLS_USER,
        "--password",
        TLS_PASSWORD,
    ])
    .await;
    let https = WebhookReceiver::start_tls(&[], &ca.cert, &ca.key).await;
    let [via_starttls, via_tls, via_https] = tls_alerts(starttls.port, tls.port, https.port);

    // This process's platform store does not hold the test CA.
    for (alerts, port) in [(&via_starttls, starttls.port), (&via_tls, tls.port)] {
        let error = alerts.deliver(&alert(&LEADS)).await.email.expect("email tried");
        let error = error.expect_err("an unknown CA is refused");
        assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    }
    let error = via_https.deliver(&alert(&LEADS)).await.webhook.expect("webhook tried");
    assert!(error.expect_err("an unknown CA is refused").contains("TLS"));
    assert!(starttls.messages().is_empty() && tls.messages().is_empty() && https.received().is_empty());

    let exe = std::env::current_exe().expect("test binary");
    let ports = format!("{},{},{}", starttls.port, tls.port, https.port);
    let ca_file = ca.ca.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "tls::child_delivers_with_the_test_ca_trusted",
                "--ignored",
                "--nocapture",
            ])
            .env("SSL_CERT_FILE", ca_file)
            .env_remove("SSL_CERT_DIR")
            .env(TLS_CHILD, ports)
            .output()
    })
    .await
    .expect("join")
    .expect("running the child");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.contains("1 passed"),
        "the child failed:\n{report}"
    );

    for sink in [&starttls, &tls] {
        let message = sink.only_message().await;
        assert_eq!(message["encrypted"], true);
        assert_eq!(message["login"], TLS_USER, "logged in, over TLS");
        assert_eq!(text(&message, "body"), expected_body());
        assert!(!text(&message, "raw").contains(TLS_PASSWORD));
    }
    let received = https.received();
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_slice(&received[0].body).expect("JSON");
    assert_eq!(body["link"], LINK);
}

/// Run by the test above in a child process with SSL_CERT_FILE set; run directly, it runs that
/// test instead (so `--include-ignored` checks the same thing).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run in a child process by tls::modes_trust_the_platform_store_and_nothing_else"]
async fn child_delivers_with_the_test_ca_trusted() {
    let Ok(ports) = std::env::var(TLS_CHILD) else {
        return tls_modes().await;
    };
    let ports: Vec<u16> = ports.split(',').map(|p| p.parse().expect("port")).collect();
    let [via_starttls, via_tls, via_https] = tls_alerts(ports[0], ports[1], ports[2]);
    assert_eq!(
        via_starttls.deliver(&alert(&LEADS)).await.email,
        Some(Ok(())),
        "STARTTLS"
    );
    assert_eq!(via_tls.deliver(&alert(&LEADS)).await.email, Some(Ok(())), "TLS");
    assert_eq!(via_https.deliver(&alert(&LEADS)).await.webhook, Some(Ok(())), "HTTPS");
}
