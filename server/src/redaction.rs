//! A lead removes a passage from a visit: text recorded on the wrong person's record, say. The
//! lead names the section and the exact passage; it must occur there once, so what is removed
//! is never a guess. The removal itself (`SyncService::redact`) takes the text out of every
//! copy, history included.

use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
use outpost_core::forget::{Cut, Held, Step};
use outpost_core::{Author, DeviceId, DocId, Section, WorkerId};

use crate::error::{Error, Result};
use crate::review::SERVER_DEVICE;
use crate::storage::{HeldRow, Role, Storage};
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
    let storage = service.storage();
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
