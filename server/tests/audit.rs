//! The audit trail's tamper evidence, from outside: an untouched trail verifies; an edited,
//! removed or reordered entry, a rewritten chain, a cut-off end and a checkpoint signed with
//! another key are each found and named by seq. Retention removes whole old segments and what
//! remains still verifies. Two writers on one database file, as threads and as two real
//! `outpost-server` processes, leave one chain with no gaps. And the HTTP layer records the
//! address a device enrolled from.
// The helpers below are test code too; a failed step should panic where it failed.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use outpost_core::{TeamId, WorkerId};
use outpost_server::audit::{self, AuditSettings, Verification, checkpoint_message, entry_hash};
use outpost_server::auth::hash_enrolment_code;
use outpost_server::signing::ServerKey;
use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::storage::{Accounts, AuditEntry, AuditFilter, AuditTrail, CheckpointSigner, Role, ScopePolicy};
use outpost_server::{AppState, app};
use rusqlite::{Connection, params};
use tower::ServiceExt;

const NOW: i64 = 1_760_000_000;
const DAY: i64 = 86_400;

fn entry(at: i64, n: u64) -> AuditEntry {
    AuditEntry {
        at,
        who: if n.is_multiple_of(2) {
            "ann/dev-1".into()
        } else {
            "admin".into()
        },
        action: "push".into(),
        subject: format!("visit-{}", n % 3),
        detail: format!("entry {n}"),
        from: if n.is_multiple_of(2) {
            "203.0.113.7".into()
        } else {
            String::new()
        },
    }
}

fn settings(dir: &Path, every: u64) -> AuditSettings {
    AuditSettings {
        checkpoint_every: every,
        ..AuditSettings::new(dir)
    }
}

/// A trail of `count` entries at `at`, sealed every `every` as it is written.
fn trail(path: &Path, key: &ServerKey, count: u64, every: u64, at: i64) -> SqliteStorage {
    let storage = SqliteStorage::open(path).unwrap();
    append(&storage, key, count, every, at);
    storage
}

fn append(storage: &SqliteStorage, key: &ServerKey, count: u64, every: u64, at: i64) {
    let settings = settings(Path::new("unused"), every);
    for n in 0..count {
        storage.audit(&entry(at, n)).unwrap();
        audit::seal(storage, key, &settings, at).unwrap();
    }
}

fn verify(storage: &SqliteStorage, key: &ServerKey) -> Verification {
    audit::verify(storage, &[key.public_key().to_vec()]).unwrap()
}

