//! The offline store: every document's changes and heads in SQLite, a query index beside them,
//! and typed create / read / edit operations that report an edit saved only once it is on disk.

mod cache;
mod chunks;
mod index;
mod queries;
pub mod schema;

use std::path::Path;

use automerge::{AutoCommit, ChangeHash, transaction::CommitOptions};
use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub use queries::{ActionRow, CaseloadRow, SearchHit, StorageStats, VisitRow};

use crate::error::{Error, Result};
use crate::ids::{Author, DocId, PersonId};
use crate::model::assessment::{self, Assessment, AssessmentEditor, NewAssessment};
use crate::model::authorship::{self, AuthoredSpan};
use crate::model::header::{self, DocType};
use crate::model::observations::{self, NewObservations, Observations, ObservationsEditor};
use crate::model::person::{self, NewPerson, Person, PersonEditor};
use crate::model::review::{self, Review, ReviewAction, ReviewState};
use crate::model::visit::{self, NewVisit, Section, Visit, VisitEditor};
use cache::DocCache;

/// A document with this many changes stored beside its snapshot is compacted after a write.
const COMPACT_AFTER_CHANGES: usize = 256;

/// What a successful write returns: the document is on disk at these heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub heads: Vec<ChangeHash>,
    /// The store's revision after the write; `changed_since` takes it.
    pub revision: i64,
}

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
    new_changes: Vec<Vec<u8>>,
    missing: Vec<ChangeHash>,
    heads: Vec<ChangeHash>,
}

#[derive(Debug)]
pub struct Store {
    conn: Connection,
    author: Author,
    cache: DocCache,
}

