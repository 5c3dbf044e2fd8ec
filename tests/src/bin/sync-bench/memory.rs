//! The server's memory as the documents it holds grow: for each size, a fresh server process
//! over records seeded with that many documents (`seed::seed_storage`: the caseload, then
//! renamed copies of it), a fresh device that pulls every one of them, then a few devices that
//! push a day's work each at the same moment. The server's peak resident set (VmHWM) and its
//! resident set at each step are read from /proc.
//!
//! Every document is in one team (`team-north`, team scope), so the fresh device (a new phone of
//! w01) receives all of them: the largest pull the server can be asked for. The day's-work
//! devices are a team of their own with 8 people (as in `load`), so their setup does not pull
//! the whole caseload too.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use outpost_core::net::{OnProgress, SyncOptions};
use outpost_core::sync::Progress;
use outpost_core::{Author, DeviceId, Store};
use outpost_server::admin::Command;

use crate::load::{self, Options};
use crate::records::Records;
use crate::report::{bytes, secs};
use crate::scenarios::DAY_VISITS;
use crate::server::{self, admin, enrolment_code, mib};
use crate::setup::{Result, Seeded};

/// Devices pushing a day's work after the pull, all at once.
const DAY_DEVICES: usize = 4;
/// People the day's-work team holds, and splices per save as `load` types them.
const DAY_PEOPLE: usize = 8;
const SPLICES_PER_SAVE: usize = 10;
/// The target the issue sets.
const TARGET_BYTES: u64 = 150 * 1024 * 1024;

pub const HEADER: &str = "| stored documents (saved bytes) | server | RSS once started | peak RSS by the end of the pull | \
                          peak RSS (VmHWM), target < 150 MB | RSS after | fresh device's pull | day's work pushed |\n\
                          |---|---|---|---|---|---|---|---|";

/// What one size measured; bytes of resident memory.
struct Measured {
    docs: usize,
    saved: u64,
    started: u64,
    after_pull: u64,
    peak: u64,
    after: u64,
    pull: String,
    day: String,
}

pub async fn run(seeded: &Seeded, options: &Options, sizes: &[usize], no_header: bool) -> Result<()> {
    if options.servers > 1 {
        return Err("memory measures one server process: leave out --servers".into());
    }
    if !no_header {
        println!("{HEADER}");
    }
    let mut peaks = Vec::new();
    for &docs in sizes {
        let m = measure(seeded, options, docs).await?;
        let records_kind = if options.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        println!(
            "| {} ({}) | {}, 1 process{} | {} | {} | **{}** ({}) | {} | {} | {} |",
            bytes(m.docs as u64),
            bytes(m.saved),
            records_kind,
            options
                .server_cpu
                .as_ref()
                .map(|c| format!(" on CPU {c}"))
                .unwrap_or_default(),
            mib(m.started),
            mib(m.after_pull),
            mib(m.peak),
            if m.peak < TARGET_BYTES { "met" } else { "**not met**" },
            mib(m.after),
            m.pull,
            m.day,
        );
        peaks.push((m.docs, m.peak));
    }
    if let (Some(first), Some(last)) = (peaks.first(), peaks.last())
        && peaks.len() > 1
    {
        eprintln!(
            "memory: peak RSS {} at {} documents, {} at {}: {:.2}x for {:.0}x the documents",
            mib(first.1),
            bytes(first.0 as u64),
            mib(last.1),
            bytes(last.0 as u64),
            last.1 as f64 / first.1 as f64,
            last.0 as f64 / first.0 as f64
        );
    }
    Ok(())
}

