//! The server's storage, behind traits so a PostgreSQL implementation can follow the SQLite one.
//! Methods are blocking; the HTTP layer calls them on the blocking pool. Every method that
//! writes does so in one transaction.

pub mod audit;
pub mod duplicates;
pub mod postgres;
pub mod review;
pub mod sqlite;

pub use audit::{AuditFilter, AuditTrail, ChainHash, ChainedEntry, Checkpoint, CheckpointSigner};
pub use duplicates::{Duplicates, Merge};

pub use review::{
    ActionListing, CaseloadEntry, ListedPerson, QueueFilter, QueuePage, QueueState, RecordListing, ReviewIndex,
    VisitListing, WebAccounts, WebSession,
};

use std::collections::HashSet;

use automerge::ChangeHash;
use outpost_core::{DeviceId, DocId, PersonId, TeamId, WorkerId};

use crate::error::{Error, Result};

/// Which people a worker's devices hold: the team's whole caseload, or only the people
/// allocated to that worker. Set per team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopePolicy {
    Team,
    Allocated,
}

impl ScopePolicy {
    pub fn code(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Allocated => "allocated",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "team" => Some(Self::Team),
            "allocated" => Some(Self::Allocated),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Worker,
    Lead,
}

impl Role {
    pub fn code(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::Lead => "lead",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "worker" => Some(Self::Worker),
            "lead" => Some(Self::Lead),
            _ => None,
        }
    }
}

/// An enrolled, unrevoked device, as its credential proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub device: DeviceId,
    pub worker: WorkerId,
    pub role: Role,
    pub team: TeamId,
    pub scope: ScopePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub device: DeviceId,
    pub worker: WorkerId,
    pub label: String,
    pub enrolled_at: i64,
    pub last_sync_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When the admin asked the device to retire, if they have.
    pub retire_requested_at: Option<i64>,
    /// When the device confirmed it held nothing the server lacked, and was retired.
    pub retired_at: Option<i64>,
}

/// How a device left service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Revoked by an admin (lost or stolen): it is told to wipe its store.
    Revoked,
    /// Handed in: everything it held reached the server, then it wiped itself.
    Retired,
}

/// A credential `Accounts::authenticate` refused because its device left service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departed {
    pub device: DeviceId,
    pub departure: Departure,
    /// A revoked device is being told to wipe for the first time (audited once).
    pub first_wipe_order: bool,
}

/// The longest and default offline lease, in days.
pub const MAX_LEASE_DAYS: u32 = 365;
pub const DEFAULT_LEASE_DAYS: u32 = 14;

/// Who owns an Automerge actor id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorOwner {
    Device(DeviceId),
    /// The server process itself (a lead's decision made through the server).
    Server,
}

/// An audit record: who did what to which subject, and from which address. `detail` never
/// holds record content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub who: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    /// The client's address as the HTTP layer saw it; empty for the admin CLI and the server.
    pub from: String,
}

/// Accounts: teams, workers, devices, enrolment, actors, audit.
pub trait Accounts: Send + Sync {
    fn create_team(&self, team: &TeamId, name: &str, scope: ScopePolicy) -> Result<()>;
    fn set_scope(&self, team: &TeamId, scope: ScopePolicy) -> Result<()>;
    fn add_worker(&self, worker: &WorkerId, name: &str, role: Role, team: &TeamId) -> Result<()>;
    /// A worker's role and team, if they exist.
    fn worker(&self, worker: &WorkerId) -> Result<Option<(Role, TeamId)>>;
    /// Stores the hash of a one-time code for `worker`, valid until `expires_at` (unix seconds).
    fn add_enrolment_code(&self, worker: &WorkerId, code_hash: &[u8], expires_at: i64) -> Result<()>;
    /// Spends a code (once) and records the new device with its credential hash.
    fn enrol(
        &self,
        code_hash: &[u8],
        device: &DeviceId,
        label: &str,
        credential_hash: &[u8],
        now: i64,
    ) -> Result<Device>;
    /// The device a credential belongs to, if enrolled and not revoked.
    fn authenticate(&self, credential_hash: &[u8]) -> Result<Option<Device>>;
    fn revoke(&self, device: &DeviceId, now: i64) -> Result<()>;
    fn devices(&self) -> Result<Vec<DeviceRow>>;
    fn touch_device(&self, device: &DeviceId, now: i64) -> Result<()>;
    fn actor_owner(&self, actor: &[u8]) -> Result<Option<ActorOwner>>;
    /// Registers the server's actor for this process run.
    fn register_server_actor(&self, actor: &[u8], now: i64) -> Result<()>;
    fn audit(&self, entry: &AuditEntry) -> Result<()>;
    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>>;
}

/// A document as the server stores it: never loaded into Automerge just to be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    pub person: PersonId,
    pub doc_type: String,
    pub heads: Vec<ChangeHash>,
    pub snapshot: Vec<u8>,
}

