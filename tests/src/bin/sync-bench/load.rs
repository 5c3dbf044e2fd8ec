//! Many devices syncing a day's work each against the real server binary, arriving at a steady
//! rate (open loop: a slow answer does not delay the next arrival). The server runs as its own
//! process pinned to one core; this process, the load generator, is pinned to another by the
//! bench script.
//!
//! Setup (not timed): the server's database starts as a copy of the seeded caseload; teams of
//! `team_size` workers are made with the server's admin commands, each worker's phone enrols
//! over the network, the first phone of each team adds the team's people, and every phone
//! syncs once. Then each phone writes its day's work offline. Timed: each phone, at its arrival
//! time, opens a new connection (full TLS handshake) and syncs once, pushing its visits and
//! receiving its teammates' visits that arrived before it.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_core::net::{Client, ClientConfig, SyncOptions};
use outpost_core::{Author, DeviceId, NewPerson, PersonId, RiskTier, Store, TeamId, WorkerId};
use outpost_tests::caseload::percentile;

use crate::report::{bytes, secs};
use crate::scenarios::{DAY_SPLICES, DAY_VISITS};
use crate::setup::{Result, Seeded, write_days_work};

pub const HEADER: &str = "| scenario | devices | arrivals | completed | throughput | latency p50 / p99 / max | \
                          server's own time p50 / p99 | server CPU | server peak RSS | load generator CPU |\n\
                          |---|---|---|---|---|---|---|---|---|---|";

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
    pub server_cpu: Option<usize>,
}

