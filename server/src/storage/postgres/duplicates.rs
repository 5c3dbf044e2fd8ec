//! Merges of duplicate people in PostgreSQL, as in SQLite (`sqlite/duplicates.rs`).

use outpost_core::{PersonId, WorkerId};
use tokio_postgres::Row;

use super::PostgresStorage;
use super::{Sql, Tx};
use crate::error::{Error, Result};
use crate::storage::{AuditEntry, DocWrite, Duplicates, Merge};

/// v5: merges of duplicate person records.
pub(super) const V5_DUPLICATES: &str = "
    CREATE TABLE merged_people (
        duplicate_id TEXT PRIMARY KEY,
        survivor_id  TEXT NOT NULL,
        merged_by    TEXT NOT NULL,
        merged_at    BIGINT NOT NULL
    );
    CREATE INDEX merged_people_survivor ON merged_people(survivor_id);";

/// A document re-pointed at another person (a merge of duplicates): the rows that name its
/// person follow it. Nothing happens for a document that keeps its person.
pub(super) async fn follow_person(tx: &Tx<'_>, doc: &DocWrite) -> Result<()> {
    let (id, person) = (doc.doc.as_str(), doc.person.as_str());
    let moved = tx
        .execute(
            "UPDATE documents SET person_id = $2 WHERE doc_id = $1 AND person_id <> $2",
            &[&id, &person],
        )
        .await?;
    if moved == 0 {
        return Ok(());
    }
    for sql in [
        "UPDATE device_docs SET person_id = $2 WHERE doc_id = $1",
        "UPDATE listed_visits SET person_id = $2 WHERE visit_id = $1",
        "UPDATE listed_actions SET person_id = $2 WHERE visit_id = $1",
        "UPDATE listed_records SET person_id = $2 WHERE doc_id = $1",
    ] {
        tx.execute(sql, &[&id, &person]).await?;
    }
    Ok(())
}

fn merge(row: &Row) -> Result<Merge> {
    Ok(Merge {
        duplicate: PersonId::new(row.try_get::<_, String>(0)?)?,
        survivor: PersonId::new(row.try_get::<_, String>(1)?)?,
        by: WorkerId::new(row.try_get::<_, String>(2)?)?,
        at: row.try_get(3)?,
    })
}

impl Duplicates for PostgresStorage {
    fn record_merge(&self, merge: &Merge, audit: &AuditEntry) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            let inserted = tx
                .execute(
                    "INSERT INTO merged_people (duplicate_id, survivor_id, merged_by, merged_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (duplicate_id) DO NOTHING",
                    &[
                        &merge.duplicate.as_str(),
                        &merge.survivor.as_str(),
                        &merge.by.as_str(),
                        &merge.at,
                    ],
                )
                .await?;
            if inserted == 0 {
                return Err(Error::Conflict(format!(
                    "person {} was already merged",
                    merge.duplicate
                )));
            }
            super::audit::append(&tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn merged_into(&self, person: &PersonId) -> Result<Option<Merge>> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt(
            "SELECT duplicate_id, survivor_id, merged_by, merged_at FROM merged_people WHERE duplicate_id = $1",
            &[&person.as_str()],
        ))?;
        row.as_ref().map(merge).transpose()
    }

    fn merged_from(&self, survivor: &PersonId) -> Result<Vec<Merge>> {
        let client = self.client()?;
        let rows = self.block_on(client.query(
            "SELECT duplicate_id, survivor_id, merged_by, merged_at FROM merged_people
             WHERE survivor_id = $1 ORDER BY merged_at, duplicate_id COLLATE \"C\"",
            &[&survivor.as_str()],
        ))?;
        rows.iter().map(merge).collect()
    }
}
