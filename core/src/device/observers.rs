//! Observers the UI registers: told which records changed, and when the sync status changed.
//! Each registration returns a `Subscription` that unregisters when dropped.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::thread;

use super::DeviceStatus;
use crate::ids::DocId;

/// Where a change to records came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOrigin {
    /// Written on this device.
    Local,
    /// Received from the server.
    Sync,
}

/// Records that changed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordChange {
    /// Each changed document once, in no particular order.
    pub ids: Vec<DocId>,
    pub origin: ChangeOrigin,
}

impl RecordChange {
    pub(super) fn new(changed: Vec<(DocId, i64)>, origin: ChangeOrigin) -> Self {
        let ids: BTreeSet<DocId> = changed.into_iter().map(|(id, _)| id).collect();
        Self {
            ids: ids.into_iter().collect(),
            origin,
        }
    }
}

pub(super) type RecordFn = Arc<dyn Fn(&RecordChange) + Send + Sync>;
pub(super) type StatusFn = Arc<dyn Fn(&DeviceStatus) + Send + Sync>;

#[derive(Default)]
struct Lists {
    records: Vec<(u64, RecordFn)>,
    status: Vec<(u64, StatusFn)>,
}

#[derive(Default)]
pub(super) struct Observers {
    next: AtomicU64,
    lists: Arc<Mutex<Lists>>,
    /// Statuses are delivered by a thread of their own, in the order they were read: observers
    /// called from whichever thread changed the status could see "idle" after "syncing" when a
    /// sync had only just begun.
    status_queue: Mutex<Option<mpsc::Sender<DeviceStatus>>>,
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (records, status) = self
            .lists
            .lock()
            .map(|l| (l.records.len(), l.status.len()))
            .unwrap_or_default();
        f.debug_struct("Observers")
            .field("records", &records)
            .field("status", &status)
            .finish()
    }
}

/// Keeps an observer registered; dropping it unregisters the observer.
#[derive(Debug)]
#[must_use = "the observer stops when the subscription is dropped"]
pub struct Subscription {
    lists: Weak<Mutex<Lists>>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(lists) = self.lists.upgrade()
            && let Ok(mut lists) = lists.lock()
        {
            lists.records.retain(|(id, _)| *id != self.id);
            lists.status.retain(|(id, _)| *id != self.id);
        }
    }
}

impl Observers {
    pub(super) fn add_records(&self, f: RecordFn) -> Subscription {
        self.add(|lists, id| lists.records.push((id, f)))
    }

    pub(super) fn add_status(&self, f: StatusFn) -> Subscription {
        if let Ok(mut queue) = self.status_queue.lock()
            && queue.is_none()
        {
            let (sender, receiver) = mpsc::channel::<DeviceStatus>();
            let lists = Arc::clone(&self.lists);
            // Ends when the device (and so the sender) is dropped.
            let started = thread::Builder::new().name("outpost-status".into()).spawn(move || {
                for status in receiver {
                    let observers: Vec<StatusFn> = match lists.lock() {
                        Ok(lists) => lists.status.iter().map(|(_, f)| Arc::clone(f)).collect(),
                        Err(_) => return,
                    };
                    for f in observers {
                        call(|| f(&status));
                    }
                }
            });
            match started {
                Ok(_) => *queue = Some(sender),
                Err(e) => tracing::warn!(error = %e, "the status observer thread could not start"),
            }
        }
        self.add(|lists, id| lists.status.push((id, f)))
    }

    fn add(&self, push: impl FnOnce(&mut Lists, u64)) -> Subscription {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut lists) = self.lists.lock() {
            push(&mut lists, id);
        }
        Subscription {
            lists: Arc::downgrade(&self.lists),
            id,
        }
    }

    pub(super) fn has_status_observers(&self) -> bool {
        self.lists.lock().map(|l| !l.status.is_empty()).unwrap_or(false)
    }

    pub(super) fn records_changed(&self, change: &RecordChange) {
        let observers: Vec<RecordFn> = match self.lists.lock() {
            Ok(lists) => lists.records.iter().map(|(_, f)| Arc::clone(f)).collect(),
            Err(_) => return,
        };
        for f in observers {
            call(|| f(change));
        }
    }

    /// Queues a status for the observers; the caller keeps statuses in the order it read them.
    pub(super) fn status_changed(&self, status: DeviceStatus) {
        if let Ok(queue) = self.status_queue.lock()
            && let Some(sender) = queue.as_ref()
        {
            let _ = sender.send(status);
        }
    }
}

/// Calls one observer outside the lock (so it may unsubscribe), and contains its failure: an
/// app's callback that throws must not stop a sync or lose an edit that is already saved.
fn call(f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::warn!("an observer failed; it stays registered");
    }
}
