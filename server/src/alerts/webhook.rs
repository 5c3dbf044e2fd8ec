//! The alert as a JSON POST to a configured URL, over hyper's HTTP/1 client on one fresh
//! connection (alerts are rare; nothing is worth keeping open). HTTPS is rustls with ring,
//! trusting the platform's certificate store; a set secret signs the body.

use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::json;
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::{WebhookConfig, check_webhook_url};
use outpost_core::net::describe_error as describe;

use super::{Failure, SafeguardingAlert};

/// The header that carries the body's signature when a secret is set.
pub const SIGNATURE_HEADER: &str = "x-outpost-signature";

/// How much of an error answer is read, to quote the start of it.
const MAX_ERROR_BODY: usize = 4096;

/// The JSON body: ids, the time and the link; nothing from the record.
pub(super) fn payload(alert: &SafeguardingAlert, link: &str) -> Vec<u8> {
    json!({
        "event": "safeguarding_concern",
        "team": alert.team.as_str(),
        "visit": alert.visit.as_str(),
        "raised_by": alert.raised_by.as_str(),
        "at": super::timestamp(alert),
        "link": link,
    })
    .to_string()
    .into_bytes()
}

/// `sha256=<hex HMAC-SHA256 of body>`, the value of `X-Outpost-Signature`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail; the fallback keeps that visible.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + tag.len() * 2);
    hex.push_str("sha256=");
    for byte in tag {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

pub(super) async fn post(webhook: &WebhookConfig, body: Vec<u8>) -> Result<(), Failure> {
    let uri = check_webhook_url(&webhook.url).map_err(|e| Failure::permanent(format!("the webhook URL: {e}")))?;
    let target = WebhookConfig::redacted(&webhook.url);
    let https = uri.scheme_str() == Some("https");
    // `host()` keeps an IPv6 address's brackets; connecting and TLS want it bare.
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host.as_str(), |a| a.as_str());

    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(HOST, authority)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("outpost-server/", env!("CARGO_PKG_VERSION")));
    if let Some(secret) = &webhook.secret {
        request = request.header(SIGNATURE_HEADER, signature(secret, &body));
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure::permanent(format!("building the webhook request: {e}")))?;

    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| Failure::transient(format!("connecting to webhook {target}: {}", describe(&e))))?;
    let status = if https {
        let name = ServerName::try_from(host.clone())
            .map_err(|e| Failure::permanent(format!("webhook {target}: not a TLS server name: {e}")))?;
        let tls =
            TlsConnector::from(client_config().map_err(|e| Failure::transient(format!("webhook {target}: {e}")))?)
                .connect(name, tcp)
                .await
                .map_err(|e| Failure::transient(format!("TLS handshake with webhook {target}: {}", describe(&e))))?;
        exchange(TokioIo::new(tls), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    };
    let (status, excerpt) = status.map_err(|e| Failure::transient(format!("webhook {target}: {}", describe(&e))))?;
    if status.is_success() {
        return Ok(());
    }
    let message = match excerpt {
        Some(text) => format!("webhook {target} answered {status}: {text}"),
        None => format!("webhook {target} answered {status}"),
    };
    // A 4xx (a refused signature, a wrong path) will not change by itself, except these two.
    let permanent =
        status.is_client_error() && status != StatusCode::REQUEST_TIMEOUT && status != StatusCode::TOO_MANY_REQUESTS;
    Err(Failure { message, permanent })
}

/// Sends the request on a new HTTP/1 connection; returns the status and, for an error, the
/// start of the answer's text.
async fn exchange<I>(io: I, request: Request<Full<Bytes>>) -> Result<(StatusCode, Option<String>), hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    // The connection's I/O runs beside the request; it ends once `sender` and the body drop.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "webhook connection ended with an error");
        }
    });
    let response = sender.send_request(request).await?;
    let status = response.status();
    if status.is_success() {
        return Ok((status, None));
    }
    let excerpt = match Limited::new(response.into_body(), MAX_ERROR_BODY).collect().await {
        Ok(body) => {
            let bytes = body.to_bytes();
            let text: String = String::from_utf8_lossy(&bytes).trim().chars().take(200).collect();
            (!text.is_empty()).then_some(text)
        }
        Err(_) => None,
    };
    Ok((status, excerpt))
}

/// Read anew for each alert, so a certificate store changed since start-up is seen.
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| format!("reading the platform certificate store: {e}"))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        // The platform's own verifier, not a relaxed one: "dangerous" only in name.
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc_4231_hmac_sha256_in_lowercase_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
