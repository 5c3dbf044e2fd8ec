//! Erasure and retention, for the admin CLI and the lead's pages: a person erased on request, a
//! document removed from a record, and a retention run that erases everyone whose case closed
//! longer ago than their team keeps records. Devices erase at their next sync
//! (`sync::erasure`); the audit says which record, when and on what grounds, never the content.

use outpost_core::{DocId, PersonId};

use crate::error::{Error, Result};
use crate::storage::{AuditEntry, Storage};

/// Why a record is erased, for the audit: the policy or request, never the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grounds {
    /// The person asked (or the law requires it); the text says who decided and why.
    Request(String),
    /// Past the team's retention: so many years after the case closed.
    Retention { years: u32 },
    /// A lead removed a document from a person's record (recorded on the wrong person, say).
    Removed(String),
}

impl Grounds {
    fn describe(&self) -> Result<String> {
        match self {
            Grounds::Request(why) | Grounds::Removed(why) if why.trim().is_empty() => {
                Err(Error::bad("reason", "an erasure needs a reason"))
            }
            Grounds::Request(why) => Ok(format!("erasure on request: {}", why.trim())),
            Grounds::Retention { years } => Ok(format!("retention policy: {years} years after the case closed")),
            Grounds::Removed(why) => Ok(format!("removed from the record: {}", why.trim())),
        }
    }
}

fn entry(who: &str, from: &str, action: &str, subject: &str, grounds: &Grounds) -> Result<AuditEntry> {
    Ok(AuditEntry {
        at: chrono::Utc::now().timestamp(),
        who: who.to_string(),
        action: action.into(),
        subject: subject.to_string(),
        detail: grounds.describe()?,
        from: from.to_string(),
    })
}

/// Erases `person` whole: every document of theirs, here now and on every device at its next
/// sync. Returns how many documents were erased.
pub fn erase_person(
    storage: &dyn Storage,
    person: &PersonId,
    grounds: &Grounds,
    who: &str,
    from: &str,
) -> Result<usize> {
    let audit = entry(who, from, "erase-person", person.as_str(), grounds)?;
    if storage.person_team(person)?.is_none() {
        return Err(Error::NotFound(format!("person {person}")));
    }
    let mut erased = storage.erase(person, &[], &audit)?.len();
    // A duplicate record merged into this one is the same person: its own record still holds
    // their details, so it goes too.
    for merge in storage.merged_from(person)? {
        let audit = entry(who, from, "erase-person", merge.duplicate.as_str(), grounds)?;
        erased += storage.erase(&merge.duplicate, &[], &audit)?.len();
    }
    Ok(erased)
}

/// Removes one document (a visit with its review) from a person's record for good.
pub fn remove_document(storage: &dyn Storage, doc: &DocId, grounds: &Grounds, who: &str, from: &str) -> Result<usize> {
    let audit = entry(who, from, "remove-document", doc.as_str(), grounds)?;
    let stored = storage
        .doc(doc)?
        .ok_or_else(|| Error::NotFound(format!("document {doc}")))?;
    let mut docs = vec![doc.clone()];
    if stored.doc_type == "visit" {
        docs.push(DocId::review_of(doc));
    }
    Ok(storage.erase(&stored.person, &docs, &audit)?.len())
}

/// Erases everyone whose case closed longer ago than their team keeps records, as of `now`.
/// Returns each person erased with how many documents went.
pub fn run_retention(storage: &dyn Storage, now: i64, who: &str) -> Result<Vec<(PersonId, usize)>> {
    let mut erased = Vec::new();
    for (person, years) in storage.past_retention(now)? {
        let count = erase_person(storage, &person, &Grounds::Retention { years }, who, "")?;
        erased.push((person, count));
    }
    Ok(erased)
}
