//! Who wrote which part of a text, read from the document's own history: every character carries
//! the id of the operation that inserted it, and every actor maps to the author (worker and
//! device) recorded in its changes.

use automerge::{AutoCommit, ObjId, ReadDoc, ValueRef};

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
    for item in doc.list_range(text, ..) {
        let ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) = &item.value else {
            continue;
        };
        let author = match item.id() {
            automerge::ObjId::Id(_, actor, _) => doc
                .get_author_for_actor(&actor)
                .and_then(|a| Author::from_automerge(&a)),
            automerge::ObjId::Root => None,
        };
        match spans.last_mut() {
            Some(last) if last.author == author => last.text.push_str(s),
            _ => spans.push(AuthoredSpan {
                author,
                text: s.to_string(),
            }),
        }
    }
    spans
}
