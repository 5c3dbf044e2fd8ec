//! Where alerts go, read from the environment. Secrets (the SMTP password, the webhook secret and
//! the webhook URL's path, which for many services is itself the credential) never appear in
//! `Debug` output or in an error message.

use std::fmt;
use std::net::IpAddr;

use hyper::Uri;
use lettre::message::Mailbox;

/// Where safeguarding alerts go. With neither channel set, alerts are off.
#[derive(Clone, Default)]
pub struct AlertConfig {
    pub smtp: Option<SmtpConfig>,
    pub webhook: Option<WebhookConfig>,
    /// The public base of the review pages, e.g. `https://outpost.example.org`; an alert links
    /// to `{base_url}/review/visits/{visit_id}`.
    pub base_url: String,
}

#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The sender, `outpost@example.org` or `Outpost <outpost@example.org>`.
    pub from: String,
    pub credentials: Option<SmtpCredentials>,
    pub tls: SmtpTls,
}

#[derive(Clone)]
pub struct SmtpCredentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// Plain SMTP, for a relay on this machine.
    None,
    /// Plain, then STARTTLS, which the server must offer (port 587 or 25).
    #[default]
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Clone)]
pub struct WebhookConfig {
    /// `http://` or `https://`.
    pub url: String,
    /// When set, each POST carries `X-Outpost-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    pub secret: Option<String>,
}

impl AlertConfig {
    /// Reads OUTPOST_SMTP_HOST, OUTPOST_SMTP_PORT (default 25), OUTPOST_SMTP_FROM,
    /// OUTPOST_SMTP_USER, OUTPOST_SMTP_PASSWORD, OUTPOST_SMTP_TLS (none, starttls or tls;
    /// default starttls), OUTPOST_WEBHOOK_URL, OUTPOST_WEBHOOK_SECRET and OUTPOST_PUBLIC_URL
    /// (required once either channel is set). An empty variable counts as unset. The error
    /// names the variable that is wrong.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned()))
    }

    /// `from_env` over any lookup, so tests need not change the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let smtp = match get("OUTPOST_SMTP_HOST") {
            Some(host) => Some(smtp_from_lookup(host, &get)?),
            None => {
                // A half-configured mail setup would otherwise silently send nothing.
                for name in [
                    "OUTPOST_SMTP_PORT",
                    "OUTPOST_SMTP_FROM",
                    "OUTPOST_SMTP_USER",
                    "OUTPOST_SMTP_PASSWORD",
                    "OUTPOST_SMTP_TLS",
                ] {
                    if get(name).is_some() {
                        return Err(format!("{name} is set but OUTPOST_SMTP_HOST is not"));
                    }
                }
                None
            }
        };
        let webhook = match get("OUTPOST_WEBHOOK_URL") {
            Some(url) => {
                check_webhook_url(&url).map_err(|e| format!("OUTPOST_WEBHOOK_URL: {e}"))?;
                Some(WebhookConfig {
                    url,
                    secret: get("OUTPOST_WEBHOOK_SECRET"),
                })
            }
            None if get("OUTPOST_WEBHOOK_SECRET").is_some() => {
                return Err("OUTPOST_WEBHOOK_SECRET is set but OUTPOST_WEBHOOK_URL is not".into());
            }
            None => None,
        };
        let base_url = match get("OUTPOST_PUBLIC_URL") {
            Some(url) => {
                check_base_url(&url).map_err(|e| format!("OUTPOST_PUBLIC_URL: {e}"))?;
                url.trim_end_matches('/').to_string()
            }
            None if smtp.is_some() || webhook.is_some() => {
                return Err(
                    "OUTPOST_PUBLIC_URL is required when alerts are sent: the public address of the review pages, \
                     e.g. https://outpost.example.org"
                        .into(),
                );
            }
            None => String::new(),
        };
        Ok(Self {
            smtp,
            webhook,
            base_url,
        })
    }

    /// True when at least one channel is set.
    pub fn enabled(&self) -> bool {
        self.smtp.is_some() || self.webhook.is_some()
    }
}

