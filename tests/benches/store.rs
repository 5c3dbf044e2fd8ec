//! Store benchmarks on a generated caseload.
//!
//! `cargo bench -p outpost-tests --bench store` runs them on the issue-size caseload (300 people,
//! 2,000 visits), generated once and cached under `target/bench-data/`. Run as a test
//! (`cargo test --benches`, no `--bench` argument) they use the small caseload, so a smoke run
//! takes seconds. Benches that write work on a scratch copy, never on the cached store.
//! Figures criterion does not give (p99, sustained rates, bytes on disk) come from `bench-report`.
//!
//! Opening and editing also run on an encrypted copy of the same caseload (`..._encrypted`), in
//! the same run, for the cost of encryption at rest. The copy is encrypted by its first keyed
//! open, as a store written before encryption is on a phone.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use outpost_core::{KEY_LEN, Store, StoreKey};
use outpost_tests::caseload::{Fixture, SEARCH_COMMON, SEARCH_RARE, Scratch, TYPED_SECTION};

fn main() {
    // cargo bench passes --bench; cargo test --benches does not.
    let full = std::env::args().any(|a| a == "--bench");
    let fixture = match Fixture::prepare(full) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("store bench: could not prepare the caseload: {e}");
            std::process::exit(1);
        }
    };
    if fixture.generated {
        eprintln!("generated {}:\n{}", fixture.store.display(), fixture.summary);
    }
    let mut c = Criterion::default().configure_from_args();
    if let Err(e) = reads(&mut c, &fixture).and_then(|()| writes(&mut c, &fixture)) {
        eprintln!("store bench failed: {e}");
        std::process::exit(1);
    }
    c.final_summary();
}

type BenchResult = Result<(), Box<dyn std::error::Error>>;

/// The store's two forms: unencrypted (the name criterion has always reported), and encrypted.
fn variants() -> Result<[(&'static str, Option<StoreKey>); 2], outpost_core::Error> {
    Ok([("", None), ("_encrypted", Some(StoreKey::new(&[0x5a; KEY_LEN])?))])
}

/// A copy of the cached caseload to work on, encrypted under `key` when there is one.
fn scratch(fixture: &Fixture, key: Option<&StoreKey>) -> Result<Scratch, Box<dyn std::error::Error>> {
    let scratch = Scratch::copy(&fixture.store, &fixture.dir)?;
    if key.is_some() {
        drop(Store::open_with_key(scratch.path(), fixture.worker.clone(), key)?);
    }
    Ok(scratch)
}

/// (a) open + caseload, (b) one person's visits, (c) full-text search.
fn reads(c: &mut Criterion, fixture: &Fixture) -> BenchResult {
    let worker = fixture.worker.clone();
    let mut group = c.benchmark_group("read");
    for (suffix, key) in variants()? {
        let scratch = scratch(fixture, key.as_ref())?;
        group.bench_function(format!("open_and_caseload{suffix}"), |b| {
            b.iter(|| {
                let store = Store::open_with_key(scratch.path(), worker.clone(), key.as_ref()).expect("open the store");
                store.caseload(&worker.worker).expect("caseload")
            })
        });
    }
    let scratch = Scratch::copy(&fixture.store, &fixture.dir)?;
    let store = Store::open(scratch.path(), worker.clone())?;
    group.bench_function("visits_for_person", |b| {
        b.iter(|| store.visits_for_person(&fixture.person).expect("visits"))
    });
    for query in [SEARCH_RARE, SEARCH_COMMON] {
        group.bench_with_input(BenchmarkId::new("search", query), query, |b, query| {
            b.iter(|| store.search(query, 50).expect("search"))
        });
    }
    group.finish();
    Ok(())
}

/// (d) one durable one-character edit, (e) N keystrokes per durable edit; each unencrypted and
/// encrypted, and unencrypted without `secure_delete`.
fn writes(c: &mut Criterion, fixture: &Fixture) -> BenchResult {
    for (suffix, key) in variants()? {
        edits(c, fixture, suffix, key.as_ref(), true)?;
    }
    // What zeroing deleted content (so removed text leaves no trace) costs, in the same run.
    edits(c, fixture, "_secure_delete_off", None, false)?;
    Ok(())
}

fn edits(
    c: &mut Criterion,
    fixture: &Fixture,
    suffix: &str,
    key: Option<&StoreKey>,
    secure_delete: bool,
) -> BenchResult {
    let scratch = scratch(fixture, key)?;
    let mut store = Store::open_with_key(scratch.path(), fixture.worker.clone(), key)?;
    store.set_secure_delete(secure_delete)?;
    let visit = fixture.visit.clone();
    // Keystrokes go at the end of the section; a one-character typist alternates with backspace
    // so the note stays its generated size however many iterations criterion runs.
    let base = store.visit(&visit)?.section(TYPED_SECTION).chars().count();
    let mut len = base;

    let mut group = c.benchmark_group("durable_edit");
    group.sample_size(50).measurement_time(Duration::from_secs(10));
    group.bench_function(format!("one_keystroke{suffix}"), |b| {
        b.iter(|| {
            let typing = len <= base;
            store
                .edit_visit(&visit, |v| {
                    if typing {
                        v.splice(TYPED_SECTION, len, 0, "x")
                    } else {
                        v.splice(TYPED_SECTION, len - 1, 1, "")
                    }
                })
                .expect("durable edit");
            len = if typing { len + 1 } else { len - 1 };
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("grouped_keystrokes{suffix}"));
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    for n in [1usize, 10, 50] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                // N keystrokes typed, then N backspaces, each call one durable change.
                let typing = len <= base;
                store
                    .edit_visit(&visit, |v| {
                        for i in 0..n {
                            if typing {
                                v.splice(TYPED_SECTION, len + i, 0, "e")?;
                            } else {
                                v.splice(TYPED_SECTION, len - 1 - i, 1, "")?;
                            }
                        }
                        Ok(())
                    })
                    .expect("grouped edit");
                len = if typing { len + n } else { len - n };
            })
        });
    }
    group.finish();
    Ok(())
}
