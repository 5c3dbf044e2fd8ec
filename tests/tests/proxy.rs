//! The fault-injecting proxy, proven against the real TLS server: a connection cut at any byte
//! in either direction fails the request, nothing else does, and delays and stalls only slow it.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_server::Handle;
use outpost_server::tls;
use outpost_tests::proxy::{Fault, FaultProxy};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Server {
    addr: SocketAddr,
    connector: TlsConnector,
    handle: Handle<SocketAddr>,
    _dir: tempfile::TempDir,
}

/// A CA and an Ed25519 server certificate signed by it. Ed25519 signatures are always 64 bytes,
/// so every handshake sends the same number of bytes (an ECDSA signature varies by a byte or
/// two), and a cut point measured on one connection means the same on the next.
fn fixed_size_certificate(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ca key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let cert = params.signed_by(&key, &issuer).expect("cert");
    let paths = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&paths.0, ca_cert.pem()).expect("write ca");
    std::fs::write(&paths.1, cert.pem()).expect("write cert");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write key");
    paths
}

async fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = fixed_size_certificate(dir.path());
    let config = tls::server_config(&cert, &key).expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = Handle::new();
    let storage = std::sync::Arc::new(
        outpost_server::storage::sqlite::SqliteStorage::open(dir.path().join("server.sqlite3")).expect("storage"),
    );
    let state = outpost_server::AppState::new(storage).expect("state");
    tokio::spawn(outpost_server::serve_tls(listener, config, state, handle.clone()));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).expect("ca.pem") {
        roots.add(cert.expect("ca")).expect("add ca");
    }
    let mut client = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every connection a full handshake, so each one sends the same bytes and a cut point
    // measured on one applies to the next.
    client.resumption = rustls::client::Resumption::disabled();
    Server {
        addr,
        connector: TlsConnector::from(Arc::new(client)),
        handle,
        _dir: dir,
    }
}

/// One health request through `addr`; Ok only for a whole, well-closed 200 response.
async fn health(connector: &TlsConnector, addr: SocketAddr) -> Result<(), String> {
    let attempt = async {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await?;
        tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        tls.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Err(_) => Err("timed out".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(response))
            if response.starts_with("HTTP/1.1 200")
                && response.ends_with("\"status\":\"ok\",\"version\":\"0.1.0\"}") =>
        {
            Ok(())
        }
        Ok(Ok(response)) => Err(format!("unexpected response: {response}")),
    }
}

#[tokio::test]
async fn a_cut_at_any_byte_fails_the_request_and_nothing_else_does() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr).await.expect("proxy");

    health(&server.connector, proxy.addr())
        .await
        .expect("through a clean proxy");
    let (up, down) = proxy.bytes();
    assert!(
        up > 300 && down > 500,
        "a TLS exchange went through: {up} up, {down} down"
    );

    // Every cut point in each direction, and the first point past the end.
    for n in 0..=up {
        proxy.set_fault(Fault::cut_upstream_after(n));
        let result = health(&server.connector, proxy.addr()).await;
        assert!(
            result.is_err(),
            "cut after {n} of {up} upstream bytes, yet the request succeeded"
        );
    }
    proxy.set_fault(Fault::cut_upstream_after(up + 1));
    health(&server.connector, proxy.addr())
        .await
        .expect("a cut past the end changes nothing");
    for n in 0..down {
        proxy.set_fault(Fault::cut_downstream_after(n));
        let result = health(&server.connector, proxy.addr()).await;
        assert!(
            result.is_err(),
            "cut after {n} of {down} downstream bytes, yet the request succeeded"
        );
    }
    proxy.set_fault(Fault::cut_downstream_after(down));
    health(&server.connector, proxy.addr())
        .await
        .expect("every byte forwarded");
    server.handle.graceful_shutdown(None);
}

#[tokio::test]
async fn delays_and_stalls_slow_a_request_without_breaking_it() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr).await.expect("proxy");

    proxy.set_fault(Fault {
        delay: Duration::from_millis(20),
        ..Fault::none()
    });
    let started = Instant::now();
    health(&server.connector, proxy.addr()).await.expect("delayed");
    // At least the client's hello, the server's reply and the response each waited.
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "{:?}",
        started.elapsed()
    );

    proxy.set_fault(Fault {
        stall: Some((100, Duration::from_millis(300))),
        ..Fault::none()
    });
    let started = Instant::now();
    health(&server.connector, proxy.addr()).await.expect("stalled");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(proxy.connections(), 2);
    server.handle.graceful_shutdown(None);
}
