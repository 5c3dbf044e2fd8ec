//! Documents and the log in PostgreSQL, as SQLite keeps them. A sync's write locks the
//! documents it writes (so concurrent writers of one document take turns across processes),
//! writes their rows, and only then takes `Lock::Log` for its appends and its commit, so seqs
//! become visible in order across processes and a device's cursor never passes an entry another
//! process has yet to commit. Serving a pull reads stored bytes only, from one snapshot.

mod batch;
mod pull;
mod write;

use std::collections::HashSet;

use outpost_core::sync::decode_heads;
use outpost_core::{DeviceId, DocId, PersonId, TeamId};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use self::pull::pull_in;
use self::write::{append_doc, check_unchanged, lock_docs, mark_scope_change};
use super::Sql;
use super::{Lock, PostgresStorage, seq_from};
use crate::error::{Error, Result};
use crate::storage::{Device, Documents, Pull, Role, ScopePolicy, StoredDoc, SyncWrite};

/// How many times a transaction PostgreSQL gave up on for another's sake is tried in all.
const ATTEMPTS: usize = 3;

impl Documents for PostgresStorage {
    fn epoch(&self) -> Result<String> {
        let client = self.client()?;
        let row = self.block_on(client.query_one("SELECT value FROM meta WHERE key = 'epoch'", &[]))?;
        Ok(row.try_get(0)?)
    }

    fn doc(&self, doc: &DocId) -> Result<Option<StoredDoc>> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt(
            "SELECT person_id, doc_type, heads, snapshot FROM documents WHERE doc_id = $1",
            &[&doc.as_str()],
        ))?;
        row.map(|row| stored_doc(doc, &row)).transpose()
    }

    fn person_team(&self, person: &PersonId) -> Result<Option<TeamId>> {
        let client = self.client()?;
        let row =
            self.block_on(client.query_opt("SELECT team_id FROM people WHERE person_id = $1", &[&person.as_str()]))?;
        row.map(|row| Ok(TeamId::new(row.try_get::<_, String>(0)?)?))
            .transpose()
    }

    fn scope(&self, device: &Device) -> Result<HashSet<PersonId>> {
        let client = self.client()?;
        let (sql, worker) = scope_sql(device);
        let rows = self.block_on(client.query(sql, &[&device.team.as_str(), &worker]))?;
        rows.iter()
            .map(|row| Ok(PersonId::new(row.try_get::<_, String>(0)?)?))
            .collect()
    }

    fn held(&self, device: &DeviceId) -> Result<HashSet<PersonId>> {
        let client = self.client()?;
        let rows = self.block_on(client.query(
            "SELECT DISTINCT person_id FROM device_docs WHERE device_id = $1",
            &[&device.as_str()],
        ))?;
        rows.iter()
            .map(|row| Ok(PersonId::new(row.try_get::<_, String>(0)?)?))
            .collect()
    }

    fn write(&self, device: Option<&DeviceId>, write: &SyncWrite) -> Result<Vec<u64>> {
        retrying(|| {
            let mut client = self.client()?;
            self.block_on(async {
                let tx = client.transaction().await?;
                // Writers of one document take turns, in every process: nobody writes between
                // our check of its heads and our write.
                let docs: Vec<&str> = (write.expected.iter().map(|(doc, _)| doc))
                    .chain(write.docs.iter().map(|doc| &doc.doc))
                    .map(DocId::as_str)
                    .collect();
                lock_docs(&tx, &docs).await?;
                check_unchanged(&tx, &write.expected).await?;
                let now = chrono::Utc::now().timestamp();
                let device_id = device.map(DeviceId::as_str);
                if !write.actors.is_empty() {
                    tx.execute(
                        "INSERT INTO actors (actor, device_id, registered_at)
                         SELECT actor, $2, $3 FROM UNNEST($1::bytea[]) AS actor
                         ON CONFLICT (actor) DO NOTHING",
                        &[&write.actors, &device_id, &now],
                    )
                    .await?;
                }
                // A day's work writes a statement per table; what cannot be batched, a few per
                // document.
                let batched = batch::batchable(&write.docs) && write.redactions.is_empty();
                let scope_changed = if batched {
                    batch::write_docs(&tx, device_id, &write.docs).await?;
                    vec![false; write.docs.len()]
                } else {
                    batch::write_each(&tx, device_id, &write.docs).await?
                };
                // Only now the log: whoever appends after us waits for our commit, so no puller
                // sees their seq before ours. Held for the appends and the commit alone.
                if !write.docs.is_empty() || !write.held.is_empty() {
                    Lock::Log.take(&tx).await?;
                }
                let seqs = if batched && !write.docs.is_empty() {
                    batch::append_docs(&tx, device_id, &write.docs).await?
                } else {
                    let mut seqs = Vec::with_capacity(write.docs.len());
                    for (doc, scope_changed) in write.docs.iter().zip(scope_changed) {
                        let seq = append_doc(&tx, device_id, doc, scope_changed).await?;
                        if let Some((_, redaction)) = write.redactions.iter().find(|(d, _)| *d == doc.doc) {
                            super::forget::replace_history(&tx, &doc.doc, seq, redaction).await?;
                        }
                        seqs.push(seq);
                    }
                    seqs
                };
                for held in &write.held {
                    super::forget::insert_held(&tx, held).await?;
                }
                if let Some(device) = device_id {
                    for person in &write.dropped {
                        tx.execute(
                            "DELETE FROM device_docs WHERE device_id = $1 AND person_id = $2",
                            &[&device, &person.as_str()],
                        )
                        .await?;
                    }
                }
                super::audit::append_all(&tx, &write.audit).await?;
                tx.commit().await?;
                Ok(seqs)
            })
        })
    }

    fn log_head(&self) -> Result<u64> {
        let client = self.client()?;
        self.block_on(log_head(&client))
    }

    fn pull(&self, device: &Device, cursor: u64, exclude: &[u64], max_bytes: usize, indexed: bool) -> Result<Pull> {
        retrying(|| {
            let mut client = self.client()?;
            self.block_on(async {
                // One snapshot for the head and every entry: it holds a prefix of the log, as
                // appends commit in seq order.
                let tx = client.snapshot().await?;
                let pull = pull_in(&tx, device, cursor, exclude, max_bytes, indexed).await?;
                tx.commit().await?;
                Ok(pull)
            })
        })
    }

    fn held_edits(&self, doc: &DocId) -> Result<Vec<crate::storage::HeldRow>> {
        let client = self.client()?;
        self.block_on(super::forget::held_edits(&client, doc))
    }

    fn settle_held(&self, id: i64, doc: &DocId) -> Result<bool> {
        let client = self.client()?;
        self.block_on(super::forget::settle_held(&client, id, doc))
    }

    fn mark_held(&self, device: &DeviceId, docs: &[(DocId, PersonId)]) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            for (doc, person) in docs {
                tx.execute(
                    "INSERT INTO device_docs (device_id, doc_id, person_id, since_seq) VALUES ($1, $2, $3, 0)
                     ON CONFLICT (device_id, doc_id) DO UPDATE SET since_seq = 0",
                    &[&device.as_str(), &doc.as_str(), &person.as_str()],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn people_docs(&self, people: &[PersonId]) -> Result<Vec<(DocId, StoredDoc)>> {
        let client = self.client()?;
        self.block_on(async {
            let mut out = Vec::new();
            for person in people {
                let rows = client
                    .query(
                        "SELECT person_id, doc_type, heads, snapshot, doc_id FROM documents WHERE person_id = $1
                         ORDER BY doc_id COLLATE \"C\"",
                        &[&person.as_str()],
                    )
                    .await?;
                for row in rows {
                    let id = DocId::new(row.try_get::<_, String>(4)?)?;
                    let doc = stored_doc(&id, &row)?;
                    out.push((id, doc));
                }
            }
            Ok(out)
        })
    }

    fn reassign(&self, person: &PersonId, team: &TeamId) -> Result<()> {
        // Tried again if it deadlocks with a sync writing the person's row while it waits for
        // `Lock::Log`, which this takes first.
        retrying(|| {
            let mut client = self.client()?;
            self.block_on(async {
                let tx = client.transaction().await?;
                // It appends to the log.
                Lock::Log.take(&tx).await?;
                let changed = tx
                    .execute(
                        "UPDATE people SET team_id = $2 WHERE person_id = $1",
                        &[&person.as_str(), &team.as_str()],
                    )
                    .await?;
                if changed == 0 {
                    return Err(Error::NotFound(format!("person {person}")));
                }
                mark_scope_change(&tx, person.as_str(), None).await?;
                tx.commit().await?;
                Ok(())
            })
        })
    }
}

/// Runs `attempt` again when PostgreSQL aborted it for a concurrent transaction's sake (a
/// serialization failure or a deadlock): none of it was committed, and a new try sees the other.
pub(super) fn retrying<T>(mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let mut tries = 1;
    loop {
        match attempt() {
            Err(Error::Postgres(e)) if tries < ATTEMPTS && gave_way(&e) => tries += 1,
            result => return result,
        }
    }
}

fn gave_way(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|code| *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED)
}

