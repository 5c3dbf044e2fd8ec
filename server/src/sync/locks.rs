//! Which merges run at once in one process. A merge reads documents, merges into them and
//! writes them back in one storage transaction that fails as stale (`Error::Stale`) if another
//! writer got there first, so these locks guard no data: they keep one process from racing
//! itself into merging again. Syncs that touch different documents merge side by side, which
//! matters where storage calls wait on a database server; two that touch one document take
//! turns. What rewrites records wholesale (a redaction, an erasure) runs alone.
//!
//! A panic in one request, a hostile one say, must not shut every later sync out, so a poisoned
//! lock is taken as it is.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Documents map onto this many locks; two documents that share one take turns needlessly, and
/// rarely.
const STRIPES: usize = 64;

pub(super) struct MergeLocks {
    /// Shared by merges, exclusive for wholesale rewrites.
    all: RwLock<()>,
    stripes: Box<[Mutex<()>]>,
}

/// Held while a merge runs. Its stripes are released before its share of `all`.
pub(super) struct MergeGuard<'a> {
    _stripes: Vec<MutexGuard<'a, ()>>,
    _all: RwLockReadGuard<'a, ()>,
}

impl MergeLocks {
    pub(super) fn new() -> Self {
        Self {
            all: RwLock::new(()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits until no other merge of this process touches any of `docs`, taking their stripes
    /// in ascending order so two merges never wait on each other.
    pub(super) fn docs<'a, 'd>(&'a self, docs: impl IntoIterator<Item = &'d str>) -> MergeGuard<'a> {
        let all = self.all.read().unwrap_or_else(PoisonError::into_inner);
        let mut stripes: Vec<usize> = docs.into_iter().map(stripe).collect();
        stripes.sort_unstable();
        stripes.dedup();
        MergeGuard {
            _stripes: stripes
                .into_iter()
                .map(|i| self.stripes[i].lock().unwrap_or_else(PoisonError::into_inner))
                .collect(),
            _all: all,
        }
    }

    /// Waits until no merge runs, and keeps new ones waiting until dropped.
    pub(super) fn everything(&self) -> RwLockWriteGuard<'_, ()> {
        self.all.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn stripe(doc: &str) -> usize {
    let mut hasher = DefaultHasher::new();
    doc.hash(&mut hasher);
    (hasher.finish() % STRIPES as u64) as usize
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn merges_of_other_documents_run_side_by_side_and_of_one_document_in_turn() {
        let locks = Arc::new(MergeLocks::new());
        let held = locks.docs(["visit-a", "visit-b"]);
        // A document on another stripe is not held up.
        let other = (0..)
            .map(|i| format!("visit-{i}"))
            .find(|d| stripe(d) != stripe("visit-a") && stripe(d) != stripe("visit-b"));
        let other = other.expect("some id maps to another stripe");
        drop(locks.docs([other.as_str()]));

        let entered = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (locks, entered) = (locks.clone(), entered.clone());
            std::thread::spawn(move || {
                let _guard = locks.docs(["visit-b", other.as_str()]);
                entered.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !entered.load(Ordering::SeqCst),
            "a second merge of visit-b ran beside the first"
        );
        drop(held);
        waiter.join().unwrap();
        assert!(entered.load(Ordering::SeqCst));
    }

    #[test]
    fn a_wholesale_rewrite_waits_for_merges_and_holds_new_ones_back() {
        let locks = Arc::new(MergeLocks::new());
        let merge = locks.docs(["visit-a"]);
        let started = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let rewrite = {
            let (locks, started, finished) = (locks.clone(), started.clone(), finished.clone());
            std::thread::spawn(move || {
                let _all = locks.everything();
                started.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
                finished.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!started.load(Ordering::SeqCst), "the rewrite ran beside a merge");
        drop(merge);
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let _late = locks.docs(["visit-z"]);
        assert!(finished.load(Ordering::SeqCst), "a merge started while the rewrite ran");
        rewrite.join().unwrap();
    }
}
