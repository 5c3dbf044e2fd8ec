//! Merges of duplicate people in SQLite, and a record that changes person being followed by the
//! rows kept beside it.

use outpost_core::{PersonId, WorkerId};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::SqliteStorage;
use crate::error::{Error, Result};
use crate::storage::{AuditEntry, DocWrite, Duplicates, Merge};

/// v8: merges of duplicate person records.
pub(super) fn v8_duplicates(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE merged_people (
            duplicate_id TEXT PRIMARY KEY,
            survivor_id  TEXT NOT NULL,
            merged_by    TEXT NOT NULL,
            merged_at    INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX merged_people_survivor ON merged_people(survivor_id);",
    )
}

/// A document re-pointed at another person (a merge of duplicates): the rows that name its
/// person follow it. Nothing happens for a document that keeps its person.
pub(super) fn follow_person(tx: &Transaction<'_>, doc: &DocWrite) -> Result<()> {
    let moved = tx
        .prepare_cached("UPDATE documents SET person_id = ?2 WHERE doc_id = ?1 AND person_id <> ?2")?
        .execute(params![doc.doc.as_str(), doc.person.as_str()])?;
    if moved == 0 {
        return Ok(());
    }
    for sql in [
        "UPDATE device_docs SET person_id = ?2 WHERE doc_id = ?1",
        "UPDATE listed_visits SET person_id = ?2 WHERE visit_id = ?1",
        "UPDATE listed_actions SET person_id = ?2 WHERE visit_id = ?1",
        "UPDATE listed_records SET person_id = ?2 WHERE doc_id = ?1",
    ] {
        tx.execute(sql, params![doc.doc.as_str(), doc.person.as_str()])?;
    }
    Ok(())
}

fn merge_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn merge((duplicate, survivor, by, at): (String, String, String, i64)) -> Result<Merge> {
    Ok(Merge {
        duplicate: PersonId::new(duplicate)?,
        survivor: PersonId::new(survivor)?,
        by: WorkerId::new(by)?,
        at,
    })
}

impl Duplicates for SqliteStorage {
    fn record_merge(&self, merge: &Merge, audit: &AuditEntry) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO merged_people (duplicate_id, survivor_id, merged_by, merged_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (duplicate_id) DO NOTHING",
            params![
                merge.duplicate.as_str(),
                merge.survivor.as_str(),
                merge.by.as_str(),
                merge.at
            ],
        )?;
        if inserted == 0 {
            return Err(Error::Conflict(format!(
                "person {} was already merged",
                merge.duplicate
            )));
        }
        super::audit::append(&tx, audit)?;
        tx.commit()?;
        Ok(())
    }

    fn merged_into(&self, person: &PersonId) -> Result<Option<Merge>> {
        let row = self
            .conn()?
            .prepare_cached(
                "SELECT duplicate_id, survivor_id, merged_by, merged_at FROM merged_people WHERE duplicate_id = ?1",
            )?
            .query_row([person.as_str()], merge_row)
            .optional()?;
        row.map(merge).transpose()
    }

    fn merged_from(&self, survivor: &PersonId) -> Result<Vec<Merge>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT duplicate_id, survivor_id, merged_by, merged_at FROM merged_people
             WHERE survivor_id = ?1 ORDER BY merged_at, duplicate_id",
        )?;
        let rows = stmt.query_map([survivor.as_str()], merge_row)?;
        rows.map(|r| merge(r?)).collect()
    }
}
