//! What the Kotlin and Python tests share: a real server on a loopback port (TLS with a CA made
//! now), a team to enrol into, the compiled library, and bindings generated from it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
pub mod kotlin;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use outpost_tests::team::ServedTeam;

/// A served team (see `ServedTeam`) and its CA written to a file for the test programs.
pub struct Rig {
    pub team: ServedTeam,
    pub ca_path: PathBuf,
}

impl Rig {
    pub fn start() -> Self {
        let team = ServedTeam::start();
        let ca_path = team.world.dir.path().join("test-ca.pem");
        std::fs::write(&ca_path, &team.served.ca_pem).unwrap();
        Self { team, ca_path }
    }

    pub fn scratch(&self) -> &Path {
        self.team.world.dir.path()
    }

    /// What a test program is told: where the server is and how to trust it, two enrolment
    /// codes (for `w1` and `w2`), and a directory for its stores.
    pub fn env(&self, work: &Path) -> Vec<(&'static str, String)> {
        vec![
            ("OUTPOST_HOST", "127.0.0.1".into()),
            ("OUTPOST_PORT", self.team.served.addr.port().to_string()),
            ("OUTPOST_CA", self.ca_path.display().to_string()),
            ("OUTPOST_CODE_1", self.team.code("w1")),
            ("OUTPOST_CODE_2", self.team.code("w2")),
            ("OUTPOST_WORK", work.display().to_string()),
            ("RUST_BACKTRACE", "0".into()),
        ]
    }
}

/// The compiled library the tests load: the `liboutpost.so` that `cargo test` built beside
/// this test in `deps/` (the copy in the profile directory is refreshed only by `cargo build`,
/// so it may be stale; rust-lang/cargo#8311).
pub fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let lib = deps.join("liboutpost.so");
    assert!(lib.is_file(), "the bindings library is not built at {}", lib.display());
    lib
}

/// Generates `language` bindings from the compiled library into `out`.
pub fn generate(language: &str, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--no-format", "--language", language, "--out-dir"])
        .arg(out)
        .arg("--library")
        .arg(library())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "uniffi-bindgen failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// Runs a program to completion, failing the test with its output if it failed.
pub fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    println!("--- {what} stdout\n{stdout}");
    output
}
