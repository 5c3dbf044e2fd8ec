//! The audit trail in PostgreSQL: the same hash chain and signed checkpoints as SQLite's.
//!
//! Every append, checkpoint and retention runs under `Lock::Audit`, which stands in for SQLite's
//! write lock: processes sharing the database read the head and write after it in turn, so they
//! form one chain with no gaps or forks. The schema's triggers refuse updates, and deletes other
//! than retention's; the chain and the signed checkpoints are what show tampering beyond them.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Lock, PostgresStorage, seq_from, sql_seq};
use super::{Sql, Tx};
use crate::audit::{Chain, GENESIS, checkpoint_message, entry_hash};
use crate::error::{Error, Result};
use crate::storage::{AuditEntry, AuditFilter, AuditTrail, ChainHash, ChainedEntry, Checkpoint, CheckpointSigner};

const ENTRY_COLUMNS: &str = "seq, at, who, action, subject, detail, from_addr, prev_hash, hash";
const CHECKPOINT_COLUMNS: &str = "seq, hash, at, public_key, signature";

/// A query's parameters, borrowed from the filter and the caller's locals.
type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// Appends `entry` to the chain inside `tx`, taking `Lock::Audit` first so nobody else appends
/// between reading the head and writing after it. Returns the entry's seq.
pub(super) async fn append(tx: &Tx<'_>, entry: &AuditEntry) -> Result<u64> {
    Lock::Audit.take(tx).await?;
    let (head, prev) = head(tx).await?.unwrap_or((0, GENESIS));
    let seq = head + 1;
    let hash = entry_hash(&prev, seq, entry);
    tx.execute(
        &format!("INSERT INTO audit ({ENTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
        &[
            &sql_seq(seq)?,
            &entry.at,
            &entry.who,
            &entry.action,
            &entry.subject,
            &entry.detail,
            &entry.from,
            &prev.as_slice(),
            &hash.as_slice(),
        ],
    )
    .await?;
    Ok(seq)
}

/// Appends `entries` in order, as `append` does one by one, but in three round trips whatever
/// their number (the lock, the head, one insert), so a sync holds `Lock::Audit` briefly.
pub(super) async fn append_all(tx: &Tx<'_>, entries: &[AuditEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    Lock::Audit.take(tx).await?;
    let (mut seq, mut prev) = head(tx).await?.unwrap_or((0, GENESIS));
    let n = entries.len();
    let (mut seqs, mut ats) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut prevs, mut hashes) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for entry in entries {
        seq += 1;
        let hash = entry_hash(&prev, seq, entry);
        seqs.push(sql_seq(seq)?);
        ats.push(entry.at);
        prevs.push(prev.to_vec());
        hashes.push(hash.to_vec());
        prev = hash;
    }
    let text = |field: fn(&AuditEntry) -> &str| entries.iter().map(field).collect::<Vec<&str>>();
    let (whos, actions, subjects) = (text(|e| &e.who), text(|e| &e.action), text(|e| &e.subject));
    let (details, froms) = (text(|e| &e.detail), text(|e| &e.from));
    tx.execute(
        &format!(
            "INSERT INTO audit ({ENTRY_COLUMNS})
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::bytea[], $9::bytea[])"
        ),
        &[
            &seqs, &ats, &whos, &actions, &subjects, &details, &froms, &prevs, &hashes,
        ],
    )
    .await?;
    Ok(())
}

/// The newest entries, newest first, without their hashes (the `Accounts::audit_log` view).
pub(super) async fn latest(client: &impl Sql, limit: usize) -> Result<Vec<AuditEntry>> {
    let rows = client
        .query(
            &format!("SELECT {ENTRY_COLUMNS} FROM audit ORDER BY seq DESC LIMIT $1"),
            &[&sql_limit(limit)],
        )
        .await?;
    rows.iter().map(|row| Ok(chained(row)?.entry)).collect()
}

async fn head(client: &impl Sql) -> Result<Option<(u64, ChainHash)>> {
    let last = match client
        .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .await?
    {
        Some(last) => Some(last),
        // Retention removed every entry: the next chains from the anchor it left.
        None => {
            client
                .query_opt("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", &[])
                .await?
        }
    };
    last.map(|row| {
        let seq = seq_from(row.try_get(0)?)?;
        Ok((seq, to_hash(row.try_get(1)?, seq)?))
    })
    .transpose()
}

