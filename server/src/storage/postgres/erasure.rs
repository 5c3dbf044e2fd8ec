//! Erasure in PostgreSQL, as in SQLite (`sqlite/erasure.rs`): a record's rows go, a tombstone
//! stays. PostgreSQL keeps deleted row versions on disk until VACUUM reclaims them; SECURITY.md
//! says what an operator runs after an erasure.

use outpost_core::{DeviceId, DocId, PersonId, TeamId};

use super::Sql;
use super::{Lock, PostgresStorage};
use crate::error::Result;
use crate::storage::{AuditEntry, Erasures, no_team};

/// v4: tombstones of erased records, retention policies and closed cases.
pub(super) const V4_ERASURE: &str = "
    CREATE TABLE erased (
        id        TEXT PRIMARY KEY,
        person_id TEXT NOT NULL,
        whole     BOOLEAN NOT NULL,
        at        BIGINT NOT NULL
    );
    ALTER TABLE teams ADD COLUMN retention_years INTEGER;
    CREATE TABLE case_closures (
        person_id TEXT PRIMARY KEY,
        closed_at BIGINT NOT NULL
    );";

impl PostgresStorage {
    fn erase_once(&self, person: &PersonId, docs: &[DocId], audit: &AuditEntry) -> Result<Vec<DocId>> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            // Log entries are deleted: no puller may be reading past them meanwhile.
            Lock::Log.take(&tx).await?;
            let whole = docs.is_empty();
            let person_id = person.as_str();
            let targets: Vec<String> = if whole {
                tx.query(
                    "SELECT doc_id FROM documents WHERE person_id = $1 ORDER BY doc_id",
                    &[&person_id],
                )
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<std::result::Result<_, _>>()?
            } else {
                let wanted: Vec<&str> = docs.iter().map(DocId::as_str).collect();
                tx.query(
                    "SELECT doc_id FROM documents WHERE person_id = $1 AND doc_id = ANY($2) ORDER BY doc_id",
                    &[&person_id, &wanted],
                )
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<std::result::Result<_, _>>()?
            };
            // The log's head stays where it was, whichever entries go.
            tx.execute(
                "INSERT INTO meta (key, value) SELECT 'log_floor', coalesce(max(seq), 0)::text FROM log
                 ON CONFLICT (key) DO UPDATE
                 SET value = GREATEST(meta.value::bigint, excluded.value::bigint)::text",
                &[],
            )
            .await?;
            for doc in &targets {
                for sql in [
                    "DELETE FROM log WHERE doc_id = $1",
                    "DELETE FROM listed_visits WHERE visit_id = $1",
                    "DELETE FROM listed_reviews WHERE visit_id = $1",
                    "DELETE FROM listed_actions WHERE visit_id = $1",
                    "DELETE FROM listed_records WHERE doc_id = $1",
                    "DELETE FROM safeguarding_alerts WHERE visit_id = $1",
                    "DELETE FROM held_edits WHERE doc_id = $1",
                    "DELETE FROM documents WHERE doc_id = $1",
                ] {
                    tx.execute(sql, &[doc]).await?;
                }
                // Each document keeps a tombstone, so a change to it arriving later is recognised.
                tx.execute(
                    "INSERT INTO erased (id, person_id, whole, at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET whole = excluded.whole, at = excluded.at",
                    &[doc, &person_id, &whole, &audit.at],
                )
                .await?;
            }
            if whole {
                for sql in [
                    "DELETE FROM log WHERE person_id = $1",
                    "DELETE FROM listed_people WHERE person_id = $1",
                    "DELETE FROM allocations WHERE person_id = $1",
                    "DELETE FROM case_closures WHERE person_id = $1",
                    "DELETE FROM people WHERE person_id = $1",
                ] {
                    tx.execute(sql, &[&person_id]).await?;
                }
                tx.execute(
                    "INSERT INTO erased (id, person_id, whole, at) VALUES ($1, $1, true, $2)
                     ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                    &[&person_id, &audit.at],
                )
                .await?;
            }
            super::audit::append(&tx, audit).await?;
            tx.commit().await?;
            targets.into_iter().map(|d| Ok(DocId::new(d)?)).collect()
        })
    }
}

