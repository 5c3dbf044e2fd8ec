//! Carrying a device's own edits of a redacted document's old version onto the new one. The
//! edits are found by comparing the old document before and after them; lists and text are
//! matched element by element through the redaction's anchors, so an edit lands where it was
//! made even though the new document's history is entirely new.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};
use serde::{Deserialize, Serialize};

use super::rebuild::{Copier, owned_scalar};
use super::{RECREATED_KEY, Redaction, Step};
use crate::error::{Error, Result};
use crate::model::authorship::text_elements;

/// No document holds more list and text elements than this (a document is at most 8 MiB).
const MAX_ANCHORED: u64 = 8 * 1024 * 1024;

/// Text a device typed offline inside a passage that was removed meanwhile: not applied, kept
/// for a lead to decide. `at` is where it would go in the new text, in characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub path: Vec<Step>,
    pub at: usize,
    pub text: String,
}

/// Carries the edits `old` holds beyond what `redaction` covered onto `new`, made at the new
/// document's re-created heads and merged with whatever it holds since, as one change stamped
/// `at` (unix seconds). Returns the change made, if any, and the edits held back.
pub fn carry(
    old: &mut AutoCommit,
    redaction: &Redaction,
    new: &mut AutoCommit,
    at: i64,
) -> Result<(Option<ChangeHash>, Vec<Held>)> {
    let invalid = |reason: &str| Error::invalid("redaction", reason);
    let clock: HashMap<Vec<u8>, u64> = redaction.clock.iter().map(|(a, s)| (a.to_vec(), *s)).collect();
    let changes = old.get_changes(&[]);
    let covered: Vec<&automerge::Change> = changes
        .iter()
        .filter(|c| clock.get(c.actor_id().to_bytes()).is_some_and(|s| c.seq() <= *s))
        .collect();
    if covered.len() == changes.len() {
        return Ok((None, Vec::new()));
    }
    // The device's document as the redaction saw it: the heads of the changes it covered.
    let depended: HashSet<ChangeHash> = covered.iter().flat_map(|c| c.deps().iter().copied()).collect();
    let before: Vec<ChangeHash> = covered
        .iter()
        .map(|c| c.hash())
        .filter(|h| !depended.contains(h))
        .collect();
    let root = redaction
        .root
        .iter()
        .map(|h| <[u8; 32]>::try_from(h.as_slice()).map(ChangeHash))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| invalid("a re-created head is not 32 bytes"))?;
    if root.iter().any(|h| new.get_change_by_hash(h).is_none()) {
        return Err(invalid("the new document lacks its re-created heads"));
    }
    let anchors = AnchorIndex::new(redaction)?;
    new.isolate(&root);
    let mut walker = Walker {
        old,
        before: &before,
        anchors: &anchors,
        held: Vec::new(),
    };
    let walked = walker.map(&ROOT, new, &ROOT, &mut Vec::new());
    let held = walker.held;
    let hash = match walked {
        Ok(()) => new.commit_with(CommitOptions::default().with_time(at)),
        Err(e) => {
            new.rollback();
            new.integrate();
            return Err(e);
        }
    };
    new.integrate();
    Ok((hash, held))
}

/// Each anchored sequence's old elements: where each kept one sits in the new sequence, and
/// which were cut.
struct AnchorIndex {
    by_path: HashMap<Vec<Step>, Anchored>,
}

/// Where each kept old element sits in the new sequence, and the old elements cut.
type Anchored = (HashMap<Element, usize>, HashSet<Element>);

/// An old element: the actor and counter of the operation that inserted it.
type Element = (ActorId, u64);

impl AnchorIndex {
    fn new(redaction: &Redaction) -> Result<Self> {
        let actors: Vec<ActorId> = redaction.actors.iter().map(|a| ActorId::from(a.as_slice())).collect();
        // The anchors of one document name at most its elements; a redaction naming more (a
        // faulty or hostile server) is refused before anything is allocated for it.
        let total: u64 = redaction
            .anchors
            .iter()
            .flat_map(|a| a.kept.iter().chain(&a.cut))
            .map(|(_, _, len)| u64::from(*len))
            .sum();
        if total > MAX_ANCHORED {
            return Err(Error::invalid(
                "redaction",
                format!("it names {total} elements, more than any document holds"),
            ));
        }
        let expand = |runs: &[(u32, u64, u32)]| -> Result<Vec<(ActorId, u64)>> {
            let mut ids = Vec::new();
            for (actor, start, len) in runs {
                let actor = actors
                    .get(*actor as usize)
                    .ok_or_else(|| Error::invalid("redaction", "an anchor names an actor it does not list"))?;
                ids.extend((0..u64::from(*len)).map(|i| (actor.clone(), start + i)));
            }
            Ok(ids)
        };
        let mut by_path = HashMap::new();
        for anchors in &redaction.anchors {
            let kept = expand(&anchors.kept)?
                .into_iter()
                .enumerate()
                .map(|(i, id)| (id, i))
                .collect();
            let cut = expand(&anchors.cut)?.into_iter().collect();
            by_path.insert(anchors.path.clone(), (kept, cut));
        }
        Ok(Self { by_path })
    }
}