impl AuditTrail for PostgresStorage {
    fn audit_entries(&self, filter: &AuditFilter, after_seq: u64, limit: usize) -> Result<Vec<ChainedEntry>> {
        // Past BIGINT nothing is stored: the same empty answer as SQLite's.
        let (after, limit) = (i64::try_from(after_seq).unwrap_or(i64::MAX), sql_limit(limit));
        let mut params = Params::new();
        let condition = filter_sql(filter, &mut params);
        params.extend([&after as &(dyn ToSql + Sync), &limit]);
        let n = params.len();
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit WHERE {condition} AND seq > ${} ORDER BY seq LIMIT ${n}",
            n - 1
        );
        let client = self.client()?;
        self.block_on(query_entries(&client, &sql, &params))
    }

    fn audit_latest(&self, filter: &AuditFilter, limit: usize) -> Result<Vec<ChainedEntry>> {
        let limit = sql_limit(limit);
        let mut params = Params::new();
        let condition = filter_sql(filter, &mut params);
        params.push(&limit);
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit WHERE {condition} ORDER BY seq DESC LIMIT ${}",
            params.len()
        );
        let client = self.client()?;
        self.block_on(query_entries(&client, &sql, &params))
    }

    fn audit_head(&self) -> Result<Option<(u64, ChainHash)>> {
        let client = self.client()?;
        self.block_on(head(&client))
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let client = self.client()?;
        self.block_on(async {
            let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq");
            client.query(&sql, &[]).await?.iter().map(checkpoint).collect()
        })
    }

    fn last_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let client = self.client()?;
        self.block_on(async {
            let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1");
            client.query_opt(&sql, &[]).await?.as_ref().map(checkpoint).transpose()
        })
    }

    fn add_checkpoint(&self, seq: Option<u64>, at: i64, signer: &dyn CheckpointSigner) -> Result<Checkpoint> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            // Another process sealing the same seq waits here, then finds ours and keeps it.
            Lock::Audit.take(&tx).await?;
            let (head, _) = head(&tx)
                .await?
                .ok_or_else(|| Error::NotFound("an audit entry to checkpoint".into()))?;
            let seq = seq.unwrap_or(head);
            if seq > head {
                return Err(Error::bad(
                    "checkpoint",
                    format!("seq {seq} is past the last audit entry, {head}"),
                ));
            }
            let existing = tx
                .query_opt(
                    &format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq = $1"),
                    &[&sql_seq(seq)?],
                )
                .await?;
            if let Some(existing) = existing {
                return checkpoint(&existing);
            }
            let hash = tx
                .query_opt("SELECT hash FROM audit WHERE seq = $1", &[&sql_seq(seq)?])
                .await?
                .ok_or_else(|| Error::NotFound(format!("audit entry {seq}: retention removed it")))?;
            let hash = to_hash(hash.try_get(0)?, seq)?;
            check_segment(&tx, seq).await?;
            let signed = Checkpoint {
                seq,
                hash,
                at,
                public_key: signer.public_key().to_vec(),
                signature: signer.sign(&checkpoint_message(seq, &hash, at)),
            };
            tx.execute(
                &format!("INSERT INTO audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
                &[
                    &sql_seq(seq)?,
                    &signed.hash.as_slice(),
                    &at,
                    &signed.public_key,
                    &signed.signature,
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(signed)
        })
    }

    fn retain(&self, before: i64) -> Result<Option<u64>> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            Lock::Audit.take(&tx).await?;
            // `at` follows seq only roughly (clocks of several processes): a segment goes only
            // if every entry in it is old, so it ends before the first entry that is not.
            let first_kept: Option<i64> = tx
                .query_one("SELECT min(seq) FROM audit WHERE at >= $1", &[&before])
                .await?
                .try_get(0)?;
            let anchor: Option<i64> = match first_kept {
                Some(first_kept) => tx
                    .query_one("SELECT max(seq) FROM audit_checkpoints WHERE seq < $1", &[&first_kept])
                    .await?
                    .try_get(0)?,
                None => tx
                    .query_one("SELECT max(seq) FROM audit_checkpoints", &[])
                    .await?
                    .try_get(0)?,
            };
            let Some(anchor) = anchor else { return Ok(None) };
            let removable: bool = tx
                .query_one("SELECT EXISTS (SELECT 1 FROM audit WHERE seq <= $1)", &[&anchor])
                .await?
                .try_get(0)?;
            if !removable {
                return Ok(None);
            }
            // First, so the triggers let these deletes through and no others.
            tx.execute(
                "UPDATE meta SET value = $1 WHERE key = 'audit_retained_through'",
                &[&anchor.to_string()],
            )
            .await?;
            tx.execute("DELETE FROM audit WHERE seq <= $1", &[&anchor]).await?;
            tx.execute("DELETE FROM audit_checkpoints WHERE seq < $1", &[&anchor])
                .await?;
            tx.commit().await?;
            Ok(Some(seq_from(anchor)?))
        })
    }
}