/// One write to one document, part of a sync's single transaction.
#[derive(Debug, Clone)]
pub struct DocWrite {
    pub doc: DocId,
    pub person: PersonId,
    pub doc_type: String,
    pub heads: Vec<ChangeHash>,
    /// The whole document as `save()` writes it.
    pub snapshot: Vec<u8>,
    /// Its index rows (`outpost_core::sync::index_rows`), sent beside the snapshot.
    pub index_rows: Vec<u8>,
    /// Just the new changes, for devices that already hold the rest.
    pub changes: Vec<u8>,
    /// For a person document: the team it names and the workers allocated.
    pub person_scope: Option<PersonScope>,
    /// What the review pages list of it; None when it could not be read as its type.
    pub listing: Option<outpost_core::sync::Listing>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonScope {
    pub team: TeamId,
    pub allocated: Vec<WorkerId>,
}

/// What one sync from a device stores, all or nothing.
#[derive(Debug, Clone, Default)]
pub struct SyncWrite {
    pub docs: Vec<DocWrite>,
    /// Actors first used by this device in this sync.
    pub actors: Vec<Vec<u8>>,
    /// People the device confirmed it dropped.
    pub dropped: Vec<PersonId>,
    pub audit: Vec<AuditEntry>,
    /// The heads each written document had when it was read to merge into (empty: it did not
    /// exist). Another server process may have written it since: then nothing is written and
    /// the write fails with `Error::Stale`, and the caller merges again.
    pub expected: Vec<(DocId, Vec<ChangeHash>)>,
    /// Documents written above that a lead redacted: each replaces its document's history. The
    /// bytes are the `outpost_core::forget::Redaction` (CBOR) devices holding the old version
    /// need; every older log entry of the document is deleted.
    pub redactions: Vec<(DocId, Vec<u8>)>,
    /// Edits a device made offline inside passages since removed, for a lead to decide.
    pub held: Vec<HeldRow>,
}

/// An edit held back after a redaction (`outpost_core::forget::Held`, CBOR in `held`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRow {
    pub id: i64,
    pub doc: DocId,
    pub device: DeviceId,
    pub held: Vec<u8>,
    pub received_at: i64,
}

/// A log entry to send: `bytes` are the changes it added, or the whole document when the
/// device is too far behind for the changes alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub seq: u64,
    pub doc: DocId,
    pub person: PersonId,
    pub bytes: Vec<u8>,
    /// For a whole document sent to a device that lacks it: its heads and index rows.
    pub index: Option<(Vec<ChangeHash>, Vec<u8>)>,
    /// The document was redacted since the device received it: `bytes` are the new document
    /// whole, and this is its `outpost_core::forget::Redaction` (CBOR).
    pub replaced: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub entries: Vec<Outgoing>,
    pub cursor: u64,
    pub more: bool,
}

/// Documents and the server log devices pull from.
pub trait Documents: Send + Sync {
    /// This database's log identity; a restore gives it a new one.
    fn epoch(&self) -> Result<String>;
    fn doc(&self, doc: &DocId) -> Result<Option<StoredDoc>>;
    /// The team a person belongs to, if the server knows them.
    fn person_team(&self, person: &PersonId) -> Result<Option<TeamId>>;
    /// People the device may hold now.
    fn scope(&self, device: &Device) -> Result<HashSet<PersonId>>;
    /// People the server has sent to (or received from) the device and not seen it drop.
    fn held(&self, device: &DeviceId) -> Result<HashSet<PersonId>>;
    /// Stores a sync's writes in one transaction; returns the log seq of each doc write.
    fn write(&self, device: Option<&DeviceId>, write: &SyncWrite) -> Result<Vec<u64>>;
    /// The highest log seq.
    fn log_head(&self) -> Result<u64>;
    /// What a device at `cursor` lacks of the people in its scope, one entry per document in
    /// the order of each document's first unsent log entry, up to about `max_bytes` (counting
    /// the documents and the index rows sent with them), skipping
    /// `exclude` (entries this same sync wrote). A document the device holds gets its new
    /// changes; one it does not (or that is behind pruned history) gets its snapshot, and is
    /// recorded as held from that entry on. Returns the entries and the cursor the device may
    /// record after them (below the log head when the budget ran out).
    /// With `indexed`, whole documents carry their heads and index rows.
    fn pull(&self, device: &Device, cursor: u64, exclude: &[u64], max_bytes: usize, indexed: bool) -> Result<Pull>;
    /// Records that the device holds these documents (it listed them after a restore).
    fn mark_held(&self, device: &DeviceId, docs: &[(DocId, PersonId)]) -> Result<()>;
    /// Every document of these people, whole.
    fn people_docs(&self, people: &[PersonId]) -> Result<Vec<(DocId, StoredDoc)>>;
    /// Moves a person to another team (the admin's reassignment).
    fn reassign(&self, person: &PersonId, team: &TeamId) -> Result<()>;
    /// Edits held back from a document after a redaction, oldest first.
    fn held_edits(&self, doc: &DocId) -> Result<Vec<HeldRow>>;
    /// Deletes held edit `id` of `doc`, decided by a lead. False when it was settled already
    /// (or is another document's): of two leads deciding at once, only one settles it.
    fn settle_held(&self, id: i64, doc: &DocId) -> Result<bool>;
}

