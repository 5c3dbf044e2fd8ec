//! The mobile demo, end to end: `scripts/demo.sh` compiles the Kotlin app over bindings generated
//! from the library this run built, starts the real server and plays a day on the phone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Instant;

#[test]
fn the_mobile_demo_plays_a_day_against_the_real_server() {
    let root = support::kotlin::repo_root();
    let started = Instant::now();
    let mut demo = Command::new(root.join("scripts/demo.sh"));
    // The library and server this test run built (the whole workspace is built before tests
    // run), so the script does not build again with other features.
    let target = support::kotlin::target_dir();
    let server = target.join("debug").join("outpost-server");
    assert!(server.is_file(), "build the server first: no {}", server.display());
    demo.env("CARGO_TARGET_DIR", &target)
        .env("OUTPOST_DEMO_LIBRARY", support::library())
        .env("OUTPOST_DEMO_SERVER", server);
    let output = support::run(&mut demo, "scripts/demo.sh");
    println!("the demo took {:.1?}", started.elapsed());
    let stdout = String::from_utf8_lossy(&output.stdout);

    for expected in [
        // The lead's decision, taken on the server, reaches the phone as a returned visit.
        "is now returned",
        "Review          returned",
        "Returned by lead1: Please record what Rosa said about the stairs at night.",
        "[returned]",
        // Work recorded offline was waiting, and is all sent by the end of the day.
        "Waiting to send 7 records",
        "demo finished",
    ] {
        assert!(
            stdout.contains(expected),
            "the demo did not show {expected:?}:\n{stdout}"
        );
    }
    let last_sync = stdout.rsplit("Sync · end of the day").next().unwrap();
    assert!(
        last_sync.contains("Waiting to send 0 records"),
        "records were still pending at the end of the day:\n{last_sync}"
    );
}
