//! The real `outpost-server` binary as a child process, set up through its own admin commands
//! and synced with real device stores over TLS: killed with SIGKILL mid-sync and restarted,
//! stopped with SIGTERM, started on an empty data directory, and its whole log read back to
//! check that no record content, credential or enrolment code ever reaches it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use outpost_core::net::{Client, ClientConfig, SyncOptions, SyncReport};
use outpost_core::{Author, DeviceId, DocId, NewPerson, NewVisit, RiskTier, Section, Setting, Store, TeamId, WorkerId};
use rand::Rng;
use rand::distr::Alphanumeric;

const TEAM: &str = "north";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_killed_mid_sync_restarts_and_devices_complete_with_nothing_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::new(dir.path());
    server.start().await;
    server.set_up_team();
    let mut ann = Device::enrol(&server, "ann", dir.path()).await;
    let mut ben = Device::enrol(&server, "ben", dir.path()).await;

    let started = Instant::now();
    let written = write_caseload(&ann, 150, 3000);
    eprintln!("wrote {} visits in {:?}", written.len(), started.elapsed());

    // Ann's push is several rounds (the client sends at most 2 MiB a round). The server dies
    // part-way through it; the sync keeps retrying and finishes once the server is back.
    let killer = server.killer();
    let first_answer = Arc::new(tokio::sync::Notify::new());
    let options = SyncOptions {
        on_progress: Some(Arc::new({
            let first_answer = first_answer.clone();
            move |_| first_answer.notify_one()
        })),
        ..patient()
    };
    let started = Instant::now();
    let restart = async {
        first_answer.notified().await;
        killer.kill();
        let killed_at = started.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.start().await;
        eprintln!("killed after {killed_at:?}; restarted after {:?}", started.elapsed());
    };
    let (pushed, ()) = tokio::join!(ann.sync(options), restart);
    let pushed = pushed.expect("ann's push completes after the restart");
    eprintln!("ann's push: {pushed:?} in {:?}", started.elapsed());
    assert!(pushed.rounds > 1, "the push should take several rounds: {pushed:?}");
    assert!(
        pushed.attempts > pushed.rounds,
        "a round should have failed and been retried: {pushed:?}"
    );
    assert_eq!(ann.pending(), 0);

    // Ben pulls everything; the server dies while the answer is arriving.
    let killer = server.killer();
    let killed = Arc::new(AtomicBool::new(false));
    let options = SyncOptions {
        on_progress: Some(Arc::new({
            let killed = killed.clone();
            move |progress| {
                if progress.docs_received > 0 && !killed.swap(true, Ordering::SeqCst) {
                    killer.kill();
                }
            }
        })),
        max_attempts: 1,
        ..patient()
    };
    let started = Instant::now();
    let first = ben.sync(options).await;
    eprintln!("ben's first pull: {first:?} in {:?}", started.elapsed());
    assert!(killed.load(Ordering::SeqCst), "the server was never killed");
    server.start().await;
    let second = ben
        .sync(patient())
        .await
        .expect("ben's pull completes after the restart");
    eprintln!("ben's second pull: {second:?} in {:?}", started.elapsed());

    assert_eq!(
        ben.store().all_heads().expect("ben's heads"),
        ann.store().all_heads().expect("ann's heads")
    );
    for (visit, word) in &written {
        let hits = ben.store().search(word, 5).expect("search");
        assert_eq!(hits.iter().map(|h| &h.visit).collect::<Vec<_>>(), [visit], "{word}");
    }

    // A device enrolled now gets the same documents from the server alone, and nothing is left
    // to exchange for the other two.
    let mut cat = Device::enrol(&server, "ann", dir.path()).await;
    cat.sync(patient()).await.expect("cat's pull");
    assert_eq!(
        cat.store().all_heads().expect("cat's heads"),
        ann.store().all_heads().expect("ann's heads")
    );
    for device in [&mut ann, &mut ben] {
        let report = device.sync(patient()).await.expect("a final sync");
        assert_eq!(
            (report.progress.docs_pushed, report.progress.docs_received),
            (0, 0),
            "{report:?}"
        );
        assert_eq!(device.pending(), 0);
    }
    let log = server.log();
    assert!(!log.contains("ERROR"), "{log}");
}

// ---- the server as a child process -------------------------------------------------------

/// The server binary run on a fixed loopback port and data directory, so it can be killed and
/// started again where devices expect it. Its stdout and stderr are appended to files across
/// restarts; admin commands run the same binary against the same data directory.
struct ServerProcess {
    data_dir: PathBuf,
    logs: PathBuf,
    port: u16,
    child: Arc<Mutex<Option<Child>>>,
    starts: usize,
}

/// Kills the server from anywhere (a sync's progress callback), with SIGKILL.
#[derive(Clone)]
struct Killer(Arc<Mutex<Option<Child>>>);

impl Killer {
    fn kill(&self) {
        if let Some(mut child) = lock(&self.0).take() {
            // `Child::kill` is SIGKILL on unix: no shutdown code runs.
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the server");
        }
    }
}

