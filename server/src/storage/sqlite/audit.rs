//! The audit trail in SQLite: an append-only hash chain with signed checkpoints.
//!
//! Every append runs inside a write transaction (BEGIN IMMEDIATE), reads the head and chains
//! from it, so server and admin processes writing to one database serialise on SQLite's write
//! lock and still form one chain with no gaps. Triggers refuse updates, and deletes other than
//! retention's; they guard against the server's own mistakes, while the chain and the signed
//! checkpoints are what show tampering by anyone who bypasses them.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params, params_from_iter};

use super::SqliteStorage;
use crate::audit::{Chain, GENESIS, checkpoint_message, entry_hash};
use crate::error::{Error, Result};
use crate::storage::{AuditEntry, AuditFilter, AuditTrail, ChainHash, ChainedEntry, Checkpoint, CheckpointSigner};

const ENTRY_COLUMNS: &str = "seq, at, who, action, subject, detail, from_addr, prev_hash, hash";
const CHECKPOINT_COLUMNS: &str = "seq, hash, at, public_key, signature";

/// v4: the audit trail chained by hash, with the client's address; checkpoints signed by the
/// server's key. Entries already written are chained in the order they were written.
pub(super) fn v4_audit(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE audit_chain (
            seq       INTEGER PRIMARY KEY,
            at        INTEGER NOT NULL,
            who       TEXT NOT NULL,
            action    TEXT NOT NULL,
            subject   TEXT NOT NULL,
            detail    TEXT NOT NULL,
            -- the client's address, empty for the admin CLI and the server itself
            from_addr TEXT NOT NULL,
            prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
            hash      BLOB NOT NULL CHECK (length(hash) = 32)
        ) STRICT;",
    )?;
    {
        let mut old = tx.prepare("SELECT at, who, action, subject, detail FROM audit ORDER BY id")?;
        let mut insert = tx.prepare(&format!(
            "INSERT INTO audit_chain ({ENTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))?;
        let mut rows = old.query([])?;
        let (mut seq, mut prev) = (0u64, GENESIS);
        while let Some(row) = rows.next()? {
            seq += 1;
            let entry = AuditEntry {
                at: row.get(0)?,
                who: row.get(1)?,
                action: row.get(2)?,
                subject: row.get(3)?,
                detail: row.get(4)?,
                from: String::new(),
            };
            let hash = entry_hash(&prev, seq, &entry);
            insert_entry(&mut insert, seq, &entry, &prev, &hash)?;
            prev = hash;
        }
    }
    tx.execute_batch(
        "DROP TABLE audit;
        ALTER TABLE audit_chain RENAME TO audit;
        CREATE INDEX audit_subject ON audit(subject, seq);
        CREATE INDEX audit_who ON audit(who, seq);
        CREATE TABLE audit_checkpoints (
            seq        INTEGER PRIMARY KEY,
            hash       BLOB NOT NULL CHECK (length(hash) = 32),
            at         INTEGER NOT NULL,
            public_key BLOB NOT NULL,
            signature  BLOB NOT NULL
        ) STRICT;
        -- Retention removes entries through this seq (a checkpoint's) and nothing past it.
        INSERT INTO meta (key, value) VALUES ('audit_retained_through', 0);
        CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
        CREATE TRIGGER audit_retained_only BEFORE DELETE ON audit
        WHEN old.seq > coalesce((SELECT value FROM meta WHERE key = 'audit_retained_through'), 0)
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: only retention removes entries'); END;
        CREATE TRIGGER audit_checkpoints_kept BEFORE UPDATE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are never changed'); END;
        CREATE TRIGGER audit_checkpoints_retained_only BEFORE DELETE ON audit_checkpoints
        WHEN old.seq >= coalesce((SELECT value FROM meta WHERE key = 'audit_retained_through'), 0)
        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are removed only by retention, and never the anchor'); END;",
    )
}

/// Appends `entry` to the chain. The caller holds a write transaction on `conn`, so nobody else
/// appends between reading the head and writing after it.
pub(super) fn append(conn: &Connection, entry: &AuditEntry) -> Result<u64> {
    let (head, prev) = head(conn)?.unwrap_or((0, GENESIS));
    let seq = head + 1;
    let hash = entry_hash(&prev, seq, entry);
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO audit ({ENTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?;
    insert_entry(&mut insert, seq, entry, &prev, &hash)?;
    Ok(seq)
}

/// The newest entries, newest first, without their hashes (the `Accounts::audit_log` view).
pub(super) fn latest(conn: &Connection, limit: usize) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?1"))?;
    let mut rows = stmt.query([sql_limit(limit)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(chained(row)?.entry);
    }
    Ok(out)
}

fn insert_entry(
    insert: &mut rusqlite::Statement<'_>,
    seq: u64,
    entry: &AuditEntry,
    prev: &ChainHash,
    hash: &ChainHash,
) -> rusqlite::Result<usize> {
    insert.execute(params![
        sql_seq(seq),
        entry.at,
        entry.who,
        entry.action,
        entry.subject,
        entry.detail,
        entry.from,
        prev.as_slice(),
        hash.as_slice()
    ])
}

fn head(conn: &Connection) -> Result<Option<(u64, ChainHash)>> {
    let last = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], seq_and_hash)
        .optional()?;
    let last = match last {
        Some(last) => Some(last),
        // Retention removed every entry: the next chains from the anchor it left.
        None => conn
            .prepare_cached("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")?
            .query_row([], seq_and_hash)
            .optional()?,
    };
    last.map(|(seq, hash)| Ok((seq, to_hash(hash, seq)?))).transpose()
}

impl AuditTrail for SqliteStorage {
    fn audit_entries(&self, filter: &AuditFilter, after_seq: u64, limit: usize) -> Result<Vec<ChainedEntry>> {
        let (condition, mut values) = filter_sql(filter);
        values.push(Value::Integer(sql_seq(after_seq)));
        values.push(Value::Integer(sql_limit(limit)));
        let n = values.len();
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit WHERE {condition} AND seq > ?{} ORDER BY seq LIMIT ?{n}",
            n - 1
        );
        query_entries(&*self.conn()?, &sql, values)
    }

    fn audit_latest(&self, filter: &AuditFilter, limit: usize) -> Result<Vec<ChainedEntry>> {
        let (condition, mut values) = filter_sql(filter);
        values.push(Value::Integer(sql_limit(limit)));
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit WHERE {condition} ORDER BY seq DESC LIMIT ?{}",
            values.len()
        );
        query_entries(&*self.conn()?, &sql, values)
    }

    fn audit_head(&self) -> Result<Option<(u64, ChainHash)>> {
        head(&*self.conn()?)
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(checkpoint(row)?);
        }
        Ok(out)
    }

    fn last_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let conn = self.conn()?;
        last_checkpoint_before(&conn, u64::MAX)
    }

    fn add_checkpoint(&self, seq: Option<u64>, at: i64, signer: &dyn CheckpointSigner) -> Result<Checkpoint> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (head, _) = head(&tx)?.ok_or_else(|| Error::NotFound("an audit entry to checkpoint".into()))?;
        let seq = seq.unwrap_or(head);
        if seq > head {
            return Err(Error::bad(
                "checkpoint",
                format!("seq {seq} is past the last audit entry, {head}"),
            ));
        }
        if let Some(existing) = last_checkpoint_before(&tx, seq.saturating_add(1))?.filter(|c| c.seq == seq) {
            return Ok(existing);
        }
        let hash: Vec<u8> = tx
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [sql_seq(seq)], |row| {
                row.get(0)
            })
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("audit entry {seq}: retention removed it")))?;
        let hash = to_hash(hash, seq)?;
        check_segment(&tx, seq)?;
        let message = checkpoint_message(seq, &hash, at);
        let signed = Checkpoint {
            seq,
            hash,
            at,
            public_key: signer.public_key().to_vec(),
            signature: signer.sign(&message),
        };
        tx.execute(
            &format!("INSERT INTO audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![
                sql_seq(seq),
                signed.hash.as_slice(),
                at,
                signed.public_key,
                signed.signature
            ],
        )?;
        tx.commit()?;
        Ok(signed)
    }

    fn retain(&self, before: i64) -> Result<Option<u64>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // `at` follows seq only roughly (clocks of several processes): a segment goes only if
        // every entry in it is old, so it ends before the first entry that is not.
        let first_kept: Option<i64> =
            tx.query_row("SELECT min(seq) FROM audit WHERE at >= ?1", [before], |row| row.get(0))?;
        let anchor: Option<i64> = match first_kept {
            Some(first_kept) => tx.query_row(
                "SELECT max(seq) FROM audit_checkpoints WHERE seq < ?1",
                [first_kept],
                |row| row.get(0),
            )?,
            None => tx.query_row("SELECT max(seq) FROM audit_checkpoints", [], |row| row.get(0))?,
        };
        let Some(anchor) = anchor else { return Ok(None) };
        let removable: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM audit WHERE seq <= ?1)", [anchor], |row| {
            row.get(0)
        })?;
        if !removable {
            return Ok(None);
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'audit_retained_through'",
            [anchor],
        )?;
        tx.execute("DELETE FROM audit WHERE seq <= ?1", [anchor])?;
        tx.execute("DELETE FROM audit_checkpoints WHERE seq < ?1", [anchor])?;
        tx.commit()?;
        Ok(Some(from_sql_seq(anchor)?))
    }
}

