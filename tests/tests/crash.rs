//! Crash safety: a child process writing a burst of durable edits is SIGKILLed at random points,
//! again and again on one store file, so each run starts from whatever the last kill left. After
//! every kill the store must open and hold every write the API had reported saved, with nothing
//! torn (see `ledger` for exactly what is checked).
//!
//! What this proves, and what it does not. SIGKILL ends the process, not the machine: whatever
//! SQLite had handed to the kernel survives in the page cache. So this test shows that a write is
//! committed before the API reports it saved (not left in a buffer of ours), that a commit cut
//! short at any point leaves a store that opens and is consistent (WAL recovery; the index written
//! in the same transaction as the document; compaction atomic), and that nothing half-written
//! appears. It cannot show that the bytes reached the disk: a power cut (a phone's battery dying)
//! is covered by `synchronous = FULL`, which fsyncs the WAL at every commit and which
//! `store_syncs_every_commit_in_wal_mode` asserts, together with SQLite's own power-loss testing.
//!
//! `CRASH_ITERATIONS` (default 100) sets the number of kills; `CRASH_SEED` replays a schedule
//! (kill modes and targets; the exact instant still depends on timing). `scripts/crash-loop.sh`
//! runs 1,000 kills in release mode.

#[path = "crash/ledger.rs"]
mod ledger;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use outpost_core::{Author, DeviceId, NewPerson, RiskTier, Store, StoreKey, TeamId, WorkerId};

/// The key the writer encrypts its store with, as a phone's store is (`crash-writer` holds the same).
const CRASH_KEY: [u8; 32] = [0x43; 32];
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use ledger::{Kind, Ledger, Write};

/// The worker the child writes as; the checker opens the store as someone else.
const WORKER: &str = "crash-worker";
/// A child that reports nothing for this long is stuck, not slow.
const STALL: Duration = Duration::from_secs(60);
/// Every this many kills (and after the last), every document is re-read and the index is
/// compared with one rebuilt from the documents; in between only what the run touched is read.
const FULL_CHECK_EVERY: u64 = 25;
/// The core compacts a document after this many changes written by one process.
const COMPACT_AFTER: usize = 256;
const SIGKILL: i32 = 9;

/// When to kill the child.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after spawning: while the store opens, or before or during the first write.
    Startup(Duration),
    /// Once this many writes were reported, a moment later: somewhere in the next write.
    AfterWrites { writes: usize, jitter: Duration },
    /// Once one visit had `COMPACT_AFTER - 1` edits in this run: during the next edit, which is
    /// saved and then compacts the visit before it returns.
    Compaction { jitter: Duration },
}

/// Timings seen so far, so the kill points fit the build (debug or release) and the disk.
#[derive(Debug)]
struct Pace {
    first_report: Duration,
    per_write: Duration,
}

impl Pace {
    fn observe(&mut self, run: &ChildRun) {
        let ema = |old: Duration, new: Duration| (old * 3 + new) / 4;
        if let Some(first) = run.first_report {
            self.first_report = ema(self.first_report, first);
        }
        if let (Some(span), n @ 2..) = (run.report_span, run.writes.len()) {
            self.per_write = ema(self.per_write, span / (n as u32 - 1));
        }
    }
}

/// Kill modes in a fixed cycle (so short runs still see each), with random targets. Most kills
/// land early in a burst because that is cheap; a few run on past compaction.
fn schedule(iteration: u64, rng: &mut StdRng, pace: &Pace) -> Kill {
    let jitter = |rng: &mut StdRng, scale: u32| {
        let max = pace.per_write * scale;
        Duration::from_micros(rng.random_range(0..=max.as_micros() as u64))
    };
    match iteration % 20 {
        0 | 5 | 10 | 15 => {
            let max = pace.first_report.mul_f64(1.2).as_micros() as u64;
            Kill::Startup(Duration::from_micros(rng.random_range(0..=max)))
        }
        7 => Kill::Compaction { jitter: jitter(rng, 4) },
        13 => Kill::AfterWrites {
            writes: rng.random_range(COMPACT_AFTER + 20..=COMPACT_AFTER + 100),
            jitter: jitter(rng, 1),
        },
        _ => Kill::AfterWrites {
            writes: rng.random_range(1..=64),
            jitter: jitter(rng, 1),
        },
    }
}

