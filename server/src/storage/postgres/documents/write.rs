//! How the documents of a sync are written: locked, checked against the heads they were merged
//! onto, their rows (the person's team and allocations, the document, its review listing, what
//! the device holds), then, under `Lock::Log`, their log entries.

use std::collections::HashMap;

use outpost_core::sync::{decode_heads, encode_heads};
use outpost_core::{ChangeHash, DocId};

use super::super::{Sql, Tx};
use super::super::{review, seq_from};
use crate::error::{Error, Result};
use crate::storage::DocWrite;

/// The first key of every document's advisory lock ("outp"); the second is a hash of its id.
/// PostgreSQL keeps two-key locks apart from the one-key `Lock`s.
const DOC_LOCK_CLASS: i32 = 0x6f75_7470;

/// Waits until no other transaction, in any process, holds a lock on one of `docs`, then holds
/// them until this one ends. Taken in one order (by key), so two writers never wait on each
/// other; two documents whose ids hash alike take turns needlessly.
pub(super) async fn lock_docs(tx: &Tx<'_>, docs: &[&str]) -> Result<()> {
    if docs.is_empty() {
        return Ok(());
    }
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, k)
         FROM (SELECT DISTINCT hashtext(doc) AS k FROM UNNEST($2::text[]) AS doc ORDER BY k) AS keys",
        &[&DOC_LOCK_CLASS, &docs],
    )
    .await?;
    Ok(())
}

/// Refuses a write merged onto heads a document no longer has: another process (an admin
/// command, or a second server) wrote it since it was read. The documents are locked.
pub(super) async fn check_unchanged(tx: &Tx<'_>, expected: &[(DocId, Vec<ChangeHash>)]) -> Result<()> {
    if expected.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = expected.iter().map(|(doc, _)| doc.as_str()).collect();
    let rows = tx
        .query("SELECT doc_id, heads FROM documents WHERE doc_id = ANY($1)", &[&ids])
        .await?;
    let mut stored = HashMap::with_capacity(rows.len());
    for row in &rows {
        stored.insert(row.try_get::<_, &str>(0)?, row.try_get::<_, &[u8]>(1)?);
    }
    for (doc, expected) in expected {
        let unchanged = match stored.get(doc.as_str()) {
            None => expected.is_empty(),
            Some(heads) => {
                let mut stored = decode_heads(doc, heads)?;
                let mut expected = expected.clone();
                stored.sort();
                expected.sort();
                stored == expected
            }
        };
        if !unchanged {
            return Err(Error::Stale(doc.to_string()));
        }
    }
    Ok(())
}

/// Writes one document's rows of a sync but its log entry: whom it names and who is allocated
/// them, the document, its review listing and that the device holds it. Returns whether the
/// person's allocations changed, so newly allocated workers' devices must be sent the person's
/// other documents (`append_doc`).
pub(super) async fn write_doc(tx: &Tx<'_>, device: Option<&str>, doc: &DocWrite) -> Result<bool> {
    super::super::duplicates::follow_person(tx, doc).await?;
    let person = doc.person.as_str();
    let mut scope_changed = false;
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
            scope_changed = true;
        }
        if old_team.is_none() || allocated != old_allocated {
            tx.execute(
                "INSERT INTO allocations (person_id, worker_id) SELECT $1, worker FROM UNNEST($2::text[]) AS worker",
                &[&person, &allocated],
            )
            .await?;
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
    Ok(scope_changed)
}

/// Appends a document's log entry, after the empty entries that send the person's other
/// documents to newly allocated workers when `scope_changed`; returns its seq. The caller's
/// transaction holds `Lock::Log`.
pub(super) async fn append_doc(tx: &Tx<'_>, device: Option<&str>, doc: &DocWrite, scope_changed: bool) -> Result<u64> {
    let person = doc.person.as_str();
    if scope_changed {
        mark_scope_change(tx, person, Some(doc.doc.as_str())).await?;
    }
    let seq = tx
        .query_one(
            "INSERT INTO log (doc_id, person_id, device_id, bytes) VALUES ($1, $2, $3, $4) RETURNING seq",
            &[&doc.doc.as_str(), &person, &device, &doc.changes],
        )
        .await?
        .try_get(0)?;
    seq_from(seq)
}

/// Appends an empty entry for each of a person's documents (but `except`), in id order, so
/// devices that have just gained the person find them after their cursor and receive them whole.
pub(super) async fn mark_scope_change(tx: &Tx<'_>, person: &str, except: Option<&str>) -> Result<()> {
    tx.execute(
        "INSERT INTO log (doc_id, person_id, device_id, bytes)
         SELECT doc_id, person_id, NULL, '\\x'::bytea FROM documents
         WHERE person_id = $1 AND doc_id IS DISTINCT FROM $2::text ORDER BY doc_id COLLATE \"C\"",
        &[&person, &except],
    )
    .await?;
    Ok(())
}
