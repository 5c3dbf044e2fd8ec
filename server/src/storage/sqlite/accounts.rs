//! Accounts in SQLite: teams, workers, enrolment codes, devices, actors and the audit log; and
//! the database's backup and restore.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use outpost_core::{DeviceId, TeamId, WorkerId};
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteStorage;
use crate::error::{Error, Result};
use crate::signing::hex;
use crate::storage::{
    Accounts, ActorOwner, AuditEntry, Device, DeviceRow, Role, ScopePolicy, no_device, no_team, no_worker,
};

/// One answer for an unknown, spent or expired code, so a caller cannot tell which and probe.
const CODE_REFUSED: &str = "enrolment code is unknown, used or expired";

const DEVICE_SELECT: &str = "SELECT d.device_id, d.worker_id, w.role, w.team_id, t.scope
    FROM devices d JOIN workers w ON w.worker_id = d.worker_id JOIN teams t ON t.team_id = w.team_id";

impl Accounts for SqliteStorage {
    fn create_team(&self, team: &TeamId, name: &str, scope: ScopePolicy) -> Result<()> {
        let conn = self.conn()?;
        let added = conn.execute(
            "INSERT INTO teams (team_id, name, scope) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![team.as_str(), name, scope.code()],
        )?;
        if added == 0 {
            return Err(Error::Conflict(format!("team {team} already exists")));
        }
        Ok(())
    }

    fn set_scope(&self, team: &TeamId, scope: ScopePolicy) -> Result<()> {
        let conn = self.conn()?;
        let changed = conn.execute(
            "UPDATE teams SET scope = ?2 WHERE team_id = ?1",
            params![team.as_str(), scope.code()],
        )?;
        if changed == 0 {
            return Err(no_team(team));
        }
        Ok(())
    }

