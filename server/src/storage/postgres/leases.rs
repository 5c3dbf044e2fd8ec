//! Devices leaving service in PostgreSQL: retirement, wipes and offline leases. Each decision is
//! one conditional UPDATE, so two server processes seeing the same device at once agree on
//! what happened first.

use outpost_core::{DeviceId, TeamId};

use super::PostgresStorage;
use super::Sql;
use crate::error::{Error, Result};
use crate::storage::{DEFAULT_LEASE_DAYS, Departed, Departure, Lifecycle, MAX_LEASE_DAYS};

impl Lifecycle for PostgresStorage {
    fn request_retirement(&self, device: &DeviceId, now: i64) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            let tx = client.transaction().await?;
            // FOR UPDATE: a revocation landing between this check and the update waits.
            let state = tx
                .query_opt(
                    "SELECT revoked_at, retired_at FROM devices WHERE device_id = $1 FOR UPDATE",
                    &[&device.as_str()],
                )
                .await?;
            let state = state.map(|row| (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)));
            match state {
                None => return Err(Error::NotFound(format!("device {device}"))),
                Some((Some(_), _)) => {
                    return Err(Error::Conflict(format!(
                        "device {device} was revoked: it wipes itself at its next contact and cannot retire"
                    )));
                }
                Some((None, Some(_))) => {
                    return Err(Error::Conflict(format!("device {device} is already retired")));
                }
                Some((None, None)) => {}
            }
            tx.execute(
                "UPDATE devices SET retire_requested_at = coalesce(retire_requested_at, $2) WHERE device_id = $1",
                &[&device.as_str(), &now],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn retiring(&self, device: &DeviceId) -> Result<bool> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt(
            "SELECT retire_requested_at IS NOT NULL AND retired_at IS NULL AND revoked_at IS NULL
             FROM devices WHERE device_id = $1",
            &[&device.as_str()],
        ))?;
        Ok(row.is_some_and(|row| row.get(0)))
    }

    fn retire(&self, device: &DeviceId, now: i64) -> Result<bool> {
        let client = self.client()?;
        let changed = self.block_on(client.execute(
            "UPDATE devices SET retired_at = $2
             WHERE device_id = $1 AND retire_requested_at IS NOT NULL AND retired_at IS NULL
                 AND revoked_at IS NULL",
            &[&device.as_str(), &now],
        ))?;
        Ok(changed == 1)
    }

    fn departed(&self, credential_hash: &[u8], now: i64) -> Result<Option<Departed>> {
        let mut client = self.client()?;
        let (first_wipe_order, row) = self.block_on(async {
            let tx = client.transaction().await?;
            // A second process doing the same waits for this row, then finds the order recorded.
            let first_wipe_order = tx
                .execute(
                    "UPDATE devices SET wipe_ordered_at = $2
                     WHERE credential_hash = $1 AND revoked_at IS NOT NULL AND wipe_ordered_at IS NULL",
                    &[&credential_hash, &now],
                )
                .await?
                == 1;
            let row = tx
                .query_opt(
                    "SELECT device_id, revoked_at IS NOT NULL, retired_at IS NOT NULL
                     FROM devices WHERE credential_hash = $1",
                    &[&credential_hash],
                )
                .await?;
            tx.commit().await?;
            Ok::<_, Error>((first_wipe_order, row))
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        // Revocation wins: a device revoked while retiring may hold changes it never sent,
        // and is wiped all the same.
        let departure = match (row.get::<_, bool>(1), row.get::<_, bool>(2)) {
            (true, _) => Departure::Revoked,
            (false, true) => Departure::Retired,
            (false, false) => return Ok(None),
        };
        Ok(Some(Departed {
            device: DeviceId::new(row.get::<_, String>(0))?,
            departure,
            first_wipe_order,
        }))
    }

    fn set_lease_days(&self, team: &TeamId, days: u32) -> Result<()> {
        let refused = || Error::bad("lease days", format!("must be 1 to {MAX_LEASE_DAYS}, got {days}"));
        if !(1..=MAX_LEASE_DAYS).contains(&days) {
            return Err(refused());
        }
        let days = i32::try_from(days).map_err(|_| refused())?;
        let client = self.client()?;
        let changed = self.block_on(client.execute(
            "UPDATE teams SET lease_days = $2 WHERE team_id = $1",
            &[&team.as_str(), &days],
        ))?;
        if changed == 0 {
            return Err(Error::NotFound(format!("team {team}")));
        }
        Ok(())
    }

    fn lease_days(&self, team: &TeamId) -> Result<u32> {
        let client = self.client()?;
        let row =
            self.block_on(client.query_opt("SELECT lease_days FROM teams WHERE team_id = $1", &[&team.as_str()]))?;
        let days: i32 = row.ok_or_else(|| Error::NotFound(format!("team {team}")))?.get(0);
        Ok(u32::try_from(days)
            .ok()
            .filter(|d| (1..=MAX_LEASE_DAYS).contains(d))
            .unwrap_or(DEFAULT_LEASE_DAYS))
    }
}
