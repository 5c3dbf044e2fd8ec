//! The façade an app drives: one device's store, its enrolment, its link to the server, the
//! observers the UI registers, and automatic sync. Every call blocks the calling thread (on disk,
//! and for `enrol` and `sync_now` on the network), so an app calls it off its main thread; the
//! bindings are a thin layer over this type.

mod auto_sync;
mod lifecycle;
mod observers;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ids::{Author, DeviceId, DocId, TeamId, WorkerId};
use crate::model::review::{ReviewAction, ReviewState};
use crate::net::{Client, ClientConfig, SyncOptions};
use crate::store::{Enrolment, Server, Store, StoreKey, SyncStatus, rekey_file};
use crate::sync::Progress;
use auto_sync::AutoSync;
pub use auto_sync::AutoSyncOptions;
pub use lifecycle::{Clock, SystemClock};
use observers::Observers;
pub use observers::{ChangeOrigin, RecordChange, Subscription};

/// How much received-document verification one sync does after the exchange, per batch.
const VERIFY_BATCH: usize = 256;

/// Where this device stands, for a status line in the UI.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceStatus {
    pub enrolled: bool,
    pub sync: SyncStatus,
    /// A sync is running now.
    pub syncing: bool,
    pub auto_sync: bool,
    /// What the app last said about the network (assumed up until it says otherwise).
    pub network_available: bool,
    /// Why records are locked now (the offline lease ran out, or the clock was set back);
    /// a sync that succeeds unlocks them.
    pub locked: Option<String>,
    /// The server asked this device to retire: it takes no new edits, and wipes itself once
    /// the server holds everything on it.
    pub retiring: bool,
    /// The device was revoked or retired and its store wiped, with why; it is not enrolled.
    pub wiped: Option<String>,
}

/// What one `sync_now` achieved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncOutcome {
    /// False when the deadline stopped the sync: what was exchanged is kept, and the next sync
    /// carries on from there.
    pub complete: bool,
    pub progress: Progress,
    /// Received documents checked after the exchange.
    pub verified: usize,
}

/// One enrolled (or not yet enrolled) device. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Device {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// The store's key (none: the store is not encrypted); `rekey` replaces it.
    key: Mutex<Option<StoreKey>>,
    runtime: tokio::runtime::Runtime,
    link: RwLock<Option<Link>>,
    observers: Observers,
    auto: Mutex<Option<AutoSync>>,
    network_available: AtomicBool,
    syncing: AtomicBool,
    status_order: Mutex<()>,
    /// What leases are checked against.
    clock: RwLock<Arc<dyn Clock>>,
    /// Why the store was wiped, once it has been.
    wiped: Mutex<Option<String>>,
}

/// What enrolment gives: a store that writes as the enrolled worker, and a client for the server.
#[derive(Debug, Clone)]
struct Link {
    enrolment: Enrolment,
    store: Arc<Mutex<Store>>,
    /// One client for the device's life, so reconnects resume TLS sessions.
    client: Arc<Mutex<Client>>,
}

