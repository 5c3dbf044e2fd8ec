//! What the server checks before it stores a device's changes: the document is in the device's
//! scope (or answered as missing), the changes decode and their dependencies are here, each new
//! change names this device as its author, and its actor is registered to this device.

mod nesting;

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, AutoCommit, ChangeHash};
use outpost_core::sync::{actor_author, check_chunks, index_rows, lead_decisions, summarise, wire::Push};
use outpost_core::{Author, DocId, DocType, PersonId};
use serde_bytes::ByteBuf;

use super::{MAX_DOCUMENT_BYTES, listing, person_scope};
use crate::error::Result;
use crate::storage::{ActorOwner, Device, DocWrite, Role, Storage};

/// What became of one push.
#[derive(Debug)]
pub(super) enum Accepted {
    /// New changes, to be written; the heads are the server's after merging them.
    Stored(Box<DocWrite>, Vec<ChangeHash>),
    /// Nothing new: the server already had every change (a retry after a lost response).
    AlreadyHeld(Vec<ChangeHash>),
    /// The changes build on some the server lacks (it was restored from a backup).
    Diverged,
}

/// A push decoded and merged into a copy of the server's document, not yet checked.
#[derive(Debug)]
pub(super) struct Prepared {
    doc: DocId,
    loaded: AutoCommit,
    before: Vec<ChangeHash>,
    existed: bool,
    is_person: bool,
    person: Option<PersonId>,
}

impl Prepared {
    pub(super) fn is_person(&self) -> bool {
        self.is_person
    }

    /// The person the document names once merged, if it reads as an Outpost record.
    pub(super) fn person(&self) -> Option<&PersonId> {
        self.person.as_ref()
    }
}

