//! The PostgreSQL schema and its migrations.
//!
//! `outpost_schema` holds the schema's version and the oldest server version that can still run
//! on it. A migration that only adds (a table, a nullable column, an index) leaves that oldest
//! version alone, so during a rolling upgrade an older process keeps serving beside a newer one;
//! one that changes what older code reads or writes raises it, and older processes then refuse
//! to start rather than misread the data.

use tokio_postgres::Transaction;

use super::{Lock, PostgresStorage};
use crate::error::{Error, Result};

/// One schema step: its SQL, and whether servers from before it can still run on the result.
#[derive(Debug, Clone, Copy)]
pub(super) struct Migration {
    pub sql: &'static str,
    pub older_servers_can_run: bool,
}

/// Each entry upgrades from version `i` to `i + 1`. Never edit a shipped entry: add another.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: V1_SCHEMA,
        older_servers_can_run: false,
    },
    // Failed sign-ins counted in the database; older servers keep counting in memory.
    Migration {
        sql: "CREATE TABLE sign_in_failures (
                  username TEXT PRIMARY KEY,
                  failures INTEGER NOT NULL,
                  since    BIGINT NOT NULL
              );",
        older_servers_can_run: true,
    },
    // Redactions: an older server would send a redacted document's new history to devices as
    // changes to merge into the old one, so it may not run beside this one.
    Migration {
        sql: super::forget::V3_FORGET,
        older_servers_can_run: false,
    },
    // Erasure: an older server would accept what arrives for an erased record as new.
    Migration {
        sql: super::erasure::V4_ERASURE,
        older_servers_can_run: false,
    },
    // Merged duplicates: an older server would leave a merged-away person's new records on them.
    Migration {
        sql: super::duplicates::V5_DUPLICATES,
        older_servers_can_run: false,
    },
];

/// Brings the database up to `migrations` (this server's: `MIGRATIONS`), one process at a time,
/// and checks this server can run on what it finds.
pub(super) fn migrate(storage: &PostgresStorage, migrations: &[Migration]) -> Result<()> {
    let mut client = storage.client()?;
    storage.block_on(async {
        // A session lock: other processes starting now wait here, then find the work done.
        client
            .execute("SELECT pg_advisory_lock($1)", &[&Lock::Migrate.key()])
            .await?;
        let result = run(&mut client, migrations).await;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&Lock::Migrate.key()])
            .await?;
        result
    })
}