fn element(id: &ObjId) -> Option<Element> {
    match id {
        ObjId::Id(counter, actor, _) => Some((actor.clone(), *counter)),
        ObjId::Root => None,
    }
}

struct Walker<'a> {
    old: &'a AutoCommit,
    before: &'a [ChangeHash],
    anchors: &'a AnchorIndex,
    held: Vec<Held>,
}

/// One edit to a sequence, in new positions.
enum SeqOp {
    Delete(usize),
    /// Old elements inserted by the device, with their positions in the old sequence now.
    Insert(usize, Vec<(ObjId, usize)>),
}

impl Walker<'_> {
    fn object(
        &mut self,
        old_obj: &ObjId,
        kind: ObjType,
        new: &mut AutoCommit,
        new_obj: &ObjId,
        path: &mut Vec<Step>,
    ) -> Result<()> {
        match kind {
            ObjType::Map | ObjType::Table => self.map(old_obj, new, new_obj, path),
            ObjType::List | ObjType::Text => self.sequence(old_obj, kind, new, new_obj, path),
        }
    }

    fn map(&mut self, old_obj: &ObjId, new: &mut AutoCommit, new_obj: &ObjId, path: &mut Vec<Step>) -> Result<()> {
        let old = self.old;
        let keys: BTreeSet<String> = old.keys_at(old_obj, self.before).chain(old.keys(old_obj)).collect();
        for key in keys {
            if path.is_empty() && key == RECREATED_KEY {
                continue;
            }
            let was = old.get_at(old_obj, key.as_str(), self.before)?;
            let now = old.get(old_obj, key.as_str())?;
            path.push(Step::Key(key.clone()));
            match (was, now) {
                (None, None) => {}
                (Some(_), None) => {
                    if new.get(new_obj, key.as_str())?.is_some() {
                        new.delete(new_obj, key.as_str())?;
                    }
                }
                (Some((Value::Object(_), was_id)), Some((Value::Object(kind), now_id))) if was_id == now_id => {
                    if let Some((Value::Object(_), child)) = new.get(new_obj, key.as_str())? {
                        self.object(&now_id, kind, new, &child, path)?;
                    }
                }
                (was, Some((Value::Scalar(value), _))) => {
                    let unchanged = matches!(&was, Some((Value::Scalar(w), _)) if *w == value);
                    if !unchanged {
                        new.put(new_obj, key.as_str(), owned_scalar(&value))?;
                    }
                }
                (_, Some((Value::Object(kind), now_id))) => {
                    let child = new.put_object(new_obj, key.as_str(), kind)?;
                    Copier::plain(old).object(&now_id, kind, new, &child, path)?;
                }
            }
            path.pop();
        }
        Ok(())
    }

    fn sequence(
        &mut self,
        old_obj: &ObjId,
        kind: ObjType,
        new: &mut AutoCommit,
        new_obj: &ObjId,
        path: &mut Vec<Step>,
    ) -> Result<()> {
        let Some((kept, cut)) = self.anchors.by_path.get(path.as_slice()) else {
            // Not in the document the redaction saw (made since by this device): copied whole
            // with its parent, nothing to carry.
            return Ok(());
        };
        let old = self.old;
        let (was, now, chars): (Vec<ObjId>, Vec<ObjId>, Vec<Option<String>>) = if kind == ObjType::Text {
            let was = text_elements(old, old_obj, Some(self.before))
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let (now, chars) = text_elements(old, old_obj, None)
                .into_iter()
                .map(|(id, ch)| (id, Some(ch)))
                .unzip();
            (was, now, chars)
        } else {
            let was = old.list_range_at(old_obj, .., self.before).map(|i| i.id()).collect();
            let now: Vec<ObjId> = old.list_range(old_obj, ..).map(|i| i.id()).collect();
            let chars = vec![None; now.len()];
            (was, now, chars)
        };
        let was_set: HashSet<&ObjId> = was.iter().collect();
        let now_set: HashSet<&ObjId> = now.iter().collect();
        let new_position = |id: &ObjId| element(id).and_then(|e| kept.get(&e).copied());
        let is_cut = |id: &ObjId| element(id).is_some_and(|e| cut.contains(&e));

        let mut ops = Vec::new();
        for id in was.iter().filter(|id| !now_set.contains(id)) {
            // Deleting what was cut, or what a colleague deleted meanwhile, changes nothing.
            if let Some(position) = new_position(id) {
                ops.push(SeqOp::Delete(position));
            }
        }
        // Runs of inserted elements: the new position they go to, and whether the element
        // before them was cut (with the one after cut too, they were typed inside a passage).
        let mut position = 0;
        let mut after_cut = false;
        let mut run: Option<Run> = None;
        for (index, id) in now.iter().enumerate() {
            if !was_set.contains(id) {
                run.get_or_insert(Run {
                    at: position,
                    after_cut,
                    items: Vec::new(),
                })
                .items
                .push((id.clone(), index));
                continue;
            }
            let here_cut = is_cut(id);
            if let Some(run) = run.take() {
                let inside = run.after_cut && here_cut;
                self.finish_run(path, run, inside, &chars, &mut ops);
            }
            if let Some(p) = new_position(id) {
                position = p + 1;
                if let (ObjType::List, Some((Value::Object(child_kind), _))) = (kind, old.get(old_obj, index)?)
                    && let Some((Value::Object(_), new_child)) = new.get(new_obj, p)?
                {
                    path.push(Step::Index(p));
                    self.object(id, child_kind, new, &new_child, path)?;
                    path.pop();
                }
            }
            after_cut = here_cut;
        }
        if let Some(run) = run.take() {
            self.finish_run(path, run, false, &chars, &mut ops);
        }
        self.apply(old_obj, &chars, new, new_obj, ops, path)
    }

    /// A run of inserted elements becomes an insertion, or, typed inside a removed passage, a
    /// held edit.
    fn finish_run(
        &mut self,
        path: &[Step],
        run: Run,
        inside_cut: bool,
        chars: &[Option<String>],
        ops: &mut Vec<SeqOp>,
    ) {
        if inside_cut {
            let text = run.items.iter().filter_map(|(_, i)| chars[*i].as_deref()).collect();
            self.held.push(Held {
                path: path.to_vec(),
                at: run.at,
                text,
            });
        } else {
            ops.push(SeqOp::Insert(run.at, run.items));
        }
    }

    /// Applies a sequence's edits from the end backwards, so each position still means what it
    /// meant in the re-created sequence; at one position a deletion goes before an insertion.
    fn apply(
        &self,
        old_obj: &ObjId,
        chars: &[Option<String>],
        new: &mut AutoCommit,
        new_obj: &ObjId,
        ops: Vec<SeqOp>,
        path: &mut Vec<Step>,
    ) -> Result<()> {
        let mut ordered: Vec<(usize, SeqOp)> = ops.into_iter().enumerate().collect();
        ordered.sort_by_key(|(seq, op)| match op {
            SeqOp::Delete(at) => (Reverse(*at), 0, Reverse(*seq)),
            SeqOp::Insert(at, _) => (Reverse(*at), 1, Reverse(*seq)),
        });
        let old = self.old;
        for (_, op) in ordered {
            match op {
                SeqOp::Delete(at) => new.delete(new_obj, at)?,
                SeqOp::Insert(at, items) if items.iter().all(|(_, i)| chars[*i].is_some()) => {
                    let text: String = items.iter().filter_map(|(_, i)| chars[*i].as_deref()).collect();
                    new.splice_text(new_obj, at, 0, &text)?;
                }
                SeqOp::Insert(at, items) => {
                    for (offset, (_, index)) in items.into_iter().enumerate() {
                        let Some((value, id)) = old.get(old_obj, index)? else {
                            continue;
                        };
                        match value {
                            Value::Scalar(s) => new.insert(new_obj, at + offset, owned_scalar(&s))?,
                            Value::Object(kind) => {
                                let child = new.insert_object(new_obj, at + offset, kind)?;
                                path.push(Step::Index(at + offset));
                                Copier::plain(old).object(&id, kind, new, &child, path)?;
                                path.pop();
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Elements inserted together, going to one new position.
struct Run {
    at: usize,
    after_cut: bool,
    /// Each element's id and index in the old sequence now.
    items: Vec<(ObjId, usize)>,
}
