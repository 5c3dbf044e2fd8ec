//! Several real `outpost-server` processes over one PostgreSQL database, as a deployment that
//! outgrows one machine runs them: what one accepts reaches devices syncing with another, edits
//! of one record arriving through different processes at once all survive, each process writes
//! as its own Automerge actor, and the audit trail both write stays one chain that verifies.
//! Needs the PostgreSQL at `OUTPOST_TEST_POSTGRES` (default postgres://postgres@127.0.0.1/test);
//! fails, never skips, without it.

#[path = "process/harness.rs"]
mod harness;

use outpost_core::{DocId, Record, Section, TeamId};

use harness::*;

/// The phones that sync with process A; the rest sync with B.
const SYNC_WITH_A: [&str; 3] = ["ann", "ann-tablet", "ben-spare"];
/// Rounds of concurrent editing; each phone types one token into the same visit per round.
const ROUNDS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_over_postgres_share_every_change_and_lose_no_concurrent_edit() {
    let database = Schema::create().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = ServerProcess::new(&dir.path().join("a")).with_database(&database.url);
    a.start().await;
    a.set_up_team();
    let mut b = ServerProcess::beside(&a, &dir.path().join("b"));
    b.start().await;

    // Six phones, three syncing with each process: Ann's and Ben's, with spares.
    let mut phones = Vec::new();
    for (name, worker) in [
        ("ann", "ann"),
        ("ann-spare", "ann"),
        ("ann-tablet", "ann"),
        ("ben", "ben"),
        ("ben-spare", "ben"),
        ("ben-tablet", "ben"),
    ] {
        let server = if SYNC_WITH_A.contains(&name) { &a } else { &b };
        phones.push((name, Device::enrol(server, worker, dir.path()).await));
    }

    let visit = {
        let mut store = phones[0].1.store();
        let worker = store.author().worker.clone();
        let person = store
            .create_person(&new_person("Iris Kemp", &TeamId::new(TEAM).expect("team"), &worker))
            .expect("person");
        let visit = store.create_visit(&new_visit(&person, &worker)).expect("visit");
        store
            .edit_visit(&visit, |v| v.splice(Section::WhatMatters, 0, 0, "first words "))
            .expect("first words");
        visit
    };
    phones[0].1.sync(patient()).await.expect("ann pushes through A");
    phones[3].1.sync(patient()).await.expect("ben pulls through B");
    assert_eq!(
        text(&phones[3].1, &visit),
        "first words ",
        "what process A accepted reaches a device syncing with process B at its next sync"
    );
    phones = sync_all(phones).await;

    // Every round, all six type into the same section and sync at the same moment, through two
    // processes: each process merges onto what the other may have just written.
    let mut typed = Vec::new();
    for round in 0..ROUNDS {
        for (name, device) in &phones {
            let token = token(&format!("{}{round}", name.replace('-', "")));
            device
                .store()
                .edit_visit(&visit, |v| v.splice(Section::WhatMatters, 0, 0, &format!("{token} ")))
                .expect("typing");
            typed.push(token);
        }
        phones = sync_all(phones).await;
        // Every push was acknowledged, so the server's stored record holds every token now,
        // not only after devices reconcile.
        let stored = database.stored_text(&visit).await;
        for token in &typed {
            assert!(
                stored.contains(token.as_str()),
                "round {round}: the server lost {token}"
            );
        }
    }
    // Two quiet rounds, so every phone has everything the others sent.
    for _ in 0..2 {
        for (_, device) in &mut phones {
            device.sync(patient()).await.expect("a quiet sync");
        }
    }
    let reference = text(&phones[0].1, &visit);
    for (name, device) in &phones {
        let seen = text(device, &visit);
        assert_eq!(seen, reference, "{name} converged with ann");
        assert_eq!(device.pending(), 0, "{name} has nothing unacknowledged");
        for token in &typed {
            assert!(seen.contains(token.as_str()), "{name} lacks {token}: {seen}");
        }
    }
    assert!(reference.ends_with("first words "), "{reference}");
    // A phone enrolled now receives the record whole, as the server stored it after all those
    // merges: nothing one process wrote was overwritten by the other.
    let mut fresh = Device::enrol(&a, "ben", dir.path()).await;
    fresh.sync(patient()).await.expect("a fresh phone pulls through A");
    assert_eq!(text(&fresh, &visit), reference, "the stored record holds every edit");

    // A rolling restart, as an upgrade does it: B stops and starts again while A serves; the
    // phones syncing with A never notice, and B's pick up where they were once it is back.
    let (status, _) = b.terminate(std::time::Duration::from_secs(15)).await;
    assert!(status.success(), "B stops cleanly: {status}");
    for (name, device) in phones.iter_mut().filter(|(name, _)| SYNC_WITH_A.contains(name)) {
        let token = token("whileBwasdown");
        device
            .store()
            .edit_visit(&visit, |v| v.splice(Section::Goals, 0, 0, &format!("{token} ")))
            .expect("typing");
        device
            .sync(patient())
            .await
            .unwrap_or_else(|e| panic!("{name} syncs with A while B is down: {e}"));
        typed.push(token);
    }
    b.start().await;
    phones = sync_all(phones).await;
    phones = sync_all(phones).await;
    for (name, device) in &phones {
        let goals = device
            .store()
            .visit(&visit)
            .expect("visit")
            .section(Section::Goals)
            .to_string();
        for token in typed.iter().filter(|t| t.contains("whileBwasdown")) {
            assert!(goals.contains(token.as_str()), "{name} lacks {token} after B's restart");
        }
    }

    // Each process registered its own actor: none writes as another.
    let server_actors = database
        .count("SELECT count(DISTINCT actor) FROM actors WHERE device_id IS NULL")
        .await;
    assert!(server_actors >= 2, "{server_actors} server actors for two processes");
    let retried = |server: &ServerProcess| server.log().matches("merging again").count();
    eprintln!("merges retried: A {}, B {}", retried(&a), retried(&b));

    // Both processes (and the admin commands) appended to one audit chain.
    for worker in ["ann", "ben"] {
        let pushes = database
            .count(&format!(
                "SELECT count(*) FROM audit WHERE action = 'push' AND who LIKE '{worker}/%'"
            ))
            .await;
        assert!(pushes > 0, "{worker}'s pushes are in the audit trail");
    }
    let verified = a.admin(&["audit", "verify"]);
    assert!(verified.contains("the audit trail is intact"), "{verified}");
}

