//! The audit trail's tamper evidence, the same for every storage backend.
//!
//! Each entry's hash is `SHA-256(prev_hash || encoding)`, where the encoding is the entry's seq
//! (u64) and time (i64), big-endian, then who, action, subject, detail and from, each as its
//! UTF-8 length (u64, big-endian) followed by its bytes. The first entry ever written chains
//! from 32 zero bytes. Every so often (every N entries, and once the oldest unsigned entry is
//! an hour old) the server signs a checkpoint with its Ed25519 key, kept in a file outside the
//! database: `checkpoint_message` is what it signs. So an edited, removed or reordered entry
//! breaks the chain, and a chain rewritten from the edit on no longer matches the checkpoint
//! signed after it, which nobody without the key can forge.
//!
//! Retention removes whole segments, up to a checkpoint, and keeps that checkpoint as the
//! anchor the remaining entries chain from; verification starts there.

pub mod cli;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::signing::{self, ServerKey};
use crate::storage::{AuditEntry, AuditFilter, AuditTrail, ChainHash, ChainedEntry, Checkpoint, CheckpointSigner};

/// What the first entry ever written chains from.
pub const GENESIS: ChainHash = [0; 32];

/// Entries read at a time while verifying or exporting.
const PAGE: usize = 5_000;

/// Sets a checkpoint's message apart from anything else the same key signs (device leases).
const CHECKPOINT_DOMAIN: &[u8] = b"outpost audit checkpoint v1\0";

/// The hash that chains `entry` at `seq` after `prev`.
pub fn entry_hash(prev: &ChainHash, seq: u64, entry: &AuditEntry) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(seq.to_be_bytes());
    hasher.update(entry.at.to_be_bytes());
    for field in [&entry.who, &entry.action, &entry.subject, &entry.detail, &entry.from] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    let mut out = [0; 32];
    out.copy_from_slice(&hasher.finalize());
    out
}

/// What a checkpoint's signature covers: the seq, the chain's hash there, and when it was signed.
pub fn checkpoint_message(seq: u64, hash: &ChainHash, at: i64) -> Vec<u8> {
    let mut message = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 48);
    message.extend_from_slice(CHECKPOINT_DOMAIN);
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(hash);
    message.extend_from_slice(&at.to_be_bytes());
    message
}

/// A short name for a public key: the first 8 bytes of its SHA-256, in hex.
/// Why a backend refused to sign a checkpoint over its segment: the entry at `broken` fails the
/// chain, or (None) the entry after `last` is missing. Shared so both backends say the same.
pub(crate) fn unsigned_segment(broken: Option<&dyn std::fmt::Display>, last: u64) -> Error {
    Error::Conflict(match broken {
        Some(broken) => format!("no checkpoint was signed: the audit trail is broken at {broken}"),
        None => format!(
            "no checkpoint was signed: the audit trail is broken at seq {}: the entry is missing",
            last + 1
        ),
    })
}

pub fn key_id(public_key: &[u8]) -> String {
    signing::hex(&Sha256::digest(public_key)[..8])
}

impl CheckpointSigner for ServerKey {
    fn public_key(&self) -> &[u8] {
        ServerKey::public_key(self)
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        ServerKey::sign(self, message).to_vec()
    }
}

/// Where the chain first fails, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: u64,
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.reason)
    }
}

/// Walks a chain forward from a known seq and hash, one entry at a time.
#[derive(Debug, Clone)]
pub struct Chain {
    seq: u64,
    hash: ChainHash,
}

impl Chain {
    /// A chain whose entry `seq` (0: none yet) is known to have hashed to `hash`.
    pub fn after(seq: u64, hash: ChainHash) -> Self {
        Self { seq, hash }
    }

