//! Sync without I/O: the wire format, and the device side of the protocol, which turns the
//! store's state into a request and applies the response. `net` carries the bytes.

mod client;
mod listing;
pub mod wire;

pub use client::{Progress, SyncClient};
pub use listing::{ActionListing, Listing, listing};

use automerge::AutoCommit;

use crate::error::Result;
use crate::ids::{DocId, PersonId, TeamId, WorkerId};
use crate::model::header::{self, DocType};
use crate::model::person;

/// What a server needs to know of a document to scope it: whose it is and, for a person,
/// their team and allocated workers. Read without building the typed views of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSummary {
    pub doc_type: DocType,
    pub person: PersonId,
    pub team: Option<TeamId>,
    pub allocated: Vec<WorkerId>,
}

pub fn summarise(doc: &AutoCommit, id: &DocId) -> Result<DocSummary> {
    let header = header::read(doc, id)?;
    let (team, allocated) = if header.doc_type == DocType::Person {
        let p = person::read(doc, id)?;
        (Some(TeamId::new(p.team.value)?), p.allocated_workers)
    } else {
        (None, Vec::new())
    };
    Ok(DocSummary {
        doc_type: header.doc_type,
        person: header.person,
        team,
        allocated,
    })
}

/// The worker and device an actor writes for in this document, if its first change named one
/// the Outpost way (Automerge records the author once per actor, not on every change).
pub fn actor_author(doc: &AutoCommit, actor: &automerge::ActorId) -> Option<crate::ids::Author> {
    crate::ids::Author::from_automerge(&doc.get_author_for_actor(actor)?)
}

/// A lead's review decision applied to a visit's review document by a replica that is not a
/// device store (the server). `visit_heads` are the visit's heads the lead saw.
pub fn apply_review(
    doc: &mut AutoCommit,
    review: &DocId,
    action: crate::model::review::ReviewAction,
    reviewer: &crate::ids::Author,
    comment: Option<&str>,
    visit_heads: &[automerge::ChangeHash],
) -> Result<crate::model::review::ReviewState> {
    doc.set_author(Some(reviewer.to_automerge()));
    crate::model::review::apply(doc, review, action, reviewer, comment, visit_heads)
}

/// What only a team lead may change in a visit's review: how many approve and return steps its
/// history holds, and which of its state's values (concurrent ones included) are approved or
/// returned.
pub fn lead_decisions(doc: &AutoCommit, review: &DocId) -> Result<(usize, Vec<crate::ReviewState>)> {
    use crate::model::review::{self, ReviewAction, ReviewState};
    let read = review::read(doc, review)?;
    let steps = read
        .history
        .iter()
        .filter(|s| matches!(s.action, ReviewAction::Approve | ReviewAction::Return))
        .count();
    let decided = std::iter::once(read.state.value)
        .chain(read.state.concurrent)
        .filter(|s| matches!(s, ReviewState::Approved | ReviewState::Returned))
        .collect();
    Ok((steps, decided))
}

/// Checks that bytes received from outside are whole, valid Automerge chunks, naming what is
/// wrong. Automerge's own incremental load quietly ignores a damaged tail, so a server must
/// check before it merges.
pub fn check_chunks(bytes: &[u8]) -> std::result::Result<(), String> {
    crate::store::chunks::validate(bytes).map(|_| ())
}

/// Merges changes received from outside into `doc` (Automerge's `load_incremental`). Automerge
/// can panic on crafted changes (tests/fuzz/KNOWN.md); that is an error here. After an error
/// `doc` may hold part of the changes: drop it.
pub fn apply_untrusted(doc: &mut AutoCommit, bytes: &[u8]) -> std::result::Result<usize, String> {
    crate::store::chunks::apply_untrusted(doc, bytes)
}

/// Receives an Automerge sync message from outside into `doc`, a panic inside Automerge being
/// an error; after one, drop `doc` and `state`.
pub fn receive_sync_untrusted(
    doc: &mut AutoCommit,
    state: &mut automerge::sync::State,
    message: automerge::sync::Message,
) -> std::result::Result<(), String> {
    use automerge::sync::SyncDoc;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        doc.sync()
            .receive_sync_message(state, message)
            .map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|_| Err("automerge could not decode it (it panicked)".into()))
}

/// The index rows a device would compute for `doc`, to send beside its bytes to a device that
/// lacks it (`wire::Frame::Indexed`), compressed (`wire::CAP_INDEX_DEFLATE`).
pub fn index_rows(doc: &AutoCommit, id: &DocId) -> Result<Vec<u8>> {
    crate::store::shipped_index::compute(id, doc)
}

/// Stored index rows as the device reads them: compressed when it offered
/// `wire::CAP_INDEX_DEFLATE` (`deflated`), else uncompressed. Rows an older server stored are
/// uncompressed.
pub fn index_rows_for(rows: Vec<u8>, deflated: bool) -> Result<Vec<u8>> {
    crate::store::shipped_index::in_format(rows, deflated)
}

/// Heads as one blob (sorted 32-byte hashes), the way both the device store and the server
/// keep them.
pub fn encode_heads(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    crate::store::disk::encode_heads(heads)
}

/// Reads heads written by `encode_heads`; a blob of the wrong length is a corrupt document.
pub fn decode_heads(id: &DocId, bytes: &[u8]) -> Result<Vec<automerge::ChangeHash>> {
    crate::store::disk::decode_heads(id, bytes)
}
