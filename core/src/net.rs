//! The client transport: carries the sync engine's bytes to one server over HTTP/1.1 and rustls
//! TLS. The engine (`sync`) decides what to send and applies what comes back; this module owns
//! sockets, timeouts, retries and the device credential.
//!
//! A `Client` keeps one connection alive between requests and one TLS configuration for its
//! lifetime, so a reconnect after a dropped connection resumes the TLS session.

mod driver;
mod http;

/// An error with its causes, for messages about failures in I/O libraries.
pub use http::describe as describe_error;
mod retry;
mod tls;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response};
use rustls::pki_types::ServerName;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};
use crate::sync::Progress;
use crate::sync::wire::{self, EnrolRequest, EnrolResponse};
use http::{Body, Connection};
use retry::Limits;
pub use tls::spki_sha256;

/// Where the server is and how to trust and address it.
#[derive(Clone)]
pub struct ClientConfig {
    /// The server's name, checked against its certificate and sent as the Host header.
    pub host: String,
    pub port: u16,
    /// PEM certificates of the authority that signed the server's certificate (a private
    /// deployment's CA): only these are trusted. Without one the platform's certificate store is
    /// trusted; on Android that needs the app to initialise the platform verifier first.
    pub ca_pem: Option<Vec<u8>>,
    /// SHA-256 of the server's SubjectPublicKeyInfo (see `spki_sha256`). When not empty, a
    /// server whose certificate verifies must also present one of these keys.
    pub pins: Vec<[u8; 32]>,
    /// The device credential from enrolment, if the device is enrolled.
    pub credential: Option<String>,
    /// How long one step (connecting, sending, the next chunk of an answer) may go without
    /// progress before the attempt counts as failed.
    pub io_timeout: Duration,
    /// Connect here instead of resolving `host` (a relay or a test proxy); the server is
    /// still known, and its certificate checked, as `host`.
    pub connect_to: Option<std::net::SocketAddr>,
}

impl ClientConfig {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            ca_pem: None,
            pins: Vec::new(),
            credential: None,
            io_timeout: Duration::from_secs(30),
            connect_to: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "ca_pem",
                &self.ca_pem.as_ref().map(|pem| format!("{} bytes", pem.len())),
            )
            .field("pins", &self.pins.len())
            .field("credential", &self.credential.as_ref().map(|_| "<redacted>"))
            .field("io_timeout", &self.io_timeout)
            .field("connect_to", &self.connect_to)
            .finish()
    }
}

/// How a sync may spend its time.
#[derive(Clone)]
pub struct SyncOptions {
    /// Stop at this instant, keeping what was applied; the next sync resumes from there.
    pub deadline: Option<Instant>,
    /// Attempts at one round before the sync gives up; a round that succeeds resets the count.
    pub max_attempts: u32,
    /// The longest first wait before a retry; it doubles with each failure, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Called after each chunk of the server's answer is applied (on the async task).
    pub on_progress: Option<OnProgress>,
}

/// A callback told how far a sync has got.
pub type OnProgress = Arc<dyn Fn(&Progress) + Send + Sync>;

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            deadline: None,
            max_attempts: 8,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            on_progress: None,
        }
    }
}

impl fmt::Debug for SyncOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncOptions")
            .field("deadline", &self.deadline)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("on_progress", &self.on_progress.as_ref().map(|_| "Fn(&Progress)"))
            .finish()
    }
}

/// What one sync cost. Body bytes are the protocol's payload, apart from HTTP and TLS overhead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Rounds completed.
    pub rounds: u32,
    /// Requests sent: rounds plus retries.
    pub attempts: u32,
    /// Connections opened (TCP and TLS handshakes).
    pub connections: u32,
    /// Of those, handshakes that resumed an earlier TLS session.
    pub tls_resumed: u32,
    /// Request body bytes sent, retries included.
    pub request_body_bytes: u64,
    /// Response body bytes received, including those of attempts that failed part-way.
    pub response_body_bytes: u64,
    pub progress: Progress,
}

/// Connections a `Client` has opened over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    pub connections: u32,
    pub tls_resumed: u32,
}

