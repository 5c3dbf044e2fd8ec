//! Merging, the raw material of sync: heads, the changes another replica lacks, and importing
//! changes received from elsewhere, strictly checked and written in one transaction.

use std::collections::HashSet;

use automerge::{AutoCommit, ChangeHash, ReadDoc};
use rusqlite::{OptionalExtension, Transaction};

use super::disk::{decode_heads, write_changes, write_snapshot};
use super::{COMPACT_AFTER_CHANGES, Store, chunks};
use crate::error::{Error, Result};
use crate::ids::DocId;
use crate::model::header;

/// What importing another replica's changes did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Changes new to this store, now on disk.
    pub applied: usize,
    /// Changes the received ones depend on that this store lacks; they must be fetched first.
    pub missing: Vec<ChangeHash>,
    pub heads: Vec<ChangeHash>,
}

/// Received changes applied to a copy of a document, waiting to be written.
struct PendingImport {
    doc: AutoCommit,
    existed: bool,
    /// How many changes are new to this store.
    applied: usize,
    write: Write,
    missing: Vec<ChangeHash>,
    heads: Vec<ChangeHash>,
}

/// How an import reaches the disk.
enum Write {
    Nothing,
    /// A few new changes, appended beside the snapshot.
    Changes(Vec<Vec<u8>>),
    /// A new document or a long run of changes, stored as one snapshot: smaller on disk and
    /// faster to load. `Some` holds received bytes that already are a compact saved document.
    Snapshot(Option<Vec<u8>>),
}