    fn add_worker(&self, worker: &WorkerId, name: &str, role: Role, team: &TeamId) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !exists(&tx, "SELECT 1 FROM teams WHERE team_id = ?1", &team.as_str())? {
            return Err(no_team(team));
        }
        let added = tx.execute(
            "INSERT INTO workers (worker_id, name, role, team_id) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![worker.as_str(), name, role.code(), team.as_str()],
        )?;
        if added == 0 {
            return Err(Error::Conflict(format!("worker {worker} already exists")));
        }
        tx.commit()?;
        Ok(())
    }

    fn worker(&self, worker: &WorkerId) -> Result<Option<(Role, TeamId)>> {
        let row: Option<(String, String)> = self
            .conn()?
            .prepare_cached("SELECT role, team_id FROM workers WHERE worker_id = ?1")?
            .query_row([worker.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        row.map(|(role, team)| {
            let role = Role::from_code(&role).ok_or_else(|| Error::Internal(format!("stored role {role:?}")))?;
            Ok((role, TeamId::new(team)?))
        })
        .transpose()
    }

    fn add_enrolment_code(&self, worker: &WorkerId, code_hash: &[u8], expires_at: i64) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !exists(&tx, "SELECT 1 FROM workers WHERE worker_id = ?1", &worker.as_str())? {
            return Err(no_worker(worker));
        }
        tx.execute(
            "INSERT INTO enrolment_codes (code_hash, worker_id, expires_at) VALUES (?1, ?2, ?3)",
            params![code_hash, worker.as_str(), expires_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn enrol(
        &self,
        code_hash: &[u8],
        device: &DeviceId,
        label: &str,
        credential_hash: &[u8],
        now: i64,
    ) -> Result<Device> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Checking and spending the code is one statement, so one code can never enrol two devices.
        let worker: Option<String> = tx
            .query_row(
                "UPDATE enrolment_codes SET used_at = ?2
                 WHERE code_hash = ?1 AND used_at IS NULL AND ?2 < expires_at
                 RETURNING worker_id",
                params![code_hash, now],
                |row| row.get(0),
            )
            .optional()?;
        let Some(worker) = worker else {
            return Err(Error::Unauthenticated(CODE_REFUSED.into()));
        };
        let taken: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)")?
            .query_row([device.as_str()], |row| row.get(0))?;
        if taken {
            return Err(Error::Conflict(format!("device {device} is already enrolled")));
        }
        tx.execute(
            "INSERT INTO devices (device_id, worker_id, label, credential_hash, enrolled_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![device.as_str(), worker, label, credential_hash, now],
        )?;
        let enrolled = query_device(&tx, "d.device_id = ?1", &device.as_str())?
            .ok_or_else(|| Error::Internal(format!("device {device} was not found right after enrolment")))?;
        tx.commit()?;
        Ok(enrolled)
    }

    fn authenticate(&self, credential_hash: &[u8]) -> Result<Option<Device>> {
        let conn = self.conn()?;
        query_device(
            &conn,
            "d.credential_hash = ?1 AND d.revoked_at IS NULL AND d.retired_at IS NULL",
            &credential_hash,
        )
    }

    fn revoke(&self, device: &DeviceId, now: i64) -> Result<()> {
        let conn = self.conn()?;
        // Revoking twice keeps the first time: that is when the device stopped being trusted.
        let changed = conn.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, ?2) WHERE device_id = ?1",
            params![device.as_str(), now],
        )?;
        if changed == 0 {
            return Err(no_device(device));
        }
        Ok(())
    }

    fn devices(&self) -> Result<Vec<DeviceRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT device_id, worker_id, label, enrolled_at, last_sync_at, revoked_at,
                    retire_requested_at, retired_at
             FROM devices ORDER BY enrolled_at, device_id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(DeviceRow {
                device: DeviceId::new(row.get::<_, String>(0)?)?,
                worker: WorkerId::new(row.get::<_, String>(1)?)?,
                label: row.get(2)?,
                enrolled_at: row.get(3)?,
                last_sync_at: row.get(4)?,
                revoked_at: row.get(5)?,
                retire_requested_at: row.get(6)?,
                retired_at: row.get(7)?,
            });
        }
        Ok(out)
    }

    fn touch_device(&self, device: &DeviceId, now: i64) -> Result<()> {
        let conn = self.conn()?;
        let changed = conn.execute(
            "UPDATE devices SET last_sync_at = ?2 WHERE device_id = ?1",
            params![device.as_str(), now],
        )?;
        if changed == 0 {
            return Err(no_device(device));
        }
        Ok(())
    }

    fn actor_owner(&self, actor: &[u8]) -> Result<Option<ActorOwner>> {
        let conn = self.conn()?;
        actor_owner(&conn, actor)
    }

    fn register_server_actor(&self, actor: &[u8], now: i64) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        match actor_owner(&tx, actor)? {
            None => {
                tx.execute(
                    "INSERT INTO actors (actor, device_id, registered_at) VALUES (?1, NULL, ?2)",
                    params![actor, now],
                )?;
            }
            Some(ActorOwner::Server) => {}
            // Changes by that actor would be attributed to the wrong author.
            Some(ActorOwner::Device(device)) => {
                return Err(Error::Conflict(format!(
                    "actor {} is already registered to device {device}",
                    hex(actor)
                )));
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut conn = self.conn()?;
        // Immediate: the chain's head is read and appended to under the write lock.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        super::audit::append(&tx, entry)?;
        tx.commit()?;
        Ok(())
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        super::audit::latest(&*self.conn()?, limit)
    }
}