/// A copy of the database to tamper with, opened directly as an attacker with the file would,
/// with the triggers that keep the server itself from rewriting history dropped first.
fn tampered(original: &SqliteStorage, dir: &Path, name: &str, sql: &str) -> SqliteStorage {
    let path = dir.join(format!("{name}.db"));
    original.backup(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_append_only; DROP TRIGGER audit_retained_only;
         DROP TRIGGER audit_checkpoints_kept; DROP TRIGGER audit_checkpoints_retained_only;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    SqliteStorage::open(&path).unwrap()
}

fn broken_at(verification: &Verification) -> (u64, String) {
    let broken = verification
        .broken
        .clone()
        .unwrap_or_else(|| panic!("tampering went unnoticed: {verification}"));
    (broken.seq, broken.reason)
}

#[test]
fn an_untouched_trail_verifies_and_each_kind_of_tampering_is_named_by_seq() {
    let dir = tempfile::tempdir().unwrap();
    let key = ServerKey::generate().unwrap();
    let storage = trail(&dir.path().join("audit.db"), &key, 25, 10, NOW);
    let intact = verify(&storage, &key);
    assert!(intact.is_intact(), "{intact}");
    assert_eq!(
        (
            intact.first,
            intact.last,
            intact.entries,
            intact.checkpoints,
            intact.last_checkpoint
        ),
        (Some(1), Some(25), 25, 2, Some(20))
    );
    assert!(intact.to_string().contains("5 entries after it"), "{intact}");

    let edited = tampered(
        &storage,
        dir.path(),
        "edited",
        "UPDATE audit SET detail = 'nothing happened' WHERE seq = 5",
    );
    let (seq, reason) = broken_at(&verify(&edited, &key));
    assert_eq!(seq, 5);
    assert!(reason.contains("altered"), "{reason}");

    let removed = tampered(&storage, dir.path(), "removed", "DELETE FROM audit WHERE seq = 12");
    let (seq, reason) = broken_at(&verify(&removed, &key));
    assert_eq!(seq, 12);
    assert!(reason.contains("missing"), "{reason}");

    let reordered = tampered(
        &storage,
        dir.path(),
        "reordered",
        "UPDATE audit SET seq = 1000 WHERE seq = 7;
         UPDATE audit SET seq = 7 WHERE seq = 8;
         UPDATE audit SET seq = 8 WHERE seq = 1000;",
    );
    let (seq, reason) = broken_at(&verify(&reordered, &key));
    assert_eq!(seq, 7);
    assert!(reason.contains("does not chain"), "{reason}");

    // The whole chain rewritten from an edit on: every hash agrees, but not with the signed
    // checkpoint after it.
    let rewritten = dir.path().join("rewritten.db");
    storage.backup(&rewritten).unwrap();
    rechain_from(&rewritten, 5, "nothing happened");
    let rewritten = SqliteStorage::open(&rewritten).unwrap();
    let (seq, reason) = broken_at(&verify(&rewritten, &key));
    assert_eq!(seq, 10);
    assert!(reason.contains("rewritten"), "{reason}");

    // The newest entries cut off: the checkpoint at 20 outlives them.
    let cut = tampered(&storage, dir.path(), "cut", "DELETE FROM audit WHERE seq >= 19");
    let (seq, reason) = broken_at(&verify(&cut, &key));
    assert_eq!(seq, 20);
    assert!(reason.contains("removed from its end"), "{reason}");

    // The oldest removed as if by retention, but with no signed checkpoint to anchor the rest.
    let beheaded = tampered(&storage, dir.path(), "beheaded", "DELETE FROM audit WHERE seq <= 4");
    let (seq, reason) = broken_at(&verify(&beheaded, &key));
    assert_eq!(seq, 5);
    assert!(reason.contains("no signed checkpoint"), "{reason}");

    // A checkpoint signed with another key, over the right message.
    let forger = ServerKey::generate().unwrap();
    let checkpoint = storage.checkpoints().unwrap().pop().unwrap();
    let forged_path = dir.path().join("forged.db");
    storage.backup(&forged_path).unwrap();
    let conn = Connection::open(&forged_path).unwrap();
    conn.execute_batch("DROP TRIGGER audit_checkpoints_kept").unwrap();
    let message = checkpoint_message(checkpoint.seq, &checkpoint.hash, checkpoint.at);
    conn.execute(
        "UPDATE audit_checkpoints SET public_key = ?1, signature = ?2 WHERE seq = ?3",
        params![
            CheckpointSigner::public_key(&forger),
            CheckpointSigner::sign(&forger, &message),
            checkpoint.seq as i64
        ],
    )
    .unwrap();
    drop(conn);
    let forged = SqliteStorage::open(&forged_path).unwrap();
    let (seq, reason) = broken_at(&verify(&forged, &key));
    assert_eq!(seq, 20);
    assert!(reason.contains("not the server's"), "{reason}");

    // And nothing above touched the original.
    assert!(verify(&storage, &key).is_intact());
}

/// Rewrites entry `from`'s detail and recomputes every hash after it, as an attacker who knows
/// the scheme but not the key would.
fn rechain_from(path: &PathBuf, from: i64, detail: &str) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER audit_append_only").unwrap();
    conn.execute("UPDATE audit SET detail = ?1 WHERE seq = ?2", params![detail, from])
        .unwrap();
    let mut prev: [u8; 32] = conn
        .query_row("SELECT prev_hash FROM audit WHERE seq = ?1", [from], |row| {
            row.get::<_, Vec<u8>>(0)
        })
        .unwrap()
        .try_into()
        .unwrap();
    let rows: Vec<(i64, AuditEntry)> = conn
        .prepare("SELECT seq, at, who, action, subject, detail, from_addr FROM audit WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([from], |row| {
            Ok((
                row.get(0)?,
                AuditEntry {
                    at: row.get(1)?,
                    who: row.get(2)?,
                    action: row.get(3)?,
                    subject: row.get(4)?,
                    detail: row.get(5)?,
                    from: row.get(6)?,
                },
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (seq, entry) in rows {
        let hash = entry_hash(&prev, seq as u64, &entry);
        conn.execute(
            "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            params![prev.as_slice(), hash.as_slice(), seq],
        )
        .unwrap();
        prev = hash;
    }
}

#[test]
fn retention_removes_whole_old_segments_and_what_remains_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = ServerKey::generate().unwrap();
    let trusted = [key.public_key().to_vec()];
    // 17 entries 100 days old (checkpoints at 5, 10, 15), then 8 from today: 18 is signed at
    // once, as the entries before it are older than an hour, then 20 and 25.
    let storage = trail(&dir.path().join("audit.db"), &key, 17, 5, NOW - 100 * DAY);
    append(&storage, &key, 8, 5, NOW);

    // 16 and 17 are old too, but their segment ends at 18, written today: it stays whole.
    assert_eq!(audit::retain(&storage, &trusted, 30, NOW).unwrap(), Some(15));
    let after = verify(&storage, &key);
    assert!(after.is_intact(), "{after}");
    assert_eq!((after.anchor, after.first, after.last), (Some(15), Some(16), Some(25)));
    assert!(after.to_string().contains("removed by retention"), "{after}");
    assert_eq!(
        storage.checkpoints().unwrap().iter().map(|c| c.seq).collect::<Vec<_>>(),
        [15, 18, 20, 25]
    );
    assert_eq!(
        audit::retain(&storage, &trusted, 30, NOW).unwrap(),
        None,
        "nothing more is old"
    );

    // The chain goes on from where it was.
    append(&storage, &key, 3, 5, NOW);
    let more = verify(&storage, &key);
    assert!(more.is_intact(), "{more}");
    assert_eq!((more.first, more.last), (Some(16), Some(28)));

    // The server itself can neither rewrite nor delete outside retention.
    let conn = Connection::open(dir.path().join("audit.db")).unwrap();
    let err = conn
        .execute("UPDATE audit SET detail = 'x' WHERE seq = 20", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("append-only"), "{err}");
    let err = conn
        .execute("DELETE FROM audit WHERE seq = 20", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("append-only"), "{err}");
    let err = conn
        .execute("DELETE FROM audit_checkpoints WHERE seq = 15", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("never the anchor"), "{err}");
    drop(conn);

    // Years later everything is old: every entry goes, the last checkpoint anchors what comes next.
    let later = NOW + 1_000 * DAY;
    storage.add_checkpoint(None, later, &key).unwrap();
    assert_eq!(audit::retain(&storage, &trusted, 30, later).unwrap(), Some(28));
    assert!(
        storage
            .audit_entries(&AuditFilter::default(), 0, 10)
            .unwrap()
            .is_empty()
    );
    let empty = verify(&storage, &key);
    assert!(empty.is_intact(), "{empty}");
    assert_eq!((empty.anchor, empty.entries), (Some(28), 0));
    storage.audit(&entry(later, 1)).unwrap();
    let resumed = verify(&storage, &key);
    assert!(resumed.is_intact(), "{resumed}");
    assert_eq!((resumed.first, resumed.anchor), (Some(29), Some(28)));
}

#[test]
fn retention_refuses_to_remove_a_trail_that_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let key = ServerKey::generate().unwrap();
    let storage = trail(&dir.path().join("audit.db"), &key, 12, 5, NOW - 100 * DAY);
    let edited = tampered(
        &storage,
        dir.path(),
        "edited",
        "UPDATE audit SET detail = 'x' WHERE seq = 3",
    );
    let err = audit::retain(&edited, &[key.public_key().to_vec()], 30, NOW)
        .unwrap_err()
        .to_string();
    assert!(err.contains("seq 3"), "{err}");
    assert_eq!(edited.audit_entries(&AuditFilter::default(), 0, 100).unwrap().len(), 12);
    // Nor is a chain signed that is broken since the checkpoint before.
    let edited = tampered(
        &storage,
        dir.path(),
        "recent",
        "UPDATE audit SET detail = 'x' WHERE seq = 11",
    );
    let err = edited.add_checkpoint(None, NOW, &key).unwrap_err().to_string();
    assert!(err.contains("seq 11"), "{err}");
    assert_eq!(edited.last_checkpoint().unwrap().map(|c| c.seq), Some(10));
}

#[test]
fn two_writers_on_one_database_file_form_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    drop(SqliteStorage::open(&path).unwrap());
    let key = Arc::new(ServerKey::generate().unwrap());
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let (path, key) = (path.clone(), key.clone());
            std::thread::spawn(move || {
                // A connection of its own, as a second process would have.
                let storage = SqliteStorage::open(&path).unwrap();
                let settings = settings(Path::new("unused"), 50);
                for n in 0..300 {
                    storage
                        .audit(&AuditEntry {
                            who: format!("writer-{writer}"),
                            ..entry(NOW, n)
                        })
                        .unwrap();
                    audit::seal(&storage, key.as_ref(), &settings, NOW).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let storage = SqliteStorage::open(&path).unwrap();
    let verified = verify(&storage, &key);
    assert!(verified.is_intact(), "{verified}");
    assert_eq!(
        (verified.first, verified.last, verified.entries),
        (Some(1), Some(600), 600)
    );
    assert_eq!(verified.checkpoints, 12);
    for writer in ["writer-0", "writer-1"] {
        let filter = AuditFilter {
            user: Some(writer.into()),
            ..AuditFilter::default()
        };
        assert_eq!(storage.audit_entries(&filter, 0, 1_000).unwrap().len(), 300);
    }
}

/// `outpost-server` with its own data directory and a small checkpoint interval.
struct Server {
    data_dir: PathBuf,
}

impl Server {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_outpost-server"));
        command
            .args(args)
            .env("OUTPOST_DATA_DIR", &self.data_dir)
            .env("OUTPOST_AUDIT_CHECKPOINT_EVERY", "7")
            .env_remove("OUTPOST_SIGNING_KEY")
            .env_remove("OUTPOST_AUDIT_CHECKPOINT_MINUTES")
            .env_remove("OUTPOST_AUDIT_RETENTION_DAYS")
            .env("RUST_LOG", "warn");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("warning"), "{args:?}: {stderr}");
        String::from_utf8(output.stdout).unwrap()
    }
}

#[test]
fn two_server_processes_writing_at_once_leave_one_unbroken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server {
        data_dir: dir.path().join("data"),
    });
    server.ok(&["create-team", "north", "--name", "North", "--scope", "team"]);
    server.ok(&["add-worker", "ann", "--name", "Ann", "--team", "north"]);

    // Two processes at a time, each issuing codes (each one audited) as fast as it can.
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    server.ok(&["enrol-code", "ann", "--valid-hours", "1"]);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }

    let out = server.ok(&["audit", "verify"]);
    assert!(out.contains("intact: entries 1 to 42 (42 entries)"), "{out}");
    assert!(
        out.contains("6 signed checkpoints verified, the last at seq 42"),
        "{out}"
    );

    let export = server.ok(&["audit", "export"]);
    let lines: Vec<serde_json::Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=42).collect::<Vec<_>>(), "one chain, no gaps");
    let codes = lines.iter().filter(|l| l["action"] == "issue-enrolment-code").count();
    assert_eq!(codes, 40);
    assert!(
        lines.iter().all(|l| l["hash"].as_str().unwrap().len() == 64),
        "{export}"
    );
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);

    // Reading the trail is itself in it.
    let log = server.ok(&["audit", "log", "--user", "admin", "--limit", "3"]);
    assert!(log.lines().next().unwrap().starts_with("seq  time (UTC)"), "{log}");
    assert!(log.lines().nth(1).unwrap().contains("audit-export"), "{log}");
    let by_record = server.ok(&["audit", "log", "--record", "ann"]);
    assert_eq!(by_record.lines().count(), 1 + 41, "{by_record}");
    let out = server.ok(&["audit", "checkpoint"]);
    // After the export (43) and the two look-ups (44, 45), its own entry (46).
    assert!(out.contains("signed a checkpoint at seq 46"), "{out}");
    assert!(server.ok(&["audit", "verify"]).contains("the last at seq 46"));

    // The database edited behind the server's back: verify fails and names the entry.
    let db = server.data_dir.join("outpost.sqlite3");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_append_only;
         UPDATE audit SET who = 'someone else' WHERE seq = 30;",
    )
    .unwrap();
    drop(conn);
    let output = server.run(&["audit", "verify"]);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("BROKEN at seq 30"), "{stdout}");
    assert!(stderr.contains("broken at seq 30"), "{stderr}");

    // Verifying with the public key alone (an auditor without the key file) agrees.
    let key = ServerKey::load_or_create(&server.data_dir.join("signing.key")).unwrap();
    let public = outpost_server::signing::hex(key.public_key());
    std::fs::rename(server.data_dir.join("signing.key"), dir.path().join("elsewhere.key")).unwrap();
    let output = server.run(&["audit", "verify", "--public-key", &public]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("BROKEN at seq 30"));
    let output = server.run(&["audit", "verify"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("no signing key"));
}

#[tokio::test]
async fn enrolment_is_audited_with_the_address_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SqliteStorage::open(dir.path().join("server.db")).unwrap());
    let team = TeamId::new("north").unwrap();
    let ann = WorkerId::new("ann").unwrap();
    storage.create_team(&team, "North", ScopePolicy::Team).unwrap();
    storage.add_worker(&ann, "Ann", Role::Worker, &team).unwrap();
    storage
        .add_enrolment_code(&ann, &hash_enrolment_code("AAAA-BBBB-CCCC-DDDD"), NOW * 2)
        .unwrap();
    let state = AppState::new(storage.clone()).unwrap();
    let peer: SocketAddr = "203.0.113.9:50000".parse().unwrap();
    let mut request = Request::post(outpost_core::sync::wire::ENROL_PATH)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"code":"AAAA-BBBB-CCCC-DDDD","label":"Ann's phone"}"#))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let logged = storage.audit_log(1).unwrap();
    assert_eq!(logged[0].action, "enrol-device");
    assert_eq!(logged[0].from, "203.0.113.9");
}
