//! The offline store: every document's changes and heads in SQLite, a query index beside them,
//! and typed create / read / edit operations that report an edit saved only once it is on disk.

mod cache;
pub(crate) mod chunks;
pub(crate) mod disk;
mod encryption;
mod enrolment;
mod forget;
mod index;
mod merge;
mod queries;
mod received;
pub mod schema;
pub mod shipped_index;
mod standing;
mod sync_state;
mod text_field;

use std::path::Path;

use automerge::{ActorId, AutoCommit, ChangeHash};
use rusqlite::{Connection, OptionalExtension};

pub(crate) use encryption::rekey_file;
pub use encryption::{KEY_LEN, StoreKey};
pub use enrolment::{Enrolment, Server};
pub use merge::Imported;
pub use queries::{ActionRow, CaseloadRow, SearchHit, StorageStats, VisitRow};
pub use received::{Indexed, Verified};
pub use standing::{LeaseTerm, Standing};
pub use sync_state::SyncStatus;
pub use text_field::{SectionText, Selection, parse_version, version_string};

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
use disk::{commit, configure, load, write_changes};

/// A document with this many changes stored beside its snapshot is compacted after a write.
const COMPACT_AFTER_CHANGES: usize = 256;

/// What a successful write returns: the document is on disk at these heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub heads: Vec<ChangeHash>,
    /// The store's revision after the write; `changed_since` takes it.
    pub revision: i64,
}

#[derive(Debug)]
pub struct Store {
    conn: Connection,
    author: Author,
    /// This session's actor, fresh at every open and recorded in `own_actors` with the first
    /// change it writes, so that opening writes nothing: a store on a full or read-only disk
    /// still opens and reads.
    actor: ActorId,
    actor_recorded: bool,
    /// How far this device's clock is from the true time; zero but in tests of skewed clocks.
    clock_skew: chrono::TimeDelta,
    cache: DocCache,
    /// Opened with a key, so encrypted on disk.
    encrypted: bool,
}

impl Store {
    /// Opens (creating or upgrading) the store at `path`, writing as `author`, unencrypted: for
    /// a server's working copy and tests. A device's store opens with `open_with_key`.
    pub fn open(path: impl AsRef<Path>, author: Author) -> Result<Self> {
        Self::open_with_key(path, author, None)
    }

    /// Opens (creating or upgrading) the store at `path` under `key`, writing as `author`. With a
    /// key, a store written before encryption is encrypted now, and a new store is created
    /// encrypted. A key that does not open the store, or no key for an encrypted one, is
    /// `Error::WrongKey`, and the file is left as it was.
    pub fn open_with_key(path: impl AsRef<Path>, author: Author, key: Option<&StoreKey>) -> Result<Self> {
        let mut conn = encryption::connect(path.as_ref(), key)?;
        configure(&conn)?;
        schema::migrate_to(&mut conn, schema::CURRENT_VERSION)?;
        let mut store = Self {
            conn,
            author,
            actor: ActorId::random(),
            actor_recorded: false,
            clock_skew: chrono::TimeDelta::zero(),
            cache: DocCache::default(),
            encrypted: key.is_some(),
        };
        if store.meta_i64("reindex")? != 0 {
            store.rebuild_index()?;
        }
        if store.meta_i64("scrub")? != 0 {
            store.scrub_once()?;
        }
        Ok(store)
    }

    pub fn author(&self) -> &Author {
        &self.author
    }

    /// Runs this store's clock `skew` ahead of the system's (behind, when negative), as on a
    /// phone whose clock is wrong: review steps and changes are stamped with it. For tests.
    #[doc(hidden)]
    pub fn set_clock_skew(&mut self, skew: chrono::TimeDelta) {
        self.clock_skew = skew;
    }

