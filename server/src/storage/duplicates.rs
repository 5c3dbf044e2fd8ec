//! Merges of duplicate person records: which person was merged into which, by whom and when.
//! The marker in the duplicate's own record is what devices see; this is the server's quick way
//! to know, on every sync, whether a record arriving names a merged-away person, and what keeps
//! that person off the lead's caseload page.

use outpost_core::{PersonId, WorkerId};

use super::AuditEntry;
use crate::error::Result;

/// One merge: `duplicate`'s records now belong to `survivor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub duplicate: PersonId,
    pub survivor: PersonId,
    pub by: WorkerId,
    pub at: i64,
}

pub trait Duplicates: Send + Sync {
    /// Records a merge and appends `audit`, in one transaction. A duplicate is merged once.
    fn record_merge(&self, merge: &Merge, audit: &AuditEntry) -> Result<()>;
    /// The merge that took `person` away, if one did.
    fn merged_into(&self, person: &PersonId) -> Result<Option<Merge>>;
    /// The merges into `survivor`, oldest first.
    fn merged_from(&self, survivor: &PersonId) -> Result<Vec<Merge>>;
}
