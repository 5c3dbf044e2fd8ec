//! Duplicate people: two person records made offline for the same person, merged by a lead. The
//! duplicate's record stays (it is history, and offline devices still edit it) but is marked
//! `merged_into` the survivor, which hides it from caseloads. Every other document of the
//! duplicate is re-pointed at the survivor, recording the move in the document itself
//! (`moved_from`), so a replica holding the old copy accepts the change of person. What the
//! duplicate's record holds is folded onto the survivor's (`fold`) without overwriting it: a
//! value the survivor has differently is kept beside it, under `also_recorded`.
//!
//! These run on a replica that is not a device store (the server), like `sync::apply_review`.

mod fold;

use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value, transaction::Transactable};
use chrono::Utc;

pub use fold::fold;

use crate::error::{Error, Result};
use crate::ids::{Author, DocId, PersonId};
use crate::model::fields;
use crate::model::header::{self, DocType};

/// On a duplicate's person record: the survivor it was merged into.
pub const MERGED_INTO: &str = "merged_into";
/// On a duplicate's person record: who merged it (`worker/device`) and when.
const MERGED_BY: &str = "merged_by";
const MERGED_AT: &str = "merged_at";
/// On a survivor's person record: each duplicate folded into it, with the duplicate's heads as
/// of the last fold, so a later fold carries only what changed on the duplicate since.
pub const MERGED_FROM: &str = "merged_from";
/// On a survivor's person record: values the duplicate held that the survivor holds differently.
pub const ALSO_RECORDED: &str = "also_recorded";
/// On a re-pointed document: each person it named before, and the person it was moved to.
pub const MOVED_FROM: &str = "moved_from";

/// A value a duplicate's record held where the survivor's holds another: kept, not lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlsoRecorded {
    /// The field (`address`), or the field inside a list item (`contacts.<item id>.phone`).
    pub field: String,
    pub value: String,
    /// The duplicate it came from.
    pub from: String,
}

/// The person a merged-away person record was merged into; None for any other document.
pub fn merged_into(doc: &AutoCommit) -> Option<PersonId> {
    let value: String = fields::get_field(doc, &ROOT, MERGED_INTO).ok()??.value;
    PersonId::new(value).ok()
}

/// Values kept on a survivor's record from the duplicates merged into it, oldest first.
pub fn also_recorded(doc: &AutoCommit) -> Vec<AlsoRecorded> {
    let Ok(Some((Value::Object(ObjType::List), list))) = doc.get(ROOT, ALSO_RECORDED) else {
        return Vec::new();
    };
    fields::list_items(doc, &list)
        .iter()
        .filter_map(|item| {
            let text = |key: &str| match doc.get(item, key) {
                Ok(Some((Value::Scalar(s), _))) => Some(scalar_text(&s)),
                _ => None,
            };
            Some(AlsoRecorded {
                field: text("field")?,
                value: text("value")?,
                from: text("from").unwrap_or_default(),
            })
        })
        .collect()
}

/// Marks `doc`, the person record `duplicate`, as merged into `survivor` by `by`.
pub fn mark_merged(doc: &mut AutoCommit, duplicate: &PersonId, survivor: &PersonId, by: &Author) -> Result<()> {
    header::expect(doc, duplicate, DocType::Person)?;
    if duplicate == survivor {
        return Err(Error::invalid("survivor", "a person cannot be merged into themselves"));
    }
    doc.set_author(Some(by.to_automerge()));
    fields::put(doc, &ROOT, MERGED_INTO, &survivor.as_str().to_string())?;
    fields::put(doc, &ROOT, MERGED_BY, &format!("{}/{}", by.worker, by.device))?;
    fields::put(doc, &ROOT, MERGED_AT, &Utc::now())?;
    Ok(())
}

/// Points `doc` (any document but a person record) at `to`, recording the person it named
/// before. Returns false, changing nothing, when it already names `to`.
pub fn repoint(doc: &mut AutoCommit, id: &DocId, to: &PersonId, by: &Author) -> Result<bool> {
    let header = header::read(doc, id)?;
    if header.doc_type == DocType::Person {
        return Err(Error::invalid(
            "document",
            format!("{id} is a person record; it is merged, never re-pointed"),
        ));
    }
    if header.person == *to {
        return Ok(false);
    }
    doc.set_author(Some(by.to_automerge()));
    let moved = match doc.get(ROOT, MOVED_FROM)? {
        Some((Value::Object(ObjType::Map), moved)) => moved,
        _ => doc.put_object(ROOT, MOVED_FROM, ObjType::Map)?,
    };
    fields::put(doc, &moved, header.person.as_str(), &to.as_str().to_string())?;
    fields::put(doc, &ROOT, "person", &to.as_str().to_string())?;
    Ok(true)
}

/// Whether `doc` records that it was moved from `from` to `to` (through however many merges): a
/// replica holding it under `from` accepts the change of person.
pub fn was_moved(doc: &AutoCommit, from: &PersonId, to: &PersonId) -> bool {
    let Ok(Some((Value::Object(ObjType::Map), moved))) = doc.get(ROOT, MOVED_FROM) else {
        return false;
    };
    let mut at = from.as_str().to_string();
    // A chain of merges is short; the bound only stops a crafted cycle.
    for _ in 0..32 {
        let Ok(Some(next)) = fields::get_field::<String>(doc, &moved, &at) else {
            return false;
        };
        if next.value == to.as_str() {
            return true;
        }
        at = next.value;
    }
    false
}

/// A scalar as text, for `AlsoRecorded` and comparisons a person can read.
fn scalar_text(value: &ScalarValue) -> String {
    match value {
        ScalarValue::Str(s) => s.to_string(),
        ScalarValue::Timestamp(ms) => {
            chrono::DateTime::from_timestamp_millis(*ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
        }
        other => other.to_string(),
    }
}

/// The object at `key` of `obj`, if it is one of `kind`.
fn object_at(doc: &AutoCommit, obj: &ObjId, key: &str, kind: ObjType) -> Option<ObjId> {
    match doc.get(obj, key) {
        Ok(Some((Value::Object(t), id))) if t == kind => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
