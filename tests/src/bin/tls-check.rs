//! Asks a TLS server for `/health` the way a device with no CA of its own would: trusting the
//! platform's certificate store, so on Linux `SSL_CERT_FILE` and `SSL_CERT_DIR` apply. The trust
//! tests run it as a child process, because setting the environment in-process is unsafe.
//!
//! Usage: `tls-check <host> <port> [<pin>]`, where `pin` is the server key's SPKI SHA-256 in
//! hex. Exits 0 when the server is trusted and answers, 1 when the request fails, 2 when the
//! arguments or the trust configuration are unusable; the reason is printed on stderr.

use std::process::ExitCode;

use outpost_core::net::{Client, ClientConfig};

const USAGE: &str = "usage: tls-check <host> <port> [<SPKI SHA-256 pin in hex>]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match config(&args) {
        Ok(config) => config,
        Err(reason) => {
            eprintln!("tls-check: {reason}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut client = match Client::new(config) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("tls-check: {error}");
            return ExitCode::from(2);
        }
    };
    match client.health().await {
        Ok(()) => {
            println!("trusted");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tls-check: {error}");
            ExitCode::FAILURE
        }
    }
}

fn config(args: &[String]) -> Result<ClientConfig, String> {
    let (host, port, pin) = match args {
        [host, port] => (host, port, None),
        [host, port, pin] => (host, port, Some(pin)),
        _ => return Err("expected a host, a port and optionally a pin".into()),
    };
    let port = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;
    let mut config = ClientConfig::new(host.as_str(), port);
    if let Some(pin) = pin {
        config.pins.push(parse_pin(pin)?);
    }
    Ok(config)
}

fn parse_pin(hex: &str) -> Result<[u8; 32], String> {
    let bad = || format!("pin {hex:?} is not 64 hex digits");
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut pin = [0; 32];
    for (byte, pair) in pin.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(pin)
}