impl Store {
    /// Opens (creating or upgrading) the store at `path`, writing as `author`.
    pub fn open(path: impl AsRef<Path>, author: Author) -> Result<Self> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        schema::migrate_to(&mut conn, schema::CURRENT_VERSION)?;
        let mut store = Self {
            conn,
            author,
            cache: DocCache::default(),
        };
        if store.meta_i64("reindex")? != 0 {
            store.rebuild_index()?;
        }
        Ok(store)
    }

    pub fn author(&self) -> &Author {
        &self.author
    }

    /// The connection's `synchronous` setting (2 = FULL), for the durability test.
    pub fn synchronous_mode(&self) -> Result<i64> {
        Ok(self.conn.pragma_query_value(None, "synchronous", |row| row.get(0))?)
    }

    // ---- creating documents -------------------------------------------------------------

    pub fn create_person(&mut self, new: &NewPerson) -> Result<PersonId> {
        let id = DocId::random();
        self.create(&id, |doc| person::create(doc, &id, new))?;
        Ok(id)
    }

    /// Creates the visit and its review document (in draft), durably, in one transaction.
    pub fn create_visit(&mut self, new: &NewVisit) -> Result<DocId> {
        self.expect_type(&new.person, DocType::Person)?;
        let id = DocId::random();
        let review_id = DocId::review_of(&id);
        let mut visit_doc = self.new_doc();
        visit::create(&mut visit_doc, new)?;
        let mut review_doc = self.new_doc();
        review::create(&mut review_doc, &id, &new.person)?;
        self.persist_new(vec![(id.clone(), visit_doc), (review_id, review_doc)])?;
        Ok(id)
    }

    pub fn create_assessment(&mut self, new: &NewAssessment) -> Result<DocId> {
        self.expect_type(&new.person, DocType::Person)?;
        let id = DocId::random();
        self.create(&id, |doc| assessment::create(doc, new))?;
        Ok(id)
    }

    pub fn create_observations(&mut self, new: &NewObservations) -> Result<DocId> {
        self.expect_type(&new.person, DocType::Person)?;
        let id = DocId::random();
        self.create(&id, |doc| observations::create(doc, new))?;
        Ok(id)
    }

    // ---- reading documents --------------------------------------------------------------

    pub fn person(&mut self, id: &PersonId) -> Result<Person> {
        person::read(self.doc(id)?, id)
    }

    pub fn visit(&mut self, id: &DocId) -> Result<Visit> {
        visit::read(self.doc(id)?, id)
    }

    pub fn assessment(&mut self, id: &DocId) -> Result<Assessment> {
        assessment::read(self.doc(id)?, id)
    }

    pub fn observations(&mut self, id: &DocId) -> Result<Observations> {
        observations::read(self.doc(id)?, id)
    }

    pub fn review(&mut self, visit: &DocId) -> Result<Review> {
        let id = DocId::review_of(visit);
        review::read(self.doc(&id)?, &id)
    }

    /// Who wrote which part of a visit section, from the document's history.
    pub fn authorship(&mut self, visit: &DocId, section: Section) -> Result<Vec<AuthoredSpan>> {
        let doc = self.doc(visit)?;
        header::expect(doc, visit, DocType::Visit)?;
        let text = visit::section_text(doc, section)?;
        Ok(authorship::spans(doc, &text))
    }

    // ---- editing documents (each call returns once the edit is durable) ----------------

    pub fn edit_person(&mut self, id: &PersonId, f: impl FnOnce(&mut PersonEditor<'_>) -> Result<()>) -> Result<Saved> {
        let author = self.author.clone();
        self.edit(id, DocType::Person, |doc| {
            f(&mut PersonEditor {
                doc,
                author: Some(&author),
            })
        })
    }

    /// Several keystrokes may be applied in one call; they become one change, saved together.
    pub fn edit_visit(&mut self, id: &DocId, f: impl FnOnce(&mut VisitEditor<'_>) -> Result<()>) -> Result<Saved> {
        self.edit(id, DocType::Visit, |doc| f(&mut VisitEditor { doc }))
    }

    pub fn edit_assessment(
        &mut self,
        id: &DocId,
        f: impl FnOnce(&mut AssessmentEditor<'_>) -> Result<()>,
    ) -> Result<Saved> {
        self.edit(id, DocType::Assessment, |doc| f(&mut AssessmentEditor { doc }))
    }

    pub fn edit_observations(
        &mut self,
        id: &DocId,
        f: impl FnOnce(&mut ObservationsEditor<'_>) -> Result<()>,
    ) -> Result<Saved> {
        self.edit(id, DocType::Observations, |doc| f(&mut ObservationsEditor { doc }))
    }

    /// Takes a review step (submit, approve, return) on a visit, recording who took it and the
    /// visit heads they saw. Transitions the current state does not allow are refused.
    pub fn review_visit(&mut self, visit: &DocId, action: ReviewAction, comment: Option<&str>) -> Result<ReviewState> {
        self.expect_type(visit, DocType::Visit)?;
        let visit_heads = self.heads(visit)?;
        let review_id = DocId::review_of(visit);
        let author = self.author.clone();
        let mut state = ReviewState::Draft;
        self.edit(&review_id, DocType::Review, |doc| {
            state = review::apply(doc, &review_id, action, &author, comment, &visit_heads)?;
            Ok(())
        })?;
        Ok(state)
    }

    // ---- merging: the raw material of sync ------------------------------------------------

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
        let mut seen = std::collections::HashSet::new();
        if let Some((id, _)) = items.iter().find(|(id, _)| !seen.insert(id)) {
            return Err(Error::invalid(
                "import batch",
                format!("document {id} appears more than once"),
            ));
        }
        let mut decoded = Vec::with_capacity(items.len());
        for (id, bytes) in items {
            decoded.push(self.decode_import(id, bytes)?);
        }
        let tx = self.conn.transaction()?;
        for (id, pending) in items.iter().map(|(id, _)| id).zip(decoded.iter_mut()) {
            if pending.new_changes.is_empty() {
                continue;
            }
            // A new document, or a long run of changes, is stored as one snapshot: smaller on
            // disk and faster to load than its changes one by one.
            if !pending.existed || pending.new_changes.len() >= COMPACT_AFTER_CHANGES {
                write_snapshot(&tx, id, &mut pending.doc, pending.existed)?;
            } else {
                write_changes(&tx, id, &mut pending.doc, &pending.new_changes, true)?;
            }
        }
        tx.commit()?;
        let mut results = Vec::with_capacity(items.len());
        for ((id, _), pending) in items.iter().zip(decoded) {
            if pending.new_changes.len() >= COMPACT_AFTER_CHANGES || !pending.existed {
                self.cache.reset_change_count(id);
            } else {
                self.cache.add_changes(id, pending.new_changes.len());
            }
            results.push(Imported {
                applied: pending.new_changes.len(),
                missing: pending.missing,
                heads: pending.heads,
            });
            self.cache.put(id.clone(), pending.doc);
        }
        Ok(results)
    }

    /// Applies received bytes to a copy of the document, so a decode error half way through
    /// leaves the stored and cached document exactly as it was.
    fn decode_import(&mut self, id: &DocId, bytes: &[u8]) -> Result<PendingImport> {
        let invalid = |reason: String| Error::InvalidChanges { id: id.clone(), reason };
        let (base, old_person) = match self.doc(id) {
            Ok(doc) => (doc.clone(), Some(header::read(doc, id)?.person)),
            Err(Error::NotFound(_)) => (self.new_doc(), None),
            Err(e) => return Err(e),
        };
        let existed = old_person.is_some();
        let before = if existed { self.heads(id)? } else { Vec::new() };
        chunks::validate(bytes).map_err(invalid)?;
        let mut doc = base;
        doc.load_incremental(bytes).map_err(|e| invalid(e.to_string()))?;
        // Loading into an empty document replaces it wholesale, author included.
        doc.set_author(Some(self.author.to_automerge()));
        let header = header::read(&doc, id).map_err(|e| invalid(format!("not an Outpost record: {e}")))?;
        if old_person.is_some_and(|person| person != header.person) {
            return Err(invalid("the changes would move the record to another person".into()));
        }
        let new_changes = doc
            .get_changes(&before)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        Ok(PendingImport {
            missing: doc.get_missing_deps(&[]),
            heads: doc.get_heads(),
            doc,
            existed,
            new_changes,
        })
    }

    /// Writes the document as one snapshot and removes the changes it replaces, atomically.
    pub fn compact(&mut self, id: &DocId) -> Result<()> {
        let mut doc = self.take_doc(id)?;
        let snapshot = doc.save();
        let result = (|| -> Result<()> {
            let tx = self.conn.transaction()?;
            tx.execute(
                "UPDATE documents SET snapshot = ?1 WHERE doc_id = ?2",
                params![snapshot, id.as_str()],
            )?;
            tx.execute("DELETE FROM changes WHERE doc_id = ?1", [id.as_str()])?;
            tx.commit()?;
            Ok(())
        })();
        if result.is_ok() {
            self.cache.put(id.clone(), doc);
            self.cache.reset_change_count(id);
        }
        result
    }

    /// Compacts every document that has changes stored beside its snapshot.
    pub fn compact_all(&mut self) -> Result<usize> {
        let ids: Vec<String> = self
            .conn
            .prepare("SELECT DISTINCT doc_id FROM changes")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in &ids {
            self.compact(&DocId::new(id.as_str())?)?;
        }
        Ok(ids.len())
    }

    /// Rebuilds every index table from the documents themselves. A document that cannot be read
    /// is left out of the index and reported; the others are indexed.
    pub fn rebuild_index(&mut self) -> Result<Vec<Error>> {
        let ids: Vec<String> = self
            .conn
            .prepare("SELECT doc_id FROM documents ORDER BY doc_id")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut skipped = Vec::new();
        let tx = self.conn.transaction()?;
        index::clear(&tx)?;
        for id in ids {
            let id = DocId::new(id)?;
            let doc = match self.cache.get(&id) {
                Some(doc) => doc.clone(),
                None => match load(&tx, &id, &self.author) {
                    Ok(doc) => doc,
                    Err(e) => {
                        skipped.push(e);
                        continue;
                    }
                },
            };
            if let Err(e) = index::write(&tx, &id, &doc) {
                skipped.push(e);
            }
        }
        tx.execute("UPDATE meta SET value = 0 WHERE key = 'reindex'", [])?;
        tx.commit()?;
        Ok(skipped)
    }

    // ---- internals ----------------------------------------------------------------------

    fn new_doc(&self) -> AutoCommit {
        AutoCommit::new().with_author(Some(self.author.to_automerge()))
    }

    fn expect_type(&mut self, id: &DocId, expected: DocType) -> Result<()> {
        let doc = self.doc(id)?;
        header::expect(doc, id, expected).map(|_| ())
    }

    fn doc(&mut self, id: &DocId) -> Result<&AutoCommit> {
        self.doc_mut(id).map(|d| &*d)
    }

    fn doc_mut(&mut self, id: &DocId) -> Result<&mut AutoCommit> {
        if !self.cache.contains(id) {
            let doc = load(&self.conn, id, &self.author)?;
            self.cache.put(id.clone(), doc);
        }
        self.cache.get_mut(id).ok_or_else(|| Error::NotFound(id.clone()))
    }

    /// Removes the document from the cache for writing; it goes back only if the write lands,
    /// so the cache never holds a change that is not on disk.
    fn take_doc(&mut self, id: &DocId) -> Result<AutoCommit> {
        match self.cache.take(id) {
            Some(doc) => Ok(doc),
            None => load(&self.conn, id, &self.author),
        }
    }

    fn create(&mut self, id: &DocId, f: impl FnOnce(&mut AutoCommit) -> Result<()>) -> Result<()> {
        let mut doc = self.new_doc();
        f(&mut doc)?;
        self.persist_new(vec![(id.clone(), doc)])
    }

    fn persist_new(&mut self, docs: Vec<(DocId, AutoCommit)>) -> Result<()> {
        let tx = self.conn.transaction()?;
        let mut committed = Vec::new();
        for (id, mut doc) in docs {
            commit(&mut doc);
            let changes: Vec<Vec<u8>> = doc.get_changes(&[]).iter().map(|c| c.raw_bytes().to_vec()).collect();
            write_changes(&tx, &id, &mut doc, &changes, false)?;
            committed.push((id, doc));
        }
        tx.commit()?;
        for (id, doc) in committed {
            self.cache.put(id, doc);
        }
        Ok(())
    }

    fn edit(&mut self, id: &DocId, expected: DocType, f: impl FnOnce(&mut AutoCommit) -> Result<()>) -> Result<Saved> {
        let mut doc = self.take_doc(id)?;
        let checked = header::expect(&doc, id, expected).and_then(|_| f(&mut doc));
        if let Err(e) = checked {
            doc.rollback();
            self.cache.put(id.clone(), doc);
            return Err(e);
        }
        let Some(hash) = commit(&mut doc) else {
            // Nothing changed; nothing to save.
            let heads = doc.get_heads();
            self.cache.put(id.clone(), doc);
            return Ok(Saved {
                heads,
                revision: self.meta_i64("revision")?,
            });
        };
        let change = doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| Error::CorruptDocument {
                id: id.clone(),
                reason: "the change just made is missing".into(),
            })?
            .raw_bytes()
            .to_vec();
        let revision = self.persist(id, &mut doc, &[change], true)?;
        let heads = doc.get_heads();
        self.cache.put(id.clone(), doc);
        if self.cache.change_count(id) >= COMPACT_AFTER_CHANGES {
            // The edit is already durable; a failed compaction only means more changes stay.
            let _ = self.compact(id);
        }
        Ok(Saved { heads, revision })
    }

    /// Appends changes, records the new heads and revision, and reindexes, in one transaction.
    fn persist(&mut self, id: &DocId, doc: &mut AutoCommit, changes: &[Vec<u8>], existed: bool) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let revision = write_changes(&tx, id, doc, changes, existed)?;
        tx.commit()?;
        self.cache.add_changes(id, changes.len());
        Ok(revision)
    }

    fn meta_i64(&self, key: &str) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |row| row.get(0))?)
    }
}