    /// Checks that `entry` comes next: the next seq, chained from the last hash, with
    /// contents that still hash to what was stored.
    pub fn check(&mut self, entry: &ChainedEntry) -> Result<(), Broken> {
        let expected = self.seq + 1;
        if entry.seq != expected {
            return Err(Broken {
                seq: expected,
                reason: if entry.seq > expected {
                    format!("the entry is missing (the next one is seq {})", entry.seq)
                } else {
                    format!("seq {} comes again after seq {}", entry.seq, self.seq)
                },
            });
        }
        if entry.prev_hash != self.hash {
            return Err(Broken {
                seq: entry.seq,
                reason: format!(
                    "it does not chain from seq {}: an entry was replaced, reordered or removed",
                    self.seq
                ),
            });
        }
        if entry_hash(&entry.prev_hash, entry.seq, &entry.entry) != entry.hash {
            return Err(Broken {
                seq: entry.seq,
                reason: "its contents do not match its hash: the entry was altered".into(),
            });
        }
        self.seq = entry.seq;
        self.hash = entry.hash;
        Ok(())
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The first and last seq checked; None when no entry is left.
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub entries: u64,
    /// The checkpoint the remaining entries chain from after retention.
    pub anchor: Option<u64>,
    /// Checkpoints whose signatures were checked (the anchor included).
    pub checkpoints: usize,
    pub last_checkpoint: Option<u64>,
    pub broken: Option<Broken>,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(broken) = &self.broken {
            return write!(f, "the audit trail is BROKEN at {broken}");
        }
        match (self.first, self.last) {
            (Some(first), Some(last)) => write!(
                f,
                "the audit trail is intact: entries {first} to {last} ({} entries)",
                self.entries
            )?,
            _ => write!(f, "the audit trail is intact: it holds no entries")?,
        }
        if let Some(anchor) = self.anchor {
            write!(
                f,
                "; entries through seq {anchor} were removed by retention, and the signed checkpoint there anchors the rest"
            )?;
        }
        match self.last_checkpoint {
            Some(seq) => {
                let plural = if self.checkpoints == 1 { "" } else { "s" };
                write!(
                    f,
                    "; {} signed checkpoint{plural} verified, the last at seq {seq}",
                    self.checkpoints
                )?;
                let unsigned = self.last.map_or(0, |last| last.saturating_sub(seq));
                if unsigned > 0 {
                    write!(f, "; the {unsigned} entries after it are chained but not yet signed")?;
                }
                Ok(())
            }
            None => write!(f, "; no checkpoint is signed yet"),
        }
    }
}

/// Checks the whole trail: every remaining entry chains from the one before (the first from
/// the start, or from the signed checkpoint retention left), every checkpoint matches the chain
/// and is signed by one of the `trusted` public keys, and no checkpoint is beyond the last entry.
/// Stops at the first break.
pub fn verify<T: AuditTrail + ?Sized>(trail: &T, trusted: &[Vec<u8>]) -> Result<Verification> {
    let checkpoints: BTreeMap<u64, Checkpoint> = trail.checkpoints()?.into_iter().map(|c| (c.seq, c)).collect();
    let mut found = Verification {
        first: None,
        last: None,
        entries: 0,
        anchor: None,
        checkpoints: 0,
        last_checkpoint: None,
        broken: None,
    };
    let mut page = trail.audit_entries(&AuditFilter::default(), 0, PAGE)?;
    let Some(first) = page.first().map(|e| e.seq) else {
        // Retention may have removed every entry; the last checkpoint is then the anchor.
        if let Some(anchor) = checkpoints.values().next_back() {
            found.anchor = Some(anchor.seq);
            found.broken = check_signature(anchor, trusted).err();
            found.checkpoints = 1;
            found.last_checkpoint = Some(anchor.seq);
        }
        return Ok(found);
    };
    found.first = Some(first);
    let mut chain = if first == 1 {
        Chain::after(0, GENESIS)
    } else {
        match checkpoints.get(&(first - 1)) {
            Some(anchor) => {
                found.anchor = Some(anchor.seq);
                found.last_checkpoint = Some(anchor.seq);
                found.checkpoints = 1;
                if let Err(broken) = check_signature(anchor, trusted) {
                    found.broken = Some(broken);
                    return Ok(found);
                }
                Chain::after(anchor.seq, anchor.hash)
            }
            None => {
                found.broken = Some(Broken {
                    seq: first,
                    reason: format!(
                        "the entries before it are gone, and no signed checkpoint at seq {} anchors it",
                        first - 1
                    ),
                });
                return Ok(found);
            }
        }
    };
    while !page.is_empty() {
        for entry in &page {
            if let Err(broken) = chain.check(entry) {
                found.broken = Some(broken);
                return Ok(found);
            }
            found.entries += 1;
            found.last = Some(entry.seq);
            if let Some(checkpoint) = checkpoints.get(&entry.seq) {
                if checkpoint.hash != entry.hash {
                    found.broken = Some(Broken {
                        seq: entry.seq,
                        reason: "the checkpoint signed here holds another hash: entries up to it were rewritten after it was signed".into(),
                    });
                    return Ok(found);
                }
                if let Err(broken) = check_signature(checkpoint, trusted) {
                    found.broken = Some(broken);
                    return Ok(found);
                }
                found.checkpoints += 1;
                found.last_checkpoint = Some(entry.seq);
            }
        }
        page = trail.audit_entries(&AuditFilter::default(), chain.seq(), PAGE)?;
    }
    if let Some((&seq, _)) = checkpoints.range(chain.seq() + 1..).next() {
        found.broken = Some(Broken {
            seq,
            reason: format!(
                "a checkpoint was signed here, but the trail ends at seq {}: entries were removed from its end",
                chain.seq()
            ),
        });
    }
    Ok(found)
}

