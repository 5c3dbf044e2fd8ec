//! Outpost's sync server: devices enrol, authenticate with a device credential, and sync
//! changes over TLS; an admin runs the same binary's commands to manage teams and devices.

pub mod access;
pub mod admin;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod database;
pub mod duplicates;
pub mod erasure;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod redaction;
pub mod review;
pub mod signing;
pub mod storage;
pub mod subject_access;
pub mod sync;
pub mod tls;
pub mod web;

use std::net::TcpListener;
use std::sync::Arc;

use axum::{Json, Router, routing::get};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use serde_json::{Value, json};

pub use error::{Error, Result};
use storage::Storage;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub sync: Arc<sync::SyncService>,
    pub metrics: Arc<metrics::Metrics>,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    /// The review pages' sign-in and sessions.
    pub web: Arc<web::WebSettings>,
    /// Requests per device (sync) and per client address (enrolment).
    pub limits: Arc<limits::RateLimits>,
}

impl AppState {
    /// State over `storage`, taking a fresh server actor for this process; no alerts sent.
    pub fn new(storage: Arc<dyn Storage>) -> Result<Self> {
        Self::with_alerts(storage, alerts::Alerts::disabled())
    }

    /// The same, telling team leads of safeguarding concerns through `alerts`. Devices' leases
    /// are signed with a key made in memory, which suits tests; a server that devices come back
    /// to uses `with_key`.
    pub fn with_alerts(storage: Arc<dyn Storage>, alerts: alerts::Alerts) -> Result<Self> {
        Self::with_key(storage, alerts, Arc::new(signing::ServerKey::generate()?))
    }

    /// The same, signing devices' offline leases with the server's kept `key`: devices pin it
    /// at enrolment and refuse leases signed by any other.
    pub fn with_key(storage: Arc<dyn Storage>, alerts: alerts::Alerts, key: Arc<signing::ServerKey>) -> Result<Self> {
        let listed = sync::relist(storage.as_ref())?;
        if listed > 0 {
            tracing::info!(listed, "listed stored records for the review pages");
        }
        let metrics = Arc::new(metrics::Metrics::default());
        Ok(Self {
            sync: Arc::new(
                sync::SyncService::new(storage.clone(), metrics.clone())?
                    .with_alerts(alerts)
                    .with_key(key),
            ),
            storage,
            metrics,
            trusted_proxies: Arc::new(Vec::new()),
            web: Arc::new(web::WebSettings::default()),
            limits: Arc::new(limits::RateLimits::default()),
        })
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The whole HTTP application, so tests can drive it without a socket.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .merge(auth::router())
        .merge(sync::router())
        .merge(web::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::log))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn render_metrics(axum::extract::State(state): axum::extract::State<AppState>) -> String {
    state.metrics.render()
}

/// Serves `app()` over TLS on an already bound listener until `handle` is told to shut down.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
    handle: Handle<std::net::SocketAddr>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls))?
        .handle(handle)
        .serve(app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}

/// Serves plain HTTP behind a load balancer that terminates TLS, believing X-Forwarded-For
/// only from `trusted` proxies.
pub async fn serve_plain(
    listener: TcpListener,
    mut state: AppState,
    trusted: Vec<std::net::IpAddr>,
    handle: Handle<std::net::SocketAddr>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    state.trusted_proxies = Arc::new(trusted);
    axum_server::from_tcp(listener)?
        .handle(handle)
        .serve(app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}
