//! The client transport (`outpost_core::net`) against small axum routers over real TLS on a
//! loopback port: trust, TLS session resumption, status mapping, retries, cuts and deadlines.
//! The sync engine itself is tested elsewhere; these routes answer with the fewest frames it
//! accepts (a head and an end).

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use http_body_util::channel::Channel;
use outpost_core::net::{Client, ClientConfig, SyncOptions};
use outpost_core::sync::wire::{self, EnrolRequest, EnrolResponse, Frame, Problem};
use outpost_core::{Author, DeviceId, Error, Store, WorkerId};
use tokio::time::Instant;

struct TestServer {
    addr: SocketAddr,
    ca: Vec<u8>,
    handle: Handle<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl TestServer {
    /// A client of this server that trusts its CA, with quick retries.
    fn client(&self, credential: Option<&str>) -> Client {
        Client::new(ClientConfig {
            ca_pem: Some(self.ca.clone()),
            credential: credential.map(str::to_string),
            ..ClientConfig::new("localhost", self.addr.port())
        })
        .expect("client")
    }
}

/// Serves `router` over TLS with a development certificate made for this test.
async fn serve(router: Router) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = outpost_server::tls::dev_certificate(dir.path()).expect("certificate");
    let config = outpost_server::tls::server_config(&paths.cert, &paths.key).expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let handle = Handle::new();
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(config))
        .expect("server")
        .handle(handle.clone());
    tokio::spawn(server.serve(router.into_make_service()));
    TestServer {
        addr,
        ca: std::fs::read(&paths.ca).expect("ca.pem"),
        handle,
        _dir: dir,
    }
}

fn health_router() -> Router {
    Router::new().route("/health", get(|| async { "ok" }))
}

fn store() -> (Arc<Mutex<Store>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let author = Author::new(
        WorkerId::new("w1").expect("worker"),
        DeviceId::new("w1-phone").expect("device"),
    );
    let store = Store::open(dir.path().join("device.sqlite3"), author).expect("store");
    (Arc::new(Mutex::new(store)), dir)
}

fn quick_retries(max_attempts: u32) -> SyncOptions {
    SyncOptions {
        max_attempts,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        ..SyncOptions::default()
    }
}

/// The smallest whole sync answer: nothing acknowledged, nothing new, the cursor where it was.
fn head_frame() -> Vec<u8> {
    wire::encode(&Frame::Head(wire::Head {
        protocol: wire::PROTOCOL,
        epoch: "epoch-1".into(),
        ..wire::Head::default()
    }))
}

fn end_frame() -> Vec<u8> {
    wire::encode(&Frame::End(wire::End { cursor: 0, more: false }))
}

fn problem(status: StatusCode, code: &str, message: &str) -> Response {
    let problem = Problem {
        code: code.into(),
        message: message.into(),
    };
    (status, Json(problem)).into_response()
}

fn last_error(store: &Arc<Mutex<Store>>, client: &Client) -> Option<String> {
    let store = store.lock().expect("store lock");
    store.sync_status(&client.peer()).expect("status").last_error
}

#[tokio::test]
async fn health_trusts_only_the_given_ca() {
    let server = serve(health_router()).await;
    let mut client = server.client(None);
    client.health().await.expect("health with the right CA");
    assert_eq!(client.stats().connections, 1);

    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = outpost_server::tls::dev_certificate(other_dir.path()).expect("other certificate");
    let mut stranger = Client::new(ClientConfig {
        ca_pem: Some(std::fs::read(&other.ca).expect("other ca")),
        ..ClientConfig::new("localhost", server.addr.port())
    })
    .expect("client");
    match stranger.health().await {
        Err(Error::Network(reason)) => assert!(reason.contains("certificate"), "{reason}"),
        other => panic!("a server signed by another CA was trusted: {other:?}"),
    }

    let mut trusting_nothing = Client::new(ClientConfig::new("localhost", server.addr.port())).expect("client");
    assert!(matches!(trusting_nothing.health().await, Err(Error::Network(_))));
}

