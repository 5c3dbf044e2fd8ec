//! The audit trail as storage sees it: entries chained by hash as they are appended, and the
//! checkpoints that sign the chain. Storage never holds the signing key: a checkpoint is signed
//! through a `CheckpointSigner` handed in for that one call. What the hashes cover and how a
//! trail is verified live in `crate::audit`, shared by every backend.

use crate::error::Result;
use crate::storage::AuditEntry;

/// SHA-256, as the chain and the checkpoints carry it.
pub type ChainHash = [u8; 32];

/// An entry as stored: its place in the chain and the hashes that hold it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEntry {
    pub seq: u64,
    pub entry: AuditEntry,
    /// The hash of the entry before (all zeros before the first entry ever written).
    pub prev_hash: ChainHash,
    /// `crate::audit::entry_hash(prev_hash, seq, entry)`, computed when it was appended.
    pub hash: ChainHash,
}

/// A signed statement that the chain up to `seq` ended in `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: ChainHash,
    /// When it was signed (unix seconds).
    pub at: i64,
    /// The Ed25519 public key that signed it, so a rotated key can be told apart; verification
    /// trusts only the keys it is given, never this one.
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Signs a checkpoint's message (`crate::audit::checkpoint_message`) with a key kept outside
/// the database.
pub trait CheckpointSigner {
    fn public_key(&self) -> &[u8];
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

/// Which entries to read. Every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries about this record (their subject).
    pub record: Option<String>,
    /// Entries by this user: `who` is the user itself or starts with `user/` (a worker's
    /// device, a lead on the web pages).
    pub user: Option<String>,
    /// Entries at or after this time (unix seconds).
    pub since: Option<i64>,
}

/// The audit trail: appended to by `Accounts::audit` and by `Documents::write`, each entry
/// chained inside the transaction that appends it, so writers in several processes still
/// form one chain.
pub trait AuditTrail: Send + Sync {
    /// Entries matching `filter` with seq above `after_seq`, oldest first, at most `limit`.
    fn audit_entries(&self, filter: &AuditFilter, after_seq: u64, limit: usize) -> Result<Vec<ChainedEntry>>;
    /// The newest `limit` entries matching `filter`, newest first.
    fn audit_latest(&self, filter: &AuditFilter, limit: usize) -> Result<Vec<ChainedEntry>>;
    /// The seq and hash the next entry chains from: the last entry's, or the retention anchor's
    /// when retention left no entry; None for a trail never written to.
    fn audit_head(&self) -> Result<Option<(u64, ChainHash)>>;
    /// Every checkpoint kept, oldest first.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>>;
    fn last_checkpoint(&self) -> Result<Option<Checkpoint>>;
    /// Signs a checkpoint at `seq` (the head when None), in one write transaction, after
    /// checking the chain from the checkpoint before it: a broken chain is never signed. A
    /// checkpoint already at that seq is returned as it is.
    fn add_checkpoint(&self, seq: Option<u64>, at: i64, signer: &dyn CheckpointSigner) -> Result<Checkpoint>;
    /// Removes whole segments: every entry up to the newest checkpoint whose entries are all
    /// older than `before`, and the checkpoints before it. That checkpoint stays, as the anchor
    /// the remaining entries chain from. Returns the last seq removed, None when nothing was.
    fn retain(&self, before: i64) -> Result<Option<u64>>;
}
