//! Sign-in for the review pages in PostgreSQL: password hashes, browser sessions, leads' email
//! addresses and the teams each lead reviews.

use outpost_core::{TeamId, WorkerId};

use super::PostgresStorage;
use super::Sql;
use super::accounts::role;
use crate::error::{Error, Result};
use crate::storage::{Role, WebAccounts, WebSession};

impl WebAccounts for PostgresStorage {
    fn set_password(&self, worker: &WorkerId, hash: &str, now: i64) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            require_worker(&tx, worker).await?;
            tx.execute(
                "INSERT INTO passwords (worker_id, hash, set_at) VALUES ($1, $2, $3)
                 ON CONFLICT (worker_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                &[&worker.as_str(), &hash, &now],
            )
            .await?;
            // A new password shuts out whoever knew the old one.
            tx.execute("DELETE FROM web_sessions WHERE worker_id = $1", &[&worker.as_str()])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn password(&self, worker: &WorkerId) -> Result<Option<String>> {
        let client = self.client()?;
        let row =
            self.block_on(client.query_opt("SELECT hash FROM passwords WHERE worker_id = $1", &[&worker.as_str()]))?;
        Ok(row.map(|row| row.get(0)))
    }

    fn set_email(&self, worker: &WorkerId, email: Option<&str>) -> Result<()> {
        let client = self.client()?;
        let changed = self.block_on(client.execute(
            "UPDATE workers SET email = $2 WHERE worker_id = $1",
            &[&worker.as_str(), &email],
        ))?;
        if changed == 0 {
            return Err(Error::NotFound(format!("worker {worker}")));
        }
        Ok(())
    }

    fn lead_emails(&self, team: &TeamId) -> Result<Vec<String>> {
        let client = self.client()?;
        // COLLATE "C" (here and below): byte order, as SQLite sorts, whatever the database's own.
        let rows = self.block_on(client.query(
            "SELECT DISTINCT w.email COLLATE \"C\" FROM workers w
             WHERE w.role = 'lead' AND w.email IS NOT NULL AND (w.team_id = $1
                OR EXISTS (SELECT 1 FROM lead_teams l WHERE l.worker_id = w.worker_id AND l.team_id = $1))
             ORDER BY 1",
            &[&team.as_str()],
        ))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn add_lead_team(&self, lead: &WorkerId, team: &TeamId) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            if require_worker(&tx, lead).await? != Role::Lead {
                return Err(Error::bad("lead", format!("{lead} is not a team lead")));
            }
            let known = tx
                .query_opt("SELECT 1 FROM teams WHERE team_id = $1", &[&team.as_str()])
                .await?
                .is_some();
            if !known {
                return Err(Error::NotFound(format!("team {team}")));
            }
            tx.execute(
                "INSERT INTO lead_teams (worker_id, team_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&lead.as_str(), &team.as_str()],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn lead_teams(&self, lead: &WorkerId) -> Result<Vec<TeamId>> {
        let client = self.client()?;
        let rows = self.block_on(client.query(
            "SELECT team_id FROM (
                SELECT team_id, 0 AS extra FROM workers WHERE worker_id = $1 AND role = 'lead'
                UNION SELECT l.team_id, 1 FROM lead_teams l JOIN workers w ON w.worker_id = l.worker_id
                    WHERE l.worker_id = $1 AND w.role = 'lead') teams
             ORDER BY extra, team_id COLLATE \"C\"",
            &[&lead.as_str()],
        ))?;
        rows.iter()
            .map(|row| Ok(TeamId::new(row.get::<_, String>(0))?))
            .collect()
    }

    fn create_session(&self, token_hash: &[u8], worker: &WorkerId, csrf: &str, now: i64) -> Result<()> {
        let client = self.client()?;
        self.block_on(client.execute(
            "INSERT INTO web_sessions (token_hash, worker_id, csrf, created_at, seen_at)
             VALUES ($1, $2, $3, $4, $4)",
            &[&token_hash, &worker.as_str(), &csrf, &now],
        ))?;
        Ok(())
    }

    fn session(&self, token_hash: &[u8]) -> Result<Option<WebSession>> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt(
            "SELECT s.worker_id, w.name, w.role, s.csrf, s.created_at, s.seen_at
             FROM web_sessions s JOIN workers w ON w.worker_id = s.worker_id WHERE s.token_hash = $1",
            &[&token_hash],
        ))?;
        row.map(|row| {
            Ok(WebSession {
                worker: WorkerId::new(row.get::<_, String>(0))?,
                name: row.get(1),
                role: role(row.get(2))?,
                csrf: row.get(3),
                created_at: row.get(4),
                seen_at: row.get(5),
            })
        })
        .transpose()
    }

    fn touch_session(&self, token_hash: &[u8], now: i64) -> Result<()> {
        let client = self.client()?;
        self.block_on(client.execute(
            "UPDATE web_sessions SET seen_at = $2 WHERE token_hash = $1",
            &[&token_hash, &now],
        ))?;
        Ok(())
    }

    fn end_session(&self, token_hash: &[u8]) -> Result<()> {
        let client = self.client()?;
        self.block_on(client.execute("DELETE FROM web_sessions WHERE token_hash = $1", &[&token_hash]))?;
        Ok(())
    }

    fn sign_in_failures(&self, username: &str) -> Result<Option<(u32, i64)>> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt(
            "SELECT failures, since FROM sign_in_failures WHERE username = $1",
            &[&username],
        ))?;
        row.map(|row| Ok((u32::try_from(row.try_get::<_, i32>(0)?).unwrap_or(0), row.try_get(1)?)))
            .transpose()
    }

    fn record_sign_in_failure(&self, username: &str, now: i64, window: i64) -> Result<()> {
        let client = self.client()?;
        // One statement: failures from several processes at once are all counted.
        self.block_on(client.execute(
            "INSERT INTO sign_in_failures (username, failures, since) VALUES ($1, 1, $2)
             ON CONFLICT (username) DO UPDATE SET
                 failures = CASE WHEN $2 - sign_in_failures.since >= $3 THEN 1
                                 ELSE sign_in_failures.failures + 1 END,
                 since = CASE WHEN $2 - sign_in_failures.since >= $3 THEN $2
                              ELSE sign_in_failures.since END",
            &[&username, &now, &window],
        ))?;
        Ok(())
    }

    fn clear_sign_in_failures(&self, username: &str) -> Result<()> {
        let client = self.client()?;
        self.block_on(client.execute("DELETE FROM sign_in_failures WHERE username = $1", &[&username]))?;
        Ok(())
    }
}

async fn require_worker(client: &impl Sql, worker: &WorkerId) -> Result<Role> {
    let row = client
        .query_opt("SELECT role FROM workers WHERE worker_id = $1", &[&worker.as_str()])
        .await?;
    let row = row.ok_or_else(|| Error::NotFound(format!("worker {worker}")))?;
    role(row.get(0))
}
