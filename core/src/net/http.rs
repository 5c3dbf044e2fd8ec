//! One HTTP/1.1 connection: TCP, then TLS, then hyper, kept alive across requests so a sync of
//! several rounds pays for one handshake. Bodies are read chunk by chunk, never whole, so what
//! arrived before a cut can already be applied.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::HandshakeKind;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::retry::Limits;
use crate::error::{Error, Result};
use crate::sync::wire::Problem;

pub(crate) type Body = Full<Bytes>;

/// Error bodies, health answers and enrolment answers are small; a server sending more is wrong.
const MAX_SMALL_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Connection {
    sender: SendRequest<Body>,
    resumed: bool,
    requests: u32,
}

/// Why a request failed, and whether it was never written (so it may go on a new connection).
#[derive(Debug)]
pub(crate) struct SendFailure {
    pub error: Error,
    pub unsent: bool,
}

impl Connection {
    pub async fn open(connector: &TlsConnector, server: &ServerName<'static>, host: &str, port: u16) -> Result<Self> {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| network(&format!("connecting to {host}:{port}"), &e))?;
        // Requests are one write each and the answer is awaited: Nagle would only add delay.
        tcp.set_nodelay(true)
            .map_err(|e| network(&format!("connecting to {host}:{port}"), &e))?;
        let tls = connector
            .connect(server.clone(), tcp)
            .await
            .map_err(|e| network(&format!("TLS handshake with {host}:{port}"), &e))?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| network("starting HTTP", &e))?;
        // The connection's I/O runs on its own task; it ends when `sender` is dropped or the
        // server closes, which `is_open` then reports.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %describe(&e), "sync connection ended with an error");
            }
        });
        tracing::debug!(host, port, resumed, "connected");
        Ok(Self {
            sender,
            resumed,
            requests: 0,
        })
    }

    /// The TLS handshake resumed an earlier session instead of a full handshake.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The connection has already carried a request, so the server may have closed it as idle.
    pub fn reused(&self) -> bool {
        self.requests > 0
    }

    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends a request and waits for the response head.
    pub async fn send(&mut self, request: Request<Body>) -> Result<Response<Incoming>, SendFailure> {
        if let Err(e) = self.sender.ready().await {
            return Err(SendFailure {
                error: network("sending the request", &e),
                unsent: true,
            });
        }
        self.requests += 1;
        self.sender
            .try_send_request(request)
            .await
            .map_err(|mut e| SendFailure {
                unsent: e.take_message().is_some(),
                error: network("sending the request", e.error()),
            })
    }
}

/// The next chunk of a body, or None at its end. A body cut part-way is a `Network` error.
pub(crate) async fn next_chunk(body: &mut Incoming, limits: &Limits, what: &str) -> Result<Option<Bytes>> {
    loop {
        let frame = limits
            .step(what, async {
                body.frame().await.transpose().map_err(|e| network(what, &e))
            })
            .await?;
        let Some(frame) = frame else { return Ok(None) };
        // Trailers and empty chunks carry nothing for the caller.
        if let Ok(data) = frame.into_data()
            && !data.is_empty()
        {
            return Ok(Some(data));
        }
    }
}

/// A whole small body (an error, a health or an enrolment answer).
pub(crate) async fn read_small(body: &mut Incoming, limits: &Limits, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = next_chunk(body, limits, what).await? {
        if out.len() + chunk.len() > MAX_SMALL_BODY {
            return Err(Error::Network(format!("{what}: over {MAX_SMALL_BODY} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Turns an error status and its `Problem` body into the error a caller acts on: 401 means the
/// credential is refused (`revoked` or `retired`: the device left service and must wipe),
/// another 4xx that retrying will not help, anything else (a 5xx, a proxy's page) that a later
/// attempt may work.
pub(crate) fn status_error(status: StatusCode, body: &[u8]) -> Error {
    let problem = serde_json::from_slice::<Problem>(body).ok();
    let message = match &problem {
        Some(problem) => problem.message.clone(),
        None => plain_message(status, body),
    };
    if status == StatusCode::UNAUTHORIZED {
        match problem.as_ref().map(|p| p.code.as_str()) {
            Some("revoked") => Error::Revoked(message),
            Some("retired") => Error::Retired(message),
            _ => Error::Unauthenticated(message),
        }
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        // Not a refusal of the request itself: the same request succeeds after a pause
        // (`retry_after`), so it is retried like a failed network round.
        Error::Network(format!("the server asked for a pause: {message}"))
    } else if status.is_client_error() {
        Error::Refused {
            code: problem.map_or_else(|| status.as_u16().to_string(), |p| p.code),
            message,
        }
    } else {
        Error::Network(format!("the server answered {status}: {message}"))
    }
}

/// How long a 429 or 503 answer asks the client to wait: `Retry-After` in seconds (the date
/// form is not used by Outpost's server and is ignored), capped so a wrong header cannot stall
/// a sync for long.
pub(crate) fn retry_after(headers: &hyper::HeaderMap) -> Option<std::time::Duration> {
    const MAX_WAIT: u64 = 300;
    let seconds: u64 = headers
        .get(hyper::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(std::time::Duration::from_secs(seconds.min(MAX_WAIT)))
}

/// A short, printable message from a body that is not a `Problem`.
fn plain_message(status: StatusCode, body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body).trim().chars().take(200).collect();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no reason given").to_string()
    } else {
        text
    }
}

pub(crate) fn network(what: &str, error: &(dyn std::error::Error + 'static)) -> Error {
    Error::Network(format!("{what}: {}", describe(error)))
}

/// An error with its causes, since hyper's own message ("connection error") hides the reason.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_errors_a_caller_can_act_on() {
        let problem = br#"{"code":"revoked","message":"this device was revoked"}"#;
        assert!(matches!(
            status_error(StatusCode::UNAUTHORIZED, problem),
            Error::Revoked(m) if m == "this device was revoked"
        ));
        let retired = br#"{"code":"retired","message":"handed in"}"#;
        assert!(matches!(
            status_error(StatusCode::UNAUTHORIZED, retired),
            Error::Retired(m) if m == "handed in"
        ));
        let unknown = br#"{"code":"unauthenticated","message":"unknown credential"}"#;
        assert!(matches!(
            status_error(StatusCode::UNAUTHORIZED, unknown),
            Error::Unauthenticated(m) if m == "unknown credential"
        ));
        assert!(matches!(
            status_error(StatusCode::FORBIDDEN, problem),
            Error::Refused { code, .. } if code == "revoked"
        ));
        assert!(matches!(
            status_error(StatusCode::BAD_REQUEST, b"not json"),
            Error::Refused { code, message } if code == "400" && message == "not json"
        ));
        let limited = br#"{"code":"rate-limited","message":"too many syncs from this device"}"#;
        assert!(matches!(
            status_error(StatusCode::TOO_MANY_REQUESTS, limited),
            Error::Network(m) if m.contains("pause") && m.contains("too many syncs")
        ));
        let mut headers = hyper::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(hyper::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(std::time::Duration::from_secs(7)));
        headers.insert(hyper::header::RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(std::time::Duration::from_secs(300)));
        headers.insert(
            hyper::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
        assert!(matches!(
            status_error(StatusCode::SERVICE_UNAVAILABLE, b""),
            Error::Network(m) if m.contains("503") && m.contains("Service Unavailable")
        ));
    }
}