impl ServerProcess {
    fn new(dir: &Path) -> Self {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        Self {
            data_dir: dir.join("server-data"),
            logs,
            port: free_port(),
            child: Arc::new(Mutex::new(None)),
            starts: 0,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_outpost-server"));
        command
            .env("OUTPOST_DATA_DIR", &self.data_dir)
            .env("OUTPOST_ADDR", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "debug")
            .env_remove("OUTPOST_PLAIN_ADDR")
            .env_remove("OUTPOST_TLS_CERT")
            .env_remove("OUTPOST_TLS_KEY");
        command
    }

    /// Starts `serve` and waits until it listens and answers /health.
    async fn start(&mut self) {
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

    fn killer(&self) -> Killer {
        Killer(self.child.clone())
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit.
    fn terminate(&mut self, limit: Duration) -> (ExitStatus, Duration) {
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
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs one admin command to completion; returns its stdout. Its stderr goes to a log file.
    fn admin(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().expect("run an admin command");
        let stderr = String::from_utf8_lossy(&output.stderr);
        std::io::Write::write_all(&mut self.log_file("admin.stderr"), &output.stderr).expect("admin log");
        assert!(output.status.success(), "{args:?} failed: {stderr}");
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    fn set_up_team(&self) {
        self.admin(&["create-team", TEAM, "--name", "North locality", "--scope", "team"]);
        self.admin(&["add-worker", "ann", "--name", "Ann Hale", "--team", TEAM]);
        self.admin(&["add-worker", "ben", "--name", "Ben Ford", "--team", TEAM, "--lead"]);
    }

    fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.ca_path()).expect("the server's ca.pem")
    }

    fn ca_path(&self) -> PathBuf {
        self.data_dir.join("tls").join("ca.pem")
    }

    fn client(&self, credential: Option<String>) -> Client {
        Client::new(ClientConfig {
            ca_pem: Some(self.ca_pem()),
            credential,
            io_timeout: Duration::from_secs(5),
            ..ClientConfig::new("127.0.0.1", self.port)
        })
        .expect("client")
    }

    fn log_file(&self, name: &str) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(name))
            .expect("log file")
    }

    fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(name)).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        self.read_log("server.stdout")
    }

    /// Everything `serve` wrote, over every start, with terminal colour codes removed.
    fn log(&self) -> String {
        strip_ansi(&format!("{}{}", self.stdout(), self.read_log("server.stderr")))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.killer().kill();
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
struct Device {
    client: Client,
    store: Arc<Mutex<Store>>,
    credential: String,
    code: String,
}

impl Device {
    async fn enrol(server: &ServerProcess, worker: &str, dir: &Path) -> Self {
        let code = enrolment_code(&server.admin(&["enrol-code", worker]));
        let mut client = server.client(None);
        let enrolled = client.enrol(&code, &format!("{worker}'s phone")).await.expect("enrol");
        let author = Author::new(
            WorkerId::new(enrolled.worker).expect("worker"),
            DeviceId::new(enrolled.device.clone()).expect("device"),
        );
        let store = Store::open(dir.join(format!("{}.sqlite3", enrolled.device)), author).expect("store");
        Self {
            client,
            store: Arc::new(Mutex::new(store)),
            credential: enrolled.credential,
            code,
        }
    }

    async fn sync(&mut self, options: SyncOptions) -> outpost_core::Result<SyncReport> {
        self.client.sync(self.store.clone(), options).await
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    fn pending(&self) -> usize {
        self.store()
            .sync_status(&self.client.peer())
            .expect("sync status")
            .pending_docs
    }
}

/// Retries quickly and often enough to outlast a restart.
fn patient() -> SyncOptions {
    SyncOptions {
        max_attempts: 30,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..SyncOptions::default()
    }
}

/// `people` people, each with a visit of about `words` words, one of them unique to it.
/// Returns each visit with its unique word.
fn write_caseload(device: &Device, people: usize, words: usize) -> Vec<(DocId, String)> {
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
                .edit_visit(&visit, |v| v.set_section(Section::WhatMatters, &text))
                .expect("visit text");
            (visit, unique)
        })
        .collect()
}

fn new_person(name: &str, team: &TeamId, worker: &WorkerId) -> NewPerson {
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

fn new_visit(person: &DocId, worker: &WorkerId) -> NewVisit {
    NewVisit {
        person: person.clone(),
        worker: worker.clone(),
        at: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).single().expect("date"),
        setting: Setting::HomeVisit,
    }
}

// ---- small helpers ------------------------------------------------------------------------

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// The code in an `enrol-code` output: the one indented line.
fn enrolment_code(output: &str) -> String {
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

/// A word no log line could contain by chance: a marker, a kind and random letters.
fn token(kind: &str) -> String {
    let random: String = rand::rng().sample_iter(Alphanumeric).take(12).map(char::from).collect();
    format!("Zqx7{kind}{random}")
}

/// `words` random lowercase words, so the text does not compress away.
fn filler(words: usize) -> String {
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
fn strip_ansi(text: &str) -> String {
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