/// How devices leave service (revoked, retired) and how long they may work offline.
pub trait Lifecycle: Send + Sync {
    /// Asks an enrolled, unrevoked device to retire: at its next sync it sends what the server
    /// lacks, then wipes itself. Asking again keeps the first time.
    fn request_retirement(&self, device: &DeviceId, now: i64) -> Result<()>;
    /// Whether the device has been asked to retire.
    fn retiring(&self, device: &DeviceId) -> Result<bool>;
    /// The device asked to retire said it holds nothing unacknowledged: its credential is
    /// refused from now on. False (and nothing changed) when it was not asked to retire.
    fn retire(&self, device: &DeviceId, now: i64) -> Result<bool>;
    /// Why a credential `authenticate` refused was refused, when its device left service; for
    /// a revoked device, records the first time it is told to wipe.
    fn departed(&self, credential_hash: &[u8], now: i64) -> Result<Option<Departed>>;
    /// How many days a team's devices may go without reaching the server (1 to
    /// `MAX_LEASE_DAYS`; `DEFAULT_LEASE_DAYS` until set).
    fn set_lease_days(&self, team: &TeamId, days: u32) -> Result<()>;
    fn lease_days(&self, team: &TeamId) -> Result<u32>;
}

/// Everything the server stores.
/// Erasure: records removed for good, on request or past their team's retention. They are
/// remembered by id only (a tombstone), so devices holding them are told to erase them, and
/// what arrives for them later is erased on arrival.
pub trait Erasures: Send + Sync {
    /// Erases `docs` of `person` (every document of theirs, and the person, when `docs` is
    /// empty) with everything listed from them, leaving tombstones, and appends `audit`, in one
    /// transaction. Returns the documents erased.
    fn erase(&self, person: &PersonId, docs: &[DocId], audit: &AuditEntry) -> Result<Vec<DocId>>;
    /// Whether the document, or the person, was erased: whose it was, and whether the person
    /// was erased whole.
    fn erased(&self, id: &str) -> Result<Option<(PersonId, bool)>>;
    /// What the device still holds of erased records: documents erased one by one, and people
    /// erased whole.
    fn erasures_for(&self, device: &DeviceId) -> Result<(Vec<DocId>, Vec<PersonId>)>;
    /// The device erased these documents and people: it is no longer told to.
    fn erasures_done(&self, device: &DeviceId, ids: &[String]) -> Result<()>;
    /// How many years after a case closes its team's records are kept; None keeps them.
    fn set_retention(&self, team: &TeamId, years: Option<u32>) -> Result<()>;
    /// Records that a person's case closed at `at` (unix seconds); None reopens it.
    fn close_case(&self, person: &PersonId, at: Option<i64>) -> Result<()>;
    /// People whose case closed longer ago than their team keeps records, as of `now`: each with
    /// the policy's years.
    fn past_retention(&self, now: i64) -> Result<Vec<(PersonId, u32)>>;
}

pub trait Storage:
    Accounts + Documents + WebAccounts + ReviewIndex + AuditTrail + Lifecycle + Erasures + Duplicates
{
}

impl<T: Accounts + Documents + WebAccounts + ReviewIndex + AuditTrail + Lifecycle + Erasures + Duplicates> Storage
    for T
{
}

/// When a case closed at `closed_at` leaves a retention of `years`: the same day and month,
/// `years` later (29 February counting as 28 February in a year without it).
pub(crate) fn retention_ends(closed_at: i64, years: u32) -> i64 {
    use chrono::{Datelike, TimeZone};
    let Some(closed) = chrono::Utc.timestamp_opt(closed_at, 0).single() else {
        return i64::MAX;
    };
    let year = closed.year() + years as i32;
    let ends = closed
        .with_year(year)
        .or_else(|| closed.with_day(28).and_then(|d| d.with_year(year)));
    ends.map_or(i64::MAX, |d| d.timestamp())
}

// What both backends answer when an account names something that does not exist.
pub(crate) fn no_team(team: &TeamId) -> Error {
    Error::NotFound(format!("team {team}"))
}

pub(crate) fn no_worker(worker: &WorkerId) -> Error {
    Error::NotFound(format!("worker {worker}"))
}

pub(crate) fn no_device(device: &DeviceId) -> Error {
    Error::NotFound(format!("device {device}"))
}
