//! The real `outpost-server` binary as a child process, set up through its own admin commands
//! and synced with real device stores over TLS: killed with SIGKILL mid-sync and restarted,
//! stopped with SIGTERM, started on an empty data directory, and its whole log read back to
//! check that no record content, credential or enrolment code ever reaches it.

#[path = "process/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_core::ReviewState;
use outpost_core::net::{Client, ClientConfig, SyncOptions};

use harness::*;

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
