//! Outpost's half of `scripts/compare-automerge-repo.sh`, which runs the same jobs against the
//! reference automerge-repo sync server (the Node scripts in `scripts/compare/`).
//!
//! sync-bench compare export DIR
//!     the first 5,000 documents of the cached caseload, as the files the Node side seeds the
//!     reference server with, and 200 devices' day's work, as the files its devices push
//! sync-bench compare pull --docs N --server-bin PATH [--server-cpu CPU]
//!     a fresh device pulls the first N of those documents from the server binary, run as its
//!     own process, over loopback TLS; prints one JSON line
//!
//! Both sides serve the same bytes: the documents' stored `save()` bytes, people first, then the
//! rest by id. The caseload holds 4,916 documents, so the 5,000 repeat the first 84 documents
//! after the people under new random ids (an Outpost document does not hold its own id; an
//! automerge-repo document's id is chosen when it is imported).
//!
//! The 200 devices' day's work on Outpost's side is `sync-bench load --team-size 1
//! --splices-per-save 10`: each device pushes its own 8 visits and their reviews and receives
//! nothing, as a reference device does. The export types the same splices (the same function
//! and seeds as `load`), so the Node side's devices push the same changes and characters.

use std::collections::HashMap;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_core::net::{Client, ClientConfig, SyncOptions};
use outpost_core::{Author, DeviceId, DocId, DocType, NewPerson, PersonId, RiskTier, Store, TeamId, WorkerId};
use outpost_server::auth;
use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::storage::{Accounts, DocWrite, Documents, PersonScope, Role, ScopePolicy, StoredDoc, SyncWrite};
use outpost_tests::proxy::FaultProxy;
use serde_json::json;

use crate::scenarios::{DAY_SPLICES, DAY_VISITS};
use crate::setup::{Result, Seeded, write_days_work};

/// The caseload sizes a fresh device pulls.
pub const SIZES: [usize; 3] = [1_000, 2_000, 5_000];
/// `sync-bench load`'s defaults, which the script passes to it too: 200 devices, 10 splices
/// per save, device i typing with seed 10,000 + i.
const DEVICES: usize = 200;
const SPLICES_PER_SAVE: usize = 10;
const LOAD_SEED: u64 = 10_000;
/// People a load test team holds (`sync-bench load`'s `people_per_team`).
const PEOPLE_PER_DEVICE: usize = 8;
/// Documents per server write while building a server database.
const WRITE_BATCH: usize = 500;

const USAGE: &str = "usage: sync-bench compare (export DIR | pull --docs N --server-bin PATH [--server-cpu CPU])";

pub fn main(args: &[String]) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sync-bench compare: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let (command, rest) = args.split_first().ok_or("name export or pull")?;
    match command.as_str() {
        "export" => {
            let [dir] = rest else {
                return Err("export takes one directory".into());
            };
            let seeded = Seeded::prepare(true)?;
            export(&seeded, Path::new(dir))
        }
        "pull" => {
            let options = PullOptions::parse(rest)?;
            let seeded = Seeded::prepare(true)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(pull(&seeded, &options))
        }
        other => Err(format!("unknown command {other:?}").into()),
    }
}

#[derive(Debug)]
struct PullOptions {
    docs: usize,
    server_bin: PathBuf,
    server_cpu: Option<usize>,
}

impl PullOptions {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self {
            docs: 0,
            server_bin: PathBuf::new(),
            server_cpu: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("{flag}: {value:?} is not a whole number"))
            };
            match flag.as_str() {
                "--docs" => options.docs = number()?,
                "--server-bin" => options.server_bin = PathBuf::from(value),
                "--server-cpu" => options.server_cpu = Some(number()?),
                other => return Err(format!("unknown argument {other:?}").into()),
            }
        }
        if options.docs == 0 || options.docs > max_docs() || options.server_bin.as_os_str().is_empty() {
            return Err(format!("pull needs --docs 1..={} and --server-bin", max_docs()).into());
        }
        Ok(options)
    }
}

fn max_docs() -> usize {
    SIZES.into_iter().max().unwrap_or_default()
}

/// One document as both servers hold it.
struct Doc {
    id: DocId,
    /// For a repeat past the caseload's end: the document it repeats.
    copy_of: Option<DocId>,
    stored: StoredDoc,
}

