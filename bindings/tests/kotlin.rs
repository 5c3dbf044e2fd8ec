//! The generated Kotlin bindings on the JVM, against the real library and a real server:
//! `tests/kotlin/*.kt` is compiled against the bindings' jar and run with the rig's environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::time::Instant;

use support::Rig;
use support::kotlin::Kotlin;

#[test]
fn kotlin_bindings_work_against_a_real_server() {
    let kotlin = Kotlin::find();
    let rig = Rig::start();
    let scratch = rig.scratch();

    let generated = scratch.join("generated");
    support::generate("kotlin", &generated);
    let started = Instant::now();
    let bindings = kotlin.bindings_jar(&generated);
    let program = kotlin.cached_jar("bindings-test", &test_sources(), std::slice::from_ref(&bindings));
    println!("bindings and test program ready in {:.1?}", started.elapsed());

    let started = Instant::now();
    let mut java = kotlin.java(&[bindings, program], &support::library(), "outpost.test.BindingsTestKt");
    java.envs(rig.env(&scratch.join("phones")));
    let output = support::run(&mut java, "the Kotlin bindings test");
    println!("ran in {:.1?}", started.elapsed());

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.lines().last() == Some("all checks passed"),
        "the program did not finish its checks:\n{stdout}"
    );
}

/// Every `.kt` file in `tests/kotlin`, in a stable order (it is part of the cache key).
fn test_sources() -> Vec<PathBuf> {
    let dir = support::kotlin::repo_root().join("bindings/tests/kotlin");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "kt"))
        .collect();
    sources.sort();
    sources
}
