//! The real `outpost-server` binary as a child process, and phones (real device stores with
//! the core's client) enrolled with it through its own admin commands: shared by the tests that
//! run the server as a process (process.rs, scale_out.rs).

// Each test file uses part of it.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use outpost_core::net::{Client, ClientConfig, SyncOptions, SyncReport};
use outpost_core::{
    Author, DeviceId, DocId, Helped, NewContact, NewPerson, NewVisit, ReviewAction, RiskTier, Section, Setting, Store,
    TeamId, WorkerId,
};
use rand::Rng;
use rand::distr::Alphanumeric;

pub const TEAM: &str = "north";
/// Clock ticks per second in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

// ---- the server as a child process -------------------------------------------------------

/// The server binary run on a fixed loopback port and data directory, so it can be killed and
/// started again where devices expect it. Its stdout and stderr are appended to files across
/// restarts; admin commands run the same binary against the same data directory.
pub struct ServerProcess {
    pub data_dir: PathBuf,
    pub logs: PathBuf,
    pub port: u16,
    pub child: Arc<Mutex<Option<Child>>>,
    pub starts: usize,
    /// `OUTPOST_DATABASE_URL`; None for the default SQLite file in the data directory.
    pub database_url: Option<String>,
}

/// Kills the server from anywhere (a sync's progress callback), with SIGKILL.
#[derive(Clone)]
pub struct Killer(pub Arc<Mutex<Option<Child>>>);

impl Killer {
    pub fn kill(&self) {
        if let Some(mut child) = lock(&self.0).take() {
            // `Child::kill` is SIGKILL on unix: no shutdown code runs.
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the server");
        }
    }
}

impl ServerProcess {
    pub fn new(dir: &Path) -> Self {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        Self {
            data_dir: dir.join("server-data"),
            logs,
            port: free_port(),
            child: Arc::new(Mutex::new(None)),
            starts: 0,
            database_url: None,
        }
    }

