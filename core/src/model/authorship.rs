//! Who wrote which part of a text, read from the document's own history: every character carries
//! the id of the operation that inserted it, and every actor maps to the author (worker and
//! device) recorded in its changes.

use automerge::{AutoCommit, ChangeHash, ObjId, ROOT, ReadDoc, Value, ValueRef};

use crate::forget::{AUTHOR_MARK, RECREATED_KEY};

use crate::ids::Author;

/// A run of consecutive characters written by one author.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthoredSpan {
    /// None for text from a change that carried no author (never written by Outpost itself).
    pub author: Option<Author>,
    pub text: String,
}

pub(crate) fn spans(doc: &AutoCommit, text: &ObjId) -> Vec<AuthoredSpan> {
    let mut spans: Vec<AuthoredSpan> = Vec::new();
    for ch in char_authors(doc, text) {
        let author = ch.author.as_deref().and_then(Author::parse);
        match spans.last_mut() {
            Some(last) if last.author == author => last.text.push_str(&ch.text),
            _ => spans.push(AuthoredSpan { author, text: ch.text }),
        }
    }
    spans
}

/// One character of a text, its element id, and who wrote it (`worker/device`, as recorded).
pub(crate) struct AuthoredChar {
    pub id: ObjId,
    pub text: String,
    pub author: Option<String>,
}

/// Every character of a text with its author. A character written by the actor that re-created
/// the document in a redaction (`forget::RECREATED_KEY`) is attributed by its author mark, which
/// carries who wrote it before.
pub(crate) fn char_authors(doc: &AutoCommit, text: &ObjId) -> Vec<AuthoredChar> {
    let recreated_by = match doc.get(ROOT, RECREATED_KEY) {
        Ok(Some((Value::Scalar(s), _))) => s.as_str().map(str::to_string),
        _ => None,
    };
    let mut marked: Vec<Option<String>> = Vec::new();
    if recreated_by.is_some() {
        marked = vec![None; doc.length(text)];
        for mark in doc.marks(text).unwrap_or_default() {
            if mark.name() != AUTHOR_MARK {
                continue;
            }
            let Some(author) = mark.value().as_str() else {
                continue;
            };
            for slot in marked.iter_mut().take(mark.end).skip(mark.start) {
                *slot = Some(author.to_string());
            }
        }
    }
    let mut chars = Vec::new();
    for (index, (id, s)) in text_elements(doc, text, None).into_iter().enumerate() {
        let author = match &id {
            ObjId::Id(_, actor, _) if recreated_by.as_deref() == Some(actor.to_hex_string().as_str()) => {
                marked.get(index).cloned().flatten()
            }
            ObjId::Id(_, actor, _) => doc
                .get_author_for_actor(actor)
                .and_then(|a| std::str::from_utf8(a.as_bytes()).ok().map(str::to_string)),
            ObjId::Root => None,
        };
        chars.push(AuthoredChar { id, text: s, author });
    }
    chars
}

/// A text's characters with their element ids, as it is or at `heads`. Automerge lists a mark's
/// start (its value) and end (null) among the elements; they are left out: an Outpost mark's
/// value is never a single character.
pub(crate) fn text_elements(doc: &AutoCommit, text: &ObjId, heads: Option<&[ChangeHash]>) -> Vec<(ObjId, String)> {
    let element = |item: automerge::iter::ListRangeItem<'_>| match &item.value {
        ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) if s.chars().count() == 1 => {
            Some((item.id(), s.to_string()))
        }
        _ => None,
    };
    match heads {
        Some(heads) => doc.list_range_at(text, .., heads).filter_map(element).collect(),
        None => doc.list_range(text, ..).filter_map(element).collect(),
    }
}
