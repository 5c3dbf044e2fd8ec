//! Erasure through sync. A person erased on request or past retention, or a document a lead
//! removed from a record, is deleted here at once (`Erasures::erase`); each device holding it
//! is told to erase it at its next sync. A device may still hold unacknowledged changes to it:
//! they arrive with that sync, are erased on arrival, and the audit counts them.

use std::collections::BTreeMap;

use outpost_core::sync::wire::Head;
use outpost_core::{DocId, PersonId};

use super::SyncService;
use crate::erasure::Grounds;
use crate::error::{Error, Result};
use crate::storage::{AuditEntry, Device};

/// What arrived this sync for records already erased: per erased id, how many documents.
#[derive(Debug, Default)]
pub(super) struct Arrivals {
    counts: BTreeMap<String, (usize, bool)>,
}

impl Arrivals {
    /// A document arrived that was erased (`whole_person` false) or names an erased person.
    pub(super) fn note(&mut self, id: &str, whole_person: bool) {
        self.counts.entry(id.to_string()).or_insert((0, whole_person)).0 += 1;
    }
}

impl SyncService {
    /// Erases `person` whole (`erasure::erase_person`), serialised with this process's sync
    /// writes.
    pub fn erase_person(&self, person: &PersonId, grounds: &Grounds, who: &str, from: &str) -> Result<usize> {
        let _guard = self.exclusive_guard();
        crate::erasure::erase_person(self.storage.as_ref(), person, grounds, who, from)
    }

    /// Removes one document from a person's record (`erasure::remove_document`).
    pub fn remove_document(&self, doc: &DocId, grounds: &Grounds, who: &str, from: &str) -> Result<usize> {
        let _guard = self.exclusive_guard();
        crate::erasure::remove_document(self.storage.as_ref(), doc, grounds, who, from)
    }

    /// Whether a pushed document is erased or names an erased person; if so it is noted, and
    /// not stored.
    pub(super) fn erased_on_arrival(
        &self,
        doc: &str,
        person: Option<&PersonId>,
        arrivals: &mut Arrivals,
    ) -> Result<bool> {
        let erased = match self.storage.erased(doc)? {
            Some(found) => Some(found),
            None => match person {
                Some(person) => self.storage.erased(person.as_str())?,
                None => None,
            },
        };
        match erased {
            Some((person, true)) => arrivals.note(person.as_str(), true),
            Some(_) => arrivals.note(doc, false),
            None => return Ok(false),
        }
        Ok(true)
    }

    /// Tells the device what to erase (what it holds of erased records, and whatever arrived
    /// for them this sync), records what it says it erased, and audits the arrivals.
    pub(super) fn settle_erasures(
        &self,
        device: &Device,
        erased: &[String],
        arrivals: &Arrivals,
        head: &mut Head,
        now: i64,
        from: &str,
    ) -> Result<Vec<AuditEntry>> {
        if !erased.is_empty() {
            self.storage.erasures_done(&device.device, erased)?;
        }
        let (docs, people) = self.storage.erasures_for(&device.device)?;
        let mut erase_docs: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
        let mut erase_people: Vec<String> = people.iter().map(|p| p.to_string()).collect();
        let mut audit = Vec::new();
        for (id, (count, whole_person)) in &arrivals.counts {
            if *whole_person {
                erase_people.push(id.clone());
            } else {
                erase_docs.push(id.clone());
            }
            audit.push(AuditEntry {
                at: now,
                who: format!("{}/{}", device.worker, device.device),
                action: "erased-on-arrival".into(),
                subject: id.clone(),
                detail: format!("{count} document(s) arrived after the erasure and were erased"),
                from: from.to_string(),
            });
        }
        for list in [&mut erase_docs, &mut erase_people] {
            list.sort();
            list.dedup();
        }
        let capable = head
            .capabilities
            .iter()
            .any(|c| c == outpost_core::sync::wire::CAP_FORGET);
        if !capable && (!erase_docs.is_empty() || !erase_people.is_empty()) {
            return Err(Error::bad(
                "sync request",
                "records this device holds were erased, and this app is too old to erase them; update the app",
            ));
        }
        head.erase_docs = erase_docs;
        head.erase_people = erase_people;
        Ok(audit)
    }
}