/// The server process, stopped when dropped.
struct Server {
    child: Child,
    addr: std::net::SocketAddr,
    ca: Vec<u8>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Phone {
    worker: WorkerId,
    team: usize,
    store: Arc<Mutex<Store>>,
    credential: String,
    pushed: usize,
}

/// Runs one admin command of the server binary against `data_dir`; returns what it printed.
fn admin(bin: &Path, data_dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin)
        .args(args)
        .env("OUTPOST_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "outpost-server {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The code in `enrol-code`'s answer: the line of four groups of four.
fn enrolment_code(printed: &str) -> Result<String> {
    printed
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 19 && l.split('-').count() == 4)
        .map(str::to_string)
        .ok_or_else(|| format!("no enrolment code in {printed:?}").into())
}

fn client(addr: std::net::SocketAddr, ca: &[u8], credential: Option<&str>) -> Result<Client> {
    let mut config = ClientConfig::new(addr.ip().to_string(), addr.port());
    config.ca_pem = Some(ca.to_vec());
    config.credential = credential.map(str::to_string);
    Ok(Client::new(config)?)
}

/// Starts the server on a free loopback port, pinned to `cpu` if given, and waits until it
/// answers over TLS.
async fn start_server(options: &Options, data_dir: &Path) -> Result<Server> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut command = match options.server_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(&options.server_bin);
            c
        }
        None => Command::new(&options.server_bin),
    };
    let log = fs::File::create(data_dir.join("server.log"))?;
    let child = command
        .arg("serve")
        .env("OUTPOST_ADDR", addr.to_string())
        .env("OUTPOST_DATA_DIR", data_dir)
        .env("NO_COLOR", "1")
        // Every simulated phone enrols from this one loopback address.
        .env("OUTPOST_ENROL_RATE", "off")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let mut server = Server {
        child,
        addr,
        ca: Vec::new(),
    };
    let ca_path = data_dir.join("tls").join("ca.pem");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(ca) = fs::read(&ca_path)
            && !ca.is_empty()
            && client(addr, &ca, None)?.health().await.is_ok()
        {
            server.ca = ca;
            return Ok(server);
        }
        if let Some(status) = server.child.try_wait()? {
            return Err(format!(
                "the server exited ({status}); see {}",
                data_dir.join("server.log").display()
            )
            .into());
        }
        if Instant::now() > deadline {
            return Err("the server did not answer within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server's own time for its last `n` sync requests, from its access log (`micros=`):
/// from the request's arrival to its answer being ready, without the network or the device.
fn server_times(log: &Path, n: usize) -> Result<Vec<Duration>> {
    let text = fs::read_to_string(log)?;
    let mut times: Vec<Duration> = text
        .lines()
        .filter(|l| l.contains("/v1/sync"))
        .filter_map(|l| {
            let after = &l[l.find("micros=")? + "micros=".len()..];
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok().map(Duration::from_micros)
        })
        .collect();
    times = times.split_off(times.len().saturating_sub(n));
    times.sort();
    Ok(times)
}

/// (peak resident set, current resident set) in bytes, from /proc/<pid>/status.
fn memory(pid: u32) -> Result<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// CPU time (user + system) a process has used, from /proc/<pid>/stat, in clock ticks of
/// 1/100 s (USER_HZ, 100 on every Linux this runs on).
fn cpu_time(pid: &str) -> Result<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("unreadable /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or("unreadable /proc stat")
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

pub async fn run(seeded: &Seeded, options: &Options) -> Result<()> {
    let teams = options.devices.div_ceil(options.team_size.max(1));
    let work_dir = tempfile::tempdir_in(&seeded.dir)?;
    let data_dir = work_dir.path().join("server");
    fs::create_dir_all(&data_dir)?;
    fs::copy(&seeded.server, data_dir.join("outpost.sqlite3"))?;
    // Phones' stores on a memory file system when there is one: their fsyncs are not what is
    // measured, and the load generator must not be the bottleneck.
    let shm = Path::new("/dev/shm");
    let phone_dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir_in(work_dir.path())?
    };

    let started = Instant::now();
    let codes = make_accounts(options, &data_dir, teams)?;
    eprintln!(
        "load: {teams} teams and {} workers made with the admin commands in {}",
        options.devices,
        secs(started.elapsed())
    );
    let server = start_server(options, &data_dir).await?;
    let pid = server.child.id();
    let started = Instant::now();
    let mut phones = enrol_phones(&server, codes, phone_dir.path()).await?;
    add_people_and_sync(&server, &phones, teams, options.people_per_team).await?;
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

    let (hwm_before, rss_before) = memory(pid)?;
    let server_cpu_before = cpu_time(&pid.to_string())?;
    let own_cpu_before = cpu_time("self")?;
    let outcome = timed_phase(&server, &phones, options).await?;
    let server_cpu = cpu_time(&pid.to_string())? - server_cpu_before;
    let own_cpu = cpu_time("self")? - own_cpu_before;
    let (hwm, rss) = memory(pid)?;
    drop(server);
    let on_server = server_times(&data_dir.join("server.log"), options.devices)?;

    eprintln!(
        "load: the server's own time per sync (access log, last {}): p50 {}, p99 {}, max {}",
        on_server.len(),
        secs(percentile(&on_server, 50.0)),
        secs(percentile(&on_server, 99.0)),
        secs(on_server.last().copied().unwrap_or_default())
    );
    eprintln!(
        "load: {} bytes pushed and {} bytes received in {} syncs ({} documents received); server RSS {} before the \
         timed phase (peak {} until then), {} after",
        bytes(outcome.request_bytes),
        bytes(outcome.response_bytes),
        outcome.latencies.len(),
        outcome.received,
        mib(rss_before),
        mib(hwm_before),
        mib(rss)
    );
    outcome.print_by_arrival(options.devices);
    let mut latencies = outcome.latencies.clone();
    latencies.sort();
    let span = outcome.span.as_secs_f64();
    println!(
        "| {} devices, a day's work each ({DAY_VISITS} visits), arriving over {:.0} s, teams of {} | {} | {:.1}/s \
         | {} | **{:.1} syncs/s** over {} | **{}** / **{}** / {} | {} / {} | {} ({:.0}% of one core) | **{}** | {} ({:.0}% \
         of one core) |",
        options.devices,
        options.seconds,
        options.team_size,
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
        secs(server_cpu),
        server_cpu.as_secs_f64() / span * 100.0,
        mib(hwm),
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

/// Teams `load-01`... and a worker `lw-001`... per device, spread over them in turn, made with
/// the server's admin commands; returns each worker with their team and enrolment code.
fn make_accounts(options: &Options, data_dir: &Path, teams: usize) -> Result<Vec<(String, usize, String)>> {
    let bin = &options.server_bin;
    for t in 0..teams {
        let team = team_name(t);
        admin(
            bin,
            data_dir,
            &["create-team", &team, "--name", &team, "--scope", "team"],
        )?;
    }
    let mut codes = Vec::with_capacity(options.devices);
    for i in 0..options.devices {
        let worker = format!("lw-{:03}", i + 1);
        let team = team_name(i % teams);
        admin(
            bin,
            data_dir,
            &["add-worker", &worker, "--name", &worker, "--team", &team],
        )?;
        let code = enrolment_code(&admin(bin, data_dir, &["enrol-code", &worker])?)?;
        codes.push((worker, i % teams, code));
    }
    Ok(codes)
}

fn team_name(t: usize) -> String {
    format!("load-{:02}", t + 1)
}

/// Enrols each worker's phone over the network, as the app does, with its store in `dir`.
async fn enrol_phones(server: &Server, codes: Vec<(String, usize, String)>, dir: &Path) -> Result<Vec<Phone>> {
    let mut phones = Vec::with_capacity(codes.len());
    for (worker, team, code) in codes {
        let enrolled = client(server.addr, &server.ca, None)?
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
            pushed: 0,
        });
    }
    Ok(phones)
}

/// The first phone of each team adds the team's people; it syncs first, then every other.
async fn add_people_and_sync(server: &Server, phones: &[Phone], teams: usize, people: usize) -> Result<()> {
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
        client(server.addr, &server.ca, Some(&phone.credential))?
            .sync(Arc::clone(&phone.store), SyncOptions::default())
            .await?;
    }
    Ok(())
}

/// Each phone writes its day's work offline, visiting its team's people.
fn type_days_work(phones: &mut [Phone], splices_per_save: usize) -> Result<()> {
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
async fn timed_phase(server: &Server, phones: &[Phone], options: &Options) -> Result<Outcome> {
    let interval = Duration::from_secs_f64(options.seconds / options.devices as f64);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::with_capacity(phones.len());
    for (i, phone) in phones.iter().enumerate() {
        let arrival = t0 + interval * i as u32;
        let store = Arc::clone(&phone.store);
        let mut c = client(server.addr, &server.ca, Some(&phone.credential))?;
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

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
}
