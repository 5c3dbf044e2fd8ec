//! Many devices syncing a day's work each against the real server binary, arriving at a steady
//! rate (open loop: a slow answer does not delay the next arrival). The server runs as one or
//! more processes over the same records (SQLite, or PostgreSQL with `--database-url`), pinned
//! to the `--server-cpu` list; this process, the load generator, is pinned to another CPU by the
//! bench script.
//!
//! Setup (not timed): the server's records start with the seeded caseload (a copy of the cached
//! SQLite database, or the same documents written into a fresh PostgreSQL schema through the
//! storage trait); teams of `team_size` workers are made with the server's admin commands, each
//! worker's phone enrols over the network with server process i mod N, the first phone of each
//! team adds the team's people, and every phone syncs once. Then each phone writes its day's
//! work offline. Timed: each phone, at its arrival time, opens a new connection (full TLS
//! handshake) to its server process and syncs once, pushing its visits and receiving its
//! teammates' visits that arrived before it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_core::net::SyncOptions;
use outpost_core::{Author, DeviceId, NewPerson, PersonId, RiskTier, Store, TeamId, WorkerId};
use outpost_server::admin::Command;
use outpost_server::storage::{ScopePolicy, Storage};
use outpost_tests::caseload::percentile;

use crate::records::Records;
use crate::report::{bytes, secs};
use crate::scenarios::{DAY_SPLICES, DAY_VISITS};
use crate::server::{self, Server, admin, cpu_time, enrolment_code, mib};
use crate::setup::{Result, Seeded, write_days_work};

pub const HEADER: &str = "| scenario | server | devices | arrivals | completed | throughput | latency p50 / p99 / max | \
                          server's own time p50 / p99 | request / response bytes | server CPU | server peak RSS | load generator CPU |\n\
                          |---|---|---|---|---|---|---|---|---|---|---|---|";

#[derive(Debug, Clone)]
pub struct Options {
    pub server_bin: PathBuf,
    pub devices: usize,
    pub seconds: f64,
    pub team_size: usize,
    pub people_per_team: usize,
    /// Splices per durable save when typing the day's work (1 for the single-device bench;
    /// more here only to keep the setup of hundreds of phones short).
    pub splices_per_save: usize,
    /// The CPUs the server processes are pinned to, as taskset takes them (`0`, `0,1`).
    pub server_cpu: Option<String>,
    /// A PostgreSQL database (`postgres://user@host/db`) to keep the records in, in a schema of
    /// the run's own; SQLite when None.
    pub database_url: Option<String>,
    /// Server processes over the same records; phones are spread over them in turn.
    pub servers: usize,
}

/// A phone: a worker's store, enrolled with server process `server`.
pub struct Phone {
    pub worker: WorkerId,
    pub team: usize,
    pub store: Arc<Mutex<Store>>,
    pub credential: String,
    pub server: usize,
    pub pushed: usize,
}