fn configure(conn: &Connection) -> Result<()> {
    // WAL must be set outside a transaction; FULL syncs the WAL on every commit, because a phone
    // whose battery dies is a power cut, not a process crash.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Commits pending operations as one change stamped with the time.
fn commit(doc: &mut AutoCommit) -> Option<ChangeHash> {
    doc.commit_with(CommitOptions::default().with_time(Utc::now().timestamp()))
}

fn write_changes(
    tx: &Transaction<'_>,
    id: &DocId,
    doc: &mut AutoCommit,
    changes: &[Vec<u8>],
    existed: bool,
) -> Result<i64> {
    let heads = encode_heads(&doc.get_heads());
    let revision: i64 = tx.query_row(
        "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value",
        [],
        |row| row.get(0),
    )?;
    if existed {
        tx.execute(
            "UPDATE documents SET heads = ?1, revision = ?2 WHERE doc_id = ?3",
            params![heads, revision, id.as_str()],
        )?;
    } else {
        tx.execute(
            "INSERT INTO documents (doc_id, snapshot, heads, revision) VALUES (?1, NULL, ?2, ?3)",
            params![id.as_str(), heads, revision],
        )?;
    }
    let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO changes (doc_id, hash, data) VALUES (?1, ?2, ?3)")?;
    for change in changes {
        let hash = automerge::Change::from_bytes(change.clone())
            .map_err(|e| Error::InvalidChanges {
                id: id.clone(),
                reason: e.to_string(),
            })?
            .hash();
        insert.execute(params![id.as_str(), hash.0.as_slice(), change])?;
    }
    index::write(tx, id, doc)?;
    Ok(revision)
}

/// Stores the whole document as its snapshot, replacing any stored changes.
fn write_snapshot(tx: &Transaction<'_>, id: &DocId, doc: &mut AutoCommit, existed: bool) -> Result<i64> {
    let snapshot = doc.save();
    let revision = write_changes(tx, id, doc, &[], existed)?;
    tx.execute(
        "UPDATE documents SET snapshot = ?1 WHERE doc_id = ?2",
        params![snapshot, id.as_str()],
    )?;
    tx.execute("DELETE FROM changes WHERE doc_id = ?1", [id.as_str()])?;
    Ok(revision)
}

/// Loads a document from its snapshot and the changes stored after it.
fn load(conn: &Connection, id: &DocId, author: &Author) -> Result<AutoCommit> {
    let corrupt = |reason: String| Error::CorruptDocument { id: id.clone(), reason };
    let snapshot: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT snapshot FROM documents WHERE doc_id = ?1")?
        .query_row([id.as_str()], |row| row.get(0))
        .optional()?;
    let snapshot = snapshot.ok_or_else(|| Error::NotFound(id.clone()))?;
    let mut doc = match snapshot {
        Some(bytes) => AutoCommit::load(&bytes).map_err(|e| corrupt(format!("snapshot: {e}")))?,
        None => AutoCommit::new(),
    };
    let mut stmt = conn.prepare_cached("SELECT data FROM changes WHERE doc_id = ?1 ORDER BY seq")?;
    let mut changes = Vec::new();
    for data in stmt.query_map([id.as_str()], |row| row.get::<_, Vec<u8>>(0))? {
        changes.push(automerge::Change::from_bytes(data?).map_err(|e| corrupt(format!("change: {e}")))?);
    }
    doc.apply_changes(changes)
        .map_err(|e| corrupt(format!("change: {e}")))?;
    if !doc.get_missing_deps(&[]).is_empty() {
        return Err(corrupt("stored changes depend on changes that are not stored".into()));
    }
    header::read(&doc, id)?;
    doc.set_author(Some(author.to_automerge()));
    Ok(doc)
}

fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

fn decode_heads(id: &DocId, bytes: &[u8]) -> Result<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(Error::CorruptDocument {
            id: id.clone(),
            reason: format!("stored heads are {} bytes, not a multiple of 32", bytes.len()),
        });
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|chunk| {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(chunk);
            ChangeHash(hash)
        })
        .collect())
}