async fn run(client: &mut tokio_postgres::Client, migrations: &[Migration]) -> Result<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS outpost_schema (
                version         INTEGER NOT NULL,
                oldest_server   INTEGER NOT NULL,
                single          BOOLEAN PRIMARY KEY DEFAULT true CHECK (single)
            );
            INSERT INTO outpost_schema (version, oldest_server) VALUES (0, 0) ON CONFLICT DO NOTHING;",
        )
        .await?;
    let target = migrations.len() as i32;
    let row = client
        .query_one("SELECT version, oldest_server FROM outpost_schema", &[])
        .await?;
    let (version, oldest_server): (i32, i32) = (row.get(0), row.get(1));
    if oldest_server > target {
        return Err(Error::Internal(format!(
            "the database is at schema version {version}, which needs a server of schema version \
             {oldest_server} or newer; this server's is {target}"
        )));
    }
    for (i, migration) in migrations.iter().enumerate().skip(version.max(0) as usize) {
        let tx = client.transaction().await?;
        tx.batch_execute(migration.sql).await?;
        let next = i as i32 + 1;
        bump(&tx, next, migration.older_servers_can_run).await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn bump(tx: &Transaction<'_>, version: i32, older_servers_can_run: bool) -> Result<()> {
    if older_servers_can_run {
        tx.execute("UPDATE outpost_schema SET version = $1", &[&version])
            .await?;
    } else {
        tx.execute(
            "UPDATE outpost_schema SET version = $1, oldest_server = $1",
            &[&version],
        )
        .await?;
    }
    Ok(())
}

/// The whole schema as SQLite's v4 has it: accounts, documents and the log devices pull from,
/// the review pages' listing and sign-in, devices' departures and leases, and the audit chain.
const V1_SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES
    ('epoch', md5(random()::text || clock_timestamp()::text)),
    ('relist', '0'),
    ('audit_retained_through', '0');

CREATE TABLE teams (
    team_id    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('team', 'allocated')),
    lease_days INTEGER NOT NULL DEFAULT 14 CHECK (lease_days BETWEEN 1 AND 365)
);
CREATE TABLE workers (
    worker_id TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('worker', 'lead')),
    team_id   TEXT NOT NULL REFERENCES teams(team_id),
    email     TEXT
);
CREATE TABLE enrolment_codes (
    code_hash  BYTEA PRIMARY KEY,
    worker_id  TEXT NOT NULL REFERENCES workers(worker_id),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE TABLE devices (
    device_id           TEXT PRIMARY KEY,
    worker_id           TEXT NOT NULL REFERENCES workers(worker_id),
    label               TEXT NOT NULL,
    credential_hash     BYTEA NOT NULL UNIQUE,
    enrolled_at         BIGINT NOT NULL,
    revoked_at          BIGINT,
    last_sync_at        BIGINT,
    retire_requested_at BIGINT,
    retired_at          BIGINT,
    wipe_ordered_at     BIGINT
);
-- device_id NULL: an actor of a server process itself.
CREATE TABLE actors (
    actor         BYTEA PRIMARY KEY,
    device_id     TEXT REFERENCES devices(device_id),
    registered_at BIGINT NOT NULL
);

CREATE TABLE people (
    person_id TEXT PRIMARY KEY,
    team_id   TEXT NOT NULL REFERENCES teams(team_id)
);
CREATE INDEX people_team ON people(team_id);
CREATE TABLE allocations (
    person_id TEXT NOT NULL REFERENCES people(person_id),
    worker_id TEXT NOT NULL,
    PRIMARY KEY (person_id, worker_id)
);
CREATE INDEX allocations_worker ON allocations(worker_id);
CREATE TABLE documents (
    doc_id         TEXT PRIMARY KEY,
    person_id      TEXT NOT NULL REFERENCES people(person_id),
    doc_type       TEXT NOT NULL,
    heads          BYTEA NOT NULL,
    snapshot       BYTEA NOT NULL,
    -- the index rows a device would compute, sent with the snapshot to devices that lack it
    index_rows     BYTEA NOT NULL DEFAULT '\\x',
    -- log entries of this document up to here were pruned; older cursors get the snapshot
    pruned_through BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX documents_person ON documents(person_id);
-- Every change the server accepts, in the order devices pull them. An entry with empty bytes
-- only marks that a document entered someone's scope. Appended under `Lock::Log`, so entries
-- become visible in seq order across processes.
CREATE TABLE log (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc_id    TEXT NOT NULL REFERENCES documents(doc_id),
    person_id TEXT NOT NULL,
    device_id TEXT,
    bytes     BYTEA NOT NULL
);
CREATE INDEX log_person ON log(person_id, seq);
CREATE INDEX log_doc ON log(doc_id, seq);
-- Documents the server sent (since_seq: the entry that carried them, confirmed once the device's
-- cursor passes it) or received from a device.
CREATE TABLE device_docs (
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    doc_id    TEXT NOT NULL,
    person_id TEXT NOT NULL,
    since_seq BIGINT NOT NULL,
    PRIMARY KEY (device_id, doc_id)
);
CREATE INDEX device_docs_person ON device_docs(device_id, person_id);

CREATE TABLE passwords (
    worker_id TEXT PRIMARY KEY REFERENCES workers(worker_id),
    hash      TEXT NOT NULL,
    set_at    BIGINT NOT NULL
);
CREATE TABLE web_sessions (
    token_hash BYTEA PRIMARY KEY,
    worker_id  TEXT NOT NULL REFERENCES workers(worker_id),
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);
CREATE INDEX web_sessions_worker ON web_sessions(worker_id);
-- Teams a lead reviews beyond their own.
CREATE TABLE lead_teams (
    worker_id TEXT NOT NULL REFERENCES workers(worker_id),
    team_id   TEXT NOT NULL REFERENCES teams(team_id),
    PRIMARY KEY (worker_id, team_id)
);

CREATE TABLE listed_people (
    person_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    preferred_name TEXT,
    risk           TEXT NOT NULL
);
CREATE TABLE listed_visits (
    visit_id     TEXT PRIMARY KEY,
    person_id    TEXT NOT NULL,
    worker_id    TEXT NOT NULL,
    visit_at     BIGINT NOT NULL,
    safeguarding BOOLEAN NOT NULL,
    heads        BYTEA NOT NULL
);
CREATE INDEX listed_visits_person ON listed_visits(person_id, visit_at DESC);
-- Keyed by the visit, so a review listed before its visit arrives joins it later.
CREATE TABLE listed_reviews (
    visit_id       TEXT PRIMARY KEY,
    state          TEXT NOT NULL,
    submitted_at   BIGINT,
    approved_heads BYTEA
);
CREATE INDEX listed_reviews_queue ON listed_reviews(state, submitted_at DESC);
CREATE TABLE listed_actions (
    visit_id  TEXT NOT NULL,
    action_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    what      TEXT NOT NULL,
    due       TEXT,
    done      BOOLEAN NOT NULL,
    cancelled BOOLEAN NOT NULL,
    PRIMARY KEY (visit_id, action_id)
);
CREATE INDEX listed_actions_person ON listed_actions(person_id);
-- Assessments and observations.
CREATE TABLE listed_records (
    doc_id    TEXT PRIMARY KEY,
    person_id TEXT NOT NULL,
    doc_type  TEXT NOT NULL,
    at        BIGINT NOT NULL,
    summary   TEXT NOT NULL
);
CREATE INDEX listed_records_person ON listed_records(person_id, at DESC);
-- Visits whose safeguarding alert went out, so a concern alerts once.
CREATE TABLE safeguarding_alerts (
    visit_id TEXT PRIMARY KEY,
    sent_at  BIGINT NOT NULL
);

-- The audit trail, chained by hash; appended under `Lock::Audit`.
CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    -- byte order, as SQLite's: `AuditFilter::user` reads `user/...` as a range
    who       TEXT COLLATE \"C\" NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    -- the client's address, empty for the admin CLI and the server itself
    from_addr TEXT NOT NULL,
    prev_hash BYTEA NOT NULL CHECK (length(prev_hash) = 32),
    hash      BYTEA NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_subject ON audit(subject, seq);
CREATE INDEX audit_who ON audit(who, seq);
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       BYTEA NOT NULL CHECK (length(hash) = 32),
    at         BIGINT NOT NULL,
    public_key BYTEA NOT NULL,
    signature  BYTEA NOT NULL
);
-- They guard against the server's own mistakes; the chain and the signed checkpoints are what
-- show tampering by anyone who bypasses them. Retention removes entries through the seq in
-- meta 'audit_retained_through' (a checkpoint's) and nothing past it.
CREATE FUNCTION audit_retained_through() RETURNS BIGINT LANGUAGE sql STABLE AS
    $$ SELECT coalesce((SELECT value::bigint FROM meta WHERE key = 'audit_retained_through'), 0) $$;
-- Refuses with its trigger's argument; SQLite's triggers say the same.
CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0];
END $$;
CREATE FUNCTION audit_refuse_unretained_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'audit' AND old.seq > audit_retained_through() THEN
        RAISE EXCEPTION 'the audit trail is append-only: only retention removes entries';
    END IF;
    IF TG_TABLE_NAME = 'audit_checkpoints' AND old.seq >= audit_retained_through() THEN
        RAISE EXCEPTION 'audit checkpoints are removed only by retention, and never the anchor';
    END IF;
    RETURN old;
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_refuse('the audit trail is append-only');
CREATE TRIGGER audit_retained_only BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_unretained_delete();
CREATE TRIGGER audit_checkpoints_kept BEFORE UPDATE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse('audit checkpoints are never changed');
CREATE TRIGGER audit_checkpoints_retained_only BEFORE DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_unretained_delete();
-- TRUNCATE skips row triggers (SQLite has none).
CREATE TRIGGER audit_not_truncated BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse('the audit trail is append-only: only retention removes entries');
CREATE TRIGGER audit_checkpoints_not_truncated BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse('audit checkpoints are removed only by retention, and never the anchor');
";

#[cfg(test)]
mod tests {
    use outpost_core::TeamId;

    use super::*;
    use crate::storage::{Accounts, ScopePolicy};

    /// What a next release might add: a column and a table older servers never read.
    const ADDITIVE: Migration = Migration {
        sql: "ALTER TABLE devices ADD COLUMN model TEXT;
              CREATE TABLE device_notes (device_id TEXT PRIMARY KEY, note TEXT NOT NULL);",
        older_servers_can_run: true,
    };
    /// And one that changes what older servers read.
    const BREAKING: Migration = Migration {
        sql: "ALTER TABLE teams RENAME COLUMN name TO title;",
        older_servers_can_run: false,
    };

    #[test]
    fn an_older_server_runs_beside_a_newer_one_until_a_migration_it_cannot_read() {
        let url =
            std::env::var("OUTPOST_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("outpost_upgrade_{}", uuid::Uuid::new_v4().simple());
        let older = PostgresStorage::open_in_schema(&url, &schema)
            .unwrap_or_else(|e| panic!("PostgreSQL is needed for this test (OUTPOST_TEST_POSTGRES): {e}"));
        let team = |name: &str| TeamId::new(name).unwrap();
        older.create_team(&team("north"), "North", ScopePolicy::Team).unwrap();

        // The newer release starts beside it and migrates; the older keeps serving, and an
        // older process started now (a restart mid-upgrade) runs too.
        let newer_migrations = [MIGRATIONS, &[ADDITIVE]].concat();
        let newer = PostgresStorage::open_in_schema_at(&url, &schema, &newer_migrations).unwrap();
        older
            .create_team(&team("south"), "South", ScopePolicy::Allocated)
            .unwrap();
        let restarted = PostgresStorage::open_in_schema(&url, &schema).unwrap();
        assert_eq!(restarted.lease_days_of("south"), 14);
        newer.create_team(&team("east"), "East", ScopePolicy::Team).unwrap();
        assert!(
            older
                .worker(&outpost_core::WorkerId::new("nobody").unwrap())
                .unwrap()
                .is_none()
        );
        assert_eq!(
            older.lease_days_of("east"),
            14,
            "the older server reads what the newer wrote"
        );

        // A release that changes what older servers read: they refuse to start, naming why.
        let breaking = [MIGRATIONS, &[ADDITIVE, BREAKING]].concat();
        drop(PostgresStorage::open_in_schema_at(&url, &schema, &breaking).unwrap());
        let err = PostgresStorage::open_in_schema(&url, &schema).unwrap_err().to_string();
        assert!(
            err.contains(&format!("needs a server of schema version {}", MIGRATIONS.len() + 2)),
            "{err}"
        );
        // The newer release (before the breaking step) refuses too; the newest runs.
        assert!(PostgresStorage::open_in_schema_at(&url, &schema, &newer_migrations).is_err());
        let newest = PostgresStorage::open_in_schema_at(&url, &schema, &breaking).unwrap();
        let client = newest.client().unwrap();
        newest
            .block_on(client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")))
            .unwrap();
    }

    impl PostgresStorage {
        fn lease_days_of(&self, team: &str) -> u32 {
            crate::storage::Lifecycle::lease_days(self, &TeamId::new(team).unwrap()).unwrap()
        }
    }
}
