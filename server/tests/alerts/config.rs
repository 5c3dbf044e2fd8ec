//! `AlertConfig::from_lookup` (what `from_env` reads) and what `Debug` shows of a configuration.

use std::collections::HashMap;

use outpost_server::alerts::{AlertConfig, Alerts, SmtpConfig, SmtpCredentials, SmtpTls};

use super::support::*;

fn from_vars(vars: &[(&str, &str)]) -> Result<AlertConfig, String> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    AlertConfig::from_lookup(|name| vars.get(name).cloned())
}

fn from_vars_err(vars: &[(&str, &str)]) -> String {
    from_vars(vars).expect_err("refused")
}

#[test]
fn from_env_reads_every_variable_with_defaults() {
    let config = from_vars(&[
        ("OUTPOST_SMTP_HOST", "mail.example.org"),
        ("OUTPOST_SMTP_FROM", "outpost@example.org"),
        ("OUTPOST_WEBHOOK_URL", "https://hooks.example.org/x/y"),
        ("OUTPOST_PUBLIC_URL", "https://outpost.example.org/"),
        ("OUTPOST_SMTP_USER", ""),
    ])
    .expect("valid");
    let smtp = config.smtp.as_ref().expect("smtp");
    assert_eq!(
        (smtp.host.as_str(), smtp.port, smtp.tls),
        ("mail.example.org", 25, SmtpTls::StartTls)
    );
    assert!(smtp.credentials.is_none(), "an empty variable counts as unset");
    let hook = config.webhook.as_ref().expect("webhook");
    assert_eq!(
        (hook.url.as_str(), hook.secret.as_deref()),
        ("https://hooks.example.org/x/y", None)
    );
    assert_eq!(config.base_url, "https://outpost.example.org", "trailing slash trimmed");

    let config = from_vars(&[
        ("OUTPOST_SMTP_HOST", "smtp.example.org"),
        ("OUTPOST_SMTP_PORT", "465"),
        ("OUTPOST_SMTP_TLS", "TLS"),
        ("OUTPOST_SMTP_FROM", "Outpost <outpost@example.org>"),
        ("OUTPOST_SMTP_USER", "alerts"),
        ("OUTPOST_SMTP_PASSWORD", "pw"),
        ("OUTPOST_WEBHOOK_URL", "http://10.0.0.5:9000/hook"),
        ("OUTPOST_WEBHOOK_SECRET", "s"),
        ("OUTPOST_PUBLIC_URL", "https://care.example.org/outpost"),
    ])
    .expect("valid");
    let smtp = config.smtp.as_ref().expect("smtp");
    assert_eq!((smtp.port, smtp.tls), (465, SmtpTls::Tls));
    let credentials = smtp.credentials.as_ref().expect("credentials");
    assert_eq!(
        (credentials.username.as_str(), credentials.password.as_str()),
        ("alerts", "pw")
    );
    assert_eq!(config.webhook.as_ref().and_then(|w| w.secret.as_deref()), Some("s"));
    let alerts = Alerts::new(config);
    assert_eq!(
        alerts.link(&outpost_core::DocId::new("v-1").expect("id")).as_deref(),
        Some("https://care.example.org/outpost/review/visits/v-1")
    );

    // A plain relay on this machine may take a password; so may none other.
    let local = from_vars(&[
        ("OUTPOST_SMTP_HOST", "localhost"),
        ("OUTPOST_SMTP_TLS", "none"),
        ("OUTPOST_SMTP_FROM", "outpost@example.org"),
        ("OUTPOST_SMTP_USER", "u"),
        ("OUTPOST_SMTP_PASSWORD", "p"),
        ("OUTPOST_PUBLIC_URL", "http://127.0.0.1:8080"),
    ])
    .expect("valid");
    assert_eq!(local.smtp.expect("smtp").tls, SmtpTls::None);
}