/// Refuses to sign a chain that is already broken between the checkpoint before `seq` (or the
/// first entry left) and `seq`.
async fn check_segment(tx: &Tx<'_>, seq: u64) -> Result<()> {
    let previous = tx
        .query_opt(
            &format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq < $1 ORDER BY seq DESC LIMIT 1"),
            &[&sql_seq(seq)?],
        )
        .await?;
    let mut chain = match previous.as_ref().map(checkpoint).transpose()? {
        Some(previous) => Chain::after(previous.seq, previous.hash),
        None => {
            let first = tx
                .query_opt(&format!("SELECT {ENTRY_COLUMNS} FROM audit ORDER BY seq LIMIT 1"), &[])
                .await?;
            match first.as_ref().map(chained).transpose()? {
                Some(first) if first.seq > 1 => Chain::after(first.seq - 1, first.prev_hash),
                _ => Chain::after(0, GENESIS),
            }
        }
    };
    let rows = tx
        .query(
            &format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE seq > $1 AND seq <= $2 ORDER BY seq"),
            &[&sql_seq(chain.seq())?, &sql_seq(seq)?],
        )
        .await?;
    for row in &rows {
        chain
            .check(&chained(row)?)
            .map_err(|broken| crate::audit::unsigned_segment(Some(&broken), chain.seq()))?;
    }
    if chain.seq() != seq {
        return Err(crate::audit::unsigned_segment(None, chain.seq()));
    }
    Ok(())
}

/// The WHERE condition for `filter`, its parameters pushed onto `params` (numbered from 1).
fn filter_sql<'a>(filter: &'a AuditFilter, params: &mut Params<'a>) -> String {
    let mut conditions = vec!["true".to_string()];
    if let Some(record) = &filter.record {
        params.push(record);
        conditions.push(format!("subject = ${}", params.len()));
    }
    if let Some(user) = &filter.user {
        params.push(user);
        let n = params.len();
        // `user` itself, or `user/<device>`: a range on the index rather than LIKE, whose
        // wildcards an id could contain ('0' is the character after '/'). The column's collation
        // is "C", so the range is in byte order whatever the database's locale.
        conditions.push(format!(
            "(who = ${n} OR (who >= (${n}::text || '/') AND who < (${n}::text || '0')))"
        ));
    }
    if let Some(since) = &filter.since {
        params.push(since);
        conditions.push(format!("at >= ${}", params.len()));
    }
    conditions.join(" AND ")
}

async fn query_entries(client: &impl Sql, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<ChainedEntry>> {
    client.query(sql, params).await?.iter().map(chained).collect()
}

fn chained(row: &Row) -> Result<ChainedEntry> {
    let seq = seq_from(row.try_get(0)?)?;
    Ok(ChainedEntry {
        seq,
        entry: AuditEntry {
            at: row.try_get(1)?,
            who: row.try_get(2)?,
            action: row.try_get(3)?,
            subject: row.try_get(4)?,
            detail: row.try_get(5)?,
            from: row.try_get(6)?,
        },
        prev_hash: to_hash(row.try_get(7)?, seq)?,
        hash: to_hash(row.try_get(8)?, seq)?,
    })
}

fn checkpoint(row: &Row) -> Result<Checkpoint> {
    let seq = seq_from(row.try_get(0)?)?;
    Ok(Checkpoint {
        seq,
        hash: to_hash(row.try_get(1)?, seq)?,
        at: row.try_get(2)?,
        public_key: row.try_get(3)?,
        signature: row.try_get(4)?,
    })
}

fn to_hash(bytes: Vec<u8>, seq: u64) -> Result<ChainHash> {
    bytes
        .try_into()
        .map_err(|_| Error::Internal(format!("audit seq {seq}: a stored hash is not 32 bytes")))
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
