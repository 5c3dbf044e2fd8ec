//! How deep a push nests values. Each object a change makes sits one level below the object it
//! is made in; an object made before these changes is measured up its parents, at most
//! `MAX_DEPTH` steps. So the check costs the number of operations, however deep the nesting,
//! and never recurses: a hostile chain of 100,000 maps is refused, not followed.

use std::collections::HashMap;

use automerge::legacy::{ObjectId, OpId, OpType};
use automerge::{ActorId, AutoCommit, Change, ReadDoc};

use super::super::MAX_DEPTH;

/// Refuses `changes` (applied to `doc`) if one makes an object more than `MAX_DEPTH` levels
/// below the root, or cannot be read op by op; `Err` is the reason.
pub(super) fn check(doc: &AutoCommit, changes: &[Change]) -> Result<(), String> {
    // Depths of the objects seen so far, by the id of the op that made each (root is 0).
    let mut depths: HashMap<(u64, ActorId), usize> = HashMap::new();
    for change in changes {
        // Expanding a change panics on an action it does not know, which a change that loaded
        // should never hold; a panic here must not take the server's write lock with it.
        let expanded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change.decode()))
            .map_err(|_| format!("change {} does not decode op by op", change.hash()))?;
        let start = expanded.start_op.get();
        for (offset, op) in (0u64..).zip(&expanded.operations) {
            if !matches!(op.action, OpType::Make(_)) {
                continue;
            }
            let parent = match &op.obj {
                ObjectId::Root => 0,
                ObjectId::Id(OpId(counter, actor)) => match depths.get(&(*counter, actor.clone())) {
                    Some(depth) => *depth,
                    None => {
                        let depth = stored_depth(doc, *counter, actor)?;
                        depths.insert((*counter, actor.clone()), depth);
                        depth
                    }
                },
            };
            if parent >= MAX_DEPTH {
                return Err(format!(
                    "change {} nests values more than {MAX_DEPTH} levels deep",
                    change.hash()
                ));
            }
            depths.insert((start + offset, expanded.actor_id.clone()), parent + 1);
        }
    }
    Ok(())
}

/// The depth of an object already in `doc`, counting no further than just past `MAX_DEPTH`.
fn stored_depth(doc: &AutoCommit, counter: u64, actor: &ActorId) -> Result<usize, String> {
    let id = format!("{counter}@{actor}");
    let unknown = |e: automerge::AutomergeError| format!("the changes write into object {id}, which is unknown: {e}");
    let obj = doc.import_obj(&id).map_err(unknown)?;
    Ok(doc.parents(&obj).map_err(unknown)?.take(MAX_DEPTH + 1).count())
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT};

    use super::*;

    /// A document holding a chain of `levels` maps (or lists) below the root, and its changes.
    fn chain(levels: usize, kind: ObjType) -> (AutoCommit, Vec<Change>) {
        let mut doc = AutoCommit::new();
        let mut obj = doc.put_object(ROOT, "deep", kind).unwrap();
        for _ in 1..levels {
            obj = match kind {
                ObjType::List => doc.insert_object(&obj, 0, ObjType::List).unwrap(),
                _ => doc.put_object(&obj, "next", ObjType::Map).unwrap(),
            };
        }
        doc.commit();
        let changes = doc.get_changes(&[]);
        (doc, changes)
    }

    #[test]
    fn the_limit_is_allowed_and_one_more_level_is_refused() {
        for kind in [ObjType::Map, ObjType::List] {
            let (doc, changes) = chain(MAX_DEPTH, kind);
            assert_eq!(check(&doc, &changes), Ok(()), "{kind:?}");
            let (doc, changes) = chain(MAX_DEPTH + 1, kind);
            let refused = check(&doc, &changes).unwrap_err();
            assert!(refused.contains(&format!("more than {MAX_DEPTH} levels")), "{refused}");
        }
    }

    #[test]
    fn objects_made_earlier_are_measured_up_their_parents() {
        let (mut doc, _) = chain(MAX_DEPTH - 1, ObjType::Map);
        let before = doc.get_heads();
        // The deepest object so far, found by walking down.
        let mut obj = doc.get(ROOT, "deep").unwrap().unwrap().1;
        while let Some((_, next)) = doc.get(&obj, "next").unwrap() {
            obj = next;
        }
        doc.put_object(&obj, "next", ObjType::Map).unwrap();
        doc.commit();
        let one_more = doc.get_changes(&before);
        assert_eq!(check(&doc, &one_more), Ok(()));
        let before = doc.get_heads();
        let last = doc.get(&obj, "next").unwrap().unwrap().1;
        doc.put_object(&last, "next", ObjType::Map).unwrap();
        doc.commit();
        let two_more = doc.get_changes(&before);
        assert!(check(&doc, &two_more).is_err());
    }
}
