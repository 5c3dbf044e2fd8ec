//! Reads configuration from the environment and serves `outpost_server::app` over TLS until
//! Ctrl-C or SIGTERM.
//!
//! OUTPOST_ADDR       where to listen (default 127.0.0.1:8443)
//! OUTPOST_DATA_DIR   the server's data (default ./outpost-data)
//! OUTPOST_TLS_CERT, OUTPOST_TLS_KEY
//!                    a PEM certificate chain and key; without them a development certificate is
//!                    made in OUTPOST_DATA_DIR/tls (trust its ca.pem on the client)

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use axum_server::Handle;
use std::sync::Arc;

use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::{AppState, tls};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("outpost-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let addr: SocketAddr = match std::env::var("OUTPOST_ADDR") {
        Ok(value) => value.parse().map_err(|e| format!("OUTPOST_ADDR {value:?}: {e}"))?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 8443)),
    };
    let data_dir = PathBuf::from(std::env::var("OUTPOST_DATA_DIR").unwrap_or_else(|_| "outpost-data".into()));
    let (cert, key) = match (std::env::var("OUTPOST_TLS_CERT"), std::env::var("OUTPOST_TLS_KEY")) {
        (Ok(cert), Ok(key)) => (PathBuf::from(cert), PathBuf::from(key)),
        (Err(_), Err(_)) => {
            let dev = tls::dev_certificate(&data_dir.join("tls")).map_err(|e| e.to_string())?;
            println!("development certificate: clients trust {}", dev.ca.display());
            (dev.cert, dev.key)
        }
        _ => return Err("set both OUTPOST_TLS_CERT and OUTPOST_TLS_KEY, or neither".into()),
    };
    let config = tls::server_config(&cert, &key).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("creating {}: {e}", data_dir.display()))?;
    let storage = SqliteStorage::open(data_dir.join("outpost.sqlite3")).map_err(|e| e.to_string())?;
    let state = AppState::new(Arc::new(storage)).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(addr).map_err(|e| format!("listening on {addr}: {e}"))?;
    println!(
        "outpost-server listening on https://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );

    let handle = Handle::new();
    tokio::spawn({
        let handle = handle.clone();
        async move {
            shutdown_signal().await;
            // Requests in flight get a moment to finish; new connections are refused at once.
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        }
    });
    outpost_server::serve_tls(listener, config, state, handle)
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
