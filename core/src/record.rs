//! A saved document loaded for reading, outside any store: what a team lead's review pages show
//! of a record, its history and what needs their attention, read from stored bytes with no I/O.

mod concurrent;
mod contested;

pub use concurrent::ConcurrentEdit;

use automerge::{AutoCommit, ChangeHash, ReadDoc};

use crate::error::{Error, Result};
use crate::ids::DocId;
use crate::model::assessment::{self, Assessment};
use crate::model::authorship::{self, AuthoredSpan};
use crate::model::header::{self, DocType};
use crate::model::observations::{self, Observations};
use crate::model::person::{self, Person};
use crate::model::review::{self, Review};
use crate::model::visit::{self, Section, Visit};
use crate::sync::Listing;

/// One document, as saved, for reading. Nothing it does writes to the document.
#[derive(Debug, Clone)]
pub struct Record {
    id: DocId,
    doc: AutoCommit,
    /// Kept from loading: Automerge asks for `&mut` to report heads, and a record is only read.
    heads: Vec<ChangeHash>,
}

impl Record {
    /// Loads a document saved whole (or as chunks one after another). Bytes that are damaged,
    /// incomplete or not an Outpost document are refused, naming the document.
    pub fn load(id: DocId, bytes: &[u8]) -> Result<Record> {
        let corrupt = |reason: String| Error::CorruptDocument { id: id.clone(), reason };
        let doc = crate::store::chunks::load_untrusted(bytes).map_err(|e| corrupt(format!("does not load: {e}")))?;
        if !ReadDoc::get_missing_deps(&doc, &[]).is_empty() {
            return Err(corrupt("it holds changes whose earlier changes are missing".into()));
        }
        header::read(&doc, &id)?;
        Ok(Self::from_automerge(id, doc))
    }

    fn from_automerge(id: DocId, mut doc: AutoCommit) -> Record {
        let heads = doc.get_heads();
        Record { id, doc, heads }
    }

    pub fn id(&self) -> &DocId {
        &self.id
    }

    pub fn doc_type(&self) -> Result<DocType> {
        Ok(header::read(&self.doc, &self.id)?.doc_type)
    }

    pub fn heads(&self) -> Vec<ChangeHash> {
        self.heads.clone()
    }

    pub fn person(&self) -> Result<Person> {
        person::read(&self.doc, &self.id)
    }

    pub fn visit(&self) -> Result<Visit> {
        visit::read(&self.doc, &self.id)
    }

    pub fn review(&self) -> Result<Review> {
        review::read(&self.doc, &self.id)
    }

    pub fn assessment(&self) -> Result<Assessment> {
        assessment::read(&self.doc, &self.id)
    }

    pub fn observations(&self) -> Result<Observations> {
        observations::read(&self.doc, &self.id)
    }

    /// What the server's index keeps of this record.
    pub fn listing(&self) -> Result<Listing> {
        crate::sync::listing(&self.doc, &self.id)
    }

    /// Who wrote which part of a visit section, from the document's history.
    pub fn authorship(&self, section: Section) -> Result<Vec<AuthoredSpan>> {
        header::expect(&self.doc, &self.id, DocType::Visit)?;
        let text = visit::section_text(&self.doc, section)?;
        Ok(authorship::spans(&self.doc, &text))
    }

    /// Whether every one of `heads` is a change in this document (true for none).
    pub fn has_heads(&self, heads: &[ChangeHash]) -> bool {
        self.missing(heads).is_empty()
    }

    /// Which of `heads` this document lacks. (A record holds no changes waiting for missing
    /// ones: `load` refuses them and `at` makes none, so only `heads` can be reported.)
    fn missing(&self, heads: &[ChangeHash]) -> Vec<ChangeHash> {
        ReadDoc::get_missing_deps(&self.doc, heads)
    }

    /// The record as it was at `heads` (for example what a lead approved). Heads this document
    /// does not hold are refused rather than guessed at.
    pub fn at(&self, heads: &[ChangeHash]) -> Result<Record> {
        if heads.is_empty() {
            return Err(Error::invalid("heads", "name at least one change"));
        }
        if let Some(unknown) = self.missing(heads).first() {
            return Err(Error::invalid(
                "heads",
                format!("{unknown} is not a change in document {}", self.id),
            ));
        }
        // Forking closes a pending transaction first, hence `&mut`; a record has none, so a
        // clone (the columns copied, nothing re-parsed) keeps reading free of `&mut`.
        let old = self.doc.clone().fork_at(heads)?;
        Ok(Self::from_automerge(self.id.clone(), old))
    }

    /// Visit sections two different workers typed into at the same time, neither seeing the
    /// other's edit: Automerge merged the characters, but a lead may want to read the result.
    /// Empty for records that are not visits.
    pub fn concurrent_edits(&self) -> Result<Vec<ConcurrentEdit>> {
        if self.doc_type()? != DocType::Visit {
            return Ok(Vec::new());
        }
        // Reading the history wants `&mut` for the same reason as forking (see `at`).
        concurrent::edits(&mut self.doc.clone(), &self.id)
    }

    /// Names of the fields that hold values written at the same time by different people, so
    /// nobody has chosen between them yet ("setting", "action 2: due", "risk tier").
    pub fn contested_fields(&self) -> Result<Vec<String>> {
        Ok(match self.doc_type()? {
            DocType::Person => contested::person(&self.person()?),
            DocType::Visit => contested::visit(&self.visit()?),
            DocType::Assessment => contested::assessment(&self.assessment()?),
            DocType::Observations => contested::observations(&self.observations()?),
            DocType::Review => contested::review(&self.review()?),
        })
    }
}