fn check_signature(checkpoint: &Checkpoint, trusted: &[Vec<u8>]) -> Result<(), Broken> {
    let message = checkpoint_message(checkpoint.seq, &checkpoint.hash, checkpoint.at);
    if trusted
        .iter()
        .any(|key| signing::verify(key, &message, &checkpoint.signature))
    {
        return Ok(());
    }
    let reason = if trusted.contains(&checkpoint.public_key) {
        "the checkpoint's signature does not verify with the server's key: it was forged or altered".to_string()
    } else {
        format!(
            "the checkpoint names key {}, which is not the server's ({}), and its signature does not verify with the server's key",
            key_id(&checkpoint.public_key),
            trusted.iter().map(|k| key_id(k)).collect::<Vec<_>>().join(", ")
        )
    };
    Err(Broken {
        seq: checkpoint.seq,
        reason,
    })
}

/// How the trail is kept: where the signing key is, how often checkpoints are signed, how
/// long entries are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    pub key_path: PathBuf,
    /// A checkpoint at every multiple of this seq.
    pub checkpoint_every: u64,
    /// And one at the head once the oldest unsigned entry is this old (seconds).
    pub checkpoint_after: i64,
    /// Entries older than this many days are removed, a whole segment at a time.
    pub retention_days: Option<u32>,
}

impl AuditSettings {
    pub const DEFAULT_EVERY: u64 = 1_000;
    pub const DEFAULT_AFTER_MINUTES: i64 = 60;

    /// The defaults, with the key at `<data_dir>/signing.key`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            key_path: data_dir.join("signing.key"),
            checkpoint_every: Self::DEFAULT_EVERY,
            checkpoint_after: Self::DEFAULT_AFTER_MINUTES * 60,
            retention_days: None,
        }
    }

    /// OUTPOST_SIGNING_KEY, OUTPOST_AUDIT_CHECKPOINT_EVERY, OUTPOST_AUDIT_CHECKPOINT_MINUTES
    /// and OUTPOST_AUDIT_RETENTION_DAYS over the defaults.
    pub fn from_env(data_dir: &Path) -> Result<Self, String> {
        let mut settings = Self::new(data_dir);
        if let Ok(path) = std::env::var("OUTPOST_SIGNING_KEY") {
            settings.key_path = PathBuf::from(path);
        }
        if let Some(every) = positive("OUTPOST_AUDIT_CHECKPOINT_EVERY")? {
            settings.checkpoint_every = every;
        }
        if let Some(minutes) = positive("OUTPOST_AUDIT_CHECKPOINT_MINUTES")? {
            settings.checkpoint_after = i64::try_from(minutes.saturating_mul(60)).unwrap_or(i64::MAX);
        }
        settings.retention_days = positive("OUTPOST_AUDIT_RETENTION_DAYS")?
            .map(|days| u32::try_from(days).map_err(|_| "OUTPOST_AUDIT_RETENTION_DAYS is too large".to_string()))
            .transpose()?;
        Ok(settings)
    }

    /// The signing key, made in `key_path` if there is none yet.
    pub fn load_key(&self) -> Result<ServerKey> {
        match ServerKey::load_or_create(&self.key_path) {
            Ok(key) => Ok(key),
            // Another process may be creating the same key file this moment: read its key.
            Err(_) if self.key_path.exists() => {
                std::thread::sleep(Duration::from_millis(200));
                ServerKey::load_or_create(&self.key_path)
            }
            Err(e) => Err(e),
        }
    }

    /// The public keys checkpoints are verified against: the key file's, which must exist
    /// (verifying never makes a key).
    pub fn trusted_keys(&self) -> Result<Vec<Vec<u8>>> {
        if !self.key_path.exists() {
            return Err(Error::NotFound(format!(
                "no signing key at {}: set OUTPOST_SIGNING_KEY, or pass the server's public key with --public-key",
                self.key_path.display()
            )));
        }
        Ok(vec![self.load_key()?.public_key().to_vec()])
    }
}