/// A PostgreSQL schema of the test's own, dropped at the end.
struct Schema {
    name: String,
    url: String,
}

impl Schema {
    async fn create() -> Self {
        let base =
            std::env::var("OUTPOST_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("outpost_scale_{}", std::process::id());
        let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is needed for this test (OUTPOST_TEST_POSTGRES): {e}"));
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
            .await
            .expect("a schema for the test");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        Self { name, url }
    }

    /// The visit's text as the server stores it.
    async fn stored_text(&self, visit: &DocId) -> String {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let row = client
            .query_one("SELECT snapshot FROM documents WHERE doc_id = $1", &[&visit.as_str()])
            .await
            .expect("the stored visit");
        let record = Record::load(visit.clone(), row.get(0)).expect("the stored visit loads");
        record
            .visit()
            .expect("a visit")
            .section(Section::WhatMatters)
            .to_string()
    }

    async fn count(&self, sql: &str) -> i64 {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client.query_one(sql, &[]).await.expect(sql).get(0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Off the test's runtime, which cannot block on another.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
        let _ = dropped.join();
    }
}

/// Syncs every phone at the same moment, each on a task of its own.
async fn sync_all(phones: Vec<(&'static str, Device)>) -> Vec<(&'static str, Device)> {
    let tasks: Vec<_> = phones
        .into_iter()
        .map(|(name, mut device)| {
            tokio::spawn(async move {
                let result = device.sync(patient()).await;
                (name, device, result)
            })
        })
        .collect();
    let mut synced = Vec::new();
    for task in tasks {
        let (name, device, result) = task.await.expect("a sync task");
        result.unwrap_or_else(|e| panic!("{name}'s sync: {e}"));
        synced.push((name, device));
    }
    synced
}

fn text(device: &Device, visit: &DocId) -> String {
    device
        .store()
        .visit(visit)
        .expect("the visit")
        .section(Section::WhatMatters)
        .to_string()
}
