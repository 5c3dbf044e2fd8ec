//! Safeguarding alerts: when a visit flagged for safeguarding syncs, the team's leads are told at
//! once, by email and by a webhook. An alert carries the ids around the concern and a link to
//! the visit's review page, never the note's text or the person's name: mail and webhooks leave
//! the server's protection, and a lead reads the visit after signing in.
//!
//! `Alerts::send` returns at once and delivers on a task of its own, so a sync never waits on a
//! mail server; each channel is retried on its own with backoff until it succeeds, fails in a
//! way a retry cannot fix, or runs out of attempts. Logs name the visit and team only.

mod config;
mod email;
mod webhook;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use outpost_core::{DocId, TeamId, WorkerId};

pub use config::{AlertConfig, SmtpConfig, SmtpCredentials, SmtpTls, WebhookConfig};
pub use webhook::{SIGNATURE_HEADER, signature};

/// How long one attempt on one channel may take, connection to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The waits before the second, third and fourth attempts: a relay restarting or a receiver
/// deploying is usually back within a minute or two.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
];

/// A concern raised on a visit, as the sync path knows it. Nothing here is record content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeguardingAlert {
    pub team: TeamId,
    pub visit: DocId,
    pub raised_by: WorkerId,
    pub at: DateTime<Utc>,
    /// The team leads' email addresses.
    pub recipients: Vec<String>,
}

/// What happened on each channel: None where the channel is not configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub email: Option<Result<(), String>>,
    pub webhook: Option<Result<(), String>>,
}

/// Sends safeguarding alerts. Cheap to clone; all clones share one configuration.
#[derive(Clone)]
pub struct Alerts {
    config: Option<Arc<AlertConfig>>,
    retry_delays: Arc<[Duration]>,
    timeout: Duration,
}

impl Alerts {
    pub fn new(config: AlertConfig) -> Self {
        if !config.enabled() {
            return Self::disabled();
        }
        if !config.base_url.starts_with("http://") && !config.base_url.starts_with("https://") {
            // Still sent: a lead told without a working link is better than a lead not told.
            tracing::warn!("alerts have no public base URL (OUTPOST_PUBLIC_URL): their review links will not work");
        }
        Self {
            config: Some(Arc::new(config)),
            ..Self::disabled()
        }
    }