/// Refuses to sign a chain that is already broken between the checkpoint before `seq` (or the
/// first entry left) and `seq`.
fn check_segment(conn: &Connection, seq: u64) -> Result<()> {
    let mut chain = match last_checkpoint_before(conn, seq)? {
        Some(previous) => Chain::after(previous.seq, previous.hash),
        None => {
            let first = conn
                .query_row(
                    &format!("SELECT {ENTRY_COLUMNS} FROM audit ORDER BY seq LIMIT 1"),
                    [],
                    |row| Ok(chained(row)),
                )
                .optional()?
                .transpose()?;
            match first {
                Some(first) if first.seq > 1 => Chain::after(first.seq - 1, first.prev_hash),
                _ => Chain::after(0, GENESIS),
            }
        }
    };
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE seq > ?1 AND seq <= ?2 ORDER BY seq");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([sql_seq(chain.seq()), sql_seq(seq)])?;
    while let Some(row) = rows.next()? {
        chain
            .check(&chained(row)?)
            .map_err(|broken| crate::audit::unsigned_segment(Some(&broken), chain.seq()))?;
    }
    if chain.seq() != seq {
        return Err(crate::audit::unsigned_segment(None, chain.seq()));
    }
    Ok(())
}

fn last_checkpoint_before(conn: &Connection, seq: u64) -> Result<Option<Checkpoint>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq < ?1 ORDER BY seq DESC LIMIT 1"
    ))?;
    let mut rows = stmt.query([sql_seq(seq)])?;
    rows.next()?.map(checkpoint).transpose()
}

