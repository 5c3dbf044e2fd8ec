//! The bridge between a phone's native text field and a visit section's Automerge Text.
//!
//! A text field hands over whole strings and counts positions in UTF-16 code units (Android's
//! `EditText` and iOS's `UITextView` both do); the document counts Unicode scalar values and
//! merges edits character by character. So the app keeps the text it shows with the version it
//! read it at, gives back old and new text after the user types, and gets the minimal edit
//! applied at that version, merging with whatever arrived from elsewhere meanwhile. When a
//! colleague's edit syncs in, the app maps its cursor or selection from the version it showed to
//! the current one, so the caret stays by the same characters.

use automerge::{ChangeHash, MoveCursor, ObjId, ReadDoc, transaction::Transactable};

use super::{Saved, Store};
use crate::error::{Error, Result};
use crate::ids::DocId;
use crate::model::header::{self, DocType};
use crate::model::visit::{self, Section};

/// A section's text and the version (document heads) it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionText {
    pub text: String,
    pub version: Vec<ChangeHash>,
}

/// A cursor (start == end) or selection, in UTF-16 code units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    pub start: usize,
    pub end: usize,
}

/// A version as a string for the FFI: the heads' hex hashes, comma-separated.
pub fn version_string(version: &[ChangeHash]) -> String {
    version.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Reads a version written by `version_string`.
pub fn parse_version(s: &str) -> Result<Vec<ChangeHash>> {
    s.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse()
                .map_err(|_| Error::invalid("version", format!("{part:?} is not a change hash")))
        })
        .collect()
}

impl Store {
    /// The section's current text and version, for a text field to show.
    pub fn section_text(&mut self, visit: &DocId, section: Section) -> Result<SectionText> {
        let doc = self.doc_mut(visit)?;
        header::expect(doc, visit, DocType::Visit)?;
        let obj = visit::section_text(doc, section)?;
        Ok(SectionText {
            text: doc.text(&obj)?,
            version: doc.get_heads(),
        })
    }

    /// Applies what the user typed: the minimal edit turning `old_text` (what the field showed,
    /// read at `base`) into `new_text`, made at `base` so it merges with any change that arrived
    /// since. Returns once saved, with the merged text the field should now show.
    pub fn edit_section_text(
        &mut self,
        visit: &DocId,
        section: Section,
        base: &[ChangeHash],
        old_text: &str,
        new_text: &str,
    ) -> Result<(Saved, SectionText)> {
        let current = {
            let doc = self.doc_mut(visit)?;
            header::expect(doc, visit, DocType::Visit)?;
            let obj = visit::section_text(doc, section)?;
            check_known(doc, base)?;
            if doc.text_at(&obj, base)? != old_text {
                return Err(Error::invalid(
                    "old text",
                    "is not the section's text at the given version; read the section again",
                ));
            }
            doc.get_heads()
        };
        let (pos, delete, insert) = minimal_edit(old_text, new_text);
        let at = (current.as_slice() != base).then_some(base);
        let saved = self.edit_at(visit, DocType::Visit, at, |doc| {
            if delete == 0 && insert.is_empty() {
                return Ok(());
            }
            let obj = visit::section_text(doc, section)?;
            let delete = isize::try_from(delete).map_err(|_| Error::invalid(section.code(), "delete too long"))?;
            doc.splice_text(&obj, pos, delete, insert)?;
            Ok(())
        })?;
        let text = self.section_text(visit, section)?;
        Ok((saved, text))
    }

    /// Maps a cursor or selection in the text shown at `base` to the current text, so it stays
    /// by the same characters whatever was inserted or deleted around it since.
    pub fn map_selection(
        &mut self,
        visit: &DocId,
        section: Section,
        base: &[ChangeHash],
        selection: Selection,
    ) -> Result<(SectionText, Selection)> {
        let doc = self.doc_mut(visit)?;
        header::expect(doc, visit, DocType::Visit)?;
        let obj = visit::section_text(doc, section)?;
        check_known(doc, base)?;
        let old = doc.text_at(&obj, base)?;
        let start = char_index(&old, selection.start, "selection start")?;
        let end = char_index(&old, selection.end, "selection end")?;
        if start > end {
            return Err(Error::invalid("selection", "starts after it ends"));
        }
        let new_start = map_position(doc, &obj, base, start)?;
        let new_end = map_position(doc, &obj, base, end)?.max(new_start);
        let text = doc.text(&obj)?;
        let mapped = Selection {
            start: utf16_index(&text, new_start),
            end: utf16_index(&text, new_end),
        };
        Ok((
            SectionText {
                text,
                version: doc.get_heads(),
            },
            mapped,
        ))
    }
}

