//! A lead merges two person records made for the same person (two workers offline, each
//! creating one). The duplicate survives as a record marked `merged_into` the survivor (devices
//! hide it); what it holds is folded onto the survivor's record, nothing overwritten; and every
//! other record of the duplicate is re-pointed at the survivor. All of it is written as the
//! server's own changes, so devices receive it as they receive any change.
//!
//! Devices that were offline keep editing the duplicate and may create records for them. After
//! each sync, `follow_merges` re-points what arrived naming a merged-away person and folds new
//! edits of their record onto the survivor's.

use std::collections::HashMap;

use automerge::AutoCommit;
use outpost_core::duplicates;
use outpost_core::{Author, DeviceId, DocId, PersonId, WorkerId};

use crate::error::{Error, Result};
use crate::review::SERVER_DEVICE;
use crate::storage::{AuditEntry, DocWrite, Merge, Role};
use crate::sync::SyncService;

/// How far a chain of merges (A into B, later B into C) is followed.
const MAX_CHAIN: usize = 16;

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The duplicate's records now pointing at the survivor.
    pub moved: Vec<DocId>,
    /// Whether the survivor's record took anything from the duplicate's.
    pub folded: bool,
}

/// Merges `duplicate` into `survivor` as `lead`, audited from `from` (empty for the CLI). Both
/// must be people of one team the lead reviews; others are answered as missing. Running it again
/// for the same pair finishes a merge that was interrupted.
pub fn merge_people(
    service: &SyncService,
    lead: &WorkerId,
    survivor: &PersonId,
    duplicate: &PersonId,
    from: &str,
) -> Result<Merged> {
    let storage = service.storage();
    let (role, _) = storage
        .worker(lead)?
        .ok_or_else(|| Error::NotFound(format!("worker {lead}")))?;
    let teams = storage.lead_teams(lead)?;
    let team_of = |person: &PersonId| -> Result<_> {
        let missing = || Error::NotFound(format!("person {person}"));
        storage
            .doc(person)?
            .filter(|d| d.doc_type == "person")
            .ok_or_else(missing)?;
        match storage.person_team(person)? {
            Some(team) if role == Role::Lead && teams.contains(&team) => Ok(team),
            _ => Err(missing()),
        }
    };
    if team_of(survivor)? != team_of(duplicate)? {
        return Err(Error::bad(
            "duplicate",
            "the two records belong to different teams; reassign one first",
        ));
    }
    if survivor == duplicate {
        return Err(Error::bad("duplicate", "it is the survivor itself"));
    }
    if let Some(earlier) = storage.merged_into(survivor)? {
        return Err(Error::bad(
            "survivor",
            format!("it was itself merged into {}; merge into that record", earlier.survivor),
        ));
    }
    let who = format!("{lead}/{SERVER_DEVICE}");
    match storage.merged_into(duplicate)? {
        Some(earlier) if earlier.survivor != *survivor => {
            return Err(Error::Conflict(format!(
                "person {duplicate} was already merged into {}",
                earlier.survivor
            )));
        }
        Some(_) => {}
        None => {
            let at = chrono::Utc::now().timestamp();
            let merge = Merge {
                duplicate: duplicate.clone(),
                survivor: survivor.clone(),
                by: lead.clone(),
                at,
            };
            // Recorded first: from here on every sync re-points what arrives for the duplicate.
            storage.record_merge(
                &merge,
                &AuditEntry {
                    at,
                    who: who.clone(),
                    action: "merge-people".into(),
                    subject: duplicate.to_string(),
                    detail: format!("merged into {survivor}"),
                    from: from.to_string(),
                },
            )?;
        }
    }
    let by = Author::new(lead.clone(), DeviceId::new(SERVER_DEVICE)?);
    edit_if_needed(service, duplicate, &who, from, "merge-mark", |doc| {
        if duplicates::merged_into(doc).as_ref() == Some(survivor) {
            return Ok(false);
        }
        duplicates::mark_merged(doc, duplicate, survivor, &by)?;
        Ok(true)
    })?;
    let folded = fold(service, survivor, duplicate, &by, &who, from)?;
    let mut moved = Vec::new();
    for (doc, stored) in storage.people_docs(std::slice::from_ref(duplicate))? {
        if stored.doc_type != "person" && repoint(service, &doc, survivor, &by, &who, from)? {
            moved.push(doc);
        }
    }
    Ok(Merged { moved, folded })
}