pub(super) struct Checker<'a> {
    storage: &'a dyn Storage,
    device: &'a Device,
    author: Author,
    scope: &'a HashSet<PersonId>,
    held: &'a HashSet<PersonId>,
    claimed: HashSet<ActorId>,
    owners: HashMap<ActorId, Option<ActorOwner>>,
    new_actors: Vec<ActorId>,
    /// People created by this same request, so their visits in it are in scope.
    new_people: HashSet<PersonId>,
    /// The heads each document written was merged onto (`SyncWrite::expected`).
    expected: Vec<(DocId, Vec<ChangeHash>)>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(
        storage: &'a dyn Storage,
        device: &'a Device,
        scope: &'a HashSet<PersonId>,
        held: &'a HashSet<PersonId>,
        claims: &[ByteBuf],
    ) -> Result<Self> {
        Ok(Self {
            storage,
            device,
            author: Author::new(device.worker.clone(), device.device.clone()),
            scope,
            held,
            claimed: claims.iter().map(|c| ActorId::from(c.as_slice())).collect(),
            owners: HashMap::new(),
            new_actors: Vec::new(),
            new_people: HashSet::new(),
            expected: Vec::new(),
        })
    }

    /// A device may see (and change) people in its scope, and people it still holds until it
    /// drops them, so edits made while they were in scope still arrive.
    pub(super) fn may_see(&self, person: &PersonId) -> bool {
        self.scope.contains(person) || self.held.contains(person) || self.new_people.contains(person)
    }

    /// The heads each document to be written was read at, for `SyncWrite::expected`.
    pub(super) fn expected(&self) -> Vec<(DocId, Vec<ChangeHash>)> {
        self.expected.clone()
    }

    pub(super) fn new_actors(&self) -> Vec<Vec<u8>> {
        self.new_actors.iter().map(|a| a.to_bytes().to_vec()).collect()
    }

    /// Decodes a push onto a copy of the stored document. `Err` is the refusal's reason.
    pub(super) fn prepare(&self, push: &Push) -> Result<Result<Prepared, String>, crate::Error> {
        let Ok(doc) = DocId::new(push.doc.as_str()) else {
            return Ok(Err(format!("document id {:?} is not valid", push.doc)));
        };
        if push.bytes.len() > MAX_DOCUMENT_BYTES {
            return Ok(Err(format!(
                "{} bytes of changes, over the {MAX_DOCUMENT_BYTES}-byte document limit",
                push.bytes.len()
            )));
        }
        let (mut loaded, existed) = match self.storage.doc(&doc)? {
            Some(stored) if self.may_see(&stored.person) => (
                AutoCommit::load(&stored.snapshot)
                    .map_err(|e| crate::Error::Internal(format!("stored document {doc} does not load: {e}")))?,
                true,
            ),
            // Outside the scope, a document is handled exactly as one that does not exist.
            _ => (AutoCommit::new(), false),
        };
        let before = loaded.get_heads();
        if let Err(e) = check_chunks(&push.bytes) {
            return Ok(Err(format!("the changes do not decode: {e}")));
        }
        if let Err(e) = outpost_core::sync::apply_untrusted(&mut loaded, &push.bytes) {
            return Ok(Err(format!("the changes do not decode: {e}")));
        }
        let summary = summarise(&loaded, &doc).ok();
        let is_person = summary.as_ref().is_some_and(|s| s.doc_type == DocType::Person);
        Ok(Ok(Prepared {
            doc,
            loaded,
            before,
            existed,
            is_person,
            person: summary.map(|s| s.person),
        }))
    }

    /// Checks a prepared push against scope, authorship and actors.
    pub(super) fn accept(&mut self, prepared: Prepared) -> Result<Result<Accepted, String>, crate::Error> {
        let Prepared {
            doc,
            mut loaded,
            before,
            existed,
            ..
        } = prepared;
        if !loaded.get_missing_deps(&[]).is_empty() {
            return Ok(Ok(Accepted::Diverged));
        }
        if loaded.get_heads() == before {
            return Ok(if existed {
                Ok(Accepted::AlreadyHeld(before))
            } else {
                Err("the push holds no changes".into())
            });
        }
        match self.checked_write(&doc, &mut loaded, &before, existed, false)? {
            Ok(write) => {
                let heads = write.heads.clone();
                Ok(Ok(Accepted::Stored(Box::new(write), heads)))
            }
            Err(reason) => Ok(Err(reason)),
        }
    }

    /// Changes that arrived in an Automerge sync message. Besides this device's own, they may
    /// carry other devices' changes the server lost in a restore; those are accepted when
    /// their actor is registered to the device they name, or not registered to anyone.
    pub(super) fn relayed(
        &mut self,
        doc: &DocId,
        loaded: &mut AutoCommit,
        before: &[ChangeHash],
        existed: bool,
    ) -> Result<DocWrite, String> {
        self.checked_write(doc, loaded, before, existed, true)
            .map_err(|e| e.to_string())?
    }

    fn checked_write(
        &mut self,
        doc: &DocId,
        loaded: &mut AutoCommit,
        before: &[ChangeHash],
        existed: bool,
        relayed: bool,
    ) -> Result<Result<DocWrite, String>, crate::Error> {
        let summary = match summarise(loaded, doc) {
            Ok(summary) => summary,
            Err(e) => return Ok(Err(format!("not an Outpost record: {e}"))),
        };
        // A record has one first change. Another one is a history from before a redaction (a
        // device's old copy), which would bring the removed text back.
        if existed && loaded.get_changes(before).iter().any(|c| c.deps().is_empty()) {
            return Ok(Err(
                "the changes belong to a version of this record from before a redaction; the device replaces its copy at this sync".into(),
            ));
        }
        if existed {
            if let Some(stored) = self.storage.doc(doc)?
                && stored.person != summary.person
            {
                return Ok(Err("the changes would move the record to another person".into()));
            }
        } else if self.storage.doc(doc)?.is_some() {
            // It exists, but outside this device's scope.
            return Ok(Err(NOT_FOUND.into()));
        } else if summary.doc_type == DocType::Person {
            let known = self.storage.person_team(&summary.person)?.is_some();
            if !self.may_see(&summary.person) && (known || summary.team.as_ref() != Some(&self.device.team)) {
                return Ok(Err(NOT_FOUND.into()));
            }
        } else if !self.may_see(&summary.person) {
            return Ok(Err(NOT_FOUND.into()));
        }
        if summary.doc_type == DocType::Review
            && self.device.role != Role::Lead
            && let Err(reason) = self.not_a_decision(doc, loaded, existed)?
        {
            return Ok(Err(reason));
        }
        let changes = loaded.get_changes(before);
        let mut bytes = Vec::new();
        for change in &changes {
            let author = actor_author(loaded, change.actor_id());
            if let Err(reason) = self.check_change(change, author, relayed)? {
                return Ok(Err(reason));
            }
            // A document new here reaches every other device whole, as its snapshot: only
            // devices that already hold a document need its changes in the log.
            if existed {
                bytes.extend_from_slice(change.raw_bytes());
            }
        }
        if let Err(reason) = nesting::check(loaded, &changes) {
            return Ok(Err(reason));
        }
        // Each push is held to the limit in `prepare`; this holds the document they add up to.
        let snapshot = loaded.save();
        if snapshot.len() > MAX_DOCUMENT_BYTES {
            return Ok(Err(format!(
                "the document would be {} bytes, over the {MAX_DOCUMENT_BYTES}-byte document limit",
                snapshot.len()
            )));
        }
        if summary.doc_type == DocType::Person {
            self.new_people.insert(summary.person.clone());
        }
        self.expected.push((doc.clone(), before.to_vec()));
        Ok(Ok(DocWrite {
            doc: doc.clone(),
            person: summary.person.clone(),
            doc_type: summary.doc_type.code().to_string(),
            heads: loaded.get_heads(),
            snapshot,
            index_rows: index_rows(loaded, doc).map_err(crate::Error::Core)?,
            changes: bytes,
            person_scope: person_scope(&summary),
            listing: listing(loaded, doc),
        }))
    }

    /// A worker's device may submit a visit for review, never approve or return one: those
    /// steps, and those states, come only from a lead.
    fn not_a_decision(
        &self,
        doc: &DocId,
        loaded: &AutoCommit,
        existed: bool,
    ) -> Result<Result<(), String>, crate::Error> {
        const REFUSED: &str = "only a team lead can approve or return a visit";
        let Ok((steps, decided)) = lead_decisions(loaded, doc) else {
            return Ok(Err("not a readable review".into()));
        };
        let (steps_before, decided_before) = match self.storage.doc(doc)? {
            Some(stored) if existed => {
                let stored = AutoCommit::load(&stored.snapshot)
                    .map_err(|e| crate::Error::Internal(format!("stored document {doc} does not load: {e}")))?;
                lead_decisions(&stored, doc).map_err(crate::Error::Core)?
            }
            _ => (0, Vec::new()),
        };
        if steps > steps_before || decided.iter().any(|s| !decided_before.contains(s)) {
            return Ok(Err(REFUSED.into()));
        }
        Ok(Ok(()))
    }

    fn check_change(
        &mut self,
        change: &automerge::Change,
        author: Option<Author>,
        relayed: bool,
    ) -> Result<Result<(), String>, crate::Error> {
        let actor = change.actor_id().clone();
        let owner = self.owner(&actor)?;
        if author.as_ref() == Some(&self.author) {
            return Ok(match owner {
                Some(ActorOwner::Device(d)) if d == self.device.device => Ok(()),
                Some(_) => Err(format!(
                    "change {} uses an actor registered to someone else",
                    change.hash()
                )),
                None if self.claimed.contains(&actor) => {
                    self.new_actors.push(actor.clone());
                    self.owners
                        .insert(actor, Some(ActorOwner::Device(self.device.device.clone())));
                    Ok(())
                }
                None => Err(format!(
                    "change {} uses actor {actor}, which this device has not registered",
                    change.hash()
                )),
            });
        }
        if !relayed {
            return Ok(Err(format!(
                "change {} names another author; a device may only push its own changes",
                change.hash()
            )));
        }
        Ok(match (owner, author) {
            (Some(ActorOwner::Device(d)), Some(author)) if d == author.device => Ok(()),
            (Some(ActorOwner::Server), _) => Ok(()),
            // Registered after the backup the server was restored from; its device re-registers
            // it when it next pushes.
            (None, _) => Ok(()),
            _ => Err(format!(
                "change {} names an author its actor is not registered to",
                change.hash()
            )),
        })
    }

    fn owner(&mut self, actor: &ActorId) -> Result<Option<ActorOwner>> {
        if let Some(owner) = self.owners.get(actor) {
            return Ok(owner.clone());
        }
        let owner = self.storage.actor_owner(actor.to_bytes())?;
        self.owners.insert(actor.clone(), owner.clone());
        Ok(owner)
    }
}

/// The one answer for anything outside the device's scope, the same whether it exists or
/// not, so nothing can be learnt by probing ids. A new person for another team gets it too.
pub(super) const NOT_FOUND: &str = "not found";
