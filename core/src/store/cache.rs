//! Documents kept loaded between calls. Loading a visit typed as 600 edits costs about 2 ms
//! because Automerge rebuilds every change, so a document being typed into stays in memory.

use std::collections::{HashMap, VecDeque};

use automerge::AutoCommit;

use crate::ids::DocId;

/// Enough for a worker moving between a person, their visits and assessments.
const CAPACITY: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct DocCache {
    docs: HashMap<DocId, AutoCommit>,
    /// Least recently used first.
    order: VecDeque<DocId>,
    /// Changes stored beside each document's snapshot, so the store knows when to compact.
    change_counts: HashMap<DocId, usize>,
}

impl DocCache {
    pub(crate) fn contains(&self, id: &DocId) -> bool {
        self.docs.contains_key(id)
    }

    pub(crate) fn get(&self, id: &DocId) -> Option<&AutoCommit> {
        self.docs.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &DocId) -> Option<&mut AutoCommit> {
        self.touch(id);
        self.docs.get_mut(id)
    }

    pub(crate) fn take(&mut self, id: &DocId) -> Option<AutoCommit> {
        self.order.retain(|d| d != id);
        self.docs.remove(id)
    }

    pub(crate) fn put(&mut self, id: DocId, doc: AutoCommit) {
        self.order.retain(|d| d != &id);
        self.order.push_back(id.clone());
        self.docs.insert(id, doc);
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.docs.remove(&old);
                self.change_counts.remove(&old);
            }
        }
    }

    pub(crate) fn add_changes(&mut self, id: &DocId, n: usize) {
        *self.change_counts.entry(id.clone()).or_default() += n;
    }

    /// Counts only changes written since the document was loaded: a cheap, conservative trigger.
    pub(crate) fn change_count(&self, id: &DocId) -> usize {
        self.change_counts.get(id).copied().unwrap_or(0)
    }

    pub(crate) fn reset_change_count(&mut self, id: &DocId) {
        self.change_counts.remove(id);
    }

    fn touch(&mut self, id: &DocId) {
        if let Some(pos) = self.order.iter().position(|d| d == id)
            && let Some(d) = self.order.remove(pos)
        {
            self.order.push_back(d);
        }
    }
}
