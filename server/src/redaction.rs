//! A lead removes a passage from a visit: text recorded on the wrong person's record, say. The
//! lead names the section and the exact passage; it must occur there once, so what is removed
//! is never a guess. The removal itself (`SyncService::redact`) takes the text out of every
//! copy, history included. Edits a device typed offline inside a removed passage are held
//! (`held_edits`) until a lead puts each back or discards it (`settle_held`).

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
use outpost_core::forget::{Cut, Held, Step};
use outpost_core::{Author, DeviceId, DocId, Section, WorkerId};

use crate::error::{Error, Result};
use crate::review::SERVER_DEVICE;
use crate::storage::{AuditEntry, HeldRow, Role, Storage, StoredDoc, SyncWrite};
use crate::sync::SyncService;

/// Removes `passage` from `section` of `visit`, as `lead`, for `reason`, audited from `from`.
/// A visit outside the lead's teams is answered as missing.
pub fn redact_passage(
    service: &SyncService,
    lead: &WorkerId,
    visit: &DocId,
    section: &str,
    passage: &str,
    reason: &str,
    from: &str,
) -> Result<()> {
    let stored = lead_visit(service.storage().as_ref(), lead, visit)?;
    let section = Section::from_code(section)
        .ok_or_else(|| Error::bad("section", format!("{section:?} is not a section of a visit")))?;
    let doc = AutoCommit::load(&stored.snapshot)
        .map_err(|e| Error::Internal(format!("stored document {visit} does not load: {e}")))?;
    let text = section_text(&doc, section).ok_or_else(|| Error::bad("section", "this visit has no such section"))?;
    let cut = find_once(&text, passage).map(|(start, end)| Cut {
        path: vec![Step::Key("sections".into()), Step::Key(section.code().into())],
        start,
        end,
    })?;
    let author = Author::new(lead.clone(), DeviceId::new(SERVER_DEVICE)?);
    service.redact(visit, &[cut], &author, &format!("{lead}/{SERVER_DEVICE}"), from, reason)?;
    Ok(())
}

/// The edits held back from a document after a redaction, oldest first, each with what the
/// device typed and where it would go.
pub fn held_edits(storage: &dyn Storage, doc: &DocId) -> Result<Vec<(HeldRow, Held)>> {
    storage
        .held_edits(doc)?
        .into_iter()
        .map(|row| {
            let held = ciborium::from_reader(row.held.as_slice())
                .map_err(|e| Error::Internal(format!("a held edit of {doc} does not decode: {e}")))?;
            Ok((row, held))
        })
        .collect()
}

/// The stored visit, when `lead` is a lead of its person's team; anything else is missing.
/// Removes a whole visit (with its review) from a person's record, as `lead`, for `reason`:
/// erased here now and from every device at its next sync (`erasure::remove_document`). A
/// visit outside the lead's teams is answered as missing. Returns the person it belonged to.
pub fn remove_visit(
    service: &SyncService,
    lead: &WorkerId,
    visit: &DocId,
    reason: &str,
    from: &str,
) -> Result<outpost_core::PersonId> {
    let stored = lead_visit(service.storage().as_ref(), lead, visit)?;
    let grounds = crate::erasure::Grounds::Removed(reason.to_string());
    service.remove_document(visit, &grounds, &format!("{lead}/{SERVER_DEVICE}"), from)?;
    Ok(stored.person)
}

fn lead_visit(storage: &dyn Storage, lead: &WorkerId, visit: &DocId) -> Result<StoredDoc> {
    let missing = || Error::NotFound(format!("visit {visit}"));
    let (role, _) = storage.worker(lead)?.ok_or_else(missing)?;
    let stored = storage
        .doc(visit)?
        .filter(|d| d.doc_type == "visit")
        .ok_or_else(missing)?;
    let teams = storage.lead_teams(lead)?;
    if role != Role::Lead || !storage.person_team(&stored.person)?.is_some_and(|t| teams.contains(&t)) {
        return Err(missing());
    }
    Ok(stored)
}

fn section_text(doc: &AutoCommit, section: Section) -> Option<String> {
    let (_, sections) = doc.get(ROOT, "sections").ok()??;
    let (value, text) = doc.get(&sections, section.code()).ok()??;
    if value.to_objtype() != Some(ObjType::Text) {
        return None;
    }
    doc.text(&text).ok()
}

/// Where `passage` occurs in `text`, in characters; it must occur exactly once.
fn find_once(text: &str, passage: &str) -> Result<(usize, usize)> {
    if passage.is_empty() {
        return Err(Error::bad("passage", "it is empty"));
    }
    let found: Vec<usize> = text.match_indices(passage).map(|(at, _)| at).collect();
    match found.as_slice() {
        [at] => {
            let start = text[..*at].chars().count();
            Ok((start, start + passage.chars().count()))
        }
        [] => Err(Error::bad("passage", "it does not occur in that section")),
        many => Err(Error::bad(
            "passage",
            format!(
                "it occurs {} times in that section; include more of the text around it",
                many.len()
            ),
        )),
    }
}