/// The transport to one server. Create one per server and keep it: it holds the live
/// connection and the TLS sessions a reconnect resumes.
pub struct Client {
    config: ClientConfig,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    connection: Option<Connection>,
    stats: ConnectionStats,
    /// How long the server's last error answer asked us to wait (its `Retry-After`).
    retry_after: Option<Duration>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("connected", &self.connection.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

const USER_AGENT: &str = concat!("outpost/", env!("CARGO_PKG_VERSION"));

/// One kind of request this client makes.
#[derive(Debug)]
struct Call {
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    /// Carries the device credential.
    authorised: bool,
}

const HEALTH: Call = Call {
    method: Method::GET,
    path: "/health",
    content_type: None,
    authorised: false,
};
const ENROL: Call = Call {
    method: Method::POST,
    path: wire::ENROL_PATH,
    content_type: Some("application/json"),
    authorised: false,
};
const SYNC: Call = Call {
    method: Method::POST,
    path: wire::SYNC_PATH,
    content_type: Some("application/x-outpost-sync"),
    authorised: true,
};

impl Client {
    /// Checks the configuration; connects only when a request needs it.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let server_name = ServerName::try_from(config.host.clone())
            .map_err(|e| Error::invalid("server host", format!("{:?}: {e}", config.host)))?;
        let tls = tls::client_config(config.ca_pem.as_deref(), &config.pins)?;
        Ok(Self {
            config,
            server_name,
            connector: TlsConnector::from(tls),
            connection: None,
            stats: ConnectionStats::default(),
            retry_after: None,
        })
    }

    /// The name sync state is kept under in the store: `host:port`.
    pub fn peer(&self) -> String {
        format!("{}:{}", self.config.host, self.config.port)
    }

    pub fn credential(&self) -> Option<&str> {
        self.config.credential.as_deref()
    }

    pub fn set_credential(&mut self, credential: Option<String>) {
        self.config.credential = credential;
    }

    pub fn stats(&self) -> ConnectionStats {
        self.stats
    }

    /// Closes the live connection, if any; the next request opens (and resumes) another.
    pub fn disconnect(&mut self) {
        self.connection = None;
    }

    /// Asks the server whether it is up: one GET of `/health`.
    pub async fn health(&mut self) -> Result<()> {
        let limits = self.limits(None);
        let response = self.exchange(&limits, &HEALTH, Bytes::new()).await?;
        http::read_small(&mut response.into_body(), &limits, "reading the health answer").await?;
        Ok(())
    }

    /// Enrols this device with a one-time code; the credential is kept for later requests and
    /// returned for the app to store.
    pub async fn enrol(&mut self, code: &str, label: &str) -> Result<EnrolResponse> {
        self.enrol_as(code, label, None).await
    }

    /// Enrols again under the device id this device had, after the server lost it in a restore
    /// from an older backup, so its unsynced changes (which name that id) are still its own.
    pub async fn enrol_as(&mut self, code: &str, label: &str, device: Option<&str>) -> Result<EnrolResponse> {
        let limits = self.limits(None);
        let request = EnrolRequest {
            code: code.to_string(),
            label: label.to_string(),
            device: device.map(str::to_string),
        };
        let body = serde_json::to_vec(&request).map_err(|e| Error::invalid("enrol request", e.to_string()))?;
        let response = self.exchange(&limits, &ENROL, body.into()).await?;
        let body = http::read_small(&mut response.into_body(), &limits, "reading the enrol answer").await?;
        let enrolled: EnrolResponse =
            serde_json::from_slice(&body).map_err(|e| Error::invalid("enrol response", e.to_string()))?;
        self.config.credential = Some(enrolled.credential.clone());
        Ok(enrolled)
    }

    fn limits(&self, deadline: Option<Instant>) -> Limits {
        Limits {
            deadline,
            io_timeout: self.config.io_timeout,
        }
    }

    /// Sends one request and returns a 2xx response with its body unread; any other status
    /// becomes the error it means. A failed exchange drops the connection.
    async fn exchange(&mut self, limits: &Limits, call: &Call, body: Bytes) -> Result<Response<Incoming>> {
        let result = self.send(limits, call, body).await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                self.disconnect();
                return Err(error);
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        // A busy or rate-limiting server says when to come back; the next retry waits that long.
        self.retry_after = http::retry_after(response.headers());
        let what = format!("reading the {status} answer to {} {}", call.method, call.path);
        match http::read_small(&mut response.into_body(), limits, &what).await {
            Ok(problem) => Err(http::status_error(status, &problem)),
            Err(error) => {
                self.disconnect();
                Err(error)
            }
        }
    }

    async fn send(&mut self, limits: &Limits, call: &Call, body: Bytes) -> Result<Response<Incoming>> {
        loop {
            let request = self.request(call, body.clone())?;
            let connection = self.connection(limits).await?;
            let reused = connection.reused();
            let sent = limits
                .step("sending the request", async { Ok(connection.send(request).await) })
                .await?;
            match sent {
                Ok(response) => return Ok(response),
                // The server closed an idle kept-alive connection before the request went out:
                // nothing was sent, so send it on a new one at once.
                Err(failure) if failure.unsent && reused => {
                    tracing::debug!(error = %failure.error, "kept-alive connection was closed; reconnecting");
                    self.disconnect();
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    fn request(&self, call: &Call, body: Bytes) -> Result<Request<Body>> {
        let host = &self.config.host;
        let authority = if host.contains(':') {
            format!("[{host}]:{}", self.config.port)
        } else {
            self.peer()
        };
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(call.path)
            .header(header::HOST, authority)
            .header(header::USER_AGENT, USER_AGENT);
        if let Some(content_type) = call.content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if call.authorised {
            let credential =
                self.config.credential.as_deref().ok_or_else(|| {
                    Error::Unauthenticated("this device is not enrolled: it has no credential".into())
                })?;
            let mut value = HeaderValue::try_from(format!("Bearer {credential}"))
                .map_err(|_| Error::invalid("device credential", "not a valid HTTP header value"))?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        request
            .body(Body::new(body))
            .map_err(|e| Error::invalid("request", e.to_string()))
    }

    /// The live connection, opening one if there is none or the last one closed.
    async fn connection(&mut self, limits: &Limits) -> Result<&mut Connection> {
        let connection = match self.connection.take() {
            Some(connection) if connection.is_open() => connection,
            _ => {
                let (host, port) = match self.config.connect_to {
                    Some(addr) => (addr.ip().to_string(), addr.port()),
                    None => (self.config.host.clone(), self.config.port),
                };
                let host = host.as_str();
                let connection = limits
                    .step(
                        "connecting",
                        Connection::open(&self.connector, &self.server_name, host, port),
                    )
                    .await?;
                self.stats.connections += 1;
                if connection.resumed() {
                    self.stats.tls_resumed += 1;
                }
                connection
            }
        };
        Ok(self.connection.insert(connection))
    }
}