impl Device {
    /// Opens (creating or upgrading) the device's store at `path`.
    ///
    /// `key` is the store's raw 256-bit key (`KEY_LEN` bytes, from the platform keystore): the
    /// store is encrypted under it, a store written before encryption is encrypted now, and a
    /// key that does not open the store is `Error::WrongKey`. Without a key the store is plain.
    pub fn open(path: impl AsRef<Path>, key: Option<&[u8]>) -> Result<Self> {
        let key = key.map(StoreKey::new).transpose()?;
        let path = path.as_ref().to_path_buf();
        let link = match Enrolment::load(&path, key.as_ref())? {
            Some(enrolment) => Some(Link::open(&path, enrolment, key.as_ref())?),
            None => None,
        };
        // Driven by whichever thread calls `enrol` or `sync_now`; no threads of its own.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Network(format!("could not start the network runtime: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                key: Mutex::new(key),
                runtime,
                link: RwLock::new(link),
                observers: Observers::default(),
                auto: Mutex::new(None),
                network_available: AtomicBool::new(true),
                syncing: AtomicBool::new(false),
                status_order: Mutex::new(()),
                clock: RwLock::new(Arc::new(SystemClock)),
                wiped: Mutex::new(None),
            }),
        })
    }

    /// The enrolment, if this device has one.
    pub fn enrolment(&self) -> Option<Enrolment> {
        self.inner.link_now().map(|link| link.enrolment)
    }

    /// Exchanges a one-time enrolment code for this device's identity and credential, and keeps
    /// them in the store. Blocks on the network.
    pub fn enrol(&self, server: Server, code: &str, label: &str) -> Result<Enrolment> {
        if let Some(existing) = self.enrolment() {
            return Err(Error::invalid(
                "enrolment code",
                format!("this device is already enrolled as {}", existing.author),
            ));
        }
        let mut client = Client::new(client_config(&server, None))?;
        let answer = self.inner.runtime.block_on(client.enrol(code, label))?;
        let enrolment = Enrolment {
            server,
            author: Author::new(WorkerId::new(answer.worker)?, DeviceId::new(answer.device)?),
            team: TeamId::new(answer.team)?,
            lead: answer.role.as_deref() == Some("lead"),
            credential: answer.credential,
            enrolled_at: chrono::Utc::now().to_rfc3339(),
        };
        // Held until the device holds the open store, so a rekey cannot come in between.
        let key = lock(&self.inner.key)?;
        enrolment.save(&self.inner.path, key.as_ref())?;
        let link = Link::open(&self.inner.path, enrolment.clone(), key.as_ref())?;
        let server_key = answer.server_key.as_ref().map(|k| k.as_slice());
        self.inner.adopt_enrolment(&link, server_key, answer.lease.as_ref())?;
        *self.inner.link.write().map_err(|_| poisoned())? = Some(link);
        drop(key);
        *lock(&self.inner.wiped)? = None;
        self.inner.notify_status();
        Ok(enrolment)
    }

    /// Re-encrypts the store under `new_key` (32 bytes); from then on only `new_key` opens it.
    /// The store must have been opened with a key. A crash part-way leaves the store under one
    /// key or the other, so the app keeps both until this returns. Blocks on disk while every
    /// page is rewritten.
    pub fn rekey(&self, new_key: &[u8]) -> Result<()> {
        let new_key = StoreKey::new(new_key)?;
        let mut key = lock(&self.inner.key)?;
        let Some(old_key) = key.as_ref() else {
            return Err(Error::invalid(
                "key",
                "this store is not encrypted; opening it with a key encrypts it",
            ));
        };
        match self.inner.link_now() {
            Some(link) => lock(&link.store)?.rekey(&new_key)?,
            None => rekey_file(&self.inner.path, old_key, &new_key)?,
        }
        *key = Some(new_key);
        Ok(())
    }

    /// Runs `f` on the store (reads and queries); `Error::Locked` while the store is locked.
    /// Blocks on disk.
    pub fn read<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let link = self.inner.link()?;
        let mut store = lock(&link.store)?;
        self.inner.check_readable(&mut store)?;
        f(&mut store)
    }

    /// Runs `f` on the store to change it (`Error::Locked` while the store is locked or the
    /// device is being retired); when it returns the change is on disk. Observers
    /// hear which records changed, and automatic sync is told there is something to send.
    pub fn write<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let link = self.inner.link()?;
        let (value, changed) = {
            let mut store = lock(&link.store)?;
            self.inner.check_writable(&mut store)?;
            let before = store.revision()?;
            let value = f(&mut store)?;
            (value, store.changed_since(before)?)
        };
        if !changed.is_empty() {
            self.inner
                .observers
                .records_changed(&RecordChange::new(changed, ChangeOrigin::Local));
            self.inner.notify_status();
            if let Some(auto) = lock(&self.inner.auto)?.as_ref() {
                auto.edited();
            }
        }
        Ok(value)
    }

    /// Takes a review step on a visit. A worker submits (again, after a return); approving and
    /// returning are a team lead's, and the server would refuse them from a worker's device,
    /// leaving the record unsendable, so they are refused here first. Blocks on disk.
    pub fn review_visit(&self, visit: &DocId, action: ReviewAction, comment: Option<&str>) -> Result<ReviewState> {
        let link = self.inner.link()?;
        if action != ReviewAction::Submit && !link.enrolment.lead {
            return Err(Error::Unauthenticated(format!(
                "only a team lead can {} a visit; {} is not one",
                action.code(),
                link.enrolment.author.worker
            )));
        }
        self.write(|s| s.review_visit(visit, action, comment))
    }

    /// Syncs with the server now, stopping cleanly after `deadline` (an iOS background task has
    /// about 30 s): what was exchanged is kept and the next sync resumes. Then checks received
    /// documents while time remains. Blocks on the network and disk.
    pub fn sync_now(&self, deadline: Duration) -> Result<SyncOutcome> {
        self.inner.sync_now(deadline)
    }

    pub fn status(&self) -> Result<DeviceStatus> {
        self.inner.status()
    }

    /// Documents with changes the server has not acknowledged yet. Blocks on disk.
    pub fn pending(&self) -> Result<Vec<DocId>> {
        let link = self.inner.link()?;
        let mut store = lock(&link.store)?;
        self.inner.check_readable(&mut store)?;
        let pending = store.pending_docs(&peer(&link.enrolment.server))?;
        Ok(pending.into_iter().map(|(id, _)| id).collect())
    }

    /// Calls `f` after each change to records, local or received; stops when the returned
    /// subscription is dropped. `f` runs on the thread that made the change.
    pub fn observe_records(&self, f: impl Fn(&RecordChange) + Send + Sync + 'static) -> Subscription {
        self.inner.observers.add_records(Arc::new(f))
    }

    /// Calls `f` whenever the sync status changes (a sync starts or ends, an edit waits to be
    /// sent), in order, on a thread of its own; stops when the returned subscription is dropped.
    pub fn observe_status(&self, f: impl Fn(&DeviceStatus) + Send + Sync + 'static) -> Subscription {
        self.inner.observers.add_status(Arc::new(f))
    }

    /// Starts syncing in the background: soon after each edit, every `options.every`, and as
    /// soon as the network comes back. Replaces any automatic sync already running.
    pub fn start_auto_sync(&self, options: AutoSyncOptions) -> Result<()> {
        self.inner.link()?;
        let auto = AutoSync::start(Arc::downgrade(&self.inner), options)?;
        let old = lock(&self.inner.auto)?.replace(auto);
        drop(old);
        self.inner.notify_status();
        Ok(())
    }

    /// Stops automatic sync, waiting for a sync in progress to reach its next safe point.
    pub fn stop_auto_sync(&self) -> Result<()> {
        let old = lock(&self.inner.auto)?.take();
        drop(old);
        self.inner.notify_status();
        Ok(())
    }

    /// Tells the device whether the platform reports a usable network. Automatic sync waits
    /// while it is down and syncs as soon as it comes back.
    pub fn set_network_available(&self, available: bool) -> Result<()> {
        let was = self.inner.network_available.swap(available, Ordering::SeqCst);
        if available
            && !was
            && let Some(auto) = lock(&self.inner.auto)?.as_ref()
        {
            auto.wake_now();
        }
        self.inner.notify_status();
        Ok(())
    }
}