pub async fn run(seeded: &Seeded, options: &Options) -> Result<()> {
    if options.servers > 1 && options.database_url.is_none() {
        return Err("several server processes share one PostgreSQL database: give --database-url".into());
    }
    let teams = options.devices.div_ceil(options.team_size.max(1));
    let work_dir = tempfile::tempdir_in(&seeded.dir)?;
    let records = Records::create(&work_dir.path().join("server"), options.database_url.as_deref(), "load")?;
    // Phones' stores on a memory file system when there is one: their fsyncs are not what is
    // measured, and the load generator must not be the bottleneck.
    let phone_dir = phone_dir(work_dir.path())?;

    let started = Instant::now();
    let codes = {
        let storage = hold_caseload(seeded, &records)?;
        make_accounts(storage.as_ref(), &records, options.devices, teams)?
    };
    eprintln!(
        "load: the caseload in {} and {teams} teams and {} workers made with the admin commands in {}",
        records.backend(),
        options.devices,
        secs(started.elapsed())
    );
    let servers = server::start(
        &options.server_bin,
        &records,
        options.servers,
        options.server_cpu.as_deref(),
    )
    .await?;
    let started = Instant::now();
    let mut phones = enrol_phones(&servers, codes, phone_dir.path()).await?;
    add_people_and_sync(&servers, &phones, teams, options.people_per_team).await?;
    eprintln!(
        "load: {} phones enrolled and synced once in {}",
        phones.len(),
        secs(started.elapsed())
    );
    let started = Instant::now();
    type_days_work(&mut phones, options.splices_per_save)?;
    eprintln!(
        "load: {} days' work typed ({DAY_VISITS} visits of {DAY_SPLICES} splices, {} per save) in {}",
        phones.len(),
        options.splices_per_save,
        secs(started.elapsed())
    );

    let before: Vec<(u64, u64)> = servers.iter().map(Server::memory).collect::<Result<_>>()?;
    let marks: Vec<u64> = servers.iter().map(Server::log_mark).collect::<Result<_>>()?;
    let server_cpu_before: Vec<Duration> = servers.iter().map(Server::cpu_time).collect::<Result<_>>()?;
    let postgres_cpu_before = postgres_cpu();
    let own_cpu_before = cpu_time("self")?;
    let outcome = timed_phase(&servers, &phones, options).await?;
    let own_cpu = cpu_time("self")? - own_cpu_before;
    // Backends that exit during the run (other sessions' connections) take their CPU with them.
    let postgres_cpu = postgres_cpu().saturating_sub(postgres_cpu_before);
    let server_cpu: Vec<Duration> = servers
        .iter()
        .zip(&server_cpu_before)
        .map(|(s, before)| Ok(s.cpu_time()? - *before))
        .collect::<Result<_>>()?;
    let after: Vec<(u64, u64)> = servers.iter().map(Server::memory).collect::<Result<_>>()?;
    let on_server = server::server_times(&servers, &marks)?;
    for note in server::log_notes(&servers, &marks, 5)? {
        eprintln!("load: {note}");
    }
    drop(servers);

    let span = outcome.span.as_secs_f64();
    eprintln!(
        "load: the server's own time per sync (access logs, the timed phase's {}): p50 {}, p99 {}, max {}",
        on_server.len(),
        secs(percentile(&on_server, 50.0)),
        secs(percentile(&on_server, 99.0)),
        secs(on_server.last().copied().unwrap_or_default())
    );
    for (i, (((hwm_before, rss_before), (hwm, rss)), cpu)) in before.iter().zip(&after).zip(&server_cpu).enumerate() {
        eprintln!(
            "load: server process {}: RSS {} before the timed phase (peak {} until then), {} after, peak {}; \
             CPU {} ({:.0}% of one core)",
            i + 1,
            mib(*rss_before),
            mib(*hwm_before),
            mib(*rss),
            mib(*hwm),
            secs(*cpu),
            cpu.as_secs_f64() / span * 100.0
        );
    }
    if records.url.is_some() {
        // PostgreSQL's own processes are not pinned, and this counts every one of them on the
        // machine (other sessions' too), so it is an upper bound.
        eprintln!(
            "load: PostgreSQL processes (unpinned, all on the machine) used {} of CPU in the timed phase ({:.0}% of one core)",
            secs(postgres_cpu),
            postgres_cpu.as_secs_f64() / span * 100.0
        );
    }
    eprintln!(
        "load: {} bytes pushed and {} bytes received in {} syncs ({} documents received)",
        bytes(outcome.request_bytes),
        bytes(outcome.response_bytes),
        outcome.latencies.len(),
        outcome.received,
    );
    outcome.print_by_arrival(options.devices);
    let mut latencies = outcome.latencies.clone();
    latencies.sort();
    let cpu_total: Duration = server_cpu.iter().sum();
    let peak_total: u64 = after.iter().map(|(hwm, _)| hwm).sum();
    let peaks = if after.len() > 1 {
        let each: Vec<String> = after.iter().map(|(hwm, _)| mib(*hwm)).collect();
        format!("**{}** ({})", mib(peak_total), each.join(" + "))
    } else {
        format!("**{}**", mib(peak_total))
    };
    println!(
        "| {} devices, a day's work each ({DAY_VISITS} visits), arriving over {:.0} s, teams of {} | {} | {} | {:.1}/s \
         | {} | **{:.1} syncs/s** over {} | **{}** / **{}** / {} | {} / {} | {} / {} | {} ({:.0}% of one core) | {} \
         | {} ({:.0}% of one core) |",
        options.devices,
        options.seconds,
        options.team_size,
        describe(&records, options),
        options.devices,
        options.devices as f64 / options.seconds,
        if outcome.failures.is_empty() {
            latencies.len().to_string()
        } else {
            format!("{} (**{} failed**)", latencies.len(), outcome.failures.len())
        },
        latencies.len() as f64 / span,
        secs(outcome.span),
        secs(percentile(&latencies, 50.0)),
        secs(percentile(&latencies, 99.0)),
        secs(latencies.last().copied().unwrap_or_default()),
        secs(percentile(&on_server, 50.0)),
        secs(percentile(&on_server, 99.0)),
        bytes(outcome.request_bytes),
        bytes(outcome.response_bytes),
        secs(cpu_total),
        cpu_total.as_secs_f64() / span * 100.0,
        peaks,
        secs(own_cpu),
        own_cpu.as_secs_f64() / span * 100.0,
    );
    if outcome.failures.is_empty() {
        Ok(())
    } else {
        eprintln!(
            "load: {} syncs failed, among them: {:?}",
            outcome.failures.len(),
            &outcome.failures[..outcome.failures.len().min(5)]
        );
        Err(format!("{} of {} syncs failed", outcome.failures.len(), options.devices).into())
    }
}

