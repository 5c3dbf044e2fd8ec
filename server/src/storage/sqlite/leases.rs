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

#[cfg(test)]
mod tests {
    use outpost_core::WorkerId;

    use super::*;
    use crate::storage::{Accounts, Role, ScopePolicy};

    const NOW: i64 = 1_700_000_000;

    fn device(name: &str) -> DeviceId {
        DeviceId::new(name).unwrap()
    }

    /// Team `north` with worker `ann` and her devices `d1` (credential `cred-1`) and `d2`
    /// (`cred-2`).
    fn storage(dir: &std::path::Path) -> SqliteStorage {
        let storage = SqliteStorage::open(dir.join("server.db")).unwrap();
        let team = TeamId::new("north").unwrap();
        let ann = WorkerId::new("ann").unwrap();
        storage.create_team(&team, "North", ScopePolicy::Team).unwrap();
        storage.add_worker(&ann, "Ann", Role::Worker, &team).unwrap();
        for n in ["1", "2"] {
            let code = format!("code-{n}");
            storage.add_enrolment_code(&ann, code.as_bytes(), NOW + 3600).unwrap();
            storage
                .enrol(
                    code.as_bytes(),
                    &device(&format!("d{n}")),
                    "phone",
                    format!("cred-{n}").as_bytes(),
                    NOW,
                )
                .unwrap();
        }
        storage
    }

    #[test]
    fn a_device_asked_to_retire_is_refused_once_it_confirms() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path());
        assert!(!storage.retiring(&device("d1")).unwrap());
        assert!(!storage.retire(&device("d1"), NOW).unwrap(), "not asked to retire");
        assert!(storage.authenticate(b"cred-1").unwrap().is_some());

        storage.request_retirement(&device("d1"), NOW + 10).unwrap();
        storage.request_retirement(&device("d1"), NOW + 20).unwrap();
        assert!(storage.retiring(&device("d1")).unwrap());
        // Asked, not yet confirmed: it still syncs, to hand its changes in.
        assert!(storage.authenticate(b"cred-1").unwrap().is_some());
        assert_eq!(storage.departed(b"cred-1", NOW).unwrap(), None);

        assert!(storage.retire(&device("d1"), NOW + 30).unwrap());
        assert!(!storage.retire(&device("d1"), NOW + 40).unwrap(), "once");
        assert!(!storage.retiring(&device("d1")).unwrap());
        assert_eq!(storage.authenticate(b"cred-1").unwrap(), None);
        assert_eq!(
            storage.departed(b"cred-1", NOW + 50).unwrap(),
            Some(Departed {
                device: device("d1"),
                departure: Departure::Retired,
                first_wipe_order: false,
            })
        );
        let row = storage
            .devices()
            .unwrap()
            .into_iter()
            .find(|d| d.device == device("d1"))
            .unwrap();
        assert_eq!(
            (row.retire_requested_at, row.retired_at),
            (Some(NOW + 10), Some(NOW + 30))
        );

        // The other device is untouched; a retired or unknown one cannot be asked again.
        assert!(storage.authenticate(b"cred-2").unwrap().is_some());
        let err = storage.request_retirement(&device("d1"), NOW).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        let err = storage.request_retirement(&device("nope"), NOW).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
    }

    #[test]
    fn a_revoked_device_is_told_to_wipe_and_that_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path());
        storage.request_retirement(&device("d1"), NOW).unwrap();
        storage.revoke(&device("d1"), NOW + 5).unwrap();
        assert!(!storage.retiring(&device("d1")).unwrap(), "revocation wins");
        assert!(!storage.retire(&device("d1"), NOW + 6).unwrap());

        let first = storage.departed(b"cred-1", NOW + 10).unwrap().unwrap();
        assert_eq!(
            (first.device.as_str(), first.departure, first.first_wipe_order),
            ("d1", Departure::Revoked, true)
        );
        let again = storage.departed(b"cred-1", NOW + 20).unwrap().unwrap();
        assert!(!again.first_wipe_order);
        assert_eq!(storage.departed(b"unknown", NOW).unwrap(), None);
        assert_eq!(storage.departed(b"cred-2", NOW).unwrap(), None, "d2 is in service");

        let err = storage.request_retirement(&device("d1"), NOW).unwrap_err();
        assert!(matches!(&err, Error::Conflict(m) if m.contains("revoked")), "{err}");
    }

    #[test]
    fn a_team_s_lease_is_fourteen_days_until_set() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path());
        let north = TeamId::new("north").unwrap();
        assert_eq!(storage.lease_days(&north).unwrap(), DEFAULT_LEASE_DAYS);
        storage.set_lease_days(&north, 1).unwrap();
        assert_eq!(storage.lease_days(&north).unwrap(), 1);
        for days in [0, MAX_LEASE_DAYS + 1] {
            let err = storage.set_lease_days(&north, days).unwrap_err();
            assert!(
                matches!(&err, Error::BadRequest { what, .. } if what == "lease days"),
                "{err}"
            );
        }
        assert_eq!(
            storage.lease_days(&north).unwrap(),
            1,
            "a refused value changes nothing"
        );
        let south = TeamId::new("south").unwrap();
        assert!(matches!(storage.set_lease_days(&south, 7), Err(Error::NotFound(_))));
        assert!(matches!(storage.lease_days(&south), Err(Error::NotFound(_))));
    }
}