    /// The time by this device's clock.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.clock_skew
    }

    /// Re-encrypts the store under `new_key`; from then on only `new_key` opens it. The store
    /// must already be encrypted (opened with a key). Blocks while every page is rewritten.
    pub fn rekey(&mut self, new_key: &StoreKey) -> Result<()> {
        if !self.encrypted {
            return Err(Error::invalid(
                "key",
                "this store is not encrypted; opening it with a key encrypts it",
            ));
        }
        encryption::rekey(&self.conn, new_key)
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
        let at = self.now();
        self.edit(&review_id, DocType::Review, |doc| {
            state = review::apply_at(doc, &review_id, action, &author, comment, &visit_heads, at)?;
            Ok(())
        })?;
        Ok(state)
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
                None => match load(&tx, &id, &self.author, &self.actor) {
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
        tx.execute("INSERT INTO visit_text (visit_text) VALUES ('optimize')", [])?;
        tx.execute("UPDATE meta SET value = 0 WHERE key = 'reindex'", [])?;
        tx.commit()?;
        Ok(skipped)
    }

    // ---- internals ----------------------------------------------------------------------

    fn new_doc(&self) -> AutoCommit {
        AutoCommit::new()
            .with_author(Some(self.author.to_automerge()))
            .with_actor(self.actor.clone())
    }

    /// Checks a document's kind from the index, loading it only if the index does not know it.
    fn expect_type(&mut self, id: &DocId, expected: DocType) -> Result<()> {
        let indexed: Option<String> = self
            .conn
            .prepare_cached("SELECT doc_type FROM doc_index WHERE doc_id = ?1")?
            .query_row([id.as_str()], |row| row.get(0))
            .optional()?;
        match indexed.as_deref().and_then(DocType::from_code) {
            Some(actual) if actual == expected => Ok(()),
            Some(actual) => Err(Error::WrongType {
                id: id.clone(),
                expected: expected.code(),
                actual: actual.code().to_string(),
            }),
            None => {
                let doc = self.doc(id)?;
                header::expect(doc, id, expected).map(|_| ())
            }
        }
    }

    fn doc(&mut self, id: &DocId) -> Result<&AutoCommit> {
        self.doc_mut(id).map(|d| &*d)
    }

    fn doc_mut(&mut self, id: &DocId) -> Result<&mut AutoCommit> {
        if !self.cache.contains(id) {
            let doc = load(&self.conn, id, &self.author, &self.actor)?;
            self.cache.put(id.clone(), doc);
        }
        self.cache.get_mut(id).ok_or_else(|| Error::NotFound(id.clone()))
    }

    /// Removes the document from the cache for writing; it goes back only if the write lands,
    /// so the cache never holds a change that is not on disk.
    fn take_doc(&mut self, id: &DocId) -> Result<AutoCommit> {
        match self.cache.take(id) {
            Some(doc) => Ok(doc),
            None => load(&self.conn, id, &self.author, &self.actor),
        }
    }

    fn create(&mut self, id: &DocId, f: impl FnOnce(&mut AutoCommit) -> Result<()>) -> Result<()> {
        let mut doc = self.new_doc();
        f(&mut doc)?;
        self.persist_new(vec![(id.clone(), doc)])
    }

    fn persist_new(&mut self, docs: Vec<(DocId, AutoCommit)>) -> Result<()> {
        let now = self.now();
        let tx = self.conn.transaction()?;
        record_actor(&tx, &self.actor, self.actor_recorded)?;
        let mut committed = Vec::new();
        for (id, mut doc) in docs {
            commit(&mut doc, now);
            let changes: Vec<Vec<u8>> = doc.get_changes(&[]).iter().map(|c| c.raw_bytes().to_vec()).collect();
            write_changes(&tx, &id, &mut doc, &changes, false)?;
            committed.push((id, doc));
        }
        tx.commit()?;
        self.actor_recorded = true;
        for (id, doc) in committed {
            self.cache.put(id, doc);
        }
        Ok(())
    }

    fn edit(&mut self, id: &DocId, expected: DocType, f: impl FnOnce(&mut AutoCommit) -> Result<()>) -> Result<Saved> {
        self.edit_at(id, expected, None, f)
    }

    /// Edits the document as it was at `at` (heads it has), when given: the change is then
    /// concurrent with everything since, and merges with it as a colleague's edit would.
    fn edit_at(
        &mut self,
        id: &DocId,
        expected: DocType,
        at: Option<&[ChangeHash]>,
        f: impl FnOnce(&mut AutoCommit) -> Result<()>,
    ) -> Result<Saved> {
        let mut doc = self.take_doc(id)?;
        if let Some(at) = at {
            doc.isolate(at);
        }
        let checked = header::expect(&doc, id, expected).and_then(|_| f(&mut doc));
        if let Err(e) = checked {
            doc.rollback();
            if at.is_some() {
                doc.integrate();
            }
            self.cache.put(id.clone(), doc);
            return Err(e);
        }
        let hash = commit(&mut doc, self.now());
        if at.is_some() {
            doc.integrate();
        }
        let Some(hash) = hash else {
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
        if at.is_some() {
            self.own_isolated_actor(&mut doc, &hash)?;
        }
        let revision = self.persist(id, &mut doc, &[change], true)?;
        let heads = doc.get_heads();
        self.cache.put(id.clone(), doc);
        if self.cache.change_count(id) >= COMPACT_AFTER_CHANGES {
            // The edit is already durable; a failed compaction only means more changes stay.
            let _ = self.compact(id);
        }
        Ok(Saved { heads, revision })
    }

    /// A change made at older heads than this device's own latest change to the document is
    /// written by an actor Automerge derives from ours (one actor's changes must form a chain);
    /// it is this device's too, so sync registers it with the server like the session actor.
    fn own_isolated_actor(&self, doc: &mut AutoCommit, hash: &ChangeHash) -> Result<()> {
        let Some(change) = doc.get_change_by_hash(hash) else {
            return Ok(());
        };
        if *change.actor_id() != self.actor {
            self.conn.execute(
                "INSERT OR IGNORE INTO own_actors (actor, created_at) VALUES (?1, ?2)",
                rusqlite::params![change.actor_id().to_bytes(), chrono::Utc::now().to_rfc3339()],
            )?;
        }
        Ok(())
    }

    /// Appends changes, records the new heads and revision, and reindexes, in one transaction.
    fn persist(&mut self, id: &DocId, doc: &mut AutoCommit, changes: &[Vec<u8>], existed: bool) -> Result<i64> {
        let tx = self.conn.transaction()?;
        record_actor(&tx, &self.actor, self.actor_recorded)?;
        let revision = write_changes(&tx, id, doc, changes, existed)?;
        tx.commit()?;
        self.actor_recorded = true;
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

/// Records this session's actor as the device's own, in the transaction of the first change it
/// writes (sync claims the actors recorded here).
fn record_actor(tx: &rusqlite::Transaction<'_>, actor: &ActorId, recorded: bool) -> Result<()> {
    if !recorded {
        tx.execute(
            "INSERT OR IGNORE INTO own_actors (actor, created_at) VALUES (?1, ?2)",
            rusqlite::params![actor.to_bytes(), chrono::Utc::now().to_rfc3339()],
        )?;
    }
    Ok(())
}