impl Store {
    /// Every document id with its heads, read from the store without loading any document.
    pub fn all_heads(&self) -> Result<Vec<(DocId, Vec<ChangeHash>)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id, heads FROM documents ORDER BY doc_id")?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)))?;
        rows.map(|row| {
            let (id, heads) = row?;
            let id = DocId::new(id)?;
            let heads = decode_heads(&id, &heads)?;
            Ok((id, heads))
        })
        .collect()
    }

    pub fn heads(&self, id: &DocId) -> Result<Vec<ChangeHash>> {
        let heads: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT heads FROM documents WHERE doc_id = ?1")?
            .query_row([id.as_str()], |row| row.get(0))
            .optional()?;
        decode_heads(id, &heads.ok_or_else(|| Error::NotFound(id.clone()))?)
    }

    /// The changes a replica at `since` lacks, as bytes `import_changes` accepts. Empty `since`
    /// sends the whole document as a compact snapshot.
    pub fn export_changes(&mut self, id: &DocId, since: &[ChangeHash]) -> Result<Vec<u8>> {
        let doc = self.doc_mut(id)?;
        // Heads this replica has never seen (the other side's own edits) say nothing about what
        // it lacks from us; only the ones we know bound what to send.
        let known: Vec<ChangeHash> = since
            .iter()
            .filter(|h| doc.get_change_by_hash(h).is_some())
            .copied()
            .collect();
        if known.is_empty() {
            return Ok(doc.save());
        }
        Ok(doc
            .get_changes(&known)
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect())
    }

    /// Which of `their_heads` this store lacks (so must ask for).
    pub fn missing(&mut self, id: &DocId, their_heads: &[ChangeHash]) -> Result<Vec<ChangeHash>> {
        match self.doc_mut(id) {
            Ok(doc) => Ok(doc.get_missing_deps(their_heads)),
            Err(Error::NotFound(_)) => Ok(their_heads.to_vec()),
            Err(e) => Err(e),
        }
    }

    /// Applies changes from another replica (or a whole saved document), creating the document
    /// if it is new here. Bytes that do not decode, or a document that is not an Outpost record,
    /// are refused and nothing stored changes.
    pub fn import_changes(&mut self, id: &DocId, bytes: &[u8]) -> Result<Imported> {
        let mut imported = self.import_batch(&[(id.clone(), bytes)])?;
        imported.pop().ok_or_else(|| Error::NotFound(id.clone()))
    }

    /// Imports many documents' changes in one transaction: all of them land, or (if any is
    /// refused, with an error naming it) none does.
    pub fn import_batch(&mut self, items: &[(DocId, &[u8])]) -> Result<Vec<Imported>> {
        self.import_batch_with(items, |_, _| Ok(()))
    }

    /// `import_batch`, with `also` writing more in the same transaction once the documents are
    /// written (sync records the cursor and acknowledgements there).
    pub(crate) fn import_batch_with(
        &mut self,
        items: &[(DocId, &[u8])],
        also: impl FnOnce(&Transaction<'_>, &[Imported]) -> Result<()>,
    ) -> Result<Vec<Imported>> {
        // Every Automerge call on a document built from outside bytes may panic on crafted
        // changes (tests/fuzz/KNOWN.md), not only decoding them. A panic before the commit rolls
        // the transaction back as it unwinds, and the cache is only updated after the commit:
        // so it is a refusal, and the store is as it was.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.import_unguarded(items, also))).unwrap_or_else(
            |_| {
                Err(match items {
                    [(id, _)] => Error::InvalidChanges {
                        id: id.clone(),
                        reason: "automerge could not apply them (it panicked)".into(),
                    },
                    _ => Error::invalid(
                        "import batch",
                        "automerge could not apply one of its documents (it panicked)",
                    ),
                })
            },
        )
    }

    fn import_unguarded(
        &mut self,
        items: &[(DocId, &[u8])],
        also: impl FnOnce(&Transaction<'_>, &[Imported]) -> Result<()>,
    ) -> Result<Vec<Imported>> {
        let mut seen = HashSet::new();
        if let Some((id, _)) = items.iter().find(|(id, _)| !seen.insert(id)) {
            return Err(Error::invalid(
                "import batch",
                format!("document {id} appears more than once"),
            ));
        }
        // Checking and loading received documents is most of an import's cost (Automerge
        // rebuilds every change), and documents are independent: use every core.
        let checked = parallel_map(items, |(_, bytes)| chunks::validate(bytes));
        let mut decoded = Vec::with_capacity(items.len());
        for ((id, bytes), checked) in items.iter().zip(checked) {
            decoded.push(self.decode_import(id, bytes, checked)?);
        }
        let tx = self.conn.transaction()?;
        for (id, pending) in items.iter().map(|(id, _)| id).zip(decoded.iter_mut()) {
            match &pending.write {
                Write::Nothing => {}
                Write::Changes(changes) => {
                    write_changes(&tx, id, &mut pending.doc, changes, true)?;
                }
                Write::Snapshot(bytes) => {
                    write_snapshot(&tx, id, &mut pending.doc, bytes.as_deref(), pending.existed)?;
                }
            }
        }
        // A large import leaves FTS5 with many small segments whose later merging would stall
        // the next keystrokes; merge them now, while the worker is waiting for sync anyway.
        if decoded.len() >= 100 {
            tx.execute("INSERT INTO visit_text (visit_text) VALUES ('optimize')", [])?;
        }
        let results: Vec<Imported> = decoded
            .iter()
            .map(|pending| Imported {
                applied: pending.applied,
                missing: pending.missing.clone(),
                heads: pending.heads.clone(),
            })
            .collect();
        also(&tx, &results)?;
        tx.commit()?;
        for ((id, _), pending) in items.iter().zip(decoded) {
            match &pending.write {
                Write::Nothing => {}
                Write::Changes(changes) => self.cache.add_changes(id, changes.len()),
                Write::Snapshot(_) => self.cache.reset_change_count(id),
            }
            self.cache.put(id.clone(), pending.doc);
        }
        Ok(results)
    }

    /// Applies received bytes to a copy of the document, so a decode error half way through
    /// leaves the stored and cached document exactly as it was.
    fn decode_import(
        &mut self,
        id: &DocId,
        bytes: &[u8],
        checked: Result<Option<AutoCommit>, String>,
    ) -> Result<PendingImport> {
        let invalid = |reason: String| Error::InvalidChanges { id: id.clone(), reason };
        let (base, old_person, known_changes) = match self.doc(id) {
            Ok(doc) => (
                Some(doc.clone()),
                Some(header::read(doc, id)?.person),
                doc.stats().num_changes,
            ),
            Err(Error::NotFound(_)) => (None, None, 0),
            Err(e) => return Err(e),
        };
        let whole_document = checked.map_err(invalid)?;
        let (mut doc, received_snapshot) = match (base, whole_document) {
            (Some(mut doc), _) => {
                // A copy of the cached document: dropped if this fails part way.
                chunks::apply_untrusted(&mut doc, bytes).map_err(invalid)?;
                (doc, None)
            }
            // A new document sent whole (the usual first sync) is kept as the bytes received.
            (None, Some(doc)) => (doc, Some(bytes.to_vec())),
            (None, None) => {
                let mut doc = AutoCommit::new();
                chunks::apply_untrusted(&mut doc, bytes).map_err(invalid)?;
                (doc, None)
            }
        };
        // Loading replaces the document's author; edits made here must carry ours.
        doc.set_author(Some(self.author.to_automerge()));
        doc.set_actor(self.actor.clone());
        let header = header::read(&doc, id).map_err(|e| invalid(format!("not an Outpost record: {e}")))?;
        // A merge of duplicate people re-points records; the record itself says so.
        if old_person.as_ref().is_some_and(|person| {
            *person != header.person && !crate::duplicates::was_moved(&doc, person, &header.person)
        }) {
            return Err(invalid("the changes would move the record to another person".into()));
        }
        let existed = old_person.is_some();
        let before = if existed { self.heads(id)? } else { Vec::new() };
        let applied = usize::try_from(doc.stats().num_changes.saturating_sub(known_changes)).unwrap_or(usize::MAX);
        let write = if applied == 0 {
            Write::Nothing
        } else if !existed || applied >= COMPACT_AFTER_CHANGES {
            Write::Snapshot(received_snapshot)
        } else {
            Write::Changes(
                doc.get_changes(&before)
                    .iter()
                    .map(|c| c.raw_bytes().to_vec())
                    .collect(),
            )
        };
        Ok(PendingImport {
            missing: doc.get_missing_deps(&[]),
            heads: doc.get_heads(),
            doc,
            existed,
            applied,
            write,
        })
    }
}

/// `f` over `items` on every available core, in order. Small batches stay on this thread.
pub(super) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads < 2 || items.len() < 16 {
        return items.iter().map(f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}
