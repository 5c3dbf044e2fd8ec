//! Re-creating a document from its current state, without the removed passages and without any
//! history. Every value is copied as it reads now; a field two people wrote at once keeps both
//! values (written again concurrently); text keeps who wrote each character as a mark.

use std::collections::HashMap;

use automerge::marks::{ExpandMark, Mark};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

use serde_bytes::ByteBuf;

use super::{Anchors, Cut, Redaction, Step, cuts_at, is_cut};
use crate::error::Result;
use crate::ids::Author;
use crate::model::authorship;

/// The mark that carries who wrote a run of text re-created by a redaction: `worker/device`.
pub const AUTHOR_MARK: &str = "outpost.author";
/// The root key naming (in hex) the actor that re-created the document, so characters it wrote
/// are attributed by their marks rather than to it.
pub const RECREATED_KEY: &str = "recreated_by";

/// Re-creates `old` without `cuts`, written by `writer` at `at` (unix seconds). Returns the new
/// document and what a device needs to carry its own edits of `old` onto it.
pub fn rebuild(old: &mut AutoCommit, cuts: &[Cut], writer: &Author, at: i64) -> Result<(AutoCommit, Redaction)> {
    super::check_cuts(old, cuts)?;
    let mut new = AutoCommit::new().with_author(Some(writer.to_automerge()));
    // Read back rather than chosen: setting an author may give the document a fresh actor.
    let actor = new.get_actor().clone();
    let mut copier = Copier {
        old,
        cuts,
        contested: Vec::new(),
        anchors: Vec::new(),
        actors: HashMap::new(),
    };
    copier.map(&ROOT, &mut new, &ROOT, &mut Vec::new())?;
    let Copier {
        contested,
        anchors,
        actors,
        ..
    } = copier;
    new.put(&ROOT, RECREATED_KEY, actor.to_hex_string())?;
    new.commit_with(CommitOptions::default().with_time(at));
    // A contested field's values are written again at once, each by its own actor, so the new
    // document shows them all until someone chooses, as the old one did.
    for (obj, key, values) in contested {
        let mut forks = Vec::new();
        for value in values {
            let mut fork = new.fork().with_author(Some(writer.to_automerge()));
            fork.put(&obj, key.as_str(), value)?;
            fork.commit_with(CommitOptions::default().with_time(at));
            forks.push(fork);
        }
        for mut fork in forks {
            new.merge(&mut fork)?;
        }
    }
    let mut actor_table: Vec<(usize, ActorId)> = actors.into_iter().map(|(a, i)| (i, a)).collect();
    actor_table.sort_by_key(|(i, _)| *i);
    let clock = clock_of(old);
    let redaction = Redaction {
        clock: clock.into_iter().map(|(a, s)| (ByteBuf::from(a), s)).collect(),
        root: new.get_heads().iter().map(|h| ByteBuf::from(h.0.to_vec())).collect(),
        actors: actor_table
            .into_iter()
            .map(|(_, a)| ByteBuf::from(a.to_bytes().to_vec()))
            .collect(),
        anchors,
    };
    Ok((new, redaction))
}

/// Each actor's latest change in `doc`: the history the redaction removed, by sequence number.
fn clock_of(doc: &mut AutoCommit) -> Vec<(Vec<u8>, u64)> {
    let mut clock: HashMap<ActorId, u64> = HashMap::new();
    for change in doc.get_changes(&[]) {
        let seq = clock.entry(change.actor_id().clone()).or_default();
        *seq = (*seq).max(change.seq());
    }
    let mut clock: Vec<(Vec<u8>, u64)> = clock.into_iter().map(|(a, s)| (a.to_bytes().to_vec(), s)).collect();
    clock.sort();
    clock
}

/// Copies a document, or part of one, into another.
pub(super) struct Copier<'a> {
    pub(super) old: &'a AutoCommit,
    pub(super) cuts: &'a [Cut],
    /// Fields with several current values: (new object, key, values).
    contested: Vec<(ObjId, String, Vec<ScalarValue>)>,
    anchors: Vec<Anchors>,
    actors: HashMap<ActorId, usize>,
}

impl<'a> Copier<'a> {
    /// A copier of new objects a device made, which keeps no anchors and resolves no conflicts.
    pub(super) fn plain(old: &'a AutoCommit) -> Self {
        Self {
            old,
            cuts: &[],
            contested: Vec::new(),
            anchors: Vec::new(),
            actors: HashMap::new(),
        }
    }

    pub(super) fn object(
        &mut self,
        old_obj: &ObjId,
        kind: ObjType,
        new: &mut AutoCommit,
        new_obj: &ObjId,
        path: &mut Vec<Step>,
    ) -> Result<()> {
        match kind {
            ObjType::Map | ObjType::Table => self.map(old_obj, new, new_obj, path),
            ObjType::List => self.list(old_obj, new, new_obj, path),
            ObjType::Text => self.text(old_obj, new, new_obj, path),
        }
    }