fn positive(name: &str) -> Result<Option<u64>, String> {
    match std::env::var(name) {
        Ok(value) => match value.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!("{name} {value:?} is not a positive whole number")),
        },
        Err(_) => Ok(None),
    }
}

/// The checkpoints due at `now`: each multiple of `checkpoint_every` past the last checkpoint,
/// then the head if its oldest unsigned entry is older than `checkpoint_after`.
pub fn due<T: AuditTrail + ?Sized>(trail: &T, settings: &AuditSettings, now: i64) -> Result<Vec<u64>> {
    let Some((head, _)) = trail.audit_head()? else {
        return Ok(Vec::new());
    };
    let signed = trail.last_checkpoint()?.map_or(0, |c| c.seq);
    let every = settings.checkpoint_every.max(1);
    let mut seqs: Vec<u64> = (signed / every + 1..=head / every).map(|n| n * every).collect();
    let last = seqs.last().copied().unwrap_or(signed);
    if head > last {
        let oldest = trail.audit_entries(&AuditFilter::default(), last, 1)?;
        if oldest
            .first()
            .is_some_and(|e| e.entry.at <= now - settings.checkpoint_after)
        {
            seqs.push(head);
        }
    }
    Ok(seqs)
}

/// Signs the checkpoints due at `now`; returns them. Safe to run in several processes at once:
/// a checkpoint another process signed first is kept.
pub fn seal<T: AuditTrail + ?Sized>(
    trail: &T,
    signer: &dyn CheckpointSigner,
    settings: &AuditSettings,
    now: i64,
) -> Result<Vec<Checkpoint>> {
    due(trail, settings, now)?
        .into_iter()
        .map(|seq| trail.add_checkpoint(Some(seq), now, signer))
        .collect()
}

/// Removes the segments older than `days`, after verifying the whole trail against `trusted`:
/// entries that no longer verify are evidence, and are never removed. Returns the last seq
/// removed.
pub fn retain<T: AuditTrail + ?Sized>(trail: &T, trusted: &[Vec<u8>], days: u32, now: i64) -> Result<Option<u64>> {
    let verified = verify(trail, trusted)?;
    if let Some(broken) = verified.broken {
        return Err(Error::Conflict(format!(
            "nothing was removed: the audit trail is broken at {broken}"
        )));
    }
    trail.retain(now - i64::from(days) * 86_400)
}