/// A lead's decision on edit `held_id`, held back from `visit` after a redaction: `put_back`
/// inserts its text into the text it was typed in, as a change by `lead` through the server;
/// otherwise it is discarded. Either way it is held no longer. Audited (`held-put-back`,
/// `held-discard`) as `lead` from `from`, naming the visit, never the text.
///
/// The text goes where the removed passage was, counted in characters of the text as it was
/// re-created. That text may have been edited since, so the position is approximate; it is
/// clamped to the text's length now, and the lead reads the result on the visit page.
pub fn settle_held(
    service: &SyncService,
    lead: &WorkerId,
    visit: &DocId,
    held_id: i64,
    put_back: bool,
    from: &str,
) -> Result<()> {
    let storage = service.storage().as_ref();
    lead_visit(storage, lead, visit)?;
    let gone = || {
        Error::bad(
            "held edit",
            "it is no longer held (it was put back or discarded already); reload the page",
        )
    };
    let (row, held) = held_edits(storage, visit)?
        .into_iter()
        .find(|(row, _)| row.id == held_id)
        .ok_or_else(gone)?;
    // Claimed before the text is put back, so two leads at once (or a double click) cannot put
    // it back twice.
    if !storage.settle_held(held_id, visit)? {
        return Err(gone());
    }
    let who = format!("{lead}/{SERVER_DEVICE}");
    if !put_back {
        return storage.audit(&AuditEntry {
            at: chrono::Utc::now().timestamp(),
            who,
            action: "held-discard".into(),
            subject: visit.to_string(),
            detail: format!(
                "held edit {held_id} from device {}, {} characters",
                row.device,
                held.text.chars().count()
            ),
            from: from.to_string(),
        });
    }
    if let Err(error) = put_back_held(service, lead, visit, &held, &who, from) {
        // Held again (under a new id) rather than lost; only a crash in between loses it.
        let again = SyncWrite {
            held: vec![row],
            ..SyncWrite::default()
        };
        if let Err(e) = storage.write(None, &again) {
            tracing::error!(error = %e, doc = %visit, "a held edit that could not be put back was not kept either");
        }
        return Err(error);
    }
    Ok(())
}

/// Puts a held edit's text back as a server edit written by `lead` (as review decisions are),
/// with an actor registered as the server's so no device can claim it later. The server edit
/// writes the audit entry (`held-put-back`) with the change.
fn put_back_held(
    service: &SyncService,
    lead: &WorkerId,
    visit: &DocId,
    held: &Held,
    who: &str,
    from: &str,
) -> Result<()> {
    let actor = automerge::ActorId::random();
    service
        .storage()
        .register_server_actor(actor.to_bytes(), chrono::Utc::now().timestamp())?;
    // The form `outpost_core::Author` records and reads back: `worker/device`.
    let author = automerge::Author::from(format!("{lead}/{SERVER_DEVICE}").into_bytes());
    service.server_edit(visit, who, from, "held-put-back", |doc| {
        doc.set_author(Some(author.clone()));
        doc.set_actor(actor.clone());
        let text = text_at(doc, &held.path).ok_or_else(|| outpost_core::Error::InvalidInput {
            field: "held edit".into(),
            reason: "the text it was typed in is no longer in this visit".into(),
        })?;
        let at = held.at.min(doc.length(&text));
        doc.splice_text(&text, at, 0, &held.text)?;
        Ok(())
    })?;
    Ok(())
}

/// The text object at `path` from the document's root, if there is text there.
fn text_at(doc: &AutoCommit, path: &[Step]) -> Option<automerge::ObjId> {
    let (mut obj, mut kind) = (ROOT, ObjType::Map);
    for step in path {
        let (value, id) = match step {
            Step::Key(key) => doc.get(&obj, key.as_str()).ok()??,
            Step::Index(index) => doc.get(&obj, *index).ok()??,
        };
        kind = value.to_objtype()?;
        obj = id;
    }
    (kind == ObjType::Text).then_some(obj)
}

#[cfg(test)]
mod tests {
    use super::find_once;

    #[test]
    fn a_passage_must_occur_exactly_once() {
        assert_eq!(
            find_once("café au lait", "au").unwrap(),
            (5, 7),
            "counted in characters"
        );
        let err = find_once("a b a", "a").unwrap_err().to_string();
        assert!(err.contains("occurs 2 times"), "{err}");
        assert!(
            find_once("abc", "x")
                .unwrap_err()
                .to_string()
                .contains("does not occur")
        );
        assert!(find_once("abc", "").unwrap_err().to_string().contains("empty"));
    }
}
