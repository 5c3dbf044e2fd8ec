//! Devices leaving service in SQLite: retirement, wipes and offline leases.

use outpost_core::{DeviceId, TeamId};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::SqliteStorage;
use crate::error::{Error, Result};
use crate::storage::{DEFAULT_LEASE_DAYS, Departed, Departure, Lifecycle, MAX_LEASE_DAYS};

/// v3: how devices leave service. A device asked to retire, when it was retired (its
/// credential refused from then on, like a revoked one's), and when a revoked device was first
/// told to wipe; and how many days each team's devices may work without reaching the server.
pub(super) fn v3_devices(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE devices ADD COLUMN retire_requested_at INTEGER;
        ALTER TABLE devices ADD COLUMN retired_at INTEGER;
        ALTER TABLE devices ADD COLUMN wipe_ordered_at INTEGER;
        ALTER TABLE teams ADD COLUMN lease_days INTEGER NOT NULL DEFAULT 14
            CHECK (lease_days BETWEEN 1 AND 365);",
    )
}

impl Lifecycle for SqliteStorage {
    fn request_retirement(&self, device: &DeviceId, now: i64) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state: Option<(Option<i64>, Option<i64>)> = tx
            .query_row(
                "SELECT revoked_at, retired_at FROM devices WHERE device_id = ?1",
                [device.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        match state {
            None => return Err(Error::NotFound(format!("device {device}"))),
            Some((Some(_), _)) => {
                return Err(Error::Conflict(format!(
                    "device {device} was revoked: it wipes itself at its next contact and cannot retire"
                )));
            }
            Some((None, Some(_))) => return Err(Error::Conflict(format!("device {device} is already retired"))),
            Some((None, None)) => {}
        }
        tx.execute(
            "UPDATE devices SET retire_requested_at = coalesce(retire_requested_at, ?2) WHERE device_id = ?1",
            params![device.as_str(), now],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn retiring(&self, device: &DeviceId) -> Result<bool> {
        let retiring: Option<bool> = self
            .conn()?
            .prepare_cached(
                "SELECT retire_requested_at IS NOT NULL AND retired_at IS NULL AND revoked_at IS NULL
                 FROM devices WHERE device_id = ?1",
            )?
            .query_row([device.as_str()], |row| row.get(0))
            .optional()?;
        Ok(retiring.unwrap_or(false))
    }

    fn retire(&self, device: &DeviceId, now: i64) -> Result<bool> {
        let changed = self.conn()?.execute(
            "UPDATE devices SET retired_at = ?2
             WHERE device_id = ?1 AND retire_requested_at IS NOT NULL AND retired_at IS NULL
                 AND revoked_at IS NULL",
            params![device.as_str(), now],
        )?;
        Ok(changed == 1)
    }

    fn departed(&self, credential_hash: &[u8], now: i64) -> Result<Option<Departed>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let first_wipe_order = tx.execute(
            "UPDATE devices SET wipe_ordered_at = ?2
                 WHERE credential_hash = ?1 AND revoked_at IS NOT NULL AND wipe_ordered_at IS NULL",
            params![credential_hash, now],
        )? == 1;
        let row: Option<(String, bool, bool)> = tx
            .query_row(
                "SELECT device_id, revoked_at IS NOT NULL, retired_at IS NOT NULL
                 FROM devices WHERE credential_hash = ?1",
                [credential_hash],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        tx.commit()?;
        let Some((device, revoked, retired)) = row else {
            return Ok(None);
        };
        // Revocation wins: a device revoked while retiring may hold changes it never sent,
        // and is wiped all the same.
        let departure = match (revoked, retired) {
            (true, _) => Departure::Revoked,
            (false, true) => Departure::Retired,
            (false, false) => return Ok(None),
        };
        Ok(Some(Departed {
            device: DeviceId::new(device)?,
            departure,
            first_wipe_order,
        }))
    }

    fn set_lease_days(&self, team: &TeamId, days: u32) -> Result<()> {
        if !(1..=MAX_LEASE_DAYS).contains(&days) {
            return Err(Error::bad(
                "lease days",
                format!("must be 1 to {MAX_LEASE_DAYS}, got {days}"),
            ));
        }
        let changed = self.conn()?.execute(
            "UPDATE teams SET lease_days = ?2 WHERE team_id = ?1",
            params![team.as_str(), days],
        )?;
        if changed == 0 {
            return Err(Error::NotFound(format!("team {team}")));
        }
        Ok(())
    }

    fn lease_days(&self, team: &TeamId) -> Result<u32> {
        let days: Option<i64> = self
            .conn()?
            .prepare_cached("SELECT lease_days FROM teams WHERE team_id = ?1")?
            .query_row([team.as_str()], |row| row.get(0))
            .optional()?;
        let days = days.ok_or_else(|| Error::NotFound(format!("team {team}")))?;
        Ok(u32::try_from(days)
            .ok()
            .filter(|d| (1..=MAX_LEASE_DAYS).contains(d))
            .unwrap_or(DEFAULT_LEASE_DAYS))
    }
}