impl Inner {
    fn link_now(&self) -> Option<Link> {
        self.link.read().ok().and_then(|link| link.clone())
    }

    fn link(&self) -> Result<Link> {
        self.link_now().ok_or_else(|| match self.wiped() {
            Some(reason) => Error::Unauthenticated(format!("{reason}; enrol it again to use it")),
            None => Error::Unauthenticated("this device is not enrolled yet".into()),
        })
    }

    fn status(&self) -> Result<DeviceStatus> {
        let link = self.link_now();
        let (sync, standing) = match &link {
            Some(link) => {
                let store = lock(&link.store)?;
                (store.sync_status(&peer(&link.enrolment.server))?, store.standing()?)
            }
            None => Default::default(),
        };
        Ok(DeviceStatus {
            enrolled: link.is_some(),
            sync,
            syncing: self.syncing.load(Ordering::SeqCst),
            auto_sync: self.auto.lock().map(|a| a.is_some()).unwrap_or(false),
            network_available: self.network_available.load(Ordering::SeqCst),
            locked: standing.lock_reason(self.now()),
            retiring: standing.retiring,
            wiped: self.wiped(),
        })
    }

    fn notify_status(&self) {
        if !self.observers.has_status_observers() {
            return;
        }
        // Read and queued under one lock, so observers get statuses in the order they were true.
        let _order = self.status_order.lock();
        match self.status() {
            Ok(status) => self.observers.status_changed(status),
            Err(e) => tracing::warn!(error = %e, "sync status could not be read for observers"),
        }
    }