/// "PostgreSQL, 2 processes on CPU 0": the server column.
pub fn describe(records: &Records, options: &Options) -> String {
    format!(
        "{}, {} process{}{}",
        records.backend(),
        options.servers,
        if options.servers == 1 { "" } else { "es" },
        match &options.server_cpu {
            Some(cpus) => format!(" on CPU {cpus}"),
            None => " (unpinned)".into(),
        }
    )
}

/// Where phones keep their stores: /dev/shm when there is one, else beside the run's files.
pub fn phone_dir(fallback: &Path) -> Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    Ok(if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir_in(fallback)?
    })
}

/// The caseload the server holds beside the load: a copy of the cached SQLite database, or the
/// same documents written into PostgreSQL through the storage trait. Returns the records open.
fn hold_caseload(seeded: &Seeded, records: &Records) -> Result<Arc<dyn Storage>> {
    if records.url.is_none() {
        fs::copy(&seeded.server, records.data_dir.join("outpost.sqlite3"))?;
        let storage = records.open()?;
        // Seeding wrote every document's listing: the server need not list them again
        // (loading each one) when it first starts, as it would after an upgrade.
        storage.relist_done()?;
        return Ok(storage);
    }
    let started = Instant::now();
    let storage = records.open()?;
    let (written, _) = crate::seed::seed_storage(seeded, storage.as_ref(), None)?;
    eprintln!(
        "load: {written} documents of the caseload seeded into PostgreSQL in {}",
        secs(started.elapsed())
    );
    Ok(storage)
}

/// CPU time used by every process named `postgres*` on the machine.
fn postgres_cpu() -> Duration {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| fs::read_to_string(e.path().join("comm")).is_ok_and(|comm| comm.starts_with("postgres")))
        .filter_map(|e| cpu_time(&e.file_name().to_string_lossy()).ok())
        .sum()
}

/// Teams `load-01`... and a worker `lw-001`... per device, spread over them in turn, made with
/// the server's admin commands; returns each worker with their team and enrolment code.
pub fn make_accounts(
    storage: &dyn Storage,
    records: &Records,
    devices: usize,
    teams: usize,
) -> Result<Vec<(String, usize, String)>> {
    for t in 0..teams {
        let team = team_name(t);
        admin(
            storage,
            records,
            Command::CreateTeam {
                id: TeamId::new(&team)?,
                name: team,
                scope: ScopePolicy::Team,
            },
        )?;
    }
    let mut codes = Vec::with_capacity(devices);
    for i in 0..devices {
        let worker = format!("lw-{:03}", i + 1);
        admin(
            storage,
            records,
            Command::AddWorker {
                id: WorkerId::new(&worker)?,
                name: worker.clone(),
                team: TeamId::new(team_name(i % teams))?,
                lead: false,
            },
        )?;
        let code = enrolment_code(&admin(
            storage,
            records,
            Command::EnrolCode {
                worker: WorkerId::new(&worker)?,
                valid_hours: 24,
            },
        )?)?;
        codes.push((worker, i % teams, code));
    }
    Ok(codes)
}

fn team_name(t: usize) -> String {
    format!("load-{:02}", t + 1)
}

/// Enrols each worker's phone over the network, as the app does, with its store in `dir`;
/// phone i with server process i mod N.
pub async fn enrol_phones(servers: &[Server], codes: Vec<(String, usize, String)>, dir: &Path) -> Result<Vec<Phone>> {
    let mut phones = Vec::with_capacity(codes.len());
    for (i, (worker, team, code)) in codes.into_iter().enumerate() {
        let server = i % servers.len();
        let enrolled = servers[server]
            .client(None)?
            .enrol(&code, &format!("{worker}'s phone"))
            .await?;
        let worker = WorkerId::new(&worker)?;
        let author = Author::new(worker.clone(), DeviceId::new(&enrolled.device)?);
        let store = Store::open(dir.join(format!("{worker}.sqlite3")), author)?;
        phones.push(Phone {
            worker,
            team,
            store: Arc::new(Mutex::new(store)),
            credential: enrolled.credential,
            server,
            pushed: 0,
        });
    }
    Ok(phones)
}