#[tokio::test]
async fn a_kept_connection_is_reused_and_a_reconnect_resumes_tls() {
    let server = serve(health_router()).await;
    let mut client = server.client(None);
    client.health().await.expect("first");
    client.health().await.expect("second, same connection");
    assert_eq!(client.stats().connections, 1, "keep-alive reuses the connection");
    assert_eq!(client.stats().tls_resumed, 0);

    client.disconnect();
    client.health().await.expect("after a disconnect");
    let stats = client.stats();
    assert_eq!((stats.connections, stats.tls_resumed), (2, 1), "{stats:?}");
}

#[tokio::test]
async fn a_revoked_credential_is_refused_as_revoked_and_not_retried() {
    let hits = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&hits);
    let router = Router::new().route(
        wire::SYNC_PATH,
        post(move || async move {
            counter.fetch_add(1, Ordering::SeqCst);
            problem(StatusCode::UNAUTHORIZED, "revoked", "this device was revoked")
        }),
    );
    let server = serve(router).await;
    let mut client = server.client(Some("stolen-phone"));
    let (store, _dir) = store();
    match client.sync(Arc::clone(&store), quick_retries(5)).await {
        Err(Error::Revoked(message)) => assert_eq!(message, "this device was revoked"),
        other => panic!("expected Revoked, got {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a refused credential is not retried");
    let recorded = last_error(&store, &client).expect("the failure is recorded");
    assert!(recorded.contains("revoked"), "{recorded}");
}

#[tokio::test]
async fn a_deadline_already_past_stops_before_connecting() {
    let (store, _dir) = store();
    // Nothing listens here: a connection attempt would fail with a network error instead.
    let mut client = Client::new(ClientConfig::new("localhost", 9)).expect("client");
    client.set_credential(Some("credential".into()));
    let options = SyncOptions {
        deadline: Some(Instant::now()),
        ..SyncOptions::default()
    };
    // Spawned, which also proves the sync future can move between threads.
    let (result, client) = tokio::spawn(async move {
        let result = client.sync(store, options).await;
        (result, client)
    })
    .await
    .expect("task");
    assert!(matches!(result, Err(Error::DeadlineReached)), "{result:?}");
    assert_eq!(client.stats().connections, 0);
}

#[tokio::test]
async fn a_device_without_a_credential_is_unauthenticated_without_connecting() {
    let (store, _dir) = store();
    let mut client = Client::new(ClientConfig::new("localhost", 9)).expect("client");
    let result = client.sync(store, SyncOptions::default()).await;
    assert!(matches!(result, Err(Error::Unauthenticated(_))), "{result:?}");
    assert_eq!(client.stats().connections, 0);
}

#[tokio::test]
async fn enrol_then_sync_carries_the_credential_and_counts_payload_bytes() {
    let router = Router::new()
        .route(
            wire::ENROL_PATH,
            post(|Json(request): Json<EnrolRequest>| async move {
                if request.code != "123-456" {
                    return problem(StatusCode::BAD_REQUEST, "bad_code", "that code is unknown or used");
                }
                Json(EnrolResponse {
                    worker: "w1".into(),
                    device: request.label,
                    team: "t1".into(),
                    credential: "secret-credential".into(),
                    role: None,
                    server_key: None,
                    lease: None,
                })
                .into_response()
            }),
        )
        .route(
            wire::SYNC_PATH,
            post(|headers: HeaderMap, body: Bytes| async move {
                let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                if bearer != Some("Bearer secret-credential") {
                    return problem(StatusCode::UNAUTHORIZED, "unauthenticated", "no such credential");
                }
                if content_type != Some("application/x-outpost-sync") || body.is_empty() {
                    return problem(StatusCode::BAD_REQUEST, "bad_request", "not a sync request");
                }
                [head_frame(), end_frame()].concat().into_response()
            }),
        );
    let server = serve(router).await;
    let mut client = server.client(None);

    match client.enrol("000-000", "w1-phone").await {
        Err(Error::Refused { code, .. }) => assert_eq!(code, "bad_code"),
        other => panic!("a wrong code was not refused: {other:?}"),
    }
    assert_eq!(client.credential(), None);
    let enrolled = client.enrol("123-456", "w1-phone").await.expect("enrol");
    assert_eq!(enrolled.device, "w1-phone");
    assert_eq!(client.credential(), Some("secret-credential"));

    let (store, _dir) = store();
    let progress_calls = Arc::new(AtomicU32::new(0));
    let calls = Arc::clone(&progress_calls);
    let options = SyncOptions {
        on_progress: Some(Arc::new(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
        })),
        ..SyncOptions::default()
    };
    let report = client.sync(Arc::clone(&store), options).await.expect("sync");
    assert_eq!((report.rounds, report.attempts), (1, 1), "{report:?}");
    assert_eq!(report.connections, 0, "the enrolment's connection was kept: {report:?}");
    assert!(report.request_body_bytes > 0);
    assert_eq!(
        report.response_body_bytes,
        (head_frame().len() + end_frame().len()) as u64
    );
    assert!(progress_calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(last_error(&store, &client), None);
}

