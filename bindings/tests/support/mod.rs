//! What the Kotlin and Python tests share: a real server on a loopback port (TLS with a CA made
//! now), a team to enrol into, the compiled library, and bindings generated from it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
pub mod kotlin;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use outpost_server::auth;
use outpost_server::storage::{Accounts, Role, ScopePolicy};
use outpost_tests::world::{Served, World};

/// A served world with team `t1` (every worker holds the team's caseload): workers `w1`, `w2`
/// and lead `lead1`.
pub struct Rig {
    pub world: World,
    pub served: Served,
    pub runtime: tokio::runtime::Runtime,
    pub ca_path: PathBuf,
}

impl Rig {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let world = World::new();
        let team = world.team("t1", ScopePolicy::Team);
        world.worker("w1", &team, Role::Worker);
        world.worker("w2", &team, Role::Worker);
        world.worker("lead1", &team, Role::Lead);
        let served = runtime.block_on(async { world.serve() });
        let ca_path = world.dir.path().join("test-ca.pem");
        std::fs::write(&ca_path, &served.ca_pem).unwrap();
        Self {
            world,
            served,
            runtime,
            ca_path,
        }
    }

    /// A one-time enrolment code for `worker`, as the admin CLI hands out.
    pub fn code(&self, worker: &str) -> String {
        let code = auth::new_enrolment_code();
        let worker = outpost_core::WorkerId::new(worker).unwrap();
        self.world
            .storage
            .add_enrolment_code(&worker, &auth::hash_enrolment_code(&code), i64::MAX)
            .unwrap();
        code
    }

    /// What a test program is told: where the server is and how to trust it, two enrolment
    /// codes (for `w1` and `w2`), and a directory for its stores.
    pub fn env(&self, work: &Path) -> Vec<(&'static str, String)> {
        vec![
            ("OUTPOST_HOST", "127.0.0.1".into()),
            ("OUTPOST_PORT", self.served.addr.port().to_string()),
            ("OUTPOST_CA", self.ca_path.display().to_string()),
            ("OUTPOST_CODE_1", self.code("w1")),
            ("OUTPOST_CODE_2", self.code("w2")),
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
