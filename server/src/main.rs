//! Reads configuration and serves `outpost_server::app` until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::var("OUTPOST_ADDR") {
        Ok(value) => value.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("OUTPOST_ADDR {value:?}: {e}"))
        })?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("outpost-server listening on http://{}", listener.local_addr()?);
    axum::serve(listener, outpost_server::app())
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
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