#[tokio::test]
async fn server_errors_are_retried_on_resumed_connections_up_to_max_attempts() {
    let hits = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&hits);
    let router = Router::new().route(
        wire::SYNC_PATH,
        post(move || async move {
            counter.fetch_add(1, Ordering::SeqCst);
            problem(StatusCode::SERVICE_UNAVAILABLE, "busy", "try again later")
        }),
    );
    let server = serve(router).await;
    let mut client = server.client(Some("credential"));
    let (store, _dir) = store();
    match client.sync(Arc::clone(&store), quick_retries(3)).await {
        Err(Error::Network(reason)) => assert!(reason.contains("503") && reason.contains("try again later")),
        other => panic!("expected a network error, got {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let stats = client.stats();
    assert_eq!((stats.connections, stats.tls_resumed), (3, 2), "{stats:?}");
    assert!(last_error(&store, &client).is_some_and(|e| e.contains("503")));
}

/// An answer that sends its head, then is cut (first request) or completes (later ones).
fn cut_once_router(hits: Arc<AtomicU32>) -> Router {
    Router::new().route(
        wire::SYNC_PATH,
        post(move || async move {
            let first = hits.fetch_add(1, Ordering::SeqCst) == 0;
            let (mut sender, body) = Channel::<Bytes, std::io::Error>::new(4);
            tokio::spawn(async move {
                let _ = sender.send_data(head_frame().into()).await;
                if first {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    sender.abort(std::io::Error::other("cut"));
                } else {
                    let _ = sender.send_data(end_frame().into()).await;
                }
            });
            Response::new(Body::new(body))
        }),
    )
}

#[tokio::test]
async fn an_answer_cut_part_way_is_retried_and_completes() {
    let hits = Arc::new(AtomicU32::new(0));
    let server = serve(cut_once_router(Arc::clone(&hits))).await;
    let mut client = server.client(Some("credential"));
    let (store, _dir) = store();
    let report = client.sync(store, quick_retries(3)).await.expect("sync after a cut");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!((report.rounds, report.attempts), (1, 2), "{report:?}");
    assert_eq!((report.connections, report.tls_resumed), (2, 1), "{report:?}");
    let whole = (head_frame().len() + end_frame().len()) as u64;
    assert!(
        report.response_body_bytes > whole,
        "the cut attempt's bytes count too: {report:?}"
    );
}

#[tokio::test]
async fn a_stalled_answer_stops_at_the_deadline() {
    let router = Router::new().route(
        wire::SYNC_PATH,
        post(|| async {
            let (mut sender, body) = Channel::<Bytes, std::io::Error>::new(4);
            tokio::spawn(async move {
                let _ = sender.send_data(head_frame().into()).await;
                // Never finish: hold the answer open past the client's deadline.
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(sender);
            });
            Response::new(Body::new(body))
        }),
    );
    let server = serve(router).await;
    let mut client = server.client(Some("credential"));
    let (store, _dir) = store();
    let started = Instant::now();
    let options = SyncOptions {
        deadline: Some(started + Duration::from_millis(300)),
        ..SyncOptions::default()
    };
    let result = client.sync(Arc::clone(&store), options).await;
    assert!(matches!(result, Err(Error::DeadlineReached)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(last_error(&store, &client).is_some_and(|e| e.contains("deadline")));
}
