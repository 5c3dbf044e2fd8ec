//! Erasure in SQLite: a record's rows go (document, log entries, listings, held edits), a
//! tombstone stays, and deleted content is zeroed (`secure_delete`) and out of the WAL.

use outpost_core::{DeviceId, DocId, PersonId, TeamId};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::SqliteStorage;
use crate::error::Result;
use crate::storage::{AuditEntry, Erasures};

/// v7: tombstones of erased records, retention policies and closed cases.
pub(super) fn v7_erasure(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE erased (
            id        TEXT PRIMARY KEY,
            person_id TEXT NOT NULL,
            -- the person was erased whole (id is then the person's)
            whole     INTEGER NOT NULL,
            at        INTEGER NOT NULL
        ) STRICT;
        ALTER TABLE teams ADD COLUMN retention_years INTEGER;
        CREATE TABLE case_closures (
            person_id TEXT PRIMARY KEY,
            closed_at INTEGER NOT NULL
        ) STRICT;",
    )
}

impl Erasures for SqliteStorage {
    fn erase(&self, person: &PersonId, docs: &[DocId], audit: &AuditEntry) -> Result<Vec<DocId>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let whole = docs.is_empty();
        let targets: Vec<String> = if whole {
            let mut stmt = tx.prepare_cached("SELECT doc_id FROM documents WHERE person_id = ?1 ORDER BY doc_id")?;
            stmt.query_map([person.as_str()], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        } else {
            let mut found = Vec::new();
            for doc in docs {
                let owner: Option<String> = tx
                    .prepare_cached("SELECT person_id FROM documents WHERE doc_id = ?1")?
                    .query_row([doc.as_str()], |row| row.get(0))
                    .optional()?;
                if owner.as_deref() == Some(person.as_str()) {
                    found.push(doc.to_string());
                }
            }
            found
        };
        // The log's head stays where it was, whichever entries go.
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('log_floor', (SELECT coalesce(max(seq), 0) FROM log))
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            [],
        )?;
        for doc in &targets {
            for sql in [
                "DELETE FROM log WHERE doc_id = ?1",
                "DELETE FROM listed_visits WHERE visit_id = ?1",
                "DELETE FROM listed_reviews WHERE visit_id = ?1",
                "DELETE FROM listed_actions WHERE visit_id = ?1",
                "DELETE FROM listed_records WHERE doc_id = ?1",
                "DELETE FROM safeguarding_alerts WHERE visit_id = ?1",
                "DELETE FROM held_edits WHERE doc_id = ?1",
                "DELETE FROM documents WHERE doc_id = ?1",
            ] {
                tx.execute(sql, [doc])?;
            }
            // Each document keeps a tombstone, so a change to it arriving later is recognised.
            tx.execute(
                "INSERT OR REPLACE INTO erased (id, person_id, whole, at) VALUES (?1, ?2, ?3, ?4)",
                params![doc, person.as_str(), whole, audit.at],
            )?;
        }
        if whole {
            for sql in [
                "DELETE FROM log WHERE person_id = ?1",
                "DELETE FROM listed_people WHERE person_id = ?1",
                "DELETE FROM allocations WHERE person_id = ?1",
                "DELETE FROM case_closures WHERE person_id = ?1",
                "DELETE FROM people WHERE person_id = ?1",
            ] {
                tx.execute(sql, [person.as_str()])?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO erased (id, person_id, whole, at) VALUES (?1, ?1, 1, ?2)",
                params![person.as_str(), audit.at],
            )?;
        }
        super::audit::append(&tx, audit)?;
        tx.commit()?;
        super::forget::checkpoint(&conn);
        targets.into_iter().map(|d| Ok(DocId::new(d)?)).collect()
    }

    fn erased(&self, id: &str) -> Result<Option<(PersonId, bool)>> {
        let row: Option<(String, bool)> = self
            .conn()?
            .prepare_cached("SELECT person_id, whole FROM erased WHERE id = ?1")?
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        row.map(|(person, whole)| Ok((PersonId::new(person)?, whole)))
            .transpose()
    }

    fn erasures_for(&self, device: &DeviceId) -> Result<(Vec<DocId>, Vec<PersonId>)> {
        let conn = self.conn()?;
        let docs: Vec<String> = conn
            .prepare_cached(
                "SELECT dd.doc_id FROM device_docs dd JOIN erased e ON e.id = dd.doc_id AND e.whole = 0
                 WHERE dd.device_id = ?1 ORDER BY dd.doc_id",
            )?
            .query_map([device.as_str()], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let people: Vec<String> = conn
            .prepare_cached(
                "SELECT DISTINCT dd.person_id FROM device_docs dd JOIN erased e ON e.id = dd.person_id AND e.id = e.person_id
                 WHERE dd.device_id = ?1 ORDER BY dd.person_id",
            )?
            .query_map([device.as_str()], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok((
            docs.into_iter()
                .map(DocId::new)
                .collect::<std::result::Result<_, _>>()?,
            people
                .into_iter()
                .map(PersonId::new)
                .collect::<std::result::Result<_, _>>()?,
        ))
    }

    fn erasures_done(&self, device: &DeviceId, ids: &[String]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute(
                "DELETE FROM device_docs WHERE device_id = ?1 AND (doc_id = ?2 OR person_id = ?2)",
                params![device.as_str(), id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn set_retention(&self, team: &TeamId, years: Option<u32>) -> Result<()> {
        let changed = self.conn()?.execute(
            "UPDATE teams SET retention_years = ?2 WHERE team_id = ?1",
            params![team.as_str(), years],
        )?;
        if changed == 0 {
            return Err(crate::storage::no_team(team));
        }
        Ok(())
    }

    fn close_case(&self, person: &PersonId, at: Option<i64>) -> Result<()> {
        let conn = self.conn()?;
        match at {
            Some(at) => conn.execute(
                "INSERT INTO case_closures (person_id, closed_at) VALUES (?1, ?2)
                 ON CONFLICT (person_id) DO UPDATE SET closed_at = excluded.closed_at",
                params![person.as_str(), at],
            )?,
            None => conn.execute("DELETE FROM case_closures WHERE person_id = ?1", [person.as_str()])?,
        };
        Ok(())
    }

    fn past_retention(&self, now: i64) -> Result<Vec<(PersonId, u32)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT c.person_id, t.retention_years, c.closed_at FROM case_closures c
             JOIN people p ON p.person_id = c.person_id
             JOIN teams t ON t.team_id = p.team_id
             WHERE t.retention_years IS NOT NULL ORDER BY c.person_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?, row.get::<_, i64>(2)?))
        })?;
        let mut due = Vec::new();
        for row in rows {
            let (person, years, closed_at) = row?;
            if crate::storage::retention_ends(closed_at, years) <= now {
                due.push((PersonId::new(person)?, years));
            }
        }
        Ok(due)
    }
}
