//! Documents and the log in SQLite. Serving a pull reads stored bytes only: no document is
//! loaded into Automerge to be sent.

use std::collections::HashSet;

use outpost_core::sync::{decode_heads, encode_heads};
use outpost_core::{DeviceId, DocId, PersonId, TeamId};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::SqliteStorage;
use crate::error::{Error, Result};
use crate::storage::{Device, DocWrite, Documents, Outgoing, Pull, Role, ScopePolicy, StoredDoc, SyncWrite};

impl Documents for SqliteStorage {
    fn epoch(&self) -> Result<String> {
        Ok(self
            .conn()?
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |row| row.get(0))?)
    }

    fn doc(&self, doc: &DocId) -> Result<Option<StoredDoc>> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached("SELECT person_id, doc_type, heads, snapshot FROM documents WHERE doc_id = ?1")?
            .query_row([doc.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                ))
            })
            .optional()?;
        row.map(|(person, doc_type, heads, snapshot)| {
            Ok(StoredDoc {
                person: PersonId::new(person)?,
                doc_type,
                heads: decode_heads(doc, &heads)?,
                snapshot,
            })
        })
        .transpose()
    }

    fn person_team(&self, person: &PersonId) -> Result<Option<TeamId>> {
        let team: Option<String> = self
            .conn()?
            .prepare_cached("SELECT team_id FROM people WHERE person_id = ?1")?
            .query_row([person.as_str()], |row| row.get(0))
            .optional()?;
        Ok(team.map(TeamId::new).transpose()?)
    }

    fn scope(&self, device: &Device) -> Result<HashSet<PersonId>> {
        let conn = self.conn()?;
        let (sql, worker) = scope_sql(device);
        let mut stmt = conn.prepare_cached(&format!("SELECT person_id FROM ({sql})"))?;
        let rows = stmt.query_map(params![device.team.as_str(), worker], |row| row.get::<_, String>(0))?;
        rows.map(|r| Ok(PersonId::new(r?)?)).collect()
    }

    fn held(&self, device: &DeviceId) -> Result<HashSet<PersonId>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT DISTINCT person_id FROM device_docs WHERE device_id = ?1")?;
        let rows = stmt.query_map([device.as_str()], |row| row.get::<_, String>(0))?;
        rows.map(|r| Ok(PersonId::new(r?)?)).collect()
    }

    fn write(&self, device: Option<&DeviceId>, write: &SyncWrite) -> Result<Vec<u64>> {
        let mut conn = self.conn()?;
        // Immediate: another process's write cannot slip in between what this one reads (the
        // audit chain's head) and what it writes after it.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (doc, expected) in &write.expected {
            check_unchanged(&tx, doc, expected)?;
        }
        let now = chrono::Utc::now().timestamp();
        for actor in &write.actors {
            tx.execute(
                "INSERT OR IGNORE INTO actors (actor, device_id, registered_at) VALUES (?1, ?2, ?3)",
                params![actor, device.map(|d| d.as_str()), now],
            )?;
        }
        let mut seqs = Vec::with_capacity(write.docs.len());
        for doc in &write.docs {
            let seq = write_doc(&tx, device, doc)?;
            if let Some((_, redaction)) = write.redactions.iter().find(|(d, _)| *d == doc.doc) {
                super::forget::replace_history(&tx, &doc.doc, seq, redaction)?;
            }
            seqs.push(seq);
        }
        for held in &write.held {
            super::forget::insert_held(&tx, held)?;
        }
        if let Some(device) = device {
            for person in &write.dropped {
                tx.execute(
                    "DELETE FROM device_docs WHERE device_id = ?1 AND person_id = ?2",
                    params![device.as_str(), person.as_str()],
                )?;
            }
        }
        for entry in &write.audit {
            super::audit::append(&tx, entry)?;
        }
        tx.commit()?;
        if !write.redactions.is_empty() {
            super::forget::checkpoint(&conn);
        }
        Ok(seqs)
    }

    fn log_head(&self) -> Result<u64> {
        log_head(&*self.conn()?)
    }

    fn pull(&self, device: &Device, cursor: u64, exclude: &[u64], max_bytes: usize, indexed: bool) -> Result<Pull> {
        let mut conn = self.conn()?;
        // Immediate: it records what it sends, and a read transaction that turns into a write
        // while another process writes fails at once ("database is locked") instead of waiting.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let head = log_head(&tx)?;
        let (scope, worker) = scope_sql(device);
        // Each document with entries after the cursor, with what decides how it is sent: how
        // far its log was pruned, its snapshot's size, and since when the device holds it.
        // Grouped before the join: grouped after it, SQLite's sorter would carry every
        // candidate's whole snapshot (to take its length later), memory growing with the store.
        let candidates: Vec<Candidate> = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT f.doc_id, f.person_id, f.first, d.pruned_through, length(d.snapshot), dd.since_seq,
                        d.replaced_seq
                 FROM (SELECT l.doc_id, l.person_id, min(l.seq) AS first FROM log l
                       WHERE l.seq > ?3 AND l.person_id IN ({scope}) GROUP BY l.doc_id) f
                 JOIN documents d ON d.doc_id = f.doc_id
                 LEFT JOIN device_docs dd ON dd.device_id = ?4 AND dd.doc_id = f.doc_id
                 ORDER BY f.first"
            ))?;
            let rows = stmt.query_map(
                params![device.team.as_str(), worker, cursor as i64, device.device.as_str()],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                        row.get(6)?,
                    ))
                },
            )?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut entries = Vec::new();
        let mut size = 0;
        let mut more = false;
        let mut last_first = cursor;
        for (doc, person, first, pruned, snapshot_len, held_since, replaced) in candidates {
            if size >= max_bytes {
                more = true;
                break;
            }
            let first = first as u64;
            last_first = first;
            let holds = held_since.is_some_and(|since| since as u64 <= cursor) && pruned as u64 <= cursor;
            let mut index = None;
            let mut replaced_by = None;
            let bytes = if held_since.is_some() && replaced as u64 > cursor {
                // The device holds a version from before a redaction: it gets the new one whole.
                tx.prepare_cached("UPDATE device_docs SET since_seq = ?3 WHERE device_id = ?1 AND doc_id = ?2")?
                    .execute(params![device.device.as_str(), doc, first as i64])?;
                let (bytes, heads, redaction): (Vec<u8>, Vec<u8>, Option<Vec<u8>>) = tx
                    .prepare_cached("SELECT snapshot, heads, redaction FROM documents WHERE doc_id = ?1")?
                    .query_row([doc.as_str()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
                index = Some((decode_heads(&DocId::new(doc.as_str())?, &heads)?, Vec::new()));
                replaced_by = redaction;
                bytes
            } else if holds {
                let changes = new_changes(&tx, &doc, cursor, exclude)?;
                // Many small entries can outgrow the document itself.
                if changes.len() as i64 > snapshot_len {
                    snapshot(&tx, &doc)?
                } else {
                    changes
                }
            } else {
                tx.prepare_cached(
                    "INSERT INTO device_docs (device_id, doc_id, person_id, since_seq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (device_id, doc_id) DO UPDATE SET since_seq = excluded.since_seq",
                )?
                .execute(params![device.device.as_str(), doc, person, first as i64])?;
                let (bytes, heads, rows): (Vec<u8>, Vec<u8>, Vec<u8>) = tx
                    .prepare_cached("SELECT snapshot, heads, index_rows FROM documents WHERE doc_id = ?1")?
                    .query_row([doc.as_str()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
                if indexed && !rows.is_empty() {
                    index = Some((decode_heads(&DocId::new(doc.as_str())?, &heads)?, rows));
                }
                bytes
            };
            if bytes.is_empty() {
                continue;
            }
            // The index rows travel too: the budget bounds what a response holds.
            size += bytes.len() + index.as_ref().map_or(0, |(_, rows)| rows.len());
            entries.push(Outgoing {
                seq: first,
                doc: DocId::new(doc)?,
                person: PersonId::new(person)?,
                bytes,
                index,
                replaced: replaced_by,
            });
        }
        tx.commit()?;
        Ok(Pull {
            entries,
            cursor: if more { last_first.max(cursor) } else { head.max(cursor) },
            more,
        })
    }

    fn held_edits(&self, doc: &DocId) -> Result<Vec<crate::storage::HeldRow>> {
        super::forget::held_edits(&*self.conn()?, doc)
    }

    fn settle_held(&self, id: i64, doc: &DocId) -> Result<bool> {
        super::forget::settle_held(&*self.conn()?, id, doc)
    }

    fn mark_held(&self, device: &DeviceId, docs: &[(DocId, PersonId)]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO device_docs (device_id, doc_id, person_id, since_seq) VALUES (?1, ?2, ?3, 0)
                 ON CONFLICT (device_id, doc_id) DO UPDATE SET since_seq = 0",
            )?;
            for (doc, person) in docs {
                upsert.execute(params![device.as_str(), doc.as_str(), person.as_str()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn people_docs(&self, people: &[PersonId]) -> Result<Vec<(DocId, StoredDoc)>> {
        let ids: Vec<DocId> = {
            let conn = self.conn()?;
            let mut stmt = conn.prepare_cached("SELECT doc_id FROM documents WHERE person_id = ?1 ORDER BY doc_id")?;
            let mut ids = Vec::new();
            for person in people {
                for id in stmt.query_map([person.as_str()], |row| row.get::<_, String>(0))? {
                    ids.push(DocId::new(id?)?);
                }
            }
            ids
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(doc) = self.doc(&id)? {
                out.push((id, doc));
            }
        }
        Ok(out)
    }

    fn reassign(&self, person: &PersonId, team: &TeamId) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE people SET team_id = ?2 WHERE person_id = ?1",
            params![person.as_str(), team.as_str()],
        )?;
        if changed == 0 {
            return Err(Error::NotFound(format!("person {person}")));
        }
        mark_scope_change(&tx, person.as_str(), None)?;
        tx.commit()?;
        Ok(())
    }
}

/// A document to consider sending: id, person, first new log entry, pruned through, snapshot
/// length, since when the device holds it, and the entry of its latest redaction.
type Candidate = (String, String, i64, i64, i64, Option<i64>, i64);

/// The people a device may hold, as SQL with `?1` the team and `?2` the worker.
fn scope_sql(device: &Device) -> (&'static str, Option<&str>) {
    match (device.role, device.scope) {
        (Role::Worker, ScopePolicy::Allocated) => (
            "SELECT p.person_id FROM people p JOIN allocations a ON a.person_id = p.person_id
             WHERE p.team_id = ?1 AND a.worker_id = ?2",
            Some(device.worker.as_str()),
        ),
        // A lead reviews the whole team's work whatever the team's device policy.
        _ => ("SELECT person_id FROM people WHERE team_id = ?1 AND ?2 IS NULL", None),
    }
}

/// The highest log seq ever written: an erasure deletes entries, perhaps the latest, and a
/// device's cursor must never look newer than the log (that would read as a restore).
fn log_head(conn: &Connection) -> Result<u64> {
    let head: i64 = conn.query_row(
        "SELECT max(coalesce((SELECT max(seq) FROM log), 0),
                    coalesce((SELECT value FROM meta WHERE key = 'log_floor'), 0))",
        [],
        |row| row.get(0),
    )?;
    Ok(head as u64)
}

fn snapshot(tx: &Transaction<'_>, doc: &str) -> Result<Vec<u8>> {
    Ok(tx
        .prepare_cached("SELECT snapshot FROM documents WHERE doc_id = ?1")?
        .query_row([doc], |row| row.get(0))?)
}

fn new_changes(tx: &Transaction<'_>, doc: &str, cursor: u64, exclude: &[u64]) -> Result<Vec<u8>> {
    let mut stmt = tx.prepare_cached("SELECT seq, bytes FROM log WHERE doc_id = ?1 AND seq > ?2 ORDER BY seq")?;
    let rows = stmt.query_map(params![doc, cursor as i64], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, bytes) = row?;
        if !exclude.contains(&(seq as u64)) {
            out.extend_from_slice(&bytes);
        }
    }
    Ok(out)
}

/// Refuses a write merged onto heads the document no longer has: another process (an admin
/// command, or a second server) wrote it since it was read.
fn check_unchanged(tx: &Transaction<'_>, doc: &DocId, expected: &[automerge::ChangeHash]) -> Result<()> {
    let stored: Option<Vec<u8>> = tx
        .prepare_cached("SELECT heads FROM documents WHERE doc_id = ?1")?
        .query_row([doc.as_str()], |row| row.get(0))
        .optional()?;
    let unchanged = match stored {
        None => expected.is_empty(),
        Some(heads) => {
            let mut stored = decode_heads(doc, &heads)?;
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

fn write_doc(tx: &Transaction<'_>, device: Option<&DeviceId>, doc: &DocWrite) -> Result<u64> {
    super::duplicates::follow_person(tx, doc)?;
    if let Some(scope) = &doc.person_scope {
        let old_team: Option<String> = tx
            .prepare_cached("SELECT team_id FROM people WHERE person_id = ?1")?
            .query_row([doc.person.as_str()], |row| row.get(0))
            .optional()?;
        let old_allocated: Vec<String> = {
            let mut stmt =
                tx.prepare_cached("SELECT worker_id FROM allocations WHERE person_id = ?1 ORDER BY worker_id")?;
            stmt.query_map([doc.person.as_str()], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        if old_team.is_none() {
            tx.execute(
                "INSERT INTO people (person_id, team_id) VALUES (?1, ?2)",
                params![doc.person.as_str(), scope.team.as_str()],
            )?;
        }
        let mut allocated: Vec<String> = scope.allocated.iter().map(|w| w.to_string()).collect();
        allocated.sort();
        if old_team.is_some() && allocated != old_allocated {
            tx.execute("DELETE FROM allocations WHERE person_id = ?1", [doc.person.as_str()])?;
            // Newly allocated workers' devices must receive the person's other documents too.
            mark_scope_change(tx, doc.person.as_str(), Some(doc.doc.as_str()))?;
        }
        if old_team.is_none() || allocated != old_allocated {
            let mut insert = tx.prepare_cached("INSERT INTO allocations (person_id, worker_id) VALUES (?1, ?2)")?;
            for worker in &allocated {
                insert.execute(params![doc.person.as_str(), worker])?;
            }
        }
    }
    tx.prepare_cached(
        "INSERT INTO documents (doc_id, person_id, doc_type, heads, snapshot, index_rows)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (doc_id) DO UPDATE SET
             heads = excluded.heads, snapshot = excluded.snapshot, index_rows = excluded.index_rows",
    )?
    .execute(params![
        doc.doc.as_str(),
        doc.person.as_str(),
        doc.doc_type,
        encode_heads(&doc.heads),
        doc.snapshot,
        doc.index_rows
    ])?;
    let seq: i64 = tx
        .prepare_cached("INSERT INTO log (doc_id, person_id, device_id, bytes) VALUES (?1, ?2, ?3, ?4) RETURNING seq")?
        .query_row(
            params![
                doc.doc.as_str(),
                doc.person.as_str(),
                device.map(|d| d.as_str()),
                doc.changes
            ],
            |row| row.get(0),
        )?;
    if let Some(listing) = &doc.listing {
        super::review::write_listing(tx, &doc.doc, &doc.person, &doc.heads, listing)?;
    }
    if let Some(device) = device {
        tx.prepare_cached(
            "INSERT INTO device_docs (device_id, doc_id, person_id, since_seq) VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (device_id, doc_id) DO UPDATE SET since_seq = 0",
        )?
        .execute(params![device.as_str(), doc.doc.as_str(), doc.person.as_str()])?;
    }
    Ok(seq as u64)
}

/// Appends an empty entry for each of a person's documents (but `except`), so devices that
/// have just gained the person find them after their cursor and receive them whole.
fn mark_scope_change(tx: &Transaction<'_>, person: &str, except: Option<&str>) -> Result<()> {
    tx.execute(
        "INSERT INTO log (doc_id, person_id, device_id, bytes)
         SELECT doc_id, person_id, NULL, x'' FROM documents
         WHERE person_id = ?1 AND doc_id IS NOT ?2 ORDER BY doc_id",
        params![person, except],
    )?;
    Ok(())
}
