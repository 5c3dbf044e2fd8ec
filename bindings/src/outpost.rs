//! `Outpost`, the one object an app holds: opening the store, enrolment, sync, observers and
//! queries. Record edits are in `edits.rs`. Every method blocks the calling thread (each says on
//! what), so an app calls them off its main thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_core as core;
use outpost_core::{DocId, PersonId};
use zeroize::Zeroizing;

use crate::error::{OutpostError, Result};
use crate::records::{CaseloadEntry, Person, SearchHit, VisitSummary, each};

#[derive(Debug, uniffi::Object)]
pub struct Outpost {
    pub(crate) device: core::Device,
}

/// The sync server and how to trust it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ServerConfig {
    /// The name on the server's certificate.
    pub host: String,
    /// 1 to 65535.
    pub port: i32,
    /// A private deployment's CA certificate (PEM). Without one, the phone's own certificate
    /// store decides, as for any app.
    #[uniffi(default)]
    pub ca_pem: Option<String>,
    /// Optional pins: hex SHA-256 of the server key's SubjectPublicKeyInfo. When any are given,
    /// the server's key must match one (after the usual certificate checks pass).
    #[uniffi(default)]
    pub pins: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Enrolment {
    pub worker_id: String,
    pub device_id: String,
    pub team_id: String,
    pub server_host: String,
    pub server_port: i32,
    pub enrolled_at: String,
}

