//! A redaction arriving on a device: the document is replaced, history and all, by the one the
//! server re-created; this device's unacknowledged edits are carried onto it, or held when they
//! were typed inside a removed passage; and the old text is scrubbed from the file.

use automerge::{AutoCommit, ChangeHash};
use rusqlite::params;

use super::Store;
use super::chunks;
use super::disk::{encode_heads, write_snapshot};
use crate::error::{Error, Result};
use crate::forget::{self, Held, Redaction};
use crate::ids::DocId;
use crate::model::header;

impl Store {
    /// Replaces `id` with the document in `bytes` (at `heads`, as the server holds it), carrying
    /// this device's own edits of the old version onto it. Returns the edits held back.
    pub(crate) fn apply_replacement(
        &mut self,
        peer: &str,
        id: &DocId,
        bytes: &[u8],
        heads: &[ChangeHash],
        redaction: &Redaction,
    ) -> Result<Vec<Held>> {
        let invalid = |reason: String| Error::InvalidChanges { id: id.clone(), reason };
        let mut new = AutoCommit::new();
        chunks::apply_untrusted(&mut new, bytes).map_err(invalid)?;
        let mut got = new.get_heads();
        got.sort();
        let mut claimed = heads.to_vec();
        claimed.sort();
        if got != claimed {
            return Err(invalid("the replacement's heads are not the ones sent with it".into()));
        }
        header::read(&new, id)?;
        new.set_author(Some(self.author.to_automerge()));
        new.set_actor(self.actor.clone());

        let existed: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM documents WHERE doc_id = ?1)")?
            .query_row([id.as_str()], |row| row.get(0))?;
        let mut held = Vec::new();
        // A copy that no longer reads (damaged on disk) is replaced all the same; nothing of it
        // can be carried.
        let old = if existed {
            self.take_doc(id)
                .inspect_err(|e| tracing::warn!(doc = %id, error = %e, "the copy a redaction replaces does not read"))
                .ok()
        } else {
            None
        };
        if let Some(mut old) = old {
            if old.get_change_by_hash(&redaction_root(redaction)?).is_some() {
                // Already replaced (the frame came again after a cut): only merge what is new.
                self.cache.put(id.clone(), old);
                self.apply_pulled(peer, &[(id.clone(), bytes)], None)?;
                return Ok(Vec::new());
            }
            let now = self.now().timestamp();
            // The redaction comes from outside; Automerge can panic on what it did not expect.
            let carried = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                forget::carry(&mut old, redaction, &mut new, now)
            }))
            .unwrap_or_else(|_| {
                Err(Error::invalid(
                    "redaction",
                    "carrying the edits failed (automerge panicked)",
                ))
            });
            match carried {
                Ok((Some(hash), kept_back)) => {
                    self.own_isolated_actor(&mut new, &hash)?;
                    held = kept_back;
                }
                Ok((None, kept_back)) => held = kept_back,
                Err(e) => {
                    // The old copy predates an earlier redaction too: its edits cannot be placed,
                    // and none of its text may come back.
                    tracing::warn!(doc = %id, error = %e, "offline edits could not be carried onto a redacted document");
                }
            }
        }

        let tx = self.conn.transaction()?;
        super::record_actor(&tx, &self.actor, self.actor_recorded)?;
        tx.execute("DELETE FROM changes WHERE doc_id = ?1", [id.as_str()])?;
        write_snapshot(&tx, id, &mut new, None, existed)?;
        tx.execute("DELETE FROM unverified WHERE doc_id = ?1", [id.as_str()])?;
        tx.execute(
            "INSERT INTO sync_acked (peer, doc_id, heads) VALUES (?1, ?2, ?3)
             ON CONFLICT (peer, doc_id) DO UPDATE SET heads = excluded.heads",
            params![peer, id.as_str(), encode_heads(heads)],
        )?;
        for edit in &held {
            let mut encoded = Vec::new();
            ciborium::into_writer(edit, &mut encoded).map_err(|e| Error::Internal(e.to_string()))?;
            tx.execute(
                "INSERT INTO held_edits (peer, doc_id, held) VALUES (?1, ?2, ?3)",
                params![peer, id.as_str(), encoded],
            )?;
        }
        tx.commit()?;
        self.actor_recorded = true;
        self.cache.put(id.clone(), new);
        self.cache.reset_change_count(id);
        self.scrub()?;
        Ok(held)
    }

    /// Erases documents and people the server erased: every document (and, for a person, every
    /// document naming them, made here offline too), its index rows, history and sync state,
    /// unacknowledged changes included (the one exception to keeping them: they were sent with
    /// the request this answers, and erased on arrival). Returns how many documents went.
    pub(crate) fn erase(&mut self, peer: &str, docs: &[DocId], people: &[crate::ids::PersonId]) -> Result<usize> {
        let mut targets: Vec<DocId> = docs.to_vec();
        for person in people {
            targets.extend(self.documents_of_person(person)?);
            targets.push(person.clone());
        }
        targets.sort();
        targets.dedup();
        let tx = self.conn.transaction()?;
        let mut erased = 0;
        for doc in &targets {
            super::index::remove_doc(&tx, doc)?;
            for sql in [
                "DELETE FROM changes WHERE doc_id = ?1",
                "DELETE FROM sync_acked WHERE doc_id = ?1",
                "DELETE FROM unverified WHERE doc_id = ?1",
                "DELETE FROM held_edits WHERE doc_id = ?1",
            ] {
                tx.execute(sql, [doc.as_str()])?;
            }
            erased += tx.execute("DELETE FROM documents WHERE doc_id = ?1", [doc.as_str()])?;
        }
        for person in people {
            super::index::remove_person(&tx, person.as_str())?;
        }
        for id in docs.iter().chain(people) {
            tx.execute(
                "INSERT OR IGNORE INTO sync_erased (peer, id) VALUES (?1, ?2)",
                params![peer, id.as_str()],
            )?;
        }
        tx.commit()?;
        for doc in &targets {
            self.cache.take(doc);
        }
        self.scrub()?;
        Ok(erased)
    }

    /// Erasures not yet reported to `peer`.
    pub(crate) fn unreported_erasures(&self, peer: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM sync_erased WHERE peer = ?1 ORDER BY id")?;
        let rows = stmt.query_map([peer], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The server heard of these erasures.
    pub(crate) fn erasures_reported(&mut self, peer: &str, ids: &[String]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for id in ids {
            tx.execute("DELETE FROM sync_erased WHERE peer = ?1 AND id = ?2", params![peer, id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Held edits not yet reported to `peer`: (row, document, edit).
    pub(crate) fn unreported_held(&self, peer: &str) -> Result<Vec<(i64, DocId, Held)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, doc_id, held FROM held_edits WHERE peer = ?1 ORDER BY id")?;
        let rows = stmt.query_map([peer], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut held = Vec::new();
        for row in rows {
            let (row, doc, bytes) = row?;
            let edit: Held = ciborium::from_reader(bytes.as_slice())
                .map_err(|e| Error::Internal(format!("a held edit does not decode: {e}")))?;
            held.push((row, DocId::new(doc)?, edit));
        }
        Ok(held)
    }

    /// The server heard of these held edits.
    pub(crate) fn held_reported(&mut self, rows: &[i64]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for row in rows {
            tx.execute("DELETE FROM held_edits WHERE id = ?1", [row])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Takes deleted text off the disk: the full-text index is rewritten without the entries of
    /// deleted rows (FTS5 keeps them in old segments until merged), and the WAL, which holds
    /// earlier images of changed pages, is emptied. Freed pages are already zeroed
    /// (`secure_delete`). A reader elsewhere can delay the WAL to a later checkpoint.
    pub(crate) fn scrub(&self) -> Result<()> {
        self.conn
            .execute("INSERT INTO visit_text (visit_text) VALUES ('optimize')", [])?;
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy != 0 {
            tracing::warn!("the WAL could not be emptied after a redaction; the next checkpoint will");
        }
        Ok(())
    }

    /// Turns the zeroing of deleted content off (or on again), to measure what it costs. For
    /// benchmarks only: with it off, a redaction or erasure may leave text in freed pages.
    #[doc(hidden)]
    pub fn set_secure_delete(&self, on: bool) -> Result<()> {
        self.conn
            .pragma_update(None, "secure_delete", if on { "ON" } else { "OFF" })?;
        Ok(())
    }

    /// Once, on the first open after upgrading to a version that zeroes freed space: rewrites
    /// the file so pages freed before hold nothing. A read-only disk waits for a later open.
    pub(super) fn scrub_once(&mut self) -> Result<()> {
        let vacuumed = self.conn.execute_batch("VACUUM").and_then(|()| {
            self.conn
                .execute("UPDATE meta SET value = 0 WHERE key = 'scrub'", [])
                .map(|_| ())
        });
        if let Err(e) = vacuumed {
            tracing::warn!(error = %e, "the store could not be scrubbed now; it will be at a later open");
        }
        Ok(())
    }
}

/// One of the re-created heads, by which a copy already replaced is recognised.
fn redaction_root(redaction: &Redaction) -> Result<ChangeHash> {
    redaction
        .root
        .first()
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        .map(ChangeHash)
        .ok_or_else(|| Error::invalid("redaction", "it names no re-created head"))
}