    /// Alerts that go nowhere: `send` does nothing and `deliver` reports no channel.
    pub fn disabled() -> Self {
        Self {
            config: None,
            retry_delays: Arc::new(RETRY_DELAYS),
            timeout: TIMEOUT,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.config.is_some()
    }

    /// Replaces the waits between attempts in `send` (one attempt more than there are waits).
    pub fn with_retry_delays(mut self, delays: impl Into<Vec<Duration>>) -> Self {
        self.retry_delays = delays.into().into();
        self
    }

    /// Replaces the 10 s limit on one attempt on one channel.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The review page an alert about `visit` links to.
    pub fn link(&self, visit: &DocId) -> Option<String> {
        self.config.as_ref().map(|config| link(config, visit))
    }

    /// Delivers on a spawned task and returns at once, retrying each channel that fails with
    /// backoff. Outside a tokio runtime it logs an error and sends nothing.
    pub fn send(&self, alert: SafeguardingAlert) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(team = %alert.team, visit = %alert.visit, "safeguarding alert not sent: no async runtime");
            return;
        };
        let alerts = self.clone();
        runtime.spawn(async move { alerts.deliver_with_retries(&config, &alert).await });
    }

    /// One attempt on every configured channel at once, awaited; what happened on each.
    pub async fn deliver(&self, alert: &SafeguardingAlert) -> Delivery {
        let Some(config) = &self.config else {
            return Delivery::default();
        };
        let (email, webhook) = tokio::join!(
            self.try_email(config, alert, config.smtp.is_some()),
            self.try_webhook(config, alert, config.webhook.is_some()),
        );
        let message = |outcome: Result<(), Failure>| outcome.map_err(|failure| failure.message);
        Delivery {
            email: email.map(message),
            webhook: webhook.map(message),
        }
    }

    async fn deliver_with_retries(&self, config: &AlertConfig, alert: &SafeguardingAlert) {
        let mut email_due = config.smtp.is_some();
        let mut webhook_due = config.webhook.is_some();
        for attempt in 0..=self.retry_delays.len() {
            if let Some(delay) = attempt.checked_sub(1).and_then(|i| self.retry_delays.get(i)) {
                tokio::time::sleep(*delay).await;
            }
            let last = attempt == self.retry_delays.len();
            let (email, webhook) = tokio::join!(
                self.try_email(config, alert, email_due),
                self.try_webhook(config, alert, webhook_due),
            );
            email_due = settle("email", email, alert, attempt + 1, last);
            webhook_due = settle("webhook", webhook, alert, attempt + 1, last);
            if !email_due && !webhook_due {
                return;
            }
        }
    }

    async fn try_email(
        &self,
        config: &AlertConfig,
        alert: &SafeguardingAlert,
        due: bool,
    ) -> Option<Result<(), Failure>> {
        let smtp = config.smtp.as_ref().filter(|_| due)?;
        let link = link(config, &alert.visit);
        let send = email::send(smtp, alert, &link, self.timeout);
        Some(within(self.timeout, &format!("SMTP server {}:{}", smtp.host, smtp.port), send).await)
    }

    async fn try_webhook(
        &self,
        config: &AlertConfig,
        alert: &SafeguardingAlert,
        due: bool,
    ) -> Option<Result<(), Failure>> {
        let hook = config.webhook.as_ref().filter(|_| due)?;
        let body = webhook::payload(alert, &link(config, &alert.visit));
        let target = format!("webhook {}", WebhookConfig::redacted(&hook.url));
        Some(within(self.timeout, &target, webhook::post(hook, body)).await)
    }
}

/// Logs one channel's outcome; returns whether it should be tried again.
fn settle(
    channel: &'static str,
    outcome: Option<Result<(), Failure>>,
    alert: &SafeguardingAlert,
    attempt: usize,
    last: bool,
) -> bool {
    let (team, visit) = (&alert.team, &alert.visit);
    match outcome {
        None => false,
        Some(Ok(())) => {
            tracing::info!(%team, %visit, channel, attempt, "safeguarding alert delivered");
            false
        }
        Some(Err(failure)) if failure.permanent || last => {
            tracing::error!(%team, %visit, channel, attempt, error = %failure.message,
                "safeguarding alert not delivered; not retrying");
            false
        }
        Some(Err(failure)) => {
            tracing::warn!(%team, %visit, channel, attempt, error = %failure.message,
                "safeguarding alert not delivered yet; will retry");
            true
        }
    }
}

async fn within(
    timeout: Duration,
    what: &str,
    attempt: impl Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    tokio::time::timeout(timeout, attempt).await.unwrap_or_else(|_| {
        Err(Failure::transient(format!(
            "{what}: no answer within {} s",
            timeout.as_secs_f32()
        )))
    })
}

fn link(config: &AlertConfig, visit: &DocId) -> String {
    // Ids are limited to URL-safe characters (letters, digits, `-_.@:`), so no escaping is due.
    format!("{}/review/visits/{visit}", config.base_url.trim_end_matches('/'))
}

/// The alert's time as both channels print it: RFC 3339 in UTC, to the second.
fn timestamp(alert: &SafeguardingAlert) -> String {
    alert.at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Why one attempt failed, and whether trying again could help.
#[derive(Debug)]
struct Failure {
    message: String,
    permanent: bool,
}

impl Failure {
    fn permanent(message: String) -> Self {
        Self {
            message,
            permanent: true,
        }
    }

    fn transient(message: String) -> Self {
        Self {
            message,
            permanent: false,
        }
    }
}

impl fmt::Debug for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // AlertConfig's own Debug hides the password, the secret and the webhook's path.
        f.debug_struct("Alerts")
            .field("config", &self.config)
            .field("retry_delays", &self.retry_delays)
            .field("timeout", &self.timeout)
            .finish()
    }
}
