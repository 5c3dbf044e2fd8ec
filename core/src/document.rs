//! A document held in memory, outside any store: for building records to import (the caseload
//! generator, tests) with the same typed editors the store uses. Each edit is one change.

use automerge::{ActorId, AutoCommit, ChangeHash, transaction::CommitOptions};
use chrono::Utc;

use crate::error::Result;
use crate::ids::{Author, DocId, PersonId};
use crate::model::assessment::{self, AssessmentEditor, NewAssessment};
use crate::model::observations::{self, NewObservations, ObservationsEditor};
use crate::model::person::{self, NewPerson, PersonEditor};
use crate::model::review::{self, ReviewAction, ReviewState};
use crate::model::visit::{self, NewVisit, VisitEditor};

#[derive(Debug)]
pub struct Document {
    id: DocId,
    doc: AutoCommit,
    author: Author,
}

impl Document {
    fn new(id: DocId, author: &Author, f: impl FnOnce(&mut AutoCommit) -> Result<()>) -> Result<Self> {
        let mut doc = AutoCommit::new().with_author(Some(author.to_automerge()));
        f(&mut doc)?;
        let mut this = Self {
            id,
            doc,
            author: author.clone(),
        };
        this.commit();
        Ok(this)
    }

    pub fn new_person(author: &Author, new: &NewPerson) -> Result<Self> {
        let id = DocId::random();
        Self::new(id.clone(), author, |doc| person::create(doc, &id, new))
    }

    /// A new visit and its review document (in draft), as `Store::create_visit` makes them.
    pub fn new_visit(author: &Author, new: &NewVisit) -> Result<(Self, Self)> {
        let id = DocId::random();
        let visit = Self::new(id.clone(), author, |doc| visit::create(doc, new))?;
        let review = Self::new(DocId::review_of(&id), author, |doc| {
            review::create(doc, &id, &new.person)
        })?;
        Ok((visit, review))
    }

    pub fn new_assessment(author: &Author, new: &NewAssessment) -> Result<Self> {
        Self::new(DocId::random(), author, |doc| assessment::create(doc, new))
    }

    pub fn new_observations(author: &Author, new: &NewObservations) -> Result<Self> {
        Self::new(DocId::random(), author, |doc| observations::create(doc, new))
    }

    pub fn id(&self) -> &DocId {
        &self.id
    }

    pub fn person_id(&self) -> Result<PersonId> {
        Ok(crate::model::header::read(&self.doc, &self.id)?.person)
    }

    pub fn edit_person(&mut self, f: impl FnOnce(&mut PersonEditor<'_>) -> Result<()>) -> Result<()> {
        let author = self.author.clone();
        self.edit(|doc| {
            f(&mut PersonEditor {
                doc,
                author: Some(&author),
            })
        })
    }

    pub fn edit_visit(&mut self, f: impl FnOnce(&mut VisitEditor<'_>) -> Result<()>) -> Result<()> {
        self.edit(|doc| f(&mut VisitEditor { doc }))
    }

    pub fn edit_assessment(&mut self, f: impl FnOnce(&mut AssessmentEditor<'_>) -> Result<()>) -> Result<()> {
        self.edit(|doc| f(&mut AssessmentEditor { doc }))
    }

    pub fn edit_observations(&mut self, f: impl FnOnce(&mut ObservationsEditor<'_>) -> Result<()>) -> Result<()> {
        self.edit(|doc| f(&mut ObservationsEditor { doc }))
    }

    /// A copy that `author` edits as another replica would (an actor of its own), for changes
    /// made concurrently with this one's; `merge` brings them together again.
    pub fn fork(&self, author: &Author) -> Document {
        let doc = self
            .doc
            .clone()
            .with_actor(ActorId::random())
            .with_author(Some(author.to_automerge()));
        Self {
            id: self.id.clone(),
            doc,
            author: author.clone(),
        }
    }

    /// Takes in every change `other` has that this document lacks.
    pub fn merge(&mut self, other: &mut Document) -> Result<()> {
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }

    /// Takes a review step on a review document, recording the visit heads the reviewer read.
    pub fn review(
        &mut self,
        action: ReviewAction,
        comment: Option<&str>,
        visit_heads: &[ChangeHash],
    ) -> Result<ReviewState> {
        let (id, author) = (self.id.clone(), self.author.clone());
        let mut state = ReviewState::Draft;
        self.edit(|doc| {
            state = review::apply(doc, &id, action, &author, comment, visit_heads)?;
            Ok(())
        })?;
        Ok(state)
    }

    /// The whole document, compact, as `Store::import_changes` accepts it.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    fn edit(&mut self, f: impl FnOnce(&mut AutoCommit) -> Result<()>) -> Result<()> {
        if let Err(e) = f(&mut self.doc) {
            self.doc.rollback();
            return Err(e);
        }
        self.commit();
        Ok(())
    }

    fn commit(&mut self) {
        self.doc
            .commit_with(CommitOptions::default().with_time(Utc::now().timestamp()));
    }
}
