//! Redactions in PostgreSQL: as in SQLite (`sqlite/forget.rs`), a redacted document's older log
//! entries are deleted with their bytes. PostgreSQL keeps deleted row versions on disk until
//! VACUUM reclaims them; SECURITY.md says what an operator runs after a redaction.

use outpost_core::{DeviceId, DocId};

use super::sql_seq;
use super::{Sql, Tx};
use crate::error::Result;
use crate::storage::HeldRow;

/// v3: what devices need to replace a redacted document, and edits held back from one.
pub(super) const V3_FORGET: &str = "
    ALTER TABLE documents ADD COLUMN replaced_seq BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE documents ADD COLUMN redaction BYTEA;
    CREATE TABLE held_edits (
        id          BIGSERIAL PRIMARY KEY,
        doc_id      TEXT NOT NULL,
        device_id   TEXT NOT NULL,
        held        BYTEA NOT NULL,
        received_at BIGINT NOT NULL
    );
    CREATE INDEX held_edits_doc ON held_edits(doc_id, id);";

/// The document just written at log entry `seq` replaces its history: older entries go (they
/// hold the removed text), and devices behind `seq` that hold it are sent it whole.
pub(super) async fn replace_history(tx: &Tx<'_>, doc: &DocId, seq: u64, redaction: &[u8]) -> Result<()> {
    let seq = sql_seq(seq)?;
    tx.execute(
        "DELETE FROM log WHERE doc_id = $1 AND seq <> $2",
        &[&doc.as_str(), &seq],
    )
    .await?;
    tx.execute("UPDATE log SET bytes = ''::bytea WHERE seq = $1", &[&seq])
        .await?;
    tx.execute(
        "UPDATE documents SET pruned_through = $2, replaced_seq = $2, redaction = $3 WHERE doc_id = $1",
        &[&doc.as_str(), &seq, &redaction],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_held(tx: &Tx<'_>, held: &HeldRow) -> Result<()> {
    tx.execute(
        "INSERT INTO held_edits (doc_id, device_id, held, received_at) VALUES ($1, $2, $3, $4)",
        &[&held.doc.as_str(), &held.device.as_str(), &held.held, &held.received_at],
    )
    .await?;
    Ok(())
}

pub(super) async fn held_edits(client: &impl Sql, doc: &DocId) -> Result<Vec<HeldRow>> {
    let rows = client
        .query(
            "SELECT id, device_id, held, received_at FROM held_edits WHERE doc_id = $1 ORDER BY id",
            &[&doc.as_str()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(HeldRow {
                id: row.try_get(0)?,
                doc: doc.clone(),
                device: DeviceId::new(row.try_get::<_, String>(1)?)?,
                held: row.try_get(2)?,
                received_at: row.try_get(3)?,
            })
        })
        .collect()
}

/// Deletes a held edit a lead decided on; false when it is gone already.
pub(super) async fn settle_held(client: &impl Sql, id: i64, doc: &DocId) -> Result<bool> {
    let deleted = client
        .execute(
            "DELETE FROM held_edits WHERE id = $1 AND doc_id = $2",
            &[&id, &doc.as_str()],
        )
        .await?;
    Ok(deleted > 0)
}
