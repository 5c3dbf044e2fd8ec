//! What the store remembers about each sync peer: the server log cursor, what the server has
//! acknowledged of each document, this device's actors, and the outcome of the last sync.

use crate::error::Result;
use crate::store::Store;

/// What an app shows about sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// Documents with changes the server has not acknowledged.
    pub pending_docs: usize,
    /// When the last sync completed (RFC 3339), if one ever has.
    pub last_success: Option<String>,
    /// Why the last sync failed, if it did.
    pub last_error: Option<String>,
}

impl Store {
    pub fn sync_status(&self, _peer: &str) -> Result<SyncStatus> {
        Ok(SyncStatus::default())
    }

    /// Records how a sync ended: `Ok` stamps the time, `Err` keeps the reason to show.
    pub fn record_sync_outcome(&mut self, _peer: &str, _outcome: std::result::Result<(), &str>) -> Result<()> {
        Ok(())
    }
}
