//! The rows of a sync's documents written a statement per table rather than per document: a
//! day's work is eight visits or more, and each statement costs the server a round trip and two
//! thread wake-ups. What is rare (a person's team and allocations, a document moved to another
//! person, listings other than a visit's) is written per document as before (`write_doc`).

use std::collections::{HashMap, HashSet};

use outpost_core::sync::{Listing, encode_heads};

use super::super::{Sql, Tx, review, seq_from};
use super::write::write_doc;
use crate::error::{Error, Result};
use crate::storage::DocWrite;

/// Whether `docs` can be written in batches: each document once (an upsert statement may touch
/// a row only once), and none of them changing whom a person is allocated to.
pub(super) fn batchable(docs: &[DocWrite]) -> bool {
    let mut seen = HashSet::with_capacity(docs.len());
    docs.iter()
        .all(|doc| doc.person_scope.is_none() && seen.insert(doc.doc.as_str()))
}

/// Writes the rows of `docs` but their log entries, as `write_doc` does for each; `docs` are
/// `batchable`.
pub(super) async fn write_docs(tx: &Tx<'_>, device: Option<&str>, docs: &[DocWrite]) -> Result<()> {
    let ids: Vec<&str> = docs.iter().map(|d| d.doc.as_str()).collect();
    let people: Vec<&str> = docs.iter().map(|d| d.person.as_str()).collect();
    // A document that names another person than it did (a merged duplicate) moves its rows too:
    // rare, so per document.
    let moved = tx
        .query(
            "SELECT d.doc_id FROM documents d JOIN UNNEST($1::text[], $2::text[]) AS t(doc, person)
             ON d.doc_id = t.doc WHERE d.person_id <> t.person",
            &[&ids, &people],
        )
        .await?;
    let moved: HashSet<String> = moved.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?;
    for doc in docs.iter().filter(|d| moved.contains(d.doc.as_str())) {
        super::super::duplicates::follow_person(tx, doc).await?;
    }
    let types: Vec<&str> = docs.iter().map(|d| d.doc_type.as_str()).collect();
    let heads: Vec<Vec<u8>> = docs.iter().map(|d| encode_heads(&d.heads)).collect();
    let snapshots: Vec<&[u8]> = docs.iter().map(|d| d.snapshot.as_slice()).collect();
    let index_rows: Vec<&[u8]> = docs.iter().map(|d| d.index_rows.as_slice()).collect();
    tx.execute(
        "INSERT INTO documents (doc_id, person_id, doc_type, heads, snapshot, index_rows)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[])
         ON CONFLICT (doc_id) DO UPDATE SET
             heads = excluded.heads, snapshot = excluded.snapshot, index_rows = excluded.index_rows",
        &[&ids, &people, &types, &heads, &snapshots, &index_rows],
    )
    .await?;
    write_visit_listings(tx, docs).await?;
    for doc in docs {
        match &doc.listing {
            Some(Listing::Visit { .. }) | None => {}
            Some(listing) => review::write_listing(tx, &doc.doc, &doc.person, &doc.heads, listing).await?,
        }
    }
    if let Some(device) = device {
        tx.execute(
            "INSERT INTO device_docs (device_id, doc_id, person_id, since_seq)
             SELECT $1, doc, person, 0 FROM UNNEST($2::text[], $3::text[]) AS t(doc, person)
             ON CONFLICT (device_id, doc_id) DO UPDATE SET since_seq = 0",
            &[&device, &ids, &people],
        )
        .await?;
    }
    Ok(())
}

