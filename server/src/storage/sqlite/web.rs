//! Sign-in for the review pages in SQLite: password hashes, browser sessions, leads' email
//! addresses and the teams each lead reviews.

use outpost_core::{TeamId, WorkerId};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::SqliteStorage;
use crate::error::{Error, Result};
use crate::storage::{Role, WebAccounts, WebSession};

impl WebAccounts for SqliteStorage {
    fn set_password(&self, worker: &WorkerId, hash: &str, now: i64) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_worker(&tx, worker)?;
        tx.execute(
            "INSERT INTO passwords (worker_id, hash, set_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (worker_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
            params![worker.as_str(), hash, now],
        )?;
        // A new password shuts out whoever knew the old one.
        tx.execute("DELETE FROM web_sessions WHERE worker_id = ?1", [worker.as_str()])?;
        tx.commit()?;
        Ok(())
    }

    fn password(&self, worker: &WorkerId) -> Result<Option<String>> {
        Ok(self
            .conn()?
            .prepare_cached("SELECT hash FROM passwords WHERE worker_id = ?1")?
            .query_row([worker.as_str()], |row| row.get(0))
            .optional()?)
    }

    fn set_email(&self, worker: &WorkerId, email: Option<&str>) -> Result<()> {
        let changed = self.conn()?.execute(
            "UPDATE workers SET email = ?2 WHERE worker_id = ?1",
            params![worker.as_str(), email],
        )?;
        if changed == 0 {
            return Err(Error::NotFound(format!("worker {worker}")));
        }
        Ok(())
    }

    fn lead_emails(&self, team: &TeamId) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT w.email FROM workers w
             WHERE w.role = 'lead' AND w.email IS NOT NULL AND (w.team_id = ?1
                OR EXISTS (SELECT 1 FROM lead_teams l WHERE l.worker_id = w.worker_id AND l.team_id = ?1))
             ORDER BY w.email",
        )?;
        let rows = stmt.query_map([team.as_str()], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_lead_team(&self, lead: &WorkerId, team: &TeamId) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let role = require_worker(&tx, lead)?;
        if role != Role::Lead {
            return Err(Error::bad("lead", format!("{lead} is not a team lead")));
        }
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM teams WHERE team_id = ?1)",
            [team.as_str()],
            |row| row.get(0),
        )?;
        if !known {
            return Err(Error::NotFound(format!("team {team}")));
        }
        tx.execute(
            "INSERT OR IGNORE INTO lead_teams (worker_id, team_id) VALUES (?1, ?2)",
            params![lead.as_str(), team.as_str()],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn lead_teams(&self, lead: &WorkerId) -> Result<Vec<TeamId>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT team_id FROM (
                SELECT team_id, 0 AS extra FROM workers WHERE worker_id = ?1 AND role = 'lead'
                UNION SELECT l.team_id, 1 FROM lead_teams l JOIN workers w ON w.worker_id = l.worker_id
                    WHERE l.worker_id = ?1 AND w.role = 'lead')
             ORDER BY extra, team_id",
        )?;
        let rows = stmt.query_map([lead.as_str()], |row| row.get::<_, String>(0))?;
        rows.map(|r| Ok(TeamId::new(r?)?)).collect()
    }

    fn create_session(&self, token_hash: &[u8], worker: &WorkerId, csrf: &str, now: i64) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO web_sessions (token_hash, worker_id, csrf, created_at, seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            params![token_hash, worker.as_str(), csrf, now],
        )?;
        Ok(())
    }

    fn session(&self, token_hash: &[u8]) -> Result<Option<WebSession>> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(
                "SELECT s.worker_id, w.name, w.role, s.csrf, s.created_at, s.seen_at
                 FROM web_sessions s JOIN workers w ON w.worker_id = s.worker_id WHERE s.token_hash = ?1",
            )?
            .query_row([token_hash], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })
            .optional()?;
        row.map(|(worker, name, role, csrf, created_at, seen_at)| {
            Ok(WebSession {
                worker: WorkerId::new(worker)?,
                name,
                role: Role::from_code(&role).ok_or_else(|| Error::Internal(format!("stored role {role:?}")))?,
                csrf,
                created_at,
                seen_at,
            })
        })
        .transpose()
    }

    fn touch_session(&self, token_hash: &[u8], now: i64) -> Result<()> {
        self.conn()?.execute(
            "UPDATE web_sessions SET seen_at = ?2 WHERE token_hash = ?1",
            params![token_hash, now],
        )?;
        Ok(())
    }

    fn end_session(&self, token_hash: &[u8]) -> Result<()> {
        self.conn()?
            .execute("DELETE FROM web_sessions WHERE token_hash = ?1", [token_hash])?;
        Ok(())
    }

    fn sign_in_failures(&self, username: &str) -> Result<Option<(u32, i64)>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT failures, since FROM sign_in_failures WHERE username = ?1",
                [username],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    fn record_sign_in_failure(&self, username: &str, now: i64, window: i64) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO sign_in_failures (username, failures, since) VALUES (?1, 1, ?2)
                 ON CONFLICT (username) DO UPDATE SET
                     failures = CASE WHEN ?2 - since >= ?3 THEN 1 ELSE failures + 1 END,
                     since = CASE WHEN ?2 - since >= ?3 THEN ?2 ELSE since END",
            params![username, now, window],
        )?;
        Ok(())
    }

    fn clear_sign_in_failures(&self, username: &str) -> Result<()> {
        self.conn()?
            .execute("DELETE FROM sign_in_failures WHERE username = ?1", [username])?;
        Ok(())
    }
}

/// v5: failed sign-ins, counted in the database so every server process throttles together.
pub(super) fn v5_sign_in_failures(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE sign_in_failures (
            username TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            since    INTEGER NOT NULL
        ) STRICT;",
    )
}

fn require_worker(conn: &rusqlite::Connection, worker: &WorkerId) -> Result<Role> {
    let role: Option<String> = conn
        .query_row(
            "SELECT role FROM workers WHERE worker_id = ?1",
            [worker.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    let role = role.ok_or_else(|| Error::NotFound(format!("worker {worker}")))?;
    Role::from_code(&role).ok_or_else(|| Error::Internal(format!("stored role {role:?}")))
}
