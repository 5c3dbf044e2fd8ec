//! Five devices and the server over a simulated network that drops, cuts, duplicates, delays
//! and reorders the real sync bytes and partitions devices (`outpost_tests::sim`). For 500
//! seeds: once healed, every device holds exactly the server's documents, and every change a
//! device saw acknowledged or saved is on the server. `scripts/sim.sh` runs 10,000 seeds.
#![allow(clippy::unwrap_used)]

use outpost_tests::sim::{self, Config, Faults};

const SEEDS: u64 = 500;

#[test]
fn five_hundred_seeds_converge_and_lose_nothing_acknowledged() {
    let started = std::time::Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let outcomes = sim::run_seeds(0..SEEDS, &Config::test(), threads).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcomes.len() as u64, SEEDS);

    let mut faults = Faults::default();
    for outcome in &outcomes {
        faults.add(&outcome.faults);
    }
    let edits: usize = outcomes.iter().map(|o| o.edits).sum();
    let rounds: usize = outcomes.iter().map(|o| o.rounds).sum();
    let acks: usize = outcomes.iter().map(|o| o.acks_checked).sum();
    let decisions: usize = outcomes.iter().map(|o| o.lead_decisions).sum();
    let submissions: usize = outcomes.iter().map(|o| o.submissions).sum();
    eprintln!(
        "{SEEDS} seeds in {:.1?}: {edits} edits, {rounds} rounds, {submissions} submissions, {decisions} lead decisions, \
         {acks} acknowledged or saved heads checked; faults injected:\n{faults}",
        started.elapsed()
    );
    // Every kind of fault happened, so this cannot pass with the network behaving.
    for (kind, count) in faults.kinds() {
        assert!(count > 0, "no {kind} in {SEEDS} seeds");
    }
    assert!(edits > 10 * SEEDS as usize && decisions > 0, "the runs did too little");
}

#[test]
fn a_seed_runs_the_same_twice() {
    for seed in [7, 4242] {
        let first = sim::run(seed, &Config::test()).unwrap_or_else(|e| panic!("{e}"));
        let second = sim::run(seed, &Config::test()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.digest, second.digest, "seed {seed} ran differently");
        assert_eq!(first.faults, second.faults);
        assert_eq!((first.edits, first.rounds), (second.edits, second.rounds));
        let other = sim::run(seed + 1, &Config::test()).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(first.digest, other.digest, "the digest does not tell seeds apart");
    }
}

/// scripts/sim.sh: `SIM_SEEDS` seeds (from `SIM_FIRST`, default 0), in a release build.
#[test]
#[ignore = "a long run; scripts/sim.sh"]
fn many_seeds_converge_and_lose_nothing_acknowledged() {
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (first, seeds) = (env("SIM_FIRST", 0), env("SIM_SEEDS", 10_000));
    let mut config = Config::test();
    config.steps = env("SIM_STEPS", config.steps as u64) as usize;
    let started = std::time::Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let outcomes = sim::run_seeds(first..first + seeds, &config, threads).unwrap_or_else(|e| panic!("{e}"));
    let mut faults = Faults::default();
    for outcome in &outcomes {
        faults.add(&outcome.faults);
    }
    let sum = |f: fn(&sim::Outcome) -> usize| outcomes.iter().map(f).sum::<usize>();
    println!(
        "{} seeds ({first}..{}), {} steps each, {threads} threads, in {:.1?}: all converged, nothing \
         acknowledged or saved was lost",
        outcomes.len(),
        first + seeds,
        config.steps,
        started.elapsed()
    );
    println!(
        "{} edits, {} sync rounds, {} lead decisions, {} documents at the end, {} acknowledged or saved \
         heads checked on the server; most passes to go quiet after healing: {}",
        sum(|o| o.edits),
        sum(|o| o.rounds),
        sum(|o| o.lead_decisions),
        sum(|o| o.documents),
        sum(|o| o.acks_checked),
        outcomes.iter().map(|o| o.passes_to_quiet).max().unwrap_or(0)
    );
    println!("faults injected:\n{faults}");
    assert_eq!(outcomes.len() as u64, seeds);
    for (kind, count) in faults.kinds() {
        assert!(count > 0, "no {kind}");
    }
}