/// The first phone of each team adds the team's people; it syncs first, then every other.
pub async fn add_people_and_sync(servers: &[Server], phones: &[Phone], teams: usize, people: usize) -> Result<()> {
    for t in 0..teams {
        let team = TeamId::new(team_name(t))?;
        let members: Vec<WorkerId> = phones
            .iter()
            .filter(|p| p.team == t)
            .map(|p| p.worker.clone())
            .collect();
        let Some(first) = phones.iter().find(|p| p.team == t) else {
            continue;
        };
        let mut store = first.store.lock().map_err(|_| "store lock poisoned")?;
        for n in 0..people {
            store.create_person(&NewPerson {
                name: format!("Person {} of {team}", n + 1),
                preferred_name: None,
                date_of_birth: None,
                nhs_number: None,
                address: None,
                team: team.clone(),
                allocated_workers: vec![members[n % members.len()].clone()],
                risk: RiskTier::Low,
            })?;
        }
    }
    // Phone t is the first of team t.
    let mut order: Vec<usize> = (0..phones.len()).collect();
    order.sort_by_key(|&i| (i >= teams, i));
    for i in order {
        let phone = &phones[i];
        servers[phone.server]
            .client(Some(&phone.credential))?
            .sync(Arc::clone(&phone.store), SyncOptions::default())
            .await?;
    }
    Ok(())
}

/// Each phone writes its day's work offline, visiting its team's people.
pub fn type_days_work(phones: &mut [Phone], splices_per_save: usize) -> Result<()> {
    for (i, phone) in phones.iter_mut().enumerate() {
        let mut store = phone.store.lock().map_err(|_| "store lock poisoned")?;
        let team = TeamId::new(team_name(phone.team))?;
        let people: Vec<PersonId> = store.team_caseload(&team)?.into_iter().map(|r| r.person).collect();
        let work = write_days_work(
            &mut store,
            &people,
            &phone.worker,
            DAY_VISITS,
            DAY_SPLICES,
            splices_per_save,
            10_000 + i as u64,
        )?;
        phone.pushed = work.docs.len();
    }
    Ok(())
}

/// What the timed phase measured, in arrival order.
struct Outcome {
    latencies: Vec<Duration>,
    failures: Vec<String>,
    /// From the first arrival to the last sync's end.
    span: Duration,
    request_bytes: u64,
    response_bytes: u64,
    received: usize,
}

/// Phone i arrives at i * (seconds / devices), opens a new connection and syncs once. Latency
/// runs from its arrival, so time spent waiting behind earlier syncs counts.
async fn timed_phase(servers: &[Server], phones: &[Phone], options: &Options) -> Result<Outcome> {
    let interval = Duration::from_secs_f64(options.seconds / options.devices as f64);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::with_capacity(phones.len());
    for (i, phone) in phones.iter().enumerate() {
        let arrival = t0 + interval * i as u32;
        let store = Arc::clone(&phone.store);
        let mut c = servers[phone.server].client(Some(&phone.credential))?;
        let expected = phone.pushed;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(arrival).await;
            let report = c.sync(store, SyncOptions::default()).await;
            (arrival, tokio::time::Instant::now(), expected, report)
        }));
    }
    let mut outcome = Outcome {
        latencies: Vec::with_capacity(tasks.len()),
        failures: Vec::new(),
        span: Duration::ZERO,
        request_bytes: 0,
        response_bytes: 0,
        received: 0,
    };
    let mut last_done = t0;
    for task in tasks {
        let (arrival, done, expected, report) = task.await?;
        last_done = last_done.max(done);
        match report {
            Ok(report) if report.progress.docs_pushed == expected && report.progress.refused.is_empty() => {
                outcome.latencies.push(done - arrival);
                outcome.request_bytes += report.request_body_bytes;
                outcome.response_bytes += report.response_body_bytes;
                outcome.received += report.progress.docs_received;
            }
            Ok(report) => outcome.failures.push(format!(
                "pushed {} of {expected}, refused {:?}",
                report.progress.docs_pushed, report.progress.refused
            )),
            Err(e) => outcome.failures.push(e.to_string()),
        }
    }
    outcome.span = last_done - t0;
    Ok(outcome)
}

impl Outcome {
    /// Latency by arrival time shows whether a queue built up (it grows through the run) or a
    /// few syncs were slow.
    fn print_by_arrival(&self, devices: usize) {
        let window = (devices / 6).max(1);
        let by_arrival: Vec<String> = self
            .latencies
            .chunks(window)
            .map(|chunk| {
                let mut sorted = chunk.to_vec();
                sorted.sort();
                format!(
                    "{} / {}",
                    secs(percentile(&sorted, 50.0)),
                    secs(sorted.last().copied().unwrap_or_default())
                )
            })
            .collect();
        eprintln!(
            "load: latency p50 / max by arrival, {window} arrivals at a time: {}",
            by_arrival.join("; ")
        );
    }
}
