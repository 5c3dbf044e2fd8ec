//! The alert as one plain-text message to every lead, sent with lettre over tokio and rustls
//! (ring; the platform's certificate store decides whom to trust).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{SmtpConfig, SmtpTls, check_mailbox};
use outpost_core::net::describe_error as describe;

use super::{Failure, SafeguardingAlert};

/// The subject line: names the team, never the person.
pub(super) fn subject(alert: &SafeguardingAlert) -> String {
    format!("Safeguarding concern raised: visit needs review (team {})", alert.team)
}

/// The body: the link, the team, the worker and the time, and nothing from the record.
pub(super) fn body(alert: &SafeguardingAlert, link: &str) -> String {
    format!(
        "A safeguarding concern was raised on a visit. Review it here:\n\
         {link}\n\
         \n\
         Team: {team}\n\
         Raised by: {worker}\n\
         At: {at}\n",
        team = alert.team,
        worker = alert.raised_by,
        at = super::timestamp(alert),
    )
}

pub(super) async fn send(
    smtp: &SmtpConfig,
    alert: &SafeguardingAlert,
    link: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let server = format!("{}:{}", smtp.host, smtp.port);
    let from = check_mailbox(&smtp.from).map_err(|e| Failure::permanent(format!("the sender address: {e}")))?;
    let (to, bad) = recipients(&alert.recipients);
    if to.iter().next().is_none() {
        return Err(Failure::permanent(match bad {
            Some((_, bad)) => bad,
            None => format!("team {} has no lead with an email address", alert.team),
        }));
    }
    let message = Message::builder()
        .from(from)
        .mailbox(lettre::message::header::To::from(to))
        .subject(subject(alert))
        .header(ContentType::TEXT_PLAIN)
        .body(body(alert, link))
        .map_err(|e| Failure::permanent(format!("building the message: {e}")))?;

    let tls = match smtp.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls => Tls::Required(tls_parameters(smtp, &server)?),
        SmtpTls::Tls => Tls::Wrapper(tls_parameters(smtp, &server)?),
    };
    // "Dangerous" in lettre means only that TLS is not chosen for us: it is set just below.
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some(credentials) = &smtp.credentials {
        transport = transport.credentials(Credentials::new(
            credentials.username.clone(),
            credentials.password.clone(),
        ));
    }
    let told = alert.recipients.len() - bad.as_ref().map_or(0, |(count, _)| *count);
    let sent = transport.build::<Tokio1Executor>().send(message).await;
    match (sent, bad) {
        (Ok(_), None) => Ok(()),
        // The leads with good addresses were told; the bad one is for an admin to fix, and a
        // retry would only mail the others again.
        (Ok(_), Some((_, bad))) => Err(Failure::permanent(format!("sent to {told} lead(s), but {bad}"))),
        (Err(e), _) => Err(Failure {
            message: format!(
                "sending mail through SMTP server {server}: {}",
                without_addresses(&describe(&e))
            ),
            // 5xx answers (an unknown recipient, a refused login) will not change on a retry.
            permanent: e.is_permanent(),
        }),
    }
}

fn tls_parameters(smtp: &SmtpConfig, server: &str) -> Result<TlsParameters, Failure> {
    TlsParameters::new(smtp.host.clone())
        .map_err(|e| Failure::transient(format!("TLS for SMTP server {server}: {}", describe(&e))))
}

/// The leads' mailboxes, and how many do not parse with a note naming them by position (an
/// address is not written to the log).
fn recipients(addresses: &[String]) -> (Mailboxes, Option<(usize, String)>) {
    let mut to = Mailboxes::new();
    let mut bad = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        match address.parse::<Mailbox>() {
            Ok(mailbox) => to.push(mailbox),
            Err(_) => bad.push((i + 1).to_string()),
        }
    }
    let bad = (!bad.is_empty()).then(|| {
        let note = format!(
            "lead address {} of {} is not an email address",
            bad.join(", "),
            addresses.len()
        );
        (bad.len(), note)
    });
    (to, bad)
}

/// A mail server's answer may quote an address back ("<lead@...>: mailbox unavailable"); logs
/// name the visit and team, not people.
fn without_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| if word.contains('@') { "<address>" } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_answers_lose_their_addresses() {
        assert_eq!(
            without_addresses("permanent error (550): 5.1.1 <lead.one@example.org>: Recipient address rejected"),
            "permanent error (550): 5.1.1 <address> Recipient address rejected"
        );
    }
}