/// The seeded server's documents in the order both sides use, with the accounts and
/// allocations a copy of the server needs.
struct Caseload {
    docs: Vec<Doc>,
    workers: Vec<(WorkerId, Role)>,
    allocations: HashMap<PersonId, Vec<WorkerId>>,
    team: TeamId,
}

impl Caseload {
    /// Reads a copy of the seeded server database (opening one writes to it).
    fn read(seeded: &Seeded) -> Result<Self> {
        let dir = tempfile::tempdir_in(&seeded.dir)?;
        let db = dir.path().join("server.sqlite3");
        fs::copy(&seeded.server, &db)?;
        let conn = rusqlite::Connection::open(&db)?;
        let mut workers = Vec::new();
        for row in conn
            .prepare("SELECT worker_id, role FROM workers ORDER BY worker_id")?
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
        {
            let (worker, role) = row?;
            let role = Role::from_code(&role).ok_or_else(|| format!("unknown role {role:?}"))?;
            workers.push((WorkerId::new(worker)?, role));
        }
        let mut allocations: HashMap<PersonId, Vec<WorkerId>> = HashMap::new();
        for row in conn
            .prepare("SELECT person_id, worker_id FROM allocations ORDER BY person_id, worker_id")?
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
        {
            let (person, worker) = row?;
            allocations
                .entry(PersonId::new(person)?)
                .or_default()
                .push(WorkerId::new(worker)?);
        }
        let people: Vec<PersonId> = conn
            .prepare("SELECT person_id FROM people ORDER BY person_id")?
            .query_map([], |row| row.get::<_, String>(0))?
            .map(|id| Ok(PersonId::new(id?)?))
            .collect::<Result<_>>()?;
        drop(conn);

        let storage = SqliteStorage::open(&db)?;
        let mut docs: Vec<Doc> = storage
            .people_docs(&people)?
            .into_iter()
            .map(|(id, stored)| Doc {
                id,
                copy_of: None,
                stored,
            })
            .collect();
        // People first, so that every smaller caseload holds everyone its documents name.
        let person = DocType::Person.code();
        docs.sort_by(|a, b| {
            (a.stored.doc_type != person, a.id.as_str()).cmp(&(b.stored.doc_type != person, b.id.as_str()))
        });
        let repeats: Vec<Doc> = docs
            .iter()
            .filter(|d| d.stored.doc_type != person)
            .take(max_docs().saturating_sub(docs.len()))
            .map(|d| Doc {
                id: DocId::random(),
                copy_of: Some(d.id.clone()),
                stored: d.stored.clone(),
            })
            .collect();
        docs.extend(repeats);
        if docs.len() < max_docs() {
            return Err(format!("the caseload has {} documents, fewer than {}", docs.len(), max_docs()).into());
        }
        Ok(Self {
            docs,
            workers,
            allocations,
            team: seeded.team.clone(),
        })
    }

    /// The server's write of `doc`, as `sync-bench`'s seeding makes it.
    fn write(&self, doc: &Doc) -> Result<DocWrite> {
        let loaded = automerge::AutoCommit::load(&doc.stored.snapshot)?;
        let person_scope = (doc.stored.doc_type == DocType::Person.code()).then(|| PersonScope {
            team: self.team.clone(),
            allocated: self.allocations.get(&doc.stored.person).cloned().unwrap_or_default(),
        });
        Ok(DocWrite {
            index_rows: outpost_core::sync::index_rows(&loaded, &doc.id)?,
            listing: Some(outpost_core::sync::listing(&loaded, &doc.id)?),
            doc: doc.id.clone(),
            person: doc.stored.person.clone(),
            doc_type: doc.stored.doc_type.clone(),
            heads: doc.stored.heads.clone(),
            changes: doc.stored.snapshot.clone(),
            snapshot: doc.stored.snapshot.clone(),
            person_scope,
        })
    }
}

