//! What the store remembers about each sync peer: the server log cursor, what the server has
//! acknowledged of each document, this device's actors, and the outcome of the last sync.
//! Each write here lands in the same transaction as the documents it describes.

use std::collections::HashSet;

use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, ChangeHash};
use chrono::Utc;
use rusqlite::{OptionalExtension, params};

use super::disk::{decode_heads, encode_heads};
use super::index;
use crate::error::{Error, Result};
use crate::ids::{DocId, PersonId};
use crate::store::Store;

/// What an app shows about sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// Documents with changes the server has not acknowledged.
    pub pending_docs: usize,
    /// When the last sync completed (RFC 3339), if one ever has.
    pub last_success: Option<String>,
    /// Why the last sync failed, if it did.
    pub last_error: Option<String>,
}

/// Where this device stands with one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PeerState {
    pub epoch: Option<String>,
    pub cursor: u64,
    pub needs_inventory: bool,
}

/// A document's changes the server has not acknowledged, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub base: Vec<ChangeHash>,
    pub heads: Vec<ChangeHash>,
    pub bytes: Vec<u8>,
    /// This device's own actors among the changes' authors.
    pub actors: Vec<ActorId>,
}

impl Store {
    pub fn sync_status(&self, peer: &str) -> Result<SyncStatus> {
        let row: Option<(Option<String>, Option<String>)> = self
            .conn
            .prepare_cached("SELECT last_success, last_error FROM sync_peers WHERE peer = ?1")?
            .query_row([peer], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let (last_success, last_error) = row.unwrap_or_default();
        Ok(SyncStatus {
            pending_docs: self.pending_docs(peer)?.len(),
            last_success,
            last_error,
        })
    }

    /// Records how a sync ended: `Ok` stamps the time, `Err` keeps the reason to show.
    pub fn record_sync_outcome(&mut self, peer: &str, outcome: std::result::Result<(), &str>) -> Result<()> {
        self.ensure_peer(peer)?;
        match outcome {
            Ok(()) => self.conn.execute(
                "UPDATE sync_peers SET last_success = ?2, last_error = NULL WHERE peer = ?1",
                params![peer, Utc::now().to_rfc3339()],
            )?,
            Err(reason) => self.conn.execute(
                "UPDATE sync_peers SET last_error = ?2 WHERE peer = ?1",
                params![peer, reason],
            )?,
        };
        Ok(())
    }

    pub(crate) fn peer_state(&self, peer: &str) -> Result<PeerState> {
        let row = self
            .conn
            .prepare_cached("SELECT epoch, cursor, needs_inventory FROM sync_peers WHERE peer = ?1")?
            .query_row([peer], |row| {
                Ok(PeerState {
                    epoch: row.get(0)?,
                    cursor: row.get::<_, i64>(1)?.max(0) as u64,
                    needs_inventory: row.get(2)?,
                })
            })
            .optional()?;
        Ok(row.unwrap_or_default())
    }

    fn ensure_peer(&self, peer: &str) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO sync_peers (peer) VALUES (?1)")?
            .execute([peer])?;
        Ok(())
    }

    /// The server's log moved to another epoch (it was restored): the cursor means nothing
    /// there, and the next request carries an inventory instead.
    pub(crate) fn start_inventory(&mut self, peer: &str, epoch: &str) -> Result<()> {
        self.ensure_peer(peer)?;
        self.conn.execute(
            "UPDATE sync_peers SET epoch = ?2, cursor = 0, needs_inventory = 1 WHERE peer = ?1",
            params![peer, epoch],
        )?;
        // What the server acknowledged before may be lost with its restore.
        self.conn.execute("DELETE FROM sync_acked WHERE peer = ?1", [peer])?;
        Ok(())
    }

