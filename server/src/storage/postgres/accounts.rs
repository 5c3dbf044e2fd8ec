//! Accounts in PostgreSQL: teams, workers, enrolment codes, devices, actors and the audit log.
//! Where several server processes may race (spending a code, registering an actor), one
//! statement decides, so row locks rather than a process-wide lock keep them apart.

use outpost_core::{DeviceId, TeamId, WorkerId};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresStorage;
use super::Sql;
use crate::error::{Error, Result};
use crate::signing::hex;
use crate::storage::{
    Accounts, ActorOwner, AuditEntry, Device, DeviceRow, Role, ScopePolicy, no_device, no_team, no_worker,
};

/// One answer for an unknown, spent or expired code, so a caller cannot tell which and probe.
const CODE_REFUSED: &str = "enrolment code is unknown, used or expired";

const DEVICE_SELECT: &str = "SELECT d.device_id, d.worker_id, w.role, w.team_id, t.scope
    FROM devices d JOIN workers w ON w.worker_id = d.worker_id JOIN teams t ON t.team_id = w.team_id";

impl Accounts for PostgresStorage {
    fn create_team(&self, team: &TeamId, name: &str, scope: ScopePolicy) -> Result<()> {
        let client = self.client()?;
        let added = self.block_on(client.execute(
            "INSERT INTO teams (team_id, name, scope) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&team.as_str(), &name, &scope.code()],
        ))?;
        if added == 0 {
            return Err(Error::Conflict(format!("team {team} already exists")));
        }
        Ok(())
    }

    fn set_scope(&self, team: &TeamId, scope: ScopePolicy) -> Result<()> {
        let client = self.client()?;
        let changed = self.block_on(client.execute(
            "UPDATE teams SET scope = $2 WHERE team_id = $1",
            &[&team.as_str(), &scope.code()],
        ))?;
        if changed == 0 {
            return Err(no_team(team));
        }
        Ok(())
    }

