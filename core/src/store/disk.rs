//! How documents sit on disk: connection settings, appending changes with their heads,
//! snapshots, loading, and compaction.

use automerge::{ActorId, AutoCommit, ChangeHash, transaction::CommitOptions};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use super::{Store, index};
use crate::error::{Error, Result};
use crate::ids::{Author, DocId};
use crate::model::header;

impl Store {
    /// Writes the document as one snapshot and removes the changes it replaces, atomically.
    pub fn compact(&mut self, id: &DocId) -> Result<()> {
        let mut doc = self.take_doc(id)?;
        let snapshot = doc.save();
        let result = (|| -> Result<()> {
            let tx = self.conn.transaction()?;
            tx.execute(
                "UPDATE documents SET snapshot = ?1 WHERE doc_id = ?2",
                params![snapshot, id.as_str()],
            )?;
            tx.execute("DELETE FROM changes WHERE doc_id = ?1", [id.as_str()])?;
            tx.commit()?;
            Ok(())
        })();
        if result.is_ok() {
            self.cache.put(id.clone(), doc);
            self.cache.reset_change_count(id);
        }
        result
    }

    /// Writes a consistent copy of the whole store to `dest` (which must not exist), as a
    /// phone's backup does.
    pub fn backup_to(&self, dest: impl AsRef<std::path::Path>) -> Result<()> {
        let dest = dest.as_ref();
        let dest = dest
            .to_str()
            .ok_or_else(|| Error::invalid("backup path", format!("{} is not UTF-8", dest.display())))?;
        self.conn.execute("VACUUM INTO ?1", [dest])?;
        Ok(())
    }

    /// Compacts every document that has changes stored beside its snapshot.
    pub fn compact_all(&mut self) -> Result<usize> {
        let ids: Vec<String> = self
            .conn
            .prepare("SELECT DISTINCT doc_id FROM changes")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in &ids {
            self.compact(&DocId::new(id.as_str())?)?;
        }
        Ok(ids.len())
    }
}