    /// Documents whose heads differ from what the server acknowledged, with that acknowledgement.
    pub(crate) fn pending_docs(&self, peer: &str) -> Result<Vec<(DocId, Vec<ChangeHash>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.doc_id, a.heads FROM documents d
             LEFT JOIN sync_acked a ON a.peer = ?1 AND a.doc_id = d.doc_id
             WHERE a.heads IS NULL OR a.heads != d.heads
             ORDER BY d.doc_id",
        )?;
        let rows = stmt.query_map([peer], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<Vec<u8>>>(1)?))
        })?;
        rows.map(|row| {
            let (id, acked) = row?;
            let id = DocId::new(id)?;
            let acked = match acked {
                Some(bytes) => decode_heads(&id, &bytes)?,
                None => Vec::new(),
            };
            Ok((id, acked))
        })
        .collect()
    }

    /// The changes of `id` after `base`, with the heads they reach and this device's actors
    /// among their authors (which the server registers to this device).
    pub(crate) fn outgoing(&mut self, id: &DocId, base: &[ChangeHash]) -> Result<Outgoing> {
        let own = self.own_actors()?;
        let doc = self.doc_mut(id)?;
        let heads = doc.get_heads();
        let known_base: Vec<ChangeHash> = base
            .iter()
            .filter(|h| doc.get_change_by_hash(h).is_some())
            .copied()
            .collect();
        let mut actors = HashSet::new();
        let bytes = if known_base.is_empty() {
            for change in doc.get_changes(&[]) {
                actors.insert(change.actor_id().clone());
            }
            doc.save()
        } else {
            let changes = doc.get_changes(&known_base);
            let mut bytes = Vec::new();
            for change in changes {
                actors.insert(change.actor_id().clone());
                bytes.extend_from_slice(change.raw_bytes());
            }
            bytes
        };
        Ok(Outgoing {
            base: known_base,
            heads,
            bytes,
            actors: actors.into_iter().filter(|a| own.contains(a)).collect(),
        })
    }

    /// Every actor this store has written with (one per launch).
    pub(crate) fn own_actors(&self) -> Result<HashSet<ActorId>> {
        let mut stmt = self.conn.prepare_cached("SELECT actor FROM own_actors")?;
        let rows = stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
        Ok(rows.map(|r| r.map(ActorId::from)).collect::<rusqlite::Result<_>>()?)
    }

    /// Records the heads the server acknowledged holding.
    pub(crate) fn record_acks(&mut self, peer: &str, acks: &[(DocId, Vec<ChangeHash>)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO sync_acked (peer, doc_id, heads) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer, doc_id) DO UPDATE SET heads = excluded.heads",
            )?;
            for (doc, heads) in acks {
                upsert.execute(params![peer, doc.as_str(), encode_heads(heads)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets what the server acknowledged of a document whose copies diverged.
    pub(crate) fn forget_ack(&mut self, peer: &str, doc: &DocId) -> Result<()> {
        self.conn.execute(
            "DELETE FROM sync_acked WHERE peer = ?1 AND doc_id = ?2",
            params![peer, doc.as_str()],
        )?;
        Ok(())
    }

    /// Applies documents pulled from the server and advances the cursor, in one transaction.
    /// A document with no unacknowledged local changes is acknowledged at its new heads.
    /// Returns the documents whose changes could not be applied for want of their dependencies.
    pub(crate) fn apply_pulled(
        &mut self,
        peer: &str,
        items: &[(DocId, &[u8])],
        cursor: Option<(&str, u64)>,
    ) -> Result<Vec<DocId>> {
        self.ensure_peer(peer)?;
        let mut settled = Vec::with_capacity(items.len());
        for (id, _) in items {
            let before: Option<Vec<u8>> = self
                .conn
                .prepare_cached("SELECT heads FROM documents WHERE doc_id = ?1")?
                .query_row([id.as_str()], |row| row.get(0))
                .optional()?;
            let acked: Option<Vec<u8>> = self
                .conn
                .prepare_cached("SELECT heads FROM sync_acked WHERE peer = ?1 AND doc_id = ?2")?
                .query_row(params![peer, id.as_str()], |row| row.get(0))
                .optional()?;
            settled.push(before.is_none() || before == acked);
        }
        let imported = self.import_batch_with(items, |tx, results| {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO sync_acked (peer, doc_id, heads) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer, doc_id) DO UPDATE SET heads = excluded.heads",
            )?;
            for (((id, _), result), settled) in items.iter().zip(results).zip(&settled) {
                if *settled && result.missing.is_empty() {
                    upsert.execute(params![peer, id.as_str(), encode_heads(&result.heads)])?;
                }
            }
            if let Some((epoch, cursor)) = cursor {
                tx.execute(
                    "UPDATE sync_peers SET epoch = ?2, cursor = max(cursor, ?3), needs_inventory = 0 WHERE peer = ?1",
                    params![peer, epoch, cursor as i64],
                )?;
            }
            Ok(())
        })?;
        Ok(items
            .iter()
            .zip(imported)
            .filter(|(_, result)| !result.missing.is_empty())
            .map(|((id, _), _)| id.clone())
            .collect())
    }

    /// Drops a person who left this device's scope, unless one of their documents holds
    /// changes the server has not acknowledged; then it stays until they are. True if dropped.
    pub(crate) fn drop_person(&mut self, peer: &str, person: &PersonId) -> Result<bool> {
        let docs = self.documents_of_person(person)?;
        let pending: HashSet<DocId> = self.pending_docs(peer)?.into_iter().map(|(id, _)| id).collect();
        if docs.iter().any(|d| pending.contains(d)) {
            return Ok(false);
        }
        let tx = self.conn.transaction()?;
        for doc in &docs {
            tx.execute("DELETE FROM changes WHERE doc_id = ?1", [doc.as_str()])?;
            tx.execute("DELETE FROM documents WHERE doc_id = ?1", [doc.as_str()])?;
            tx.execute("DELETE FROM sync_acked WHERE doc_id = ?1", [doc.as_str()])?;
        }
        index::remove_person(&tx, person.as_str())?;
        tx.execute(
            "INSERT OR IGNORE INTO sync_dropped (peer, person_id) VALUES (?1, ?2)",
            params![peer, person.as_str()],
        )?;
        tx.commit()?;
        for doc in &docs {
            self.cache.take(doc);
        }
        Ok(true)
    }

    /// People dropped that the server has not yet heard about.
    pub(crate) fn unreported_drops(&self, peer: &str) -> Result<Vec<PersonId>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT person_id FROM sync_dropped WHERE peer = ?1 ORDER BY person_id")?;
        let rows = stmt.query_map([peer], |row| row.get::<_, String>(0))?;
        rows.map(|r| PersonId::new(r?)).collect()
    }

    pub(crate) fn drops_reported(&mut self, peer: &str, people: &[PersonId]) -> Result<()> {
        for person in people {
            self.conn.execute(
                "DELETE FROM sync_dropped WHERE peer = ?1 AND person_id = ?2",
                params![peer, person.as_str()],
            )?;
        }
        Ok(())
    }

    /// The next Automerge sync message for a document whose copies diverged, if any.
    pub(crate) fn automerge_sync_message(&mut self, id: &DocId, state: &mut sync::State) -> Result<Option<Vec<u8>>> {
        let doc = self.doc_mut(id)?;
        Ok(doc.sync().generate_sync_message(state).map(|m| m.encode()))
    }

    /// Receives an Automerge sync message: its changes are imported (checked and written like
    /// any others), then the rest updates `state`.
    pub(crate) fn receive_automerge_sync(&mut self, id: &DocId, state: &mut sync::State, bytes: &[u8]) -> Result<()> {
        let invalid = |reason: String| Error::InvalidChanges { id: id.clone(), reason };
        let mut message = sync::Message::decode(bytes).map_err(|e| invalid(format!("sync message: {e}")))?;
        let changes: Vec<u8> = message.changes.iter().flatten().copied().collect();
        if !changes.is_empty() {
            self.import_changes(id, &changes)?;
        }
        message.changes = sync::ChunkList::empty();
        let doc = self.doc_mut(id)?;
        doc.sync()
            .receive_sync_message(state, message)
            .map_err(|e| invalid(format!("sync message: {e}")))?;
        Ok(())
    }
}