/// The visits' listings and their actions, as `review::write_listing` writes one.
async fn write_visit_listings(tx: &Tx<'_>, docs: &[DocWrite]) -> Result<()> {
    let mut visits = Visits::default();
    for doc in docs {
        if let Some(Listing::Visit {
            worker,
            at,
            safeguarding,
            actions,
        }) = &doc.listing
        {
            visits.ids.push(doc.doc.as_str());
            visits.people.push(doc.person.as_str());
            visits.workers.push(worker.as_str());
            visits.at.push(at.timestamp());
            visits.safeguarding.push(*safeguarding);
            visits.heads.push(encode_heads(&doc.heads));
            // A later action with the same id replaces an earlier one, as SQLite's REPLACE does.
            let mut latest = HashMap::new();
            for (i, action) in actions.iter().enumerate() {
                latest.insert(action.id.as_str(), i);
            }
            for (i, action) in actions.iter().enumerate() {
                if latest.get(action.id.as_str()) == Some(&i) {
                    visits.actions.push(ActionRow {
                        visit: doc.doc.as_str(),
                        person: doc.person.as_str(),
                        id: &action.id,
                        what: &action.what,
                        due: action.due.map(|d| d.to_string()),
                        done: action.done,
                        cancelled: action.cancelled,
                    });
                }
            }
        }
    }
    if visits.ids.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO listed_visits (visit_id, person_id, worker_id, visit_at, safeguarding, heads)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::boolean[], $6::bytea[])
         ON CONFLICT (visit_id) DO UPDATE SET worker_id = excluded.worker_id,
             visit_at = excluded.visit_at, safeguarding = excluded.safeguarding, heads = excluded.heads",
        &[
            &visits.ids,
            &visits.people,
            &visits.workers,
            &visits.at,
            &visits.safeguarding,
            &visits.heads,
        ],
    )
    .await?;
    tx.execute("DELETE FROM listed_actions WHERE visit_id = ANY($1)", &[&visits.ids])
        .await?;
    if !visits.actions.is_empty() {
        let rows = &visits.actions;
        let column = |f: for<'r> fn(&'r ActionRow<'_>) -> &'r str| rows.iter().map(f).collect::<Vec<&str>>();
        let due: Vec<Option<&str>> = rows.iter().map(|a| a.due.as_deref()).collect();
        let done: Vec<bool> = rows.iter().map(|a| a.done).collect();
        let cancelled: Vec<bool> = rows.iter().map(|a| a.cancelled).collect();
        tx.execute(
            "INSERT INTO listed_actions (visit_id, action_id, person_id, what, due, done, cancelled)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[],
                                  $7::boolean[])",
            &[
                &column(|a| a.visit),
                &column(|a| a.id),
                &column(|a| a.person),
                &column(|a| a.what),
                &due,
                &done,
                &cancelled,
            ],
        )
        .await?;
    }
    // Cleared: a concern raised again later alerts again.
    let cleared: Vec<&str> = (visits.ids.iter().zip(&visits.safeguarding))
        .filter(|(_, raised)| !**raised)
        .map(|(id, _)| *id)
        .collect();
    if !cleared.is_empty() {
        tx.execute("DELETE FROM safeguarding_alerts WHERE visit_id = ANY($1)", &[&cleared])
            .await?;
    }
    Ok(())
}

#[derive(Default)]
struct Visits<'a> {
    ids: Vec<&'a str>,
    people: Vec<&'a str>,
    workers: Vec<&'a str>,
    at: Vec<i64>,
    safeguarding: Vec<bool>,
    heads: Vec<Vec<u8>>,
    actions: Vec<ActionRow<'a>>,
}

struct ActionRow<'a> {
    visit: &'a str,
    person: &'a str,
    id: &'a str,
    what: &'a str,
    due: Option<String>,
    done: bool,
    cancelled: bool,
}

/// Appends the log entries of `docs` (`batchable`), one each in their order; returns their
/// seqs. The caller's transaction holds `Lock::Log`.
pub(super) async fn append_docs(tx: &Tx<'_>, device: Option<&str>, docs: &[DocWrite]) -> Result<Vec<u64>> {
    let ids: Vec<&str> = docs.iter().map(|d| d.doc.as_str()).collect();
    let people: Vec<&str> = docs.iter().map(|d| d.person.as_str()).collect();
    let changes: Vec<&[u8]> = docs.iter().map(|d| d.changes.as_slice()).collect();
    let rows = tx
        .query(
            "INSERT INTO log (doc_id, person_id, device_id, bytes)
             SELECT doc, person, $4, bytes
             FROM UNNEST($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY AS t(doc, person, bytes, n)
             ORDER BY n
             RETURNING doc_id, seq",
            &[&ids, &people, &changes, &device],
        )
        .await?;
    let mut seqs = HashMap::with_capacity(rows.len());
    for row in &rows {
        seqs.insert(row.try_get::<_, &str>(0)?, seq_from(row.try_get(1)?)?);
    }
    ids.iter()
        .map(|id| {
            seqs.get(id)
                .copied()
                .ok_or_else(|| Error::Internal(format!("the log entry of {id} was not appended")))
        })
        .collect()
}

/// `write_doc` for each document, for writes that cannot be batched; returns whether each
/// person's allocations changed.
pub(super) async fn write_each(tx: &Tx<'_>, device: Option<&str>, docs: &[DocWrite]) -> Result<Vec<bool>> {
    let mut scope_changed = Vec::with_capacity(docs.len());
    for doc in docs {
        scope_changed.push(write_doc(tx, device, doc).await?);
    }
    Ok(scope_changed)
}