/// Server databases holding the first `n` documents, one per size, cached beside the seeded
/// one; the missing ones are made from one read of the caseload.
fn server_dbs(seeded: &Seeded, sizes: &[usize], caseload: &mut Option<Caseload>) -> Result<Vec<PathBuf>> {
    let name = seeded
        .server
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the seeded database has no file name")?;
    let paths: Vec<PathBuf> = sizes
        .iter()
        .map(|n| seeded.dir.join(format!("compare-c2-{n}-{name}")))
        .collect();
    let missing: Vec<(usize, &PathBuf)> = sizes.iter().copied().zip(&paths).filter(|(_, p)| !p.exists()).collect();
    let Some(largest) = missing.iter().map(|(n, _)| *n).max() else {
        return Ok(paths);
    };
    let started = Instant::now();
    let caseload = match caseload {
        Some(c) => c,
        None => caseload.insert(Caseload::read(seeded)?),
    };
    let writes: Vec<DocWrite> = caseload.docs[..largest]
        .iter()
        .map(|d| caseload.write(d))
        .collect::<Result<_>>()?;
    for (n, path) in missing {
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        {
            let storage = SqliteStorage::open(&partial)?;
            storage.create_team(&caseload.team, "North locality", ScopePolicy::Team)?;
            for (worker, role) in &caseload.workers {
                storage.add_worker(worker, worker.as_str(), *role, &caseload.team)?;
            }
            for batch in writes[..n].chunks(WRITE_BATCH) {
                storage.write(
                    None,
                    &SyncWrite {
                        docs: batch.to_vec(),
                        ..SyncWrite::default()
                    },
                )?;
            }
            // A new database asks the server to list every stored record for the review pages
            // when it starts (loading each one); done here, as a running server has done it.
            outpost_server::sync::relist(&storage)?;
        }
        fs::rename(&partial, path)?;
    }
    eprintln!(
        "compare: server databases of {sizes:?} documents made in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(paths)
}

/// Writes the files the Node side loads: `caseload/` (each document's saved bytes and a
/// manifest naming its heads) and `days-work/` (each device's 16 documents).
fn export(seeded: &Seeded, dir: &Path) -> Result<()> {
    let mut caseload = None;
    server_dbs(seeded, &SIZES, &mut caseload)?;
    let caseload = match caseload {
        Some(c) => c,
        None => Caseload::read(seeded)?,
    };
    let out = dir.join("caseload");
    fs::create_dir_all(&out)?;
    let mut manifest = Vec::with_capacity(caseload.docs.len());
    for (i, doc) in caseload.docs.iter().enumerate() {
        let file = format!("{i:05}.automerge");
        fs::write(out.join(&file), &doc.stored.snapshot)?;
        manifest.push(json!({
            "file": file,
            "doc": doc.id.as_str(),
            "copy_of": doc.copy_of.as_ref().map(DocId::as_str),
            "type": doc.stored.doc_type,
            "bytes": doc.stored.snapshot.len(),
            "heads": doc.stored.heads.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    }
    fs::write(
        out.join("manifest.json"),
        serde_json::to_vec(&json!({ "sizes": SIZES, "docs": manifest }))?,
    )?;
    eprintln!(
        "compare: {} documents written to {}",
        caseload.docs.len(),
        out.display()
    );

    let out = dir.join("days-work");
    if out.join("manifest.json").exists() {
        eprintln!(
            "compare: {} exists; the day's work is typed the same every time",
            out.display()
        );
        return Ok(());
    }
    let started = Instant::now();
    let partial = dir.join(format!("days-work.partial-{}", std::process::id()));
    fs::create_dir_all(&partial)?;
    let devices = days_work(seeded, &partial)?;
    fs::write(
        partial.join("manifest.json"),
        serde_json::to_vec(&json!({
            "visits": DAY_VISITS,
            "splices": DAY_SPLICES,
            "splices_per_save": SPLICES_PER_SAVE,
            "devices": devices,
        }))?,
    )?;
    fs::rename(&partial, &out)?;
    eprintln!(
        "compare: {DEVICES} days' work typed and written to {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Types each device's day's work as `sync-bench load` does (same function, seeds and
/// splices per save) into a store of its own, and writes each document's saved bytes.
fn days_work(seeded: &Seeded, out: &Path) -> Result<Vec<serde_json::Value>> {
    let shm = Path::new("/dev/shm");
    let scratch = tempfile::tempdir_in(if shm.is_dir() { shm } else { seeded.dir.as_path() })?;
    let mut devices = Vec::with_capacity(DEVICES);
    for i in 0..DEVICES {
        let worker = WorkerId::new(format!("lw-{:03}", i + 1))?;
        let team = TeamId::new(format!("load-{:02}", i + 1))?;
        let path = scratch.path().join(format!("{worker}.sqlite3"));
        let mut store = Store::open(
            &path,
            Author::new(worker.clone(), DeviceId::new(format!("{worker}-phone"))?),
        )?;
        let people: Vec<PersonId> = (0..PEOPLE_PER_DEVICE)
            .map(|n| {
                store.create_person(&NewPerson {
                    name: format!("Person {} of {team}", n + 1),
                    preferred_name: None,
                    date_of_birth: None,
                    nhs_number: None,
                    address: None,
                    team: team.clone(),
                    allocated_workers: vec![worker.clone()],
                    risk: RiskTier::Low,
                })
            })
            .collect::<std::result::Result<_, _>>()?;
        let work = write_days_work(
            &mut store,
            &people,
            &worker,
            DAY_VISITS,
            DAY_SPLICES,
            SPLICES_PER_SAVE,
            LOAD_SEED + i as u64,
        )?;
        let mut docs = Vec::with_capacity(work.docs.len());
        for (k, doc) in work.docs.iter().enumerate() {
            let saved = store.export_changes(doc, &[])?;
            let file = format!("{i:03}-{k:02}.automerge");
            fs::write(out.join(&file), &saved)?;
            docs.push(json!({
                "file": file,
                "bytes": saved.len(),
                "heads": store.heads(doc)?.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }));
        }
        devices.push(json!({
            "worker": worker.as_str(),
            "splices": work.splices,
            "saves": work.saves,
            "chars": work.chars,
            "docs": docs,
        }));
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    Ok(devices)
}

/// The server binary serving a copy of a database, pinned to a CPU if asked; stopped when
/// dropped.
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

impl Server {
    async fn start(bin: &Path, data_dir: &Path, cpu: Option<usize>) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut command = match cpu {
            // taskset execs the server, so the child's pid is the server's.
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string()]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let log = data_dir.join("server.log");
        let child = command
            .arg("serve")
            .env("OUTPOST_ADDR", addr.to_string())
            .env("OUTPOST_DATA_DIR", data_dir)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()?;
        let mut server = Self {
            child,
            addr,
            ca: Vec::new(),
        };
        let ca_path = data_dir.join("tls").join("ca.pem");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(ca) = fs::read(&ca_path)
                && !ca.is_empty()
            {
                server.ca = ca;
                if server.client(None, None)?.health().await.is_ok() {
                    return Ok(server);
                }
            }
            if let Some(status) = server.child.try_wait()? {
                return Err(format!("the server exited ({status}); see {}", log.display()).into());
            }
            if Instant::now() > deadline {
                return Err(format!("the server did not answer within 120 s; see {}", log.display()).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client of this server, connecting through `via` if given.
    fn client(&self, credential: Option<&str>, via: Option<std::net::SocketAddr>) -> Result<Client> {
        let mut config = ClientConfig::new(self.addr.ip().to_string(), self.addr.port());
        config.ca_pem = (!self.ca.is_empty()).then(|| self.ca.clone());
        config.credential = credential.map(str::to_string);
        config.connect_to = via;
        Ok(Client::new(config)?)
    }

    /// (peak, current) resident set in bytes, from /proc.
    fn memory(&self) -> Result<(u64, u64)> {
        let pid = self.child.id();
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
}

/// Sync attempts a pull may take before the bench gives up.
const MAX_SYNCS: u32 = 5;

/// A fresh device (its store on the real disk, as a phone's) pulls the first `docs` documents
/// through a byte-counting proxy, from a server process started for this pull alone. Done when
/// every document is stored at the server's heads; then every one is loaded and verified.
async fn pull(seeded: &Seeded, options: &PullOptions) -> Result<()> {
    let db = server_dbs(seeded, &[options.docs], &mut None)?.remove(0);
    let work = tempfile::tempdir_in(&seeded.dir)?;
    let data_dir = work.path().join("server");
    fs::create_dir_all(&data_dir)?;
    let live = data_dir.join("outpost.sqlite3");
    fs::copy(&db, &live)?;

    // Enrolled in the database before the server starts, as `World::enrol` does.
    let (device, credential, expected, floor) = {
        let storage = SqliteStorage::open(&live)?;
        let code = auth::new_enrolment_code();
        storage.add_enrolment_code(&seeded.worker, &auth::hash_enrolment_code(&code), i64::MAX)?;
        let credential = auth::new_secret();
        let device = storage.enrol(
            &auth::hash_enrolment_code(&code),
            &DeviceId::new("compare-phone")?,
            "compare-phone",
            &auth::hash_secret(&credential),
            0,
        )?;
        let people: Vec<PersonId> = storage.scope(&device)?.into_iter().collect();
        let mut expected: Vec<_> = storage
            .people_docs(&people)?
            .into_iter()
            .map(|(id, doc)| (id, doc.heads))
            .collect();
        expected.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let floor: u64 = storage
            .people_docs(&people)?
            .iter()
            .map(|(_, d)| d.snapshot.len() as u64)
            .sum();
        (device, credential, expected, floor)
    };
    if expected.len() != options.docs {
        return Err(format!(
            "the device's scope holds {} documents, not {}",
            expected.len(),
            options.docs
        )
        .into());
    }
    let index_bytes: u64 = rusqlite::Connection::open(&live)?.query_row(
        "SELECT coalesce(sum(length(index_rows)), 0) FROM documents",
        [],
        |row| row.get::<_, i64>(0),
    )? as u64;

    let server = Server::start(&options.server_bin, &data_dir, options.server_cpu).await?;
    let (_, rss_before) = server.memory()?;
    let proxy = FaultProxy::start(server.addr).await?;
    let store = Arc::new(Mutex::new(Store::open(
        work.path().join("phone.sqlite3"),
        Author::new(device.worker.clone(), device.device.clone()),
    )?));
    let mut client = server.client(Some(&credential), Some(proxy.addr()))?;

    let started = Instant::now();
    let (mut syncs, mut retries, mut rounds, mut request, mut response) = (0u32, 0u32, 0u32, 0u64, 0u64);
    loop {
        syncs += 1;
        match client.sync(Arc::clone(&store), SyncOptions::default()).await {
            Ok(report) => {
                retries += report.attempts.saturating_sub(report.rounds);
                rounds += report.rounds;
                request += report.request_body_bytes;
                response += report.response_body_bytes;
                let mut held = store.lock().map_err(|_| "store lock poisoned")?.all_heads()?;
                held.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
                if held == expected {
                    break;
                }
                eprintln!(
                    "compare pull: sync {syncs} left {} of {} documents",
                    held.len(),
                    expected.len()
                );
            }
            Err(e) => eprintln!("compare pull: sync {syncs} failed: {e}"),
        }
        // A sync call that failed or came back short is one the device had to repeat.
        retries += 1;
        if syncs >= MAX_SYNCS {
            return Err(format!("the pull was not complete after {syncs} syncs").into());
        }
    }
    let synced = started.elapsed();
    let (wire_up, wire_down) = proxy.bytes();
    let (hwm, rss) = server.memory()?;
    let check = store
        .lock()
        .map_err(|_| "store lock poisoned")?
        .verify_received(usize::MAX)?;
    if !check.removed.is_empty() || check.remaining != 0 {
        return Err(format!("verification found {check:?}").into());
    }
    let verified = started.elapsed();
    drop(server);
    eprintln!(
        "compare pull: {} documents in {:.2} s ({rounds} rounds, {retries} retries), verified at {:.2} s; \
         {wire_down} bytes down for a floor of {floor}; server RSS {rss_before} before, peak {hwm}",
        options.docs,
        synced.as_secs_f64(),
        verified.as_secs_f64()
    );
    println!(
        "{}",
        json!({
            "side": "outpost",
            "job": "pull",
            "docs": options.docs,
            "seconds": synced.as_secs_f64(),
            "verified_seconds": verified.as_secs_f64(),
            "floor_bytes": floor,
            "index_bytes": index_bytes,
            "wire_up": wire_up,
            "wire_down": wire_down,
            "request_body": request,
            "response_body": response,
            "rounds": rounds,
            "retries": retries,
            "server_rss_before": rss_before,
            "server_peak_rss": hwm,
            "server_rss_after": rss,
        })
    );
    Ok(())
}
