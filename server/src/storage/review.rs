//! What the team leads' pages need from storage: sign-in (passwords and sessions, kept apart
//! from device credentials) and the review listing, which every document write keeps current.

use chrono::NaiveDate;
use outpost_core::sync::Listing;
use outpost_core::{ChangeHash, DocId, PersonId, TeamId, WorkerId};

use super::Role;
use crate::error::Result;

/// A signed-in browser session, found by the hash of its cookie's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub worker: WorkerId,
    pub name: String,
    pub role: Role,
    /// The token every form of this session carries.
    pub csrf: String,
    pub created_at: i64,
    pub seen_at: i64,
}

/// Sign-in for the review pages.
pub trait WebAccounts: Send + Sync {
    /// Stores a password hash (a PHC string) for a worker, replacing any other, and ends the
    /// worker's sessions.
    fn set_password(&self, worker: &WorkerId, hash: &str, now: i64) -> Result<()>;
    fn password(&self, worker: &WorkerId) -> Result<Option<String>>;
    fn set_email(&self, worker: &WorkerId, email: Option<&str>) -> Result<()>;
    /// Addresses of the leads who review `team`.
    fn lead_emails(&self, team: &TeamId) -> Result<Vec<String>>;
    /// Lets a lead review another team besides their own.
    fn add_lead_team(&self, lead: &WorkerId, team: &TeamId) -> Result<()>;
    /// The teams a lead reviews: their own first, then any added.
    fn lead_teams(&self, lead: &WorkerId) -> Result<Vec<TeamId>>;
    fn create_session(&self, token_hash: &[u8], worker: &WorkerId, csrf: &str, now: i64) -> Result<()>;
    fn session(&self, token_hash: &[u8]) -> Result<Option<WebSession>>;
    fn touch_session(&self, token_hash: &[u8], now: i64) -> Result<()>;
    fn end_session(&self, token_hash: &[u8]) -> Result<()>;
    /// Failed sign-ins counted for `username` (as the throttle normalises it): how many, and
    /// when their window began. Kept in the database, so every server process counts together.
    fn sign_in_failures(&self, username: &str) -> Result<Option<(u32, i64)>>;
    /// Counts one failure at `now`; a window begun `window` seconds or more ago starts again.
    fn record_sign_in_failure(&self, username: &str, now: i64, window: i64) -> Result<()>;
    fn clear_sign_in_failures(&self, username: &str) -> Result<()>;
}

/// Which visits the queue shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueState {
    /// Submitted, or approved and changed since: what waits for a lead.
    #[default]
    Waiting,
    Submitted,
    ChangedSinceApproval,
    Approved,
    Returned,
    /// Every visit ever submitted (drafts are the worker's own until then).
    Any,
}

impl QueueState {
    pub const ALL: [QueueState; 6] = [
        Self::Waiting,
        Self::Submitted,
        Self::ChangedSinceApproval,
        Self::Approved,
        Self::Returned,
        Self::Any,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Submitted => "submitted",
            Self::ChangedSinceApproval => "changed",
            Self::Approved => "approved",
            Self::Returned => "returned",
            Self::Any => "any",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Waiting => "Waiting for review",
            Self::Submitted => "Submitted",
            Self::ChangedSinceApproval => "Changed since approval",
            Self::Approved => "Approved",
            Self::Returned => "Returned",
            Self::Any => "Any submitted",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    pub worker: Option<WorkerId>,
    /// Part of the person's name or preferred name, any case.
    pub person: Option<String>,
    /// Visits on or after this day (UTC).
    pub from: Option<NaiveDate>,
    /// Visits on or before this day (UTC).
    pub to: Option<NaiveDate>,
    pub state: QueueState,
    pub safeguarding_only: bool,
}

/// A visit as the queue and the person page list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitListing {
    pub visit: DocId,
    pub person: PersonId,
    pub person_name: String,
    pub worker: String,
    pub worker_name: String,
    pub visit_at: i64,
    pub submitted_at: Option<i64>,
    /// The review state's code (`draft` when the review has not arrived).
    pub state: String,
    pub changed_since_approval: bool,
    pub safeguarding: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePage {
    pub rows: Vec<VisitListing>,
    /// How many visits match the filter, on every page.
    pub total: usize,
}

/// A person on the caseload overview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseloadEntry {
    pub person: PersonId,
    pub name: String,
    pub risk: String,
    pub team: TeamId,
    pub last_visit_at: Option<i64>,
    pub open_actions: usize,
    pub overdue_actions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPerson {
    pub person: PersonId,
    pub team: TeamId,
    pub name: String,
    pub risk: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionListing {
    pub visit: DocId,
    pub what: String,
    pub due: Option<NaiveDate>,
    pub done: bool,
    pub cancelled: bool,
}

/// An assessment or a set of observations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordListing {
    pub doc: DocId,
    pub doc_type: String,
    pub at: i64,
    /// A line of what it is (template, NEWS2 score), never free text.
    pub summary: String,
}

/// The listing the review pages read.
pub trait ReviewIndex: Send + Sync {
    fn queue(&self, teams: &[TeamId], filter: &QueueFilter, offset: usize, limit: usize) -> Result<QueuePage>;
    /// Workers of these teams, by name, for the queue's worker filter.
    fn team_workers(&self, teams: &[TeamId]) -> Result<Vec<(WorkerId, String, Role)>>;
    fn caseload(&self, teams: &[TeamId], today: NaiveDate) -> Result<Vec<CaseloadEntry>>;
    fn listed_person(&self, person: &PersonId) -> Result<Option<ListedPerson>>;
    fn visit_listing(&self, visit: &DocId) -> Result<Option<VisitListing>>;
    /// A person's visits, newest first, drafts included.
    fn person_visits(&self, person: &PersonId) -> Result<Vec<VisitListing>>;
    fn person_actions(&self, person: &PersonId) -> Result<Vec<ActionListing>>;
    fn person_records(&self, person: &PersonId) -> Result<Vec<RecordListing>>;
    /// Records that a visit's safeguarding alert went out; false if it already had.
    fn mark_alerted(&self, visit: &DocId, now: i64) -> Result<bool>;
    /// Lists one document apart from a sync (documents stored before the listing existed).
    fn list(&self, doc: &DocId, person: &PersonId, heads: &[ChangeHash], listing: &Listing) -> Result<()>;
    /// Whether documents stored before the listing existed still need listing.
    fn needs_relist(&self) -> Result<bool>;
    /// Every stored document's id, for listing them once.
    fn all_docs(&self) -> Result<Vec<DocId>>;
    fn relist_done(&self) -> Result<()>;
}
