//! The device side of sync: builds each round's request from the store and applies the
//! server's response frame by frame.

use crate::error::Result;
use crate::store::Store;

/// How far a sync has got, for an app to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub rounds: u32,
    pub docs_pushed: usize,
    pub docs_received: usize,
}

/// One sync with one server, round by round. Create one per sync; all state that must outlive
/// it is in the store.
#[derive(Debug)]
pub struct SyncClient {
    peer: String,
    progress: Progress,
}

impl SyncClient {
    pub fn new(peer: &str) -> Self {
        Self {
            peer: peer.to_string(),
            progress: Progress::default(),
        }
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The next round's request body, or None when the sync is complete.
    pub fn next_request(&mut self, _store: &mut Store) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Response body bytes as they arrive; complete frames are applied and committed.
    pub fn receive(&mut self, _store: &mut Store, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }

    /// The response body ended; an error if it ended part-way.
    pub fn end_response(&mut self, _store: &mut Store) -> Result<()> {
        Ok(())
    }

    /// The round failed part-way: what was committed stays, the rest is forgotten.
    pub fn abandon_round(&mut self) {}

    pub fn progress(&self) -> &Progress {
        &self.progress
    }
}
