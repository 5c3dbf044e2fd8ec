//! The server over real TLS on a loopback port, with certificates made at test time: a client
//! trusting the development CA gets an answer; one that does not is refused at the handshake.

use std::net::TcpListener;
use std::sync::Arc;

use axum_server::Handle;
use outpost_server::tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn client(roots: RootCertStore) -> TlsConnector {
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn get_health(connector: &TlsConnector, addr: std::net::SocketAddr) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn health_over_tls_is_served_only_to_clients_that_trust_the_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = tls::dev_certificate(dir.path()).expect("development certificate");
    let config = tls::server_config(&dev.cert, &dev.key).expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = Handle::new();
    let storage = std::sync::Arc::new(
        outpost_server::storage::sqlite::SqliteStorage::open(dir.path().join("server.sqlite3")).expect("storage"),
    );
    let state = outpost_server::AppState::new(storage).expect("state");
    let server = tokio::spawn(outpost_server::serve_tls(listener, config, state, handle.clone()));

    let mut trusted = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&dev.ca).expect("ca.pem") {
        trusted.add(cert.expect("ca cert")).expect("add ca");
    }
    let response = get_health(&client(trusted), addr).await.expect("trusted client");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");

    // A client that trusts another authority (here: a second development CA) is refused.
    let other = tls::dev_certificate(&dir.path().join("other")).expect("other certificate");
    let mut untrusted = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&other.ca).expect("other ca.pem") {
        untrusted.add(cert.expect("other ca cert")).expect("add other ca");
    }
    let refused = get_health(&client(untrusted), addr).await;
    let error = refused.expect_err("a client that does not trust the server must be refused");
    assert!(error.to_string().contains("certificate"), "{error}");

    // The certificate is made once and reused: a restart keeps the CA devices already trust.
    let again = tls::dev_certificate(dir.path()).expect("reuse");
    assert_eq!(
        std::fs::read(&again.ca).expect("ca"),
        std::fs::read(&dev.ca).expect("ca")
    );

    handle.graceful_shutdown(None);
    server.await.expect("join").expect("server ended cleanly");
}

#[test]
fn a_missing_or_unreadable_certificate_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").expect("write");
    let error = tls::server_config(&cert, &dir.path().join("missing-key.pem")).expect_err("refused");
    assert!(error.to_string().contains("cert.pem"), "{error}");
}
