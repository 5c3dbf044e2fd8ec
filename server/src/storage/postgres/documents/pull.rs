//! Serving a pull from one snapshot, in a fixed number of round trips per chunk of documents
//! rather than several per document: a sync that sends a device its teammates' day's work sends
//! dozens of documents, and a round trip each kept the server waiting on the database.
//!
//! One query lists the candidates (each document with entries after the cursor) with what
//! decides how it is sent; then, per chunk of `CHUNK` candidates, one query reads the stored
//! documents the chunk sends whole and one reads the new changes of those the device holds (both
//! in flight at once), and one statement each records what the device now holds.

use std::collections::HashMap;

use outpost_core::sync::decode_heads;
use outpost_core::{DocId, PersonId};
use tokio_postgres::Row;

use super::super::{Sql, Tx};
use super::super::{seq_from, sql_seq};
use super::{log_head, scope_sql};
use crate::error::Result;
use crate::storage::{Device, Outgoing, Pull};

/// Candidates whose bytes are read in one query: a bound on what a pull holds in memory beyond
/// its budget.
const CHUNK: usize = 128;

/// A document with entries after the device's cursor.
struct Candidate {
    doc: String,
    person: String,
    /// Its first entry after the cursor: the device's cursor passes it once the document is sent.
    first: u64,
    /// How the device gets it.
    delivery: Delivery,
    snapshot_len: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// The device holds a version from before a redaction: the new document, whole.
    Replacement,
    /// The device holds the document: its changes after the cursor.
    Changes,
    /// The device lacks it, or is behind history pruned since: the document, whole.
    Whole,
}

/// `Documents::pull` inside its transaction.
pub(super) async fn pull_in(
    tx: &Tx<'_>,
    device: &Device,
    cursor: u64,
    exclude: &[u64],
    max_bytes: usize,
    indexed: bool,
) -> Result<Pull> {
    let head = log_head(tx).await?;
    let candidates = candidates(tx, device, cursor).await?;
    let mut entries = Vec::new();
    let mut size = 0;
    let mut more = false;
    let mut last_first = cursor;
    for chunk in candidates.chunks(CHUNK) {
        let (mut stored, mut changes) = tokio::try_join!(
            stored_docs(tx, chunk, indexed),
            held_changes(tx, chunk, cursor, exclude)
        )?;
        let mut sent_whole = Vec::new();
        let mut replaced = Vec::new();
        for candidate in chunk {
            if size >= max_bytes {
                more = true;
                break;
            }
            last_first = candidate.first;
            let doc = DocId::new(candidate.doc.as_str())?;
            let mut index = None;
            let mut redaction = None;
            let bytes = match candidate.delivery {
                Delivery::Replacement => {
                    let row = take(&mut stored, &candidate.doc)?;
                    replaced.push(candidate);
                    index = Some((decode_heads(&doc, row.try_get(1)?)?, Vec::new()));
                    redaction = row.try_get(3)?;
                    row.try_get(0)?
                }
                Delivery::Changes => {
                    let new = changes.remove(&candidate.doc).unwrap_or_default();
                    // Many small entries can outgrow the document itself.
                    if new.len() > candidate.snapshot_len {
                        tx.query_one("SELECT snapshot FROM documents WHERE doc_id = $1", &[&candidate.doc])
                            .await?
                            .try_get(0)?
                    } else {
                        new
                    }
                }
                Delivery::Whole => {
                    let row = take(&mut stored, &candidate.doc)?;
                    sent_whole.push(candidate);
                    let rows: Option<Vec<u8>> = row.try_get(2)?;
                    if let Some(rows) = rows.filter(|rows| !rows.is_empty()) {
                        index = Some((decode_heads(&doc, row.try_get(1)?)?, rows));
                    }
                    row.try_get(0)?
                }
            };
            if bytes.is_empty() {
                continue;
            }
            // The index rows travel too: the budget bounds what a response holds.
            size += bytes.len() + index.as_ref().map_or(0, |(_, rows)| rows.len());
            entries.push(Outgoing {
                seq: candidate.first,
                doc,
                person: PersonId::new(candidate.person.as_str())?,
                bytes,
                index,
                replaced: redaction,
            });
        }
        record_held(tx, device, &sent_whole, &replaced).await?;
        if more {
            break;
        }
    }
    Ok(Pull {
        entries,
        cursor: if more { last_first.max(cursor) } else { head.max(cursor) },
        more,
    })
}

