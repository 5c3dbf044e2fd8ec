//! The device's TLS trust against the real server on a loopback port: with no CA of its own a
//! client trusts the platform's certificate store (on Linux, `SSL_CERT_FILE` when set), and SPKI
//! pins narrow whichever trust applies. The platform cases run `tls-check` as a child process,
//! since the environment it reads cannot be set in-process without `unsafe`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use outpost_core::Error;
use outpost_core::net::{Client, ClientConfig, spki_sha256};
use outpost_tests::world::{Served, World};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The name the client uses; the development certificate names it.
const HOST: &str = "127.0.0.1";

/// What rustls says when no trusted root signed the chain.
const UNTRUSTED: &str = "UnknownIssuer";
/// What the pinning verifier says.
const NOT_PINNED: &str = "did not match the pinned key";

/// A served world, with its CA written to a file a child can be pointed at.
struct Fixture {
    world: World,
    served: Served,
    ca_file: PathBuf,
}

fn fixture() -> Fixture {
    let world = World::new();
    let served = world.serve();
    let ca_file = world.dir.path().join("trusted-ca.pem");
    std::fs::write(&ca_file, &served.ca_pem).unwrap();
    Fixture { world, served, ca_file }
}

impl Fixture {
    /// The pin of the key the server presents.
    fn server_pin(&self) -> [u8; 32] {
        // Returns the certificate `serve` made, without making another.
        let dev = outpost_server::tls::dev_certificate(&self.world.dir.path().join("tls")).unwrap();
        let leaf = CertificateDer::pem_file_iter(&dev.cert)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        spki_sha256(&leaf).unwrap()
    }

    /// A client trusting `ca_pem` (not the platform) with these pins.
    fn client(&self, ca_pem: &[u8], pins: Vec<[u8; 32]>) -> Client {
        Client::new(ClientConfig {
            ca_pem: Some(ca_pem.to_vec()),
            pins,
            ..ClientConfig::new(HOST, self.served.addr.port())
        })
        .unwrap()
    }

    /// Runs `tls-check` against the server with `SSL_CERT_FILE` set to `cert_file`, or unset.
    async fn check(&self, cert_file: Option<&Path>, pin: Option<[u8; 32]>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tls-check"));
        command.arg(HOST).arg(self.served.addr.port().to_string());
        if let Some(pin) = pin {
            command.arg(hex(&pin));
        }
        // SSL_CERT_DIR, when set, would replace the system store too: only SSL_CERT_FILE varies.
        command.env_remove("SSL_CERT_DIR");
        match cert_file {
            Some(file) => command.env("SSL_CERT_FILE", file),
            None => command.env_remove("SSL_CERT_FILE"),
        };
        // The server runs on this test's runtime: wait for the child off it.
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A CA that signed nothing the server presents, under a name of its own (another development
/// CA shares the issuer's name, and rustls then reports a bad signature instead).
fn stranger_ca(dir: &Path) -> PathBuf {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "Stranger CA");
    let ca = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
    let path = dir.join("stranger-ca.pem");
    std::fs::write(&path, ca.pem()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_trust_accepts_a_server_signed_by_the_ca_in_ssl_cert_file() {
    let f = fixture();
    let output = f.check(Some(&f.ca_file), None).await;
    assert!(output.status.success(), "{:?}: {}", output.status, stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_trust_refuses_a_server_whose_ca_is_not_in_ssl_cert_file() {
    let f = fixture();
    let output = f.check(Some(&stranger_ca(f.world.dir.path())), None).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let reason = stderr(&output);
    assert!(reason.contains("certificate") && reason.contains(UNTRUSTED), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_trust_without_ssl_cert_file_does_not_trust_a_private_ca() {
    let f = fixture();
    let output = f.check(None, None).await;
    let reason = stderr(&output);
    match output.status.code() {
        // The system store was read, and the test CA is not in it.
        Some(1) => assert!(reason.contains("certificate") && reason.contains(UNTRUSTED), "{reason}"),
        // A machine with no system store at all: nothing is trusted, and it says why.
        Some(2) => assert!(reason.contains("platform certificate store"), "{reason}"),
        other => panic!("exit {other:?}: a server signed by a private CA was trusted: {reason}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_trust_with_pins_checks_the_key_after_the_chain() {
    let f = fixture();
    let pin = f.server_pin();

    let right = f.check(Some(&f.ca_file), Some(pin)).await;
    assert!(right.status.success(), "{:?}: {}", right.status, stderr(&right));

    let wrong = f.check(Some(&f.ca_file), Some([0xab; 32])).await;
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains(NOT_PINNED), "{}", stderr(&wrong));

    let untrusted = f.check(Some(&stranger_ca(f.world.dir.path())), Some(pin)).await;
    assert_eq!(untrusted.status.code(), Some(1), "{}", stderr(&untrusted));
    assert!(stderr(&untrusted).contains(UNTRUSTED), "{}", stderr(&untrusted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_pin_is_accepted() {
    let f = fixture();
    let mut client = f.client(&f.served.ca_pem, vec![[0xab; 32], f.server_pin()]);
    client.health().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_refused_saying_so() {
    let f = fixture();
    let mut client = f.client(&f.served.ca_pem, vec![[0xab; 32]]);
    match client.health().await {
        Err(Error::Network(reason)) => assert!(reason.contains(NOT_PINNED), "{reason}"),
        other => panic!("a server with an unpinned key was trusted: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_key_is_refused_when_its_certificate_is_not_trusted() {
    let f = fixture();
    let stranger = std::fs::read(stranger_ca(f.world.dir.path())).unwrap();
    let mut client = f.client(&stranger, vec![f.server_pin()]);
    match client.health().await {
        Err(Error::Network(reason)) => {
            assert!(reason.contains(UNTRUSTED), "{reason}");
            assert!(!reason.contains(NOT_PINNED), "{reason}");
        }
        other => panic!("a pinned key vouched for by no trusted CA was accepted: {other:?}"),
    }
}

#[test]
fn a_pin_is_computed_from_the_certificate_not_its_pem() {
    let dir = tempfile::tempdir().unwrap();
    let dev = outpost_server::tls::dev_certificate(dir.path()).unwrap();
    let pem = std::fs::read(&dev.cert).unwrap();
    match spki_sha256(&pem) {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "certificate"),
        other => panic!("PEM text was read as a DER certificate: {other:?}"),
    }
}