/// The WHERE condition for `filter` and its parameters (numbered from 1).
fn filter_sql(filter: &AuditFilter) -> (String, Vec<Value>) {
    let mut conditions = vec!["1".to_string()];
    let mut values = Vec::new();
    if let Some(record) = &filter.record {
        values.push(Value::Text(record.clone()));
        conditions.push(format!("subject = ?{}", values.len()));
    }
    if let Some(user) = &filter.user {
        values.push(Value::Text(user.clone()));
        let n = values.len();
        // `user` itself, or `user/<device>`: a range on the index rather than LIKE, whose
        // wildcards an id could contain ('0' is the character after '/').
        conditions.push(format!("(who = ?{n} OR (who >= ?{n} || '/' AND who < ?{n} || '0'))"));
    }
    if let Some(since) = filter.since {
        values.push(Value::Integer(since));
        conditions.push(format!("at >= ?{}", values.len()));
    }
    (conditions.join(" AND "), values)
}

fn query_entries(conn: &Connection, sql: &str, values: Vec<Value>) -> Result<Vec<ChainedEntry>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params_from_iter(values))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(chained(row)?);
    }
    Ok(out)
}

fn chained(row: &Row<'_>) -> Result<ChainedEntry> {
    let seq = from_sql_seq(row.get(0)?)?;
    Ok(ChainedEntry {
        seq,
        entry: AuditEntry {
            at: row.get(1)?,
            who: row.get(2)?,
            action: row.get(3)?,
            subject: row.get(4)?,
            detail: row.get(5)?,
            from: row.get(6)?,
        },
        prev_hash: to_hash(row.get(7)?, seq)?,
        hash: to_hash(row.get(8)?, seq)?,
    })
}