async fn measure(seeded: &Seeded, options: &Options, docs: usize) -> Result<Measured> {
    let work_dir = tempfile::tempdir_in(&seeded.dir)?;
    let records = Records::create(
        &work_dir.path().join("server"),
        options.database_url.as_deref(),
        &format!("memory_{docs}"),
    )?;
    let phone_dir = load::phone_dir(work_dir.path())?;

    let started = Instant::now();
    let ((written, saved), codes, fresh_code) = {
        let storage = records.open()?;
        let written = crate::seed::seed_storage(seeded, storage.as_ref(), Some(docs))?;
        let codes = load::make_accounts(storage.as_ref(), &records, DAY_DEVICES, 1)?;
        let fresh = enrolment_code(&admin(
            storage.as_ref(),
            &records,
            Command::EnrolCode {
                worker: seeded.worker.clone(),
                valid_hours: 24,
            },
        )?)?;
        (written, codes, fresh)
    };
    eprintln!(
        "memory: {} documents ({} saved bytes) seeded into {} in {}",
        bytes(written as u64),
        bytes(saved),
        records.backend(),
        secs(started.elapsed())
    );

    let servers = server::start(&options.server_bin, &records, 1, options.server_cpu.as_deref()).await?;
    let server = &servers[0];
    let (_, rss_started) = server.memory()?;

    // A new phone of w01 pulls the whole team's caseload.
    let enrolled = server.client(None)?.enrol(&fresh_code, "w01's new phone").await?;
    let author = Author::new(seeded.worker.clone(), DeviceId::new(&enrolled.device)?);
    let store = Arc::new(Mutex::new(Store::open(phone_dir.path().join("fresh.sqlite3"), author)?));
    // The server's resident set (and its anonymous part) as each chunk of the answer lands.
    let samples = Arc::new(Mutex::new(Vec::new()));
    let on_progress: OnProgress = {
        let (samples, pid) = (Arc::clone(&samples), server.pid());
        Arc::new(move |progress: &Progress| {
            let rss = server::status_field(pid, "VmRSS:").unwrap_or_default();
            let anon = server::status_field(pid, "RssAnon:").unwrap_or_default();
            if let Ok(mut samples) = samples.lock() {
                samples.push((progress.rounds, progress.docs_received, rss, anon));
            }
        })
    };
    let mark = server.log_mark()?;
    let started = Instant::now();
    let pulled = server
        .client(Some(&enrolled.credential))?
        .sync(
            Arc::clone(&store),
            SyncOptions {
                on_progress: Some(on_progress),
                ..SyncOptions::default()
            },
        )
        .await?;
    let pull_time = started.elapsed();
    print_samples(&samples.lock().map_err(|_| "samples lock poisoned")?);
    if pulled.progress.docs_received != written {
        return Err(format!(
            "the fresh device received {} of the {written} documents",
            pulled.progress.docs_received
        )
        .into());
    }
    let (hwm_pull, rss_pull) = server.memory()?;
    let on_server = server::server_times(&servers, &[mark])?;
    eprintln!(
        "memory: {} documents pulled in {} round(s), {} ({} of it the server's own time, at most {} a round), {} response \
         bytes; server RSS {} after, peak {}",
        bytes(written as u64),
        pulled.rounds,
        secs(pull_time),
        secs(on_server.iter().sum()),
        secs(on_server.last().copied().unwrap_or_default()),
        bytes(pulled.response_body_bytes),
        mib(rss_pull),
        mib(hwm_pull)
    );
    drop(store);

    let mut phones = load::enrol_phones(&servers, codes, phone_dir.path()).await?;
    load::add_people_and_sync(&servers, &phones, 1, DAY_PEOPLE).await?;
    load::type_days_work(&mut phones, SPLICES_PER_SAVE)?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(phones.len());
    for phone in &phones {
        let mut client = server.client(Some(&phone.credential))?;
        let store = Arc::clone(&phone.store);
        tasks.push(tokio::spawn(
            async move { client.sync(store, SyncOptions::default()).await },
        ));
    }
    let mut pushed = 0;
    for (task, phone) in tasks.into_iter().zip(&phones) {
        let report = task.await??;
        if report.progress.docs_pushed != phone.pushed {
            return Err(format!(
                "a day's work pushed {} of {}",
                report.progress.docs_pushed, phone.pushed
            )
            .into());
        }
        pushed += report.progress.docs_pushed;
    }
    let day_time = started.elapsed();
    let (peak, after) = server.memory()?;
    drop(servers);
    Ok(Measured {
        docs: written,
        saved,
        started: rss_started,
        after_pull: hwm_pull,
        peak,
        after,
        pull: format!(
            "{} round{}, {}, {} bytes",
            pulled.rounds,
            if pulled.rounds == 1 { "" } else { "s" },
            secs(pull_time),
            bytes(pulled.response_body_bytes)
        ),
        day: format!(
            "{} devices at once, {DAY_VISITS} visits each ({pushed} documents), all done in {}",
            phones.len(),
            secs(day_time)
        ),
    })
}

/// The server's resident set at the end of each round of the pull (its last sample).
fn print_samples(samples: &[(u32, usize, u64, u64)]) {
    let mut by_round: Vec<String> = Vec::new();
    for (i, (round, docs, rss, anon)) in samples.iter().enumerate() {
        if samples.get(i + 1).is_none_or(|next| next.0 != *round) {
            by_round.push(format!("{docs} docs: {} ({} anonymous)", mib(*rss), mib(*anon)));
        }
    }
    eprintln!("memory: server RSS as the pull went: {}", by_round.join("; "));
}
