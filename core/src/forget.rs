//! Forgetting text. Automerge keeps every character ever typed in its history, so a passage can
//! only be removed by re-creating the document from its current state without the passage and
//! without the history (`rebuild`). Who wrote what survives as marks on the text. A device that
//! edited the old version offline has its edits carried onto the new one (`carry`); an edit
//! inside a removed passage is held for a lead to decide instead.

mod carry;
mod rebuild;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

pub use carry::{Held, carry};
pub use rebuild::{AUTHOR_MARK, RECREATED_KEY, rebuild};

/// One step of a path from a document's root: a map key or a list position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A passage removed from the text (or string) at `path`: characters `start..end`, counted in
/// Unicode scalar values, in the document as it was when the redaction was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    pub path: Vec<Step>,
    pub start: usize,
    pub end: usize,
}

/// What a device needs to carry its own edits of a redacted document onto the new one. It holds
/// no text: only which old changes the redaction covered, and which old elements of each list
/// and text the new document holds in their place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    /// Each old actor's last change the redaction covered (actor, sequence number); anything
    /// later on a device is that device's own, made after.
    pub clock: Vec<(ByteBuf, u64)>,
    /// The new document's heads as re-created: a device's edits are made there, then merged.
    pub root: Vec<ByteBuf>,
    /// Actors the anchors refer to by index.
    pub actors: Vec<ByteBuf>,
    pub anchors: Vec<Anchors>,
}

/// For one list or text: the old elements the new one holds, in order (new position `i` is the
/// `i`th id), and the old elements that were cut. Ids run as (actor index, first counter,
/// length).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchors {
    pub path: Vec<Step>,
    pub kept: Vec<(u32, u64, u32)>,
    pub cut: Vec<(u32, u64, u32)>,
}

/// The cuts that apply to the object at `path`.
pub(crate) fn cuts_at<'a>(cuts: &'a [Cut], path: &[Step]) -> Vec<&'a Cut> {
    let mut found: Vec<&Cut> = cuts.iter().filter(|c| c.path == path).collect();
    found.sort_by_key(|c| c.start);
    found
}

/// Whether character `index` of the old text is inside a removed passage.
pub(crate) fn is_cut(cuts: &[&Cut], index: usize) -> bool {
    cuts.iter().any(|c| c.start <= index && index < c.end)
}

/// Checks cuts against the document they will be applied to: each names text or a string that
/// exists, a range inside it, and no two overlap.
pub fn check_cuts(doc: &automerge::AutoCommit, cuts: &[Cut]) -> crate::Result<()> {
    let invalid = |reason: String| crate::Error::invalid("redaction", reason);
    if cuts.is_empty() {
        return Err(invalid("it removes nothing".into()));
    }
    for (i, cut) in cuts.iter().enumerate() {
        if cut.start >= cut.end {
            return Err(invalid(format!(
                "passage {} is empty ({}..{})",
                i + 1,
                cut.start,
                cut.end
            )));
        }
        let len = rebuild::text_len(doc, &cut.path)
            .ok_or_else(|| invalid(format!("passage {} names no text at {:?}", i + 1, cut.path)))?;
        if cut.end > len {
            return Err(invalid(format!(
                "passage {} ends at {} but the text is {len} characters",
                i + 1,
                cut.end
            )));
        }
        let overlaps = cuts[..i]
            .iter()
            .any(|o| o.path == cut.path && o.start < cut.end && cut.start < o.end);
        if overlaps {
            return Err(invalid(format!("passage {} overlaps another", i + 1)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
