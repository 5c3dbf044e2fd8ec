//! The embedded default: one SQLite file, no setup. A single connection behind a mutex keeps
//! every sync's writes in one serialised transaction, which is also what gives the log its
//! order.

mod accounts;
mod audit;
mod documents;
mod duplicates;
mod erasure;
mod forget;
mod leases;
mod review;
mod web;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// Each entry upgrades from version `i` to `i + 1`. Never edit a shipped entry: add another.
const MIGRATIONS: &[fn(&Transaction<'_>) -> rusqlite::Result<()>] = &[
    v1_schema,
    v2_review,
    leases::v3_devices,
    audit::v4_audit,
    web::v5_sign_in_failures,
    forget::v6_forget,
    erasure::v7_erasure,
    duplicates::v8_duplicates,
];

#[derive(Debug)]
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let mut conn = Connection::open(path)?;
        // First: another process (an admin command beside the server) may hold a lock.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted content is overwritten with zeros, so redacted text leaves no trace in freed
        // pages of the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        let before: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        migrate(&mut conn)?;
        if (1..6).contains(&before) {
            // Pages freed before this version may still hold deleted text: rewrite the file once.
            conn.execute_batch("VACUUM")?;
        }
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| Error::Internal("the storage lock was poisoned by a panic".into()))
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let target = MIGRATIONS.len() as i64;
    if version > target {
        return Err(Error::Internal(format!(
            "the database is at schema version {version}, newer than this server's {target}"
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        // Under the write lock, and only if no other process opening the same file at the
        // same moment has run it already.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if now > i as i64 {
            continue;
        }
        migration(&tx)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// v1: accounts, documents and the log devices pull from.
fn v1_schema(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT;
        INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(16))));

        CREATE TABLE teams (
            team_id TEXT PRIMARY KEY,
            name    TEXT NOT NULL,
            scope   TEXT NOT NULL CHECK (scope IN ('team', 'allocated'))
        ) STRICT;
        CREATE TABLE workers (
            worker_id TEXT PRIMARY KEY,
            name      TEXT NOT NULL,
            role      TEXT NOT NULL CHECK (role IN ('worker', 'lead')),
            team_id   TEXT NOT NULL REFERENCES teams(team_id)
        ) STRICT;
        CREATE TABLE enrolment_codes (
            code_hash  BLOB PRIMARY KEY,
            worker_id  TEXT NOT NULL REFERENCES workers(worker_id),
            expires_at INTEGER NOT NULL,
            used_at    INTEGER
        ) STRICT;
        CREATE TABLE devices (
            device_id       TEXT PRIMARY KEY,
            worker_id       TEXT NOT NULL REFERENCES workers(worker_id),
            label           TEXT NOT NULL,
            credential_hash BLOB NOT NULL UNIQUE,
            enrolled_at     INTEGER NOT NULL,
            revoked_at      INTEGER,
            last_sync_at    INTEGER
        ) STRICT;
        -- device_id NULL: an actor of the server process itself.
        CREATE TABLE actors (
            actor         BLOB PRIMARY KEY,
            device_id     TEXT REFERENCES devices(device_id),
            registered_at INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE audit (
            id      INTEGER PRIMARY KEY,
            at      INTEGER NOT NULL,
            who     TEXT NOT NULL,
            action  TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail  TEXT NOT NULL
        ) STRICT;

        CREATE TABLE people (
            person_id TEXT PRIMARY KEY,
            team_id   TEXT NOT NULL REFERENCES teams(team_id)
        ) STRICT;
        CREATE INDEX people_team ON people(team_id);
        CREATE TABLE allocations (
            person_id TEXT NOT NULL REFERENCES people(person_id),
            worker_id TEXT NOT NULL,
            PRIMARY KEY (person_id, worker_id)
        ) STRICT;
        CREATE INDEX allocations_worker ON allocations(worker_id);
        CREATE TABLE documents (
            doc_id         TEXT PRIMARY KEY,
            person_id      TEXT NOT NULL REFERENCES people(person_id),
            doc_type       TEXT NOT NULL,
            heads          BLOB NOT NULL,
            snapshot       BLOB NOT NULL,
            -- the index rows a device would compute, sent with the snapshot to devices that lack it
            index_rows     BLOB NOT NULL DEFAULT x'',
            -- log entries of this document up to here were pruned; older cursors get the snapshot
            pruned_through INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE INDEX documents_person ON documents(person_id);
        -- Every change the server accepts, in the order devices pull them. An entry with empty
        -- bytes only marks that a document entered someone's scope.
        CREATE TABLE log (
            seq       INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_id    TEXT NOT NULL REFERENCES documents(doc_id),
            person_id TEXT NOT NULL,
            device_id TEXT,
            bytes     BLOB NOT NULL
        ) STRICT;
        CREATE INDEX log_person ON log(person_id, seq);
        CREATE INDEX log_doc ON log(doc_id, seq);
        -- Documents the server sent (since_seq: the entry that carried them, confirmed once the
        -- device's cursor passes it) or received from a device.
        CREATE TABLE device_docs (
            device_id TEXT NOT NULL REFERENCES devices(device_id),
            doc_id    TEXT NOT NULL,
            person_id TEXT NOT NULL,
            since_seq INTEGER NOT NULL,
            PRIMARY KEY (device_id, doc_id)
        ) STRICT;
        CREATE INDEX device_docs_person ON device_docs(device_id, person_id);",
    )
}

/// v2: the team leads' review pages. Their sign-in (passwords, sessions, email for alerts, the
/// teams a lead reviews) and a listing of every record, kept beside the documents by each write,
/// so the queue and caseload are queries rather than documents loaded per request.
fn v2_review(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE workers ADD COLUMN email TEXT;
        CREATE TABLE passwords (
            worker_id TEXT PRIMARY KEY REFERENCES workers(worker_id),
            hash      TEXT NOT NULL,
            set_at    INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE web_sessions (
            token_hash BLOB PRIMARY KEY,
            worker_id  TEXT NOT NULL REFERENCES workers(worker_id),
            csrf       TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            seen_at    INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX web_sessions_worker ON web_sessions(worker_id);
        -- Teams a lead reviews beyond their own.
        CREATE TABLE lead_teams (
            worker_id TEXT NOT NULL REFERENCES workers(worker_id),
            team_id   TEXT NOT NULL REFERENCES teams(team_id),
            PRIMARY KEY (worker_id, team_id)
        ) STRICT;

        CREATE TABLE listed_people (
            person_id      TEXT PRIMARY KEY,
            name           TEXT NOT NULL,
            preferred_name TEXT,
            risk           TEXT NOT NULL
        ) STRICT;
        CREATE TABLE listed_visits (
            visit_id     TEXT PRIMARY KEY,
            person_id    TEXT NOT NULL,
            worker_id    TEXT NOT NULL,
            visit_at     INTEGER NOT NULL,
            safeguarding INTEGER NOT NULL,
            heads        BLOB NOT NULL
        ) STRICT;
        CREATE INDEX listed_visits_person ON listed_visits(person_id, visit_at DESC);
        -- Keyed by the visit, so a review listed before its visit arrives joins it later.
        CREATE TABLE listed_reviews (
            visit_id       TEXT PRIMARY KEY,
            state          TEXT NOT NULL,
            submitted_at   INTEGER,
            approved_heads BLOB
        ) STRICT;
        CREATE INDEX listed_reviews_queue ON listed_reviews(state, submitted_at DESC);
        CREATE TABLE listed_actions (
            visit_id  TEXT NOT NULL,
            action_id TEXT NOT NULL,
            person_id TEXT NOT NULL,
            what      TEXT NOT NULL,
            due       TEXT,
            done      INTEGER NOT NULL,
            cancelled INTEGER NOT NULL,
            PRIMARY KEY (visit_id, action_id)
        ) STRICT;
        CREATE INDEX listed_actions_person ON listed_actions(person_id);
        -- Assessments and observations.
        CREATE TABLE listed_records (
            doc_id    TEXT PRIMARY KEY,
            person_id TEXT NOT NULL,
            doc_type  TEXT NOT NULL,
            at        INTEGER NOT NULL,
            summary   TEXT NOT NULL
        ) STRICT;
        CREATE INDEX listed_records_person ON listed_records(person_id, at DESC);
        -- Visits whose safeguarding alert went out, so a concern alerts once.
        CREATE TABLE safeguarding_alerts (
            visit_id TEXT PRIMARY KEY,
            sent_at  INTEGER NOT NULL
        ) STRICT;
        -- Documents stored before v2 are listed once, when the server starts.
        INSERT INTO meta (key, value) VALUES ('relist', 1);",
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use outpost_core::sync::encode_heads;
    use outpost_core::{
        Author, DeviceId, Document, NewPerson, NewVisit, Record, ReviewAction, RiskTier, Setting, TeamId, WorkerId,
    };

    use super::*;
    use crate::storage::{QueueFilter, ReviewIndex};

    /// A v1 database, as the previous server left it: a team, a person, a submitted visit.
    fn v1_database(path: &Path) -> Vec<Document> {
        let mut conn = Connection::open(path).unwrap();
        let tx = conn.transaction().unwrap();
        v1_schema(&tx).unwrap();
        tx.pragma_update(None, "user_version", 1).unwrap();
        tx.commit().unwrap();
        let author = Author::new(WorkerId::new("w1").unwrap(), DeviceId::new("phone").unwrap());
        let person = Document::new_person(
            &author,
            &NewPerson {
                name: "Iris Kemp".into(),
                preferred_name: None,
                date_of_birth: None,
                nhs_number: None,
                address: None,
                team: TeamId::new("t1").unwrap(),
                allocated_workers: vec![],
                risk: RiskTier::High,
            },
        )
        .unwrap();
        let new_visit = NewVisit {
            person: person.person_id().unwrap(),
            worker: WorkerId::new("w1").unwrap(),
            at: Utc::now(),
            setting: Setting::Clinic,
        };
        let (mut visit, mut review) = Document::new_visit(&author, &new_visit).unwrap();
        let visit_heads = Record::load(visit.id().clone(), &visit.save()).unwrap().heads();
        review.review(ReviewAction::Submit, None, &visit_heads).unwrap();
        conn.execute_batch(
            "INSERT INTO teams VALUES ('t1', 'T1', 'team');
             INSERT INTO workers VALUES ('w1', 'Worker One', 'worker', 't1');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO people VALUES (?1, 't1')",
            [person.person_id().unwrap().as_str()],
        )
        .unwrap();
        let mut docs = vec![person, visit, review];
        for (doc, kind) in docs.iter_mut().zip(["person", "visit", "review"]) {
            let saved = doc.save();
            let heads = Record::load(doc.id().clone(), &saved).unwrap().heads();
            conn.execute(
                "INSERT INTO documents (doc_id, person_id, doc_type, heads, snapshot) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    doc.id().as_str(),
                    doc.person_id().unwrap().as_str(),
                    kind,
                    encode_heads(&heads),
                    saved
                ],
            )
            .unwrap();
        }
        docs
    }

    #[test]
    fn a_v1_database_upgrades_and_its_records_are_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        let docs = v1_database(&path);

        let storage = SqliteStorage::open(&path).unwrap();
        let version: i64 = storage
            .conn()
            .unwrap()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let teams = [TeamId::new("t1").unwrap()];
        assert_eq!(storage.queue(&teams, &QueueFilter::default(), 0, 10).unwrap().total, 0);
        assert!(storage.needs_relist().unwrap());

        assert_eq!(crate::sync::relist(&storage).unwrap(), 3);
        let queue = storage.queue(&teams, &QueueFilter::default(), 0, 10).unwrap();
        assert_eq!(queue.total, 1);
        assert_eq!(queue.rows[0].visit, *docs[1].id());
        assert_eq!(
            (queue.rows[0].person_name.as_str(), queue.rows[0].state.as_str()),
            ("Iris Kemp", "submitted")
        );
        assert!(!storage.needs_relist().unwrap());
        assert_eq!(crate::sync::relist(&storage).unwrap(), 0, "listed once");
    }

    #[test]
    fn a_database_newer_than_this_server_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = SqliteStorage::open(&path).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