fn smtp_from_lookup(host: String, get: &impl Fn(&str) -> Option<String>) -> Result<SmtpConfig, String> {
    check_host(&host).map_err(|e| format!("OUTPOST_SMTP_HOST: {e}"))?;
    let port = match get("OUTPOST_SMTP_PORT") {
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("OUTPOST_SMTP_PORT: {port:?} is not a port number (1 to 65535)")),
        },
        None => 25,
    };
    let from = get("OUTPOST_SMTP_FROM")
        .ok_or("OUTPOST_SMTP_FROM is required when OUTPOST_SMTP_HOST is set: the address alerts come from")?;
    check_mailbox(&from).map_err(|e| format!("OUTPOST_SMTP_FROM: {e}"))?;
    let tls = match get("OUTPOST_SMTP_TLS")
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("starttls") => SmtpTls::StartTls,
        Some("tls") => SmtpTls::Tls,
        Some("none") => SmtpTls::None,
        Some(other) => return Err(format!("OUTPOST_SMTP_TLS: {other:?} is not one of none, starttls, tls")),
    };
    let credentials = match (get("OUTPOST_SMTP_USER"), get("OUTPOST_SMTP_PASSWORD")) {
        (Some(username), Some(password)) => Some(SmtpCredentials { username, password }),
        (None, None) => None,
        (Some(_), None) => return Err("OUTPOST_SMTP_PASSWORD is required when OUTPOST_SMTP_USER is set".into()),
        (None, Some(_)) => return Err("OUTPOST_SMTP_USER is required when OUTPOST_SMTP_PASSWORD is set".into()),
    };
    if credentials.is_some() && tls == SmtpTls::None && !is_loopback(&host) {
        return Err(format!(
            "OUTPOST_SMTP_TLS: none would send the SMTP password unencrypted to {host}; use starttls or tls"
        ));
    }
    Ok(SmtpConfig {
        host,
        port,
        from,
        credentials,
        tls,
    })
}

/// A host name or an IP address, without a scheme or a port.
fn check_host(host: &str) -> Result<(), String> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if host.contains("://") || host.contains('/') {
        return Err(format!(
            "{host:?} should be a host name alone, without a scheme or path"
        ));
    }
    if host.contains(':') {
        return Err(format!(
            "{host:?} should be a host name alone; the port goes in OUTPOST_SMTP_PORT"
        ));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{host:?} is not a host name"));
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn check_mailbox(address: &str) -> Result<Mailbox, String> {
    address
        .parse::<Mailbox>()
        .map_err(|e| format!("{address:?} is not an email address ({e})"))
}

/// An http or https URL with a host. Its text is not echoed: the path may hold a token.
pub(super) fn check_webhook_url(url: &str) -> Result<Uri, String> {
    let uri = url
        .parse::<Uri>()
        .map_err(|e| format!("not a URL ({e}); expected http://host/path or https://host/path"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("must start with http:// or https://".into()),
    }
    let authority = uri.authority().ok_or("the URL has no host")?;
    if authority.as_str().contains('@') {
        return Err("credentials in the URL are not supported; set OUTPOST_WEBHOOK_SECRET instead".into());
    }
    if authority.host().is_empty() {
        return Err("the URL has no host".into());
    }
    Ok(uri)
}

fn check_base_url(url: &str) -> Result<(), String> {
    let uri = url
        .parse::<Uri>()
        .map_err(|e| format!("{url:?} is not a URL ({e}); expected e.g. https://outpost.example.org"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none_or(str::is_empty) {
        return Err(format!(
            "{url:?} should be an http:// or https:// address, e.g. https://outpost.example.org"
        ));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!("{url:?} should have no query or fragment"));
    }
    Ok(())
}

impl fmt::Debug for AlertConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertConfig")
            .field("smtp", &self.smtp)
            .field("webhook", &self.webhook)
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("credentials", &self.credentials)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpCredentials(<hidden>)")
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &WebhookConfig::redacted(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl WebhookConfig {
    /// `scheme://host:port`, without the path or query, which may hold a token.
    pub(super) fn redacted(url: &str) -> String {
        match check_webhook_url(url) {
            Ok(uri) => {
                let https = uri.scheme_str() == Some("https");
                let host = uri.host().unwrap_or_default();
                let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
                format!("{}://{host}:{port}", if https { "https" } else { "http" })
            }
            Err(_) => "<not a valid URL>".into(),
        }
    }
}
