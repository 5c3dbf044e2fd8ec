//! Numbered migrations under `PRAGMA user_version`. A store written by any earlier version is
//! upgraded in order, each step in its own transaction; `tests` open a store at every version.

use rusqlite::{Connection, Transaction};

use crate::error::{Error, Result};

/// Each entry upgrades from version `i` to `i + 1`. Never edit a shipped entry: add another.
const MIGRATIONS: &[fn(&Transaction<'_>) -> rusqlite::Result<()>] =
    &[v1_documents, v2_index, v3_sync, v4_enrolment, v5_standing, v6_forget];

pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// v1: the documents themselves. Changes are appended beside the heads they produce; a snapshot
/// replaces the changes it covers when the document is compacted.
fn v1_documents(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE documents (
            doc_id   TEXT PRIMARY KEY,
            snapshot BLOB,
            heads    BLOB NOT NULL
        ) STRICT;
        CREATE TABLE changes (
            seq    INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_id TEXT NOT NULL REFERENCES documents(doc_id),
            hash   BLOB NOT NULL,
            data   BLOB NOT NULL,
            UNIQUE (doc_id, hash)
        ) STRICT;",
    )
}

/// v2: the query index beside the documents, and a revision counter for "changed since".
/// Everything but `documents.revision` and `meta` can be rebuilt from the documents, and is
/// rebuilt when the store opens after this migration.
fn v2_index(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE documents ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX documents_revision ON documents(revision);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT;
        INSERT INTO meta (key, value) VALUES ('revision', 0), ('reindex', 1);

        CREATE TABLE doc_index (
            id        INTEGER PRIMARY KEY,
            doc_id    TEXT NOT NULL UNIQUE,
            doc_type  TEXT NOT NULL,
            person_id TEXT NOT NULL
        ) STRICT;
        CREATE INDEX doc_index_person ON doc_index(person_id, doc_type);
        CREATE TABLE people (
            person_id      TEXT PRIMARY KEY,
            name           TEXT NOT NULL,
            preferred_name TEXT,
            date_of_birth  TEXT,
            nhs_number     TEXT,
            team           TEXT NOT NULL,
            risk_tier      TEXT NOT NULL
        ) STRICT;
        CREATE INDEX people_team ON people(team, name);
        CREATE TABLE allocations (
            worker_id TEXT NOT NULL,
            person_id TEXT NOT NULL,
            PRIMARY KEY (worker_id, person_id)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX allocations_person ON allocations(person_id);
        CREATE TABLE visits (
            visit_id     TEXT PRIMARY KEY,
            person_id    TEXT NOT NULL,
            worker_id    TEXT NOT NULL,
            visit_at     INTEGER NOT NULL,
            setting      TEXT NOT NULL,
            safeguarding INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX visits_person ON visits(person_id, visit_at DESC);
        CREATE INDEX visits_time ON visits(visit_at DESC);
        CREATE TABLE reviews (
            visit_id  TEXT PRIMARY KEY,
            state     TEXT NOT NULL,
            contested INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX reviews_state ON reviews(state);
        CREATE TABLE actions (
            action_id TEXT NOT NULL,
            visit_id  TEXT NOT NULL,
            person_id TEXT NOT NULL,
            what      TEXT NOT NULL,
            who       TEXT NOT NULL,
            due       TEXT,
            done      INTEGER NOT NULL,
            cancelled INTEGER NOT NULL,
            PRIMARY KEY (visit_id, action_id)
        ) STRICT;
        CREATE INDEX actions_open_due ON actions(due) WHERE done = 0 AND cancelled = 0;
        CREATE INDEX actions_person ON actions(person_id);
        CREATE TABLE assessments (
            assessment_id TEXT PRIMARY KEY,
            person_id     TEXT NOT NULL,
            assessed_at   INTEGER NOT NULL,
            template_id   TEXT NOT NULL
        ) STRICT;
        CREATE TABLE observations (
            observations_id TEXT PRIMARY KEY,
            person_id       TEXT NOT NULL,
            taken_at        INTEGER NOT NULL,
            news2           INTEGER,
            risk            TEXT,
            needs_confirmation INTEGER NOT NULL,
            next_visit_due  TEXT
        ) STRICT;
        CREATE INDEX observations_person ON observations(person_id, taken_at DESC);
        CREATE VIRTUAL TABLE visit_text USING fts5(
            visit_id UNINDEXED, person_id UNINDEXED, body, tokenize = 'porter unicode61 remove_diacritics 2'
        );",
    )
}

/// v3: sync state. Per server: the log cursor and what the server acknowledged of each
/// document; the actors this device has written with (a fresh one at every open, so a store
/// restored from a backup never reuses a sequence number); people dropped but not yet reported.
fn v3_sync(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE sync_peers (
            peer            TEXT PRIMARY KEY,
            epoch           TEXT,
            cursor          INTEGER NOT NULL DEFAULT 0,
            needs_inventory INTEGER NOT NULL DEFAULT 0,
            last_success    TEXT,
            last_error      TEXT
        ) STRICT;
        CREATE TABLE sync_acked (
            peer   TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            heads  BLOB NOT NULL,
            PRIMARY KEY (peer, doc_id)
        ) STRICT;
        CREATE TABLE sync_dropped (
            peer      TEXT NOT NULL,
            person_id TEXT NOT NULL,
            PRIMARY KEY (peer, person_id)
        ) STRICT;
        CREATE TABLE own_actors (
            actor      BLOB PRIMARY KEY,
            created_at TEXT NOT NULL
        ) STRICT;
        -- Documents written from received bytes and shipped index rows, not yet loaded and
        -- checked here.
        CREATE TABLE unverified (doc_id TEXT PRIMARY KEY) STRICT;",
    )
}

/// v4: the enrolment that makes this store a device: the server it syncs with, how it trusts
/// it, who it writes as, and the credential. One row, written when the device enrols.
fn v4_enrolment(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE enrolment (
            only        INTEGER PRIMARY KEY CHECK (only = 1),
            host        TEXT NOT NULL,
            port        INTEGER NOT NULL,
            ca_pem      BLOB,
            pins        BLOB NOT NULL,
            worker      TEXT NOT NULL,
            device      TEXT NOT NULL,
            team        TEXT NOT NULL,
            lead        INTEGER NOT NULL,
            credential  TEXT NOT NULL,
            enrolled_at TEXT NOT NULL
        ) STRICT;",
    )
}

/// v5: the device's standing with its server, one row: the server key pinned at enrolment, the
/// latest offline lease (verified when received), the latest time this device has seen (so a
/// clock set back is noticed), and whether the server asked it to retire. A store upgraded
/// from v4 has no key and no lease: it pins the key of the first lease it receives.
fn v5_standing(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE standing (
            only            INTEGER PRIMARY KEY CHECK (only = 1),
            server_key      BLOB,
            lease_issued    INTEGER,
            lease_expires   INTEGER,
            lease_signature BLOB,
            latest_seen     INTEGER NOT NULL DEFAULT 0,
            retiring        INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        INSERT INTO standing (only) VALUES (1);",
    )
}

/// v6: forgetting. Edits made offline inside passages a lead has since removed, and records
/// erased here, until the server has heard of them; and, for a store holding documents, a
/// one-time scrub of the file, since pages freed before this version (which zeroes freed space)
/// may still hold deleted text.
fn v6_forget(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE held_edits (
            id     INTEGER PRIMARY KEY,
            peer   TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            held   BLOB NOT NULL
        ) STRICT;
        -- Documents and people erased when the server said, until it has heard.
        CREATE TABLE sync_erased (
            peer TEXT NOT NULL,
            id   TEXT NOT NULL,
            PRIMARY KEY (peer, id)
        ) STRICT;
        INSERT INTO meta (key, value) VALUES ('scrub', EXISTS (SELECT 1 FROM documents))
            ON CONFLICT (key) DO UPDATE SET value = excluded.value;",
    )
}

pub(crate) fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the schema to `target`; used with `CURRENT_VERSION` on open, and with older targets by
/// the upgrade tests to write stores as earlier releases did.
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    let found = version(conn)?;
    if found > CURRENT_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().take(target as usize).skip(found as usize) {
        let tx = conn.transaction()?;
        migration(&tx)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