impl SqliteStorage {
    /// Writes a consistent copy of the database to `dest` while the server runs (a read
    /// transaction: syncs wait only for the copy). Refuses to overwrite anything.
    pub fn backup(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(Error::Conflict(format!("{} already exists", dest.display())));
        }
        let dest_text = dest
            .to_str()
            .ok_or_else(|| Error::bad("backup path", format!("{} is not UTF-8", dest.display())))?;
        self.conn()?.execute("VACUUM INTO ?1", [dest_text])?;
        // VACUUM INTO does not sync its output; a backup is only one once it is on disk.
        fs::File::open(dest)
            .and_then(|file| file.sync_all())
            .map_err(|e| io_error(dest, e))?;
        Ok(())
    }

    /// Replaces the database at `live` with `backup`. The server must be stopped. The restored
    /// database gets a new epoch: devices' cursors point into the old log, and a new epoch makes
    /// them compare inventories instead of trusting those cursors.
    ///
    /// The live file is touched only at the end: the backup is copied beside it, checked,
    /// migrated and given its epoch there, then renamed over it.
    pub fn restore(backup: &Path, live: &Path) -> Result<()> {
        if live.exists() && fs::canonicalize(backup).ok() == fs::canonicalize(live).ok() {
            return Err(Error::bad("backup", "it is the live database itself"));
        }
        let staged = with_suffix(live, ".restoring");
        remove_if_present(&staged)?;
        fs::copy(backup, &staged).map_err(|e| io_error(backup, e))?;
        let prepared = check_backup(&staged, backup).and_then(|()| prepare_restored(&staged));
        if let Err(e) = prepared {
            // The staged copy is useless now; the live database was never touched.
            let _ = fs::remove_file(&staged);
            return Err(e);
        }

        // A WAL left beside `live` belongs to the old database and must not be replayed into the
        // restored one.
        remove_if_present(&with_suffix(live, "-wal"))?;
        remove_if_present(&with_suffix(live, "-shm"))?;
        fs::rename(&staged, live).map_err(|e| io_error(live, e))?;
        if let Some(dir) = live.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            // Makes the rename itself durable.
            fs::File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| io_error(dir, e))?;
        }
        Ok(())
    }
}

/// Refuses a file that is not an intact Outpost server database. `shown` is the path the admin
/// named, for the message.
fn check_backup(staged: &Path, shown: &Path) -> Result<()> {
    let not_ours = |reason: String| Error::bad("backup", format!("{}: {reason}", shown.display()));
    let conn = Connection::open(staged)?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(|e| not_ours(format!("not a readable SQLite database ({e})")))?;
    if check != "ok" {
        return Err(not_ours(format!("the database is damaged ({check})")));
    }
    let epoch = conn
        .query_row("SELECT 1 FROM meta WHERE key = 'epoch'", [], |_| Ok(()))
        .optional()
        .map_err(|_| not_ours("not an Outpost server database (it has no meta table)".into()))?;
    if epoch.is_none() {
        return Err(not_ours("not an Outpost server database (it has no epoch)".into()));
    }
    Ok(())
}

/// Brings the staged copy to this server's schema, gives it a new epoch, and leaves it as one
/// self-contained file (no WAL beside it) ready to be renamed into place.
fn prepare_restored(staged: &Path) -> Result<()> {
    let storage = SqliteStorage::open(staged)?;
    let conn = storage.conn()?;
    conn.execute(
        "UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'epoch'",
        [],
    )?;
    // Leaving WAL mode checkpoints and deletes the WAL; the server turns WAL back on at open.
    let _mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))?;
    Ok(())
}

fn query_device(conn: &Connection, condition: &str, param: &dyn ToSql) -> Result<Option<Device>> {
    let mut stmt = conn.prepare_cached(&format!("{DEVICE_SELECT} WHERE {condition}"))?;
    let mut rows = stmt.query([param])?;
    rows.next()?.map(device_from_row).transpose()
}

fn device_from_row(row: &Row<'_>) -> Result<Device> {
    let role: String = row.get(2)?;
    let scope: String = row.get(4)?;
    Ok(Device {
        device: DeviceId::new(row.get::<_, String>(0)?)?,
        worker: WorkerId::new(row.get::<_, String>(1)?)?,
        role: Role::from_code(&role).ok_or_else(|| Error::Internal(format!("a stored role {role:?} is unknown")))?,
        team: TeamId::new(row.get::<_, String>(3)?)?,
        scope: ScopePolicy::from_code(&scope)
            .ok_or_else(|| Error::Internal(format!("a stored scope {scope:?} is unknown")))?,
    })
}