/// What one child did before it died, as far as its reports say.
#[derive(Debug)]
struct ChildRun {
    writes: Vec<Write>,
    status: ExitStatus,
    first_report: Option<Duration>,
    /// From the first report to the last.
    report_span: Option<Duration>,
}

impl ChildRun {
    /// The most edits any one visit received in this run.
    fn most_visit_edits(&self) -> usize {
        let mut counts = HashMap::new();
        for w in self
            .writes
            .iter()
            .filter(|w| matches!(w.kind, Kind::Text | Kind::Action))
        {
            *counts.entry(&w.doc).or_insert(0) += 1;
        }
        counts.into_values().max().unwrap_or(0)
    }
}

/// Runs one child on the store and kills it as `kill` says.
fn run_child(path: &Path, run: u64, kill: Kill) -> Result<ChildRun, String> {
    let spawned = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .arg(path)
        .arg(WORKER)
        .arg(run.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crash-writer");
    let stdout = child.stdout.take().expect("child stdout");
    let mut stderr = child.stderr.take().expect("child stderr");
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        // A line without its newline was cut by the kill mid-report: it is not a report. (The
        // child writes each line in one write to a pipe, so this should never happen.)
        while stdout.read_line(&mut line).is_ok_and(|n| n > 0) && line.ends_with('\n') {
            if tx.send((Instant::now(), line.trim_end().to_owned())).is_err() {
                break;
            }
            line.clear();
        }
    });
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut lines = Vec::new();
    let stalled = match kill {
        Kill::Startup(delay) => {
            thread::sleep(delay);
            false
        }
        Kill::AfterWrites { writes, jitter } => {
            let stalled = wait_for(&rx, &mut lines, |lines| lines.len() >= writes);
            thread::sleep(jitter);
            stalled
        }
        Kill::Compaction { jitter } => {
            let mut edits = HashMap::new();
            let stalled = wait_for(&rx, &mut lines, |lines| {
                // A line that does not parse fails the run below, once the child is dead.
                let Some(write) = lines.last().and_then(|(_, line)| Write::parse(run, line).ok()) else {
                    return false;
                };
                if !matches!(write.kind, Kind::Text | Kind::Action) {
                    return false;
                }
                let count = edits.entry(write.doc).or_insert(0);
                *count += 1;
                *count >= COMPACT_AFTER - 1
            });
            thread::sleep(jitter);
            stalled
        }
    };
    // Child::kill sends SIGKILL on Unix. It fails only if the child was already reaped.
    let _ = child.kill();
    let status = child.wait().map_err(|e| format!("wait for crash-writer: {e}"))?;
    reader.join().map_err(|_| "the stdout reader panicked")?;
    lines.extend(rx.iter());
    let stderr = errors.join().map_err(|_| "the stderr reader panicked")?;
    if stalled {
        return Err(format!(
            "crash-writer run {run} reported nothing for {STALL:?}: {stderr}"
        ));
    }
    if !(status.success() || status.signal() == Some(SIGKILL)) {
        return Err(format!("crash-writer run {run} failed by itself ({status}): {stderr}"));
    }

    let writes = lines
        .iter()
        .map(|(_, line)| Write::parse(run, line))
        .collect::<Result<_, _>>()?;
    Ok(ChildRun {
        writes,
        status,
        first_report: lines.first().map(|(at, _)| *at - spawned),
        report_span: lines.first().zip(lines.last()).map(|((a, _), (b, _))| *b - *a),
    })
}

/// A line the child printed, and when it arrived.
type Report = (Instant, String);

/// Collects reports until `done` says so or the child's stdout closes (it died or finished).
/// Returns true if the child stalled instead.
fn wait_for(rx: &Receiver<Report>, lines: &mut Vec<Report>, mut done: impl FnMut(&[Report]) -> bool) -> bool {
    while !done(lines) {
        match rx.recv_timeout(STALL) {
            Ok(line) => lines.push(line),
            Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => return true,
        }
    }
    false
}

/// Where the kills landed, so a reader of the output can see the test exercised each phase.
#[derive(Debug, Default)]
struct Coverage {
    before_first_report: usize,
    mid_burst: usize,
    /// 255 edits to one visit reported, the 256th (which compacts) not.
    in_compaction_edit: usize,
    past_compaction: usize,
    /// The store held one write more than was reported: the kill fell between save and report.
    saved_unreported: usize,
    finished_unkilled: usize,
}

