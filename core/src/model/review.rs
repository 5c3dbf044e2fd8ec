//! Review state, kept in a document of its own beside the visit, so a team lead's decision never
//! conflicts with the worker's edits to the note.

use automerge::{AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, transaction::Transactable};
use chrono::{DateTime, Utc};

use super::fields::{self, Field, scalar_enum};
use super::header::{self, DocType};
use crate::error::{Error, Result};
use crate::ids::{Author, DocId, PersonId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewState {
    Draft,
    Submitted,
    Approved,
    Returned,
}

scalar_enum!(ReviewState {
    Draft => "draft",
    Submitted => "submitted",
    Approved => "approved",
    Returned => "returned",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewAction {
    Submit,
    Approve,
    Return,
}

scalar_enum!(ReviewAction { Submit => "submit", Approve => "approve", Return => "return" });

impl ReviewAction {
    /// The state this action leads to, if it is allowed from `from`.
    pub fn next(self, from: ReviewState) -> Option<ReviewState> {
        use ReviewAction::*;
        use ReviewState::*;
        match (self, from) {
            (Submit, Draft | Returned) => Some(Submitted),
            // From approved too: a visit changed since its approval is decided again.
            (Approve, Submitted | Approved) => Some(Approved),
            (Return, Submitted | Approved) => Some(Returned),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReviewStep {
    pub action: ReviewAction,
    pub by: Option<Author>,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
    /// The visit's heads when the step was taken: what the reviewer read.
    pub visit_heads: Vec<ChangeHash>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub id: DocId,
    pub visit: DocId,
    pub person: PersonId,
    pub state: Field<ReviewState>,
    pub history: Vec<ReviewStep>,
}

pub(crate) fn create(doc: &mut AutoCommit, visit: &DocId, person: &PersonId) -> Result<()> {
    header::write(doc, DocType::Review, person)?;
    fields::put(doc, &ROOT, "visit", &visit.as_str().to_string())?;
    fields::put(doc, &ROOT, "state", &ReviewState::Draft)?;
    doc.put_object(&ROOT, "history", ObjType::List)?;
    Ok(())
}

pub(crate) fn read(doc: &AutoCommit, id: &DocId) -> Result<Review> {
    let header = header::expect(doc, id, DocType::Review)?;
    let visit: String = fields::require_field(doc, &ROOT, "visit")?.value;
    let history = fields::object(doc, &ROOT, "history", ObjType::List)?;
    Ok(Review {
        id: id.clone(),
        visit: DocId::new(visit)?,
        person: header.person,
        state: fields::require_field(doc, &ROOT, "state")?,
        history: fields::list_items(doc, &history)
            .iter()
            .filter_map(|item| read_step(doc, item).transpose())
            .collect::<Result<_>>()?,
    })
}

fn read_step(doc: &AutoCommit, item: &ObjId) -> Result<Option<ReviewStep>> {
    let Some(action) = fields::get_field::<ReviewAction>(doc, item, "action")? else {
        return Ok(None); // a step kind from a newer app: kept, not shown
    };
    let by_worker: Option<Field<String>> = fields::get_field(doc, item, "by_worker")?;
    let by_device: Option<Field<String>> = fields::get_field(doc, item, "by_device")?;
    let by = match (by_worker, by_device) {
        (Some(w), Some(d)) => crate::ids::WorkerId::new(w.value)
            .ok()
            .zip(crate::ids::DeviceId::new(d.value).ok())
            .map(|(w, d)| Author::new(w, d)),
        _ => None,
    };
    let heads_obj = fields::object(doc, item, "visit_heads", ObjType::List)?;
    let visit_heads = doc
        .list_range(&heads_obj, ..)
        .filter_map(|h| match h.value {
            automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) => s.parse().ok(),
            _ => None,
        })
        .collect();
    Ok(Some(ReviewStep {
        action: action.value,
        by,
        at: fields::require_field(doc, item, "at")?.value,
        comment: fields::get_field::<String>(doc, item, "comment")?.map(|f| f.value),
        visit_heads,
    }))
}

/// Records a review step after checking the transition is allowed from the current state,
/// stamped with this machine's time.
pub(crate) fn apply(
    doc: &mut AutoCommit,
    id: &DocId,
    action: ReviewAction,
    by: &Author,
    comment: Option<&str>,
    visit_heads: &[ChangeHash],
) -> Result<ReviewState> {
    apply_at(doc, id, action, by, comment, visit_heads, Utc::now())
}

/// `apply`, stamping the step with `at` (the device's clock, which may be wrong: the history is
/// shown in the order the steps were taken, never sorted by this time).
pub(crate) fn apply_at(
    doc: &mut AutoCommit,
    id: &DocId,
    action: ReviewAction,
    by: &Author,
    comment: Option<&str>,
    visit_heads: &[ChangeHash],
    at: DateTime<Utc>,
) -> Result<ReviewState> {
    let review = read(doc, id)?;
    let from = review.state.value;
    let to = action.next(from).ok_or_else(|| Error::InvalidTransition {
        action: action.code(),
        from: from.code().to_string(),
    })?;
    if action == ReviewAction::Return && comment.is_none_or(|c| c.trim().is_empty()) {
        return Err(Error::invalid(
            "comment",
            "returning a visit needs a comment for the worker",
        ));
    }
    let history = fields::object(doc, &ROOT, "history", ObjType::List)?;
    let index = doc.length(&history);
    let step = doc.insert_object(&history, index, ObjType::Map)?;
    fields::put(doc, &step, "action", &action)?;
    fields::put(doc, &step, "by_worker", &by.worker.as_str().to_string())?;
    fields::put(doc, &step, "by_device", &by.device.as_str().to_string())?;
    fields::put(doc, &step, "at", &at)?;
    fields::put_opt(doc, &step, "comment", comment.map(str::to_string).as_ref())?;
    let heads = doc.put_object(&step, "visit_heads", ObjType::List)?;
    for (i, head) in visit_heads.iter().enumerate() {
        doc.insert(&heads, i, head.to_string())?;
    }
    fields::put(doc, &ROOT, "state", &to)?;
    Ok(to)
}
