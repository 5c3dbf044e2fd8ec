//! Documents received whole with their index rows: written as they arrive, so a fresh device's
//! caseload can be listed, opened and searched at once, and verified afterwards by loading each
//! one, which is where the time goes (Automerge rebuilds every change).

use automerge::ChangeHash;
use rusqlite::{OptionalExtension, params};

use super::disk::{decode_heads, encode_heads, load};
use super::merge::parallel_map;
use super::{Store, chunks, index, shipped_index};
use crate::error::Result;
use crate::ids::DocId;

/// A document new to this store, with the heads and index rows its sender computed.
#[derive(Debug, Clone)]
pub struct Indexed {
    pub doc: DocId,
    pub bytes: Vec<u8>,
    pub heads: Vec<ChangeHash>,
    pub rows: Vec<u8>,
}

/// What a verification pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    pub verified: usize,
    /// Documents whose bytes did not load or did not match their heads, with why; they were
    /// removed, and the next sync fetches them again.
    pub removed: Vec<(DocId, String)>,
    /// Documents still waiting.
    pub remaining: usize,
}

/// A received document waiting: id, snapshot, heads, and whether it was edited since.
type Pending = (String, Option<Vec<u8>>, Vec<u8>, bool);

impl Store {
    /// Writes received documents and their shipped index rows without loading them, marks them
    /// unverified, records them as acknowledged at their heads and advances the cursor, all in
    /// one transaction. Documents this store already holds are imported the usual way.
    pub(crate) fn apply_indexed(&mut self, peer: &str, items: &[Indexed], cursor: Option<(&str, u64)>) -> Result<()> {
        let mut known = Vec::new();
        let mut fresh = Vec::new();
        for item in items {
            let exists: bool = self
                .conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM documents WHERE doc_id = ?1)")?
                .query_row([item.doc.as_str()], |row| row.get(0))?;
            if exists { known.push(item) } else { fresh.push(item) }
        }
        if !known.is_empty() {
            let plain: Vec<(DocId, &[u8])> = known.iter().map(|i| (i.doc.clone(), i.bytes.as_slice())).collect();
            self.apply_pulled(peer, &plain, None)?;
        }
        let tx = self.conn.transaction()?;
        for item in &fresh {
            let revision: i64 = tx.query_row(
                "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value",
                [],
                |row| row.get(0),
            )?;
            tx.execute(
                "INSERT INTO documents (doc_id, snapshot, heads, revision) VALUES (?1, ?2, ?3, ?4)",
                params![item.doc.as_str(), item.bytes, encode_heads(&item.heads), revision],
            )?;
            shipped_index::apply(&tx, &item.doc, &item.rows)?;
            tx.execute(
                "INSERT OR IGNORE INTO unverified (doc_id) VALUES (?1)",
                [item.doc.as_str()],
            )?;
            tx.execute(
                "INSERT INTO sync_acked (peer, doc_id, heads) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer, doc_id) DO UPDATE SET heads = excluded.heads",
                params![peer, item.doc.as_str(), encode_heads(&item.heads)],
            )?;
        }
        if fresh.len() >= 100 {
            tx.execute("INSERT INTO visit_text (visit_text) VALUES ('optimize')", [])?;
        }
        if let Some((epoch, cursor)) = cursor {
            tx.execute("INSERT OR IGNORE INTO sync_peers (peer) VALUES (?1)", [peer])?;
            tx.execute(
                "UPDATE sync_peers SET epoch = ?2, cursor = max(cursor, ?3), needs_inventory = 0 WHERE peer = ?1",
                params![peer, epoch, cursor as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Loads and checks up to `limit` documents received unverified, rewriting their index from
    /// the documents themselves. Run it in the background after a large first sync; documents
    /// are checked on every core and written in one transaction.
    pub fn verify_received(&mut self, limit: usize) -> Result<Verified> {
        let pending: Vec<Pending> = self
            .conn
            .prepare_cached(
                "SELECT d.doc_id, d.snapshot, d.heads, EXISTS (SELECT 1 FROM changes c WHERE c.doc_id = d.doc_id)
                 FROM unverified u JOIN documents d ON d.doc_id = u.doc_id ORDER BY d.doc_id LIMIT ?1",
            )?
            .query_map([limit.min(i64::MAX as usize) as i64], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        // A document edited since it arrived has changes beside its snapshot: loaded the usual
        // way below. The rest are loaded and checked from their snapshots in parallel.
        let checked = parallel_map(&pending, |(_, snapshot, _, edited)| {
            if *edited {
                return Ok(None);
            }
            match chunks::validate(snapshot.as_deref().unwrap_or_default()) {
                Ok(Some(doc)) => Ok(Some(doc)),
                Ok(None) => Err("its bytes are not one saved document".to_string()),
                Err(e) => Err(e),
            }
        });
        let mut good = Vec::new();
        let mut report = Verified::default();
        for ((id, _, heads, _), checked) in pending.into_iter().zip(checked) {
            let id = DocId::new(id)?;
            let loaded = match checked {
                Ok(Some(doc)) => Ok(doc),
                Ok(None) => load(&self.conn, &id, &self.author, &self.actor).map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let outcome = loaded.and_then(|mut doc| {
                let mut expected = decode_heads(&id, &heads).map_err(|e| e.to_string())?;
                let mut actual = doc.get_heads();
                expected.sort();
                actual.sort();
                if actual == expected {
                    Ok(doc)
                } else {
                    Err("its bytes do not reach the heads it was sent with".into())
                }
            });
            match outcome {
                Ok(doc) => good.push((id, doc)),
                Err(reason) => {
                    self.remove_received(&id)?;
                    report.removed.push((id, reason));
                }
            }
        }
        let tx = self.conn.transaction()?;
        for (id, doc) in &good {
            index::remove_doc(&tx, id)?;
            index::write(&tx, id, doc)?;
            tx.execute("DELETE FROM unverified WHERE doc_id = ?1", [id.as_str()])?;
        }
        tx.commit()?;
        report.verified = good.len();
        report.remaining =
            self.conn
                .query_row("SELECT count(*) FROM unverified", [], |row| row.get::<_, i64>(0))? as usize;
        Ok(report)
    }

    /// Drops `id` if it was received whole and not yet verified, and its bytes are damaged:
    /// nothing was typed into it (a damaged document cannot be opened to edit), and dropping it
    /// has the next sync fetch it again. False when it is verified or sound.
    pub(crate) fn drop_if_damaged_received(&mut self, id: &DocId) -> Result<bool> {
        let unverified: Option<Option<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT d.snapshot FROM unverified u JOIN documents d ON d.doc_id = u.doc_id WHERE u.doc_id = ?1",
                [id.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        let Some(snapshot) = unverified else {
            return Ok(false);
        };
        if matches!(chunks::validate(snapshot.as_deref().unwrap_or_default()), Ok(Some(_))) {
            return Ok(false);
        }
        tracing::warn!(doc = %id, "a document received damaged was dropped; the next sync fetches it again");
        self.remove_received(id)?;
        Ok(true)
    }

    /// Removes a received document that failed its check, so the next sync can fetch it again.
    fn remove_received(&mut self, id: &DocId) -> Result<()> {
        let tx = self.conn.transaction()?;
        index::remove_doc(&tx, id)?;
        tx.execute("DELETE FROM changes WHERE doc_id = ?1", [id.as_str()])?;
        tx.execute("DELETE FROM documents WHERE doc_id = ?1", [id.as_str()])?;
        tx.execute("DELETE FROM sync_acked WHERE doc_id = ?1", [id.as_str()])?;
        tx.execute("DELETE FROM unverified WHERE doc_id = ?1", [id.as_str()])?;
        // The cursor is past it; an inventory on the next sync fetches it again.
        tx.execute("UPDATE sync_peers SET needs_inventory = 1", [])?;
        tx.commit()?;
        self.cache.take(id);
        Ok(())
    }
}