fn actor_owner(conn: &Connection, actor: &[u8]) -> Result<Option<ActorOwner>> {
    let owner: Option<Option<String>> = conn
        .query_row("SELECT device_id FROM actors WHERE actor = ?1", [actor], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(match owner {
        None => None,
        Some(None) => Some(ActorOwner::Server),
        Some(Some(device)) => Some(ActorOwner::Device(DeviceId::new(device)?)),
    })
}

fn exists(conn: &Connection, sql: &str, param: &dyn ToSql) -> Result<bool> {
    Ok(conn.query_row(sql, [param], |_| Ok(())).optional()?.is_some())
}

/// `path` with `suffix` appended to its file name, as SQLite names its `-wal` and `-shm` files.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(path, e)),
        _ => Ok(()),
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Internal(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn team() -> TeamId {
        TeamId::new("north").unwrap()
    }

    fn worker() -> WorkerId {
        WorkerId::new("ann").unwrap()
    }

    fn device(name: &str) -> DeviceId {
        DeviceId::new(name).unwrap()
    }

    /// A storage with team `north` (allocated scope), lead `ann`, and a code `code-1` for her
    /// valid for an hour from NOW.
    fn storage_with_code(dir: &Path) -> SqliteStorage {
        let storage = SqliteStorage::open(dir.join("server.db")).unwrap();
        storage.create_team(&team(), "North", ScopePolicy::Allocated).unwrap();
        storage.add_worker(&worker(), "Ann", Role::Lead, &team()).unwrap();
        storage.add_enrolment_code(&worker(), b"code-1", NOW + 3600).unwrap();
        storage
    }

    fn epoch(storage: &SqliteStorage) -> String {
        let conn = storage.conn().unwrap();
        conn.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_restored_backup_keeps_its_data_under_a_new_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("server.db");
        let copy = dir.path().join("backup.db");
        let storage = storage_with_code(dir.path());
        let before = epoch(&storage);
        storage.backup(&copy).unwrap();
        let err = storage.backup(&copy).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        // Made after the backup, so the restore must lose it.
        let south = TeamId::new("south").unwrap();
        storage.create_team(&south, "South", ScopePolicy::Team).unwrap();
        drop(storage);

        SqliteStorage::restore(&copy, &live).unwrap();
        let restored = SqliteStorage::open(&live).unwrap();
        assert_ne!(epoch(&restored), before);
        assert!(matches!(
            restored.create_team(&team(), "North", ScopePolicy::Team),
            Err(Error::Conflict(_))
        ));
        restored.create_team(&south, "South", ScopePolicy::Team).unwrap();
        restored
            .enrol(b"code-1", &device("d1"), "phone", b"cred-1", NOW)
            .unwrap();
        assert!(!with_suffix(&live, ".restoring").exists());
    }

    #[test]
    fn restore_refuses_what_is_not_an_outpost_database() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("server.db");
        let storage = storage_with_code(dir.path());
        let before = epoch(&storage);
        drop(storage);

        let text = dir.path().join("notes.txt");
        fs::write(
            &text,
            "not a database at all, just some text long enough to have a header",
        )
        .unwrap();
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE things (x)")
            .unwrap();
        for bad in [&text, &other] {
            let err = SqliteStorage::restore(bad, &live).unwrap_err();
            assert!(
                matches!(&err, Error::BadRequest { what, .. } if what == "backup"),
                "{err}"
            );
        }
        let err = SqliteStorage::restore(&live, &live).unwrap_err();
        assert!(matches!(err, Error::BadRequest { .. }), "{err}");

        // The live database is as it was.
        let storage = SqliteStorage::open(&live).unwrap();
        assert_eq!(epoch(&storage), before);
        assert!(!with_suffix(&live, ".restoring").exists());
    }
}