/// Signs due checkpoints (and applies retention, when set) every `interval` while the server
/// runs, so a quiet server still signs what it wrote.
pub fn spawn_sealer<T: AuditTrail + ?Sized + 'static>(
    trail: Arc<T>,
    key: Arc<ServerKey>,
    settings: AuditSettings,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        let mut last_retention = i64::MIN;
        loop {
            ticks.tick().await;
            let (trail, key, settings) = (trail.clone(), key.clone(), settings.clone());
            let now = chrono::Utc::now().timestamp();
            let retain_now = settings.retention_days.is_some() && now - last_retention >= 3_600;
            if retain_now {
                last_retention = now;
            }
            let done = tokio::task::spawn_blocking(move || -> Result<()> {
                let sealed = seal(trail.as_ref(), key.as_ref(), &settings, now)?;
                if let Some(last) = sealed.last() {
                    tracing::info!(seq = last.seq, signed = sealed.len(), "audit checkpoints signed");
                }
                if let (true, Some(days)) = (retain_now, settings.retention_days) {
                    let trusted = [key.public_key().to_vec()];
                    if let Some(through) = retain(trail.as_ref(), &trusted, days, now)? {
                        tracing::info!(through, days, "old audit entries removed");
                    }
                }
                Ok(())
            })
            .await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "audit checkpoints"),
                Err(error) => tracing::error!(%error, "audit checkpoint task"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail: &str) -> AuditEntry {
        AuditEntry {
            at: 1_700_000_000,
            who: "ann/dev-1".into(),
            action: "push".into(),
            subject: "visit-1".into(),
            detail: detail.into(),
            from: "10.0.0.7".into(),
        }
    }

    #[test]
    fn the_hash_covers_every_field_and_where_one_ends() {
        let base = entry("");
        let hash = entry_hash(&GENESIS, 1, &base);
        assert_eq!(hash, entry_hash(&GENESIS, 1, &base.clone()));
        assert_ne!(hash, entry_hash(&GENESIS, 2, &base));
        assert_ne!(hash, entry_hash(&[1; 32], 1, &base));
        let variants = [
            AuditEntry { at: 1, ..base.clone() },
            AuditEntry {
                who: "ann".into(),
                ..base.clone()
            },
            AuditEntry {
                action: "receive".into(),
                ..base.clone()
            },
            AuditEntry {
                subject: "visit-2".into(),
                ..base.clone()
            },
            AuditEntry {
                detail: "x".into(),
                ..base.clone()
            },
            AuditEntry {
                from: String::new(),
                ..base.clone()
            },
            // The same bytes split between two fields differently.
            AuditEntry {
                who: "ann/dev-1p".into(),
                action: "ush".into(),
                ..base.clone()
            },
        ];
        for changed in variants {
            assert_ne!(hash, entry_hash(&GENESIS, 1, &changed), "{changed:?}");
        }
    }

    #[test]
    fn a_chain_names_the_first_entry_that_does_not_follow() {
        let mut entries = Vec::new();
        let mut prev = GENESIS;
        for seq in 1..=4 {
            let entry = entry(&format!("n{seq}"));
            let hash = entry_hash(&prev, seq, &entry);
            entries.push(ChainedEntry {
                seq,
                entry,
                prev_hash: prev,
                hash,
            });
            prev = hash;
        }
        let walk = |entries: &[ChainedEntry]| {
            let mut chain = Chain::after(0, GENESIS);
            entries.iter().try_for_each(|e| chain.check(e))
        };
        assert_eq!(walk(&entries), Ok(()));

        let mut altered = entries.clone();
        altered[1].entry.detail = "changed".into();
        assert_eq!(walk(&altered).unwrap_err().seq, 2);

        let mut gap = entries.clone();
        gap.remove(2);
        let broken = walk(&gap).unwrap_err();
        assert_eq!(broken.seq, 3);
        assert!(broken.reason.contains("missing"), "{broken}");

        let mut swapped = entries.clone();
        swapped.swap(1, 2);
        (swapped[1].seq, swapped[2].seq) = (2, 3);
        assert_eq!(walk(&swapped).unwrap_err().seq, 2);
    }

    #[test]
    fn checkpoints_fall_due_every_n_entries_and_when_the_oldest_unsigned_is_old() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::sqlite::SqliteStorage::open(dir.path().join("server.db")).unwrap();
        let settings = AuditSettings {
            checkpoint_every: 3,
            checkpoint_after: 600,
            ..AuditSettings::new(dir.path())
        };
        let key = ServerKey::generate().unwrap();
        assert_eq!(due(&storage, &settings, 0).unwrap(), Vec::<u64>::new());
        for _ in 0..7 {
            crate::storage::Accounts::audit(&storage, &entry("")).unwrap();
        }
        let at = entry("").at;
        assert_eq!(due(&storage, &settings, at).unwrap(), [3, 6]);
        assert_eq!(due(&storage, &settings, at + 600).unwrap(), [3, 6, 7]);
        let sealed = seal(&storage, &key, &settings, at).unwrap();
        assert_eq!(sealed.iter().map(|c| c.seq).collect::<Vec<_>>(), [3, 6]);
        assert_eq!(due(&storage, &settings, at).unwrap(), Vec::<u64>::new());
        assert_eq!(due(&storage, &settings, at + 600).unwrap(), [7]);
        // Signing again where one is signed keeps the first.
        let again = storage.add_checkpoint(Some(6), at + 5, &key).unwrap();
        assert_eq!(again, sealed[1]);
        let err = storage.add_checkpoint(Some(8), at, &key).unwrap_err().to_string();
        assert!(err.contains("past the last"), "{err}");
    }

    #[test]
    fn a_checkpoint_message_binds_its_seq_hash_and_time() {
        let message = checkpoint_message(7, &[3; 32], 99);
        assert_ne!(message, checkpoint_message(8, &[3; 32], 99));
        assert_ne!(message, checkpoint_message(7, &[4; 32], 99));
        assert_ne!(message, checkpoint_message(7, &[3; 32], 100));
        assert!(message.starts_with(CHECKPOINT_DOMAIN));
        assert_eq!(key_id(&[0; 32]).len(), 16);
    }
}
