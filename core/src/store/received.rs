//! Documents received whole with their index rows: written as they arrive, so a fresh device's
//! caseload can be listed, opened and searched at once, and verified afterwards by loading each
//! one, which is where the time goes (Automerge rebuilds every change).

use automerge::ChangeHash;
use rusqlite::{OptionalExtension, params};

use super::disk::{decode_heads, encode_heads, load};
use super::{Store, chunks, index, shipped_index};
use crate::error::{Error, Result};
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
    /// the documents themselves. Run it in the background after a large first sync.
    pub fn verify_received(&mut self, limit: usize) -> Result<Verified> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached("SELECT doc_id FROM unverified ORDER BY doc_id LIMIT ?1")?
            .query_map([limit as i64], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut report = Verified::default();
        for id in ids {
            let id = DocId::new(id)?;
            match self.check_received(&id) {
                Ok(()) => report.verified += 1,
                Err(e) => {
                    self.remove_received(&id)?;
                    report.removed.push((id, e.to_string()));
                }
            }
        }
        report.remaining =
            self.conn
                .query_row("SELECT count(*) FROM unverified", [], |row| row.get::<_, i64>(0))? as usize;
        Ok(report)
    }

    fn check_received(&mut self, id: &DocId) -> Result<()> {
        let corrupt = |reason: String| Error::CorruptDocument { id: id.clone(), reason };
        let (snapshot, heads): (Option<Vec<u8>>, Vec<u8>) = self
            .conn
            .prepare_cached("SELECT snapshot, heads FROM documents WHERE doc_id = ?1")?
            .query_row([id.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?
            .ok_or_else(|| Error::NotFound(id.clone()))?;
        chunks::validate(snapshot.as_deref().unwrap_or_default()).map_err(corrupt)?;
        let mut doc = load(&self.conn, id, &self.author, &self.actor)?;
        let mut expected = decode_heads(id, &heads)?;
        let mut actual = doc.get_heads();
        expected.sort();
        actual.sort();
        if actual != expected {
            return Err(corrupt("its bytes do not reach the heads it was sent with".into()));
        }
        let tx = self.conn.transaction()?;
        index::remove_doc(&tx, id)?;
        index::write(&tx, id, &doc)?;
        tx.execute("DELETE FROM unverified WHERE doc_id = ?1", [id.as_str()])?;
        tx.commit()?;
        self.cache.put(id.clone(), doc);
        Ok(())
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