pub(super) fn configure(conn: &Connection) -> Result<()> {
    // WAL must be set outside a transaction; FULL syncs the WAL on every commit, because a phone
    // whose battery dies is a power cut, not a process crash.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten with zeros, so text a redaction removes leaves no trace in
    // freed pages of the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Commits pending operations as one change stamped with `now`, the device's time.
pub(super) fn commit(doc: &mut AutoCommit, now: DateTime<Utc>) -> Option<ChangeHash> {
    doc.commit_with(CommitOptions::default().with_time(now.timestamp()))
}

/// A connection to the store's file. On a read-only disk (a memory card the system remounted
/// read-only, say) a plain open fails, because SQLite cannot create the WAL's shared-memory
/// file there; the store is opened read-only instead, so everything saved can still be read,
/// and every write fails naming the read-only disk. A WAL left by a crash is read with the file
/// (`mode=ro`); without one the file is read as it is (`immutable=1`, which takes none of the
/// locks a read-only disk cannot hold).
pub(super) fn connection(path: &std::path::Path) -> Result<Connection> {
    // Opening for append changes nothing in the file.
    let read_only_disk = matches!(
        std::fs::OpenOptions::new().append(true).open(path),
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem
    );
    if !read_only_disk {
        return Ok(Connection::open(path)?);
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let crashed = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    let name = path
        .to_str()
        .ok_or_else(|| Error::invalid("store path", format!("{} is not UTF-8", path.display())))?;
    // A URI's path escapes only what would end it or start an escape.
    let name = name.replace('%', "%25").replace('?', "%3f").replace('#', "%23");
    let mode = if crashed { "mode=ro" } else { "immutable=1" };
    Ok(Connection::open_with_flags(
        format!("file:{name}?{mode}"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?)
}

pub(super) fn write_changes(
    tx: &Transaction<'_>,
    id: &DocId,
    doc: &mut AutoCommit,
    changes: &[Vec<u8>],
    existed: bool,
) -> Result<i64> {
    let heads = encode_heads(&doc.get_heads());
    let revision: i64 = tx.query_row(
        "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value",
        [],
        |row| row.get(0),
    )?;
    if existed {
        tx.execute(
            "UPDATE documents SET heads = ?1, revision = ?2 WHERE doc_id = ?3",
            params![heads, revision, id.as_str()],
        )?;
    } else {
        tx.execute(
            "INSERT INTO documents (doc_id, snapshot, heads, revision) VALUES (?1, NULL, ?2, ?3)",
            params![id.as_str(), heads, revision],
        )?;
    }
    let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO changes (doc_id, hash, data) VALUES (?1, ?2, ?3)")?;
    for change in changes {
        let hash = automerge::Change::from_bytes(change.clone())
            .map_err(|e| Error::InvalidChanges {
                id: id.clone(),
                reason: e.to_string(),
            })?
            .hash();
        insert.execute(params![id.as_str(), hash.0.as_slice(), change])?;
    }
    index::write(tx, id, doc)?;
    Ok(revision)
}

/// Stores the whole document as its snapshot, replacing any stored changes. `saved` may carry
/// bytes that already are this document saved, sparing a save.
pub(super) fn write_snapshot(
    tx: &Transaction<'_>,
    id: &DocId,
    doc: &mut AutoCommit,
    saved: Option<&[u8]>,
    existed: bool,
) -> Result<i64> {
    let snapshot = match saved {
        Some(bytes) => bytes.to_vec(),
        None => doc.save(),
    };
    let revision = write_changes(tx, id, doc, &[], existed)?;
    tx.execute(
        "UPDATE documents SET snapshot = ?1 WHERE doc_id = ?2",
        params![snapshot, id.as_str()],
    )?;
    tx.execute("DELETE FROM changes WHERE doc_id = ?1", [id.as_str()])?;
    Ok(revision)
}

/// Loads a document from its snapshot and the changes stored after it.
pub(super) fn load(conn: &Connection, id: &DocId, author: &Author, actor: &ActorId) -> Result<AutoCommit> {
    let corrupt = |reason: String| Error::CorruptDocument { id: id.clone(), reason };
    let snapshot: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT snapshot FROM documents WHERE doc_id = ?1")?
        .query_row([id.as_str()], |row| row.get(0))
        .optional()?;
    let snapshot = snapshot.ok_or_else(|| Error::NotFound(id.clone()))?;
    let mut doc = match snapshot {
        Some(bytes) => AutoCommit::load(&bytes).map_err(|e| corrupt(format!("snapshot: {e}")))?,
        None => AutoCommit::new(),
    };
    let mut stmt = conn.prepare_cached("SELECT data FROM changes WHERE doc_id = ?1 ORDER BY seq")?;
    let mut changes = Vec::new();
    for data in stmt.query_map([id.as_str()], |row| row.get::<_, Vec<u8>>(0))? {
        changes.push(automerge::Change::from_bytes(data?).map_err(|e| corrupt(format!("change: {e}")))?);
    }
    doc.apply_changes(changes)
        .map_err(|e| corrupt(format!("change: {e}")))?;
    if !doc.get_missing_deps(&[]).is_empty() {
        return Err(corrupt("stored changes depend on changes that are not stored".into()));
    }
    header::read(&doc, id)?;
    doc.set_author(Some(author.to_automerge()));
    doc.set_actor(actor.clone());
    Ok(doc)
}

pub(crate) fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

pub(crate) fn decode_heads(id: &DocId, bytes: &[u8]) -> Result<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(Error::CorruptDocument {
            id: id.clone(),
            reason: format!("stored heads are {} bytes, not a multiple of 32", bytes.len()),
        });
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|chunk| {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(chunk);
            ChangeHash(hash)
        })
        .collect())
}