/// Each document in the device's scope with entries after `cursor`, in the order of its first
/// such entry, with how it is to be sent.
async fn candidates(tx: &Tx<'_>, device: &Device, cursor: u64) -> Result<Vec<Candidate>> {
    let (scope, worker) = scope_sql(device);
    let rows = tx
        .query(
            &format!(
                "SELECT f.doc_id, f.person_id, f.seq, d.pruned_through, length(d.snapshot)::bigint, dd.since_seq,
                        d.replaced_seq
                 FROM (SELECT DISTINCT ON (l.doc_id) l.doc_id, l.person_id, l.seq FROM log l
                       WHERE l.seq > $3 AND l.person_id IN ({scope}) ORDER BY l.doc_id, l.seq) f
                 JOIN documents d ON d.doc_id = f.doc_id
                 LEFT JOIN device_docs dd ON dd.device_id = $4 AND dd.doc_id = f.doc_id
                 ORDER BY f.seq"
            ),
            &[
                &device.team.as_str(),
                &worker,
                &sql_seq(cursor)?,
                &device.device.as_str(),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let pruned = seq_from(row.try_get(3)?)?;
            let held_since: Option<i64> = row.try_get(5)?;
            let replaced = seq_from(row.try_get(6)?)?;
            let delivery = if held_since.is_some() && replaced > cursor {
                Delivery::Replacement
            } else if held_since.is_some_and(|since| since as u64 <= cursor) && pruned <= cursor {
                Delivery::Changes
            } else {
                Delivery::Whole
            };
            let snapshot_len: i64 = row.try_get(4)?;
            Ok(Candidate {
                doc: row.try_get(0)?,
                person: row.try_get(1)?,
                first: seq_from(row.try_get(2)?)?,
                delivery,
                snapshot_len: usize::try_from(snapshot_len).unwrap_or(usize::MAX),
            })
        })
        .collect()
}

/// The stored documents of the chunk's candidates sent whole, by id: `snapshot, heads,
/// index_rows` (when `indexed`), `redaction`.
async fn stored_docs(tx: &Tx<'_>, chunk: &[Candidate], indexed: bool) -> Result<HashMap<String, Row>> {
    let ids = ids(chunk, |d| d != Delivery::Changes);
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = tx
        .query(
            "SELECT snapshot, heads, CASE WHEN $2 THEN index_rows END, redaction, doc_id
             FROM documents WHERE doc_id = ANY($1)",
            &[&ids, &indexed],
        )
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get::<_, String>(4)?, row)))
        .collect()
}

/// The changes after `cursor` of the chunk's documents the device holds, but the entries in
/// `exclude`, concatenated per document.
async fn held_changes(
    tx: &Tx<'_>,
    chunk: &[Candidate],
    cursor: u64,
    exclude: &[u64],
) -> Result<HashMap<String, Vec<u8>>> {
    let ids = ids(chunk, |d| d == Delivery::Changes);
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = tx
        .query(
            "SELECT doc_id, seq, bytes FROM log WHERE doc_id = ANY($1) AND seq > $2 ORDER BY seq",
            &[&ids, &sql_seq(cursor)?],
        )
        .await?;
    let mut changes: HashMap<String, Vec<u8>> = HashMap::new();
    for row in rows {
        if exclude.contains(&seq_from(row.try_get(1)?)?) {
            continue;
        }
        changes
            .entry(row.try_get(0)?)
            .or_default()
            .extend_from_slice(row.try_get(2)?);
    }
    Ok(changes)
}

/// The ids of the chunk's candidates delivered as `wanted` says.
fn ids(chunk: &[Candidate], wanted: impl Fn(Delivery) -> bool) -> Vec<&str> {
    chunk
        .iter()
        .filter(|c| wanted(c.delivery))
        .map(|c| c.doc.as_str())
        .collect()
}

/// A stored document `stored_docs` read; it was in the same snapshot as the candidates.
fn take(stored: &mut HashMap<String, Row>, doc: &str) -> Result<Row> {
    stored
        .remove(doc)
        .ok_or_else(|| crate::error::Error::Internal(format!("document {doc} was listed but not read")))
}

/// Records that the device holds what it was sent whole, from the entry it was sent at: new
/// documents, and replacements of documents it held.
async fn record_held(tx: &Tx<'_>, device: &Device, whole: &[&Candidate], replaced: &[&Candidate]) -> Result<()> {
    let device = device.device.as_str();
    if !whole.is_empty() {
        let docs: Vec<&str> = whole.iter().map(|c| c.doc.as_str()).collect();
        let people: Vec<&str> = whole.iter().map(|c| c.person.as_str()).collect();
        let since = whole.iter().map(|c| sql_seq(c.first)).collect::<Result<Vec<i64>>>()?;
        tx.execute(
            "INSERT INTO device_docs (device_id, doc_id, person_id, since_seq)
             SELECT $1, doc, person, since FROM UNNEST($2::text[], $3::text[], $4::bigint[]) AS t(doc, person, since)
             ON CONFLICT (device_id, doc_id) DO UPDATE SET since_seq = excluded.since_seq",
            &[&device, &docs, &people, &since],
        )
        .await?;
    }
    if !replaced.is_empty() {
        let docs: Vec<&str> = replaced.iter().map(|c| c.doc.as_str()).collect();
        let since = replaced
            .iter()
            .map(|c| sql_seq(c.first))
            .collect::<Result<Vec<i64>>>()?;
        tx.execute(
            "UPDATE device_docs dd SET since_seq = t.since
             FROM UNNEST($2::text[], $3::bigint[]) AS t(doc, since)
             WHERE dd.device_id = $1 AND dd.doc_id = t.doc",
            &[&device, &docs, &since],
        )
        .await?;
    }
    Ok(())
}