fn checkpoint(row: &Row<'_>) -> Result<Checkpoint> {
    let seq = from_sql_seq(row.get(0)?)?;
    Ok(Checkpoint {
        seq,
        hash: to_hash(row.get(1)?, seq)?,
        at: row.get(2)?,
        public_key: row.get(3)?,
        signature: row.get(4)?,
    })
}

fn seq_and_hash(row: &Row<'_>) -> rusqlite::Result<(u64, Vec<u8>)> {
    let seq: i64 = row.get(0)?;
    Ok((seq.max(0) as u64, row.get(1)?))
}

fn to_hash(bytes: Vec<u8>, seq: u64) -> Result<ChainHash> {
    bytes
        .try_into()
        .map_err(|_| Error::Internal(format!("audit seq {seq}: a stored hash is not 32 bytes")))
}

fn sql_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn from_sql_seq(seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| Error::Internal(format!("a stored audit seq {seq} is negative")))
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::audit::{AuditSettings, seal, verify};
    use crate::signing::ServerKey;
    use crate::storage::Accounts;
    use crate::storage::sqlite::MIGRATIONS;

    /// A database at schema v3 holding audit entries written before the chain existed.
    fn v3_with_entries(path: &Path) {
        let mut conn = Connection::open(path).unwrap();
        let tx = conn.transaction().unwrap();
        for migration in &MIGRATIONS[..3] {
            migration(&tx).unwrap();
        }
        tx.pragma_update(None, "user_version", 3).unwrap();
        tx.commit().unwrap();
        for (at, action) in [(300, "create-team"), (100, "add-worker"), (200, "issue-enrolment-code")] {
            conn.execute(
                "INSERT INTO audit (at, who, action, subject, detail) VALUES (?1, 'admin', ?2, 'north', '')",
                params![at, action],
            )
            .unwrap();
        }
    }

    #[test]
    fn entries_written_before_v4_are_chained_in_the_order_they_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        v3_with_entries(&path);

        let storage = SqliteStorage::open(&path).unwrap();
        let all = storage.audit_entries(&AuditFilter::default(), 0, 10).unwrap();
        let order: Vec<(u64, &str)> = all.iter().map(|e| (e.seq, e.entry.action.as_str())).collect();
        assert_eq!(
            order,
            [(1, "create-team"), (2, "add-worker"), (3, "issue-enrolment-code")]
        );
        assert_eq!(all[0].prev_hash, GENESIS);
        assert!(all.iter().all(|e| e.entry.from.is_empty()));

        let key = ServerKey::generate().unwrap();
        storage
            .audit(&AuditEntry {
                at: 400,
                who: "ann/dev-1".into(),
                action: "enrol-device".into(),
                subject: "dev-1".into(),
                detail: String::new(),
                from: "192.0.2.1".into(),
            })
            .unwrap();
        let settings = AuditSettings {
            checkpoint_every: 2,
            ..AuditSettings::new(dir.path())
        };
        let sealed = seal(&storage, &key, &settings, 500).unwrap();
        assert_eq!(sealed.iter().map(|c| c.seq).collect::<Vec<_>>(), [2, 4]);
        let verified = verify(&storage, &[key.public_key().to_vec()]).unwrap();
        assert!(verified.is_intact(), "{verified}");
        assert_eq!((verified.last, verified.checkpoints), (Some(4), 2));
        assert_eq!(storage.audit_log(1).unwrap()[0].from, "192.0.2.1");
    }
}