    /// The server keeping its records in the database at `url`.
    pub fn with_database(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_string());
        self
    }

    /// A second process beside `other`, as a deployment runs several: the same database, TLS
    /// certificate and signing key (its data directory), its own port and logs under `dir`.
    pub fn beside(other: &ServerProcess, dir: &Path) -> Self {
        let mut process = Self::new(dir);
        process.data_dir = other.data_dir.clone();
        process.database_url = other.database_url.clone();
        process
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_outpost-server"));
        command
            .env("OUTPOST_DATA_DIR", &self.data_dir)
            .env("OUTPOST_ADDR", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "debug")
            .env_remove("OUTPOST_LOG_FORMAT")
            .env_remove("OUTPOST_PLAIN_ADDR")
            .env_remove("OUTPOST_TLS_CERT")
            .env_remove("OUTPOST_TLS_KEY");
        match &self.database_url {
            Some(url) => command.env("OUTPOST_DATABASE_URL", url),
            None => command.env_remove("OUTPOST_DATABASE_URL"),
        };
        command
    }

    /// Starts `serve` and waits until it listens and answers /health.
    pub async fn start(&mut self) {
        assert!(lock(&self.child).is_none(), "the server is already running");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(self.log_file("server.stdout"))
            .stderr(self.log_file("server.stderr"))
            .spawn()
            .expect("start the server");
        *lock(&self.child) = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.stdout().matches("listening on https://").count() < self.starts {
            if let Some(status) = lock(&self.child).as_mut().and_then(|c| c.try_wait().expect("try_wait")) {
                panic!("the server exited with {status} at start:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "the server did not start:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.client(None).health().await.expect("the server answers /health");
    }

    pub fn killer(&self) -> Killer {
        Killer(self.child.clone())
    }

    pub fn is_running(&self) -> bool {
        lock(&self.child).is_some()
    }

    /// CPU time (user and system) the running server has used, from /proc.
    pub fn cpu_time(&self) -> Duration {
        let pid = lock(&self.child).as_ref().expect("the server is running").id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
        // After the command name (which may hold spaces): utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
    }

    /// Waits until the server has spent `cpu` of CPU time from now: it is working on a request.
    pub async fn wait_until_busy(&self, cpu: Duration) {
        let from = self.cpu_time();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.cpu_time() - from < cpu {
            assert!(Instant::now() < deadline, "the server never got busy");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Kills the server with SIGKILL once it has spent `cpu` of CPU time from now (working on a
    /// request), then starts it again.
    pub async fn kill_when_busy_and_restart(&mut self, cpu: Duration) {
        self.wait_until_busy(cpu).await;
        self.killer().kill();
        // Long enough for a device to find the port closed and back off.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.start().await;
    }

    /// Sync requests answered so far, counted from the access log.
    pub fn sync_answers(&self) -> usize {
        self.log().matches("path=/v1/sync").count()
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; returns how it exited and
    /// how long that took.
    pub async fn terminate(&self, limit: Duration) -> (ExitStatus, Duration) {
        let mut child = lock(&self.child).take().expect("the server is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let sent = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return (status, sent.elapsed());
            }
            if sent.elapsed() > limit {
                child.kill().expect("SIGKILL after the grace period");
                child.wait().expect("reap");
                panic!("the server was still running {limit:?} after SIGTERM:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs one admin command to completion; returns its stdout. Its stderr goes to a log file.
    pub fn admin(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().expect("run an admin command");
        let stderr = String::from_utf8_lossy(&output.stderr);
        std::io::Write::write_all(&mut self.log_file("admin.stderr"), &output.stderr).expect("admin log");
        assert!(output.status.success(), "{args:?} failed: {stderr}");
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    pub fn set_up_team(&self) {
        self.admin(&["create-team", TEAM, "--name", "North locality", "--scope", "team"]);
        self.admin(&["add-worker", "ann", "--name", "Ann Hale", "--team", TEAM]);
        self.admin(&["add-worker", "ben", "--name", "Ben Ford", "--team", TEAM, "--lead"]);
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.ca_path()).expect("the server's ca.pem")
    }

    pub fn ca_path(&self) -> PathBuf {
        self.data_dir.join("tls").join("ca.pem")
    }

    pub fn client(&self, credential: Option<String>) -> Client {
        Client::new(ClientConfig {
            ca_pem: Some(self.ca_pem()),
            credential,
            io_timeout: Duration::from_secs(5),
            ..ClientConfig::new("127.0.0.1", self.port)
        })
        .expect("client")
    }

    pub fn log_file(&self, name: &str) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(name))
            .expect("log file")
    }

    pub fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(name)).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        self.read_log("server.stdout")
    }

    /// What admin commands wrote to stderr.
    pub fn admin_log(&self) -> String {
        strip_ansi(&self.read_log("admin.stderr"))
    }

    /// Everything `serve` wrote, over every start, with terminal colour codes removed.
    pub fn log(&self) -> String {
        strip_ansi(&format!("{}{}", self.stdout(), self.read_log("server.stderr")))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = lock(&self.child).take() {
            // Quietly: a panic here, during a failing test's unwinding, would abort.
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- server log (last lines) ----");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

// ---- devices ----------------------------------------------------------------------------

/// A phone: its own store and a client enrolled with a code from the admin command.
pub struct Device {
    pub client: Client,
    pub store: Arc<Mutex<Store>>,
    pub device: DeviceId,
    pub credential: String,
    pub code: String,
}

impl Device {
    pub async fn enrol(server: &ServerProcess, worker: &str, dir: &Path) -> Self {
        let code = enrolment_code(&server.admin(&["enrol-code", worker]));
        let mut client = server.client(None);
        let enrolled = client.enrol(&code, &format!("{worker}'s phone")).await.expect("enrol");
        let device = DeviceId::new(enrolled.device).expect("device");
        let author = Author::new(WorkerId::new(enrolled.worker).expect("worker"), device.clone());
        let store = Store::open(dir.join(format!("{device}.sqlite3")), author).expect("store");
        Self {
            client,
            store: Arc::new(Mutex::new(store)),
            device,
            credential: enrolled.credential,
            code,
        }
    }

    pub async fn sync(&mut self, options: SyncOptions) -> outpost_core::Result<SyncReport> {
        self.client.sync(self.store.clone(), options).await
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub fn pending(&self) -> usize {
        self.store()
            .sync_status(&self.client.peer())
            .expect("sync status")
            .pending_docs
    }
}

/// Retries quickly and often enough to outlast a restart.
pub fn patient() -> SyncOptions {
    SyncOptions {
        max_attempts: 30,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..SyncOptions::default()
    }
}

/// `people` people, each with a visit of about `words` words, one of them unique to it.
/// Returns each visit with its unique word.
pub fn write_caseload(device: &Device, people: usize, words: usize) -> Vec<(DocId, String)> {
    let mut store = device.store();
    let worker = store.author().worker.clone();
    let team = TeamId::new(TEAM).expect("team");
    (0..people)
        .map(|i| {
            let person = store
                .create_person(&new_person(&format!("Person {i}"), &team, &worker))
                .expect("person");
            let visit = store.create_visit(&new_visit(&person, &worker)).expect("visit");
            let unique = token("word");
            let text = format!("{unique} {}", filler(words));
            store
                .edit_visit(&visit, |v| v.splice(Section::WhatMatters, 0, 0, &text))
                .expect("visit text");
            (visit, unique)
        })
        .collect()
}

/// `people` people whose records are full of personal data, each with a visit submitted for
/// review. Returns the visits and every personal string written.
pub fn write_personal_records(device: &Device, people: usize) -> (Vec<DocId>, Vec<String>) {
    let mut store = device.store();
    let worker = store.author().worker.clone();
    let team = TeamId::new(TEAM).expect("team");
    let mut secrets = Vec::new();
    let mut visits = Vec::new();
    for _ in 0..people {
        let nhs = nhs_number();
        let person = NewPerson {
            preferred_name: Some(token("Pref")),
            nhs_number: Some(format!("{} {} {}", &nhs[..3], &nhs[3..6], &nhs[6..])),
            address: Some(format!(
                "{} {} Road, Alston",
                rand::rng().random_range(1..200),
                token("Addr")
            )),
            ..new_person(&token("Name"), &team, &worker)
        };
        let contact = NewContact {
            name: token("Contact"),
            relationship: "daughter".into(),
            phone: Some(format!("07700 9{:05}", rand::rng().random_range(0..100_000))),
        };
        let id = store.create_person(&person).expect("person");
        store
            .edit_person(&id, |p| p.add_contact(&contact).map(drop))
            .expect("contact");
        let visit = store.create_visit(&new_visit(&id, &worker)).expect("visit");
        let sections: Vec<(Section, String)> = Section::ALL
            .iter()
            .map(|&section| (section, format!("{} said {} ", token("Note"), token("Note"))))
            .collect();
        let feedback = token("Feedback");
        let concern = token("Concern");
        store
            .edit_visit(&visit, |v| {
                for (section, text) in &sections {
                    v.splice(*section, 0, 0, text)?;
                }
                v.set_feedback(Some(Helped::Partly), &feedback)?;
                v.raise_safeguarding(&concern)
            })
            .expect("visit");
        let submitted = token("Submit");
        store
            .review_visit(&visit, ReviewAction::Submit, Some(&submitted))
            .expect("submit");
        secrets.extend([person.name, nhs, submitted, feedback, concern]);
        secrets.extend(
            person
                .nhs_number
                .into_iter()
                .chain(person.preferred_name)
                .chain(person.address),
        );
        secrets.extend([contact.name].into_iter().chain(contact.phone));
        secrets.extend(sections.into_iter().map(|(_, text)| text.trim().to_string()));
        visits.push(visit);
    }
    (visits, secrets)
}

pub fn new_person(name: &str, team: &TeamId, worker: &WorkerId) -> NewPerson {
    NewPerson {
        name: name.to_string(),
        preferred_name: None,
        date_of_birth: None,
        nhs_number: None,
        address: None,
        team: team.clone(),
        allocated_workers: vec![worker.clone()],
        risk: RiskTier::Medium,
    }
}

pub fn new_visit(person: &DocId, worker: &WorkerId) -> NewVisit {
    NewVisit {
        person: person.clone(),
        worker: worker.clone(),
        at: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).single().expect("date"),
        setting: Setting::HomeVisit,
    }
}

// ---- small helpers ------------------------------------------------------------------------

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// The code in an `enrol-code` output: the one indented line.
pub fn enrolment_code(output: &str) -> String {
    output
        .lines()
        .find_map(|line| {
            line.strip_prefix("    ")
                .filter(|l| !l.starts_with(' ') && !l.is_empty())
        })
        .unwrap_or_else(|| panic!("no code in {output:?}"))
        .trim()
        .to_string()
}

/// A random NHS number with a valid check digit, as ten digits.
pub fn nhs_number() -> String {
    let mut rng = rand::rng();
    loop {
        let digits: Vec<u32> = (0..9).map(|_| rng.random_range(0..10)).collect();
        let weighted: u32 = digits.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
        let check = match 11 - weighted % 11 {
            11 => 0,
            10 => continue,
            c => c,
        };
        return digits.iter().chain([&check]).map(|d| d.to_string()).collect();
    }
}

/// A device table row's cells: columns are at least two spaces apart.
pub fn cells(row: &str) -> Vec<&str> {
    row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
}

/// A word no log line could contain by chance: a marker, a kind and random letters.
pub fn token(kind: &str) -> String {
    let random: String = rand::rng().sample_iter(Alphanumeric).take(12).map(char::from).collect();
    format!("Zqx7{kind}{random}")
}

/// `words` random lowercase words, so the text does not compress away.
pub fn filler(words: usize) -> String {
    let mut rng = rand::rng();
    let mut text = String::with_capacity(words * 7);
    for _ in 0..words {
        let len = rng.random_range(3..9);
        text.extend((0..len).map(|_| char::from(rng.random_range(b'a'..=b'z'))));
        text.push(' ');
    }
    text
}

/// Removes terminal colour sequences (ESC [ ... letter), which the log may hold.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