/// The people a device may hold, as SQL with `$1` the team and `$2` the worker.
fn scope_sql(device: &Device) -> (&'static str, Option<&str>) {
    match (device.role, device.scope) {
        (Role::Worker, ScopePolicy::Allocated) => (
            "SELECT p.person_id FROM people p JOIN allocations a ON a.person_id = p.person_id
             WHERE p.team_id = $1 AND a.worker_id = $2",
            Some(device.worker.as_str()),
        ),
        // A lead reviews the whole team's work whatever the team's device policy.
        _ => (
            "SELECT person_id FROM people WHERE team_id = $1 AND $2::text IS NULL",
            None,
        ),
    }
}

/// A document from a row whose first columns are `person_id, doc_type, heads, snapshot`.
fn stored_doc(id: &DocId, row: &Row) -> Result<StoredDoc> {
    Ok(StoredDoc {
        person: PersonId::new(row.try_get::<_, String>(0)?)?,
        doc_type: row.try_get(1)?,
        heads: decode_heads(id, row.try_get(2)?)?,
        snapshot: row.try_get(3)?,
    })
}

/// The highest log seq ever written: an erasure deletes entries, perhaps the latest, and a
/// device's cursor must never look newer than the log (that would read as a restore).
async fn log_head(client: &impl Sql) -> Result<u64> {
    let row = client
        .query_one(
            "SELECT GREATEST(coalesce(max(seq), 0),
                             coalesce((SELECT value::bigint FROM meta WHERE key = 'log_floor'), 0))
             FROM log",
            &[],
        )
        .await?;
    seq_from(row.try_get(0)?)
}
