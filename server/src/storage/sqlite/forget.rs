//! Redactions in SQLite: a redacted document's older log entries are deleted with their bytes,
//! devices holding the old version are sent the new one whole with what they need to carry
//! their edits, and deleted content is zeroed on disk (`secure_delete`) and out of the WAL.

use outpost_core::DocId;
use rusqlite::{Transaction, params};

use crate::error::Result;
use crate::storage::HeldRow;

/// v6: what devices need to replace a redacted document, and edits held back from one.
pub(super) fn v6_forget(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE documents ADD COLUMN replaced_seq INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE documents ADD COLUMN redaction BLOB;
        CREATE TABLE held_edits (
            id          INTEGER PRIMARY KEY,
            doc_id      TEXT NOT NULL,
            device_id   TEXT NOT NULL,
            held        BLOB NOT NULL,
            received_at INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX held_edits_doc ON held_edits(doc_id, id);",
    )
}

/// The document just written at log entry `seq` replaces its history: older entries go (they
/// hold the removed text), and devices behind `seq` that hold it are sent it whole.
pub(super) fn replace_history(tx: &Transaction<'_>, doc: &DocId, seq: u64, redaction: &[u8]) -> Result<()> {
    tx.execute(
        "DELETE FROM log WHERE doc_id = ?1 AND seq <> ?2",
        params![doc.as_str(), seq as i64],
    )?;
    tx.execute("UPDATE log SET bytes = x'' WHERE seq = ?1", [seq as i64])?;
    tx.execute(
        "UPDATE documents SET pruned_through = ?2, replaced_seq = ?2, redaction = ?3 WHERE doc_id = ?1",
        params![doc.as_str(), seq as i64, redaction],
    )?;
    Ok(())
}

pub(super) fn insert_held(tx: &Transaction<'_>, held: &HeldRow) -> Result<()> {
    tx.execute(
        "INSERT INTO held_edits (doc_id, device_id, held, received_at) VALUES (?1, ?2, ?3, ?4)",
        params![held.doc.as_str(), held.device.as_str(), held.held, held.received_at],
    )?;
    Ok(())
}

pub(super) fn held_edits(conn: &rusqlite::Connection, doc: &DocId) -> Result<Vec<HeldRow>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, device_id, held, received_at FROM held_edits WHERE doc_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([doc.as_str()], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Vec<u8>>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })?;
    rows.map(|row| {
        let (id, device, held, received_at) = row?;
        Ok(HeldRow {
            id,
            doc: doc.clone(),
            device: outpost_core::DeviceId::new(device)?,
            held,
            received_at,
        })
    })
    .collect()
}

/// Empties the WAL, which holds earlier images of the pages a redaction rewrote.
pub(super) fn checkpoint(conn: &rusqlite::Connection) {
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0)) {
        Ok(0) => {}
        Ok(_) => tracing::warn!("the WAL could not be emptied after a redaction (a reader held it)"),
        Err(e) => tracing::warn!(error = %e, "the WAL could not be emptied after a redaction"),
    }
}

/// Deletes a held edit a lead decided on; false when it is gone already.
pub(super) fn settle_held(conn: &rusqlite::Connection, id: i64, doc: &DocId) -> Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM held_edits WHERE id = ?1 AND doc_id = ?2",
        params![id, doc.as_str()],
    )?;
    Ok(deleted > 0)
}