    fn add_worker(&self, worker: &WorkerId, name: &str, role: Role, team: &TeamId) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            if !exists(&tx, "SELECT 1 FROM teams WHERE team_id = $1", &team.as_str()).await? {
                return Err(no_team(team));
            }
            let added = tx
                .execute(
                    "INSERT INTO workers (worker_id, name, role, team_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[&worker.as_str(), &name, &role.code(), &team.as_str()],
                )
                .await?;
            if added == 0 {
                return Err(Error::Conflict(format!("worker {worker} already exists")));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn worker(&self, worker: &WorkerId) -> Result<Option<(Role, TeamId)>> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt(
            "SELECT role, team_id FROM workers WHERE worker_id = $1",
            &[&worker.as_str()],
        ))?;
        row.map(|row| Ok((role(row.get(0))?, TeamId::new(row.get::<_, String>(1))?)))
            .transpose()
    }

    fn add_enrolment_code(&self, worker: &WorkerId, code_hash: &[u8], expires_at: i64) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            if !exists(&tx, "SELECT 1 FROM workers WHERE worker_id = $1", &worker.as_str()).await? {
                return Err(no_worker(worker));
            }
            tx.execute(
                "INSERT INTO enrolment_codes (code_hash, worker_id, expires_at) VALUES ($1, $2, $3)",
                &[&code_hash, &worker.as_str(), &expires_at],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn enrol(
        &self,
        code_hash: &[u8],
        device: &DeviceId,
        label: &str,
        credential_hash: &[u8],
        now: i64,
    ) -> Result<Device> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            // One statement checks and spends the code. A second process spending it at the same
            // time waits for this row lock, then finds `used_at` set and matches nothing.
            let spent = tx
                .query_opt(
                    "UPDATE enrolment_codes SET used_at = $2
                     WHERE code_hash = $1 AND used_at IS NULL AND $2 < expires_at
                     RETURNING worker_id",
                    &[&code_hash, &now],
                )
                .await?;
            let Some(spent) = spent else {
                return Err(Error::Unauthenticated(CODE_REFUSED.into()));
            };
            let worker: String = spent.get(0);
            // ON CONFLICT rather than a check first: two codes may name the same device at once.
            let added = tx
                .execute(
                    "INSERT INTO devices (device_id, worker_id, label, credential_hash, enrolled_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device_id) DO NOTHING",
                    &[&device.as_str(), &worker, &label, &credential_hash, &now],
                )
                .await?;
            if added == 0 {
                // Dropping the transaction rolls back, so the code stays unspent.
                return Err(Error::Conflict(format!("device {device} is already enrolled")));
            }
            let enrolled = query_device(&tx, "d.device_id = $1", &device.as_str())
                .await?
                .ok_or_else(|| Error::Internal(format!("device {device} was not found right after enrolment")))?;
            tx.commit().await?;
            Ok(enrolled)
        })
    }

    fn authenticate(&self, credential_hash: &[u8]) -> Result<Option<Device>> {
        let client = self.client()?;
        self.block_on(query_device(
            &client,
            "d.credential_hash = $1 AND d.revoked_at IS NULL AND d.retired_at IS NULL",
            &credential_hash,
        ))
    }

    fn revoke(&self, device: &DeviceId, now: i64) -> Result<()> {
        let client = self.client()?;
        // Revoking twice keeps the first time: that is when the device stopped being trusted.
        let changed = self.block_on(client.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, $2) WHERE device_id = $1",
            &[&device.as_str(), &now],
        ))?;
        if changed == 0 {
            return Err(no_device(device));
        }
        Ok(())
    }

    fn devices(&self) -> Result<Vec<DeviceRow>> {
        let client = self.client()?;
        // COLLATE "C": byte order, as SQLite sorts, whatever the database's own collation.
        let rows = self.block_on(client.query(
            "SELECT device_id, worker_id, label, enrolled_at, last_sync_at, revoked_at,
                    retire_requested_at, retired_at
             FROM devices ORDER BY enrolled_at, device_id COLLATE \"C\"",
            &[],
        ))?;
        rows.iter()
            .map(|row| {
                Ok(DeviceRow {
                    device: DeviceId::new(row.get::<_, String>(0))?,
                    worker: WorkerId::new(row.get::<_, String>(1))?,
                    label: row.get(2),
                    enrolled_at: row.get(3),
                    last_sync_at: row.get(4),
                    revoked_at: row.get(5),
                    retire_requested_at: row.get(6),
                    retired_at: row.get(7),
                })
            })
            .collect()
    }

    fn touch_device(&self, device: &DeviceId, now: i64) -> Result<()> {
        let client = self.client()?;
        let changed = self.block_on(client.execute(
            "UPDATE devices SET last_sync_at = $2 WHERE device_id = $1",
            &[&device.as_str(), &now],
        ))?;
        if changed == 0 {
            return Err(no_device(device));
        }
        Ok(())
    }

    fn actor_owner(&self, actor: &[u8]) -> Result<Option<ActorOwner>> {
        let client = self.client()?;
        self.block_on(actor_owner(&client, actor))
    }

    fn register_server_actor(&self, actor: &[u8], now: i64) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            // Insert first, then look: no other process can slip a registration in between.
            tx.execute(
                "INSERT INTO actors (actor, device_id, registered_at) VALUES ($1, NULL, $2)
                 ON CONFLICT (actor) DO NOTHING",
                &[&actor, &now],
            )
            .await?;
            if let Some(ActorOwner::Device(device)) = actor_owner(&tx, actor).await? {
                // Changes by that actor would be attributed to the wrong author.
                return Err(Error::Conflict(format!(
                    "actor {} is already registered to device {device}",
                    hex(actor)
                )));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            super::audit::append(&tx, entry).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let client = self.client()?;
        self.block_on(super::audit::latest(&client, limit))
    }
}

async fn query_device(client: &impl Sql, condition: &str, param: &(dyn ToSql + Sync)) -> Result<Option<Device>> {
    let row = client
        .query_opt(&format!("{DEVICE_SELECT} WHERE {condition}"), &[param])
        .await?;
    row.as_ref().map(device_from_row).transpose()
}

fn device_from_row(row: &Row) -> Result<Device> {
    let scope: String = row.get(4);
    Ok(Device {
        device: DeviceId::new(row.get::<_, String>(0))?,
        worker: WorkerId::new(row.get::<_, String>(1))?,
        role: role(row.get(2))?,
        team: TeamId::new(row.get::<_, String>(3))?,
        scope: ScopePolicy::from_code(&scope)
            .ok_or_else(|| Error::Internal(format!("a stored scope {scope:?} is unknown")))?,
    })
}

/// A stored role code, which the schema's CHECK keeps to the known ones.
pub(super) fn role(code: &str) -> Result<Role> {
    Role::from_code(code).ok_or_else(|| Error::Internal(format!("a stored role {code:?} is unknown")))
}

async fn actor_owner(client: &impl Sql, actor: &[u8]) -> Result<Option<ActorOwner>> {
    let row = client
        .query_opt("SELECT device_id FROM actors WHERE actor = $1", &[&actor])
        .await?;
    Ok(match row.map(|row| row.get::<_, Option<String>>(0)) {
        None => None,
        Some(None) => Some(ActorOwner::Server),
        Some(Some(device)) => Some(ActorOwner::Device(DeviceId::new(device)?)),
    })
}

async fn exists(client: &impl Sql, sql: &str, param: &(dyn ToSql + Sync)) -> Result<bool> {
    Ok(client.query_opt(sql, &[param]).await?.is_some())
}
