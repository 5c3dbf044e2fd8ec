//! Real servers for the alert tests: aiosmtpd (Debian's python3-aiosmtpd) as a child process,
//! an axum webhook receiver on a loopback port (plain or rustls), and a CA made at test time.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{TimeZone, Utc};
use outpost_core::{DocId, TeamId, WorkerId};
use outpost_server::alerts::{AlertConfig, Alerts, SafeguardingAlert, SmtpConfig, SmtpTls, WebhookConfig};
use serde_json::Value;

pub const TEAM: &str = "t1";
pub const VISIT: &str = "visit-7c1e";
pub const WORKER: &str = "ann";
pub const AT: &str = "2025-03-14T09:26:53Z";
pub const BASE_URL: &str = "https://outpost.example.org";
pub const LINK: &str = "https://outpost.example.org/review/visits/visit-7c1e";

pub const LEADS: [&str; 2] = ["lead.one@example.org", "lead.two@example.org"];
pub const SECRET: &str = "webhook-shared-secret";
pub const TOKEN: &str = "tok-81f2c9";

pub fn smtp(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "Outpost <outpost@example.org>".into(),
        credentials: None,
        tls: SmtpTls::None,
    }
}

pub fn webhook(port: u16, secret: Option<&str>) -> WebhookConfig {
    WebhookConfig {
        url: format!("http://127.0.0.1:{port}/hooks/{TOKEN}"),
        secret: secret.map(str::to_string),
    }
}

pub fn alerts(smtp: Option<SmtpConfig>, webhook: Option<WebhookConfig>) -> Alerts {
    Alerts::new(AlertConfig {
        smtp,
        webhook,
        base_url: BASE_URL.into(),
    })
}

pub fn expected_body() -> String {
    format!(
        "A safeguarding concern was raised on a visit. Review it here:\n{LINK}\n\nTeam: {TEAM}\nRaised by: {WORKER}\nAt: {AT}\n"
    )
}

/// A text field of a received message, with SMTP's CRLF as `\n` and the blank line that
/// ends a message's data dropped.
pub fn text(message: &Value, field: &str) -> String {
    let text = message[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {message}"))
        .replace("\r\n", "\n");
    match text.strip_suffix("\n\n") {
        Some(text) => format!("{text}\n"),
        None => text,
    }
}

pub fn alert(recipients: &[&str]) -> SafeguardingAlert {
    SafeguardingAlert {
        team: TeamId::new(TEAM).expect("team id"),
        visit: DocId::new(VISIT).expect("visit id"),
        raised_by: WorkerId::new(WORKER).expect("worker id"),
        at: Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).single().expect("a time"),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
    }
}

/// Polls `check` until it returns Some, or panics naming `what` after `limit`.
pub async fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Python that can import aiosmtpd. Debian's package installs for /usr/bin/python3, which
/// another python3 earlier on PATH (pyenv) does not see.
fn python() -> &'static str {
    static PYTHON: OnceLock<&'static str> = OnceLock::new();
    PYTHON.get_or_init(|| {
        ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|python| {
                Command::new(python)
                    .args(["-c", "import aiosmtpd"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("the alert tests need a real SMTP server: apt-get install python3-aiosmtpd")
    })
}

/// aiosmtpd on a free loopback port, writing each message it accepts to a JSON file.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub async fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr = std::fs::File::create(dir.path().join("stderr.txt")).expect("stderr file");
        let out = dir.path().join("messages");
        std::fs::create_dir(&out).expect("messages dir");
        // From the workspace root, so the cross-crate tests can include this file too.
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/alerts/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(&out)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("starting the SMTP sink");
        let stdout = child.stdout.take().expect("sink stdout");
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await;
        let stderr_text = || std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap_or_default();
        let line = match line {
            Ok(Ok(Ok(line))) => line,
            other => panic!("the SMTP sink did not start ({other:?}): {}", stderr_text()),
        };
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink said {line:?}: {}", stderr_text()));
        Self { child, port, dir }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("messages")
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let mut paths: Vec<_> = std::fs::read_dir(self.out())
            .expect("messages dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("message file")).expect("message JSON"))
            .collect()
    }

    /// Waits until exactly one message has arrived and returns it.
    pub async fn only_message(&self) -> Value {
        let mut messages = eventually("a message at the SMTP sink", Duration::from_secs(10), || {
            let messages = self.messages();
            (!messages.is_empty()).then_some(messages)
        })
        .await;
        assert_eq!(messages.len(), 1, "{messages:#?}");
        messages.remove(0)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request as the webhook receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer with, in order; 204 once they run out.
    answers: Arc<Mutex<VecDeque<StatusCode>>>,
}

/// An HTTP server on a loopback port that records every POST to `/hooks/{token}`.
pub struct WebhookReceiver {
    state: Receiver,
    pub port: u16,
    server: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start(answers: &[StatusCode]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Receiver::new(answers);
        let app = state.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, port, server }
    }

    /// The same over rustls, with the certificate and key in PEM files.
    pub async fn start_tls(answers: &[StatusCode], cert: &Path, key: &Path) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let tls = outpost_server::tls::server_config(cert, key).expect("server TLS config");
        let state = Receiver::new(answers);
        let app = state.router();
        let server = axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(tls))
            .expect("TLS server");
        let server = tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });
        Self { state, port, server }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    fn new(answers: &[StatusCode]) -> Self {
        Self {
            received: Arc::default(),
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
        }
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/hooks/{token}", post(receive))
            .with_state(self.clone())
    }
}

async fn receive(State(state): State<Receiver>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    state.received.lock().expect("lock").push(Received { headers, body });
    match state.answers.lock().expect("lock").pop_front() {
        Some(status) if !status.is_success() => (status, "receiver says no"),
        Some(status) => (status, ""),
        None => (StatusCode::NO_CONTENT, ""),
    }
}

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`, as PEM files.
pub struct TestCa {
    /// Holds the files; they go when it drops.
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn test_ca() -> TestCa {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = outpost_server::tls::dev_certificate(dir.path()).expect("test certificate");
    TestCa {
        ca: paths.ca,
        cert: paths.cert,
        key: paths.key,
        _dir: dir,
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
