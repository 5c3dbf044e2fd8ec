//! The Python bindings against the real library and a real server: `tests/python/test_bindings.py`
//! runs under unittest with bindings generated now, and `bench_ffi.py` runs once as a smoke test.
//! Python 3 with only its standard library is needed (`python3` on the PATH).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::Rig;

/// How many tests `test_bindings.py` holds. unittest counts a skipped test as run and only
/// says so on its last line, so the count and a bare "OK" are both checked.
const PYTHON_TESTS: usize = 26;

/// What the benchmark reports, each a positive number.
const BENCH_KEYS: [&str; 5] = [
    "schema_version_us",
    "enrolment_us",
    "caseload_300_us",
    "people",
    "repeats",
];

#[test]
fn python_bindings_pass_their_unittest_suite() {
    let rig = Rig::start();
    let mut command = python(&rig, "unittest");
    command.args(["-m", "unittest", "-v", "test_bindings"]);
    let output = support::run(&mut command, "python -m unittest test_bindings");
    // unittest reports on stderr.
    let report = String::from_utf8_lossy(&output.stderr);
    eprintln!("{report}");

    let ran = report
        .lines()
        .find_map(|line| {
            line.strip_prefix("Ran ")?
                .split_whitespace()
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no \"Ran N tests\" line in unittest's report:\n{report}"));
    assert_eq!(ran, PYTHON_TESTS, "unittest ran {ran} tests, not {PYTHON_TESTS}");
    let verdict = report.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("");
    assert_eq!(
        verdict.trim(),
        "OK",
        "a test was skipped or expected to fail:\n{report}"
    );
}

#[test]
fn ffi_benchmark_runs_and_reports_each_cost() {
    let rig = Rig::start();
    let mut command = python(&rig, "bench");
    command
        .arg(python_dir().join("bench_ffi.py"))
        .env("OUTPOST_BENCH_QUICK", "1");
    let output = support::run(&mut command, "bench_ffi.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).expect("no JSON line");
    let fields = flat_json_numbers(line);
    for key in BENCH_KEYS {
        let value = fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{key} missing from {line}"));
        assert!(value.is_finite() && value > 0.0, "{key} is {value} in {line}");
    }
}

/// The directory holding the Python test and benchmark.
fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("python")
}

/// The library this cargo invocation built. `cargo test` builds the cdylib into `deps/` but
/// copies it up to `target/debug/` (where `support::library()` looks) only on `cargo build`
/// (rust-lang/cargo#8311), so after an edit the one there can be stale; `deps/` holds the newest.
fn built_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let built = exe.parent().unwrap().join("liboutpost.so");
    if built.is_file() { built } else { support::library() }
}

/// `support::generate`, for the library given.
fn generate(library: &Path, out: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--no-format", "--language", "python", "--out-dir"])
        .arg(out)
        .arg("--library")
        .arg(library)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "uniffi-bindgen failed: {stderr}");
}

/// `python3` with the bindings generated beside a copy of the library (where `outpost.py`
/// looks for it) and the rig's server, codes and a fresh work directory in its environment.
fn python(rig: &Rig, name: &str) -> Command {
    let root = rig.scratch().join(name);
    let bindings = root.join("bindings");
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    // Generated from the copy, so the bindings match the bytes they load even if another
    // build replaces the library meanwhile.
    let library = bindings.join("liboutpost.so");
    std::fs::create_dir_all(&bindings).unwrap();
    std::fs::copy(built_library(), &library).unwrap();
    generate(&library, &bindings);

    let mut command = Command::new("python3");
    command
        .current_dir(&work)
        .env(
            "PYTHONPATH",
            std::env::join_paths([bindings.as_path(), python_dir().as_path()]).unwrap(),
        )
        // Keeps __pycache__ out of the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .envs(rig.env(&work));
    command
}

/// The number-valued members of a flat JSON object, as `bench_ffi.py` prints it; enough to
/// check its keys without a JSON parser in this crate's dependencies.
fn flat_json_numbers(line: &str) -> Vec<(String, f64)> {
    let body = line.trim().trim_start_matches('{').trim_end_matches('}');
    body.split(',')
        .filter_map(|member| {
            let (key, value) = member.split_once(':')?;
            let key = key.trim().trim_matches('"').to_string();
            Some((key, value.trim().parse().ok()?))
        })
        .collect()
}
