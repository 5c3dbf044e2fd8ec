//! Finding visit sections two workers typed into at the same time, from the document's history.
//!
//! Two changes are concurrent when neither is in the other's causal past. Each change's past is
//! kept as a vector clock (for every actor, the highest sequence number it had seen), built from
//! its dependencies as the history is walked in causal order.

use std::collections::HashMap;

use automerge::legacy::{ObjectId, OpType};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjId};

use crate::error::{Error, Result};
use crate::ids::{Author, DocId};
use crate::model::visit::{self, Section};
use crate::sync::actor_author;

/// A visit section that two or more workers edited concurrently.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcurrentEdit {
    pub section: Section,
    /// Everyone whose edit was concurrent with another worker's, sorted by worker then device:
    /// always at least two workers.
    pub authors: Vec<Author>,
}

type Clock = HashMap<ActorId, u64>;

pub(super) fn edits(doc: &mut AutoCommit, id: &DocId) -> Result<Vec<ConcurrentEdit>> {
    let texts = Section::ALL
        .iter()
        .map(|s| Ok((*s, visit::section_text(doc, *s)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut clocks: HashMap<ChangeHash, Clock> = HashMap::new();
    let mut authors: HashMap<ActorId, Option<Author>> = HashMap::new();
    // Per section, each actor's latest change to it so far (its sequence number). An actor's
    // changes form a chain, so if its latest is in a change's past, all its earlier ones are.
    let mut latest: HashMap<Section, HashMap<ActorId, u64>> = HashMap::new();
    let mut found: HashMap<Section, Vec<Author>> = HashMap::new();

    for change in doc.get_changes(&[]) {
        let mut clock = Clock::new();
        for dep in change.deps() {
            let past = clocks.get(dep).ok_or_else(|| Error::CorruptDocument {
                id: id.clone(),
                reason: format!("change {} is listed before its dependency {dep}", change.hash()),
            })?;
            for (actor, seq) in past {
                let seen = clock.entry(actor.clone()).or_insert(0);
                *seen = (*seen).max(*seq);
            }
        }
        let actor = change.actor_id().clone();
        clock.insert(actor.clone(), change.seq());
        let author = authors
            .entry(actor.clone())
            .or_insert_with(|| actor_author(doc, &actor))
            .clone();

        // Changes without an Outpost author are not anyone's typing to report.
        if let Some(author) = author {
            for section in sections_typed(&change.decode().operations, &texts) {
                let earlier = latest.entry(section).or_default();
                for (other, seq) in earlier.iter() {
                    let Some(Some(other_author)) = authors.get(other) else {
                        continue;
                    };
                    // One worker on two devices, or through an actor derived for an edit made at
                    // older heads, is not two people.
                    let seen_it = clock.get(other).is_some_and(|s| s >= seq);
                    if other_author.worker != author.worker && !seen_it {
                        found
                            .entry(section)
                            .or_default()
                            .extend([author.clone(), other_author.clone()]);
                    }
                }
                earlier.insert(actor.clone(), change.seq());
            }
        }
        clocks.insert(change.hash(), clock);
    }

    Ok(Section::ALL
        .iter()
        .filter_map(|section| {
            let mut authors = found.remove(section)?;
            authors.sort_by(|a, b| (&a.worker, &a.device).cmp(&(&b.worker, &b.device)));
            authors.dedup();
            Some(ConcurrentEdit {
                section: *section,
                authors,
            })
        })
        .collect())
}

/// The sections whose text a change inserted into or deleted from, in `Section::ALL` order.
fn sections_typed(ops: &[automerge::legacy::Op], texts: &[(Section, ObjId)]) -> Vec<Section> {
    texts
        .iter()
        .filter(|(_, text)| {
            ops.iter()
                .any(|op| (op.insert || matches!(op.action, OpType::Delete)) && is_object(&op.obj, text))
        })
        .map(|(section, _)| *section)
        .collect()
}

fn is_object(obj: &ObjectId, id: &ObjId) -> bool {
    match (obj, id) {
        (ObjectId::Id(op), ObjId::Id(counter, actor, _)) => op.0 == *counter && op.1 == *actor,
        _ => false,
    }
}
