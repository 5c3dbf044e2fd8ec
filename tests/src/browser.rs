//! Browser tests from Rust: runs a script from `tests/browser/` (Node, Playwright and Debian's
//! Chromium; see `tests/browser/harness.mjs`) and hands back the JSON line it ends with.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's `chromium`; Playwright drives it instead of downloading a browser of its own.
const CHROMIUM: &str = "/usr/bin/chromium";
/// A script that has not finished by then is stuck (each Playwright action gives up after 15 s).
const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `node tests/browser/<script>` from the repository root with `input` as its JSON input
/// and returns the last JSON line it printed (`{"ok":true,"results":{...}}`). Screenshots go to
/// `<target>/browser-screenshots`. Fails the test, with the script's error, step and stderr, when
/// the script reports `ok: false`, exits non-zero or runs past two minutes; and with how to
/// install them when Node, the npm tools or Chromium are missing.
pub fn run(script: &str, input: &serde_json::Value) -> serde_json::Value {
    let root = repo_root();
    check_tools(&root);
    let path = root.join("tests/browser").join(script);
    assert!(path.is_file(), "no browser script at {}", path.display());
    let screenshots = target_dir().join("browser-screenshots");

    let mut command = Command::new("node");
    command
        .arg(&path)
        .current_dir(&root)
        .env("OUTPOST_BROWSER_INPUT", input.to_string())
        .env("OUTPOST_SCREENSHOTS", &screenshots)
        .env("OUTPOST_CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let finished = run_with_timeout(command, script);

    let stdout = String::from_utf8_lossy(&finished.stdout);
    let stderr = String::from_utf8_lossy(&finished.stderr);
    if finished.timed_out {
        panic!("{script} ran past {TIMEOUT:?} and was killed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    }
    let Some(report) = last_json_line(&stdout) else {
        panic!(
            "{script} printed no JSON report ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            finished.status
        );
    };
    let ok = report["ok"].as_bool() == Some(true);
    if !ok || !finished.success {
        let step = report["step"].as_str().unwrap_or("(none)");
        let error = report["error"].as_str().unwrap_or("(no error reported)");
        let shot = report["screenshot"]
            .as_str()
            .map(|s| format!("\nscreenshot: {s}"))
            .unwrap_or_default();
        panic!(
            "{script} failed ({}) in step {step:?}: {error}{shot}\n--- stderr\n{stderr}",
            finished.status
        );
    }
    report
}

/// Fails the test, naming what is missing and how to get it, unless Node, the npm tools in
/// `scripts/tools` and Chromium are all installed.
fn check_tools(root: &Path) {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        node.is_ok_and(|s| s.success()),
        "node is not on PATH: install Node.js 20 or later (Debian's nodejs and npm)"
    );
    for package in ["playwright-core", "axe-core"] {
        let dir = root.join("scripts/tools/node_modules").join(package);
        assert!(
            dir.join("package.json").is_file(),
            "{package} is not installed at {}: run `npm ci --prefix scripts/tools` \
             (scripts/test.sh does it)",
            dir.display()
        );
    }
    assert!(
        Path::new(CHROMIUM).is_file(),
        "Chromium is missing at {CHROMIUM}: install Debian's chromium \
         (`apt-get install --no-install-recommends chromium`; scripts/test.sh does it)"
    );
}

struct Finished {
    status: String,
    success: bool,
    timed_out: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `command` in a process group of its own, killing the whole group (Node and the
/// Chromium it started) if it outlives `TIMEOUT`.
fn run_with_timeout(mut command: Command, what: &str) -> Finished {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    // Read both pipes while waiting, so a chatty script cannot fill one and stall.
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + TIMEOUT;
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status, false),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                kill_group(&child);
                let status = child.wait().expect("waiting for the killed script");
                break (status, true);
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    Finished {
        status: status.to_string(),
        success: status.success(),
        timed_out,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error just ends the capture; the exit status tells what happened.
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// SIGKILL to the child's process group (its id, as `process_group(0)` made it).
fn kill_group(child: &Child) {
    let group = format!("-{}", child.id());
    // `--` so the negative id reads as a process group, not an option.
    let killed = Command::new("kill").args(["-KILL", "--", &group]).status();
    if !killed.is_ok_and(|s| s.success()) {
        eprintln!("could not kill process group {group}");
    }
}

/// The last line of `stdout` that is a JSON object with an `ok` field.
fn last_json_line(stdout: &str) -> Option<serde_json::Value> {
    stdout.lines().rev().find_map(|line| {
        serde_json::from_str::<serde_json::Value>(line.trim())
            .ok()
            .filter(|v| v.get("ok").is_some())
    })
}

/// The workspace's root directory.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo target directory this test was built in: the test binary sits in
/// `<target>/<profile>/deps/`, wherever CARGO_TARGET_DIR put `<target>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary is in <target>/<profile>/deps")
        .to_path_buf()
}