/// After a sync's writes: every record written that names a merged-away person is re-pointed at
/// the person they were merged into, and a merged-away person's record written (edited on a
/// device that had not heard of the merge) is folded onto the survivor's again. A failure here
/// loses nothing the device sent (it is stored); it is logged, and `merge_people` run again for
/// the pair finishes the work.
pub(crate) fn follow_merges(service: &SyncService, written: &[DocWrite], from: &str) {
    if let Err(e) = follow(service, written, from) {
        tracing::warn!(error = %e, "records of a merged-away person were not yet moved; merging again finishes it");
    }
}

fn follow(service: &SyncService, written: &[DocWrite], from: &str) -> Result<()> {
    let mut merges: HashMap<PersonId, Option<Merge>> = HashMap::new();
    for doc in written {
        let merge = match merges.get(&doc.person) {
            Some(merge) => merge.clone(),
            None => {
                let merge = final_merge(service, &doc.person)?;
                merges.insert(doc.person.clone(), merge.clone());
                merge
            }
        };
        let Some(merge) = merge else { continue };
        let by = Author::new(merge.by.clone(), DeviceId::new(SERVER_DEVICE)?);
        let who = format!("{}/{SERVER_DEVICE}", merge.by);
        if doc.doc_type == "person" {
            fold(service, &merge.survivor, &doc.doc, &by, &who, from)?;
        } else {
            repoint(service, &doc.doc, &merge.survivor, &by, &who, from)?;
        }
    }
    Ok(())
}

/// The merge that took `person` away, its survivor followed to the record that stands now.
fn final_merge(service: &SyncService, person: &PersonId) -> Result<Option<Merge>> {
    let storage = service.storage();
    let Some(mut merge) = storage.merged_into(person)? else {
        return Ok(None);
    };
    for _ in 0..MAX_CHAIN {
        match storage.merged_into(&merge.survivor)? {
            Some(next) => merge.survivor = next.survivor,
            None => return Ok(Some(merge)),
        }
    }
    Err(Error::Internal(format!(
        "the merges of person {person} go round in a circle"
    )))
}

fn repoint(service: &SyncService, doc: &DocId, to: &PersonId, by: &Author, who: &str, from: &str) -> Result<bool> {
    edit_if_needed(service, doc, who, from, "merge-repoint", |loaded| {
        duplicates::repoint(loaded, doc, to, by)
    })
}

/// Folds the duplicate's record, as stored now, onto the survivor's.
fn fold(
    service: &SyncService,
    survivor: &PersonId,
    duplicate: &PersonId,
    by: &Author,
    who: &str,
    from: &str,
) -> Result<bool> {
    // As stored now; should it change meanwhile, the sync that changes it folds it again.
    let theirs = load(service, duplicate)?;
    edit_if_needed(service, survivor, who, from, "merge-fold", |loaded| {
        duplicates::fold(loaded, survivor, &mut theirs.clone(), duplicate, by)
    })
}

fn load(service: &SyncService, id: &DocId) -> Result<AutoCommit> {
    let stored = service
        .storage()
        .doc(id)?
        .ok_or_else(|| Error::NotFound(format!("document {id}")))?;
    AutoCommit::load(&stored.snapshot).map_err(|e| Error::Internal(format!("stored document {id} does not load: {e}")))
}

/// A server edit, written only when `edit` changes something: tried first on a copy, so a merge
/// run again, or a sync that brings nothing new, writes nothing and sends devices nothing.
fn edit_if_needed(
    service: &SyncService,
    doc: &DocId,
    who: &str,
    from: &str,
    action: &str,
    mut edit: impl FnMut(&mut AutoCommit) -> std::result::Result<bool, outpost_core::Error>,
) -> Result<bool> {
    let mut probe = load(service, doc)?;
    if !edit(&mut probe)? {
        return Ok(false);
    }
    let mut changed = false;
    service.server_edit(doc, who, from, action, |loaded| {
        changed = edit(loaded)?;
        Ok(())
    })?;
    Ok(changed)
}