fn check_known(doc: &automerge::AutoCommit, version: &[ChangeHash]) -> Result<()> {
    match version.iter().find(|h| doc.get_change_by_hash(h).is_none()) {
        Some(unknown) => Err(Error::invalid(
            "version",
            format!("change {unknown} is not in this document"),
        )),
        None => Ok(()),
    }
}

/// Where the caret before character `pos` (in the text at `base`) is now.
fn map_position(doc: &automerge::AutoCommit, obj: &ObjId, base: &[ChangeHash], pos: usize) -> Result<usize> {
    let len = doc.length_at(obj, base);
    if pos < len {
        // Anchored to the character after the caret; if it was deleted, the next survivor.
        let cursor = doc.get_cursor(obj, pos, Some(base))?;
        Ok(doc.get_cursor_position(obj, &cursor, None)?)
    } else if len > 0 {
        // At the end: anchored to the last character, so text appended by someone else lands
        // after the caret rather than pushing it along.
        let cursor = doc.get_cursor_moving(obj, len - 1, Some(base), MoveCursor::Before)?;
        let now = doc.get_cursor_position(obj, &cursor, None)?;
        Ok((now + 1).min(doc.length(obj)))
    } else {
        Ok(0)
    }
}

/// The single splice (position, chars deleted, text inserted) that turns `old` into `new`:
/// their common prefix and suffix are kept.
fn minimal_edit<'a>(old: &str, new: &'a str) -> (usize, usize, &'a str) {
    let old_chars: Vec<char> = old.chars().collect();
    let new_chars: Vec<char> = new.chars().collect();
    let prefix = old_chars.iter().zip(&new_chars).take_while(|(a, b)| a == b).count();
    let max_suffix = old_chars.len().min(new_chars.len()) - prefix;
    let suffix = old_chars
        .iter()
        .rev()
        .zip(new_chars.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    let delete = old_chars.len() - prefix - suffix;
    let start_byte = new.char_indices().nth(prefix).map_or(new.len(), |(i, _)| i);
    let end_byte = new
        .char_indices()
        .nth(new_chars.len() - suffix)
        .map_or(new.len(), |(i, _)| i);
    (prefix, delete, &new[start_byte..end_byte])
}

/// A UTF-16 offset as a character index; an offset inside a surrogate pair is refused.
fn char_index(text: &str, utf16: usize, field: &str) -> Result<usize> {
    let mut units = 0;
    for (chars, c) in text.chars().enumerate() {
        if units == utf16 {
            return Ok(chars);
        }
        units += c.len_utf16();
        if units > utf16 {
            return Err(Error::invalid(field, format!("offset {utf16} splits a character")));
        }
    }
    if units == utf16 {
        Ok(text.chars().count())
    } else {
        Err(Error::invalid(
            field,
            format!("offset {utf16} is past the end of the text ({units} UTF-16 units)"),
        ))
    }
}

fn utf16_index(text: &str, chars: usize) -> usize {
    text.chars().take(chars).map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_edit_keeps_common_prefix_and_suffix() {
        assert_eq!(minimal_edit("the cat sat", "the black cat sat"), (4, 0, "black "));
        assert_eq!(minimal_edit("the cat sat", "the sat"), (4, 4, ""));
        assert_eq!(minimal_edit("aaa", "aa"), (2, 1, ""));
        assert_eq!(minimal_edit("", "hi"), (0, 0, "hi"));
        assert_eq!(minimal_edit("same", "same"), (4, 0, ""));
        assert_eq!(minimal_edit("café ☕ x", "café 🍵 x"), (5, 1, "🍵"));
    }

    #[test]
    fn utf16_offsets_round_trip_and_refuse_half_a_pair() {
        let text = "a🍵b";
        assert_eq!(char_index(text, 0, "f").unwrap(), 0);
        assert_eq!(char_index(text, 1, "f").unwrap(), 1);
        assert_eq!(char_index(text, 3, "f").unwrap(), 2);
        assert_eq!(char_index(text, 4, "f").unwrap(), 3);
        assert!(char_index(text, 2, "f").unwrap_err().to_string().contains("splits"));
        assert!(
            char_index(text, 5, "f")
                .unwrap_err()
                .to_string()
                .contains("past the end")
        );
        assert_eq!(utf16_index(text, 2), 3);
    }

    #[test]
    fn versions_round_trip_and_garbage_is_named() {
        let heads = vec![ChangeHash([7; 32]), ChangeHash([9; 32])];
        assert_eq!(parse_version(&version_string(&heads)).unwrap(), heads);
        assert_eq!(parse_version("").unwrap(), Vec::<ChangeHash>::new());
        let err = parse_version("zz").unwrap_err().to_string();
        assert!(err.contains("version") && err.contains("zz"), "{err}");
    }
}
