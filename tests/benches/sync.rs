//! Sync benchmarks in process (no sockets): a no-op sync of a device holding the small
//! caseload, and a day's work pushed. Small on purpose, so the smoke run of
//! `cargo test --all-targets` stays quick; the network figures (loopback TLS, the rural link,
//! many devices, the issue-size caseload) come from `sync-bench` (`scripts/bench-sync.sh`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use outpost_core::{PersonId, Store};

#[allow(dead_code)] // shared with the sync-bench binary, which uses all of it
#[path = "../src/bin/sync-bench/setup.rs"]
mod setup;

use setup::{Result, Seeded, write_days_work};

/// A lighter day than sync-bench's (whose 2,400 durable saves take seconds to type): the same
/// eight visits of 300 splices, saved 30 splices at a time.
const SPLICES_PER_SAVE: usize = 30;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    if let Err(e) = benches(&mut c) {
        eprintln!("sync bench failed: {e}");
        std::process::exit(1);
    }
    c.final_summary();
}

fn benches(c: &mut Criterion) -> Result<()> {
    let seeded = Seeded::prepare(false)?;
    let world = seeded.world()?;
    let mut phone = world.enrol(&seeded.worker, "bench-phone");
    let pulled = world.sync(&mut phone)?;
    let people: Vec<PersonId> = phone
        .store()
        .caseload(&seeded.worker)?
        .into_iter()
        .map(|row| row.person)
        .collect();
    if pulled.docs_received == 0 || people.is_empty() {
        return Err("the phone received nothing to work with".into());
    }

    let mut group = c.benchmark_group("sync_in_process");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.bench_function("noop", |b| {
        b.iter(|| {
            let progress = world.sync(&mut phone).expect("no-op sync");
            assert_eq!(progress.docs_pushed + progress.docs_received, 0);
        })
    });
    let mut seed = 0;
    let store = Arc::clone(&phone.shared);
    group.bench_function("days_work_push", |b| {
        b.iter_batched(
            || {
                seed += 1;
                write_day(&seeded, &store, &people, seed)
            },
            |pushed| {
                let progress = world.sync(&mut phone).expect("push");
                assert_eq!(progress.docs_pushed, pushed);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    Ok(())
}

/// Writes a day's work offline; returns how many documents it added.
fn write_day(seeded: &Seeded, store: &Mutex<Store>, people: &[PersonId], seed: u64) -> usize {
    let mut store = store.lock().expect("store lock");
    write_days_work(&mut store, people, &seeded.worker, 8, 300, SPLICES_PER_SAVE, seed)
        .expect("a day's work")
        .docs
        .len()
}