impl Coverage {
    fn count(&mut self, run: &ChildRun, unreported: bool) {
        let edits = run.most_visit_edits();
        let phase = if run.writes.is_empty() {
            &mut self.before_first_report
        } else if edits >= COMPACT_AFTER {
            &mut self.past_compaction
        } else if edits == COMPACT_AFTER - 1 {
            &mut self.in_compaction_edit
        } else {
            &mut self.mid_burst
        };
        *phase += 1;
        self.saved_unreported += usize::from(unreported);
        self.finished_unkilled += usize::from(run.status.success());
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")),
    )
}

fn checker() -> Author {
    Author::new(
        WorkerId::new("crash-checker").expect("worker id"),
        DeviceId::new("test-host").expect("device id"),
    )
}

#[test]
fn every_reported_save_survives_sigkill() {
    let iterations = env_u64("CRASH_ITERATIONS").unwrap_or(100);
    let seed = env_u64("CRASH_SEED").unwrap_or_else(|| rand::rng().random());
    println!("crash test: {iterations} kills, seed {seed} (replay the schedule with CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::Builder::new()
        .prefix("outpost-crash-")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join("outpost.db");
    let mut pace = Pace {
        first_report: Duration::from_millis(60),
        per_write: Duration::from_millis(5),
    };
    let mut ledger = Ledger::new(WORKER);
    let mut coverage = Coverage::default();
    let started = Instant::now();

    for iteration in 0..iterations {
        // Runs are numbered from 1 so that every run's tokens differ from every other's.
        let run_id = iteration + 1;
        let kill = schedule(iteration, &mut rng, &pace);
        let full = (iteration + 1) % FULL_CHECK_EVERY == 0 || iteration + 1 == iterations;
        let checked = run_child(&path, run_id, kill).and_then(|run| {
            pace.observe(&run);
            let key = StoreKey::new(&CRASH_KEY).map_err(|e| e.to_string())?;
            let mut store = Store::open_with_key(&path, checker(), Some(&key))
                .map_err(|e| format!("the store does not open: {e}"))?;
            let unreported = ledger
                .check(&mut store, run_id, &run.writes, full)
                .map_err(|e| format!("{} writes reported: {e}", run.writes.len()))?;
            coverage.count(&run, unreported);
            Ok(())
        });
        if let Err(e) = checked {
            let kept = dir.keep();
            panic!(
                "kill {iteration} (seed {seed}, {kill:?}): {e}\nstore kept in {}",
                kept.display()
            );
        }
    }
    println!(
        "crash test: {iterations} kills in {:.1?}; {}; {coverage:?}",
        started.elapsed(),
        ledger.summary()
    );
    if iterations >= 20 {
        assert!(
            coverage.before_first_report > 0,
            "no kill landed before the first write: {coverage:?}"
        );
        assert!(coverage.mid_burst > 0, "no kill landed mid-burst: {coverage:?}");
        assert!(
            coverage.past_compaction + coverage.in_compaction_edit > 0,
            "no run reached compaction: {coverage:?}"
        );
    }
}

/// The durability settings a power cut needs, which a SIGKILL test cannot show.
#[test]
fn store_syncs_every_commit_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outpost.db");
    let mut store = Store::open(&path, checker()).expect("open store");
    assert_eq!(
        store.synchronous_mode().expect("synchronous"),
        2,
        "synchronous must be FULL (2)"
    );
    store
        .create_person(&NewPerson {
            name: "Wal Check".into(),
            preferred_name: None,
            date_of_birth: None,
            nhs_number: None,
            address: None,
            team: TeamId::new("team").expect("team id"),
            allocated_workers: vec![],
            risk: RiskTier::Low,
        })
        .expect("create person");
    let wal = dir.path().join("outpost.db-wal");
    assert!(wal.exists(), "a write in WAL mode leaves {}", wal.display());
    drop(store);

    // Bytes 18 and 19 of the database header (file format write and read versions) are 2 only
    // when the database is in WAL mode; the setting is stored in the file, not the connection.
    let file = std::fs::read(&path).expect("read database");
    assert_eq!(file.get(18..20), Some(&[2u8, 2][..]), "database header says WAL mode");
    // `synchronous` is per connection, so every open must set it again.
    let store = Store::open(&path, checker()).expect("reopen store");
    assert_eq!(
        store.synchronous_mode().expect("synchronous"),
        2,
        "synchronous must be FULL (2)"
    );
}
