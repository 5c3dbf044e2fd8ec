//! How one document of a sync is written: the stale-heads check, the person's team and
//! allocations (with the log entries a change of scope needs), the document, its log entry, its
//! review listing and what the device holds. The caller's transaction holds `Lock::Log`.

use outpost_core::sync::{decode_heads, encode_heads};
use outpost_core::{ChangeHash, DocId};
use tokio_postgres::Transaction;

use super::super::{review, seq_from};
use crate::error::{Error, Result};
use crate::storage::DocWrite;

/// Refuses a write merged onto heads the document no longer has: another process (an admin
/// command, or a second server) wrote it since it was read.
pub(super) async fn check_unchanged(tx: &Transaction<'_>, doc: &DocId, expected: &[ChangeHash]) -> Result<()> {
    let row = tx
        .query_opt("SELECT heads FROM documents WHERE doc_id = $1", &[&doc.as_str()])
        .await?;
    let unchanged = match row {
        None => expected.is_empty(),
        Some(row) => {
            let mut stored = decode_heads(doc, row.try_get(0)?)?;
            let mut expected = expected.to_vec();
            stored.sort();
            expected.sort();
            stored == expected
        }
    };
    if unchanged {
        Ok(())
    } else {
        Err(Error::Stale(doc.to_string()))
    }
}

/// Writes one document of a sync; returns its log seq.
pub(super) async fn write_doc(tx: &Transaction<'_>, device: Option<&str>, doc: &DocWrite) -> Result<u64> {
    super::super::duplicates::follow_person(tx, doc).await?;
    let person = doc.person.as_str();
    if let Some(scope) = &doc.person_scope {
        let old_team = tx
            .query_opt("SELECT team_id FROM people WHERE person_id = $1", &[&person])
            .await?;
        // In byte order, as Rust sorts the new list.
        let old_allocated = tx
            .query(
                "SELECT worker_id FROM allocations WHERE person_id = $1 ORDER BY worker_id COLLATE \"C\"",
                &[&person],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<Vec<String>, _>>()?;
        if old_team.is_none() {
            tx.execute(
                "INSERT INTO people (person_id, team_id) VALUES ($1, $2)",
                &[&person, &scope.team.as_str()],
            )
            .await?;
        }
        let mut allocated: Vec<String> = scope.allocated.iter().map(|w| w.to_string()).collect();
        allocated.sort();
        if old_team.is_some() && allocated != old_allocated {
            tx.execute("DELETE FROM allocations WHERE person_id = $1", &[&person])
                .await?;
            // Newly allocated workers' devices must receive the person's other documents too.
            mark_scope_change(tx, person, Some(doc.doc.as_str())).await?;
        }
        if old_team.is_none() || allocated != old_allocated {
            for worker in &allocated {
                tx.execute(
                    "INSERT INTO allocations (person_id, worker_id) VALUES ($1, $2)",
                    &[&person, worker],
                )
                .await?;
            }
        }
    }
    tx.execute(
        "INSERT INTO documents (doc_id, person_id, doc_type, heads, snapshot, index_rows)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (doc_id) DO UPDATE SET
             heads = excluded.heads, snapshot = excluded.snapshot, index_rows = excluded.index_rows",
        &[
            &doc.doc.as_str(),
            &person,
            &doc.doc_type,
            &encode_heads(&doc.heads),
            &doc.snapshot,
            &doc.index_rows,
        ],
    )
    .await?;
    let seq = tx
        .query_one(
            "INSERT INTO log (doc_id, person_id, device_id, bytes) VALUES ($1, $2, $3, $4) RETURNING seq",
            &[&doc.doc.as_str(), &person, &device, &doc.changes],
        )
        .await?
        .try_get(0)?;
    if let Some(listing) = &doc.listing {
        review::write_listing(tx, &doc.doc, &doc.person, &doc.heads, listing).await?;
    }
    if let Some(device) = device {
        tx.execute(
            "INSERT INTO device_docs (device_id, doc_id, person_id, since_seq) VALUES ($1, $2, $3, 0)
             ON CONFLICT (device_id, doc_id) DO UPDATE SET since_seq = 0",
            &[&device, &doc.doc.as_str(), &person],
        )
        .await?;
    }
    seq_from(seq)
}

/// Appends an empty entry for each of a person's documents (but `except`), in id order, so
/// devices that have just gained the person find them after their cursor and receive them whole.
pub(super) async fn mark_scope_change(tx: &Transaction<'_>, person: &str, except: Option<&str>) -> Result<()> {
    tx.execute(
        "INSERT INTO log (doc_id, person_id, device_id, bytes)
         SELECT doc_id, person_id, NULL, '\\x'::bytea FROM documents
         WHERE person_id = $1 AND doc_id IS DISTINCT FROM $2::text ORDER BY doc_id COLLATE \"C\"",
        &[&person, &except],
    )
    .await?;
    Ok(())
}