impl Erasures for PostgresStorage {
    fn erase(&self, person: &PersonId, docs: &[DocId], audit: &AuditEntry) -> Result<Vec<DocId>> {
        // A sync writing one of the person's documents holds its row while it waits for
        // `Lock::Log`, which this takes first: PostgreSQL ends one of the two as a deadlock,
        // and this one is tried again.
        super::documents::retrying(|| self.erase_once(person, docs, audit))
    }

    fn erased(&self, id: &str) -> Result<Option<(PersonId, bool)>> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt("SELECT person_id, whole FROM erased WHERE id = $1", &[&id]))?;
        row.map(|row| Ok((PersonId::new(row.try_get::<_, String>(0)?)?, row.try_get(1)?)))
            .transpose()
    }

    fn erasures_for(&self, device: &DeviceId) -> Result<(Vec<DocId>, Vec<PersonId>)> {
        let client = self.client()?;
        self.block_on(async {
            let docs = client
                .query(
                    "SELECT dd.doc_id FROM device_docs dd JOIN erased e ON e.id = dd.doc_id AND NOT e.whole
                     WHERE dd.device_id = $1 ORDER BY dd.doc_id",
                    &[&device.as_str()],
                )
                .await?;
            let people = client
                .query(
                    "SELECT DISTINCT dd.person_id FROM device_docs dd JOIN erased e ON e.id = dd.person_id AND e.id = e.person_id
                     WHERE dd.device_id = $1 ORDER BY dd.person_id",
                    &[&device.as_str()],
                )
                .await?;
            Ok((
                docs.iter()
                    .map(|r| Ok(DocId::new(r.try_get::<_, String>(0)?)?))
                    .collect::<Result<_>>()?,
                people
                    .iter()
                    .map(|r| Ok(PersonId::new(r.try_get::<_, String>(0)?)?))
                    .collect::<Result<_>>()?,
            ))
        })
    }

    fn erasures_done(&self, device: &DeviceId, ids: &[String]) -> Result<()> {
        let client = self.client()?;
        self.block_on(client.execute(
            "DELETE FROM device_docs WHERE device_id = $1 AND (doc_id = ANY($2) OR person_id = ANY($2))",
            &[&device.as_str(), &ids],
        ))?;
        Ok(())
    }

    fn set_retention(&self, team: &TeamId, years: Option<u32>) -> Result<()> {
        let client = self.client()?;
        let years = years.map(|y| y as i32);
        let changed = self.block_on(client.execute(
            "UPDATE teams SET retention_years = $2 WHERE team_id = $1",
            &[&team.as_str(), &years],
        ))?;
        if changed == 0 {
            return Err(no_team(team));
        }
        Ok(())
    }

    fn close_case(&self, person: &PersonId, at: Option<i64>) -> Result<()> {
        let client = self.client()?;
        match at {
            Some(at) => self.block_on(client.execute(
                "INSERT INTO case_closures (person_id, closed_at) VALUES ($1, $2)
                 ON CONFLICT (person_id) DO UPDATE SET closed_at = excluded.closed_at",
                &[&person.as_str(), &at],
            ))?,
            None => {
                self.block_on(client.execute("DELETE FROM case_closures WHERE person_id = $1", &[&person.as_str()]))?
            }
        };
        Ok(())
    }

    fn past_retention(&self, now: i64) -> Result<Vec<(PersonId, u32)>> {
        let client = self.client()?;
        let rows = self.block_on(client.query(
            "SELECT c.person_id, t.retention_years, c.closed_at FROM case_closures c
             JOIN people p ON p.person_id = c.person_id
             JOIN teams t ON t.team_id = p.team_id
             WHERE t.retention_years IS NOT NULL ORDER BY c.person_id",
            &[],
        ))?;
        let mut due = Vec::new();
        for row in rows {
            let years = u32::try_from(row.try_get::<_, i32>(1)?).unwrap_or(u32::MAX);
            if crate::storage::retention_ends(row.try_get(2)?, years) <= now {
                due.push((PersonId::new(row.try_get::<_, String>(0)?)?, years));
            }
        }
        Ok(due)
    }
}