impl From<core::Enrolment> for Enrolment {
    fn from(e: core::Enrolment) -> Self {
        Self {
            worker_id: e.author.worker.to_string(),
            device_id: e.author.device.to_string(),
            team_id: e.team.to_string(),
            server_host: e.server.host,
            server_port: i32::from(e.server.port),
            enrolled_at: e.enrolled_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncStatus {
    pub enrolled: bool,
    /// Records with changes the server has not acknowledged.
    pub pending_records: i64,
    /// When a sync last completed (RFC 3339).
    pub last_success: Option<String>,
    /// Why the last sync failed, if it did.
    pub last_error: Option<String>,
    pub syncing: bool,
    pub auto_sync: bool,
    pub network_available: bool,
    /// Why records are locked (the offline lease ran out, or the clock was set back); a sync
    /// that succeeds unlocks them.
    pub locked: Option<String>,
    /// The administrator is retiring this device: it takes no new edits and wipes itself once
    /// everything on it has reached the server.
    pub retiring: bool,
    /// Why this device's records were wiped (it was revoked or retired); it must be enrolled
    /// again.
    pub wiped: Option<String>,
}

impl From<core::DeviceStatus> for SyncStatus {
    fn from(s: core::DeviceStatus) -> Self {
        Self {
            enrolled: s.enrolled,
            pending_records: count(s.sync.pending_docs),
            last_success: s.sync.last_success,
            last_error: s.sync.last_error,
            syncing: s.syncing,
            auto_sync: s.auto_sync,
            network_available: s.network_available,
            locked: s.locked,
            retiring: s.retiring,
            wiped: s.wiped,
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncOutcome {
    /// False when the deadline stopped the sync; the next sync resumes where it stopped.
    pub complete: bool,
    pub records_sent: i64,
    pub records_received: i64,
    /// Records the server refused (they stay pending here), with why.
    pub refused: Vec<String>,
    /// People removed from this device because they left its caseload.
    pub people_dropped: i64,
    /// The device was retired: everything on it reached the server, and its records were wiped.
    pub retired: bool,
    /// Records erased from this device because the server erased them (a person erased on
    /// request or past retention, or a record removed by a lead).
    pub records_erased: i64,
    /// Edits typed here inside passages a lead has since removed: not applied, sent to the lead
    /// to decide. An app tells the worker so.
    pub edits_held: i64,
}

impl From<core::SyncOutcome> for SyncOutcome {
    fn from(o: core::SyncOutcome) -> Self {
        Self {
            complete: o.complete,
            records_sent: count(o.progress.docs_pushed),
            records_received: count(o.progress.docs_received),
            refused: o
                .progress
                .refused
                .into_iter()
                .map(|(id, why)| format!("{id}: {why}"))
                .collect(),
            people_dropped: count(o.progress.dropped),
            retired: o.progress.retired,
            records_erased: count(o.progress.erased),
            edits_held: count(o.progress.held),
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AutoSyncConfig {
    /// Sync this often when nothing else prompts it.
    pub every: Duration,
    /// Sync this long after an edit.
    pub after_edit: Duration,
    /// Each sync stops at this deadline and resumes later.
    pub deadline: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeOrigin {
    Local,
    Sync,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RecordChange {
    /// Each changed record's id once (a visit's review changes under `<visit id>.review`).
    pub ids: Vec<String>,
    pub origin: ChangeOrigin,
}

/// Told which records changed. Called on the thread that made the change (a sync runs on a
/// background thread): post to the UI thread before touching views.
#[uniffi::export(callback_interface)]
pub trait RecordObserver: Send + Sync {
    fn records_changed(&self, change: RecordChange);
}

/// Told when the sync status changes. Called on a background thread.
#[uniffi::export(callback_interface)]
pub trait SyncStatusObserver: Send + Sync {
    fn sync_status_changed(&self, status: SyncStatus);
}

/// Keeps an observer registered. Closing (or dropping) it unregisters the observer.
#[derive(Debug, uniffi::Object)]
pub struct ObserverHandle {
    subscription: Mutex<Option<core::Subscription>>,
}

#[uniffi::export]
impl ObserverHandle {
    /// Unregisters now rather than when the handle is collected. Does not block.
    pub fn cancel(&self) {
        if let Ok(mut subscription) = self.subscription.lock() {
            subscription.take();
        }
    }
}

impl ObserverHandle {
    fn new(subscription: core::Subscription) -> Arc<Self> {
        Arc::new(Self {
            subscription: Mutex::new(Some(subscription)),
        })
    }
}

pub(crate) fn doc_id(field: &str, id: &str) -> Result<DocId> {
    DocId::new(id).map_err(|e| match e {
        core::Error::InvalidInput { reason, .. } => OutpostError::InvalidInput {
            field: field.to_string(),
            reason,
        },
        other => other.into(),
    })
}

fn pin(hex: &str) -> Result<[u8; 32]> {
    let bad = || OutpostError::InvalidInput {
        field: "pin".into(),
        reason: format!("{hex:?} is not 64 hex digits (a SHA-256)"),
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[uniffi::export]
impl Outpost {
    /// Opens (creating or upgrading) the store at `path`. `key` is the store's raw 256-bit key
    /// (32 bytes, kept in Android Keystore or the iOS Keychain): the store is encrypted under
    /// it, and a store written before encryption is encrypted on this open. A key that does not
    /// open the store, or no key for an encrypted one, is `WrongKey`, and the store is left as
    /// it was. Blocks on disk.
    #[uniffi::constructor]
    pub fn open(path: String, key: Option<Vec<u8>>) -> Result<Arc<Self>> {
        let key = key.map(Zeroizing::new);
        let device = core::Device::open(path, key.as_deref().map(Vec::as_slice))?;
        Ok(Arc::new(Self { device }))
    }

    /// Re-encrypts the store under `new_key` (32 bytes); from then on only `new_key` opens it.
    /// The store must have been opened with a key. A crash part-way leaves the store under the
    /// old key or the new one, so keep both in the keystore until this returns (and on
    /// `WrongKey` at the next open, try the other). Blocks on disk while the store is rewritten.
    pub fn rekey(&self, new_key: Vec<u8>) -> Result<()> {
        let new_key = Zeroizing::new(new_key);
        Ok(self.device.rekey(&new_key)?)
    }

    /// This device's enrolment, or nothing before it enrols. Does not block.
    pub fn enrolment(&self) -> Option<Enrolment> {
        self.device.enrolment().map(Enrolment::from)
    }

    /// Enrols this device with a one-time code from the team's administrator. Blocks on the
    /// network.
    pub fn enrol(&self, server: ServerConfig, code: String, device_label: String) -> Result<Enrolment> {
        let pins = server.pins.iter().map(|p| pin(p)).collect::<Result<_>>()?;
        let port = u16::try_from(server.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| OutpostError::InvalidInput {
                field: "port".into(),
                reason: format!("{} is not a port (1 to 65535)", server.port),
            })?;
        let server = core::Server {
            host: server.host,
            port,
            ca_pem: server.ca_pem.map(String::into_bytes),
            pins,
        };
        Ok(self.device.enrol(server, &code, &device_label)?.into())
    }

    /// Syncs now, stopping cleanly after `deadline` (an iOS background task gets about 30 s);
    /// what was exchanged is kept and the next sync resumes. Blocks on the network and disk.
    pub fn sync_now(&self, deadline: Duration) -> Result<SyncOutcome> {
        Ok(self.device.sync_now(deadline)?.into())
    }

    /// Syncs in the background: soon after edits, at an interval, and when the network returns.
    /// Does not block.
    pub fn start_auto_sync(&self, config: AutoSyncConfig) -> Result<()> {
        let options = core::AutoSyncOptions {
            every: config.every,
            after_edit: config.after_edit,
            deadline: config.deadline,
            ..core::AutoSyncOptions::default()
        };
        Ok(self.device.start_auto_sync(options)?)
    }

    /// Stops automatic sync; blocks until a sync in progress reaches its deadline or ends.
    pub fn stop_auto_sync(&self) -> Result<()> {
        Ok(self.device.stop_auto_sync()?)
    }

    /// Passes on the platform's connectivity (Android's NetworkCallback, iOS's NWPathMonitor).
    /// Automatic sync waits while it is down; `sync_now`, asked for explicitly, still tries.
    /// Does not block.
    pub fn set_network_available(&self, available: bool) -> Result<()> {
        Ok(self.device.set_network_available(available)?)
    }

    /// Blocks on disk (briefly).
    pub fn sync_status(&self) -> Result<SyncStatus> {
        Ok(self.device.status()?.into())
    }

    /// Ids of records with changes not yet acknowledged by the server. Blocks on disk.
    pub fn pending_sync(&self) -> Result<Vec<String>> {
        Ok(self.device.pending()?.iter().map(ToString::to_string).collect())
    }

    /// Registers an observer of record changes, local and received. Does not block.
    pub fn observe_records(&self, observer: Box<dyn RecordObserver>) -> Arc<ObserverHandle> {
        ObserverHandle::new(self.device.observe_records(move |change| {
            observer.records_changed(RecordChange {
                ids: change.ids.iter().map(ToString::to_string).collect(),
                origin: match change.origin {
                    core::ChangeOrigin::Local => ChangeOrigin::Local,
                    core::ChangeOrigin::Sync => ChangeOrigin::Sync,
                },
            })
        }))
    }

    /// Registers an observer of the sync status. Does not block.
    pub fn observe_sync_status(&self, observer: Box<dyn SyncStatusObserver>) -> Arc<ObserverHandle> {
        ObserverHandle::new(
            self.device
                .observe_status(move |status| observer.sync_status_changed(status.clone().into())),
        )
    }

    // ---- queries: each reads the index, not the documents; blocks on disk ---------------------

    /// The people allocated to the enrolled worker.
    /// Blocks on disk.
    pub fn caseload(&self) -> Result<Vec<CaseloadEntry>> {
        let worker = self.worker()?;
        Ok(each(self.device.read(|s| s.caseload(&worker))?))
    }

    /// Everyone the enrolled worker's team holds on this device.
    /// Blocks on disk.
    pub fn team_caseload(&self) -> Result<Vec<CaseloadEntry>> {
        let team = self.enrolled()?.team;
        Ok(each(self.device.read(|s| s.team_caseload(&team))?))
    }

    /// Blocks on disk.
    pub fn person(&self, person_id: String) -> Result<Person> {
        let id = doc_id("person id", &person_id)?;
        Ok(self.device.read(|s| s.person(&id))?.into())
    }

    /// A person's visits, newest first.
    /// Blocks on disk.
    pub fn visits_for_person(&self, person_id: String) -> Result<Vec<VisitSummary>> {
        let id: PersonId = doc_id("person id", &person_id)?;
        Ok(each(self.device.read(|s| s.visits_for_person(&id))?))
    }

    /// Full-text search over visit notes.
    /// Blocks on disk.
    pub fn search(&self, query: String, limit: i32) -> Result<Vec<SearchHit>> {
        let limit = usize::try_from(limit).map_err(|_| OutpostError::InvalidInput {
            field: "limit".into(),
            reason: format!("{limit} is negative"),
        })?;
        Ok(each(self.device.read(|s| s.search(&query, limit))?))
    }
}

impl Outpost {
    pub(crate) fn enrolled(&self) -> Result<core::Enrolment> {
        self.device.enrolment().ok_or_else(|| OutpostError::NotAuthorised {
            reason: "this device is not enrolled yet".into(),
        })
    }

    pub(crate) fn worker(&self) -> Result<core::WorkerId> {
        Ok(self.enrolled()?.author.worker)
    }
}

/// Counts as Kotlin and Swift hold them (signed 64-bit).
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