#[test]
fn from_env_errors_name_the_variable() {
    let smtp = [
        ("OUTPOST_SMTP_HOST", "mail.example.org"),
        ("OUTPOST_SMTP_FROM", "outpost@example.org"),
        ("OUTPOST_PUBLIC_URL", "https://outpost.example.org"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut vars: Vec<_> = smtp
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        vars.extend_from_slice(extra);
        vars
    };
    // (variables, the variable the error must name, words it must say)
    type Case = (Vec<(&'static str, &'static str)>, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            with(&[("OUTPOST_SMTP_PORT", "smtp")]),
            "OUTPOST_SMTP_PORT",
            "not a port number",
        ),
        (
            with(&[("OUTPOST_SMTP_PORT", "0")]),
            "OUTPOST_SMTP_PORT",
            "not a port number",
        ),
        (
            with(&[("OUTPOST_SMTP_PORT", "70000")]),
            "OUTPOST_SMTP_PORT",
            "not a port number",
        ),
        (
            with(&[("OUTPOST_SMTP_TLS", "ssl")]),
            "OUTPOST_SMTP_TLS",
            "none, starttls, tls",
        ),
        (with(&[("OUTPOST_SMTP_FROM", "")]), "OUTPOST_SMTP_FROM", "is required"),
        (
            with(&[("OUTPOST_SMTP_FROM", "outpost at example")]),
            "OUTPOST_SMTP_FROM",
            "not an email address",
        ),
        (
            with(&[("OUTPOST_SMTP_HOST", "mail.example.org:587")]),
            "OUTPOST_SMTP_HOST",
            "OUTPOST_SMTP_PORT",
        ),
        (
            with(&[("OUTPOST_SMTP_HOST", "smtp://mail.example.org")]),
            "OUTPOST_SMTP_HOST",
            "without a scheme",
        ),
        (
            with(&[("OUTPOST_SMTP_USER", "u")]),
            "OUTPOST_SMTP_PASSWORD",
            "is required",
        ),
        (
            with(&[("OUTPOST_SMTP_PASSWORD", "p")]),
            "OUTPOST_SMTP_USER",
            "is required",
        ),
        (
            with(&[
                ("OUTPOST_SMTP_TLS", "none"),
                ("OUTPOST_SMTP_USER", "u"),
                ("OUTPOST_SMTP_PASSWORD", "p"),
            ]),
            "OUTPOST_SMTP_TLS",
            "unencrypted",
        ),
        (with(&[("OUTPOST_PUBLIC_URL", "")]), "OUTPOST_PUBLIC_URL", "is required"),
        (
            with(&[("OUTPOST_PUBLIC_URL", "outpost.example.org")]),
            "OUTPOST_PUBLIC_URL",
            "http",
        ),
        (
            with(&[("OUTPOST_PUBLIC_URL", "https://outpost.example.org/?a=1")]),
            "OUTPOST_PUBLIC_URL",
            "query",
        ),
        (
            vec![("OUTPOST_SMTP_FROM", "outpost@example.org")],
            "OUTPOST_SMTP_HOST",
            "is not",
        ),
        (vec![("OUTPOST_WEBHOOK_SECRET", "s")], "OUTPOST_WEBHOOK_URL", "is not"),
        (
            vec![
                ("OUTPOST_WEBHOOK_URL", "ftp://hooks.example.org/x"),
                ("OUTPOST_PUBLIC_URL", "https://o.example.org"),
            ],
            "OUTPOST_WEBHOOK_URL",
            "http",
        ),
        (
            vec![
                ("OUTPOST_WEBHOOK_URL", "https://user:pw@hooks.example.org/x"),
                ("OUTPOST_PUBLIC_URL", "https://o.example.org"),
            ],
            "OUTPOST_WEBHOOK_URL",
            "credentials",
        ),
        (
            vec![("OUTPOST_WEBHOOK_URL", "https://hooks.example.org/x")],
            "OUTPOST_PUBLIC_URL",
            "is required",
        ),
    ];
    for (vars, variable, reason) in cases {
        let error = from_vars_err(&vars);
        assert!(error.contains(variable) && error.contains(reason), "{vars:?}: {error}");
    }
    // The webhook URL (its path may be a token) and the password are never echoed.
    let error = from_vars_err(&[("OUTPOST_WEBHOOK_URL", "ftp://hooks.example.org/tok-secret-path")]);
    assert!(!error.contains("tok-secret-path"), "{error}");
}

#[test]
fn debug_output_hides_credentials_and_the_webhook_path() {
    let alerts = alerts(
        Some(SmtpConfig {
            credentials: Some(SmtpCredentials {
                username: "alerts-user".into(),
                password: "hunter2-password".into(),
            }),
            ..smtp(587)
        }),
        Some(webhook(8443, Some(SECRET))),
    );
    let debug = format!("{alerts:?}");
    for secret in ["alerts-user", "hunter2-password", SECRET, TOKEN] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("127.0.0.1") && debug.contains("8443"), "{debug}");
}