    fn map(&mut self, old_obj: &ObjId, new: &mut AutoCommit, new_obj: &ObjId, path: &mut Vec<Step>) -> Result<()> {
        let keys: Vec<String> = self.old.keys(old_obj).collect();
        for key in keys {
            if path.is_empty() && key == RECREATED_KEY {
                continue;
            }
            path.push(Step::Key(key.clone()));
            let all = self.old.get_all(old_obj, key.as_str())?;
            let scalars: Vec<ScalarValue> = all
                .iter()
                .filter_map(|(v, _)| match v {
                    Value::Scalar(s) => Some(owned_scalar(s)),
                    Value::Object(_) => None,
                })
                .collect();
            if all.len() > 1 && scalars.len() == all.len() && self.anchors_kept() {
                self.contested.push((new_obj.clone(), key.clone(), scalars));
            } else if let Some((value, id)) = self.old.get(old_obj, key.as_str())? {
                match value {
                    Value::Scalar(s) => {
                        new.put(new_obj, key.as_str(), owned_scalar(&s))?;
                    }
                    Value::Object(kind) => {
                        let child = new.put_object(new_obj, key.as_str(), kind)?;
                        self.object(&id, kind, new, &child, path)?;
                    }
                }
            }
            path.pop();
        }
        Ok(())
    }

    /// Whether this copier records what a redaction needs (not a plain copy of new objects).
    fn anchors_kept(&self) -> bool {
        !self.cuts.is_empty()
    }

    fn list(&mut self, old_obj: &ObjId, new: &mut AutoCommit, new_obj: &ObjId, path: &mut Vec<Step>) -> Result<()> {
        let mut kept = Vec::new();
        for index in 0..self.old.length(old_obj) {
            let Some((value, id)) = self.old.get(old_obj, index)? else {
                continue;
            };
            kept.push(id.clone());
            path.push(Step::Index(index));
            match value {
                Value::Scalar(s) => new.insert(new_obj, index, owned_scalar(&s))?,
                Value::Object(kind) => {
                    let child = new.insert_object(new_obj, index, kind)?;
                    self.object(&id, kind, new, &child, path)?;
                }
            }
            path.pop();
        }
        self.anchor(path, &kept, &[]);
        Ok(())
    }

    fn text(&mut self, old_obj: &ObjId, new: &mut AutoCommit, new_obj: &ObjId, path: &mut [Step]) -> Result<()> {
        let cuts = cuts_at(self.cuts, path);
        let chars = authorship::char_authors(self.old, old_obj);
        let mut text = String::new();
        let mut runs: Vec<(usize, usize, String)> = Vec::new();
        let (mut kept, mut cut) = (Vec::new(), Vec::new());
        let mut written = 0;
        for (index, ch) in chars.into_iter().enumerate() {
            if is_cut(&cuts, index) {
                cut.push(ch.id);
                continue;
            }
            kept.push(ch.id);
            text.push_str(&ch.text);
            if let Some(author) = ch.author {
                match runs.last_mut() {
                    Some((_, end, last)) if *end == written && *last == author => *end += 1,
                    _ => runs.push((written, written + 1, author)),
                }
            }
            written += 1;
        }
        new.splice_text(new_obj, 0, 0, &text)?;
        for (start, end, author) in runs {
            new.mark(
                new_obj,
                Mark::new(AUTHOR_MARK.to_string(), author.as_str(), start, end),
                ExpandMark::None,
            )?;
        }
        self.anchor(path, &kept, &cut);
        Ok(())
    }

    /// Records which old elements a new sequence holds, in order, and which were cut.
    fn anchor(&mut self, path: &[Step], kept: &[automerge::ObjId], cut: &[automerge::ObjId]) {
        if !self.anchors_kept() {
            return;
        }
        let kept = self.runs(kept);
        let cut = self.runs(cut);
        self.anchors.push(Anchors {
            path: path.to_vec(),
            kept,
            cut,
        });
    }

    /// Element ids as runs `(actor index, first counter, length)`: text typed in one go has
    /// consecutive counters, so a long section is a handful of runs.
    fn runs(&mut self, ids: &[automerge::ObjId]) -> Vec<(u32, u64, u32)> {
        let mut runs: Vec<(u32, u64, u32)> = Vec::new();
        for id in ids {
            let automerge::ObjId::Id(counter, actor, _) = id else {
                continue;
            };
            let next = self.actors.len();
            let actor = *self.actors.entry(actor.clone()).or_insert(next) as u32;
            match runs.last_mut() {
                Some((a, start, len)) if *a == actor && *start + u64::from(*len) == *counter => *len += 1,
                _ => runs.push((actor, *counter, 1)),
            }
        }
        runs
    }
}

pub(super) fn owned_scalar(value: &ScalarValue) -> ScalarValue {
    match value {
        // A counter's current value becomes the new counter's start.
        ScalarValue::Counter(c) => ScalarValue::counter(i64::from(c)),
        other => other.clone(),
    }
}

/// The object or value at `path` from the root, as the document reads now.
pub(super) fn resolve(doc: &AutoCommit, path: &[Step]) -> Option<(Value<'static>, ObjId)> {
    let mut current: Option<(Value<'static>, ObjId)> = Some((Value::Object(ObjType::Map), ROOT));
    for step in path {
        let (Value::Object(_), obj) = current? else {
            return None;
        };
        let found = match step {
            Step::Key(key) => doc.get(&obj, key.as_str()).ok()?,
            Step::Index(index) => doc.get(&obj, *index).ok()?,
        };
        current = found.map(|(value, id)| (value.to_owned(), id));
    }
    current
}

/// The length in characters of the text at `path`, if there is text there.
pub(super) fn text_len(doc: &AutoCommit, path: &[Step]) -> Option<usize> {
    match resolve(doc, path)? {
        (Value::Object(ObjType::Text), obj) => Some(doc.length(&obj)),
        _ => None,
    }
}