    fn sync_now(&self, deadline: Duration) -> Result<SyncOutcome> {
        let link = self.link()?;
        let until = tokio::time::Instant::now() + deadline;
        // One sync at a time: a second caller waits, then finds little left to do.
        let mut client = lock(&link.client)?;
        let before = lock(&link.store)?.revision()?;
        self.syncing.store(true, Ordering::SeqCst);
        self.notify_status();

        let progress = Arc::new(Mutex::new(Progress::default()));
        let seen = Arc::clone(&progress);
        let options = SyncOptions {
            deadline: Some(until),
            on_progress: Some(Arc::new(move |p: &Progress| {
                if let Ok(mut seen) = seen.lock() {
                    *seen = p.clone();
                }
            })),
            ..SyncOptions::default()
        };
        let result = self.runtime.block_on(client.sync(Arc::clone(&link.store), options));
        drop(client);
        let verified = match &result {
            Ok(report) => {
                keep_refusals(&link, &report.progress);
                verify_until(&link.store, until)
            }
            Err(_) => Ok(0),
        };

        let changed = lock(&link.store).and_then(|s| s.changed_since(before));
        self.syncing.store(false, Ordering::SeqCst);
        match changed {
            Ok(changed) if !changed.is_empty() => self
                .observers
                .records_changed(&RecordChange::new(changed, ChangeOrigin::Sync)),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "changed records could not be listed for observers"),
        }
        self.notify_status();
        // A revoked device, or a retired one that has sent everything, wipes itself here.
        self.settle(&link, &result)?;

        let (complete, progress) = match result {
            Ok(report) => (true, report.progress),
            Err(Error::DeadlineReached) => (false, lock(&progress)?.clone()),
            Err(e) => return Err(e),
        };
        Ok(SyncOutcome {
            complete,
            progress,
            verified: verified?,
        })
    }
}

impl Link {
    fn open(path: &Path, enrolment: Enrolment, key: Option<&StoreKey>) -> Result<Self> {
        let store = Store::open_with_key(path, enrolment.author.clone(), key)?;
        let client = Client::new(client_config(&enrolment.server, Some(enrolment.credential.clone())))?;
        Ok(Self {
            enrolment,
            store: Arc::new(Mutex::new(store)),
            client: Arc::new(Mutex::new(client)),
        })
    }
}

/// A sync that completed but had records refused still leaves them unsent: the status says so,
/// or the worker would believe everything reached the server.
fn keep_refusals(link: &Link, progress: &Progress) {
    let Some((id, why)) = progress.refused.first() else {
        return;
    };
    let reason = format!(
        "the server refused {} record(s), which stay on this device (first: {id}: {why})",
        progress.refused.len()
    );
    let recorded =
        lock(&link.store).and_then(|mut s| s.record_sync_outcome(&peer(&link.enrolment.server), Err(&reason)));
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "refused records could not be recorded in the sync status");
    }
}

/// Checks received documents in batches until none wait or the deadline passes.
fn verify_until(store: &Mutex<Store>, until: tokio::time::Instant) -> Result<usize> {
    let mut verified = 0;
    while tokio::time::Instant::now() < until {
        let batch = lock(store)?.verify_received(VERIFY_BATCH)?;
        verified += batch.verified;
        if batch.remaining == 0 {
            break;
        }
    }
    Ok(verified)
}

fn client_config(server: &Server, credential: Option<String>) -> ClientConfig {
    let mut config = ClientConfig::new(server.host.clone(), server.port);
    config.ca_pem = server.ca_pem.clone();
    config.pins = server.pins.clone();
    config.credential = credential;
    config
}

/// The name the client keeps sync state under (`Client::peer`), without locking the client,
/// which a sync holds.
fn peer(server: &Server) -> String {
    format!("{}:{}", server.host, server.port)
}

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    mutex.lock().map_err(|_| poisoned())
}

/// A lock is poisoned only if a thread panicked while holding it; the data may be half-changed
/// in memory (never on disk: SQLite rolls back), so refuse rather than guess.
fn poisoned() -> Error {
    Error::Internal("the store was left unusable by an earlier failure; reopen it".into())
}
