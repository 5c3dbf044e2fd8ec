//! Redaction on the server: a document is re-created without the removed passages and without
//! its history (`outpost_core::forget`), replacing the stored one and its log entries in one
//! write; devices holding the old version receive the new one at their next sync. Edits they
//! made offline inside a removed passage come back as held edits for a lead to decide.

use automerge::{AutoCommit, ChangeHash};
use outpost_core::forget::{self, Cut};
use outpost_core::sync::wire::HeldEdit;
use outpost_core::{Author, DocId};

use super::check::Checker;
use super::{SyncService, audit, whole_write};
use crate::error::{Error, Result};
use crate::storage::{AuditEntry, Device, HeldRow, SyncWrite};

/// A held edit's text may be no longer than this.
const MAX_HELD_BYTES: usize = 64 * 1024;

impl SyncService {
    /// Removes `cuts` from the document, as `lead` (audited as `who` from `from`) for `reason`.
    /// The audit records who, when, why and how much was removed, never the text. Returns the
    /// new document's heads.
    pub fn redact(
        &self,
        doc: &DocId,
        cuts: &[Cut],
        lead: &Author,
        who: &str,
        from: &str,
        reason: &str,
    ) -> Result<Vec<ChangeHash>> {
        if reason.trim().is_empty() {
            return Err(Error::bad("reason", "a redaction needs a reason"));
        }
        self.again_while_stale(|| self.redact_once(doc, cuts, lead, who, from, reason.trim()))
    }

    fn redact_once(
        &self,
        doc: &DocId,
        cuts: &[Cut],
        lead: &Author,
        who: &str,
        from: &str,
        reason: &str,
    ) -> Result<Vec<ChangeHash>> {
        let _guard = self.exclusive_guard();
        let stored = self
            .storage
            .doc(doc)?
            .ok_or_else(|| Error::NotFound(format!("document {doc}")))?;
        let mut old = AutoCommit::load(&stored.snapshot)
            .map_err(|e| Error::Internal(format!("stored document {doc} does not load: {e}")))?;
        let now = chrono::Utc::now().timestamp();
        let (mut new, redaction) = forget::rebuild(&mut old, cuts, lead, now)?;
        let mut encoded = Vec::new();
        ciborium::into_writer(&redaction, &mut encoded)
            .map_err(|e| Error::Internal(format!("a redaction does not encode: {e}")))?;
        // The new document's actors are the server's own, like the one it edits with.
        let actors: std::collections::HashSet<Vec<u8>> = new
            .get_changes(&[])
            .iter()
            .map(|c| c.actor_id().to_bytes().to_vec())
            .collect();
        for actor in actors {
            self.storage.register_server_actor(&actor, now)?;
        }
        let heads = new.get_heads();
        let removed: usize = cuts.iter().map(|c| c.end - c.start).sum();
        let write = SyncWrite {
            docs: vec![whole_write(doc, &mut new, Vec::new())?],
            audit: vec![AuditEntry {
                at: now,
                who: who.to_string(),
                action: "redact".into(),
                subject: doc.to_string(),
                detail: format!(
                    "{} passage(s), {removed} characters removed; reason: {reason}",
                    cuts.len()
                ),
                from: from.to_string(),
            }],
            expected: vec![(doc.clone(), stored.heads)],
            redactions: vec![(doc.clone(), encoded)],
            ..SyncWrite::default()
        };
        self.storage.write(None, &write)?;
        Ok(heads)
    }

    /// An edit a device could not carry onto a redacted document, kept for a lead. One for a
    /// document the device may not see, or that no longer exists, is dropped unanswered.
    pub(super) fn held_edit(
        &self,
        checker: &Checker<'_>,
        device: &Device,
        edit: &HeldEdit,
        now: i64,
        write: &mut SyncWrite,
    ) -> Result<()> {
        let doc = DocId::new(edit.doc.as_str()).map_err(|e| Error::bad("held edit document", e.to_string()))?;
        if edit.held.text.len() > MAX_HELD_BYTES {
            return Err(Error::bad(
                "held edit",
                format!(
                    "{} bytes of text, over the {MAX_HELD_BYTES}-byte limit",
                    edit.held.text.len()
                ),
            ));
        }
        let Some(stored) = self.storage.doc(&doc)? else {
            return Ok(());
        };
        if !checker.may_see(&stored.person) {
            return Ok(());
        }
        let mut held = Vec::new();
        ciborium::into_writer(&edit.held, &mut held)
            .map_err(|e| Error::Internal(format!("a held edit does not encode: {e}")))?;
        write.held.push(HeldRow {
            id: 0,
            doc: doc.clone(),
            device: device.device.clone(),
            held,
            received_at: now,
        });
        write.audit.push(audit(device, "held-edit", doc.as_str(), now));
        Ok(())
    }
}
