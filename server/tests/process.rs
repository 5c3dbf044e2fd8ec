//! The real `outpost-server` binary as a child process, set up through its own admin commands
//! and synced with real device stores over TLS: killed with SIGKILL mid-sync and restarted,
//! stopped with SIGTERM, started on an empty data directory, and its whole log read back to
//! check that no record content, credential or enrolment code ever reaches it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use outpost_core::net::{Client, ClientConfig, SyncOptions, SyncReport};
use outpost_core::{
    Author, DeviceId, DocId, Helped, NewContact, NewPerson, NewVisit, ReviewAction, ReviewState, RiskTier, Section,
    Setting, Store, TeamId, WorkerId,
};
use rand::Rng;
use rand::distr::Alphanumeric;

const TEAM: &str = "north";
/// Clock ticks per second in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_killed_mid_sync_restarts_and_devices_complete_with_nothing_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::new(dir.path());
    server.start().await;
    server.set_up_team();
    let mut ann = Device::enrol(&server, "ann", dir.path()).await;
    let mut ben = Device::enrol(&server, "ben", dir.path()).await;
    let started = Instant::now();
    let mut written = write_caseload(&ann, 80, 300);
    written.extend(write_caseload(&ben, 40, 300));
    eprintln!("ann and ben wrote 120 visits offline in {:?}", started.elapsed());

    // Each push is one round that takes the server a while to check and store. The server is
    // killed (SIGKILL) while it works on it, and the device's retries outlast the restart.
    for (name, device) in [("ann", &mut ann), ("ben", &mut ben)] {
        let started = Instant::now();
        let answered = server.sync_answers();
        let (report, ()) = tokio::join!(
            device.sync(patient()),
            server.kill_when_busy_and_restart(Duration::from_millis(50))
        );
        let report = report.unwrap_or_else(|e| panic!("{name}'s sync did not complete after the restart: {e}"));
        eprintln!("{name}'s sync across a kill: {:?}, {report:?}", started.elapsed());
        assert!(
            report.attempts > report.rounds,
            "{name}'s round should have failed and been retried: {report:?}"
        );
        assert_eq!(device.pending(), 0, "{name}");
        // The killed round was never answered: one answer for the retry that succeeded.
        assert_eq!(server.sync_answers(), answered + report.rounds as usize, "{name}");
    }
    ann.sync(patient()).await.expect("ann pulls ben's work");

    // Ann's spare phone, enrolled now, pulls everything; the server is killed as the first
    // documents are applied. Whether that cuts the answer depends on what the sockets had
    // buffered (a few hundred KB usually arrive whole); either way nothing may be missing.
    let mut spare = Device::enrol(&server, "ann", dir.path()).await;
    let killer = server.killer();
    let options = SyncOptions {
        on_progress: Some(Arc::new(move |progress| {
            if progress.docs_received > 0 {
                killer.kill();
            }
        })),
        max_attempts: 1,
        ..patient()
    };
    let started = Instant::now();
    let first = spare.sync(options).await;
    assert!(!server.is_running(), "the server was never killed");
    match &first {
        Ok(report) => eprintln!("the spare's pull finished although the server died: {report:?}"),
        Err(error) => eprintln!("the spare's pull was cut: {error}"),
    }
    server.start().await;
    let second = spare
        .sync(patient())
        .await
        .expect("the spare's pull completes after the restart");
    eprintln!(
        "the spare's pull after the restart: {second:?}; {:?} in all",
        started.elapsed()
    );

    let heads = ann.store().all_heads().expect("ann's heads");
    assert_eq!(heads.len(), 120 * 3, "a person, a visit and its review each");
    for device in [&ben, &spare] {
        assert_eq!(device.store().all_heads().expect("heads"), heads);
    }
    for (visit, word) in &written {
        for device in [&ann, &ben, &spare] {
            let hits = device.store().search(word, 5).expect("search");
            assert_eq!(hits.iter().map(|h| &h.visit).collect::<Vec<_>>(), [visit], "{word}");
        }
    }
    for (name, device) in [("ann", &mut ann), ("ben", &mut ben), ("spare", &mut spare)] {
        let report = device.sync(patient()).await.expect("a final sync");
        let exchanged = (report.progress.docs_pushed, report.progress.docs_received);
        assert_eq!(exchanged, (0, 0), "{name} had something left to exchange: {report:?}");
        assert_eq!(device.pending(), 0, "{name}");
    }
    let devices = server.admin(&["devices"]);
    assert_eq!(devices.lines().count(), 4, "{devices}");
    assert!(
        devices.lines().skip(1).all(|row| cells(row)[4] != "-"),
        "every device has synced: {devices}"
    );
    let log = server.log();
    assert_eq!(log.matches("listening on https://").count(), 4, "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hold_no_personal_data_from_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::new(dir.path());
    server.start().await;
    server.set_up_team();
    let mut ann = Device::enrol(&server, "ann", dir.path()).await;
    let mut ben = Device::enrol(&server, "ben", dir.path()).await;
    let (visits, mut secrets) = write_personal_records(&ann, 4);

    ann.sync(patient()).await.expect("ann's push");
    ben.sync(patient()).await.expect("ben's pull");
    assert_eq!(ben.store().all_heads().expect("heads").len(), 12);

    // Ben, the team lead, approves one visit and returns another from the admin command.
    let approve = token("Approve");
    let out = server.admin(&[
        "review",
        "approve",
        visits[0].as_str(),
        "--lead",
        "ben",
        "--comment",
        &approve,
    ]);
    assert_eq!(out.trim(), format!("visit {} is now approved", visits[0]));
    let returned = token("Return");
    let out = server.admin(&[
        "review",
        "return",
        visits[1].as_str(),
        "--lead",
        "ben",
        "--comment",
        &returned,
    ]);
    assert_eq!(out.trim(), format!("visit {} is now returned", visits[1]));
    ann.sync(patient()).await.expect("ann pulls the decisions");
    let review = ann.store().review(&visits[0]).expect("review");
    assert_eq!(review.state.value, ReviewState::Approved);
    assert_eq!(
        review.history.last().and_then(|s| s.comment.as_deref()),
        Some(approve.as_str())
    );
    secrets.extend([approve, returned]);

    // A lost phone: it syncs, is revoked, and is refused; then a forged credential and a spent
    // or made-up enrolment code are refused too.
    let mut lost = Device::enrol(&server, "ann", dir.path()).await;
    lost.sync(patient()).await.expect("the phone syncs before it is lost");
    server.admin(&["revoke", lost.device.as_str()]);
    let refused = lost.sync(patient()).await.expect_err("a revoked device is refused");
    assert!(matches!(refused, outpost_core::Error::Revoked(_)), "{refused}");
    let forged = token("Cred");
    lost.client.set_credential(Some(forged.clone()));
    let refused = lost.sync(patient()).await.expect_err("a forged credential is refused");
    assert!(matches!(refused, outpost_core::Error::Unauthenticated(_)), "{refused}");
    let made_up = token("Code");
    for code in [ann.code.as_str(), made_up.as_str()] {
        let refused = server.client(None).enrol(code, "a second phone").await;
        assert!(refused.is_err(), "enrolled with {code}");
    }
    secrets.extend([forged, made_up]);
    for device in [&ann, &ben, &lost] {
        // The code as typed and as the server normalises it.
        secrets.extend([
            device.credential.clone(),
            device.code.clone(),
            device.code.replace('-', ""),
        ]);
    }

    let log = format!("{}{}", server.log(), server.admin_log());
    let lines: Vec<&str> = log.lines().collect();
    eprintln!("{} log lines checked for {} secrets", lines.len(), secrets.len());
    // The log is on and holds the access log, so an empty or silent log cannot pass.
    let access = |path: &str, status: &str| {
        lines
            .iter()
            .any(|l| l.contains(&format!("path={path}")) && l.contains(&format!("status={status}")))
    };
    assert!(
        access("/v1/sync", "200"),
        "no successful sync in the access log:\n{log}"
    );
    assert!(access("/v1/sync", "401"), "no refused sync in the access log:\n{log}");
    assert!(access("/v1/enrol", "200"), "no enrolment in the access log:\n{log}");
    assert!(log.contains("DEBUG"), "the log is not at debug level:\n{log}");
    for line in &lines {
        assert!(!line.contains("Zqx7"), "record content in the log: {line}");
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "{secret:?} in the log: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::new(dir.path());
    server.start().await;
    server.set_up_team();
    let mut ann = Device::enrol(&server, "ann", dir.path()).await;
    write_caseload(&ann, 60, 300);
    // A phone that asked something and keeps its connection open, idle.
    let mut idle = server.client(None);
    idle.health().await.expect("health");

    // SIGTERM arrives while the server is storing Ann's push: that request is answered (one
    // attempt, nothing retried), then the process exits.
    let sigterm_mid_request = async {
        server.wait_until_busy(Duration::from_millis(50)).await;
        assert_eq!(server.sync_answers(), 0, "the push was answered before SIGTERM");
        server.terminate(Duration::from_secs(15)).await
    };
    let options = SyncOptions {
        max_attempts: 1,
        ..SyncOptions::default()
    };
    let (pushed, (status, took)) = tokio::join!(ann.sync(options), sigterm_mid_request);
    eprintln!("exited with {status} {took:?} after SIGTERM; the push: {pushed:?}");
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(5), "took {took:?} to exit");
    let pushed = pushed.expect("the request in flight at SIGTERM is answered");
    assert_eq!((pushed.attempts, pushed.progress.docs_pushed), (1, 180), "{pushed:?}");
    assert_eq!(ann.pending(), 0);

    assert!(idle.health().await.is_err(), "the old connection still answers");
    assert!(server.client(None).health().await.is_err(), "the port still answers");
    let log = server.log();
    assert!(!log.contains("ERROR"), "{log}");

    // What it acknowledged before stopping is there after a start.
    server.start().await;
    let mut ben = Device::enrol(&server, "ben", dir.path()).await;
    ben.sync(patient()).await.expect("ben's pull");
    assert_eq!(
        ben.store().all_heads().expect("ben's heads"),
        ann.store().all_heads().expect("ann's heads")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_command_prints_how_to_enrol_a_first_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::new(dir.path());
    server.start().await;

    let stdout = server.stdout();
    assert!(stdout.contains("no devices are enrolled yet"), "{stdout}");
    for step in ["create-team", "add-worker", "enrol-code"] {
        assert!(
            stdout.contains(&format!("outpost-server {step} ")),
            "{step} missing:\n{stdout}"
        );
    }
    let ca = server.ca_path();
    assert!(
        stdout.contains(&format!("clients trust {}", ca.display())),
        "the CA path is not printed:\n{stdout}"
    );
    let pem = std::fs::read_to_string(&ca).expect("ca.pem");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    // /health over TLS: answered to a client trusting that CA, refused at the handshake to one
    // that trusts nothing.
    server.client(None).health().await.expect("health with the printed CA");
    let mut stranger = Client::new(ClientConfig::new("127.0.0.1", server.port)).expect("client");
    let refused = stranger.health().await.expect_err("a client without the CA is refused");
    assert!(refused.to_string().contains("TLS"), "{refused}");

    // Following the printed steps enrols a device; after that a restart keeps the same CA and
    // no longer prints the first-device instructions.
    server.set_up_team();
    Device::enrol(&server, "ann", dir.path()).await;
    server.killer().kill();
    server.start().await;
    assert_eq!(std::fs::read_to_string(&ca).expect("ca.pem"), pem);
    let stdout = server.stdout();
    assert_eq!(stdout.matches("no devices are enrolled yet").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("listening on https://").count(), 2, "{stdout}");
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
            .env_remove("OUTPOST_LOG_FORMAT")
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

    fn is_running(&self) -> bool {
        lock(&self.child).is_some()
    }

    /// CPU time (user and system) the running server has used, from /proc.
    fn cpu_time(&self) -> Duration {
        let pid = lock(&self.child).as_ref().expect("the server is running").id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
        // After the command name (which may hold spaces): utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
    }

    /// Waits until the server has spent `cpu` of CPU time from now: it is working on a request.
    async fn wait_until_busy(&self, cpu: Duration) {
        let from = self.cpu_time();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.cpu_time() - from < cpu {
            assert!(Instant::now() < deadline, "the server never got busy");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Kills the server with SIGKILL once it has spent `cpu` of CPU time from now (working on a
    /// request), then starts it again.
    async fn kill_when_busy_and_restart(&mut self, cpu: Duration) {
        self.wait_until_busy(cpu).await;
        self.killer().kill();
        // Long enough for a device to find the port closed and back off.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.start().await;
    }

    /// Sync requests answered so far, counted from the access log.
    fn sync_answers(&self) -> usize {
        self.log().matches("path=/v1/sync").count()
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; returns how it exited and
    /// how long that took.
    async fn terminate(&self, limit: Duration) -> (ExitStatus, Duration) {
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

    /// What admin commands wrote to stderr.
    fn admin_log(&self) -> String {
        strip_ansi(&self.read_log("admin.stderr"))
    }

    /// Everything `serve` wrote, over every start, with terminal colour codes removed.
    fn log(&self) -> String {
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
struct Device {
    client: Client,
    store: Arc<Mutex<Store>>,
    device: DeviceId,
    credential: String,
    code: String,
}

impl Device {
    async fn enrol(server: &ServerProcess, worker: &str, dir: &Path) -> Self {
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
                .edit_visit(&visit, |v| v.splice(Section::WhatMatters, 0, 0, &text))
                .expect("visit text");
            (visit, unique)
        })
        .collect()
}

/// `people` people whose records are full of personal data, each with a visit submitted for
/// review. Returns the visits and every personal string written.
fn write_personal_records(device: &Device, people: usize) -> (Vec<DocId>, Vec<String>) {
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

/// A random NHS number with a valid check digit, as ten digits.
fn nhs_number() -> String {
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
fn cells(row: &str) -> Vec<&str> {
    row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
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
